/*
 * client.c - the CLI's client of the REST API (libcurl).
 */
#include "cli/cli.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/doc.h"
#include "common/mem.h"
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
		return cod_error_set(err, COD_E_INTERNAL, "cannot initialise libcurl");
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
		if (err)
			cod_error_hint(*err, "is the orchestrator running? start one with 'cod serve --orchestrator', "
					     "or point the CLI at it with --api-host/--api-port (or COD_API_HOST/COD_API_PORT)");
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
