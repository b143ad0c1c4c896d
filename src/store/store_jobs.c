/*
 * store_jobs.c - jobs: submit, resolve, get, stop, rerun, list, versions,
 * and the paging tokens of job lists.
 *
 * The jobs row holds the current job (doc = its JSON) plus the columns that
 * queries filter and sort on; job_versions keeps every version's document.
 * Label selectors are evaluated in C on the small `labels` column, so a list
 * decodes only the documents of the page it returns.
 */
#include "store/store.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/mem.h"
#include "common/util.h"
#include "store/store_int.h"
#include "common/banned.h"

static void job_cleanup(struct cod_job **job)
{
	cod_job_free(*job);
}
#define cleanup_job __attribute__((cleanup(job_cleanup)))

static void add_hint(struct cod_error **err, const char *hint)
{
	if (err && *err)
		cod_error_hint(*err, "%s", hint);
}

/* --------------------------------------------------------- decoding */

static struct cod_job *job_decode(const char *doc, struct cod_error **err)
{
	cleanup_json json_t *v = store_load(doc, "job", err);
	if (!v)
		return NULL;
	struct cod_job *job = cod_job_from_json(v, err);
	if (!job)
		store_decode_failed(err, "job");
	return job;
}

/* The job of the document in column doc_col of s: decoded, or a copy of
 * the same text decoded before. */
static struct cod_job *job_cached(struct cod_store *store, sqlite3_stmt *s, int doc_col, struct cod_error **err)
{
	const char *text = store_col_text(s, doc_col);
	size_t len = (size_t)sqlite3_column_bytes(s, doc_col);
	struct cod_job *job = store_doc_cache_get(store, STORE_DOC_JOB, text, len);
	if (!job && (job = job_decode(text, err)))
		store_doc_cache_put(store, STORE_DOC_JOB, text, len, job);
	return job;
}

/* The current job with full ID id (NULL and COD_E_NOT_FOUND if none). */
static struct cod_job *job_load(struct store_conn *c, const char *id, struct cod_error **err)
{
	cleanup_stmt sqlite3_stmt *s = store_stmt(c, ST_JOB_GET, err);
	if (!s)
		return NULL;
	store_bind_text(s, 1, id);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		cod_error_set(err, COD_E_NOT_FOUND, "job \"%s\" not found", id);
		add_hint(err, "run \"cod job list\" to see job IDs");
		return NULL;
	}
	if (rc != SQLITE_ROW) {
		store_dberr(c, err, "load job");
		return NULL;
	}
	return job_cached(c->store, s, 6, err);
}

struct cod_job *store_version_load(struct store_conn *c, const char *id, uint64_t version,
				   struct cod_error **err)
{
	cleanup_stmt sqlite3_stmt *s = store_stmt(c, ST_VERSION_GET, err);
	if (!s)
		return NULL;
	store_bind_text(s, 1, id);
	store_bind_i64(s, 2, (int64_t)version);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		cod_error_set(err, COD_E_NOT_FOUND, "job \"%s\" has no version %" PRIu64, id, version);
		if (err && *err)
			cod_error_hint(*err, "run \"cod job versions %s\" to see its versions", id);
		return NULL;
	}
	if (rc != SQLITE_ROW) {
		store_dberr(c, err, "load job version");
		return NULL;
	}
	return job_cached(c->store, s, 0, err);
}

/* Labels as stored in the labels column (NULL when there are none). */
static char *labels_doc(const struct cod_kvlist *labels)
{
	if (!labels->n)
		return NULL;
	json_t *o = json_object();
	for (size_t i = 0; i < labels->n; i++)
		json_object_set_new(o, labels->items[i].key, json_string(labels->items[i].value));
	return store_dump(o);
}

static int labels_parse(const char *text, struct cod_kvlist *out, struct cod_error **err)
{
	if (!*text)
		return 0;
	cleanup_json json_t *v = store_load(text, "job labels", err);
	if (!v)
		return -1;
	const char *key;
	json_t *val;
	json_object_foreach (v, key, val) {
		if (json_is_string(val))
			cod_kvlist_set(out, key, json_string_value(val));
	}
	return 0;
}

static void state_set(struct cod_state_info *st, int type, const char *message)
{
	free(st->message);
	cod_kvlist_release(&st->details);
	st->type = type;
	st->message = cod_str_empty(message) ? NULL : xstrdup(message);
}

/* ---------------------------------------------------------- writing */

/* Write job (already carrying its new version, revision and times) to the
 * jobs row, and when new_version to job_versions too. */
static int job_write(struct cod_store_tx *tx, const struct cod_job *job, bool insert, bool new_version,
		     struct cod_error **err)
{
	struct store_conn *c = tx->conn;
	cleanup_free char *doc = cod_job_dumps(job);
	cleanup_free char *labels = labels_doc(&job->labels);

	cleanup_stmt sqlite3_stmt *s = store_stmt(c, insert ? ST_JOB_INSERT : ST_JOB_UPDATE, err);
	if (!s)
		return -1;
	if (insert) {
		store_bind_text(s, 1, job->id);
		store_bind_text(s, 2, job->name);
		store_bind_text(s, 3, job->namespace_);
		store_bind_text(s, 4, cod_job_type_name(job->type));
		store_bind_i64(s, 5, job->state.type);
		store_bind_i64(s, 6, (int64_t)job->version);
		store_bind_i64(s, 7, (int64_t)job->revision);
		store_bind_i64(s, 8, job->priority);
		store_bind_i64(s, 9, job->create_time);
		store_bind_i64(s, 10, job->modify_time);
		store_bind_text(s, 11, labels);
		store_bind_text(s, 12, doc);
	} else {
		store_bind_text(s, 1, job->id);
		store_bind_text(s, 2, cod_job_type_name(job->type));
		store_bind_i64(s, 3, job->state.type);
		store_bind_i64(s, 4, (int64_t)job->version);
		store_bind_i64(s, 5, (int64_t)job->revision);
		store_bind_i64(s, 6, job->priority);
		store_bind_i64(s, 7, job->modify_time);
		store_bind_text(s, 8, labels);
		store_bind_text(s, 9, doc);
	}
	if (store_step_done(c, s, err, insert ? "insert job" : "update job") < 0)
		return -1;
	if (!insert && sqlite3_changes(c->db) != 1)
		return cod_error_set(err, COD_E_NOT_FOUND, "job \"%s\" not found", job->id);
	if (new_version) {
		cleanup_stmt sqlite3_stmt *vs = store_stmt(c, ST_VERSION_INSERT, err);
		if (!vs)
			return -1;
		store_bind_text(vs, 1, job->id);
		store_bind_i64(vs, 2, (int64_t)job->version);
		store_bind_i64(vs, 3, tx->now);
		store_bind_text(vs, 4, doc);
		if (store_step_done(c, vs, err, "insert job version") < 0)
			return -1;
	}
	/* read back soon (the plan that follows, each execution's version):
	 * what the text decodes to is at hand */
	store_doc_cache_put(c->store, STORE_DOC_JOB, doc, strlen(doc), job);
	return 0;
}

/* A job-level history event for a state change of job. */
static int job_event(struct cod_store_tx *tx, const struct cod_job *job, const char *topic,
		     const char *message, int prev_state, const char *reason, struct cod_error **err)
{
	struct cod_history_event h = {
	    .type = COD_HISTORY_JOB,
	    .job_id = job->id,
	    .job_version = job->version,
	    .topic = (char *)topic,
	    .message = (char *)message,
	    .event_time = tx->now,
	    .time = tx->now,
	    .has_job_state = true,
	    .job_state_prev = prev_state,
	    .job_state_new = job->state.type,
	};
	if (reason)
		cod_kvlist_set(&h.details, "Reason", reason);
	int rc = store_history_add_tx(tx, &h, err);
	cod_kvlist_release(&h.details);
	return rc;
}

/* -------------------------------------------------------- resolving */

static int not_found(struct cod_error **err, const char *ref, const char *ns)
{
	if (ns)
		cod_error_set(err, COD_E_NOT_FOUND, "job \"%s\" not found in namespace \"%s\"", ref, ns);
	else
		cod_error_set(err, COD_E_NOT_FOUND, "job \"%s\" not found", ref);
	add_hint(err, "run \"cod job list\" to see job IDs");
	return -1;
}

/* Step s, collecting column 0 of up to 6 rows. */
static int collect_ids(struct store_conn *c, sqlite3_stmt *s, struct cod_strlist *ids, struct cod_error **err)
{
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		cod_strlist_add(ids, store_col_text(s, 0));
	if (rc != SQLITE_DONE)
		return store_dberr(c, err, "look up job");
	return 0;
}

static int ambiguous(struct cod_error **err, const char *what, const char *ref, const struct cod_strlist *ids,
		     const char *hint)
{
	struct cod_buf b = COD_BUF_INIT;
	for (size_t i = 0; i < ids->n && i < 5; i++)
		cod_buf_addf(&b, "%s%s", i ? ", " : "", ids->items[i]);
	if (ids->n > 5)
		cod_buf_addstr(&b, " and more");
	cod_error_set(err, COD_E_BAD_REQUEST, "%s \"%s\" is ambiguous: it matches %s", what, ref,
		      cod_buf_str(&b));
	add_hint(err, hint);
	cod_buf_release(&b);
	return -1;
}

/* Run a resolving statement: 0 with *job_id when it finds exactly one job,
 * 1 when none, -1 (ambiguous, or a store error). */
static int resolve_one(struct store_conn *c, sqlite3_stmt *s, const char *what, const char *ref, const char *hint,
		       char **job_id, struct cod_error **err)
{
	struct cod_strlist ids = {0};
	int rc = 1;
	if (collect_ids(c, s, &ids, err) < 0) {
		rc = -1;
	} else if (ids.n == 1) {
		*job_id = steal_pointer(&ids.items[0]);
		rc = 0;
	} else if (ids.n > 1) {
		rc = ambiguous(err, what, ref, &ids, hint);
	}
	cod_strlist_release(&ids);
	return rc;
}

static bool is_short_id(const char *ref)
{
	return cod_str_has_prefix(ref, "j-") && strlen(ref) >= 10;
}

/* Resolve ref in namespace ns_arg (NULL/"" = default, "*" = any). */
int store_resolve_job(struct store_conn *c, const char *ns_arg, const char *ref, char **job_id,
		      struct cod_error **err)
{
	const char *ns = store_ns(ns_arg);
	if (cod_str_empty(ref)) {
		cod_error_set(err, COD_E_BAD_REQUEST, "missing job ID or name");
		add_hint(err, "pass a job ID, a short ID or a job name");
		return -1;
	}

	/* A full ID. */
	{
		cleanup_stmt sqlite3_stmt *s = store_stmt(c, ST_JOB_RESOLVE_ID, err);
		if (!s)
			return -1;
		store_bind_text(s, 1, ref);
		store_bind_text(s, 2, ns);
		int rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			*job_id = xstrdup(store_col_text(s, 0));
			return 0;
		}
		if (rc != SQLITE_DONE)
			return store_dberr(c, err, "look up job");
	}

	/* A name; names are unique within a namespace, not across them. */
	{
		cleanup_stmt sqlite3_stmt *s = store_stmt(c, ST_JOB_RESOLVE_NAME, err);
		if (!s)
			return -1;
		store_bind_text(s, 1, ref);
		store_bind_text(s, 2, ns);
		int rc = resolve_one(c, s, "job name", ref, "pass --namespace or the job's full ID", job_id, err);
		if (rc <= 0)
			return rc;
	}

	/* A short ID: "j-" and at least 8 characters of the UUID. */
	if (is_short_id(ref)) {
		cleanup_free char *upper = store_prefix_upper(ref);
		cleanup_stmt sqlite3_stmt *s = store_stmt(c, ST_JOB_RESOLVE_PREFIX, err);
		if (!s)
			return -1;
		store_bind_text(s, 1, ref);
		store_bind_text(s, 2, upper);
		store_bind_text(s, 3, ns);
		int rc = resolve_one(c, s, "job ID prefix", ref, "use more characters of the job ID", job_id, err);
		if (rc <= 0)
			return rc;
	}
	return not_found(err, ref, ns);
}

int cod_store_resolve_job(struct cod_store *store, const char *ns, const char *ref, char **job_id,
			  struct cod_error **err)
{
	struct cod_store_tx tx;
	if (store_tx_begin(store, false, &tx, err) < 0)
		return -1;
	return store_tx_end(&tx, store_resolve_job(tx.conn, ns, ref, job_id, err), err);
}

/* ------------------------------------------------------------- submit */

/* Bacalhau's event texts (orchestrator/events.go). */
#define TOPIC_SUBMISSION "Submission"
#define TOPIC_SCHEDULING "Scheduling"

static int submit_tx(struct cod_store_tx *tx, struct cod_job *job, bool force, struct cod_submit_result *out,
		     struct cod_error **err)
{
	struct store_conn *c = tx->conn;
	cleanup_job struct cod_job *old = NULL;

	if (!cod_str_empty(job->name)) {
		cleanup_stmt sqlite3_stmt *s = store_stmt(c, ST_JOB_BY_NAME, err);
		if (!s)
			return -1;
		store_bind_text(s, 1, job->namespace_);
		store_bind_text(s, 2, job->name);
		int rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			old = job_decode(store_col_text(s, 6), err);
			if (!old)
				return -1;
		} else if (rc != SQLITE_DONE) {
			return store_dberr(c, err, "look up job name");
		}
	}

	int prev_state;
	const char *trigger, *message;
	if (old) {
		if (old->type != job->type) {
			cod_error_set(err, COD_E_BAD_REQUEST,
				      "job \"%s\" is a %s job and cannot become a %s job", job->name,
				      cod_job_type_name(old->type), cod_job_type_name(job->type));
			add_hint(err, "submit it under another name");
			return -1;
		}
		if (!force && cod_job_spec_equal(old, job)) {
			cod_error_set(err, COD_E_BAD_REQUEST, "no changes detected for job \"%s\"",
				      job->name);
			add_hint(err, "use --force to submit it again anyway");
			return -1;
		}
		free(job->id);
		job->id = xstrdup(old->id);
		job->version = old->version + 1;
		job->revision = old->revision + 1;
		job->create_time = old->create_time;
		prev_state = old->state.type;
		trigger = "job-update";
		message = "Job updated";
	} else {
		if (!cod_str_empty(job->id)) {
			cleanup_stmt sqlite3_stmt *s = store_stmt(c, ST_JOB_RESOLVE_ID, err);
			if (!s)
				return -1;
			store_bind_text(s, 1, job->id);
			store_bind_text(s, 2, NULL);
			int rc = sqlite3_step(s);
			if (rc == SQLITE_ROW) {
				cod_error_set(err, COD_E_CONFLICT, "job ID \"%s\" is already in use",
					      job->id);
				add_hint(err, "leave the ID out to get a new one");
				return -1;
			}
			if (rc != SQLITE_DONE)
				return store_dberr(c, err, "look up job");
		} else {
			free(job->id);
			job->id = cod_new_id("j-");
		}
		if (cod_str_empty(job->name)) {
			free(job->name);
			job->name = xstrdup(job->id);
		}
		job->version = 1;
		job->revision = 1;
		job->create_time = tx->now;
		prev_state = COD_JOB_UNDEFINED;
		trigger = "job-register";
		message = "Job submitted";
	}
	job->modify_time = tx->now;
	state_set(&job->state, COD_JOB_PENDING, NULL);

	if (job_write(tx, job, !old, true, err) < 0 ||
	    job_event(tx, job, TOPIC_SUBMISSION, message, prev_state, NULL, err) < 0 ||
	    store_eval_create_tx(tx, job, trigger, &out->eval_id, err) < 0)
		return -1;
	out->job_id = xstrdup(job->id);
	out->version = job->version;
	out->updated = old != NULL;
	return 0;
}

struct submit_args {
	struct cod_job *job;
	bool force;
	struct cod_submit_result *out;
	cod_store_submit_tx_fn in_tx;
	cod_store_submitted_fn committed;
	void *committed_arg;
};

static int submit_in_tx(struct cod_store_tx *tx, void *arg, struct cod_error **err)
{
	(void)err;
	struct submit_args *a = arg;
	return a->in_tx(a->committed_arg, tx, a->out);
}

static int submit_shared(struct cod_store_tx *tx, void *arg, struct cod_error **err)
{
	struct submit_args *a = arg;
	if (submit_tx(tx, a->job, a->force, a->out, err) < 0)
		return -1;
	/* the hook's failure is its own: the submission goes on */
	return a->in_tx && cod_store_tx_part(tx, submit_in_tx, a, NULL, err) < 0 ? -1 : 0;
}

static void submit_committed(void *arg)
{
	struct submit_args *a = arg;
	if (a->committed)
		a->committed(a->committed_arg, a->out);
}

int cod_store_submit_job(struct cod_store *store, struct cod_job *job, bool force, cod_store_submitted_fn committed,
			 void *committed_arg, struct cod_submit_result *out, struct cod_error **err)
{
	return cod_store_submit_job_tx(store, job, force, NULL, committed, committed_arg, out, err);
}

int cod_store_submit_job_tx(struct cod_store *store, struct cod_job *job, bool force, cod_store_submit_tx_fn in_tx,
			    cod_store_submitted_fn committed, void *committed_arg, struct cod_submit_result *out,
			    struct cod_error **err)
{
	memset(out, 0, sizeof(*out));
	if (cod_str_empty(job->namespace_)) {
		free(job->namespace_);
		job->namespace_ = xstrdup("default");
	}

	/* The job changes only when the submission commits. */
	char *orig_id = job->id, *orig_name = job->name;
	struct cod_state_info orig_state = job->state;
	uint64_t orig_version = job->version, orig_revision = job->revision;
	int64_t orig_create = job->create_time, orig_modify = job->modify_time;
	job->id = xstrdup_or_null(orig_id);
	job->name = xstrdup_or_null(orig_name);
	memset(&job->state, 0, sizeof(job->state));

	/* Concurrent submissions share a transaction and its sync. */
	struct submit_args args = {
	    .job = job,
	    .force = force,
	    .out = out,
	    .in_tx = in_tx,
	    .committed = committed,
	    .committed_arg = committed_arg};
	int rc = store_write_shared(store, submit_shared, submit_committed, &args, err);

	if (rc == 0) {
		free(orig_id);
		free(orig_name);
		free(orig_state.message);
		cod_kvlist_release(&orig_state.details);
		return 0;
	}
	free(job->id);
	free(job->name);
	free(job->state.message);
	cod_kvlist_release(&job->state.details);
	job->id = orig_id;
	job->name = orig_name;
	job->state = orig_state;
	job->version = orig_version;
	job->revision = orig_revision;
	job->create_time = orig_create;
	job->modify_time = orig_modify;
	cod_submit_result_release(out);
	return -1;
}

void cod_submit_result_release(struct cod_submit_result *r)
{
	if (!r)
		return;
	free(r->job_id);
	free(r->eval_id);
	cod_strlist_release(&r->warnings);
	memset(r, 0, sizeof(*r));
}

/* ---------------------------------------------------------------- get */

int cod_store_get_job(struct cod_store *store, const char *ns, const char *ref, uint64_t version,
		      struct cod_job **out, struct cod_error **err)
{
	struct cod_store_tx tx;
	cleanup_free char *id = NULL;
	cleanup_job struct cod_job *job = NULL;

	*out = NULL;
	if (store_tx_begin(store, false, &tx, err) < 0)
		return -1;
	int rc = store_resolve_job(tx.conn, ns, ref, &id, err);
	if (rc == 0 && !(job = job_load(tx.conn, id, err)))
		rc = -1;
	if (rc == 0 && version && version != job->version) {
		struct cod_job *old = store_version_load(tx.conn, id, version, err);
		if (!old) {
			rc = -1;
		} else {
			/* That version's spec with the job's current state. */
			free(old->state.message);
			cod_kvlist_release(&old->state.details);
			old->state = job->state;
			memset(&job->state, 0, sizeof(job->state));
			cod_job_free(job);
			job = old;
		}
	}
	if (store_tx_end(&tx, rc, err) < 0)
		return -1;
	*out = steal_pointer(&job);
	return 0;
}

/* --------------------------------------------------------------- stop */

static int stop_tx(struct cod_store_tx *tx, const char *ns, const char *ref, const char *reason,
		   char **eval_id, struct cod_error **err)
{
	cleanup_free char *id = NULL;
	if (store_resolve_job(tx->conn, ns, ref, &id, err) < 0)
		return -1;
	cleanup_job struct cod_job *job = job_load(tx->conn, id, err);
	if (!job)
		return -1;

	int prev = job->state.type;
	if (prev == COD_JOB_STOPPED)
		return 0;
	if (prev == COD_JOB_COMPLETED || prev == COD_JOB_FAILED)
		return cod_error_set(err, COD_E_BAD_REQUEST, "job \"%s\" is already %s and cannot be stopped",
				     id, cod_job_state_name(prev));

	if (cod_str_empty(reason))
		reason = "Stopped at user request";
	state_set(&job->state, COD_JOB_STOPPED, reason);
	job->revision++;
	job->modify_time = tx->now;
	if (job_write(tx, job, false, false, err) < 0 ||
	    job_event(tx, job, TOPIC_SCHEDULING, "Job requested to stop before completion", prev, reason,
		      err) < 0)
		return -1;
	return store_eval_create_tx(tx, job, "job-cancel", eval_id, err);
}

int cod_store_stop_job(struct cod_store *store, const char *ns, const char *ref, const char *reason,
		       char **eval_id, struct cod_error **err)
{
	struct cod_store_tx tx;
	char *eval = NULL;

	if (eval_id)
		*eval_id = NULL;
	if (store_tx_begin(store, true, &tx, err) < 0)
		return -1;
	if (store_tx_end(&tx, stop_tx(&tx, ns, ref, reason, &eval, err), err) < 0) {
		free(eval);
		return -1;
	}
	if (eval_id)
		*eval_id = eval;
	else
		free(eval);
	return 0;
}

/* -------------------------------------------------------------- rerun */

static int rerun_tx(struct cod_store_tx *tx, const char *ns, const char *ref, uint64_t from_version,
		    const char *reason, struct cod_rerun_result *out, struct cod_error **err)
{
	cleanup_free char *id = NULL;
	if (store_resolve_job(tx->conn, ns, ref, &id, err) < 0)
		return -1;
	cleanup_job struct cod_job *cur = job_load(tx->conn, id, err);
	if (!cur)
		return -1;

	int prev = cur->state.type;
	if (!cod_job_state_rerunnable(prev)) {
		cod_error_set(err, COD_E_BAD_REQUEST, "job \"%s\" is %s and cannot be rerun", id,
			      cod_job_state_name(prev));
		if (err && *err)
			cod_error_hint(*err,
				       "wait until it has finished, or stop it with \"cod job stop %s\"", id);
		return -1;
	}
	cleanup_job struct cod_job *job = NULL;
	if (!from_version || from_version == cur->version)
		job = cod_job_dup(cur);
	else if (!(job = store_version_load(tx->conn, id, from_version, err)))
		return -1;

	job->version = cur->version + 1;
	job->revision = cur->revision + 1;
	job->create_time = cur->create_time;
	job->modify_time = tx->now;
	state_set(&job->state, COD_JOB_PENDING, NULL);
	if (job_write(tx, job, false, true, err) < 0 ||
	    job_event(tx, job, TOPIC_SUBMISSION, "Job rerun requested", prev,
		      cod_str_empty(reason) ? NULL : reason, err) < 0 ||
	    store_eval_create_tx(tx, job, "job-rerun", &out->eval_id, err) < 0)
		return -1;
	out->job_id = xstrdup(job->id);
	out->version = job->version;
	return 0;
}

int cod_store_rerun_job(struct cod_store *store, const char *ns, const char *ref, uint64_t from_version,
			const char *reason, struct cod_rerun_result *out, struct cod_error **err)
{
	struct cod_store_tx tx;

	memset(out, 0, sizeof(*out));
	if (store_tx_begin(store, true, &tx, err) < 0)
		return -1;
	if (store_tx_end(&tx, rerun_tx(&tx, ns, ref, from_version, reason, out, err), err) < 0) {
		cod_rerun_result_release(out);
		return -1;
	}
	return 0;
}

void cod_rerun_result_release(struct cod_rerun_result *r)
{
	if (!r)
		return;
	free(r->job_id);
	free(r->eval_id);
	memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------ job state (planner) */

int cod_store_tx_set_job_state(struct cod_store_tx *tx, const char *job_id, enum cod_job_state state,
			       const char *message, uint64_t expected_revision, struct cod_error **err)
{
	cleanup_job struct cod_job *job = job_load(tx->conn, job_id, err);
	if (!job)
		return -1;
	if (expected_revision && job->revision != expected_revision)
		return cod_error_set(err, COD_E_CONFLICT,
				     "job \"%s\" changed meanwhile: revision %" PRIu64 ", expected %" PRIu64,
				     job_id, job->revision, expected_revision);
	state_set(&job->state, state, message);
	job->revision++;
	job->modify_time = tx->now;
	return job_write(tx, job, false, false, err);
}

/* ------------------------------------------------------ paging tokens */

char *cod_page_token_encode(const struct cod_page_token *t)
{
	cleanup_free char *raw =
	    xasprintf("%s:%c:%" PRIu64 ":%" PRIu64, t->order_by, t->reverse ? 'Y' : 'N', t->limit, t->offset);
	return cod_base64url_encode(raw, strlen(raw));
}

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (!n || n > 20)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static int bad_token(struct cod_error **err, const char *token, const char *why)
{
	cod_error_set(err, COD_E_BAD_REQUEST, "invalid next_token \"%.64s%s\": %s", token,
		      strlen(token) > 64 ? "..." : "", why);
	add_hint(err,
		 "pass the NextToken of the previous page unchanged, or leave next_token out to start over");
	return -1;
}

int cod_page_token_decode(const char *s, struct cod_page_token *out, struct cod_error **err)
{
	memset(out, 0, sizeof(*out));
	if (cod_str_empty(s))
		return bad_token(err, "", "empty token");
	size_t len;
	cleanup_free char *raw = cod_base64url_decode(s, &len);
	if (!raw)
		return bad_token(err, s, "not base64url");
	if (strlen(raw) != len)
		return bad_token(err, s, "malformed token");

	/* order_by:Y|N:limit:offset */
	const char *f[4];
	size_t flen[4];
	const char *p = raw;
	for (int i = 0; i < 4; i++) {
		const char *colon = i < 3 ? strchr(p, ':') : NULL;
		if (i < 3 && !colon)
			return bad_token(err, s, "malformed token");
		f[i] = p;
		flen[i] = colon ? (size_t)(colon - p) : strlen(p);
		p = colon ? colon + 1 : p + flen[i];
	}
	if (flen[0] >= sizeof(out->order_by))
		return bad_token(err, s, "malformed token");
	for (size_t i = 0; i < flen[0]; i++) {
		char ch = f[0][i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'))
			return bad_token(err, s, "malformed token");
	}
	if (flen[1] != 1 || (f[1][0] != 'Y' && f[1][0] != 'N'))
		return bad_token(err, s, "malformed token");
	if (!parse_u64(f[2], flen[2], &out->limit) || !parse_u64(f[3], flen[3], &out->offset))
		return bad_token(err, s, "malformed token");
	memcpy(out->order_by, f[0], flen[0]);
	out->order_by[flen[0]] = '\0';
	out->reverse = f[1][0] == 'Y';
	return 0;
}

/* --------------------------------------------------------------- list */

/* The columns job lists sort on; created_at is insertion (rowid) order. */
static const char *const job_columns[] = {"rowid", "modify_time", "id", "name"};

static const struct {
	const char *name;  /* as given */
	const char *order; /* as written into tokens */
	unsigned column;   /* index into job_columns */
} job_orders[] = {
    {"created_at", "created_at", 0},
    {"create_time", "created_at", 0},
    {"modified_at", "modified_at", 1},
    {"modify_time", "modified_at", 1},
    {"id", "id", 2},
    {"name", "name", 3},
};

/* The cached statement listing jobs in one of the orders, optionally of
 * one namespace (?1), with LIMIT ?2 OFFSET ?3 unless labels are filtered
 * in C (then rows stream until the page is full). */
static sqlite3_stmt *list_stmt(struct store_conn *c, unsigned column, bool reverse, bool in_ns, bool filter,
			       struct cod_error **err)
{
	unsigned slot = ((column * 2 + reverse) * 2 + in_ns) * 2 + filter;
	if (c->list_stmts[slot])
		return c->list_stmts[slot];

	const char *col = job_columns[column];
	const char *dir = reverse ? "DESC" : "ASC";
	/* Times and names (across namespaces) repeat: ties go by ID. */
	const char *tiebreak = column == 1 || column == 3 ? (reverse ? ", id DESC" : ", id ASC") : "";
	/* Ordered by id, the primary key is walked in order and the
	 * namespace checked per row ("+" keeps SQLite from choosing jobs_ns
	 * and sorting the whole namespace). */
	const char *where = !in_ns ? "" : column == 2 ? " WHERE +namespace = ?1" : " WHERE namespace = ?1";
	cleanup_free char *sql = xasprintf("SELECT doc, labels FROM jobs%s ORDER BY %s %s%s%s", where, col,
					   dir, tiebreak, filter ? "" : " LIMIT ?2 OFFSET ?3");
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
		store_dberr(c, err, "list jobs");
		return NULL;
	}
	c->list_stmts[slot] = s;
	return s;
}

static int find_order(const char *name)
{
	if (cod_str_empty(name))
		return 0;
	for (size_t i = 0; i < COD_ARRAY_SIZE(job_orders); i++)
		if (!strcmp(job_orders[i].name, name))
			return (int)i;
	return -1;
}

static void page_add(struct cod_job_page *p, size_t *alloc, struct cod_job *job)
{
	COD_GROW(p->items, *alloc, p->n + 1);
	p->items[p->n++] = job;
}

int cod_store_list_jobs(struct cod_store *store, const struct cod_job_query *q, struct cod_job_page *out,
			struct cod_error **err)
{
	static const struct cod_job_query none = {0};
	struct cod_page_token tok = {0};
	int order;

	memset(out, 0, sizeof(*out));
	if (!q)
		q = &none;
	if (!cod_str_empty(q->next_token)) {
		if (cod_page_token_decode(q->next_token, &tok, err) < 0)
			return -1;
		if ((order = find_order(tok.order_by)) < 0)
			return bad_token(err, q->next_token, "unknown order");
	} else {
		if ((order = find_order(q->order_by)) < 0) {
			cod_error_set(err, COD_E_BAD_REQUEST, "invalid order_by \"%s\"", q->order_by);
			add_hint(err, "order jobs by created_at, modified_at, id or name");
			return -1;
		}
		tok.reverse = q->reverse;
		tok.limit = q->limit;
	}
	/* Keep LIMIT/OFFSET arithmetic inside int64. */
	if (tok.limit > INT64_MAX / 4)
		tok.limit = 0;
	if (tok.offset > INT64_MAX / 4)
		tok.offset = INT64_MAX / 4;

	const char *ns = store_ns(q->namespace_);
	bool filter = q->labels && q->labels->n;

	/* One statement: its own read transaction. */
	struct store_conn *c = store_conn_get(store, err);
	if (!c)
		return -1;
	sqlite3_stmt *s = list_stmt(c, job_orders[order].column, tok.reverse, ns, filter, err);
	if (!s) {
		store_conn_put(store, c);
		return -1;
	}
	if (ns)
		store_bind_text(s, 1, ns);
	if (!filter) {
		store_bind_i64(s, 2, tok.limit ? (int64_t)tok.limit + 1 : -1);
		store_bind_i64(s, 3, (int64_t)tok.offset);
	}

	size_t alloc = 0;
	uint64_t matched = 0;
	bool more = false;
	int rc = 0, step = SQLITE_DONE;
	while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
		if (filter) {
			struct cod_kvlist labels = {0};
			rc = labels_parse(store_col_text(s, 1), &labels, err);
			bool match = rc == 0 && cod_selector_match(q->labels, &labels);
			cod_kvlist_release(&labels);
			if (!match || matched++ < tok.offset)
				continue;
		}
		if (tok.limit && out->n == tok.limit) {
			more = true;
			break;
		}
		struct cod_job *job = job_decode(store_col_text(s, 0), err);
		if (!job)
			rc = -1;
		else
			page_add(out, &alloc, job);
	}
	if (rc == 0 && !more && step != SQLITE_DONE)
		rc = store_dberr(c, err, "list jobs");
	store_stmt_cleanup(&s);
	store_conn_put(store, c);
	if (rc < 0) {
		cod_job_page_release(out);
		return -1;
	}
	if (more) {
		struct cod_page_token next = {
		    .reverse = tok.reverse, .limit = tok.limit, .offset = tok.offset + tok.limit};
		snprintf(next.order_by, sizeof(next.order_by), "%s", job_orders[order].order);
		out->next_token = cod_page_token_encode(&next);
	}
	return 0;
}

void cod_job_page_release(struct cod_job_page *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		cod_job_free(p->items[i]);
	free(p->items);
	free(p->next_token);
	memset(p, 0, sizeof(*p));
}

/* ------------------------------------------------------- active jobs */

int cod_store_active_jobs(struct cod_store *store, int type, struct cod_job_page *out, struct cod_error **err)
{
	struct cod_store_tx tx;
	memset(out, 0, sizeof(*out));
	if (store_tx_begin(store, false, &tx, err) < 0)
		return -1;
	int rc = 0;
	{
		cleanup_finalize sqlite3_stmt *s = NULL;
		const char *sql = type > 0 ? "SELECT doc FROM jobs WHERE state IN (1, 2, 3) AND type = ?1 ORDER BY rowid"
					   : "SELECT doc FROM jobs WHERE state IN (1, 2, 3) ORDER BY rowid";
		if (sqlite3_prepare_v2(tx.conn->db, sql, -1, &s, NULL) != SQLITE_OK) {
			rc = store_dberr(tx.conn, err, "list active jobs");
		} else {
			if (type > 0)
				store_bind_text(s, 1, cod_job_type_name((enum cod_job_type)type));
			size_t alloc = 0;
			int step;
			while ((step = sqlite3_step(s)) == SQLITE_ROW) {
				struct cod_job *job = job_decode(store_col_text(s, 0), err);
				if (!job) {
					rc = -1;
					break;
				}
				page_add(out, &alloc, job);
			}
			if (!rc && step != SQLITE_DONE)
				rc = store_dberr(tx.conn, err, "list active jobs");
		}
	}
	rc = store_tx_end(&tx, rc, err);
	if (rc < 0)
		cod_job_page_release(out);
	return rc;
}

/* ----------------------------------------------------------- versions */

int cod_store_job_versions(struct cod_store *store, const char *ns, const char *ref, struct cod_job_page *out,
			   struct cod_error **err)
{
	struct cod_store_tx tx;
	cleanup_free char *id = NULL;

	memset(out, 0, sizeof(*out));
	if (store_tx_begin(store, false, &tx, err) < 0)
		return -1;
	struct store_conn *c = tx.conn;
	int rc = store_resolve_job(c, ns, ref, &id, err);
	if (rc == 0) {
		cleanup_stmt sqlite3_stmt *s = store_stmt(c, ST_VERSION_LIST, err);
		size_t alloc = 0;
		int step = SQLITE_DONE;
		if (!s)
			rc = -1;
		else
			store_bind_text(s, 1, id);
		while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
			struct cod_job *job = job_decode(store_col_text(s, 0), err);
			if (!job)
				rc = -1;
			else
				page_add(out, &alloc, job);
		}
		if (rc == 0 && step != SQLITE_DONE)
			rc = store_dberr(c, err, "list job versions");
	}
	if (store_tx_end(&tx, rc, err) < 0) {
		cod_job_page_release(out);
		return -1;
	}
	return 0;
}
