/*
 * store.c - the content-addressed image store under DataDir/compute/images:
 *
 *   blobs/sha256/<hex>       manifests, configs, layers; written only after
 *                            their sha256 was checked, renamed into place
 *   tmp/<hex>.partial        a download in progress (resumed by the next try)
 *   tmp/<hex>.lock           flock: one download of a blob at a time, across
 *                            threads and processes; the others wait for it
 *   tmp/store.lock           pulls hold it shared, garbage collection
 *                            exclusive, so GC never removes what a pull has
 *                            fetched but not yet recorded
 *   refs/<sha256(ref)>.json  a reference's record: manifest, platform, size,
 *                            pulled and last-used times
 *   rootfs/<manifest-hex>/   the image's layers applied in order (read-only
 *                            lower dir of every execution's overlay)
 *   rootfs/<manifest-hex>.lock  executions hold it shared while they run;
 *                            GC skips a rootfs it cannot lock exclusively
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "executor/oci/oci.h"
#include "common/banned.h"

static const char *images(void)
{
	return cod_oci_settings()->images_dir;
}

char *cod_oci_blob_path(const char *digest)
{
	return xasprintf("%s/blobs/sha256/%s", images(), digest + 7);
}

bool cod_oci_blob_exists(const char *digest)
{
	if (!cod_oci_digest_valid(digest))
		return false;
	cleanup_free char *p = cod_oci_blob_path(digest);
	return access(p, F_OK) == 0;
}

int cod_oci_store_init(struct cod_error **err)
{
	static const char *const dirs[] = {"blobs/sha256", "tmp", "refs", "rootfs"};
	for (size_t i = 0; i < COD_ARRAY_SIZE(dirs); i++) {
		cleanup_free char *d = xasprintf("%s/%s", images(), dirs[i]);
		if (cod_mkdir_p(d, 0700, err) < 0)
			return -1;
	}
	return 0;
}

/* flock path; waits (polling abort) unless nonblock. Returns the fd or -1. */
static int lock_path(const char *path, int how, bool nonblock, cod_oci_abort_fn abort_fn, void *abort_arg)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	for (;;) {
		if (flock(fd, how | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR)
			break;
		if (nonblock || (abort_fn && abort_fn(abort_arg)))
			break;
		struct timespec ts = {0, 50 * 1000000};
		nanosleep(&ts, NULL);
	}
	close(fd);
	return -1;
}

static int store_lock(int how, bool nonblock, cod_oci_abort_fn abort_fn, void *abort_arg)
{
	cleanup_free char *p = xasprintf("%s/tmp/store.lock", images());
	return lock_path(p, how, nonblock, abort_fn, abort_arg);
}

int cod_oci_store_blob(const char *digest, cod_oci_fetch_fn fetch, void *arg, cod_oci_abort_fn abort_fn,
		       void *abort_arg, struct cod_error **err)
{
	if (!cod_oci_digest_valid(digest))
		return cod_error_set(err, COD_E_VALIDATION, "invalid digest \"%s\"", digest);
	if (cod_oci_blob_exists(digest))
		return 0;
	if (cod_oci_store_init(err) < 0)
		return -1;
	cleanup_free char *lock = xasprintf("%s/tmp/%s.lock", images(), digest + 7);
	int fd = lock_path(lock, LOCK_EX, false, abort_fn, abort_arg);
	if (fd < 0)
		return abort_fn && abort_fn(abort_arg)
			   ? cod_error_set(err, COD_E_UNAVAILABLE, "cancelled")
			   : cod_error_set(err, COD_E_IO, "lock \"%s\": %s", lock, strerror(errno));
	int rc = 0;
	if (!cod_oci_blob_exists(digest)) {
		/* nobody fetched it while we waited */
		cleanup_free char *partial = xasprintf("%s/tmp/%s.partial", images(), digest + 7);
		rc = fetch(arg, partial, err);
		if (rc == 0) {
			cleanup_free char *final = cod_oci_blob_path(digest);
			if (rename(partial, final) < 0)
				rc = cod_error_set(err, COD_E_IO, "store blob \"%s\": %s", final,
						   strerror(errno));
		}
	}
	unlink(lock);
	close(fd);
	return rc;
}

static void hex_digest(const void *data, size_t len, char out[72])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 32; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[8 + 2 * i] = hex[md[i] & 15];
	}
	out[71] = '\0';
}

int cod_oci_store_put(const void *data, size_t len, const char *digest, char **digest_out,
		      struct cod_error **err)
{
	char d[72];
	hex_digest(data, len, d);
	if (digest && strcmp(d, digest))
		return cod_error_set(err, COD_E_VALIDATION, "blob %.19s: content has digest %s", digest, d);
	if (digest_out)
		*digest_out = xstrdup(d);
	if (cod_oci_blob_exists(d))
		return 0;
	if (cod_oci_store_init(err) < 0)
		return -1;
	cleanup_free char *path = cod_oci_blob_path(d);
	return cod_write_file_atomic(path, data, len, err);
}

int cod_oci_store_read(const char *digest, struct cod_buf *out, struct cod_error **err)
{
	cod_buf_init(out, COD_OCI_MANIFEST_MAX);
	if (!cod_oci_digest_valid(digest))
		return cod_error_set(err, COD_E_VALIDATION, "invalid digest \"%s\"", digest);
	cleanup_free char *path = cod_oci_blob_path(digest);
	char *text = NULL;
	size_t len = 0;
	if (cod_read_file(path, COD_OCI_MANIFEST_MAX, &text, &len, err) < 0)
		return -1;
	char d[72];
	hex_digest(text, len, d);
	if (strcmp(d, digest)) {
		free(text);
		return cod_error_set(err, COD_E_VALIDATION, "stored blob %.19s is corrupt (digest %s)",
				     digest, d);
	}
	cod_buf_add(out, text, len);
	free(text);
	return 0;
}

/* ----------------------------------------------------------------- refs */

static char *ref_path(const char *ref)
{
	char d[72];
	hex_digest(ref, strlen(ref), d);
	return xasprintf("%s/refs/%s.json", images(), d + 7);
}

void cod_oci_store_entry_release(struct cod_oci_store_entry *e)
{
	free(e->ref);
	free(e->manifest_digest);
	free(e->index_digest);
	free(e->platform);
	memset(e, 0, sizeof(*e));
}

void cod_oci_store_list_free(struct cod_oci_store_entry *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cod_oci_store_entry_release(&l[i]);
	free(l);
}

int cod_oci_store_put_ref(const struct cod_oci_store_entry *e, struct cod_error **err)
{
	if (cod_oci_store_init(err) < 0)
		return -1;
	cleanup_json json_t *doc =
	    json_pack("{s:s, s:s, s:s?, s:s?, s:I, s:I, s:I}", "Ref", e->ref, "Manifest", e->manifest_digest,
		      "Index", e->index_digest, "Platform", e->platform, "Size", (json_int_t)e->size,
		      "Pulled", (json_int_t)e->pulled_ns, "Used", (json_int_t)e->used_ns);
	cleanup_free char *text = json_dumps(doc, JSON_COMPACT);
	cleanup_free char *path = ref_path(e->ref);
	return cod_write_file_atomic(path, text, strlen(text), err);
}

static int load_ref_file(const char *path, struct cod_oci_store_entry *e, struct cod_error **err)
{
	memset(e, 0, sizeof(*e));
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (cod_read_file(path, 1 << 20, &text, &len, err) < 0)
		return -1;
	cleanup_json json_t *doc = json_loadb(text, len, 0, NULL);
	json_t *r = doc ? json_object_get(doc, "Ref") : NULL,
	       *m = doc ? json_object_get(doc, "Manifest") : NULL;
	if (!json_is_string(r) || !json_is_string(m) || !cod_oci_digest_valid(json_string_value(m)))
		return cod_error_set(err, COD_E_IO, "image record \"%s\" is damaged", path);
	e->ref = xstrdup(json_string_value(r));
	e->manifest_digest = xstrdup(json_string_value(m));
	json_t *v = json_object_get(doc, "Index");
	e->index_digest = json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
	v = json_object_get(doc, "Platform");
	e->platform = json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
	e->size = (uint64_t)json_integer_value(json_object_get(doc, "Size"));
	e->pulled_ns = json_integer_value(json_object_get(doc, "Pulled"));
	e->used_ns = json_integer_value(json_object_get(doc, "Used"));
	return 0;
}

int cod_oci_store_get_ref(const char *ref, struct cod_oci_store_entry *e, struct cod_error **err)
{
	cleanup_free char *path = ref_path(ref);
	if (access(path, F_OK) < 0) {
		memset(e, 0, sizeof(*e));
		return cod_error_set(err, COD_E_NOT_FOUND, "image \"%s\" is not in the local store", ref);
	}
	return load_ref_file(path, e, err);
}

int cod_oci_store_list(struct cod_oci_store_entry **out, size_t *n, struct cod_error **err)
{
	*out = NULL;
	*n = 0;
	cleanup_free char *dir = xasprintf("%s/refs", images());
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT
			   ? 0
			   : cod_error_set(err, COD_E_IO, "open \"%s\": %s", dir, strerror(errno));
	size_t alloc = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!cod_str_has_suffix(de->d_name, ".json"))
			continue;
		cleanup_free char *path = xasprintf("%s/%s", dir, de->d_name);
		struct cod_oci_store_entry e;
		if (load_ref_file(path, &e, NULL) < 0)
			continue;
		COD_GROW(*out, alloc, *n + 1);
		(*out)[(*n)++] = e;
	}
	closedir(d);
	return 0;
}

/* ------------------------------------------------------------ file trees */

static uint64_t du_at(int dirfd, dev_t dev)
{
	uint64_t total = 0;
	DIR *d = fdopendir(dirfd);
	if (!d) {
		close(dirfd);
		return 0;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != dev)
			continue;
		total += (uint64_t)st.st_blocks * 512;
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				total += du_at(sub, dev);
		}
	}
	closedir(d);
	return total;
}

uint64_t cod_oci_du(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return (uint64_t)st.st_blocks * 512;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512 + du_at(fd, st.st_dev);
}

static int rm_at(int dirfd, dev_t dev)
{
	int rc = 0;
	DIR *d = fdopendir(dirfd);
	if (!d) {
		close(dirfd);
		return -1;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (st.st_dev != dev) {
				rc = -1; /* a mount point: leave it */
				continue;
			}
			int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0 || rm_at(sub, dev) < 0)
				rc = -1;
			if (unlinkat(dirfd, de->d_name, AT_REMOVEDIR) < 0)
				rc = -1;
		} else if (unlinkat(dirfd, de->d_name, 0) < 0) {
			rc = -1;
		}
	}
	closedir(d);
	return rc;
}

int cod_oci_rmtree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = rm_at(fd, st.st_dev);
	if (rmdir(path) < 0)
		rc = -1;
	return rc;
}

/* --------------------------------------------------------------- unpack */

int cod_oci_store_hold(const char *manifest_digest)
{
	cleanup_free char *p = xasprintf("%s/rootfs/%s.lock", images(), manifest_digest + 7);
	return lock_path(p, LOCK_SH, false, NULL, NULL);
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int cod_oci_store_unpack(struct cod_oci_image *img, cod_oci_abort_fn abort_fn, void *abort_arg,
			 void (*before)(void *arg), void *before_arg, struct cod_error **err)
{
	cleanup_free char *dir = xasprintf("%s/rootfs/%s", images(), img->manifest_digest + 7);
	free(img->rootfs);
	img->rootfs = NULL;
	if (is_dir(dir)) {
		img->rootfs = steal_pointer(&dir);
		return 0;
	}
	if (cod_oci_store_init(err) < 0)
		return -1;
	cleanup_free char *lock = xasprintf("%s/tmp/%s.unpack.lock", images(), img->manifest_digest + 7);
	int fd = lock_path(lock, LOCK_EX, false, abort_fn, abort_arg);
	if (fd < 0)
		return cod_error_set(err, COD_E_UNAVAILABLE, "cancelled");
	int rc = 0, done = 0;
	if (!is_dir(dir)) { /* nobody unpacked it while this waited */
		if (before)
			before(before_arg);
		cleanup_free char *tmp = xasprintf("%s.tmp", dir);
		cod_oci_rmtree(tmp);
		if (mkdir(tmp, 0755) < 0)
			rc = cod_error_set(err, COD_E_IO, "create \"%s\": %s", tmp, strerror(errno));
		for (size_t i = 0; rc == 0 && i < img->nlayers; i++) {
			cleanup_free char *blob = cod_oci_blob_path(img->layers[i].digest);
			if (cod_oci_unpack_layer(blob, tmp, abort_fn, abort_arg, err) < 0) {
				cod_error_wrap(err, "unpack layer %zu of %zu (%.19s)", i + 1, img->nlayers,
					       img->layers[i].digest);
				rc = -1;
			}
		}
		if (rc == 0 && rename(tmp, dir) < 0)
			rc = cod_error_set(err, COD_E_IO, "rename \"%s\": %s", tmp, strerror(errno));
		if (rc < 0)
			cod_oci_rmtree(tmp);
		else
			done = 1;
	}
	unlink(lock);
	close(fd);
	if (rc < 0)
		return -1;
	img->rootfs = steal_pointer(&dir);
	return done;
}

/* ------------------------------------------------------------------- GC */

static void add_digest(struct cod_strlist *set, const char *d)
{
	if (d && cod_oci_digest_valid(d))
		cod_strlist_add(set, d + 7);
}

static bool in_set(const struct cod_strlist *set, const char *hex)
{
	for (size_t i = 0; i < set->n; i++)
		if (!strcmp(set->items[i], hex))
			return true;
	return false;
}

/* Every blob a reference needs: index, manifest, config, layers. */
static void reachable(const struct cod_oci_store_entry *e, struct cod_strlist *blobs,
		      struct cod_strlist *rootfs)
{
	add_digest(blobs, e->index_digest);
	add_digest(blobs, e->manifest_digest);
	add_digest(rootfs, e->manifest_digest);
	struct cod_buf m = COD_BUF_INIT;
	if (cod_oci_store_read(e->manifest_digest, &m, NULL) == 0) {
		struct cod_oci_image img;
		memset(&img, 0, sizeof(img));
		if (cod_oci_parse_manifest(m.buf, m.len, &img, NULL) == 0) {
			add_digest(blobs, img.config.digest);
			for (size_t i = 0; i < img.nlayers; i++)
				add_digest(blobs, img.layers[i].digest);
		}
		cod_oci_image_release(&img);
	}
	cod_buf_release(&m);
	if (e->index_digest) {
		/* keep the other platforms' manifests of the index too: cheap,
		 * and `cod image ls` can still show the index */
		struct cod_buf ib = COD_BUF_INIT;
		if (cod_oci_store_read(e->index_digest, &ib, NULL) == 0) {
			struct cod_oci_descriptor *d = NULL;
			size_t n = 0;
			if (cod_oci_parse_index(ib.buf, ib.len, &d, &n, NULL) == 0)
				for (size_t i = 0; i < n; i++)
					if (cod_oci_blob_exists(d[i].digest))
						add_digest(blobs, d[i].digest);
			cod_oci_descriptors_free(d, n);
		}
		cod_buf_release(&ib);
	}
}

static uint64_t sweep(const struct cod_strlist *blobs, const struct cod_strlist *rootfs)
{
	uint64_t freed = 0;
	cleanup_free char *bdir = xasprintf("%s/blobs/sha256", images());
	DIR *d = opendir(bdir);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || in_set(blobs, de->d_name))
			continue;
		cleanup_free char *p = xasprintf("%s/%s", bdir, de->d_name);
		uint64_t sz = cod_oci_du(p);
		if (unlink(p) == 0)
			freed += sz;
	}
	if (d)
		closedir(d);
	cleanup_free char *rdir = xasprintf("%s/rootfs", images());
	d = opendir(rdir);
	while (d && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strchr(de->d_name, '.') || in_set(rootfs, de->d_name))
			continue;
		cleanup_free char *lock = xasprintf("%s/%s.lock", rdir, de->d_name);
		int fd = lock_path(lock, LOCK_EX, true, NULL, NULL);
		if (fd < 0)
			continue; /* an execution runs on it */
		cleanup_free char *p = xasprintf("%s/%s", rdir, de->d_name);
		uint64_t sz = cod_oci_du(p);
		if (cod_oci_rmtree(p) == 0)
			freed += sz;
		unlink(lock);
		close(fd);
	}
	if (d)
		closedir(d);
	/* stale partial downloads nobody is working on */
	cleanup_free char *tdir = xasprintf("%s/tmp", images());
	d = opendir(tdir);
	while (d && (de = readdir(d)) != NULL) {
		if (!cod_str_has_suffix(de->d_name, ".partial"))
			continue;
		cleanup_free char *hex = xstrndup(de->d_name, strlen(de->d_name) - 8);
		cleanup_free char *lock = xasprintf("%s/%s.lock", tdir, hex);
		int fd = lock_path(lock, LOCK_EX, true, NULL, NULL);
		if (fd < 0)
			continue;
		cleanup_free char *p = xasprintf("%s/%s", tdir, de->d_name);
		uint64_t sz = cod_oci_du(p);
		if (unlink(p) == 0)
			freed += sz;
		unlink(lock);
		close(fd);
	}
	if (d)
		closedir(d);
	return freed;
}

static bool rootfs_busy(const char *manifest_digest)
{
	cleanup_free char *lock = xasprintf("%s/rootfs/%s.lock", images(), manifest_digest + 7);
	int fd = lock_path(lock, LOCK_EX, true, NULL, NULL);
	if (fd < 0)
		return access(lock, F_OK) == 0;
	close(fd);
	return false;
}

uint64_t cod_oci_store_size(void)
{
	return cod_oci_du(images());
}

static int remove_ref_locked(const char *ref)
{
	cleanup_free char *path = ref_path(ref);
	return unlink(path);
}

int cod_oci_store_gc(uint64_t max_bytes, const char *keep_ref, uint64_t *freed, struct cod_error **err)
{
	if (freed)
		*freed = 0;
	/* After a pull (keep_ref set) other pulls may hold the store for long
	 * downloads: do not wait for them, the next pull collects. */
	int lk = store_lock(LOCK_EX, keep_ref != NULL, NULL, NULL);
	if (lk < 0) {
		if (errno == ENOENT || keep_ref)
			return 0; /* no store yet, or busy */
		return cod_error_set(err, COD_E_IO, "lock the image store: %s", strerror(errno));
	}
	uint64_t total_freed = 0;
	for (int round = 0; round < 1000; round++) {
		struct cod_oci_store_entry *list = NULL;
		size_t n = 0;
		if (cod_oci_store_list(&list, &n, err) < 0) {
			close(lk);
			return -1;
		}
		struct cod_strlist blobs = {0}, rootfs = {0};
		for (size_t i = 0; i < n; i++)
			reachable(&list[i], &blobs, &rootfs);
		total_freed += sweep(&blobs, &rootfs);
		cod_strlist_release(&blobs);
		cod_strlist_release(&rootfs);
		bool removed = false;
		if (max_bytes && cod_oci_store_size() > max_bytes) {
			/* evict the least recently used image that is not running */
			ssize_t victim = -1;
			for (size_t i = 0; i < n; i++) {
				if (keep_ref && !strcmp(list[i].ref, keep_ref))
					continue;
				if (rootfs_busy(list[i].manifest_digest))
					continue;
				int64_t t = list[i].used_ns ? list[i].used_ns : list[i].pulled_ns;
				int64_t vt = victim < 0 ? 0
							: (list[victim].used_ns ? list[victim].used_ns
										: list[victim].pulled_ns);
				if (victim < 0 || t < vt)
					victim = (ssize_t)i;
			}
			if (victim >= 0) {
				cod_info("oci",
					 "image store over its cap: removing least recently used image %s",
					 list[victim].ref);
				removed = remove_ref_locked(list[victim].ref) == 0;
			}
		}
		cod_oci_store_list_free(list, n);
		if (!removed)
			break;
	}
	close(lk);
	if (freed)
		*freed = total_freed;
	return 0;
}

int cod_oci_store_remove(const char *ref, struct cod_error **err)
{
	struct cod_oci_store_entry e;
	if (cod_oci_store_get_ref(ref, &e, err) < 0)
		return -1;
	cleanup_free char *path = ref_path(ref);
	int rc = 0;
	if (unlink(path) < 0)
		rc = cod_error_set(err, COD_E_IO, "remove \"%s\": %s", path, strerror(errno));
	cod_oci_store_entry_release(&e);
	return rc;
}

int cod_oci_store_lock_shared(cod_oci_abort_fn abort_fn, void *abort_arg)
{
	struct cod_error *err = NULL;
	if (cod_oci_store_init(&err) < 0) {
		cod_error_free(err);
		return -1;
	}
	return store_lock(LOCK_SH, false, abort_fn, abort_arg);
}
