/*
 * fuzz_config.c - config files: arbitrary bytes into the config table.
 */
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cod_config cfg;
	cod_config_init(&cfg);
	struct cod_error *err = NULL;
	if (cod_config_load_text(&cfg, (const char *)data, size, "fuzz", &err) < 0)
		cod_error_free(err);
	cod_config_release(&cfg);
	return 0;
}
