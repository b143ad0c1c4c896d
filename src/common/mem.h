/*
 * mem.h - allocation wrappers and scope-bound cleanup.
 *
 * The x* allocators abort with a message on out-of-memory: cod is a daemon and
 * a CLI, and neither can do anything useful after malloc fails. Size
 * arithmetic that comes from input goes through cod_mul_size()/cod_add_size().
 *
 * The cleanup_* attributes free a variable when it leaves scope; ownership
 * leaves a scope explicitly through steal_pointer().
 */
#ifndef COD_MEM_H
#define COD_MEM_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
/* Like xstrdup, but NULL in gives NULL out. */
char *xstrdup_or_null(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Grow an array to hold at least `need` elements of `elem` bytes. */
void *cod_grow(void *ptr, size_t *alloc, size_t need, size_t elem);
#define COD_GROW(ptr, alloc, need) ((ptr) = cod_grow((ptr), &(alloc), (need), sizeof(*(ptr))))

/* Overflow-checked size arithmetic; abort on overflow (a programmer error or
 * an input that was not bounded earlier). */
size_t cod_mul_size(size_t a, size_t b);
size_t cod_add_size(size_t a, size_t b);

void cod_cleanup_free(void *p);
void cod_cleanup_close(int *fd);
void cod_cleanup_file(FILE **f);
void cod_cleanup_json(void *p);

#define cleanup_free __attribute__((cleanup(cod_cleanup_free)))
#define cleanup_close __attribute__((cleanup(cod_cleanup_close)))
#define cleanup_file __attribute__((cleanup(cod_cleanup_file)))
#define cleanup_json __attribute__((cleanup(cod_cleanup_json)))

#define steal_pointer(pp)                                                      \
	({                                                                     \
		__typeof__(*(pp)) steal_tmp_ = *(pp);                          \
		*(pp) = NULL;                                                  \
		steal_tmp_;                                                    \
	})

#define COD_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
