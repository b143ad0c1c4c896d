/*
 * json_fast.c - a JSON reader for the documents cod reads most: stored
 * jobs, executions and evaluations, and the messages between nodes.
 *
 * jansson's reader pulls every character through a stream callback and a
 * growing token buffer; for the small documents of the job path that is
 * most of the orchestrator's work per job. This reader walks the text
 * once and builds the same jansson tree. It covers what cod itself writes
 * (ASCII strings, the usual escapes, integers and plain reals); anything
 * else, and every error, is handed to jansson's own reader, so the result
 * and the error message are always jansson's. tests/fuzz/fuzz_json.c
 * checks that both agree on any input.
 */
#include "common/json_fast.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "common/banned.h"

/* Deeper documents go to jansson (which refuses beyond its own limit). */
#define FAST_MAX_DEPTH 64
/* Longest number handled here. */
#define FAST_MAX_NUMBER 64

struct reader {
	const char *p, *end;
	size_t flags;
	int depth;
	char *scratch; /* string bodies with escapes */
	size_t scratch_len;
};

static void skip_space(struct reader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

/* Read a string body after its opening quote. On success *out points at
 * the characters (in the text, or in r->scratch when there were escapes),
 * *out_len is their length. Returns false for anything left to jansson. */
static bool read_string(struct reader *r, const char **out, size_t *out_len)
{
	const char *start = r->p;
	const char *q = start;
	bool escaped = false;
	while (q < r->end && *q != '"') {
		unsigned char c = (unsigned char)*q;
		if (c < 0x20 || c >= 0x80)
			return false; /* control characters (errors) and non-ASCII: jansson */
		if (c == '\\') {
			escaped = true;
			q++;
			if (q >= r->end)
				return false;
		}
		q++;
	}
	if (q >= r->end)
		return false;
	r->p = q + 1;
	if (!escaped) {
		*out = start;
		*out_len = (size_t)(q - start);
		return true;
	}
	size_t need = (size_t)(q - start);
	if (need > r->scratch_len) {
		char *grown = realloc(r->scratch, need);
		if (!grown)
			return false;
		r->scratch = grown;
		r->scratch_len = need;
	}
	char *w = r->scratch;
	for (const char *s = start; s < q; s++) {
		if (*s != '\\') {
			*w++ = *s;
			continue;
		}
		s++;
		switch (*s) {
		case '"':
		case '\\':
		case '/':
			*w++ = *s;
			break;
		case 'b':
			*w++ = '\b';
			break;
		case 'f':
			*w++ = '\f';
			break;
		case 'n':
			*w++ = '\n';
			break;
		case 'r':
			*w++ = '\r';
			break;
		case 't':
			*w++ = '\t';
			break;
		case 'u': {
			if (q - s < 5)
				return false;
			int code = 0;
			for (int i = 1; i <= 4; i++) {
				int h = cod_hex_digit(s[i]);
				if (h < 0)
					return false;
				code = code * 16 + h;
			}
			/* NUL (refused without JSON_ALLOW_NUL) and surrogate
			 * pairs: jansson */
			if (code == 0 || (code >= 0xD800 && code <= 0xDFFF))
				return false;
			if (code < 0x80) {
				*w++ = (char)code;
			} else if (code < 0x800) {
				*w++ = (char)(0xC0 | (code >> 6));
				*w++ = (char)(0x80 | (code & 0x3F));
			} else {
				*w++ = (char)(0xE0 | (code >> 12));
				*w++ = (char)(0x80 | ((code >> 6) & 0x3F));
				*w++ = (char)(0x80 | (code & 0x3F));
			}
			s += 4;
			break;
		}
		default:
			return false;
		}
	}
	*out = r->scratch;
	*out_len = (size_t)(w - r->scratch);
	return true;
}

static json_t *read_number(struct reader *r)
{
	const char *start = r->p, *q = r->p;
	if (q < r->end && *q == '-')
		q++;
	if (q >= r->end || *q < '0' || *q > '9')
		return NULL;
	if (*q == '0' && q + 1 < r->end && q[1] >= '0' && q[1] <= '9')
		return NULL; /* leading zero: an error */
	while (q < r->end && *q >= '0' && *q <= '9')
		q++;
	bool real = false;
	if (q < r->end && *q == '.') {
		real = true;
		q++;
		if (q >= r->end || *q < '0' || *q > '9')
			return NULL;
		while (q < r->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < r->end && (*q == 'e' || *q == 'E')) {
		real = true;
		q++;
		if (q < r->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= r->end || *q < '0' || *q > '9')
			return NULL;
		while (q < r->end && *q >= '0' && *q <= '9')
			q++;
	}
	size_t len = (size_t)(q - start);
	if (len >= FAST_MAX_NUMBER)
		return NULL;
	char token[FAST_MAX_NUMBER];
	memcpy(token, start, len);
	token[len] = '\0';
	char *endp = NULL;
	errno = 0;
	json_t *v;
	if (real) {
		double d = strtod(token, &endp);
		if (endp != token + len || isinf(d)) /* another locale, or an overflow */
			return NULL;
		v = json_real(d);
	} else {
		long long n = strtoll(token, &endp, 10);
		if (endp != token + len || errno == ERANGE) /* too big: an error */
			return NULL;
		v = json_integer((json_int_t)n);
	}
	if (v)
		r->p = q;
	return v;
}

static bool literal(struct reader *r, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n))
		return false;
	r->p += n;
	return true;
}

static json_t *read_value(struct reader *r);

static json_t *read_object(struct reader *r)
{
	json_t *obj = json_object();
	if (!obj)
		return NULL;
	skip_space(r);
	if (r->p < r->end && *r->p == '}') {
		r->p++;
		return obj;
	}
	for (;;) {
		skip_space(r);
		if (r->p >= r->end || *r->p != '"')
			goto fail;
		r->p++;
		const char *key;
		size_t key_len;
		if (!read_string(r, &key, &key_len))
			goto fail;
		/* the scratch buffer is reused by the value: keep the key */
		char small[128];
		char *kcopy = key_len < sizeof(small) ? small : malloc(key_len + 1);
		if (!kcopy)
			goto fail;
		memcpy(kcopy, key, key_len);
		kcopy[key_len] = '\0';
		bool ok = true;
		if ((r->flags & JSON_REJECT_DUPLICATES) && json_object_getn(obj, kcopy, key_len))
			ok = false; /* an error: jansson says so */
		skip_space(r);
		if (ok && (r->p >= r->end || *r->p != ':'))
			ok = false;
		json_t *value = NULL;
		if (ok) {
			r->p++;
			value = read_value(r);
		}
		if (value && json_object_setn_new_nocheck(obj, kcopy, key_len, value) < 0)
			value = NULL;
		if (kcopy != small)
			free(kcopy);
		if (!value)
			goto fail;
		skip_space(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == '}') {
			r->p++;
			return obj;
		}
		goto fail;
	}
fail:
	json_decref(obj);
	return NULL;
}

static json_t *read_array(struct reader *r)
{
	json_t *arr = json_array();
	if (!arr)
		return NULL;
	skip_space(r);
	if (r->p < r->end && *r->p == ']') {
		r->p++;
		return arr;
	}
	for (;;) {
		json_t *value = read_value(r);
		if (!value || json_array_append_new(arr, value) < 0)
			goto fail;
		skip_space(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == ']') {
			r->p++;
			return arr;
		}
		goto fail;
	}
fail:
	json_decref(arr);
	return NULL;
}

static json_t *read_value(struct reader *r)
{
	skip_space(r);
	if (r->p >= r->end)
		return NULL;
	switch (*r->p) {
	case '{':
	case '[': {
		if (++r->depth > FAST_MAX_DEPTH)
			return NULL;
		bool object = *r->p == '{';
		r->p++;
		json_t *v = object ? read_object(r) : read_array(r);
		r->depth--;
		return v;
	}
	case '"': {
		r->p++;
		const char *s;
		size_t n;
		if (!read_string(r, &s, &n))
			return NULL;
		return json_stringn_nocheck(s, n);
	}
	case 't':
		return literal(r, "true") ? json_true() : NULL;
	case 'f':
		return literal(r, "false") ? json_false() : NULL;
	case 'n':
		return literal(r, "null") ? json_null() : NULL;
	default:
		return read_number(r);
	}
}

json_t *cod_json_read_fast(const char *text, size_t len, size_t flags)
{
	/* only the flags whose meaning is mirrored here */
	if (!text || (flags & ~(size_t)(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)))
		return NULL;
	struct reader r = {.p = text, .end = text + len, .flags = flags};
	skip_space(&r);
	json_t *v = NULL;
	if (r.p < r.end && ((flags & JSON_DECODE_ANY) || *r.p == '{' || *r.p == '['))
		v = read_value(&r);
	free(r.scratch);
	skip_space(&r);
	if (v && r.p != r.end) { /* text after the value: an error */
		json_decref(v);
		v = NULL;
	}
	return v;
}

json_t *cod_json_loadb(const char *text, size_t len, size_t flags, json_error_t *error)
{
	json_t *v = cod_json_read_fast(text, len, flags);
	return v ? v : json_loadb(text, len, flags, error);
}

json_t *cod_json_loads(const char *text, size_t flags, json_error_t *error)
{
	return cod_json_loadb(text, text ? strlen(text) : 0, flags, error);
}
