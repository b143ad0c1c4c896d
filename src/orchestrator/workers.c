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
	if (!strcmp(type, COD_MSG_BID_ACCEPTED))
		return json_pack("{s:s, s:b}", "ExecutionID", e->id, "Accepted", 1);
	return json_pack("{s:s, s:s}", "ExecutionID", e->id, "Reason", reason ? reason : "");
}

void orch_sent_release(struct orch_sent *s)
{
	for (size_t i = 0; i < s->n; i++)
		cod_outbox_msg_release(&s->msgs[i]);
	free(s->msgs);
	memset(s, 0, sizeof(*s));
}

int orch_outbox_add(struct cod_store_tx *tx, const char *node_id, const char *type, char *text,
		    struct orch_sent *sent, struct cod_error **err)
{
	uint64_t seq = 0;
	if (cod_store_tx_outbox_append(tx, node_id, type, text, &seq, err) < 0) {
		free(text);
		return -1;
	}
	sent->msgs = xrealloc(sent->msgs, cod_mul_size(sent->n + 1, sizeof(*sent->msgs)));
	sent->msgs[sent->n++] = (struct cod_outbox_msg){
	    .node_id = xstrdup(node_id), .seq = seq, .type = xstrdup(type), .payload = text};
	return 0;
}

static int send_msg(struct cod_store_tx *tx, const char *type, const struct cod_execution *e, const char *reason,
		    struct orch_sent *sent, struct cod_error **err)
{
	char *text;
	if (!strcmp(type, COD_MSG_ASK_FOR_BID)) {
		/* the largest message: the execution with its job, written
		 * directly as text */
		cleanup_free char *exec = cod_execution_dumps(e);
		text = xasprintf("{\"Execution\":%s}", exec);
	} else {
		json_t *payload = message_payload(type, e, reason);
		text = json_dumps(payload, JSON_COMPACT);
		json_decref(payload);
	}
	return orch_outbox_add(tx, e->node_id, type, text, sent, err);
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

static void work_release(struct orch_work *w)
{
	cod_plan_release(&w->plan);
	cod_exec_page_release(&w->page);
	cod_job_free(w->job);
	for (size_t i = 0; i < w->nlater; i++)
		cod_evaluation_free(w->later[i]);
	free(w->later);
	cod_evaluation_free(w->ev);
	free(w->receipt);
	memset(w, 0, sizeof(*w));
}

/* Apply w's plan inside tx: new executions, execution changes (to the
 * latest row: the inbox may have moved an execution on since the
 * scheduler looked), the job's state, history, follow-up evaluations,
 * the evaluation marked complete, and the messages, appended to sent. */
static int apply_plan(struct cod_store_tx *tx, struct orch_work *w, struct orch_sent *sent, struct cod_error **err)
{
	const struct cod_job *job = w->job;
	struct cod_plan *plan = &w->plan;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < plan->n_new; i++) {
		struct cod_execution *e = plan->new_execs[i];
		rc = cod_store_tx_put_execution(tx, e, err);
		if (rc == 0)
			rc = exec_event(tx, e, COD_EXEC_UNDEFINED, plan->new_events[i], err);
		if (rc == 0)
			rc = send_msg(tx, COD_MSG_ASK_FOR_BID, e, NULL, sent, err);
	}
	for (size_t i = 0; rc == 0 && i < plan->n_updates; i++) {
		const struct cod_exec_update *u = &plan->updates[i];
		struct cod_execution *fresh = NULL;
		struct cod_error *lookup = NULL;
		if (cod_store_tx_get_execution(tx, u->execution_id, &fresh, &lookup) < 0) {
			cod_error_free(lookup);
			const struct cod_execution *seen = find_exec(w->page.items, w->page.n, u->execution_id);
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
				w->later = xrealloc(w->later, cod_mul_size(w->nlater + 1, sizeof(*w->later)));
				w->later[w->nlater++] = copy;
			}
		}
	}
	/* the evaluation this run answers; the broker tells the coalesced
	 * ones on ack (marked then) */
	if (rc == 0 && !w->unstored)
		rc = cod_store_tx_set_evaluation_status(tx, w->ev->id, "complete", err);
	return rc;
}

bool orch_plan_one(struct cod_orchestrator *o, struct orch_work *w, struct cod_node_state **nodes, size_t nnodes)
{
	const struct cod_evaluation *ev = w->ev;
	struct cod_error *err = NULL;
	if (cod_store_get_job(o->store, "*", ev->job_id, 0, &w->job, &err) < 0) {
		if (err->code == COD_E_NOT_FOUND) {
			cod_error_free(err);
			return false; /* the job is gone: nothing to do */
		}
		cod_warn("scheduler", "evaluation=%s job=%s: %s", ev->id, ev->job_id, err->message);
		cod_error_free(err);
		w->rc = -1;
		return false;
	}
	struct cod_job *job = w->job;
	struct cod_exec_query q = {.namespace_ = job->namespace_, .job_ref = job->id, .all_versions = true};
	if (cod_store_list_executions(o->store, &q, &w->page, &err) < 0) {
		cod_warn("scheduler", "evaluation=%s executions: %s", ev->id, err->message);
		cod_error_free(err);
		w->rc = -1;
		return false;
	}
	uint64_t seed = cod_random_u64();
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
		.execs = w->page.items,
		.nexecs = w->page.n,
		.nodes = nodes,
		.nnodes = nnodes,
		.now = cod_now_ns(),
		.seed = seed,
		.version_time = version_time,
		.cfg = &o->sched_cfg,
	};
	if (cod_scheduler_process(&in, &w->plan, &err) < 0) {
		cod_warn("scheduler", "evaluation=%s job=%s: %s", ev->id, job->id, err ? err->message : "failed");
		cod_error_free(err);
		w->rc = -1;
		return false;
	}
	return true;
}

size_t orch_plan_all(struct cod_orchestrator *o, struct orch_work *ws, size_t n)
{
	struct cod_node_state **nodes = NULL;
	size_t nnodes = 0, planned = 0;
	orch_nodes_snapshot(o, &nodes, &nnodes);
	for (size_t i = 0; i < n; i++) {
		ws[i].planned = orch_plan_one(o, &ws[i], nodes, nnodes);
		planned += ws[i].planned;
	}
	for (size_t i = 0; i < nnodes; i++)
		cod_node_free(nodes[i]);
	free(nodes);
	return planned;
}

struct apply_args {
	struct orch_work *w;
	struct orch_sent *sent;
};

static int apply_part(struct cod_store_tx *tx, void *arg, struct cod_error **err)
{
	struct apply_args *a = arg;
	return apply_plan(tx, a->w, a->sent, err);
}

int orch_apply_plans(struct cod_store_tx *tx, struct orch_work *ws, size_t n, struct orch_sent *sent,
		     struct cod_error **err)
{
	for (size_t i = 0; i < n; i++) {
		struct orch_work *w = &ws[i];
		if (!w->planned)
			continue;
		size_t nsent = sent->n;
		struct cod_error *perr = NULL;
		struct apply_args a = {.w = w, .sent = sent};
		int prc = cod_store_tx_part(tx, apply_part, &a, &perr, err);
		if (prc < 0)
			return -1;
		if (prc > 0) {
			cod_warn("scheduler", "evaluation=%s job=%s: %s", w->ev->id, w->job->id,
				 perr ? perr->message : "failed");
			cod_error_free(perr);
			w->rc = -1;
			w->planned = false;
			while (sent->n > nsent)
				cod_outbox_msg_release(&sent->msgs[--sent->n]);
			for (size_t k = 0; k < w->nlater; k++)
				cod_evaluation_free(w->later[k]);
			w->nlater = 0;
		}
	}
	return 0;
}

/* The transaction did not commit: nack every planned one. */
static void plans_failed(struct orch_work *ws, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ws[i].planned)
			ws[i].rc = -1;
}

void orch_plans_committed(struct cod_orchestrator *o, struct orch_work *ws, size_t n, const struct orch_sent *sent)
{
	orch_send_committed(o, sent->msgs, sent->n);
	for (size_t i = 0; i < n; i++) {
		struct orch_work *w = &ws[i];
		if (!w->planned)
			continue;
		cod_debug("scheduler", "evaluation=%s job=%s trigger=%s new=%zu updates=%zu evals=%zu", w->ev->id,
			  w->job->id, w->ev->triggered_by, w->plan.n_new, w->plan.n_updates, w->plan.n_evals);
		orch_enqueue_all(o, w->later, w->nlater);
		w->later = NULL;
		w->nlater = 0;
	}
}

/* Plan every evaluation of the batch, apply the plans in one transaction
 * (each in its own savepoint, so that one failing plan does not take the
 * others with it), commit once, then publish and enqueue what they made.
 * Nothing here is acknowledged to anyone, so nothing waits for the WAL
 * sync: messages go out once committed (a crash that loses the commit
 * is handled by the numbering, orch_nodes_load, and by the inbox
 * cancelling executions it does not know). */
static void process(struct cod_orchestrator *o, struct orch_work *ws, size_t n)
{
	/* The reads on the writer's warm cache; the plans are applied by
	 * the next transaction on the same connection. */
	cod_store_hold_writer(o->store);
	size_t planned = orch_plan_all(o, ws, n);
	cod_store_release_writer(o->store);
	if (!planned)
		return;

	struct cod_error *err = NULL;
	struct orch_sent sent = {0};
	struct cod_store_tx *tx = NULL;
	int rc = cod_store_begin(o->store, &tx, &err);
	if (rc == 0)
		rc = orch_apply_plans(tx, ws, n, &sent, &err);
	if (rc == 0)
		rc = cod_store_commit_nowait(tx, &err);
	else if (tx)
		cod_store_rollback(tx);
	if (rc < 0) {
		cod_warn("scheduler", "%zu plans not applied: %s", planned, err ? err->message : "store error");
		cod_error_free(err);
		plans_failed(ws, n);
	} else {
		orch_plans_committed(o, ws, n, &sent);
	}
	orch_sent_release(&sent);
}

/* Record evaluations as status in one transaction. Nothing is
 * acknowledged by it: an evaluation found pending after a crash runs
 * again, which is harmless. */
static void mark_evals(struct cod_orchestrator *o, const struct cod_strlist *ids, const char *status)
{
	if (!ids->n)
		return;
	struct cod_store_tx *tx = NULL;
	struct cod_error *err = NULL;
	if (cod_store_begin(o->store, &tx, &err) == 0) {
		int rc = 0;
		for (size_t i = 0; rc == 0 && i < ids->n; i++)
			rc = cod_store_tx_set_evaluation_status(tx, ids->items[i], status, &err);
		if (rc == 0)
			rc = cod_store_commit_nowait(tx, &err);
		else
			cod_store_rollback(tx);
	}
	if (err) {
		cod_warn("scheduler", "mark %zu evaluations %s: %s", ids->n, status, err->message);
		cod_error_free(err);
	}
}

void orch_works_finish(struct cod_orchestrator *o, struct orch_work *ws, size_t n)
{
	struct cod_strlist complete = {0}, failed = {0};
	for (size_t i = 0; i < n; i++) {
		struct orch_work *w = &ws[i];
		struct cod_strlist answered = {0};
		if (w->rc == 0) {
			/* coalesced ones (after the first): answered by this run */
			if (cod_broker_ack(o->broker, w->ev->id, w->receipt, &answered) == 0)
				for (size_t k = 1; k < answered.n; k++)
					cod_strlist_add(&complete, answered.items[k]);
		} else {
			bool dead = false;
			if (cod_broker_nack(o->broker, w->ev->id, w->receipt, &dead, &answered) == 0 && dead) {
				cod_warn("scheduler", "evaluation=%s job=%s dead-lettered after repeated failures",
					 w->ev->id, w->ev->job_id);
				for (size_t k = 0; k < answered.n; k++)
					cod_strlist_add(&failed, answered.items[k]);
			}
		}
		cod_strlist_release(&answered);
		work_release(w);
	}
	mark_evals(o, &complete, "complete");
	mark_evals(o, &failed, "failed");
	cod_strlist_release(&complete);
	cod_strlist_release(&failed);
}

/* A submission's evaluation planned in its own transaction. */
struct submission_plan {
	struct orch_work w;
	struct orch_sent sent;
};

/* Ack or nack the claim and free. Also called inside the submission's
 * transaction (its plan failed): that writes nothing, as a claimed
 * evaluation never has others coalesced into it to record. */
static void submission_plan_free(struct cod_orchestrator *o, struct submission_plan *p)
{
	orch_works_finish(o, &p->w, 1);
	orch_sent_release(&p->sent);
	free(p);
}

int orch_plan_submission(void *arg, struct cod_store_tx *tx, const struct cod_submit_result *res, void **plan)
{
	struct cod_orchestrator *o = arg;
	*plan = NULL;
	if (cod_str_empty(res->eval_id))
		return 0;
	cod_store_tx_read_own(tx);
	struct cod_evaluation *ev = NULL;
	struct cod_error *err = NULL;
	if (cod_store_get_evaluation(o->store, res->eval_id, &ev, &err) < 0) {
		cod_warn("scheduler", "evaluation=%s: %s", res->eval_id, err->message);
		cod_error_free(err);
		return -1;
	}
	struct submission_plan *p = xcalloc(1, sizeof(*p));
	if (cod_broker_claim(o->broker, ev, &p->w.receipt) != 1) {
		cod_evaluation_free(ev);
		free(p);
		return 0; /* a worker has the job: left to the broker */
	}
	p->w.ev = ev;
	int rc = orch_plan_all(o, &p->w, 1) ? orch_apply_plans(tx, &p->w, 1, &p->sent, &err) : -1;
	if (rc < 0 || !p->w.planned) {
		/* undone with the savepoint; the evaluation goes to the broker
		 * after the commit, as without this */
		if (err)
			cod_warn("scheduler", "evaluation=%s: %s", res->eval_id, err->message);
		cod_error_free(err);
		p->w.rc = 0;
		submission_plan_free(o, p);
		return -1;
	}
	*plan = p;
	return 0;
}

void orch_submission_done(void *arg, void *plan, bool ok)
{
	struct cod_orchestrator *o = arg;
	struct submission_plan *p = plan;
	if (ok)
		orch_plans_committed(o, &p->w, 1, &p->sent);
	else
		p->w.rc = 0; /* never committed: dropped */
	submission_plan_free(o, p);
}

/* Evaluations taken from the broker at once (one per job): their plans
 * share one transaction and one WAL sync. */
#define PLAN_BATCH 32

void *orch_worker_main(void *arg)
{
	cod_thread_name("cod-worker");
	struct cod_orchestrator *o = arg;
	struct orch_work ws[PLAN_BATCH];
	for (;;) {
		memset(ws, 0, sizeof(ws));
		int r = cod_broker_dequeue(o->broker, 1000, &ws[0].ev, &ws[0].receipt);
		if (r < 0)
			return NULL;
		if (r == 0)
			continue;
		size_t n = 1;
		while (n < PLAN_BATCH && cod_broker_dequeue(o->broker, 0, &ws[n].ev, &ws[n].receipt) == 1)
			n++;
		process(o, ws, n);
		orch_works_finish(o, ws, n);
	}
}
