/*
 * cstore.c - the compute node's execution store (SQLite, WAL).
 *
 * Much smaller than the orchestrator's: one node, a handful of writes per
 * execution, so one connection behind a mutex is enough. The schema is
 * versioned with PRAGMA user_version like the orchestrator's.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/json_fast.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "compute/compute_int.h"
#include "store/wal_vfs.h"
#include "common/banned.h"

#define BUSY_TIMEOUT_MS 10000

/* One migration per entry; never edit a released one, append. */
static const char *const migrations[] = {
    /* 1: the initial schema */
    "CREATE TABLE executions ("
    "  id TEXT PRIMARY KEY,"
    "  job_id TEXT NOT NULL,"
    "  job_type TEXT NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  create_time INTEGER NOT NULL,"
    "  modify_time INTEGER NOT NULL,"
    "  doc TEXT NOT NULL"
    ");"
    "CREATE INDEX executions_created ON executions (create_time, id);"
    "CREATE TABLE outbox ("
    "  seq INTEGER PRIMARY KEY,"
    "  type TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  create_time INTEGER NOT NULL"
    ");"
    /* last_orch_seq: last orchestrator message processed; outbox_seq:
     * last outbox number handed out. */
    "CREATE TABLE counters ("
    "  name TEXT PRIMARY KEY,"
    "  value INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "INSERT INTO counters VALUES ('last_orch_seq', 0), ('outbox_seq', 0);",
};

/* Prepared statements, kept for the connection's life: parsing the SQL
 * again for each of an execution's writes cost more than the writes. */
#define STMT_CACHE 24

/* Executions whose decoded copy is kept (cache_put). */
#define EXEC_CACHE 128

struct cod_cstore {
	char *path;
	sqlite3 *db;
	pthread_mutex_t lock;
	uint64_t last_orch_seq;
	uint64_t outbox_seq;
	struct {
		const char *sql;
		sqlite3_stmt *st;
	} stmts[STMT_CACHE];
	size_t nstmts;
	/* The live executions last written, as written: an execution is read
	 * back at every phase, and decoding its document (with its job) was
	 * a third of a node's work per job. Only cod_cstore_write writes
	 * executions, and it updates an entry after its commit only. */
	struct cod_execution *cache[EXEC_CACHE];
	size_t cache_next;
};

/* The cached copy of execution id, or NULL (s->lock held). */
static struct cod_execution **cache_find(struct cod_cstore *s, const char *id)
{
	for (size_t i = 0; i < EXEC_CACHE; i++)
		if (s->cache[i] && !strcmp(s->cache[i]->id, id))
			return &s->cache[i];
	return NULL;
}

/* Keep a copy of e as committed, modify_time now, while it is live: a
 * finished one is rarely read again (s->lock held). */
static void cache_put(struct cod_cstore *s, const struct cod_execution *e, int64_t now)
{
	struct cod_execution **slot = cache_find(s, e->id);
	if (cod_exec_state_terminal((enum cod_exec_state)e->compute_state.type)) {
		if (slot) {
			cod_execution_free(*slot);
			*slot = NULL;
		}
		return;
	}
	for (size_t i = 0; !slot && i < EXEC_CACHE; i++)
		if (!s->cache[i])
			slot = &s->cache[i];
	if (!slot) {
		slot = &s->cache[s->cache_next];
		s->cache_next = (s->cache_next + 1) % EXEC_CACHE;
	}
	cod_execution_free(*slot);
	*slot = cod_execution_dup(e);
	(*slot)->modify_time = now;
}

static int dberr(struct cod_cstore *s, struct cod_error **err, const char *what)
{
	return cod_error_set(err, COD_E_DATASTORE, "compute store: %s: %s", what, sqlite3_errmsg(s->db));
}

static sqlite3_stmt *prepare(struct cod_cstore *s, const char *sql, struct cod_error **err);

/* One statement without parameters or rows (BEGIN, COMMIT, ...). */
static int run(struct cod_cstore *s, const char *sql, struct cod_error **err, const char *what)
{
	sqlite3_stmt *st = prepare(s, sql, err);
	if (!st)
		return -1;
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return dberr(s, err, what);
	return 0;
}

static int exec_sql(struct cod_cstore *s, const char *sql, struct cod_error **err, const char *what)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		cod_error_set(err, COD_E_DATASTORE, "compute store: %s: %s", what,
			      msg ? msg : sqlite3_errmsg(s->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* Statements come from the cache: reset them, never finalize, when they
 * leave scope (s->lock is still held then). */
static void reset_stmt(sqlite3_stmt **st)
{
	if (*st) {
		sqlite3_reset(*st);
		sqlite3_clear_bindings(*st);
	}
}
#define cleanup_stmt __attribute__((cleanup(reset_stmt)))

/* The cached statement for sql (s->lock held). */
static sqlite3_stmt *prepare(struct cod_cstore *s, const char *sql, struct cod_error **err)
{
	for (size_t i = 0; i < s->nstmts; i++)
		if (s->stmts[i].sql == sql || !strcmp(s->stmts[i].sql, sql))
			return s->stmts[i].st;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		dberr(s, err, "prepare");
		return NULL;
	}
	if (s->nstmts < STMT_CACHE) {
		s->stmts[s->nstmts].sql = sql;
		s->stmts[s->nstmts++].st = st;
	} else {
		/* cannot happen with the statements of this file */
		cod_warn("compute", "compute store: statement cache full");
		sqlite3_finalize(s->stmts[0].st);
		s->stmts[0].sql = sql;
		s->stmts[0].st = st;
	}
	return st;
}

static int read_counter(struct cod_cstore *s, const char *name, uint64_t *out, struct cod_error **err)
{
	cleanup_stmt sqlite3_stmt *st = prepare(s, "SELECT value FROM counters WHERE name = ?1", err);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = (uint64_t)sqlite3_column_int64(st, 0);
		return 0;
	}
	if (rc == SQLITE_DONE)
		return cod_error_set(err, COD_E_DATASTORE, "compute store: counter \"%s\" is missing", name);
	return dberr(s, err, "read counter");
}

static int set_counter(struct cod_cstore *s, const char *name, uint64_t value, struct cod_error **err)
{
	cleanup_stmt sqlite3_stmt *st = prepare(s, "UPDATE counters SET value = ?2 WHERE name = ?1", err);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)value);
	if (sqlite3_step(st) != SQLITE_DONE)
		return dberr(s, err, "write counter");
	return 0;
}

static int migrate(struct cod_cstore *s, struct cod_error **err)
{
	int have = 0;
	{
		cleanup_stmt sqlite3_stmt *st = prepare(s, "PRAGMA user_version", err);
		if (!st || sqlite3_step(st) != SQLITE_ROW)
			return st ? dberr(s, err, "read schema version") : -1;
		have = sqlite3_column_int(st, 0);
	}
	const int want = (int)COD_ARRAY_SIZE(migrations);
	if (have > want)
		return cod_error_set(err, COD_E_DATASTORE,
				     "compute store \"%s\" has schema version %d, newer than this cod's %d",
				     s->path, have, want);
	while (have < want) {
		cleanup_free char *sql = xasprintf("BEGIN IMMEDIATE; %s PRAGMA user_version = %d; COMMIT;",
						   migrations[have], have + 1);
		if (exec_sql(s, sql, err, "migrate schema") < 0) {
			exec_sql(s, "ROLLBACK", NULL, "rollback");
			return -1;
		}
		have++;
	}
	return 0;
}

/*
 * The compute store commits with synchronous=NORMAL (WAL): a killed or
 * crashed process loses nothing, because committed transactions are in the
 * WAL file; only a power failure can lose the last few. That is safe here:
 * nothing on a compute node is acknowledged to a user, the orchestrator
 * fails and retries the executions of a node that went away, and the
 * outbox renumbers after a lost tail (the handshake carries the
 * orchestrator's position). Each execution step costs no fsync, which is
 * most of a noop job's latency. COD_STORE_SYNC=full|normal|off overrides.
 */
static const char *sync_mode(void)
{
	const char *env = getenv("COD_STORE_SYNC");
	if (!cod_str_empty(env) && !strcasecmp(env, "full"))
		return "FULL";
	if (!cod_str_empty(env) && !strcasecmp(env, "off"))
		return "OFF";
	return "NORMAL";
}

int cod_cstore_open(const char *path, struct cod_cstore **out, struct cod_error **err)
{
	*out = NULL;
	const char *slash = strrchr(path, '/');
	if (slash && slash != path) {
		cleanup_free char *dir = xstrndup(path, (size_t)(slash - path));
		if (cod_mkdir_p(dir, 0700, err) < 0)
			return -1;
	}
	/* Exclusive locking: the node's one connection keeps the file
	 * locked, so transactions take no file locks and the WAL index lives
	 * in memory instead of a shared -shm file (a second process on the
	 * same data dir is refused). It must precede the first WAL access. */
	cleanup_free char *pragmas = xasprintf(
	    "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; PRAGMA synchronous = %s;", sync_mode());
	struct cod_cstore *s = xcalloc(1, sizeof(*s));
	s->path = xstrdup(path);
	pthread_mutex_init(&s->lock, NULL);
	int rc = sqlite3_open_v2(path, &s->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, cod_wal_vfs());
	if (rc != SQLITE_OK) {
		cod_error_set(err, COD_E_DATASTORE, "open compute store \"%s\": %s", path,
			      s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	if (exec_sql(s, pragmas, err, "configure") < 0 || migrate(s, err) < 0 ||
	    read_counter(s, "last_orch_seq", &s->last_orch_seq, err) < 0 ||
	    read_counter(s, "outbox_seq", &s->outbox_seq, err) < 0) {
		cod_error_wrap(err, "open \"%s\"", path);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	cod_cstore_close(s);
	return -1;
}

void cod_cstore_close(struct cod_cstore *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nstmts; i++)
		sqlite3_finalize(s->stmts[i].st);
	for (size_t i = 0; i < EXEC_CACHE; i++)
		cod_execution_free(s->cache[i]);
	if (s->db && sqlite3_close(s->db) != SQLITE_OK)
		cod_warn("compute", "close store: %s", sqlite3_errmsg(s->db));
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s);
}

static struct cod_execution *decode_doc(const char *text, struct cod_error **err)
{
	json_error_t jerr;
	json_t *v = cod_json_loads(text, 0, &jerr);
	if (!v) {
		cod_error_set(err, COD_E_DATASTORE, "compute store: corrupt execution: %s", jerr.text);
		return NULL;
	}
	struct cod_execution *e = cod_execution_from_json(v, err);
	json_decref(v);
	if (!e && err && *err) {
		cod_error_wrap(err, "compute store: decode execution");
		(*err)->code = COD_E_DATASTORE;
	}
	return e;
}

int cod_cstore_get(struct cod_cstore *s, const char *id, struct cod_execution **out, struct cod_error **err)
{
	*out = NULL;
	pthread_mutex_lock(&s->lock);
	int rc = -1;
	struct cod_execution **cached = cache_find(s, id);
	if (cached) {
		*out = cod_execution_dup(*cached);
		rc = 0;
		goto out;
	}
	{
		cleanup_stmt sqlite3_stmt *st = prepare(s, "SELECT doc FROM executions WHERE id = ?1", err);
		if (!st)
			goto out;
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		int r = sqlite3_step(st);
		if (r == SQLITE_DONE) {
			cod_error_set(err, COD_E_NOT_FOUND, "execution \"%s\" is not known to this node", id);
			goto out;
		}
		if (r != SQLITE_ROW) {
			dberr(s, err, "read execution");
			goto out;
		}
		*out = decode_doc((const char *)sqlite3_column_text(st, 0), err);
		rc = *out ? 0 : -1;
	}
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void cod_cstore_list_free(struct cod_execution **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cod_execution_free(list[i]);
	free(list);
}

int cod_cstore_list(struct cod_cstore *s, struct cod_execution ***out, size_t *n, struct cod_error **err)
{
	*out = NULL;
	*n = 0;
	struct cod_execution **list = NULL;
	size_t len = 0, alloc = 0;
	int rc = -1;
	pthread_mutex_lock(&s->lock);
	{
		cleanup_stmt sqlite3_stmt *st =
		    prepare(s, "SELECT doc FROM executions ORDER BY create_time, rowid", err);
		if (!st)
			goto out;
		int r;
		while ((r = sqlite3_step(st)) == SQLITE_ROW) {
			struct cod_execution *e = decode_doc((const char *)sqlite3_column_text(st, 0), err);
			if (!e)
				goto out;
			COD_GROW(list, alloc, len + 1);
			list[len++] = e;
		}
		if (r != SQLITE_DONE) {
			dberr(s, err, "list executions");
			goto out;
		}
		rc = 0;
	}
out:
	pthread_mutex_unlock(&s->lock);
	if (rc < 0) {
		cod_cstore_list_free(list, len);
		return -1;
	}
	*out = list;
	*n = len;
	return 0;
}

static int put_execution(struct cod_cstore *s, const struct cod_execution *e, int64_t now,
			 struct cod_error **err)
{
	struct cod_execution stamped = *e; /* shallow: only read while encoding */
	stamped.modify_time = now;
	cleanup_free char *doc = cod_execution_dumps(&stamped);
	cleanup_stmt sqlite3_stmt *st = prepare(
	    s,
	    "INSERT INTO executions (id, job_id, job_type, state, create_time, modify_time, doc) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
	    "ON CONFLICT (id) DO UPDATE SET state = excluded.state, modify_time = excluded.modify_time, "
	    "doc = excluded.doc",
	    err);
	if (!st)
		return -1;
	const char *type = e->job ? cod_job_type_name(e->job->type) : "";
	sqlite3_bind_text(st, 1, e->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, e->job_id ? e->job_id : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, e->compute_state.type);
	sqlite3_bind_int64(st, 5, e->create_time ? e->create_time : now);
	sqlite3_bind_int64(st, 6, now);
	sqlite3_bind_text(st, 7, doc, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return dberr(s, err, "write execution");
	return 0;
}

static int append_msg(struct cod_cstore *s, const char *type, const char *payload, uint64_t seq, int64_t now,
		      struct cod_error **err)
{
	cleanup_stmt sqlite3_stmt *st =
	    prepare(s, "INSERT INTO outbox (seq, type, payload, create_time) VALUES (?1, ?2, ?3, ?4)", err);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, payload ? payload : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	if (sqlite3_step(st) != SQLITE_DONE)
		return dberr(s, err, "append to outbox");
	return 0;
}

int cod_cstore_write(struct cod_cstore *s, struct cod_cstore_write *w, struct cod_error **err)
{
	int64_t now = cod_now_ns();
	pthread_mutex_lock(&s->lock);
	uint64_t seq = s->outbox_seq + 1;
	int rc = run(s, "BEGIN IMMEDIATE", err, "begin");
	if (rc == 0 && w->execution)
		rc = put_execution(s, w->execution, now, err);
	if (rc == 0 && w->msg_type) {
		rc = append_msg(s, w->msg_type, w->msg_payload, seq, now, err);
		if (rc == 0)
			rc = set_counter(s, "outbox_seq", seq, err);
	}
	if (rc == 0 && w->orch_seq)
		rc = set_counter(s, "last_orch_seq", w->orch_seq, err);
	if (rc == 0)
		rc = run(s, "COMMIT", err, "commit");
	if (rc < 0) {
		if (!sqlite3_get_autocommit(s->db))
			run(s, "ROLLBACK", NULL, "rollback");
	} else {
		if (w->execution)
			cache_put(s, w->execution, now);
		if (w->msg_type) {
			s->outbox_seq = seq;
			w->msg_seq = seq;
		}
		if (w->orch_seq)
			s->last_orch_seq = w->orch_seq;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void cod_cstore_msgs_free(struct cod_cstore_msg *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].type);
		free(m[i].payload);
	}
	free(m);
}

int cod_cstore_outbox_pending(struct cod_cstore *s, uint64_t after, size_t limit, struct cod_cstore_msg **out,
			      size_t *n, struct cod_error **err)
{
	*out = NULL;
	*n = 0;
	struct cod_cstore_msg *msgs = NULL;
	size_t len = 0, alloc = 0;
	int rc = -1;
	pthread_mutex_lock(&s->lock);
	{
		cleanup_stmt sqlite3_stmt *st = prepare(
		    s,
		    "SELECT seq, type, payload, create_time FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
		    err);
		if (!st)
			goto out;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
		sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
		int r;
		while ((r = sqlite3_step(st)) == SQLITE_ROW) {
			COD_GROW(msgs, alloc, len + 1);
			struct cod_cstore_msg *m = &msgs[len++];
			m->seq = (uint64_t)sqlite3_column_int64(st, 0);
			m->type = xstrdup((const char *)sqlite3_column_text(st, 1));
			m->payload = xstrdup((const char *)sqlite3_column_text(st, 2));
			m->create_time = sqlite3_column_int64(st, 3);
		}
		if (r != SQLITE_DONE) {
			dberr(s, err, "read outbox");
			goto out;
		}
		rc = 0;
	}
out:
	pthread_mutex_unlock(&s->lock);
	if (rc < 0) {
		cod_cstore_msgs_free(msgs, len);
		return -1;
	}
	*out = msgs;
	*n = len;
	return 0;
}

int cod_cstore_outbox_ack(struct cod_cstore *s, uint64_t seq, struct cod_error **err)
{
	pthread_mutex_lock(&s->lock);
	int rc = 0;
	{
		cleanup_stmt sqlite3_stmt *st = prepare(s, "DELETE FROM outbox WHERE seq <= ?1", err);
		if (!st) {
			rc = -1;
		} else {
			sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
			if (sqlite3_step(st) != SQLITE_DONE)
				rc = dberr(s, err, "acknowledge outbox");
		}
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int cod_cstore_outbox_resume(struct cod_cstore *s, uint64_t lcs, bool *changed, struct cod_error **err)
{
	if (changed)
		*changed = false;
	pthread_mutex_lock(&s->lock);
	uint64_t first = 0, n = 0, counter = lcs;
	int rc = exec_sql(s, "BEGIN IMMEDIATE", err, "begin");
	if (rc == 0) {
		cleanup_stmt sqlite3_stmt *st = prepare(s, "SELECT MIN(seq), COUNT(*) FROM outbox", err);
		if (!st || sqlite3_step(st) != SQLITE_ROW) {
			rc = st ? dberr(s, err, "read outbox") : -1;
		} else {
			first = (uint64_t)sqlite3_column_int64(st, 0); /* 0 when empty */
			n = (uint64_t)sqlite3_column_int64(st, 1);
		}
	}
	counter = lcs + n;
	bool shift = rc == 0 && n && first != lcs + 1;
	if (rc == 0 && !shift && counter == s->outbox_seq) {
		/* The usual case: numbering already continues from lcs. */
		exec_sql(s, "ROLLBACK", NULL, "rollback");
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	if (shift) {
		/* Pending messages move to lcs+1, lcs+2, ... in two steps so the
		 * primary key never collides mid-update. */
		int64_t delta = (int64_t)(lcs + 1) - (int64_t)first;
		cleanup_stmt sqlite3_stmt *st = prepare(s, "UPDATE outbox SET seq = -(seq + ?1)", err);
		cleanup_stmt sqlite3_stmt *flip =
		    prepare(s, "UPDATE outbox SET seq = -seq WHERE seq < 0", err);
		if (!st || !flip) {
			rc = -1;
		} else {
			sqlite3_bind_int64(st, 1, delta);
			if (sqlite3_step(st) != SQLITE_DONE || sqlite3_step(flip) != SQLITE_DONE)
				rc = dberr(s, err, "renumber outbox");
		}
	}
	if (rc == 0)
		rc = set_counter(s, "outbox_seq", counter, err);
	if (rc == 0)
		rc = exec_sql(s, "COMMIT", err, "commit");
	if (rc < 0) {
		if (!sqlite3_get_autocommit(s->db))
			exec_sql(s, "ROLLBACK", NULL, "rollback");
	} else {
		cod_warn("compute",
			 "outbox renumbered: the orchestrator has this node's messages up to %llu, "
			 "the node had numbered them up to %llu (a store was reset or lost messages); "
			 "%llu pending message%s now follow%s %llu",
			 (unsigned long long)lcs, (unsigned long long)s->outbox_seq, (unsigned long long)n,
			 n == 1 ? "" : "s", n == 1 ? "s" : "", (unsigned long long)lcs);
		s->outbox_seq = counter;
		if (changed)
			*changed = true;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

uint64_t cod_cstore_last_orch_seq(struct cod_cstore *s)
{
	pthread_mutex_lock(&s->lock);
	uint64_t v = s->last_orch_seq;
	pthread_mutex_unlock(&s->lock);
	return v;
}

uint64_t cod_cstore_outbox_last(struct cod_cstore *s)
{
	pthread_mutex_lock(&s->lock);
	uint64_t v = s->outbox_seq;
	pthread_mutex_unlock(&s->lock);
	return v;
}
