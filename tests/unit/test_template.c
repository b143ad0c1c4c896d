/*
 * test_template.c - the job spec templating of `cod job run` (src/cli/
 * template.c): variables, environment variables behind -E, literals,
 * trim markers, specs without actions, and every error it promises.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/mem.h"
#include "model/model.h"
#include "common/banned.h"

static struct cod_strlist vars, envs;

static char *expand(const char *text, struct cod_error **err)
{
	struct cod_template t = {.vars = &vars, .env_patterns = &envs};
	char *out = NULL;
	size_t len = 0;
	if (cod_template_expand(&t, text, strlen(text), &out, &len, err) < 0)
		return NULL;
	assert_int_equal(len, strlen(out));
	return out;
}

static void reset(void)
{
	cod_strlist_release(&vars);
	cod_strlist_release(&envs);
}

static void test_vars(void **state)
{
	(void)state;
	cod_strlist_add(&vars, "image=busybox:1.37");
	cod_strlist_add(&vars, "n=3");
	cod_strlist_add(&vars, "n=4"); /* the last one wins */
	char *out = expand("Image: {{.image}}\nCount: {{ .n }}\n", NULL);
	assert_string_equal(out, "Image: busybox:1.37\nCount: 4\n");
	free(out);
	out = expand("x: {{- .n -}} \n", NULL);
	assert_string_equal(out, "x:4");
	free(out);
	out = expand("cmd: 'echo {{\"{{\"}}.Raw}}' {{`raw`}}", NULL);
	assert_string_equal(out, "cmd: 'echo {{.Raw}}' raw");
	free(out);
	out = expand("{{`a }} b`}} {{ \"}}\" }}", NULL);
	assert_string_equal(out, "a }} b }}");
	free(out);
	out = expand("no actions here: } {", NULL);
	assert_string_equal(out, "no actions here: } {");
	free(out);
	reset();
}

static void test_env(void **state)
{
	(void)state;
	setenv("COD_TPL_REGION", "eu-west-1", 1);
	setenv("COD_TPL_SECRET", "hunter2", 1);
	cod_strlist_add(&envs, "^COD_TPL_REG");
	char *out = expand("r={{.COD_TPL_REGION}} e={{.env.COD_TPL_REGION}}", NULL);
	assert_string_equal(out, "r=eu-west-1 e=eu-west-1");
	free(out);
	struct cod_error *err = NULL;
	assert_null(expand("{{.env.COD_TPL_SECRET}}", &err));
	assert_non_null(strstr(err->message, "not allowed"));
	assert_non_null(strstr(err->hint, "-E"));
	cod_error_free(err);
	err = NULL;
	assert_null(expand("{{.COD_TPL_SECRET}}", &err));
	assert_non_null(strstr(err->message, "has no value"));
	cod_error_free(err);
	unsetenv("COD_TPL_REGION");
	unsetenv("COD_TPL_SECRET");
	reset();
}

static void test_errors(void **state)
{
	(void)state;
	struct cod_error *err = NULL;
	assert_null(expand("a: {{.missing}}", &err));
	assert_string_equal(err->message, "template: {{.missing}} has no value");
	assert_non_null(strstr(err->hint, "-V missing=VALUE"));
	cod_error_free(err);
	err = NULL;
	assert_null(expand("a: {{ if .x }}y{{ end }}", &err));
	assert_string_equal(err->message, "template: {{if .x}} is not supported");
	cod_error_free(err);
	err = NULL;
	assert_null(expand("a\nb: {{.x", &err));
	assert_string_equal(err->message, "template: \"{{\" on line 2 is never closed");
	cod_error_free(err);
	err = NULL;
	cod_strlist_add(&vars, "bad name=1");
	assert_null(expand("{{.x}}", &err));
	assert_int_equal(err->code, COD_E_USAGE);
	cod_error_free(err);
	err = NULL;
	reset();
	cod_strlist_add(&envs, "([");
	assert_null(expand("{{.x}}", &err));
	assert_int_equal(err->code, COD_E_USAGE);
	cod_error_free(err);
	reset();
	/* disabled: sent as written */
	struct cod_template t = {.disabled = true};
	char *out = NULL;
	size_t len;
	assert_int_equal(cod_template_expand(&t, "{{.x}}", 6, &out, &len, NULL), 0);
	assert_string_equal(out, "{{.x}}");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vars),
	    cmocka_unit_test(test_env),
	    cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
