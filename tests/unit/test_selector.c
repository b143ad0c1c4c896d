/*
 * test_selector.c - k8s label selectors: grammar, errors, matching,
 * formatting, operator names and requirement checks.
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

static struct cod_kvlist labels_of(const char *const *kv)
{
	struct cod_kvlist l = {0};
	for (size_t i = 0; kv[i]; i += 2)
		cod_kvlist_set(&l, kv[i], kv[i + 1]);
	return l;
}

static void parse_ok(const char *text, struct cod_selector *sel)
{
	struct cod_error *err = NULL;
	int rc = cod_selector_parse(text, sel, &err);
	if (rc < 0)
		print_message("parse \"%s\": %s\n", text, err->message);
	assert_int_equal(rc, 0);
	assert_null(err);
}

static void test_parse_every_operator(void **state)
{
	(void)state;
	struct cod_selector sel;
	parse_ok("a=1, b==2 ,c!=3,d in (x, y),e notin (z),f,!g,h>3,i<9", &sel);
	assert_int_equal(sel.n, 9);
	static const enum cod_selector_op ops[] = {COD_SEL_EQ,    COD_SEL_DEQ,    COD_SEL_NE,
						   COD_SEL_IN,    COD_SEL_NOTIN,  COD_SEL_EXISTS,
						   COD_SEL_NOT_EXISTS, COD_SEL_GT, COD_SEL_LT};
	static const char *const keys[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
	static const size_t nvalues[] = {1, 1, 1, 2, 1, 0, 0, 1, 1};
	for (size_t i = 0; i < 9; i++) {
		assert_string_equal(sel.reqs[i].key, keys[i]);
		assert_int_equal(sel.reqs[i].op, ops[i]);
		assert_int_equal(sel.reqs[i].values.n, nvalues[i]);
	}
	assert_string_equal(sel.reqs[3].values.items[1], "y");
	assert_string_equal(sel.reqs[7].values.items[0], "3");
	char *s = cod_selector_format(&sel);
	assert_string_equal(s, "a=1,b==2,c!=3,d in (x,y),e notin (z),f,!g,h>3,i<9");

	/* The formatted text parses back to the same selector. */
	struct cod_selector again;
	parse_ok(s, &again);
	char *s2 = cod_selector_format(&again);
	assert_string_equal(s, s2);
	free(s);
	free(s2);
	cod_selector_release(&sel);
	cod_selector_release(&again);
}

static void test_parse_whitespace_and_edge_forms(void **state)
{
	(void)state;
	struct cod_selector sel;
	parse_ok("", &sel);
	assert_int_equal(sel.n, 0);
	cod_selector_release(&sel);
	parse_ok("   \t ", &sel);
	assert_int_equal(sel.n, 0);
	cod_selector_release(&sel);
	parse_ok(NULL, &sel);
	assert_int_equal(sel.n, 0);

	parse_ok("  zone   in(  us-east-1 ,eu.west_2 )  ,  ! legacy ", &sel);
	assert_int_equal(sel.n, 2);
	assert_string_equal(sel.reqs[0].values.items[1], "eu.west_2");
	assert_int_equal(sel.reqs[1].op, COD_SEL_NOT_EXISTS);
	assert_string_equal(sel.reqs[1].key, "legacy");
	cod_selector_release(&sel);

	/* Prefixed keys, an empty value, "in" as a value. */
	parse_ok("example.com/gpu=nvidia,tier=,mode in (in,notin)", &sel);
	assert_string_equal(sel.reqs[0].key, "example.com/gpu");
	assert_string_equal(sel.reqs[1].values.items[0], "");
	assert_string_equal(sel.reqs[2].values.items[0], "in");
	cod_selector_release(&sel);

	/* 63 characters is the longest name. */
	char key[80];
	memset(key, 'k', 63);
	key[63] = '\0';
	char *text = xasprintf("%s=v", key);
	parse_ok(text, &sel);
	cod_selector_release(&sel);
	free(text);
}

static const struct {
	const char *text;
	const char *want; /* in the message */
} bad_selectors[] = {
	{"a in x", "requirement 1 (\"a in x\"): expected \"(\" after \"in\", got a word at position 6"},
	{"a=1,b in ()", "requirement 2 (\"b in ()\"): operator \"in\" needs at least one value"},
	{"a notin (x", "expected \",\" or \")\" in value list, got end of input"},
	{"a=1,", "expected a requirement after \",\""},
	{",a", "requirement 1"},
	{"a b", "expected an operator"},
	{"a>x", "operator \"gt\" needs an integer value, got \"x\""},
	{"a<", "expected a value after \"lt\""},
	{"a=b=c", "expected \",\" or the end"},
	{"!", "expected a key after \"!\""},
	{"!a=b", "expected \",\" or the end after \"!a\""},
	{"a=(x)", "expected a value after \"=\""},
	{"-bad=1", "must start and end with a letter or digit"},
	{"a=b$", "may only contain letters"},
	{"UPPER.com/x=1", "prefix must be a lowercase DNS name"},
	{"/x=1", "prefix before '/' must not be empty"},
	{"a/=1", "name after '/' must not be empty"},
	{"a in (x,y$)", "value \"y$\": may only contain"},
	{"x=0123456789012345678901234567890123456789012345678901234567890123", "at most 63 characters"},
};

static void test_parse_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < COD_ARRAY_SIZE(bad_selectors); i++) {
		struct cod_selector sel;
		struct cod_error *err = NULL;
		int rc = cod_selector_parse(bad_selectors[i].text, &sel, &err);
		if (rc == 0)
			print_message("\"%s\" parsed\n", bad_selectors[i].text);
		assert_int_equal(rc, -1);
		assert_non_null(err);
		if (!strstr(err->message, bad_selectors[i].want))
			print_message("\"%s\": got \"%s\"\n", bad_selectors[i].text, err->message);
		assert_non_null(strstr(err->message, bad_selectors[i].want));
		assert_non_null(strstr(err->message, "invalid selector"));
		assert_non_null(err->hint);
		assert_int_equal(sel.n, 0);
		assert_null(sel.reqs);
		cod_error_free(err);
	}
	/* Without an error pointer it still fails cleanly. */
	struct cod_selector sel;
	assert_int_equal(cod_selector_parse("a in", &sel, NULL), -1);
}

static bool match(const char *selector, const char *const *kv)
{
	struct cod_selector sel;
	parse_ok(selector, &sel);
	struct cod_kvlist l = labels_of(kv);
	bool m = cod_selector_match(&sel, &l);
	cod_kvlist_release(&l);
	cod_selector_release(&sel);
	return m;
}

static void test_match(void **state)
{
	(void)state;
	static const char *const node[] = {"zone", "a", "gpu", "nvidia", "cores", "8", "name", "n1", NULL};
	static const char *const none[] = {NULL};
	static const struct {
		const char *sel;
		bool on_node, on_empty;
	} rows[] = {
		{"zone=a", true, false},
		{"zone==a", true, false},
		{"zone=b", false, false},
		{"zone!=b", true, true}, /* != matches an absent key */
		{"zone!=a", false, true},
		{"zone in (a,b)", true, false},
		{"zone in (b,c)", false, false},
		{"zone notin (b)", true, true}, /* notin matches an absent key */
		{"zone notin (a)", false, true},
		{"gpu", true, false},
		{"!gpu", false, true},
		{"missing", false, false},
		{"!missing", true, true},
		{"cores>4", true, false},
		{"cores>8", false, false},
		{"cores<9", true, false},
		{"name>1", false, false}, /* not an integer label */
		{"zone=a,gpu,cores>2", true, false},
		{"zone=a,gpu=amd", false, false},
		{"", true, true},
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(rows); i++) {
		bool a = match(rows[i].sel, node), b = match(rows[i].sel, none);
		if (a != rows[i].on_node || b != rows[i].on_empty)
			print_message("\"%s\": node %d empty %d\n", rows[i].sel, a, b);
		assert_int_equal(a, rows[i].on_node);
		assert_int_equal(b, rows[i].on_empty);
	}
	/* NULL labels are no labels. */
	struct cod_selector sel;
	parse_ok("!x,y!=1", &sel);
	assert_true(cod_selector_match(&sel, NULL));
	assert_true(cod_selector_req_match(&sel.reqs[0], NULL));
	cod_selector_release(&sel);
	assert_true(cod_selector_match(NULL, NULL));
}

static void test_op_names(void **state)
{
	(void)state;
	static const char *const names[] = {"=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt"};
	for (int i = 0; i < 9; i++) {
		assert_string_equal(cod_selector_op_name((enum cod_selector_op)i), names[i]);
		assert_int_equal(cod_selector_op_parse(names[i]), i);
	}
	assert_int_equal(cod_selector_op_parse("NotIn"), COD_SEL_NOTIN);
	assert_int_equal(cod_selector_op_parse("Exists"), COD_SEL_EXISTS);
	assert_int_equal(cod_selector_op_parse("DoesNotExist"), COD_SEL_NOT_EXISTS);
	assert_int_equal(cod_selector_op_parse("Gt"), COD_SEL_GT);
	assert_int_equal(cod_selector_op_parse("like"), -1);
	assert_int_equal(cod_selector_op_parse(NULL), -1);
}

static void test_req_check(void **state)
{
	(void)state;
	struct cod_selector_req r = {0};
	char *msg = NULL;
	char key[] = "zone";
	r.key = key;
	r.op = COD_SEL_IN;
	assert_int_equal(cod_selector_req_check(&r, &msg), -1);
	assert_non_null(strstr(msg, "at least one value"));
	free(msg);
	cod_strlist_add(&r.values, "a");
	assert_int_equal(cod_selector_req_check(&r, &msg), 0);
	assert_null(msg);
	r.op = COD_SEL_EXISTS;
	assert_int_equal(cod_selector_req_check(&r, &msg), -1);
	assert_non_null(strstr(msg, "takes no values"));
	free(msg);
	r.op = COD_SEL_GT;
	assert_int_equal(cod_selector_req_check(&r, &msg), -1);
	assert_non_null(strstr(msg, "integer"));
	free(msg);
	free(r.values.items[0]);
	r.values.items[0] = xstrdup("-5");
	assert_int_equal(cod_selector_req_check(&r, &msg), 0);
	cod_strlist_add(&r.values, "6");
	assert_int_equal(cod_selector_req_check(&r, &msg), -1);
	assert_non_null(strstr(msg, "exactly one value, got 2"));
	free(msg);
	r.op = (enum cod_selector_op)42;
	assert_int_equal(cod_selector_req_check(&r, &msg), -1);
	free(msg);
	cod_strlist_release(&r.values);
}

static void test_copy(void **state)
{
	(void)state;
	struct cod_selector a, b = {0};
	parse_ok("a=1,b in (x,y)", &a);
	cod_selector_copy(&b, &a);
	cod_selector_copy(&b, &a);
	assert_int_equal(b.n, 4);
	assert_ptr_not_equal(a.reqs[1].values.items, b.reqs[1].values.items);
	char *s = cod_selector_format(&b);
	assert_string_equal(s, "a=1,b in (x,y),a=1,b in (x,y)");
	free(s);
	cod_selector_release(&a);
	cod_selector_release(&b);
	cod_selector_release(NULL);
}

/* Constraints in a job spec use the JSON form of the same requirements. */
static void test_job_constraints(void **state)
{
	(void)state;
	const char *text = "{\"Type\":\"batch\",\"Constraints\":[{\"Key\":\"zone\",\"Operator\":\"in\","
			   "\"Values\":[\"a\",\"b\"]},{\"Key\":\"gpu\",\"Operator\":\"exists\"},"
			   "{\"Key\":\"cores\",\"Operator\":\"gt\",\"Values\":[\"4\"]}],"
			   "\"Tasks\":[{\"Name\":\"m\",\"Engine\":{\"Type\":\"noop\"}}]}";
	struct cod_job *job = cod_job_parse(text, strlen(text), NULL);
	assert_non_null(job);
	assert_int_equal(job->constraints.n, 3);
	char *s = cod_selector_format(&job->constraints);
	assert_string_equal(s, "zone in (a,b),gpu,cores>4");
	free(s);
	json_t *j = cod_job_to_json(job);
	json_t *c = json_array_get(json_object_get(j, "Constraints"), 2);
	assert_string_equal(json_string_value(json_object_get(c, "Operator")), "gt");
	c = json_array_get(json_object_get(j, "Constraints"), 1);
	assert_null(json_object_get(c, "Values"));
	json_decref(j);

	static const char *const node[] = {"zone", "b", "gpu", "1", "cores", "16", NULL};
	struct cod_kvlist l = labels_of(node);
	assert_true(cod_selector_match(&job->constraints, &l));
	cod_kvlist_set(&l, "cores", "2");
	assert_false(cod_selector_match(&job->constraints, &l));
	cod_kvlist_release(&l);
	cod_job_free(job);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_every_operator),
		cmocka_unit_test(test_parse_whitespace_and_edge_forms),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_op_names),
		cmocka_unit_test(test_req_check),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_job_constraints),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
