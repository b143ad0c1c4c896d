/*
 * store_cache.c - decoded jobs, kept so that the same stored document is
 * not parsed again and again. Scheduling one job reads its job and the
 * job version its executions run a dozen times; each parse is a JSON tree
 * and a schema walk, most of the orchestrator's work per job.
 *
 * An entry is keyed by what identifies the content of a stored row: the
 * job ID, its revision (current jobs) or version (job versions), and the
 * time the row was written. A row rewritten in any way has a new revision
 * or a new time, and a row written by a transaction that was rolled back
 * is never read, so an entry can never stand for something else; nothing
 * has to be invalidated. Callers get a copy; the cache keeps its own.
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/banned.h"

static uint32_t hash_id(const char *id)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

static struct store_cached_job *find(struct store_job_cache *jc, enum store_job_kind kind, const char *id,
				     uint32_t hash, uint64_t number, int64_t written)
{
	for (size_t i = 0; i < STORE_JOB_CACHE_SIZE; i++) {
		struct store_cached_job *e = &jc->entries[i];
		if (e->job && e->hash == hash && e->kind == kind && e->number == number && e->written == written &&
		    !strcmp(e->id, id))
			return e;
	}
	return NULL;
}

struct cod_job *store_job_cache_get(struct cod_store *store, enum store_job_kind kind, const char *id,
				    uint64_t number, int64_t written)
{
	struct store_job_cache *jc = &store->job_cache;
	uint32_t hash = hash_id(id);
	pthread_mutex_lock(&jc->lock);
	struct store_cached_job *e = find(jc, kind, id, hash, number, written);
	struct cod_job *copy = NULL;
	if (e) {
		e->used = ++jc->clock;
		copy = cod_job_dup(e->job);
	}
	pthread_mutex_unlock(&jc->lock);
	return copy;
}

void store_job_cache_put(struct cod_store *store, enum store_job_kind kind, const char *id, uint64_t number,
			 int64_t written, size_t doc_bytes, const struct cod_job *job)
{
	if (doc_bytes > STORE_JOB_CACHE_DOC_MAX)
		return;
	struct store_job_cache *jc = &store->job_cache;
	uint32_t hash = hash_id(id);
	struct cod_job *copy = cod_job_dup(job);
	pthread_mutex_lock(&jc->lock);
	if (find(jc, kind, id, hash, number, written)) {
		pthread_mutex_unlock(&jc->lock);
		cod_job_free(copy);
		return;
	}
	/* the least recently used entry goes */
	struct store_cached_job *victim = &jc->entries[0];
	for (size_t i = 1; i < STORE_JOB_CACHE_SIZE && victim->job; i++)
		if (!jc->entries[i].job || jc->entries[i].used < victim->used)
			victim = &jc->entries[i];
	struct cod_job *old_job = victim->job;
	char *old_id = victim->id;
	victim->job = copy;
	victim->id = xstrdup(id);
	victim->hash = hash;
	victim->kind = kind;
	victim->number = number;
	victim->written = written;
	victim->used = ++jc->clock;
	pthread_mutex_unlock(&jc->lock);
	cod_job_free(old_job);
	free(old_id);
}

void store_job_cache_init(struct store_job_cache *jc)
{
	memset(jc, 0, sizeof(*jc));
	pthread_mutex_init(&jc->lock, NULL);
}

void store_job_cache_release(struct store_job_cache *jc)
{
	for (size_t i = 0; i < STORE_JOB_CACHE_SIZE; i++) {
		cod_job_free(jc->entries[i].job);
		free(jc->entries[i].id);
	}
	pthread_mutex_destroy(&jc->lock);
	memset(jc, 0, sizeof(*jc));
}
