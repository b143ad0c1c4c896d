/*
 * broker.c - evaluation broker: ready heap by priority, delay heap by due
 * time, per-job serialization with coalescing, leases.
 */
#include "orchestrator/broker.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mem.h"
#include "common/util.h"
#include "common/banned.h"

#define NACK_FIRST_DELAY_MS 5000
#define NACK_LATER_DELAY_MS 30000

struct entry {
	struct cod_evaluation *ev;
	struct cod_strlist coalesced; /* IDs answered together with ev */
	int64_t deliveries;
	int64_t due_ms;   /* delay heap: when it becomes ready */
	uint64_t order;   /* FIFO among equal priorities */
	char receipt[37];
	int64_t lease_deadline_ms;
};

struct job_slot {
	char *job_id;
	struct entry *inflight;
	struct entry *waiting; /* in the ready heap, or blocked behind inflight */
	struct job_slot *next;
};

struct heap {
	struct entry **items;
	size_t n, alloc;
	bool by_due; /* delay heap: earliest due first; ready heap: priority */
};

struct cod_broker {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool shutdown;
	int64_t visibility_ms;
	int64_t max_deliveries;
	uint64_t next_order;
	struct heap ready, delayed;
	struct entry **inflight;
	size_t ninflight, inflight_alloc;
	struct job_slot **buckets;
	size_t nbuckets, nslots;
	size_t dead;
};

/* ---- heaps ---- */

static bool before(const struct heap *h, const struct entry *a, const struct entry *b)
{
	if (h->by_due)
		return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->order < b->order);
	if (a->ev->priority != b->ev->priority)
		return a->ev->priority > b->ev->priority;
	return a->order < b->order;
}

static void heap_push(struct heap *h, struct entry *e)
{
	COD_GROW(h->items, h->alloc, h->n + 1);
	size_t i = h->n++;
	h->items[i] = e;
	while (i && before(h, h->items[i], h->items[(i - 1) / 2])) {
		struct entry *t = h->items[i];
		h->items[i] = h->items[(i - 1) / 2];
		h->items[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static struct entry *heap_pop(struct heap *h)
{
	if (!h->n)
		return NULL;
	struct entry *top = h->items[0];
	h->items[0] = h->items[--h->n];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < h->n && before(h, h->items[l], h->items[m]))
			m = l;
		if (r < h->n && before(h, h->items[r], h->items[m]))
			m = r;
		if (m == i)
			break;
		struct entry *t = h->items[i];
		h->items[i] = h->items[m];
		h->items[m] = t;
		i = m;
	}
	return top;
}

/* ---- job slots ---- */

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void rehash(struct cod_broker *b)
{
	size_t n = b->nbuckets ? b->nbuckets * 2 : 256;
	struct job_slot **nb = xcalloc(n, sizeof(*nb));
	for (size_t i = 0; i < b->nbuckets; i++) {
		struct job_slot *s = b->buckets[i];
		while (s) {
			struct job_slot *next = s->next;
			size_t k = hash(s->job_id) % n;
			s->next = nb[k];
			nb[k] = s;
			s = next;
		}
	}
	free(b->buckets);
	b->buckets = nb;
	b->nbuckets = n;
}

static struct job_slot *slot_get(struct cod_broker *b, const char *job_id, bool create)
{
	if (b->nbuckets) {
		for (struct job_slot *s = b->buckets[hash(job_id) % b->nbuckets]; s; s = s->next)
			if (!strcmp(s->job_id, job_id))
				return s;
	}
	if (!create)
		return NULL;
	if (b->nslots + 1 > b->nbuckets * 2)
		rehash(b);
	struct job_slot *s = xcalloc(1, sizeof(*s));
	s->job_id = xstrdup(job_id);
	size_t k = hash(job_id) % b->nbuckets;
	s->next = b->buckets[k];
	b->buckets[k] = s;
	b->nslots++;
	return s;
}

static void slot_drop_if_idle(struct cod_broker *b, struct job_slot *slot)
{
	if (slot->inflight || slot->waiting)
		return;
	struct job_slot **pp = &b->buckets[hash(slot->job_id) % b->nbuckets];
	while (*pp && *pp != slot)
		pp = &(*pp)->next;
	if (*pp)
		*pp = slot->next;
	free(slot->job_id);
	free(slot);
	b->nslots--;
}

static void entry_free(struct entry *e)
{
	if (!e)
		return;
	cod_evaluation_free(e->ev);
	cod_strlist_release(&e->coalesced);
	free(e);
}

static struct cod_evaluation *eval_copy(const struct cod_evaluation *ev)
{
	json_t *j = cod_evaluation_to_json(ev);
	struct cod_evaluation *copy = cod_evaluation_from_json(j, NULL);
	json_decref(j);
	if (!copy)
		abort(); /* an evaluation we encoded must decode */
	return copy;
}

/* An entry becomes ready: coalesce it into the job's waiting entry, or
 * make it the waiting entry (ready at once unless the job is in flight). */
static void make_ready(struct cod_broker *b, struct entry *e)
{
	struct job_slot *slot = slot_get(b, e->ev->job_id ? e->ev->job_id : "", true);
	if (slot->waiting) {
		struct entry *w = slot->waiting;
		cod_strlist_add(&w->coalesced, e->ev->id);
		for (size_t i = 0; i < e->coalesced.n; i++)
			cod_strlist_add(&w->coalesced, e->coalesced.items[i]);
		if (e->deliveries > w->deliveries)
			w->deliveries = e->deliveries;
		entry_free(e);
		return;
	}
	slot->waiting = e;
	if (!slot->inflight)
		heap_push(&b->ready, e);
}

/* Move due delayed entries and expired leases; returns the time of the next
 * such event (ms) or INT64_MAX. Caller holds the lock. */
static int64_t tick(struct cod_broker *b)
{
	int64_t now = cod_mono_ms();
	while (b->delayed.n && b->delayed.items[0]->due_ms <= now)
		make_ready(b, heap_pop(&b->delayed));
	int64_t next = b->delayed.n ? b->delayed.items[0]->due_ms : INT64_MAX;
	for (size_t i = 0; i < b->ninflight;) {
		struct entry *e = b->inflight[i];
		if (e->lease_deadline_ms > now) {
			if (e->lease_deadline_ms < next)
				next = e->lease_deadline_ms;
			i++;
			continue;
		}
		/* lease expired: hand it out again */
		b->inflight[i] = b->inflight[--b->ninflight];
		struct job_slot *slot = slot_get(b, e->ev->job_id ? e->ev->job_id : "", true);
		slot->inflight = NULL;
		e->receipt[0] = '\0';
		struct entry *w = slot->waiting;
		if (w) {
			/* w was blocked behind e (not in the ready heap): e
			 * becomes the waiting entry and w is coalesced into it */
			slot->waiting = NULL;
			make_ready(b, e);
			make_ready(b, w);
		} else {
			make_ready(b, e);
		}
	}
	return next;
}

struct cod_broker *cod_broker_new(int64_t visibility_timeout_ms, int64_t max_deliveries)
{
	struct cod_broker *b = xcalloc(1, sizeof(*b));
	pthread_mutex_init(&b->lock, NULL);
	cod_cond_init_mono(&b->cond);
	b->visibility_ms = visibility_timeout_ms > 0 ? visibility_timeout_ms : 60000;
	b->max_deliveries = max_deliveries > 0 ? max_deliveries : 10;
	b->delayed.by_due = true;
	rehash(b);
	return b;
}

void cod_broker_free(struct cod_broker *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nbuckets; i++) {
		struct job_slot *s = b->buckets[i];
		while (s) {
			struct job_slot *next = s->next;
			entry_free(s->waiting);
			entry_free(s->inflight);
			free(s->job_id);
			free(s);
			s = next;
		}
	}
	while (b->delayed.n)
		entry_free(heap_pop(&b->delayed));
	free(b->buckets);
	free(b->ready.items);
	free(b->delayed.items);
	free(b->inflight);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	free(b);
}

void cod_broker_enqueue(struct cod_broker *b, const struct cod_evaluation *ev)
{
	struct entry *e = xcalloc(1, sizeof(*e));
	e->ev = eval_copy(ev);
	pthread_mutex_lock(&b->lock);
	e->order = b->next_order++;
	int64_t now_ns = cod_now_ns();
	if (ev->wait_until > now_ns) {
		e->due_ms = cod_mono_ms() + (ev->wait_until - now_ns) / 1000000;
		heap_push(&b->delayed, e);
	} else {
		make_ready(b, e);
	}
	/* one waiter takes it, or recomputes its wake-up for the new due
	 * time; waking them all only to sleep again cost a futex storm */
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

/* Hand e out: in flight for its job, under a new receipt. */
static void lease(struct cod_broker *b, struct job_slot *slot, struct entry *e)
{
	slot->inflight = e;
	e->deliveries++;
	cod_uuid4(e->receipt);
	e->lease_deadline_ms = cod_mono_ms() + b->visibility_ms;
	COD_GROW(b->inflight, b->inflight_alloc, b->ninflight + 1);
	b->inflight[b->ninflight++] = e;
}

int cod_broker_claim(struct cod_broker *b, const struct cod_evaluation *ev, char **receipt)
{
	const char *job_id = ev->job_id ? ev->job_id : "";
	if (ev->wait_until > cod_now_ns())
		return 0;
	pthread_mutex_lock(&b->lock);
	struct job_slot *slot = slot_get(b, job_id, false);
	if (b->shutdown || (slot && (slot->inflight || slot->waiting))) {
		pthread_mutex_unlock(&b->lock);
		return 0;
	}
	struct entry *e = xcalloc(1, sizeof(*e));
	e->ev = eval_copy(ev);
	e->order = b->next_order++;
	lease(b, slot ? slot : slot_get(b, job_id, true), e);
	*receipt = xstrdup(e->receipt);
	pthread_mutex_unlock(&b->lock);
	return 1;
}

int cod_broker_dequeue(struct cod_broker *b, int64_t timeout_ms, struct cod_evaluation **ev, char **receipt)
{
	int64_t deadline = cod_mono_ms() + timeout_ms;
	pthread_mutex_lock(&b->lock);
	for (;;) {
		if (b->shutdown) {
			pthread_mutex_unlock(&b->lock);
			return -1;
		}
		int64_t next = tick(b);
		struct entry *e = heap_pop(&b->ready);
		if (e) {
			struct job_slot *slot = slot_get(b, e->ev->job_id ? e->ev->job_id : "", true);
			slot->waiting = NULL;
			lease(b, slot, e);
			*ev = eval_copy(e->ev);
			*receipt = xstrdup(e->receipt);
			pthread_mutex_unlock(&b->lock);
			return 1;
		}
		int64_t now = cod_mono_ms();
		if (now >= deadline) {
			pthread_mutex_unlock(&b->lock);
			return 0;
		}
		int64_t wake = deadline < next ? deadline : next;
		struct timespec ts;
		cod_mono_deadline(&ts, wake - now);
		pthread_cond_timedwait(&b->cond, &b->lock, &ts);
	}
}

/* Take an in-flight entry off the lists; NULL if the receipt is stale. */
static struct entry *take_inflight(struct cod_broker *b, const char *eval_id, const char *receipt,
				   struct job_slot **slot_out)
{
	for (size_t i = 0; i < b->ninflight; i++) {
		struct entry *e = b->inflight[i];
		if (strcmp(e->ev->id, eval_id) || strcmp(e->receipt, receipt))
			continue;
		b->inflight[i] = b->inflight[--b->ninflight];
		struct job_slot *slot = slot_get(b, e->ev->job_id ? e->ev->job_id : "", true);
		slot->inflight = NULL;
		if (slot->waiting)
			heap_push(&b->ready, slot->waiting);
		*slot_out = slot;
		return e;
	}
	return NULL;
}

static void answer(struct entry *e, struct cod_strlist *answered)
{
	if (!answered)
		return;
	cod_strlist_add(answered, e->ev->id);
	for (size_t i = 0; i < e->coalesced.n; i++)
		cod_strlist_add(answered, e->coalesced.items[i]);
}

int cod_broker_ack(struct cod_broker *b, const char *eval_id, const char *receipt, struct cod_strlist *answered)
{
	pthread_mutex_lock(&b->lock);
	struct job_slot *slot = NULL;
	struct entry *e = take_inflight(b, eval_id, receipt, &slot);
	if (!e) {
		pthread_mutex_unlock(&b->lock);
		return -1;
	}
	answer(e, answered);
	entry_free(e);
	bool ready = slot->waiting != NULL; /* made ready by take_inflight */
	slot_drop_if_idle(b, slot);
	if (ready)
		pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

int cod_broker_nack(struct cod_broker *b, const char *eval_id, const char *receipt, bool *dead,
		    struct cod_strlist *answered)
{
	*dead = false;
	pthread_mutex_lock(&b->lock);
	struct job_slot *slot = NULL;
	struct entry *e = take_inflight(b, eval_id, receipt, &slot);
	if (!e) {
		pthread_mutex_unlock(&b->lock);
		return -1;
	}
	if (e->deliveries >= b->max_deliveries) {
		*dead = true;
		b->dead++;
		answer(e, answered);
		entry_free(e);
		slot_drop_if_idle(b, slot);
	} else {
		e->due_ms = cod_mono_ms() + (e->deliveries <= 1 ? NACK_FIRST_DELAY_MS
								: NACK_LATER_DELAY_MS * (e->deliveries - 1));
		e->receipt[0] = '\0';
		heap_push(&b->delayed, e);
		slot_drop_if_idle(b, slot);
	}
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

void cod_broker_shutdown(struct cod_broker *b)
{
	pthread_mutex_lock(&b->lock);
	b->shutdown = true;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

void cod_broker_stats(struct cod_broker *b, struct cod_broker_stats *out)
{
	pthread_mutex_lock(&b->lock);
	tick(b);
	memset(out, 0, sizeof(*out));
	out->ready = b->ready.n;
	out->delayed = b->delayed.n;
	out->inflight = b->ninflight;
	out->dead = b->dead;
	for (size_t i = 0; i < b->nbuckets; i++)
		for (struct job_slot *s = b->buckets[i]; s; s = s->next)
			if (s->waiting && s->inflight)
				out->waiting++;
	pthread_mutex_unlock(&b->lock);
}
