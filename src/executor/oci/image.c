/*
 * image.c - from a reference to an unpacked image: manifests and indexes,
 * platform selection, the bid-time resolve cache, pulls and offline
 * imports (OCI layouts, `docker save` tarballs).
 *
 * Pull policy: a reference already in the local store (pulled or
 * imported) is used as it is, without asking the registry (Docker's
 * IfNotPresent, what Bacalhau does); `cod image pull` refreshes it.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "executor/oci/oci.h"
#include "common/banned.h"

/* ------------------------------------------------------------ manifests */

void cod_oci_descriptors_free(struct cod_oci_descriptor *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(d[i].media_type);
		free(d[i].digest);
		free(d[i].platform);
	}
	free(d);
}

static void descriptor_release(struct cod_oci_descriptor *d)
{
	free(d->media_type);
	free(d->digest);
	free(d->platform);
	memset(d, 0, sizeof(*d));
}

void cod_oci_image_release(struct cod_oci_image *img)
{
	free(img->ref);
	free(img->index_digest);
	free(img->manifest_digest);
	free(img->platform);
	descriptor_release(&img->config);
	cod_oci_descriptors_free(img->layers, img->nlayers);
	json_decref(img->config_json);
	free(img->rootfs);
	if (img->hold_fd > 0)
		close(img->hold_fd);
	memset(img, 0, sizeof(*img));
	img->hold_fd = -1;
}

static int parse_descriptor(json_t *v, struct cod_oci_descriptor *d, const char *what, struct cod_error **err)
{
	memset(d, 0, sizeof(*d));
	json_t *mt = json_object_get(v, "mediaType"), *dg = json_object_get(v, "digest"),
	       *sz = json_object_get(v, "size");
	if (!json_is_object(v) || !json_is_string(dg) || !cod_oci_digest_valid(json_string_value(dg)))
		return cod_error_set(err, COD_E_VALIDATION, "%s: a descriptor has no valid sha256 digest",
				     what);
	if (sz && (!json_is_integer(sz) || json_integer_value(sz) < 0))
		return cod_error_set(err, COD_E_VALIDATION, "%s: a descriptor has an invalid size", what);
	d->media_type = xstrdup(json_is_string(mt) ? json_string_value(mt) : "");
	d->digest = xstrdup(json_string_value(dg));
	d->size = sz ? (uint64_t)json_integer_value(sz) : 0;
	json_t *p = json_object_get(v, "platform");
	if (json_is_object(p)) {
		json_t *os = json_object_get(p, "os"), *arch = json_object_get(p, "architecture"),
		       *var = json_object_get(p, "variant");
		d->platform = xasprintf("%s/%s%s%s", json_is_string(os) ? json_string_value(os) : "unknown",
					json_is_string(arch) ? json_string_value(arch) : "unknown",
					json_is_string(var) && *json_string_value(var) ? "/" : "",
					json_is_string(var) ? json_string_value(var) : "");
	}
	return 0;
}

bool cod_oci_is_index(const char *media_type, const char *data, size_t len)
{
	if (media_type && (!strcmp(media_type, COD_MT_OCI_INDEX) || !strcmp(media_type, COD_MT_DOCKER_LIST)))
		return true;
	if (media_type &&
	    (!strcmp(media_type, COD_MT_OCI_MANIFEST) || !strcmp(media_type, COD_MT_DOCKER_MANIFEST)))
		return false;
	cleanup_json json_t *doc = json_loadb(data, len, 0, NULL);
	return doc && json_is_array(json_object_get(doc, "manifests"));
}

int cod_oci_parse_index(const char *data, size_t len, struct cod_oci_descriptor **out, size_t *n,
			struct cod_error **err)
{
	*out = NULL;
	*n = 0;
	cleanup_json json_t *doc = json_loadb(data ? data : "", len, 0, NULL);
	json_t *ms = doc ? json_object_get(doc, "manifests") : NULL;
	if (!json_is_array(ms))
		return cod_error_set(err, COD_E_VALIDATION,
				     "image index is not valid JSON with \"manifests\"");
	size_t cnt = json_array_size(ms);
	struct cod_oci_descriptor *d = xcalloc(cnt ? cnt : 1, sizeof(*d));
	for (size_t i = 0; i < cnt; i++) {
		if (parse_descriptor(json_array_get(ms, i), &d[i], "image index", err) < 0) {
			cod_oci_descriptors_free(d, i);
			return -1;
		}
	}
	*out = d;
	*n = cnt;
	return 0;
}

int cod_oci_parse_manifest(const char *data, size_t len, struct cod_oci_image *img, struct cod_error **err)
{
	cleanup_json json_t *doc = json_loadb(data ? data : "", len, 0, NULL);
	if (!json_is_object(doc))
		return cod_error_set(err, COD_E_VALIDATION, "image manifest is not a JSON object");
	json_t *sv = json_object_get(doc, "schemaVersion");
	if (json_is_integer(sv) && json_integer_value(sv) == 1)
		return cod_error_set(err, COD_E_VALIDATION,
				     "image manifest uses Docker schema 1, which cod does not support; "
				     "push the image again with a current Docker or skopeo");
	json_t *cfg = json_object_get(doc, "config"), *layers = json_object_get(doc, "layers");
	if (!json_is_object(cfg) || !json_is_array(layers))
		return cod_error_set(err, COD_E_VALIDATION, "image manifest has no config or layers");
	if (parse_descriptor(cfg, &img->config, "image manifest", err) < 0)
		return -1;
	size_t n = json_array_size(layers);
	img->layers = xcalloc(n ? n : 1, sizeof(*img->layers));
	img->nlayers = 0;
	for (size_t i = 0; i < n; i++) {
		if (parse_descriptor(json_array_get(layers, i), &img->layers[i], "image manifest", err) < 0)
			return -1;
		img->nlayers = i + 1;
		const char *mt = img->layers[i].media_type;
		if (strstr(mt, "foreign") || strstr(mt, "nondistributable")) {
			/* Windows base layers: cannot be fetched or run here */
			return cod_error_set(err, COD_E_VALIDATION,
					     "image layer %s has media type %s, which cod cannot use",
					     img->layers[i].digest, mt);
		}
	}
	img->size = img->config.size;
	for (size_t i = 0; i < img->nlayers; i++)
		img->size += img->layers[i].size;
	return 0;
}

/* "linux/arm64/v8" matches "linux/arm64" and vice versa; other variants
 * must be equal. */
static bool platform_matches(const char *entry, const char *want)
{
	if (!entry)
		return false;
	size_t en = strlen(entry), wn = strlen(want);
	if (!strcmp(entry, want))
		return true;
	if (cod_str_has_prefix(entry, "linux/arm64") && cod_str_has_prefix(want, "linux/arm64"))
		return true;
	/* want without a variant matches any variant of it */
	if (en > wn && !strncmp(entry, want, wn) && entry[wn] == '/' && !strchr(want + 6, '/'))
		return true;
	return false;
}

int cod_oci_select_platform(const struct cod_oci_descriptor *d, size_t n, const char *platform)
{
	for (size_t i = 0; i < n; i++)
		if (d[i].platform && !strcmp(d[i].platform, platform))
			return (int)i;
	for (size_t i = 0; i < n; i++)
		if (platform_matches(d[i].platform, platform))
			return (int)i;
	return -1;
}

char *cod_oci_platform_mismatch(const char *image, const char *platform, const struct cod_oci_descriptor *d,
				size_t n)
{
	struct cod_buf b = COD_BUF_INIT;
	cod_buf_addf(&b, "image \"%s\" has no %s variant; available: ", image, platform);
	size_t shown = 0;
	for (size_t i = 0; i < n; i++) {
		if (!d[i].platform || cod_str_has_prefix(d[i].platform, "unknown/"))
			continue; /* attestations */
		bool dup = false;
		for (size_t j = 0; j < i; j++)
			if (d[j].platform && !strcmp(d[j].platform, d[i].platform))
				dup = true;
		if (dup)
			continue;
		cod_buf_addf(&b, "%s%s", shown++ ? ", " : "", d[i].platform);
	}
	if (!shown)
		cod_buf_addstr(&b, "none");
	return cod_buf_detach(&b, NULL);
}

/* os/arch of an image config. */
static char *config_platform(const json_t *config)
{
	json_t *os = json_object_get(config, "os"), *arch = json_object_get(config, "architecture"),
	       *var = json_object_get(config, "variant");
	return xasprintf("%s/%s%s%s", json_is_string(os) ? json_string_value(os) : "linux",
			 json_is_string(arch) ? json_string_value(arch) : "amd64",
			 json_is_string(var) && *json_string_value(var) ? "/" : "",
			 json_is_string(var) ? json_string_value(var) : "");
}

/* ---------------------------------------------------------- resolve cache */

struct cache_entry {
	char *key;
	int64_t expires_ms;
	enum cod_errcode code; /* 0 with ok */
	bool ok;
	char *message;
};

#define CACHE_MAX 256
static struct cache_entry cache[CACHE_MAX];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

void cod_oci_resolve_cache_clear(void)
{
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < CACHE_MAX; i++) {
		free(cache[i].key);
		free(cache[i].message);
		memset(&cache[i], 0, sizeof(cache[i]));
	}
	pthread_mutex_unlock(&cache_lock);
}

static bool cache_get(const char *key, int *rc, struct cod_error **err)
{
	bool hit = false;
	pthread_mutex_lock(&cache_lock);
	int64_t now = cod_mono_ms();
	for (size_t i = 0; i < CACHE_MAX; i++) {
		if (!cache[i].key || strcmp(cache[i].key, key) || cache[i].expires_ms < now)
			continue;
		hit = true;
		*rc = cache[i].ok ? 0 : cod_error_set(err, cache[i].code, "%s", cache[i].message);
		break;
	}
	pthread_mutex_unlock(&cache_lock);
	return hit;
}

static void cache_put(const char *key, bool ok, const struct cod_error *e)
{
	int64_t ttl = cod_oci_settings()->manifest_ttl_ms;
	if (ttl <= 0)
		return;
	pthread_mutex_lock(&cache_lock);
	size_t slot = 0;
	for (size_t i = 0; i < CACHE_MAX; i++) {
		if (!cache[i].key || !strcmp(cache[i].key, key)) {
			slot = i;
			break;
		}
		if (cache[i].expires_ms < cache[slot].expires_ms)
			slot = i;
	}
	free(cache[slot].key);
	free(cache[slot].message);
	cache[slot].key = xstrdup(key);
	cache[slot].expires_ms = cod_mono_ms() + ttl;
	cache[slot].ok = ok;
	cache[slot].code = e ? e->code : 0;
	cache[slot].message = e ? xstrdup(e->message) : NULL;
	pthread_mutex_unlock(&cache_lock);
}

/* Whether a local record of the image serves this platform. */
static int resolve_local(const char *canonical, const char *image, const char *platform,
			 struct cod_error **err)
{
	struct cod_oci_store_entry e;
	if (cod_oci_store_get_ref(canonical, &e, NULL) < 0)
		return 1; /* not here */
	int rc = 1;
	if (e.platform && platform_matches(e.platform, platform))
		rc = 0;
	else if (e.index_digest) {
		struct cod_buf ib = COD_BUF_INIT;
		if (cod_oci_store_read(e.index_digest, &ib, NULL) == 0) {
			struct cod_oci_descriptor *d = NULL;
			size_t n = 0;
			if (cod_oci_parse_index(ib.buf, ib.len, &d, &n, NULL) == 0) {
				if (cod_oci_select_platform(d, n, platform) < 0) {
					cleanup_free char *msg =
					    cod_oci_platform_mismatch(image, platform, d, n);
					rc = cod_error_set(err, COD_E_VALIDATION, "%s", msg);
				}
			}
			cod_oci_descriptors_free(d, n);
		}
		cod_buf_release(&ib);
	} else if (e.platform) {
		struct cod_oci_descriptor one = {.platform = e.platform};
		cleanup_free char *msg = cod_oci_platform_mismatch(image, platform, &one, 1);
		rc = cod_error_set(err, COD_E_VALIDATION, "%s", msg);
	}
	cod_oci_store_entry_release(&e);
	return rc;
}

/* Ask the registry which platforms the reference has. */
static int resolve_remote(const struct cod_oci_ref *ref, const char *image, const char *platform,
			  int64_t timeout_ms, struct cod_error **err)
{
	struct cod_oci_registry *reg = cod_oci_registry_new(ref, NULL, NULL, timeout_ms);
	struct cod_buf body = COD_BUF_INIT;
	cleanup_free char *mt = NULL, *digest = NULL;
	int rc =
	    cod_oci_registry_manifest(reg, ref->digest ? ref->digest : ref->tag, &body, &mt, &digest, err);
	if (rc == 0 && cod_oci_is_index(mt, body.buf, body.len)) {
		struct cod_oci_descriptor *d = NULL;
		size_t n = 0;
		rc = cod_oci_parse_index(body.buf, body.len, &d, &n, err);
		if (rc == 0 && cod_oci_select_platform(d, n, platform) < 0) {
			cleanup_free char *msg = cod_oci_platform_mismatch(image, platform, d, n);
			rc = cod_error_set(err, COD_E_VALIDATION, "%s", msg);
		}
		cod_oci_descriptors_free(d, n);
	} else if (rc == 0) {
		struct cod_oci_image img;
		memset(&img, 0, sizeof(img));
		rc = cod_oci_parse_manifest(body.buf, body.len, &img, err);
		struct cod_buf cb = COD_BUF_INIT;
		if (rc == 0)
			rc = cod_oci_registry_blob_mem(reg, img.config.digest, &cb, err);
		if (rc == 0) {
			cleanup_json json_t *config = json_loadb(cb.buf ? cb.buf : "", cb.len, 0, NULL);
			cleanup_free char *have = config_platform(config);
			if (!platform_matches(have, platform)) {
				struct cod_oci_descriptor one = {.platform = have};
				cleanup_free char *msg = cod_oci_platform_mismatch(image, platform, &one, 1);
				rc = cod_error_set(err, COD_E_VALIDATION, "%s", msg);
			}
		}
		cod_buf_release(&cb);
		img.hold_fd = -1;
		cod_oci_image_release(&img);
	}
	cod_buf_release(&body);
	cod_oci_registry_free(reg);
	return rc;
}

int cod_oci_resolve(const char *image, struct cod_error **err)
{
	struct cod_oci_ref ref;
	if (cod_oci_ref_parse(image, &ref, err) < 0)
		return -1;
	cleanup_free char *canonical = cod_oci_ref_string(&ref);
	cleanup_free char *platform = cod_oci_node_platform();
	cleanup_free char *key = xasprintf("%s %s", canonical, platform);
	int rc = 0;
	if (cache_get(key, &rc, err)) {
		cod_oci_ref_release(&ref);
		return rc;
	}
	rc = resolve_local(canonical, image, platform, err);
	if (rc == 1)
		rc = resolve_remote(&ref, image, platform, cod_oci_settings()->resolve_timeout_ms, err);
	/* Remember answers that will not change soon: runnable, or the
	 * platform is missing. */
	if (rc == 0)
		cache_put(key, true, NULL);
	else if (err && *err && (*err)->code == COD_E_VALIDATION)
		cache_put(key, false, *err);
	cod_oci_ref_release(&ref);
	return rc;
}

/* ----------------------------------------------------------------- pull */

#define USED_PRECISION_NS (60 * 1000000000LL)

struct pull {
	struct cod_oci_registry *reg;
	const struct cod_oci_descriptor *desc;
	cod_oci_abort_fn abort_fn;
	void *abort_arg;
	cod_oci_message_fn message;
	void *message_arg;
	const char *image;
	uint64_t done_before, total; /* all layers */
	size_t index, count;
	int64_t last_ms;
	bool grew; /* the store holds more than before: a download or an unpack */
};

static void on_blob_progress(void *arg, uint64_t done, uint64_t total)
{
	(void)total;
	struct pull *p = arg;
	if (!p->message)
		return;
	cleanup_free char *msg =
	    xasprintf("pulling image %s: layer %zu/%zu, %.1f/%.1f MB", p->image, p->index + 1, p->count,
		      (double)(p->done_before + done) / 1e6, (double)p->total / 1e6);
	p->message(p->message_arg, msg);
}

static int fetch_blob(void *arg, const char *partial, struct cod_error **err)
{
	struct pull *p = arg;
	return cod_oci_registry_blob(p->reg, p->desc->digest, p->desc->size, partial, on_blob_progress, p,
				     err);
}

static bool store_complete(const struct cod_oci_image *img)
{
	if (!cod_oci_blob_exists(img->config.digest))
		return false;
	for (size_t i = 0; i < img->nlayers; i++)
		if (!cod_oci_blob_exists(img->layers[i].digest))
			return false;
	return true;
}

static int load_config(struct cod_oci_image *img, struct cod_error **err)
{
	struct cod_buf cb = COD_BUF_INIT;
	if (cod_oci_store_read(img->config.digest, &cb, err) < 0)
		return -1;
	json_error_t je;
	img->config_json = json_loadb(cb.buf ? cb.buf : "", cb.len, 0, &je);
	cod_buf_release(&cb);
	if (!json_is_object(img->config_json))
		return cod_error_set(err, COD_E_VALIDATION, "image config %.19s is not a JSON object",
				     img->config.digest);
	free(img->platform);
	img->platform = config_platform(img->config_json);
	return 0;
}

/* Fill img from a stored record. 1 = incomplete (pull again). */
static int from_store(const char *canonical, struct cod_oci_image *img, struct cod_error **err)
{
	struct cod_oci_store_entry e;
	if (cod_oci_store_get_ref(canonical, &e, NULL) < 0)
		return 1;
	struct cod_buf m = COD_BUF_INIT;
	int rc = 1;
	if (cod_oci_store_read(e.manifest_digest, &m, NULL) == 0 &&
	    cod_oci_parse_manifest(m.buf, m.len, img, NULL) == 0 && store_complete(img)) {
		img->manifest_digest = xstrdup(e.manifest_digest);
		img->index_digest = xstrdup_or_null(e.index_digest);
		rc = load_config(img, err) < 0 ? -1 : 0;
	}
	cod_buf_release(&m);
	if (rc == 1) {
		/* forget what was partly parsed */
		cod_oci_image_release(img);
	}
	cod_oci_store_entry_release(&e);
	return rc;
}

static int from_registry(const struct cod_oci_ref *ref, const char *image, struct pull *p,
			 struct cod_oci_image *img, struct cod_error **err)
{
	cleanup_free char *platform = cod_oci_node_platform();
	struct cod_buf body = COD_BUF_INIT;
	cleanup_free char *mt = NULL, *digest = NULL;
	if (p->message) {
		cleanup_free char *msg = xasprintf("pulling image %s: resolving", image);
		p->message(p->message_arg, msg);
	}
	if (cod_oci_registry_manifest(p->reg, ref->digest ? ref->digest : ref->tag, &body, &mt, &digest,
				      err) < 0)
		return -1;
	if (cod_oci_is_index(mt, body.buf, body.len)) {
		struct cod_oci_descriptor *d = NULL;
		size_t n = 0;
		int rc = cod_oci_parse_index(body.buf, body.len, &d, &n, err);
		int pick = rc == 0 ? cod_oci_select_platform(d, n, platform) : -1;
		if (rc == 0 && pick < 0) {
			cleanup_free char *msg = cod_oci_platform_mismatch(image, platform, d, n);
			rc = cod_error_set(err, COD_E_VALIDATION, "%s", msg);
		}
		if (rc == 0)
			rc = cod_oci_store_put(body.buf, body.len, digest, NULL, err);
		char *mdigest = rc == 0 ? xstrdup(d[pick].digest) : NULL;
		cod_oci_descriptors_free(d, n);
		cod_buf_release(&body);
		free(mt);
		mt = NULL;
		if (rc < 0)
			return -1;
		img->index_digest = steal_pointer(&digest);
		digest = mdigest;
		if (cod_oci_registry_manifest(p->reg, digest, &body, &mt, &img->manifest_digest, err) < 0)
			return -1;
		if (cod_oci_is_index(mt, body.buf, body.len)) {
			cod_buf_release(&body);
			return cod_error_set(err, COD_E_VALIDATION,
					     "image \"%s\": nested image indexes are not supported", image);
		}
	} else {
		img->manifest_digest = steal_pointer(&digest);
	}
	int rc = cod_oci_parse_manifest(body.buf, body.len, img, err);
	if (rc == 0)
		rc = cod_oci_store_put(body.buf, body.len, img->manifest_digest, NULL, err);
	cod_buf_release(&body);
	if (rc < 0)
		return -1;
	/* config, then the layers */
	p->desc = &img->config;
	p->count = img->nlayers;
	if (cod_oci_store_blob(img->config.digest, fetch_blob, p, p->abort_fn, p->abort_arg, err) < 0)
		return cod_error_wrap(err, "pull image \"%s\": config", image);
	if (load_config(img, err) < 0)
		return -1;
	if (!platform_matches(img->platform, platform)) {
		struct cod_oci_descriptor one = {.platform = img->platform};
		cleanup_free char *msg = cod_oci_platform_mismatch(image, platform, &one, 1);
		return cod_error_set(err, COD_E_VALIDATION, "%s", msg);
	}
	p->total = 0;
	for (size_t i = 0; i < img->nlayers; i++)
		p->total += img->layers[i].size;
	for (size_t i = 0; i < img->nlayers; i++) {
		p->index = i;
		p->desc = &img->layers[i];
		if (cod_oci_store_blob(img->layers[i].digest, fetch_blob, p, p->abort_fn, p->abort_arg, err) <
		    0)
			return cod_error_wrap(err, "pull image \"%s\": layer %zu of %zu", image, i + 1,
					      img->nlayers);
		p->done_before += img->layers[i].size;
	}
	return 0;
}

/* Said only when there is unpacking to do: a driver's progress message
 * reports the execution's phase at once. */
static void say_unpacking(void *arg)
{
	struct pull *p = arg;
	if (p->message) {
		cleanup_free char *msg = xasprintf("unpacking image %s", p->image);
		p->message(p->message_arg, msg);
	}
}

static int pull_locked(const struct cod_oci_ref *ref, const char *image, bool refresh, struct pull *p,
		       struct cod_oci_image *img, struct cod_error **err)
{
	cleanup_free char *canonical = cod_oci_ref_string(ref);
	int rc = refresh ? 1 : from_store(canonical, img, err);
	if (rc < 0)
		return -1;
	bool pulled = false;
	if (rc == 1) {
		p->reg = cod_oci_registry_new(ref, NULL, NULL, 0);
		cod_oci_registry_set_abort(p->reg, p->abort_fn, p->abort_arg);
		rc = from_registry(ref, image, p, img, err);
		cod_oci_registry_free(p->reg);
		p->reg = NULL;
		if (rc < 0)
			return -1;
		pulled = true;
	}
	int unpacked = cod_oci_store_unpack(img, p->abort_fn, p->abort_arg, say_unpacking, p, err);
	if (unpacked < 0)
		return cod_error_wrap(err, "image \"%s\"", image);
	p->grew = pulled || unpacked;
	img->hold_fd = cod_oci_store_hold(img->manifest_digest);
	img->ref = xstrdup(canonical);
	struct cod_oci_store_entry e = {0};
	struct cod_oci_store_entry old;
	bool had = cod_oci_store_get_ref(canonical, &old, NULL) == 0;
	int64_t now = cod_now_ns();
	bool fresh = p->grew || !had || !old.size;
	/* The last-used time only orders evictions: an image used again
	 * within a minute keeps its record as it is (no rewrite per job). */
	if (!fresh && old.used_ns <= now && now - old.used_ns < USED_PRECISION_NS) {
		cod_oci_store_entry_release(&old);
		return 0;
	}
	e.ref = canonical;
	e.manifest_digest = img->manifest_digest;
	e.index_digest = img->index_digest;
	e.platform = img->platform;
	e.size = img->size + (fresh ? cod_oci_du(img->rootfs) : old.size - img->size);
	e.pulled_ns = pulled || !had ? now : old.pulled_ns;
	e.used_ns = now;
	if (had)
		cod_oci_store_entry_release(&old);
	return cod_oci_store_put_ref(&e, err);
}

/* Whether the store was measured since cod_oci_configure. */
static atomic_bool measured;

void cod_oci_store_measure_next(void)
{
	atomic_store(&measured, false);
}

static int do_pull(const char *image, bool refresh, cod_oci_abort_fn abort_fn, void *abort_arg,
		   cod_oci_message_fn message, void *message_arg, struct cod_oci_image *img,
		   struct cod_error **err)
{
	memset(img, 0, sizeof(*img));
	img->hold_fd = -1;
	struct cod_oci_ref ref;
	if (cod_oci_ref_parse(image, &ref, err) < 0)
		return -1;
	int lk = cod_oci_store_lock_shared(abort_fn, abort_arg);
	if (lk < 0) {
		cod_oci_ref_release(&ref);
		return abort_fn && abort_fn(abort_arg)
			   ? cod_error_set(err, COD_E_UNAVAILABLE, "cancelled")
			   : cod_error_set(err, COD_E_IO, "lock the image store: %s", strerror(errno));
	}
	struct pull p = {.abort_fn = abort_fn,
			 .abort_arg = abort_arg,
			 .message = message,
			 .message_arg = message_arg,
			 .image = image};
	int rc = pull_locked(&ref, image, refresh, &p, img, err);
	close(lk);
	if (rc == 0) {
		/* Measuring the store walks every file in it: only when it grew,
		 * and once after start (the cap may have been lowered). */
		uint64_t max = cod_oci_settings()->store_max;
		bool first = !atomic_exchange(&measured, true);
		if (max && (p.grew || first) && cod_oci_store_size() > max)
			cod_oci_store_gc(max, img->ref, NULL, NULL);
	} else {
		cod_oci_image_release(img);
	}
	cod_oci_ref_release(&ref);
	return rc;
}

int cod_oci_pull(const char *image, cod_oci_abort_fn abort_fn, void *abort_arg, cod_oci_message_fn message,
		 void *message_arg, struct cod_oci_image *img, struct cod_error **err)
{
	return do_pull(image, false, abort_fn, abort_arg, message, message_arg, img, err);
}

/* `cod image pull`: always ask the registry. */
int cod_oci_pull_refresh(const char *image, struct cod_oci_image *img, struct cod_error **err)
{
	return do_pull(image, true, NULL, NULL, NULL, NULL, img, err);
}
