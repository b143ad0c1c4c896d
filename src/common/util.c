#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/mem.h"
#include "common/banned.h"

int64_t cod_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t cod_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void cod_thread_name(const char *name)
{
	char n[16];
	snprintf(n, sizeof(n), "%s", name);
	pthread_setname_np(pthread_self(), n);
}

void cod_cond_init_mono(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
}

void cod_mono_deadline(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	if (ms < 0)
		ms = 0;
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

void cod_random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			perror("cod: getrandom");
			abort();
		}
		p += r;
		n -= (size_t)r;
	}
}

/* IDs take their randomness from a per-thread pool filled by one getrandom
 * call for 16 IDs: every job, execution, evaluation and history event needs
 * one, and each syscall costs more than the ID. A forked child starts with
 * a fresh pool (the generation changes), so parent and child never hand out
 * the same bytes. */
static unsigned fork_generation;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void after_fork_child(void)
{
	__atomic_add_fetch(&fork_generation, 1, __ATOMIC_RELAXED);
}

static void register_fork(void)
{
	pthread_atfork(NULL, NULL, after_fork_child);
}

/* n random bytes (n at most the pool size) from the pool. */
static void id_random(void *b, size_t n)
{
	static __thread unsigned char pool[256];
	static __thread size_t used = sizeof(pool);
	static __thread unsigned generation;
	pthread_once(&fork_once, register_fork);
	unsigned gen = __atomic_load_n(&fork_generation, __ATOMIC_RELAXED);
	if (used + n > sizeof(pool) || generation != gen) {
		cod_random_bytes(pool, sizeof(pool));
		used = 0;
		generation = gen;
	}
	memcpy(b, pool + used, n);
	explicit_bzero(pool + used, n);
	used += n;
}

uint64_t cod_random_u64(void)
{
	uint64_t v;
	id_random(&v, sizeof(v));
	return v;
}

void cod_uuid4(char out[37])
{
	unsigned char b[16];
	id_random(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	/* 8-4-4-4-12 */
	static const size_t groups[] = {4, 2, 2, 2, 6};
	const unsigned char *g = b;
	char *p = out;
	for (size_t i = 0; i < 5; i++) {
		if (i)
			*p++ = '-';
		cod_hex_encode(g, groups[i], p);
		g += groups[i];
		p += 2 * groups[i];
	}
}

char *cod_new_id(const char *prefix)
{
	size_t n = strlen(prefix);
	char *id = xmalloc(n + 37);
	memcpy(id, prefix, n);
	cod_uuid4(id + n);
	return id;
}

bool cod_str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool cod_str_has_suffix(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

void cod_hex_encode(const void *data, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *d = data;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * n] = '\0';
}

int cod_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool cod_str_empty(const char *s)
{
	return !s || !*s;
}

char *cod_str_trim(char *s)
{
	char *start = s;
	while (*start && isspace((unsigned char)*start))
		start++;
	size_t n = strlen(start);
	while (n && isspace((unsigned char)start[n - 1]))
		n--;
	memmove(s, start, n);
	s[n] = '\0';
	return s;
}

char *cod_str_lower(const char *s)
{
	char *out = xstrdup(s);
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

size_t cod_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return SIZE_MAX;
	size_t prev[65], cur[65];
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
			size_t best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			if (prev[j - 1] + cost < best)
				best = prev[j - 1] + cost;
			cur[j] = best;
		}
		memcpy(prev, cur, sizeof(prev));
	}
	return prev[lb];
}

int cod_parse_i64(const char *s, int64_t *out)
{
	if (!s || !*s)
		return -1;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || end == s)
		return -1;
	*out = v;
	return 0;
}

int cod_parse_duration_ms(const char *s, int64_t *out_ms)
{
	if (!s || !*s)
		return -1;
	int64_t plain;
	if (cod_parse_i64(s, &plain) == 0) {
		if (plain < 0 || plain > INT64_MAX / 1000)
			return -1;
		*out_ms = plain * 1000;
		return 0;
	}
	const char *p = s;
	double total = 0;
	while (*p) {
		char *end;
		errno = 0;
		double v = strtod(p, &end);
		if (end == p || errno || v < 0)
			return -1;
		p = end;
		double mult;
		if (!strncmp(p, "ms", 2)) {
			mult = 1;
			p += 2;
		} else if (*p == 's') {
			mult = 1000;
			p++;
		} else if (*p == 'm') {
			mult = 60000;
			p++;
		} else if (*p == 'h') {
			mult = 3600000;
			p++;
		} else if (*p == 'd') {
			mult = 86400000;
			p++;
		} else {
			return -1;
		}
		total += v * mult;
	}
	if (total > 9.2e18)
		return -1;
	*out_ms = (int64_t)total;
	return 0;
}

int cod_read_file(const char *path, size_t cap, char **out, size_t *len, struct cod_error **err)
{
	if (!cap)
		cap = 64u << 20;
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f)
		return cod_error_set(err, COD_E_IO, "open \"%s\": %s", path, strerror(errno));
	struct cod_buf b;
	cod_buf_init(&b, cap);
	char chunk[65536];
	size_t n;
	int rc = 0;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (cod_buf_add(&b, chunk, n) < 0) {
			rc = cod_error_set(err, COD_E_TOO_LARGE, "read \"%s\": larger than %zu bytes", path, cap);
			break;
		}
	}
	if (!rc && ferror(f))
		rc = cod_error_set(err, COD_E_IO, "read \"%s\": %s", path, strerror(errno));
	if (f != stdin)
		fclose(f);
	if (rc) {
		cod_buf_release(&b);
		return rc;
	}
	*out = cod_buf_detach(&b, len);
	return 0;
}

int cod_mkdir_p(const char *path, unsigned mode, struct cod_error **err)
{
	/* Usually the parent exists: one mkdir, not one per component. */
	if (mkdir(path, mode) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return cod_error_set(err, COD_E_IO, "create directory \"%s\": %s", path, strerror(errno));
	cleanup_free char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return cod_error_set(err, COD_E_IO, "create directory \"%s\": %s", p, strerror(errno));
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return cod_error_set(err, COD_E_IO, "create directory \"%s\": %s", p, strerror(errno));
	return 0;
}

int cod_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int cod_write_file(const char *path, const void *data, size_t len, struct cod_error **err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || cod_write_all(fd, data, len) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return cod_error_set(err, COD_E_IO, "write \"%s\": %s", path, strerror(e));
	}
	if (close(fd) < 0)
		return cod_error_set(err, COD_E_IO, "write \"%s\": %s", path, strerror(errno));
	return 0;
}

int cod_write_file_atomic(const char *path, const void *data, size_t len, struct cod_error **err)
{
	/* unique per thread: threads of one process may write the same path */
	cleanup_free char *tmp = xasprintf("%s.tmp.%d.%d", path, (int)getpid(), (int)gettid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return cod_error_set(err, COD_E_IO, "write \"%s\": %s", path, strerror(errno));
	if (cod_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return cod_error_set(err, COD_E_IO, "write \"%s\": %s", path, strerror(e));
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return cod_error_set(err, COD_E_IO, "write \"%s\": %s", path, strerror(e));
	}
	return 0;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *cod_base64url_encode(const void *data, size_t len)
{
	const unsigned char *in = data;
	char *out = xmalloc(cod_add_size(cod_mul_size(len / 3 + 1, 4), 1));
	size_t o = 0;
	size_t i = 0;
	for (; i + 2 < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
		out[o++] = b64url[v & 63];
	}
	if (len - i == 1) {
		unsigned v = (unsigned)in[i] << 16;
		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
	} else if (len - i == 2) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
	}
	out[o] = '\0';
	return out;
}

int cod_base64_digit(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

bool cod_base64_push(struct cod_base64 *b, int digit, unsigned char *byte)
{
	b->acc = (b->acc << 6) | (unsigned)digit;
	b->bits += 6;
	if (b->bits < 8)
		return false;
	b->bits -= 8;
	*byte = (unsigned char)(b->acc >> b->bits);
	return true;
}

char *cod_base64url_decode(const char *s, size_t *len)
{
	size_t n = strlen(s);
	while (n && s[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return NULL;
	char *out = xmalloc(n / 4 * 3 + 3);
	size_t o = 0;
	struct cod_base64 b64 = {0};
	for (size_t i = 0; i < n; i++) {
		int v = cod_base64_digit((unsigned char)s[i]);
		if (v < 0) {
			free(out);
			return NULL;
		}
		unsigned char byte;
		if (cod_base64_push(&b64, v, &byte))
			out[o++] = (char)byte;
	}
	out[o] = '\0';
	if (len)
		*len = o;
	return out;
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), 0 when invalid. */
size_t cod_utf8_seq(const unsigned char *p, size_t left)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	size_t n;
	uint32_t cp;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}
