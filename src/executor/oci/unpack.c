/*
 * unpack.c - apply one image layer to a directory, safely.
 *
 * Every entry is created relative to directory file descriptors walked
 * down from the root with O_NOFOLLOW, one component at a time, so no path
 * in a layer can reach outside the root:
 *   - an absolute name ("/etc/x") or a ".." component is refused;
 *   - a parent that is a symlink ("evil -> /etc", then "evil/passwd") is
 *     refused, whatever the symlink points to;
 *   - hard link targets obey the same rules.
 * A refused entry fails the whole layer (COD_E_VALIDATION naming it): an
 * image that tries this is hostile or broken, and running it half-unpacked
 * would hide that.
 *
 * Whiteouts (OCI image spec, "Representing Changes"): ".wh.NAME" removes
 * NAME from the lower layers, ".wh..wh..opq" empties its directory of what
 * lower layers put there (entries of the same layer stay). Device nodes
 * are created when running as root and skipped otherwise. Extended
 * attributes are not applied.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "executor/oci/oci.h"
#include "common/banned.h"

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

/* ------------------------------------------- a set of paths (this layer) */

struct pathset {
	char **slots;
	size_t cap, n;
};

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void set_add(struct pathset *s, const char *path);

static void set_grow(struct pathset *s)
{
	struct pathset old = *s;
	s->cap = old.cap ? old.cap * 2 : 256;
	s->slots = xcalloc(s->cap, sizeof(char *));
	s->n = 0;
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i]) {
			set_add(s, old.slots[i]);
			free(old.slots[i]);
		}
	free(old.slots);
}

static bool set_has(const struct pathset *s, const char *path)
{
	if (!s->cap)
		return false;
	for (size_t i = fnv(path) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (!s->slots[i])
			return false;
		if (!strcmp(s->slots[i], path))
			return true;
	}
}

static void set_add(struct pathset *s, const char *path)
{
	if ((s->n + 1) * 2 > s->cap)
		set_grow(s);
	for (size_t i = fnv(path) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (!s->slots[i]) {
			s->slots[i] = xstrdup(path);
			s->n++;
			return;
		}
		if (!strcmp(s->slots[i], path))
			return;
	}
}

static void set_release(struct pathset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slots[i]);
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------- paths */

/* Normalize an entry name into "a/b/c" (no leading "./", no "." parts, no
 * trailing '/'). Refuses absolute names and "..". */
static int clean_name(const char *name, char **out, struct cod_error **err)
{
	*out = NULL;
	if (!name)
		return cod_error_set(err, COD_E_VALIDATION, "refused layer entry without a name");
	if (name[0] == '/')
		return cod_error_set(err, COD_E_VALIDATION,
				     "refused layer entry \"%s\": absolute paths may not appear in a layer",
				     name);
	struct cod_buf b = COD_BUF_INIT;
	cod_buf_addstr(&b, "");
	for (const char *p = name; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && !strncmp(p, "..", 2)) {
			cod_buf_release(&b);
			return cod_error_set(err, COD_E_VALIDATION,
					     "refused layer entry \"%s\": it leaves the image root (\"..\")",
					     name);
		}
		if (n && !(n == 1 && p[0] == '.')) {
			if (b.len)
				cod_buf_addch(&b, '/');
			cod_buf_add(&b, p, n);
		}
		p += n;
		while (*p == '/')
			p++;
	}
	*out = cod_buf_detach(&b, NULL);
	return 0;
}

static int remove_at(int dirfd, const char *name);

static int remove_children(int dfd)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -1;
	}
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (remove_at(dirfd(d), de->d_name) < 0)
			rc = -1;
	}
	closedir(d);
	return rc;
}

/* rm -rf one name under dirfd (not following symlinks). */
static int remove_at(int dirfd, const char *name)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0);
	int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub < 0)
		return -1;
	remove_children(sub);
	return unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* Open the directory holding path's last component, walking from rootfd
 * without following symlinks; create missing directories when create.
 * *base points into path. Returns an fd, -1 with *err (refused or I/O), or
 * -2 when a parent is missing and !create. */
static int open_parent(int rootfd, char *path, const char *entry, bool create, const char **base,
		       struct cod_error **err)
{
	char *slash = strrchr(path, '/');
	*base = slash ? slash + 1 : path;
	int dfd = dup(rootfd);
	if (dfd < 0 || !slash)
		return dfd;
	*slash = '\0';
	for (char *p = path; p;) {
		char *next = strchr(p, '/');
		if (next)
			*next = '\0';
		struct stat st;
		if (fstatat(dfd, p, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT) {
				cod_error_set(err, COD_E_IO, "layer entry \"%s\": %s", entry,
					      strerror(errno));
				goto fail;
			}
			if (!create) {
				close(dfd);
				*slash = '/';
				if (next)
					*next = '/';
				return -2;
			}
			if (mkdirat(dfd, p, 0755) < 0 && errno != EEXIST) {
				cod_error_set(err, COD_E_IO, "layer entry \"%s\": mkdir: %s", entry,
					      strerror(errno));
				goto fail;
			}
		} else if (S_ISLNK(st.st_mode)) {
			cod_error_set(
			    err, COD_E_VALIDATION,
			    "refused layer entry \"%s\": its parent \"%s\" is a symlink, which could lead "
			    "outside the image root",
			    entry, path);
			goto fail;
		} else if (!S_ISDIR(st.st_mode)) {
			if (!create) {
				close(dfd);
				*slash = '/';
				if (next)
					*next = '/';
				return -2;
			}
			/* a file where a directory must go: the layer replaces it */
			if (unlinkat(dfd, p, 0) < 0 || mkdirat(dfd, p, 0755) < 0) {
				cod_error_set(err, COD_E_IO, "layer entry \"%s\": %s", entry,
					      strerror(errno));
				goto fail;
			}
		}
		int sub = openat(dfd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			cod_error_set(err, errno == ELOOP || errno == ENOTDIR ? COD_E_VALIDATION : COD_E_IO,
				      "layer entry \"%s\": open \"%s\": %s", entry, path, strerror(errno));
			goto fail;
		}
		close(dfd);
		dfd = sub;
		if (next)
			*next = '/';
		p = next ? next + 1 : NULL;
	}
	*slash = '/';
	return dfd;
fail:
	close(dfd);
	*slash = '/';
	return -1;
}

/* ------------------------------------------------------------ entries */

static int write_data(struct archive *a, int fd, const char *entry, struct cod_error **err)
{
	const void *buf;
	size_t size;
	la_int64_t offset;
	int64_t end = 0;
	for (;;) {
		int r = archive_read_data_block(a, &buf, &size, &offset);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			return cod_error_set(err, COD_E_VALIDATION, "layer entry \"%s\": %s", entry,
					     archive_error_string(a));
		const char *p = buf;
		size_t left = size;
		int64_t off = offset;
		while (left) {
			ssize_t w = pwrite(fd, p, left, off);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return cod_error_set(err, COD_E_IO, "layer entry \"%s\": write: %s", entry,
						     strerror(errno));
			}
			p += w;
			left -= (size_t)w;
			off += w;
		}
		if (off > end)
			end = off;
	}
	/* a sparse file ending in a hole */
	struct stat st;
	if (fstat(fd, &st) == 0 && st.st_size < end && ftruncate(fd, end) < 0)
		return cod_error_set(err, COD_E_IO, "layer entry \"%s\": %s", entry, strerror(errno));
	return 0;
}

struct unpacker {
	struct archive *a;
	int rootfd;
	struct pathset created;
	bool root;
};

static int whiteout(struct unpacker *u, char *path, const char *entry, struct cod_error **err)
{
	const char *base;
	int dfd = open_parent(u->rootfd, path, entry, false, &base, err);
	if (dfd == -2)
		return 0; /* nothing below to hide */
	if (dfd < 0)
		return -1;
	int rc = 0;
	if (!strcmp(base, WH_OPAQUE)) {
		/* the directory path (without the marker) */
		size_t plen = (size_t)(base - path);
		cleanup_free char *dir = xstrndup(path, plen ? plen - 1 : 0);
		int copy = dup(dfd);
		DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
		struct dirent *de;
		while (d && (de = readdir(d)) != NULL) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			cleanup_free char *child =
			    *dir ? xasprintf("%s/%s", dir, de->d_name) : xstrdup(de->d_name);
			if (set_has(&u->created, child))
				continue;
			if (remove_at(dfd, de->d_name) < 0)
				rc = cod_error_set(err, COD_E_IO, "layer entry \"%s\": remove \"%s\": %s",
						   entry, child, strerror(errno));
		}
		if (d)
			closedir(d);
		else if (copy >= 0)
			close(copy);
	} else {
		const char *name = base + strlen(WH_PREFIX);
		if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
			rc = cod_error_set(err, COD_E_VALIDATION, "refused layer entry \"%s\": bad whiteout",
					   entry);
		else if (remove_at(dfd, name) < 0)
			rc = cod_error_set(err, COD_E_IO, "layer entry \"%s\": remove: %s", entry,
					   strerror(errno));
	}
	close(dfd);
	return rc;
}

static void set_meta(int dfd, const char *base, struct archive_entry *e, bool root, bool is_link)
{
	if (root)
		fchownat(dfd, base, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
			 AT_SYMLINK_NOFOLLOW);
	if (!is_link)
		fchmodat(dfd, base,
			 archive_entry_perm(e) | (archive_entry_mode(e) & (S_ISUID | S_ISGID | S_ISVTX)), 0);
	struct timespec ts[2] = {{archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
				 {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
	utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW);
}

static int one_entry(struct unpacker *u, struct archive_entry *e, struct cod_error **err)
{
	const char *raw = archive_entry_pathname(e);
	cleanup_free char *path = NULL;
	if (clean_name(raw, &path, err) < 0)
		return -1;
	if (!*path)
		return 0; /* the root itself */
	const char *last = strrchr(path, '/');
	last = last ? last + 1 : path;
	if (cod_str_has_prefix(last, WH_PREFIX))
		return whiteout(u, path, raw, err);

	const char *hardlink = archive_entry_hardlink(e);
	cleanup_free char *link_target = NULL;
	if (hardlink && clean_name(hardlink, &link_target, err) < 0)
		return cod_error_wrap(err, "hard link \"%s\"", raw);

	const char *base;
	int dfd = open_parent(u->rootfd, path, raw, true, &base, err);
	if (dfd < 0)
		return -1;
	int rc = 0;
	mode_t type = archive_entry_filetype(e);
	struct stat st;
	bool exists = fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (exists && !(S_ISDIR(st.st_mode) && type == AE_IFDIR && !hardlink)) {
		if (remove_at(dfd, base) < 0) {
			rc = cod_error_set(err, COD_E_IO, "layer entry \"%s\": replace: %s", raw,
					   strerror(errno));
			goto out;
		}
		exists = false;
	}
	if (hardlink) {
		const char *tbase;
		int tfd = open_parent(u->rootfd, link_target, raw, false, &tbase, err);
		if (tfd == -2)
			rc = cod_error_set(err, COD_E_VALIDATION,
					   "layer entry \"%s\": hard link target \"%s\" does not exist", raw,
					   hardlink);
		else if (tfd < 0)
			rc = -1;
		else {
			if (linkat(tfd, tbase, dfd, base, 0) < 0)
				rc = cod_error_set(err, COD_E_VALIDATION,
						   "layer entry \"%s\": link to \"%s\": %s", raw, hardlink,
						   strerror(errno));
			close(tfd);
		}
		goto out;
	}
	switch (type) {
	case AE_IFDIR:
		if (!exists && mkdirat(dfd, base, 0755) < 0) {
			rc = cod_error_set(err, COD_E_IO, "layer entry \"%s\": mkdir: %s", raw,
					   strerror(errno));
			break;
		}
		set_meta(dfd, base, e, u->root, false);
		break;
	case AE_IFREG: {
		int fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			rc = cod_error_set(err, COD_E_IO, "layer entry \"%s\": create: %s", raw,
					   strerror(errno));
			break;
		}
		rc = write_data(u->a, fd, raw, err);
		close(fd);
		if (rc == 0)
			set_meta(dfd, base, e, u->root, false);
		break;
	}
	case AE_IFLNK: {
		const char *target = archive_entry_symlink(e);
		if (symlinkat(target ? target : "", dfd, base) < 0)
			rc = cod_error_set(err, COD_E_IO, "layer entry \"%s\": symlink: %s", raw,
					   strerror(errno));
		else
			set_meta(dfd, base, e, u->root, true);
		break;
	}
	case AE_IFCHR:
	case AE_IFBLK:
		if (!u->root)
			break; /* cannot create devices unprivileged: skip */
		if (mknodat(dfd, base, type | (archive_entry_perm(e) & 07777), archive_entry_rdev(e)) < 0) {
			cod_debug("oci", "layer entry \"%s\": mknod: %s; skipped", raw, strerror(errno));
			break;
		}
		set_meta(dfd, base, e, u->root, false);
		break;
	case AE_IFIFO:
		if (mkfifoat(dfd, base, archive_entry_perm(e)) < 0)
			rc = cod_error_set(err, COD_E_IO, "layer entry \"%s\": mkfifo: %s", raw,
					   strerror(errno));
		else
			set_meta(dfd, base, e, u->root, false);
		break;
	default:
		cod_debug("oci", "layer entry \"%s\": type %o skipped", raw, (unsigned)type);
		break;
	}
out:
	close(dfd);
	if (rc == 0)
		set_add(&u->created, path);
	return rc;
}

int cod_oci_unpack_layer(const char *layer_path, const char *root, cod_oci_abort_fn abort_fn, void *abort_arg,
			 struct cod_error **err)
{
	struct unpacker u = {.root = geteuid() == 0};
	u.rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (u.rootfd < 0)
		return cod_error_set(err, COD_E_IO, "open \"%s\": %s", root, strerror(errno));
	u.a = archive_read_new();
	archive_read_support_filter_all(u.a);
	archive_read_support_format_tar(u.a);
	archive_read_support_format_gnutar(u.a);
	int rc = 0;
	if (archive_read_open_filename(u.a, layer_path, 1 << 16) != ARCHIVE_OK) {
		rc = cod_error_set(err, COD_E_VALIDATION, "read layer \"%s\": %s", layer_path,
				   archive_error_string(u.a));
		goto out;
	}
	struct archive_entry *e;
	for (;;) {
		int r = archive_read_next_header(u.a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			rc =
			    cod_error_set(err, COD_E_VALIDATION, "read layer: %s", archive_error_string(u.a));
			break;
		}
		if (abort_fn && abort_fn(abort_arg)) {
			rc = cod_error_set(err, COD_E_UNAVAILABLE, "cancelled");
			break;
		}
		if (one_entry(&u, e, err) < 0) {
			rc = -1;
			break;
		}
	}
out:
	archive_read_free(u.a);
	close(u.rootfd);
	set_release(&u.created);
	return rc;
}
