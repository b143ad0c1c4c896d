#include "common/arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/banned.h"

#define BLOCK_SIZE 4096

struct cod_arena_block {
	struct cod_arena_block *next;
	size_t used;
	size_t cap;
	max_align_t data[];
};

void *cod_arena_alloc(struct cod_arena *a, size_t size)
{
	size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	struct cod_arena_block *b = a->head;
	if (!b || b->cap - b->used < size) {
		size_t cap = size > BLOCK_SIZE ? size : BLOCK_SIZE;
		b = xmalloc(cod_add_size(sizeof(*b), cap));
		b->cap = cap;
		b->used = 0;
		b->next = a->head;
		a->head = b;
	}
	void *p = (char *)b->data + b->used;
	b->used += size;
	return p;
}

char *cod_arena_strndup(struct cod_arena *a, const char *s, size_t n)
{
	char *p = cod_arena_alloc(a, cod_add_size(n, 1));
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *cod_arena_strdup(struct cod_arena *a, const char *s)
{
	return cod_arena_strndup(a, s, strlen(s));
}

char *cod_arena_printf(struct cod_arena *a, const char *fmt, ...)
{
	va_list ap, cp;
	va_start(ap, fmt);
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		n = 0;
	char *p = cod_arena_alloc(a, (size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void cod_arena_release(struct cod_arena *a)
{
	struct cod_arena_block *b = a->head;
	while (b) {
		struct cod_arena_block *next = b->next;
		free(b);
		b = next;
	}
	a->head = NULL;
}
