/*
 * agent.c - the compute node: start and stop, the message handler
 * (AskForBid, BidAccepted, BidRejected, CancelExecution), startup
 * recovery, the executor buffer's owner (the agent thread) and the
 * execution runners.
 *
 * Locking: c->lock guards every mutable field of struct cod_compute. The
 * agent thread, the runners and session.c's threads take it for short
 * critical sections; store writes happen under it so that an execution's
 * state transitions are serialized (a runner finishing and a
 * CancelExecution arriving cannot both win). Executors run without it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/doc.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "compute/compute_int.h"
#include "publisher/publisher.h"
#include "storage/cache.h"
#include "storage/http.h"
#include "storage/storage.h"
#include "orchestrator/orchestrator.h"
#include "version.h"
#include "common/banned.h"

/* Inbound messages beyond this many are dropped (the orchestrator resends
 * them): a flood cannot exhaust memory. */
#define INBOUND_MAX 100000
#define DEFAULT_HEARTBEAT_MS 15000
#define DEFAULT_INFO_UPDATE_MS 60000
#define REQUEST_TIMEOUT_MS 5000
#define DEFAULT_URL "nats://127.0.0.1:4222"

#define RESTART_FAILED_MSG "node restarted while the execution was running"
#define SHUTDOWN_FAILED_MSG "node shut down while the execution was running"


/* ------------------------------------------------------------ helpers */

static bool long_running(const struct cod_execution *e)
{
	return e->job && (e->job->type == COD_JOB_DAEMON || e->job->type == COD_JOB_SERVICE);
}

static const char *job_type(const struct cod_execution *e)
{
	return e->job ? cod_job_type_name(e->job->type) : "";
}

static bool executing(int state)
{
	return state == COD_EXEC_BID_ACCEPTED || state == COD_EXEC_RUNNING || state == COD_EXEC_PREPARING ||
	       state == COD_EXEC_PUBLISHING;
}

static const char *json_str(const json_t *obj, const char *key)
{
	json_t *v = cod_json_iget(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ------------------------------------------------------------ payloads */

static json_t *base_payload(const struct cod_execution *e)
{
	return json_pack("{s:s, s:s, s:s}", "ExecutionID", e->id, "JobID", e->job_id ? e->job_id : "",
			 "JobType", job_type(e));
}

static json_t *bid_result(const struct cod_execution *e, bool accepted, const char *reason)
{
	json_t *p = base_payload(e);
	json_object_set_new(p, "Accepted", json_boolean(accepted));
	json_object_set_new(p, "Reason", json_string(reason ? reason : ""));
	return p;
}

static json_t *run_output_json(const struct cod_run_output *o)
{
	json_t *j = json_pack("{s:s, s:b, s:s, s:b, s:I, s:s}", "Stdout", o->stdout_text ? o->stdout_text : "",
			      "StdoutTruncated", o->stdout_truncated, "stderr", o->stderr_text ? o->stderr_text : "",
			      "StderrTruncated", o->stderr_truncated, "ExitCode", (json_int_t)o->exit_code,
			      "ErrorMsg", o->error_msg ? o->error_msg : "");
	if (o->input_bytes)
		json_object_set(j, "InputBytes", o->input_bytes);
	return j;
}

static json_t *compute_error(const struct cod_execution *e, const char *message, bool with_output)
{
	json_t *p = base_payload(e);
	json_object_set_new(p, "Message", json_string(message));
	if (with_output)
		json_object_set_new(p, "RunCommandResult", run_output_json(&e->run_output));
	return p;
}

static json_t *run_result(const struct cod_execution *e)
{
	json_t *p = base_payload(e);
	json_t *pub = json_object();
	if (!cod_str_empty(e->published_result.type))
		json_object_set_new(pub, "Type", json_string(e->published_result.type));
	if (e->published_result.params)
		json_object_set(pub, "Params", e->published_result.params);
	json_object_set_new(p, "PublishResult", pub);
	json_object_set_new(p, "RunCommandResult", run_output_json(&e->run_output));
	return p;
}

static json_t *progress(const struct cod_execution *e, enum cod_exec_state state, const char *message)
{
	json_t *p = base_payload(e);
	json_object_set_new(p, "ComputeState", json_integer(state));
	json_object_set_new(p, "Message", json_string(message));
	return p;
}

/* ------------------------------------------------------------- writes */

static void after_write(struct cod_compute *c, const struct cod_cstore_write *w)
{
	if (w->orch_seq)
		c->last_orch_seq = w->orch_seq;
	if (w->msg_type) {
		c->outbox_last = w->msg_seq;
		cod_compute_send_committed(c, w->msg_seq, w->msg_type, w->msg_payload);
		if (c->disp_cursor < c->outbox_last) /* left to the dispatcher */
			pthread_cond_broadcast(&c->disp_cond);
	}
}

/* Move e to state `to` and commit it with the message it causes and the
 * orchestrator seq that caused it (each optional). payload is consumed.
 * c->lock held. */
static int set_state(struct cod_compute *c, struct cod_execution *e, enum cod_exec_state to,
		     const char *message, const char *msg_type, json_t *payload, uint64_t orch_seq)
{
	int from = e->compute_state.type;
	char *old_message = e->compute_state.message;
	e->compute_state.type = (int)to;
	e->compute_state.message = xstrdup(message ? message : "");
	cleanup_free char *text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
	json_decref(payload);
	struct cod_cstore_write w = {
	    .execution = e, .msg_type = msg_type, .msg_payload = text, .orch_seq = orch_seq};
	struct cod_error *err = NULL;
	if (cod_cstore_write(c->store, &w, &err) < 0) {
		cod_err("compute", "execution=%s %s -> %s not saved: %s", e->id, cod_exec_state_name(from),
			cod_exec_state_name(to), err->message);
		cod_error_free(err);
		free(e->compute_state.message);
		e->compute_state.message = old_message;
		e->compute_state.type = from;
		return -1;
	}
	free(old_message);
	after_write(c, &w);
	cod_info("compute", "execution=%s job=%s %s -> %s%s%s", e->id, e->job_id ? e->job_id : "",
		 cod_exec_state_name(from), cod_exec_state_name(to), !cod_str_empty(message) ? ": " : "",
		 message ? message : "");
	return 0;
}

/* Record that orchestrator message seq was processed without a state
 * change. c->lock held. */
static int note_seq(struct cod_compute *c, uint64_t seq)
{
	struct cod_cstore_write w = {.orch_seq = seq};
	struct cod_error *err = NULL;
	if (cod_cstore_write(c->store, &w, &err) < 0) {
		cod_err("compute", "save inbound seq %llu: %s", (unsigned long long)seq, err->message);
		cod_error_free(err);
		return -1;
	}
	after_write(c, &w);
	return 0;
}

/* ------------------------------------------------------------ buffer */

static struct compute_running *find_running(struct cod_compute *c, const char *id)
{
	for (struct compute_running *r = c->running; r; r = r->next)
		if (!strcmp(r->execution_id, id))
			return r;
	return NULL;
}

/* Queue an accepted execution (c->lock held). One that can never fit
 * fails at once, as Bacalhau's buffer does. The caller starts what fits
 * (start_ready_locked) once it has handled its message. */
static void enqueue(struct cod_compute *c, struct cod_execution *e)
{
	struct cod_error *err = NULL;
	int64_t priority = e->job ? e->job->priority : 0;
	if (cod_buffer_enqueue(&c->buffer, e->id, priority, &e->allocated, &err) < 0) {
		set_state(c, e, COD_EXEC_FAILED, err->message, COD_MSG_COMPUTE_ERROR,
			  compute_error(e, err->message, false), 0);
		cod_error_free(err);
	}
}

/* Something is due at `at` (monotonic ms): wake the agent if it sleeps
 * past then (c->lock held). An agent that is awake looks before it
 * sleeps again. */
static void agent_due_locked(struct cod_compute *c, int64_t at)
{
	if (c->agent_sleep_until && at < c->agent_sleep_until) {
		c->agent_sleep_until = at;
		pthread_cond_broadcast(&c->agent_cond);
	}
}

/* ----------------------------------------------------------- handlers */

static int on_ask_for_bid(struct cod_compute *c, const json_t *payload, uint64_t seq)
{
	json_t *ej = cod_json_iget(payload, "Execution");
	struct cod_error *err = NULL;
	struct cod_execution *e = ej && json_is_object(ej) ? cod_execution_from_json(ej, &err) : NULL;
	if (!e || cod_str_empty(e->id)) {
		cod_warn("compute", "AskForBid seq=%llu carries no usable Execution%s%s; ignored",
			 (unsigned long long)seq, err ? ": " : "", err ? err->message : "");
		cod_error_free(err);
		cod_execution_free(e);
		return note_seq(c, seq);
	}
	struct cod_execution *known = NULL;
	if (cod_cstore_get(c->store, e->id, &known, NULL) == 0) {
		cod_debug("compute", "AskForBid for known execution=%s: nothing to do", e->id);
		cod_execution_free(known);
		cod_execution_free(e);
		return note_seq(c, seq);
	}
	if (cod_str_empty(e->job_id) && e->job && e->job->id) {
		free(e->job_id);
		e->job_id = xstrdup(e->job->id);
	}
	free(e->node_id);
	e->node_id = xstrdup(c->node_id);
	e->compute_state.type = COD_EXEC_NEW;

	cleanup_free char *reason = NULL;
	struct cod_resources need;
	bool ok = cod_bidder_bid(&c->bidder, e, &need, &reason);
	e->allocated = need;
	free(e->alloc_task);
	e->alloc_task =
	    xstrdup(e->job && e->job->ntasks && e->job->tasks[0].name ? e->job->tasks[0].name : "main");
	int rc;
	if (!ok) {
		rc = set_state(c, e, COD_EXEC_ASK_FOR_BID_REJECTED, reason, COD_MSG_BID_RESULT,
			       bid_result(e, false, reason), seq);
	} else if (e->desired_state.type == COD_DESIRED_RUNNING) {
		/* Ops and daemon jobs bid and run in one step. */
		rc = set_state(c, e, COD_EXEC_BID_ACCEPTED, "", COD_MSG_BID_RESULT, bid_result(e, true, NULL),
			       seq);
		if (rc == 0)
			enqueue(c, e);
	} else {
		rc = set_state(c, e, COD_EXEC_ASK_FOR_BID_ACCEPTED, "", COD_MSG_BID_RESULT,
			       bid_result(e, true, NULL), seq);
	}
	cod_execution_free(e);
	return rc;
}

/* Load the execution a message names; NULL (seq noted) when it cannot. */
static struct cod_execution *load_named(struct cod_compute *c, const char *type, const json_t *payload,
					uint64_t seq, int *rc)
{
	const char *id = json_str(payload, "ExecutionID");
	struct cod_execution *e = NULL;
	struct cod_error *err = NULL;
	if (!id || cod_cstore_get(c->store, id, &e, &err) < 0) {
		if (err && err->code != COD_E_NOT_FOUND) {
			/* The store failed: do not skip the message. */
			cod_err("compute", "%s seq=%llu: %s", type, (unsigned long long)seq, err->message);
			cod_error_free(err);
			*rc = -1;
			return NULL;
		}
		cod_warn("compute", "%s seq=%llu for %s execution \"%s\"; ignored", type,
			 (unsigned long long)seq, id ? "unknown" : "unnamed", id ? id : "");
		cod_error_free(err);
		*rc = note_seq(c, seq);
		return NULL;
	}
	return e;
}

/* BidRejected and CancelExecution: end the execution wherever it is. */
static int end_execution(struct cod_compute *c, struct cod_execution *e, enum cod_exec_state to,
			 const char *reason, uint64_t seq)
{
	if (cod_exec_state_terminal(e->compute_state.type))
		return note_seq(c, seq);
	/* The orchestrator records a stop of an execution it had not
	 * started itself; one this node had accepted to run keeps its
	 * state there until the node confirms the stop. */
	bool confirm = executing(e->compute_state.type);
	if (set_state(c, e, to, reason, confirm ? COD_MSG_EXECUTION_PROGRESS : NULL,
		      confirm ? progress(e, to, reason) : NULL, seq) < 0)
		return -1;
	if (cod_buffer_remove(&c->buffer, e->id))
		cod_debug("compute", "execution=%s left the queue", e->id);
	struct compute_running *r = find_running(c, e->id);
	if (r)
		cod_executor_cancel(r->ops, &r->run);
	return 0;
}

static int on_bid_rejected(struct cod_compute *c, const json_t *payload, uint64_t seq)
{
	int rc = 0;
	struct cod_execution *e = load_named(c, COD_MSG_BID_REJECTED, payload, seq, &rc);
	if (!e)
		return rc;
	const char *reason = json_str(payload, "Reason");
	rc =
	    end_execution(c, e, COD_EXEC_BID_REJECTED, !cod_str_empty(reason) ? reason : "bid rejected", seq);
	cod_execution_free(e);
	return rc;
}

static int on_bid_accepted(struct cod_compute *c, const json_t *payload, uint64_t seq)
{
	json_t *accepted = cod_json_iget(payload, "Accepted");
	if (json_is_false(accepted))
		return on_bid_rejected(c, payload, seq);
	int rc = 0;
	struct cod_execution *e = load_named(c, COD_MSG_BID_ACCEPTED, payload, seq, &rc);
	if (!e)
		return rc;
	int st = e->compute_state.type;
	if (st == COD_EXEC_NEW || st == COD_EXEC_ASK_FOR_BID_ACCEPTED) {
		e->desired_state.type = COD_DESIRED_RUNNING;
		rc = set_state(c, e, COD_EXEC_BID_ACCEPTED, "", NULL, NULL, seq);
		if (rc == 0)
			enqueue(c, e);
	} else {
		rc = note_seq(c, seq);
	}
	cod_execution_free(e);
	return rc;
}

static int on_cancel(struct cod_compute *c, const json_t *payload, uint64_t seq)
{
	int rc = 0;
	struct cod_execution *e = load_named(c, COD_MSG_CANCEL_EXECUTION, payload, seq, &rc);
	if (!e)
		return rc;
	const char *reason = json_str(payload, "Reason");
	e->desired_state.type = COD_DESIRED_STOPPED;
	rc = end_execution(c, e, COD_EXEC_CANCELLED,
			   !cod_str_empty(reason) ? reason : "cancelled by the orchestrator", seq);
	cod_execution_free(e);
	return rc;
}

static void handle_locked(struct cod_compute *c, const struct cod_envelope *env)
{
	if (env->seq == 0) {
		cod_warn("compute", "%s without a sequence number on the data plane; ignored", env->type);
		return;
	}
	if (env->seq <= c->last_orch_seq) {
		cod_debug("compute", "%s seq=%llu already processed (last %llu); dropped", env->type,
			  (unsigned long long)env->seq, (unsigned long long)c->last_orch_seq);
		return;
	}
	if (env->seq != c->last_orch_seq + 1) {
		/* A gap: what is missing will be resent from last+1. An early
		 * heartbeat tells the orchestrator where this node stands. */
		cod_debug("compute", "%s seq=%llu after %llu: gap, ignored until resent", env->type,
			  (unsigned long long)env->seq, (unsigned long long)c->last_orch_seq);
		c->heartbeat_now = true;
		pthread_cond_broadcast(&c->ctrl_cond);
		return;
	}
	int rc;
	if (!strcmp(env->type, COD_MSG_ASK_FOR_BID))
		rc = on_ask_for_bid(c, env->payload, env->seq);
	else if (!strcmp(env->type, COD_MSG_BID_ACCEPTED))
		rc = on_bid_accepted(c, env->payload, env->seq);
	else if (!strcmp(env->type, COD_MSG_BID_REJECTED))
		rc = on_bid_rejected(c, env->payload, env->seq);
	else if (!strcmp(env->type, COD_MSG_CANCEL_EXECUTION))
		rc = on_cancel(c, env->payload, env->seq);
	else {
		cod_warn("compute", "unknown message type \"%s\" seq=%llu; skipped", env->type,
			 (unsigned long long)env->seq);
		rc = note_seq(c, env->seq);
	}
	if (rc < 0)
		cod_warn("compute", "%s seq=%llu not processed; waiting for it to be resent", env->type,
			 (unsigned long long)env->seq);
}

void cod_compute_handle(struct cod_compute *c, const struct cod_envelope *env)
{
	pthread_mutex_lock(&c->lock);
	handle_locked(c, env);
	pthread_mutex_unlock(&c->lock);
}

/* ------------------------------------------------------------ runners */

static void build_env(struct compute_running *r)
{
	const struct cod_execution *e = r->execution;
	const struct cod_task *t = &e->job->tasks[0];
	for (size_t i = 0; i < t->env.n; i++) {
		const char *v = t->env.items[i].value ? t->env.items[i].value : "";
		if (cod_str_has_prefix(v, "env:")) {
			/* The bidder checked the allow-list. */
			const char *host = getenv(v + 4);
			v = host ? host : "";
		}
		cod_kvlist_set(&r->env, t->env.items[i].key, v);
	}
	char num[32];
	cod_kvlist_set(&r->env, "BACALHAU_EXECUTION_ID", e->id);
	cod_kvlist_set(&r->env, "BACALHAU_JOB_ID", e->job_id ? e->job_id : "");
	cod_kvlist_set(&r->env, "BACALHAU_JOB_TYPE", job_type(e));
	snprintf(num, sizeof(num), "%lld", (long long)e->partition_index);
	cod_kvlist_set(&r->env, "BACALHAU_PARTITION_INDEX", num);
	snprintf(num, sizeof(num), "%lld", (long long)e->job->count);
	cod_kvlist_set(&r->env, "BACALHAU_PARTITION_COUNT", num);
}

static void fill_output(struct cod_execution *e, struct compute_running *r, const char *error_msg)
{
	struct cod_run_output *o = &e->run_output;
	free(o->stdout_text);
	free(o->stderr_text);
	free(o->error_msg);
	o->stdout_text = xstrdup(cod_buf_str(&r->run.out.buf));
	o->stdout_truncated = r->run.out.truncated;
	o->stderr_text = xstrdup(cod_buf_str(&r->run.err.buf));
	o->stderr_truncated = r->run.err.truncated;
	o->exit_code = r->run.exit_code;
	o->error_msg = xstrdup(error_msg ? error_msg : "");
	json_decref(o->input_bytes);
	o->input_bytes = r->input_bytes ? json_incref(r->input_bytes) : NULL;
}

static void fail_execution(struct cod_compute *c, struct cod_execution *e, const char *message,
			   bool with_output)
{
	set_state(c, e, COD_EXEC_FAILED, message, COD_MSG_COMPUTE_ERROR,
		  compute_error(e, message, with_output), 0);
}

/* The executor returned: record the outcome (c->lock held). */
static void finish_locked(struct cod_compute *c, struct compute_running *r, int rc,
			  const struct cod_error *err)
{
	r->reported = true; /* the result says it all: a waiting phase is dropped */
	struct cod_execution *e = NULL;
	struct cod_error *gerr = NULL;
	if (cod_cstore_get(c->store, r->execution_id, &e, &gerr) < 0) {
		cod_err("compute", "execution=%s finished but cannot be read back: %s", r->execution_id,
			gerr->message);
		cod_error_free(gerr);
		return;
	}
	if (cod_exec_state_terminal(e->compute_state.type)) {
		/* Cancelled or rejected while it ran: that state stands. */
		cod_debug("compute", "execution=%s stopped (%s)", e->id,
			  cod_exec_state_name(e->compute_state.type));
		cod_execution_free(e);
		return;
	}
	if (r->timed_out) {
		cleanup_free char *msg =
		    r->preparing ? xasprintf("preparing timed out after %llds (Compute.Preparing.Timeout)",
					     (long long)(c->cfg->compute_prepare_timeout_ms / 1000))
				 : xasprintf("execution timed out after %llds", (long long)r->timeout_s);
		fill_output(e, r, msg);
		fail_execution(c, e, msg, true);
	} else if (c->stopping) {
		/* Daemon and service executions keep their state and start
		 * again with the node; batch and ops ones cannot be resumed. */
		if (!long_running(e)) {
			fill_output(e, r, SHUTDOWN_FAILED_MSG);
			fail_execution(c, e, SHUTDOWN_FAILED_MSG, false);
		}
	} else if (rc < 0) {
		const char *msg = err ? err->message : "executor failed";
		fill_output(e, r, msg);
		fail_execution(c, e, msg, true);
	} else if (r->run.exit_code != 0) {
		cleanup_free char *msg = xasprintf("exit code %lld", (long long)r->run.exit_code);
		fill_output(e, r, NULL);
		fail_execution(c, e, msg, true);
	} else {
		fill_output(e, r, NULL);
		free(e->published_result.type);
		json_decref(e->published_result.params);
		e->published_result.type = xstrdup_or_null(r->published.type);
		e->published_result.params = r->published.params ? json_incref(r->published.params) : NULL;
		set_state(c, e, COD_EXEC_COMPLETED, "", COD_MSG_RUN_RESULT, run_result(e), 0);
	}
	cod_execution_free(e);
}

/* Store and report the phase r is in (c->lock held): at once once the
 * execution has lasted Compute.PhaseReportDelay, else when that time comes
 * (check_deadlines_locked) or a driver reports progress. false when the
 * execution was stopped meanwhile. */
static bool report_phase_locked(struct cod_compute *c, struct compute_running *r, enum cod_exec_state state,
				const char *message)
{
	struct cod_execution *e = NULL;
	bool ok = false;
	if (!c->stopping && !cod_executor_cancelled(&r->run) && cod_cstore_get(c->store, r->execution_id, &e, NULL) == 0 &&
	    !cod_exec_state_terminal(e->compute_state.type)) {
		if (!r->reported && cod_mono_ms() < r->report_at) {
			r->phase = state;
			r->phase_message = message;
			ok = true;
		} else {
			r->reported = true;
			ok = set_state(c, e, state, message, COD_MSG_EXECUTION_PROGRESS,
				       progress(e, state, message), 0) == 0;
		}
	}
	cod_execution_free(e);
	return ok;
}

/* The phase left waiting, stored and reported now (c->lock held). */
static void report_waiting_phase_locked(struct cod_compute *c, struct compute_running *r)
{
	if (r->reported)
		return;
	r->reported = true;
	report_phase_locked(c, r, r->phase, r->phase_message);
}

/* Enter a phase of the execution (c->lock taken here). false when the
 * execution was stopped meanwhile. */
static bool enter_phase(struct compute_running *r, enum cod_exec_state state, const char *message)
{
	struct cod_compute *c = r->c;
	pthread_mutex_lock(&c->lock);
	bool ok = report_phase_locked(c, r, state, message);
	if (ok && state == COD_EXEC_RUNNING) {
		r->preparing = false;
		r->deadline_ms = r->timeout_s > 0 ? cod_mono_ms() + r->timeout_s * 1000 : 0;
	}
	pthread_mutex_unlock(&c->lock);
	return ok;
}

/* Progress messages from drivers while preparing ("pulling image ..."). */
static void on_progress(void *arg, const char *message)
{
	struct compute_running *r = arg;
	struct cod_compute *c = r->c;
	pthread_mutex_lock(&c->lock);
	report_waiting_phase_locked(c, r); /* the driver's message follows its phase */
	struct cod_execution *e = NULL;
	if (cod_cstore_get(c->store, r->execution_id, &e, NULL) == 0 && e->compute_state.type == COD_EXEC_PREPARING)
		set_state(c, e, COD_EXEC_PREPARING, message, COD_MSG_EXECUTION_PROGRESS,
			  progress(e, COD_EXEC_PREPARING, message), 0);
	cod_execution_free(e);
	pthread_mutex_unlock(&c->lock);
}

/* A directory in the execution's: that one is made (0700) by the first
 * thing put into it, so a task that prints nothing and publishes nowhere
 * costs the node no files. */
static int make_dir(const struct compute_running *r, const char *path, struct cod_error **err)
{
	/* the second directory made finds the execution's there */
	if (mkdir(path, 0755) == 0 || errno == EEXIST)
		return 0;
	if (errno == ENOENT && mkdir(r->exec_dir, 0700) < 0 && errno != EEXIST)
		return cod_error_set(err, COD_E_IO, "create \"%s\": %s", r->exec_dir, strerror(errno));
	return cod_mkdir_p(path, 0755, err);
}

static int open_log(const char *dir, const char *name, struct cod_error **err)
{
	cleanup_free char *path = xasprintf("%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		cod_error_set(err, COD_E_IO, "open log \"%s\": %s", path, strerror(errno));
	return fd;
}

/* executor output -> open: a stream's log file, made when its first chunk
 * comes; the logs dir and its index before the first file, so that a
 * reader that finds an output file finds the index. A file that cannot
 * be made costs the log, not the run (RunOutput still has the start). */
static int open_stream_log(void *arg, struct cod_executor_output *o)
{
	struct compute_running *r = arg;
	struct cod_error *err = NULL;
	int fd = -1;
	cleanup_free char *logs = xasprintf("%s/logs", r->exec_dir);
	pthread_mutex_lock(&r->log_lock);
	if (r->log_index_fd < 0 && make_dir(r, logs, &err) == 0 &&
	    (r->log_index_fd = cod_log_index_open(logs, &err)) >= 0)
		r->log_taps[0].fd = r->log_taps[1].fd = r->log_index_fd;
	if (r->log_index_fd >= 0)
		fd = open_log(logs, o == &r->run.err ? "stderr" : "stdout", &err);
	pthread_mutex_unlock(&r->log_lock);
	if (fd < 0) {
		cod_warn("compute", "execution=%s: %s", r->execution_id, err ? err->message : "no log file");
		cod_error_free(err);
	}
	return fd;
}

/* A results file; no fsync: a node that crashes fails the execution. */
static void write_small(const char *path, const char *text)
{
	struct cod_error *err = NULL;
	if (cod_write_file(path, text, strlen(text), &err) < 0) {
		cod_warn("compute", "%s", err->message);
		cod_error_free(err);
	}
}

/* A stream's log file into the results: it is final once the run ended,
 * so a hard link shares it without copying (a copy where a link cannot be
 * made); an empty file for a stream that wrote nothing. */
static void publish_log(const struct cod_executor_output *o, const char *logs, const char *results,
			const char *name)
{
	cleanup_free char *from = xasprintf("%s/%s", logs, name), *to = xasprintf("%s/%s", results, name);
	if (o->fd < 0) {
		write_small(to, "");
		return;
	}
	if (link(from, to) == 0)
		return;
	struct cod_error *err = NULL;
	unlink(to); /* a run again in the same directory replaces it */
	if (cod_copy_tree(from, to, true, &err) < 0) {
		cod_warn("compute", "results: %s", err->message);
		cod_error_free(err);
	}
}

/* Inputs: each through its storage driver, retried InputSources.MaxRetryCount
 * times; errors name the input. */
static int prepare_inputs(struct compute_running *r, struct cod_error **err)
{
	const struct cod_task *t = r->run.task;
	if (!t->ninputs)
		return 0;
	r->mounts = xcalloc(t->ninputs, sizeof(*r->mounts));
	for (size_t i = 0; i < t->ninputs; i++) {
		const struct cod_input_source *in = &t->inputs[i];
		const char *name = !cod_str_empty(in->alias) ? in->alias : (in->target ? in->target : "input");
		const struct cod_storage_ops *st = cod_storage_find(in->source.type);
		if (!st)
			return cod_error_set(err, COD_E_CONFIG, "prepare input \"%s\": node does not support input source \"%s\"",
					     name, in->source.type ? in->source.type : "");
		cleanup_free char *work = xasprintf("%s/inputs/%zu", r->exec_dir, i);
		if (make_dir(r, work, err) < 0)
			return -1;
		struct cod_storage_ctx ctx = {.cfg = r->c->cfg, .execution = r->execution, .input = in, .index = i,
					      .exec_dir = r->exec_dir, .work_dir = work, .run = &r->run};
		struct cod_storage_stats stats;
		ctx.stats = &stats;
		int64_t attempts = r->c->cfg->compute_input_retries > 0 ? r->c->cfg->compute_input_retries : 1;
		int rc = -1;
		for (int64_t a = 0; a < attempts && rc < 0; a++) {
			if (cod_executor_cancelled(&r->run))
				return cod_error_set(err, COD_E_UNAVAILABLE, "cancelled");
			if (a) {
				cod_info("compute", "execution=%s input \"%s\" attempt %lld failed: %s; retrying", r->execution_id,
					 name, (long long)a, (*err)->message);
				cod_error_free(*err);
				*err = NULL;
				cod_executor_wait(&r->run, cod_mono_ms() + 500 * a);
			}
			memset(&stats, 0, sizeof(stats));
			rc = st->prepare(&ctx, &r->mounts[i], err);
		}
		if (rc < 0)
			return cod_error_wrap(err, "prepare input \"%s\"", name);
		r->nmounts = i + 1;
		/* the data-locality report: bytes local vs fetched, per input */
		if (!r->input_bytes)
			r->input_bytes = json_pack("{s:I, s:I, s:[]}", "Local", (json_int_t)0, "Fetched", (json_int_t)0,
						   "Inputs");
		json_t *lj = json_object_get(r->input_bytes, "Local"), *fj = json_object_get(r->input_bytes, "Fetched");
		json_integer_set(lj, json_integer_value(lj) + (json_int_t)stats.bytes_local);
		json_integer_set(fj, json_integer_value(fj) + (json_int_t)stats.bytes_fetched);
		json_array_append_new(json_object_get(r->input_bytes, "Inputs"),
				      json_pack("{s:s, s:s, s:I, s:I, s:b}", "Name", name, "Type", st->name, "Local",
						(json_int_t)stats.bytes_local, "Fetched", (json_int_t)stats.bytes_fetched,
						"CacheHit", stats.cache_hit));
		if (stats.bytes_fetched && cod_cache_enabled(r->c->cfg)) {
			/* the input cache holds more now: let the orchestrator's
			 * locality ranker know without waiting a whole
			 * InfoUpdateInterval */
			pthread_mutex_lock(&r->c->lock);
			r->c->info_now = true;
			pthread_cond_signal(&r->c->ctrl_cond);
			pthread_mutex_unlock(&r->c->lock);
		}
		cod_info("compute", "execution=%s input \"%s\" (%s): %llu bytes local, %llu bytes fetched%s", r->execution_id,
			 name, st->name, (unsigned long long)stats.bytes_local, (unsigned long long)stats.bytes_fetched,
			 stats.cache_hit ? " (input cache)" : "");
	}
	r->run.mounts = r->mounts;
	r->run.nmounts = r->nmounts;
	return 0;
}

static void cleanup_inputs(struct compute_running *r)
{
	const struct cod_task *t = r->run.task;
	for (size_t i = 0; i < r->nmounts; i++) {
		const struct cod_storage_ops *st = cod_storage_find(t->inputs[i].source.type);
		struct cod_storage_ctx ctx = {.cfg = r->c->cfg, .execution = r->execution, .input = &t->inputs[i],
					      .index = i, .exec_dir = r->exec_dir, .run = &r->run};
		if (st && st->cleanup)
			st->cleanup(&ctx, &r->mounts[i]);
	}
}

/*
 * One execution, phase by phase: Preparing (directories, log files, inputs,
 * the engine's own preparation) under the preparing timeout; Running under
 * ExecutionTimeout; Publishing (results dir -> the task's publisher).
 * Returns the executor's result; *published set on success.
 */
static int pipeline(struct compute_running *r, struct cod_error **err)
{
	const struct cod_task *t = r->run.task;
	const struct cod_publisher_ops *pub = cod_publisher_find(t->publisher.type);
	if (!pub)
		return cod_error_set(err, COD_E_CONFIG, "node does not support publisher \"%s\"",
				     t->publisher.type);
	/* a publisher that sends nothing (noop): the results dir holds only
	 * what the task writes into its ResultPaths, no copies of the logs */
	bool publishing = !pub->publishes_nothing;
	cleanup_free char *logs = xasprintf("%s/logs", r->exec_dir);
	cleanup_free char *results = xasprintf("%s/results", r->exec_dir);
	if (publishing && make_dir(r, results, err) < 0)
		return -1;
	for (size_t i = 0; i < t->nresults; i++) {
		cleanup_free char *d = xasprintf("%s/%s", results, t->results[i].name);
		if (make_dir(r, d, err) < 0)
			return -1;
	}
	r->run.results_dir = r->results_dir = xstrdup(results);
	r->log_taps[0] = (struct cod_log_tap){.fd = -1, .type = COD_LOG_STDOUT};
	r->log_taps[1] = (struct cod_log_tap){.fd = -1, .type = COD_LOG_STDERR};
	r->run.out.open = r->run.err.open = open_stream_log;
	r->run.out.open_arg = r->run.err.open_arg = r;
	r->run.out.on_write = cod_log_tap_write;
	r->run.out.on_write_arg = &r->log_taps[0];
	r->run.err.on_write = cod_log_tap_write;
	r->run.err.on_write_arg = &r->log_taps[1];
	r->run.progress = on_progress;
	r->run.progress_arg = r;

	if (prepare_inputs(r, err) < 0)
		return -1;
	if (r->ops->prepare) {
		r->prepared = true;
		if (r->ops->prepare(&r->run, err) < 0)
			return -1;
	}
	if (!enter_phase(r, COD_EXEC_RUNNING, "running"))
		return cod_error_set(err, COD_E_UNAVAILABLE, "cancelled");
	r->prepared = true;
	int rc = r->ops->run(&r->run, err);
	if (rc < 0 || r->run.exit_code != 0)
		return rc;

	if (publishing) {
		/* results: stdout, stderr, exitCode next to the ResultPaths */
		publish_log(&r->run.out, logs, results, "stdout");
		publish_log(&r->run.err, logs, results, "stderr");
		cleanup_free char *ec = xasprintf("%s/exitCode", results);
		cleanup_free char *code = xasprintf("%lld", (long long)r->run.exit_code);
		write_small(ec, code);
		if (!enter_phase(r, COD_EXEC_PUBLISHING, "publishing results"))
			return cod_error_set(err, COD_E_UNAVAILABLE, "cancelled");
	}
	struct cod_publish_ctx pctx = {.cfg = r->c->cfg, .node_id = r->c->node_id, .execution = r->execution,
				       .spec = &t->publisher, .results_dir = results, .exec_dir = r->exec_dir,
				       .results_url = cod_results_server_url(r->c->results), .run = &r->run};
	if (pub->publish(&pctx, &r->published, err) < 0)
		return cod_error_wrap(err, "publish results with \"%s\"", pub->name);
	return 0;
}

static void *runner_main(void *arg)
{
	struct compute_running *r = arg;
	struct cod_compute *c = r->c;

	/* start_one() moved the execution to Preparing; a stop or a
	 * cancellation since then (which also ends the execution in the
	 * store) means there is nothing to run. */
	pthread_mutex_lock(&c->lock);
	bool go = !c->stopping && !cod_executor_cancelled(&r->run);
	pthread_mutex_unlock(&c->lock);

	struct cod_error *err = NULL;
	int rc = -1;
	if (go) {
		rc = pipeline(r, &err);
		if (r->prepared && r->ops->cleanup)
			r->ops->cleanup(&r->run);
		cleanup_inputs(r);
	}

	pthread_mutex_lock(&c->lock);
	/* The capacity is free before the result is stored and sent: the
	 * message carries the node's capacity (session.c). */
	cod_buffer_done(&c->buffer, &r->need);
	if (go)
		finish_locked(c, r, rc, err);
	r->done = true;
	/* The agent reaps r when it next wakes; it is woken for it only
	 * when the capacity freed can start what is queued, or to stop
	 * (a wake-up per execution costs more than a short-lived one). */
	bool wake = c->buffer.n > 0 || c->stopping;
	pthread_mutex_unlock(&c->lock);
	if (wake)
		pthread_cond_broadcast(&c->agent_cond);
	cod_error_free(err);
	return NULL;
}

/* A runner thread: runs queued executions until the node stops. */
static void *runner_thread(void *arg)
{
	cod_thread_name("cod-runner");
	struct cod_compute *c = arg;
	struct compute_runners *rs = &c->runners;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!rs->ready_head && !rs->stop) {
			rs->idle++;
			pthread_cond_wait(&rs->cond, &c->lock);
			rs->idle--;
		}
		struct compute_running *r = rs->ready_head;
		if (!r)
			break; /* stopping, nothing left */
		rs->ready_head = r->next_ready;
		if (!rs->ready_head)
			rs->ready_tail = NULL;
		rs->queued--;
		pthread_mutex_unlock(&c->lock);
		runner_main(r); /* r belongs to the reaper once done */
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Hand r to an idle runner thread, or to a new one (c->lock held). */
static int runners_start(struct cod_compute *c, struct compute_running *r)
{
	struct compute_runners *rs = &c->runners;
	if (rs->idle <= rs->queued) { /* every idle thread has work coming */
		if (rs->nthreads == rs->alloc) {
			rs->alloc = rs->alloc ? cod_mul_size(rs->alloc, 2) : 8;
			rs->threads = xrealloc(rs->threads, cod_mul_size(rs->alloc, sizeof(*rs->threads)));
		}
		int prc = pthread_create(&rs->threads[rs->nthreads], NULL, runner_thread, c);
		if (prc != 0)
			return prc;
		rs->nthreads++;
	}
	r->next_ready = NULL;
	if (rs->ready_tail)
		rs->ready_tail->next_ready = r;
	else
		rs->ready_head = r;
	rs->ready_tail = r;
	rs->queued++;
	rs->wake++; /* signalled by runners_wake, without the lock */
	return 0;
}

/* Wake a runner for each execution handed over since the last call.
 * Called with c->lock held, which it lets go of while it signals: a
 * runner signalled under the lock would wake only to block on it. */
static void runners_wake(struct cod_compute *c)
{
	struct compute_runners *rs = &c->runners;
	size_t n = rs->wake;
	if (!n)
		return;
	rs->wake = 0;
	pthread_mutex_unlock(&c->lock);
	while (n--)
		pthread_cond_signal(&rs->cond);
	pthread_mutex_lock(&c->lock);
}

/* End the runner threads (c->lock not held): what is queued still runs. */
static void runners_stop(struct cod_compute *c)
{
	struct compute_runners *rs = &c->runners;
	pthread_mutex_lock(&c->lock);
	rs->stop = true;
	pthread_cond_broadcast(&rs->cond);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < rs->nthreads; i++)
		pthread_join(rs->threads[i], NULL);
	free(rs->threads);
	rs->threads = NULL;
	rs->nthreads = rs->alloc = 0;
}

static void running_free(struct compute_running *r)
{
	if (r->run.out.fd >= 0)
		close(r->run.out.fd);
	if (r->run.err.fd >= 0)
		close(r->run.err.fd);
	if (r->log_index_fd >= 0)
		close(r->log_index_fd);
	for (size_t i = 0; i < r->nmounts; i++)
		cod_mount_release(&r->mounts[i]);
	free(r->mounts);
	free(r->results_dir);
	free(r->published.type);
	json_decref(r->published.params);
	json_decref(r->input_bytes);
	cod_executor_run_release(&r->run);
	pthread_mutex_destroy(&r->log_lock);
	cod_kvlist_release(&r->env);
	cod_execution_free(r->execution);
	free(r->execution_id);
	free(r->exec_dir);
	free(r);
}

/* Start one dequeued execution (c->lock held); id is consumed. */
static void start_one(struct cod_compute *c, char *id, const struct cod_resources *need)
{
	struct cod_execution *e = NULL;
	struct cod_error *err = NULL;
	if (cod_cstore_get(c->store, id, &e, &err) < 0 || e->compute_state.type != COD_EXEC_BID_ACCEPTED ||
	    !e->job || !e->job->ntasks) {
		if (err)
			cod_warn("compute", "queued execution=%s: %s", id, err->message);
		cod_error_free(err);
		cod_execution_free(e);
		cod_buffer_done(&c->buffer, need);
		free(id);
		return;
	}
	const struct cod_executor_ops *ops = cod_executor_find(e->job->tasks[0].engine.type);
	if (!ops) {
		cleanup_free char *msg =
		    xasprintf("node does not support engine \"%s\"",
			      e->job->tasks[0].engine.type ? e->job->tasks[0].engine.type : "");
		fail_execution(c, e, msg, false);
		cod_execution_free(e);
		cod_buffer_done(&c->buffer, need);
		free(id);
		return;
	}
	struct compute_running *r = xcalloc(1, sizeof(*r));
	r->c = c;
	r->execution_id = id;
	r->execution = e;
	r->ops = ops;
	r->need = *need;
	r->exec_dir = xasprintf("%s/executions/%s", c->dir, id);
	r->log_index_fd = -1;
	pthread_mutex_init(&r->log_lock, NULL);
	build_env(r);
	cod_executor_run_init(&r->run, COD_RUN_OUTPUT_MAX);
	r->run.execution = r->execution;
	r->run.task = &r->execution->job->tasks[0];
	r->run.env = &r->env;
	r->run.exec_dir = r->exec_dir;
	int64_t timeout_s = r->run.task->timeouts.execution_timeout;
	if (timeout_s > 0 && !long_running(e))
		r->timeout_s = timeout_s;
	/* preparation (inputs, image) has its own deadline; ExecutionTimeout
	 * starts when the task does */
	r->preparing = true;
	if (c->cfg->compute_prepare_timeout_ms > 0)
		r->deadline_ms = cod_mono_ms() + c->cfg->compute_prepare_timeout_ms;
	r->run.limits = *need;
	/* Preparing starts here, on the agent thread, which also reports it
	 * if it lasts (check_deadlines_locked). A phase is stored and reported
	 * once the execution has lasted Compute.PhaseReportDelay: one over
	 * sooner reports its result alone, one store write and one message
	 * per phase fewer. */
	r->report_at = cod_mono_ms() + c->cfg->compute_phase_report_ms;
	agent_due_locked(c, r->report_at);
	if (!report_phase_locked(c, r, COD_EXEC_PREPARING, "preparing")) {
		cod_buffer_done(&c->buffer, need);
		running_free(r);
		return;
	}
	int prc = runners_start(c, r);
	if (prc != 0) {
		cleanup_free char *msg = xasprintf("start execution thread: %s", strerror(prc));
		struct cod_execution *copy = cod_execution_dup(e);
		fail_execution(c, copy, msg, false);
		cod_execution_free(copy);
		cod_buffer_done(&c->buffer, need);
		running_free(r);
		return;
	}
	r->next = c->running;
	c->running = r;
}

static void start_ready_locked(struct cod_compute *c)
{
	char *id;
	struct cod_resources need;
	while (!c->stopping && cod_buffer_next(&c->buffer, &id, &need))
		start_one(c, id, &need);
}

static void reap_locked(struct cod_compute *c)
{
	struct compute_running **pp = &c->running;
	while (*pp) {
		struct compute_running *r = *pp;
		if (!r->done) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		/* The runner gave its capacity back and set done as its last
		 * act under the lock, and does not touch r again. */
		running_free(r);
	}
}

void cod_compute_reap(struct cod_compute *c, bool wait)
{
	pthread_mutex_lock(&c->lock);
	for (;;) {
		reap_locked(c);
		if (!wait || !c->running)
			break;
		struct timespec ts;
		cod_mono_deadline(&ts, 100);
		pthread_cond_timedwait(&c->agent_cond, &c->lock, &ts);
	}
	pthread_mutex_unlock(&c->lock);
}

/* ExecutionTimeout: cancel what ran too long; report the phases that
 * waited long enough; returns the next deadline (0 = none). c->lock held. */
static int64_t check_deadlines_locked(struct cod_compute *c)
{
	int64_t now = cod_mono_ms(), next = 0;
	for (struct compute_running *r = c->running; r; r = r->next) {
		if (!r->reported && !r->done) {
			if (now >= r->report_at)
				report_waiting_phase_locked(c, r);
			else if (!next || r->report_at < next)
				next = r->report_at;
		}
		if (!r->deadline_ms || r->done || r->timed_out)
			continue;
		if (now >= r->deadline_ms) {
			if (r->preparing)
				cod_info("compute", "execution=%s exceeded the preparing timeout; cancelling",
					 r->execution_id);
			else
				cod_info("compute", "execution=%s exceeded its %llds ExecutionTimeout; cancelling",
					 r->execution_id, (long long)r->timeout_s);
			r->timed_out = true;
			cod_executor_cancel(r->ops, &r->run);
		} else if (!next || r->deadline_ms < next) {
			next = r->deadline_ms;
		}
	}
	return next;
}

void cod_compute_tick(struct cod_compute *c)
{
	pthread_mutex_lock(&c->lock);
	reap_locked(c);
	start_ready_locked(c);
	check_deadlines_locked(c);
	runners_wake(c);
	pthread_mutex_unlock(&c->lock);
}

static void *agent_main(void *arg)
{
	cod_thread_name("cod-agent");
	struct cod_compute *c = arg;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		/* Inbound messages wait for the handshake: its reply may move
		 * the orchestrator's numbering on (after its restart), and the
		 * messages that follow it can arrive first. */
		while (!c->stopping && c->in_head && c->session_ok) {
			struct compute_inbound *in = c->in_head;
			c->in_head = in->next;
			if (!c->in_head)
				c->in_tail = NULL;
			c->in_len--;
			handle_locked(c, &in->env);
			cod_envelope_release(&in->env);
			free(in);
		}
		reap_locked(c);
		start_ready_locked(c); /* before the deadlines: a start sets one */
		if (c->runners.wake) {
			runners_wake(c);
			continue; /* the lock was let go of: look again */
		}
		int64_t next = check_deadlines_locked(c);
		if (c->stopping && !c->running)
			break;
		int64_t wait_ms = 1000;
		if (next) {
			int64_t left = next - cod_mono_ms();
			wait_ms = left < 1 ? 1 : left < wait_ms ? left : wait_ms;
		}
		struct timespec ts;
		cod_mono_deadline(&ts, wait_ms);
		if (!c->in_head || !c->session_ok || c->stopping) {
			c->agent_sleep_until = cod_mono_ms() + wait_ms;
			pthread_cond_timedwait(&c->agent_cond, &c->lock, &ts);
			c->agent_sleep_until = 0;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ------------------------------------------------------------- inbound */

static void on_inbound(void *ctx, const char *subject, const char *reply, const char *data, size_t len)
{
	(void)subject;
	(void)reply;
	struct cod_compute *c = ctx;
	struct compute_inbound *in = xcalloc(1, sizeof(*in));
	struct cod_error *err = NULL;
	if (cod_envelope_decode(data, len, &in->env, &err) < 0) {
		cod_warn("compute", "dropped a message on %s: %s", c->subj_in, err->message);
		cod_error_free(err);
		free(in);
		return;
	}
	pthread_mutex_lock(&c->lock);
	if (c->stopping || c->in_len >= INBOUND_MAX) {
		pthread_mutex_unlock(&c->lock);
		cod_envelope_release(&in->env);
		free(in);
		return;
	}
	if (c->session_ok && !c->in_head) {
		/* In order and nothing waits before it: handled here, and what
		 * it queued started, without waking the agent (a wake-up per
		 * message cost more than a short message's handling). */
		handle_locked(c, &in->env);
		start_ready_locked(c);
		runners_wake(c);
		pthread_mutex_unlock(&c->lock);
		cod_envelope_release(&in->env);
		free(in);
		return;
	}
	if (c->in_tail)
		c->in_tail->next = in;
	else
		c->in_head = in;
	c->in_tail = in;
	c->in_len++;
	pthread_cond_broadcast(&c->agent_cond);
	pthread_mutex_unlock(&c->lock);
}

static void on_state(void *ctx, bool connected)
{
	struct cod_compute *c = ctx;
	pthread_mutex_lock(&c->lock);
	c->connected = connected;
	/* Either way the session starts over: after a reconnect the
	 * orchestrator may have restarted, so handshake and resend. */
	c->session_ok = false;
	c->session_gen++;
	pthread_cond_broadcast(&c->ctrl_cond);
	pthread_cond_broadcast(&c->disp_cond);
	pthread_mutex_unlock(&c->lock);
}

/* ------------------------------------------------------------ recovery */

/* A daemon or service execution restarted with its node runs again in
 * its directory: it starts with no logs (log files appear as the new run
 * writes, so the old ones must go first). */
static void forget_logs(const struct cod_compute *c, const char *execution_id)
{
	static const char *const names[] = {"index", "stdout", "stderr"};
	for (size_t i = 0; i < COD_ARRAY_SIZE(names); i++) {
		cleanup_free char *f = xasprintf("%s/executions/%s/logs/%s", c->dir, execution_id, names[i]);
		unlink(f);
	}
}

static int recover(struct cod_compute *c, struct cod_error **err)
{
	struct cod_execution **list = NULL;
	size_t n = 0;
	if (cod_cstore_list(c->store, &list, &n, err) < 0)
		return -1;
	int rc = 0;
	size_t failed = 0, restarted = 0;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct cod_execution *e = list[i];
		if (!executing(e->compute_state.type))
			continue;
		if (long_running(e)) {
			if (e->compute_state.type != COD_EXEC_BID_ACCEPTED &&
			    set_state(c, e, COD_EXEC_BID_ACCEPTED, "restarting after the node restarted",
				      NULL, NULL, 0) < 0)
				rc = -1;
			else {
				forget_logs(c, e->id);
				enqueue(c, e);
			}
			restarted++;
		} else {
			if (set_state(c, e, COD_EXEC_FAILED, RESTART_FAILED_MSG, COD_MSG_COMPUTE_ERROR,
				      compute_error(e, RESTART_FAILED_MSG, false), 0) < 0)
				rc = -1;
			failed++;
		}
	}
	if (restarted)
		pthread_cond_broadcast(&c->agent_cond); /* to start what was queued */
	pthread_mutex_unlock(&c->lock);
	cod_cstore_list_free(list, n);
	if (rc < 0)
		return cod_error_set(err, COD_E_DATASTORE,
				     "recover executions: cannot write the compute store");
	if (failed || restarted)
		cod_info(
		    "compute",
		    "recovered: %zu batch/ops executions failed, %zu daemon/service executions restarted",
		    failed, restarted);
	return 0;
}

/* ------------------------------------------------------------ lifecycle */

static int check_node_id(const char *id, struct cod_error **err)
{
	for (const char *p = id; *p; p++) {
		if (*p == '.' || *p == '*' || *p == '>' || (unsigned char)*p <= ' ' || *p == 0x7f) {
			cod_error_set(err, COD_E_CONFIG,
				      "node name \"%s\" cannot be used: it holds '%c', which NATS "
				      "subjects do not allow",
				      id, *p > ' ' ? *p : ' ');
			if (err)
				cod_error_hint(*err,
					       "set NodeName (or --name) to letters, digits, '-' and '_'");
			return -1;
		}
	}
	if (!*id)
		return cod_error_set(err, COD_E_CONFIG, "the node name is empty");
	return 0;
}

static char *join_urls(const struct cod_strlist *l)
{
	struct cod_buf b = COD_BUF_INIT;
	for (size_t i = 0; i < l->n; i++) {
		if (cod_str_empty(l->items[i]))
			continue;
		if (b.len)
			cod_buf_addch(&b, ',');
		cod_buf_addstr(&b, l->items[i]);
	}
	if (!b.len)
		cod_buf_addstr(&b, DEFAULT_URL);
	return cod_buf_detach(&b, NULL);
}

static char *without_userinfo(const char *urls)
{
	struct cod_buf b = COD_BUF_INIT;
	cod_buf_addstr(&b, "");
	for (const char *p = urls; *p;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		cleanup_free char *one = xstrndup(p, n);
		char *host = strstr(one, "://");
		host = host ? host + 3 : one;
		char *at = strrchr(host, '@');
		if (b.len)
			cod_buf_addch(&b, ',');
		cod_buf_add(&b, one, (size_t)(host - one));
		cod_buf_addstr(&b, at ? at + 1 : host);
		p += n;
		if (*p == ',')
			p++;
	}
	return cod_buf_detach(&b, NULL);
}

static void node_labels(struct cod_compute *c, const struct cod_kvlist *gpu_labels)
{
	struct utsname u;
	const char *arch = "unknown";
	if (uname(&u) == 0)
		arch = !strcmp(u.machine, "x86_64")    ? "amd64"
		       : !strcmp(u.machine, "aarch64") ? "arm64"
						       : u.machine;
	cod_kvlist_copy(&c->labels, &c->cfg->labels);
	cod_kvlist_set(&c->labels, "name", c->node_id);
	cod_kvlist_set(&c->labels, "os_type", "linux");
	cod_kvlist_set(&c->labels, "os_arch", arch);
	for (size_t i = 0; i < gpu_labels->n; i++)
		cod_kvlist_set(&c->labels, gpu_labels->items[i].key, gpu_labels->items[i].value);
}

static void compute_free(struct cod_compute *c)
{
	while (c->in_head) {
		struct compute_inbound *in = c->in_head;
		c->in_head = in->next;
		cod_envelope_release(&in->env);
		free(in);
	}
	cod_buffer_release(&c->buffer);
	cod_cstore_close(c->store);
	cod_kvlist_release(&c->labels);
	cod_strlist_release(&c->engines);
	cod_strlist_release(&c->publishers);
	cod_strlist_release(&c->storages);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->agent_cond);
	pthread_cond_destroy(&c->runners.cond);
	pthread_cond_destroy(&c->ctrl_cond);
	pthread_cond_destroy(&c->disp_cond);
	free(c->node_id);
	free(c->dir);
	free(c->url);
	free(c->url_display);
	free(c->subj_in);
	free(c->subj_out);
	free(c->subj_ctrl);
	free(c);
}

int cod_compute_open(const struct cod_config *cfg, struct cod_compute **out, struct cod_error **err)
{
	*out = NULL;
	/* Declared before the first goto: cleanup runs at every exit. */
	cleanup_free char *exec_root = NULL, *db = NULL, *mem = NULL, *disk = NULL;
	struct cod_kvlist gpu_labels = {0};
	struct cod_compute *c = xcalloc(1, sizeof(*c));
	c->cfg = cfg;
	pthread_mutex_init(&c->lock, NULL);
	cod_cond_init_mono(&c->agent_cond);
	pthread_cond_init(&c->runners.cond, NULL);
	cod_cond_init_mono(&c->ctrl_cond);
	cod_cond_init_mono(&c->disp_cond);
	c->start_time = cod_now_ns();
	c->request_timeout_ms = REQUEST_TIMEOUT_MS;
	c->fault_duplicate = cod_fault_duplicate_messages("compute");
	c->heartbeat_ms = cfg->compute_heartbeat_ms > 0 ? cfg->compute_heartbeat_ms : DEFAULT_HEARTBEAT_MS;
	c->info_update_ms =
	    cfg->compute_info_update_ms > 0 ? cfg->compute_info_update_ms : DEFAULT_INFO_UPDATE_MS;

	if (!cod_str_empty(cfg->compute_locality) && strcasecmp(cfg->compute_locality, "local") &&
	    strcasecmp(cfg->compute_locality, "anywhere")) {
		cod_error_set(err, COD_E_CONFIG, "Compute.JobAdmissionControl.Locality \"%s\" is not local or anywhere",
			      cfg->compute_locality);
		goto fail;
	}
	c->node_id = cod_node_name(cfg, err);
	if (!c->node_id || check_node_id(c->node_id, err) < 0)
		goto fail;
	c->subj_in = cod_subject_in(c->node_id);
	c->subj_out = cod_subject_out(c->node_id);
	c->subj_ctrl = cod_subject_ctrl(c->node_id);
	c->url = join_urls(&cfg->compute_orchestrators);
	c->url_display = without_userinfo(c->url);
	c->dir = xasprintf("%s/compute", cfg->data_dir);
	exec_root = xasprintf("%s/executions", c->dir);
	if (cod_mkdir_p(exec_root, 0700, err) < 0)
		goto fail;
	db = xasprintf("%s/state.db", c->dir);
	if (cod_cstore_open(db, &c->store, err) < 0)
		goto fail;

	cod_capacity_system(c->dir, &c->system, &gpu_labels);
	node_labels(c, &gpu_labels);
	cod_kvlist_release(&gpu_labels);
	if (cod_capacity_allocate(cfg->compute_alloc_cpu, cfg->compute_alloc_memory, cfg->compute_alloc_disk,
				  cfg->compute_alloc_gpu, &c->system, &c->max, err) < 0)
		goto fail;
	if (cod_executor_configure(cfg, err) < 0)
		goto fail;
	cod_executor_installed(&c->engines);
	cod_publisher_installed(cfg, &c->publishers);
	cod_storage_installed(cfg, &c->storages);
	c->bidder.cfg = cfg;
	c->bidder.max = c->max;
	c->bidder.publishers = &c->publishers;
	c->bidder.storages = &c->storages;
	c->bidder.env_allowlist = &cfg->compute_env_allowlist;
	c->bidder.reject_networked = cfg->compute_reject_networked;
	c->bidder.reject_stateless = cfg->compute_reject_stateless;
	cod_buffer_init(&c->buffer, &c->max);

	c->last_orch_seq = cod_cstore_last_orch_seq(c->store);
	c->outbox_last = cod_cstore_outbox_last(c->store);
	if (recover(c, err) < 0)
		goto fail;
	mem = cod_format_bytes(c->max.memory);
	disk = cod_format_bytes(c->max.disk);
	cod_info("compute", "node=%s capacity cpu=%g memory=%s disk=%s gpu=%llu engines=%zu", c->node_id,
		 c->max.cpu, mem, disk, (unsigned long long)c->max.gpu, c->engines.n);
	*out = c;
	return 0;
fail:
	compute_free(c);
	return -1;
}

int cod_compute_start(const struct cod_config *cfg, struct cod_compute **out, struct cod_error **err)
{
	*out = NULL;
	struct cod_compute *c = NULL;
	if (cod_compute_open(cfg, &c, err) < 0)
		return -1;
	cleanup_free char *conn_name = xasprintf("cod-compute-%s", c->node_id);
	struct cod_nats_opts o = {
	    .url = c->url,
	    .token = cod_str_empty(cfg->compute_token) ? NULL : cfg->compute_token,
	    .name = conn_name,
	    .on_state = on_state,
	    .ctx = c,
	    .connect_timeout_ms = 5000,
	};
	if (cod_nats_connect(&o, &c->nc, err) < 0) {
		cod_error_wrap(err, "compute node \"%s\"", c->node_id);
		goto fail;
	}
	c->connected = true;
	if (!cod_publisher_disabled(cfg, "local") && cod_results_server_start(cfg, &c->results, err) < 0) {
		cod_error_wrap(err, "compute node \"%s\"", c->node_id);
		goto fail;
	}
	if (cod_nats_subscribe(c->nc, c->subj_in, on_inbound, c, err) < 0)
		goto fail;
	if (cod_log_server_start(c, err) < 0) /* logs.c */
		goto fail;
	if (pthread_create(&c->agent_thr, NULL, agent_main, c) != 0)
		goto thread_fail;
	c->agent_started = true;
	if (pthread_create(&c->disp_thr, NULL, cod_compute_disp_main, c) != 0)
		goto thread_fail;
	c->disp_started = true;
	if (pthread_create(&c->ctrl_thr, NULL, cod_compute_ctrl_main, c) != 0)
		goto thread_fail;
	c->ctrl_started = true;
	cod_info("compute", "node=%s connected to %s; subscribed to %s", c->node_id, c->url_display,
		 c->subj_in);
	*out = c;
	return 0;
thread_fail:
	cod_error_set(err, COD_E_INTERNAL, "start compute threads: %s", strerror(errno));
fail:
	cod_compute_stop(c);
	return -1;
}

const char *cod_compute_node_id(const struct cod_compute *c)
{
	return c->node_id;
}

const char *cod_compute_url(const struct cod_compute *c)
{
	return c->url_display;
}

void cod_compute_stop(struct cod_compute *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	for (struct compute_running *r = c->running; r; r = r->next)
		cod_executor_cancel(r->ops, &r->run);
	pthread_cond_broadcast(&c->agent_cond);
	pthread_cond_broadcast(&c->ctrl_cond);
	pthread_mutex_unlock(&c->lock);

	/* Runners end and record their outcome; then the control loop. */
	if (c->agent_started)
		pthread_join(c->agent_thr, NULL);
	cod_compute_reap(c, true);
	runners_stop(c);
	cod_executor_release();
	if (c->ctrl_started)
		pthread_join(c->ctrl_thr, NULL);
	/* Give the final messages a moment to reach the orchestrator; what
	 * does not make it is resent after the next handshake. */
	if (c->disp_started) {
		cod_compute_flush_outbox(c, 2000);
		pthread_mutex_lock(&c->lock);
		c->disp_stop = true;
		pthread_cond_broadcast(&c->disp_cond);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->disp_thr, NULL);
	}
	cod_log_server_stop(c->logs);
	if (c->nc) {
		cod_compute_send_shutdown(c);
		cod_nats_close(c->nc);
		c->nc = NULL;
	}
	cod_log_server_free(c->logs);
	c->logs = NULL;
	cod_results_server_stop(c->results);
	c->results = NULL;
	cod_info("compute", "node=%s stopped", c->node_id ? c->node_id : "?");
	compute_free(c);
}
