/*
 * registry.c - a client of the OCI distribution API (registry v2) on
 * libcurl: manifests into capped buffers, blobs streamed to disk with
 * sha256 verification and resume, and the auth dance:
 *
 *   GET /v2/<repo>/manifests/<ref>  -> 401, WWW-Authenticate: Bearer realm=..,service=..,scope=..
 *   GET <realm>?service=..&scope=repository:<repo>:pull   (Basic credentials if any)
 *                                    -> {"token": ...}
 *   retry with Authorization: Bearer <token>
 *
 * or, for a registry that answers "WWW-Authenticate: Basic", the retry
 * carries the Basic credentials. Credentials never follow a redirect to
 * another host (blob storage): libcurl drops the Authorization header
 * there.
 *
 * Loopback registries (localhost, 127.0.0.0/8, ::1) and those listed in
 * Engines.Types.Docker.InsecureRegistries are spoken to over plain HTTP.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
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

#define USER_AGENT "cod/" COD_VERSION
#define DEFAULT_TIMEOUT_MS 30000
#define STALL_SECONDS 60

struct cod_oci_registry {
	char *base; /* "https://host" */
	char *host;
	char *repo;
	char *user, *password;
	char *bearer; /* token once obtained */
	bool basic;   /* the registry asked for Basic */
	bool push;    /* scope includes push */
	int64_t timeout_ms;
	cod_oci_abort_fn abort_fn;
	void *abort_arg;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool insecure_host(const char *host)
{
	const struct cod_oci_settings *s = cod_oci_settings();
	for (size_t i = 0; i < s->insecure.n; i++)
		if (!strcasecmp(s->insecure.items[i], host))
			return true;
	size_t hn = strcspn(host, ":");
	if (host[0] == '[')
		return cod_str_has_prefix(host, "[::1]");
	return (hn == 9 && !strncasecmp(host, "localhost", 9)) || cod_str_has_prefix(host, "127.");
}

struct cod_oci_registry *cod_oci_registry_new(const struct cod_oci_ref *ref, const char *user,
					      const char *password, int64_t timeout_ms)
{
	pthread_once(&curl_once, curl_init);
	struct cod_oci_registry *reg = xcalloc(1, sizeof(*reg));
	reg->host = xstrdup(cod_oci_ref_host(ref));
	reg->base = xasprintf("%s://%s", insecure_host(reg->host) ? "http" : "https", reg->host);
	reg->repo = xstrdup(ref->repository);
	reg->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
	if (user) {
		reg->user = xstrdup(user);
		reg->password = xstrdup(password ? password : "");
	} else {
		cod_oci_credentials(ref->registry, &reg->user, &reg->password);
	}
	return reg;
}

void cod_oci_registry_free(struct cod_oci_registry *reg)
{
	if (!reg)
		return;
	free(reg->base);
	free(reg->host);
	free(reg->repo);
	free(reg->user);
	if (reg->password)
		memset(reg->password, 0, strlen(reg->password));
	free(reg->password);
	free(reg->bearer);
	free(reg);
}

void cod_oci_registry_set_abort(struct cod_oci_registry *reg, cod_oci_abort_fn fn, void *arg)
{
	reg->abort_fn = fn;
	reg->abort_arg = arg;
}

/* ------------------------------------------------------------ transfers */

struct xfer {
	struct cod_oci_registry *reg;
	CURL *curl;
	/* sink: memory (capped) or a file, hashed as it arrives */
	struct cod_buf *mem;
	int fd;
	EVP_MD_CTX *sha;
	uint64_t received; /* body bytes of a 2xx answer */
	bool too_large, write_failed;
	struct cod_buf errbody; /* body of a non-2xx answer, capped */
	/* headers of the last response */
	char *www_auth, *content_type, *digest_hdr, *location;
	uint64_t offset; /* bytes already on disk (resume) */
	uint64_t total;	 /* expected size, 0 = unknown */
	cod_oci_progress_fn progress;
	void *progress_arg;
	int64_t last_progress_ms;
};

static void xfer_release(struct xfer *x)
{
	free(x->www_auth);
	free(x->content_type);
	free(x->digest_hdr);
	free(x->location);
	cod_buf_release(&x->errbody);
}

static void set_header(char **slot, const char *value)
{
	free(*slot);
	*slot = xstrdup(value);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	cleanup_free char *line = xstrndup(data, n);
	cod_str_trim(line);
	if (cod_str_has_prefix(line, "HTTP/")) {
		/* a new response (redirect, 100-continue): forget the last */
		free(x->www_auth);
		free(x->content_type);
		free(x->digest_hdr);
		free(x->location);
		x->www_auth = x->content_type = x->digest_hdr = x->location = NULL;
		return n;
	}
	char *colon = strchr(line, ':');
	if (!colon)
		return n;
	*colon = '\0';
	const char *value = cod_str_trim(colon + 1);
	if (!strcasecmp(line, "WWW-Authenticate"))
		set_header(&x->www_auth, value);
	else if (!strcasecmp(line, "Content-Type"))
		set_header(&x->content_type, value);
	else if (!strcasecmp(line, "Docker-Content-Digest"))
		set_header(&x->digest_hdr, value);
	else if (!strcasecmp(line, "Location"))
		set_header(&x->location, value);
	return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	long status = 0;
	curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		cod_buf_add(&x->errbody, data, n); /* capped: excess dropped */
		return n;
	}
	if (x->mem) {
		if (cod_buf_add(x->mem, data, n) < 0) {
			x->too_large = true;
			return 0;
		}
	} else if (x->fd >= 0) {
		for (size_t off = 0; off < n;) {
			ssize_t w = write(x->fd, data + off, n - off);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				x->write_failed = true;
				return 0;
			}
			off += (size_t)w;
		}
	}
	if (x->sha)
		EVP_DigestUpdate(x->sha, data, n);
	x->received += n;
	if (x->total && x->offset + x->received > x->total) {
		x->too_large = true;
		return 0;
	}
	return n;
}

static int on_xferinfo(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	struct xfer *x = arg;
	if (x->reg->abort_fn && x->reg->abort_fn(x->reg->abort_arg))
		return 1;
	if (x->progress) {
		int64_t now = cod_mono_ms();
		if (now - x->last_progress_ms >= 500) {
			x->last_progress_ms = now;
			x->progress(x->progress_arg, x->offset + x->received, x->total);
		}
	}
	return 0;
}

/* Parse `Bearer realm="..",service="..",scope=".."` parameters. */
static char *auth_param(const char *header, const char *name)
{
	size_t nlen = strlen(name);
	for (const char *p = header; (p = strcasestr(p, name)) != NULL; p += nlen) {
		if (p != header && p[-1] != ' ' && p[-1] != ',')
			continue;
		const char *v = p + nlen;
		while (*v == ' ')
			v++;
		if (*v != '=')
			continue;
		v++;
		while (*v == ' ')
			v++;
		if (*v == '"') {
			const char *end = strchr(v + 1, '"');
			return end ? xstrndup(v + 1, (size_t)(end - v - 1)) : NULL;
		}
		return xstrndup(v, strcspn(v, ", "));
	}
	return NULL;
}

/* The registry's own words from an error body {"errors":[{"code","message"}]}. */
static char *registry_message(const struct cod_buf *body)
{
	if (!body->len)
		return NULL;
	cleanup_json json_t *doc = json_loadb(body->buf, body->len, 0, NULL);
	json_t *errs = doc ? json_object_get(doc, "errors") : NULL;
	json_t *first = json_is_array(errs) ? json_array_get(errs, 0) : NULL;
	json_t *code = first ? json_object_get(first, "code") : NULL,
	       *msg = first ? json_object_get(first, "message") : NULL;
	if (json_is_string(msg) && json_is_string(code))
		return xasprintf("%s: %s", json_string_value(code), json_string_value(msg));
	if (json_is_string(msg))
		return xstrdup(json_string_value(msg));
	json_t *details = doc ? json_object_get(doc, "details") : NULL;
	if (json_is_string(details))
		return xstrdup(json_string_value(details));
	return NULL;
}

static CURL *new_handle(struct cod_oci_registry *reg, struct xfer *x, const char *url, bool long_transfer)
{
	CURL *c = curl_easy_init();
	if (!c)
		return NULL;
	x->curl = c;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)reg->timeout_ms);
	if (long_transfer) {
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)STALL_SECONDS);
	} else {
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)reg->timeout_ms);
	}
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	return c;
}

static int curl_failed(struct cod_oci_registry *reg, struct xfer *x, CURLcode rc, const char *what,
		       struct cod_error **err)
{
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		return cod_error_set(err, COD_E_UNAVAILABLE, "cancelled");
	if (x->too_large)
		return cod_error_set(err, COD_E_TOO_LARGE, "%s from %s: larger than expected", what,
				     reg->host);
	if (x->write_failed)
		return cod_error_set(err, COD_E_IO, "%s from %s: write to disk: %s", what, reg->host,
				     strerror(errno));
	if (rc == CURLE_OPERATION_TIMEDOUT)
		return cod_error_set(err, COD_E_TIMEOUT, "%s from %s: timed out", what, reg->host);
	cod_error_set(err, COD_E_NETWORK, "%s from %s: %s", what, reg->host, curl_easy_strerror(rc));
	if (err && (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST))
		cod_error_hint(*err, "check that the registry is reachable from the compute node");
	return -1;
}

/* Get a token for a Bearer challenge. */
static int fetch_token(struct cod_oci_registry *reg, const char *challenge, struct cod_error **err)
{
	cleanup_free char *realm = auth_param(challenge, "realm");
	cleanup_free char *service = auth_param(challenge, "service");
	cleanup_free char *scope = auth_param(challenge, "scope");
	if (!realm)
		return cod_error_set(err, COD_E_NETWORK, "registry %s: Bearer challenge without a realm",
				     reg->host);
	if (!scope || reg->push) {
		free(scope);
		scope = xasprintf("repository:%s:%s", reg->repo, reg->push ? "pull,push" : "pull");
	}
	struct cod_buf url = COD_BUF_INIT;
	cod_buf_addstr(&url, realm);
	char sep = strchr(realm, '?') ? '&' : '?';
	CURL *esc = curl_easy_init();
	if (service) {
		char *e = curl_easy_escape(esc, service, 0);
		cod_buf_addf(&url, "%cservice=%s", sep, e);
		curl_free(e);
		sep = '&';
	}
	char *e = curl_easy_escape(esc, scope, 0);
	cod_buf_addf(&url, "%cscope=%s", sep, e);
	curl_free(e);
	curl_easy_cleanup(esc);

	struct cod_buf body;
	cod_buf_init(&body, 1 << 20);
	struct xfer x = {.reg = reg, .mem = &body, .fd = -1};
	cod_buf_init(&x.errbody, 8192);
	int rc = -1;
	CURL *c = new_handle(reg, &x, url.buf, false);
	if (!c) {
		cod_error_set(err, COD_E_INTERNAL, "curl_easy_init failed");
		goto out;
	}
	if (reg->user) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, reg->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, reg->password);
	}
	CURLcode cr = curl_easy_perform(c);
	if (cr != CURLE_OK) {
		curl_failed(reg, &x, cr, "token", err);
		goto out;
	}
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status == 401 || status == 403) {
		cod_error_set(err, COD_E_UNAUTHORIZED, "registry %s refused %s: HTTP %ld", reg->host,
			      reg->user ? "the credentials" : "an anonymous token", status);
		if (err)
			cod_error_hint(*err, "set Engines.Types.Docker.Credentials %s=user:password",
				       reg->host);
		goto out;
	}
	if (status != 200) {
		cod_error_set(err, COD_E_NETWORK, "registry %s token service answered HTTP %ld", reg->host,
			      status);
		goto out;
	}
	{
		cleanup_json json_t *doc = json_loadb(body.buf ? body.buf : "", body.len, 0, NULL);
		json_t *t = doc ? json_object_get(doc, "token") : NULL;
		if (!json_is_string(t))
			t = doc ? json_object_get(doc, "access_token") : NULL;
		if (!json_is_string(t)) {
			cod_error_set(err, COD_E_NETWORK, "registry %s token service gave no token",
				      reg->host);
			goto out;
		}
		free(reg->bearer);
		reg->bearer = xstrdup(json_string_value(t));
		rc = 0;
	}
out:
	if (c)
		curl_easy_cleanup(c);
	xfer_release(&x);
	cod_buf_release(&body);
	cod_buf_release(&url);
	return rc;
}

struct request {
	const char *method; /* NULL = GET */
	const char *path;   /* "/v2/<repo>/..." or an absolute URL */
	const char *accept;
	const char *content_type;
	const void *body;
	size_t body_len;
	const char *what; /* for messages: "manifest \"x\"" */
	bool long_transfer;
};

/* One request with the auth retry. On return, x holds the last response;
 * *status its code (0 = none; *err set then). */
static int perform(struct cod_oci_registry *reg, const struct request *rq, struct xfer *x, long *status,
		   struct cod_error **err)
{
	*status = 0;
	cleanup_free char *url =
	    cod_str_has_prefix(rq->path, "http://") || cod_str_has_prefix(rq->path, "https://")
		? xstrdup(rq->path)
		: xasprintf("%s%s", reg->base, rq->path);
	for (int attempt = 0; attempt < 2; attempt++) {
		struct curl_slist *hdrs = NULL;
		if (rq->accept) {
			cleanup_free char *h = xasprintf("Accept: %s", rq->accept);
			hdrs = curl_slist_append(hdrs, h);
		}
		if (rq->content_type) {
			cleanup_free char *h = xasprintf("Content-Type: %s", rq->content_type);
			hdrs = curl_slist_append(hdrs, h);
		}
		if (x->offset) {
			cleanup_free char *h = xasprintf("Range: bytes=%llu-", (unsigned long long)x->offset);
			hdrs = curl_slist_append(hdrs, h);
		}
		if (reg->bearer) {
			cleanup_free char *h = xasprintf("Authorization: Bearer %s", reg->bearer);
			hdrs = curl_slist_append(hdrs, h);
		}
		CURL *c = new_handle(reg, x, url, rq->long_transfer);
		if (!c) {
			curl_slist_free_all(hdrs);
			return cod_error_set(err, COD_E_INTERNAL, "curl_easy_init failed");
		}
		if (reg->basic && reg->user && !reg->bearer) {
			curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
			curl_easy_setopt(c, CURLOPT_USERNAME, reg->user);
			curl_easy_setopt(c, CURLOPT_PASSWORD, reg->password);
		}
		if (rq->method && !strcmp(rq->method, "HEAD"))
			curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
		else if (rq->method && strcmp(rq->method, "GET")) {
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
		}
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
		CURLcode cr = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
		curl_easy_cleanup(c);
		curl_slist_free_all(hdrs);
		x->curl = NULL;
		if (cr != CURLE_OK) {
			*status = 0;
			return curl_failed(reg, x, cr, rq->what, err);
		}
		if (*status != 401 || attempt || !x->www_auth)
			break;
		/* challenge: answer it once */
		if (!strncasecmp(x->www_auth, "Bearer", 6)) {
			cleanup_free char *challenge = xstrdup(x->www_auth);
			if (fetch_token(reg, challenge, err) < 0)
				return cod_error_wrap(err, "%s", rq->what);
		} else if (!strncasecmp(x->www_auth, "Basic", 5)) {
			if (!reg->user || reg->basic)
				break;
			reg->basic = true;
		} else {
			break;
		}
		cod_buf_reset(&x->errbody);
		if (x->mem)
			cod_buf_reset(x->mem);
	}
	if (*status == 401 || *status == 403) {
		cleanup_free char *msg = registry_message(&x->errbody);
		cod_error_set(err, COD_E_UNAUTHORIZED, "%s from %s: %s%s%s", rq->what, reg->host,
			      *status == 401 ? "unauthorized" : "forbidden", msg ? ": " : "", msg ? msg : "");
		if (err)
			cod_error_hint(
			    *err,
			    reg->user
				? "the registry refused the credentials; check "
				  "Engines.Types.Docker.Credentials or the Docker config.json"
				: "the registry wants credentials: set Engines.Types.Docker.Credentials "
				  "%s=user:password (or docker login)",
			    reg->host);
		return -1;
	}
	return 0;
}

static const char manifest_accept[] =
    COD_MT_OCI_INDEX ", " COD_MT_DOCKER_LIST ", " COD_MT_OCI_MANIFEST ", " COD_MT_DOCKER_MANIFEST;

static void sha256_hex(const unsigned char *md, char out[72])
{
	static const char hex[] = "0123456789abcdef";
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 32; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[8 + 2 * i] = hex[md[i] & 15];
	}
	out[71] = '\0';
}

static void digest_of(const void *data, size_t len, char out[72])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	sha256_hex(md, out);
}

int cod_oci_registry_manifest(struct cod_oci_registry *reg, const char *reference, struct cod_buf *body,
			      char **media_type, char **digest, struct cod_error **err)
{
	*media_type = *digest = NULL;
	cod_buf_init(body, COD_OCI_MANIFEST_MAX);
	cleanup_free char *path = xasprintf("/v2/%s/manifests/%s", reg->repo, reference);
	cleanup_free char *what = xasprintf("manifest \"%s/%s:%s\"", reg->host, reg->repo, reference);
	if (cod_str_has_prefix(reference, "sha256:")) {
		free(what);
		what = xasprintf("manifest \"%s/%s@%s\"", reg->host, reg->repo, reference);
	}
	struct xfer x = {.reg = reg, .mem = body, .fd = -1};
	cod_buf_init(&x.errbody, 16384);
	struct request rq = {.path = path, .accept = manifest_accept, .what = what};
	long status = 0;
	int rc = perform(reg, &rq, &x, &status, err);
	if (rc == 0 && status == 404) {
		cleanup_free char *msg = registry_message(&x.errbody);
		cod_error_set(err, COD_E_NOT_FOUND, "%s not found%s%s", what, msg ? ": " : "",
			      msg ? msg : "");
		if (err)
			cod_error_hint(*err, "check the image name and tag");
		rc = -1;
	} else if (rc == 0 && status != 200) {
		cleanup_free char *msg = registry_message(&x.errbody);
		cod_error_set(err, COD_E_NETWORK, "%s: HTTP %ld%s%s", what, status, msg ? ": " : "",
			      msg ? msg : "");
		rc = -1;
	}
	if (rc == 0) {
		char d[72];
		digest_of(body->buf ? body->buf : "", body->len, d);
		if (cod_str_has_prefix(reference, "sha256:") && strcmp(d, reference)) {
			cod_error_set(err, COD_E_VALIDATION, "%s: content has digest %s", what, d);
			rc = -1;
		} else {
			*digest = xstrdup(d);
			const char *ct = x.content_type ? x.content_type : "";
			*media_type = xstrndup(ct, strcspn(ct, "; "));
		}
	}
	xfer_release(&x);
	if (rc < 0)
		cod_buf_release(body);
	return rc;
}

int cod_oci_registry_blob(struct cod_oci_registry *reg, const char *digest, uint64_t size, const char *path,
			  cod_oci_progress_fn progress, void *progress_arg, struct cod_error **err)
{
	cleanup_free char *what = xasprintf("blob %.19s", digest);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return cod_error_set(err, COD_E_IO, "open \"%s\": %s", path, strerror(errno));
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
	/* Hash what an earlier attempt left, then ask for the rest. */
	uint64_t have = 0;
	char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		EVP_DigestUpdate(sha, buf, (size_t)n);
		have += (uint64_t)n;
	}
	int rc = -1;
	struct xfer x = {.reg = reg,
			 .fd = fd,
			 .sha = sha,
			 .progress = progress,
			 .progress_arg = progress_arg,
			 .total = size};
	cod_buf_init(&x.errbody, 16384);
	cleanup_free char *url = NULL; /* before the gotos: a jump must not skip a cleanup */
	if (size && have >= size) {
		if (have > size) {
			/* longer than the blob: start over */
			EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
			if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)
				goto io_fail;
			have = 0;
		} else {
			goto verify;
		}
	}
	x.offset = have;
	url = xasprintf("/v2/%s/blobs/%s", reg->repo, digest);
	struct request rq = {.path = url, .what = what, .long_transfer = true};
	long status = 0;
	if (perform(reg, &rq, &x, &status, err) < 0)
		goto out;
	if (status == 200 && have) {
		/* the server ignored the Range: it sent everything; the file
		 * now holds the old part followed by the whole blob */
		cod_debug("oci", "%s: server ignored the range request; restarting", what);
		EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
		if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)
			goto io_fail;
		x.offset = 0;
		x.received = 0;
		have = 0;
		if (perform(reg, &rq, &x, &status, err) < 0)
			goto out;
	}
	if (status == 416 && have) {
		/* nothing left to send: the file may be complete */
		x.received = 0;
	} else if (status == 404) {
		cod_error_set(err, COD_E_NOT_FOUND, "%s not found in %s/%s", what, reg->host, reg->repo);
		goto out;
	} else if (status != 200 && status != 206) {
		cleanup_free char *msg = registry_message(&x.errbody);
		cod_error_set(err, COD_E_NETWORK, "%s from %s: HTTP %ld%s%s", what, reg->host, status,
			      msg ? ": " : "", msg ? msg : "");
		goto out;
	}
	have += x.received;
verify:
	if (size && have != size) {
		cod_error_set(err, COD_E_NETWORK, "%s from %s: got %llu bytes, expected %llu", what,
			      reg->host, (unsigned long long)have, (unsigned long long)size);
		goto out;
	}
	{
		unsigned char md[32];
		unsigned int mdlen = 0;
		EVP_DigestFinal_ex(sha, md, &mdlen);
		char got[72];
		sha256_hex(md, got);
		if (strcmp(got, digest)) {
			/* corrupt: the partial file is useless */
			if (ftruncate(fd, 0) < 0)
				cod_debug("oci", "truncate %s: %s", path, strerror(errno));
			cod_error_set(err, COD_E_VALIDATION, "%s from %s: content has digest %s; discarded",
				      what, reg->host, got);
			goto out;
		}
	}
	if (fsync(fd) < 0)
		goto io_fail;
	rc = 0;
	goto out;
io_fail:
	cod_error_set(err, COD_E_IO, "write \"%s\": %s", path, strerror(errno));
out:
	xfer_release(&x);
	EVP_MD_CTX_free(sha);
	close(fd);
	return rc;
}

int cod_oci_registry_blob_mem(struct cod_oci_registry *reg, const char *digest, struct cod_buf *out,
			      struct cod_error **err)
{
	cod_buf_init(out, COD_OCI_MANIFEST_MAX);
	cleanup_free char *what = xasprintf("blob %.19s", digest);
	cleanup_free char *url = xasprintf("/v2/%s/blobs/%s", reg->repo, digest);
	struct xfer x = {.reg = reg, .mem = out, .fd = -1};
	cod_buf_init(&x.errbody, 16384);
	struct request rq = {.path = url, .what = what};
	long status = 0;
	int rc = perform(reg, &rq, &x, &status, err);
	if (rc == 0 && status != 200) {
		cod_error_set(err, status == 404 ? COD_E_NOT_FOUND : COD_E_NETWORK, "%s from %s: HTTP %ld",
			      what, reg->host, status);
		rc = -1;
	}
	if (rc == 0) {
		char d[72];
		digest_of(out->buf ? out->buf : "", out->len, d);
		if (strcmp(d, digest)) {
			cod_error_set(err, COD_E_VALIDATION, "%s from %s: content has digest %s", what,
				      reg->host, d);
			rc = -1;
		}
	}
	xfer_release(&x);
	if (rc < 0)
		cod_buf_release(out);
	return rc;
}

int cod_oci_registry_push_blob(struct cod_oci_registry *reg, const char *digest, const void *data, size_t len,
			       struct cod_error **err)
{
	reg->push = true;
	cleanup_free char *what = xasprintf("upload blob %.19s", digest);
	cleanup_free char *head = xasprintf("/v2/%s/blobs/%s", reg->repo, digest);
	struct xfer x = {.reg = reg, .fd = -1};
	cod_buf_init(&x.errbody, 16384);
	long status = 0;
	struct request hq = {.method = "HEAD", .path = head, .what = what};
	cleanup_free char *start = NULL; /* before the gotos: a jump must not skip a cleanup */
	int rc = perform(reg, &hq, &x, &status, err);
	if (rc < 0 || status == 200)
		goto out;
	start = xasprintf("/v2/%s/blobs/uploads/", reg->repo);
	struct request pq = {.method = "POST", .path = start, .what = what};
	if ((rc = perform(reg, &pq, &x, &status, err)) < 0)
		goto out;
	if (status != 202 || !x.location) {
		rc = cod_error_set(err, COD_E_NETWORK, "%s to %s: HTTP %ld", what, reg->host, status);
		goto out;
	}
	{
		const char *loc = x.location;
		cleanup_free char *full =
		    cod_str_has_prefix(loc, "http") ? xstrdup(loc) : xasprintf("%s%s", reg->base, loc);
		cleanup_free char *put =
		    xasprintf("%s%cdigest=%s", full, strchr(full, '?') ? '&' : '?', digest);
		struct request uq = {.method = "PUT",
				     .path = put,
				     .what = what,
				     .content_type = "application/octet-stream",
				     .body = data,
				     .body_len = len,
				     .long_transfer = true};
		if ((rc = perform(reg, &uq, &x, &status, err)) < 0)
			goto out;
		if (status != 201)
			rc = cod_error_set(err, COD_E_NETWORK, "%s to %s: HTTP %ld", what, reg->host, status);
	}
out:
	xfer_release(&x);
	return rc;
}

int cod_oci_registry_push_manifest(struct cod_oci_registry *reg, const char *reference,
				   const char *media_type, const void *data, size_t len,
				   struct cod_error **err)
{
	reg->push = true;
	cleanup_free char *what = xasprintf("upload manifest \"%s\"", reference);
	cleanup_free char *path = xasprintf("/v2/%s/manifests/%s", reg->repo, reference);
	struct xfer x = {.reg = reg, .fd = -1};
	cod_buf_init(&x.errbody, 16384);
	long status = 0;
	struct request rq = {.method = "PUT",
			     .path = path,
			     .what = what,
			     .content_type = media_type,
			     .body = data,
			     .body_len = len};
	int rc = perform(reg, &rq, &x, &status, err);
	if (rc == 0 && status != 201) {
		cleanup_free char *msg = registry_message(&x.errbody);
		rc = cod_error_set(err, COD_E_NETWORK, "%s to %s: HTTP %ld%s%s", what, reg->host, status,
				   msg ? ": " : "", msg ? msg : "");
	}
	xfer_release(&x);
	return rc;
}
