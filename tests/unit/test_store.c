/*
 * test_store.c - the durable store: submission semantics, resolution,
 * listing and paging, stop/rerun, history, executions, evaluations, nodes,
 * the outbox, durability across reopen, rollback of failed transactions and
 * concurrent writers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "store/store.h"
#include "common/banned.h"

static char tmp_root[] = "/tmp/cod-test-store-XXXXXX";
static int db_counter;

/* ----------------------------------------------------------- helpers */

static char *new_db_path(void)
{
	/* A subdirectory that does not exist yet: open creates parents. */
	return xasprintf("%s/db%d/sub/state.db", tmp_root, ++db_counter);
}

static struct cod_store *open_store(char **path_out)
{
	char *path = new_db_path();
	struct cod_store *store = NULL;
	struct cod_error *err = NULL;
	int rc = cod_store_open(path, &store, &err);
	if (rc < 0)
		fail_msg("open store: %s", err->message);
	if (path_out)
		*path_out = path;
	else
		free(path);
	return store;
}

static struct cod_job *new_job(const char *name, const char *ns)
{
	struct cod_job *j = xcalloc(1, sizeof(*j));
	j->name = xstrdup_or_null(name);
	j->namespace_ = xstrdup_or_null(ns);
	j->type = COD_JOB_BATCH;
	j->count = 1;
	j->count_set = true;
	j->priority = 5;
	j->ntasks = 1;
	j->tasks = xcalloc(1, sizeof(*j->tasks));
	j->tasks[0].name = xstrdup("main");
	j->tasks[0].engine.type = xstrdup("noop");
	return j;
}

/* Submit a fresh job; returns its ID (heap). */
static char *submit(struct cod_store *store, const char *name, const char *ns)
{
	struct cod_job *job = new_job(name, ns);
	struct cod_submit_result res;
	struct cod_error *err = NULL;
	if (cod_store_submit_job(store, job, false, NULL, NULL, &res, &err) < 0)
		fail_msg("submit: %s", err->message);
	char *id = steal_pointer(&res.job_id);
	cod_submit_result_release(&res);
	cod_job_free(job);
	return id;
}

static void expect_error(int rc, struct cod_error **err, enum cod_errcode code, const char *needle)
{
	assert_int_equal(rc, -1);
	assert_non_null(*err);
	if ((*err)->code != code || (needle && !strstr((*err)->message, needle)))
		fail_msg("expected %s error containing \"%s\", got %s: %s", cod_strerror(code),
			 needle ? needle : "", cod_strerror((*err)->code), (*err)->message);
	cod_error_free(*err);
	*err = NULL;
}

static size_t count_history(struct cod_store *store, const char *ref, bool all)
{
	struct cod_history_query q = {.job_ref = ref, .all_versions = all, .namespace_ = "*"};
	struct cod_history_page page;
	struct cod_error *err = NULL;
	if (cod_store_job_history(store, &q, &page, &err) < 0)
		fail_msg("history: %s", err->message);
	size_t n = page.n;
	cod_history_page_release(&page);
	return n;
}

static size_t count_pending_evals(struct cod_store *store)
{
	struct cod_evaluation **evs;
	size_t n;
	struct cod_error *err = NULL;
	assert_int_equal(cod_store_pending_evaluations(store, &evs, &n, &err), 0);
	for (size_t i = 0; i < n; i++)
		cod_evaluation_free(evs[i]);
	free(evs);
	return n;
}

static size_t count_jobs(struct cod_store *store, const char *ns)
{
	struct cod_job_query q = {.namespace_ = ns};
	struct cod_job_page page;
	struct cod_error *err = NULL;
	if (cod_store_list_jobs(store, &q, &page, &err) < 0)
		fail_msg("list: %s", err->message);
	size_t n = page.n;
	cod_job_page_release(&page);
	return n;
}

static struct cod_job *get_job(struct cod_store *store, const char *ns, const char *ref, uint64_t version)
{
	struct cod_job *job = NULL;
	struct cod_error *err = NULL;
	if (cod_store_get_job(store, ns, ref, version, &job, &err) < 0)
		fail_msg("get job \"%s\": %s", ref, err->message);
	return job;
}

static void set_state(struct cod_store *store, const char *id, enum cod_job_state state)
{
	struct cod_store_tx *tx;
	struct cod_error *err = NULL;
	assert_int_equal(cod_store_begin(store, &tx, &err), 0);
	if (cod_store_tx_set_job_state(tx, id, state, "test", 0, &err) < 0)
		fail_msg("set state: %s", err->message);
	assert_int_equal(cod_store_commit(tx, &err), 0);
}

/* ------------------------------------------------------------- tests */

static void walk_pages(struct cod_store *store, struct cod_job_query q, char **want, size_t n);
static struct cod_execution *new_exec(const char *job_id, const char *node, uint64_t version);

static void test_open_and_migrations(void **state)
{
	(void)state;
	char *path;
	struct cod_store *store = open_store(&path);
	int version = cod_store_schema_version(store);
	assert_true(version >= 1);
	cod_store_close(store);

	/* Reopening runs nothing new. */
	struct cod_error *err = NULL;
	assert_int_equal(cod_store_open(path, &store, &err), 0);
	assert_int_equal(cod_store_schema_version(store), version);
	cod_store_close(store);

	/* WAL mode and the schema version are in the file. */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s, 0), version);
	sqlite3_finalize(s);
	/* A database from a newer cod is refused. */
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	expect_error(cod_store_open(path, &store, &err), &err, COD_E_DATASTORE, "newer");
	free(path);
}

/* The largest history SeqNum of a job (0 when it has none). */
static uint64_t last_seq(struct cod_store *store, const char *job_id)
{
	struct cod_history_query q = {.job_ref = job_id, .all_versions = true, .namespace_ = "*"};
	struct cod_history_page page;
	struct cod_error *err = NULL;
	if (cod_store_job_history(store, &q, &page, &err) < 0)
		fail_msg("history: %s", err->message);
	uint64_t seq = page.n ? page.items[page.n - 1]->seq_num : 0;
	cod_history_page_release(&page);
	return seq;
}

/* The first value of a one-row query on a store's file, as text (freed by
 * the caller). */
static char *query_text(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	char *out = xstrdup_or_null((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
	return out;
}

/* Migrations 4-6 on a store of schema version 3: history rebuilt without
 * AUTOINCREMENT (events and their numbers kept, numbering goes on),
 * executions by node for live ones only, and a job's history, executions
 * and versions keyed by the job's creation time first (rows filled in). */
static void test_history_migration(void **state)
{
	(void)state;
	char *path;
	struct cod_store *store = open_store(&path);
	char *a = submit(store, "a", NULL), *b = submit(store, "b", NULL);
	uint64_t seq_b = last_seq(store, b);
	assert_true(seq_b > last_seq(store, a));
	struct cod_execution *e = new_exec(a, "node-a", 1);
	struct cod_error *err = NULL;
	assert_int_equal(cod_store_put_execution(store, e, &err), 0);
	cod_store_close(store);

	/* Put the tables and indexes back the way schema version 3 had them. */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "BEGIN;"
				      "CREATE TABLE h3 (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL "
				      "REFERENCES jobs (id) ON DELETE CASCADE, job_version INTEGER NOT NULL, "
				      "execution_id TEXT, type INTEGER NOT NULL, time INTEGER NOT NULL, doc TEXT NOT NULL);"
				      "INSERT INTO h3 SELECT seq, job_id, job_version, execution_id, type, time, doc "
				      "FROM job_history;"
				      "DROP TABLE job_history;"
				      "ALTER TABLE h3 RENAME TO job_history;"
				      "CREATE INDEX job_history_job ON job_history (job_id, seq);"
				      "DROP INDEX executions_node_live;"
				      "DROP INDEX executions_job;"
				      "ALTER TABLE executions DROP COLUMN job_time;"
				      "CREATE INDEX executions_job ON executions (job_id, create_time, id);"
				      "CREATE INDEX executions_node ON executions (node_id, create_time, id);"
				      "CREATE TABLE v3 (job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE, "
				      "version INTEGER NOT NULL, create_time INTEGER NOT NULL, doc TEXT NOT NULL, "
				      "PRIMARY KEY (job_id, version)) WITHOUT ROWID;"
				      "INSERT INTO v3 SELECT job_id, version, create_time, doc FROM job_versions;"
				      "DROP TABLE job_versions;"
				      "ALTER TABLE v3 RENAME TO job_versions;"
				      "PRAGMA user_version = 3;"
				      "COMMIT;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(cod_store_open(path, &store, &err), 0);
	assert_true(cod_store_schema_version(store) >= 6);
	assert_int_equal(count_history(store, a, true), 1);
	assert_int_equal(last_seq(store, b), seq_b);
	char *c = submit(store, "c", NULL);
	assert_true(last_seq(store, c) > seq_b);
	/* the old rows are found through the new keys */
	struct cod_job *got = get_job(store, NULL, a, 1);
	assert_string_equal(got->id, a);
	cod_job_free(got);
	struct cod_exec_page page;
	struct cod_exec_query q = {.job_ref = a};
	assert_int_equal(cod_store_list_executions(store, &q, &page, &err), 0);
	assert_int_equal(page.n, 1);
	assert_string_equal(page.items[0]->id, e->id);
	assert_string_equal(page.items[0]->job->id, a);
	cod_exec_page_release(&page);
	cod_store_close(store);

	char *sql = query_text(path, "SELECT sql FROM sqlite_schema WHERE name = 'job_history'");
	assert_null(strstr(sql, "AUTOINCREMENT"));
	free(sql);
	/* migration 5: executions by node, live ones only */
	sql = query_text(path, "SELECT group_concat(name) FROM sqlite_schema WHERE name LIKE 'executions_node%'");
	assert_string_equal(sql, "executions_node_live");
	free(sql);
	/* migration 6: every row carries its job's creation time */
	sql = query_text(path, "SELECT (SELECT count(*) FROM job_history h JOIN jobs j ON j.id = h.job_id "
			       "WHERE h.job_time = j.create_time) || ' ' || (SELECT count(*) FROM job_history) || ' ' || "
			       "(SELECT count(*) FROM executions x JOIN jobs j ON j.id = x.job_id "
			       "WHERE x.job_time = j.create_time) || ' ' || (SELECT count(*) FROM job_versions v "
			       "JOIN jobs j ON j.id = v.job_id WHERE v.job_time = j.create_time)");
	assert_string_equal(sql, "3 3 1 3");
	free(sql);
	sql = query_text(path, "SELECT sql FROM sqlite_schema WHERE name = 'job_history_job'");
	assert_non_null(strstr(sql, "(job_time, job_id, seq)"));
	free(sql);
	cod_execution_free(e);
	free(a);
	free(b);
	free(c);
	free(path);
}

static void test_submit_new(void **state)
{
	(void)state;
	struct cod_store *store = open_store(NULL);
	struct cod_job *job = new_job("hello", NULL);
	struct cod_submit_result res;
	struct cod_error *err = NULL;

	assert_int_equal(cod_store_submit_job(store, job, false, NULL, NULL, &res, &err), 0);
	assert_true(cod_str_has_prefix(res.job_id, "j-"));
	assert_int_equal(strlen(res.job_id), 38);
	assert_non_null(res.eval_id);
	assert_int_equal(res.version, 1);
	assert_false(res.updated);
	assert_string_equal(job->id, res.job_id);
	assert_string_equal(job->namespace_, "default");
	assert_int_equal(job->state.type, COD_JOB_PENDING);
	assert_int_equal(job->version, 1);
	assert_int_equal(job->revision, 1);
	assert_true(job->create_time > 0);
	assert_int_equal(job->create_time, job->modify_time);

	struct cod_job *got = get_job(store, NULL, res.job_id, 0);
	assert_string_equal(got->name, "hello");
	assert_int_equal(got->state.type, COD_JOB_PENDING);
	assert_int_equal(got->version, 1);
	assert_int_equal(got->priority, 5);
	assert_true(cod_job_spec_equal(got, job));
	cod_job_free(got);

	/* The evaluation. */
	struct cod_evaluation *ev;
	assert_int_equal(cod_store_get_evaluation(store, res.eval_id, &ev, &err), 0);
	assert_string_equal(ev->job_id, res.job_id);
	assert_string_equal(ev->triggered_by, "job-register");
	assert_string_equal(ev->status, "pending");
	assert_string_equal(ev->type, "batch");
	assert_string_equal(ev->namespace_, "default");
	assert_int_equal(ev->priority, 5);
	cod_evaluation_free(ev);
	assert_int_equal(count_pending_evals(store), 1);
	expect_error(cod_store_get_evaluation(store, "nope", &ev, &err), &err, COD_E_NOT_FOUND, "nope");

	/* The history event. */
	struct cod_history_query q = {.job_ref = res.job_id};
	struct cod_history_page page;
	assert_int_equal(cod_store_job_history(store, &q, &page, &err), 0);
	assert_int_equal(page.n, 1);
	struct cod_history_event *h = page.items[0];
	assert_int_equal(h->type, COD_HISTORY_JOB);
	assert_string_equal(h->topic, "Submission");
	assert_string_equal(h->message, "Job submitted");
	assert_true(h->has_job_state);
	assert_int_equal(h->job_state_prev, COD_JOB_UNDEFINED);
	assert_int_equal(h->job_state_new, COD_JOB_PENDING);
	assert_int_equal(h->job_version, 1);
	assert_true(h->seq_num > 0);
	assert_null(page.next_token);
	cod_history_page_release(&page);

	/* Name defaults to the ID. */
	struct cod_job *anon = new_job(NULL, NULL);
	struct cod_submit_result res2;
	assert_int_equal(cod_store_submit_job(store, anon, false, NULL, NULL, &res2, &err), 0);
	assert_string_equal(anon->name, res2.job_id);
	cod_submit_result_release(&res2);
	cod_job_free(anon);

	/* A client ID already in use is a conflict. */
	struct cod_job *dup = new_job("other", NULL);
	dup->id = xstrdup(res.job_id);
	expect_error(cod_store_submit_job(store, dup, false, NULL, NULL, &res2, &err), &err, COD_E_CONFLICT, res.job_id);
	assert_string_equal(dup->id, res.job_id);
	assert_int_equal(dup->version, 0);
	cod_job_free(dup);

	cod_submit_result_release(&res);
	cod_job_free(job);
	cod_store_close(store);
}

static void test_update_by_name(void **state)
{
	(void)state;
	struct cod_store *store = open_store(NULL);
	struct cod_error *err = NULL;
	char *id = submit(store, "web", NULL);

	struct cod_job *job = new_job("web", NULL);
	job->priority = 9;
	struct cod_submit_result res;
	assert_int_equal(cod_store_submit_job(store, job, false, NULL, NULL, &res, &err), 0);
	assert_true(res.updated);
	assert_string_equal(res.job_id, id);
	assert_int_equal(res.version, 2);
	assert_int_equal(job->version, 2);
	assert_int_equal(job->revision, 2);

	struct cod_evaluation *ev;
	assert_int_equal(cod_store_get_evaluation(store, res.eval_id, &ev, &err), 0);
	assert_string_equal(ev->triggered_by, "job-update");
	assert_int_equal(ev->priority, 9);
	cod_evaluation_free(ev);

	struct cod_job *cur = get_job(store, NULL, "web", 0);
	assert_int_equal(cur->version, 2);
	assert_int_equal(cur->priority, 9);
	assert_true(cur->create_time < cur->modify_time || cur->create_time == cur->modify_time);
	cod_job_free(cur);

	/* Version 1's spec with the current state. */
	set_state(store, id, COD_JOB_RUNNING);
	struct cod_job *v1 = get_job(store, NULL, id, 1);
	assert_int_equal(v1->version, 1);
	assert_int_equal(v1->priority, 5);
	assert_int_equal(v1->state.type, COD_JOB_RUNNING);
	cod_job_free(v1);
	struct cod_job *none = NULL;
	expect_error(cod_store_get_job(store, NULL, id, 7, &none, &err), &err, COD_E_NOT_FOUND, "version 7");
	assert_null(none);

	struct cod_job_page versions;
	assert_int_equal(cod_store_job_versions(store, NULL, "web", &versions, &err), 0);
	assert_int_equal(versions.n, 2);
	assert_int_equal(versions.items[0]->version, 1);
	assert_int_equal(versions.items[1]->version, 2);
	assert_int_equal(versions.items[1]->priority, 9);
	cod_job_page_release(&versions);

	struct cod_history_query q = {.job_ref = id, .all_versions = true};
	struct cod_history_page page;
	assert_int_equal(cod_store_job_history(store, &q, &page, &err), 0);
	assert_int_equal(page.n, 2);
	assert_string_equal(page.items[1]->message, "Job updated");
	assert_int_equal(page.items[1]->job_state_prev, COD_JOB_PENDING);
	cod_history_page_release(&page);

	/* The type cannot change under the same name. */
	struct cod_job *svc = new_job("web", NULL);
	svc->type = COD_JOB_SERVICE;
	struct cod_submit_result res2;
	expect_error(cod_store_submit_job(store, svc, false, NULL, NULL, &res2, &err), &err, COD_E_BAD_REQUEST,
		     "service");
	cod_job_free(svc);

	cod_submit_result_release(&res);
	cod_job_free(job);
	free(id);
	cod_store_close(store);
}

static void test_unchanged_refused_and_force(void **state)
{
	(void)state;
	struct cod_store *store = open_store(NULL);
	struct cod_error *err = NULL;
	char *id = submit(store, "same", NULL);

	struct cod_job *job = new_job("same", NULL);
	struct cod_submit_result res;
	expect_error(cod_store_submit_job(store, job, false, NULL, NULL, &res, &err), &err, COD_E_BAD_REQUEST,
		     "no changes detected");
	/* Nothing changed, in the store or in the job. */
	assert_null(job->id);
	assert_int_equal(job->version, 0);
	assert_int_equal(job->state.type, COD_JOB_UNDEFINED);
	assert_null(res.job_id);
	assert_int_equal(count_history(store, id, true), 1);
	assert_int_equal(count_pending_evals(store), 1);
	struct cod_job *cur = get_job(store, NULL, id, 0);
	assert_int_equal(cur->version, 1);
	assert_int_equal(cur->revision, 1);
	cod_job_free(cur);

	/* The hint names --force. */
	assert_int_equal(cod_store_submit_job(store, job, false, NULL, NULL, &res, &err), -1);
	assert_non_null(err->hint);
	assert_non_null(strstr(err->hint, "--force"));
	cod_error_free(err);
	err = NULL;

	/* A reserved meta key or another case of a resource string is not a change. */
	cod_kvlist_set(&job->meta, "bacalhau.org/requester.id", "x");
	expect_error(cod_store_submit_job(store, job, false, NULL, NULL, &res, &err), &err, COD_E_BAD_REQUEST,
		     "no changes detected");

	assert_int_equal(cod_store_submit_job(store, job, true, NULL, NULL, &res, &err), 0);
	assert_true(res.updated);
	assert_int_equal(res.version, 2);
	assert_string_equal(res.job_id, id);
	assert_int_equal(count_history(store, id, true), 2);
	cod_submit_result_release(&res);

	cod_job_free(job);
	free(id);
	cod_store_close(store);
}

static void test_resolve(void **state)
{
	(void)state;
	struct cod_store *store = open_store(NULL);
	struct cod_error *err = NULL;
	char *id = submit(store, "finder", NULL);
	char *out = NULL;

	assert_int_equal(cod_store_resolve_job(store, NULL, id, &out, &err), 0);
	assert_string_equal(out, id);
	free(out);
	char shortid[11];
	snprintf(shortid, sizeof(shortid), "%s", id);
	assert_int_equal(cod_store_resolve_job(store, "", shortid, &out, &err), 0);
	assert_string_equal(out, id);
	free(out);
	assert_int_equal(cod_store_resolve_job(store, "default", "finder", &out, &err), 0);
	assert_string_equal(out, id);
	free(out);

	/* Too short for a short ID, and not a name. */
	char tooshort[8];
	snprintf(tooshort, sizeof(tooshort), "%s", id);
	expect_error(cod_store_resolve_job(store, NULL, tooshort, &out, &err), &err, COD_E_NOT_FOUND,
		     tooshort);

	assert_int_equal(cod_store_resolve_job(store, NULL, "missing", &out, &err), -1);
	assert_int_equal(err->code, COD_E_NOT_FOUND);
	assert_non_null(strstr(err->message, "\"missing\""));
	assert_non_null(err->hint);
	assert_non_null(strstr(err->hint, "cod job list"));
	cod_error_free(err);
	err = NULL;
	expect_error(cod_store_resolve_job(store, NULL, "", &out, &err), &err, COD_E_BAD_REQUEST, NULL);

	/* Ambiguous short IDs list the matches. */
	const char *ids[] = {"j-abcdef01-0000-4000-8000-000000000001",
			     "j-abcdef01-0000-4000-8000-000000000002",
			     "j-abcdef02-0000-4000-8000-000000000003"};
	for (size_t i = 0; i < 3; i++) {
		struct cod_job *job = new_job(NULL, NULL);
		job->id = xstrdup(ids[i]);
		struct cod_submit_result res;
		assert_int_equal(cod_store_submit_job(store, job, false, NULL, NULL, &res, &err), 0);
		assert_string_equal(res.job_id, ids[i]);
		cod_submit_result_release(&res);
		cod_job_free(job);
	}
	assert_int_equal(cod_store_resolve_job(store, NULL, "j-abcdef01", &out, &err), -1);
	assert_int_equal(err->code, COD_E_BAD_REQUEST);
	assert_non_null(strstr(err->message, "ambiguous"));
	assert_non_null(strstr(err->message, ids[0]));
	assert_non_null(strstr(err->message, ids[1]));
	assert_null(strstr(err->message, ids[2]));
	cod_error_free(err);
	err = NULL;
	assert_int_equal(cod_store_resolve_job(store, NULL, "j-abcdef02", &out, &err), 0);
	assert_string_equal(out, ids[2]);
	free(out);
	/* A longer prefix disambiguates. */
	assert_int_equal(
	    cod_store_resolve_job(store, NULL, "j-abcdef01-0000-4000-8000-000000000002", &out, &err), 0);
	assert_string_equal(out, ids[1]);
	free(out);

	free(id);
	cod_store_close(store);
}

static void test_namespaces(void **state)
{
	(void)state;
	struct cod_store *store = open_store(NULL);
	struct cod_error *err = NULL;
	char *a = submit(store, "x", "team-a");
	char *b = submit(store, "x", "team-b");
	char *d = submit(store, "y", NULL);
	assert_string_not_equal(a, b);

	char *out = NULL;
	assert_int_equal(cod_store_resolve_job(store, "team-a", "x", &out, &err), 0);
	assert_string_equal(out, a);
	free(out);
	assert_int_equal(cod_store_resolve_job(store, "team-b", "x", &out, &err), 0);
	assert_string_equal(out, b);
	free(out);
	/* Not in the default namespace. */
	expect_error(cod_store_resolve_job(store, NULL, "x", &out, &err), &err, COD_E_NOT_FOUND, "default");
	expect_error(cod_store_resolve_job(store, "team-a", b, &out, &err), &err, COD_E_NOT_FOUND, NULL);
	/* "*" searches every namespace; a name there may be ambiguous. */
	assert_int_equal(cod_store_resolve_job(store, "*", b, &out, &err), 0);
	assert_string_equal(out, b);
	free(out);
	assert_int_equal(cod_store_resolve_job(store, "*", "y", &out, &err), 0);
	assert_string_equal(out, d);
	free(out);
	expect_error(cod_store_resolve_job(store, "*", "x", &out, &err), &err, COD_E_BAD_REQUEST,
		     "ambiguous");

	assert_int_equal(count_jobs(store, "team-a"), 1);
	assert_int_equal(count_jobs(store, "team-b"), 1);
	assert_int_equal(count_jobs(store, NULL), 1);
	assert_int_equal(count_jobs(store, "default"), 1);
	assert_int_equal(count_jobs(store, "*"), 3);
	assert_int_equal(count_jobs(store, "nobody"), 0);

	struct cod_job *got = get_job(store, "*", a, 0);
	assert_string_equal(got->namespace_, "team-a");
	cod_job_free(got);

	/* Across namespaces, equal names are ordered by ID. */
	char *by_name[3] = {strcmp(a, b) < 0 ? a : b, strcmp(a, b) < 0 ? b : a, d};
	walk_pages(store, (struct cod_job_query){.namespace_ = "*", .order_by = "name", .limit = 1}, by_name,
		   3);
	char *by_name_rev[3] = {by_name[2], by_name[1], by_name[0]};
	walk_pages(store,
		   (struct cod_job_query){.namespace_ = "*", .order_by = "name", .reverse = true, .limit = 2},
		   by_name_rev, 3);
	char *created[3] = {a, b, d};
	walk_pages(store, (struct cod_job_query){.namespace_ = "*", .limit = 2}, created, 3);

	free(a);
	free(b);
	free(d);
	cod_store_close(store);
}

/* Walk every page of q; check the concatenation equals want (n IDs). */
static void walk_pages(struct cod_store *store, struct cod_job_query q, char **want, size_t n)
{
	struct cod_error *err = NULL;
	size_t seen = 0;
	char *token = NULL;
	int pages = 0;
	for (;;) {
		struct cod_job_page page;
		q.next_token = token;
		if (cod_store_list_jobs(store, &q, &page, &err) < 0)
			fail_msg("list: %s", err->message);
		pages++;
		for (size_t i = 0; i < page.n; i++) {
			assert_true(seen < n);
			if (strcmp(page.items[i]->id, want[seen]))
				fail_msg("page %d item %zu: got %s, want %s", pages, i, page.items[i]->id,
					 want[seen]);
			seen++;
		}
		if (q.limit)
			assert_true(page.n <= q.limit);
		free(token);
		token = cod_str_empty(page.next_token) ? NULL : xstrdup(page.next_token);
		if (token)
			assert_int_equal(page.n, q.limit);
		cod_job_page_release(&page);
		if (!token)
			break;
		/* A token overrides order, direction and limit. */
		q.order_by = "bogus";
		q.reverse = !q.reverse;
	}
	assert_int_equal(seen, n);
	if (q.limit && n)
		assert_int_equal(pages, (int)((n + q.limit - 1) / q.limit));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_list_pagination(void **state)
{
	(void)state;
	struct cod_store *store = open_store(NULL);
	struct cod_error *err = NULL;
	enum { N = 23 };
	char *ids[N], *rev[N], *sorted[N], *by_name[N];
	char name[32];
	for (int i = 0; i < N; i++) {
		/* Names sort in the reverse order of creation. */
		snprintf(name, sizeof(name), "job-%02d", N - i);
		ids[i] = submit(store, name, NULL);
		by_name[N - 1 - i] = ids[i];
		rev[N - 1 - i] = ids[i];
		sorted[i] = ids[i];
	}
	qsort(sorted, N, sizeof(*sorted), cmp_str);
	free(submit(store, "elsewhere", "other"));

	walk_pages(store, (struct cod_job_query){.limit = 5}, ids, N);
	walk_pages(store, (struct cod_job_query){.limit = 7, .reverse = true}, rev, N);
	walk_pages(store, (struct cod_job_query){.limit = 1, .order_by = "id"}, sorted, N);
	walk_pages(store, (struct cod_job_query){.limit = 4, .order_by = "name"}, by_name, N);
	walk_pages(store, (struct cod_job_query){.limit = N}, ids, N);
	walk_pages(store, (struct cod_job_query){.limit = 0}, ids, N);
	walk_pages(store, (struct cod_job_query){.limit = 100, .order_by = "created_at"}, ids, N);

	/* modified_at follows changes. */
	set_state(store, ids[0], COD_JOB_RUNNING);
	char *mod[N];
	for (int i = 0; i < N - 1; i++)
		mod[i] = ids[i + 1];
	mod[N - 1] = ids[0];
	walk_pages(store, (struct cod_job_query){.limit = 6, .order_by = "modified_at"}, mod, N);

	/* A token from the first page, replayed, gives the second page. */
	struct cod_job_page p1, p2;
	struct cod_job_query q = {.limit = 10};
	assert_int_equal(cod_store_list_jobs(store, &q, &p1, &err), 0);
	assert_non_null(p1.next_token);
	struct cod_page_token tok;
	assert_int_equal(cod_page_token_decode(p1.next_token, &tok, &err), 0);
	assert_string_equal(tok.order_by, "created_at");
	assert_false(tok.reverse);
	assert_int_equal(tok.limit, 10);
	assert_int_equal(tok.offset, 10);
	q.next_token = p1.next_token;
	assert_int_equal(cod_store_list_jobs(store, &q, &p2, &err), 0);
	assert_int_equal(p2.n, 10);
	assert_string_equal(p2.items[0]->id, ids[10]);
	cod_job_page_release(&p1);
	cod_job_page_release(&p2);

	/* An offset past the end is an empty last page. */
	struct cod_page_token far = {.order_by = "id", .limit = 5, .offset = 1000};
	char *far_token = cod_page_token_encode(&far);
	q = (struct cod_job_query){.next_token = far_token};
	assert_int_equal(cod_store_list_jobs(store, &q, &p1, &err), 0);
	assert_int_equal(p1.n, 0);
	assert_true(cod_str_empty(p1.next_token));
	cod_job_page_release(&p1);
	free(far_token);

	/* Malformed tokens and orders are bad requests naming the parameter. */
	q = (struct cod_job_query){.next_token = "!!!"};
	expect_error(cod_store_list_jobs(store, &q, &p1, &err), &err, COD_E_BAD_REQUEST, "next_token");
	char *weird = cod_base64url_encode("nope:N:1:1", 10);
	q.next_token = weird;
	expect_error(cod_store_list_jobs(store, &q, &p1, &err), &err, COD_E_BAD_REQUEST, "next_token");
	free(weird);
	q = (struct cod_job_query){.order_by = "size"};
	expect_error(cod_store_list_jobs(store, &q, &p1, &err), &err, COD_E_BAD_REQUEST, "order_by");

	for (int i = 0; i < N; i++)
		free(ids[i]);
	cod_store_close(store);
}

static void test_list_labels(void **state)
{
	(void)state;
	struct cod_store *store = open_store(NULL);
	struct cod_error *err = NULL;
	enum { N = 30 };
	char *prod[N];
	size_t nprod = 0;
	char *ids[N];
	for (int i = 0; i < N; i++) {
		char name[16];
		snprintf(name, sizeof(name), "l%d", i);
		struct cod_job *job = new_job(name, NULL);
		cod_kvlist_set(&job->labels, "env", i % 3 == 0 ? "prod" : "dev");
		if (i % 5 == 0)
			cod_kvlist_set(&job->labels, "bacalhau_canary", "true");
		struct cod_submit_result res;
		assert_int_equal(cod_store_submit_job(store, job, false, NULL, NULL, &res, &err), 0);
		ids[i] = steal_pointer(&res.job_id);
		if (i % 3 == 0)
			prod[nprod++] = ids[i];
		cod_submit_result_release(&res);
		cod_job_free(job);
	}

	struct cod_selector sel;
	assert_int_equal(cod_selector_parse("env=prod", &sel, &err), 0);
	walk_pages(store, (struct cod_job_query){.labels = &sel, .limit = 3}, prod, nprod);
	walk_pages(store, (struct cod_job_query){.labels = &sel, .limit = 0}, prod, nprod);
	walk_pages(store, (struct cod_job_query){.labels = &sel, .limit = nprod}, prod, nprod);
	cod_selector_release(&sel);

	/* The CLI's default filter. */
	char *not_canary[N];
	size_t nn = 0;
	for (int i = 0; i < N; i++)
		if (i % 5)
			not_canary[nn++] = ids[i];
	assert_int_equal(cod_selector_parse("bacalhau_canary!=true", &sel, &err), 0);
	walk_pages(store, (struct cod_job_query){.labels = &sel, .limit = 4}, not_canary, nn);
	cod_selector_release(&sel);

	assert_int_equal(cod_selector_parse("env=staging", &sel, &err), 0);
	walk_pages(store, (struct cod_job_query){.labels = &sel, .limit = 4}, NULL, 0);
	cod_selector_release(&sel);

	for (int i = 0; i < N; i++)
		free(ids[i]);
	cod_store_close(store);
}

static char *b64(const char *s)
{
	return cod_base64url_encode(s, strlen(s));
}

static void test_page_token(void **state)
{
	(void)state;
	struct cod_error *err = NULL;
	struct cod_page_token t = {.order_by = "modified_at", .reverse = true, .limit = 10, .offset = 30};
	char *s = cod_page_token_encode(&t);
	/* Bacalhau's format: base64url without padding. */
	char *want = b64("modified_at:Y:10:30");
	assert_string_equal(s, want);
	assert_null(strchr(s, '='));
	struct cod_page_token back;
	assert_int_equal(cod_page_token_decode(s, &back, &err), 0);
	assert_string_equal(back.order_by, "modified_at");
	assert_true(back.reverse);
	assert_int_equal(back.limit, 10);
	assert_int_equal(back.offset, 30);
	free(s);
	free(want);

	t = (struct cod_page_token){.order_by = "", .limit = UINT64_MAX, .offset = 0};
	s = cod_page_token_encode(&t);
	assert_int_equal(cod_page_token_decode(s, &back, &err), 0);
	assert_string_equal(back.order_by, "");
	assert_false(back.reverse);
	assert_int_equal(back.limit, UINT64_MAX);
	free(s);

	const char *bad_raw[] = {"created_at:X:1:2",  "created_at:Y:-1:2",
				 "created_at:Y:1",    "created_at:Y:1:2:3",
				 "created_at:Y:1:",   "created_at:Y::2",
				 "created_at:YN:1:2", "created_at:Y:1:99999999999999999999999",
				 "a b:Y:1:2",	      "created_at:Y: 1:2"};
	for (size_t i = 0; i < COD_ARRAY_SIZE(bad_raw); i++) {
		char *tok = b64(bad_raw[i]);
		assert_int_equal(cod_page_token_decode(tok, &back, &err), -1);
		assert_int_equal(err->code, COD_E_BAD_REQUEST);
		assert_non_null(strstr(err->message, "next_token"));
		cod_error_free(err);
		err = NULL;
		free(tok);
	}
	expect_error(cod_page_token_decode("", &back, &err), &err, COD_E_BAD_REQUEST, "next_token");
	expect_error(cod_page_token_decode("a", &back, &err), &err, COD_E_BAD_REQUEST, "next_token");
	expect_error(cod_page_token_decode("ab*d", &back, &err), &err, COD_E_BAD_REQUEST, "next_token");
}

static void test_stop(void **state)
{
	(void)state;
	struct cod_store *store = open_store(NULL);
	struct cod_error *err = NULL;
	char *id = submit(store, "stopper", NULL);
	char *eval = NULL;

	assert_int_equal(cod_store_stop_job(store, NULL, "stopper", "enough", &eval, &err), 0);
	assert_non_null(eval);
	struct cod_evaluation *ev;
	assert_int_equal(cod_store_get_evaluation(store, eval, &ev, &err), 0);
	assert_string_equal(ev->triggered_by, "job-cancel");
	assert_string_equal(ev->job_id, id);
	cod_evaluation_free(ev);
	free(eval);

	struct cod_job *job = get_job(store, NULL, id, 0);
	assert_int_equal(job->state.type, COD_JOB_STOPPED);
	assert_string_equal(job->state.message, "enough");
	assert_int_equal(job->revision, 2);
	assert_int_equal(job->version, 1);
	cod_job_free(job);

	struct cod_history_query q = {.job_ref = id};
	struct cod_history_page page;
	assert_int_equal(cod_store_job_history(store, &q, &page, &err), 0);
	assert_int_equal(page.n, 2);
	assert_int_equal(page.items[1]->job_state_prev, COD_JOB_PENDING);
	assert_int_equal(page.items[1]->job_state_new, COD_JOB_STOPPED);
	assert_string_equal(cod_kvlist_get(&page.items[1]->details, "Reason"), "enough");
	cod_history_page_release(&page);

	/* Stopping again is a no-op. */
	eval = (char *)"untouched";
	assert_int_equal(cod_store_stop_job(store, NULL, id, "again", &eval, &err), 0);
	assert_null(eval);
	assert_int_equal(count_history(store, id, true), 2);
	assert_int_equal(count_pending_evals(store), 2);

	/* Completed and failed jobs cannot be stopped. */
	char *done = submit(store, "done", NULL);
	set_state(store, done, COD_JOB_COMPLETED);
	expect_error(cod_store_stop_job(store, NULL, done, NULL, &eval, &err), &err, COD_E_BAD_REQUEST,
		     "Completed");
	set_state(store, done, COD_JOB_FAILED);
	expect_error(cod_store_stop_job(store, NULL, done, NULL, &eval, &err), &err, COD_E_BAD_REQUEST,
		     "Failed");
	expect_error(cod_store_stop_job(store, NULL, "ghost", NULL, &eval, &err), &err, COD_E_NOT_FOUND,
		     "ghost");

	/* A running job stops with the default reason. */
	set_state(store, done, COD_JOB_RUNNING);
	assert_int_equal(cod_store_stop_job(store, NULL, done, NULL, NULL, &err), 0);
	job = get_job(store, NULL, done, 0);
	assert_int_equal(job->state.type, COD_JOB_STOPPED);
	assert_non_null(job->state.message);
	cod_job_free(job);

	free(done);
	free(id);
	cod_store_close(store);
}

static void test_rerun(void **state)
{
	(void)state;
	struct cod_store *store = open_store(NULL);
	struct cod_error *err = NULL;
	char *id = submit(store, "again", NULL);
	struct cod_rerun_result rr;

	/* Pending, Queued (and Undefined) jobs cannot be rerun. */
	expect_error(cod_store_rerun_job(store, NULL, id, 0, NULL, &rr, &err), &err, COD_E_BAD_REQUEST,
		     "Pending");
	set_state(store, id, COD_JOB_QUEUED);
	expect_error(cod_store_rerun_job(store, NULL, id, 0, NULL, &rr, &err), &err, COD_E_BAD_REQUEST,
		     "Queued");
	assert_null(rr.job_id);

	/* v2 with another priority, then completed. */
	struct cod_job *job = new_job("again", NULL);
	job->priority = 50;
	struct cod_submit_result res;
	assert_int_equal(cod_store_submit_job(store, job, false, NULL, NULL, &res, &err), 0);
	cod_submit_result_release(&res);
	cod_job_free(job);
	set_state(store, id, COD_JOB_COMPLETED);

	assert_int_equal(cod_store_rerun_job(store, NULL, "again", 0, "why not", &rr, &err), 0);
	assert_string_equal(rr.job_id, id);
	assert_int_equal(rr.version, 3);
	struct cod_evaluation *ev;
	assert_int_equal(cod_store_get_evaluation(store, rr.eval_id, &ev, &err), 0);
	assert_string_equal(ev->triggered_by, "job-rerun");
	cod_evaluation_free(ev);
	cod_rerun_result_release(&rr);
	job = get_job(store, NULL, id, 0);
	assert_int_equal(job->state.type, COD_JOB_PENDING);
	assert_int_equal(job->version, 3);
	assert_int_equal(job->priority, 50);
	cod_job_free(job);

	/* From version 1: its spec becomes version 4. */
	set_state(store, id, COD_JOB_FAILED);
	assert_int_equal(cod_store_rerun_job(store, NULL, id, 1, NULL, &rr, &err), 0);
	assert_int_equal(rr.version, 4);
	cod_rerun_result_release(&rr);
	job = get_job(store, NULL, id, 0);
	assert_int_equal(job->version, 4);
	assert_int_equal(job->priority, 5);
	cod_job_free(job);

	set_state(store, id, COD_JOB_STOPPED);
	expect_error(cod_store_rerun_job(store, NULL, id, 99, NULL, &rr, &err), &err, COD_E_NOT_FOUND, "99");
	expect_error(cod_store_rerun_job(store, NULL, "nobody", 0, NULL, &rr, &err), &err, COD_E_NOT_FOUND,
		     "nobody");

	struct cod_job_page versions;
	assert_int_equal(cod_store_job_versions(store, NULL, id, &versions, &err), 0);
	assert_int_equal(versions.n, 4);
	cod_job_page_release(&versions);

	struct cod_history_query q = {.job_ref = id, .job_version = 3};
	struct cod_history_page page;
	assert_int_equal(cod_store_job_history(store, &q, &page, &err), 0);
	assert_int_equal(page.n, 1);
	assert_string_equal(page.items[0]->message, "Job rerun requested");
	assert_string_equal(cod_kvlist_get(&page.items[0]->details, "Reason"), "why not");
	assert_int_equal(page.items[0]->job_state_prev, COD_JOB_COMPLETED);
	cod_history_page_release(&page);

	free(id);
	cod_store_close(store);
}

static void add_exec_event(struct cod_store *store, const char *job_id, uint64_t version, const char *exec_id,
			   const char *message)
{
	struct cod_history_event h = {
	    .type = COD_HISTORY_EXECUTION,
	    .job_id = (char *)job_id,
	    .job_version = version,
	    .execution_id = (char *)exec_id,
	    .message = (char *)message,
	    .topic = (char *)"Execution",
	    .has_exec_state = true,
	    .exec_state_prev = COD_EXEC_NEW,
	    .exec_state_new = COD_EXEC_RUNNING,
	};
	struct cod_error *err = NULL;
	if (cod_store_add_history(store, &h, &err) < 0)
		fail_msg("add history: %s", err->message);
	assert_true(h.seq_num > 0);
}

static size_t history_n(struct cod_store *store, struct cod_history_query q)
{
	struct cod_history_page page;
	struct cod_error *err = NULL;
	if (cod_store_job_history(store, &q, &page, &err) < 0)
		fail_msg("history: %s", err->message);
	size_t n = page.n;
	cod_history_page_release(&page);
	return n;
}

static void test_history_filters(void **state)
{
	(void)state;
	struct cod_store *store = open_store(NULL);
	struct cod_error *err = NULL;
	char *id = submit(store, "hist", NULL);
	const char *e1 = "e-11111111-0000-4000-8000-000000000001";
	const char *e2 = "e-22222222-0000-4000-8000-000000000002";
	add_exec_event(store, id, 1, e1, "one");
	add_exec_event(store, id, 1, e2, "two");
	add_exec_event(store, id, 1, e1, "three");
	struct cod_job *job = new_job("hist", NULL);
	job->priority = 1;
	struct cod_submit_result res;
	assert_int_equal(cod_store_submit_job(store, job, false, NULL, NULL, &res, &err), 0);
	cod_submit_result_release(&res);
	cod_job_free(job);
	add_exec_event(store, id, 2, e2, "four");

	/* 1 submitted + 3 exec (v1), 1 updated + 1 exec (v2). */
	assert_int_equal(history_n(store, (struct cod_history_query){.job_ref = id}), 2);
	assert_int_equal(history_n(store, (struct cod_history_query){.job_ref = id, .all_versions = true}),
			 6);
	assert_int_equal(history_n(store, (struct cod_history_query){.job_ref = id, .job_version = 1}), 4);
	assert_int_equal(history_n(store, (struct cod_history_query){.job_ref = "hist",
								     .all_versions = true,
								     .event_type = COD_HISTORY_ONLY_JOB}),
			 2);
	assert_int_equal(
	    history_n(store, (struct cod_history_query){.job_ref = id,
							.all_versions = true,
							.event_type = COD_HISTORY_ONLY_EXECUTION}),
	    4);
	assert_int_equal(history_n(store, (struct cod_history_query){.job_ref = id,
								     .all_versions = true,
								     .execution_id = "e-1111"}),
			 2);
	assert_int_equal(
	    history_n(store,
		      (struct cod_history_query){.job_ref = id, .all_versions = true, .execution_id = e2}),
	    2);
	assert_int_equal(
	    history_n(store, (struct cod_history_query){.job_ref = id, .all_versions = true, .since = 1}), 6);
	int64_t future = cod_now_ns() / 1000000000 + 3600;
	assert_int_equal(
	    history_n(store,
		      (struct cod_history_query){.job_ref = id, .all_versions = true, .since = future}),
	    0);

	/* Paging with limit 4 then what is left. */
	struct cod_history_query q = {.job_ref = id, .all_versions = true, .limit = 4};
	struct cod_history_page page;
	assert_int_equal(cod_store_job_history(store, &q, &page, &err), 0);
	assert_int_equal(page.n, 4);
	assert_non_null(page.next_token);
	uint64_t last = page.items[3]->seq_num;
	for (size_t i = 1; i < page.n; i++)
		assert_true(page.items[i]->seq_num > page.items[i - 1]->seq_num);
	assert_string_equal(page.items[1]->message, "one");
	assert_string_equal(page.items[1]->execution_id, e1);
	assert_int_equal(page.items[1]->type, COD_HISTORY_EXECUTION);
	char *token = xstrdup(page.next_token);
	cod_history_page_release(&page);
	q.next_token = token;
	assert_int_equal(cod_store_job_history(store, &q, &page, &err), 0);
	assert_int_equal(page.n, 2);
	assert_true(page.items[0]->seq_num > last);
	assert_string_equal(page.items[1]->message, "four");
	assert_true(cod_str_empty(page.next_token));
	cod_history_page_release(&page);
	free(token);

	q.next_token = "garbage!";
	expect_error(cod_store_job_history(store, &q, &page, &err), &err, COD_E_BAD_REQUEST, "next_token");
	q = (struct cod_history_query){.job_ref = "nope"};
	expect_error(cod_store_job_history(store, &q, &page, &err), &err, COD_E_NOT_FOUND, "nope");

	/* History needs an existing job. */
	struct cod_history_event orphan = {.job_id = (char *)"j-none", .message = (char *)"x"};
	assert_int_equal(cod_store_add_history(store, &orphan, &err), -1);
	cod_error_free(err);
	err = NULL;

	free(id);
	cod_store_close(store);
}

static struct cod_execution *new_exec(const char *job_id, const char *node, uint64_t version)
{
	struct cod_execution *e = xcalloc(1, sizeof(*e));
	e->job_id = xstrdup(job_id);
	e->node_id = xstrdup(node);
	e->job_version = version;
	e->compute_state.type = COD_EXEC_NEW;
	e->desired_state.type = COD_DESIRED_PENDING;
	return e;
}

/* An execution put with its job at hand (as a plan puts them: the job's
 * creation time from the job, not looked up) is found by its job like one
 * put without. */
static void test_executions_with_job(void **state)
{
	(void)state;
	struct cod_store *store = open_store(NULL);
	struct cod_error *err = NULL;
	char *id = submit(store, "wj", NULL);
	struct cod_execution *bare = new_exec(id, "node-a", 1);
	struct cod_execution *with = new_exec(id, "node-b", 1);
	with->job = get_job(store, NULL, id, 0);
	assert_int_equal(cod_store_put_execution(store, bare, &err), 0);
	assert_int_equal(cod_store_put_execution(store, with, &err), 0);
	struct cod_exec_page page;
	struct cod_exec_query q = {.job_ref = id};
	assert_int_equal(cod_store_list_executions(store, &q, &page, &err), 0);
	assert_int_equal(page.n, 2);
	assert_string_equal(page.items[0]->id, bare->id);
	assert_string_equal(page.items[1]->id, with->id);
	cod_exec_page_release(&page);
	cod_execution_free(bare);
	cod_execution_free(with);
	free(id);
	cod_store_close(store);
}

static void test_executions(void **state)
{
	(void)state;
	struct cod_store *store = open_store(NULL);
	struct cod_error *err = NULL;
	char *id = submit(store, "ex", NULL);

	struct cod_execution *a = new_exec(id, "node-a", 1);
	struct cod_execution *b = new_exec(id, "node-b", 1);
	assert_int_equal(cod_store_put_execution(store, a, &err), 0);
	assert_true(cod_str_has_prefix(a->id, "e-"));
	assert_int_equal(a->revision, 1);
	assert_true(a->create_time > 0);
	assert_int_equal(cod_store_put_execution(store, b, &err), 0);

	int64_t created = a->create_time;
	a->compute_state.type = COD_EXEC_RUNNING;
	a->create_time = 1; /* ignored: creation time is kept */
	assert_int_equal(cod_store_put_execution(store, a, &err), 0);
	assert_int_equal(a->revision, 2);
	assert_int_equal(a->create_time, created);
	assert_true(a->modify_time >= created);

	struct cod_exec_page page;
	struct cod_exec_query q = {.job_ref = "ex"};
	assert_int_equal(cod_store_list_executions(store, &q, &page, &err), 0);
	assert_int_equal(page.n, 2);
	assert_string_equal(page.items[0]->id, a->id);
	assert_int_equal(page.items[0]->compute_state.type, COD_EXEC_RUNNING);
	assert_int_equal(page.items[0]->revision, 2);
	assert_string_equal(page.items[1]->id, b->id);
	cod_exec_page_release(&page);

	q.reverse = true;
	assert_int_equal(cod_store_list_executions(store, &q, &page, &err), 0);
	assert_string_equal(page.items[0]->id, b->id);
	cod_exec_page_release(&page);

	q = (struct cod_exec_query){.job_ref = id, .order_by = "modified_at", .limit = 1};
	assert_int_equal(cod_store_list_executions(store, &q, &page, &err), 0);
	assert_int_equal(page.n, 1);
	assert_string_equal(page.items[0]->id, b->id);
	cod_exec_page_release(&page);

	q = (struct cod_exec_query){.node_id = "node-a"};
	assert_int_equal(cod_store_list_executions(store, &q, &page, &err), 0);
	assert_int_equal(page.n, 1);
	assert_string_equal(page.items[0]->node_id, "node-a");
	cod_exec_page_release(&page);

	q = (struct cod_exec_query){.job_ref = id, .order_by = "bogus"};
	expect_error(cod_store_list_executions(store, &q, &page, &err), &err, COD_E_BAD_REQUEST, "order_by");
	q = (struct cod_exec_query){0};
	expect_error(cod_store_list_executions(store, &q, &page, &err), &err, COD_E_BAD_REQUEST, NULL);
	q = (struct cod_exec_query){.job_ref = "nope"};
	expect_error(cod_store_list_executions(store, &q, &page, &err), &err, COD_E_NOT_FOUND, "nope");

	/* After an update, only the current version's executions by default. */
	struct cod_job *job = new_job("ex", NULL);
	job->priority = 77;
	struct cod_submit_result res;
	assert_int_equal(cod_store_submit_job(store, job, false, NULL, NULL, &res, &err), 0);
	cod_submit_result_release(&res);
	cod_job_free(job);
	struct cod_execution *c = new_exec(id, "node-a", 2);
	assert_int_equal(cod_store_put_execution(store, c, &err), 0);
	q = (struct cod_exec_query){.job_ref = id};
	assert_int_equal(cod_store_list_executions(store, &q, &page, &err), 0);
	assert_int_equal(page.n, 1);
	assert_string_equal(page.items[0]->id, c->id);
	cod_exec_page_release(&page);
	q.all_versions = true;
	assert_int_equal(cod_store_list_executions(store, &q, &page, &err), 0);
	assert_int_equal(page.n, 3);
	cod_exec_page_release(&page);
	q = (struct cod_exec_query){.job_ref = id, .job_version = 1};
	assert_int_equal(cod_store_list_executions(store, &q, &page, &err), 0);
	assert_int_equal(page.n, 2);
	cod_exec_page_release(&page);

	/* Lookup by ID or prefix. */
	struct cod_execution *got;
	assert_int_equal(cod_store_get_execution(store, a->id, &got, &err), 0);
	assert_string_equal(got->id, a->id);
	cod_execution_free(got);
	char prefix[11];
	snprintf(prefix, sizeof(prefix), "%s", b->id);
	assert_int_equal(cod_store_get_execution(store, prefix, &got, &err), 0);
	assert_string_equal(got->id, b->id);
	cod_execution_free(got);
	expect_error(cod_store_get_execution(store, "e-", &got, &err), &err, COD_E_BAD_REQUEST, "ambiguous");
	expect_error(cod_store_get_execution(store, "e-zzz", &got, &err), &err, COD_E_NOT_FOUND, "e-zzz");

	cod_execution_free(a);
	cod_execution_free(b);
	cod_execution_free(c);

	/* By node: the live executions only, whichever state they are in
	 * (the index's list of terminal states matches the model's). */
	size_t live = 0;
	for (int st = COD_EXEC_UNDEFINED; st <= COD_EXEC_PREPARING; st++) {
		struct cod_execution *x = new_exec(id, "node-s", 1);
		x->compute_state.type = st;
		assert_int_equal(cod_store_put_execution(store, x, &err), 0);
		live += !cod_exec_state_terminal((enum cod_exec_state)st);
		cod_execution_free(x);
	}
	q = (struct cod_exec_query){.node_id = "node-s"};
	assert_int_equal(cod_store_list_executions(store, &q, &page, &err), 0);
	assert_int_equal(page.n, live);
	for (size_t i = 0; i < page.n; i++)
		assert_false(cod_exec_state_terminal((enum cod_exec_state)page.items[i]->compute_state.type));
	cod_exec_page_release(&page);

	free(id);
	cod_store_close(store);
}

static struct cod_node_state *new_node(const char *id)
{
	struct cod_node_state *n = xcalloc(1, sizeof(*n));
	n->info.node_id = xstrdup(id);
	n->info.node_type = xstrdup("Compute");
	n->membership = COD_NODE_APPROVED;
	n->connection = COD_NODE_CONNECTED;
	cod_kvlist_set(&n->info.labels, "zone", "a");
	return n;
}

static void test_nodes(void **state)
{
	(void)state;
	struct cod_store *store = open_store(NULL);
	struct cod_error *err = NULL;
	const char *ids[] = {"node-1", "node-10", "abc"};
	for (size_t i = 0; i < 3; i++) {
		struct cod_node_state *n = new_node(ids[i]);
		assert_int_equal(cod_store_put_node(store, n, &err), 0);
		cod_node_free(n);
	}
	/* Update in place. */
	struct cod_node_state *n = new_node("abc");
	n->membership = COD_NODE_REJECTED;
	assert_int_equal(cod_store_put_node(store, n, &err), 0);
	cod_node_free(n);

	struct cod_node_state *got;
	assert_int_equal(cod_store_get_node(store, "node-1", &got, &err), 0);
	assert_string_equal(got->info.node_id, "node-1");
	assert_string_equal(cod_kvlist_get(&got->info.labels, "zone"), "a");
	cod_node_free(got);
	assert_int_equal(cod_store_get_node(store, "ab", &got, &err), 0);
	assert_string_equal(got->info.node_id, "abc");
	assert_int_equal(got->membership, COD_NODE_REJECTED);
	cod_node_free(got);
	assert_int_equal(cod_store_get_node(store, "node-", &got, &err), -1);
	assert_int_equal(err->code, COD_E_BAD_REQUEST);
	assert_non_null(strstr(err->message, "node-1"));
	assert_non_null(strstr(err->message, "node-10"));
	cod_error_free(err);
	err = NULL;
	assert_int_equal(cod_store_get_node(store, "zzz", &got, &err), -1);
	assert_int_equal(err->code, COD_E_NOT_FOUND);
	assert_non_null(err->hint);
	cod_error_free(err);
	err = NULL;

	struct cod_node_state **list;
	size_t count;
	assert_int_equal(cod_store_list_nodes(store, &list, &count, &err), 0);
	assert_int_equal(count, 3);
	assert_string_equal(list[0]->info.node_id, "abc");
	assert_string_equal(list[1]->info.node_id, "node-1");
	assert_string_equal(list[2]->info.node_id, "node-10");
	for (size_t i = 0; i < count; i++)
		cod_node_free(list[i]);
	free(list);

	assert_int_equal(cod_store_delete_node(store, "node-10", &err), 0);
	expect_error(cod_store_delete_node(store, "node-10", &err), &err, COD_E_NOT_FOUND, "node-10");
	assert_int_equal(cod_store_list_nodes(store, &list, &count, &err), 0);
	assert_int_equal(count, 2);
	for (size_t i = 0; i < count; i++)
		cod_node_free(list[i]);
	free(list);
	/* Now unique. */
	assert_int_equal(cod_store_get_node(store, "node-", &got, &err), 0);
	cod_node_free(got);

	struct cod_node_state *bad = new_node("");
	expect_error(cod_store_put_node(store, bad, &err), &err, COD_E_BAD_REQUEST, NULL);
	cod_node_free(bad);
	cod_store_close(store);
}

static void free_msgs(struct cod_outbox_msg *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cod_outbox_msg_release(&m[i]);
	free(m);
}

static void test_outbox(void **state)
{
	(void)state;
	struct cod_store *store = open_store(NULL);
	struct cod_error *err = NULL;
	uint64_t seq;
	char payload[32];
	for (int i = 1; i <= 3; i++) {
		snprintf(payload, sizeof(payload), "{\"n\":%d}", i);
		assert_int_equal(cod_store_outbox_append(store, "n1", "AskForBid", payload, &seq, &err), 0);
		assert_int_equal(seq, (uint64_t)i);
	}
	assert_int_equal(cod_store_outbox_append(store, "n2", "BidAccepted", "{}", &seq, &err), 0);
	assert_int_equal(seq, 1);
	assert_int_equal(cod_store_outbox_append(store, "n2", "BidAccepted", "{}", &seq, &err), 0);
	assert_int_equal(seq, 2);

	struct cod_outbox_msg *m;
	size_t n;
	assert_int_equal(cod_store_outbox_pending(store, "n1", 0, 0, &m, &n, &err), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(m[i].seq, i + 1);
		assert_string_equal(m[i].node_id, "n1");
		assert_string_equal(m[i].type, "AskForBid");
		snprintf(payload, sizeof(payload), "{\"n\":%zu}", i + 1);
		assert_string_equal(m[i].payload, payload);
		assert_true(m[i].create_time > 0);
	}
	free_msgs(m, n);

	assert_int_equal(cod_store_outbox_pending(store, "n1", 1, 1, &m, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(m[0].seq, 2);
	free_msgs(m, n);

	assert_int_equal(cod_store_outbox_ack(store, "n1", 2, &err), 0);
	assert_int_equal(cod_store_outbox_pending(store, "n1", 0, 10, &m, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(m[0].seq, 3);
	free_msgs(m, n);

	/* n2 is untouched by n1's ack. */
	assert_int_equal(cod_store_outbox_pending(store, "n2", 0, 0, &m, &n, &err), 0);
	assert_int_equal(n, 2);
	free_msgs(m, n);

	/* Sequence numbers never go back, even with everything acknowledged. */
	assert_int_equal(cod_store_outbox_ack(store, "n1", 3, &err), 0);
	assert_int_equal(cod_store_outbox_pending(store, "n1", 0, 0, &m, &n, &err), 0);
	assert_int_equal(n, 0);
	free_msgs(m, n);
	assert_int_equal(cod_store_outbox_append(store, "n1", "AskForBid", "{}", &seq, &err), 0);
	assert_int_equal(seq, 4);
	assert_int_equal(cod_store_outbox_pending(store, "nobody", 0, 0, &m, &n, &err), 0);
	assert_int_equal(n, 0);
	free_msgs(m, n);
	cod_store_close(store);
}

/* cod_store_tx_outbox_rebase in a transaction of its own, gap 100. */
static int rebase(struct cod_store *store, const char *node, uint64_t acked, uint64_t *base)
{
	struct cod_store_tx *tx = NULL;
	struct cod_error *err = NULL;
	assert_int_equal(cod_store_begin(store, &tx, &err), 0);
	if (cod_store_tx_outbox_rebase(tx, node, acked, 100, base, &err) < 0) {
		cod_store_rollback(tx);
		cod_error_free(err);
		return -1;
	}
	return cod_store_commit(tx, NULL);
}

/* node's pending messages: n of them, numbered first, first+1, ... */
static void expect_pending(struct cod_store *store, const char *node, size_t n, uint64_t first)
{
	struct cod_outbox_msg *m;
	size_t got;
	struct cod_error *err = NULL;
	assert_int_equal(cod_store_outbox_pending(store, node, 0, 0, &m, &got, &err), 0);
	assert_int_equal(got, n);
	for (size_t i = 0; i < got; i++)
		assert_int_equal(m[i].seq, first + i);
	free_msgs(m, got);
}

/* A restart renumbers what is left after a gap, in order, without holes;
 * what was acknowledged goes. */
static void test_outbox_rebase(void **state)
{
	(void)state;
	struct cod_store *store = open_store(NULL);
	struct cod_error *err = NULL;
	uint64_t seq, base;
	char payload[32];
	for (int i = 1; i <= 5; i++) {
		snprintf(payload, sizeof(payload), "{\"n\":%d}", i);
		assert_int_equal(cod_store_outbox_append(store, "n1", "AskForBid", payload, &seq, &err), 0);
	}
	assert_int_equal(cod_store_outbox_append(store, "n2", "BidAccepted", "{}", &seq, &err), 0);
	assert_int_equal(rebase(store, "n1", 2, &base), 0);
	assert_int_equal(base, 105);
	expect_pending(store, "n1", 3, 106);
	struct cod_outbox_msg *m;
	size_t n;
	assert_int_equal(cod_store_outbox_pending(store, "n1", 0, 0, &m, &n, &err), 0);
	for (size_t i = 0; i < n; i++) { /* in their order */
		snprintf(payload, sizeof(payload), "{\"n\":%zu}", i + 3);
		assert_string_equal(m[i].payload, payload);
	}
	free_msgs(m, n);
	assert_int_equal(cod_store_outbox_append(store, "n1", "AskForBid", "{}", &seq, &err), 0);
	assert_int_equal(seq, 109);
	/* again, with an acknowledged position older than the rows (a node
	 * that did not shake hands in between): the rows still follow the
	 * new base at once */
	assert_int_equal(rebase(store, "n1", 2, &base), 0);
	assert_int_equal(base, 209);
	expect_pending(store, "n1", 4, 210);
	/* everything acknowledged: nothing left, numbering still moves on */
	assert_int_equal(rebase(store, "n1", 213, &base), 0);
	assert_int_equal(base, 313);
	expect_pending(store, "n1", 0, 0);
	assert_int_equal(cod_store_outbox_append(store, "n1", "AskForBid", "{}", &seq, &err), 0);
	assert_int_equal(seq, 314);
	/* a node that saw further than this store numbered (the store was
	 * reset): what is pending, and what comes next, follow what it saw */
	bool moved = true;
	assert_int_equal(cod_store_outbox_catch_up(store, "n1", 314, &moved, &err), 0);
	assert_false(moved);
	assert_int_equal(cod_store_outbox_catch_up(store, "n1", 1000, &moved, &err), 0);
	assert_true(moved);
	expect_pending(store, "n1", 1, 1001);
	assert_int_equal(cod_store_outbox_append(store, "n1", "AskForBid", "{}", &seq, &err), 0);
	assert_int_equal(seq, 1002);
	assert_int_equal(cod_store_outbox_catch_up(store, "fresh", 50, &moved, &err), 0);
	assert_true(moved);
	assert_int_equal(cod_store_outbox_append(store, "fresh", "AskForBid", "{}", &seq, &err), 0);
	assert_int_equal(seq, 51);
	/* a node never sent anything keeps its position; others are untouched */
	assert_int_equal(rebase(store, "nobody", 7, &base), 0);
	assert_int_equal(base, 7);
	expect_pending(store, "n2", 1, 1);
	cod_store_close(store);
}

static void test_transactions(void **state)
{
	(void)state;
	struct cod_store *store = open_store(NULL);
	struct cod_error *err = NULL;
	char *id = submit(store, "planned", NULL);
	struct cod_store_tx *tx;

	/* Rolled back: nothing of it remains. */
	struct cod_execution *e = new_exec(id, "n1", 1);
	assert_int_equal(cod_store_begin(store, &tx, &err), 0);
	assert_int_equal(cod_store_tx_put_execution(tx, e, &err), 0);
	assert_int_equal(cod_store_tx_set_job_state(tx, id, COD_JOB_RUNNING, NULL, 1, &err), 0);
	/* This reads (and caches) revision 2 as written here; the revision 2
	 * committed below is another row, which the cache must not mistake
	 * for this one (it is keyed by the document's whole text). */
	assert_int_equal(cod_store_tx_set_job_state(tx, id, COD_JOB_RUNNING, "rolled back", 2, &err), 0);
	assert_int_equal(cod_store_tx_outbox_append(tx, "n1", "AskForBid", "{}", NULL, &err), 0);
	struct cod_history_event h = {.job_id = id, .job_version = 1, .message = (char *)"planned"};
	assert_int_equal(cod_store_tx_add_history(tx, &h, &err), 0);
	struct cod_evaluation ev = {
	    .job_id = id, .triggered_by = (char *)"exec-update", .status = (char *)"pending"};
	assert_int_equal(cod_store_tx_put_evaluation(tx, &ev, &err), 0);
	cod_store_rollback(tx);
	free(ev.id);
	free(ev.namespace_);

	struct cod_exec_page page;
	struct cod_exec_query q = {.job_ref = id, .all_versions = true};
	assert_int_equal(cod_store_list_executions(store, &q, &page, &err), 0);
	assert_int_equal(page.n, 0);
	cod_exec_page_release(&page);
	struct cod_job *job = get_job(store, NULL, id, 0);
	assert_int_equal(job->state.type, COD_JOB_PENDING);
	assert_int_equal(job->revision, 1);
	cod_job_free(job);
	struct cod_outbox_msg *m;
	size_t n;
	assert_int_equal(cod_store_outbox_pending(store, "n1", 0, 0, &m, &n, &err), 0);
	assert_int_equal(n, 0);
	free_msgs(m, n);
	assert_int_equal(count_history(store, id, true), 1);
	assert_int_equal(count_pending_evals(store), 1);

	/* Committed: all of it. */
	free(e->id);
	e->id = NULL;
	assert_int_equal(cod_store_begin(store, &tx, &err), 0);
	assert_int_equal(cod_store_tx_put_execution(tx, e, &err), 0);
	assert_int_equal(cod_store_tx_set_job_state(tx, id, COD_JOB_RUNNING, "go", 1, &err), 0);
	uint64_t seq = 0;
	assert_int_equal(cod_store_tx_outbox_append(tx, "n1", "AskForBid", "{}", &seq, &err), 0);
	assert_int_equal(seq, 1); /* the rolled-back number is handed out again */
	assert_int_equal(cod_store_commit(tx, &err), 0);
	job = get_job(store, NULL, id, 0);
	assert_int_equal(job->state.type, COD_JOB_RUNNING);
	assert_string_equal(job->state.message, "go");
	assert_int_equal(job->revision, 2);
	cod_job_free(job);
	assert_int_equal(cod_store_list_executions(store, &q, &page, &err), 0);
	assert_int_equal(page.n, 1);
	cod_exec_page_release(&page);

	/* A stale expected revision is a conflict. */
	assert_int_equal(cod_store_begin(store, &tx, &err), 0);
	expect_error(cod_store_tx_set_job_state(tx, id, COD_JOB_COMPLETED, NULL, 1, &err), &err,
		     COD_E_CONFLICT, "revision");
	cod_store_rollback(tx);

	/* Evaluations: put, update, and the pending list. */
	struct cod_evaluation ev2 = {.job_id = id,
				     .triggered_by = (char *)"exec-update",
				     .status = (char *)"pending",
				     .type = (char *)"batch"};
	assert_int_equal(cod_store_put_evaluation(store, &ev2, &err), 0);
	assert_int_equal(count_pending_evals(store), 2);
	ev2.status = (char *)"complete";
	assert_int_equal(cod_store_put_evaluation(store, &ev2, &err), 0);
	assert_int_equal(count_pending_evals(store), 1);
	struct cod_evaluation *got;
	assert_int_equal(cod_store_get_evaluation(store, ev2.id, &got, &err), 0);
	assert_string_equal(got->status, "complete");
	cod_evaluation_free(got);
	free(ev2.id);
	free(ev2.namespace_);

	cod_execution_free(e);
	free(id);
	cod_store_close(store);
}

/* Several plans in one transaction: a part that fails is undone alone,
 * reads inside the transaction see its own writes, evaluations change
 * status in place, and a commit that does not wait is durable after a
 * sync (and after a reopen). */
/* A part for cod_store_tx_part: writes its execution and a message, runs
 * a nested part, then fails when asked to. */
struct part {
	struct cod_execution *e;
	bool fail;
	uint64_t seq;
	struct part *nested;
};

static int write_part(struct cod_store_tx *tx, void *arg, struct cod_error **err)
{
	struct part *p = arg;
	if (cod_store_tx_put_execution(tx, p->e, err) < 0 ||
	    cod_store_tx_outbox_append(tx, "n1", "AskForBid", "{}", &p->seq, err) < 0)
		return -1;
	if (p->nested) {
		struct cod_error *nerr = NULL;
		int rc = cod_store_tx_part(tx, write_part, p->nested, &nerr, err);
		cod_error_free(nerr);
		if (rc < 0)
			return -1;
	}
	if (p->fail)
		return cod_error_set(err, COD_E_BAD_REQUEST, "part refused");
	return 0;
}

static void test_transaction_parts(void **state)
{
	(void)state;
	char *path;
	struct cod_store *store = open_store(&path);
	struct cod_error *err = NULL;
	char *id = submit(store, "parts", NULL);
	struct cod_store_tx *tx;

	struct cod_execution *kept = new_exec(id, "n1", 1);
	struct cod_execution *undone = new_exec(id, "n1", 1);
	struct cod_execution *inner = new_exec(id, "n1", 1);
	struct part p_kept = {.e = kept}, p_undone = {.e = undone, .fail = true},
		    p_inner = {.e = inner, .fail = true};
	p_kept.nested = &p_inner; /* a failing part inside a kept one */
	struct cod_error *perr = NULL;
	assert_int_equal(cod_store_begin(store, &tx, &err), 0);
	assert_int_equal(cod_store_tx_part(tx, write_part, &p_kept, &perr, &err), 0);
	assert_null(perr);
	assert_int_equal(p_kept.seq, 1);
	assert_int_equal(p_inner.seq, 2);
	assert_int_equal(cod_store_tx_part(tx, write_part, &p_undone, &perr, &err), 1);
	assert_non_null(perr);
	assert_non_null(strstr(perr->message, "refused"));
	cod_error_free(perr);
	perr = NULL;
	/* the failing part had written its execution and a message (seq 2) */
	assert_int_equal(p_undone.seq, 2);
	struct cod_execution *got = NULL;
	expect_error(cod_store_tx_get_execution(tx, undone->id, &got, &err), &err, COD_E_NOT_FOUND, "not found");
	expect_error(cod_store_tx_get_execution(tx, inner->id, &got, &err), &err, COD_E_NOT_FOUND, "not found");
	uint64_t seq = 0;
	assert_int_equal(cod_store_tx_get_execution(tx, kept->id, &got, &err), 0);
	assert_int_equal(got->revision, 1);
	/* not stored with the execution: the job version it runs */
	assert_non_null(got->job);
	assert_string_equal(got->job->id, id);
	assert_int_equal(got->job->version, 1);
	cod_execution_free(got);
	/* the undone part's sequence number is handed out again */
	assert_int_equal(cod_store_tx_outbox_append(tx, "n1", "AskForBid", "{}", &seq, &err), 0);
	assert_int_equal(seq, 2);
	assert_int_equal(cod_store_commit(tx, &err), 0);
	struct cod_exec_page page;
	struct cod_exec_query q = {.job_ref = id, .all_versions = true};
	assert_int_equal(cod_store_list_executions(store, &q, &page, &err), 0);
	assert_int_equal(page.n, 1);
	assert_non_null(page.items[0]->job);
	assert_string_equal(page.items[0]->job->name, "parts");
	cod_exec_page_release(&page);
	assert_int_equal(cod_store_get_execution(store, kept->id, &got, &err), 0);
	assert_non_null(got->job);
	assert_string_equal(got->job->id, id);
	cod_execution_free(got);

	/* The submission's evaluation, completed in place; an unknown ID
	 * changes nothing. The commit does not wait for the sync. */
	assert_int_equal(count_pending_evals(store), 1);
	struct cod_evaluation **pending;
	size_t npending;
	assert_int_equal(cod_store_pending_evaluations(store, &pending, &npending, &err), 0);
	assert_int_equal(npending, 1);
	char *eval_id = xstrdup(pending[0]->id);
	for (size_t i = 0; i < npending; i++)
		cod_evaluation_free(pending[i]);
	free(pending);
	assert_int_equal(cod_store_begin(store, &tx, &err), 0);
	assert_int_equal(cod_store_tx_set_evaluation_status(tx, eval_id, "complete", &err), 0);
	assert_int_equal(cod_store_tx_set_evaluation_status(tx, "no-such-evaluation", "complete", &err), 0);
	assert_int_equal(cod_store_commit_nowait(tx, &err), 0);
	assert_int_equal(cod_store_sync(store, &err), 0);
	assert_int_equal(count_pending_evals(store), 0);
	cod_store_close(store);

	assert_int_equal(cod_store_open(path, &store, &err), 0);
	struct cod_evaluation *ev;
	assert_int_equal(cod_store_get_evaluation(store, eval_id, &ev, &err), 0);
	assert_string_equal(ev->status, "complete");
	assert_true(ev->modify_time >= ev->create_time);
	cod_evaluation_free(ev);
	cod_store_close(store);
	free(eval_id);
	cod_execution_free(kept);
	cod_execution_free(undone);
	cod_execution_free(inner);
	free(id);
	free(path);
}

static void test_durability(void **state)
{
	(void)state;
	char *path;
	struct cod_store *store = open_store(&path);
	struct cod_error *err = NULL;
	char *id = submit(store, "lasting", NULL);
	char *eval = NULL;
	assert_int_equal(cod_store_stop_job(store, NULL, id, "bye", &eval, &err), 0);
	free(eval);
	struct cod_node_state *n = new_node("n1");
	assert_int_equal(cod_store_put_node(store, n, &err), 0);
	cod_node_free(n);
	assert_int_equal(cod_store_outbox_append(store, "n1", "T", "{}", NULL, &err), 0);
	int version = cod_store_schema_version(store);
	cod_store_close(store);

	assert_int_equal(cod_store_open(path, &store, &err), 0);
	assert_int_equal(cod_store_schema_version(store), version);
	struct cod_job *job = get_job(store, NULL, "lasting", 0);
	assert_string_equal(job->id, id);
	assert_int_equal(job->state.type, COD_JOB_STOPPED);
	cod_job_free(job);
	assert_int_equal(count_history(store, id, true), 2);
	assert_int_equal(count_pending_evals(store), 2);
	struct cod_node_state *got;
	assert_int_equal(cod_store_get_node(store, "n1", &got, &err), 0);
	cod_node_free(got);
	uint64_t seq;
	assert_int_equal(cod_store_outbox_append(store, "n1", "T", "{}", &seq, &err), 0);
	assert_int_equal(seq, 2);
	cod_store_close(store);
	free(id);
	free(path);
}

static void exec_raw(const char *path, const char *sql)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

static void test_failed_transaction_rolls_back(void **state)
{
	(void)state;
	char *path;
	struct cod_store *store = open_store(&path);
	struct cod_error *err = NULL;
	char *id = submit(store, "keep", NULL);

	/* The evaluation is written last: make it fail. */
	exec_raw(path, "CREATE TRIGGER fail_eval BEFORE INSERT ON evaluations "
		       "BEGIN SELECT RAISE(ABORT, 'injected failure'); END");

	struct cod_job *job = new_job("fresh", NULL);
	struct cod_submit_result res;
	expect_error(cod_store_submit_job(store, job, false, NULL, NULL, &res, &err), &err, COD_E_DATASTORE, "injected");
	assert_null(job->id);
	assert_int_equal(job->version, 0);
	assert_null(res.job_id);
	char *out = NULL;
	expect_error(cod_store_resolve_job(store, NULL, "fresh", &out, &err), &err, COD_E_NOT_FOUND, NULL);

	/* An update of an existing job: still version 1, one history event. */
	struct cod_job *upd = new_job("keep", NULL);
	upd->priority = 99;
	expect_error(cod_store_submit_job(store, upd, false, NULL, NULL, &res, &err), &err, COD_E_DATASTORE, "injected");
	struct cod_job *cur = get_job(store, NULL, id, 0);
	assert_int_equal(cur->version, 1);
	assert_int_equal(cur->priority, 5);
	cod_job_free(cur);
	assert_int_equal(count_history(store, id, true), 1);
	struct cod_job_page versions;
	assert_int_equal(cod_store_job_versions(store, NULL, id, &versions, &err), 0);
	assert_int_equal(versions.n, 1);
	cod_job_page_release(&versions);
	char *eval = NULL;
	expect_error(cod_store_stop_job(store, NULL, id, NULL, &eval, &err), &err, COD_E_DATASTORE,
		     "injected");
	assert_null(eval);
	cur = get_job(store, NULL, id, 0);
	assert_int_equal(cur->state.type, COD_JOB_PENDING);
	cod_job_free(cur);

	/* Once the fault is gone the same submissions go through. */
	exec_raw(path, "DROP TRIGGER fail_eval");
	assert_int_equal(cod_store_submit_job(store, job, false, NULL, NULL, &res, &err), 0);
	cod_submit_result_release(&res);
	assert_int_equal(cod_store_submit_job(store, upd, false, NULL, NULL, &res, &err), 0);
	assert_int_equal(res.version, 2);
	cod_submit_result_release(&res);
	assert_int_equal(count_jobs(store, NULL), 2);

	cod_job_free(job);
	cod_job_free(upd);
	free(id);
	free(path);
	cod_store_close(store);
}

struct submitter {
	struct cod_store *store;
	int thread;
	int n;
	int failures;
};

/* Run fn on `threads` submitters of per requests each; their failures. */
static int run_submitters(struct cod_store *store, void *(*fn)(void *), int threads, int per)
{
	struct submitter *subs = xcalloc((size_t)threads, sizeof(*subs));
	pthread_t *th = xcalloc((size_t)threads, sizeof(*th));
	for (int i = 0; i < threads; i++) {
		subs[i] = (struct submitter){.store = store, .thread = i, .n = per};
		assert_int_equal(pthread_create(&th[i], NULL, fn, &subs[i]), 0);
	}
	int failures = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		failures += subs[i].failures;
	}
	free(subs);
	free(th);
	return failures;
}

static void *submit_many(void *arg)
{
	struct submitter *s = arg;
	for (int i = 0; i < s->n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "t%d-%d", s->thread, i);
		struct cod_job *job = new_job(name, NULL);
		struct cod_submit_result res;
		struct cod_error *err = NULL;
		if (cod_store_submit_job(s->store, job, false, NULL, NULL, &res, &err) < 0) {
			s->failures++;
			cod_error_free(err);
			cod_job_free(job);
			continue;
		}
		/* Readers and other writers run alongside. */
		struct cod_execution *e = new_exec(res.job_id, name, 1);
		if (cod_store_put_execution(s->store, e, &err) < 0) {
			s->failures++;
			cod_error_free(err);
			err = NULL;
		}
		if (i % 20 == 0) {
			count_jobs(s->store, NULL);
			count_history(s->store, res.job_id, false);
			struct cod_exec_page page;
			struct cod_exec_query q = {.node_id = name};
			if (cod_store_list_executions(s->store, &q, &page, &err) < 0 || page.n != 1)
				s->failures++;
			cod_exec_page_release(&page);
			cod_error_free(err);
		}
		cod_execution_free(e);
		cod_submit_result_release(&res);
		cod_job_free(job);
	}
	return NULL;
}

static void test_concurrent_submits(void **state)
{
	(void)state;
	struct cod_store *store = open_store(NULL);
	enum { THREADS = 8, PER = 50 };
	assert_int_equal(run_submitters(store, submit_many, THREADS, PER), 0);

	struct cod_job_query q = {.limit = 0};
	struct cod_job_page page;
	struct cod_error *err = NULL;
	assert_int_equal(cod_store_list_jobs(store, &q, &page, &err), 0);
	assert_int_equal(page.n, THREADS * PER);
	char **ids = xcalloc(page.n, sizeof(*ids));
	for (size_t i = 0; i < page.n; i++)
		ids[i] = page.items[i]->id;
	qsort(ids, page.n, sizeof(*ids), cmp_str);
	for (size_t i = 1; i < page.n; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
	free(ids);
	cod_job_page_release(&page);
	assert_int_equal(count_pending_evals(store), THREADS * PER);
	cod_store_close(store);
}

/* Submissions from several threads share transactions: one that is
 * refused (an unchanged resubmission) fails alone, with its own error, and
 * the others commit. */
static void *resubmit_many(void *arg)
{
	struct submitter *s = arg;
	for (int i = 0; i < s->n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "r%d-%d", s->thread, i);
		for (int again = 0; again < 2; again++) {
			struct cod_job *job = new_job(name, NULL);
			struct cod_submit_result res;
			struct cod_error *err = NULL;
			int rc = cod_store_submit_job(s->store, job, false, NULL, NULL, &res, &err);
			if (!again && rc != 0)
				s->failures++;
			if (again && (rc != -1 || !err || err->code != COD_E_BAD_REQUEST || job->id))
				s->failures++;
			cod_error_free(err);
			if (rc == 0)
				cod_submit_result_release(&res);
			cod_job_free(job);
		}
	}
	return NULL;
}

static void test_shared_submits_fail_alone(void **state)
{
	(void)state;
	struct cod_store *store = open_store(NULL);
	enum { THREADS = 4, PER = 50 };
	assert_int_equal(run_submitters(store, resubmit_many, THREADS, PER), 0);
	assert_int_equal(count_jobs(store, NULL), THREADS * PER);
	assert_int_equal(count_pending_evals(store), THREADS * PER);
	cod_store_close(store);
}

/* What a store writes it keeps decoded (its document cache): what it then
 * hands out is what another store, decoding the same rows, reads. */
static void expect_same_json(json_t *a, json_t *b)
{
	if (!json_equal(a, b)) {
		char *ta = json_dumps(a, JSON_SORT_KEYS), *tb = json_dumps(b, JSON_SORT_KEYS);
		fail_msg("cached %s\ndecoded %s", ta, tb);
	}
	json_decref(a);
	json_decref(b);
}

static void test_written_documents_cached(void **state)
{
	(void)state;
	char *path;
	struct cod_store *store = open_store(&path);
	struct cod_error *err = NULL;
	const char *spec = "Name: cached\nType: batch\nCount: 2\nLabels: {a: b}\nMeta: {m: n}\n"
			   "Constraints: [{Key: zone, Operator: in, Values: [a, b]}]\n"
			   "Tasks:\n  - Name: main\n    Engine: {Type: docker, Params: {Image: busybox}}\n"
			   "    Publisher: {Type: local}\n    Env: {A: b}\n"
			   "    Resources: {CPU: 500m, Memory: 1Gb}\n"
			   "    Timeouts: {ExecutionTimeout: 10, QueueTimeout: 20}\n";
	struct cod_job *job = cod_job_parse(spec, strlen(spec), &err);
	assert_non_null(job);
	struct cod_submit_result res;
	assert_int_equal(cod_store_submit_job(store, job, false, NULL, NULL, &res, &err), 0);
	set_state(store, res.job_id, COD_JOB_RUNNING);

	struct cod_execution *e = new_exec(res.job_id, "node-a", 1);
	e->job = get_job(store, NULL, res.job_id, 0);
	e->alloc_task = xstrdup("main");
	e->allocated = (struct cod_resources){.cpu = 0.5, .memory = 1u << 30};
	e->compute_state = (struct cod_state_info){.type = COD_EXEC_COMPLETED, .message = xstrdup("done")};
	cod_kvlist_set(&e->compute_state.details, "k", "v");
	e->run_output.stdout_text = xstrdup("out\n");
	e->run_output.exit_code = 3;
	e->run_output.input_bytes = json_pack("{s:i, s:i}", "Local", 10, "Fetched", 0);
	e->published_result.type = xstrdup("local");
	e->published_result.params = json_pack("{s:s}", "URL", "file:///r");
	assert_int_equal(cod_store_put_execution(store, e, &err), 0);

	/* the same rows, decoded by a store that never wrote them */
	struct cod_store *other = NULL;
	assert_int_equal(cod_store_open(path, &other, &err), 0);
	for (uint64_t v = 0; v <= 1; v++) {
		struct cod_job *a = get_job(store, NULL, res.job_id, v),
			       *b = get_job(other, NULL, res.job_id, v);
		expect_same_json(cod_job_to_json(a), cod_job_to_json(b));
		cod_job_free(a);
		cod_job_free(b);
	}
	struct cod_execution *ea = NULL, *eb = NULL;
	assert_int_equal(cod_store_get_execution(store, e->id, &ea, &err), 0);
	assert_int_equal(cod_store_get_execution(other, e->id, &eb, &err), 0);
	assert_non_null(ea->job);
	expect_same_json(cod_execution_to_json(ea), cod_execution_to_json(eb));
	assert_string_equal(ea->run_output.stdout_text, "out\n");

	cod_execution_free(ea);
	cod_execution_free(eb);
	cod_execution_free(e);
	cod_submit_result_release(&res);
	cod_job_free(job);
	cod_store_close(other);
	cod_store_close(store);
	free(path);
}

/* ------------------------------------------------------------- setup */

TMPDIR_GROUP(tmp_root)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_and_migrations),
	    cmocka_unit_test(test_history_migration),
	    cmocka_unit_test(test_submit_new),
	    cmocka_unit_test(test_update_by_name),
	    cmocka_unit_test(test_unchanged_refused_and_force),
	    cmocka_unit_test(test_resolve),
	    cmocka_unit_test(test_namespaces),
	    cmocka_unit_test(test_list_pagination),
	    cmocka_unit_test(test_list_labels),
	    cmocka_unit_test(test_page_token),
	    cmocka_unit_test(test_stop),
	    cmocka_unit_test(test_rerun),
	    cmocka_unit_test(test_history_filters),
	    cmocka_unit_test(test_executions),
	    cmocka_unit_test(test_executions_with_job),
	    cmocka_unit_test(test_nodes),
	    cmocka_unit_test(test_outbox),
	    cmocka_unit_test(test_outbox_rebase),
	    cmocka_unit_test(test_transactions),
	    cmocka_unit_test(test_transaction_parts),
	    cmocka_unit_test(test_durability),
	    cmocka_unit_test(test_failed_transaction_rolls_back),
	    cmocka_unit_test(test_concurrent_submits),
	    cmocka_unit_test(test_shared_submits_fail_alone),
	    cmocka_unit_test(test_written_documents_cached),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
