/*
 * cache.c - the input cache (see cache.h). Layout:
 *
 *   DataDir/compute/cache/lock              flock'd around every operation
 *   DataDir/compute/cache/e/<sha256(key)>/meta   {"Key", "Size", "Used"}
 *   DataDir/compute/cache/e/<sha256(key)>/data   the file or directory
 *
 * "Used" is a counter, not a clock, so LRU order is exact even within one
 * second; it comes from cache/clock, bumped under the lock.
 */
#include "storage/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "storage/http.h"
#include "common/banned.h"

struct entry {
	char *dir;
	char *key;
	uint64_t size;
	uint64_t used;
};

static uint64_t max_bytes(const struct cod_config *cfg)
{
	uint64_t n = 0;
	if (!cfg || cod_str_empty(cfg->input_cache_max_size) || cod_parse_bytes(cfg->input_cache_max_size, &n) < 0)
		return 0;
	return n;
}

bool cod_cache_enabled(const struct cod_config *cfg)
{
	return cfg && !cod_str_empty(cfg->data_dir) && max_bytes(cfg) > 0;
}

static char *root(const struct cod_config *cfg)
{
	return xasprintf("%s/compute/cache", cfg->data_dir);
}

/* Take the cache lock; returns the fd (close to release) or -1. */
static int lock_cache(const struct cod_config *cfg)
{
	cleanup_free char *dir = root(cfg);
	cleanup_free char *edir = xasprintf("%s/e", dir);
	if (cod_mkdir_p(edir, 0700, NULL) < 0)
		return -1;
	cleanup_free char *path = xasprintf("%s/lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

static char *entry_dir(const struct cod_config *cfg, const char *key)
{
	char hex[65];
	cod_sha256_hex(key, strlen(key), hex);
	cleanup_free char *dir = root(cfg);
	return xasprintf("%s/e/%s", dir, hex);
}

/* Next value of the LRU counter (lock held). */
static uint64_t tick(const struct cod_config *cfg)
{
	cleanup_free char *dir = root(cfg);
	cleanup_free char *path = xasprintf("%s/clock", dir);
	char *text = NULL;
	size_t len = 0;
	uint64_t now = 0;
	if (cod_read_file(path, 64, &text, &len, NULL) == 0) {
		now = strtoull(text, NULL, 10);
		free(text);
	}
	now++;
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)now);
	cod_write_file_atomic(path, buf, (size_t)n, NULL);
	return now;
}

static int read_meta(const char *dir, struct entry *e)
{
	cleanup_free char *path = xasprintf("%s/meta", dir);
	char *text = NULL;
	size_t len = 0;
	if (cod_read_file(path, 1 << 16, &text, &len, NULL) < 0)
		return -1;
	json_t *v = json_loadb(text, len, 0, NULL);
	free(text);
	json_t *k = json_object_get(v, "Key");
	if (!json_is_string(k)) {
		json_decref(v);
		return -1;
	}
	e->dir = xstrdup(dir);
	e->key = xstrdup(json_string_value(k));
	e->size = (uint64_t)json_integer_value(json_object_get(v, "Size"));
	e->used = (uint64_t)json_integer_value(json_object_get(v, "Used"));
	json_decref(v);
	return 0;
}

static void write_meta(const struct entry *e)
{
	cleanup_free char *path = xasprintf("%s/meta", e->dir);
	json_t *v = json_pack("{s:s, s:I, s:I}", "Key", e->key, "Size", (json_int_t)e->size, "Used",
			      (json_int_t)e->used);
	cleanup_free char *text = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	cod_write_file_atomic(path, text, strlen(text), NULL);
}

static void entries_free(struct entry *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(list[i].dir);
		free(list[i].key);
	}
	free(list);
}

/* Every entry (lock held), most recently used first. */
static int cmp_used(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	return x->used < y->used ? 1 : x->used > y->used ? -1 : 0;
}

static struct entry *scan(const struct cod_config *cfg, size_t *n)
{
	*n = 0;
	cleanup_free char *dir = root(cfg);
	cleanup_free char *edir = xasprintf("%s/e", dir);
	DIR *d = opendir(edir);
	if (!d)
		return NULL;
	struct entry *list = NULL;
	size_t alloc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		cleanup_free char *sub = xasprintf("%s/%s", edir, de->d_name);
		struct entry e = {0};
		if (strstr(de->d_name, ".tmp") || strstr(de->d_name, ".gone.")) {
			/* left by a crash mid-store or mid-drop (the lock is
			 * held: nobody is writing it now) */
			cod_remove_tree(sub);
			continue;
		}
		if (read_meta(sub, &e) < 0)
			continue;
		COD_GROW(list, alloc, *n + 1);
		list[(*n)++] = e;
	}
	closedir(d);
	if (*n)
		qsort(list, *n, sizeof(*list), cmp_used);
	return list;
}

/* Lock the cache and read the entry filed under key: the lock's fd (>= 0;
 * e->key is NULL when there is no such entry), or -1 when the cache is off
 * or cannot be locked. */
static int open_entry(const struct cod_config *cfg, const char *key, struct entry *e, char **dir)
{
	memset(e, 0, sizeof(*e));
	*dir = NULL;
	if (!cod_cache_enabled(cfg) || cod_str_empty(key))
		return -1;
	int fd = lock_cache(cfg);
	if (fd < 0)
		return -1;
	*dir = entry_dir(cfg, key);
	if (read_meta(*dir, e) == 0 && strcmp(e->key, key)) {
		free(e->dir);
		free(e->key);
		memset(e, 0, sizeof(*e));
	}
	return fd;
}

static void close_entry(int fd, struct entry *e, char *dir)
{
	free(e->dir);
	free(e->key);
	free(dir);
	close(fd);
}

int cod_cache_fetch(const struct cod_config *cfg, const char *key, const char *dst, uint64_t *bytes,
		    struct cod_error **err)
{
	*bytes = 0;
	struct entry e;
	char *dir;
	int fd = open_entry(cfg, key, &e, &dir);
	if (fd < 0)
		return 0;
	int rc = 0;
	if (e.key) {
		cleanup_free char *data = xasprintf("%s/data", dir);
		if (cod_copy_tree(data, dst, true, err) == 0) {
			e.used = tick(cfg);
			write_meta(&e);
			*bytes = e.size;
			rc = 1;
		} else {
			cod_remove_tree(dst);
			rc = -1;
		}
	}
	close_entry(fd, &e, dir);
	return rc;
}

uint64_t cod_cache_size(const struct cod_config *cfg, const char *key)
{
	struct entry e;
	char *dir;
	int fd = open_entry(cfg, key, &e, &dir);
	if (fd < 0)
		return 0;
	uint64_t size = e.key ? e.size : 0;
	close_entry(fd, &e, dir);
	return size;
}

char *cod_cache_find(const struct cod_config *cfg, const char *locator)
{
	if (!cod_cache_enabled(cfg) || cod_str_empty(locator))
		return NULL;
	int fd = lock_cache(cfg);
	if (fd < 0)
		return NULL;
	size_t n = 0;
	struct entry *list = scan(cfg, &n);
	close(fd);
	size_t ll = strlen(locator);
	char *found = NULL;
	for (size_t i = 0; i < n && !found; i++)
		if (!strncmp(list[i].key, locator, ll) && (list[i].key[ll] == '\0' || list[i].key[ll] == '#'))
			found = xstrdup(list[i].key);
	entries_free(list, n);
	return found;
}

static void drop_locked(const struct cod_config *cfg, const char *key)
{
	cleanup_free char *dir = entry_dir(cfg, key);
	cleanup_free char *gone = xasprintf("%s.gone.%d", dir, (int)getpid());
	/* rename first: a crash mid-delete leaves no half entry behind */
	if (rename(dir, gone) == 0)
		cod_remove_tree(gone);
}

void cod_cache_drop(const struct cod_config *cfg, const char *key)
{
	if (!cod_cache_enabled(cfg))
		return;
	int fd = lock_cache(cfg);
	if (fd < 0)
		return;
	drop_locked(cfg, key);
	close(fd);
}

void cod_cache_store(const struct cod_config *cfg, const char *key, const char *src)
{
	if (!cod_cache_enabled(cfg) || cod_str_empty(key))
		return;
	int64_t size = cod_path_bytes(src);
	uint64_t limit = max_bytes(cfg);
	if (size < 0 || (uint64_t)size > limit) {
		cod_debug("cache", "not caching \"%s\": %lld bytes, the cache holds %llu", key, (long long)size,
			  (unsigned long long)limit);
		return;
	}
	int fd = lock_cache(cfg);
	if (fd < 0)
		return;
	drop_locked(cfg, key);
	/* evict least recently used entries until it fits */
	size_t n = 0;
	struct entry *list = scan(cfg, &n);
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += list[i].size;
	for (size_t i = n; i > 0 && total + (uint64_t)size > limit; i--) {
		cod_info("cache", "evicting \"%s\" (%llu bytes, least recently used)", list[i - 1].key,
			 (unsigned long long)list[i - 1].size);
		drop_locked(cfg, list[i - 1].key);
		total -= list[i - 1].size;
	}
	entries_free(list, n);

	cleanup_free char *dir = entry_dir(cfg, key);
	cleanup_free char *tmp = xasprintf("%s.tmp", dir);
	cod_remove_tree(tmp);
	struct cod_error *err = NULL;
	cleanup_free char *data = xasprintf("%s/data", tmp);
	if (mkdir(tmp, 0700) < 0 || cod_copy_tree(src, data, true, &err) < 0) {
		cod_warn("cache", "cannot cache \"%s\": %s", key, err ? err->message : strerror(errno));
		cod_error_free(err);
		cod_remove_tree(tmp);
		close(fd);
		return;
	}
	struct entry e = {.dir = tmp, .key = (char *)key, .size = (uint64_t)size, .used = tick(cfg)};
	write_meta(&e);
	if (rename(tmp, dir) < 0) {
		cod_warn("cache", "cannot cache \"%s\": %s", key, strerror(errno));
		cod_remove_tree(tmp);
	} else {
		cod_debug("cache", "cached \"%s\" (%lld bytes)", key, (long long)size);
	}
	close(fd);
}

json_t *cod_cache_inventory(const struct cod_config *cfg, size_t max)
{
	json_t *out = json_array();
	if (!cod_cache_enabled(cfg))
		return out;
	int fd = lock_cache(cfg);
	if (fd < 0)
		return out;
	size_t n = 0;
	struct entry *list = scan(cfg, &n);
	close(fd);
	for (size_t i = 0; i < n && i < max; i++)
		json_array_append_new(out, json_pack("{s:s, s:I}", "Key", list[i].key, "Size", (json_int_t)list[i].size));
	entries_free(list, n);
	return out;
}

uint64_t cod_cache_bytes(const struct cod_config *cfg)
{
	if (!cod_cache_enabled(cfg))
		return 0;
	int fd = lock_cache(cfg);
	if (fd < 0)
		return 0;
	size_t n = 0;
	struct entry *list = scan(cfg, &n);
	close(fd);
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += list[i].size;
	entries_free(list, n);
	return total;
}
