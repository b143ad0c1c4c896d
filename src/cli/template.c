/*
 * template.c - the small subset of Go's text/template that `cod job run`
 * applies to a job spec before parsing it (Bacalhau's -V/-E/--no-template):
 *
 *   {{.name}}  {{ .name }}    the value of -V name=value, or of the
 *                             environment variable `name` when its name
 *                             matches one of the -E regexes
 *   {{.env.NAME}}             the environment variable NAME (it must match
 *                             an -E regex too: nothing leaks by accident)
 *   {{"text"}}  {{`text`}}    the text itself (how to write a literal "{{")
 *   {{- ... -}}               trim white space before / after the action
 *
 * Anything else between {{ and }} (pipelines, functions, if, range) is an
 * error naming it, as is a name without a value: a spec never goes out
 * with "<no value>" in it. A spec without "{{" is left alone.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "common/banned.h"

static bool name_char(char c, bool first)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
	       (!first && c >= '0' && c <= '9');
}

/* The value of an environment variable allowed by the -E patterns. */
static const char *env_value(const regex_t *res, size_t nres, const char *name)
{
	const char *v = getenv(name);
	if (!v)
		return NULL;
	for (size_t i = 0; i < nres; i++)
		if (regexec(&res[i], name, 0, NULL, 0) == 0)
			return v;
	return NULL;
}

static const char *var_value(const struct cod_template *t, const char *name)
{
	const char *found = NULL;
	size_t n = strlen(name);
	for (size_t i = 0; t->vars && i < t->vars->n; i++) {
		const char *kv = t->vars->items[i];
		if (!strncmp(kv, name, n) && kv[n] == '=')
			found = kv + n + 1; /* the last one given wins */
	}
	return found;
}

/* One action's inside (trimmed of "-" markers and blanks): its value. */
static int action(const struct cod_template *t, const regex_t *res, size_t nres, const char *in, size_t len,
		  struct cod_buf *out, struct cod_error **err)
{
	cleanup_free char *text = xstrndup(in, len);
	if ((text[0] == '"' || text[0] == '`') && len >= 2 && text[len - 1] == text[0]) {
		if (text[0] == '"' && memchr(text + 1, '\\', len - 2))
			return cod_error_set(
			    err, COD_E_VALIDATION,
			    "template: escapes in {{%s}} are not supported; use a `raw string`", text);
		cod_buf_add(out, text + 1, len - 2);
		return 0;
	}
	const char *p = text;
	bool env = false;
	if (*p != '.')
		goto unsupported;
	p++;
	if (!strncmp(p, "env.", 4)) {
		env = true;
		p += 4;
	}
	if (!name_char(*p, true))
		goto unsupported;
	for (const char *q = p; *q; q++)
		if (!name_char(*q, false))
			goto unsupported;
	const char *v = env ? env_value(res, nres, p) : var_value(t, p);
	if (!v && !env)
		v = env_value(res, nres, p);
	if (!v) {
		if (env && getenv(p))
			cod_error_set(
			    err, COD_E_VALIDATION,
			    "template: {{%s}}: the environment variable %s is not allowed in templates", text,
			    p);
		else
			cod_error_set(err, COD_E_VALIDATION, "template: {{%s}} has no value", text);
		if (err)
			cod_error_hint(*err,
				       env ? "allow it with -E '^%s$'"
					   : "give it with -V %s=VALUE (or -E to use environment variables); "
					     "--no-template sends the spec as written",
				       p);
		return -1;
	}
	cod_buf_addstr(out, v);
	return 0;
unsupported:
	cod_error_set(err, COD_E_VALIDATION, "template: {{%s}} is not supported", text);
	if (err)
		cod_error_hint(*err,
			       "cod fills in {{.name}}, {{.env.NAME}} and {{\"text\"}} only; --no-template "
			       "sends the spec as written");
	return -1;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int cod_template_expand(const struct cod_template *t, const char *text, size_t len, char **out,
			size_t *out_len, struct cod_error **err)
{
	*out = NULL;
	if (t->disabled || !memmem(text, len, "{{", 2)) {
		*out = xstrndup(text, len);
		*out_len = len;
		return 0;
	}
	for (size_t i = 0; t->vars && i < t->vars->n; i++) {
		const char *kv = t->vars->items[i];
		const char *eq = strchr(kv, '=');
		bool ok = eq && eq > kv && name_char(kv[0], true);
		for (const char *q = kv; ok && q < eq; q++)
			ok = name_char(*q, false);
		if (!ok) {
			cod_error_set(err, COD_E_USAGE, "flag --template-vars: \"%s\" is not NAME=VALUE", kv);
			return -1;
		}
	}
	size_t nres = t->env_patterns ? t->env_patterns->n : 0;
	regex_t *res = xcalloc(nres + 1, sizeof(*res));
	size_t ncompiled = 0;
	int rc = 0;
	for (; ncompiled < nres; ncompiled++) {
		if (regcomp(&res[ncompiled], t->env_patterns->items[ncompiled], REG_EXTENDED | REG_NOSUB) !=
		    0) {
			rc = cod_error_set(err, COD_E_USAGE,
					   "flag --template-envs: \"%s\" is not a regular expression",
					   t->env_patterns->items[ncompiled]);
			break;
		}
	}
	struct cod_buf b = COD_BUF_INIT;
	cod_buf_addstr(&b, "");
	const char *p = text, *end = text + len;
	while (rc == 0 && p < end) {
		const char *open = memmem(p, (size_t)(end - p), "{{", 2);
		if (!open) {
			cod_buf_add(&b, p, (size_t)(end - p));
			break;
		}
		const char *in = open + 2;
		bool trim_left = in < end && *in == '-' && in + 1 < end && blank(in[1]);
		cod_buf_add(&b, p, (size_t)(open - p));
		if (trim_left) {
			while (b.len && blank(b.buf[b.len - 1]))
				b.len--;
			b.buf[b.len] = '\0';
			in++;
		}
		/* the first "}}" outside a quoted string closes the action */
		const char *close = NULL;
		for (const char *q = in; q + 1 < end && !close; q++) {
			if (*q == '"' || *q == '`') {
				const char *mate = memchr(q + 1, *q, (size_t)(end - q - 1));
				if (!mate)
					break;
				q = mate;
			} else if (q[0] == '}' && q[1] == '}') {
				close = q;
			}
		}
		if (!close) {
			size_t line = 1;
			for (const char *q = text; q < open; q++)
				line += *q == '\n';
			rc = cod_error_set(err, COD_E_VALIDATION,
					   "template: \"{{\" on line %zu is never closed", line);
			break;
		}
		const char *in_end = close;
		bool trim_right = in_end - in >= 2 && in_end[-1] == '-' && blank(in_end[-2]);
		if (trim_right)
			in_end--;
		while (in < in_end && blank(*in))
			in++;
		while (in_end > in && blank(in_end[-1]))
			in_end--;
		rc = action(t, res, nres, in, (size_t)(in_end - in), &b, err);
		p = close + 2;
		if (trim_right)
			while (p < end && blank(*p))
				p++;
	}
	for (size_t i = 0; i < ncompiled; i++)
		regfree(&res[i]);
	free(res);
	if (rc < 0) {
		cod_buf_release(&b);
		return -1;
	}
	*out = cod_buf_detach(&b, out_len);
	return 0;
}
