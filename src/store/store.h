/*
 * store.h - the orchestrator's durable state in SQLite (WAL).
 *
 * Tables: jobs, job_versions, executions, evaluations, job_history, nodes
 * and outbox (per-node ordered messages for the transport). Jobs and the
 * other objects are stored as their JSON encoding (model.h) plus the columns
 * that queries filter and sort on. The schema is versioned through
 * PRAGMA user_version and upgraded by an ordered list of migrations.
 *
 * Durability: a write returns only once the WAL holding it is synced, so an
 * acknowledged job survives power loss. Commits of concurrent writers share
 * one fdatasync (group commit, docs/store.md).
 *
 * Threads: a struct cod_store may be used from any number of threads. Each
 * read borrows a SQLite connection from the store's pool (opened lazily, so
 * there are as many as threads reading at once) and returns it;
 * cod_store_close() closes them all. Write transactions run on the store's
 * one writer connection, start with BEGIN IMMEDIATE and are serialized by a
 * mutex in the process and by SQLite, with a busy timeout, across
 * processes; readers never block writers under WAL.
 *
 * IDs: every function that takes a job reference accepts a full ID, a short
 * ID (the "j-" prefix and at least 8 characters of the UUID) or a Name,
 * within the given namespace (NULL or "" = "default"; "*" = any namespace).
 * Unknown references fail with COD_E_NOT_FOUND and a hint to run
 * `cod job list`; a short ID matching several jobs fails with
 * COD_E_BAD_REQUEST listing the matches.
 */
#ifndef COD_STORE_H
#define COD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "model/model.h"

struct cod_store;
struct cod_store_tx;

/* Open or create the database at path (parent dirs created), run
 * migrations. */
int cod_store_open(const char *path, struct cod_store **out, struct cod_error **err);
void cod_store_close(struct cod_store *store);
/* Current schema version (number of migrations applied). */
int cod_store_schema_version(struct cod_store *store);

/* ------------------------------------------------------------- jobs */

struct cod_submit_result {
	char *job_id;
	char *eval_id;
	uint64_t version;
	bool updated;                /* true when an existing job got a new version */
	struct cod_strlist warnings;
};
void cod_submit_result_release(struct cod_submit_result *r);

/*
 * Submit a normalized, validated job in one transaction: job row, version
 * row, history event and an evaluation (TriggeredBy job-register).
 * If a job of the same Name exists in the namespace it is an update: the ID
 * is kept, Version and Revision bump, state goes back to Pending, the
 * evaluation is job-update. An update whose spec is unchanged is refused
 * (COD_E_BAD_REQUEST "no changes detected for job ...", hint --force)
 * unless force. job->id is assigned (j-<uuid>) for a new job; job's state,
 * version, revision and times are filled in on success.
 * committed (may be NULL) is called with arg and the result once the
 * submission has committed, possibly before it is durable (so that the
 * evaluation is scheduled during the sync); the call returns after it is.
 */
typedef void (*cod_store_submitted_fn)(void *arg, const struct cod_submit_result *res);
int cod_store_submit_job(struct cod_store *store, struct cod_job *job, bool force, cod_store_submitted_fn committed,
			 void *arg, struct cod_submit_result *out, struct cod_error **err);
/* The same, with in_tx (may be NULL) called with arg inside the
 * submission's transaction once it is written, in a savepoint of its own:
 * it may write more there (the plan for the new evaluation). When it fails
 * (< 0) only what it wrote is undone, and the submission goes on. */
typedef int (*cod_store_submit_tx_fn)(void *arg, struct cod_store_tx *tx, const struct cod_submit_result *res);
int cod_store_submit_job_tx(struct cod_store *store, struct cod_job *job, bool force, cod_store_submit_tx_fn in_tx,
			    cod_store_submitted_fn committed, void *arg, struct cod_submit_result *out,
			    struct cod_error **err);

/* Resolve a job reference to its full ID (heap). */
int cod_store_resolve_job(struct cod_store *store, const char *ns, const char *ref, char **job_id,
			  struct cod_error **err);

/* Fetch a job; version 0 = current spec, otherwise that version's spec with
 * the job's current state. */
int cod_store_get_job(struct cod_store *store, const char *ns, const char *ref, uint64_t version,
		      struct cod_job **out, struct cod_error **err);

/* Stop: Stopped jobs are a no-op (*eval_id = NULL); Completed or Failed jobs
 * fail with COD_E_BAD_REQUEST; otherwise state Stopped with reason, history,
 * and a job-cancel evaluation. */
int cod_store_stop_job(struct cod_store *store, const char *ns, const char *ref, const char *reason,
		       char **eval_id, struct cod_error **err);

struct cod_rerun_result {
	char *job_id;
	uint64_t version;
	char *eval_id;
};
void cod_rerun_result_release(struct cod_rerun_result *r);
/* Rerun: refused while Pending, Queued or Undefined. Re-writes the spec of
 * `from_version` (0 = current) as a new version, state Pending, history, and
 * a job-rerun evaluation. */
int cod_store_rerun_job(struct cod_store *store, const char *ns, const char *ref, uint64_t from_version,
			const char *reason, struct cod_rerun_result *out, struct cod_error **err);

/* Paging tokens, Bacalhau's format: base64url (no padding) of
 * "<order_by>:<Y|N reverse>:<limit>:<offset>". */
struct cod_page_token {
	char order_by[32];
	bool reverse;
	uint64_t limit;
	uint64_t offset;
};
char *cod_page_token_encode(const struct cod_page_token *t);
int cod_page_token_decode(const char *s, struct cod_page_token *out, struct cod_error **err);

struct cod_job_query {
	const char *namespace_;             /* NULL/"" = "default", "*" = all */
	const struct cod_selector *labels;  /* may be NULL */
	const char *order_by;               /* "created_at" (default), "modified_at", "id", "name" */
	bool reverse;
	uint64_t limit;                     /* 0 = all */
	const char *next_token;             /* overrides order_by, reverse, limit */
};

struct cod_job_page {
	struct cod_job **items;
	size_t n;
	char *next_token; /* NULL or "" on the last page */
};
void cod_job_page_release(struct cod_job_page *p);

int cod_store_list_jobs(struct cod_store *store, const struct cod_job_query *q, struct cod_job_page *out,
			struct cod_error **err);

/* Jobs not finished (Pending, Queued, Running) in every namespace, oldest
 * first; type > 0 restricts to one enum cod_job_type. */
int cod_store_active_jobs(struct cod_store *store, int type, struct cod_job_page *out, struct cod_error **err);

/* All versions of a job, oldest first. */
int cod_store_job_versions(struct cod_store *store, const char *ns, const char *ref,
			   struct cod_job_page *out, struct cod_error **err);

/* ---------------------------------------------------------- history */

enum cod_history_filter { COD_HISTORY_ALL = 0, COD_HISTORY_ONLY_JOB, COD_HISTORY_ONLY_EXECUTION };

struct cod_history_query {
	const char *namespace_;
	const char *job_ref;
	uint64_t job_version;  /* 0 = current version unless all_versions */
	bool all_versions;
	int64_t since;         /* Unix seconds; 0 = all */
	enum cod_history_filter event_type;
	const char *execution_id; /* full or short (prefix) */
	uint64_t limit;        /* 0 = all */
	const char *next_token; /* opaque, seq-num based */
};

struct cod_history_page {
	struct cod_history_event **items;
	size_t n;
	char *next_token;
};
void cod_history_page_release(struct cod_history_page *p);

int cod_store_job_history(struct cod_store *store, const struct cod_history_query *q,
			  struct cod_history_page *out, struct cod_error **err);
/* Append an event (job_id required); SeqNum assigned, Time and
 * Event.Timestamp default to now. */
int cod_store_add_history(struct cod_store *store, struct cod_history_event *h, struct cod_error **err);

/* ------------------------------------------------------- executions */

struct cod_exec_query {
	const char *namespace_; /* with node_id alone: NULL/"" = every namespace */
	const char *job_ref;    /* or NULL with node_id set */
	const char *node_id;    /* the node's live (not terminal) executions */
	uint64_t job_version;   /* 0 = current unless all_versions */
	bool all_versions;
	const char *order_by;   /* create_time|created_at|modify_time|modified_at */
	bool reverse;
	uint64_t limit;         /* 0 = all */
};

struct cod_exec_page {
	struct cod_execution **items;
	size_t n;
};
void cod_exec_page_release(struct cod_exec_page *p);

int cod_store_list_executions(struct cod_store *store, const struct cod_exec_query *q,
			      struct cod_exec_page *out, struct cod_error **err);
/* Insert or replace an execution (revision bumped, modify_time set). */
int cod_store_put_execution(struct cod_store *store, struct cod_execution *e, struct cod_error **err);
/* One execution by full ID or unique prefix ("e-1a2b3c4d"); ambiguous
 * prefixes fail with COD_E_BAD_REQUEST listing the matches. */
int cod_store_get_execution(struct cod_store *store, const char *id_or_prefix, struct cod_execution **out,
			    struct cod_error **err);

/* ------------------------------------------------------ evaluations */

int cod_store_get_evaluation(struct cod_store *store, const char *id, struct cod_evaluation **out,
			     struct cod_error **err);
/* Insert or replace an evaluation: ID assigned (bare UUID) when empty,
 * CreateTime kept or set, ModifyTime set. */
int cod_store_put_evaluation(struct cod_store *store, struct cod_evaluation *ev, struct cod_error **err);
/* Evaluations with status pending, oldest first (broker rebuild). */
int cod_store_pending_evaluations(struct cod_store *store, struct cod_evaluation ***out, size_t *n,
				  struct cod_error **err);

/* ------------------------------------------------------------ nodes */

int cod_store_put_node(struct cod_store *store, const struct cod_node_state *node, struct cod_error **err);
/* Exact ID or unique prefix. */
int cod_store_get_node(struct cod_store *store, const char *id_or_prefix, struct cod_node_state **out,
		       struct cod_error **err);
int cod_store_list_nodes(struct cod_store *store, struct cod_node_state ***out, size_t *n,
			 struct cod_error **err);
int cod_store_delete_node(struct cod_store *store, const char *id, struct cod_error **err);

/* The last data message processed from a compute node: written in the
 * transaction that processed it (transport.h's sequence rules). */
int cod_store_tx_set_compute_seq(struct cod_store_tx *tx, const char *node_id, uint64_t seq, struct cod_error **err);
int cod_store_get_compute_seq(struct cod_store *store, const char *node_id, uint64_t *seq, bool *found,
			      struct cod_error **err);

/* ------------------------------------------------------------ outbox */

struct cod_outbox_msg {
	char *node_id;
	uint64_t seq;
	char *type;
	char *payload; /* JSON */
	int64_t create_time;
};
void cod_outbox_msg_release(struct cod_outbox_msg *m);

/* Append a message for node; seq assigned (1, 2, ... per node). */
int cod_store_outbox_append(struct cod_store *store, const char *node_id, const char *type,
			    const char *payload, uint64_t *seq, struct cod_error **err);
/* Messages with seq > after_seq, in order, at most limit. */
int cod_store_outbox_pending(struct cod_store *store, const char *node_id, uint64_t after_seq, size_t limit,
			     struct cod_outbox_msg **out, size_t *n, struct cod_error **err);
/* Drop messages with seq <= seq. */
int cod_store_outbox_ack(struct cod_store *store, const char *node_id, uint64_t seq, struct cod_error **err);
/* At start, inside tx: drop node_id's messages up to acked and renumber
 * the rest to follow *base = gap past every number handed out before
 * (durable once tx commits, before anything is sent). Messages published
 * before a crash lost their commits may have carried numbers up to the
 * gap; none is used again. *base = acked when nothing was ever numbered
 * for the node. */
int cod_store_tx_outbox_rebase(struct cod_store_tx *tx, const char *node_id, uint64_t acked, uint64_t gap,
			       uint64_t *base, struct cod_error **err);
/* A node has seen numbers up to seen: when this store never numbered that
 * far (it was reset, the node was not), the pending messages are
 * renumbered to follow seen, and so is what comes next (*moved). */
int cod_store_outbox_catch_up(struct cod_store *store, const char *node_id, uint64_t seen, bool *moved,
			      struct cod_error **err);

/* ------------------------------------------------------ transactions */

/*
 * Writes that must commit together, such as a scheduler's plan: executions,
 * the job's state, evaluations, history events and the outbox messages they
 * cause. cod_store_begin() borrows a connection, takes the write lock and
 * runs BEGIN IMMEDIATE; cod_store_commit() or cod_store_rollback() ends the
 * transaction and frees tx (a failed commit rolls back). If any
 * cod_store_tx_* call fails, roll back. While a transaction is open its
 * thread must not call the other writing functions of the store (they would
 * wait for the same lock); reads are fine but do not see the open
 * transaction's writes.
 */
struct cod_store_tx;
int cod_store_begin(struct cod_store *store, struct cod_store_tx **tx, struct cod_error **err);
int cod_store_commit(struct cod_store_tx *tx, struct cod_error **err);
void cod_store_rollback(struct cod_store_tx *tx);
/* Commit without waiting for the WAL sync, for a caller that acknowledges
 * nothing itself: what it committed becomes durable with the next sync of
 * any commit (the WAL is written in order), or with cod_store_sync(). */
int cod_store_commit_nowait(struct cod_store_tx *tx, struct cod_error **err);
/* Wait until every commit made so far is durable. */
int cod_store_sync(struct cod_store *store, struct cod_error **err);
/* Run the calling thread's reads on the writer's connection until
 * released. A pooled reader's page cache is dropped by every commit of
 * another connection, so a reader after a write reads every page again;
 * the writer's stays valid. This holds the write lock: keep it to a few
 * short reads (a scheduler loading what it plans), and release it before
 * writing. */
void cod_store_hold_writer(struct cod_store *store);
/* Run the calling thread's reads (cod_store_get_job, list_executions, ...)
 * inside tx, a write transaction, until it ends: they see what tx wrote. */
void cod_store_tx_read_own(struct cod_store_tx *tx);
void cod_store_release_writer(struct cod_store *store);
/* A part of one transaction that may fail alone (each of several plans
 * applied in one commit, each of several submissions sharing one): fn runs
 * inside a savepoint of tx; what it wrote is kept when it returns 0 and
 * undone alone when it fails (< 0, its error in *part_err). Returns 0
 * (kept), 1 (fn failed, undone) or -1 when tx itself failed (*err; roll
 * it back). Parts nest. */
typedef int (*cod_store_part_fn)(struct cod_store_tx *tx, void *arg, struct cod_error **err);
int cod_store_tx_part(struct cod_store_tx *tx, cod_store_part_fn fn, void *arg, struct cod_error **part_err,
		      struct cod_error **err);

/* As cod_store_put_execution(), _put_evaluation(), _add_history() and
 * _outbox_append(), inside tx. They fill in IDs, revisions and times as
 * those do; on failure those fields may have changed. */
int cod_store_tx_put_execution(struct cod_store_tx *tx, struct cod_execution *e, struct cod_error **err);
int cod_store_tx_put_evaluation(struct cod_store_tx *tx, struct cod_evaluation *ev, struct cod_error **err);
int cod_store_tx_add_history(struct cod_store_tx *tx, struct cod_history_event *h, struct cod_error **err);
int cod_store_tx_outbox_append(struct cod_store_tx *tx, const char *node_id, const char *type,
			       const char *payload, uint64_t *seq, struct cod_error **err);
/* Set the state of the job with full ID job_id (message may be NULL):
 * Revision bumps, ModifyTime is set. With expected_revision != 0 the update
 * is conditional: COD_E_CONFLICT when the job's revision differs. Add the
 * history event separately. */
int cod_store_tx_set_job_state(struct cod_store_tx *tx, const char *job_id, enum cod_job_state state,
			       const char *message, uint64_t expected_revision, struct cod_error **err);
/* The execution with full ID id as tx sees it (its own writes included);
 * COD_E_NOT_FOUND when there is none. */
int cod_store_tx_get_execution(struct cod_store_tx *tx, const char *id, struct cod_execution **out,
			       struct cod_error **err);
/* Set an evaluation's Status ("complete", "failed"); ModifyTime is set.
 * An unknown ID changes nothing. */
int cod_store_tx_set_evaluation_status(struct cod_store_tx *tx, const char *id, const char *status,
				       struct cod_error **err);

#endif
