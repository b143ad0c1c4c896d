/*
 * store_int.h - what the store's files share: the connection pool, the
 * per-connection statement cache, transactions and small SQLite helpers.
 * Not part of the store's interface (store.h is).
 *
 * A connection belongs to one thread at a time: a call borrows one from the
 * pool, uses it, and gives it back. Write transactions additionally hold the
 * store's write lock, so writers of one process queue on a mutex instead of
 * polling SQLite's busy handler; other processes are kept out by SQLite's own
 * lock and the busy timeout.
 */
#ifndef COD_STORE_INT_H
#define COD_STORE_INT_H

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "store/store.h"

/* Statements prepared once per connection and kept (store.c has the SQL). */
enum store_stmt {
	ST_BEGIN,
	ST_BEGIN_IMMEDIATE,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_JOB_GET,
	ST_JOB_BY_NAME,
	ST_JOB_RESOLVE_ID,
	ST_JOB_RESOLVE_NAME,
	ST_JOB_RESOLVE_PREFIX,
	ST_JOB_INSERT,
	ST_JOB_UPDATE,
	ST_VERSION_INSERT,
	ST_VERSION_GET,
	ST_VERSION_LIST,
	ST_HISTORY_INSERT,
	ST_HISTORY_QUERY,
	ST_EVAL_UPSERT,
	ST_EVAL_GET,
	ST_EVAL_PENDING,
	ST_EVAL_SET_STATUS,
	ST_EXEC_GET_META,
	ST_EXEC_INSERT,
	ST_EXEC_UPDATE,
	ST_EXEC_RESOLVE,
	ST_EXEC_GET,
	ST_NODE_UPSERT,
	ST_NODE_RESOLVE,
	ST_NODE_LIST,
	ST_NODE_DELETE,
	ST_OUTBOX_NEXT_SEQ,
	ST_OUTBOX_INSERT,
	ST_OUTBOX_PENDING,
	ST_OUTBOX_ACK,
	ST_NODE_SEQ_SET,
	ST__COUNT
};

/* Job lists: order column x direction x namespace or not x label filter. */
#define STORE_LIST_STMTS (4 * 2 * 2 * 2)

/* Execution lists: job, node, version, namespace filters x order column x
 * direction. */
#define STORE_EXEC_LIST_STMTS 64

struct store_conn {
	struct cod_store *store; /* the store it belongs to */
	sqlite3 *db;
	sqlite3_stmt *stmts[ST__COUNT];
	sqlite3_stmt *list_stmts[STORE_LIST_STMTS];
	sqlite3_stmt *exec_list_stmts[STORE_EXEC_LIST_STMTS];
	struct store_conn *next; /* idle list */
};

/* Decoded documents (store_cache.c), keyed by their text. */
enum store_doc_kind { STORE_DOC_JOB, STORE_DOC_EXECUTION };
#define STORE_DOC_CACHE_SIZE 128
/* Larger documents (inline data, say) are not kept: 128 entries of at
 * most 64 KiB each bound the cache. */
#define STORE_DOC_CACHE_DOC_MAX (64 * 1024)
struct store_cached_doc {
	void *obj; /* a struct cod_job or cod_execution; NULL: a free slot */
	enum store_doc_kind kind;
	char *text; /* the document it was decoded from */
	size_t len;
	uint64_t hash; /* of text */
	uint64_t used; /* clock at the last use */
};
struct store_doc_cache {
	pthread_mutex_t lock;
	struct store_cached_doc entries[STORE_DOC_CACHE_SIZE];
	uint64_t clock;
};
void store_doc_cache_init(struct store_doc_cache *dc);
void store_doc_cache_release(struct store_doc_cache *dc);
/* A copy (the caller frees) of what text, len bytes, decodes to as kind;
 * NULL when not cached. */
void *store_doc_cache_get(struct cod_store *store, enum store_doc_kind kind, const char *text, size_t len);
/* Keep a copy of obj, decoded from text (the caller keeps obj); documents
 * over STORE_DOC_CACHE_DOC_MAX are not kept. */
void store_doc_cache_put(struct cod_store *store, enum store_doc_kind kind, const char *text, size_t len,
			 const void *obj);

struct cod_store {
	char *path;
	struct store_doc_cache doc_cache;
	pthread_mutex_t pool_lock;
	struct store_conn *idle; /* connections nobody is using */
	size_t nconns;		 /* open connections, idle or not */
	pthread_mutex_t write_lock;
	struct store_conn *writer; /* every write transaction runs on it (write_lock) */
	int schema_version;
	const char *synchronous; /* "FULL" unless COD_STORE_SYNC says otherwise */

	/* Group commit (store.c): with "FULL" in WAL mode, connections commit
	 * with synchronous=NORMAL and a committer waits, after releasing the
	 * write lock, until one fdatasync of the WAL covers its commit; one
	 * sync covers every commit made before it started. */
	bool group_sync;
	uint64_t commit_seq; /* commits made (write_lock; read atomically) */
	pthread_mutex_t sync_lock;
	pthread_cond_t sync_cond;
	uint64_t synced_seq; /* commits known durable (sync_lock) */
	bool syncing;	     /* a thread is in fdatasync (sync_lock) */
	int wal_fd;	     /* the -wal file, opened at the first sync; -1 before */

	/* Shared writes (store_write_shared): requests waiting for a thread
	 * to run them, and whether one runs them or has been handed them. */
	pthread_mutex_t share_lock;
	struct store_share *share_head, *share_tail;
	bool sharing;

	/* Checkpoints (store.c): the writer's commits only count WAL frames;
	 * a thread of its own copies them into the database on its own
	 * connection, so no commit waits for a checkpoint. */
	bool wal;			 /* the database is in WAL mode */
	struct store_conn *ckpt_conn; /* the checkpointer's; NULL: no checkpointer runs */
	pthread_t ckpt_thread;
	pthread_mutex_t ckpt_lock;
	pthread_cond_t ckpt_cond;
	bool ckpt_wanted, ckpt_stop; /* ckpt_lock */
	bool ckpt_busy;		     /* a background checkpoint runs (ckpt_lock) */
	int ckpt_done;		     /* WAL frames copied by the last one (ckpt_lock) */
};

/* An open transaction on a borrowed connection. */
struct cod_store_tx {
	struct cod_store *store;
	struct store_conn *conn;
	bool write;
	bool nowait; /* commit without waiting for the WAL sync */
	int64_t now; /* one timestamp for everything the transaction writes */
};

/* Connections. */
struct store_conn *store_conn_get(struct cod_store *store, struct cod_error **err);
void store_conn_put(struct cod_store *store, struct store_conn *c);

/* Transactions. A write transaction takes the write lock and runs BEGIN
 * IMMEDIATE; a read transaction is a plain BEGIN (one consistent snapshot
 * for a query made of several statements). end() commits when rc == 0 and
 * rolls back otherwise, releases everything and returns rc (or -1 when the
 * commit failed). */
int store_tx_begin(struct cod_store *store, bool write, struct cod_store_tx *tx, struct cod_error **err);
int store_tx_end(struct cod_store_tx *tx, int rc, struct cod_error **err);

/* A write of several statements that may share its transaction (and its
 * WAL frames and sync) with the same kind of writes of other threads:
 * the first thread to arrive runs every queued request, each in its own
 * savepoint, commits once and wakes the others (flat combining). fn runs
 * on whichever thread combines, while its caller waits; its rc (or the
 * commit's failure) is the caller's result, filling *err. */
typedef int (*store_write_fn)(struct cod_store_tx *tx, void *arg, struct cod_error **err);
/* committed (may be NULL) runs once the transaction has committed and
 * before its WAL sync, on the combining thread: work that another commit
 * will follow (queueing an evaluation whose plan syncs before it sends
 * anything) need not wait for the sync; the caller still returns after
 * it, so nothing is acknowledged before it is durable. */
typedef void (*store_committed_fn)(void *arg);
int store_write_shared(struct cod_store *store, store_write_fn fn, store_committed_fn committed, void *arg,
		       struct cod_error **err);

/* The creation time of the job with ID id (an SQL expression), 0 when it
 * is unknown: a job's history, executions and versions are keyed by it
 * before the job's ID (see migration 6 in store.c). */
#define JOB_TIME_OF(id) "COALESCE((SELECT create_time FROM jobs WHERE jobs.id = " id "), 0)"

/* A cached statement, reset and with no bindings. */
sqlite3_stmt *store_stmt(struct store_conn *c, enum store_stmt id, struct cod_error **err);
/* Reset a cached statement when it leaves scope. A statement must be reset
 * or finalized before its connection goes back to the pool (another thread
 * may take it at once, and connections are NOMUTEX): give such variables a
 * scope that ends before store_conn_put()/store_tx_end(). */
void store_stmt_cleanup(sqlite3_stmt **s);
#define cleanup_stmt __attribute__((cleanup(store_stmt_cleanup)))
/* Finalize a one-off statement when it leaves scope. */
void store_stmt_finalize(sqlite3_stmt **s);
#define cleanup_finalize __attribute__((cleanup(store_stmt_finalize)))

/* A COD_E_DATASTORE error "<what>: <sqlite message>"; returns -1. */
int store_dberr(struct store_conn *c, struct cod_error **err, const char *what);
/* Step a statement that returns no rows. */
int store_step_done(struct store_conn *c, sqlite3_stmt *s, struct cod_error **err, const char *what);

/* Binding helpers (SQLITE_STATIC: values must live until the statement is
 * stepped). NULL text binds SQL NULL. */
void store_bind_text(sqlite3_stmt *s, int i, const char *v);
void store_bind_i64(sqlite3_stmt *s, int i, int64_t v);
const char *store_col_text(sqlite3_stmt *s, int i); /* "" for NULL */

/* "default" for NULL or "", NULL for "*" (any), otherwise ns. */
const char *store_ns(const char *ns);
/* The smallest string greater than every string starting with prefix, for
 * range scans "col >= prefix AND col < upper" (heap; NULL when none). */
char *store_prefix_upper(const char *prefix);

/* Compact JSON text of v, which is consumed (heap). */
char *store_dump(json_t *v);
/* Parse a stored document; a corrupt one is a COD_E_DATASTORE error. */
json_t *store_load(const char *text, const char *what, struct cod_error **err);
/* A stored document the model refused: the server's fault, not the
 * client's, so COD_E_DATASTORE whatever the decoder said. */
void store_decode_failed(struct cod_error **err, const char *what);

/* Every row of a cached statement without parameters whose first column
 * is a document, decoded one by one; on failure nothing is returned (what
 * names the list in errors). */
typedef void *(*store_decode_fn)(const char *doc, struct cod_error **err);
typedef void (*store_free_fn)(void *item);
int store_list_docs(struct cod_store *store, enum store_stmt id, store_decode_fn decode, store_free_fn free_item,
		    const char *what, void ***out, size_t *n, struct cod_error **err);

/* The document of the one row whose ID is id_or_prefix or starts with it
 * (a statement binding ?1 = prefix, ?2 = store_prefix_upper(prefix),
 * returning id, doc ordered by id). COD_E_NOT_FOUND with list_hint, or
 * COD_E_BAD_REQUEST listing up to 5 matches when the prefix is ambiguous;
 * what names the object ("execution", "node"). *doc is heap. */
int store_resolve_doc(struct cod_store *store, enum store_stmt id, const char *id_or_prefix, const char *what,
		      const char *list_hint, char **doc, struct cod_error **err);

/* A job's version document (COD_E_NOT_FOUND if there is no such version). */
struct cod_job *store_version_load(struct store_conn *c, const char *id, uint64_t version,
				   struct cod_error **err);

/* Resolve a job reference (store.h's rules) on connection c. */
int store_resolve_job(struct store_conn *c, const char *ns, const char *ref, char **job_id,
		      struct cod_error **err);

/* Within a write transaction (jobs.c, exec.c), for the planner's use too. */
int store_history_add_tx(struct cod_store_tx *tx, struct cod_history_event *h, struct cod_error **err);
int store_eval_put_tx(struct cod_store_tx *tx, struct cod_evaluation *ev, struct cod_error **err);
/* A new pending evaluation for job (TriggeredBy trigger); *eval_id set. */
int store_eval_create_tx(struct cod_store_tx *tx, const struct cod_job *job, const char *trigger,
			 char **eval_id, struct cod_error **err);

#endif
