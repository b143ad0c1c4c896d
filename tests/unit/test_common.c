/*
 * test_common.c - buffers, errors, documents (YAML/JSON), util helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/doc.h"
#include "common/error.h"
#include "common/json_fast.h"
#include "common/mem.h"
#include "common/util.h"

static void buf_grows_and_caps(void **state)
{
	(void)state;
	struct cod_buf b;
	cod_buf_init(&b, 10);
	assert_string_equal(cod_buf_str(&b), "");
	assert_int_equal(cod_buf_addstr(&b, "hello"), 0);
	assert_int_equal(cod_buf_addf(&b, "%d", 1234), 0);
	assert_string_equal(b.buf, "hello1234");
	/* the cap refuses without changing the contents */
	assert_int_equal(cod_buf_addstr(&b, "xy"), -1);
	assert_string_equal(b.buf, "hello1234");
	assert_int_equal(cod_buf_addch(&b, '!'), 0);
	assert_int_equal(b.len, 10);
	size_t len;
	char *s = cod_buf_detach(&b, &len);
	assert_int_equal(len, 10);
	assert_null(b.buf);
	free(s);
	cod_buf_release(&b);
}

static void error_table_and_wrap(void **state)
{
	(void)state;
	struct cod_error *err = NULL;
	assert_int_equal(cod_error_set(&err, COD_E_NOT_FOUND, "job \"%s\" not found", "x"), -1);
	cod_error_hint(err, "run %s", "cod job list");
	cod_error_wrap(&err, "describe");
	assert_string_equal(err->message, "describe: job \"x\" not found");
	assert_string_equal(err->hint, "run cod job list");
	assert_int_equal(cod_error_http_status(err->code), 404);
	assert_string_equal(cod_error_code_name(err->code), "NotFound");
	assert_int_equal(cod_error_exit_code(COD_E_USAGE), 2);
	assert_int_equal(cod_error_code_from_name("ValidationError"), COD_E_VALIDATION);
	assert_int_equal(cod_error_http_status(COD_E_TOO_LARGE), 413);
	assert_int_equal(cod_error_http_status(COD_E_METHOD), 405);
	cod_error_free(err);
	/* NULL err is allowed and only returns -1 */
	assert_int_equal(cod_error_set(NULL, COD_E_IO, "x"), -1);
}

static void yaml_typing(void **state)
{
	(void)state;
	const char *y = "a: 1\nb: \"1\"\nc: true\nd: ~\ne: 1.5\nf: hello world\ng: [x, 2]\nh: {k: v}\ni: '007'\n"
			"j: 0x10\nk: 1.2.3\n";
	struct cod_error *err = NULL;
	json_t *v = cod_doc_parse(y, strlen(y), &err);
	assert_non_null(v);
	assert_true(json_is_integer(json_object_get(v, "a")));
	assert_true(json_is_string(json_object_get(v, "b")));
	assert_true(json_is_true(json_object_get(v, "c")));
	assert_true(json_is_null(json_object_get(v, "d")));
	assert_true(json_is_real(json_object_get(v, "e")));
	assert_string_equal(json_string_value(json_object_get(v, "f")), "hello world");
	assert_int_equal(json_array_size(json_object_get(v, "g")), 2);
	assert_string_equal(json_string_value(json_object_get(v, "i")), "007");
	assert_int_equal(json_integer_value(json_object_get(v, "j")), 16);
	assert_true(json_is_string(json_object_get(v, "k")));
	json_decref(v);
}

static void yaml_errors(void **state)
{
	(void)state;
	struct cod_error *err = NULL;
	assert_null(cod_doc_parse("", 0, &err));
	assert_string_equal(err->message, "empty document");
	cod_error_free(err);
	err = NULL;
	assert_null(cod_doc_parse("a: [1, 2\n", 9, &err));
	assert_non_null(strstr(err->message, "line"));
	cod_error_free(err);
	err = NULL;
	assert_null(cod_doc_parse("a: 1\na: 2\n", 10, &err));
	assert_non_null(strstr(err->message, "duplicate key"));
	cod_error_free(err);
	err = NULL;
	assert_null(cod_doc_parse("{\"a\": }", 7, &err));
	assert_non_null(strstr(err->message, "invalid JSON"));
	cod_error_free(err);
	err = NULL;
	/* alias expansion is bounded */
	const char *bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
			   "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
			   "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
			   "g: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n";
	assert_null(cod_doc_parse(bomb, strlen(bomb), &err));
	assert_non_null(strstr(err->message, "nodes"));
	cod_error_free(err);
}

static void yaml_round_trip(void **state)
{
	(void)state;
	const char *j = "{\"Name\":\"x: y\",\"Tasks\":[{\"Name\":\"main\",\"Env\":{\"A\":\"1\"},\"List\":[\"-c\",\"echo hi\",\"\"]}],"
			"\"Count\":2,\"Empty\":{},\"Flag\":false,\"Null\":null,\"Str\":\"true\",\"Multi\":\"a\\nb\"}";
	struct cod_error *err = NULL;
	json_t *v = cod_doc_parse(j, strlen(j), &err);
	assert_non_null(v);
	struct cod_buf b = COD_BUF_INIT;
	cod_yaml_emit(v, &b);
	json_t *back = cod_yaml_parse(b.buf, b.len, &err);
	if (!back)
		fail_msg("re-parse failed: %s\n%s", err->message, b.buf);
	assert_true(json_equal(v, back));
	json_decref(v);
	json_decref(back);
	cod_buf_release(&b);
}

static void case_insensitive_get(void **state)
{
	(void)state;
	json_t *o = json_pack("{s:i}", "JobID", 3);
	assert_int_equal(json_integer_value(cod_json_iget(o, "jobid")), 3);
	assert_null(cod_json_iget(o, "job"));
	json_decref(o);
}

static void durations_and_ints(void **state)
{
	(void)state;
	int64_t ms;
	assert_int_equal(cod_parse_duration_ms("90", &ms), 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(cod_parse_duration_ms("1m30s", &ms), 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(cod_parse_duration_ms("500ms", &ms), 0);
	assert_int_equal(ms, 500);
	assert_int_equal(cod_parse_duration_ms("2h", &ms), 0);
	assert_int_equal(ms, 7200000);
	assert_int_equal(cod_parse_duration_ms("5x", &ms), -1);
	assert_int_equal(cod_parse_duration_ms("", &ms), -1);
	assert_int_equal(cod_parse_duration_ms("-1s", &ms), -1);
	int64_t v;
	assert_int_equal(cod_parse_i64("12a", &v), -1);
	assert_int_equal(cod_parse_i64("99999999999999999999", &v), -1);
	assert_int_equal(cod_parse_i64("-5", &v), 0);
	assert_int_equal(v, -5);
}

static void base64url(void **state)
{
	(void)state;
	const char *inputs[] = {"", "a", "ab", "abc", "created_at:N:10:20", "\xff\xfe\x00z"};
	size_t lens[] = {0, 1, 2, 3, 18, 4};
	for (size_t i = 0; i < 6; i++) {
		char *enc = cod_base64url_encode(inputs[i], lens[i]);
		assert_null(strchr(enc, '='));
		size_t n;
		char *dec = cod_base64url_decode(enc, &n);
		assert_non_null(dec);
		assert_int_equal(n, lens[i]);
		assert_memory_equal(dec, inputs[i], n);
		free(enc);
		free(dec);
	}
	assert_null(cod_base64url_decode("@@@", NULL));
	assert_null(cod_base64url_decode("a", NULL));
}

static void ids_and_strings(void **state)
{
	(void)state;
	char *a = cod_new_id("j-"), *b = cod_new_id("j-");
	assert_int_equal(strlen(a), 38);
	assert_string_not_equal(a, b);
	assert_int_equal(a[16], '4'); /* version nibble */
	for (size_t i = 2; i < 38; i++) /* 8-4-4-4-12 lowercase hex */
		assert_true(i == 10 || i == 15 || i == 20 || i == 25 ? a[i] == '-'
								      : cod_hex_digit(a[i]) >= 0 && !(a[i] >= 'A' && a[i] <= 'F'));
	assert_true(strchr("89ab", a[21]) != NULL); /* variant */
	char hex[7];
	cod_hex_encode("\x00\xab\xff", 3, hex);
	assert_string_equal(hex, "00abff");
	free(a);
	free(b);
	assert_int_equal(cod_edit_distance("Meta", "meta"), 0);
	assert_int_equal(cod_edit_distance("Envv", "Env"), 1);
	char s[] = "  x y \n";
	assert_string_equal(cod_str_trim(s), "x y");
	assert_true(cod_str_has_suffix("a.yaml", ".yaml"));
	assert_false(cod_str_has_prefix("j", "j-"));
}

static void arena(void **state)
{
	(void)state;
	struct cod_arena a = {0};
	char *s = cod_arena_printf(&a, "%s-%d", "x", 5);
	assert_string_equal(s, "x-5");
	for (int i = 0; i < 1000; i++)
		assert_non_null(cod_arena_alloc(&a, 100));
	char *big = cod_arena_alloc(&a, 100000);
	memset(big, 1, 100000);
	cod_arena_release(&a);
	assert_null(a.head);
}

static void *write_same_path(void *arg)
{
	for (int i = 0; i < 100; i++)
		if (cod_write_file_atomic(arg, "content", 7, NULL) < 0)
			return (void *)1;
	return NULL;
}

/* threads of one process replace the same file at once: every write lands */
static void atomic_writes_from_threads(void **state)
{
	(void)state;
	char dir[] = "/tmp/cod-atomic-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *path = xasprintf("%s/file", dir);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, write_same_path, path);
	for (int i = 0; i < 4; i++) {
		void *rc;
		pthread_join(t[i], &rc);
		assert_null(rc);
	}
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(cod_read_file(path, 64, &text, &len, NULL), 0);
	assert_int_equal(len, 7);
	free(text);
	unlink(path);
	free(path);
	assert_int_equal(rmdir(dir), 0); /* no temporary files left */
}

/* The fast JSON reader gives jansson's tree, or jansson's error. */
static void json_reader_matches_jansson(void **state)
{
	(void)state;
	static const char *const texts[] = {
	    "{\"ID\":\"e-1\",\"Seq\":-42,\"CPU\":0.25,\"Big\":1e300,\"On\":true,\"Off\":false,\"None\":null}",
	    " [1, [2, [3, {}]], \"a\\\"b\\\\c\\/d\\n\\t\\u00e9\\u20ac\"] ",
	    "{\"a\":1,\"a\":2}",	       /* later key wins */
	    "{\"a\":01}",		       /* leading zero: error */
	    "{\"a\":1} x",		       /* trailing text: error */
	    "[9223372036854775808]",      /* too big: error */
	    "[1e999]",		       /* overflow: error */
	    "{\"s\":\"\\ud83d\\ude00\"}", /* surrogate pair: left to jansson */
	    "{\"k\":\"\\u0000\"}",	       /* NUL: error */
	    "{\"caf\xc3\xa9\":1}",	       /* UTF-8 key: left to jansson */
	    "\"scalar\"",		       /* needs JSON_DECODE_ANY */
	    "",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		json_error_t fe, je;
		json_t *fast = cod_json_loadb(texts[i], strlen(texts[i]), 0, &fe);
		json_t *ref = json_loadb(texts[i], strlen(texts[i]), 0, &je);
		assert_int_equal(!fast, !ref);
		if (fast) {
			char *a = json_dumps(fast, JSON_PRESERVE_ORDER), *b = json_dumps(ref, JSON_PRESERVE_ORDER);
			assert_string_equal(a, b);
			free(a);
			free(b);
		} else {
			assert_string_equal(fe.text, je.text);
			assert_int_equal(fe.position, je.position);
		}
		json_decref(fast);
		json_decref(ref);
	}
	/* What cod writes takes the one-pass path; the rest is jansson's. */
	static const char *const fast_ok[] = {texts[0], texts[1], texts[2], texts[10]};
	static const size_t fast_flags[] = {0, 0, 0, JSON_DECODE_ANY};
	for (size_t i = 0; i < 4; i++) {
		json_t *v = cod_json_read_fast(fast_ok[i], strlen(fast_ok[i]), fast_flags[i]);
		assert_non_null(v);
		json_decref(v);
	}
	for (size_t i = 3; i < 10; i++)
		assert_null(cod_json_read_fast(texts[i], strlen(texts[i]), 0));
	assert_null(cod_json_read_fast(texts[2], strlen(texts[2]), JSON_REJECT_DUPLICATES));
	json_error_t e;
	json_t *dup = cod_json_loadb("{\"a\":1,\"a\":2}", 13, JSON_REJECT_DUPLICATES, &e);
	assert_null(dup);
	assert_non_null(strstr(e.text, "duplicate"));
	json_t *any = cod_json_loads("  \"x\" ", JSON_DECODE_ANY, NULL);
	assert_string_equal(json_string_value(any), "x");
	json_decref(any);
	json_t *two = cod_json_loads("{\"a\":1,\"a\":2}", 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(two, "a")), 2);
	json_decref(two);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(buf_grows_and_caps), cmocka_unit_test(error_table_and_wrap),
		cmocka_unit_test(yaml_typing),        cmocka_unit_test(yaml_errors),
		cmocka_unit_test(yaml_round_trip),    cmocka_unit_test(case_insensitive_get),
		cmocka_unit_test(durations_and_ints), cmocka_unit_test(base64url),
		cmocka_unit_test(ids_and_strings),    cmocka_unit_test(arena),
		cmocka_unit_test(atomic_writes_from_threads), cmocka_unit_test(json_reader_matches_jansson),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
