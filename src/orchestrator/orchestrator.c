/*
 * orchestrator.c - the orchestrator role: store, REST API, NATS (an
 * embedded nats-server unless Orchestrator.NATS.URL is set), node manager,
 * evaluation broker, scheduler workers, dispatcher and housekeeping.
 */
#include "orchestrator/orchestrator_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "version.h"
#include "common/banned.h"

char *cod_node_name(const struct cod_config *cfg, struct cod_error **err)
{
	if (!cod_str_empty(cfg->node_name))
		return xstrdup(cfg->node_name);
	cleanup_free char *path = xasprintf("%s/node-id", cfg->data_dir);
	cleanup_free char *text = NULL;
	size_t len;
	FILE *probe = fopen(path, "r");
	if (probe) {
		fclose(probe);
		if (cod_read_file(path, 4096, &text, &len, err) < 0)
			return NULL;
		cod_str_trim(text);
		if (*text)
			return xstrdup(text);
	}
	char *name = cod_new_id("n-");
	if (cod_mkdir_p(cfg->data_dir, 0700, err) < 0 || cod_write_file_atomic(path, name, strlen(name), err) < 0) {
		free(name);
		return NULL;
	}
	return name;
}

static void self_info(struct cod_node_info *self, const struct cod_config *cfg, const char *name)
{
	struct utsname u;
	uname(&u);
	self->node_id = xstrdup(name);
	self->node_type = xstrdup("Requester");
	cod_kvlist_copy(&self->labels, &cfg->labels);
	cod_kvlist_set(&self->labels, "name", name);
	cod_kvlist_set(&self->labels, "os_type", "linux");
	cod_kvlist_set(&self->labels, "os_arch", !strcmp(u.machine, "x86_64") ? "amd64" : u.machine);
	cod_strlist_add(&self->supported_protocols, "ncl/v1");
	self->version = xstrdup(cod_version_string());
}

static void node_info_release(struct cod_node_info *n)
{
	free(n->node_id);
	free(n->node_type);
	free(n->version);
	free(n->compute.address);
	cod_kvlist_release(&n->labels);
	cod_strlist_release(&n->supported_protocols);
	cod_strlist_release(&n->compute.engines);
	cod_strlist_release(&n->compute.publishers);
	cod_strlist_release(&n->compute.storages);
	memset(n, 0, sizeof(*n));
}

/* ------------------------------------------------------- evaluations */

struct cod_evaluation *orch_eval_make(const struct cod_job *job, const char *trigger, int64_t wait_until)
{
	struct cod_evaluation *ev = xcalloc(1, sizeof(*ev));
	ev->namespace_ = xstrdup(job->namespace_ ? job->namespace_ : "default");
	ev->job_id = xstrdup(job->id);
	ev->triggered_by = xstrdup(trigger);
	ev->type = xstrdup(cod_job_type_name(job->type));
	ev->status = xstrdup("pending");
	ev->priority = job->priority;
	ev->wait_until = wait_until;
	return ev;
}

int orch_new_eval(struct cod_orchestrator *o, const struct cod_job *job, const char *trigger, int64_t wait_until,
		  struct cod_error **err)
{
	struct cod_evaluation *ev = orch_eval_make(job, trigger, wait_until);
	int rc = cod_store_put_evaluation(o->store, ev, err);
	if (rc == 0)
		cod_broker_enqueue(o->broker, ev);
	cod_evaluation_free(ev);
	return rc;
}

void orch_enqueue_all(struct cod_orchestrator *o, struct cod_evaluation **evs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		cod_broker_enqueue(o->broker, evs[i]);
		cod_evaluation_free(evs[i]);
	}
	free(evs);
}

static void on_evaluation(void *arg, const char *eval_id)
{
	struct cod_orchestrator *o = arg;
	struct cod_evaluation *ev = NULL;
	struct cod_error *err = NULL;
	if (cod_store_get_evaluation(o->store, eval_id, &ev, &err) < 0) {
		cod_warn("orchestrator", "evaluation=%s not enqueued: %s", eval_id, err->message);
		cod_error_free(err);
		return;
	}
	cod_broker_enqueue(o->broker, ev);
	cod_evaluation_free(ev);
}

void orch_node_event(struct cod_orchestrator *o, const char *node_id, bool join)
{
	struct cod_error *err = NULL;
	struct cod_strlist job_ids = {0};
	struct cod_exec_query q = {.node_id = node_id};
	struct cod_exec_page page = {0};
	if (cod_store_list_executions(o->store, &q, &page, &err) == 0) {
		for (size_t i = 0; i < page.n; i++) {
			const struct cod_execution *e = page.items[i];
			if (cod_exec_state_terminal((enum cod_exec_state)e->compute_state.type))
				continue;
			bool seen = false;
			for (size_t j = 0; j < job_ids.n && !seen; j++)
				seen = !strcmp(job_ids.items[j], e->job_id);
			if (!seen)
				cod_strlist_add(&job_ids, e->job_id);
		}
		cod_exec_page_release(&page);
	} else {
		cod_warn("orchestrator", "node=%s executions: %s", node_id, err->message);
		cod_error_free(err);
		err = NULL;
	}
	struct cod_job_page active = {0};
	if (cod_store_active_jobs(o->store, 0, &active, &err) < 0) {
		cod_warn("orchestrator", "active jobs: %s", err->message);
		cod_error_free(err);
		err = NULL;
	}
	for (size_t i = 0; i < active.n; i++) {
		const struct cod_job *job = active.items[i];
		bool wanted = false;
		for (size_t j = 0; j < job_ids.n && !wanted; j++)
			wanted = !strcmp(job_ids.items[j], job->id);
		/* a joining node may be what a daemon or a queued job waits for */
		if (join && (job->type == COD_JOB_DAEMON || job->state.type == COD_JOB_QUEUED))
			wanted = true;
		if (!wanted)
			continue;
		if (orch_new_eval(o, job, join ? "node-join" : "node-leave", 0, &err) < 0) {
			cod_warn("orchestrator", "job=%s evaluation: %s", job->id, err->message);
			cod_error_free(err);
			err = NULL;
		}
	}
	cod_job_page_release(&active);
	cod_strlist_release(&job_ids);
}

void orch_kick_dispatcher(struct cod_orchestrator *o)
{
	pthread_mutex_lock(&o->lock);
	o->dispatch_kick = true;
	pthread_cond_signal(&o->dispatch_cond);
	pthread_mutex_unlock(&o->lock);
}

/* ------------------------------------------------------- housekeeping */

/* Whether a job has a timeout that has passed (with the configured grace),
 * so that an evaluation should decide what to do. */
static const char *timed_out(struct cod_orchestrator *o, const struct cod_job *job, int64_t now)
{
	if (!job->ntasks || job->type == COD_JOB_DAEMON || job->type == COD_JOB_SERVICE)
		return NULL;
	const struct cod_timeouts *t = &job->tasks[0].timeouts;
	int64_t grace_ns = o->cfg->orch_housekeeping_timeout_ms * 1000000LL;
	if (t->total_timeout > 0 && job->create_time + t->total_timeout * 1000000000LL + grace_ns < now)
		return "job-timeout";
	if (t->queue_timeout > 0 && job->state.type == COD_JOB_QUEUED &&
	    job->create_time + t->queue_timeout * 1000000000LL < now)
		return "job-timeout";
	if (t->execution_timeout <= 0)
		return NULL;
	struct cod_exec_query q = {.namespace_ = job->namespace_, .job_ref = job->id};
	struct cod_exec_page page = {0};
	const char *why = NULL;
	if (cod_store_list_executions(o->store, &q, &page, NULL) == 0) {
		for (size_t i = 0; i < page.n && !why; i++) {
			const struct cod_execution *e = page.items[i];
			if (e->desired_state.type == COD_DESIRED_RUNNING &&
			    !cod_exec_state_terminal((enum cod_exec_state)e->compute_state.type) &&
			    e->modify_time + t->execution_timeout * 1000000000LL + grace_ns < now)
				why = "exec-timeout";
		}
		cod_exec_page_release(&page);
	}
	return why;
}

static void check_timeouts(struct cod_orchestrator *o)
{
	struct cod_job_page active = {0};
	struct cod_error *err = NULL;
	if (cod_store_active_jobs(o->store, 0, &active, &err) < 0) {
		cod_warn("housekeeping", "active jobs: %s", err->message);
		cod_error_free(err);
		return;
	}
	int64_t now = cod_now_ns();
	for (size_t i = 0; i < active.n; i++) {
		const char *why = timed_out(o, active.items[i], now);
		if (why && orch_new_eval(o, active.items[i], why, 0, &err) < 0) {
			cod_warn("housekeeping", "job=%s: %s", active.items[i]->id, err->message);
			cod_error_free(err);
			err = NULL;
		}
	}
	cod_job_page_release(&active);
}

static bool wait_stopping(struct cod_orchestrator *o, int64_t ms)
{
	struct timespec ts;
	cod_mono_deadline(&ts, ms);
	pthread_mutex_lock(&o->lock);
	while (!o->stopping) {
		if (pthread_cond_timedwait(&o->cond, &o->lock, &ts) == ETIMEDOUT)
			break;
	}
	bool stopping = o->stopping;
	pthread_mutex_unlock(&o->lock);
	return stopping;
}

static void *housekeeping_main(void *arg)
{
	cod_thread_name("cod-housekeep");
	struct cod_orchestrator *o = arg;
	int64_t next_timeouts = cod_mono_ms() + o->cfg->orch_housekeeping_interval_ms;
	int64_t next_persist = cod_mono_ms() + 5000;
	while (!wait_stopping(o, 200)) {
		int64_t now = cod_mono_ms();
		bool persist = now >= next_persist;
		orch_nodes_check(o, persist);
		if (persist)
			next_persist = now + 5000;
		if (now >= next_timeouts) {
			check_timeouts(o);
			next_timeouts = now + (o->cfg->orch_housekeeping_interval_ms > 0
						       ? o->cfg->orch_housekeeping_interval_ms
						       : 30000);
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ start/stop */

static int start_nats(struct cod_orchestrator *o, struct cod_error **err)
{
	const struct cod_config *cfg = o->cfg;
	const char *token = cod_str_empty(cfg->orch_token) ? NULL : cfg->orch_token;
	if (!cod_str_empty(cfg->orch_nats_url)) {
		o->nats_url = xstrdup(cfg->orch_nats_url);
	} else {
		cleanup_free char *dir = xasprintf("%s/orchestrator/nats", cfg->data_dir);
		if (cod_mkdir_p(dir, 0700, err) < 0)
			return -1;
		if (cod_natsd_start(cfg->orch_host, (int)cfg->orch_port, token, dir, &o->natsd, err) < 0)
			return cod_error_wrap(err, "start nats-server");
		const char *host = cod_str_empty(cfg->orch_advertise) ? NULL : cfg->orch_advertise;
		if (host)
			o->nats_url = xasprintf("nats://%s:%d", host, cod_natsd_port(o->natsd));
		else
			o->nats_url = xstrdup(cod_natsd_url(o->natsd));
	}
	struct cod_nats_opts opts = {
		.url = o->nats_url,
		.token = token,
		.name = o->self.node_id,
		.connect_timeout_ms = 10000,
	};
	if (cod_nats_connect(&opts, &o->nc, err) < 0)
		return cod_error_wrap(err, "connect to NATS at \"%s\"", o->nats_url);
	if (cod_nats_subscribe(o->nc, COD_SUBJECT_ALL_CTRL, orch_on_ctrl, o, err) < 0 ||
	    cod_nats_subscribe_pull(o->nc, COD_SUBJECT_ALL_OUT, &o->data_sub, err) < 0)
		return -1;
	return cod_nats_flush(o->nc, 5000, err);
}

static int rebuild_broker(struct cod_orchestrator *o, struct cod_error **err)
{
	struct cod_evaluation **evs = NULL;
	size_t n = 0;
	if (cod_store_pending_evaluations(o->store, &evs, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		cod_broker_enqueue(o->broker, evs[i]);
		cod_evaluation_free(evs[i]);
	}
	free(evs);
	if (n)
		cod_info("orchestrator", "pending_evaluations=%zu re-enqueued", n);
	return 0;
}

int cod_orchestrator_start(const struct cod_config *cfg, struct cod_orchestrator **out, struct cod_error **err)
{
	struct cod_orchestrator *o = xcalloc(1, sizeof(*o));
	o->cfg = cfg;
	pthread_mutex_init(&o->lock, NULL);
	pthread_mutex_init(&o->nodes_lock, NULL);
	pthread_mutex_init(&o->send_lock, NULL);
	o->fault_duplicate = cod_fault_duplicate_messages("dispatch");
	cod_cond_init_mono(&o->cond);
	cod_cond_init_mono(&o->dispatch_cond);
	o->sched_cfg.queue_backoff_ms = cfg->orch_queue_backoff_ms;
	o->sched_cfg.retry_attempts = cfg->orch_retry_attempts;
	o->sched_cfg.retry_backoff_ms = cfg->orch_retry_backoff_ms;
	/* Bacalhau's NodeOverSubscriptionFactor: room for a node's queue
	 * beyond its capacity (as of the node's last message; a node beyond
	 * it is busy, docs/scheduler.md). */
	o->sched_cfg.oversubscription = 1.5;
	o->sched_cfg.max_execs_per_eval = 0;

	/* declared before the first goto: a jump must not skip a cleanup */
	cleanup_free char *db = NULL;
	cleanup_free char *name = cod_node_name(cfg, err);
	if (!name)
		goto fail;
	self_info(&o->self, cfg, name);
	db = xasprintf("%s/orchestrator/state.db", cfg->data_dir);
	if (cod_store_open(db, &o->store, err) < 0) {
		cod_error_wrap(err, "open store");
		goto fail;
	}
	/* The orchestrator is a node of its own cluster, always approved and
	 * connected (as Bacalhau's self-registration). */
	struct cod_node_state self_state = {0};
	self_state.info = o->self;
	self_state.membership = COD_NODE_APPROVED;
	self_state.connection = COD_NODE_CONNECTED;
	self_state.connected_since = cod_now_ns();
	self_state.last_heartbeat = self_state.connected_since;
	if (cod_store_put_node(o->store, &self_state, err) < 0)
		goto fail;
	if (orch_nodes_load(o, err) < 0)
		goto fail;
	o->broker = cod_broker_new(cfg->orch_visibility_timeout_ms, cfg->orch_eval_max_retries);
	if (rebuild_broker(o, err) < 0)
		goto fail;
	if (start_nats(o, err) < 0)
		goto fail;
	if (orch_logs_start(o, err) < 0) /* logs.c */
		goto fail;

	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	o->nworkers = cfg->orch_worker_count > 0 ? (size_t)cfg->orch_worker_count : (size_t)(ncpu > 0 ? ncpu : 1);
	o->workers = xcalloc(o->nworkers, sizeof(pthread_t));
	for (size_t i = 0; i < o->nworkers; i++)
		pthread_create(&o->workers[i], NULL, orch_worker_main, o);
	pthread_create(&o->dispatcher, NULL, orch_dispatch_main, o);
	pthread_create(&o->inbox_thread, NULL, orch_inbox_main, o);
	pthread_create(&o->housekeeper, NULL, housekeeping_main, o);
	o->threads_started = true;

	o->ctx.store = o->store;
	o->ctx.cfg = cfg;
	o->ctx.self = &o->self;
	o->ctx.start_time = cod_now_ns();
	o->ctx.on_evaluation = on_evaluation;
	o->ctx.plan_submission = orch_plan_submission;
	o->ctx.submission_done = orch_submission_done;
	o->ctx.on_node_change = orch_node_changed;
	o->ctx.node_live = orch_node_live;
	o->ctx.hook_arg = o;
	if (cod_api_start(&o->ctx, cfg->api_host, (int)cfg->api_port, (int)cfg->api_threads, (size_t)cfg->api_max_body,
			  &o->api, err) < 0)
		goto fail;
	cod_info("orchestrator", "node=%s api=%s:%d nats=%s store=%s workers=%zu", name, cfg->api_host,
		 cod_api_port(o->api), o->nats_url, db, o->nworkers);
	*out = o;
	return 0;
fail:
	cod_orchestrator_stop(o);
	return -1;
}

int cod_orchestrator_api_port(const struct cod_orchestrator *o)
{
	return cod_api_port(o->api);
}

const char *cod_orchestrator_nats_url(const struct cod_orchestrator *o)
{
	return o->nats_url;
}

void cod_orchestrator_stop(struct cod_orchestrator *o)
{
	if (!o)
		return;
	cod_log_proxy_shutdown(o->logs); /* ends log streams before their HTTP server */
	cod_api_stop(o->api);
	pthread_mutex_lock(&o->lock);
	o->stopping = true;
	pthread_cond_broadcast(&o->cond);
	pthread_cond_broadcast(&o->dispatch_cond);
	pthread_mutex_unlock(&o->lock);
	cod_nats_pull_stop(o->data_sub); /* ends the inbox's wait */
	if (o->broker)
		cod_broker_shutdown(o->broker);
	if (o->threads_started) {
		for (size_t i = 0; i < o->nworkers; i++)
			pthread_join(o->workers[i], NULL);
		pthread_join(o->dispatcher, NULL);
		pthread_join(o->inbox_thread, NULL);
		pthread_join(o->housekeeper, NULL);
	}
	free(o->workers);
	cod_nats_close(o->nc);
	cod_log_proxy_free(o->logs);
	cod_natsd_stop(o->natsd);
	if (o->store && o->nnodes)
		orch_nodes_check(o, true);
	orch_nodes_free(o);
	cod_broker_free(o->broker);
	cod_store_close(o->store);
	node_info_release(&o->self);
	free(o->nats_url);
	pthread_mutex_destroy(&o->lock);
	pthread_mutex_destroy(&o->nodes_lock);
	pthread_mutex_destroy(&o->send_lock);
	pthread_cond_destroy(&o->cond);
	pthread_cond_destroy(&o->dispatch_cond);
	free(o);
}
