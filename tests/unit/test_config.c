/*
 * test_config.c - the declarative config table: defaults, env, files,
 * overrides, validation and writing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/util.h"
#include "config/config.h"

static char tmpdir[] = "/tmp/cod-test-config.XXXXXX";

TMPDIR_GROUP(tmpdir)

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void defaults(void **state)
{
	(void)state;
	struct cod_config cfg;
	cod_config_init(&cfg);
	assert_string_equal(cfg.api_host, "0.0.0.0");
	assert_int_equal(cfg.api_port, 1234);
	assert_int_equal(cfg.orch_port, 4222);
	assert_int_equal(cfg.orch_disconnect_timeout_ms, 60000);
	assert_int_equal(cfg.compute_heartbeat_ms, 15000);
	assert_string_equal(cfg.def_batch.cpu, "500m");
	assert_string_equal(cfg.def_batch.memory, "512Mb");
	assert_int_equal(cfg.compute_orchestrators.n, 1);
	/* every key has a description and reads back its default */
	size_t n;
	const struct cod_config_key *keys = cod_config_keys(&n);
	assert_true(n > 40);
	for (size_t i = 0; i < n; i++) {
		assert_true(strlen(keys[i].desc) > 5);
		char *text = cod_config_get_text(&cfg, &keys[i]);
		struct cod_config other;
		cod_config_init(&other);
		assert_int_equal(cod_config_set(&other, keys[i].key, text, "test", NULL), 0);
		char *again = cod_config_get_text(&other, &keys[i]);
		assert_string_equal(text, again);
		free(text);
		free(again);
		cod_config_release(&other);
	}
	cod_config_release(&cfg);
}

static void set_and_validate(void **state)
{
	(void)state;
	struct cod_config cfg;
	cod_config_init(&cfg);
	struct cod_error *err = NULL;
	assert_int_equal(cod_config_set(&cfg, "api.port", "8080", "-c", &err), 0);
	assert_int_equal(cfg.api_port, 8080);
	assert_int_equal(cod_config_set(&cfg, "API.Port", "99999", "-c", &err), -1);
	assert_non_null(strstr(err->message, "API.Port"));
	assert_non_null(strstr(err->message, "out of range"));
	cod_error_free(err);
	err = NULL;
	assert_int_equal(cod_config_set(&cfg, "API.Port", "abc", "-c", &err), -1);
	assert_non_null(strstr(err->message, "not an integer"));
	cod_error_free(err);
	err = NULL;
	assert_int_equal(cod_config_set(&cfg, "API.Prot", "1", "-c", &err), -1);
	assert_non_null(strstr(err->message, "unknown config key"));
	assert_non_null(strstr(err->hint, "API.Port"));
	cod_error_free(err);
	err = NULL;
	assert_int_equal(cod_config_set(&cfg, "Orchestrator.NodeManager.ManualApproval", "yes", "-c", &err), 0);
	assert_true(cfg.orch_manual_approval);
	assert_int_equal(cod_config_set(&cfg, "Orchestrator.NodeManager.ManualApproval", "maybe", "-c", &err), -1);
	cod_error_free(err);
	err = NULL;
	assert_int_equal(cod_config_set(&cfg, "Compute.Heartbeat.Interval", "2s", "-c", &err), 0);
	assert_int_equal(cfg.compute_heartbeat_ms, 2000);
	assert_int_equal(cod_config_set(&cfg, "Compute.Heartbeat.Interval", "soon", "-c", &err), -1);
	cod_error_free(err);
	err = NULL;
	assert_int_equal(cod_config_set(&cfg, "Labels", "zone=eu, gpu=yes", "-c", &err), 0);
	assert_int_equal(cfg.labels.n, 2);
	assert_string_equal(cod_kvlist_get(&cfg.labels, "gpu"), "yes");
	assert_int_equal(cod_config_set(&cfg, "Labels", "novalue", "-c", &err), -1);
	assert_int_equal(cfg.labels.n, 2); /* unchanged on error */
	cod_error_free(err);
	cod_config_release(&cfg);
}

static void env_and_file(void **state)
{
	(void)state;
	char path[512];
	snprintf(path, sizeof(path), "%s/config.yaml", tmpdir);
	write_file(path, "API:\n  Port: 5555\n  host: 127.0.0.2\nLabels:\n  a: b\nCompute:\n  Orchestrators:\n"
			 "    - nats://x:1\n    - nats://y:2\n");
	struct cod_config cfg;
	cod_config_init(&cfg);
	struct cod_error *err = NULL;
	assert_int_equal(cod_config_load_file(&cfg, path, false, &err), 0);
	assert_int_equal(cfg.api_port, 5555);
	assert_string_equal(cfg.api_host, "127.0.0.2");
	assert_string_equal(cod_kvlist_get(&cfg.labels, "a"), "b");
	assert_int_equal(cfg.compute_orchestrators.n, 2);
	setenv("COD_API_PORT", "6666", 1);
	setenv("COD_ORCHESTRATOR_NODEMANAGER_MANUALAPPROVAL", "true", 1);
	assert_int_equal(cod_config_apply_env(&cfg, &err), 0);
	assert_int_equal(cfg.api_port, 6666);
	assert_true(cfg.orch_manual_approval);
	setenv("COD_API_PORT", "nope", 1);
	assert_int_equal(cod_config_apply_env(&cfg, &err), -1);
	assert_non_null(strstr(err->message, "COD_API_PORT"));
	cod_error_free(err);
	err = NULL;
	unsetenv("COD_API_PORT");
	unsetenv("COD_ORCHESTRATOR_NODEMANAGER_MANUALAPPROVAL");
	cod_config_release(&cfg);

	/* unknown keys in a file are errors with the file named */
	write_file(path, "API:\n  Portt: 1\n");
	cod_config_init(&cfg);
	assert_int_equal(cod_config_load_file(&cfg, path, false, &err), -1);
	assert_non_null(strstr(err->message, "API.Portt"));
	assert_non_null(strstr(err->message, "config.yaml"));
	cod_error_free(err);
	err = NULL;
	/* a missing optional file is fine, a missing required one is not */
	char missing[600];
	snprintf(missing, sizeof(missing), "%s/nope.yaml", tmpdir);
	assert_int_equal(cod_config_load_file(&cfg, missing, true, &err), 0);
	assert_int_equal(cod_config_load_file(&cfg, missing, false, &err), -1);
	cod_error_free(err);
	cod_config_release(&cfg);
}

static void file_set(void **state)
{
	(void)state;
	char path[512];
	snprintf(path, sizeof(path), "%s/sub/config.yaml", tmpdir);
	struct cod_error *err = NULL;
	assert_int_equal(cod_config_file_set(path, "api.port", "7777", &err), 0);
	assert_int_equal(cod_config_file_set(path, "Labels", "x=1,y=2", &err), 0);
	assert_int_equal(cod_config_file_set(path, "API.Host", "10.1.2.3", &err), 0);
	assert_int_equal(cod_config_file_set(path, "API.Port", "bad", &err), -1);
	cod_error_free(err);
	err = NULL;
	struct cod_config cfg;
	cod_config_init(&cfg);
	assert_int_equal(cod_config_load_file(&cfg, path, false, &err), 0);
	assert_int_equal(cfg.api_port, 7777);
	assert_string_equal(cfg.api_host, "10.1.2.3");
	assert_string_equal(cod_kvlist_get(&cfg.labels, "y"), "2");
	cod_config_release(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults),
		cmocka_unit_test(set_and_validate),
		cmocka_unit_test(env_and_file),
		cmocka_unit_test(file_set),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
