/*
 * arena.h - a bump allocator freed all at once (after nginx pools).
 *
 * Each REST request owns one arena: path parameters, query copies and
 * temporary strings live there and vanish when the response is done, so a
 * handler cannot leak them on an error path.
 */
#ifndef COD_ARENA_H
#define COD_ARENA_H

#include <stddef.h>

struct cod_arena_block;

struct cod_arena {
	struct cod_arena_block *head;
};

void *cod_arena_alloc(struct cod_arena *a, size_t size);
char *cod_arena_strdup(struct cod_arena *a, const char *s);
char *cod_arena_strndup(struct cod_arena *a, const char *s, size_t n);
char *cod_arena_printf(struct cod_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cod_arena_release(struct cod_arena *a);

#endif
