/*
 * workers.c - scheduler workers: take an evaluation from the broker, run
 * the job type's scheduler over the job, its executions and the nodes, and
 * apply the plan in one transaction together with the history events,
 * follow-up evaluations and the outbox messages it implies.
 */
#include "orchestrator/orchestrator_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "common/banned.h"

static const struct cod_execution *find_exec(struct cod_execution **execs, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(execs[i]->id, id))
			return execs[i];
	return NULL;
}

static json_t *message_payload(const char *type, const struct cod_execution *e, const char *reason)
{
	if (!strcmp(type, COD_MSG_ASK_FOR_BID))
		return json_pack("{s:o}", "Execution", cod_execution_to_json(e));
	if (!strcmp(type, COD_MSG_BID_ACCEPTED))
		return json_pack("{s:s, s:b}", "ExecutionID", e->id, "Accepted", 1);
	return json_pack("{s:s, s:s}", "ExecutionID", e->id, "Reason", reason ? reason : "");
}

/* The messages a plan appended, to publish once it committed. */
struct sent {
	struct cod_outbox_msg *msgs;
	size_t n;
};

static void sent_release(struct sent *s)
{
	for (size_t i = 0; i < s->n; i++)
		cod_outbox_msg_release(&s->msgs[i]);
	free(s->msgs);
	memset(s, 0, sizeof(*s));
}

static int send_msg(struct cod_store_tx *tx, const char *type, const struct cod_execution *e, const char *reason,
		    struct sent *sent, struct cod_error **err)
{
	json_t *payload = message_payload(type, e, reason);
	char *text = json_dumps(payload, JSON_COMPACT);
	json_decref(payload);
	uint64_t seq = 0;
	int rc = cod_store_tx_outbox_append(tx, e->node_id, type, text, &seq, err);
	if (rc < 0) {
		free(text);
		return rc;
	}
	sent->msgs = xrealloc(sent->msgs, cod_mul_size(sent->n + 1, sizeof(*sent->msgs)));
	sent->msgs[sent->n++] = (struct cod_outbox_msg){
	    .node_id = xstrdup(e->node_id), .seq = seq, .type = xstrdup(type), .payload = text};
	return 0;
}

static int exec_event(struct cod_store_tx *tx, const struct cod_execution *e, int prev, const char *message,
		      struct cod_error **err)
{
	struct cod_history_event h = {0};
	h.type = COD_HISTORY_EXECUTION;
	h.job_id = e->job_id;
	h.job_version = e->job_version;
	h.execution_id = e->id;
	h.topic = (char *)"Scheduling";
	h.message = (char *)(message ? message : "");
	h.has_exec_state = true;
	h.exec_state_prev = prev;
	h.exec_state_new = e->compute_state.type;
	return cod_store_tx_add_history(tx, &h, err);
}

static void set_state(struct cod_state_info *st, int type, const char *message)
{
	st->type = type;
	if (message) {
		free(st->message);
		st->message = xstrdup(message);
	}
}

static int apply_plan(struct cod_orchestrator *o, const struct cod_job *job, struct cod_execution **execs,
		      size_t nexecs, struct cod_plan *plan, const struct cod_strlist *answered,
		      struct cod_evaluation ***later, size_t *nlater, struct sent *sent, struct cod_error **err)
{
	struct cod_store_tx *tx = NULL;
	if (cod_store_begin(o->store, &tx, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < plan->n_new; i++) {
		struct cod_execution *e = plan->new_execs[i];
		rc = cod_store_tx_put_execution(tx, e, err);
		if (rc == 0) {
			cleanup_free char *msg = xasprintf("scheduled on node %s", e->node_id);
			rc = exec_event(tx, e, COD_EXEC_UNDEFINED, msg, err);
		}
		if (rc == 0)
			rc = send_msg(tx, COD_MSG_ASK_FOR_BID, e, NULL, sent, err);
	}
	for (size_t i = 0; rc == 0 && i < plan->n_updates; i++) {
		const struct cod_exec_update *u = &plan->updates[i];
		/* apply the change to the latest committed row: the inbox may
		 * have moved the execution on since the scheduler looked */
		struct cod_execution *fresh = NULL;
		struct cod_error *lookup = NULL;
		if (cod_store_get_execution(o->store, u->execution_id, &fresh, &lookup) < 0) {
			cod_error_free(lookup);
			const struct cod_execution *seen = find_exec(execs, nexecs, u->execution_id);
			if (!seen)
				continue;
			fresh = cod_execution_dup(seen);
		}
		struct cod_execution *next = cod_execution_dup(fresh);
		if (u->desired_state >= 0)
			set_state(&next->desired_state, u->desired_state, u->message);
		if (u->compute_state >= 0 &&
		    !cod_exec_state_terminal((enum cod_exec_state)fresh->compute_state.type))
			set_state(&next->compute_state, u->compute_state, u->message);
		if (next->desired_state.type == fresh->desired_state.type &&
		    next->compute_state.type == fresh->compute_state.type) {
			cod_execution_free(fresh);
			cod_execution_free(next);
			continue;
		}
		rc = cod_store_tx_put_execution(tx, next, err);
		if (rc == 0)
			rc = exec_event(tx, next, fresh->compute_state.type, u->message, err);
		const char *type = cod_plan_message_type(fresh, next);
		if (rc == 0 && type && next->node_id)
			rc = send_msg(tx, type, next, u->message, sent, err);
		cod_execution_free(fresh);
		cod_execution_free(next);
	}
	if (rc == 0 && plan->set_job_state)
		rc = cod_store_tx_set_job_state(tx, job->id, plan->job_state, plan->job_message, 0, err);
	for (size_t i = 0; rc == 0 && i < plan->n_events; i++) {
		struct cod_history_event *h = plan->events[i];
		if (!h->job_id)
			h->job_id = xstrdup(job->id);
		if (!h->job_version)
			h->job_version = job->version;
		rc = cod_store_tx_add_history(tx, h, err);
	}
	for (size_t i = 0; rc == 0 && i < plan->n_evals; i++) {
		struct cod_evaluation *ev = plan->new_evals[i];
		rc = cod_store_tx_put_evaluation(tx, ev, err);
		if (rc == 0) {
			json_t *j = cod_evaluation_to_json(ev);
			struct cod_evaluation *copy = cod_evaluation_from_json(j, NULL);
			json_decref(j);
			if (copy) {
				*later = xrealloc(*later, cod_mul_size(*nlater + 1, sizeof(**later)));
				(*later)[(*nlater)++] = copy;
			}
		}
	}
	for (size_t i = 0; rc == 0 && answered && i < answered->n; i++) {
		struct cod_evaluation *ev = NULL;
		struct cod_error *lookup = NULL;
		if (cod_store_get_evaluation(o->store, answered->items[i], &ev, &lookup) < 0) {
			cod_error_free(lookup);
			continue;
		}
		free(ev->status);
		ev->status = xstrdup("complete");
		rc = cod_store_tx_put_evaluation(tx, ev, err);
		cod_evaluation_free(ev);
	}
	if (rc < 0) {
		cod_store_rollback(tx);
		return -1;
	}
	return cod_store_commit(tx, err);
}

static void mark_evals(struct cod_orchestrator *o, const struct cod_strlist *ids, const char *status)
{
	for (size_t i = 0; i < ids->n; i++) {
		struct cod_evaluation *ev = NULL;
		if (cod_store_get_evaluation(o->store, ids->items[i], &ev, NULL) < 0)
			continue;
		free(ev->status);
		ev->status = xstrdup(status);
		cod_store_put_evaluation(o->store, ev, NULL);
		cod_evaluation_free(ev);
	}
}

/* Process one evaluation; returns 0 (ack) or -1 (nack). */
static int process(struct cod_orchestrator *o, const struct cod_evaluation *ev)
{
	struct cod_error *err = NULL;
	struct cod_job *job = NULL;
	if (cod_store_get_job(o->store, "*", ev->job_id, 0, &job, &err) < 0) {
		if (err->code == COD_E_NOT_FOUND) {
			cod_error_free(err);
			return 0; /* the job is gone: nothing to do */
		}
		cod_warn("scheduler", "evaluation=%s job=%s: %s", ev->id, ev->job_id, err->message);
		cod_error_free(err);
		return -1;
	}
	struct cod_exec_query q = {.namespace_ = job->namespace_, .job_ref = job->id, .all_versions = true};
	struct cod_exec_page page = {0};
	if (cod_store_list_executions(o->store, &q, &page, &err) < 0) {
		cod_warn("scheduler", "evaluation=%s executions: %s", ev->id, err->message);
		cod_error_free(err);
		cod_job_free(job);
		return -1;
	}
	struct cod_node_state **nodes = NULL;
	size_t nnodes = 0;
	orch_nodes_snapshot(o, &nodes, &nnodes);
	uint64_t seed;
	cod_random_bytes(&seed, sizeof(seed));
	/* timeouts of an updated or rerun job count from its new version */
	int64_t version_time = 0;
	if (job->version > 1) {
		struct cod_job_page versions = {0};
		if (cod_store_job_versions(o->store, job->namespace_, job->id, &versions, NULL) == 0 && versions.n)
			version_time = versions.items[versions.n - 1]->modify_time;
		cod_job_page_release(&versions);
	}
	struct cod_sched_input in = {
		.eval = ev,
		.job = job,
		.execs = page.items,
		.nexecs = page.n,
		.nodes = nodes,
		.nnodes = nnodes,
		.now = cod_now_ns(),
		.seed = seed,
		.version_time = version_time,
		.cfg = &o->sched_cfg,
	};
	struct cod_plan plan = {0};
	int rc = cod_scheduler_process(&in, &plan, &err);
	struct cod_evaluation **later = NULL;
	size_t nlater = 0;
	struct sent sent = {0};
	if (rc == 0) {
		/* the evaluations this run answers: the broker tells on ack;
		 * mark this one (and, below, the coalesced ones) complete in the
		 * plan's transaction */
		struct cod_strlist self = {0};
		cod_strlist_add(&self, ev->id);
		rc = apply_plan(o, job, page.items, page.n, &plan, &self, &later, &nlater, &sent, &err);
		cod_strlist_release(&self);
	}
	if (rc < 0) {
		cod_warn("scheduler", "evaluation=%s job=%s: %s", ev->id, job->id, err ? err->message : "failed");
		cod_error_free(err);
	} else {
		cod_debug("scheduler", "evaluation=%s job=%s trigger=%s new=%zu updates=%zu evals=%zu", ev->id, job->id,
			  ev->triggered_by, plan.n_new, plan.n_updates, plan.n_evals);
	}
	cod_plan_release(&plan);
	for (size_t i = 0; i < nnodes; i++)
		cod_node_free(nodes[i]);
	free(nodes);
	cod_exec_page_release(&page);
	cod_job_free(job);
	if (rc == 0)
		orch_send_committed(o, sent.msgs, sent.n);
	sent_release(&sent);
	if (rc < 0)
		return -1;
	orch_enqueue_all(o, later, nlater);
	return 0;
}

void *orch_worker_main(void *arg)
{
	struct cod_orchestrator *o = arg;
	for (;;) {
		struct cod_evaluation *ev = NULL;
		char *receipt = NULL;
		int r = cod_broker_dequeue(o->broker, 1000, &ev, &receipt);
		if (r < 0)
			return NULL;
		if (r == 0)
			continue;
		int rc = process(o, ev);
		struct cod_strlist answered = {0};
		if (rc == 0) {
			if (cod_broker_ack(o->broker, ev->id, receipt, &answered) == 0 && answered.n > 1) {
				/* coalesced ones: answered by this run */
				struct cod_strlist rest = {0};
				for (size_t i = 1; i < answered.n; i++)
					cod_strlist_add(&rest, answered.items[i]);
				mark_evals(o, &rest, "complete");
				cod_strlist_release(&rest);
			}
		} else {
			bool dead = false;
			if (cod_broker_nack(o->broker, ev->id, receipt, &dead, &answered) == 0 && dead) {
				cod_warn("scheduler", "evaluation=%s job=%s dead-lettered after repeated failures", ev->id,
					 ev->job_id);
				mark_evals(o, &answered, "failed");
			}
		}
		cod_strlist_release(&answered);
		cod_evaluation_free(ev);
		free(receipt);
	}
}
