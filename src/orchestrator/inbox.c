/*
 * inbox.c - data messages from compute nodes (BidResult, RunResult,
 * ComputeError, ExecutionProgress), processed in each node's sequence
 * order: duplicates are dropped, gaps wait for the node to resend. The
 * messages queued at once are applied in one store transaction
 * (executions, history, evaluations).
 */
#include "orchestrator/orchestrator_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/doc.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "common/banned.h"

/* Compute states only move forward; a resent or late message can not take
 * an execution back. */
static int progress_rank(int state)
{
	switch (state) {
	case COD_EXEC_NEW:
		return 0;
	case COD_EXEC_ASK_FOR_BID:
		return 1;
	case COD_EXEC_ASK_FOR_BID_ACCEPTED:
		return 2;
	case COD_EXEC_BID_ACCEPTED:
		return 3;
	case COD_EXEC_PREPARING:
		return 4;
	case COD_EXEC_RUNNING:
		return 5;
	case COD_EXEC_PUBLISHING:
		return 6;
	default:
		return cod_exec_state_terminal((enum cod_exec_state)state) ? 100 : 0;
	}
}

static bool moves_forward(int from, int to)
{
	if (cod_exec_state_terminal((enum cod_exec_state)from))
		return false;
	return progress_rank(to) > progress_rank(from);
}

static void set_state(struct cod_state_info *st, int type, const char *message)
{
	st->type = type;
	free(st->message);
	st->message = xstrdup(message ? message : "");
}

static const char *str_of(const json_t *payload, const char *key)
{
	json_t *v = cod_json_iget(payload, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The execution with the RunCommandResult and PublishResult of a payload
 * (unchanged where they are absent or malformed). */
static struct cod_execution *with_results(struct cod_execution *e, const json_t *payload)
{
	cod_execution_set_results(e, cod_json_iget(payload, "RunCommandResult"), cod_json_iget(payload, "PublishResult"));
	return e;
}

/* What one inbox transaction carries: several messages are applied in one
 * commit (group commit), so executions they touched are read from here
 * rather than the store, which does not see the open transaction. */
struct batch {
	struct cod_store_tx *tx;
	struct cod_execution **execs; /* latest version of each touched execution */
	bool *dirty;		      /* execs[i] changed since it was last written */
	size_t nexecs;
	struct cod_evaluation **later; /* evaluations to enqueue after commit */
	size_t nlater;
	struct cod_strlist eval_jobs;  /* one exec-update evaluation per job per batch */
	struct orch_sent *sent;	       /* messages to publish after commit */
	struct cod_strlist cancelled;  /* unknown executions cancelled by this batch */
};

static struct cod_execution *batch_get(struct cod_orchestrator *o, struct batch *b, const char *id)
{
	for (size_t i = 0; i < b->nexecs; i++)
		if (!strcmp(b->execs[i]->id, id) || cod_str_has_prefix(b->execs[i]->id, id))
			return cod_execution_dup(b->execs[i]);
	/* Nodes name executions by full ID: read it in the batch's own
	 * transaction (the writer's warm cache); a prefix is looked up in
	 * full. */
	struct cod_execution *e = NULL;
	if (cod_store_tx_get_execution(b->tx, id, &e, NULL) == 0)
		return e;
	if (cod_store_get_execution(o->store, id, &e, NULL) < 0)
		return NULL;
	return e;
}

/* Keep e as its execution's latest version, to be written by
 * batch_write: under load a node's Preparing, Running and RunResult for
 * one execution often arrive together, and the execution is then written
 * once instead of three times. */
static void batch_put(struct batch *b, const struct cod_execution *e)
{
	for (size_t i = 0; i < b->nexecs; i++) {
		if (!strcmp(b->execs[i]->id, e->id)) {
			cod_execution_free(b->execs[i]);
			b->execs[i] = cod_execution_dup(e);
			b->dirty[i] = true;
			return;
		}
	}
	b->execs = xrealloc(b->execs, cod_mul_size(b->nexecs + 1, sizeof(*b->execs)));
	b->dirty = xrealloc(b->dirty, cod_mul_size(b->nexecs + 1, sizeof(*b->dirty)));
	b->dirty[b->nexecs] = true;
	b->execs[b->nexecs++] = cod_execution_dup(e);
}

/* Write the executions the batch changed. */
static int batch_write(struct batch *b, struct cod_error **err)
{
	for (size_t i = 0; i < b->nexecs; i++) {
		if (!b->dirty[i])
			continue;
		if (cod_store_tx_put_execution(b->tx, b->execs[i], err) < 0)
			return -1;
		b->dirty[i] = false;
	}
	return 0;
}

static void batch_release(struct batch *b)
{
	for (size_t i = 0; i < b->nexecs; i++)
		cod_execution_free(b->execs[i]);
	free(b->execs);
	free(b->dirty);
	for (size_t i = 0; i < b->nlater; i++)
		cod_evaluation_free(b->later[i]);
	free(b->later);
	cod_strlist_release(&b->eval_jobs);
	cod_strlist_release(&b->cancelled);
	memset(b, 0, sizeof(*b));
}

/* A message about an execution this orchestrator does not have: one whose
 * commit a crash lost after its AskForBid was published. A node that
 * still holds it live (it bid, or reports a phase) is told to cancel it,
 * so that no work runs for a job nobody knows. */
static int unknown_execution(struct batch *b, const char *node_id, const struct cod_envelope *env,
			     const char *exec_id, struct cod_error **err)
{
	bool live = false;
	if (!strcmp(env->type, COD_MSG_BID_RESULT)) {
		live = json_is_true(cod_json_iget(env->payload, "Accepted"));
	} else if (!strcmp(env->type, COD_MSG_EXECUTION_PROGRESS)) {
		json_t *st = cod_json_iget(env->payload, "ComputeState");
		live = json_is_integer(st) &&
		       !cod_exec_state_terminal((enum cod_exec_state)json_integer_value(st));
	}
	for (size_t i = 0; live && i < b->cancelled.n; i++)
		if (!strcmp(b->cancelled.items[i], exec_id))
			return 0; /* its BidResult and a phase came together */
	if (!live) {
		cod_warn("inbox", "node=%s %s for unknown execution %s dropped", node_id, env->type, exec_id);
		return 0;
	}
	cod_strlist_add(&b->cancelled, exec_id);
	cod_warn("inbox", "node=%s %s for unknown execution %s: cancelling it there", node_id, env->type,
		 exec_id);
	json_t *p = json_pack("{s:s, s:s}", "ExecutionID", exec_id, "Reason",
			      "the orchestrator does not know this execution (lost in a crash)");
	char *text = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	return orch_outbox_add(b->tx, node_id, COD_MSG_CANCEL_EXECUTION, text, b->sent, err);
}

/* Apply one message to its execution inside the batch's transaction.
 * Returns 0 (applied or nothing to do) or -1 on a store error. */
static int apply(struct cod_orchestrator *o, struct batch *b, const char *node_id, const struct cod_envelope *env,
		 struct cod_error **err)
{
	const char *exec_id = str_of(env->payload, "ExecutionID");
	if (!exec_id) {
		cod_warn("inbox", "node=%s %s without ExecutionID dropped", node_id, env->type);
		return 0;
	}
	struct cod_execution *e = batch_get(o, b, exec_id);
	if (!e)
		return unknown_execution(b, node_id, env, exec_id, err);
	if (!e->node_id || strcmp(e->node_id, node_id)) {
		cod_warn("inbox", "node=%s %s for execution %s of another node dropped", node_id, env->type, exec_id);
		cod_execution_free(e);
		return 0;
	}
	int prev = e->compute_state.type;
	int next = prev;
	const char *message = NULL;
	bool eval = true;
	bool long_running = e->job && (e->job->type == COD_JOB_SERVICE || e->job->type == COD_JOB_DAEMON);
	if (!strcmp(env->type, COD_MSG_BID_RESULT)) {
		bool accepted = json_is_true(cod_json_iget(env->payload, "Accepted"));
		message = str_of(env->payload, "Reason");
		if (!accepted) {
			next = COD_EXEC_ASK_FOR_BID_REJECTED;
			set_state(&e->desired_state, COD_DESIRED_STOPPED, message ? message : "bid rejected");
		} else {
			next = e->desired_state.type == COD_DESIRED_RUNNING ? COD_EXEC_BID_ACCEPTED
									  : COD_EXEC_ASK_FOR_BID_ACCEPTED;
			message = "bid accepted";
		}
	} else if (!strcmp(env->type, COD_MSG_RUN_RESULT)) {
		e = with_results(e, env->payload);
		if (long_running) {
			next = COD_EXEC_FAILED;
			message = "a long-running execution exited";
		} else {
			next = COD_EXEC_COMPLETED;
			message = "execution completed";
		}
		set_state(&e->desired_state, COD_DESIRED_STOPPED, message);
	} else if (!strcmp(env->type, COD_MSG_COMPUTE_ERROR)) {
		next = COD_EXEC_FAILED;
		message = str_of(env->payload, "Message");
		if (!message)
			message = "execution failed";
		set_state(&e->desired_state, COD_DESIRED_STOPPED, message);
		e = with_results(e, env->payload);
	} else if (!strcmp(env->type, COD_MSG_EXECUTION_PROGRESS)) {
		json_t *st = cod_json_iget(env->payload, "ComputeState");
		if (json_is_integer(st))
			next = (int)json_integer_value(st);
		message = str_of(env->payload, "Message");
		eval = false;
	} else {
		cod_warn("inbox", "node=%s unknown message type \"%s\" dropped", node_id, env->type);
		cod_execution_free(e);
		return 0;
	}
	int rc = 0;
	if (!moves_forward(prev, next)) {
		/* a progress message that only says more about the same phase
		 * ("pulling image 30/45 MB") updates the state message */
		if (!eval && next == prev && message && !cod_exec_state_terminal((enum cod_exec_state)prev)) {
			set_state(&e->compute_state, next, message);
			batch_put(b, e);
		}
		cod_execution_free(e);
		return rc;
	}
	set_state(&e->compute_state, next, message);
	struct cod_history_event h = {0};
	h.type = COD_HISTORY_EXECUTION;
	h.job_id = e->job_id;
	h.job_version = e->job_version;
	h.execution_id = e->id;
	h.topic = (char *)"Execution";
	h.message = (char *)(message ? message : cod_exec_state_name((enum cod_exec_state)next));
	h.has_exec_state = true;
	h.exec_state_prev = prev;
	h.exec_state_new = next;
	rc = cod_store_tx_add_history(b->tx, &h, err);
	if (rc == 0)
		batch_put(b, e);
	bool seen = false;
	for (size_t i = 0; i < b->eval_jobs.n && !seen; i++)
		seen = e->job_id && !strcmp(b->eval_jobs.items[i], e->job_id);
	if (rc == 0 && eval && e->job && !seen) {
		/* stored by process() unless it plans it right away */
		b->later = xrealloc(b->later, cod_mul_size(b->nlater + 1, sizeof(*b->later)));
		b->later[b->nlater++] = orch_eval_make(e->job, "exec-update", 0);
		cod_strlist_add(&b->eval_jobs, e->job_id);
	}
	cod_execution_free(e);
	return rc;
}

struct decoded {
	struct cod_nats_msg msg;
	char *node_id; /* from the subject */
	struct cod_envelope env;
	bool take;
};

#define BATCH_MAX 128

/* Decide which queued messages are next in their node's sequence. */
static void check_seq(struct cod_orchestrator *o, struct decoded *d, size_t n)
{
	struct cod_strlist nodes = {0};
	uint64_t last[BATCH_MAX];
	bool known[BATCH_MAX];
	const json_t *capacity[BATCH_MAX]; /* each node's latest in the batch */
	pthread_mutex_lock(&o->nodes_lock);
	for (size_t i = 0; i < n; i++) {
		if (!d[i].env.type)
			continue;
		size_t k = 0;
		while (k < nodes.n && strcmp(nodes.items[k], d[i].node_id))
			k++;
		if (k == nodes.n) {
			struct orch_node *ne = orch_node_find(o, d[i].node_id);
			cod_strlist_add(&nodes, d[i].node_id);
			capacity[k] = NULL;
			known[k] = ne && ne->compute_seq_known;
			last[k] = ne ? ne->last_compute_seq : 0;
			if (!ne) {
				cod_debug("inbox", "node=%s message dropped: unknown node (no handshake)",
					  d[i].node_id);
				known[k] = true;
				last[k] = UINT64_MAX; /* drop everything from it */
			}
		}
		/* a node's capacity is as fresh as its message was sent, even
		 * a resent one; the batch holds them in the order sent */
		if (d[i].env.capacity)
			capacity[k] = d[i].env.capacity;
		const char *drop = NULL;
		if (known[k] && d[i].env.seq <= last[k])
			drop = "duplicate";
		else if (known[k] && d[i].env.seq > last[k] + 1)
			drop = "gap (waiting for the node to resend)";
		if (drop) {
			cod_debug("inbox", "node=%s seq=%llu type=%s dropped: %s", d[i].node_id,
				  (unsigned long long)d[i].env.seq, d[i].env.type, drop);
			continue;
		}
		d[i].take = true;
		known[k] = true;
		last[k] = d[i].env.seq;
	}
	for (size_t k = 0; k < nodes.n; k++) {
		struct orch_node *ne = capacity[k] ? orch_node_find(o, nodes.items[k]) : NULL;
		if (ne)
			orch_node_capacity_locked(ne, capacity[k]);
	}
	pthread_mutex_unlock(&o->nodes_lock);
	cod_strlist_release(&nodes);
}

/* The evaluations the batch created whose jobs no worker has: claimed
 * from the broker and planned right here, inside the batch's transaction,
 * instead of after a hand-off to a worker and a transaction of its own;
 * done in the transaction that made them, they are never stored. The
 * rest are stored and stay in b->later, enqueued after commit. Returns
 * how many were claimed (ws[0..n), ws zeroed by the caller); *rcp is -1
 * when storing failed. */
static size_t claim(struct cod_orchestrator *o, struct batch *b, struct orch_work *ws, size_t max, int *rcp,
		    struct cod_error **err)
{
	size_t n = 0, kept = 0;
	int rc = 0;
	for (size_t i = 0; i < b->nlater; i++) {
		struct cod_evaluation *ev = b->later[i];
		free(ev->id);
		ev->id = cod_new_id("");
		if (n < max && cod_broker_claim(o->broker, ev, &ws[n].receipt) == 1) {
			ws[n].ev = ev;
			ws[n++].unstored = true;
			continue;
		}
		if (rc == 0)
			rc = cod_store_tx_put_evaluation(b->tx, ev, err);
		b->later[kept++] = ev;
	}
	b->nlater = kept;
	*rcp = rc;
	return n;
}

/* Claimed evaluations at the most per batch. */
#define INLINE_MAX 32

/* Apply the taken messages in one transaction, with the plans of the
 * evaluations they lead to where it can (claim); on a store error nothing
 * is recorded (the nodes resend). */
static void process(struct cod_orchestrator *o, struct decoded *d, size_t n)
{
	struct cod_error *err = NULL;
	struct batch b = {0};
	struct orch_work ws[INLINE_MAX];
	struct orch_sent sent = {0};
	size_t nw = 0, planned = 0;
	memset(ws, 0, sizeof(ws));
	b.sent = &sent;
	if (cod_store_begin(o->store, &b.tx, &err) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (!d[i].take)
			continue;
		if (apply(o, &b, d[i].node_id, &d[i].env, &err) < 0 ||
		    cod_store_tx_set_compute_seq(b.tx, d[i].node_id, d[i].env.seq, &err) < 0) {
			cod_store_rollback(b.tx);
			goto fail;
		}
	}
	if (batch_write(&b, &err) < 0) {
		cod_store_rollback(b.tx);
		goto fail;
	}
	int crc = 0;
	nw = claim(o, &b, ws, INLINE_MAX, &crc, &err);
	if (crc < 0) {
		cod_store_rollback(b.tx);
		goto fail;
	}
	if (nw) {
		cod_store_tx_read_own(b.tx);
		planned = orch_plan_all(o, ws, nw);
	}
	if (planned && orch_apply_plans(b.tx, ws, nw, &sent, &err) < 0) {
		cod_store_rollback(b.tx);
		goto fail;
	}
	/* one that failed is retried by a worker (nacked): stored after all,
	 * pending, so that a restart finds it too */
	for (size_t i = 0; i < nw; i++) {
		if (ws[i].rc < 0 && ws[i].unstored) {
			ws[i].unstored = false;
			if (cod_store_tx_put_evaluation(b.tx, ws[i].ev, &err) < 0) {
				cod_store_rollback(b.tx);
				goto fail;
			}
		}
	}
	/* Nothing here is acknowledged before a sync: heartbeat and
	 * handshake replies sync before they acknowledge the node's
	 * messages. The plans' messages go out once committed, before the
	 * commit is durable (see process() in workers.c). */
	if (cod_store_commit_nowait(b.tx, &err) < 0)
		goto fail;
	pthread_mutex_lock(&o->nodes_lock);
	for (size_t i = 0; i < n; i++) {
		if (!d[i].take)
			continue;
		struct orch_node *ne = orch_node_find(o, d[i].node_id);
		if (ne) {
			ne->last_compute_seq = d[i].env.seq;
			ne->compute_seq_known = true;
			ne->dirty = true;
		}
	}
	pthread_mutex_unlock(&o->nodes_lock);
	orch_plans_committed(o, ws, nw, &sent);
	orch_enqueue_all(o, b.later, b.nlater);
	b.later = NULL;
	b.nlater = 0;
	goto done;
fail:
	/* not processed: the nodes resend after their next heartbeat, and
	 * the claimed evaluations, never stored, are dropped (acked) */
	cod_warn("inbox", "%zu messages not processed: %s", n, err ? err->message : "store error");
	cod_error_free(err);
	for (size_t i = 0; i < nw; i++)
		ws[i].rc = 0;
done:
	orch_works_finish(o, ws, nw);
	orch_sent_release(&sent);
	batch_release(&b);
}

/* How long one wait for the first message of a batch lasts; a stop ends
 * it at once (cod_orchestrator_stop unsubscribes), so this only bounds an
 * idle wait. */
#define INBOX_WAIT_MS 60000

/* Up to BATCH_MAX messages, waiting for the first only; those whose
 * subject names no node are dropped. Returns -1 once the subscription has
 * ended and nothing was taken. */
static int take_batch(struct cod_orchestrator *o, struct decoded *d, size_t *n)
{
	int r = 1, wait_ms = INBOX_WAIT_MS;
	*n = 0;
	while (*n < BATCH_MAX) {
		memset(&d[*n], 0, sizeof(d[*n]));
		r = cod_nats_next(o->data_sub, wait_ms, &d[*n].msg);
		if (r != 1)
			break;
		wait_ms = 0;
		d[*n].node_id = cod_subject_node(d[*n].msg.subject);
		if (d[*n].node_id)
			(*n)++;
		else
			cod_nats_msg_release(&d[*n].msg);
	}
	return r < 0 && !*n ? -1 : 0;
}

void *orch_inbox_main(void *arg)
{
	cod_thread_name("cod-inbox");
	struct cod_orchestrator *o = arg;
	struct decoded d[BATCH_MAX];
	for (;;) {
		size_t n = 0;
		if (take_batch(o, d, &n) < 0)
			return NULL;
		for (size_t i = 0; i < n; i++) {
			struct cod_error *err = NULL;
			if (cod_envelope_decode(d[i].msg.data, d[i].msg.len, &d[i].env, &err) < 0) {
				cod_warn("inbox", "node=%s malformed message dropped: %s", d[i].node_id,
					 err->message);
				cod_error_free(err);
				memset(&d[i].env, 0, sizeof(d[i].env));
			}
		}
		if (n) {
			check_seq(o, d, n);
			process(o, d, n);
		}
		for (size_t i = 0; i < n; i++) {
			if (d[i].env.type)
				cod_envelope_release(&d[i].env);
			free(d[i].node_id);
			cod_nats_msg_release(&d[i].msg);
		}
	}
}
