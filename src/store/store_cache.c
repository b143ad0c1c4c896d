/*
 * store_cache.c - decoded documents, kept so that the same stored document
 * is not parsed again and again. Scheduling one job reads its job, the job
 * version its executions run and the executions themselves many times;
 * each parse is a JSON tree and a schema walk, most of the orchestrator's
 * work per job.
 *
 * An entry is keyed by the document's text: a lookup hashes the text and
 * compares it in full with the entry's, so an entry can only ever stand
 * for exactly that text, whichever row, revision or transaction (rolled
 * back or not) it came from; nothing has to be invalidated. Callers get a
 * copy; the cache keeps its own.
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/banned.h"

/* Eight bytes at a time: a hash for a lookup that compares the text
 * anyway, far cheaper than the parse it saves. */
static uint64_t hash_text(const char *text, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ len;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, text + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ (unsigned char)text[i]) * 0x100000001b3ULL;
	return h ^ (h >> 32);
}

static void *dup_obj(enum store_doc_kind kind, const void *obj)
{
	return kind == STORE_DOC_JOB ? (void *)cod_job_dup(obj) : (void *)cod_execution_dup(obj);
}

static void free_obj(enum store_doc_kind kind, void *obj)
{
	if (kind == STORE_DOC_JOB)
		cod_job_free(obj);
	else
		cod_execution_free(obj);
}

static struct store_cached_doc *find(struct store_doc_cache *dc, enum store_doc_kind kind, const char *text,
				     size_t len, uint64_t hash)
{
	for (size_t i = 0; i < STORE_DOC_CACHE_SIZE; i++) {
		struct store_cached_doc *e = &dc->entries[i];
		if (e->obj && e->hash == hash && e->kind == kind && e->len == len && !memcmp(e->text, text, len))
			return e;
	}
	return NULL;
}

void *store_doc_cache_get(struct cod_store *store, enum store_doc_kind kind, const char *text, size_t len)
{
	struct store_doc_cache *dc = &store->doc_cache;
	uint64_t hash = hash_text(text, len);
	pthread_mutex_lock(&dc->lock);
	struct store_cached_doc *e = find(dc, kind, text, len, hash);
	void *copy = NULL;
	if (e) {
		e->used = ++dc->clock;
		copy = dup_obj(kind, e->obj);
	}
	pthread_mutex_unlock(&dc->lock);
	return copy;
}

void store_doc_cache_put(struct cod_store *store, enum store_doc_kind kind, const char *text, size_t len,
			 const void *obj)
{
	if (len > STORE_DOC_CACHE_DOC_MAX)
		return;
	struct store_doc_cache *dc = &store->doc_cache;
	uint64_t hash = hash_text(text, len);
	void *copy = dup_obj(kind, obj);
	char *text_copy = xmalloc(len + 1);
	memcpy(text_copy, text, len);
	text_copy[len] = '\0';
	pthread_mutex_lock(&dc->lock);
	if (find(dc, kind, text, len, hash)) {
		pthread_mutex_unlock(&dc->lock);
		free_obj(kind, copy);
		free(text_copy);
		return;
	}
	/* the least recently used entry goes */
	struct store_cached_doc *victim = &dc->entries[0];
	for (size_t i = 1; i < STORE_DOC_CACHE_SIZE && victim->obj; i++)
		if (!dc->entries[i].obj || dc->entries[i].used < victim->used)
			victim = &dc->entries[i];
	struct store_cached_doc old = *victim;
	*victim = (struct store_cached_doc){
	    .obj = copy, .kind = kind, .text = text_copy, .len = len, .hash = hash, .used = ++dc->clock};
	pthread_mutex_unlock(&dc->lock);
	if (old.obj)
		free_obj(old.kind, old.obj);
	free(old.text);
}

void store_doc_cache_init(struct store_doc_cache *dc)
{
	memset(dc, 0, sizeof(*dc));
	pthread_mutex_init(&dc->lock, NULL);
}

void store_doc_cache_release(struct store_doc_cache *dc)
{
	for (size_t i = 0; i < STORE_DOC_CACHE_SIZE; i++) {
		if (dc->entries[i].obj)
			free_obj(dc->entries[i].kind, dc->entries[i].obj);
		free(dc->entries[i].text);
	}
	pthread_mutex_destroy(&dc->lock);
	memset(dc, 0, sizeof(*dc));
}
