/*
 * lazy_archive.c - libarchive, loaded on first use (see lazylib.h).
 *
 * Without the library, archive_read_new() and friends return NULL, every
 * call on a NULL archive fails with ARCHIVE_FATAL, and
 * archive_error_string() names the missing library.
 */
#include <archive.h>
#include <archive_entry.h>

#include "common/lazylib.h"
#include "common/banned.h"

#ifndef COD_SONAME_ARCHIVE
#define COD_SONAME_ARCHIVE "libarchive.so.13"
#endif

typedef struct archive *ar_t;
typedef struct archive_entry *ae_t;

#define ARCHIVE_FNS(F, V, P)                                                                                   \
	F(ar_t, archive_read_new, (void), (), NULL)                                                            \
	F(int, archive_read_support_filter_all, (ar_t a), (a), ARCHIVE_FATAL)                                  \
	F(int, archive_read_support_format_tar, (ar_t a), (a), ARCHIVE_FATAL)                                  \
	F(int, archive_read_support_format_gnutar, (ar_t a), (a), ARCHIVE_FATAL)                               \
	F(int, archive_read_open_filename, (ar_t a, const char *f, size_t bs), (a, f, bs), ARCHIVE_FATAL)      \
	F(int, archive_read_next_header, (ar_t a, ae_t * e), (a, e), ARCHIVE_FATAL)                            \
	F(int, archive_read_data_block, (ar_t a, const void **b, size_t *n, la_int64_t *o), (a, b, n, o),      \
	  ARCHIVE_FATAL)                                                                                       \
	F(int, archive_read_free, (ar_t a), (a), ARCHIVE_FATAL)                                                \
	F(ar_t, archive_write_new, (void), (), NULL)                                                           \
	F(ar_t, archive_write_disk_new, (void), (), NULL)                                                      \
	F(int, archive_write_disk_set_options, (ar_t a, int flags), (a, flags), ARCHIVE_FATAL)                 \
	F(int, archive_write_add_filter_gzip, (ar_t a), (a), ARCHIVE_FATAL)                                    \
	F(int, archive_write_add_filter_zstd, (ar_t a), (a), ARCHIVE_FATAL)                                    \
	F(int, archive_write_set_format_pax_restricted, (ar_t a), (a), ARCHIVE_FATAL)                          \
	F(int, archive_write_open_filename, (ar_t a, const char *f), (a, f), ARCHIVE_FATAL)                    \
	F(int, archive_write_header, (ar_t a, ae_t e), (a, e), ARCHIVE_FATAL)                                  \
	F(la_ssize_t, archive_write_data, (ar_t a, const void *b, size_t n), (a, b, n), ARCHIVE_FATAL)         \
	F(la_ssize_t, archive_write_data_block, (ar_t a, const void *b, size_t n, la_int64_t o), (a, b, n, o), \
	  ARCHIVE_FATAL)                                                                                       \
	F(int, archive_write_finish_entry, (ar_t a), (a), ARCHIVE_FATAL)                                       \
	F(int, archive_write_close, (ar_t a), (a), ARCHIVE_FATAL)                                              \
	F(int, archive_write_free, (ar_t a), (a), ARCHIVE_FATAL)                                               \
	P(const char *, archive_error_string, (ar_t))                                                          \
	F(ae_t, archive_entry_new, (void), (), NULL)                                                           \
	V(archive_entry_free, (ae_t e), (e))                                                                   \
	F(__LA_MODE_T, archive_entry_filetype, (ae_t e), (e), 0)                                               \
	F(__LA_MODE_T, archive_entry_mode, (ae_t e), (e), 0)                                                   \
	F(__LA_MODE_T, archive_entry_perm, (ae_t e), (e), 0)                                                   \
	F(la_int64_t, archive_entry_uid, (ae_t e), (e), 0)                                                     \
	F(la_int64_t, archive_entry_gid, (ae_t e), (e), 0)                                                     \
	F(la_int64_t, archive_entry_size, (ae_t e), (e), 0)                                                    \
	F(time_t, archive_entry_mtime, (ae_t e), (e), 0)                                                       \
	F(long, archive_entry_mtime_nsec, (ae_t e), (e), 0)                                                    \
	F(dev_t, archive_entry_rdev, (ae_t e), (e), 0)                                                         \
	F(const char *, archive_entry_pathname, (ae_t e), (e), NULL)                                           \
	F(const char *, archive_entry_hardlink, (ae_t e), (e), NULL)                                           \
	F(const char *, archive_entry_symlink, (ae_t e), (e), NULL)                                            \
	V(archive_entry_set_filetype, (ae_t e, unsigned int t), (e, t))                                        \
	V(archive_entry_set_mode, (ae_t e, __LA_MODE_T m), (e, m))                                             \
	V(archive_entry_set_perm, (ae_t e, __LA_MODE_T m), (e, m))                                             \
	V(archive_entry_set_size, (ae_t e, la_int64_t n), (e, n))                                              \
	V(archive_entry_set_mtime, (ae_t e, time_t s, long ns), (e, s, ns))                                    \
	V(archive_entry_set_pathname, (ae_t e, const char *p), (e, p))                                         \
	V(archive_entry_set_hardlink, (ae_t e, const char *p), (e, p))                                         \
	V(archive_entry_set_symlink, (ae_t e, const char *p), (e, p))

COD_LAZYLIB(COD_SONAME_ARCHIVE, ARCHIVE_FNS)

const char *cod_lazy_archive_error(void)
{
	return cod_lazylib_error(&lazy_lib);
}

const char *archive_error_string(struct archive *a)
{
	if (!cod_lazylib_load(&lazy_lib))
		return lazy_lib.error;
	return a ? lazy_archive_error_string(a) : "no archive";
}
