/*
 * Label selectors with the k8s string grammar:
 *
 *   selector    = [ requirement { "," requirement } ]
 *   requirement = "!" key | key [ ("=" | "==" | "!=") value
 *                 | (">" | "<") integer | ("in" | "notin") "(" values ")" ]
 *   values      = [ value { "," value } ]
 *
 * Keys are an optional DNS-subdomain prefix and "/" and a name of at most
 * 63 characters [A-Za-z0-9._-] starting and ending alphanumeric; values are
 * empty or like a name. Whitespace between tokens is ignored.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "common/banned.h"

#define NAME_MAX_LEN 63
#define PREFIX_MAX_LEN 253

/* ------------------------------------------------------------ checks */

static bool name_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

/* NULL when valid, else a static description of what is wrong. */
static const char *check_name(const char *s, size_t len, const char *what_empty)
{
	if (!len)
		return what_empty;
	if (len > NAME_MAX_LEN)
		return "must be at most 63 characters";
	for (size_t i = 0; i < len; i++)
		if (!name_char(s[i]))
			return "may only contain letters, digits, '-', '_' and '.'";
	if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[len - 1]))
		return "must start and end with a letter or digit";
	return NULL;
}

static const char *check_key(const char *key)
{
	const char *slash = strchr(key, '/');
	if (!slash)
		return check_name(key, strlen(key), "must not be empty");
	size_t plen = (size_t)(slash - key);
	if (!plen)
		return "prefix before '/' must not be empty";
	if (plen > PREFIX_MAX_LEN)
		return "prefix must be at most 253 characters";
	for (size_t i = 0; i < plen; i++) {
		char c = key[i];
		if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '-' || c == '.'))
			return "prefix must be a lowercase DNS name";
	}
	if (!isalnum((unsigned char)key[0]) || !isalnum((unsigned char)key[plen - 1]))
		return "prefix must start and end with a letter or digit";
	return check_name(slash + 1, strlen(slash + 1), "name after '/' must not be empty");
}

static const char *check_value(const char *v)
{
	size_t len = strlen(v);
	if (!len)
		return NULL;
	return check_name(v, len, NULL);
}

int cod_selector_req_check(const struct cod_selector_req *r, char **msg)
{
	const char *why;
	*msg = NULL;
	if (cod_str_empty(r->key)) {
		*msg = xstrdup("key must not be empty");
		return -1;
	}
	if ((why = check_key(r->key))) {
		*msg = xasprintf("key \"%s\": %s", r->key, why);
		return -1;
	}
	const char *op = cod_selector_op_name(r->op);
	switch (r->op) {
	case COD_SEL_IN:
	case COD_SEL_NOTIN:
		if (!r->values.n) {
			*msg = xasprintf("operator \"%s\" needs at least one value", op);
			return -1;
		}
		break;
	case COD_SEL_EXISTS:
	case COD_SEL_NOT_EXISTS:
		if (r->values.n) {
			*msg = xasprintf("operator \"%s\" takes no values, got %zu", op, r->values.n);
			return -1;
		}
		break;
	case COD_SEL_EQ:
	case COD_SEL_DEQ:
	case COD_SEL_NE:
	case COD_SEL_GT:
	case COD_SEL_LT:
		if (r->values.n != 1) {
			*msg = xasprintf("operator \"%s\" needs exactly one value, got %zu", op, r->values.n);
			return -1;
		}
		break;
	default:
		*msg = xasprintf("unknown operator %d", (int)r->op);
		return -1;
	}
	for (size_t i = 0; i < r->values.n; i++) {
		const char *v = r->values.items[i];
		if (r->op == COD_SEL_GT || r->op == COD_SEL_LT) {
			int64_t x;
			if (cod_parse_i64(v, &x) < 0) {
				*msg = xasprintf("operator \"%s\" needs an integer value, got \"%s\"", op, v);
				return -1;
			}
		} else if ((why = check_value(v))) {
			*msg = xasprintf("value \"%s\": %s", v, why);
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------- lexer */

enum tok {
	T_END,
	T_IDENT,
	T_COMMA,
	T_EQ,
	T_DEQ,
	T_NE,
	T_NOT,
	T_GT,
	T_LT,
	T_LPAREN,
	T_RPAREN,
	T_IN,
	T_NOTIN,
};

struct lexer {
	const char *text;
	size_t pos;      /* next unread byte */
	size_t tok_pos;  /* where the current token starts */
	enum tok tok;
	char *ident;     /* current identifier (heap) */
};

static bool special(char c)
{
	return !c || isspace((unsigned char)c) || strchr(",=!()<>", c);
}

static void lex(struct lexer *l)
{
	const char *s = l->text;
	free(l->ident);
	l->ident = NULL;
	while (isspace((unsigned char)s[l->pos]))
		l->pos++;
	l->tok_pos = l->pos;
	char c = s[l->pos];
	switch (c) {
	case '\0':
		l->tok = T_END;
		return;
	case ',':
		l->tok = T_COMMA;
		l->pos++;
		return;
	case '(':
		l->tok = T_LPAREN;
		l->pos++;
		return;
	case ')':
		l->tok = T_RPAREN;
		l->pos++;
		return;
	case '>':
		l->tok = T_GT;
		l->pos++;
		return;
	case '<':
		l->tok = T_LT;
		l->pos++;
		return;
	case '=':
		l->pos++;
		if (s[l->pos] == '=') {
			l->pos++;
			l->tok = T_DEQ;
		} else {
			l->tok = T_EQ;
		}
		return;
	case '!':
		l->pos++;
		if (s[l->pos] == '=') {
			l->pos++;
			l->tok = T_NE;
		} else {
			l->tok = T_NOT;
		}
		return;
	default:
		break;
	}
	size_t start = l->pos;
	while (!special(s[l->pos]))
		l->pos++;
	l->ident = xstrndup(s + start, l->pos - start);
	if (!strcmp(l->ident, "in"))
		l->tok = T_IN;
	else if (!strcmp(l->ident, "notin"))
		l->tok = T_NOTIN;
	else
		l->tok = T_IDENT;
}

static const char *tok_desc(const struct lexer *l)
{
	switch (l->tok) {
	case T_END:
		return "end of input";
	case T_COMMA:
		return "\",\"";
	case T_EQ:
		return "\"=\"";
	case T_DEQ:
		return "\"==\"";
	case T_NE:
		return "\"!=\"";
	case T_NOT:
		return "\"!\"";
	case T_GT:
		return "\">\"";
	case T_LT:
		return "\"<\"";
	case T_LPAREN:
		return "\"(\"";
	case T_RPAREN:
		return "\")\"";
	case T_IN:
		return "\"in\"";
	case T_NOTIN:
		return "\"notin\"";
	case T_IDENT:
	default:
		return "a word";
	}
}

/* ------------------------------------------------------------ parser */

struct parser {
	struct lexer lx;
	size_t nreq;      /* 1-based number of the requirement being parsed */
	size_t req_start; /* its offset in the text */
	struct cod_error **err;
};

static int fail(struct parser *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct parser *p, size_t pos, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	/* The requirement's text up to the next top-level comma, for context. */
	const char *s = p->lx.text + p->req_start;
	size_t n = 0;
	int depth = 0;
	while (s[n] && !(s[n] == ',' && depth == 0)) {
		if (s[n] == '(')
			depth++;
		else if (s[n] == ')' && depth)
			depth--;
		n++;
	}
	char *req = cod_str_trim(xstrndup(s, n));
	cod_error_set(p->err, COD_E_BAD_REQUEST,
		      "invalid selector \"%s\": requirement %zu (\"%s\"): %s at position %zu", p->lx.text,
		      p->nreq, req, msg, pos + 1);
	if (p->err && *p->err)
		cod_error_hint(*p->err, "use e.g. key=value, key!=value, key in (a,b), key notin (a), "
					"key, !key, key>1 or key<9, separated by commas");
	free(req);
	free(msg);
	return -1;
}

static bool value_token(enum tok t)
{
	/* "in" and "notin" are words too when they stand where a value goes. */
	return t == T_IDENT || t == T_IN || t == T_NOTIN;
}

static int parse_values(struct parser *p, struct cod_selector_req *r)
{
	struct lexer *l = &p->lx;
	if (l->tok != T_LPAREN)
		return fail(p, l->tok_pos, "expected \"(\" after \"%s\", got %s",
			    cod_selector_op_name(r->op), tok_desc(l));
	lex(l);
	if (l->tok == T_RPAREN) {
		lex(l);
		return 0; /* the value-count check reports it */
	}
	for (;;) {
		if (value_token(l->tok)) {
			cod_strlist_add(&r->values, l->ident);
			lex(l);
		} else if (l->tok == T_COMMA || l->tok == T_RPAREN) {
			cod_strlist_add(&r->values, ""); /* "in (a,,b)" has an empty value */
		} else {
			return fail(p, l->tok_pos, "expected a value, got %s", tok_desc(l));
		}
		if (l->tok == T_RPAREN) {
			lex(l);
			return 0;
		}
		if (l->tok != T_COMMA)
			return fail(p, l->tok_pos, "expected \",\" or \")\" in value list, got %s", tok_desc(l));
		lex(l);
	}
}

static int parse_requirement(struct parser *p, struct cod_selector_req *r)
{
	struct lexer *l = &p->lx;
	size_t key_pos;
	if (l->tok == T_NOT) {
		lex(l);
		if (!value_token(l->tok))
			return fail(p, l->tok_pos, "expected a key after \"!\", got %s", tok_desc(l));
		key_pos = l->tok_pos;
		r->key = steal_pointer(&l->ident);
		r->op = COD_SEL_NOT_EXISTS;
		lex(l);
		if (l->tok != T_END && l->tok != T_COMMA)
			return fail(p, l->tok_pos, "expected \",\" or the end after \"!%s\", got %s", r->key,
				    tok_desc(l));
	} else {
		if (!value_token(l->tok))
			return fail(p, l->tok_pos, "expected a key, got %s", tok_desc(l));
		key_pos = l->tok_pos;
		r->key = steal_pointer(&l->ident);
		lex(l);
		switch (l->tok) {
		case T_END:
		case T_COMMA:
			r->op = COD_SEL_EXISTS;
			break;
		case T_EQ:
		case T_DEQ:
		case T_NE:
		case T_GT:
		case T_LT:
			r->op = l->tok == T_EQ	  ? COD_SEL_EQ
				: l->tok == T_DEQ ? COD_SEL_DEQ
				: l->tok == T_NE  ? COD_SEL_NE
				: l->tok == T_GT  ? COD_SEL_GT
						  : COD_SEL_LT;
			lex(l);
			if (value_token(l->tok)) {
				cod_strlist_add(&r->values, l->ident);
				lex(l);
			} else if ((l->tok == T_END || l->tok == T_COMMA) && r->op != COD_SEL_GT &&
				   r->op != COD_SEL_LT) {
				cod_strlist_add(&r->values, ""); /* "key=" matches an empty value */
			} else {
				return fail(p, l->tok_pos, "expected a value after \"%s\", got %s",
					    cod_selector_op_name(r->op), tok_desc(l));
			}
			break;
		case T_IN:
		case T_NOTIN:
			r->op = l->tok == T_IN ? COD_SEL_IN : COD_SEL_NOTIN;
			lex(l);
			if (parse_values(p, r) < 0)
				return -1;
			break;
		default:
			return fail(p, l->tok_pos, "expected an operator (=, ==, !=, in, notin, >, <) after key \"%s\", got %s",
				    r->key, tok_desc(l));
		}
		if (l->tok != T_END && l->tok != T_COMMA)
			return fail(p, l->tok_pos, "expected \",\" or the end, got %s", tok_desc(l));
	}
	char *why = NULL;
	if (cod_selector_req_check(r, &why) < 0) {
		fail(p, key_pos, "%s", why);
		free(why);
		return -1;
	}
	return 0;
}

int cod_selector_parse(const char *text, struct cod_selector *out, struct cod_error **err)
{
	memset(out, 0, sizeof(*out));
	if (!text)
		return 0;
	struct parser p = {.lx = {.text = text}, .err = err};
	size_t alloc = 0;
	lex(&p.lx);
	if (p.lx.tok == T_END)
		return 0; /* the empty selector matches everything */
	for (;;) {
		p.nreq++;
		p.req_start = p.lx.tok_pos;
		COD_GROW(out->reqs, alloc, out->n + 1);
		struct cod_selector_req *r = &out->reqs[out->n++];
		memset(r, 0, sizeof(*r));
		if (parse_requirement(&p, r) < 0)
			goto fail;
		if (p.lx.tok == T_END)
			break;
		lex(&p.lx); /* the comma */
		if (p.lx.tok == T_END) {
			fail(&p, p.lx.tok_pos, "expected a requirement after \",\"");
			goto fail;
		}
	}
	free(p.lx.ident);
	return 0;
fail:
	free(p.lx.ident);
	cod_selector_release(out);
	return -1;
}

/* ------------------------------------------------------------- match */

static bool has_value(const struct cod_selector_req *r, const char *v)
{
	for (size_t i = 0; i < r->values.n; i++)
		if (!strcmp(r->values.items[i], v))
			return true;
	return false;
}

bool cod_selector_req_match(const struct cod_selector_req *r, const struct cod_kvlist *labels)
{
	const char *v = labels ? cod_kvlist_get(labels, r->key) : NULL;
	int64_t have, want;
	switch (r->op) {
	case COD_SEL_EQ:
	case COD_SEL_DEQ:
	case COD_SEL_IN:
		return v && has_value(r, v);
	case COD_SEL_NE:
	case COD_SEL_NOTIN:
		return !v || !has_value(r, v);
	case COD_SEL_EXISTS:
		return v != NULL;
	case COD_SEL_NOT_EXISTS:
		return v == NULL;
	case COD_SEL_GT:
	case COD_SEL_LT:
		if (!v || r->values.n != 1 || cod_parse_i64(v, &have) < 0 ||
		    cod_parse_i64(r->values.items[0], &want) < 0)
			return false;
		return r->op == COD_SEL_GT ? have > want : have < want;
	}
	return false;
}

bool cod_selector_match(const struct cod_selector *sel, const struct cod_kvlist *labels)
{
	for (size_t i = 0; sel && i < sel->n; i++)
		if (!cod_selector_req_match(&sel->reqs[i], labels))
			return false;
	return true;
}

/* ------------------------------------------------------------ format */

char *cod_selector_format(const struct cod_selector *sel)
{
	struct cod_buf b = COD_BUF_INIT;
	cod_buf_addstr(&b, "");
	for (size_t i = 0; sel && i < sel->n; i++) {
		const struct cod_selector_req *r = &sel->reqs[i];
		const char *v0 = r->values.n ? r->values.items[0] : "";
		if (i)
			cod_buf_addch(&b, ',');
		switch (r->op) {
		case COD_SEL_EQ:
			cod_buf_addf(&b, "%s=%s", r->key, v0);
			break;
		case COD_SEL_DEQ:
			cod_buf_addf(&b, "%s==%s", r->key, v0);
			break;
		case COD_SEL_NE:
			cod_buf_addf(&b, "%s!=%s", r->key, v0);
			break;
		case COD_SEL_GT:
			cod_buf_addf(&b, "%s>%s", r->key, v0);
			break;
		case COD_SEL_LT:
			cod_buf_addf(&b, "%s<%s", r->key, v0);
			break;
		case COD_SEL_EXISTS:
			cod_buf_addstr(&b, r->key);
			break;
		case COD_SEL_NOT_EXISTS:
			cod_buf_addf(&b, "!%s", r->key);
			break;
		case COD_SEL_IN:
		case COD_SEL_NOTIN:
			cod_buf_addf(&b, "%s %s (", r->key, r->op == COD_SEL_IN ? "in" : "notin");
			for (size_t j = 0; j < r->values.n; j++)
				cod_buf_addf(&b, "%s%s", j ? "," : "", r->values.items[j]);
			cod_buf_addch(&b, ')');
			break;
		}
	}
	return cod_buf_detach(&b, NULL);
}

void cod_selector_release(struct cod_selector *sel)
{
	if (!sel)
		return;
	for (size_t i = 0; i < sel->n; i++) {
		free(sel->reqs[i].key);
		cod_strlist_release(&sel->reqs[i].values);
	}
	free(sel->reqs);
	sel->reqs = NULL;
	sel->n = 0;
}

void cod_selector_copy(struct cod_selector *dst, const struct cod_selector *src)
{
	if (dst == src)
		return;
	size_t base = dst->n;
	dst->reqs = xrealloc(dst->reqs, cod_mul_size(base + src->n, sizeof(*dst->reqs)));
	for (size_t i = 0; i < src->n; i++) {
		struct cod_selector_req *r = &dst->reqs[base + i];
		memset(r, 0, sizeof(*r));
		r->key = xstrdup_or_null(src->reqs[i].key);
		r->op = src->reqs[i].op;
		cod_strlist_copy(&r->values, &src->reqs[i].values);
	}
	dst->n = base + src->n;
}
