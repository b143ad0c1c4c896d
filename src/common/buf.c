#include "common/buf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/banned.h"

void cod_buf_init(struct cod_buf *b, size_t max)
{
	b->buf = NULL;
	b->len = 0;
	b->alloc = 0;
	b->max = max;
}

void cod_buf_release(struct cod_buf *b)
{
	free(b->buf);
	b->buf = NULL;
	b->len = 0;
	b->alloc = 0;
}

void cod_buf_reset(struct cod_buf *b)
{
	b->len = 0;
	if (b->buf)
		b->buf[0] = '\0';
}

static int reserve(struct cod_buf *b, size_t extra)
{
	size_t need = cod_add_size(cod_add_size(b->len, extra), 1);
	if (b->max && need - 1 > b->max)
		return -1;
	if (need > b->alloc) {
		size_t n = b->alloc ? b->alloc : 64;
		while (n < need)
			n = cod_mul_size(n, 2);
		b->buf = xrealloc(b->buf, n);
		b->alloc = n;
	}
	return 0;
}

int cod_buf_reserve(struct cod_buf *b, size_t extra)
{
	return reserve(b, extra);
}

int cod_buf_add(struct cod_buf *b, const void *data, size_t n)
{
	/* room for n more and the NUL, within max: no size arithmetic */
	bool fits = n < b->alloc - b->len && (!b->max || n <= b->max - b->len);
	if (!fits && reserve(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->buf + b->len, data, n);
	b->len += n;
	b->buf[b->len] = '\0';
	return 0;
}

int cod_buf_addstr(struct cod_buf *b, const char *s)
{
	return cod_buf_add(b, s, strlen(s));
}

int cod_buf_addch(struct cod_buf *b, char c)
{
	if (b->alloc - b->len > 1 && (!b->max || b->len < b->max)) {
		b->buf[b->len++] = c;
		b->buf[b->len] = '\0';
		return 0;
	}
	return cod_buf_add(b, &c, 1);
}

int cod_buf_vaddf(struct cod_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return -1;
	if (reserve(b, (size_t)n) < 0)
		return -1;
	vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int cod_buf_addf(struct cod_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = cod_buf_vaddf(b, fmt, ap);
	va_end(ap);
	return r;
}

const char *cod_buf_str(const struct cod_buf *b)
{
	return b->buf ? b->buf : "";
}

char *cod_buf_detach(struct cod_buf *b, size_t *len)
{
	if (!b->buf)
		cod_buf_add(b, "", 0);
	char *out = b->buf;
	if (len)
		*len = b->len;
	b->buf = NULL;
	b->len = 0;
	b->alloc = 0;
	return out;
}

void cod_buf_trim(struct cod_buf *b)
{
	while (b->len && (b->buf[b->len - 1] == ' ' || b->buf[b->len - 1] == '\n' ||
			  b->buf[b->len - 1] == '\t' || b->buf[b->len - 1] == '\r'))
		b->buf[--b->len] = '\0';
}
