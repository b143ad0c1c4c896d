/*
 * store_exec.c - job history, evaluations and executions.
 *
 * History events get their SeqNum from the job_history rowid (never reused:
 * events are not deleted, so it orders events and pages them). Evaluations are written
 * with the transaction that caused them, which is what lets the broker be
 * rebuilt from the pending ones after a crash.
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

/* The condition of the executions_node_live index (migration 5): a node's
 * executions that are not terminal. */
#define LIVE_EXEC "compute_state NOT IN (4, 8, 9, 10, 11)"

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

static const char *or_null(const char *s)
{
	return cod_str_empty(s) ? NULL : s;
}

/* A job's current version. */
static int job_version_of(struct store_conn *c, const char *job_id, uint64_t *version, struct cod_error **err)
{
	cleanup_stmt sqlite3_stmt *s = store_stmt(c, ST_JOB_GET, err);
	if (!s)
		return -1;
	store_bind_text(s, 1, job_id);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*version = (uint64_t)sqlite3_column_int64(s, 4);
		return 0;
	}
	if (rc == SQLITE_DONE)
		return cod_error_set(err, COD_E_NOT_FOUND, "job \"%s\" not found", job_id);
	return store_dberr(c, err, "load job");
}

/* ------------------------------------------------------------ history */

int store_history_add_tx(struct cod_store_tx *tx, struct cod_history_event *h, struct cod_error **err)
{
	struct store_conn *c = tx->conn;
	if (cod_str_empty(h->job_id))
		return cod_error_set(err, COD_E_INTERNAL, "add history event: missing job ID");
	if (!h->time)
		h->time = tx->now;
	if (!h->event_time)
		h->event_time = h->time;
	h->seq_num = 0;
	cleanup_free char *doc = cod_history_dumps(h);

	cleanup_stmt sqlite3_stmt *s = store_stmt(c, ST_HISTORY_INSERT, err);
	if (!s)
		return -1;
	store_bind_text(s, 1, h->job_id);
	store_bind_i64(s, 2, (int64_t)h->job_version);
	store_bind_text(s, 3, or_null(h->execution_id));
	store_bind_i64(s, 4, h->type);
	store_bind_i64(s, 5, h->time);
	store_bind_text(s, 6, doc);
	if (store_step_done(c, s, err, "insert history event") < 0)
		return -1;
	h->seq_num = (uint64_t)sqlite3_last_insert_rowid(c->db);
	return 0;
}

int cod_store_tx_add_history(struct cod_store_tx *tx, struct cod_history_event *h, struct cod_error **err)
{
	return store_history_add_tx(tx, h, err);
}

int cod_store_add_history(struct cod_store *store, struct cod_history_event *h, struct cod_error **err)
{
	struct cod_store_tx tx;
	if (store_tx_begin(store, true, &tx, err) < 0)
		return -1;
	return store_tx_end(&tx, store_history_add_tx(&tx, h, err), err);
}

static char *history_token(uint64_t seq)
{
	cleanup_free char *raw = xasprintf("seq:%" PRIu64, seq);
	return cod_base64url_encode(raw, strlen(raw));
}

static int history_token_decode(const char *token, uint64_t *seq, struct cod_error **err)
{
	size_t len;
	cleanup_free char *raw = cod_base64url_decode(token, &len);
	int64_t v;
	if (!raw || strlen(raw) != len || !cod_str_has_prefix(raw, "seq:") || raw[4] < '0' || raw[4] > '9' ||
	    cod_parse_i64(raw + 4, &v) < 0 || v < 0) {
		cod_error_set(err, COD_E_BAD_REQUEST, "invalid next_token \"%.64s\": malformed token", token);
		if (err && *err)
			cod_error_hint(
			    *err, "pass the NextToken of the previous page unchanged, or leave next_token "
				  "out to start over");
		return -1;
	}
	*seq = (uint64_t)v;
	return 0;
}

int cod_store_job_history(struct cod_store *store, const struct cod_history_query *q,
			  struct cod_history_page *out, struct cod_error **err)
{
	cleanup_free char *job_id = NULL;
	cleanup_free char *upper = NULL;
	uint64_t after = 0;

	memset(out, 0, sizeof(*out));
	if (!cod_str_empty(q->next_token) && history_token_decode(q->next_token, &after, err) < 0)
		return -1;

	struct cod_store_tx tx;
	if (store_tx_begin(store, false, &tx, err) < 0)
		return -1;
	struct store_conn *c = tx.conn;
	uint64_t version = q->job_version;
	int rc = store_resolve_job(c, q->namespace_, q->job_ref, &job_id, err);
	if (rc == 0 && !q->all_versions && !version)
		rc = job_version_of(c, job_id, &version, err);

	cleanup_stmt sqlite3_stmt *s = NULL;
	if (rc == 0 && !(s = store_stmt(c, ST_HISTORY_QUERY, err)))
		rc = -1;
	if (rc == 0) {
		store_bind_text(s, 1, job_id);
		store_bind_i64(s, 2, after > INT64_MAX ? INT64_MAX : (int64_t)after);
		if (!q->all_versions)
			store_bind_i64(s, 3, (int64_t)version);
		if (q->since > 0)
			store_bind_i64(s, 4,
				       q->since > INT64_MAX / 1000000000 ? INT64_MAX : q->since * 1000000000);
		if (q->event_type == COD_HISTORY_ONLY_JOB)
			store_bind_i64(s, 5, COD_HISTORY_JOB);
		else if (q->event_type == COD_HISTORY_ONLY_EXECUTION)
			store_bind_i64(s, 5, COD_HISTORY_EXECUTION);
		if (!cod_str_empty(q->execution_id)) {
			upper = store_prefix_upper(q->execution_id);
			store_bind_text(s, 6, q->execution_id);
			store_bind_text(s, 7, upper);
		}
		bool limited = q->limit && q->limit < INT64_MAX;
		store_bind_i64(s, 8, limited ? (int64_t)q->limit + 1 : -1);

		size_t alloc = 0;
		int step;
		while ((step = sqlite3_step(s)) == SQLITE_ROW) {
			if (limited && out->n == q->limit) {
				out->next_token = history_token(out->items[out->n - 1]->seq_num);
				break;
			}
			cleanup_json json_t *v = store_load(store_col_text(s, 1), "history event", err);
			struct cod_history_event *h = v ? cod_history_from_json(v, err) : NULL;
			if (!h) {
				if (v)
					store_decode_failed(err, "history event");
				rc = -1;
				break;
			}
			h->seq_num = (uint64_t)sqlite3_column_int64(s, 0);
			COD_GROW(out->items, alloc, out->n + 1);
			out->items[out->n++] = h;
		}
		if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
			rc = store_dberr(c, err, "query job history");
	}
	/* Done with the statement before the connection goes back. */
	store_stmt_cleanup(&s);
	s = NULL;
	if (store_tx_end(&tx, rc, err) < 0) {
		cod_history_page_release(out);
		return -1;
	}
	return 0;
}

void cod_history_page_release(struct cod_history_page *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		cod_history_free(p->items[i]);
	free(p->items);
	free(p->next_token);
	memset(p, 0, sizeof(*p));
}

/* -------------------------------------------------------- evaluations */

int store_eval_put_tx(struct cod_store_tx *tx, struct cod_evaluation *ev, struct cod_error **err)
{
	struct store_conn *c = tx->conn;
	if (cod_str_empty(ev->id)) {
		char uuid[37];
		cod_uuid4(uuid);
		free(ev->id);
		ev->id = xstrdup(uuid);
	}
	if (cod_str_empty(ev->namespace_)) {
		free(ev->namespace_);
		ev->namespace_ = xstrdup("default");
	}
	if (!ev->create_time)
		ev->create_time = tx->now;
	ev->modify_time = tx->now;
	cleanup_free char *doc = cod_evaluation_dumps(ev);

	cleanup_stmt sqlite3_stmt *s = store_stmt(c, ST_EVAL_UPSERT, err);
	if (!s)
		return -1;
	store_bind_text(s, 1, ev->id);
	store_bind_text(s, 2, or_empty(ev->job_id));
	store_bind_text(s, 3, ev->namespace_);
	store_bind_text(s, 4, or_empty(ev->type));
	store_bind_text(s, 5, or_empty(ev->triggered_by));
	store_bind_i64(s, 6, ev->priority);
	store_bind_text(s, 7, or_empty(ev->status));
	store_bind_i64(s, 8, ev->wait_until);
	store_bind_i64(s, 9, ev->create_time);
	store_bind_i64(s, 10, ev->modify_time);
	store_bind_text(s, 11, doc);
	return store_step_done(c, s, err, "write evaluation");
}

int store_eval_create_tx(struct cod_store_tx *tx, const struct cod_job *job, const char *trigger,
			 char **eval_id, struct cod_error **err)
{
	char uuid[37];
	cod_uuid4(uuid);
	struct cod_evaluation ev = {
	    .id = uuid,
	    .namespace_ = job->namespace_,
	    .job_id = job->id,
	    .triggered_by = (char *)trigger,
	    .type = (char *)cod_job_type_name(job->type),
	    .status = (char *)"pending",
	    .priority = job->priority,
	};
	if (store_eval_put_tx(tx, &ev, err) < 0)
		return -1;
	*eval_id = xstrdup(uuid);
	return 0;
}

int cod_store_tx_put_evaluation(struct cod_store_tx *tx, struct cod_evaluation *ev, struct cod_error **err)
{
	return store_eval_put_tx(tx, ev, err);
}

int cod_store_put_evaluation(struct cod_store *store, struct cod_evaluation *ev, struct cod_error **err)
{
	struct cod_store_tx tx;
	if (store_tx_begin(store, true, &tx, err) < 0)
		return -1;
	return store_tx_end(&tx, store_eval_put_tx(&tx, ev, err), err);
}

static struct cod_evaluation *eval_decode(const char *doc, struct cod_error **err)
{
	cleanup_json json_t *v = store_load(doc, "evaluation", err);
	if (!v)
		return NULL;
	struct cod_evaluation *ev = cod_evaluation_from_json(v, err);
	if (!ev)
		store_decode_failed(err, "evaluation");
	return ev;
}

int cod_store_get_evaluation(struct cod_store *store, const char *id, struct cod_evaluation **out,
			     struct cod_error **err)
{
	*out = NULL;
	struct store_conn *c = store_conn_get(store, err);
	if (!c)
		return -1;
	int rc;
	{
		cleanup_stmt sqlite3_stmt *s = store_stmt(c, ST_EVAL_GET, err);
		if (!s) {
			rc = -1;
		} else {
			store_bind_text(s, 1, id);
			rc = sqlite3_step(s);
			if (rc == SQLITE_ROW)
				rc = (*out = eval_decode(store_col_text(s, 0), err)) ? 0 : -1;
			else if (rc == SQLITE_DONE)
				rc = cod_error_set(err, COD_E_NOT_FOUND, "evaluation \"%s\" not found",
						   or_empty(id));
			else
				rc = store_dberr(c, err, "load evaluation");
		}
	}
	store_conn_put(store, c);
	return rc;
}

static void *eval_decode_any(const char *doc, struct cod_error **err)
{
	return eval_decode(doc, err);
}

static void eval_free_any(void *ev)
{
	cod_evaluation_free(ev);
}

int cod_store_pending_evaluations(struct cod_store *store, struct cod_evaluation ***out, size_t *n,
				  struct cod_error **err)
{
	return store_list_docs(store, ST_EVAL_PENDING, eval_decode_any, eval_free_any, "list pending evaluations",
			       (void ***)out, n, err);
}

/* --------------------------------------------------------- executions */

static int exec_put_tx(struct cod_store_tx *tx, struct cod_execution *e, struct cod_error **err)
{
	struct store_conn *c = tx->conn;
	if (cod_str_empty(e->job_id))
		return cod_error_set(err, COD_E_INTERNAL, "write execution: missing job ID");
	if (cod_str_empty(e->id)) {
		free(e->id);
		e->id = cod_new_id("e-");
	}
	if (cod_str_empty(e->namespace_)) {
		free(e->namespace_);
		e->namespace_ = xstrdup("default");
	}

	/* The revision and creation time continue from the stored row. */
	int64_t rowid = 0;
	{
		cleanup_stmt sqlite3_stmt *s = store_stmt(c, ST_EXEC_GET_META, err);
		if (!s)
			return -1;
		store_bind_text(s, 1, e->id);
		int rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			e->revision = (uint64_t)sqlite3_column_int64(s, 0) + 1;
			e->create_time = sqlite3_column_int64(s, 1);
			rowid = sqlite3_column_int64(s, 2);
		} else if (rc == SQLITE_DONE) {
			e->revision = 1;
			if (!e->create_time)
				e->create_time = tx->now;
		} else {
			return store_dberr(c, err, "look up execution");
		}
	}
	e->modify_time = tx->now;
	/* Stored without its job: the job version it runs is in
	 * job_versions, and is attached again when read (exec_decode). */
	struct cod_execution bare = *e; /* shallow: only read while encoding */
	bare.job = NULL;
	cleanup_free char *doc = cod_execution_dumps(&bare);

	cleanup_stmt sqlite3_stmt *s = store_stmt(c, rowid ? ST_EXEC_UPDATE : ST_EXEC_INSERT, err);
	if (!s)
		return -1;
	store_bind_text(s, 1, e->id);
	store_bind_text(s, 2, e->job_id);
	store_bind_text(s, 3, e->namespace_);
	store_bind_text(s, 4, or_null(e->node_id));
	store_bind_i64(s, 5, (int64_t)e->job_version);
	store_bind_i64(s, 6, e->partition_index);
	store_bind_i64(s, 7, e->compute_state.type);
	store_bind_i64(s, 8, e->desired_state.type);
	store_bind_i64(s, 9, (int64_t)e->revision);
	store_bind_i64(s, 10, e->create_time);
	store_bind_i64(s, 11, e->modify_time);
	store_bind_text(s, 12, doc);
	if (rowid)
		store_bind_i64(s, 13, rowid);
	else if (e->job && e->job->create_time && e->job->id && !strcmp(e->job->id, e->job_id))
		store_bind_i64(s, 13, e->job->create_time);
	if (store_step_done(c, s, err, rowid ? "update execution" : "insert execution") < 0)
		return -1;
	/* What is written is read back soon (the next message about it, the
	 * plan that follows): what the text decodes to is at hand. */
	store_doc_cache_put(c->store, STORE_DOC_EXECUTION, doc, strlen(doc), &bare);
	return 0;
}

int cod_store_tx_put_execution(struct cod_store_tx *tx, struct cod_execution *e, struct cod_error **err)
{
	return exec_put_tx(tx, e, err);
}

int cod_store_put_execution(struct cod_store *store, struct cod_execution *e, struct cod_error **err)
{
	/* On failure e keeps what it had: the revision and times. */
	uint64_t revision = e->revision;
	int64_t create_time = e->create_time, modify_time = e->modify_time;
	struct cod_store_tx tx;
	if (store_tx_begin(store, true, &tx, err) < 0)
		return -1;
	if (store_tx_end(&tx, exec_put_tx(&tx, e, err), err) < 0) {
		e->revision = revision;
		e->create_time = create_time;
		e->modify_time = modify_time;
		return -1;
	}
	return 0;
}

/* Attach the job version e runs (stored in job_versions, not in the
 * execution's document). *memo (may be NULL) keeps the last version loaded,
 * for the next execution of a list. A document that still embeds its job,
 * or names no version that exists, is left as it is. */
static int exec_attach_job(struct store_conn *c, struct cod_execution *e, struct cod_job **memo,
			   struct cod_error **err)
{
	if (e->job || cod_str_empty(e->job_id) || !e->job_version)
		return 0;
	if (memo && *memo && (*memo)->version == e->job_version && !strcmp((*memo)->id, e->job_id)) {
		e->job = cod_job_dup(*memo);
		return 0;
	}
	struct cod_error *lookup = NULL;
	struct cod_job *job = store_version_load(c, e->job_id, e->job_version, &lookup);
	if (!job) {
		if (lookup && lookup->code != COD_E_NOT_FOUND) {
			if (err)
				*err = lookup;
			else
				cod_error_free(lookup);
			return -1;
		}
		cod_error_free(lookup);
		return 0;
	}
	e->job = job;
	if (memo) {
		cod_job_free(*memo);
		*memo = cod_job_dup(job);
	}
	return 0;
}

static struct cod_execution *exec_decode(struct store_conn *c, const char *doc, struct cod_job **memo,
					 struct cod_error **err)
{
	/* the same execution is read several times per message it gets (by
	 * the inbox, then by the plan that follows): decode each text once */
	size_t len = strlen(doc);
	struct cod_execution *e = store_doc_cache_get(c->store, STORE_DOC_EXECUTION, doc, len);
	if (!e) {
		cleanup_json json_t *v = store_load(doc, "execution", err);
		if (!v)
			return NULL;
		e = cod_execution_from_json(v, err);
		if (!e) {
			store_decode_failed(err, "execution");
			return NULL;
		}
		store_doc_cache_put(c->store, STORE_DOC_EXECUTION, doc, len, e);
	}
	if (exec_attach_job(c, e, memo, err) < 0) {
		cod_execution_free(e);
		return NULL;
	}
	return e;
}

int cod_store_get_execution(struct cod_store *store, const char *id_or_prefix, struct cod_execution **out,
			    struct cod_error **err)
{
	*out = NULL;
	cleanup_free char *doc = NULL;
	if (store_resolve_doc(store, ST_EXEC_RESOLVE, id_or_prefix, "execution",
			      "run \"cod job executions <job>\" to see execution IDs", &doc, err) < 0)
		return -1;
	struct store_conn *c = store_conn_get(store, err);
	if (!c)
		return -1;
	*out = exec_decode(c, doc, NULL, err);
	store_conn_put(store, c);
	return *out ? 0 : -1;
}

int cod_store_tx_get_execution(struct cod_store_tx *tx, const char *id, struct cod_execution **out,
			       struct cod_error **err)
{
	*out = NULL;
	cleanup_stmt sqlite3_stmt *s = store_stmt(tx->conn, ST_EXEC_GET, err);
	if (!s)
		return -1;
	store_bind_text(s, 1, id);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return (*out = exec_decode(tx->conn, store_col_text(s, 0), NULL, err)) ? 0 : -1;
	if (rc == SQLITE_DONE)
		return cod_error_set(err, COD_E_NOT_FOUND, "execution \"%s\" not found", or_empty(id));
	return store_dberr(tx->conn, err, "load execution");
}

int cod_store_tx_set_evaluation_status(struct cod_store_tx *tx, const char *id, const char *status,
				       struct cod_error **err)
{
	cleanup_stmt sqlite3_stmt *s = store_stmt(tx->conn, ST_EVAL_SET_STATUS, err);
	if (!s)
		return -1;
	store_bind_text(s, 1, id);
	store_bind_text(s, 2, status);
	store_bind_i64(s, 3, tx->now);
	return store_step_done(tx->conn, s, err, "update evaluation");
}

static const struct {
	const char *name;
	const char *column;
} exec_orders[] = {
    {"create_time", "create_time"},
    {"created_at", "create_time"},
    {"modify_time", "modify_time"},
    {"modified_at", "modify_time"},
};

int cod_store_list_executions(struct cod_store *store, const struct cod_exec_query *q,
			      struct cod_exec_page *out, struct cod_error **err)
{
	cleanup_free char *job_id = NULL;
	const char *column = "create_time";

	memset(out, 0, sizeof(*out));
	if (cod_str_empty(q->job_ref) && cod_str_empty(q->node_id))
		return cod_error_set(err, COD_E_BAD_REQUEST, "list executions: missing job or node ID");
	if (!cod_str_empty(q->order_by)) {
		size_t i;
		for (i = 0; i < COD_ARRAY_SIZE(exec_orders); i++)
			if (!strcmp(exec_orders[i].name, q->order_by))
				break;
		if (i == COD_ARRAY_SIZE(exec_orders)) {
			cod_error_set(err, COD_E_BAD_REQUEST, "invalid order_by \"%s\"", q->order_by);
			if (err && *err)
				cod_error_hint(*err, "order executions by created_at or modified_at");
			return -1;
		}
		column = exec_orders[i].column;
	}

	struct cod_store_tx tx;
	if (store_tx_begin(store, false, &tx, err) < 0)
		return -1;
	struct store_conn *c = tx.conn;
	int rc = 0;
	if (!cod_str_empty(q->job_ref))
		rc = store_resolve_job(c, q->namespace_, q->job_ref, &job_id, err);
	uint64_t version = q->job_version;
	if (job_id && !q->all_versions && !version)
		rc = job_version_of(c, job_id, &version, err);
	if (q->all_versions)
		version = 0;
	/* Listing by node looks in every namespace unless one is named. */
	const char *ns = job_id ? NULL : cod_str_empty(q->namespace_) ? NULL : store_ns(q->namespace_);

	/* One statement per shape, prepared once per connection. */
	unsigned shape = (job_id ? 1u : 0) | (cod_str_empty(q->node_id) ? 0 : 2u) | (version ? 4u : 0) |
			 (ns ? 8u : 0) | (strcmp(column, "create_time") ? 16u : 0) | (q->reverse ? 32u : 0);
	sqlite3_stmt *s = c->exec_list_stmts[shape];
	if (rc == 0 && !s) {
		const char *dir = q->reverse ? "DESC" : "ASC";
		cleanup_free char *sql = xasprintf(
		    "SELECT doc FROM executions WHERE 1%s%s%s%s ORDER BY %s %s, id %s LIMIT ?5",
		    job_id ? " AND job_time = " JOB_TIME_OF("?1") " AND job_id = ?1" : "",
		    cod_str_empty(q->node_id) ? "" : " AND node_id = ?2 AND " LIVE_EXEC,
		    version ? " AND job_version = ?3" : "", ns ? " AND namespace = ?4" : "", column, dir, dir);
		if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK)
			rc = store_dberr(c, err, "list executions");
		else
			c->exec_list_stmts[shape] = s;
	}
	if (rc == 0) {
		if (job_id)
			store_bind_text(s, 1, job_id);
		if (!cod_str_empty(q->node_id))
			store_bind_text(s, 2, q->node_id);
		if (version)
			store_bind_i64(s, 3, (int64_t)version);
		if (ns)
			store_bind_text(s, 4, ns);
		store_bind_i64(s, 5, q->limit && q->limit < INT64_MAX ? (int64_t)q->limit : -1);
		size_t alloc = 0;
		int step;
		struct cod_job *memo = NULL;
		while ((step = sqlite3_step(s)) == SQLITE_ROW) {
			struct cod_execution *e = exec_decode(c, store_col_text(s, 0), &memo, err);
			if (!e) {
				rc = -1;
				break;
			}
			COD_GROW(out->items, alloc, out->n + 1);
			out->items[out->n++] = e;
		}
		cod_job_free(memo);
		if (rc == 0 && step != SQLITE_DONE)
			rc = store_dberr(c, err, "list executions");
	}
	/* Done with the statement before the connection goes back. */
	store_stmt_cleanup(&s);
	if (store_tx_end(&tx, rc, err) < 0) {
		cod_exec_page_release(out);
		return -1;
	}
	return 0;
}

void cod_exec_page_release(struct cod_exec_page *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		cod_execution_free(p->items[i]);
	free(p->items);
	memset(p, 0, sizeof(*p));
}
