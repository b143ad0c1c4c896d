/*
 * fuzz_selector.c - label selector parsing, formatting and matching.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "model/model.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The first line is the selector, later lines are k=v labels. */
	char *text = xstrndup((const char *)data, size);
	char *nl = strchr(text, '\n');
	struct cod_kvlist labels = {0};
	if (nl) {
		*nl = '\0';
		char *save = NULL;
		for (char *line = strtok_r(nl + 1, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			char *eq = strchr(line, '=');
			if (eq) {
				*eq = '\0';
				cod_kvlist_set(&labels, line, eq + 1);
			}
		}
	}
	struct cod_selector sel;
	struct cod_error *err = NULL;
	if (cod_selector_parse(text, &sel, &err) == 0) {
		(void)cod_selector_match(&sel, &labels);
		/* A parsed selector formats to text that parses to the same. */
		char *fmt = cod_selector_format(&sel);
		struct cod_selector again;
		if (cod_selector_parse(fmt, &again, NULL) < 0)
			abort();
		char *fmt2 = cod_selector_format(&again);
		if (strcmp(fmt, fmt2))
			abort();
		if (cod_selector_match(&sel, &labels) != cod_selector_match(&again, &labels))
			abort();
		for (size_t i = 0; i < sel.n; i++) {
			char *msg = NULL;
			if (cod_selector_req_check(&sel.reqs[i], &msg) < 0)
				abort();
		}
		struct cod_selector copy = {0};
		cod_selector_copy(&copy, &sel);
		cod_selector_release(&copy);
		free(fmt);
		free(fmt2);
		cod_selector_release(&again);
		cod_selector_release(&sel);
	} else {
		cod_error_free(err);
	}
	cod_kvlist_release(&labels);
	free(text);
	return 0;
}
