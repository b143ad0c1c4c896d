/*
 * test_scheduler.c - the schedulers as pure functions: batch and service by
 * partition (spread, approval, completion, lost nodes, retries, backoff,
 * queueing, timeouts, updates, stop, rate limit), ops, daemon, the job
 * state transitions and their history events, the message each execution
 * change implies, and determinism for a seed.
 *
 * Each test builds a small world in memory (a job, its executions, the
 * nodes), runs cod_scheduler_process() and checks the plan; multi-step
 * tests apply the plan to the world the way the store would and run again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "orchestrator/scheduler.h"
#include "common/banned.h"

#define S (1000000000LL)
#define T0 (1700000000LL * S) /* job creation */
#define GiB (1024ULL * 1024 * 1024)

/* ------------------------------------------------------------ world */

struct world {
	struct cod_job *job;
	struct cod_execution *execs[64];
	size_t nexecs;
	struct cod_node_state *nodes[32];
	size_t nnodes;
	struct cod_evaluation eval;
	struct cod_sched_config cfg;
	int64_t now;
	uint64_t seed;
	int64_t version_time;
	struct cod_plan plan;
};

static struct cod_job *parse_job(const char *json)
{
	struct cod_error *err = NULL;
	struct cod_job *job = cod_job_parse(json, strlen(json), &err);
	if (!job)
		fail_msg("parse job: %s", err->message);
	free(job->id);
	job->id = xstrdup("j-1");
	free(job->name);
	job->name = xstrdup("job-one");
	free(job->namespace_);
	job->namespace_ = xstrdup("default");
	job->version = 1;
	job->state.type = COD_JOB_PENDING;
	job->create_time = T0;
	job->modify_time = T0;
	job->priority = 50;
	return job;
}

/* A job of type with count and extra task JSON (",\"Timeouts\":{...}"). */
static struct cod_job *make_job(const char *type, int count, const char *engine, const char *task_extra,
				const char *job_extra)
{
	char *json =
	    xasprintf("{\"Type\":\"%s\",\"Count\":%d,%s\"Tasks\":[{\"Name\":\"main\","
		      "\"Engine\":{\"Type\":\"%s\"},\"Resources\":{\"CPU\":\"1\",\"Memory\":\"1Gb\"}%s}]}",
		      type, count, job_extra ? job_extra : "", engine, task_extra ? task_extra : "");
	struct cod_job *job = parse_job(json);
	free(json);
	return job;
}

static struct cod_node_state *make_node(const char *id)
{
	struct cod_node_state *n = xcalloc(1, sizeof(*n));
	n->info.node_id = xstrdup(id);
	n->info.node_type = xstrdup("Compute");
	n->info.has_compute = true;
	n->membership = COD_NODE_APPROVED;
	n->connection = COD_NODE_CONNECTED;
	struct cod_compute_info *ci = &n->info.compute;
	cod_strlist_add(&ci->engines, "docker");
	cod_strlist_add(&ci->engines, "wasm");
	cod_strlist_add(&ci->engines, "noop");
	cod_strlist_add(&ci->publishers, "local");
	cod_strlist_add(&ci->publishers, "noop");
	cod_strlist_add(&ci->storages, "urldownload");
	cod_strlist_add(&ci->storages, "inline");
	struct cod_resources cap = {.cpu = 8, .memory = 16 * GiB, .disk = 100 * GiB, .gpu = 0};
	ci->max_capacity = cap;
	ci->available_capacity = cap;
	ci->max_job_requirements = cap;
	return n;
}

static void world_init(struct world *w, struct cod_job *job, size_t nnodes)
{
	memset(w, 0, sizeof(*w));
	w->job = job;
	for (size_t i = 0; i < nnodes; i++) {
		char id[32];
		snprintf(id, sizeof(id), "n-%zu", i + 1);
		w->nodes[w->nnodes++] = make_node(id);
	}
	w->eval.id = xstrdup("ev-1");
	w->eval.job_id = xstrdup("j-1");
	w->eval.triggered_by = xstrdup("job-register");
	w->cfg.queue_backoff_ms = 30000;
	w->cfg.retry_attempts = 3;
	w->cfg.retry_backoff_ms = 0;
	w->cfg.oversubscription = 1.0;
	w->cfg.max_execs_per_eval = 0;
	w->now = T0 + 10 * S;
	w->seed = 42;
}

static void world_release(struct world *w)
{
	cod_plan_release(&w->plan);
	cod_job_free(w->job);
	for (size_t i = 0; i < w->nexecs; i++)
		cod_execution_free(w->execs[i]);
	for (size_t i = 0; i < w->nnodes; i++)
		cod_node_free(w->nodes[i]);
	free(w->eval.id);
	free(w->eval.job_id);
	free(w->eval.triggered_by);
}

static struct cod_node_state *node(struct world *w, const char *id)
{
	for (size_t i = 0; i < w->nnodes; i++)
		if (!strcmp(w->nodes[i]->info.node_id, id))
			return w->nodes[i];
	fail_msg("no node %s", id);
	return NULL;
}

static struct cod_execution *add_exec(struct world *w, const char *id, const char *node_id, int64_t partition,
				      int desired, int compute, int64_t create_time)
{
	struct cod_execution *e = xcalloc(1, sizeof(*e));
	e->id = xstrdup(id);
	e->namespace_ = xstrdup("default");
	e->job_id = xstrdup("j-1");
	e->node_id = xstrdup(node_id);
	e->job_version = w->job->version;
	e->partition_index = partition;
	e->desired_state.type = desired;
	e->compute_state.type = compute;
	e->create_time = create_time;
	e->modify_time = create_time;
	w->execs[w->nexecs++] = e;
	return e;
}

static void set_compute(struct cod_execution *e, int compute, const char *message, int64_t when)
{
	e->compute_state.type = compute;
	free(e->compute_state.message);
	e->compute_state.message = xstrdup_or_null(message);
	e->modify_time = when;
}

static void run(struct world *w)
{
	cod_plan_release(&w->plan);
	struct cod_sched_input in = {
	    .eval = &w->eval,
	    .job = w->job,
	    .execs = w->execs,
	    .nexecs = w->nexecs,
	    .nodes = w->nodes,
	    .nnodes = w->nnodes,
	    .now = w->now,
	    .seed = w->seed,
	    .cfg = &w->cfg,
	    .version_time = w->version_time,
	};
	struct cod_error *err = NULL;
	int rc = cod_scheduler_process(&in, &w->plan, &err);
	if (rc < 0)
		fail_msg("process: %s", err->message);
	assert_int_equal(rc, 0);
}

static struct cod_execution *find_exec(struct world *w, const char *id)
{
	for (size_t i = 0; i < w->nexecs; i++)
		if (!strcmp(w->execs[i]->id, id))
			return w->execs[i];
	return NULL;
}

/* Apply the plan as the store would: updates, new executions, job state. */
static void apply(struct world *w)
{
	struct cod_plan *p = &w->plan;
	for (size_t i = 0; i < p->n_updates; i++) {
		struct cod_execution *e = find_exec(w, p->updates[i].execution_id);
		assert_non_null(e);
		if (p->updates[i].desired_state >= 0)
			e->desired_state.type = p->updates[i].desired_state;
		if (p->updates[i].compute_state >= 0) {
			e->compute_state.type = p->updates[i].compute_state;
			free(e->compute_state.message);
			e->compute_state.message = xstrdup(p->updates[i].message);
		}
		e->modify_time = w->now;
	}
	for (size_t i = 0; i < p->n_new; i++)
		w->execs[w->nexecs++] = cod_execution_dup(p->new_execs[i]);
	if (p->set_job_state) {
		w->job->state.type = p->job_state;
		free(w->job->state.message);
		w->job->state.message = xstrdup(p->job_message);
	}
	cod_plan_release(p);
}

static const struct cod_exec_update *update_of(struct world *w, const char *exec_id)
{
	for (size_t i = 0; i < w->plan.n_updates; i++)
		if (!strcmp(w->plan.updates[i].execution_id, exec_id))
			return &w->plan.updates[i];
	return NULL;
}

static const struct cod_evaluation *eval_of(struct world *w, const char *trigger)
{
	for (size_t i = 0; i < w->plan.n_evals; i++)
		if (!strcmp(w->plan.new_evals[i]->triggered_by, trigger))
			return w->plan.new_evals[i];
	return NULL;
}

static size_t new_on(struct world *w, const char *node_id)
{
	size_t n = 0;
	for (size_t i = 0; i < w->plan.n_new; i++)
		n += !strcmp(w->plan.new_execs[i]->node_id, node_id);
	return n;
}

static void assert_job_state(struct world *w, enum cod_job_state st)
{
	assert_true(w->plan.set_job_state);
	assert_string_equal(cod_job_state_name(w->plan.job_state), cod_job_state_name(st));
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!haystack || !strstr(haystack, needle))
		fail_msg("\"%s\" does not contain \"%s\"", haystack ? haystack : "(null)", needle);
}

/* ------------------------------------------------------------ batch */

static void test_batch_spreads_partitions(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 3, "docker", NULL, NULL), 3);
	run(&w);
	assert_int_equal(w.plan.n_new, 3);
	bool partitions[3] = {false, false, false};
	for (size_t i = 0; i < 3; i++) {
		const struct cod_execution *e = w.plan.new_execs[i];
		assert_true(cod_str_has_prefix(e->id, "e-"));
		assert_string_equal(e->namespace_, "default");
		assert_string_equal(e->eval_id, "ev-1");
		assert_string_equal(e->name, "job-one");
		assert_string_equal(e->job_id, "j-1");
		assert_non_null(e->job);
		assert_string_equal(e->job->id, "j-1");
		assert_int_equal(e->job_version, 1);
		assert_string_equal(e->alloc_task, "main");
		assert_true(e->allocated.cpu == 1.0);
		assert_int_equal(e->allocated.memory, 1000000000ULL);
		assert_int_equal(e->desired_state.type, COD_DESIRED_PENDING);
		assert_string_equal(e->desired_state.message, "scheduled");
		assert_int_equal(e->compute_state.type, COD_EXEC_NEW);
		assert_int_equal(e->create_time, w.now);
		assert_int_equal(e->modify_time, w.now);
		assert_true(e->partition_index >= 0 && e->partition_index < 3);
		assert_false(partitions[e->partition_index]);
		partitions[e->partition_index] = true;
	}
	/* one partition per node */
	assert_int_equal(new_on(&w, "n-1"), 1);
	assert_int_equal(new_on(&w, "n-2"), 1);
	assert_int_equal(new_on(&w, "n-3"), 1);
	/* still Pending until a bid is approved; nothing else to do */
	assert_false(w.plan.set_job_state);
	assert_int_equal(w.plan.n_evals, 0);
	assert_int_equal(w.plan.n_updates, 0);
	assert_int_equal(w.plan.n_events, 0);
	world_release(&w);
}

static void test_batch_approves_oldest_accepted_bid(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 1, "docker", NULL, NULL), 3);
	add_exec(&w, "e-new", "n-1", 0, COD_DESIRED_PENDING, COD_EXEC_ASK_FOR_BID_ACCEPTED, T0 + 3 * S);
	add_exec(&w, "e-old", "n-2", 0, COD_DESIRED_PENDING, COD_EXEC_ASK_FOR_BID_ACCEPTED, T0 + 1 * S);
	add_exec(&w, "e-mid", "n-3", 0, COD_DESIRED_PENDING, COD_EXEC_ASK_FOR_BID_ACCEPTED, T0 + 2 * S);
	run(&w);
	const struct cod_exec_update *u = update_of(&w, "e-old");
	assert_non_null(u);
	assert_int_equal(u->desired_state, COD_DESIRED_RUNNING);
	assert_int_equal(u->compute_state, COD_EXEC_BID_ACCEPTED);
	for (int i = 0; i < 2; i++) {
		u = update_of(&w, i ? "e-new" : "e-mid");
		assert_non_null(u);
		assert_int_equal(u->desired_state, COD_DESIRED_STOPPED);
		assert_int_equal(u->compute_state, COD_EXEC_BID_REJECTED);
		assert_contains(u->message, "bid rejected");
	}
	assert_int_equal(w.plan.n_new, 0);
	/* the job runs once an execution is desired Running */
	assert_job_state(&w, COD_JOB_RUNNING);
	assert_int_equal(w.plan.n_events, 1);
	const struct cod_history_event *h = w.plan.events[0];
	assert_int_equal(h->type, COD_HISTORY_JOB);
	assert_string_equal(h->topic, "Scheduling");
	assert_string_equal(h->job_id, "j-1");
	assert_true(h->has_job_state);
	assert_int_equal(h->job_state_prev, COD_JOB_PENDING);
	assert_int_equal(h->job_state_new, COD_JOB_RUNNING);
	assert_int_equal(h->event_time, w.now);

	/* the messages those updates imply */
	apply(&w);
	run(&w);
	assert_int_equal(w.plan.n_updates, 0);
	assert_false(w.plan.set_job_state);
	world_release(&w);
}

static void test_batch_outstanding_bid_left_alone(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 1, "docker", NULL, NULL), 2);
	add_exec(&w, "e-1", "n-1", 0, COD_DESIRED_PENDING, COD_EXEC_NEW, T0 + 1 * S);
	run(&w);
	/* waiting for the node's answer: no new execution, no change */
	assert_int_equal(w.plan.n_new, 0);
	assert_int_equal(w.plan.n_updates, 0);
	assert_false(w.plan.set_job_state);
	world_release(&w);
}

static void test_batch_completes(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 2, "docker", NULL, NULL), 2);
	w.job->state.type = COD_JOB_RUNNING;
	add_exec(&w, "e-1", "n-1", 0, COD_DESIRED_STOPPED, COD_EXEC_COMPLETED, T0 + 1 * S);
	add_exec(&w, "e-2", "n-2", 1, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 1 * S);
	run(&w);
	assert_false(w.plan.set_job_state);
	assert_int_equal(w.plan.n_new, 0);

	set_compute(w.execs[1], COD_EXEC_COMPLETED, "", T0 + 5 * S);
	w.execs[1]->desired_state.type = COD_DESIRED_STOPPED;
	run(&w);
	assert_job_state(&w, COD_JOB_COMPLETED);
	assert_string_equal(w.plan.job_message, "");
	assert_int_equal(w.plan.n_events, 1);
	assert_int_equal(w.plan.events[0]->job_state_new, COD_JOB_COMPLETED);
	assert_string_equal(w.plan.events[0]->message, "job completed");
	assert_int_equal(w.plan.n_new, 0);
	world_release(&w);
}

static void test_batch_completed_partition_stops_duplicates(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 2, "docker", NULL, NULL), 3);
	w.job->state.type = COD_JOB_RUNNING;
	add_exec(&w, "e-done", "n-1", 0, COD_DESIRED_STOPPED, COD_EXEC_COMPLETED, T0 + 1 * S);
	add_exec(&w, "e-dup", "n-2", 0, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 2 * S);
	add_exec(&w, "e-bid", "n-3", 0, COD_DESIRED_PENDING, COD_EXEC_ASK_FOR_BID_ACCEPTED, T0 + 2 * S);
	add_exec(&w, "e-p1", "n-3", 1, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 1 * S);
	run(&w);
	const struct cod_exec_update *u = update_of(&w, "e-dup");
	assert_non_null(u);
	assert_int_equal(u->desired_state, COD_DESIRED_STOPPED);
	assert_int_equal(u->compute_state, -1); /* the node reports how it ended */
	assert_contains(u->message, "partition 0 already completed");
	u = update_of(&w, "e-bid");
	assert_non_null(u);
	assert_int_equal(u->desired_state, COD_DESIRED_STOPPED);
	assert_int_equal(u->compute_state, COD_EXEC_BID_REJECTED);
	assert_null(update_of(&w, "e-p1"));
	assert_null(update_of(&w, "e-done"));
	assert_int_equal(w.plan.n_new, 0);
	assert_false(w.plan.set_job_state);
	world_release(&w);
}

static void test_batch_keeps_oldest_running(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 1, "docker", NULL, NULL), 2);
	w.job->state.type = COD_JOB_QUEUED;
	add_exec(&w, "e-b", "n-1", 0, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 2 * S);
	add_exec(&w, "e-a", "n-2", 0, COD_DESIRED_RUNNING, COD_EXEC_BID_ACCEPTED, T0 + 1 * S);
	run(&w);
	assert_null(update_of(&w, "e-a"));
	const struct cod_exec_update *u = update_of(&w, "e-b");
	assert_non_null(u);
	assert_int_equal(u->desired_state, COD_DESIRED_STOPPED);
	assert_contains(u->message, "duplicate");
	/* Queued -> Running: an execution is desired Running */
	assert_job_state(&w, COD_JOB_RUNNING);
	assert_int_equal(w.plan.events[0]->job_state_prev, COD_JOB_QUEUED);
	world_release(&w);
}

static void test_batch_lost_node_replaced(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 1, "docker", NULL, NULL), 2);
	w.job->state.type = COD_JOB_RUNNING;
	node(&w, "n-1")->connection = COD_NODE_DISCONNECTED;
	add_exec(&w, "e-1", "n-1", 0, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 1 * S);
	run(&w);
	const struct cod_exec_update *u = update_of(&w, "e-1");
	assert_non_null(u);
	assert_int_equal(u->desired_state, COD_DESIRED_STOPPED);
	assert_int_equal(u->compute_state, COD_EXEC_FAILED);
	assert_string_equal(u->message, "node n-1 lost");
	assert_int_equal(w.plan.n_new, 1);
	assert_string_equal(w.plan.new_execs[0]->node_id, "n-2");
	assert_int_equal(w.plan.new_execs[0]->partition_index, 0);
	assert_false(w.plan.set_job_state);
	world_release(&w);
}

static void test_lost_unknown_and_unapproved_nodes(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 3, "docker", NULL, NULL), 4);
	w.job->state.type = COD_JOB_RUNNING;
	node(&w, "n-2")->membership = COD_NODE_REJECTED;
	add_exec(&w, "e-gone", "n-9", 0, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 1 * S);
	add_exec(&w, "e-rej", "n-2", 1, COD_DESIRED_PENDING, COD_EXEC_NEW, T0 + 1 * S);
	add_exec(&w, "e-ok", "n-1", 2, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 1 * S);
	/* being stopped on a lost node: ends Cancelled, not Failed */
	add_exec(&w, "e-stopping", "n-9", 2, COD_DESIRED_STOPPED, COD_EXEC_RUNNING, T0 + 1 * S);
	run(&w);
	assert_string_equal(update_of(&w, "e-gone")->message, "node n-9 lost");
	assert_int_equal(update_of(&w, "e-gone")->compute_state, COD_EXEC_FAILED);
	assert_string_equal(update_of(&w, "e-rej")->message, "node n-2 lost");
	assert_null(update_of(&w, "e-ok"));
	assert_int_equal(update_of(&w, "e-stopping")->compute_state, COD_EXEC_CANCELLED);
	assert_int_equal(update_of(&w, "e-stopping")->desired_state, -1);
	/* partitions 0 and 1 need nodes: n-3 and n-4 are free, n-1 runs
	 * partition 2 and n-2 is rejected */
	assert_int_equal(w.plan.n_new, 2);
	assert_int_equal(new_on(&w, "n-3"), 1);
	assert_int_equal(new_on(&w, "n-4"), 1);
	assert_false(w.plan.set_job_state);

	/* with n-4 gone one partition cannot be placed: QueueTimeout 0 fails
	 * the job, and nothing is placed */
	w.nodes[3]->connection = COD_NODE_DISCONNECTED;
	run(&w);
	assert_int_equal(w.plan.n_new, 0);
	assert_job_state(&w, COD_JOB_FAILED);
	assert_contains(w.plan.job_message, "requested: 2, available: 2, suitable: 1.");
	assert_contains(w.plan.job_message, "node n-1: already running this job");
	assert_int_equal(update_of(&w, "e-ok")->desired_state, COD_DESIRED_STOPPED);
	world_release(&w);
}

static void test_batch_retry_attempts_exhausted(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 1, "docker", NULL, NULL), 5);
	w.job->state.type = COD_JOB_RUNNING;
	struct cod_execution *e;
	e = add_exec(&w, "e-1", "n-1", 0, COD_DESIRED_STOPPED, COD_EXEC_FAILED, T0 + 1 * S);
	set_compute(e, COD_EXEC_FAILED, "exit code 1", T0 + 2 * S);
	e = add_exec(&w, "e-2", "n-2", 0, COD_DESIRED_STOPPED, COD_EXEC_FAILED, T0 + 3 * S);
	set_compute(e, COD_EXEC_FAILED, "exit code 2", T0 + 4 * S);
	run(&w);
	/* two failures of three attempts: placed again */
	assert_int_equal(w.plan.n_new, 1);
	assert_false(w.plan.set_job_state);

	e = add_exec(&w, "e-3", "n-3", 0, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 5 * S);
	set_compute(e, COD_EXEC_FAILED, "exit code 3", T0 + 6 * S);
	run(&w);
	assert_int_equal(w.plan.n_new, 0);
	assert_job_state(&w, COD_JOB_FAILED);
	assert_string_equal(w.plan.job_message, "partition 0 failed 3 times: exit code 3");
	assert_int_equal(w.plan.n_events, 1);
	assert_string_equal(w.plan.events[0]->message, "partition 0 failed 3 times: exit code 3");
	assert_string_equal(cod_kvlist_get(&w.plan.events[0]->details, "IsError"), "true");
	world_release(&w);
}

static void test_retry_attempts_from_meta(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 1, "docker", NULL, "\"Meta\":{\"cod.retry.attempts\":\"1\"},"), 3);
	struct cod_execution *e =
	    add_exec(&w, "e-1", "n-1", 0, COD_DESIRED_STOPPED, COD_EXEC_FAILED, T0 + 1 * S);
	set_compute(e, COD_EXEC_FAILED, "oom killed", T0 + 2 * S);
	run(&w);
	assert_job_state(&w, COD_JOB_FAILED);
	assert_string_equal(w.plan.job_message, "partition 0 failed 1 time: oom killed");

	/* an invalid value falls back to the configured default */
	cod_kvlist_set(&w.job->meta, COD_META_RETRY_ATTEMPTS, "zero");
	run(&w);
	assert_false(w.plan.set_job_state);
	assert_int_equal(w.plan.n_new, 1);
	world_release(&w);
}

static void test_retry_backoff_delays(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 2, "docker", NULL, NULL), 3);
	w.job->state.type = COD_JOB_RUNNING;
	w.cfg.retry_backoff_ms = 30000;
	struct cod_execution *e =
	    add_exec(&w, "e-1", "n-1", 0, COD_DESIRED_STOPPED, COD_EXEC_FAILED, T0 + 1 * S);
	set_compute(e, COD_EXEC_FAILED, "boom", w.now - 10 * S);
	run(&w);
	/* partition 1 never ran: placed now; partition 0 waits */
	assert_int_equal(w.plan.n_new, 1);
	assert_int_equal(w.plan.new_execs[0]->partition_index, 1);
	const struct cod_evaluation *ev = eval_of(&w, "retry");
	assert_non_null(ev);
	assert_int_equal(ev->wait_until, w.now - 10 * S + 30 * S);
	assert_string_equal(ev->job_id, "j-1");
	assert_string_equal(ev->type, "batch");
	assert_string_equal(ev->status, "pending");
	assert_string_equal(ev->namespace_, "default");
	assert_int_equal(ev->priority, 50);
	assert_non_null(ev->id);

	/* the backoff from Meta wins; once it passed, the partition is placed */
	cod_kvlist_set(&w.job->meta, COD_META_RETRY_BACKOFF, "5s");
	run(&w);
	assert_null(eval_of(&w, "retry"));
	assert_int_equal(w.plan.n_new, 2);
	world_release(&w);
}

static void test_no_suitable_nodes_fails_with_reasons(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 1, "flibble", NULL, NULL), 2);
	struct cod_node_state *orch = make_node("n-0");
	free(orch->info.node_type);
	orch->info.node_type = xstrdup("Requester");
	w.nodes[w.nnodes++] = orch;
	run(&w);
	assert_int_equal(w.plan.n_new, 0);
	assert_job_state(&w, COD_JOB_FAILED);
	assert_string_equal(w.plan.job_message,
			    "not enough nodes to run job. requested: 1, available: 2, suitable: 0. "
			    "node n-0: node is the orchestrator; node n-1: does not support engine flibble; "
			    "node n-2: does not support engine flibble");
	assert_int_equal(w.plan.n_evals, 0);
	assert_int_equal(w.plan.n_events, 1);
	assert_int_equal(w.plan.events[0]->job_state_prev, COD_JOB_PENDING);
	assert_int_equal(w.plan.events[0]->job_state_new, COD_JOB_FAILED);
	world_release(&w);
}

static void test_queue_timeout_queues_then_places(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 1, "docker", ",\"Timeouts\":{\"QueueTimeout\":600}", NULL), 1);
	node(&w, "n-1")->membership = COD_NODE_PENDING;
	run(&w);
	assert_int_equal(w.plan.n_new, 0);
	assert_job_state(&w, COD_JOB_QUEUED);
	assert_contains(w.plan.job_message, "no suitable nodes");
	assert_contains(w.plan.job_message, "node n-1: node is not approved (PENDING)");
	assert_contains(w.plan.job_message, "waiting up to 600s (QueueTimeout)");
	const struct cod_evaluation *ev = eval_of(&w, "job-queue");
	assert_non_null(ev);
	assert_int_equal(ev->wait_until, w.now + 30 * S);
	assert_int_equal(w.plan.n_events, 1);
	apply(&w);

	/* still nothing: stays Queued without another state change */
	w.now += 30 * S;
	run(&w);
	assert_false(w.plan.set_job_state);
	assert_non_null(eval_of(&w, "job-queue"));
	apply(&w);

	/* a node appears: placed; Running once its bid is approved */
	w.nodes[w.nnodes++] = make_node("n-2");
	w.now += 30 * S;
	run(&w);
	assert_int_equal(w.plan.n_new, 1);
	assert_string_equal(w.plan.new_execs[0]->node_id, "n-2");
	assert_null(eval_of(&w, "job-queue"));
	assert_false(w.plan.set_job_state);
	apply(&w);
	set_compute(w.execs[0], COD_EXEC_ASK_FOR_BID_ACCEPTED, "", w.now);
	run(&w);
	assert_job_state(&w, COD_JOB_RUNNING);
	world_release(&w);
}

static void test_queue_timeout_expires(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 1, "docker", ",\"Timeouts\":{\"QueueTimeout\":60}", NULL), 1);
	node(&w, "n-1")->connection = COD_NODE_DISCONNECTED;
	w.job->state.type = COD_JOB_QUEUED;
	/* the next job-queue evaluation is due no later than the deadline */
	w.now = T0 + 50 * S;
	run(&w);
	assert_int_equal(eval_of(&w, "job-queue")->wait_until, T0 + 60 * S);
	w.now = T0 + 60 * S;
	run(&w);
	assert_job_state(&w, COD_JOB_FAILED);
	assert_contains(w.plan.job_message,
			"not enough nodes to run job. requested: 1, available: 0, suitable: 0.");
	assert_contains(w.plan.job_message, "node n-1: node is disconnected");
	assert_null(eval_of(&w, "job-queue"));

	/* an update gets its full QueueTimeout from the version's creation */
	w.version_time = T0 + 55 * S;
	run(&w);
	assert_false(w.plan.set_job_state); /* still Queued */
	assert_int_equal(eval_of(&w, "job-queue")->wait_until, w.now + 30 * S);
	world_release(&w);
}

/* Busy (over-subscribed) nodes delay a job, never fail it: within
 * QueueTimeout it waits for room; where it would fail, the least busy
 * node gets it (and queues it). */
static void test_busy_nodes_delay_never_fail(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 2, "docker", NULL, NULL), 3);
	/* job 1 CPU; used + queued + 1 > 8 on all three; n-2 least busy */
	node(&w, "n-1")->info.compute.queue_capacity.cpu = 8;
	node(&w, "n-2")->info.compute.queue_capacity.cpu = 7.5;
	node(&w, "n-3")->info.compute.queue_capacity.cpu = 9;
	node(&w, "n-3")->info.compute.engines.items[0][0] = 'x'; /* no docker: cannot run it at all */
	run(&w);
	assert_false(w.plan.set_job_state && w.plan.job_state == COD_JOB_FAILED);
	assert_int_equal(w.plan.n_new, 2);
	assert_string_equal(w.plan.new_execs[0]->node_id, "n-2");
	assert_string_equal(w.plan.new_execs[1]->node_id, "n-1");
	/* their history events and desired-state messages say why they queue */
	assert_string_equal(w.plan.new_events[0],
			    "scheduled on node n-2, which is busy (over-subscribed) and queues it");
	assert_string_equal(w.plan.new_events[1],
			    "scheduled on node n-1, which is busy (over-subscribed) and queues it");
	assert_contains(w.plan.new_execs[0]->desired_state.message, "busy node");
	assert_null(eval_of(&w, "job-queue"));
	world_release(&w);

	/* three partitions, two nodes that could run them: fails as before,
	 * naming the busy nodes */
	world_init(&w, make_job("batch", 3, "docker", NULL, NULL), 3);
	node(&w, "n-1")->info.compute.queue_capacity.cpu = 8;
	node(&w, "n-2")->info.compute.queue_capacity.cpu = 8;
	node(&w, "n-3")->info.compute.engines.items[0][0] = 'x';
	run(&w);
	assert_job_state(&w, COD_JOB_FAILED);
	assert_contains(w.plan.job_message, "node n-1: node is over-subscribed (cpu)");
	world_release(&w);

	/* with QueueTimeout it waits for room instead, as in Bacalhau */
	world_init(&w, make_job("batch", 1, "docker", ",\"Timeouts\":{\"QueueTimeout\":60}", NULL), 1);
	node(&w, "n-1")->info.compute.queue_capacity.cpu = 8;
	run(&w);
	assert_int_equal(w.plan.n_new, 0);
	assert_job_state(&w, COD_JOB_QUEUED);
	assert_contains(w.plan.job_message, "node n-1: node is over-subscribed (cpu)");
	/* and once QueueTimeout passed, the busy node gets it */
	w.now = T0 + 60 * S;
	w.job->state.type = COD_JOB_QUEUED;
	run(&w);
	assert_int_equal(w.plan.n_new, 1);
	assert_false(w.plan.set_job_state && w.plan.job_state == COD_JOB_FAILED);
	world_release(&w);
}

static void test_queue_partial_placement(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 3, "docker", ",\"Timeouts\":{\"QueueTimeout\":600}", NULL), 2);
	run(&w);
	assert_int_equal(w.plan.n_new, 2);
	assert_non_null(eval_of(&w, "job-queue"));
	/* something was placed: the job is not Queued */
	assert_false(w.plan.set_job_state);
	world_release(&w);
}

static void test_total_timeout_fails_job(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 1, "docker", ",\"Timeouts\":{\"TotalTimeout\":60}", NULL), 2);
	w.job->state.type = COD_JOB_RUNNING;
	add_exec(&w, "e-1", "n-1", 0, COD_DESIRED_RUNNING, COD_EXEC_PREPARING, T0 + 1 * S);
	w.now = T0 + 60 * S;
	run(&w);
	assert_false(w.plan.set_job_state); /* exactly at the limit: not yet */
	w.now = T0 + 61 * S;
	run(&w);
	assert_job_state(&w, COD_JOB_FAILED);
	assert_string_equal(w.plan.job_message, "job timed out after 60s (TotalTimeout)");
	const struct cod_exec_update *u = update_of(&w, "e-1");
	assert_int_equal(u->desired_state, COD_DESIRED_STOPPED);
	assert_string_equal(u->message, "job timed out after 60s (TotalTimeout)");
	assert_int_equal(w.plan.n_new, 0);
	world_release(&w);
}

static void test_execution_timeout_fails_execution(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 1, "docker", ",\"Timeouts\":{\"ExecutionTimeout\":30}", NULL), 2);
	w.job->state.type = COD_JOB_RUNNING;
	struct cod_execution *e = add_exec(&w, "e-1", "n-1", 0, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0);
	e->modify_time = T0 + 5 * S; /* reported Running after preparing */
	w.now = T0 + 34 * S;
	run(&w);
	assert_int_equal(w.plan.n_updates, 0);
	w.now = T0 + 36 * S;
	run(&w);
	const struct cod_exec_update *u = update_of(&w, "e-1");
	assert_non_null(u);
	assert_int_equal(u->desired_state, COD_DESIRED_STOPPED);
	assert_int_equal(u->compute_state, COD_EXEC_FAILED);
	assert_string_equal(u->message, "execution timed out after 30s");
	/* retried on the other node (n-1 ran it once: 0 points, n-2 never: 30) */
	assert_int_equal(w.plan.n_new, 1);
	assert_string_equal(w.plan.new_execs[0]->node_id, "n-2");
	assert_string_equal(w.plan.new_events[0], "scheduled on node n-2");
	assert_string_equal(w.plan.new_execs[0]->desired_state.message, "scheduled");

	/* Preparing does not count against ExecutionTimeout */
	set_compute(e, COD_EXEC_PREPARING, "", T0);
	run(&w);
	assert_int_equal(w.plan.n_updates, 0);
	world_release(&w);
}

static void test_update_stops_old_versions(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 1, "docker", NULL, NULL), 1);
	add_exec(&w, "e-run", "n-1", 0, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 1 * S);
	add_exec(&w, "e-bid", "n-1", 1, COD_DESIRED_PENDING, COD_EXEC_ASK_FOR_BID_ACCEPTED, T0 + 1 * S);
	add_exec(&w, "e-old-done", "n-1", 0, COD_DESIRED_STOPPED, COD_EXEC_COMPLETED, T0 + 1 * S);
	w.job->version = 2; /* the executions above are of version 1 */
	w.job->state.type = COD_JOB_PENDING;
	run(&w);
	const struct cod_exec_update *u = update_of(&w, "e-run");
	assert_int_equal(u->desired_state, COD_DESIRED_STOPPED);
	assert_int_equal(u->compute_state, -1);
	assert_string_equal(u->message, "job updated to version 2");
	u = update_of(&w, "e-bid");
	assert_int_equal(u->desired_state, COD_DESIRED_STOPPED);
	assert_int_equal(u->compute_state, COD_EXEC_CANCELLED);
	assert_null(update_of(&w, "e-old-done"));
	/* the single node is free for version 2 (old executions do not count) */
	assert_int_equal(w.plan.n_new, 1);
	assert_int_equal(w.plan.new_execs[0]->job_version, 2);
	assert_string_equal(w.plan.new_execs[0]->node_id, "n-1");
	world_release(&w);
}

static void test_stop_stops_everything(void **state)
{
	(void)state;
	const char *types[] = {"batch", "service", "ops", "daemon"};
	for (size_t t = 0; t < 4; t++) {
		struct world w;
		world_init(&w, make_job(types[t], t < 2 ? 2 : 0, "docker", NULL, NULL), 3);
		w.job->state.type = COD_JOB_STOPPED;
		free(w.eval.triggered_by);
		w.eval.triggered_by = xstrdup("job-cancel");
		add_exec(&w, "e-run", "n-1", 0, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 1 * S);
		add_exec(&w, "e-bid", "n-2", 1, COD_DESIRED_PENDING, COD_EXEC_ASK_FOR_BID_ACCEPTED,
			 T0 + 1 * S);
		add_exec(&w, "e-done", "n-3", 0, COD_DESIRED_STOPPED, COD_EXEC_COMPLETED, T0 + 1 * S);
		run(&w);
		assert_int_equal(w.plan.n_new, 0);
		assert_int_equal(w.plan.n_updates, 2);
		const struct cod_exec_update *u = update_of(&w, "e-run");
		assert_int_equal(u->desired_state, COD_DESIRED_STOPPED);
		assert_int_equal(u->compute_state, -1);
		assert_string_equal(u->message, "job stopped");
		u = update_of(&w, "e-bid");
		assert_int_equal(u->desired_state, COD_DESIRED_STOPPED);
		assert_int_equal(u->compute_state, COD_EXEC_CANCELLED);
		assert_false(w.plan.set_job_state);
		assert_int_equal(w.plan.n_evals, 0);
		assert_int_equal(w.plan.n_events, 0);
		world_release(&w);
	}
}

static void test_rate_limit(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 5, "docker", NULL, NULL), 6);
	w.cfg.max_execs_per_eval = 2;
	run(&w);
	assert_int_equal(w.plan.n_new, 2);
	const struct cod_evaluation *ev = eval_of(&w, "exec-limit");
	assert_non_null(ev);
	assert_int_equal(ev->wait_until, w.now);
	apply(&w);
	run(&w);
	assert_int_equal(w.plan.n_new, 2);
	apply(&w);
	run(&w);
	assert_int_equal(w.plan.n_new, 1);
	assert_null(eval_of(&w, "exec-limit"));
	apply(&w);
	/* all five partitions placed, each once, on five different nodes */
	assert_int_equal(w.nexecs, 5);
	for (size_t i = 0; i < 5; i++)
		for (size_t j = i + 1; j < 5; j++) {
			assert_true(w.execs[i]->partition_index != w.execs[j]->partition_index);
			assert_string_not_equal(w.execs[i]->node_id, w.execs[j]->node_id);
		}
	world_release(&w);
}

static void test_count_zero(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 0, "docker", NULL, NULL), 1);
	w.job->state.type = COD_JOB_RUNNING;
	add_exec(&w, "e-1", "n-1", 0, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 1 * S);
	run(&w);
	assert_job_state(&w, COD_JOB_COMPLETED);
	assert_int_equal(update_of(&w, "e-1")->desired_state, COD_DESIRED_STOPPED);
	world_release(&w);

	world_init(&w, make_job("service", 0, "docker", NULL, NULL), 1);
	add_exec(&w, "e-1", "n-1", 0, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 1 * S);
	run(&w);
	assert_job_state(&w, COD_JOB_RUNNING);
	assert_int_equal(update_of(&w, "e-1")->desired_state, COD_DESIRED_STOPPED);
	assert_int_equal(w.plan.n_new, 0);
	world_release(&w);
}

static void test_constraints_select_nodes(void **state)
{
	(void)state;
	struct world w;
	world_init(&w,
		   make_job("batch", 1, "docker", NULL,
			    "\"Constraints\":[{\"Key\":\"zone\",\"Operator\":\"=\",\"Values\":[\"eu\"]},"
			    "{\"Key\":\"tier\",\"Operator\":\"!=\",\"Values\":[\"spot\"]},"
			    "{\"Key\":\"arch\",\"Operator\":\"in\",\"Values\":[\"amd64\",\"arm64\"]},"
			    "{\"Key\":\"ssd\",\"Operator\":\"exists\",\"Values\":[]}],"),
		   4);
	const char *labels[4][4] = {
	    {"eu", "spot", "amd64", "y"}, /* n-1: tier=spot */
	    {"us", "std", "amd64", "y"},  /* n-2: zone */
	    {"eu", "std", "riscv", "y"},  /* n-3: arch */
	    {"eu", "std", "arm64", "y"},  /* n-4: all match */
	};
	static const char *const keys[4] = {"zone", "tier", "arch", "ssd"};
	for (size_t i = 0; i < 4; i++)
		for (size_t k = 0; k < 4; k++)
			cod_kvlist_set(&w.nodes[i]->info.labels, keys[k], labels[i][k]);
	run(&w);
	assert_int_equal(w.plan.n_new, 1);
	assert_string_equal(w.plan.new_execs[0]->node_id, "n-4");

	/* without n-4 nothing matches; the reasons name the constraints */
	cod_kvlist_del(&w.nodes[3]->info.labels, "ssd");
	run(&w);
	assert_job_state(&w, COD_JOB_FAILED);
	assert_contains(w.plan.job_message, "node n-1: does not match constraint tier!=spot");
	assert_contains(w.plan.job_message, "node n-2: does not match constraint zone=eu");
	assert_contains(w.plan.job_message, "node n-3: does not match constraint arch in (amd64,arm64)");
	assert_contains(w.plan.job_message, "node n-4: does not match constraint ssd");
	world_release(&w);
}

static void test_favour_prefers_node(void **state)
{
	(void)state;
	/* whatever the seed, the favoured node wins over equal ones */
	for (uint64_t seed = 0; seed < 20; seed++) {
		struct world w;
		world_init(&w,
			   make_job("batch", 1, "docker", NULL,
				    "\"Constraints\":[{\"Key\":\"favour_gpu\",\"Operator\":\"=\",\"Values\":["
				    "\"yes\"]}],"),
			   3);
		w.seed = seed;
		cod_kvlist_set(&w.nodes[1]->info.labels, "gpu", "yes");
		run(&w);
		assert_int_equal(w.plan.n_new, 1);
		assert_string_equal(w.plan.new_execs[0]->node_id, "n-2");
		world_release(&w);
	}
}

static void test_excluded_nodes_and_resources(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 1, "docker", NULL, NULL), 4);
	w.nodes[0]->membership = COD_NODE_PENDING;
	w.nodes[1]->connection = COD_NODE_DISCONNECTED;
	w.nodes[2]->info.compute.max_job_requirements.memory = GiB / 2;
	run(&w);
	assert_int_equal(w.plan.n_new, 1);
	assert_string_equal(w.plan.new_execs[0]->node_id, "n-4");

	w.nodes[3]->info.compute.max_job_requirements.cpu = 0.5;
	run(&w);
	assert_job_state(&w, COD_JOB_FAILED);
	assert_contains(w.plan.job_message, "requested: 1, available: 2, suitable: 0.");
	assert_contains(w.plan.job_message, "node n-1: node is not approved (PENDING)");
	assert_contains(w.plan.job_message, "node n-2: node is disconnected");
	assert_contains(w.plan.job_message,
			"node n-3: job needs more than the node's maximum (memory 953.7 MiB > 512.0 MiB)");
	assert_contains(w.plan.job_message, "node n-4: job needs more than the node's maximum (cpu 1 > 0.5)");
	world_release(&w);
}

static void test_deterministic_for_seed(void **state)
{
	(void)state;
	char chosen[2][32];
	for (int round = 0; round < 2; round++) {
		struct world w;
		world_init(&w, make_job("batch", 1, "docker", NULL, NULL), 8);
		w.seed = 1234;
		run(&w);
		assert_int_equal(w.plan.n_new, 1);
		snprintf(chosen[round], sizeof(chosen[round]), "%s", w.plan.new_execs[0]->node_id);
		world_release(&w);
	}
	assert_string_equal(chosen[0], chosen[1]);

	/* different seeds spread first placements over the equal nodes */
	bool seen[9] = {false};
	size_t distinct = 0;
	for (uint64_t seed = 0; seed < 64; seed++) {
		struct world w;
		world_init(&w, make_job("batch", 1, "docker", NULL, NULL), 8);
		w.seed = seed;
		run(&w);
		int idx = atoi(w.plan.new_execs[0]->node_id + 2);
		if (!seen[idx]) {
			seen[idx] = true;
			distinct++;
		}
		world_release(&w);
	}
	assert_true(distinct >= 3);
}

static void test_invalid_job_fails(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 1, "docker", NULL, NULL), 1);
	free(w.job->tasks[0].resources.cpu);
	w.job->tasks[0].resources.cpu = xstrdup("lots");
	run(&w);
	assert_job_state(&w, COD_JOB_FAILED);
	assert_contains(w.plan.job_message, "invalid job: Resources.CPU");
	world_release(&w);

	struct cod_plan plan;
	struct cod_error *err = NULL;
	assert_int_equal(cod_scheduler_process(NULL, &plan, &err), -1);
	assert_non_null(err);
	cod_error_free(err);
	cod_plan_release(&plan);
	cod_plan_release(NULL);
}

static void test_reasons_are_capped(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 2, "flibble", ",\"Timeouts\":{\"QueueTimeout\":5}", NULL), 25);
	w.cfg.max_execs_per_eval = 1;
	w.now = T0 + 6 * S;
	run(&w);
	assert_job_state(&w, COD_JOB_FAILED);
	assert_contains(w.plan.job_message,
			"requested: 2, available: 25, suitable: 0. node n-1: does not support");
	assert_contains(w.plan.job_message,
			"node n-4: does not support engine flibble; and 5 more unsuitable nodes");
	assert_int_equal(w.plan.n_evals, 0);
	world_release(&w);
}

/* ----------------------------------------------------------- service */

static void test_service_restarts_completed(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("service", 2, "docker", ",\"Timeouts\":{\"TotalTimeout\":5}", NULL), 3);
	w.job->state.type = COD_JOB_RUNNING;
	struct cod_execution *e =
	    add_exec(&w, "e-1", "n-1", 0, COD_DESIRED_STOPPED, COD_EXEC_COMPLETED, T0 + 1 * S);
	set_compute(e, COD_EXEC_COMPLETED, "", T0 + 2 * S);
	add_exec(&w, "e-2", "n-2", 1, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 1 * S);
	w.now = T0 + 100 * S; /* timeouts do not apply to services */
	run(&w);
	assert_false(w.plan.set_job_state);
	assert_int_equal(w.plan.n_new, 1);
	assert_int_equal(w.plan.new_execs[0]->partition_index, 0);
	assert_string_equal(w.plan.new_execs[0]->node_id, "n-3");
	assert_int_equal(w.plan.n_updates, 0);

	/* a completed execution counts against the retry policy */
	cod_kvlist_set(&w.job->meta, COD_META_RETRY_ATTEMPTS, "1");
	run(&w);
	assert_job_state(&w, COD_JOB_FAILED);
	assert_string_equal(w.plan.job_message, "partition 0 failed 1 time: execution exited");
	assert_int_equal(update_of(&w, "e-2")->desired_state, COD_DESIRED_STOPPED);
	world_release(&w);
}

/* --------------------------------------------------------------- ops */

static void test_ops_direct_bid_per_node(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("ops", 0, "docker", NULL, NULL), 3);
	node(&w, "n-3")->connection = COD_NODE_DISCONNECTED;
	run(&w);
	assert_int_equal(w.plan.n_new, 2);
	assert_int_equal(new_on(&w, "n-1"), 1);
	assert_int_equal(new_on(&w, "n-2"), 1);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(w.plan.new_execs[i]->desired_state.type, COD_DESIRED_RUNNING);
		assert_int_equal(w.plan.new_execs[i]->compute_state.type, COD_EXEC_NEW);
	}
	/* Running as soon as the executions exist */
	assert_job_state(&w, COD_JOB_RUNNING);
	apply(&w);

	/* a node joining later is not added */
	node(&w, "n-3")->connection = COD_NODE_CONNECTED;
	w.nodes[w.nnodes++] = make_node("n-4");
	run(&w);
	assert_int_equal(w.plan.n_new, 0);
	assert_false(w.plan.set_job_state);

	/* completes when all ended and none failed */
	set_compute(w.execs[0], COD_EXEC_COMPLETED, "", w.now);
	run(&w);
	assert_false(w.plan.set_job_state);
	set_compute(w.execs[1], COD_EXEC_COMPLETED, "", w.now);
	run(&w);
	assert_job_state(&w, COD_JOB_COMPLETED);
	world_release(&w);
}

static void test_ops_fails_when_one_fails(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("ops", 0, "docker", NULL, NULL), 2);
	w.job->state.type = COD_JOB_RUNNING;
	add_exec(&w, "e-1", "n-1", 0, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 1 * S);
	struct cod_execution *e2 =
	    add_exec(&w, "e-2", "n-2", 0, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 1 * S);
	set_compute(e2, COD_EXEC_FAILED, "exit code 7", T0 + 3 * S);
	/* no retry for ops, and the others finish first */
	run(&w);
	assert_int_equal(w.plan.n_new, 0);
	assert_false(w.plan.set_job_state);
	set_compute(w.execs[0], COD_EXEC_COMPLETED, "", T0 + 4 * S);
	run(&w);
	assert_job_state(&w, COD_JOB_FAILED);
	assert_string_equal(w.plan.job_message, "execution on node n-2 failed: exit code 7");
	world_release(&w);
}

static void test_ops_no_nodes_and_rejections(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("ops", 0, "flibble", NULL, NULL), 1);
	run(&w);
	assert_job_state(&w, COD_JOB_FAILED);
	assert_string_equal(w.plan.job_message, "not enough nodes to run job. requested: 1, available: 1, "
						"suitable: 0. node n-1: does not support engine flibble");
	world_release(&w);

	/* every node refused: the job failed, nothing ran */
	world_init(&w, make_job("ops", 0, "docker", NULL, NULL), 1);
	w.job->state.type = COD_JOB_RUNNING;
	struct cod_execution *e =
	    add_exec(&w, "e-1", "n-1", 0, COD_DESIRED_STOPPED, COD_EXEC_ASK_FOR_BID_REJECTED, T0 + 1 * S);
	set_compute(e, COD_EXEC_ASK_FOR_BID_REJECTED, "not enough disk", T0 + 2 * S);
	run(&w);
	assert_job_state(&w, COD_JOB_FAILED);
	assert_string_equal(w.plan.job_message, "no node ran the job: node n-1: not enough disk");
	world_release(&w);
}

static void test_ops_timeouts(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("ops", 0, "docker", ",\"Timeouts\":{\"ExecutionTimeout\":10}", NULL), 1);
	w.job->state.type = COD_JOB_RUNNING;
	add_exec(&w, "e-1", "n-1", 0, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 1 * S);
	w.now = T0 + 20 * S;
	run(&w);
	assert_int_equal(update_of(&w, "e-1")->compute_state, COD_EXEC_FAILED);
	assert_job_state(&w, COD_JOB_FAILED);
	assert_string_equal(w.plan.job_message,
			    "execution on node n-1 failed: execution timed out after 10s");
	world_release(&w);
}

/* ------------------------------------------------------------ daemon */

static void test_daemon_places_on_joining_node(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("daemon", 0, "docker", ",\"Timeouts\":{\"TotalTimeout\":5}", NULL), 1);
	run(&w);
	assert_int_equal(w.plan.n_new, 1);
	assert_int_equal(w.plan.new_execs[0]->desired_state.type, COD_DESIRED_RUNNING);
	assert_job_state(&w, COD_JOB_RUNNING);
	apply(&w);
	set_compute(w.execs[0], COD_EXEC_RUNNING, "", w.now);

	w.nodes[w.nnodes++] = make_node("n-2");
	free(w.eval.triggered_by);
	w.eval.triggered_by = xstrdup("node-join");
	w.now = T0 + 1000 * S; /* no timeouts for daemons */
	run(&w);
	assert_int_equal(w.plan.n_new, 1);
	assert_string_equal(w.plan.new_execs[0]->node_id, "n-2");
	assert_int_equal(w.plan.n_updates, 0);
	assert_false(w.plan.set_job_state);
	apply(&w);

	/* never completes: a completed daemon execution is replaced */
	set_compute(w.execs[0], COD_EXEC_COMPLETED, "", w.now);
	w.execs[0]->desired_state.type = COD_DESIRED_STOPPED;
	run(&w);
	assert_false(w.plan.set_job_state);
	assert_int_equal(w.plan.n_new, 1);
	assert_string_equal(w.plan.new_execs[0]->node_id, "n-1");
	world_release(&w);
}

static void test_daemon_waits_for_nodes(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("daemon", 0, "wasm", NULL, NULL), 1);
	cod_strlist_release(&w.nodes[0]->info.compute.engines);
	run(&w);
	assert_int_equal(w.plan.n_new, 0);
	assert_job_state(&w, COD_JOB_RUNNING);
	assert_int_equal(w.plan.n_evals, 0);
	world_release(&w);
}

static void test_daemon_lost_and_retry_per_node(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("daemon", 0, "docker", NULL, "\"Meta\":{\"cod.retry.attempts\":\"2\"},"), 2);
	w.job->state.type = COD_JOB_RUNNING;
	node(&w, "n-2")->connection = COD_NODE_DISCONNECTED;
	add_exec(&w, "e-2", "n-2", 0, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 1 * S);
	struct cod_execution *e =
	    add_exec(&w, "e-1", "n-1", 0, COD_DESIRED_STOPPED, COD_EXEC_FAILED, T0 + 1 * S);
	set_compute(e, COD_EXEC_FAILED, "crash", T0 + 2 * S);
	run(&w);
	assert_string_equal(update_of(&w, "e-2")->message, "node n-2 lost");
	/* n-1 failed once of two attempts: replaced on the same node */
	assert_int_equal(w.plan.n_new, 1);
	assert_string_equal(w.plan.new_execs[0]->node_id, "n-1");
	apply(&w);

	set_compute(w.execs[2], COD_EXEC_FAILED, "crash again", w.now);
	run(&w);
	/* n-1 gave up and n-2 is gone: nothing runs the daemon any more */
	assert_int_equal(w.plan.n_new, 0);
	assert_job_state(&w, COD_JOB_FAILED);
	assert_string_equal(w.plan.job_message, "node n-1 failed 2 times: crash again");
	world_release(&w);
}

static void test_daemon_updates_and_duplicates(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("daemon", 0, "docker", NULL, NULL), 1);
	w.job->state.type = COD_JOB_RUNNING;
	add_exec(&w, "e-old", "n-1", 0, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 1 * S);
	w.job->version = 2;
	add_exec(&w, "e-a", "n-1", 0, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 2 * S);
	add_exec(&w, "e-b", "n-1", 0, COD_DESIRED_RUNNING, COD_EXEC_NEW, T0 + 3 * S);
	run(&w);
	assert_string_equal(update_of(&w, "e-old")->message, "job updated to version 2");
	assert_null(update_of(&w, "e-a"));
	assert_int_equal(update_of(&w, "e-b")->desired_state, COD_DESIRED_STOPPED);
	assert_int_equal(update_of(&w, "e-b")->compute_state, COD_EXEC_CANCELLED);
	assert_int_equal(w.plan.n_new, 0);
	world_release(&w);
}

/* ---------------------------------------------------------- messages */

static void test_message_types(void **state)
{
	(void)state;
	struct cod_execution prev = {0}, next = {0};
	assert_string_equal(cod_plan_message_type(NULL, &next), "AskForBid");
	next.desired_state.type = COD_DESIRED_RUNNING;
	assert_string_equal(cod_plan_message_type(NULL, &next), "AskForBid");
	assert_null(cod_plan_message_type(&prev, NULL));

	/* approval */
	prev.desired_state.type = COD_DESIRED_PENDING;
	prev.compute_state.type = COD_EXEC_ASK_FOR_BID_ACCEPTED;
	next.desired_state.type = COD_DESIRED_RUNNING;
	next.compute_state.type = COD_EXEC_BID_ACCEPTED;
	assert_string_equal(cod_plan_message_type(&prev, &next), "BidAccepted");

	/* rejection of a pending bid */
	next.desired_state.type = COD_DESIRED_STOPPED;
	next.compute_state.type = COD_EXEC_BID_REJECTED;
	assert_string_equal(cod_plan_message_type(&prev, &next), "BidRejected");
	prev.compute_state.type = COD_EXEC_ASK_FOR_BID;
	assert_string_equal(cod_plan_message_type(&prev, &next), "BidRejected");
	prev.compute_state.type = COD_EXEC_NEW;
	assert_string_equal(cod_plan_message_type(&prev, &next), "BidRejected");

	/* a direct bid not yet answered, or a running execution: cancel */
	prev.desired_state.type = COD_DESIRED_RUNNING;
	prev.compute_state.type = COD_EXEC_NEW;
	next.compute_state.type = COD_EXEC_CANCELLED;
	assert_string_equal(cod_plan_message_type(&prev, &next), "CancelExecution");
	prev.compute_state.type = COD_EXEC_RUNNING;
	next.compute_state.type = COD_EXEC_RUNNING;
	assert_string_equal(cod_plan_message_type(&prev, &next), "CancelExecution");
	prev.compute_state.type = COD_EXEC_PREPARING;
	assert_string_equal(cod_plan_message_type(&prev, &next), "CancelExecution");
	prev.compute_state.type = COD_EXEC_BID_ACCEPTED;
	next.compute_state.type = COD_EXEC_FAILED; /* timed out or lost */
	assert_string_equal(cod_plan_message_type(&prev, &next), "CancelExecution");

	/* nothing to tell the node */
	prev.compute_state.type = COD_EXEC_FAILED;
	assert_null(cod_plan_message_type(&prev, &next));
	prev.desired_state.type = COD_DESIRED_STOPPED;
	prev.compute_state.type = COD_EXEC_RUNNING;
	next.compute_state.type = COD_EXEC_CANCELLED; /* lost while stopping */
	assert_null(cod_plan_message_type(&prev, &next));
	prev.desired_state.type = COD_DESIRED_RUNNING;
	next.desired_state.type = COD_DESIRED_RUNNING;
	next.compute_state.type = COD_EXEC_COMPLETED;
	assert_null(cod_plan_message_type(&prev, &next));
	prev.desired_state.type = COD_DESIRED_PENDING;
	prev.compute_state.type = COD_EXEC_ASK_FOR_BID_REJECTED;
	next.desired_state.type = COD_DESIRED_STOPPED;
	assert_null(cod_plan_message_type(&prev, &next));
}

/* Every update a plan makes implies the message the transition table says. */
static void test_plan_updates_imply_messages(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_job("batch", 2, "docker", NULL, NULL), 3);
	node(&w, "n-3")->connection = COD_NODE_DISCONNECTED;
	add_exec(&w, "e-a", "n-1", 0, COD_DESIRED_PENDING, COD_EXEC_ASK_FOR_BID_ACCEPTED, T0 + 1 * S);
	add_exec(&w, "e-b", "n-2", 0, COD_DESIRED_PENDING, COD_EXEC_ASK_FOR_BID_ACCEPTED, T0 + 2 * S);
	add_exec(&w, "e-c", "n-3", 1, COD_DESIRED_RUNNING, COD_EXEC_RUNNING, T0 + 1 * S);
	run(&w);
	static const struct {
		const char *id, *msg;
	} want[] = {{"e-a", "BidAccepted"}, {"e-b", "BidRejected"}, {"e-c", "CancelExecution"}};
	for (size_t i = 0; i < COD_ARRAY_SIZE(want); i++) {
		const struct cod_exec_update *u = update_of(&w, want[i].id);
		assert_non_null(u);
		const struct cod_execution *prev = find_exec(&w, want[i].id);
		struct cod_execution next = *prev;
		if (u->desired_state >= 0)
			next.desired_state.type = u->desired_state;
		if (u->compute_state >= 0)
			next.compute_state.type = u->compute_state;
		assert_string_equal(cod_plan_message_type(prev, &next), want[i].msg);
	}
	/* partition 1 re-placed on n-2 (n-1 took partition 0; n-2's bid was rejected by us, not by it) */
	assert_int_equal(w.plan.n_new, 1);
	assert_string_equal(w.plan.new_execs[0]->node_id, "n-2");
	assert_int_equal(w.plan.new_execs[0]->partition_index, 1);
	assert_string_equal(cod_plan_message_type(NULL, w.plan.new_execs[0]), "AskForBid");
	world_release(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_batch_spreads_partitions),
	    cmocka_unit_test(test_batch_approves_oldest_accepted_bid),
	    cmocka_unit_test(test_batch_outstanding_bid_left_alone),
	    cmocka_unit_test(test_batch_completes),
	    cmocka_unit_test(test_batch_completed_partition_stops_duplicates),
	    cmocka_unit_test(test_batch_keeps_oldest_running),
	    cmocka_unit_test(test_batch_lost_node_replaced),
	    cmocka_unit_test(test_lost_unknown_and_unapproved_nodes),
	    cmocka_unit_test(test_batch_retry_attempts_exhausted),
	    cmocka_unit_test(test_retry_attempts_from_meta),
	    cmocka_unit_test(test_retry_backoff_delays),
	    cmocka_unit_test(test_no_suitable_nodes_fails_with_reasons),
	    cmocka_unit_test(test_queue_timeout_queues_then_places),
	    cmocka_unit_test(test_queue_timeout_expires),
	    cmocka_unit_test(test_queue_partial_placement),
	    cmocka_unit_test(test_busy_nodes_delay_never_fail),
	    cmocka_unit_test(test_total_timeout_fails_job),
	    cmocka_unit_test(test_execution_timeout_fails_execution),
	    cmocka_unit_test(test_update_stops_old_versions),
	    cmocka_unit_test(test_stop_stops_everything),
	    cmocka_unit_test(test_rate_limit),
	    cmocka_unit_test(test_count_zero),
	    cmocka_unit_test(test_constraints_select_nodes),
	    cmocka_unit_test(test_favour_prefers_node),
	    cmocka_unit_test(test_excluded_nodes_and_resources),
	    cmocka_unit_test(test_deterministic_for_seed),
	    cmocka_unit_test(test_invalid_job_fails),
	    cmocka_unit_test(test_reasons_are_capped),
	    cmocka_unit_test(test_service_restarts_completed),
	    cmocka_unit_test(test_ops_direct_bid_per_node),
	    cmocka_unit_test(test_ops_fails_when_one_fails),
	    cmocka_unit_test(test_ops_no_nodes_and_rejections),
	    cmocka_unit_test(test_ops_timeouts),
	    cmocka_unit_test(test_daemon_places_on_joining_node),
	    cmocka_unit_test(test_daemon_waits_for_nodes),
	    cmocka_unit_test(test_daemon_lost_and_retry_per_node),
	    cmocka_unit_test(test_daemon_updates_and_duplicates),
	    cmocka_unit_test(test_message_types),
	    cmocka_unit_test(test_plan_updates_imply_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
