/*
 * archive.c - results as tar.gz (libarchive): written by the local and S3
 * publishers, read back by `cod job get`. Extraction is defensive: the
 * archive comes from a compute node, which a client need not trust.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/util.h"
#include "publisher/publisher.h"
#include "common/banned.h"

static int add_tree(struct archive *a, const char *root, const char *rel, struct cod_error **err)
{
	cleanup_free char *path = *rel ? xasprintf("%s/%s", root, rel) : xstrdup(root);
	DIR *d = opendir(path);
	if (!d)
		return cod_error_set(err, COD_E_IO, "open \"%s\": %s", path, strerror(errno));
	/* sorted, so that the same results make the same archive */
	struct dirent **names = NULL;
	int n = scandir(path, &names, NULL, alphasort);
	closedir(d);
	if (n < 0)
		return cod_error_set(err, COD_E_IO, "list \"%s\": %s", path, strerror(errno));
	int rc = 0;
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		if (rc < 0 || !strcmp(name, ".") || !strcmp(name, "..")) {
			free(names[i]);
			continue;
		}
		cleanup_free char *sub_rel = *rel ? xasprintf("%s/%s", rel, name) : xstrdup(name);
		cleanup_free char *sub = xasprintf("%s/%s", root, sub_rel);
		free(names[i]);
		struct stat st;
		if (lstat(sub, &st) < 0) {
			rc = cod_error_set(err, COD_E_IO, "stat \"%s\": %s", sub, strerror(errno));
			continue;
		}
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
			continue;
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, sub_rel);
		archive_entry_set_mode(e, st.st_mode);
		archive_entry_set_mtime(e, st.st_mtime, 0);
		archive_entry_set_size(e, S_ISREG(st.st_mode) ? st.st_size : 0);
		if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t tl = readlink(sub, target, sizeof(target) - 1);
			target[tl > 0 ? tl : 0] = '\0';
			archive_entry_set_symlink(e, target);
		}
		if (archive_write_header(a, e) != ARCHIVE_OK) {
			rc = cod_error_set(err, COD_E_IO, "archive \"%s\": %s", sub, archive_error_string(a));
			archive_entry_free(e);
			continue;
		}
		archive_entry_free(e);
		if (S_ISREG(st.st_mode)) {
			int fd = open(sub, O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				rc = cod_error_set(err, COD_E_IO, "open \"%s\": %s", sub, strerror(errno));
				continue;
			}
			char buf[65536];
			ssize_t r;
			while ((r = read(fd, buf, sizeof(buf))) > 0)
				if (archive_write_data(a, buf, (size_t)r) < 0) {
					rc = cod_error_set(err, COD_E_IO, "archive \"%s\": %s", sub,
							   archive_error_string(a));
					break;
				}
			close(fd);
		} else if (S_ISDIR(st.st_mode)) {
			rc = add_tree(a, root, sub_rel, err);
		}
	}
	free(names);
	return rc;
}

int cod_archive_targz(const char *dir, const char *out_path, uint64_t *bytes, struct cod_error **err)
{
	struct archive *a = archive_write_new();
	archive_write_add_filter_gzip(a);
	archive_write_set_format_pax_restricted(a);
	cleanup_free char *tmp = xasprintf("%s.tmp", out_path);
	if (archive_write_open_filename(a, tmp) != ARCHIVE_OK) {
		cod_error_set(err, COD_E_IO, "create \"%s\": %s", tmp, archive_error_string(a));
		archive_write_free(a);
		return -1;
	}
	int rc = add_tree(a, dir, "", err);
	if (archive_write_close(a) != ARCHIVE_OK && rc == 0)
		rc = cod_error_set(err, COD_E_IO, "write \"%s\": %s", tmp, archive_error_string(a));
	archive_write_free(a);
	if (rc == 0 && rename(tmp, out_path) < 0)
		rc = cod_error_set(err, COD_E_IO, "rename \"%s\": %s", out_path, strerror(errno));
	if (rc < 0) {
		unlink(tmp);
		return -1;
	}
	struct stat st;
	if (bytes)
		*bytes = stat(out_path, &st) == 0 ? (uint64_t)st.st_size : 0;
	return 0;
}

static bool safe_path(const char *p)
{
	if (!p || !*p || p[0] == '/')
		return false;
	const char *s = p;
	while (*s) {
		size_t n = strcspn(s, "/");
		if (n == 2 && s[0] == '.' && s[1] == '.')
			return false;
		s += n;
		if (*s == '/')
			s++;
	}
	return true;
}

int cod_archive_extract(const char *archive_path, const char *dest, uint64_t max_bytes, struct cod_error **err)
{
	if (cod_mkdir_p(dest, 0755, err) < 0)
		return -1;
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	struct archive *out = archive_write_disk_new();
	/* entry names are checked below and prefixed with dest, which may be
	 * absolute: libarchive's own absolute-path refusal would reject it */
	archive_write_disk_set_options(out, ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
						ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME);
	int rc = 0;
	if (archive_read_open_filename(a, archive_path, 65536) != ARCHIVE_OK) {
		rc = cod_error_set(err, COD_E_IO, "open archive \"%s\": %s", archive_path, archive_error_string(a));
		goto done;
	}
	uint64_t total = 0;
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		cleanup_free char *clean = xstrdup(name ? name : "");
		/* "./x" entries are fine; strip the dot */
		char *rel = clean;
		while (rel[0] == '.' && rel[1] == '/')
			rel += 2;
		if (!strcmp(rel, ".") || !*rel)
			continue;
		if (!safe_path(rel)) {
			rc = cod_error_set(err, COD_E_VALIDATION, "archive \"%s\" holds an unsafe path \"%s\"",
					   archive_path, name);
			goto done;
		}
		mode_t type = archive_entry_filetype(e);
		if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
			continue;
		if (type == AE_IFLNK) {
			const char *target = archive_entry_symlink(e);
			if (!target || target[0] == '/' || !safe_path(target)) {
				rc = cod_error_set(err, COD_E_VALIDATION,
						   "archive \"%s\" holds a link \"%s\" that points outside", archive_path,
						   name);
				goto done;
			}
		}
		if (archive_entry_hardlink(e)) {
			continue; /* results have no hard links worth keeping */
		}
		total += (uint64_t)archive_entry_size(e);
		if (max_bytes && total > max_bytes) {
			rc = cod_error_set(err, COD_E_TOO_LARGE, "archive \"%s\" unpacks to more than %llu bytes",
					   archive_path, (unsigned long long)max_bytes);
			goto done;
		}
		cleanup_free char *full = xasprintf("%s/%s", dest, rel);
		archive_entry_set_pathname(e, full);
		if (archive_write_header(out, e) != ARCHIVE_OK) {
			rc = cod_error_set(err, COD_E_IO, "extract \"%s\": %s", rel, archive_error_string(out));
			goto done;
		}
		const void *buf;
		size_t size;
		la_int64_t off;
		int dr;
		while ((dr = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK)
			if (archive_write_data_block(out, buf, size, off) != ARCHIVE_OK) {
				rc = cod_error_set(err, COD_E_IO, "extract \"%s\": %s", rel, archive_error_string(out));
				goto done;
			}
		if (dr != ARCHIVE_EOF) {
			rc = cod_error_set(err, COD_E_VALIDATION, "archive \"%s\" is corrupt: %s", archive_path,
					   archive_error_string(a));
			goto done;
		}
		archive_write_finish_entry(out);
	}
	if (r != ARCHIVE_EOF)
		rc = cod_error_set(err, COD_E_VALIDATION, "archive \"%s\" is corrupt: %s", archive_path,
				   archive_error_string(a));
done:
	archive_read_free(a);
	archive_write_free(out);
	return rc;
}
