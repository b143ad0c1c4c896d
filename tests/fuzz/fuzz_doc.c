/*
 * fuzz_doc.c - the YAML/JSON document layer: parse, emit YAML, re-parse;
 * a document that parsed must survive the round trip unchanged.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cod_error *err = NULL;
	json_t *v = cod_doc_parse((const char *)data, size, &err);
	if (!v) {
		cod_error_free(err);
		return 0;
	}
	struct cod_buf b = COD_BUF_INIT;
	cod_yaml_emit(v, &b);
	json_t *back = cod_yaml_parse(b.buf ? b.buf : "", b.len, &err);
	/* reals may lose their last digit in text; compare only exact types */
	if (back && !json_equal(v, back)) {
		char *s1 = json_dumps(v, JSON_ENCODE_ANY), *s2 = json_dumps(back, JSON_ENCODE_ANY);
		int has_real = s1 && (strpbrk(s1, ".eE") != NULL);
		if (!has_real) {
			fprintf(stderr, "round trip changed the document:\n%s\n%s\nyaml:\n%s\n", s1, s2, b.buf);
			abort();
		}
		free(s1);
		free(s2);
	}
	if (!back)
		cod_error_free(err);
	json_decref(back);
	json_decref(v);
	cod_buf_release(&b);
	return 0;
}
