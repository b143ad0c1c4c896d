/*
 * inbox.c - data messages from compute nodes (BidResult, RunResult,
 * ComputeError, ExecutionProgress), processed in each node's sequence
 * order: duplicates are dropped, gaps wait for the node to resend. Each
 * message is one store transaction (execution, history, evaluation).
 */
#include "orchestrator/orchestrator_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/doc.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "common/banned.h"

void orch_on_data(void *ctx, const char *subject, const char *reply, const char *data, size_t len)
{
	(void)reply;
	struct cod_orchestrator *o = ctx;
	char *node_id = cod_subject_node(subject);
	if (!node_id)
		return;
	struct inbox_item *it = xcalloc(1, sizeof(*it));
	it->node_id = node_id;
	it->data = xstrndup(data, len);
	it->len = len;
	pthread_mutex_lock(&o->lock);
	if (o->inbox_tail)
		o->inbox_tail->next = it;
	else
		o->inbox_head = it;
	o->inbox_tail = it;
	pthread_cond_broadcast(&o->cond);
	pthread_mutex_unlock(&o->lock);
}

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

/* The execution with the RunCommandResult and PublishResult of a payload,
 * decoded through the execution codec (unchanged when they are absent or
 * malformed). Consumes e. */
static struct cod_execution *with_results(struct cod_execution *e, const json_t *payload)
{
	json_t *run = cod_json_iget(payload, "RunCommandResult");
	json_t *pub = cod_json_iget(payload, "PublishResult");
	if (!json_is_object(run) && !json_is_object(pub))
		return e;
	json_t *wrap = cod_execution_to_json(e);
	if (json_is_object(run))
		json_object_set(wrap, "RunOutput", run);
	if (json_is_object(pub))
		json_object_set(wrap, "PublishedResult", pub);
	struct cod_execution *decoded = cod_execution_from_json(wrap, NULL);
	json_decref(wrap);
	if (!decoded)
		return e;
	cod_execution_free(e);
	return decoded;
}

/* Record that the node's message seq was processed, when processing it
 * wrote nothing else. */
static int save_seq(struct cod_orchestrator *o, const char *node_id, uint64_t seq, struct cod_error **err)
{
	struct cod_store_tx *tx = NULL;
	if (cod_store_begin(o->store, &tx, err) < 0)
		return -1;
	if (cod_store_tx_set_compute_seq(tx, node_id, seq, err) < 0) {
		cod_store_rollback(tx);
		return -1;
	}
	return cod_store_commit(tx, err);
}

/* Apply one message to its execution, recording its seq in the same
 * transaction. Returns 1 when the job needs an evaluation, 0 when nothing
 * (more) is to be done, -1 on a store error. */
static int apply(struct cod_orchestrator *o, const char *node_id, const struct cod_envelope *env,
		 struct cod_error **err)
{
	const char *exec_id = str_of(env->payload, "ExecutionID");
	if (!exec_id) {
		cod_warn("inbox", "node=%s %s without ExecutionID dropped", node_id, env->type);
		return save_seq(o, node_id, env->seq, err);
	}
	struct cod_execution *e = NULL;
	struct cod_error *lookup = NULL;
	if (cod_store_get_execution(o->store, exec_id, &e, &lookup) < 0) {
		cod_warn("inbox", "node=%s %s for unknown execution %s dropped", node_id, env->type, exec_id);
		cod_error_free(lookup);
		return save_seq(o, node_id, env->seq, err);
	}
	if (!e->node_id || strcmp(e->node_id, node_id)) {
		cod_warn("inbox", "node=%s %s for execution %s of another node dropped", node_id, env->type, exec_id);
		cod_execution_free(e);
		return save_seq(o, node_id, env->seq, err);
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
		return save_seq(o, node_id, env->seq, err);
	}
	if (!moves_forward(prev, next)) {
		/* a progress message that only says more about the same phase
		 * ("pulling image 30/45 MB") updates the state message */
		if (!eval && next == prev && message && !cod_exec_state_terminal((enum cod_exec_state)prev)) {
			set_state(&e->compute_state, next, message);
			struct cod_store_tx *ptx = NULL;
			int prc = cod_store_begin(o->store, &ptx, err);
			if (prc == 0)
				prc = cod_store_tx_put_execution(ptx, e, err);
			if (prc == 0)
				prc = cod_store_tx_set_compute_seq(ptx, node_id, env->seq, err);
			if (prc == 0)
				prc = cod_store_commit(ptx, err);
			else if (ptx)
				cod_store_rollback(ptx);
			cod_execution_free(e);
			return prc;
		}
		cod_execution_free(e);
		return save_seq(o, node_id, env->seq, err);
	}
	set_state(&e->compute_state, next, message);

	struct cod_store_tx *tx = NULL;
	struct cod_evaluation **later = NULL;
	size_t nlater = 0;
	if (cod_store_begin(o->store, &tx, err) < 0) {
		cod_execution_free(e);
		return -1;
	}
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
	int rc = cod_store_tx_put_execution(tx, e, err);
	if (rc == 0)
		rc = cod_store_tx_add_history(tx, &h, err);
	if (rc == 0)
		rc = cod_store_tx_set_compute_seq(tx, node_id, env->seq, err);
	if (rc == 0 && eval && e->job)
		rc = orch_new_eval(o, tx, e->job, "exec-update", 0, &later, &nlater, err);
	if (rc < 0) {
		cod_store_rollback(tx);
		for (size_t i = 0; i < nlater; i++)
			cod_evaluation_free(later[i]);
		free(later);
		cod_execution_free(e);
		return -1;
	}
	rc = cod_store_commit(tx, err);
	cod_execution_free(e);
	if (rc < 0) {
		for (size_t i = 0; i < nlater; i++)
			cod_evaluation_free(later[i]);
		free(later);
		return -1;
	}
	orch_enqueue_all(o, later, nlater);
	return eval;
}

static void process(struct cod_orchestrator *o, struct inbox_item *it)
{
	struct cod_envelope env = {0};
	struct cod_error *err = NULL;
	if (cod_envelope_decode(it->data, it->len, &env, &err) < 0) {
		cod_warn("inbox", "node=%s malformed message dropped: %s", it->node_id, err->message);
		cod_error_free(err);
		return;
	}
	pthread_mutex_lock(&o->nodes_lock);
	struct orch_node *ne = orch_node_find(o, it->node_id);
	const char *drop = NULL;
	if (!ne)
		drop = "unknown node (no handshake)";
	else if (ne->compute_seq_known && env.seq <= ne->last_compute_seq)
		drop = "duplicate";
	else if (ne->compute_seq_known && env.seq > ne->last_compute_seq + 1)
		drop = "gap (waiting for the node to resend)";
	pthread_mutex_unlock(&o->nodes_lock);
	if (drop) {
		cod_debug("inbox", "node=%s seq=%llu type=%s dropped: %s", it->node_id, (unsigned long long)env.seq,
			  env.type, drop);
		cod_envelope_release(&env);
		return;
	}
	if (apply(o, it->node_id, &env, &err) < 0) {
		/* not processed: the node resends it after the next heartbeat */
		cod_warn("inbox", "node=%s seq=%llu type=%s failed: %s", it->node_id, (unsigned long long)env.seq,
			 env.type, err->message);
		cod_error_free(err);
		cod_envelope_release(&env);
		return;
	}
	pthread_mutex_lock(&o->nodes_lock);
	ne = orch_node_find(o, it->node_id);
	if (ne) {
		ne->last_compute_seq = env.seq;
		ne->compute_seq_known = true;
		ne->dirty = true;
	}
	pthread_mutex_unlock(&o->nodes_lock);
	cod_envelope_release(&env);
}

void *orch_inbox_main(void *arg)
{
	struct cod_orchestrator *o = arg;
	for (;;) {
		pthread_mutex_lock(&o->lock);
		while (!o->stopping && !o->inbox_head)
			pthread_cond_wait(&o->cond, &o->lock);
		if (o->stopping) {
			pthread_mutex_unlock(&o->lock);
			return NULL;
		}
		struct inbox_item *it = o->inbox_head;
		o->inbox_head = it->next;
		if (!o->inbox_head)
			o->inbox_tail = NULL;
		pthread_mutex_unlock(&o->lock);
		process(o, it);
		free(it->node_id);
		free(it->data);
		free(it);
	}
}
