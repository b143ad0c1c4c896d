/*
 * util.h - small helpers: time, ids, strings, files.
 */
#ifndef COD_UTIL_H
#define COD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"

/* Wall-clock time in Unix nanoseconds (Bacalhau's time encoding). */
int64_t cod_now_ns(void);
/* Monotonic milliseconds, for deadlines. */
int64_t cod_mono_ms(void);
/* Name the calling thread (at most 15 characters are kept), for top -H,
 * perf and gdb. */
void cod_thread_name(const char *name);
/* A condition variable whose timed waits run on CLOCK_MONOTONIC, so that
 * setting the wall clock neither stretches nor cuts a wait. */
void cod_cond_init_mono(pthread_cond_t *cond);
/* *ts = now + ms on CLOCK_MONOTONIC (negative = now), for
 * pthread_cond_timedwait on a cod_cond_init_mono() condition. */
void cod_mono_deadline(struct timespec *ts, int64_t ms);

/* A random RFC 4122 version-4 UUID, 36 chars + NUL. */
void cod_uuid4(char out[37]);
/* "<prefix><uuid>" on the heap, e.g. cod_new_id("j-") -> "j-3b1f…". */
char *cod_new_id(const char *prefix);
/* Fill buf with n random bytes (getrandom). */
void cod_random_bytes(void *buf, size_t n);
/* 64 random bits from the per-thread pool IDs use (no system call most
 * of the time); not for secrets. */
uint64_t cod_random_u64(void);

bool cod_str_has_prefix(const char *s, const char *prefix);
bool cod_str_has_suffix(const char *s, const char *suffix);
bool cod_str_empty(const char *s);
/* The value of hexadecimal digit c (either case), -1 when it is none. */
int cod_hex_digit(int c);
/* n bytes as 2n lowercase hex digits and a NUL into out (2n+1 bytes). */
void cod_hex_encode(const void *data, size_t n, char *out);
/* Trim ASCII whitespace in place, returning s. */
char *cod_str_trim(char *s);
/* Lowercase copy. */
char *cod_str_lower(const char *s);
/* Levenshtein distance, case-insensitive, for "did you mean" hints. */
size_t cod_edit_distance(const char *a, const char *b);

/* Parse a decimal int64 strictly (whole string). */
int cod_parse_i64(const char *s, int64_t *out);
/* Parse a duration "90", "90s", "1m30s", "2h", "500ms" into milliseconds. */
int cod_parse_duration_ms(const char *s, int64_t *out_ms);

/* Read a whole file (cap bytes at most; 0 = 64 MiB). "-" reads stdin. */
int cod_read_file(const char *path, size_t cap, char **out, size_t *len, struct cod_error **err);
/* mkdir -p with mode. */
int cod_mkdir_p(const char *path, unsigned mode, struct cod_error **err);
/* Write a file atomically (temp + fsync + rename). */
int cod_write_file_atomic(const char *path, const void *data, size_t len, struct cod_error **err);
/* Write all of data to fd (EINTR retried): 0, or -1 with errno set. */
int cod_write_all(int fd, const void *data, size_t len);
/* Create or truncate path and write data, without a sync: for files that
 * need not survive a crash (an execution's bundle, its results). */
int cod_write_file(const char *path, const void *data, size_t len, struct cod_error **err);

/* base64url without padding (Bacalhau's paging tokens). */
char *cod_base64url_encode(const void *data, size_t len);
/* Either alphabet (base64url or standard base64), padding optional;
 * NULL on malformed input. */
char *cod_base64url_decode(const char *s, size_t *len);
/* The value of a base64 or base64url digit, -1 for any other character. */
int cod_base64_digit(int c);
/* A base64 decoder's bits: feed it digit values in order (a decoder that
 * skips, caps or reports errors its own way around it). */
struct cod_base64 {
	unsigned acc;
	int bits;
};
/* Add one digit's 6 bits; true, with *byte, when they complete a byte. */
bool cod_base64_push(struct cod_base64 *b, int digit, unsigned char *byte);

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), 0 when invalid; left >= 1 bytes
 * are readable at p. */
size_t cod_utf8_seq(const unsigned char *p, size_t left);

#endif
