/*
 * wal_vfs.c - WAL writes gathered into one system call per commit (see
 * wal_vfs.h). A file of this VFS is the default VFS's file placed right
 * after our header; every method forwards to it, and the WAL's writes,
 * reads and the rest pass through the buffer first.
 *
 * A connection uses its files from one thread at a time, so a buffer needs
 * no lock: SQLite never shares one sqlite3_file between connections.
 */
#include "store/wal_vfs.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/banned.h"

#define WAL_VFS_NAME "cod-wal"

/* The most the default VFS writes in one call (it masks the length to 17
 * bits): about 31 frames of 4 KiB pages. malloc'd on the first WAL write. */
#define WAL_BUF_CAP 0x1ffff

/* The size of a WAL frame header; the page size of an SQLite database is at
 * least 512, so a 24-byte write to a WAL is always a frame header. */
#define FRAME_HEADER 24

struct wal_file {
	sqlite3_file base;
	sqlite3_file *real;
	bool wal;
	bool commit_page_next; /* the last write was a commit frame's header */
	unsigned char *buf;
	size_t len;
	sqlite3_int64 off; /* file offset of buf[0] */
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs wal_vfs;
static uint64_t stat_syscalls, stat_writes;

static int real_write(struct wal_file *f, const void *data, size_t len, sqlite3_int64 off)
{
	__atomic_add_fetch(&stat_syscalls, 1, __ATOMIC_RELAXED);
	return f->real->pMethods->xWrite(f->real, data, (int)len, off);
}

/* Write out the buffer. On failure the buffered frames are dropped: the
 * commit they belong to fails, and SQLite never publishes it. */
static int flush(struct wal_file *f)
{
	if (!f->len)
		return SQLITE_OK;
	int rc = real_write(f, f->buf, f->len, f->off);
	f->len = 0;
	return rc;
}

static int w_write(sqlite3_file *file, const void *data, int amt, sqlite3_int64 off)
{
	struct wal_file *f = (struct wal_file *)file;
	if (!f->wal)
		return f->real->pMethods->xWrite(f->real, data, amt, off);
	__atomic_add_fetch(&stat_writes, 1, __ATOMIC_RELAXED);
	size_t n = (size_t)amt;
	bool completes_commit = f->commit_page_next;
	/* bytes 4-7 of a frame header: the database size after a commit,
	 * zero in every other frame */
	const unsigned char *h = data;
	bool commit_header = amt == FRAME_HEADER && (h[4] | h[5] | h[6] | h[7]);
	f->commit_page_next = commit_header;
	int rc = SQLITE_OK;
	if (f->len && (off != f->off + (sqlite3_int64)f->len || f->len + n > WAL_BUF_CAP))
		rc = flush(f);
	if (rc != SQLITE_OK)
		return rc;
	/* A commit frame's header that follows nothing buffered is written at
	 * once: its page may never follow. SQLite rewrites the checksums of a
	 * transaction's frames at commit when it changed a page it had
	 * already spilled, header by header, the commit frame's last, and then
	 * publishes the commit; that header must not wait in the buffer. */
	if (n >= WAL_BUF_CAP || (commit_header && !f->len))
		return real_write(f, data, n, off);
	if (!f->buf)
		f->buf = xmalloc(WAL_BUF_CAP);
	if (!f->len)
		f->off = off;
	memcpy(f->buf + f->len, data, n);
	f->len += n;
	return completes_commit ? flush(f) : SQLITE_OK;
}

static int w_read(sqlite3_file *file, void *data, int amt, sqlite3_int64 off)
{
	struct wal_file *f = (struct wal_file *)file;
	int rc = flush(f);
	if (rc != SQLITE_OK)
		return rc;
	return f->real->pMethods->xRead(f->real, data, amt, off);
}

static int w_close(sqlite3_file *file)
{
	struct wal_file *f = (struct wal_file *)file;
	int rc = flush(f);
	int crc = f->real->pMethods->xClose(f->real);
	free(f->buf);
	f->buf = NULL;
	return rc != SQLITE_OK ? rc : crc;
}

static int w_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	struct wal_file *f = (struct wal_file *)file;
	int rc = flush(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int w_sync(sqlite3_file *file, int flags)
{
	struct wal_file *f = (struct wal_file *)file;
	int rc = flush(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int w_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	struct wal_file *f = (struct wal_file *)file;
	int rc = flush(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int w_file_control(sqlite3_file *file, int op, void *arg)
{
	struct wal_file *f = (struct wal_file *)file;
	int rc = flush(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

/* The rest only forward. */
#define REAL(file) (((struct wal_file *)(file))->real)

static int w_lock(sqlite3_file *file, int level)
{
	return REAL(file)->pMethods->xLock(REAL(file), level);
}

static int w_unlock(sqlite3_file *file, int level)
{
	return REAL(file)->pMethods->xUnlock(REAL(file), level);
}

static int w_check_reserved(sqlite3_file *file, int *out)
{
	return REAL(file)->pMethods->xCheckReservedLock(REAL(file), out);
}

static int w_sector_size(sqlite3_file *file)
{
	return REAL(file)->pMethods->xSectorSize(REAL(file));
}

static int w_device_characteristics(sqlite3_file *file)
{
	return REAL(file)->pMethods->xDeviceCharacteristics(REAL(file));
}

static int w_shm_map(sqlite3_file *file, int region, int size, int extend, void volatile **out)
{
	return REAL(file)->pMethods->xShmMap(REAL(file), region, size, extend, out);
}

static int w_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
	return REAL(file)->pMethods->xShmLock(REAL(file), offset, n, flags);
}

static void w_shm_barrier(sqlite3_file *file)
{
	REAL(file)->pMethods->xShmBarrier(REAL(file));
}

static int w_shm_unmap(sqlite3_file *file, int delete_flag)
{
	return REAL(file)->pMethods->xShmUnmap(REAL(file), delete_flag);
}

static int w_fetch(sqlite3_file *file, sqlite3_int64 off, int amt, void **out)
{
	return REAL(file)->pMethods->xFetch(REAL(file), off, amt, out);
}

static int w_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
	return REAL(file)->pMethods->xUnfetch(REAL(file), off, p);
}

static const sqlite3_io_methods wal_methods = {
    .iVersion = 3,
    .xClose = w_close,
    .xRead = w_read,
    .xWrite = w_write,
    .xTruncate = w_truncate,
    .xSync = w_sync,
    .xFileSize = w_file_size,
    .xLock = w_lock,
    .xUnlock = w_unlock,
    .xCheckReservedLock = w_check_reserved,
    .xFileControl = w_file_control,
    .xSectorSize = w_sector_size,
    .xDeviceCharacteristics = w_device_characteristics,
    .xShmMap = w_shm_map,
    .xShmLock = w_shm_lock,
    .xShmBarrier = w_shm_barrier,
    .xShmUnmap = w_shm_unmap,
    .xFetch = w_fetch,
    .xUnfetch = w_unfetch,
};

static int v_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags, int *out_flags)
{
	(void)vfs;
	struct wal_file *f = (struct wal_file *)file;
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(f + 1);
	int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
	if (rc != SQLITE_OK || !f->real->pMethods) {
		file->pMethods = NULL; /* SQLite will not close it */
		return rc;
	}
	f->wal = (flags & SQLITE_OPEN_WAL) != 0;
	file->pMethods = &wal_methods;
	return SQLITE_OK;
}

/* The VFS methods that do not touch a file forward to the default VFS. */
static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	(void)vfs;
	return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *v_dlopen(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return real_vfs->xDlOpen(real_vfs, name);
}

static void v_dlerror(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	real_vfs->xDlError(real_vfs, n, out);
}

static void (*v_dlsym(sqlite3_vfs *vfs, void *handle, const char *sym))(void)
{
	(void)vfs;
	return real_vfs->xDlSym(real_vfs, handle, sym);
}

static void v_dlclose(sqlite3_vfs *vfs, void *handle)
{
	(void)vfs;
	real_vfs->xDlClose(real_vfs, handle);
}

static int v_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return real_vfs->xRandomness(real_vfs, n, out);
}

static int v_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return real_vfs->xSleep(real_vfs, us);
}

static int v_current_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return real_vfs->xCurrentTime(real_vfs, out);
}

static int v_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return real_vfs->xGetLastError(real_vfs, n, out);
}

static int v_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static int v_set_syscall(sqlite3_vfs *vfs, const char *name, sqlite3_syscall_ptr p)
{
	(void)vfs;
	return real_vfs->xSetSystemCall(real_vfs, name, p);
}

static sqlite3_syscall_ptr v_get_syscall(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return real_vfs->xGetSystemCall(real_vfs, name);
}

static const char *v_next_syscall(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return real_vfs->xNextSystemCall(real_vfs, name);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool registered;

static void register_vfs(void)
{
	/* No memory statistics: nothing in cod reads them, and keeping them
	 * takes one global mutex at every SQLite allocation, which threads
	 * writing and reading the store at once contend for. Only possible
	 * before SQLite is initialized; otherwise it stays as it is. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (sqlite3_initialize() != SQLITE_OK)
		return;
	real_vfs = sqlite3_vfs_find(NULL);
	/* the file methods forward to version 3 methods (shared memory,
	 * memory map); an older default VFS is used as it is */
	if (!real_vfs || real_vfs->iVersion < 3)
		return;
	wal_vfs = (sqlite3_vfs){
	    .iVersion = 3,
	    .szOsFile = (int)sizeof(struct wal_file) + real_vfs->szOsFile,
	    .mxPathname = real_vfs->mxPathname,
	    .zName = WAL_VFS_NAME,
	    .xOpen = v_open,
	    .xDelete = v_delete,
	    .xAccess = v_access,
	    .xFullPathname = v_full_pathname,
	    .xDlOpen = v_dlopen,
	    .xDlError = v_dlerror,
	    .xDlSym = v_dlsym,
	    .xDlClose = v_dlclose,
	    .xRandomness = v_randomness,
	    .xSleep = v_sleep,
	    .xCurrentTime = v_current_time,
	    .xGetLastError = v_last_error,
	    .xCurrentTimeInt64 = v_current_time64,
	    .xSetSystemCall = v_set_syscall,
	    .xGetSystemCall = v_get_syscall,
	    .xNextSystemCall = v_next_syscall,
	};
	registered = sqlite3_vfs_register(&wal_vfs, 0) == SQLITE_OK;
}

const char *cod_wal_vfs(void)
{
	pthread_once(&once, register_vfs);
	return registered ? WAL_VFS_NAME : NULL;
}

void cod_wal_vfs_stats(struct cod_wal_vfs_stats *out)
{
	out->syscalls = __atomic_load_n(&stat_syscalls, __ATOMIC_RELAXED);
	out->writes = __atomic_load_n(&stat_writes, __ATOMIC_RELAXED);
}
