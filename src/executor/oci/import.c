/*
 * import.c - offline images: `cod image import FILE` with an OCI image
 * layout (a directory, or a tar of one, as `skopeo copy ... oci-archive:`
 * or `docker save` of Docker 25+ write) or a classic `docker save` tarball
 * (manifest.json + config + layer tars).
 *
 * Every blob is hashed while it is copied into the store and refused when
 * its content does not match its digest. Names come from the layout's
 * "io.containerd.image.name" or "org.opencontainers.image.ref.name"
 * annotations (full references, e.g. "cod-test/busybox:latest"), or from a
 * docker save's RepoTags.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "executor/oci/oci.h"
#include "common/banned.h"

static void to_hex(const unsigned char md[32], char out[72])
{
	memcpy(out, "sha256:", 7);
	cod_hex_encode(md, 32, out + 7);
}

/* sha256 of a file, "sha256:<hex>". */
static int file_digest(const char *path, char out[72], uint64_t *size, struct cod_error **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cod_error_set(err, COD_E_IO, "open \"%s\": %s", path, strerror(errno));
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	char buf[65536];
	ssize_t n;
	uint64_t total = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		total += (uint64_t)n;
	}
	close(fd);
	unsigned char md[32];
	unsigned int len = 0;
	EVP_DigestFinal_ex(ctx, md, &len);
	EVP_MD_CTX_free(ctx);
	if (n < 0)
		return cod_error_set(err, COD_E_IO, "read \"%s\": %s", path, strerror(errno));
	to_hex(md, out);
	if (size)
		*size = total;
	return 0;
}

struct copy_src {
	const char *path;
	const char *digest;
};

/* store fetch callback: copy the file, verifying its digest */
static int copy_verify(void *arg, const char *partial, struct cod_error **err)
{
	struct copy_src *src = arg;
	char got[72];
	if (file_digest(src->path, got, NULL, err) < 0)
		return -1;
	if (strcmp(got, src->digest))
		return cod_error_set(err, COD_E_VALIDATION, "blob \"%s\" has digest %s, not %s", src->path,
				     got, src->digest);
	int in = open(src->path, O_RDONLY | O_CLOEXEC);
	int out = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = 0;
	if (in < 0 || out < 0) {
		rc = cod_error_set(err, COD_E_IO, "copy \"%s\": %s", src->path, strerror(errno));
	} else {
		char buf[65536];
		ssize_t n;
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)n) != n) {
				rc = cod_error_set(err, COD_E_IO, "write \"%s\": %s", partial,
						   strerror(errno));
				break;
			}
		if (rc == 0 && fsync(out) < 0)
			rc = cod_error_set(err, COD_E_IO, "write \"%s\": %s", partial, strerror(errno));
	}
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

static int import_blob(const char *dir, const char *digest, struct cod_error **err)
{
	if (!cod_oci_digest_valid(digest))
		return cod_error_set(err, COD_E_VALIDATION, "invalid digest \"%s\"", digest);
	cleanup_free char *path = xasprintf("%s/blobs/sha256/%s", dir, digest + 7);
	struct copy_src src = {.path = path, .digest = digest};
	return cod_oci_store_blob(digest, copy_verify, &src, NULL, NULL, err);
}

static int read_json(const char *path, json_t **out, struct cod_error **err)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (cod_read_file(path, COD_OCI_MANIFEST_MAX, &text, &len, err) < 0)
		return -1;
	json_error_t je;
	*out = json_loadb(text, len, 0, &je);
	if (!*out)
		return cod_error_set(err, COD_E_VALIDATION, "\"%s\" is not JSON: %s", path, je.text);
	return 0;
}

/* Copy a platform manifest with its config and layers; fill img. */
static int import_manifest(const char *dir, const char *digest, struct cod_oci_image *img,
			   struct cod_error **err)
{
	if (import_blob(dir, digest, err) < 0)
		return -1;
	struct cod_buf m = COD_BUF_INIT;
	if (cod_oci_store_read(digest, &m, err) < 0)
		return -1;
	int rc = cod_oci_parse_manifest(m.buf, m.len, img, err);
	cod_buf_release(&m);
	if (rc < 0)
		return -1;
	img->manifest_digest = xstrdup(digest);
	if (import_blob(dir, img->config.digest, err) < 0)
		return -1;
	for (size_t i = 0; i < img->nlayers; i++)
		if (import_blob(dir, img->layers[i].digest, err) < 0)
			return -1;
	struct cod_buf cb = COD_BUF_INIT;
	if (cod_oci_store_read(img->config.digest, &cb, err) < 0)
		return -1;
	json_t *cfg = json_loadb(cb.buf ? cb.buf : "", cb.len, 0, NULL);
	cod_buf_release(&cb);
	json_t *os = json_object_get(cfg, "os"), *arch = json_object_get(cfg, "architecture");
	img->platform = xasprintf("%s/%s", json_is_string(os) ? json_string_value(os) : "linux",
				  json_is_string(arch) ? json_string_value(arch) : "amd64");
	json_decref(cfg);
	return 0;
}

static int record(const char *name, struct cod_oci_image *img, struct cod_strlist *names,
		  struct cod_error **err)
{
	struct cod_oci_ref ref;
	if (cod_oci_ref_parse(name, &ref, err) < 0)
		return -1;
	cleanup_free char *canonical = cod_oci_ref_string(&ref);
	cod_oci_ref_release(&ref);
	struct cod_oci_store_entry e = {.ref = canonical,
					.manifest_digest = img->manifest_digest,
					.index_digest = img->index_digest,
					.platform = img->platform,
					.size = img->size,
					.pulled_ns = cod_now_ns()};
	if (cod_oci_store_put_ref(&e, err) < 0)
		return -1;
	cod_strlist_add(names, canonical);
	return 0;
}

static int import_layout(const char *dir, struct cod_strlist *names, struct cod_error **err)
{
	cleanup_free char *ipath = xasprintf("%s/index.json", dir);
	cleanup_json json_t *index = NULL;
	if (read_json(ipath, &index, err) < 0)
		return -1;
	json_t *ms = json_object_get(index, "manifests");
	if (!json_is_array(ms))
		return cod_error_set(err, COD_E_VALIDATION, "\"%s\" has no manifests", ipath);
	cleanup_free char *platform = cod_oci_node_platform();
	size_t i;
	json_t *m;
	json_array_foreach (ms, i, m) {
		json_t *ann = json_object_get(m, "annotations");
		json_t *n = json_object_get(ann, "io.containerd.image.name");
		if (!json_is_string(n))
			n = json_object_get(ann, "org.opencontainers.image.ref.name");
		if (!json_is_string(n)) {
			cod_warn("oci", "import: manifest %zu of \"%s\" has no name annotation; skipped", i,
				 ipath);
			continue;
		}
		const char *name = json_string_value(n);
		if (!strchr(name, ':') && !strchr(name, '/'))
			return cod_error_set(
			    err, COD_E_VALIDATION,
			    "import: image %zu is named \"%s\", not a full reference; copy it with a full "
			    "name (e.g. skopeo copy ... oci:DIR:repo/name:tag)",
			    i, name);
		json_t *mt = json_object_get(m, "mediaType"), *dg = json_object_get(m, "digest");
		if (!json_is_string(dg))
			return cod_error_set(err, COD_E_VALIDATION, "import: image \"%s\" has no digest",
					     name);
		const char *digest = json_string_value(dg);
		struct cod_oci_image img;
		memset(&img, 0, sizeof(img));
		img.hold_fd = -1;
		int rc = 0;
		bool is_index = json_is_string(mt) && (!strcmp(json_string_value(mt), COD_MT_OCI_INDEX) ||
						       !strcmp(json_string_value(mt), COD_MT_DOCKER_LIST));
		if (is_index) {
			rc = import_blob(dir, digest, err);
			struct cod_buf ib = COD_BUF_INIT;
			struct cod_oci_descriptor *d = NULL;
			size_t nd = 0;
			if (rc == 0)
				rc = cod_oci_store_read(digest, &ib, err);
			if (rc == 0)
				rc = cod_oci_parse_index(ib.buf, ib.len, &d, &nd, err);
			int pick = rc == 0 ? cod_oci_select_platform(d, nd, platform) : -1;
			if (rc == 0 && pick < 0) {
				/* not runnable here: leave it out, say so */
				cleanup_free char *msg = cod_oci_platform_mismatch(name, platform, d, nd);
				cod_warn("oci", "import: skipped %s", msg);
				cod_oci_descriptors_free(d, nd);
				cod_buf_release(&ib);
				cod_oci_image_release(&img);
				continue;
			}
			if (rc == 0) {
				img.index_digest = xstrdup(digest);
				rc = import_manifest(dir, d[pick].digest, &img, err);
			}
			cod_oci_descriptors_free(d, nd);
			cod_buf_release(&ib);
		} else {
			rc = import_manifest(dir, digest, &img, err);
		}
		if (rc == 0)
			rc = record(name, &img, names, err);
		cod_oci_image_release(&img);
		if (rc < 0)
			return cod_error_wrap(err, "import \"%s\"", name);
	}
	return 0;
}

/* A blob from a file inside the save tarball (digest computed). */
static int save_blob(const char *dir, const char *rel, char digest[72], uint64_t *size,
		     struct cod_error **err)
{
	if (strstr(rel, "..") || rel[0] == '/')
		return cod_error_set(err, COD_E_VALIDATION, "import: path \"%s\" leaves the archive", rel);
	cleanup_free char *path = xasprintf("%s/%s", dir, rel);
	if (file_digest(path, digest, size, err) < 0)
		return -1;
	struct copy_src src = {.path = path, .digest = digest};
	return cod_oci_store_blob(digest, copy_verify, &src, NULL, NULL, err);
}

static int import_docker_save(const char *dir, struct cod_strlist *names, struct cod_error **err)
{
	cleanup_free char *mpath = xasprintf("%s/manifest.json", dir);
	cleanup_json json_t *list = NULL;
	if (read_json(mpath, &list, err) < 0)
		return -1;
	if (!json_is_array(list))
		return cod_error_set(err, COD_E_VALIDATION, "\"%s\" is not a docker save manifest", mpath);
	size_t i;
	json_t *m;
	json_array_foreach (list, i, m) {
		json_t *cfg = json_object_get(m, "Config"), *tags = json_object_get(m, "RepoTags"),
		       *layers = json_object_get(m, "Layers");
		if (!json_is_string(cfg) || !json_is_array(layers))
			return cod_error_set(err, COD_E_VALIDATION,
					     "import: image %zu of the archive has no Config or Layers", i);
		char cdigest[72];
		uint64_t csize = 0;
		if (save_blob(dir, json_string_value(cfg), cdigest, &csize, err) < 0)
			return -1;
		json_t *ldescs = json_array();
		size_t k;
		json_t *l;
		uint64_t total = csize;
		json_array_foreach (layers, k, l) {
			char ldigest[72];
			uint64_t lsize = 0;
			if (!json_is_string(l) ||
			    save_blob(dir, json_string_value(l), ldigest, &lsize, err) < 0) {
				json_decref(ldescs);
				return -1;
			}
			total += lsize;
			json_array_append_new(ldescs,
					      json_pack("{s:s, s:s, s:I}", "mediaType",
							"application/vnd.oci.image.layer.v1.tar", "digest",
							ldigest, "size", (json_int_t)lsize));
		}
		cleanup_json json_t *manifest =
		    json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:o}", "schemaVersion", 2, "mediaType",
			      COD_MT_OCI_MANIFEST, "config", "mediaType", COD_MT_OCI_CONFIG, "digest",
			      cdigest, "size", (json_int_t)csize, "layers", ldescs);
		cleanup_free char *text = json_dumps(manifest, JSON_COMPACT);
		cleanup_free char *mdigest = NULL;
		if (cod_oci_store_put(text, strlen(text), NULL, &mdigest, err) < 0)
			return -1;
		struct cod_oci_image img;
		memset(&img, 0, sizeof(img));
		img.hold_fd = -1;
		int rc = import_manifest(dir, mdigest, &img, err);
		img.size = total;
		size_t t;
		json_t *tag;
		size_t named = 0;
		json_array_foreach (tags, t, tag) {
			if (rc == 0 && json_is_string(tag)) {
				rc = record(json_string_value(tag), &img, names, err);
				named++;
			}
		}
		if (rc == 0 && !named)
			cod_warn("oci",
				 "import: image %zu of the archive has no RepoTags; stored without a name",
				 i);
		cod_oci_image_release(&img);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int cod_oci_import(const char *path, struct cod_strlist *names, struct cod_error **err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return cod_error_set(err, COD_E_NOT_FOUND, "import \"%s\": %s", path, strerror(errno));
	if (cod_oci_store_init(err) < 0)
		return -1;
	cleanup_free char *tmp = NULL;
	const char *dir = path;
	if (!S_ISDIR(st.st_mode)) {
		char rnd[8];
		cod_random_bytes(rnd, sizeof(rnd));
		tmp = xasprintf("%s/tmp/import-%02x%02x%02x%02x", cod_oci_settings()->images_dir,
				(unsigned char)rnd[0], (unsigned char)rnd[1], (unsigned char)rnd[2],
				(unsigned char)rnd[3]);
		if (cod_mkdir_p(tmp, 0700, err) < 0)
			return -1;
		/* the same careful unpacker as layers: no path leaves tmp */
		if (cod_oci_unpack_layer(path, tmp, NULL, NULL, err) < 0) {
			cod_oci_rmtree(tmp);
			return cod_error_wrap(err, "import \"%s\"", path);
		}
		dir = tmp;
	}
	cleanup_free char *layout = xasprintf("%s/index.json", dir),
			  *save = xasprintf("%s/manifest.json", dir);
	int rc;
	if (access(layout, F_OK) == 0)
		rc = import_layout(dir, names, err);
	else if (access(save, F_OK) == 0)
		rc = import_docker_save(dir, names, err);
	else
		rc = cod_error_set(
		    err, COD_E_VALIDATION,
		    "import \"%s\": neither an OCI image layout (index.json) nor a docker save archive "
		    "(manifest.json)",
		    path);
	if (tmp)
		cod_oci_rmtree(tmp);
	return rc;
}
