/*
 * store.c - opening the database, migrations, the connection pool, the
 * statement cache and transactions. The queries live in store_jobs.c,
 * store_exec.c and store_nodes.c.
 */
#include "store/store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/json_fast.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "store/store_int.h"
#include "store/wal_vfs.h"
#include "common/banned.h"

#define BUSY_TIMEOUT_MS 10000

/*
 * The schema, one migration per entry, applied in order; PRAGMA user_version
 * counts how many ran. Never edit an entry once released: append a new one.
 */
static const char *const migrations[] = {
    /* 1: the initial schema */
    "CREATE TABLE jobs ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  namespace TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  revision INTEGER NOT NULL,"
    "  priority INTEGER NOT NULL,"
    "  create_time INTEGER NOT NULL,"
    "  modify_time INTEGER NOT NULL,"
    "  labels TEXT,"
    "  doc TEXT NOT NULL,"
    "  UNIQUE (namespace, name)"
    ");"
    /* Every page a commit touches is a WAL frame written (and synced),
     * so jobs carry only the indexes that queries need. created_at is
     * rowid order (rows are inserted once, under the write lock, with
     * create_time = now), which jobs_ns gives per namespace; order by id
     * walks the primary key; names resolve through UNIQUE. */
    "CREATE INDEX jobs_ns ON jobs (namespace);"
    "CREATE INDEX jobs_ns_modified ON jobs (namespace, modify_time, id);"
    "CREATE INDEX jobs_modified ON jobs (modify_time, id);"
    "CREATE INDEX jobs_name ON jobs (name, id);"
    "CREATE TABLE job_versions ("
    "  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL,"
    "  create_time INTEGER NOT NULL,"
    "  doc TEXT NOT NULL,"
    "  PRIMARY KEY (job_id, version)"
    ") WITHOUT ROWID;"
    "CREATE TABLE executions ("
    "  id TEXT PRIMARY KEY,"
    "  job_id TEXT NOT NULL,"
    "  namespace TEXT NOT NULL,"
    "  node_id TEXT,"
    "  job_version INTEGER NOT NULL,"
    "  partition_index INTEGER NOT NULL,"
    "  compute_state INTEGER NOT NULL,"
    "  desired_state INTEGER NOT NULL,"
    "  revision INTEGER NOT NULL,"
    "  create_time INTEGER NOT NULL,"
    "  modify_time INTEGER NOT NULL,"
    "  doc TEXT NOT NULL"
    ");"
    "CREATE INDEX executions_job ON executions (job_id, create_time, id);"
    "CREATE INDEX executions_node ON executions (node_id, create_time, id);"
    "CREATE TABLE evaluations ("
    "  id TEXT PRIMARY KEY,"
    "  job_id TEXT NOT NULL,"
    "  namespace TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  triggered_by TEXT NOT NULL,"
    "  priority INTEGER NOT NULL,"
    "  status TEXT NOT NULL,"
    "  wait_until INTEGER NOT NULL,"
    "  create_time INTEGER NOT NULL,"
    "  modify_time INTEGER NOT NULL,"
    "  doc TEXT NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX evaluations_pending ON evaluations (create_time, id) WHERE status = 'pending';"
    "CREATE TABLE job_history ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
    "  job_version INTEGER NOT NULL,"
    "  execution_id TEXT,"
    "  type INTEGER NOT NULL,"
    "  time INTEGER NOT NULL,"
    "  doc TEXT NOT NULL"
    ");"
    "CREATE INDEX job_history_job ON job_history (job_id, seq);"
    "CREATE TABLE nodes ("
    "  id TEXT PRIMARY KEY,"
    "  membership TEXT NOT NULL,"
    "  connection TEXT NOT NULL,"
    "  modify_time INTEGER NOT NULL,"
    "  doc TEXT NOT NULL"
    ");"
    "CREATE TABLE outbox ("
    "  node_id TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  type TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  create_time INTEGER NOT NULL,"
    "  PRIMARY KEY (node_id, seq)"
    ") WITHOUT ROWID;"
    /* The last sequence number handed out per node: acknowledged messages
     * are deleted, numbering must still never go back. */
    "CREATE TABLE outbox_seq ("
    "  node_id TEXT PRIMARY KEY,"
    "  last_seq INTEGER NOT NULL"
    ") WITHOUT ROWID;",
    /* 2: the orchestrator's housekeeping and node events scan jobs that are
     * not finished; a partial index keeps that cheap among many finished
     * ones (1 Pending, 2 Queued, 3 Running). */
    "CREATE INDEX jobs_active ON jobs(type, state) WHERE state IN (1, 2, 3);",
    /* 3: the last data message processed from each compute node, written
     * in the transaction that processed it, so a restarted orchestrator
     * resumes exactly where it acknowledged */
    "CREATE TABLE node_seq ("
    "  node_id TEXT PRIMARY KEY,"
    "  last_compute_seq INTEGER NOT NULL"
    ") WITHOUT ROWID;",
    /* 4: history without AUTOINCREMENT, whose sqlite_sequence row was one
     * more page written by every transaction that adds an event. SeqNum
     * stays the rowid and still never goes back: a new row gets the
     * largest plus one, and events are only ever deleted with their job
     * (which cod never does), never from the end alone. */
    "CREATE TABLE job_history_v4 ("
    "  seq INTEGER PRIMARY KEY,"
    "  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
    "  job_version INTEGER NOT NULL,"
    "  execution_id TEXT,"
    "  type INTEGER NOT NULL,"
    "  time INTEGER NOT NULL,"
    "  doc TEXT NOT NULL"
    ");"
    "INSERT INTO job_history_v4 SELECT seq, job_id, job_version, execution_id, type, time, doc FROM job_history;"
    "DROP TABLE job_history;"
    "ALTER TABLE job_history_v4 RENAME TO job_history;"
    "CREATE INDEX job_history_job ON job_history (job_id, seq);"
    "DELETE FROM sqlite_sequence WHERE name = 'job_history';",
    /* 5: executions by node for live ones only (not terminal: 4
     * AskForBidRejected, 8 BidRejected, 9 Completed, 10 Failed, 11
     * Cancelled), keyed by node alone. The node's events need no more, and
     * the old index, on every execution with its creation time and ID,
     * was the widest random-keyed insert a plan made: each execution it
     * places lands on another node's page. */
    "DROP INDEX executions_node;"
    "CREATE INDEX executions_node_live ON executions (node_id) WHERE compute_state NOT IN (4, 8, 9, 10, 11);",
    /* 6: a job's history, executions and versions are found by the job's
     * creation time first, then its ID. Keyed by the random job ID alone,
     * every job a commit touched put its rows on another page of each of
     * those indexes, each page a WAL frame written and synced; keyed by
     * creation time, the rows of recent jobs share the last pages. The
     * creation time of a job never changes (jobs are never deleted, so no
     * index on the ID alone is needed for cascades either). Its text is
     * written out, not built from JOB_TIME_OF, so that it stays as it ran. */
    "ALTER TABLE job_history ADD COLUMN job_time INTEGER NOT NULL DEFAULT 0;"
    "UPDATE job_history SET job_time = "
    "COALESCE((SELECT create_time FROM jobs WHERE jobs.id = job_history.job_id), 0);"
    "DROP INDEX job_history_job;"
    "CREATE INDEX job_history_job ON job_history (job_time, job_id, seq);"
    "ALTER TABLE executions ADD COLUMN job_time INTEGER NOT NULL DEFAULT 0;"
    "UPDATE executions SET job_time = "
    "COALESCE((SELECT create_time FROM jobs WHERE jobs.id = executions.job_id), 0);"
    "DROP INDEX executions_job;"
    "CREATE INDEX executions_job ON executions (job_time, job_id, create_time, id);"
    "CREATE TABLE job_versions_v6 ("
    "  job_time INTEGER NOT NULL,"
    "  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL,"
    "  create_time INTEGER NOT NULL,"
    "  doc TEXT NOT NULL,"
    "  PRIMARY KEY (job_time, job_id, version)"
    ") WITHOUT ROWID;"
    "INSERT INTO job_versions_v6 SELECT COALESCE((SELECT create_time FROM jobs WHERE jobs.id = v.job_id), 0), "
    "job_id, version, create_time, doc FROM job_versions v;"
    "DROP TABLE job_versions;"
    "ALTER TABLE job_versions_v6 RENAME TO job_versions;",
};

#define JOB_COLS "id, namespace, name, state, version, revision, doc, modify_time"
#define EXEC_COLS                                                                                            \
	"id, job_id, namespace, node_id, job_version, partition_index, compute_state, desired_state, "       \
	"revision, create_time, modify_time, doc"

static const char *const stmt_sql[ST__COUNT] = {
    [ST_BEGIN] = "BEGIN",
    [ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT part",
    [ST_RELEASE] = "RELEASE part",
    [ST_ROLLBACK_TO] = "ROLLBACK TO part",
    [ST_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
    [ST_JOB_BY_NAME] = "SELECT " JOB_COLS " FROM jobs WHERE namespace = ?1 AND name = ?2",
    [ST_JOB_RESOLVE_ID] = "SELECT id FROM jobs WHERE id = ?1 AND (?2 IS NULL OR namespace = ?2)",
    [ST_JOB_RESOLVE_NAME] = "SELECT id FROM jobs WHERE name = ?1 AND (?2 IS NULL OR namespace = ?2) "
			    "ORDER BY id LIMIT 6",
    [ST_JOB_RESOLVE_PREFIX] = "SELECT id FROM jobs WHERE id >= ?1 AND id < ?2 "
			      "AND (?3 IS NULL OR namespace = ?3) ORDER BY id LIMIT 6",
    [ST_JOB_INSERT] = "INSERT INTO jobs (id, name, namespace, type, state, version, revision, priority, "
		      "create_time, modify_time, labels, doc) "
		      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [ST_JOB_UPDATE] = "UPDATE jobs SET type = ?2, state = ?3, version = ?4, revision = ?5, priority = ?6, "
		      "modify_time = ?7, labels = ?8, doc = ?9 WHERE id = ?1",
    /* A job's versions, history and executions: see migration 6. */
    [ST_VERSION_INSERT] = "INSERT INTO job_versions (job_time, job_id, version, create_time, doc) "
			  "VALUES (" JOB_TIME_OF("?1") ", ?1, ?2, ?3, ?4)",
    [ST_VERSION_GET] = "SELECT doc FROM job_versions WHERE job_time = " JOB_TIME_OF("?1") " AND job_id = ?1 "
		       "AND version = ?2",
    [ST_VERSION_LIST] = "SELECT doc FROM job_versions WHERE job_time = " JOB_TIME_OF("?1") " AND job_id = ?1 "
			"ORDER BY version",
    [ST_HISTORY_INSERT] = "INSERT INTO job_history (job_time, job_id, job_version, execution_id, type, time, doc) "
			  "VALUES (" JOB_TIME_OF("?1") ", ?1, ?2, ?3, ?4, ?5, ?6)",
    /* Unused filters are bound NULL; job_history_job (job_time, job_id,
     * seq) drives. */
    [ST_HISTORY_QUERY] = "SELECT seq, doc FROM job_history WHERE job_time = " JOB_TIME_OF("?1") " AND job_id = ?1 "
			 "AND seq > ?2"
			 " AND (?3 IS NULL OR job_version = ?3)"
			 " AND (?4 IS NULL OR time >= ?4)"
			 " AND (?5 IS NULL OR type = ?5)"
			 " AND (?6 IS NULL OR (execution_id >= ?6 AND execution_id < ?7))"
			 " ORDER BY seq LIMIT ?8",
    [ST_EVAL_UPSERT] =
	"INSERT INTO evaluations (id, job_id, namespace, type, triggered_by, priority, status, "
	"wait_until, create_time, modify_time, doc) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
	"ON CONFLICT (id) DO UPDATE SET job_id = excluded.job_id, namespace = excluded.namespace, "
	"type = excluded.type, triggered_by = excluded.triggered_by, priority = excluded.priority, "
	"status = excluded.status, wait_until = excluded.wait_until, "
	"modify_time = excluded.modify_time, doc = excluded.doc",
    [ST_EVAL_GET] = "SELECT doc FROM evaluations WHERE id = ?1",
    [ST_EVAL_PENDING] = "SELECT doc FROM evaluations WHERE status = 'pending' ORDER BY create_time, id",
    /* The document's Status and ModifyTime follow the columns. */
    [ST_EVAL_SET_STATUS] = "UPDATE evaluations SET status = ?2, modify_time = ?3, "
			   "doc = json_set(doc, '$.Status', ?2, '$.ModifyTime', ?3) WHERE id = ?1",
    [ST_EXEC_GET_META] = "SELECT revision, create_time, rowid FROM executions WHERE id = ?1",
    /* ?13: the job's creation time when the caller has the job at hand
     * (a plan's thousand executions then need no lookup each) */
    [ST_EXEC_INSERT] = "INSERT INTO executions (" EXEC_COLS ", job_time) "
		       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, COALESCE(?13, " JOB_TIME_OF("?2") "))",
    /* An update keeps the row (and its rowid), found by the rowid the
     * lookup before it returned: the ID, job, node and creation time
     * never change, so no index but the live-by-node one (compute
     * state) is touched, where an upsert would try the insert first. */
    /* numbered as the insert's columns (?1-?12, bound the same way) */
    [ST_EXEC_UPDATE] = "UPDATE executions SET job_version = ?5, partition_index = ?6, compute_state = ?7, "
		       "desired_state = ?8, revision = ?9, modify_time = ?11, doc = ?12 WHERE rowid = ?13",
    [ST_EXEC_RESOLVE] = "SELECT id, doc FROM executions WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 6",
    [ST_EXEC_GET] = "SELECT doc FROM executions WHERE id = ?1",
    [ST_NODE_UPSERT] = "INSERT OR REPLACE INTO nodes (id, membership, connection, modify_time, doc) "
		       "VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_NODE_RESOLVE] = "SELECT id, doc FROM nodes WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 6",
    [ST_NODE_LIST] = "SELECT doc FROM nodes ORDER BY id",
    [ST_NODE_DELETE] = "DELETE FROM nodes WHERE id = ?1",
    [ST_OUTBOX_NEXT_SEQ] = "INSERT INTO outbox_seq (node_id, last_seq) VALUES (?1, 1) "
			   "ON CONFLICT (node_id) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq",
    [ST_OUTBOX_INSERT] = "INSERT INTO outbox (node_id, seq, type, payload, create_time) "
			 "VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_OUTBOX_PENDING] = "SELECT seq, type, payload, create_time FROM outbox "
			  "WHERE node_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    [ST_OUTBOX_ACK] = "DELETE FROM outbox WHERE node_id = ?1 AND seq <= ?2",
    [ST_NODE_SEQ_SET] = "INSERT INTO node_seq (node_id, last_compute_seq) VALUES (?1, ?2) "
			"ON CONFLICT (node_id) DO UPDATE SET last_compute_seq = excluded.last_compute_seq",
};

/* ----------------------------------------------------------- helpers */

int store_dberr(struct store_conn *c, struct cod_error **err, const char *what)
{
	return cod_error_set(err, COD_E_DATASTORE, "%s: %s", what,
			     c ? sqlite3_errmsg(c->db) : "no connection");
}

int store_step_done(struct store_conn *c, sqlite3_stmt *s, struct cod_error **err, const char *what)
{
	int rc = sqlite3_step(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_dberr(c, err, what);
	return 0;
}

void store_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

void store_bind_i64(sqlite3_stmt *s, int i, int64_t v)
{
	sqlite3_bind_int64(s, i, v);
}

const char *store_col_text(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return t ? (const char *)t : "";
}

const char *store_ns(const char *ns)
{
	if (cod_str_empty(ns))
		return "default";
	if (!strcmp(ns, "*"))
		return NULL;
	return ns;
}

char *store_prefix_upper(const char *prefix)
{
	char *up = xstrdup(prefix);
	size_t n = strlen(up);
	while (n) {
		unsigned char c = (unsigned char)up[n - 1];
		if (c < 0xff) {
			up[n - 1] = (char)(c + 1);
			up[n] = '\0';
			return up;
		}
		n--;
	}
	free(up);
	return NULL;
}

char *store_dump(json_t *v)
{
	if (!v)
		return NULL;
	char *s = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	if (!s) {
		fprintf(stderr, "cod: out of memory encoding JSON\n");
		abort();
	}
	return s;
}

json_t *store_load(const char *text, const char *what, struct cod_error **err)
{
	json_error_t jerr;
	json_t *v = cod_json_loads(text, 0, &jerr);
	if (!v)
		cod_error_set(err, COD_E_DATASTORE, "decode stored %s: %s (line %d)", what, jerr.text,
			      jerr.line);
	return v;
}

void store_decode_failed(struct cod_error **err, const char *what)
{
	if (!err || !*err)
		return;
	cod_error_wrap(err, "decode stored %s", what);
	(*err)->code = COD_E_DATASTORE;
}

void store_stmt_cleanup(sqlite3_stmt **s)
{
	if (*s) {
		sqlite3_reset(*s);
		sqlite3_clear_bindings(*s);
	}
}

void store_stmt_finalize(sqlite3_stmt **s)
{
	sqlite3_finalize(*s);
}

sqlite3_stmt *store_stmt(struct store_conn *c, enum store_stmt id, struct cod_error **err)
{
	sqlite3_stmt *s = c->stmts[id];
	if (s)
		return s;
	if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
		store_dberr(c, err, "prepare statement");
		return NULL;
	}
	c->stmts[id] = s;
	return s;
}

static int exec_sql(struct store_conn *c, const char *sql, struct cod_error **err, const char *what)
{
	char *msg = NULL;
	if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		cod_error_set(err, COD_E_DATASTORE, "%s: %s", what, msg ? msg : sqlite3_errmsg(c->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int run_stmt(struct store_conn *c, enum store_stmt id, struct cod_error **err, const char *what)
{
	sqlite3_stmt *s = store_stmt(c, id, err);
	if (!s)
		return -1;
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return store_dberr(c, err, what);
	return 0;
}

/* ------------------------------------------------------- connections */

static void conn_close(struct store_conn *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(c->stmts[i]);
	for (size_t i = 0; i < STORE_LIST_STMTS; i++)
		sqlite3_finalize(c->list_stmts[i]);
	for (size_t i = 0; i < STORE_EXEC_LIST_STMTS; i++)
		sqlite3_finalize(c->exec_list_stmts[i]);
	if (sqlite3_close(c->db) != SQLITE_OK)
		cod_warn("store", "close database: %s", sqlite3_errmsg(c->db));
	free(c);
}

/* WAL is what lets readers run beside the writer; a filesystem that cannot
 * share the WAL index (some network filesystems) leaves SQLite in its
 * rollback journal, which still works, one writer or readers at a time.
 * Group commit syncs the WAL file itself, so without WAL every commit
 * syncs on its own again. */
static int wal_mode(struct cod_store *store, struct store_conn *c, struct cod_error **err)
{
	cleanup_finalize sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW)
		return store_dberr(c, err, "enable WAL");
	const char *mode = store_col_text(s, 0);
	if (strcasecmp(mode, "wal")) {
		cod_warn("store", "database \"%s\" stays in journal mode \"%s\": WAL is not available there",
			 store->path, mode);
		store->group_sync = false;
		store->wal = false;
	}
	return 0;
}

static struct store_conn *conn_open(struct cod_store *store, struct cod_error **err)
{
	struct store_conn *c = xcalloc(1, sizeof(*c));
	c->store = store;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	int rc = sqlite3_open_v2(store->path, &c->db, flags, cod_wal_vfs());
	if (rc != SQLITE_OK) {
		cod_error_set(err, COD_E_DATASTORE, "open database \"%s\": %s", store->path,
			      c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		conn_close(c);
		return NULL;
	}
	sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(c->db, 1);
	/* No memory map: SQLite drops a connection's map whenever another
	 * connection has committed since its last transaction, and with a
	 * pool of connections beside one writer that is nearly every time,
	 * so the map costs an munmap and page faults per transaction. */
	if (wal_mode(store, c, err) < 0) {
		cod_error_wrap(err, "open database \"%s\"", store->path);
		conn_close(c);
		return NULL;
	}
	cleanup_free char *pragmas = xasprintf("PRAGMA synchronous = %s;"
					       "PRAGMA foreign_keys = ON;"
					       "PRAGMA cache_size = -16384;"
					       "PRAGMA temp_store = MEMORY;",
					       store->group_sync ? "NORMAL" : store->synchronous);
	if (exec_sql(c, pragmas, err, "configure database") < 0) {
		cod_error_wrap(err, "open database \"%s\"", store->path);
		conn_close(c);
		return NULL;
	}
	return c;
}

/* The store whose writer this thread holds for its reads, if any. */
static __thread struct cod_store *writer_held;

/* The reads of a hold share one read transaction (one snapshot, and the
 * WAL's shared locks taken once). When it cannot begin, each statement
 * runs on its own. */
void cod_store_hold_writer(struct cod_store *store)
{
	assert(writer_held == NULL);
	pthread_mutex_lock(&store->write_lock);
	writer_held = store;
	run_stmt(store->writer, ST_BEGIN, NULL, "begin transaction");
}

void cod_store_release_writer(struct cod_store *store)
{
	assert(writer_held == store);
	if (!sqlite3_get_autocommit(store->writer->db))
		run_stmt(store->writer, ST_COMMIT, NULL, "end read transaction");
	writer_held = NULL;
	pthread_mutex_unlock(&store->write_lock);
}

void cod_store_tx_read_own(struct cod_store_tx *tx)
{
	assert(tx->write && tx->conn == tx->store->writer && (writer_held == NULL || writer_held == tx->store));
	writer_held = tx->store;
}

struct store_conn *store_conn_get(struct cod_store *store, struct cod_error **err)
{
	if (writer_held == store)
		return store->writer;
	pthread_mutex_lock(&store->pool_lock);
	struct store_conn *c = store->idle;
	if (c) {
		store->idle = c->next;
		c->next = NULL;
	}
	pthread_mutex_unlock(&store->pool_lock);
	if (c)
		return c;
	c = conn_open(store, err);
	if (!c)
		return NULL;
	pthread_mutex_lock(&store->pool_lock);
	store->nconns++;
	pthread_mutex_unlock(&store->pool_lock);
	return c;
}

void store_conn_put(struct cod_store *store, struct store_conn *c)
{
	if (!c || c == store->writer)
		return;
	pthread_mutex_lock(&store->pool_lock);
	c->next = store->idle;
	store->idle = c;
	pthread_mutex_unlock(&store->pool_lock);
}

/* ------------------------------------------------------ transactions */

int store_tx_begin(struct cod_store *store, bool write, struct cod_store_tx *tx, struct cod_error **err)
{
	memset(tx, 0, sizeof(*tx));
	tx->store = store;
	tx->write = write;
	if (write) {
		/* One connection for every write: as nobody else writes, its
		 * page cache stays valid from one transaction to the next. */
		assert(writer_held != store); /* release it before writing */
		pthread_mutex_lock(&store->write_lock);
		tx->conn = store->writer;
	} else {
		tx->conn = store_conn_get(store, err);
		if (!tx->conn)
			return -1;
		if (tx->conn == store->writer) {
			/* a holder's read: part of the transaction the hold opened */
			tx->now = cod_now_ns();
			return 0;
		}
	}
	if (run_stmt(tx->conn, write ? ST_BEGIN_IMMEDIATE : ST_BEGIN, err, "begin transaction") < 0) {
		if (write)
			pthread_mutex_unlock(&store->write_lock);
		else
			store_conn_put(store, tx->conn);
		tx->conn = NULL;
		return -1;
	}
	tx->now = cod_now_ns();
	return 0;
}

static int open_wal(struct cod_store *store, struct cod_error **err)
{
	cleanup_free char *wal = xasprintf("%s-wal", store->path);
	int fd = open(wal, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return cod_error_set(err, COD_E_DATASTORE, "open \"%s\" to sync it: %s", wal, strerror(errno));
	/* The WAL file may be new: make its directory entry durable too. */
	cleanup_free char *dir = xstrdup(store->path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	store->wal_fd = fd;
	return 0;
}

/* Make the WAL durable (sync_lock not held); reopens it when SQLite
 * replaced the file since the last sync. */
static int sync_wal(struct cod_store *store, struct cod_error **err)
{
	struct stat st;
	if (store->wal_fd >= 0 && fstat(store->wal_fd, &st) == 0 && st.st_nlink == 0) {
		close(store->wal_fd);
		store->wal_fd = -1;
	}
	if (store->wal_fd < 0 && open_wal(store, err) < 0)
		return -1;
	if (fdatasync(store->wal_fd) < 0)
		return cod_error_set(err, COD_E_DATASTORE, "sync the write-ahead log of \"%s\": %s", store->path,
				     strerror(errno));
	return 0;
}

/* Wait until commit number seq is durable. One thread at a time syncs;
 * the others wait and find their commit covered by its sync. */
static int group_sync(struct cod_store *store, uint64_t seq, struct cod_error **err)
{
	int rc = 0;
	pthread_mutex_lock(&store->sync_lock);
	while (rc == 0 && store->synced_seq < seq) {
		if (store->syncing) {
			pthread_cond_wait(&store->sync_cond, &store->sync_lock);
			continue;
		}
		store->syncing = true;
		/* Every commit numbered up to here has written its frames. */
		uint64_t upto = __atomic_load_n(&store->commit_seq, __ATOMIC_ACQUIRE);
		pthread_mutex_unlock(&store->sync_lock);
		rc = sync_wal(store, err);
		pthread_mutex_lock(&store->sync_lock);
		store->syncing = false;
		if (rc == 0 && upto > store->synced_seq)
			store->synced_seq = upto;
		pthread_cond_broadcast(&store->sync_cond);
	}
	pthread_mutex_unlock(&store->sync_lock);
	return rc;
}

int store_tx_end(struct cod_store_tx *tx, int rc, struct cod_error **err)
{
	struct store_conn *c = tx->conn;
	if (!c)
		return rc < 0 ? rc : -1;
	if (!tx->write && c == tx->store->writer) {
		tx->conn = NULL; /* the hold's transaction goes on */
		return rc;
	}
	if (tx->write && writer_held == tx->store)
		writer_held = NULL; /* cod_store_tx_read_own ends with tx */
	if (rc == 0 && run_stmt(c, ST_COMMIT, err, "commit") < 0)
		rc = -1;
	/* After a failed statement or commit SQLite may already have rolled
	 * back; ROLLBACK then fails harmlessly. */
	if (rc < 0 && !sqlite3_get_autocommit(c->db))
		run_stmt(c, ST_ROLLBACK, NULL, "rollback");
	tx->conn = NULL;
	if (!tx->write) {
		store_conn_put(tx->store, c);
		return rc;
	}
	struct cod_store *store = tx->store;
	uint64_t seq = 0;
	if (rc == 0 && store->group_sync)
		seq = __atomic_add_fetch(&store->commit_seq, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&store->write_lock);
	/* Nothing is acknowledged before its commit is durable: callers act
	 * on the commit (answer a client, publish a message) after this. */
	if (seq && !tx->nowait && group_sync(store, seq, err) < 0)
		rc = -1;
	return rc;
}

int cod_store_begin(struct cod_store *store, struct cod_store_tx **out, struct cod_error **err)
{
	struct cod_store_tx *tx = xcalloc(1, sizeof(*tx));
	if (store_tx_begin(store, true, tx, err) < 0) {
		free(tx);
		return -1;
	}
	*out = tx;
	return 0;
}

int cod_store_commit(struct cod_store_tx *tx, struct cod_error **err)
{
	int rc = store_tx_end(tx, 0, err);
	free(tx);
	return rc;
}

/* One request of store_write_shared(), on its caller's stack. */
struct store_share {
	store_write_fn fn;
	store_committed_fn committed;
	void *arg;
	struct cod_error *err;
	int rc;
	bool lead; /* its thread is to run the queue (set under share_lock before sem is posted) */
	sem_t sem; /* posted once: its request is done, or it is to lead */
	struct store_share *next;
};

/* Requests combined into one transaction at the most. */
#define SHARE_MAX 64

/* Run a batch of requests in one transaction (share_lock not held). */
static void run_shared(struct cod_store *store, struct store_share *batch)
{
	struct cod_error *err = NULL;
	struct cod_store_tx tx;
	int rc = store_tx_begin(store, true, &tx, &err);
	for (struct store_share *r = batch; rc == 0 && r; r = r->next) {
		int prc = cod_store_tx_part(&tx, r->fn, r->arg, &r->err, &err);
		if (prc < 0)
			rc = -1;
		else
			r->rc = prc ? -1 : 0;
	}
	if (tx.conn) {
		/* Committed requests may act before the sync (see
		 * store_write_shared); nothing is acknowledged before it. */
		tx.nowait = true;
		rc = store_tx_end(&tx, rc, &err);
		for (struct store_share *r = batch; rc == 0 && r; r = r->next)
			if (r->rc == 0 && r->committed)
				r->committed(r->arg);
		if (rc == 0)
			rc = cod_store_sync(store, &err);
	}
	for (struct store_share *r = batch; r; r = r->next) {
		if (rc == 0 || r->rc < 0)
			continue;
		/* the request went through, the transaction did not */
		r->rc = -1;
		cod_error_set(&r->err, err ? err->code : COD_E_DATASTORE, "%s", err ? err->message : "store error");
	}
	cod_error_free(err);
}

/* Wake the threads of a batch that is done, and the next lead (share_lock
 * not held, so that a woken thread does not block on it at once). A woken
 * thread may return and take its request with it: read next first. */
static void share_wake(struct store_share *list, const struct store_share *self, struct store_share *lead)
{
	for (struct store_share *r = list, *next; r; r = next) {
		next = r->next;
		if (r != self)
			sem_post(&r->sem);
	}
	if (lead)
		sem_post(&lead->sem);
}

/*
 * Each waiting thread sleeps on its own semaphore and is woken only when
 * its request is done or it is to run the queue next: with one broadcast
 * per batch, every waiting submitter woke, took the lock in turn and
 * slept again; with a condition variable signalled under the lock, each
 * woke only to block on that lock. Every waiting thread gets exactly one
 * post, after the state it reads was set under share_lock (the post
 * orders it), so it neither takes the lock to look nor can leave while a
 * post to it is still to come.
 */
int store_write_shared(struct cod_store *store, store_write_fn fn, store_committed_fn committed, void *arg,
		       struct cod_error **err)
{
	struct store_share req = {.fn = fn, .committed = committed, .arg = arg};
	sem_init(&req.sem, 0, 0);
	pthread_mutex_lock(&store->share_lock);
	if (store->share_tail)
		store->share_tail->next = &req;
	else
		store->share_head = &req;
	store->share_tail = &req;
	if (!store->sharing) {
		store->sharing = true;
		req.lead = true;
	}
	pthread_mutex_unlock(&store->share_lock);
	if (!req.lead)
		while (sem_wait(&req.sem) < 0) /* EINTR: the post is still to come */
			;
	if (req.lead) {
		/* Combine: take what is queued, this request first. */
		pthread_mutex_lock(&store->share_lock);
		struct store_share *batch = store->share_head, *last = batch;
		for (size_t n = 1; n < SHARE_MAX && last->next; n++)
			last = last->next;
		store->share_head = last->next;
		if (!store->share_head)
			store->share_tail = NULL;
		last->next = NULL;
		pthread_mutex_unlock(&store->share_lock);
		run_shared(store, batch);
		pthread_mutex_lock(&store->share_lock);
		/* the next queued request's thread runs the queue */
		struct store_share *lead = store->share_head;
		if (lead)
			lead->lead = true;
		else
			store->sharing = false;
		pthread_mutex_unlock(&store->share_lock);
		share_wake(batch, &req, lead);
	}
	sem_destroy(&req.sem);
	if (req.rc < 0) {
		if (err)
			*err = req.err;
		else
			cod_error_free(req.err);
	}
	return req.rc;
}

/* Savepoints are all named "part": ROLLBACK TO and RELEASE act on the
 * innermost one of that name, so parts nest. */
int cod_store_tx_part(struct cod_store_tx *tx, cod_store_part_fn fn, void *arg, struct cod_error **part_err,
		      struct cod_error **err)
{
	if (run_stmt(tx->conn, ST_SAVEPOINT, err, "savepoint") < 0)
		return -1;
	int rc = fn(tx, arg, part_err);
	if ((rc < 0 && run_stmt(tx->conn, ST_ROLLBACK_TO, err, "roll back to savepoint") < 0) ||
	    run_stmt(tx->conn, ST_RELEASE, err, "release savepoint") < 0) {
		if (part_err) { /* moot: the whole transaction failed */
			cod_error_free(*part_err);
			*part_err = NULL;
		}
		return -1;
	}
	return rc < 0 ? 1 : 0;
}

int cod_store_commit_nowait(struct cod_store_tx *tx, struct cod_error **err)
{
	tx->nowait = true;
	return cod_store_commit(tx, err);
}

int cod_store_sync(struct cod_store *store, struct cod_error **err)
{
	if (!store->group_sync)
		return 0;
	return group_sync(store, __atomic_load_n(&store->commit_seq, __ATOMIC_ACQUIRE), err);
}

void cod_store_rollback(struct cod_store_tx *tx)
{
	if (!tx)
		return;
	store_tx_end(tx, -1, NULL);
	free(tx);
}

/* -------------------------------------------------------- migrations */

static int user_version(struct store_conn *c, int *out, struct cod_error **err)
{
	cleanup_finalize sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW)
		return store_dberr(c, err, "read schema version");
	*out = sqlite3_column_int(s, 0);
	return 0;
}

static int migrate(struct cod_store *store, struct store_conn *c, struct cod_error **err)
{
	int have;
	const int want = (int)COD_ARRAY_SIZE(migrations);

	if (user_version(c, &have, err) < 0)
		return -1;
	if (have > want)
		return cod_error_set(err, COD_E_DATASTORE,
				     "database \"%s\" has schema version %d, newer than this cod's %d",
				     store->path, have, want);
	if (have > 0 && have < want)
		cod_info("store", "upgrading \"%s\" from schema version %d to %d (once; a store of 100,000 jobs takes "
				  "a few seconds)",
			 store->path, have, want);
	while (have < want) {
		/* Each migration is its own transaction, and re-checks the
		 * version under the write lock: another process may have run
		 * it meanwhile. */
		if (run_stmt(c, ST_BEGIN_IMMEDIATE, err, "begin migration") < 0)
			return -1;
		int now;
		if (user_version(c, &now, err) < 0)
			goto fail;
		if (now == have) {
			cleanup_free char *bump = xasprintf("PRAGMA user_version = %d", have + 1);
			if (exec_sql(c, migrations[have], err, "migration") < 0 ||
			    exec_sql(c, bump, err, "migration") < 0) {
				cod_error_wrap(err, "migrate database \"%s\" to version %d", store->path,
					       have + 1);
				goto fail;
			}
			now = have + 1;
		}
		if (run_stmt(c, ST_COMMIT, err, "commit migration") < 0)
			goto fail;
		have = now;
	}
	store->schema_version = have;
	return 0;
fail:
	if (!sqlite3_get_autocommit(c->db))
		run_stmt(c, ST_ROLLBACK, NULL, "rollback");
	return -1;
}

/* ------------------------------------------------------ open / close */

static const char *sync_mode(void)
{
	const char *env = getenv("COD_STORE_SYNC");
	if (cod_str_empty(env) || !strcasecmp(env, "full"))
		return "FULL";
	if (!strcasecmp(env, "normal"))
		return "NORMAL";
	if (!strcasecmp(env, "off"))
		return "OFF";
	cod_warn("store", "ignoring COD_STORE_SYNC=\"%s\" (use full, normal or off)", env);
	return "FULL";
}

/* ------------------------------------------------------- checkpoints */

/* WAL frames after which the WAL is checkpointed: four times SQLite's
 * default. A checkpoint copies each page changed since the last one once,
 * and a job's commits change the same index and table pages over and
 * over, so fewer checkpoints copy fewer pages per job. */
#define CKPT_FRAMES 4000

/* Frames the writer copies itself, at most, to finish a checkpoint. */
#define CKPT_TAIL 256

/* The longest the WAL may grow (about 32 MiB of 4 KiB pages). */
#define CKPT_MAX_FRAMES 8000

/*
 * Called by SQLite on the writer after each commit (write_lock held).
 * The checkpointer thread copies the bulk of the WAL while commits go
 * on; but SQLite starts the WAL over only once every frame is copied,
 * which a checkpoint running beside a busy writer never reaches. So when
 * little is left after a background checkpoint, the writer copies that
 * tail itself and its next transaction starts the WAL over. A writer that
 * adds frames as fast as they are copied (large plans, one after another)
 * would grow the WAL without end: past CKPT_MAX_FRAMES it waits for the
 * background checkpoint and copies the rest itself, whatever it costs.
 */
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct cod_store *store = arg;
	if (frames < CKPT_FRAMES)
		return SQLITE_OK;
	pthread_mutex_lock(&store->ckpt_lock);
	if (store->ckpt_done > frames)
		store->ckpt_done = 0; /* the WAL started over since */
	bool inline_copy = frames >= CKPT_MAX_FRAMES;
	if (inline_copy) {
		store->ckpt_wanted = false; /* done here instead */
		while (store->ckpt_busy)
			pthread_cond_wait(&store->ckpt_cond, &store->ckpt_lock);
	} else {
		inline_copy = !store->ckpt_busy && !store->ckpt_wanted && store->ckpt_done > 0 &&
			      frames - store->ckpt_done <= CKPT_TAIL;
		if (!inline_copy && !store->ckpt_busy && !store->ckpt_wanted) {
			store->ckpt_wanted = true;
			pthread_cond_broadcast(&store->ckpt_cond);
		}
	}
	pthread_mutex_unlock(&store->ckpt_lock);
	if (inline_copy) {
		int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			cod_warn("store", "checkpoint \"%s\": %s", store->path, sqlite3_errmsg(db));
		pthread_mutex_lock(&store->ckpt_lock);
		store->ckpt_done = 0;
		pthread_mutex_unlock(&store->ckpt_lock);
	}
	return SQLITE_OK;
}

/* A passive checkpoint neither waits for nor blocks readers and the
 * writer; frames it cannot copy yet are copied the next time. */
static void *checkpointer_main(void *arg)
{
	cod_thread_name("cod-checkpoint");
	struct cod_store *store = arg;
	pthread_mutex_lock(&store->ckpt_lock);
	for (;;) {
		while (!store->ckpt_wanted && !store->ckpt_stop)
			pthread_cond_wait(&store->ckpt_cond, &store->ckpt_lock);
		if (store->ckpt_stop)
			break;
		store->ckpt_wanted = false;
		store->ckpt_busy = true;
		pthread_mutex_unlock(&store->ckpt_lock);
		int log_frames = 0, copied = 0;
		int rc = sqlite3_wal_checkpoint_v2(store->ckpt_conn->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
						   &log_frames, &copied);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			cod_warn("store", "checkpoint \"%s\": %s", store->path, sqlite3_errmsg(store->ckpt_conn->db));
		pthread_mutex_lock(&store->ckpt_lock);
		store->ckpt_busy = false;
		store->ckpt_done = rc == SQLITE_OK ? copied : 0;
		pthread_cond_broadcast(&store->ckpt_cond); /* a writer may wait for it */
	}
	pthread_mutex_unlock(&store->ckpt_lock);
	return NULL;
}

static int start_checkpointer(struct cod_store *store, struct cod_error **err)
{
	if (!store->wal)
		return 0; /* a rollback journal has nothing to checkpoint */
	store->ckpt_conn = conn_open(store, err);
	if (!store->ckpt_conn)
		return -1;
	int rc = pthread_create(&store->ckpt_thread, NULL, checkpointer_main, store);
	if (rc != 0) {
		conn_close(store->ckpt_conn);
		store->ckpt_conn = NULL;
		return cod_error_set(err, COD_E_INTERNAL, "start the checkpoint thread of \"%s\": %s",
				     store->path, strerror(rc));
	}
	sqlite3_wal_hook(store->writer->db, on_wal_commit, store);
	return 0;
}

/* Stop the checkpointer; closing the last connection checkpoints what
 * is left. */
static void stop_checkpointer(struct cod_store *store)
{
	if (store->writer)
		sqlite3_wal_hook(store->writer->db, NULL, NULL);
	if (!store->ckpt_conn)
		return; /* never started */
	pthread_mutex_lock(&store->ckpt_lock);
	store->ckpt_stop = true;
	pthread_cond_broadcast(&store->ckpt_cond);
	pthread_mutex_unlock(&store->ckpt_lock);
	pthread_join(store->ckpt_thread, NULL);
	conn_close(store->ckpt_conn);
	store->ckpt_conn = NULL;
}

int cod_store_open(const char *path, struct cod_store **out, struct cod_error **err)
{
	if (cod_str_empty(path))
		return cod_error_set(err, COD_E_INTERNAL, "open database: empty path");
	const char *slash = strrchr(path, '/');
	if (slash && slash != path) {
		cleanup_free char *dir = xstrndup(path, (size_t)(slash - path));
		if (cod_mkdir_p(dir, 0700, err) < 0)
			return cod_error_wrap(err, "open database \"%s\"", path);
	}

	struct cod_store *store = xcalloc(1, sizeof(*store));
	store->path = xstrdup(path);
	store->synchronous = sync_mode();
	store->group_sync = !strcmp(store->synchronous, "FULL");
	store->wal_fd = -1;
	store->wal = true; /* until a connection finds otherwise */
	store_doc_cache_init(&store->doc_cache);
	pthread_mutex_init(&store->pool_lock, NULL);
	pthread_mutex_init(&store->ckpt_lock, NULL);
	cod_cond_init_mono(&store->ckpt_cond);
	pthread_mutex_init(&store->write_lock, NULL);
	pthread_mutex_init(&store->sync_lock, NULL);
	pthread_cond_init(&store->sync_cond, NULL);
	pthread_mutex_init(&store->share_lock, NULL);
	if (strcmp(store->synchronous, "FULL"))
		cod_warn("store", "PRAGMA synchronous=%s: acknowledged writes may be lost on power failure",
			 store->synchronous);

	struct store_conn *c = store_conn_get(store, err);
	if (!c) {
		cod_store_close(store);
		return -1;
	}
	/* The first connection becomes the writer. */
	store->writer = c;
	if (migrate(store, c, err) < 0 || start_checkpointer(store, err) < 0) {
		cod_store_close(store);
		return -1;
	}
	*out = store;
	return 0;
}

void cod_store_close(struct cod_store *store)
{
	if (!store)
		return;
	stop_checkpointer(store);
	pthread_mutex_lock(&store->pool_lock);
	struct store_conn *c = store->idle;
	store->idle = NULL;
	size_t closed = 0;
	if (store->writer) {
		conn_close(store->writer);
		store->writer = NULL;
		closed++;
	}
	while (c) {
		struct store_conn *next = c->next;
		conn_close(c);
		closed++;
		c = next;
	}
	if (closed != store->nconns)
		cod_err("store", "closing the store with %zu connection(s) still in use",
			store->nconns - closed);
	pthread_mutex_unlock(&store->pool_lock);
	pthread_mutex_destroy(&store->pool_lock);
	pthread_mutex_destroy(&store->write_lock);
	pthread_mutex_destroy(&store->sync_lock);
	pthread_cond_destroy(&store->sync_cond);
	pthread_mutex_destroy(&store->share_lock);
	pthread_mutex_destroy(&store->ckpt_lock);
	pthread_cond_destroy(&store->ckpt_cond);
	store_doc_cache_release(&store->doc_cache);
	if (store->wal_fd >= 0)
		close(store->wal_fd);
	free(store->path);
	free(store);
}

int cod_store_schema_version(struct cod_store *store)
{
	return store->schema_version;
}

int store_list_docs(struct cod_store *store, enum store_stmt id, store_decode_fn decode, store_free_fn free_item,
		    const char *what, void ***out, size_t *n, struct cod_error **err)
{
	*out = NULL;
	*n = 0;
	struct store_conn *c = store_conn_get(store, err);
	if (!c)
		return -1;
	void **items = NULL;
	size_t count = 0, alloc = 0;
	int rc = 0;
	{
		cleanup_stmt sqlite3_stmt *s = store_stmt(c, id, err);
		int step = SQLITE_DONE;
		if (!s)
			rc = -1;
		while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
			void *item = decode(store_col_text(s, 0), err);
			if (!item) {
				rc = -1;
				break;
			}
			COD_GROW(items, alloc, count + 1);
			items[count++] = item;
		}
		if (rc == 0 && step != SQLITE_DONE)
			rc = store_dberr(c, err, what);
	}
	store_conn_put(store, c);
	if (rc < 0) {
		for (size_t i = 0; i < count; i++)
			free_item(items[i]);
		free(items);
		return -1;
	}
	*out = items;
	*n = count;
	return 0;
}

int store_resolve_doc(struct cod_store *store, enum store_stmt id, const char *id_or_prefix, const char *what,
		      const char *list_hint, char **doc, struct cod_error **err)
{
	*doc = NULL;
	if (cod_str_empty(id_or_prefix))
		return cod_error_set(err, COD_E_BAD_REQUEST, "missing %s ID", what);
	struct store_conn *c = store_conn_get(store, err);
	if (!c)
		return -1;
	cleanup_free char *upper = store_prefix_upper(id_or_prefix);
	struct cod_strlist ids = {0};
	int rc = 0;
	{
		cleanup_stmt sqlite3_stmt *s = store_stmt(c, id, err);
		int step = SQLITE_DONE;
		if (!s) {
			rc = -1;
		} else {
			store_bind_text(s, 1, id_or_prefix);
			store_bind_text(s, 2, upper);
		}
		while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
			const char *row_id = store_col_text(s, 0);
			if (!ids.n)
				*doc = xstrdup(store_col_text(s, 1));
			cod_strlist_add(&ids, row_id);
			/* An exact match sorts first and wins over longer IDs. */
			if (!strcmp(row_id, id_or_prefix))
				break;
		}
		if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
			rc = store_dberr(c, err, what);
	}
	store_conn_put(store, c);
	if (rc == 0 && !ids.n) {
		rc = cod_error_set(err, COD_E_NOT_FOUND, "%s \"%s\" not found", what, id_or_prefix);
		if (err && *err)
			cod_error_hint(*err, "%s", list_hint);
	} else if (rc == 0 && ids.n > 1) {
		struct cod_buf b = COD_BUF_INIT;
		for (size_t i = 0; i < ids.n && i < 5; i++)
			cod_buf_addf(&b, "%s%s", i ? ", " : "", ids.items[i]);
		rc = cod_error_set(err, COD_E_BAD_REQUEST, "%s ID prefix \"%s\" is ambiguous: it matches %s%s", what,
				   id_or_prefix, cod_buf_str(&b), ids.n > 5 ? " and more" : "");
		if (err && *err)
			cod_error_hint(*err, "use more characters of the %s ID", what);
		cod_buf_release(&b);
	}
	cod_strlist_release(&ids);
	if (rc < 0) {
		free(*doc);
		*doc = NULL;
	}
	return rc;
}
