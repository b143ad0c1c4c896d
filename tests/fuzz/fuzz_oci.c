/*
 * fuzz_oci.c - the container engine's parsers: image references, image
 * indexes and manifests (what a registry or an imported file hands cod).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "executor/oci/oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = xstrndup((const char *)data, size);
	struct cod_oci_ref ref;
	struct cod_error *err = NULL;
	if (cod_oci_ref_parse(text, &ref, &err) == 0) {
		char *s = cod_oci_ref_string(&ref);
		/* the canonical form parses to itself */
		struct cod_oci_ref again;
		if (cod_oci_ref_parse(s, &again, NULL) == 0) {
			char *s2 = cod_oci_ref_string(&again);
			if (strcmp(s, s2))
				abort();
			free(s2);
			cod_oci_ref_release(&again);
		} else {
			abort();
		}
		free(s);
		cod_oci_ref_release(&ref);
	} else {
		cod_error_free(err);
	}
	err = NULL;
	struct cod_oci_descriptor *d = NULL;
	size_t n = 0;
	if (cod_oci_parse_index(text, size, &d, &n, &err) == 0) {
		char *msg = cod_oci_platform_mismatch("x", "linux/amd64", d, n);
		free(msg);
		cod_oci_select_platform(d, n, "linux/arm64");
		cod_oci_descriptors_free(d, n);
	} else {
		cod_error_free(err);
	}
	err = NULL;
	struct cod_oci_image img;
	memset(&img, 0, sizeof(img));
	img.hold_fd = -1;
	if (cod_oci_parse_manifest(text, size, &img, &err) < 0)
		cod_error_free(err);
	cod_oci_image_release(&img);
	free(text);
	return 0;
}
