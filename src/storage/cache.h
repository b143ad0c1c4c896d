/*
 * cache.h - the compute node's content-addressed input cache
 * (DataDir/compute/cache), the second form of data locality after
 * allow-listed paths: inputs fetched once stay on the node, and the node
 * advertises what it holds so that the orchestrator sends jobs that need
 * the same data back to it.
 *
 * An entry is filed under a key that names content, not a place:
 * "ipfs://<cid>" (the CID is the content), "s3://<endpoint>/<bucket>/<key>
 * #<version-or-etag>", "<url>#etag:<etag>" or "<url>#lm:<last-modified>".
 * The part before '#' is the locator (cod_storage_locator()), what a job
 * spec names. A lookup by locator finds the validator to ask the origin
 * about (If-None-Match), so a changed object is never served stale.
 *
 * The total size is bounded by InputSources.Cache.MaxSize (0 = no cache);
 * the least recently used entries are evicted first. Entries are handed to
 * executions as hard-linked copies, so evicting one does not pull data
 * from under a running task. Any number of threads and processes may use
 * one cache: operations hold an flock on cache/lock.
 */
#ifndef COD_STORAGE_CACHE_H
#define COD_STORAGE_CACHE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "config/config.h"

bool cod_cache_enabled(const struct cod_config *cfg);
/* Copy entry key to dst (which must not exist): 1 on a hit (*bytes set),
 * 0 on a miss, -1 on an error. A hit makes the entry most recently used. */
int cod_cache_fetch(const struct cod_config *cfg, const char *key, const char *dst, uint64_t *bytes,
		    struct cod_error **err);
/* Bytes held under key; 0 when there is no such entry. */
uint64_t cod_cache_size(const struct cod_config *cfg, const char *key);
/* The most recently used key filed under locator (exactly, or locator +
 * "#..."), heap; NULL when none. */
char *cod_cache_find(const struct cod_config *cfg, const char *locator);
/* File a copy of src (file or directory) under key, evicting old entries
 * to make room. Best effort: problems are logged, the input is still used. */
void cod_cache_store(const struct cod_config *cfg, const char *key, const char *src);
void cod_cache_drop(const struct cod_config *cfg, const char *key);
/* Up to max entries, most recently used first: [{"Key", "Size"}]. */
json_t *cod_cache_inventory(const struct cod_config *cfg, size_t max);
/* Total bytes held. */
uint64_t cod_cache_bytes(const struct cod_config *cfg);

#endif
