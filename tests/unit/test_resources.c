/*
 * test_resources.c - CPU quantities, byte sizes, formatting and a task's
 * parsed resources.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/mem.h"
#include "model/model.h"
#include "common/banned.h"

static void test_cpu_good(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		double want;
	} rows[] = {
		{"500m", 0.5}, {"2", 2},      {"0.25", 0.25}, {"1.5", 1.5},       {"100m", 0.1},
		{"1k", 1000},  {"1M", 1e6},   {"2G", 2e9},    {"1Ki", 1024},      {"1Mi", 1048576},
		{"1Gi", 1073741824.0},        {"0", 0},       {" 3 ", 3},         {"+1", 1},
		{"1e3", 1000}, {"5E-1", 0.5}, {"1.", 1},      {".5", 0.5},        {"1500m", 1.5},
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(rows); i++) {
		double v = -1;
		int rc = cod_parse_cpu(rows[i].s, &v);
		if (rc < 0 || v != rows[i].want)
			print_message("\"%s\": rc %d value %g\n", rows[i].s, rc, v);
		assert_int_equal(rc, 0);
		assert_true(v == rows[i].want);
	}
}

static void test_cpu_bad(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", " ", "-1", "-500m", "abc", "1x", "m", "1mm", "1..2", "1.2.3", "0x10", "nan",
		"inf", "1e", "1e3m", "1 2", "1,5", "1e999", "500 m m", "1Kii",
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(bad); i++) {
		double v = 42;
		int rc = cod_parse_cpu(bad[i], &v);
		if (rc == 0)
			print_message("\"%s\" parsed as %g\n", bad[i], v);
		assert_int_equal(rc, -1);
		assert_true(v == 42);
	}
	double v;
	assert_int_equal(cod_parse_cpu(NULL, &v), -1);
}

static void test_bytes_good(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		uint64_t want;
	} rows[] = {
		{"1024", 1024},
		{"0", 0},
		{"1b", 1},
		{"1k", 1000},
		{"1kb", 1000},
		{"1KB", 1000},
		{"1ki", 1024},
		{"1KiB", 1024},
		{"512Mb", 512000000},
		{"512Mi", 536870912},
		{"512MiB", 536870912},
		{"1m", 1000000},
		{"2GB", 2000000000},
		{"1Gi", 1073741824},
		{"1.5gb", 1500000000},
		{"1.5 GB", 1500000000},
		{" 2 gi b ", 2147483648ULL},
		{"1tb", 1000000000000ULL},
		{"1Ti", 1099511627776ULL},
		{"1pb", 1000000000000000ULL},
		{"1PiB", 1125899906842624ULL},
		{"1,000 MB", 1000000000},
		{"0.5k", 500},
		{"10eb", 10000000000000000000ULL},
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(rows); i++) {
		uint64_t v = 0;
		int rc = cod_parse_bytes(rows[i].s, &v);
		if (rc < 0 || v != rows[i].want)
			print_message("\"%s\": rc %d value %llu\n", rows[i].s, rc, (unsigned long long)v);
		assert_int_equal(rc, 0);
		assert_true(v == rows[i].want);
	}
}

static void test_bytes_bad(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "   ", "-1", "-1Gb", "12XB", "abc", "1.2.3gb", "gb", "1gbb", "1 g i b x", "20eb",
		"100000000000000000000", "1e3", "1..5", ".", "1/2", "0x10", "1ib",
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(bad); i++) {
		uint64_t v = 42;
		int rc = cod_parse_bytes(bad[i], &v);
		if (rc == 0)
			print_message("\"%s\" parsed as %llu\n", bad[i], (unsigned long long)v);
		assert_int_equal(rc, -1);
		assert_true(v == 42);
	}
	uint64_t v;
	assert_int_equal(cod_parse_bytes(NULL, &v), -1);
	/* Absurdly long input is refused, not scanned into a fixed buffer. */
	char *long_num = xmalloc(4096);
	memset(long_num, '1', 4095);
	long_num[4095] = '\0';
	assert_int_equal(cod_parse_bytes(long_num, &v), -1);
	free(long_num);
}

static void test_format_bytes(void **state)
{
	(void)state;
	static const struct {
		uint64_t v;
		const char *want;
	} rows[] = {
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{536870912, "512.0 MiB"},
		{1073741824, "1.0 GiB"},
		{1099511627776ULL, "1.0 TiB"},
		{UINT64_MAX, "16.0 EiB"},
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(rows); i++) {
		char *s = cod_format_bytes(rows[i].v);
		assert_string_equal(s, rows[i].want);
		free(s);
	}
}

static void test_task_resources(void **state)
{
	(void)state;
	struct cod_task t = {0};
	struct cod_resources r;
	assert_int_equal(cod_task_resources(&t, &r, NULL), 0);
	assert_true(r.cpu == 0 && r.memory == 0 && r.disk == 0 && r.gpu == 0);

	char cpu[] = "250m", mem[] = "1Gi", disk[] = "10GB", gpu[] = "2";
	t.resources = (struct cod_resources_config){.cpu = cpu, .memory = mem, .disk = disk, .gpu = gpu};
	assert_int_equal(cod_task_resources(&t, &r, NULL), 0);
	assert_true(r.cpu == 0.25);
	assert_int_equal(r.memory, 1073741824);
	assert_int_equal(r.disk, 10000000000ULL);
	assert_int_equal(r.gpu, 2);

	static const struct {
		const char *cpu, *mem, *disk, *gpu, *want;
	} bad[] = {
		{"x", NULL, NULL, NULL, "Resources.CPU: \"x\" is not a CPU quantity"},
		{NULL, "12XB", NULL, NULL, "Resources.Memory: \"12XB\" is not a size; use e.g. 512Mb or 2Gi"},
		{NULL, NULL, "big", NULL, "Resources.Disk: \"big\" is not a size"},
		{NULL, NULL, NULL, "-1", "Resources.GPU: \"-1\" is not a GPU count"},
		{NULL, NULL, NULL, "1.5", "Resources.GPU"},
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(bad); i++) {
		struct cod_task b = {0};
		b.resources.cpu = (char *)bad[i].cpu;
		b.resources.memory = (char *)bad[i].mem;
		b.resources.disk = (char *)bad[i].disk;
		b.resources.gpu = (char *)bad[i].gpu;
		struct cod_error *err = NULL;
		assert_int_equal(cod_task_resources(&b, &r, &err), -1);
		assert_non_null(err);
		assert_int_equal(err->code, COD_E_VALIDATION);
		if (!strstr(err->message, bad[i].want))
			print_message("got \"%s\"\n", err->message);
		assert_non_null(strstr(err->message, bad[i].want));
		cod_error_free(err);
	}
}

static void test_resources_json(void **state)
{
	(void)state;
	struct cod_resources r = {.cpu = 1.5, .memory = 1024, .disk = 0, .gpu = 1};
	json_t *j = cod_resources_to_json(&r);
	assert_true(json_is_real(json_object_get(j, "CPU")));
	assert_true(json_real_value(json_object_get(j, "CPU")) == 1.5);
	assert_int_equal(json_integer_value(json_object_get(j, "Memory")), 1024);
	assert_int_equal(json_integer_value(json_object_get(j, "Disk")), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "GPU")), 1);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpu_good),      cmocka_unit_test(test_cpu_bad),
		cmocka_unit_test(test_bytes_good),    cmocka_unit_test(test_bytes_bad),
		cmocka_unit_test(test_format_bytes),  cmocka_unit_test(test_task_resources),
		cmocka_unit_test(test_resources_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
