/*
 * buf.h - one growable byte buffer (after git's strbuf and curl's dynbuf).
 *
 * The struct is stable and may be embedded. `buf` is always NUL-terminated
 * once anything was added, so it can be used as a C string; cod_buf_str()
 * returns "" for an empty buffer. A buffer filled from the network has a cap
 * (`max`, 0 = none): an append past it fails with -1 and leaves the buffer
 * unchanged, so a peer cannot make a daemon allocate without bound.
 */
#ifndef COD_BUF_H
#define COD_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct cod_buf {
	char *buf;
	size_t len;
	size_t alloc;
	size_t max;
};

#define COD_BUF_INIT {NULL, 0, 0, 0}

void cod_buf_init(struct cod_buf *b, size_t max);
void cod_buf_release(struct cod_buf *b);
void cod_buf_reset(struct cod_buf *b);
/* Returns 0, or -1 when the cap would be exceeded (nothing appended). */
/* Room for extra more bytes (and the NUL) without another allocation;
 * -1 past max. */
int cod_buf_reserve(struct cod_buf *b, size_t extra);
int cod_buf_add(struct cod_buf *b, const void *data, size_t n);
int cod_buf_addstr(struct cod_buf *b, const char *s);
int cod_buf_addch(struct cod_buf *b, char c);
int cod_buf_addf(struct cod_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cod_buf_vaddf(struct cod_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
const char *cod_buf_str(const struct cod_buf *b);
/* Hand the contents to the caller (who frees them); the buffer is reset. */
char *cod_buf_detach(struct cod_buf *b, size_t *len);
void cod_buf_trim(struct cod_buf *b);

#define cleanup_buf __attribute__((cleanup(cod_buf_release)))

#endif
