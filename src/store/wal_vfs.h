/*
 * wal_vfs.h - an SQLite VFS over the default one that gathers the writes
 * of a WAL file into one system call per commit.
 *
 * SQLite writes each WAL frame as two writes, its 24-byte header and its
 * page, so a transaction of N pages costs 2N system calls. This VFS keeps
 * consecutive WAL writes in a buffer and writes them at once: when the
 * commit frame's page arrives (its header carries the database size, which
 * only a commit frame does), before any read, sync, truncate, size query
 * or file control, when a write does not follow the last, and when the
 * buffer is full; a commit frame's header with nothing buffered before it
 * (a checksum rewrite) is written at once. So every frame of a commit is in the file before SQLite
 * publishes the commit in the WAL index, as with the default VFS, and a
 * failed write is returned by the write that completes the commit. Every
 * other file (databases, journals) goes to the default VFS unchanged.
 */
#ifndef COD_STORE_WAL_VFS_H
#define COD_STORE_WAL_VFS_H

#include <stdint.h>

/* The VFS name for sqlite3_open_v2, registered on first use (not as the
 * default). NULL, with the default VFS used, if registration failed. The
 * first call also turns SQLite's memory statistics off (see wal_vfs.c), so
 * call it before anything else opens a database. */
const char *cod_wal_vfs(void);

/* Write system calls made for WAL files and the WAL writes SQLite asked
 * for, since the process started (for tests and benchmarks). */
struct cod_wal_vfs_stats {
	uint64_t syscalls;
	uint64_t writes;
};
void cod_wal_vfs_stats(struct cod_wal_vfs_stats *out);

#endif
