/*
 * scheduler.c - the schedulers: batch and service (by partition), ops (one
 * direct bid per matching node, once) and daemon (one per matching node,
 * forever). Each is a pure reconciler from cod_sched_input to cod_plan; see
 * scheduler.h for the contract and docs/scheduler.md for the algorithm and
 * every choice made where reference/bacalhau.md is silent.
 *
 * The plan is built against a working view of the executions: each entry
 * holds the execution's effective desired and compute states once this
 * plan's changes apply. Steps read the view, so a later step sees what an
 * earlier one decided (an execution failed as lost is a failure for the
 * retry policy; a stopped one frees its node for ranking). The updates are
 * derived from the view at the end: one per changed execution, naming
 * only the states that differ from the stored ones.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/mem.h"
#include "common/util.h"
#include "orchestrator/scheduler.h"
#include "common/banned.h"

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL
#define DEFAULT_QUEUE_BACKOFF_MS 60000
#define DEFAULT_RETRY_ATTEMPTS 3
/* Partitions are indexed in memory; a Count beyond this fails the job
 * instead of making the orchestrator allocate without bound. */
#define MAX_PARTITIONS 1000000
#define TOPIC_SCHEDULING "Scheduling"

/* One execution as this plan sees it. */
struct view {
	const struct cod_execution *e;
	int desired;	    /* enum cod_exec_desired, effective */
	int compute;	    /* enum cod_exec_state, effective */
	int64_t state_time; /* when the effective state began: ModifyTime, or now if changed here */
	char *message;	    /* the latest reason this plan gave; owned */
	bool changed;
};

struct sched {
	const struct cod_sched_input *in;
	const struct cod_job *job;
	const struct cod_task *task;
	int64_t now;
	struct cod_plan *plan;
	struct view *v;
	size_t nv;
	size_t new_alloc, new_event_alloc, eval_alloc, event_alloc;
	/* the job state this plan wants */
	bool job_set;
	enum cod_job_state job_state;
	char *job_message;
	/* retry policy */
	int64_t attempts;
	int64_t backoff_ms;
	/* when the current version began (TotalTimeout, QueueTimeout) */
	int64_t version_start;
};

/* ------------------------------------------------------------ helpers */

static const char *str_or(const char *s, const char *dflt)
{
	return cod_str_empty(s) ? dflt : s;
}

static const struct cod_node_state *node_find(const struct sched *s, const char *id)
{
	if (!id)
		return NULL;
	for (size_t i = 0; i < s->in->nnodes; i++) {
		const struct cod_node_state *n = s->in->nodes[i];
		if (n && n->info.node_id && !strcmp(n->info.node_id, id))
			return n;
	}
	return NULL;
}

static bool node_healthy(const struct cod_node_state *n)
{
	return n && n->membership == COD_NODE_APPROVED && n->connection == COD_NODE_CONNECTED;
}

static bool live(const struct view *x)
{
	return x->desired != COD_DESIRED_STOPPED && !cod_exec_state_terminal((enum cod_exec_state)x->compute);
}

static bool current(const struct sched *s, const struct view *x)
{
	return x->e->job_version >= s->job->version;
}

/* Compute states in which the node has not started the work: the bid is
 * outstanding or waits for approval. */
static bool never_started(int compute_state)
{
	return compute_state == COD_EXEC_UNDEFINED || compute_state == COD_EXEC_NEW ||
	       compute_state == COD_EXEC_ASK_FOR_BID || compute_state == COD_EXEC_ASK_FOR_BID_ACCEPTED;
}

/* The older of two executions: CreateTime, then ID. */
static bool older(const struct view *a, const struct view *b)
{
	if (a->e->create_time != b->e->create_time)
		return a->e->create_time < b->e->create_time;
	return strcmp(str_or(a->e->id, ""), str_or(b->e->id, "")) < 0;
}

static const char *exec_failure_message(const struct view *x)
{
	if (x->changed && x->message)
		return x->message;
	if (!cod_str_empty(x->e->compute_state.message))
		return x->e->compute_state.message;
	if (!cod_str_empty(x->e->run_output.error_msg))
		return x->e->run_output.error_msg;
	if (x->compute == COD_EXEC_COMPLETED)
		return "execution exited";
	return "no reason given";
}

/* ------------------------------------------------- execution changes */

static __attribute__((format(printf, 5, 0))) void set_execv(struct sched *s, struct view *x, int desired,
							    int compute, const char *fmt, va_list ap)
{
	if (desired >= 0)
		x->desired = desired;
	if (compute >= 0)
		x->compute = compute;
	free(x->message);
	x->message = xvasprintf(fmt, ap);
	x->changed = true;
	x->state_time = s->now;
}

static __attribute__((format(printf, 5, 6))) void set_exec(struct sched *s, struct view *x, int desired,
							   int compute, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_execv(s, x, desired, compute, fmt, ap);
	va_end(ap);
}

/* Desired Stopped. An execution the node never started ends at once in
 * `unstarted` (Cancelled for a stop, BidRejected for a rejection); one it
 * started keeps its stored compute state until the node reports. */
static __attribute__((format(printf, 4, 5))) void stop_exec(struct sched *s, struct view *x, int unstarted,
							    const char *fmt, ...)
{
	int orig = x->e->compute_state.type;
	int compute = never_started(orig) ? unstarted : orig;
	va_list ap;
	va_start(ap, fmt);
	set_execv(s, x, COD_DESIRED_STOPPED, compute, fmt, ap);
	va_end(ap);
}

static void stop_all(struct sched *s, const char *reason)
{
	for (size_t i = 0; i < s->nv; i++)
		if (live(&s->v[i]))
			stop_exec(s, &s->v[i], COD_EXEC_CANCELLED, "%s", reason);
}

/* ------------------------------------------------------ job changes */

static __attribute__((format(printf, 3, 0))) void set_jobv(struct sched *s, enum cod_job_state state,
							   const char *fmt, va_list ap)
{
	/* The first terminal decision stands: a job that failed in this plan
	 * does not become Running or Completed later in it. */
	if (s->job_set && cod_job_state_terminal(s->job_state))
		return;
	s->job_set = true;
	s->job_state = state;
	free(s->job_message);
	s->job_message = xvasprintf(fmt, ap);
}

static __attribute__((format(printf, 3, 4))) void set_job(struct sched *s, enum cod_job_state state,
							  const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_jobv(s, state, fmt, ap);
	va_end(ap);
}

static enum cod_job_state job_state_now(const struct sched *s)
{
	return s->job_set ? s->job_state : (enum cod_job_state)s->job->state.type;
}

static void drop_new_work(struct sched *s)
{
	for (size_t i = 0; i < s->plan->n_new; i++) {
		cod_execution_free(s->plan->new_execs[i]);
		free(s->plan->new_events[i]);
	}
	s->plan->n_new = 0;
	for (size_t i = 0; i < s->plan->n_evals; i++)
		cod_evaluation_free(s->plan->new_evals[i]);
	s->plan->n_evals = 0;
}

/* Fail the job: every live execution of any version is stopped with the
 * reason; nothing new is placed and no follow-up evaluation is left. */
static __attribute__((format(printf, 2, 3))) void fail_job(struct sched *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_jobv(s, COD_JOB_FAILED, fmt, ap);
	va_end(ap);
	drop_new_work(s);
	stop_all(s, s->job_message);
}

static void complete_job(struct sched *s)
{
	set_job(s, COD_JOB_COMPLETED, "%s", "");
	stop_all(s, "job completed");
}

/* Pending or Queued -> Running once a current execution is desired Running. */
static void mark_running_if_eligible(struct sched *s)
{
	enum cod_job_state st = job_state_now(s);
	if (st != COD_JOB_PENDING && st != COD_JOB_QUEUED && st != COD_JOB_UNDEFINED)
		return;
	bool running = false;
	for (size_t i = 0; i < s->nv && !running; i++)
		running = current(s, &s->v[i]) && live(&s->v[i]) && s->v[i].desired == COD_DESIRED_RUNNING;
	for (size_t i = 0; i < s->plan->n_new && !running; i++)
		running = s->plan->new_execs[i]->desired_state.type == COD_DESIRED_RUNNING;
	if (running)
		set_job(s, COD_JOB_RUNNING, "%s", "");
}

/* ------------------------------------------------ new plan entries */

static void add_eval(struct sched *s, const char *trigger, int64_t wait_until, const char *comment)
{
	struct cod_plan *p = s->plan;
	/* one follow-up per trigger: keep the earliest */
	for (size_t i = 0; i < p->n_evals; i++) {
		if (!strcmp(p->new_evals[i]->triggered_by, trigger)) {
			if (wait_until < p->new_evals[i]->wait_until) {
				p->new_evals[i]->wait_until = wait_until;
				free(p->new_evals[i]->comment);
				p->new_evals[i]->comment = xstrdup(comment);
			}
			return;
		}
	}
	struct cod_evaluation *ev = xcalloc(1, sizeof(*ev));
	ev->id = cod_new_id("");
	ev->namespace_ = xstrdup(str_or(s->job->namespace_, "default"));
	ev->job_id = xstrdup_or_null(s->job->id);
	ev->triggered_by = xstrdup(trigger);
	ev->type = xstrdup(cod_job_type_name(s->job->type));
	ev->status = xstrdup("pending");
	ev->comment = xstrdup(comment);
	ev->priority = s->job->priority;
	ev->wait_until = wait_until;
	ev->create_time = s->now;
	ev->modify_time = s->now;
	COD_GROW(p->new_evals, s->eval_alloc, p->n_evals + 1);
	p->new_evals[p->n_evals++] = ev;
}

/* message: the desired-state message; busy: placed on a node that is
 * over-subscribed and queues it, which the desired-state message (instead
 * of message) and the history event then say */
static void new_exec(struct sched *s, const char *node_id, int64_t partition, int desired,
		     const char *message, bool busy)
{
	struct cod_plan *p = s->plan;
	const struct cod_job *job = s->job;
	struct cod_execution *e = xcalloc(1, sizeof(*e));
	e->id = cod_new_id("e-");
	e->namespace_ = xstrdup(str_or(job->namespace_, "default"));
	e->eval_id = xstrdup_or_null(s->in->eval ? s->in->eval->id : NULL);
	e->name = xstrdup_or_null(job->name);
	e->node_id = xstrdup(node_id);
	e->job_id = xstrdup_or_null(job->id);
	e->job = cod_job_dup(job);
	e->job_version = job->version;
	e->alloc_task = xstrdup(str_or(s->task->name, "main"));
	/* parsed in cod_rank_nodes already, so this cannot fail here */
	if (cod_task_resources(s->task, &e->allocated, NULL) < 0)
		memset(&e->allocated, 0, sizeof(e->allocated));
	e->desired_state.type = desired;
	e->desired_state.message =
	    xstrdup(busy ? "scheduled on a busy node (over-subscribed; it queues the job)" : message);
	e->compute_state.type = COD_EXEC_NEW;
	e->partition_index = partition;
	e->create_time = s->now;
	e->modify_time = s->now;
	COD_GROW(p->new_execs, s->new_alloc, p->n_new + 1);
	COD_GROW(p->new_events, s->new_event_alloc, p->n_new + 1);
	p->new_events[p->n_new] = xasprintf("scheduled on node %s%s", node_id,
					    busy ? ", which is busy (over-subscribed) and queues it" : "");
	p->new_execs[p->n_new++] = e;
}

/* -------------------------------------------------- shared steps */

/* Executions on nodes that are unknown, disconnected or not approved will
 * never report again: they fail ("lost"). One that was already being
 * stopped ends Cancelled, so it does not count against the retry policy. */
static void mark_lost(struct sched *s)
{
	for (size_t i = 0; i < s->nv; i++) {
		struct view *x = &s->v[i];
		if (cod_exec_state_terminal((enum cod_exec_state)x->compute))
			continue;
		if (node_healthy(node_find(s, x->e->node_id)))
			continue;
		const char *node_id = str_or(x->e->node_id, "(none)");
		if (x->desired == COD_DESIRED_STOPPED)
			set_exec(s, x, -1, COD_EXEC_CANCELLED, "node %s lost while stopping", node_id);
		else
			set_exec(s, x, COD_DESIRED_STOPPED, COD_EXEC_FAILED, "node %s lost", node_id);
	}
}

/* Executions of older job versions: pending bids are cancelled, running
 * executions are asked to stop. */
static void stop_old_versions(struct sched *s)
{
	for (size_t i = 0; i < s->nv; i++) {
		struct view *x = &s->v[i];
		if (current(s, x) || !live(x))
			continue;
		stop_exec(s, x, COD_EXEC_CANCELLED, "job updated to version %llu",
			  (unsigned long long)s->job->version);
	}
}

static int64_t exec_timeout_s(const struct sched *s)
{
	const struct cod_timeouts *t = &s->task->timeouts;
	/* ExecutionTimeout falls back to TotalTimeout when unset */
	return t->execution_timeout > 0 ? t->execution_timeout : t->total_timeout > 0 ? t->total_timeout : 0;
}

/* TotalTimeout fails the job. Returns true when it did. */
static bool check_total_timeout(struct sched *s)
{
	int64_t total = s->task->timeouts.total_timeout;
	if (total <= 0 || s->version_start + total * NS_PER_S >= s->now)
		return false;
	fail_job(s, "job timed out after %llds (TotalTimeout)", (long long)total);
	return true;
}

/* ExecutionTimeout fails executions that have been executing (BidAccepted
 * or Running) for longer, measured from the ModifyTime of their current
 * state: an execution that went through Preparing is timed from when it
 * reported Running, so image pulls and inputs do not count. */
static void check_exec_timeouts(struct sched *s)
{
	int64_t limit = exec_timeout_s(s);
	if (limit <= 0)
		return;
	for (size_t i = 0; i < s->nv; i++) {
		struct view *x = &s->v[i];
		if (!live(x) || (x->compute != COD_EXEC_BID_ACCEPTED && x->compute != COD_EXEC_RUNNING))
			continue;
		int64_t start = x->e->modify_time ? x->e->modify_time : x->e->create_time;
		if (start + limit * NS_PER_S < s->now)
			set_exec(s, x, COD_DESIRED_STOPPED, COD_EXEC_FAILED,
				 "execution timed out after %llds", (long long)limit);
	}
}

static void load_retry_policy(struct sched *s)
{
	const struct cod_sched_config *cfg = s->in->cfg;
	int64_t v;
	s->attempts = cfg && cfg->retry_attempts >= 1 ? cfg->retry_attempts : DEFAULT_RETRY_ATTEMPTS;
	const char *meta = cod_kvlist_get(&s->job->meta, COD_META_RETRY_ATTEMPTS);
	if (meta && cod_parse_i64(meta, &v) == 0 && v >= 1)
		s->attempts = v;
	s->backoff_ms = cfg && cfg->retry_backoff_ms > 0 ? cfg->retry_backoff_ms : 0;
	meta = cod_kvlist_get(&s->job->meta, COD_META_RETRY_BACKOFF);
	if (meta && cod_parse_duration_ms(meta, &v) == 0)
		s->backoff_ms = v;
}

static int64_t queue_backoff_ns(const struct sched *s)
{
	int64_t ms = s->in->cfg ? s->in->cfg->queue_backoff_ms : 0;
	return (ms > 0 ? ms : DEFAULT_QUEUE_BACKOFF_MS) * NS_PER_MS;
}

static int64_t queue_deadline(const struct sched *s)
{
	int64_t qt = s->task->timeouts.queue_timeout;
	return qt > 0 ? s->version_start + qt * NS_PER_S : 0;
}

static bool queue_allowed(const struct sched *s)
{
	int64_t deadline = queue_deadline(s);
	return deadline && deadline > s->now;
}

static size_t rate_limit(const struct sched *s)
{
	int64_t max = s->in->cfg ? s->in->cfg->max_execs_per_eval : 0;
	return max > 0 ? (size_t)max : (size_t)-1;
}

/* ----------------------------------------------------------- ranking */

struct ranking {
	struct cod_node_rank *ranks;
	size_t n;
	size_t candidates; /* approved, connected compute nodes */
	size_t suitable;
	size_t busy; /* unsuitable only by over-subscription; sorted after the suitable */
};

static void ranking_release(struct ranking *r)
{
	cod_node_ranks_free(r->ranks, r->n);
	memset(r, 0, sizeof(*r));
}

/* Rank against the executions as this plan leaves them, so a node whose
 * execution was just stopped or failed is judged by that. */
static int rank(struct sched *s, struct ranking *out, struct cod_error **err)
{
	memset(out, 0, sizeof(*out));
	struct cod_execution *copies = xcalloc(s->nv ? s->nv : 1, sizeof(*copies));
	struct cod_execution **ptrs = xcalloc(s->nv ? s->nv : 1, sizeof(*ptrs));
	for (size_t i = 0; i < s->nv; i++) {
		copies[i] = *s->v[i].e; /* shallow: borrowed strings, never freed */
		copies[i].desired_state.type = s->v[i].desired;
		copies[i].compute_state.type = s->v[i].compute;
		ptrs[i] = &copies[i];
	}
	struct cod_sched_input in = *s->in;
	in.execs = ptrs;
	in.nexecs = s->nv;
	int rc = cod_rank_nodes(&in, &out->ranks, &out->n, err);
	free(ptrs);
	free(copies);
	if (rc < 0)
		return -1;
	for (size_t i = 0; i < out->n; i++) {
		const struct cod_node_state *n = out->ranks[i].node;
		const char *t = n->info.node_type;
		bool compute = cod_str_empty(t) ? n->info.has_compute : !strcasecmp(t, "Compute");
		if (compute && node_healthy(n))
			out->candidates++;
		if (out->ranks[i].rank >= 0)
			out->suitable++;
		else if (out->ranks[i].busy)
			out->busy++;
	}
	return 0;
}

/* "node n-1: does not support engine flibble; node n-2: ...", at most
 * MAX_REASONS nodes, then how many more. */
#define MAX_REASONS 20
static void add_reasons(struct cod_buf *b, const struct ranking *r)
{
	size_t shown = 0, unsuitable = 0;
	for (size_t i = 0; i < r->n; i++) {
		if (r->ranks[i].rank >= 0)
			continue;
		if (unsuitable++ >= MAX_REASONS)
			continue;
		cod_buf_addf(b, "%snode %s: %s", shown++ ? "; " : "",
			     str_or(r->ranks[i].node->info.node_id, "?"),
			     str_or(r->ranks[i].reason, "unsuitable"));
	}
	if (unsuitable > shown)
		cod_buf_addf(b, "; and %zu more unsuitable node%s", unsuitable - shown,
			     unsuitable - shown == 1 ? "" : "s");
}

static char *not_enough_nodes(const struct ranking *r, size_t requested)
{
	struct cod_buf b = COD_BUF_INIT;
	cod_buf_addf(&b, "not enough nodes to run job. requested: %zu, available: %zu, suitable: %zu.",
		     requested, r->candidates, r->suitable);
	if (r->suitable < r->n) {
		cod_buf_addch(&b, ' ');
		add_reasons(&b, r);
	}
	return cod_buf_detach(&b, NULL);
}

static char *queued_message(const struct sched *s, const struct ranking *r, size_t requested)
{
	struct cod_buf b = COD_BUF_INIT;
	cod_buf_addf(&b, "no suitable nodes (requested: %zu, available: %zu, suitable: %zu)", requested,
		     r->candidates, r->suitable);
	if (r->suitable < r->n) {
		cod_buf_addstr(&b, ": ");
		add_reasons(&b, r);
	}
	cod_buf_addf(&b, "; waiting up to %llds (QueueTimeout)", (long long)s->task->timeouts.queue_timeout);
	return cod_buf_detach(&b, NULL);
}

/* Not enough suitable nodes: queue (delayed job-queue evaluation; Queued
 * when nothing of the job is running) or, past QueueTimeout, fail. */
static void queue_or_fail(struct sched *s, const struct ranking *r, size_t requested, bool placed_any)
{
	if (!queue_allowed(s)) {
		cleanup_free char *msg = not_enough_nodes(r, requested);
		fail_job(s, "%s", msg);
		return;
	}
	int64_t wait = s->now + queue_backoff_ns(s);
	int64_t deadline = queue_deadline(s);
	if (deadline < wait)
		wait = deadline; /* fail promptly once QueueTimeout passes */
	cleanup_free char *msg = queued_message(s, r, requested);
	add_eval(s, "job-queue", wait, msg);
	bool active = placed_any;
	for (size_t i = 0; i < s->nv && !active; i++)
		active = current(s, &s->v[i]) && live(&s->v[i]);
	if (!active)
		set_job(s, COD_JOB_QUEUED, "%s", msg);
}

/* ------------------------------------------------- batch and service */

struct partition {
	size_t live;	 /* live executions of the current version */
	bool completed;	 /* a Completed execution of the current version (batch) */
	size_t failures; /* Failed (service: also Completed) executions, current version */
	struct view *last_failure;
};

static void reconcile_partition(struct sched *s, int64_t p, bool batch)
{
	struct view *keep = NULL, *approve = NULL;
	bool completed = false;
	for (size_t i = 0; i < s->nv; i++) {
		struct view *x = &s->v[i];
		if (!current(s, x) || x->e->partition_index != p)
			continue;
		if (batch && x->compute == COD_EXEC_COMPLETED)
			completed = true;
		if (!live(x))
			continue;
		if (x->desired == COD_DESIRED_RUNNING && (!keep || older(x, keep)))
			keep = x;
	}
	if (completed)
		keep = NULL; /* a completed partition keeps nothing running */
	if (!completed && !keep) {
		for (size_t i = 0; i < s->nv; i++) {
			struct view *x = &s->v[i];
			if (current(s, x) && x->e->partition_index == p && live(x) &&
			    x->desired == COD_DESIRED_PENDING &&
			    x->compute == COD_EXEC_ASK_FOR_BID_ACCEPTED && (!approve || older(x, approve)))
				approve = x;
		}
	}
	for (size_t i = 0; i < s->nv; i++) {
		struct view *x = &s->v[i];
		if (!current(s, x) || x->e->partition_index != p || !live(x) || x == keep)
			continue;
		if (completed) {
			stop_exec(s, x, COD_EXEC_BID_REJECTED, "partition %lld already completed",
				  (long long)p);
		} else if (x == approve) {
			set_exec(s, x, COD_DESIRED_RUNNING, COD_EXEC_BID_ACCEPTED, "bid accepted");
		} else if (keep && x->desired == COD_DESIRED_RUNNING) {
			stop_exec(s, x, COD_EXEC_CANCELLED, "duplicate execution of partition %lld",
				  (long long)p);
		} else if (keep || approve) {
			/* a pending bid of a partition that already has its execution */
			stop_exec(s, x, COD_EXEC_BID_REJECTED,
				  "bid rejected: partition %lld already has an execution", (long long)p);
		}
		/* otherwise: a bid still outstanding, left to the node's answer */
	}
}

static bool all_partitions_completed(const struct sched *s, int64_t count)
{
	size_t done = 0;
	bool *seen = xcalloc((size_t)count, sizeof(*seen));
	for (size_t i = 0; i < s->nv; i++) {
		const struct view *x = &s->v[i];
		int64_t p = x->e->partition_index;
		if (current(s, x) && x->compute == COD_EXEC_COMPLETED && p >= 0 && p < count && !seen[p]) {
			seen[p] = true;
			done++;
		}
	}
	free(seen);
	return done == (size_t)count;
}

/* The partitions as the plan leaves them. A completed execution of a
 * service is a failure: services are not meant to end. */
static struct partition *tally_partitions(struct sched *s, int64_t count, bool batch)
{
	struct partition *parts = xcalloc((size_t)count, sizeof(*parts));
	for (size_t i = 0; i < s->nv; i++) {
		struct view *x = &s->v[i];
		int64_t p = x->e->partition_index;
		if (!current(s, x) || p < 0 || p >= count)
			continue;
		struct partition *pt = &parts[p];
		if (live(x)) {
			pt->live++;
		} else if (batch && x->compute == COD_EXEC_COMPLETED) {
			pt->completed = true;
		} else if (x->compute == COD_EXEC_FAILED || (!batch && x->compute == COD_EXEC_COMPLETED)) {
			pt->failures++;
			if (!pt->last_failure || x->state_time > pt->last_failure->state_time)
				pt->last_failure = x;
		}
	}
	return parts;
}

/* Partitions without a live or completed execution: apply the retry
 * policy, then place what the nodes allow, best-ranked node first and a
 * different node per partition, within the rate limit. */
static void place_partitions(struct sched *s, const struct partition *parts, int64_t count,
			     struct cod_error **err)
{
	int64_t *placeable = xcalloc((size_t)count, sizeof(*placeable));
	size_t needed = 0;
	int64_t retry_at = 0;
	for (int64_t p = 0; p < count; p++) {
		const struct partition *pt = &parts[p];
		if (pt->live || pt->completed)
			continue;
		if (pt->failures >= (size_t)s->attempts) {
			fail_job(s, "partition %lld failed %zu time%s: %s", (long long)p, pt->failures,
				 pt->failures == 1 ? "" : "s", exec_failure_message(pt->last_failure));
			free(placeable);
			return;
		}
		if (pt->failures && s->backoff_ms > 0) {
			int64_t at = pt->last_failure->state_time + s->backoff_ms * NS_PER_MS;
			if (at > s->now) {
				if (!retry_at || at < retry_at)
					retry_at = at;
				continue;
			}
		}
		placeable[needed++] = p;
	}
	if (retry_at)
		add_eval(s, "retry", retry_at, "retry backoff");
	struct ranking r;
	if (!needed || rank(s, &r, err) < 0) {
		free(placeable);
		return;
	}
	/* Nodes that are only busy (over-subscribed) delay a job, never
	 * fail it: within QueueTimeout it waits for a node with room, as in
	 * Bacalhau; where it would fail instead, it goes to the least busy
	 * of them, which queues it. */
	size_t usable = r.suitable + (queue_allowed(s) ? 0 : r.busy);
	size_t fit = usable < needed ? usable : needed;
	size_t limit = rate_limit(s);
	size_t place = fit < limit ? fit : limit;
	/* suitable nodes sort first, the busy ones next */
	for (size_t k = 0; k < place; k++)
		new_exec(s, r.ranks[k].node->info.node_id, placeable[k], COD_DESIRED_PENDING, "scheduled",
			 k >= r.suitable);
	if (place < fit)
		add_eval(s, "exec-limit", s->now, "rate limit: more executions to create");
	if (usable < needed)
		queue_or_fail(s, &r, needed, place > 0);
	ranking_release(&r);
	free(placeable);
}

static void run_batch_service(struct sched *s, struct cod_error **err)
{
	const struct cod_job *job = s->job;
	bool batch = job->type == COD_JOB_BATCH;
	int64_t count = job->count < 0 ? 0 : job->count;

	mark_lost(s);
	if (count == 0) {
		/* Count 0 means "stop all executions": nothing is left to do for
		 * a batch job; a service job stays Running, scaled to zero. */
		stop_all(s, "job count is 0");
		if (batch)
			set_job(s, COD_JOB_COMPLETED, "%s", "");
		else
			set_job(s, COD_JOB_RUNNING, "%s", "count is 0: no executions");
		return;
	}
	if (count > MAX_PARTITIONS) {
		fail_job(s, "count %lld exceeds the maximum of %d partitions", (long long)count,
			 MAX_PARTITIONS);
		return;
	}

	if (batch) {
		if (all_partitions_completed(s, count)) {
			complete_job(s);
			return;
		}
		if (check_total_timeout(s))
			return;
		check_exec_timeouts(s);
	}
	stop_old_versions(s);

	/* executions of partitions that do not exist (cannot happen within a
	 * version; defensive) */
	for (size_t i = 0; i < s->nv; i++) {
		struct view *x = &s->v[i];
		int64_t p = x->e->partition_index;
		if (current(s, x) && live(x) && (p < 0 || p >= count))
			stop_exec(s, x, COD_EXEC_CANCELLED, "partition %lld is out of range (count %lld)",
				  (long long)p, (long long)count);
	}
	for (int64_t p = 0; p < count; p++)
		reconcile_partition(s, p, batch);

	struct partition *parts = tally_partitions(s, count, batch);
	place_partitions(s, parts, count, err);
	free(parts);
	mark_running_if_eligible(s);
}

/* --------------------------------------------------------------- ops */

static void run_ops(struct sched *s, struct cod_error **err)
{
	mark_lost(s);
	if (check_total_timeout(s))
		return;
	check_exec_timeouts(s);
	stop_old_versions(s);

	size_t ncur = 0, nlive = 0, ncompleted = 0;
	for (size_t i = 0; i < s->nv; i++) {
		if (!current(s, &s->v[i]))
			continue;
		ncur++;
		if (live(&s->v[i]))
			nlive++;
		else if (s->v[i].compute == COD_EXEC_COMPLETED)
			ncompleted++;
	}

	if (!ncur) {
		/* the first evaluation of this version: one direct bid per
		 * suitable node; nodes that join later are never added */
		struct ranking r;
		if (rank(s, &r, err) < 0)
			return;
		if (!r.suitable) {
			queue_or_fail(s, &r, 1, false);
			ranking_release(&r);
			return;
		}
		for (size_t k = 0; k < r.n && r.ranks[k].rank >= 0; k++)
			new_exec(s, r.ranks[k].node->info.node_id, 0, COD_DESIRED_RUNNING,
				 "scheduled (direct bid)", false);
		ranking_release(&r);
		mark_running_if_eligible(s);
		return;
	}
	if (nlive) {
		mark_running_if_eligible(s);
		return;
	}

	/* everything of this version ended */
	struct cod_buf failures = COD_BUF_INIT;
	for (size_t i = 0; i < s->nv; i++) {
		struct view *x = &s->v[i];
		if (!current(s, x) || x->compute != COD_EXEC_FAILED)
			continue;
		cod_buf_addf(&failures, "%sexecution on node %s failed: %s", failures.len ? "; " : "",
			     str_or(x->e->node_id, "?"), exec_failure_message(x));
	}
	if (failures.len) {
		fail_job(s, "%s", cod_buf_str(&failures));
	} else if (ncompleted) {
		complete_job(s);
	} else {
		/* every bid was rejected or cancelled: nothing ran */
		struct cod_buf why = COD_BUF_INIT;
		for (size_t i = 0; i < s->nv; i++) {
			struct view *x = &s->v[i];
			if (current(s, x))
				cod_buf_addf(&why, "%snode %s: %s", why.len ? "; " : "",
					     str_or(x->e->node_id, "?"), exec_failure_message(x));
		}
		fail_job(s, "no node ran the job: %s", cod_buf_str(&why));
		cod_buf_release(&why);
	}
	cod_buf_release(&failures);
}

/* ------------------------------------------------------------ daemon */

static void run_daemon(struct sched *s, struct cod_error **err)
{
	mark_lost(s);
	stop_old_versions(s);

	/* one live execution per node: keep the oldest */
	for (size_t i = 0; i < s->nv; i++) {
		struct view *x = &s->v[i];
		if (!current(s, x) || !live(x))
			continue;
		for (size_t j = 0; j < s->nv; j++) {
			struct view *y = &s->v[j];
			if (y == x || !current(s, y) || !live(y) || !y->e->node_id || !x->e->node_id ||
			    strcmp(y->e->node_id, x->e->node_id))
				continue;
			if (older(y, x)) {
				stop_exec(s, x, COD_EXEC_CANCELLED, "duplicate execution on node %s",
					  x->e->node_id);
				break;
			}
		}
	}

	struct ranking r;
	if (rank(s, &r, err) < 0)
		return;
	size_t limit = rate_limit(s), limited = 0, gave_up = 0;
	int64_t retry_at = 0;
	struct cod_buf gave_up_msg = COD_BUF_INIT;
	for (size_t k = 0; k < r.n && r.ranks[k].rank >= 0; k++) {
		const char *node_id = r.ranks[k].node->info.node_id;
		/* the retry policy, counted per node */
		size_t failures = 0;
		struct view *last = NULL;
		for (size_t i = 0; i < s->nv; i++) {
			struct view *x = &s->v[i];
			if (!current(s, x) || !x->e->node_id || strcmp(x->e->node_id, node_id) ||
			    (x->compute != COD_EXEC_FAILED && x->compute != COD_EXEC_COMPLETED))
				continue;
			failures++;
			if (!last || x->state_time > last->state_time)
				last = x;
		}
		if (failures >= (size_t)s->attempts) {
			if (!gave_up++)
				cod_buf_addf(&gave_up_msg, "node %s failed %zu time%s: %s", node_id, failures,
					     failures == 1 ? "" : "s", exec_failure_message(last));
			continue;
		}
		if (failures && s->backoff_ms > 0) {
			int64_t at = last->state_time + s->backoff_ms * NS_PER_MS;
			if (at > s->now) {
				if (!retry_at || at < retry_at)
					retry_at = at;
				continue;
			}
		}
		if (s->plan->n_new >= limit) {
			limited++;
			continue;
		}
		new_exec(s, node_id, 0, COD_DESIRED_RUNNING, "scheduled (direct bid)", false);
	}
	ranking_release(&r);
	if (limited)
		add_eval(s, "exec-limit", s->now, "rate limit: more executions to create");
	if (retry_at)
		add_eval(s, "retry", retry_at, "retry backoff");

	bool active = s->plan->n_new > 0 || retry_at;
	for (size_t i = 0; i < s->nv && !active; i++)
		active = current(s, &s->v[i]) && live(&s->v[i]);
	if (!active && gave_up) {
		/* every node it ran on gave up and nothing else runs it */
		fail_job(s, "%s", cod_buf_str(&gave_up_msg));
	} else {
		/* a daemon is a standing order: Running even before any node
		 * matches, waiting for nodes to join */
		enum cod_job_state st = job_state_now(s);
		if (st == COD_JOB_PENDING || st == COD_JOB_QUEUED || st == COD_JOB_UNDEFINED)
			set_job(s, COD_JOB_RUNNING, "%s", "");
	}
	cod_buf_release(&gave_up_msg);
}

/* ----------------------------------------------------------- output */

static void add_job_event(struct sched *s, int prev, int next, const char *message)
{
	struct cod_plan *p = s->plan;
	struct cod_history_event *h = xcalloc(1, sizeof(*h));
	h->type = COD_HISTORY_JOB;
	h->job_id = xstrdup_or_null(s->job->id);
	h->job_version = s->job->version;
	h->topic = xstrdup(TOPIC_SCHEDULING);
	h->message = xstrdup(message);
	h->event_time = s->now;
	h->time = s->now;
	h->has_job_state = true;
	h->job_state_prev = prev;
	h->job_state_new = next;
	if (next == COD_JOB_FAILED)
		cod_kvlist_set(&h->details, "IsError", "true");
	COD_GROW(p->events, s->event_alloc, p->n_events + 1);
	p->events[p->n_events++] = h;
}

static void finish(struct sched *s)
{
	struct cod_plan *p = s->plan;
	size_t nchanged = 0;
	for (size_t i = 0; i < s->nv; i++)
		nchanged += s->v[i].changed;
	if (nchanged)
		p->updates = xcalloc(nchanged, sizeof(*p->updates));
	for (size_t i = 0; i < s->nv; i++) {
		struct view *x = &s->v[i];
		if (!x->changed)
			continue;
		int desired = x->desired != x->e->desired_state.type ? x->desired : -1;
		int compute = x->compute != x->e->compute_state.type ? x->compute : -1;
		if (desired < 0 && compute < 0)
			continue;
		struct cod_exec_update *u = &p->updates[p->n_updates++];
		u->execution_id = xstrdup(str_or(x->e->id, ""));
		u->desired_state = desired;
		u->compute_state = compute;
		u->message = xstrdup(x->message ? x->message : "");
	}

	int prev = s->job->state.type;
	if (s->job_set && (int)s->job_state != prev) {
		p->set_job_state = true;
		p->job_state = s->job_state;
		p->job_message = xstrdup(s->job_message ? s->job_message : "");
		cleanup_free char *lower = cod_str_lower(cod_job_state_name(s->job_state));
		cleanup_free char *dflt = xasprintf("job %s", lower);
		add_job_event(s, prev, (int)s->job_state,
			      cod_str_empty(s->job_message) ? dflt : s->job_message);
	}
}

/* ---------------------------------------------------------- public */

void cod_plan_release(struct cod_plan *plan)
{
	if (!plan)
		return;
	free(plan->job_message);
	for (size_t i = 0; i < plan->n_new; i++) {
		cod_execution_free(plan->new_execs[i]);
		free(plan->new_events[i]);
	}
	free(plan->new_execs);
	free(plan->new_events);
	for (size_t i = 0; i < plan->n_updates; i++) {
		free(plan->updates[i].execution_id);
		free(plan->updates[i].message);
	}
	free(plan->updates);
	for (size_t i = 0; i < plan->n_evals; i++)
		cod_evaluation_free(plan->new_evals[i]);
	free(plan->new_evals);
	for (size_t i = 0; i < plan->n_events; i++)
		cod_history_free(plan->events[i]);
	free(plan->events);
	memset(plan, 0, sizeof(*plan));
}

int cod_scheduler_process(const struct cod_sched_input *in, struct cod_plan *out, struct cod_error **err)
{
	memset(out, 0, sizeof(*out));
	if (!in || !in->job)
		return cod_error_set(err, COD_E_INTERNAL, "scheduler: no job to evaluate");
	const struct cod_job *job = in->job;

	struct sched s = {
	    .in = in,
	    .job = job,
	    .now = in->now,
	    .plan = out,
	    .nv = in->nexecs,
	    .version_start = in->version_time > job->create_time ? in->version_time : job->create_time,
	};
	s.v = xcalloc(in->nexecs ? in->nexecs : 1, sizeof(*s.v));
	size_t nv = 0;
	for (size_t i = 0; i < in->nexecs; i++) {
		const struct cod_execution *e = in->execs[i];
		if (!e)
			continue;
		s.v[nv].e = e;
		s.v[nv].desired = e->desired_state.type;
		s.v[nv].compute = e->compute_state.type;
		s.v[nv].state_time = e->modify_time ? e->modify_time : e->create_time;
		nv++;
	}
	s.nv = nv;
	load_retry_policy(&s);

	int rc = 0;
	if (cod_job_state_terminal((enum cod_job_state)job->state.type)) {
		/* a finished job: stop whatever still runs */
		cleanup_free char *lower = cod_str_lower(cod_job_state_name(job->state.type));
		cleanup_free char *reason = xasprintf("job %s", lower);
		mark_lost(&s);
		stop_all(&s, reason);
	} else if (!job->ntasks) {
		fail_job(&s, "invalid job: it has no task");
	} else {
		s.task = &job->tasks[0];
		struct cod_resources need;
		struct cod_error *rerr = NULL;
		if (cod_task_resources(s.task, &need, &rerr) < 0) {
			fail_job(&s, "invalid job: %s", rerr->message);
			cod_error_free(rerr);
		} else {
			switch (job->type) {
			case COD_JOB_BATCH:
			case COD_JOB_SERVICE:
				run_batch_service(&s, &rerr);
				break;
			case COD_JOB_OPS:
				run_ops(&s, &rerr);
				break;
			case COD_JOB_DAEMON:
				run_daemon(&s, &rerr);
				break;
			default:
				fail_job(&s, "invalid job: unknown type");
				break;
			}
			if (rerr) {
				cod_error_move(err, &rerr);
				cod_error_free(rerr);
				rc = -1;
			}
		}
	}
	if (rc == 0)
		finish(&s);
	for (size_t i = 0; i < s.nv; i++)
		free(s.v[i].message);
	free(s.v);
	free(s.job_message);
	if (rc < 0)
		cod_plan_release(out);
	return rc;
}

/* ---------------------------------------------------- messages */

const char *cod_plan_message_type(const struct cod_execution *prev, const struct cod_execution *next)
{
	if (!next)
		return NULL;
	if (!prev)
		return "AskForBid";
	int pd = prev->desired_state.type, nd = next->desired_state.type;
	int pc = prev->compute_state.type;
	if (pd == COD_DESIRED_PENDING && nd == COD_DESIRED_RUNNING)
		return "BidAccepted";
	if (pd != COD_DESIRED_STOPPED && nd == COD_DESIRED_STOPPED) {
		if (pc == COD_EXEC_ASK_FOR_BID || pc == COD_EXEC_ASK_FOR_BID_ACCEPTED ||
		    (pd == COD_DESIRED_PENDING && pc == COD_EXEC_NEW))
			return "BidRejected";
		if (!cod_exec_state_terminal((enum cod_exec_state)pc))
			return "CancelExecution";
	}
	return NULL;
}
