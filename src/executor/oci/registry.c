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
	char *base;  /* "https://host" */
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
	/* sink: memory (capped) or file */
	struct cod_buf *mem;
	int fd;
	EVP_MD_CTX *sha;
	uint64_t received;
	bool too_large, write_failed;
	/* headers */
	char *www_auth, *content_type, *digest_hdr, *location;
	long status;
	uint64_t expect_total;
	cod_oci_progress_fn progress;
	void *progress_arg;
	uint64_t offset; /* resumed bytes */
};

static void xfer_release(struct xfer *x)
{
	free(x->www_auth);
	free(x->content_type);
	free(x->digest_hdr);
	free(x->location);
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
	char *value = cod_str_trim(colon + 1);
	char **slot = NULL;
	if (!strcasecmp(line, "WWW-Authenticate"))
		slot = &x->www_auth;
	else if (!strcasecmp(line, "Content-Type"))
		slot = &x->content_type;
	else if (!strcasecmp(line, "Docker-Content-Digest"))
		slot = &x->digest_hdr;
	else if (!strcasecmp(line, "Location"))
		slot = &x->location;
	if (slot) {
		free(*slot);
		*slot = xstrdup(value);
	}
	return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	long status = 0;
	(void)status;
	if (x->mem) {
		if (cod_buf_add(x->mem, data, n) < 0) {
			x->too_large = true;
			return 0;
		}
	} else if (x->fd >= 0 && x->status_ok_for_file) {
	}
	x->received += n;
	return n;
}
