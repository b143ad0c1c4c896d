/*
 * url.c - the `urlDownload` input source: an HTTP(S) GET into a directory
 * mounted read-only at the input's Target, the file named after the
 * response's Content-Disposition or the URL's last path segment.
 *
 * Params: URL (http or https), SHA256 (optional, cod: the hex digest the
 * download must have). Redirects are followed (up to 10); the download is
 * capped at the task's Disk (Bacalhau issue #3653); InputSources.ReadTimeout
 * bounds one attempt, and the runner retries per InputSources.MaxRetryCount.
 *
 * Cache: a download with an ETag or Last-Modified is cached under
 * "<URL>#etag:<etag>" or "<URL>#lm:<date>" and revalidated with a
 * conditional GET next time (304: served from the node); one with SHA256 is
 * cached under "<URL>#sha256:<hex>" and needs no revalidation at all.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "storage/cache.h"
#include "storage/http.h"
#include "storage/storage.h"
#include "common/banned.h"

static const char *url_of(const struct cod_input_source *in)
{
	return cod_storage_param(in, "URL");
}

static bool is_http(const char *url)
{
	return url && (!strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8));
}

static bool valid_sha(const char *s)
{
	if (!s || strlen(s) != 64)
		return false;
	for (const char *p = s; *p; p++)
		if (!isxdigit((unsigned char)*p))
			return false;
	return true;
}

static bool bid_check(const struct cod_config *cfg, const struct cod_input_source *in, char **reason)
{
	const char *url = url_of(in);
	if (cod_str_empty(url)) {
		*reason = xstrdup("urlDownload input has no URL parameter");
		return false;
	}
	if (!is_http(url)) {
		*reason = xasprintf("urlDownload input \"%s\" is not an http:// or https:// URL", url);
		return false;
	}
	const char *sha = cod_storage_param(in, "SHA256");
	if (sha && !valid_sha(sha)) {
		*reason = xasprintf("urlDownload input \"%s\": SHA256 \"%s\" is not 64 hex digits", url, sha);
		return false;
	}
	return cod_storage_locality_ok(cfg, &cod_storage_url, in, reason);
}

static char *sha_key(const char *url, const char *sha)
{
	cleanup_free char *lower = cod_str_lower(sha);
	return xasprintf("%s#sha256:%s", url, lower);
}

static int64_t local_bytes(const struct cod_config *cfg, const struct cod_input_source *in)
{
	const char *url = url_of(in);
	if (!is_http(url) || !cod_cache_enabled(cfg))
		return 0;
	const char *sha = cod_storage_param(in, "SHA256");
	cleanup_free char *key = valid_sha(sha) ? sha_key(url, sha) : cod_cache_find(cfg, url);
	uint64_t size = key ? cod_cache_size(cfg, key) : 0;
	return (int64_t)size;
}

/* A safe file name: no directories, not "." or "..", printable. Heap or
 * NULL. */
static char *clean_name(const char *name)
{
	if (cod_str_empty(name))
		return NULL;
	const char *slash = strrchr(name, '/');
	if (slash)
		name = slash + 1;
	const char *bslash = strrchr(name, '\\');
	if (bslash)
		name = bslash + 1;
	if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
		return NULL;
	char *out = xstrdup(name);
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '_';
	return out;
}

/* filename from Content-Disposition (filename*=UTF-8''x wins over
 * filename="x"). Heap or NULL. */
static char *disposition_name(const char *cd)
{
	if (!cd)
		return NULL;
	const char *star = strcasestr(cd, "filename*=");
	if (star) {
		const char *v = star + 10;
		const char *q = strstr(v, "''");
		if (q)
			v = q + 2;
		size_t n = strcspn(v, ";");
		cleanup_free char *raw = xstrndup(v, n);
		cleanup_free char *dec = cod_url_decode(cod_str_trim(raw), false);
		char *name = clean_name(dec);
		if (name)
			return name;
	}
	const char *p = cd;
	while ((p = strcasestr(p, "filename="))) {
		if (p > cd && p[-1] == '*') {
			p += 9;
			continue;
		}
		const char *v = p + 9;
		while (*v == ' ')
			v++;
		cleanup_free char *raw = NULL;
		if (*v == '"') {
			const char *end = strchr(v + 1, '"');
			raw = end ? xstrndup(v + 1, (size_t)(end - v - 1)) : xstrdup(v + 1);
		} else {
			raw = xstrndup(v, strcspn(v, ";"));
		}
		return clean_name(cod_str_trim(raw));
	}
	return NULL;
}

/* The last path segment of a URL, percent-decoded. Heap or NULL. */
static char *url_name(const char *url)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	p = strchr(p, '/');
	if (!p)
		return NULL;
	size_t n = strcspn(p, "?#");
	cleanup_free char *path = xstrndup(p, n);
	char *slash = strrchr(path, '/');
	if (!slash || !slash[1])
		return NULL;
	cleanup_free char *dec = cod_url_decode(slash + 1, false);
	return clean_name(dec);
}

static bool cancelled(void *arg)
{
	return arg && cod_executor_cancelled(arg);
}

static void note_hit(const struct cod_storage_ctx *ctx, uint64_t bytes)
{
	if (ctx->stats) {
		ctx->stats->bytes_local = bytes;
		ctx->stats->cache_hit = true;
	}
}

static int prepare(const struct cod_storage_ctx *ctx, struct cod_mount *mount, struct cod_error **err)
{
	const struct cod_config *cfg = ctx->cfg;
	const char *url = url_of(ctx->input);
	cleanup_free char *reason = NULL;
	if (!bid_check(NULL, ctx->input, &reason))
		return cod_error_set(err, COD_E_VALIDATION, "%s", reason);
	const char *sha = cod_storage_param(ctx->input, "SHA256");
	cleanup_free char *dir = xasprintf("%s/data", ctx->work_dir);
	cod_remove_tree(dir);

	/* content-verified copies need no revalidation */
	if (valid_sha(sha)) {
		cleanup_free char *key = sha_key(url, sha);
		uint64_t bytes = 0;
		if (cod_cache_fetch(cfg, key, dir, &bytes, NULL) == 1) {
			note_hit(ctx, bytes);
			return cod_storage_mount_ro(ctx, mount, &dir);
		}
	}

	cleanup_free char *cached_key = valid_sha(sha) ? NULL : cod_cache_find(cfg, url);
	if (mkdir(dir, 0755) < 0)
		return cod_error_set(err, COD_E_IO, "create \"%s\": %s", dir, strerror(errno));
	cleanup_free char *tmp = xasprintf("%s/.download", dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return cod_error_set(err, COD_E_IO, "create \"%s\": %s", tmp, strerror(errno));
	struct cod_strlist headers = {0};
	if (cached_key) {
		const char *hash = strchr(cached_key + strlen(url), '#');
		if (hash && !strncmp(hash, "#etag:", 6)) {
			cleanup_free char *h = xasprintf("If-None-Match: %s", hash + 6);
			cod_strlist_add(&headers, h);
		} else if (hash && !strncmp(hash, "#lm:", 4)) {
			cleanup_free char *h = xasprintf("If-Modified-Since: %s", hash + 4);
			cod_strlist_add(&headers, h);
		}
	}
	struct cod_http_request req;
	cod_http_request_init(&req, url);
	req.headers = &headers;
	req.out_fd = fd;
	req.follow_redirects = true;
	req.max_bytes = ctx->execution ? ctx->execution->allocated.disk : 0;
	req.timeout_ms = cfg ? cfg->input_read_timeout_ms : 0;
	req.cancelled = cancelled;
	req.cancel_arg = ctx->run;
	struct cod_http_response resp;
	int rc = cod_http_do(&req, &resp, err);
	close(fd);
	cod_strlist_release(&headers);
	if (rc < 0) {
		if (*err && (*err)->code == COD_E_TOO_LARGE)
			cod_error_hint(*err, "the download is capped at the task's Disk; ask for more with "
					     "Resources.Disk");
		cod_http_response_release(&resp);
		return -1;
	}
	if (resp.status == 304 && cached_key) {
		cod_remove_tree(dir);
		uint64_t bytes = 0;
		if (cod_cache_fetch(cfg, cached_key, dir, &bytes, NULL) == 1) {
			cod_http_response_release(&resp);
			note_hit(ctx, bytes);
			return cod_storage_mount_ro(ctx, mount, &dir);
		}
		cod_http_response_release(&resp);
		return cod_error_set(err, COD_E_IO, "GET %s: 304 Not Modified, but the cached copy is gone", url);
	}
	if (resp.status < 200 || resp.status >= 300) {
		long status = resp.status;
		cod_http_response_release(&resp);
		cod_error_set(err, status >= 500 || status == 429 ? COD_E_NETWORK : COD_E_NOT_FOUND,
			      "GET %s: HTTP %ld", url, status);
		if (status == 404 || status == 403 || status == 401)
			cod_error_hint(*err, "check that the URL is right and public");
		return -1;
	}
	uint64_t fetched = resp.bytes;
	if (valid_sha(sha)) {
		char hex[65];
		if (cod_sha256_file(tmp, hex, NULL, err) < 0) {
			cod_http_response_release(&resp);
			return -1;
		}
		if (strcasecmp(hex, sha)) {
			cod_http_response_release(&resp);
			return cod_error_set(err, COD_E_VALIDATION,
					     "%s: the download's sha256 is %s, not the SHA256 %s the job expects", url,
					     hex, sha);
		}
	}
	cleanup_free char *name = disposition_name(cod_http_header(&resp, "content-disposition"));
	if (!name)
		name = url_name(resp.effective_url);
	if (!name)
		name = url_name(url);
	if (!name)
		name = xstrdup("download");
	cleanup_free char *final = xasprintf("%s/%s", dir, name);
	if (rename(tmp, final) < 0) {
		cod_http_response_release(&resp);
		return cod_error_set(err, COD_E_IO, "rename \"%s\": %s", final, strerror(errno));
	}
	cleanup_free char *new_key = NULL;
	const char *etag = cod_http_header(&resp, "etag");
	const char *lm = cod_http_header(&resp, "last-modified");
	if (valid_sha(sha))
		new_key = sha_key(url, sha);
	else if (!cod_str_empty(etag))
		new_key = xasprintf("%s#etag:%s", url, etag);
	else if (!cod_str_empty(lm))
		new_key = xasprintf("%s#lm:%s", url, lm);
	cod_http_response_release(&resp);
	if (cached_key && (!new_key || strcmp(new_key, cached_key)))
		cod_cache_drop(cfg, cached_key);
	if (new_key)
		cod_cache_store(cfg, new_key, dir);
	if (ctx->stats)
		ctx->stats->bytes_fetched = fetched;
	return cod_storage_mount_ro(ctx, mount, &dir);
}

const struct cod_storage_ops cod_storage_url = {
	.name = "urlDownload",
	.bid_check = bid_check,
	.local_bytes = local_bytes,
	.prepare = prepare,
};
