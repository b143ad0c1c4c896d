#include "common/doc.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "common/json_fast.h"
#include "common/mem.h"
#include "common/banned.h"

#define YAML_MAX_DEPTH 64
#define YAML_MAX_NODES 1000000

json_t *cod_json_parse(const char *text, size_t len, struct cod_error **err)
{
	json_error_t je;
	json_t *v = cod_json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
	if (!v) {
		cod_error_set(err, COD_E_BAD_REQUEST, "invalid JSON at line %d column %d: %s", je.line,
			      je.column, je.text);
		return NULL;
	}
	return v;
}

static bool is_plain_null(const char *s)
{
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static json_t *plain_scalar(const char *s, size_t len)
{
	if (is_plain_null(s))
		return json_null();
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return json_true();
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return json_false();
	/* integers: [-+]?[0-9]+ ; also 0x / 0o forms */
	const char *p = s;
	if (*p == '-' || *p == '+')
		p++;
	if (*p && strspn(p, "0123456789") == strlen(p)) {
		errno = 0;
		char *end;
		long long v = strtoll(s, &end, 10);
		if (!errno && !*end)
			return json_integer(v);
		return json_stringn(s, len);
	}
	if (!strncmp(s, "0x", 2) && s[2] && strspn(s + 2, "0123456789abcdefABCDEF") == strlen(s + 2)) {
		errno = 0;
		long long v = strtoll(s, NULL, 16);
		if (!errno)
			return json_integer(v);
	}
	/* floats: must look like a number, not like "1.2.3" or "1e" */
	if ((isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1])))) {
		char *end;
		errno = 0;
		double d = strtod(s, &end);
		if (!*end && !errno && isfinite(d) && !strpbrk(s, "xXpP"))
			return json_real(d);
	}
	return json_stringn(s, len);
}

struct yconv {
	yaml_document_t *doc;
	size_t nodes;
	struct cod_error **err;
};

static json_t *convert(struct yconv *c, yaml_node_t *node, int depth)
{
	if (!node) {
		cod_error_set(c->err, COD_E_BAD_REQUEST, "invalid YAML: dangling alias");
		return NULL;
	}
	if (depth > YAML_MAX_DEPTH) {
		cod_error_set(c->err, COD_E_BAD_REQUEST, "invalid YAML at line %zu: nested deeper than %d levels",
			      node->start_mark.line + 1, YAML_MAX_DEPTH);
		return NULL;
	}
	if (++c->nodes > YAML_MAX_NODES) {
		cod_error_set(c->err, COD_E_BAD_REQUEST,
			      "invalid YAML: more than %d nodes after expanding aliases", YAML_MAX_NODES);
		return NULL;
	}
	switch (node->type) {
	case YAML_SCALAR_NODE: {
		const char *s = (const char *)node->data.scalar.value;
		size_t len = node->data.scalar.length;
		if (strlen(s) != len) {
			cod_error_set(c->err, COD_E_BAD_REQUEST, "invalid YAML at line %zu: NUL byte in scalar",
				      node->start_mark.line + 1);
			return NULL;
		}
		/* libyaml gives untagged plain scalars the str tag too, so the
		 * style decides: plain scalars are typed, quoted ones are strings. */
		if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
			return plain_scalar(s, len);
		return json_stringn(s, len);
	}
	case YAML_SEQUENCE_NODE: {
		json_t *arr = json_array();
		for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
		     it++) {
			json_t *v = convert(c, yaml_document_get_node(c->doc, *it), depth + 1);
			if (!v) {
				json_decref(arr);
				return NULL;
			}
			json_array_append_new(arr, v);
		}
		return arr;
	}
	case YAML_MAPPING_NODE: {
		json_t *obj = json_object();
		for (yaml_node_pair_t *pr = node->data.mapping.pairs.start; pr < node->data.mapping.pairs.top;
		     pr++) {
			yaml_node_t *k = yaml_document_get_node(c->doc, pr->key);
			if (!k || k->type != YAML_SCALAR_NODE) {
				cod_error_set(c->err, COD_E_BAD_REQUEST,
					      "invalid YAML at line %zu: mapping keys must be plain strings",
					      k ? k->start_mark.line + 1 : 0);
				json_decref(obj);
				return NULL;
			}
			const char *key = (const char *)k->data.scalar.value;
			if (json_object_get(obj, key)) {
				cod_error_set(c->err, COD_E_BAD_REQUEST, "invalid YAML at line %zu: duplicate key \"%s\"",
					      k->start_mark.line + 1, key);
				json_decref(obj);
				return NULL;
			}
			json_t *v = convert(c, yaml_document_get_node(c->doc, pr->value), depth + 1);
			if (!v) {
				json_decref(obj);
				return NULL;
			}
			json_object_set_new(obj, key, v);
		}
		return obj;
	}
	default:
		cod_error_set(c->err, COD_E_BAD_REQUEST, "invalid YAML: empty node");
		return NULL;
	}
}

json_t *cod_yaml_parse(const char *text, size_t len, struct cod_error **err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&parser)) {
		cod_error_set(err, COD_E_INTERNAL, "yaml parser: out of memory");
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		cod_error_set(err, COD_E_BAD_REQUEST, "invalid YAML at line %zu column %zu: %s",
			      parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			      parser.problem ? parser.problem : "syntax error");
		yaml_parser_delete(&parser);
		return NULL;
	}
	json_t *out = NULL;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (!root) {
		cod_error_set(err, COD_E_BAD_REQUEST, "empty document");
	} else {
		struct yconv c = {.doc = &doc, .nodes = 0, .err = err};
		out = convert(&c, root, 0);
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return out;
}

json_t *cod_doc_parse(const char *text, size_t len, struct cod_error **err)
{
	size_t i = 0;
	while (i < len && isspace((unsigned char)text[i]))
		i++;
	if (i == len) {
		cod_error_set(err, COD_E_BAD_REQUEST, "empty document");
		return NULL;
	}
	if (text[i] == '{' || text[i] == '[')
		return cod_json_parse(text, len, err);
	return cod_yaml_parse(text, len, err);
}

json_t *cod_json_iget(const json_t *obj, const char *key)
{
	if (!json_is_object(obj))
		return NULL;
	json_t *v = json_object_get(obj, key);
	if (v)
		return v;
	const char *k;
	json_t *val;
	json_object_foreach((json_t *)obj, k, val)
	{
		if (!strcasecmp(k, key))
			return val;
	}
	return NULL;
}

/* ---- emitters ---- */

static int emit_cb(const char *buffer, size_t size, void *data)
{
	return cod_buf_add(data, buffer, size);
}

void cod_json_emit(const json_t *value, int pretty, struct cod_buf *out)
{
	size_t flags = JSON_ENCODE_ANY | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17);
	if (pretty)
		flags |= JSON_INDENT(2);
	else
		flags |= JSON_COMPACT;
	json_dump_callback(value, emit_cb, out, flags);
}

char *cod_json_dumps(const json_t *value, int pretty)
{
	struct cod_buf b = COD_BUF_INIT;
	cod_json_emit(value, pretty, &b);
	return cod_buf_detach(&b, NULL);
}

/* Code points that YAML treats as line breaks or refuses in plain text:
 * C1 controls (U+0080..U+009F), LS/PS (U+2028/9) and the BOM (U+FEFF). */
static size_t special_utf8(const unsigned char *p)
{
	if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
		return 2;
	if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))
		return 3;
	if (p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
		return 3;
	return 0;
}

static bool needs_quotes(const char *s)
{
	if (!*s)
		return true;
	json_t *typed = plain_scalar(s, strlen(s));
	bool is_str = json_is_string(typed);
	json_decref(typed);
	if (!is_str)
		return true;
	if (strchr("-?:,[]{}#&*!|>'\"%@` \t", s[0]))
		return true;
	for (const char *p = s; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch < 0x20 || ch == 0x7f || ch >= 0x80)
			return true;
		if ((ch == ':' && (p[1] == ' ' || !p[1])) || (ch == ' ' && p[1] == '#'))
			return true;
	}
	return isspace((unsigned char)s[strlen(s) - 1]);
}

/* A YAML double-quoted scalar: escapes for quotes, backslashes, controls
 * and the code points YAML would fold; other UTF-8 passes through. */
static void emit_quoted(const char *s, struct cod_buf *out)
{
	cod_buf_addch(out, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t special = special_utf8(p);
		if (special == 2) {
			cod_buf_addf(out, "\\x%02x", p[1]);
		} else if (special == 3 && p[0] == 0xe2) {
			cod_buf_addstr(out, p[2] == 0xa8 ? "\\L" : "\\P");
		} else if (special == 3) {
			cod_buf_addstr(out, "\\uFEFF");
		} else if (*p == '"' || *p == '\\') {
			cod_buf_addch(out, '\\');
			cod_buf_addch(out, (char)*p);
		} else if (*p == '\n') {
			cod_buf_addstr(out, "\\n");
		} else if (*p == '\t') {
			cod_buf_addstr(out, "\\t");
		} else if (*p == '\r') {
			cod_buf_addstr(out, "\\r");
		} else if (*p < 0x20 || *p == 0x7f) {
			cod_buf_addf(out, "\\x%02x", *p);
		} else {
			cod_buf_addch(out, (char)*p);
		}
		p += special ? special : 1;
	}
	cod_buf_addch(out, '"');
}

static void emit_string(const char *s, struct cod_buf *out)
{
	if (needs_quotes(s))
		emit_quoted(s, out);
	else
		cod_buf_addstr(out, s);
}

static void indent(struct cod_buf *out, int n)
{
	for (int i = 0; i < n; i++)
		cod_buf_addstr(out, "  ");
}

static bool is_empty_container(const json_t *v)
{
	return (json_is_object(v) && json_object_size(v) == 0) || (json_is_array(v) && json_array_size(v) == 0);
}

static void emit_scalar(const json_t *v, struct cod_buf *out)
{
	if (json_is_string(v))
		emit_string(json_string_value(v), out);
	else if (json_is_object(v))
		cod_buf_addstr(out, "{}");
	else if (json_is_array(v))
		cod_buf_addstr(out, "[]");
	else
		cod_json_emit(v, 0, out);
}

static void emit_node(const json_t *v, int depth, struct cod_buf *out);

static void emit_value_after_key(const json_t *v, int depth, struct cod_buf *out)
{
	if ((json_is_object(v) || json_is_array(v)) && !is_empty_container(v)) {
		cod_buf_addch(out, '\n');
		emit_node(v, json_is_array(v) ? depth : depth + 1, out);
	} else {
		cod_buf_addch(out, ' ');
		emit_scalar(v, out);
		cod_buf_addch(out, '\n');
	}
}

static void emit_node(const json_t *v, int depth, struct cod_buf *out)
{
	if (json_is_object(v) && json_object_size(v)) {
		const char *k;
		json_t *val;
		json_object_foreach((json_t *)v, k, val)
		{
			indent(out, depth);
			emit_string(k, out);
			cod_buf_addch(out, ':');
			emit_value_after_key(val, depth, out);
		}
	} else if (json_is_array(v) && json_array_size(v)) {
		size_t i;
		json_t *val;
		json_array_foreach(v, i, val)
		{
			indent(out, depth);
			cod_buf_addstr(out, "-");
			if (json_is_object(val) && json_object_size(val)) {
				/* first key on the dash line, the rest indented under it */
				const char *k;
				json_t *inner;
				bool first = true;
				json_object_foreach(val, k, inner)
				{
					if (first)
						cod_buf_addch(out, ' ');
					else
						indent(out, depth + 1);
					first = false;
					emit_string(k, out);
					cod_buf_addch(out, ':');
					emit_value_after_key(inner, depth + 1, out);
				}
			} else if (json_is_array(val) && json_array_size(val)) {
				cod_buf_addch(out, '\n');
				emit_node(val, depth + 1, out);
			} else {
				cod_buf_addch(out, ' ');
				emit_scalar(val, out);
				cod_buf_addch(out, '\n');
			}
		}
	} else {
		indent(out, depth);
		emit_scalar(v, out);
		cod_buf_addch(out, '\n');
	}
}

void cod_yaml_emit(const json_t *value, struct cod_buf *out)
{
	emit_node(value, 0, out);
}
