/*
 * fuzz_json.c - cod's JSON reader against jansson's: for any text and
 * each set of flags cod uses, both succeed with equal trees or both fail
 * with the same message and position.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_fast.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t flag_sets[] = {0, JSON_REJECT_DUPLICATES, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES};
	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		json_error_t fast_err, ref_err;
		json_t *fast = cod_json_loadb((const char *)data, size, flag_sets[i], &fast_err);
		json_t *ref = json_loadb((const char *)data, size, flag_sets[i], &ref_err);
		if (!fast != !ref)
			abort();
		if (fast && !json_equal(fast, ref))
			abort();
		if (fast) {
			/* same key order, same value types (json_equal ignores order) */
			char *a = json_dumps(fast, JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
			char *b = json_dumps(ref, JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
			if (!a || !b || strcmp(a, b))
				abort();
			free(a);
			free(b);
		} else if (strcmp(fast_err.text, ref_err.text) || fast_err.line != ref_err.line ||
			   fast_err.column != ref_err.column || fast_err.position != ref_err.position) {
			abort();
		}
		json_decref(fast);
		json_decref(ref);
	}
	return 0;
}
