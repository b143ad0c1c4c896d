#include "model/schema.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "common/banned.h"

_Static_assert(sizeof(enum cod_job_type) == sizeof(int), "enums are int-sized");

#define FIELD_PTR(base, off) ((void *)((char *)(base) + (off)))
#define CFIELD_PTR(base, off) ((const void *)((const char *)(base) + (off)))

/* ------------------------------------------------------------ problems */

void cod_problem_add(struct cod_problems *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (!p->err) {
		p->err = xcalloc(1, sizeof(*p->err));
		p->err->code = COD_E_VALIDATION;
	}
	cod_error_add_detail(p->err, msg);
	p->n++;
	free(msg);
}

int cod_problems_finish(struct cod_problems *p, struct cod_error **err)
{
	if (!p->n)
		return 0;
	struct cod_error *e = steal_pointer(&p->err);
	free(e->message);
	if (p->n == 1)
		e->message = xstrdup(e->details[0]);
	else
		e->message = xasprintf("%s (and %zu more problem%s)", e->details[0], p->n - 1,
				       p->n == 2 ? "" : "s");
	p->n = 0;
	cod_error_move(err, &e);
	return -1;
}

void cod_problems_release(struct cod_problems *p)
{
	cod_error_free(p->err);
	p->err = NULL;
	p->n = 0;
}

/* ------------------------------------------------------------- helpers */

const char *cod_json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
	default:
		return "null";
	}
}

const char *cod_did_you_mean(const char *name, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		if (!candidates[i] || !*candidates[i])
			continue;
		size_t d = cod_edit_distance(name, candidates[i]);
		if (d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	/* Only suggest names that are plausibly a typo of what was written. */
	size_t len = strlen(name);
	size_t limit = len / 3 > 2 ? len / 3 : 2;
	return best_d <= limit ? best : NULL;
}

/* "1", "0.5", "1e+20": the shortest text that reads back as the same double. */
static char *format_real(double d)
{
	char tmp[64];
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	return xstrdup(tmp);
}

/* --------------------------------------------------------------- path */

size_t cod_decoder_push(struct cod_decoder *d, const char *seg)
{
	size_t len = d->path.len;
	if (seg[0] != '[' && d->path.len)
		cod_buf_addch(&d->path, '.');
	cod_buf_addstr(&d->path, seg);
	return len;
}

void cod_decoder_pop(struct cod_decoder *d, size_t len)
{
	d->path.len = len;
	if (d->path.buf)
		d->path.buf[len] = '\0';
}

void cod_decoder_problem(struct cod_decoder *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (d->path.len)
		cod_problem_add(&d->problems, "%s: %s", cod_buf_str(&d->path), msg);
	else
		cod_problem_add(&d->problems, "%s", msg);
	free(msg);
}

char *cod_decoder_string(struct cod_decoder *d, const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		return xstrndup(json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
	case JSON_REAL:
		return format_real(json_real_value(v));
	case JSON_TRUE:
		return xstrdup("true");
	case JSON_FALSE:
		return xstrdup("false");
	case JSON_NULL:
		return NULL;
	default:
		cod_decoder_problem(d, "expected a string, got %s", cod_json_type_name(v));
		return NULL;
	}
}

/* ------------------------------------------------------------- decode */

static bool get_integer(struct cod_decoder *d, const json_t *v, int64_t *out)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return true;
	}
	if (json_is_real(v)) {
		double x = json_real_value(v);
		if (x == floor(x) && x >= -9223372036854775808.0 && x < 9223372036854775808.0) {
			*out = (int64_t)x;
			return true;
		}
		cod_decoder_problem(d, "expected an integer, got %s", cod_json_type_name(v));
		return false;
	}
	cod_decoder_problem(d, "expected an integer, got %s", cod_json_type_name(v));
	return false;
}

static int enum_lookup(const struct cod_enum *e, const char *s)
{
	if (e->parse)
		return e->parse(s);
	for (size_t i = 0; i < e->n; i++)
		if (e->names[i] && !strcasecmp(e->names[i], s))
			return (int)i;
	return -1;
}

/* "use batch, ops, daemon or service" from the enum's names. */
static char *enum_choices(const struct cod_enum *e)
{
	struct cod_buf b = COD_BUF_INIT;
	size_t total = 0, seen = 0;
	for (size_t i = 0; i < e->n; i++)
		if (e->names[i] && *e->names[i])
			total++;
	for (size_t i = 0; i < e->n; i++) {
		if (!e->names[i] || !*e->names[i])
			continue;
		if (seen)
			cod_buf_addstr(&b, seen + 1 == total ? " or " : ", ");
		cod_buf_addstr(&b, e->names[i]);
		seen++;
	}
	return cod_buf_detach(&b, NULL);
}

static void decode_enum(struct cod_decoder *d, const struct cod_enum *e, const json_t *v, int *out)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (!*s) {
			*out = 0;
			return;
		}
		int x = enum_lookup(e, s);
		if (x >= 0) {
			*out = x;
			return;
		}
		char *choices = enum_choices(e);
		cod_decoder_problem(d, "\"%s\" is not %s; use %s", s, e->what, choices);
		free(choices);
		return;
	}
	if (e->as_int && json_is_integer(v)) {
		json_int_t x = json_integer_value(v);
		if (x >= 0 && (size_t)x < e->n) {
			*out = (int)x;
			return;
		}
		cod_decoder_problem(d, "%" JSON_INTEGER_FORMAT " is not %s (0 to %zu)", x, e->what, e->n - 1);
		return;
	}
	cod_decoder_problem(d, "expected %s, got %s", e->as_int ? "an integer or a name" : "a string",
			    cod_json_type_name(v));
}

static void decode_strlist(struct cod_decoder *d, const json_t *v, struct cod_strlist *l)
{
	if (!json_is_array(v)) {
		cod_decoder_problem(d, "expected an array of strings, got %s", cod_json_type_name(v));
		return;
	}
	size_t i;
	json_t *item;
	json_array_foreach(v, i, item)
	{
		char seg[32];
		snprintf(seg, sizeof(seg), "[%zu]", i);
		size_t mark = cod_decoder_push(d, seg);
		char *s = cod_decoder_string(d, item);
		if (s || json_is_null(item))
			cod_strlist_add(l, s ? s : "");
		free(s);
		cod_decoder_pop(d, mark);
	}
}

static void decode_kvlist(struct cod_decoder *d, const json_t *v, struct cod_kvlist *l)
{
	if (!json_is_object(v)) {
		cod_decoder_problem(d, "expected an object of strings, got %s", cod_json_type_name(v));
		return;
	}
	const char *k;
	json_t *val;
	json_object_foreach((json_t *)v, k, val)
	{
		size_t mark = cod_decoder_push(d, k);
		char *s = cod_decoder_string(d, val);
		if (s || json_is_null(val))
			cod_kvlist_set(l, k, s ? s : "");
		free(s);
		cod_decoder_pop(d, mark);
	}
}

static void decode_field(struct cod_decoder *d, const struct cod_field *f, const json_t *v, void *base)
{
	void *p = FIELD_PTR(base, f->off);
	int64_t i64;

	if (f->kind == COD_F_CUSTOM) {
		f->custom->decode(d, v, base);
		return;
	}
	if (json_is_null(v))
		return;
	if (f->flags & COD_FF_PRESENT)
		*(bool *)FIELD_PTR(base, f->present_off) = true;

	switch (f->kind) {
	case COD_F_STRING: {
		char *s = cod_decoder_string(d, v);
		if (s) {
			free(*(char **)p);
			*(char **)p = s;
		}
		break;
	}
	case COD_F_INT:
		if (get_integer(d, v, &i64))
			*(int64_t *)p = i64;
		break;
	case COD_F_UINT:
		if (get_integer(d, v, &i64)) {
			if (i64 < 0)
				cod_decoder_problem(d, "must not be negative, got %" PRId64, i64);
			else
				*(uint64_t *)p = (uint64_t)i64;
		}
		break;
	case COD_F_DOUBLE:
		if (json_is_number(v))
			*(double *)p = json_number_value(v);
		else
			cod_decoder_problem(d, "expected a number, got %s", cod_json_type_name(v));
		break;
	case COD_F_BOOL:
		if (json_is_boolean(v))
			*(bool *)p = json_is_true(v);
		else
			cod_decoder_problem(d, "expected true or false, got %s", cod_json_type_name(v));
		break;
	case COD_F_ENUM:
		decode_enum(d, f->enm, v, (int *)p);
		break;
	case COD_F_STRLIST:
		decode_strlist(d, v, p);
		break;
	case COD_F_KVLIST:
		decode_kvlist(d, v, p);
		break;
	case COD_F_JSON:
		if (json_is_object(v)) {
			json_decref(*(json_t **)p);
			*(json_t **)p = json_deep_copy(v);
		} else {
			cod_decoder_problem(d, "expected an object, got %s", cod_json_type_name(v));
		}
		break;
	case COD_F_OBJECT:
		cod_decoder_object(d, f->sub, v, p);
		break;
	case COD_F_PTR: {
		if (!json_is_object(v)) {
			cod_decoder_problem(d, "expected an object, got %s", cod_json_type_name(v));
			break;
		}
		void *obj = xcalloc(1, f->sub->size);
		cod_decoder_object(d, f->sub, v, obj);
		if (*(void **)p) {
			cod_schema_release(f->sub, *(void **)p);
			free(*(void **)p);
		}
		*(void **)p = obj;
		break;
	}
	case COD_F_ARRAY: {
		if (!json_is_array(v)) {
			cod_decoder_problem(d, "expected an array, got %s", cod_json_type_name(v));
			break;
		}
		size_t n = json_array_size(v);
		if (!n)
			break;
		char *arr = xcalloc(n, f->sub->size);
		for (size_t i = 0; i < n; i++) {
			char seg[32];
			snprintf(seg, sizeof(seg), "[%zu]", i);
			size_t mark = cod_decoder_push(d, seg);
			cod_decoder_object(d, f->sub, json_array_get(v, i), arr + i * f->sub->size);
			cod_decoder_pop(d, mark);
		}
		*(void **)p = arr;
		*(size_t *)FIELD_PTR(base, f->count_off) = n;
		break;
	}
	case COD_F_CUSTOM:
		break;
	}
}

static const struct cod_field *find_field(const struct cod_schema *s, const char *key)
{
	for (size_t i = 0; i < s->nfields; i++)
		if (!strcmp(s->fields[i].name, key))
			return &s->fields[i];
	for (size_t i = 0; i < s->nfields; i++)
		if (!strcasecmp(s->fields[i].name, key))
			return &s->fields[i];
	return NULL;
}

static void unknown_field(struct cod_decoder *d, const struct cod_schema *s, const char *key)
{
	const char **names = xcalloc(s->nfields, sizeof(*names));
	for (size_t i = 0; i < s->nfields; i++)
		names[i] = s->fields[i].name;
	const char *best = cod_did_you_mean(key, names, s->nfields);
	if (best)
		cod_decoder_problem(d, "unknown field \"%s\"; did you mean \"%s\"?", key, best);
	else
		cod_decoder_problem(d, "unknown field \"%s\"", key);
	free(names);
}

void cod_decoder_object(struct cod_decoder *d, const struct cod_schema *s, const json_t *v, void *out)
{
	if (json_is_null(v))
		return;
	if (!json_is_object(v)) {
		cod_decoder_problem(d, "expected an object, got %s", cod_json_type_name(v));
		return;
	}
	/* Which fields were set, to refuse "Name" and "name" in one object. */
	bool seen_small[64] = {false};
	bool *seen = s->nfields <= 64 ? seen_small : xcalloc(s->nfields, sizeof(bool));
	const char *k;
	json_t *val;
	json_object_foreach((json_t *)v, k, val)
	{
		size_t mark = cod_decoder_push(d, k);
		const struct cod_field *f = find_field(s, k);
		if (!f) {
			if (!s->lenient)
				unknown_field(d, s, k);
		} else if (seen[f - s->fields]) {
			cod_decoder_problem(d, "field \"%s\" given twice (keys are case-insensitive)", f->name);
		} else {
			seen[f - s->fields] = true;
			decode_field(d, f, val, out);
		}
		cod_decoder_pop(d, mark);
	}
	if (seen != seen_small)
		free(seen);
}

int cod_schema_decode(const struct cod_schema *s, const json_t *v, void *out, struct cod_error **err)
{
	struct cod_decoder d = {.path = COD_BUF_INIT};
	memset(out, 0, s->size);
	if (!json_is_object(v))
		cod_decoder_problem(&d, "%s: expected an object, got %s", s->name,
				    v ? cod_json_type_name(v) : "nothing");
	else
		cod_decoder_object(&d, s, v, out);
	cod_buf_release(&d.path);
	if (cod_problems_finish(&d.problems, err) < 0) {
		cod_problems_release(&d.problems);
		cod_schema_release(s, out);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------- encode */

static bool obj_is_zero(const struct cod_schema *s, const void *base);

static bool field_is_zero(const struct cod_field *f, const void *base)
{
	const void *p = CFIELD_PTR(base, f->off);
	/* A present flag keeps an explicit zero ("Count: 0"); an object behind
	 * a flag (ComputeNodeInfo) exists exactly when the flag says so. */
	if (f->flags & COD_FF_PRESENT) {
		if (*(const bool *)CFIELD_PTR(base, f->present_off))
			return false;
		if (f->kind == COD_F_OBJECT)
			return true;
	}
	switch (f->kind) {
	case COD_F_STRING:
		return cod_str_empty(*(char *const *)p);
	case COD_F_INT:
		return *(const int64_t *)p == 0;
	case COD_F_UINT:
		return *(const uint64_t *)p == 0;
	case COD_F_DOUBLE:
		return *(const double *)p == 0;
	case COD_F_BOOL:
		return !*(const bool *)p;
	case COD_F_ENUM:
		return *(const int *)p == 0;
	case COD_F_STRLIST:
		return ((const struct cod_strlist *)p)->n == 0;
	case COD_F_KVLIST:
		return ((const struct cod_kvlist *)p)->n == 0;
	case COD_F_JSON: {
		const json_t *j = *(json_t *const *)p;
		return !j || (json_is_object(j) && json_object_size(j) == 0);
	}
	case COD_F_OBJECT:
		return obj_is_zero(f->sub, p);
	case COD_F_ARRAY:
		return *(const size_t *)CFIELD_PTR(base, f->count_off) == 0;
	case COD_F_PTR:
		return *(void *const *)p == NULL;
	case COD_F_CUSTOM:
		return false;
	}
	return false;
}

static bool obj_is_zero(const struct cod_schema *s, const void *base)
{
	for (size_t i = 0; i < s->nfields; i++)
		if (!field_is_zero(&s->fields[i], base))
			return false;
	return true;
}

static json_t *json_u64(uint64_t x)
{
	return json_integer(x > INT64_MAX ? INT64_MAX : (json_int_t)x);
}

static json_t *encode_field(const struct cod_field *f, const void *base)
{
	const void *p = CFIELD_PTR(base, f->off);
	switch (f->kind) {
	case COD_F_STRING: {
		const char *s = *(char *const *)p;
		json_t *j = json_string(s ? s : "");
		/* Not UTF-8 (only possible for values built in C): keep the key. */
		return j ? j : json_string("");
	}
	case COD_F_INT:
		return json_integer(*(const int64_t *)p);
	case COD_F_UINT:
		return json_u64(*(const uint64_t *)p);
	case COD_F_DOUBLE:
		return json_real(*(const double *)p);
	case COD_F_BOOL:
		return json_boolean(*(const bool *)p);
	case COD_F_ENUM: {
		int x = *(const int *)p;
		if (f->enm->as_int)
			return json_integer(x);
		if (x < 0 || (size_t)x >= f->enm->n || !f->enm->names[x])
			return json_string("");
		return json_string(f->enm->names[x]);
	}
	case COD_F_STRLIST: {
		const struct cod_strlist *l = p;
		json_t *arr = json_array();
		for (size_t i = 0; i < l->n; i++) {
			json_t *s = json_string(l->items[i]);
			json_array_append_new(arr, s ? s : json_string(""));
		}
		return arr;
	}
	case COD_F_KVLIST: {
		const struct cod_kvlist *l = p;
		json_t *obj = json_object();
		for (size_t i = 0; i < l->n; i++) {
			json_t *s = json_string(l->items[i].value);
			json_object_set_new(obj, l->items[i].key, s ? s : json_string(""));
		}
		return obj;
	}
	case COD_F_JSON: {
		const json_t *j = *(json_t *const *)p;
		return j ? json_deep_copy(j) : json_object();
	}
	case COD_F_OBJECT:
		return cod_schema_encode(f->sub, p);
	case COD_F_PTR: {
		const void *obj = *(void *const *)p;
		return obj ? cod_schema_encode(f->sub, obj) : json_null();
	}
	case COD_F_ARRAY: {
		size_t n = *(const size_t *)CFIELD_PTR(base, f->count_off);
		const char *arr = *(const char *const *)p;
		json_t *out = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(out, cod_schema_encode(f->sub, arr + i * f->sub->size));
		return out;
	}
	case COD_F_CUSTOM:
		return f->custom->encode(base);
	}
	return NULL;
}

json_t *cod_schema_encode(const struct cod_schema *s, const void *in)
{
	json_t *obj = json_object();
	for (size_t i = 0; i < s->nfields; i++) {
		const struct cod_field *f = &s->fields[i];
		if ((f->flags & COD_FF_OMITEMPTY) && field_is_zero(f, in))
			continue;
		json_t *v = encode_field(f, in);
		if (v)
			json_object_set_new(obj, f->name, v);
	}
	return obj;
}

/* --------------------------------------------------------------- dump */

/* What jansson accepts as a string: well-formed UTF-8. */
static bool utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	for (size_t i = 0, n; i < len; i += n) {
		if (s[i] < 0x80) { /* ASCII, most of what is stored */
			n = 1;
			continue;
		}
		if (!(n = cod_utf8_seq(s + i, len - i)))
			return false;
	}
	return true;
}

/* A decimal integer, without printf's format parsing. */
static void dump_i64(struct cod_buf *b, int64_t v)
{
	char digits[24], *end = digits + sizeof(digits), *p = end;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	cod_buf_add(b, p, (size_t)(end - p));
}

/* The characters JSON escapes with a letter (or themselves). */
static const char short_escape[0x60] = {
    ['"'] = '"', ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
};

/* A JSON string as json_dumps() writes it (no ASCII or slash escaping);
 * text that is not UTF-8 becomes "" as in encode_field(). */
/* How many bytes from the start of s[0..len) are ASCII and need no
 * escaping: eight at a time, then one by one. */
static size_t plain_prefix(const char *s, size_t len)
{
	const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t x;
		memcpy(&x, s + i, 8);
		uint64_t quote = x ^ (ones * '"'), bslash = x ^ (ones * '\\');
		/* a high bit set: a byte >= 0x80, < 0x20, a quote or a
		 * backslash (the usual zero-byte and less-than tests) */
		if ((x | ((x - ones * 0x20) & ~x) | ((quote - ones) & ~quote) | ((bslash - ones) & ~bslash)) & highs)
			break;
	}
	for (; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80)
			break;
	}
	return i;
}

static void dump_string(struct cod_buf *b, const char *str)
{
	size_t len = str ? strlen(str) : 0;
	size_t plain = plain_prefix(str, len);
	if (!len || (plain < len && !utf8_valid(str + plain, len - plain))) {
		cod_buf_add(b, "\"\"", 2);
		return;
	}
	cod_buf_addch(b, '"');
	const char *run = str, *end = str + len;
	for (const char *p = str + plain; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		cod_buf_add(b, run, (size_t)(p - run));
		run = p + 1;
		if (short_escape[c]) {
			char two[2] = {'\\', short_escape[c]};
			cod_buf_add(b, two, 2);
		} else {
			cod_buf_addf(b, "\\u%04X", c);
		}
	}
	cod_buf_add(b, run, (size_t)(end - run));
	cod_buf_addch(b, '"');
}

/* A value built as a jansson tree (reals, Params, custom fields): dumped
 * by jansson itself, so the text is the same as the tree's. Consumes v. */
static void dump_tree(struct cod_buf *b, json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(v);
	if (!text) {
		cod_buf_add(b, "null", 4);
		return;
	}
	cod_buf_addstr(b, text);
	free(text);
}

static void dump_object(struct cod_buf *b, const struct cod_schema *s, const void *in);

static void dump_field(struct cod_buf *b, const struct cod_field *f, const void *base)
{
	const void *p = CFIELD_PTR(base, f->off);
	switch (f->kind) {
	case COD_F_STRING:
		dump_string(b, *(char *const *)p);
		return;
	case COD_F_INT:
		dump_i64(b, *(const int64_t *)p);
		return;
	case COD_F_UINT: {
		uint64_t x = *(const uint64_t *)p;
		dump_i64(b, (int64_t)(x > INT64_MAX ? INT64_MAX : x));
		return;
	}
	case COD_F_BOOL:
		cod_buf_addstr(b, *(const bool *)p ? "true" : "false");
		return;
	case COD_F_ENUM: {
		int x = *(const int *)p;
		if (f->enm->as_int)
			dump_i64(b, x);
		else
			dump_string(b, x < 0 || (size_t)x >= f->enm->n ? NULL : f->enm->names[x]);
		return;
	}
	case COD_F_STRLIST: {
		const struct cod_strlist *l = p;
		cod_buf_addch(b, '[');
		for (size_t i = 0; i < l->n; i++) {
			if (i)
				cod_buf_addch(b, ',');
			dump_string(b, l->items[i]);
		}
		cod_buf_addch(b, ']');
		return;
	}
	case COD_F_OBJECT:
		dump_object(b, f->sub, p);
		return;
	case COD_F_PTR: {
		const void *obj = *(void *const *)p;
		if (obj)
			dump_object(b, f->sub, obj);
		else
			cod_buf_add(b, "null", 4);
		return;
	}
	case COD_F_ARRAY: {
		size_t n = *(const size_t *)CFIELD_PTR(base, f->count_off);
		const char *arr = *(const char *const *)p;
		cod_buf_addch(b, '[');
		for (size_t i = 0; i < n; i++) {
			if (i)
				cod_buf_addch(b, ',');
			dump_object(b, f->sub, arr + i * f->sub->size);
		}
		cod_buf_addch(b, ']');
		return;
	}
	case COD_F_DOUBLE:
	case COD_F_KVLIST: /* keys that are not UTF-8, repeated keys: jansson's rules */
	case COD_F_JSON:
	case COD_F_CUSTOM:
		dump_tree(b, encode_field(f, base));
		return;
	}
}

static void dump_object(struct cod_buf *b, const struct cod_schema *s, const void *in)
{
	cod_buf_addch(b, '{');
	bool first = true;
	for (size_t i = 0; i < s->nfields; i++) {
		const struct cod_field *f = &s->fields[i];
		if ((f->flags & COD_FF_OMITEMPTY) && field_is_zero(f, in))
			continue;
		size_t mark = b->len;
		if (!first)
			cod_buf_addch(b, ',');
		dump_string(b, f->name);
		cod_buf_addch(b, ':');
		if (f->kind == COD_F_CUSTOM && f->custom->dump) {
			f->custom->dump(b, in);
		} else if (f->kind == COD_F_CUSTOM) {
			json_t *v = f->custom->encode(in);
			if (!v) { /* omitted */
				b->len = mark;
				b->buf[mark] = '\0';
				continue;
			}
			dump_tree(b, v);
		} else {
			dump_field(b, f, in);
		}
		first = false;
	}
	cod_buf_addch(b, '}');
}

void cod_schema_dump_to(struct cod_buf *b, const struct cod_schema *s, const void *in)
{
	dump_object(b, s, in);
}

bool cod_schema_dump_key(struct cod_buf *b, const char *key)
{
	if (!key || !utf8_valid(key, strlen(key)))
		return false;
	dump_string(b, key);
	cod_buf_addch(b, ':');
	return true;
}

char *cod_schema_dumps(const struct cod_schema *s, const void *in)
{
	struct cod_buf b = COD_BUF_INIT;
	/* most documents fit: one allocation instead of doubling from 64 */
	cod_buf_reserve(&b, 1024);
	dump_object(&b, s, in);
	return cod_buf_detach(&b, NULL);
}

/* --------------------------------------------------------- copy/release */

/* Fields that alias one member (Connection and ConnectionState.Status) must
 * be plain values; pointers are owned by exactly one field. */
static void copy_fields(const struct cod_schema *s, void *dst, const void *src)
{
	for (size_t i = 0; i < s->nfields; i++) {
		const struct cod_field *f = &s->fields[i];
		void *dp = FIELD_PTR(dst, f->off);
		const void *sp = CFIELD_PTR(src, f->off);
		switch (f->kind) {
		case COD_F_STRING:
			*(char **)dp = xstrdup_or_null(*(char *const *)sp);
			break;
		case COD_F_STRLIST:
			memset(dp, 0, sizeof(struct cod_strlist));
			cod_strlist_copy(dp, sp);
			break;
		case COD_F_KVLIST:
			memset(dp, 0, sizeof(struct cod_kvlist));
			cod_kvlist_copy(dp, sp);
			break;
		case COD_F_JSON: {
			const json_t *j = *(json_t *const *)sp;
			*(json_t **)dp = j ? json_deep_copy(j) : NULL;
			break;
		}
		case COD_F_OBJECT:
			copy_fields(f->sub, dp, sp);
			break;
		case COD_F_PTR: {
			const void *obj = *(void *const *)sp;
			*(void **)dp = NULL;
			if (obj) {
				void *copy = xmalloc(f->sub->size);
				memcpy(copy, obj, f->sub->size);
				copy_fields(f->sub, copy, obj);
				*(void **)dp = copy;
			}
			break;
		}
		case COD_F_ARRAY: {
			size_t n = *(const size_t *)CFIELD_PTR(src, f->count_off);
			const char *arr = *(const char *const *)sp;
			*(void **)dp = NULL;
			if (n && arr) {
				char *copy = xmalloc(cod_mul_size(n, f->sub->size));
				memcpy(copy, arr, n * f->sub->size);
				for (size_t j = 0; j < n; j++)
					copy_fields(f->sub, copy + j * f->sub->size, arr + j * f->sub->size);
				*(void **)dp = copy;
			}
			break;
		}
		case COD_F_CUSTOM:
			if (f->custom->copy)
				f->custom->copy(dst, src);
			break;
		default:
			break; /* plain values came with the shallow copy */
		}
	}
}

void cod_schema_copy(const struct cod_schema *s, void *dst, const void *src)
{
	memcpy(dst, src, s->size);
	copy_fields(s, dst, src);
}

static void release_fields(const struct cod_schema *s, void *obj)
{
	for (size_t i = 0; i < s->nfields; i++) {
		const struct cod_field *f = &s->fields[i];
		void *p = FIELD_PTR(obj, f->off);
		switch (f->kind) {
		case COD_F_STRING:
			free(*(char **)p);
			*(char **)p = NULL;
			break;
		case COD_F_STRLIST:
			cod_strlist_release(p);
			break;
		case COD_F_KVLIST:
			cod_kvlist_release(p);
			break;
		case COD_F_JSON:
			json_decref(*(json_t **)p);
			*(json_t **)p = NULL;
			break;
		case COD_F_OBJECT:
			release_fields(f->sub, p);
			break;
		case COD_F_PTR:
			if (*(void **)p) {
				release_fields(f->sub, *(void **)p);
				free(*(void **)p);
				*(void **)p = NULL;
			}
			break;
		case COD_F_ARRAY: {
			size_t *n = FIELD_PTR(obj, f->count_off);
			char *arr = *(char **)p;
			for (size_t j = 0; arr && j < *n; j++)
				release_fields(f->sub, arr + j * f->sub->size);
			free(arr);
			*(void **)p = NULL;
			*n = 0;
			break;
		}
		case COD_F_CUSTOM:
			if (f->custom->release)
				f->custom->release(obj);
			break;
		default:
			break;
		}
	}
}

void cod_schema_release(const struct cod_schema *s, void *obj)
{
	if (!obj)
		return;
	release_fields(s, obj);
	memset(obj, 0, s->size);
}
