/*
 * test_rank.c - node selection: candidates (type, membership, connection),
 * engine/publisher/input source support, label constraints (hard and
 * favour_), maximum job size, over-subscription, previous executions,
 * available capacity and queue, seeded jitter, ordering and errors.
 *
 * Points are checked as differences between two rankings of the same node
 * ID under the same seed, which cancels the jitter exactly.
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

#define GiB (1024ULL * 1024 * 1024)

struct fixture {
	struct cod_job *job;
	struct cod_node_state *nodes[8];
	size_t nnodes;
	struct cod_execution *execs[8];
	size_t nexecs;
	struct cod_sched_config cfg;
	uint64_t seed;
	struct cod_node_rank *ranks;
	size_t n;
};

static struct cod_job *job_from(const char *task_extra, const char *job_extra, const char *engine)
{
	char *json =
	    xasprintf("{\"Type\":\"batch\",\"Count\":1,%s\"Tasks\":[{\"Name\":\"main\",\"Engine\":"
		      "{\"Type\":\"%s\"},\"Resources\":{\"CPU\":\"1\",\"Memory\":\"1Gi\"}%s}]}",
		      job_extra ? job_extra : "", engine ? engine : "docker", task_extra ? task_extra : "");
	struct cod_error *err = NULL;
	struct cod_job *job = cod_job_parse(json, strlen(json), &err);
	free(json);
	if (!job)
		fail_msg("parse: %s", err->message);
	free(job->id);
	job->id = xstrdup("j-1");
	job->version = 1;
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
	cod_strlist_add(&ci->engines, "Docker");
	cod_strlist_add(&ci->engines, "wasm");
	cod_strlist_add(&ci->publishers, "local");
	cod_strlist_add(&ci->storages, "urlDownload");
	struct cod_resources cap = {.cpu = 8, .memory = 16 * GiB, .disk = 100 * GiB, .gpu = 1};
	ci->max_capacity = cap;
	ci->available_capacity = cap;
	ci->max_job_requirements = cap;
	return n;
}

static void fx_init(struct fixture *f, struct cod_job *job)
{
	memset(f, 0, sizeof(*f));
	f->job = job;
	f->cfg.oversubscription = 1.0;
	f->seed = 7;
}

static struct cod_node_state *fx_node(struct fixture *f, const char *id)
{
	struct cod_node_state *n = make_node(id);
	f->nodes[f->nnodes++] = n;
	return n;
}

static struct cod_execution *fx_exec(struct fixture *f, const char *node_id, uint64_t version, int desired,
				     int compute)
{
	struct cod_execution *e = xcalloc(1, sizeof(*e));
	e->id = xasprintf("e-%zu", f->nexecs + 1);
	e->node_id = xstrdup(node_id);
	e->job_version = version;
	e->desired_state.type = desired;
	e->compute_state.type = compute;
	f->execs[f->nexecs++] = e;
	return e;
}

static void fx_rank(struct fixture *f)
{
	cod_node_ranks_free(f->ranks, f->n);
	f->ranks = NULL;
	struct cod_sched_input in = {
	    .job = f->job,
	    .execs = f->execs,
	    .nexecs = f->nexecs,
	    .nodes = f->nodes,
	    .nnodes = f->nnodes,
	    .seed = f->seed,
	    .cfg = &f->cfg,
	};
	struct cod_error *err = NULL;
	if (cod_rank_nodes(&in, &f->ranks, &f->n, &err) < 0)
		fail_msg("rank: %s", err->message);
}

static const struct cod_node_rank *rank_of(struct fixture *f, const char *id)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->ranks[i].node->info.node_id, id))
			return &f->ranks[i];
	fail_msg("no rank for %s", id);
	return NULL;
}

static int rank_value(struct fixture *f, const char *id)
{
	fx_rank(f);
	return rank_of(f, id)->rank;
}

static void assert_unsuitable(struct fixture *f, const char *id, const char *reason)
{
	fx_rank(f);
	const struct cod_node_rank *r = rank_of(f, id);
	assert_int_equal(r->rank, -1);
	assert_string_equal(r->reason, reason);
}

static void fx_release(struct fixture *f)
{
	cod_node_ranks_free(f->ranks, f->n);
	cod_job_free(f->job);
	for (size_t i = 0; i < f->nnodes; i++)
		cod_node_free(f->nodes[i]);
	for (size_t i = 0; i < f->nexecs; i++)
		cod_execution_free(f->execs[i]);
}

/* ------------------------------------------------------------- tests */

static void test_candidates(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f, job_from(NULL, NULL, NULL));
	struct cod_node_state *n = fx_node(&f, "n-1");
	assert_true(rank_value(&f, "n-1") >= 0);
	{
		cleanup_free char *summary = cod_node_rank_summary(rank_of(&f, "n-1"));
		assert_true(cod_str_has_prefix(summary, "rank "));
		assert_null(rank_of(&f, "n-1")->reason);
	}

	free(n->info.node_type);
	n->info.node_type = xstrdup("Requester");
	assert_unsuitable(&f, "n-1", "node is the orchestrator");
	free(n->info.node_type);
	n->info.node_type = NULL;
	n->info.has_compute = false;
	assert_unsuitable(&f, "n-1", "node is not a compute node (no type)");
	n->info.has_compute = true;
	assert_true(rank_value(&f, "n-1") >= 0);

	n->membership = COD_NODE_PENDING;
	assert_unsuitable(&f, "n-1", "node is not approved (PENDING)");
	n->membership = COD_NODE_REJECTED;
	assert_unsuitable(&f, "n-1", "node is not approved (REJECTED)");
	n->membership = COD_NODE_APPROVED;
	n->connection = COD_NODE_DISCONNECTED;
	assert_unsuitable(&f, "n-1", "node is disconnected");
	fx_release(&f);
}

static void test_engine_publisher_inputs(void **state)
{
	(void)state;
	struct fixture f;
	/* engine names compare case-insensitively */
	fx_init(&f, job_from(NULL, NULL, "DOCKER"));
	fx_node(&f, "n-1");
	int base = rank_value(&f, "n-1");
	assert_true(base >= 0);
	fx_release(&f);

	fx_init(&f, job_from(NULL, NULL, "flibble"));
	fx_node(&f, "n-1");
	assert_unsuitable(&f, "n-1", "does not support engine flibble");
	fx_release(&f);

	fx_init(&f, job_from(",\"Publisher\":{\"Type\":\"s3\"}", NULL, NULL));
	fx_node(&f, "n-1");
	assert_unsuitable(&f, "n-1", "does not support publisher s3");
	fx_release(&f);

	/* a supported publisher and input source add 10 points each */
	fx_init(&f, job_from(",\"Publisher\":{\"Type\":\"Local\"},\"InputSources\":[{\"Source\":{\"Type\":"
			     "\"urldownload\",\"Params\":{\"URL\":\"http://x/y\"}},\"Target\":\"/in\"}]",
			     NULL, NULL));
	fx_node(&f, "n-1");
	assert_int_equal(rank_value(&f, "n-1"), base + 20);
	fx_release(&f);

	fx_init(&f, job_from(",\"InputSources\":[{\"Source\":{\"Type\":\"s3\"},\"Target\":\"/in\"}]", NULL,
			     NULL));
	fx_node(&f, "n-1");
	assert_unsuitable(&f, "n-1", "does not support input source s3");
	fx_release(&f);
}

static void test_label_constraints(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f, job_from(NULL, NULL, NULL));
	fx_node(&f, "n-1");
	int base = rank_value(&f, "n-1");
	fx_release(&f);

	fx_init(&f, job_from(NULL,
			     "\"Constraints\":[{\"Key\":\"zone\",\"Operator\":\"=\",\"Values\":[\"eu\"]},"
			     "{\"Key\":\"cores\",\"Operator\":\"gt\",\"Values\":[\"4\"]},"
			     "{\"Key\":\"tier\",\"Operator\":\"notin\",\"Values\":[\"spot\",\"preempt\"]},"
			     "{\"Key\":\"broken\",\"Operator\":\"!\",\"Values\":[]}],",
			     NULL));
	struct cod_node_state *n = fx_node(&f, "n-1");
	cod_kvlist_set(&n->info.labels, "zone", "eu");
	cod_kvlist_set(&n->info.labels, "cores", "16");
	/* every hard constraint matched: +10 */
	assert_int_equal(rank_value(&f, "n-1"), base + 10);
	cod_kvlist_set(&n->info.labels, "cores", "2");
	assert_unsuitable(&f, "n-1", "does not match constraint cores>4");
	cod_kvlist_set(&n->info.labels, "cores", "8");
	cod_kvlist_set(&n->info.labels, "tier", "preempt");
	assert_unsuitable(&f, "n-1", "does not match constraint tier notin (spot,preempt)");
	cod_kvlist_del(&n->info.labels, "tier");
	cod_kvlist_set(&n->info.labels, "broken", "1");
	assert_unsuitable(&f, "n-1", "does not match constraint !broken");
	cod_kvlist_del(&n->info.labels, "broken");
	cod_kvlist_del(&n->info.labels, "zone");
	assert_unsuitable(&f, "n-1", "does not match constraint zone=eu");
	fx_release(&f);

	/* favour_ requirements never exclude; each match adds 10 */
	fx_init(&f,
		job_from(NULL,
			 "\"Constraints\":[{\"Key\":\"favour_gpu\",\"Operator\":\"=\",\"Values\":[\"yes\"]},"
			 "{\"Key\":\"favour_ssd\",\"Operator\":\"exists\",\"Values\":[]}],",
			 NULL));
	n = fx_node(&f, "n-1");
	assert_int_equal(rank_value(&f, "n-1"), base);
	cod_kvlist_set(&n->info.labels, "gpu", "yes");
	assert_int_equal(rank_value(&f, "n-1"), base + 10);
	cod_kvlist_set(&n->info.labels, "ssd", "");
	assert_int_equal(rank_value(&f, "n-1"), base + 20);
	cod_kvlist_set(&n->info.labels, "gpu", "no");
	assert_int_equal(rank_value(&f, "n-1"), base + 10);
	fx_release(&f);
}

static void test_max_job_size(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f, job_from(NULL, NULL, NULL));
	struct cod_node_state *n = fx_node(&f, "n-1");
	struct cod_resources *max = &n->info.compute.max_job_requirements;
	max->cpu = 0.5;
	assert_unsuitable(&f, "n-1", "job needs more than the node's maximum (cpu 1 > 0.5)");
	max->cpu = 1;
	max->memory = GiB / 2;
	assert_unsuitable(&f, "n-1", "job needs more than the node's maximum (memory 1.0 GiB > 512.0 MiB)");
	max->memory = GiB;
	assert_true(rank_value(&f, "n-1") >= 0);
	fx_release(&f);

	fx_init(&f, job_from(NULL, NULL, NULL));
	f.job->tasks[0].resources.disk = xstrdup("2Gi");
	f.job->tasks[0].resources.gpu = xstrdup("2");
	n = fx_node(&f, "n-1");
	max = &n->info.compute.max_job_requirements;
	max->disk = GiB;
	assert_unsuitable(&f, "n-1", "job needs more than the node's maximum (disk 2.0 GiB > 1.0 GiB)");
	max->disk = 4 * GiB;
	assert_unsuitable(&f, "n-1", "job needs more than the node's maximum (gpu 2 > 1)");
	/* no job limit reported: the node's capacity is the limit */
	memset(max, 0, sizeof(*max));
	assert_unsuitable(&f, "n-1", "job needs more than the node's maximum (gpu 2 > 1)");
	n->info.compute.max_capacity.gpu = 2;
	n->info.compute.available_capacity.gpu = 2;
	assert_true(rank_value(&f, "n-1") >= 0);
	/* nothing reported at all: not checked */
	memset(&n->info.compute.max_capacity, 0, sizeof(struct cod_resources));
	memset(&n->info.compute.available_capacity, 0, sizeof(struct cod_resources));
	assert_true(rank_value(&f, "n-1") >= 0);
	fx_release(&f);
}

static void test_oversubscription(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f, job_from(NULL, NULL, NULL));
	struct cod_node_state *n = fx_node(&f, "n-1");
	struct cod_compute_info *ci = &n->info.compute;
	/* used 6 + queued 2 + job 1 = 9 > 8 */
	ci->available_capacity.cpu = 2;
	ci->queue_capacity.cpu = 2;
	assert_unsuitable(&f, "n-1", "node is over-subscribed (cpu)");
	/* = 8: fits */
	ci->queue_capacity.cpu = 1;
	assert_true(rank_value(&f, "n-1") >= 0);
	/* a factor of 1.5 allows up to 12 */
	ci->queue_capacity.cpu = 5;
	f.cfg.oversubscription = 1.5;
	assert_true(rank_value(&f, "n-1") >= 0);
	ci->queue_capacity.cpu = 6;
	assert_unsuitable(&f, "n-1", "node is over-subscribed (cpu)");
	ci->queue_capacity.cpu = 0;
	ci->available_capacity.memory = 0;
	ci->queue_capacity.memory = 8 * GiB;
	assert_unsuitable(&f, "n-1", "node is over-subscribed (memory)");
	assert_true(rank_of(&f, "n-1")->busy);
	fx_release(&f);
}

/* A node unsuitable only by its load is busy: sorted after the suitable
 * nodes, the least busy first, before nodes that cannot run the job. */
static void test_busy_nodes(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f, job_from(NULL, NULL, NULL));
	fx_node(&f, "n-free");
	struct cod_node_state *a = fx_node(&f, "n-busy"), *b = fx_node(&f, "n-busier"),
			      *c = fx_node(&f, "n-no");
	a->info.compute.available_capacity.cpu = 1;
	a->info.compute.queue_capacity.cpu = 7;
	b->info.compute.available_capacity.cpu = 0;
	b->info.compute.queue_capacity.cpu = 8;
	c->info.compute.available_capacity.cpu = 0;
	c->info.compute.queue_capacity.cpu = 8;
	free(c->info.compute.engines.items[0]);
	c->info.compute.engines.items[0] = xstrdup("wasm"); /* cannot run it, busy or not */
	fx_rank(&f);
	assert_int_equal(f.n, 4);
	assert_string_equal(f.ranks[0].node->info.node_id, "n-free");
	assert_true(f.ranks[0].rank >= 0);
	assert_false(f.ranks[0].busy);
	assert_string_equal(f.ranks[1].node->info.node_id, "n-busy");
	assert_string_equal(f.ranks[2].node->info.node_id, "n-busier");
	for (int i = 1; i <= 2; i++) {
		assert_int_equal(f.ranks[i].rank, -1);
		assert_true(f.ranks[i].busy);
		assert_string_equal(f.ranks[i].reason, "node is over-subscribed (cpu)");
	}
	assert_true(f.ranks[1].busy_rank > f.ranks[2].busy_rank);
	assert_string_equal(f.ranks[3].node->info.node_id, "n-no");
	assert_false(f.ranks[3].busy);
	fx_release(&f);
}

static void test_previous_executions(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f, job_from(NULL, NULL, NULL));
	fx_node(&f, "n-1");
	fx_node(&f, "n-2");
	int never = rank_value(&f, "n-1");
	/* executions elsewhere change nothing */
	fx_exec(&f, "n-2", 1, COD_DESIRED_STOPPED, COD_EXEC_FAILED);
	assert_int_equal(rank_value(&f, "n-1"), never);
	/* once, terminal: 0 instead of 30 */
	struct cod_execution *e = fx_exec(&f, "n-1", 1, COD_DESIRED_STOPPED, COD_EXEC_FAILED);
	assert_int_equal(rank_value(&f, "n-1"), never - 30);
	/* our own rejection of its bid or a cancellation is not a run */
	fx_exec(&f, "n-1", 1, COD_DESIRED_STOPPED, COD_EXEC_BID_REJECTED);
	fx_exec(&f, "n-1", 1, COD_DESIRED_STOPPED, COD_EXEC_CANCELLED);
	assert_int_equal(rank_value(&f, "n-1"), never - 30);
	/* twice: excluded */
	struct cod_execution *e2 = fx_exec(&f, "n-1", 1, COD_DESIRED_STOPPED, COD_EXEC_COMPLETED);
	assert_unsuitable(&f, "n-1", "already ran this job");
	/* older versions do not count */
	f.job->version = 2;
	assert_int_equal(rank_value(&f, "n-1"), never);
	/* but a live execution of any version does */
	e->desired_state.type = COD_DESIRED_RUNNING;
	e->compute_state.type = COD_EXEC_RUNNING;
	assert_unsuitable(&f, "n-1", "already running this job");
	/* one being stopped no longer holds the node */
	e->desired_state.type = COD_DESIRED_STOPPED;
	assert_int_equal(rank_value(&f, "n-1"), never);
	/* the node refused this version's bid */
	e2->job_version = 2;
	e2->compute_state.type = COD_EXEC_ASK_FOR_BID_REJECTED;
	assert_unsuitable(&f, "n-1", "rejected this job");
	/* and says why when the node did */
	free(e2->compute_state.message);
	e2->compute_state.message = xstrdup("job needs cpu 4 > node max 2");
	assert_unsuitable(&f, "n-1", "rejected this job: job needs cpu 4 > node max 2");
	fx_release(&f);
}

/* Among many nodes' executions, a node's own are judged in input order:
 * the first live or rejected one decides. */
static void test_previous_executions_order(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f, job_from(NULL, NULL, NULL));
	fx_node(&f, "n-1");
	fx_node(&f, "n-2");
	fx_node(&f, "n-3");
	fx_exec(&f, "n-3", 1, COD_DESIRED_RUNNING, COD_EXEC_RUNNING);
	struct cod_execution *first =
	    fx_exec(&f, "n-1", 1, COD_DESIRED_STOPPED, COD_EXEC_ASK_FOR_BID_REJECTED);
	fx_exec(&f, "n-2", 1, COD_DESIRED_STOPPED, COD_EXEC_FAILED);
	struct cod_execution *second = fx_exec(&f, "n-1", 1, COD_DESIRED_RUNNING, COD_EXEC_RUNNING);
	fx_exec(&f, "n-3", 1, COD_DESIRED_STOPPED, COD_EXEC_FAILED);
	assert_unsuitable(&f, "n-1", "rejected this job");
	assert_unsuitable(&f, "n-3", "already running this job");
	assert_true(rank_value(&f, "n-2") >= 0);
	first->compute_state.type = COD_EXEC_RUNNING;
	first->desired_state.type = COD_DESIRED_RUNNING;
	second->compute_state.type = COD_EXEC_ASK_FOR_BID_REJECTED;
	second->desired_state.type = COD_DESIRED_STOPPED;
	assert_unsuitable(&f, "n-1", "already running this job");
	fx_release(&f);
}

static void test_previous_executions_daemon(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f, job_from(NULL, NULL, NULL));
	f.job->type = COD_JOB_DAEMON;
	fx_node(&f, "n-1");
	int never = rank_value(&f, "n-1");
	/* a daemon replaces failed executions on the same node */
	fx_exec(&f, "n-1", 1, COD_DESIRED_STOPPED, COD_EXEC_FAILED);
	fx_exec(&f, "n-1", 1, COD_DESIRED_STOPPED, COD_EXEC_FAILED);
	fx_exec(&f, "n-1", 1, COD_DESIRED_STOPPED, COD_EXEC_COMPLETED);
	assert_int_equal(rank_value(&f, "n-1"), never);
	struct cod_execution *e = fx_exec(&f, "n-1", 1, COD_DESIRED_RUNNING, COD_EXEC_NEW);
	assert_unsuitable(&f, "n-1", "already running this job");
	e->compute_state.type = COD_EXEC_ASK_FOR_BID_REJECTED;
	assert_unsuitable(&f, "n-1", "rejected this job");
	fx_release(&f);
}

static void test_capacity_and_queue(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f, job_from(NULL, NULL, NULL));
	struct cod_node_state *n = fx_node(&f, "n-1");
	struct cod_compute_info *ci = &n->info.compute;
	int full = rank_value(&f, "n-1");
	/* half the CPU and memory free: 40 of 80 points */
	ci->available_capacity.cpu = 4;
	ci->available_capacity.memory = 8 * GiB;
	assert_int_equal(rank_value(&f, "n-1"), full - 40);
	/* nothing free: no capacity points */
	ci->available_capacity.cpu = 0;
	ci->available_capacity.memory = 0;
	f.cfg.oversubscription = 3;
	assert_int_equal(rank_value(&f, "n-1"), full - 80);
	/* a full queue costs the 20 queue points */
	ci->available_capacity = ci->max_capacity;
	ci->queue_capacity.cpu = 8;
	ci->queue_capacity.memory = 16 * GiB;
	assert_int_equal(rank_value(&f, "n-1"), full - 20);
	/* a node reporting no capacity: queue points by queued executions */
	memset(&ci->max_capacity, 0, sizeof(ci->max_capacity));
	memset(&ci->available_capacity, 0, sizeof(ci->available_capacity));
	memset(&ci->queue_capacity, 0, sizeof(ci->queue_capacity));
	memset(&ci->max_job_requirements, 0, sizeof(ci->max_job_requirements));
	assert_int_equal(rank_value(&f, "n-1"), full - 80);
	ci->enqueued_executions = 2;
	assert_int_equal(rank_value(&f, "n-1"), full - 100);
	fx_release(&f);
}

static void test_jitter_is_seeded(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f, job_from(NULL, NULL, NULL));
	fx_node(&f, "n-1");
	/* engine 10 + never ran 30 + capacity 80 + queue 20 = 140, jitter 0..9 */
	bool seen[10] = {false};
	size_t distinct = 0;
	for (uint64_t seed = 0; seed < 100; seed++) {
		f.seed = seed;
		int r = rank_value(&f, "n-1");
		assert_true(r >= 140 && r <= 149);
		assert_int_equal(rank_value(&f, "n-1"), r); /* same seed, same rank */
		if (!seen[r - 140]) {
			seen[r - 140] = true;
			distinct++;
		}
	}
	assert_true(distinct >= 8);
	fx_release(&f);
}

static void test_ordering(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f, job_from(NULL, NULL, NULL));
	static const char *const ids[] = {"n-e", "n-d", "n-c", "n-b", "n-a"};
	for (size_t i = 0; i < 5; i++)
		fx_node(&f, ids[i]);
	f.nodes[0]->connection = COD_NODE_DISCONNECTED;	     /* n-e */
	f.nodes[2]->connection = COD_NODE_DISCONNECTED;	     /* n-c */
	f.nodes[1]->info.compute.available_capacity.cpu = 0; /* n-d: 80 points less */
	f.nodes[1]->info.compute.available_capacity.memory = 0;
	f.cfg.oversubscription = 2;
	fx_rank(&f);
	assert_int_equal(f.n, 5);
	for (size_t i = 1; i < f.n; i++) {
		assert_true(f.ranks[i - 1].rank >= f.ranks[i].rank);
		if (f.ranks[i - 1].rank == f.ranks[i].rank)
			assert_true(strcmp(f.ranks[i - 1].node->info.node_id, f.ranks[i].node->info.node_id) <
				    0);
	}
	assert_string_equal(f.ranks[2].node->info.node_id, "n-d");
	/* the unsuitable ones last, by node ID */
	assert_string_equal(f.ranks[3].node->info.node_id, "n-c");
	assert_string_equal(f.ranks[4].node->info.node_id, "n-e");
	fx_release(&f);
}

static void test_errors(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f, job_from(NULL, NULL, NULL));
	free(f.job->tasks[0].resources.memory);
	f.job->tasks[0].resources.memory = xstrdup("lots");
	fx_node(&f, "n-1");
	struct cod_sched_input in = {.job = f.job, .nodes = f.nodes, .nnodes = f.nnodes, .cfg = &f.cfg};
	struct cod_error *err = NULL;
	struct cod_node_rank *ranks = (struct cod_node_rank *)&in;
	size_t n = 9;
	assert_int_equal(cod_rank_nodes(&in, &ranks, &n, &err), -1);
	assert_null(ranks);
	assert_int_equal(n, 0);
	assert_non_null(strstr(err->message, "Resources.Memory"));
	cod_error_free(err);
	err = NULL;

	f.job->ntasks = 0;
	assert_int_equal(cod_rank_nodes(&in, &ranks, &n, &err), -1);
	assert_non_null(strstr(err->message, "has no task"));
	cod_error_free(err);
	f.job->ntasks = 1;

	/* no nodes: an empty ranking */
	in.nnodes = 0;
	free(f.job->tasks[0].resources.memory);
	f.job->tasks[0].resources.memory = NULL;
	assert_int_equal(cod_rank_nodes(&in, &ranks, &n, NULL), 0);
	assert_int_equal(n, 0);
	cod_node_ranks_free(ranks, n);
	cod_node_ranks_free(NULL, 0);
	fx_release(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_candidates),
	    cmocka_unit_test(test_engine_publisher_inputs),
	    cmocka_unit_test(test_label_constraints),
	    cmocka_unit_test(test_max_job_size),
	    cmocka_unit_test(test_oversubscription),
	    cmocka_unit_test(test_busy_nodes),
	    cmocka_unit_test(test_previous_executions),
	    cmocka_unit_test(test_previous_executions_order),
	    cmocka_unit_test(test_previous_executions_daemon),
	    cmocka_unit_test(test_capacity_and_queue),
	    cmocka_unit_test(test_jitter_is_seeded),
	    cmocka_unit_test(test_ordering),
	    cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
