/*
 * client.c - the CLI's client of the REST API (libcurl).
 */
#include "cli/cli.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/doc.h"
#include "common/lazylib.h"
#include "common/mem.h"
#include "common/util.h"
#include "version.h"
#include "common/banned.h"

#define MAX_RESPONSE (256u << 20)

char *cod_client_base_url(struct cod_cli *cli)
{
	const char *host = cli->cfg.api_host;
	if (!host || !*host || !strcmp(host, "0.0.0.0") || !strcmp(host, "::"))
		host = "127.0.0.1";
	if (strchr(host, ':') && host[0] != '[')
		return xasprintf("http://[%s]:%lld", host, (long long)cli->cfg.api_port);
	return xasprintf("http://%s:%lld", host, (long long)cli->cfg.api_port);
}

char *cod_client_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *out = xstrdup(e ? e : "");
	curl_free(e);
	return out;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct cod_buf *b = userdata;
	size_t n = size * nmemb;
	if (cod_buf_add(b, ptr, n) < 0)
		return 0; /* over the cap: abort the transfer */
	return n;
}

static void no_api_hint(struct cod_error *err)
{
	if (err)
		cod_error_hint(err, "is the orchestrator running? start one with 'cod serve --orchestrator', "
				    "or point the CLI at it with --api-host/--api-port (or COD_API_HOST/COD_API_PORT)");
}

static void error_from_body(const char *body, size_t len, long status, struct cod_error **err)
{
	json_t *v = len ? json_loadb(body, len, 0, NULL) : NULL;
	json_t *msg = json_object_get(v, "Message");
	if (json_is_string(msg)) {
		enum cod_errcode code = cod_error_code_from_name(json_string_value(json_object_get(v, "Code")));
		if (status == 404)
			code = COD_E_NOT_FOUND;
		else if (status == 413)
			code = COD_E_TOO_LARGE;
		cod_error_set(err, code, "%s", json_string_value(msg));
		json_t *hint = json_object_get(v, "Hint");
		if (err && json_is_string(hint) && *json_string_value(hint))
			cod_error_hint(*err, "%s", json_string_value(hint));
		json_t *problems = json_object_get(json_object_get(v, "Details"), "Problems");
		size_t i;
		json_t *p;
		json_array_foreach(problems, i, p)
		{
			if (err && json_is_string(p))
				cod_error_add_detail(*err, json_string_value(p));
		}
	} else {
		cod_error_set(err, status >= 500 ? COD_E_INTERNAL : COD_E_BAD_REQUEST, "server answered HTTP %ld%s%.*s",
			      status, len ? ": " : "", (int)(len > 200 ? 200 : len), body);
	}
	json_decref(v);
}

int cod_client_call(struct cod_cli *cli, const char *method, const char *path, const json_t *body, json_t **out,
		    struct cod_error **err)
{
	cleanup_free char *base = cod_client_base_url(cli);
	cleanup_free char *url = xasprintf("%s%s", base, path);
	cleanup_free char *payload = body ? cod_json_dumps(body, 0) : NULL;
	CURL *curl = curl_easy_init();
	if (!curl)
		return cod_error_set(err, COD_E_INTERNAL, "cannot initialise libcurl: %s",
				     cod_lazy_curl_error() ? cod_lazy_curl_error() : "out of memory");
	struct cod_buf resp;
	cod_buf_init(&resp, MAX_RESPONSE);
	struct curl_slist *headers = NULL;
	headers = curl_slist_append(headers, "Accept: application/json");
	if (payload)
		headers = curl_slist_append(headers, "Content-Type: application/json");
	cleanup_free char *gitver = xasprintf("X-Bacalhau-Git-Version: %s", cod_version_string());
	headers = curl_slist_append(headers, gitver);
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "cod/" COD_VERSION);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
	if (payload) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
	}
	CURLcode rc = curl_easy_perform(curl);
	long status = 0;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	int ret = 0;
	if (rc != CURLE_OK) {
		cod_error_set(err, COD_E_NETWORK, "cannot reach the cod API at %s: %s", base,
			      *errbuf ? errbuf : curl_easy_strerror(rc));
		no_api_hint(err ? *err : NULL);
		ret = -1;
	} else if (status < 200 || status >= 300) {
		error_from_body(cod_buf_str(&resp), resp.len, status, err);
		ret = -1;
	} else if (out) {
		*out = NULL;
		if (resp.len) {
			json_error_t je;
			*out = json_loadb(resp.buf, resp.len, JSON_DECODE_ANY, &je);
			if (!*out) {
				cod_error_set(err, COD_E_INTERNAL, "the API sent invalid JSON: %s", je.text);
				ret = -1;
			}
		}
	}
	cod_buf_release(&resp);
	return ret;
}

/* ------------------------------------------------- Server-Sent Events */

#define SSE_LINE_MAX (4u << 20)

struct sse_state {
	CURL *curl;
	cod_sse_fn fn;
	void *arg;
	bool checked, ok; /* the status was looked at; it is 2xx */
	struct cod_buf errbody;
	struct cod_buf line; /* the line being read */
	struct cod_buf event, data, id;
	bool has_data;
	bool stopped; /* fn asked to stop */
	bool too_long;
	int64_t deadline_ms;
	volatile sig_atomic_t *stop;
	bool timed_out, interrupted;
};

static int sse_dispatch(struct sse_state *st)
{
	int rc = 0;
	if (st->has_data) {
		struct cod_sse_event ev = {cod_buf_str(&st->event), cod_buf_str(&st->data), cod_buf_str(&st->id)};
		rc = st->fn(st->arg, &ev);
	}
	cod_buf_reset(&st->event);
	cod_buf_reset(&st->data);
	st->has_data = false;
	return rc;
}

/* One line of the stream (without its end of line). */
static int sse_line(struct sse_state *st, const char *l, size_t n)
{
	if (!n)
		return sse_dispatch(st);
	if (l[0] == ':')
		return 0; /* a comment: keepalive */
	const char *colon = memchr(l, ':', n);
	size_t klen = colon ? (size_t)(colon - l) : n;
	const char *v = colon ? colon + 1 : l + n;
	size_t vlen = colon ? n - klen - 1 : 0;
	if (vlen && *v == ' ') {
		v++;
		vlen--;
	}
	if (klen == 5 && !memcmp(l, "event", 5)) {
		cod_buf_reset(&st->event);
		cod_buf_add(&st->event, v, vlen);
	} else if (klen == 4 && !memcmp(l, "data", 4)) {
		if (st->has_data)
			cod_buf_addch(&st->data, '\n');
		cod_buf_add(&st->data, v, vlen);
		st->has_data = true;
	} else if (klen == 2 && !memcmp(l, "id", 2)) {
		cod_buf_reset(&st->id);
		cod_buf_add(&st->id, v, vlen);
	}
	return 0;
}

static size_t sse_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct sse_state *st = userdata;
	size_t n = size * nmemb;
	if (!st->checked) {
		long status = 0;
		curl_easy_getinfo(st->curl, CURLINFO_RESPONSE_CODE, &status);
		st->ok = status >= 200 && status < 300;
		st->checked = true;
	}
	if (!st->ok)
		return cod_buf_add(&st->errbody, ptr, n) < 0 ? 0 : n;
	for (size_t i = 0; i < n; i++) {
		char c = ptr[i];
		if (c == '\n' || c == '\r') {
			/* "\r\n" ends one line, not two */
			if (c == '\n' && st->line.len == 0 && i > 0 && ptr[i - 1] == '\r')
				continue;
			if (sse_line(st, st->line.buf ? st->line.buf : "", st->line.len) < 0) {
				st->stopped = true;
				return 0;
			}
			cod_buf_reset(&st->line);
			continue;
		}
		if (cod_buf_addch(&st->line, c) < 0) {
			st->too_long = true;
			return 0;
		}
	}
	return n;
}

static int sse_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	struct sse_state *st = clientp;
	if (st->stop && *st->stop) {
		st->interrupted = true;
		return 1;
	}
	if (st->deadline_ms && cod_mono_ms() >= st->deadline_ms) {
		st->timed_out = true;
		return 1;
	}
	return 0;
}

int cod_client_sse(struct cod_cli *cli, const char *path, cod_sse_fn fn, void *arg, int64_t deadline_ms,
		   volatile sig_atomic_t *stop, struct cod_error **err)
{
	cleanup_free char *base = cod_client_base_url(cli);
	cleanup_free char *url = xasprintf("%s%s", base, path);
	CURL *curl = curl_easy_init();
	if (!curl)
		return cod_error_set(err, COD_E_INTERNAL, "cannot initialise libcurl: %s",
				     cod_lazy_curl_error() ? cod_lazy_curl_error() : "out of memory");
	struct sse_state st = {.curl = curl, .fn = fn, .arg = arg, .deadline_ms = deadline_ms, .stop = stop};
	cod_buf_init(&st.errbody, 1 << 20);
	cod_buf_init(&st.line, SSE_LINE_MAX);
	cod_buf_init(&st.event, 0);
	cod_buf_init(&st.data, 0);
	cod_buf_init(&st.id, 0);
	struct curl_slist *headers = NULL;
	headers = curl_slist_append(headers, "Accept: text/event-stream");
	cleanup_free char *gitver = xasprintf("X-Bacalhau-Git-Version: %s", cod_version_string());
	headers = curl_slist_append(headers, gitver);
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sse_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &st);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, sse_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &st);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "cod/" COD_VERSION);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
	/* the server sends a keepalive every 15 s */
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
	CURLcode rc = curl_easy_perform(curl);
	long status = 0;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	int ret = 0;
	if (st.interrupted) {
		ret = cod_error_set(err, COD_E_UNAVAILABLE, "interrupted");
	} else if (st.timed_out) {
		ret = cod_error_set(err, COD_E_TIMEOUT, "timed out");
	} else if (st.checked && !st.ok) {
		error_from_body(cod_buf_str(&st.errbody), st.errbody.len, status, err);
		ret = -1;
	} else if (st.too_long) {
		ret = cod_error_set(err, COD_E_TOO_LARGE, "the API sent an event line longer than %u bytes", SSE_LINE_MAX);
	} else if (rc != CURLE_OK && !st.stopped) {
		if (status) {
			ret = cod_error_set(err, COD_E_NETWORK, "the log stream from %s was cut: %s", base,
					    *errbuf ? errbuf : curl_easy_strerror(rc));
		} else {
			cod_error_set(err, COD_E_NETWORK, "cannot reach the cod API at %s: %s", base,
				      *errbuf ? errbuf : curl_easy_strerror(rc));
			no_api_hint(err ? *err : NULL);
			ret = -1;
		}
	} else if (st.line.len && !st.stopped) {
		sse_line(&st, st.line.buf, st.line.len);
	}
	cod_buf_release(&st.errbody);
	cod_buf_release(&st.line);
	cod_buf_release(&st.event);
	cod_buf_release(&st.data);
	cod_buf_release(&st.id);
	return ret;
}
