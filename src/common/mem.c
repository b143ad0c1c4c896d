#include "common/mem.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/banned.h"

static void die_oom(size_t size)
{
	fprintf(stderr, "cod: out of memory allocating %zu bytes\n", size);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		die_oom(size);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (!p)
		die_oom(cod_mul_size(nmemb, size));
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (!p)
		die_oom(size);
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		die_oom(strlen(s) + 1);
	return p;
}

char *xstrdup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

char *xstrndup(const char *s, size_t n)
{
	/* memchr, not strndup: the source need not be NUL-terminated */
	const char *nul = memchr(s, '\0', n);
	size_t len = nul ? (size_t)(nul - s) : n;
	char *p = xmalloc(cod_add_size(len, 1));
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	char *out = NULL;
	if (vasprintf(&out, fmt, ap) < 0)
		die_oom(strlen(fmt));
	return out;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *out = xvasprintf(fmt, ap);
	va_end(ap);
	return out;
}

size_t cod_mul_size(size_t a, size_t b)
{
	size_t r;
	if (__builtin_mul_overflow(a, b, &r)) {
		fprintf(stderr, "cod: size overflow %zu * %zu\n", a, b);
		abort();
	}
	return r;
}

size_t cod_add_size(size_t a, size_t b)
{
	size_t r;
	if (__builtin_add_overflow(a, b, &r)) {
		fprintf(stderr, "cod: size overflow %zu + %zu\n", a, b);
		abort();
	}
	return r;
}

void *cod_grow(void *ptr, size_t *alloc, size_t need, size_t elem)
{
	if (need <= *alloc)
		return ptr;
	size_t n = *alloc ? *alloc : 4;
	while (n < need)
		n = cod_mul_size(n, 2);
	ptr = xrealloc(ptr, cod_mul_size(n, elem));
	*alloc = n;
	return ptr;
}

void cod_cleanup_free(void *p)
{
	free(*(void **)p);
}

void cod_cleanup_close(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

void cod_cleanup_file(FILE **f)
{
	if (*f)
		fclose(*f);
}

void cod_cleanup_json(void *p)
{
	json_decref(*(json_t **)p);
}
