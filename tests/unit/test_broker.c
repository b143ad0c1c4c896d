/*
 * test_broker.c - the evaluation broker: priorities, per-job serialization
 * and coalescing, delays, leases, nack and dead letters, shutdown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/util.h"
#include "orchestrator/broker.h"

static struct cod_evaluation *mk(const char *id, const char *job, int64_t prio, int64_t wait_ms)
{
	struct cod_evaluation *ev = xcalloc(1, sizeof(*ev));
	ev->id = xstrdup(id);
	ev->job_id = xstrdup(job);
	ev->namespace_ = xstrdup("default");
	ev->triggered_by = xstrdup("job-register");
	ev->type = xstrdup("batch");
	ev->status = xstrdup("pending");
	ev->priority = prio;
	ev->wait_until = wait_ms ? cod_now_ns() + wait_ms * 1000000LL : 0;
	return ev;
}

static void put(struct cod_broker *b, const char *id, const char *job, int64_t prio, int64_t wait_ms)
{
	struct cod_evaluation *ev = mk(id, job, prio, wait_ms);
	cod_broker_enqueue(b, ev);
	cod_evaluation_free(ev);
}

static char *take(struct cod_broker *b, int64_t timeout_ms, char **receipt)
{
	struct cod_evaluation *ev = NULL;
	int r = cod_broker_dequeue(b, timeout_ms, &ev, receipt);
	if (r != 1)
		return NULL;
	char *id = xstrdup(ev->id);
	cod_evaluation_free(ev);
	return id;
}

static void priority_then_fifo(void **state)
{
	(void)state;
	struct cod_broker *b = cod_broker_new(60000, 3);
	put(b, "e1", "j1", 0, 0);
	put(b, "e2", "j2", 50, 0);
	put(b, "e3", "j3", 0, 0);
	const char *want[] = {"e2", "e1", "e3"};
	for (int i = 0; i < 3; i++) {
		char *r = NULL;
		char *id = take(b, 100, &r);
		assert_non_null(id);
		assert_string_equal(id, want[i]);
		struct cod_strlist ans = {0};
		assert_int_equal(cod_broker_ack(b, id, r, &ans), 0);
		assert_int_equal(ans.n, 1);
		cod_strlist_release(&ans);
		free(id);
		free(r);
	}
	char *r = NULL;
	assert_null(take(b, 10, &r));
	cod_broker_free(b);
}

static void one_inflight_per_job_and_coalescing(void **state)
{
	(void)state;
	struct cod_broker *b = cod_broker_new(60000, 3);
	put(b, "a1", "job", 0, 0);
	char *r1 = NULL;
	char *id1 = take(b, 100, &r1);
	assert_string_equal(id1, "a1");
	put(b, "a2", "job", 0, 0);
	put(b, "a3", "job", 0, 0);
	put(b, "b1", "other", 0, 0);
	/* the job is in flight: only the other job is ready */
	char *r2 = NULL;
	char *id2 = take(b, 50, &r2);
	assert_string_equal(id2, "b1");
	char *r3 = NULL;
	assert_null(take(b, 20, &r3));
	struct cod_broker_stats st;
	cod_broker_stats(b, &st);
	assert_int_equal(st.inflight, 2);
	assert_int_equal(st.waiting, 1);
	struct cod_strlist ans = {0};
	assert_int_equal(cod_broker_ack(b, id1, r1, &ans), 0);
	cod_strlist_release(&ans);
	char *id3 = take(b, 100, &r3);
	assert_string_equal(id3, "a2");
	assert_int_equal(cod_broker_ack(b, id3, r3, &ans), 0);
	/* a3 was answered together with a2 */
	assert_int_equal(ans.n, 2);
	assert_string_equal(ans.items[1], "a3");
	cod_strlist_release(&ans);
	assert_int_equal(cod_broker_ack(b, id2, r2, NULL), 0);
	/* a stale receipt is refused */
	assert_int_equal(cod_broker_ack(b, id2, r2, NULL), -1);
	free(id1);
	free(id2);
	free(id3);
	free(r1);
	free(r2);
	free(r3);
	cod_broker_free(b);
}

static void delayed_evaluations_wait(void **state)
{
	(void)state;
	struct cod_broker *b = cod_broker_new(60000, 3);
	put(b, "late", "j", 0, 150);
	char *r = NULL;
	int64_t start = cod_mono_ms();
	assert_null(take(b, 30, &r));
	char *id = take(b, 2000, &r);
	assert_non_null(id);
	assert_true(cod_mono_ms() - start >= 140);
	assert_int_equal(cod_broker_ack(b, id, r, NULL), 0);
	free(id);
	free(r);
	cod_broker_free(b);
}

static void lease_expiry_redelivers(void **state)
{
	(void)state;
	struct cod_broker *b = cod_broker_new(100, 5);
	put(b, "x", "j", 0, 0);
	char *r1 = NULL, *r2 = NULL;
	char *id1 = take(b, 50, &r1);
	assert_non_null(id1);
	char *id2 = take(b, 2000, &r2);
	assert_non_null(id2);
	assert_string_equal(id2, "x");
	assert_string_not_equal(r1, r2);
	assert_int_equal(cod_broker_ack(b, id1, r1, NULL), -1);
	assert_int_equal(cod_broker_ack(b, id2, r2, NULL), 0);
	free(id1);
	free(id2);
	free(r1);
	free(r2);
	cod_broker_free(b);
}

static void nack_and_dead_letter(void **state)
{
	(void)state;
	struct cod_broker *b = cod_broker_new(60000, 1);
	put(b, "d", "j", 0, 0);
	char *r = NULL;
	char *id = take(b, 50, &r);
	bool dead = false;
	struct cod_strlist ans = {0};
	assert_int_equal(cod_broker_nack(b, id, r, &dead, &ans), 0);
	assert_true(dead);
	assert_int_equal(ans.n, 1);
	cod_strlist_release(&ans);
	free(id);
	free(r);
	struct cod_broker_stats st;
	cod_broker_stats(b, &st);
	assert_int_equal(st.dead, 1);
	assert_int_equal(st.ready + st.delayed + st.inflight, 0);

	/* with deliveries left, a nack delays the evaluation */
	struct cod_broker *b2 = cod_broker_new(60000, 3);
	put(b2, "n", "j", 0, 0);
	id = take(b2, 50, &r);
	assert_int_equal(cod_broker_nack(b2, id, r, &dead, NULL), 0);
	assert_false(dead);
	cod_broker_stats(b2, &st);
	assert_int_equal(st.delayed, 1);
	free(id);
	free(r);
	cod_broker_free(b2);
	cod_broker_free(b);
}

static void *waiter(void *arg)
{
	struct cod_broker *b = arg;
	struct cod_evaluation *ev = NULL;
	char *r = NULL;
	intptr_t rc = cod_broker_dequeue(b, 10000, &ev, &r);
	return (void *)rc;
}

static void shutdown_wakes_waiters(void **state)
{
	(void)state;
	struct cod_broker *b = cod_broker_new(60000, 3);
	pthread_t t;
	pthread_create(&t, NULL, waiter, b);
	cod_broker_shutdown(b);
	void *rc;
	pthread_join(t, &rc);
	assert_int_equal((intptr_t)rc, -1);
	cod_broker_free(b);
}

static void many_jobs(void **state)
{
	(void)state;
	struct cod_broker *b = cod_broker_new(60000, 3);
	char id[32], job[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "e%d", i);
		snprintf(job, sizeof(job), "j%d", i % 1000);
		put(b, id, job, i % 3, 0);
	}
	size_t answered = 0, runs = 0;
	for (;;) {
		char *r = NULL;
		char *got = take(b, 10, &r);
		if (!got)
			break;
		struct cod_strlist ans = {0};
		assert_int_equal(cod_broker_ack(b, got, r, &ans), 0);
		answered += ans.n;
		runs++;
		cod_strlist_release(&ans);
		free(got);
		free(r);
	}
	assert_int_equal(answered, 5000);
	/* nothing was in flight while they arrived: each job's five
	 * evaluations coalesce into one run */
	assert_int_equal(runs, 1000);
	cod_broker_free(b);
}

/* A claim takes a new evaluation at once when its job is free; while it
 * is held, the job's other evaluations wait and coalesce behind it, and a
 * claim of a busy job changes nothing. */
static void claim_free_jobs_only(void **state)
{
	(void)state;
	struct cod_broker *b = cod_broker_new(60000, 3);
	struct cod_evaluation *c1 = mk("c1", "j1", 0, 0);
	char *r1 = NULL;
	assert_int_equal(cod_broker_claim(b, c1, &r1), 1);
	assert_non_null(r1);

	/* held: a second claim of j1 fails, its enqueued ones wait */
	struct cod_evaluation *c2 = mk("c2", "j1", 0, 0);
	char *r2 = NULL;
	assert_int_equal(cod_broker_claim(b, c2, &r2), 0);
	assert_null(r2);
	put(b, "e2", "j1", 0, 0);
	put(b, "e3", "j1", 0, 0);
	put(b, "e4", "j2", 0, 0);
	char *r = NULL;
	char *id = take(b, 0, &r);
	assert_string_equal(id, "e4"); /* j2 only */
	free(id);
	free(r);
	r = NULL;
	assert_null(take(b, 0, &r));
	struct cod_broker_stats st;
	cod_broker_stats(b, &st);
	assert_int_equal(st.inflight, 2);

	/* j2 is in flight: no claim for it either; a due-later one is never
	 * claimed */
	struct cod_evaluation *c3 = mk("c3", "j2", 0, 0), *c4 = mk("c4", "j3", 0, 60000);
	assert_int_equal(cod_broker_claim(b, c3, &r2), 0);
	assert_int_equal(cod_broker_claim(b, c4, &r2), 0);

	/* the ack answers the claimed one alone; j1's waiting one is next,
	 * with the one coalesced into it */
	struct cod_strlist answered = {0};
	assert_int_equal(cod_broker_ack(b, "c1", r1, &answered), 0);
	assert_int_equal(answered.n, 1);
	assert_string_equal(answered.items[0], "c1");
	cod_strlist_release(&answered);
	id = take(b, 0, &r);
	assert_string_equal(id, "e2");
	assert_int_equal(cod_broker_ack(b, id, r, &answered), 0);
	assert_int_equal(answered.n, 2);
	assert_string_equal(answered.items[1], "e3");
	cod_strlist_release(&answered);
	free(id);
	free(r);

	/* j1 free again: claimable */
	assert_int_equal(cod_broker_claim(b, c2, &r2), 1);
	bool dead = false;
	assert_int_equal(cod_broker_nack(b, "c2", r2, &dead, &answered), 0);
	assert_false(dead);
	cod_strlist_release(&answered);
	free(r1);
	free(r2);
	cod_evaluation_free(c1);
	cod_evaluation_free(c2);
	cod_evaluation_free(c3);
	cod_evaluation_free(c4);
	cod_broker_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(priority_then_fifo),
		cmocka_unit_test(one_inflight_per_job_and_coalescing),
		cmocka_unit_test(delayed_evaluations_wait),
		cmocka_unit_test(lease_expiry_redelivers),
		cmocka_unit_test(nack_and_dead_letter),
		cmocka_unit_test(shutdown_wakes_waiters),
		cmocka_unit_test(many_jobs),
		cmocka_unit_test(claim_free_jobs_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
