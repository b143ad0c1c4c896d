/*
 * broker.h - the evaluation broker (after Nomad's and Bacalhau's), fed from
 * the store so that it is durable: every evaluation is written to the store
 * before it is enqueued here, and at start-up the orchestrator re-enqueues
 * every pending evaluation of the store.
 *
 * - Ready evaluations are handed out by priority (higher first), then age.
 * - One evaluation per job is in flight at a time. Evaluations that arrive
 *   for a job while one is in flight or waiting are coalesced into the
 *   waiting one: the scheduler reconciles the whole job anyway, so one run
 *   answers them all. cod_broker_ack() returns the IDs it answered.
 * - Evaluations with WaitUntil in the future wait in a delay queue.
 * - A dequeued evaluation is leased: if it is neither acked nor nacked
 *   within the visibility timeout it is handed out again.
 * - Nack re-enqueues after a delay (5 s, then 30 s compounding); after
 *   max_deliveries it is dead-lettered (returned by cod_broker_nack with
 *   dead = true; the caller marks it failed in the store).
 *
 * Thread-safe; dequeue blocks on a condition variable.
 */
#ifndef COD_BROKER_H
#define COD_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

struct cod_broker;

struct cod_broker *cod_broker_new(int64_t visibility_timeout_ms, int64_t max_deliveries);
void cod_broker_free(struct cod_broker *b);

/* Enqueue a copy of ev (now_ms from cod_mono_ms()). */
void cod_broker_enqueue(struct cod_broker *b, const struct cod_evaluation *ev);

/* Wait up to timeout_ms for a ready evaluation. Returns 1 with *ev (a copy
 * the caller frees) and *receipt (heap), 0 on timeout, -1 after shutdown. */
int cod_broker_dequeue(struct cod_broker *b, int64_t timeout_ms, struct cod_evaluation **ev, char **receipt);

/* Take ev (a new evaluation, not enqueued) at once, as if enqueued and
 * dequeued, when its job has none in flight or waiting and it is due now:
 * returns 1 with *receipt (heap) to ack or nack as usual; evaluations of
 * its job enqueued meanwhile wait and coalesce behind it. Otherwise 0 and
 * nothing changes (enqueue it). */
int cod_broker_claim(struct cod_broker *b, const struct cod_evaluation *ev, char **receipt);

/* Done with an evaluation. Fills *answered (heap array of heap IDs, the
 * evaluation itself first, then those coalesced into it). Returns -1 if
 * the receipt is stale (the lease expired and it was handed out again). */
int cod_broker_ack(struct cod_broker *b, const char *eval_id, const char *receipt, struct cod_strlist *answered);
/* Give it back; *dead set when it exceeded max deliveries (then *answered
 * lists it and its coalesced ones, to be marked failed). */
int cod_broker_nack(struct cod_broker *b, const char *eval_id, const char *receipt, bool *dead,
		    struct cod_strlist *answered);

/* Wake every waiter; later dequeues return -1. */
void cod_broker_shutdown(struct cod_broker *b);

struct cod_broker_stats {
	size_t ready, delayed, inflight, waiting, dead;
};
void cod_broker_stats(struct cod_broker *b, struct cod_broker_stats *out);

#endif
