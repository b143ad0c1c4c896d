/*
 * test_oci_ref.c - image references as Docker writes them, digests, index
 * parsing and platform selection, the mismatch message, manifest parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/mem.h"
#include "executor/oci/oci.h"
#include "common/banned.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_ref_good(void **state)
{
	(void)state;
	static const struct {
		const char *in, *registry, *repo, *tag, *digest, *canonical;
	} rows[] = {
	    {"busybox", "docker.io", "library/busybox", "latest", NULL, "docker.io/library/busybox:latest"},
	    {"busybox:1.36", "docker.io", "library/busybox", "1.36", NULL, "docker.io/library/busybox:1.36"},
	    {"library/busybox", "docker.io", "library/busybox", "latest", NULL,
	     "docker.io/library/busybox:latest"},
	    {"org/img", "docker.io", "org/img", "latest", NULL, "docker.io/org/img:latest"},
	    {"docker.io/busybox", "docker.io", "library/busybox", "latest", NULL, NULL},
	    {"index.docker.io/library/busybox:1", "docker.io", "library/busybox", "1", NULL, NULL},
	    {"ghcr.io/org/img:tag", "ghcr.io", "org/img", "tag", NULL, "ghcr.io/org/img:tag"},
	    {"host:5000/a/b@sha256:" D64, "host:5000", "a/b", NULL, "sha256:" D64,
	     "host:5000/a/b@sha256:" D64},
	    {"host:5000/a/b:v1@sha256:" D64, "host:5000", "a/b", "v1", "sha256:" D64, NULL},
	    {"localhost/x", "localhost", "x", "latest", NULL, "localhost/x:latest"},
	    {"127.0.0.1:5000/cod-test/busybox:latest", "127.0.0.1:5000", "cod-test/busybox", "latest", NULL,
	     NULL},
	    {"my-registry.example.com/a.b/c__d/e-f:V1.0_x", "my-registry.example.com", "a.b/c__d/e-f",
	     "V1.0_x", NULL, NULL},
	    {"busybox@sha256:" D64, "docker.io", "library/busybox", NULL, "sha256:" D64, NULL},
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(rows); i++) {
		struct cod_oci_ref r;
		struct cod_error *err = NULL;
		int rc = cod_oci_ref_parse(rows[i].in, &r, &err);
		if (rc < 0)
			print_message("%s: %s\n", rows[i].in, err->message);
		assert_int_equal(rc, 0);
		assert_string_equal(r.registry, rows[i].registry);
		assert_string_equal(r.repository, rows[i].repo);
		if (rows[i].tag)
			assert_string_equal(r.tag, rows[i].tag);
		else
			assert_null(r.tag);
		if (rows[i].digest)
			assert_string_equal(r.digest, rows[i].digest);
		else
			assert_null(r.digest);
		if (rows[i].canonical) {
			char *c = cod_oci_ref_string(&r);
			assert_string_equal(c, rows[i].canonical);
			free(c);
		}
		cod_oci_ref_release(&r);
	}
	struct cod_oci_ref r;
	assert_int_equal(cod_oci_ref_parse("busybox", &r, NULL), 0);
	assert_string_equal(cod_oci_ref_host(&r), "registry-1.docker.io");
	cod_oci_ref_release(&r);
}

static void test_ref_bad(void **state)
{
	(void)state;
	static const struct {
		const char *in, *why;
	} rows[] = {
	    {"", "empty"},
	    {"Busybox", "lowercase"},
	    {"busybox:", "tag"},
	    {"busybox:-x", "tag"},
	    {"busybox@sha256:abc", "digest"},
	    {"busybox@md5:" D64, "digest"},
	    {"a//b", "each part"},
	    {"a/b/", "each part"},
	    {"-a", "each part"},
	    {"a..b", "each part"},
	    {"bad host:5000/x", "space"},
	    {"host:port/x", "registry"},
	    {"host:5000/", "empty"},
	    {"x:"
	     "01234567890123456789012345678901234567890123456789012345678901234567890123456789"
	     "012345678901234567890123456789012345678901234567890",
	     "tag"},
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(rows); i++) {
		struct cod_oci_ref r;
		struct cod_error *err = NULL;
		int rc = cod_oci_ref_parse(rows[i].in, &r, &err);
		if (rc == 0)
			print_message("\"%s\" parsed\n", rows[i].in);
		assert_int_equal(rc, -1);
		assert_int_equal(err->code, COD_E_VALIDATION);
		if (!strstr(err->message, rows[i].why))
			print_message("\"%s\": %s\n", rows[i].in, err->message);
		assert_non_null(strstr(err->message, rows[i].why));
		assert_non_null(strstr(err->message, "invalid image reference"));
		assert_non_null(err->hint);
		cod_error_free(err);
	}
}

static void test_digest(void **state)
{
	(void)state;
	assert_true(cod_oci_digest_valid("sha256:" D64));
	assert_false(cod_oci_digest_valid("sha256:" D64 "0"));
	assert_false(cod_oci_digest_valid("sha256:ABCDEF"));
	assert_false(cod_oci_digest_valid("sha512:" D64));
	assert_false(cod_oci_digest_valid(NULL));
}

static const char index_json[] =
    "{\"schemaVersion\":2,\"manifests\":["
    "{\"mediaType\":\"" COD_MT_OCI_MANIFEST "\",\"digest\":\"sha256:" D64 "\",\"size\":10,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
    "{\"mediaType\":\"" COD_MT_OCI_MANIFEST "\",\"digest\":\"sha256:" D64 "\",\"size\":11,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
    "{\"mediaType\":\"" COD_MT_OCI_MANIFEST "\",\"digest\":\"sha256:" D64 "\",\"size\":12,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v7\"}},"
    "{\"mediaType\":\"" COD_MT_OCI_MANIFEST "\",\"digest\":\"sha256:" D64 "\",\"size\":13,"
    "\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}}]}";

static void test_index_platforms(void **state)
{
	(void)state;
	struct cod_oci_descriptor *d = NULL;
	size_t n = 0;
	assert_int_equal(cod_oci_parse_index(index_json, strlen(index_json), &d, &n, NULL), 0);
	assert_int_equal(n, 4);
	assert_string_equal(d[0].platform, "linux/arm64/v8");
	assert_string_equal(d[1].platform, "linux/amd64");
	assert_int_equal(cod_oci_select_platform(d, n, "linux/amd64"), 1);
	assert_int_equal(cod_oci_select_platform(d, n, "linux/arm64"), 0);
	assert_int_equal(cod_oci_select_platform(d, n, "linux/arm64/v8"), 0);
	assert_int_equal(cod_oci_select_platform(d, n, "linux/arm/v7"), 2);
	assert_int_equal(cod_oci_select_platform(d, n, "linux/arm/v6"), -1);
	assert_int_equal(cod_oci_select_platform(d, n, "linux/s390x"), -1);
	char *msg = cod_oci_platform_mismatch("x", "linux/s390x", d, n);
	assert_string_equal(msg,
			    "image \"x\" has no linux/s390x variant; available: linux/arm64/v8, linux/amd64, "
			    "linux/arm/v7");
	free(msg);
	assert_true(cod_oci_is_index(NULL, index_json, strlen(index_json)));
	assert_true(cod_oci_is_index(COD_MT_DOCKER_LIST, "{}", 2));
	assert_false(cod_oci_is_index(COD_MT_DOCKER_MANIFEST, index_json, strlen(index_json)));
	cod_oci_descriptors_free(d, n);

	struct cod_error *err = NULL;
	static const char bad[] = "{\"manifests\":[{\"digest\":\"sha256:x\"}]}";
	assert_int_equal(cod_oci_parse_index(bad, strlen(bad), &d, &n, &err), -1);
	assert_non_null(strstr(err->message, "digest"));
	cod_error_free(err);
}

static void test_manifest(void **state)
{
	(void)state;
	static const char m[] =
	    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" COD_MT_OCI_CONFIG
	    "\",\"digest\":\"sha256:" D64 "\",\"size\":100},\"layers\":["
	    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:" D64
	    "\",\"size\":1000},"
	    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"sha256:" D64
	    "\",\"size\":2000}]}";
	struct cod_oci_image img;
	memset(&img, 0, sizeof(img));
	img.hold_fd = -1;
	assert_int_equal(cod_oci_parse_manifest(m, strlen(m), &img, NULL), 0);
	assert_int_equal(img.nlayers, 2);
	assert_int_equal(img.size, 3100);
	assert_int_equal(img.config.size, 100);
	cod_oci_image_release(&img);

	struct cod_error *err = NULL;
	static const char v1[] = "{\"schemaVersion\":1,\"fsLayers\":[]}";
	assert_int_equal(cod_oci_parse_manifest(v1, strlen(v1), &img, &err), -1);
	assert_non_null(strstr(err->message, "schema 1"));
	cod_error_free(err);
	err = NULL;
	assert_int_equal(cod_oci_parse_manifest("[]", 2, &img, &err), -1);
	cod_error_free(err);
	cod_oci_image_release(&img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ref_good), cmocka_unit_test(test_ref_bad),
	    cmocka_unit_test(test_digest),   cmocka_unit_test(test_index_platforms),
	    cmocka_unit_test(test_manifest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
