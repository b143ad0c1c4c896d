/*
 * test_wal_vfs.c - the VFS that gathers WAL writes (src/store/wal_vfs.c):
 * a commit is in the WAL file when COMMIT returns, readable by a connection
 * of the default VFS; frames written before the commit (a spilled cache)
 * read back right inside the transaction and vanish on rollback; a failed
 * write fails the commit and leaves the database as it was; and the writes
 * take far fewer system calls than SQLite asks for.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include "store/wal_vfs.h"
#include "common/banned.h"

static char tmp_root[] = "/tmp/cod-test-walvfs-XXXXXX";

static void db_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s.db", tmp_root, name);
}

static sqlite3 *open_db(const char *path, const char *vfs)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;", NULL, NULL, NULL),
			 SQLITE_OK);
	return db;
}

/* A read-only connection of the default VFS: what any other reader of
 * the files sees. */
static sqlite3 *open_reader(const char *path)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	return db;
}

static int64_t count(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* rows of 300 random bytes: about 13 to a 4 KiB page */
#define INSERT_ROWS(n)                                                                                       \
	"INSERT INTO t (x) SELECT randomblob(300) FROM (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL "         \
	"SELECT i + 1 FROM c WHERE i < " #n ") SELECT i FROM c);"

static void test_commit_visible_to_default_vfs(void **state)
{
	(void)state;
	assert_non_null(cod_wal_vfs());
	char path[256];
	db_path(path, sizeof(path), "visible");
	sqlite3 *w = open_db(path, cod_wal_vfs());
	assert_int_equal(sqlite3_exec(w, "CREATE TABLE t (id INTEGER PRIMARY KEY, x BLOB);", NULL, NULL, NULL),
			 SQLITE_OK);
	struct cod_wal_vfs_stats before, after;
	cod_wal_vfs_stats(&before);
	assert_int_equal(sqlite3_exec(w, "BEGIN;" INSERT_ROWS(3000) "COMMIT;", NULL, NULL, NULL), SQLITE_OK);
	cod_wal_vfs_stats(&after);
	/* about 230 pages, two writes each, gathered about 31 frames a call */
	uint64_t writes = after.writes - before.writes, calls = after.syscalls - before.syscalls;
	assert_true(writes > 400);
	assert_true(calls > 0 && calls * 10 < writes);

	/* the writer's connection stays open, its buffer empty: a reader of
	 * the default VFS reads the frames from the file */
	sqlite3 *r = open_reader(path);
	assert_int_equal(count(r, "SELECT count(*) FROM t"), 3000);
	assert_int_equal(count(r, "SELECT count(*) FROM t WHERE length(x) = 300"), 3000);
	assert_int_equal(sqlite3_exec(w, "INSERT INTO t (x) VALUES (zeroblob(10));", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(count(r, "SELECT count(*) FROM t"), 3001);
	sqlite3_close(r);
	sqlite3_close(w);

	/* and after closing, from the database and WAL alone */
	r = open_db(path, NULL);
	assert_int_equal(count(r, "SELECT count(*) FROM t"), 3001);
	sqlite3_close(r);
}

static void test_spill_read_back_and_rollback(void **state)
{
	(void)state;
	char path[256];
	db_path(path, sizeof(path), "spill");
	sqlite3 *w = open_db(path, cod_wal_vfs());
	/* a cache of 20 pages: a large transaction writes frames before its
	 * commit and reads them back */
	assert_int_equal(sqlite3_exec(w,
				      "PRAGMA cache_size = 20; CREATE TABLE t (id INTEGER PRIMARY KEY, x BLOB);"
				      "BEGIN;" INSERT_ROWS(2000),
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(count(w, "SELECT count(*) FROM t WHERE length(x) = 300"), 2000);
	assert_int_equal(sqlite3_exec(w, "ROLLBACK;", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(count(w, "SELECT count(*) FROM t"), 0);

	sqlite3 *r = open_reader(path);
	assert_int_equal(count(r, "SELECT count(*) FROM t"), 0);
	/* frames after the rolled-back ones: written over them */
	assert_int_equal(sqlite3_exec(w, "BEGIN;" INSERT_ROWS(1500) "COMMIT;", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(count(r, "SELECT count(*) FROM t WHERE length(x) = 300"), 1500);
	sqlite3_close(r);
	sqlite3_close(w);
}

static void copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	assert_non_null(in);
	assert_non_null(out);
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

/* A transaction that spilled frames and then changed a spilled page again
 * rewrites frame checksums at commit: headers alone, the commit frame's
 * last. What a crash leaves (the files as they are on disk, while the
 * writer is still open) must recover to the committed state. */
static void test_checksum_rewrite_on_disk(void **state)
{
	(void)state;
	char path[256], copy[256], wal[300], copy_wal[300];
	db_path(path, sizeof(path), "rewrite");
	db_path(copy, sizeof(copy), "rewrite-copy");
	snprintf(wal, sizeof(wal), "%s-wal", path);
	snprintf(copy_wal, sizeof(copy_wal), "%s-wal", copy);
	sqlite3 *w = open_db(path, cod_wal_vfs());
	assert_int_equal(sqlite3_exec(w,
				      "PRAGMA cache_size = 20; CREATE TABLE t (id INTEGER PRIMARY KEY, x BLOB);"
				      "BEGIN;" INSERT_ROWS(2000) "UPDATE t SET x = zeroblob(300) WHERE id <= 100;"
				      "COMMIT;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	copy_file(path, copy);
	copy_file(wal, copy_wal);
	sqlite3 *r = open_reader(copy);
	assert_int_equal(count(r, "SELECT count(*) FROM t"), 2000);
	assert_int_equal(count(r, "SELECT count(*) FROM t WHERE x = zeroblob(300)"), 100);
	sqlite3_close(r);
	sqlite3_close(w);
}

/* pwrite64 of the default VFS, failing while fail_writes is set */
static sqlite3_syscall_ptr real_pwrite;
static int fail_writes;

static ssize_t failing_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (fail_writes) {
		errno = ENOSPC;
		return -1;
	}
	return ((ssize_t(*)(int, const void *, size_t, off_t))real_pwrite)(fd, buf, n, off);
}

static void test_failed_write_fails_commit(void **state)
{
	(void)state;
	sqlite3_vfs *def = sqlite3_vfs_find(NULL);
	real_pwrite = def->xGetSystemCall(def, "pwrite64");
	if (!real_pwrite) {
		print_message("skipped: the default VFS has no pwrite64 to fail\n");
		return;
	}
	char path[256];
	db_path(path, sizeof(path), "fail");
	sqlite3 *w = open_db(path, cod_wal_vfs());
	assert_int_equal(sqlite3_exec(w, "CREATE TABLE t (id INTEGER PRIMARY KEY, x BLOB);" INSERT_ROWS(100), NULL,
				      NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(def->xSetSystemCall(def, "pwrite64", (sqlite3_syscall_ptr)failing_pwrite), SQLITE_OK);
	fail_writes = 1;
	int rc = sqlite3_exec(w, "BEGIN;" INSERT_ROWS(500) "COMMIT;", NULL, NULL, NULL);
	fail_writes = 0;
	assert_int_equal(def->xSetSystemCall(def, "pwrite64", real_pwrite), SQLITE_OK);
	assert_int_equal(rc & 0xff, SQLITE_FULL);
	sqlite3_exec(w, "ROLLBACK;", NULL, NULL, NULL);

	sqlite3 *r = open_reader(path);
	assert_int_equal(count(r, "SELECT count(*) FROM t"), 100);
	/* the writer goes on */
	assert_int_equal(sqlite3_exec(w, "BEGIN;" INSERT_ROWS(50) "COMMIT;", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(count(r, "SELECT count(*) FROM t"), 150);
	sqlite3_close(r);
	sqlite3_close(w);
}

TMPDIR_GROUP(tmp_root)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_commit_visible_to_default_vfs),
	    cmocka_unit_test(test_spill_read_back_and_rollback),
	    cmocka_unit_test(test_checksum_rewrite_on_disk),
	    cmocka_unit_test(test_failed_write_fails_commit),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
