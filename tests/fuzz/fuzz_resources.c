/*
 * fuzz_resources.c - CPU quantities, byte sizes and GPU counts.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/mem.h"
#include "model/model.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size);
	double cpu = 0;
	if (cod_parse_cpu(s, &cpu) == 0 && (!isfinite(cpu) || cpu < 0))
		abort();
	uint64_t bytes = 0;
	if (cod_parse_bytes(s, &bytes) == 0) {
		char *f = cod_format_bytes(bytes);
		free(f);
	}
	struct cod_task task = {0};
	task.resources.cpu = s;
	task.resources.memory = s;
	task.resources.disk = s;
	task.resources.gpu = s;
	struct cod_resources r;
	struct cod_error *err = NULL;
	if (cod_task_resources(&task, &r, &err) < 0)
		cod_error_free(err);
	free(s);
	return 0;
}
