/*
 * test_storage.c - the input side: allow-list globs, S3 partitioning
 * (FNV-1a vectors, every partition type, Go date layouts, bad specs), the
 * input cache (hit, miss, LRU eviction, locators), the node inventory and
 * what the locality ranker reads from it, and the s3 publisher's key
 * templates and result archives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>

#include "common/mem.h"
#include "common/util.h"
#include "config/config.h"
#include "publisher/publisher.h"
#include "storage/cache.h"
#include "storage/http.h"
#include "storage/s3api.h"
#include "storage/storage.h"
#include "common/banned.h"

static void test_glob(void **state)
{
	(void)state;
	assert_true(cod_glob_match("/data/**", "/data"));
	assert_true(cod_glob_match("/data/**", "/data/a/b/c.txt"));
	assert_true(cod_glob_match("/data/*", "/data/a"));
	assert_false(cod_glob_match("/data/*", "/data/a/b"));
	assert_true(cod_glob_match("/data/set*/**", "/data/set1/x"));
	assert_false(cod_glob_match("/data/set*/**", "/data/other/x"));
	assert_true(cod_glob_match("/data/**/*.csv", "/data/a/b/c.csv"));
	assert_true(cod_glob_match("/data/**/*.csv", "/data/c.csv"));
	assert_false(cod_glob_match("/data/**/*.csv", "/data/c.txt"));
	assert_true(cod_glob_match("/d?ta/[ab]", "/data/a"));
	assert_false(cod_glob_match("/data", "/data2"));
	assert_true(cod_glob_match("/data/", "/data"));
	assert_false(cod_glob_match("/data/**", "/dataset"));

	bool rw;
	cleanup_free char *g1 = cod_allowlist_entry(" /srv/in/**:ro ", &rw);
	assert_string_equal(g1, "/srv/in/**");
	assert_false(rw);
	cleanup_free char *g2 = cod_allowlist_entry("/srv/out/**:rw", &rw);
	assert_string_equal(g2, "/srv/out/**");
	assert_true(rw);
	cleanup_free char *g3 = cod_allowlist_entry("/srv/x", &rw);
	assert_string_equal(g3, "/srv/x");
	assert_false(rw);
}

static void test_fnv1a(void **state)
{
	(void)state;
	/* the FNV-1a 32-bit reference vectors */
	assert_int_equal(cod_fnv1a32("", 0), 0x811c9dc5u);
	assert_int_equal(cod_fnv1a32("a", 1), 0xe40c292cu);
	assert_int_equal(cod_fnv1a32("foobar", 6), 0xbf9cf968u);
}

static int part(const char *spec, const char *prefix, const char *key, int64_t count)
{
	json_t *p = json_loads(spec, 0, NULL);
	struct cod_error *err = NULL;
	int r = cod_s3_partition_of(p, prefix, key, count, &err);
	if (r == -1) {
		printf("partition error: %s\n", err->message);
		cod_error_free(err);
	}
	json_decref(p);
	return r;
}

static int hash_mod(const char *s, size_t n, int count)
{
	return (int)(cod_fnv1a32(s, n) % (uint32_t)count);
}

static void test_partitions(void **state)
{
	(void)state;
	/* none: every partition; Count=1 short-circuits */
	assert_int_equal(part("{\"Type\": \"none\"}", "logs/", "logs/a", 4), -2);
	assert_int_equal(part("{}", "logs/", "logs/a", 4), -2);
	assert_int_equal(part("{\"Type\": \"object\"}", "logs/", "logs/a", 1), 0);
	/* object: the full key */
	assert_int_equal(part("{\"Type\": \"object\"}", "logs/", "logs/2024/a.txt", 7),
			 hash_mod("logs/2024/a.txt", 15, 7));
	/* regex: capture groups joined with 0x1F on the prefix-trimmed key */
	assert_int_equal(part("{\"Type\": \"regex\", \"Pattern\": \"(\\\\d+)-(\\\\d+)\"}", "logs/", "logs/12-34.log", 5),
			 hash_mod("12\x1f" "34", 5, 5));
	/* no groups: the whole match */
	assert_int_equal(part("{\"Type\": \"regex\", \"Pattern\": \"[a-z]+\"}", "logs/", "logs/abc123", 5),
			 hash_mod("abc", 3, 5));
	/* no match: partition 0 */
	assert_int_equal(part("{\"Type\": \"regex\", \"Pattern\": \"zzz\"}", "logs/", "logs/abc", 5), 0);
	/* substring: runes [start, end) of the trimmed key; too short -> 0 */
	assert_int_equal(part("{\"Type\": \"substring\", \"StartIndex\": 1, \"EndIndex\": 3}", "logs/", "logs/abcd", 6),
			 hash_mod("bc", 2, 6));
	assert_int_equal(part("{\"Type\": \"substring\", \"StartIndex\": 1, \"EndIndex\": 9}", "logs/", "logs/abcd", 6), 0);
	assert_int_equal(part("{\"Type\": \"substring\", \"StartIndex\": 0, \"EndIndex\": 2}", "logs/", "logs/éa", 6),
			 hash_mod("éa", strlen("éa"), 6));
	/* date: parsed from the start of the trimmed key, formatted back */
	assert_int_equal(part("{\"Type\": \"date\", \"DateFormat\": \"2006-01-02\"}", "logs/*", "logs/2024-03-05-x.log", 4),
			 hash_mod("2024-03-05", 10, 4));
	assert_int_equal(part("{\"Type\": \"date\", \"DateFormat\": \"2006-01-02\"}", "logs/", "logs/not-a-date.log", 4), 0);
	assert_int_equal(part("{\"Type\": \"date\", \"DateFormat\": \"2006-01-02\"}", "logs/", "logs/2024-02-30.log", 4), 0);
	/* invalid specs */
	assert_int_equal(part("{\"Type\": \"substring\", \"StartIndex\": 3, \"EndIndex\": 2}", "", "k", 4), -1);
	assert_int_equal(part("{\"Type\": \"regex\"}", "", "k", 4), -1);
	assert_int_equal(part("{\"Type\": \"regex\", \"Pattern\": \"(\"}", "", "k", 4), -1);
	assert_int_equal(part("{\"Type\": \"date\"}", "", "k", 4), -1);
	assert_int_equal(part("{\"Type\": \"hash\"}", "", "k", 4), -1);
}

static void test_go_time(void **state)
{
	(void)state;
	struct tm t;
	assert_int_equal(cod_go_time_parse("2006-01-02", "2024-03-05", &t), 0);
	assert_int_equal(t.tm_year, 124);
	assert_int_equal(t.tm_mon, 2);
	assert_int_equal(t.tm_mday, 5);
	assert_int_equal(cod_go_time_parse("2006-01-02", "2024-3-05", &t), -1);
	assert_int_equal(cod_go_time_parse("2006-01-02", "2023-02-29", &t), -1);
	assert_int_equal(cod_go_time_parse("2006-01-02", "2024-02-29", &t), 0);
	assert_int_equal(cod_go_time_parse("Jan 2, 2006", "Mar 5, 2024", &t), 0);
	assert_int_equal(t.tm_mon, 2);
	cleanup_free char *f = cod_go_time_format("Jan 2, 2006", &t);
	assert_string_equal(f, "Mar 5, 2024");
	assert_int_equal(cod_go_time_parse("20060102T150405", "20240305T231501", &t), 0);
	assert_int_equal(t.tm_hour, 23);
	assert_int_equal(cod_go_time_parse("3:04PM", "11:30PM", &t), 0);
	assert_int_equal(t.tm_hour, 23);
	cleanup_free char *g = cod_go_time_format("2006/01/02 15:04", &t);
	assert_string_equal(g, "0000/01/01 23:30");
	assert_int_equal(cod_go_time_parse("2006-01-02", "2024-03-05x", &t), -1);
}

static void test_publish_key(void **state)
{
	(void)state;
	struct cod_execution e = {.id = (char *)"e-1", .job_id = (char *)"j-2"};
	time_t when = 1369353600 + 3 * 3600 + 4 * 60 + 5; /* 2013-05-24 03:04:05 UTC */
	cleanup_free char *a = cod_s3_publish_key("out/{jobID}/{executionID}-{nodeID}-{date}-{time}", &e, "n1", true, when);
	assert_string_equal(a, "out/j-2/e-1-n1-20130524-030405.tar.gz");
	cleanup_free char *b = cod_s3_publish_key("x.tar.gz", &e, "n1", true, when);
	assert_string_equal(b, "x.tar.gz");
	cleanup_free char *c = cod_s3_publish_key("/plain/{jobID}", &e, "n1", false, when);
	assert_string_equal(c, "plain/j-2/");
}

static char *tmpdir(void)
{
	char tmpl[] = "/tmp/cod-test-storage-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	return xstrdup(tmpl);
}

static void write_file(const char *path, size_t n)
{
	char *data = xmalloc(n + 1);
	memset(data, 'x', n);
	assert_int_equal(cod_write_file_atomic(path, data, n, NULL), 0);
	free(data);
}

static void test_cache(void **state)
{
	(void)state;
	cleanup_free char *dir = tmpdir();
	struct cod_config cfg;
	cod_config_init(&cfg);
	free(cfg.data_dir);
	cfg.data_dir = xstrdup(dir);
	free(cfg.input_cache_max_size);
	cfg.input_cache_max_size = xstrdup("250");
	assert_true(cod_cache_enabled(&cfg));

	cleanup_free char *src = xasprintf("%s/src", dir);
	write_file(src, 100);
	cod_cache_store(&cfg, "https://x/a#etag:1", src);
	cod_cache_store(&cfg, "https://x/b#etag:1", src);
	assert_int_equal(cod_cache_bytes(&cfg), 200);

	/* a hit copies the data out and makes the entry most recent */
	cleanup_free char *dst = xasprintf("%s/dst", dir);
	uint64_t bytes = 0;
	assert_int_equal(cod_cache_fetch(&cfg, "https://x/a#etag:1", dst, &bytes, NULL), 1);
	assert_int_equal(bytes, 100);
	assert_int_equal(cod_path_bytes(dst), 100);
	assert_int_equal(cod_cache_fetch(&cfg, "https://x/a#etag:2", dst, &bytes, NULL), 0);

	/* a third entry evicts the least recently used one (b) */
	cod_cache_store(&cfg, "https://x/c#etag:1", src);
	cleanup_free char *dst2 = xasprintf("%s/dst2", dir);
	assert_int_equal(cod_cache_fetch(&cfg, "https://x/b#etag:1", dst2, &bytes, NULL), 0);
	assert_int_equal(cod_cache_fetch(&cfg, "https://x/a#etag:1", dst2, &bytes, NULL), 1);
	assert_int_equal(cod_cache_bytes(&cfg), 200);

	/* find by locator, drop, too large to cache */
	cleanup_free char *k = cod_cache_find(&cfg, "https://x/c");
	assert_string_equal(k, "https://x/c#etag:1");
	assert_null(cod_cache_find(&cfg, "https://x/"));
	cod_cache_drop(&cfg, "https://x/c#etag:1");
	assert_null(cod_cache_find(&cfg, "https://x/c"));
	cleanup_free char *big = xasprintf("%s/big", dir);
	write_file(big, 300);
	cod_cache_store(&cfg, "https://x/big#etag:1", big);
	assert_null(cod_cache_find(&cfg, "https://x/big"));

	json_t *inv = cod_cache_inventory(&cfg, 10);
	assert_int_equal(json_array_size(inv), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(inv, 0), "Key")), "https://x/a#etag:1");
	json_decref(inv);

	/* disabled */
	free(cfg.input_cache_max_size);
	cfg.input_cache_max_size = xstrdup("0");
	assert_false(cod_cache_enabled(&cfg));
	cod_config_release(&cfg);
	cod_remove_tree(dir);
}

static struct cod_input_source input(const char *type, const char *params)
{
	struct cod_input_source in = {.source = {.type = (char *)type, .params = json_loads(params, 0, NULL)}};
	return in;
}

static void test_inventory_bytes(void **state)
{
	(void)state;
	json_t *inv = json_loads("{\"LocalPaths\": [{\"Pattern\": \"/data/**\", \"ReadWrite\": false, \"Bytes\": 5000},"
				 " {\"Pattern\": \"/scratch/**\", \"ReadWrite\": true, \"Bytes\": 0}],"
				 " \"Cached\": [{\"Key\": \"https://h/f.bin#etag:\\\"1\\\"\", \"Size\": 300},"
				 " {\"Key\": \"s3://127.0.0.1:9000/b/logs/a#e1\", \"Size\": 10},"
				 " {\"Key\": \"s3://127.0.0.1:9000/b/logs/b#e2\", \"Size\": 20},"
				 " {\"Key\": \"s3://aws/b/one.txt#e3\", \"Size\": 7}]}",
				 0, NULL);
	assert_non_null(inv);
	struct cod_input_source in = input("local", "{\"SourcePath\": \"/data/set\"}");
	assert_int_equal(cod_storage_inventory_bytes(inv, &in), 5000);
	json_decref(in.source.params);
	in = input("localDirectory", "{\"SourcePath\": \"/data/set\", \"ReadWrite\": true}");
	assert_int_equal(cod_storage_inventory_bytes(inv, &in), 0);
	json_decref(in.source.params);
	in = input("local", "{\"SourcePath\": \"/scratch/x\", \"ReadWrite\": true}");
	assert_int_equal(cod_storage_inventory_bytes(inv, &in), 1);
	json_decref(in.source.params);
	in = input("urlDownload", "{\"URL\": \"https://h/f.bin\"}");
	assert_int_equal(cod_storage_inventory_bytes(inv, &in), 300);
	json_decref(in.source.params);
	in = input("urlDownload", "{\"URL\": \"https://h/f\"}");
	assert_int_equal(cod_storage_inventory_bytes(inv, &in), 0);
	json_decref(in.source.params);
	in = input("s3", "{\"Bucket\": \"b\", \"Key\": \"logs/\", \"Endpoint\": \"http://127.0.0.1:9000\"}");
	assert_int_equal(cod_storage_inventory_bytes(inv, &in), 30);
	json_decref(in.source.params);
	in = input("s3", "{\"Bucket\": \"b\", \"Key\": \"one.txt\"}");
	assert_int_equal(cod_storage_inventory_bytes(inv, &in), 7);
	json_decref(in.source.params);
	in = input("inline", "{\"URL\": \"data:,x\"}");
	assert_int_equal(cod_storage_inventory_bytes(inv, &in), 0);
	json_decref(in.source.params);
	assert_int_equal(cod_storage_inventory_bytes(NULL, &in), 0);
	json_decref(inv);

	assert_ptr_equal(cod_storage_find("LocalDirectory"), &cod_storage_local);
	assert_ptr_equal(cod_storage_find("urldownload"), &cod_storage_url);
	assert_ptr_equal(cod_storage_find("s3"), &cod_storage_s3);
}

static void test_archive(void **state)
{
	(void)state;
	cleanup_free char *dir = tmpdir();
	cleanup_free char *res = xasprintf("%s/results", dir);
	cleanup_free char *sub = xasprintf("%s/results/outputs", dir);
	assert_int_equal(cod_mkdir_p(sub, 0755, NULL), 0);
	cleanup_free char *f1 = xasprintf("%s/stdout", res);
	cleanup_free char *f2 = xasprintf("%s/outputs/data.bin", res);
	write_file(f1, 10);
	write_file(f2, 5000);
	cleanup_free char *tgz = xasprintf("%s/r.tar.gz", dir);
	uint64_t size = 0;
	assert_int_equal(cod_archive_targz(res, tgz, &size, NULL), 0);
	assert_true(size > 0);
	cleanup_free char *out = xasprintf("%s/out", dir);
	assert_int_equal(cod_archive_extract(tgz, out, 0, NULL), 0);
	assert_int_equal(cod_path_bytes(out), 5010);
	cleanup_free char *out2 = xasprintf("%s/out2", dir);
	struct cod_error *err = NULL;
	assert_int_equal(cod_archive_extract(tgz, out2, 100, &err), -1);
	assert_int_equal(err->code, COD_E_TOO_LARGE);
	cod_error_free(err);

	/* an archive that tries to climb out is refused */
	cleanup_free char *evil = xasprintf("%s/evil.tar", dir);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_open_filename(a, evil);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "../escaped");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, 1);
	archive_write_header(a, e);
	archive_write_data(a, "x", 1);
	archive_entry_free(e);
	archive_write_close(a);
	archive_write_free(a);
	cleanup_free char *out3 = xasprintf("%s/out3", dir);
	err = NULL;
	assert_int_equal(cod_archive_extract(evil, out3, 0, &err), -1);
	assert_non_null(strstr(err->message, "unsafe path"));
	cod_error_free(err);
	cleanup_free char *escaped = xasprintf("%s/escaped", dir);
	assert_int_not_equal(access(escaped, F_OK), 0);
	cod_remove_tree(dir);
}

/* data: URIs (inline inputs): base64 in either alphabet, padded or not,
 * folded over lines; percent-encoded text; errors name the fix. */
static void test_data_uri(void **state)
{
	(void)state;
	struct {
		const char *uri, *want;
	} ok[] = {
	    {"data:text/plain;base64,aGVsbG8gd29ybGQ=", "hello world"},
	    {"data:;base64,aGVsbG8gd29ybGQ", "hello world"},
	    {"data:;base64,aGVs\n  bG8g\nd29y bGQ=", "hello world"},
	    {"data:;base64,-_8=", "\xfb\xff"},
	    {"data:;base64,+/8=", "\xfb\xff"},
	    {"data:,a%20b%zz", "a b%zz"},
	    {"DATA:,", ""},
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(ok); i++) {
		struct cod_buf b = COD_BUF_INIT;
		struct cod_error *err = NULL;
		assert_int_equal(cod_data_uri_decode(ok[i].uri, &b, &err), 0);
		assert_string_equal(cod_buf_str(&b), ok[i].want);
		cod_buf_release(&b);
	}
	const char *bad[][2] = {
	    {"http://x/y", "not a data: URI"},
	    {"data:text/plain", "no ',' before its data; use data:"},
	    {"data:;base64,aGV*bG8=", "not base64; encode the data with base64"},
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(bad); i++) {
		struct cod_buf b = COD_BUF_INIT;
		struct cod_error *err = NULL;
		assert_int_equal(cod_data_uri_decode(bad[i][0], &b, &err), -1);
		assert_non_null(strstr(err->message, bad[i][1]));
		cod_error_free(err);
		cod_buf_release(&b);
	}
	struct cod_buf small = COD_BUF_INIT;
	small.max = 4;
	struct cod_error *err = NULL;
	assert_int_equal(cod_data_uri_decode("data:;base64,aGVsbG8=", &small, &err), -1);
	assert_int_equal(err->code, COD_E_TOO_LARGE);
	assert_non_null(strstr(err->message, "behind a URL"));
	cod_error_free(err);
	cod_buf_release(&small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_glob),
	    cmocka_unit_test(test_fnv1a),
	    cmocka_unit_test(test_partitions),
	    cmocka_unit_test(test_go_time),
	    cmocka_unit_test(test_publish_key),
	    cmocka_unit_test(test_cache),
	    cmocka_unit_test(test_inventory_bytes),
	    cmocka_unit_test(test_archive),
	    cmocka_unit_test(test_data_uri),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
