/*
 * s3_sign.c - AWS Signature Version 4 (header and query signing) and the
 * AWS credential chain, written from AWS's SigV4 documentation: canonical
 * request -> string to sign -> HMAC-SHA256 key derivation -> signature.
 * tests/unit/test_sigv4.c checks it against AWS's worked S3 examples.
 */
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/mem.h"
#include "common/util.h"
#include "storage/http.h"
#include "storage/s3api.h"
#include "common/banned.h"

/* --------------------------------------------------------- credentials */

static char *env_dup(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? xstrdup(v) : NULL;
}

/* Read key from [section] of an INI file (AWS's format). Heap or NULL. */
static char *ini_get(const char *path, const char *section, const char *key)
{
	char *text = NULL;
	size_t len = 0;
	if (!path || cod_read_file(path, 1 << 20, &text, &len, NULL) < 0)
		return NULL;
	char *found = NULL;
	bool in = false;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
		cod_str_trim(line);
		if (!*line || *line == '#' || *line == ';')
			continue;
		if (*line == '[') {
			char *end = strchr(line, ']');
			if (end)
				*end = '\0';
			in = !strcmp(cod_str_trim(line + 1), section);
			continue;
		}
		if (!in)
			continue;
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		if (!strcmp(cod_str_trim(line), key))
			found = xstrdup(cod_str_trim(eq + 1));
	}
	free(text);
	return found;
}

static char *home_file(const char *env, const char *rel)
{
	const char *p = getenv(env);
	if (p && *p)
		return xstrdup(p);
	const char *home = getenv("HOME");
	return home ? xasprintf("%s/%s", home, rel) : NULL;
}

bool cod_aws_creds_load(struct cod_aws_creds *c)
{
	memset(c, 0, sizeof(*c));
	c->region = env_dup("AWS_REGION");
	if (!c->region)
		c->region = env_dup("AWS_DEFAULT_REGION");
	const char *profile = getenv("AWS_PROFILE");
	if (!profile || !*profile)
		profile = "default";
	cleanup_free char *cfg_file = home_file("AWS_CONFIG_FILE", ".aws/config");
	cleanup_free char *cred_file = home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
	cleanup_free char *cfg_section =
	    !strcmp(profile, "default") ? xstrdup("default") : xasprintf("profile %s", profile);
	if (!c->region)
		c->region = ini_get(cfg_file, cfg_section, "region");

	c->access_key = env_dup("AWS_ACCESS_KEY_ID");
	c->secret_key = env_dup("AWS_SECRET_ACCESS_KEY");
	if (c->access_key && c->secret_key) {
		c->session_token = env_dup("AWS_SESSION_TOKEN");
		return true;
	}
	free(c->access_key);
	free(c->secret_key);
	c->access_key = c->secret_key = NULL;
	/* the credentials file, then the config file */
	const char *files[] = {cred_file, cfg_file};
	const char *sections[] = {profile, cfg_section};
	for (size_t i = 0; i < 2; i++) {
		c->access_key = ini_get(files[i], sections[i], "aws_access_key_id");
		c->secret_key = ini_get(files[i], sections[i], "aws_secret_access_key");
		if (c->access_key && c->secret_key) {
			c->session_token = ini_get(files[i], sections[i], "aws_session_token");
			return true;
		}
		free(c->access_key);
		free(c->secret_key);
		c->access_key = c->secret_key = NULL;
	}
	return false;
}

void cod_aws_creds_release(struct cod_aws_creds *c)
{
	free(c->access_key);
	free(c->secret_key);
	free(c->session_token);
	free(c->region);
	memset(c, 0, sizeof(*c));
}

/* --------------------------------------------------------------- SigV4 */

static void hex(const unsigned char *d, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = '\0';
}

static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int n = 32;
	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n);
}

void cod_sigv4_amz_date(time_t when, char out[17])
{
	struct tm tm;
	gmtime_r(&when, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* The SigV4 encoding of one query component: unreserved stay, the rest
 * %XX upper-case (space is %20, never '+'). */
static void encode_component(struct cod_buf *b, const char *s)
{
	cleanup_free char *e = cod_url_encode(s, false);
	cod_buf_addstr(b, e);
}

struct qparam {
	char *name, *value;
};

static int cmp_qparam(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->value, y->value);
}

char *cod_sigv4_canonical_query(const char *query)
{
	if (cod_str_empty(query))
		return xstrdup("");
	struct qparam *ps = NULL;
	size_t n = 0, alloc = 0;
	cleanup_free char *copy = xstrdup(query);
	char *save = NULL;
	for (char *tok = strtok_r(copy, "&", &save); tok; tok = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(tok, '=');
		if (eq)
			*eq = '\0';
		char *name = cod_url_decode(tok, true), *value = cod_url_decode(eq ? eq + 1 : "", true);
		struct cod_buf nb = COD_BUF_INIT, vb = COD_BUF_INIT;
		cod_buf_addstr(&nb, "");
		cod_buf_addstr(&vb, "");
		encode_component(&nb, name ? name : tok);
		encode_component(&vb, value ? value : "");
		free(name);
		free(value);
		COD_GROW(ps, alloc, n + 1);
		ps[n].name = cod_buf_detach(&nb, NULL);
		ps[n].value = cod_buf_detach(&vb, NULL);
		n++;
	}
	qsort(ps, n, sizeof(*ps), cmp_qparam);
	struct cod_buf b = COD_BUF_INIT;
	cod_buf_addstr(&b, "");
	for (size_t i = 0; i < n; i++) {
		cod_buf_addf(&b, "%s%s=%s", i ? "&" : "", ps[i].name, ps[i].value);
		free(ps[i].name);
		free(ps[i].value);
	}
	free(ps);
	return cod_buf_detach(&b, NULL);
}

struct hdr {
	const char *name;
	char *value;
};

static int cmp_hdr(const void *a, const void *b)
{
	return strcmp(((const struct hdr *)a)->name, ((const struct hdr *)b)->name);
}

/* Trim and collapse inner runs of spaces, as SigV4 asks. Heap. */
static char *canon_value(const char *v)
{
	struct cod_buf b = COD_BUF_INIT;
	cod_buf_addstr(&b, "");
	while (*v == ' ' || *v == '\t')
		v++;
	bool space = false;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			space = true;
			continue;
		}
		if (space && b.len)
			cod_buf_addch(&b, ' ');
		space = false;
		cod_buf_addch(&b, *v);
	}
	return cod_buf_detach(&b, NULL);
}

/* Canonical request, signed header list and scope. */
static char *canonical_request(const struct cod_sigv4_request *r, const char *amz_date, bool with_amz_headers,
			       const char *session_token, char **signed_headers)
{
	struct hdr hs[64];
	size_t n = 0;
	hs[n++] = (struct hdr){"host", canon_value(r->host)};
	if (with_amz_headers) {
		hs[n++] = (struct hdr){"x-amz-content-sha256", xstrdup(r->payload_hash)};
		hs[n++] = (struct hdr){"x-amz-date", xstrdup(amz_date)};
		if (session_token)
			hs[n++] = (struct hdr){"x-amz-security-token", xstrdup(session_token)};
	}
	for (size_t i = 0; r->headers && i < r->headers->n && n < 64; i++)
		hs[n++] = (struct hdr){r->headers->items[i].key, canon_value(r->headers->items[i].value)};
	qsort(hs, n, sizeof(*hs), cmp_hdr);
	struct cod_buf b = COD_BUF_INIT, sh = COD_BUF_INIT;
	cod_buf_addstr(&sh, "");
	cod_buf_addf(&b, "%s\n%s\n%s\n", r->method, r->path && *r->path ? r->path : "/", r->query ? r->query : "");
	for (size_t i = 0; i < n; i++) {
		cod_buf_addf(&b, "%s:%s\n", hs[i].name, hs[i].value);
		cod_buf_addf(&sh, "%s%s", i ? ";" : "", hs[i].name);
		free(hs[i].value);
	}
	cod_buf_addf(&b, "\n%s\n%s", cod_buf_str(&sh), with_amz_headers ? r->payload_hash : "UNSIGNED-PAYLOAD");
	*signed_headers = cod_buf_detach(&sh, NULL);
	return cod_buf_detach(&b, NULL);
}

/* Signature (hex) of string_to_sign with the key of date/region/service. */
static void signature(const struct cod_aws_creds *creds, const char *date8, const char *region, const char *service,
		      const char *string_to_sign, char out[65])
{
	cleanup_free char *k = xasprintf("AWS4%s", creds->secret_key);
	unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
	hmac(k, strlen(k), date8, k1);
	hmac(k1, 32, region, k2);
	hmac(k2, 32, service, k3);
	hmac(k3, 32, "aws4_request", k4);
	hmac(k4, 32, string_to_sign, sig);
	hex(sig, 32, out);
}

static char *string_to_sign(const char *amz_date, const char *scope, const char *canonical)
{
	char h[65];
	cod_sha256_hex(canonical, strlen(canonical), h);
	return xasprintf("AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope, h);
}

char *cod_sigv4_authorization(const struct cod_sigv4_request *r, const struct cod_aws_creds *creds, char **canonical,
			      char **sts)
{
	char amz_date[17], date8[9];
	cod_sigv4_amz_date(r->when, amz_date);
	memcpy(date8, amz_date, 8);
	date8[8] = '\0';
	cleanup_free char *scope = xasprintf("%s/%s/%s/aws4_request", date8, r->region, r->service);
	cleanup_free char *signed_headers = NULL;
	cleanup_free char *creq = canonical_request(r, amz_date, true, creds->session_token, &signed_headers);
	cleanup_free char *to_sign = string_to_sign(amz_date, scope, creq);
	char sig[65];
	signature(creds, date8, r->region, r->service, to_sign, sig);
	if (canonical)
		*canonical = xstrdup(creq);
	if (sts)
		*sts = xstrdup(to_sign);
	return xasprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", creds->access_key, scope,
			 signed_headers, sig);
}

char *cod_sigv4_presign(const struct cod_sigv4_request *r, const struct cod_aws_creds *creds, const char *scheme,
			int64_t expires_s)
{
	char amz_date[17], date8[9];
	cod_sigv4_amz_date(r->when, amz_date);
	memcpy(date8, amz_date, 8);
	date8[8] = '\0';
	cleanup_free char *scope = xasprintf("%s/%s/%s/aws4_request", date8, r->region, r->service);
	cleanup_free char *cred = xasprintf("%s/%s", creds->access_key, scope);
	cleanup_free char *ecred = cod_url_encode(cred, false);
	struct cod_buf q = COD_BUF_INIT;
	cod_buf_addstr(&q, "");
	if (!cod_str_empty(r->query))
		cod_buf_addf(&q, "%s&", r->query);
	cod_buf_addf(&q, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s&X-Amz-Date=%s&X-Amz-Expires=%lld", ecred,
		     amz_date, (long long)expires_s);
	if (creds->session_token) {
		cleanup_free char *tok = cod_url_encode(creds->session_token, false);
		cod_buf_addf(&q, "&X-Amz-Security-Token=%s", tok);
	}
	/* only host is signed: whoever holds the URL sends no other header */
	cod_buf_addstr(&q, "&X-Amz-SignedHeaders=host");
	cleanup_free char *query = cod_sigv4_canonical_query(cod_buf_str(&q));
	cod_buf_release(&q);
	struct cod_sigv4_request pr = *r;
	pr.query = query;
	pr.headers = NULL;
	cleanup_free char *signed_headers = NULL;
	cleanup_free char *creq = canonical_request(&pr, amz_date, false, NULL, &signed_headers);
	cleanup_free char *to_sign = string_to_sign(amz_date, scope, creq);
	char sig[65];
	signature(creds, date8, r->region, r->service, to_sign, sig);
	return xasprintf("%s://%s%s?%s&X-Amz-Signature=%s", scheme, r->host, r->path, query, sig);
}
