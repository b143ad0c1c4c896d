/*
 * s3.c - cod's S3 client (see s3api.h) and the `s3` input source.
 *
 * Input params (Bacalhau's SourceSpec): Bucket, Key, Filter, Region,
 * Endpoint, VersionID, ChecksumSHA256, Partition. A Key ending in '/' or
 * '*' (or empty) is a prefix: every object under it is listed
 * (ListObjectsV2, paginated), Filter (a regex on the full key) and the
 * partition of this execution (s3part.c) select the ones to download, and
 * each keeps its path relative to the prefix. Any other Key is one object
 * (HEAD first; a directory content type makes it a prefix). The objects
 * land in a directory mounted read-only at Target.
 *
 * Cache: each object is cached under "s3://<host>/<bucket>/<key>#<VersionID
 * or ETag>", the ETag coming from the listing or the HEAD, so a changed
 * object is a different key and never served stale.
 */
#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/doc.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "publisher/publisher.h"
#include "storage/cache.h"
#include "storage/http.h"
#include "storage/s3api.h"
#include "storage/storage.h"
#include "common/banned.h"

#define LIST_MAX_BYTES (16u << 20)
#define XML_MAX_BYTES (1u << 20)
#define DEFAULT_PART_SIZE (64ULL << 20)
#define BID_TIMEOUT_MS 5000

/* ------------------------------------------------------------- connection */

struct s3conn {
	char *scheme;	/* http | https */
	char *host;	/* Host header */
	char *base;	/* scheme://host */
	bool path_style;
	char *region;
	struct cod_aws_creds creds;
	bool signed_requests;
};

static void conn_release(struct s3conn *c)
{
	free(c->scheme);
	free(c->host);
	free(c->base);
	free(c->region);
	cod_aws_creds_release(&c->creds);
}

static int conn_init(struct s3conn *c, const struct cod_s3_target *t, struct cod_error **err)
{
	memset(c, 0, sizeof(*c));
	c->signed_requests = cod_aws_creds_load(&c->creds);
	const char *region = !cod_str_empty(t->region) ? t->region : c->creds.region;
	c->region = xstrdup(!cod_str_empty(region) ? region : "us-east-1");
	const char *endpoint = t->endpoint;
	if (cod_str_empty(endpoint))
		endpoint = getenv("AWS_ENDPOINT_URL_S3");
	if (cod_str_empty(endpoint))
		endpoint = getenv("AWS_ENDPOINT_URL");
	if (cod_str_empty(t->bucket))
		return cod_error_set(err, COD_E_VALIDATION, "s3: no Bucket");
	if (!cod_str_empty(endpoint)) {
		const char *p = strstr(endpoint, "://");
		c->scheme = p ? xstrndup(endpoint, (size_t)(p - endpoint)) : xstrdup("https");
		const char *h = p ? p + 3 : endpoint;
		c->host = xstrndup(h, strcspn(h, "/"));
		c->path_style = true;
	} else {
		c->scheme = xstrdup("https");
		c->host = xasprintf("%s.s3.%s.amazonaws.com", t->bucket, c->region);
		c->path_style = false;
	}
	if (strcasecmp(c->scheme, "http") && strcasecmp(c->scheme, "https"))
		return cod_error_set(err, COD_E_VALIDATION, "s3: Endpoint \"%s\" is not an http(s) URL", endpoint);
	c->base = xasprintf("%s://%s", c->scheme, c->host);
	return 0;
}

/* URI path of bucket/key (encoded). Heap. */
static char *object_path(const struct s3conn *c, const char *bucket, const char *key)
{
	cleanup_free char *ek = cod_url_encode(key ? key : "", true);
	if (c->path_style)
		return xasprintf("/%s/%s", bucket, ek);
	return xasprintf("/%s", ek);
}

struct s3req {
	const char *method;
	const char *bucket;
	const char *key; /* NULL: the bucket itself */
	const char *query; /* raw "a=b&c" or NULL */
	const struct cod_kvlist *headers; /* lower-case, signed */
	const void *body;
	size_t body_len;
	int upload_fd;
	uint64_t upload_off, upload_len;
	int out_fd;
	struct cod_buf *out_buf;
	uint64_t max_bytes;
	int64_t timeout_ms;
	bool (*cancelled)(void *);
	void *cancel_arg;
};

/* sha256 (hex) of the body, or of the file range that goes out, read in
 * pieces rather than loaded whole. */
static int payload_hash(const struct s3req *r, char hex[65], struct cod_error **err)
{
	if (r->upload_fd < 0) {
		cod_sha256_hex(r->body ? r->body : "", r->body ? r->body_len : 0, hex);
		return 0;
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	char *buf = xmalloc(1 << 16);
	uint64_t done = 0;
	int rc = 0;
	while (done < r->upload_len) {
		size_t want = r->upload_len - done < (1 << 16) ? (size_t)(r->upload_len - done) : (1 << 16);
		ssize_t got = pread(r->upload_fd, buf, want, (off_t)(r->upload_off + done));
		if (got <= 0) {
			rc = cod_error_set(err, COD_E_IO, "read upload: %s", got < 0 ? strerror(errno) : "file shrank");
			break;
		}
		EVP_DigestUpdate(ctx, buf, (size_t)got);
		done += (uint64_t)got;
	}
	unsigned char d[32];
	unsigned int dl = 0;
	EVP_DigestFinal_ex(ctx, d, &dl);
	EVP_MD_CTX_free(ctx);
	free(buf);
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 15];
	}
	hex[64] = '\0';
	return rc;
}

static int s3_do(const struct s3conn *c, const struct s3req *r, struct cod_http_response *resp, struct cod_error **err)
{
	cleanup_free char *path = r->key ? object_path(c, r->bucket, r->key)
					 : (c->path_style ? xasprintf("/%s", r->bucket) : xstrdup("/"));
	cleanup_free char *query = cod_sigv4_canonical_query(r->query);
	cleanup_free char *url = xasprintf("%s%s%s%s", c->base, path, *query ? "?" : "", query);
	struct cod_strlist headers = {0};
	for (size_t i = 0; r->headers && i < r->headers->n; i++) {
		cleanup_free char *h = xasprintf("%s: %s", r->headers->items[i].key, r->headers->items[i].value);
		cod_strlist_add(&headers, h);
	}
	if (c->signed_requests) {
		char hash[65];
		if (payload_hash(r, hash, err) < 0) {
			cod_strlist_release(&headers);
			return -1;
		}
		time_t now = time(NULL);
		char amz_date[17];
		cod_sigv4_amz_date(now, amz_date);
		struct cod_sigv4_request sr = {.method = r->method, .host = c->host, .path = path, .query = query,
					       .headers = r->headers, .payload_hash = hash, .region = c->region,
					       .service = "s3", .when = now};
		cleanup_free char *auth = cod_sigv4_authorization(&sr, &c->creds, NULL, NULL);
		cleanup_free char *h1 = xasprintf("Authorization: %s", auth);
		cleanup_free char *h2 = xasprintf("x-amz-date: %s", amz_date);
		cleanup_free char *h3 = xasprintf("x-amz-content-sha256: %s", hash);
		cod_strlist_add(&headers, h1);
		cod_strlist_add(&headers, h2);
		cod_strlist_add(&headers, h3);
		if (c->creds.session_token) {
			cleanup_free char *h4 = xasprintf("x-amz-security-token: %s", c->creds.session_token);
			cod_strlist_add(&headers, h4);
		}
	}
	struct cod_http_request req;
	cod_http_request_init(&req, url);
	req.method = r->method;
	req.headers = &headers;
	req.body = r->body;
	req.body_len = r->body_len;
	req.upload_fd = r->upload_fd;
	req.upload_off = r->upload_off;
	req.upload_len = r->upload_len;
	req.out_fd = r->out_fd;
	req.out_buf = r->out_buf;
	req.max_bytes = r->max_bytes;
	req.timeout_ms = r->timeout_ms;
	req.cancelled = r->cancelled;
	req.cancel_arg = r->cancel_arg;
	int rc = cod_http_do(&req, resp, err);
	cod_strlist_release(&headers);
	return rc;
}

/* ------------------------------------------------------------------ XML */

static char *xml_unescape(const char *s, size_t n)
{
	struct cod_buf b = COD_BUF_INIT;
	cod_buf_addstr(&b, "");
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '&') {
			cod_buf_addch(&b, s[i]);
			continue;
		}
		static const struct {
			const char *ent;
			char c;
		} ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
		bool done = false;
		for (size_t k = 0; k < COD_ARRAY_SIZE(ents) && !done; k++) {
			size_t el = strlen(ents[k].ent);
			if (i + el <= n && !strncmp(s + i, ents[k].ent, el)) {
				cod_buf_addch(&b, ents[k].c);
				i += el - 1;
				done = true;
			}
		}
		if (!done && i + 2 < n && s[i + 1] == '#') {
			const char *semi = memchr(s + i, ';', n - i);
			if (semi) {
				unsigned long cp = s[i + 2] == 'x' ? strtoul(s + i + 3, NULL, 16) : strtoul(s + i + 2, NULL, 10);
				if (cp < 0x80) {
					cod_buf_addch(&b, (char)cp);
				} else if (cp < 0x800) {
					cod_buf_addch(&b, (char)(0xc0 | (cp >> 6)));
					cod_buf_addch(&b, (char)(0x80 | (cp & 0x3f)));
				} else if (cp < 0x10000) {
					cod_buf_addch(&b, (char)(0xe0 | (cp >> 12)));
					cod_buf_addch(&b, (char)(0x80 | ((cp >> 6) & 0x3f)));
					cod_buf_addch(&b, (char)(0x80 | (cp & 0x3f)));
				} else {
					cod_buf_addch(&b, (char)(0xf0 | (cp >> 18)));
					cod_buf_addch(&b, (char)(0x80 | ((cp >> 12) & 0x3f)));
					cod_buf_addch(&b, (char)(0x80 | ((cp >> 6) & 0x3f)));
					cod_buf_addch(&b, (char)(0x80 | (cp & 0x3f)));
				}
				i = (size_t)(semi - s);
				done = true;
			}
		}
		if (!done)
			cod_buf_addch(&b, '&');
	}
	return cod_buf_detach(&b, NULL);
}

/* The text of the next <tag>...</tag> in [*p, end); *p moves past it.
 * Heap or NULL. */
static char *xml_next(const char **p, const char *end, const char *tag)
{
	cleanup_free char *open = xasprintf("<%s>", tag);
	cleanup_free char *close_tag = xasprintf("</%s>", tag);
	const char *s = memmem(*p, (size_t)(end - *p), open, strlen(open));
	if (!s)
		return NULL;
	s += strlen(open);
	const char *e = memmem(s, (size_t)(end - s), close_tag, strlen(close_tag));
	if (!e)
		return NULL;
	*p = e + strlen(close_tag);
	return xml_unescape(s, (size_t)(e - s));
}

static char *xml_get(const char *text, const char *tag)
{
	const char *p = text;
	return xml_next(&p, text + strlen(text), tag);
}

static char *unquote(const char *etag)
{
	if (!etag)
		return NULL;
	size_t n = strlen(etag);
	if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"')
		return xstrndup(etag + 1, n - 2);
	return xstrdup(etag);
}

/* An error for an S3 answer: the XML Code and Message when present. */
static int s3_error(const char *what, long status, const struct cod_buf *body, struct cod_error **err)
{
	cleanup_free char *code = body && body->len ? xml_get(cod_buf_str(body), "Code") : NULL;
	cleanup_free char *msg = body && body->len ? xml_get(cod_buf_str(body), "Message") : NULL;
	enum cod_errcode ec = status == 404 ? COD_E_NOT_FOUND
			      : status == 403 || status == 401 ? COD_E_FORBIDDEN
			      : status >= 500 || status == 429 ? COD_E_NETWORK
								: COD_E_BAD_REQUEST;
	cod_error_set(err, ec, "%s: HTTP %ld%s%s%s%s", what, status, code ? " " : "", code ? code : "", msg ? ": " : "",
		      msg ? msg : "");
	if (err && (status == 403 || status == 401))
		cod_error_hint(*err, "check the AWS credentials on this node (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
				     "~/.aws/credentials) and the bucket's policy");
	return -1;
}

/* ------------------------------------------------------------ S3 calls */

void cod_s3_objects_free(struct cod_s3_object *objs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(objs[i].key);
		free(objs[i].etag);
	}
	free(objs);
}

int cod_s3_list(const struct cod_s3_target *t, const char *prefix, int64_t timeout_ms, struct cod_s3_object **out,
		size_t *n, struct cod_error **err)
{
	*out = NULL;
	*n = 0;
	struct s3conn c;
	if (conn_init(&c, t, err) < 0) {
		conn_release(&c);
		return -1;
	}
	struct cod_s3_object *objs = NULL;
	size_t count = 0, alloc = 0;
	cleanup_free char *token = NULL;
	int rc = 0;
	for (int page = 0; page < 100000; page++) {
		cleanup_free char *ep = cod_url_encode(prefix ? prefix : "", false);
		cleanup_free char *et = token ? cod_url_encode(token, false) : NULL;
		cleanup_free char *query = xasprintf("list-type=2&prefix=%s%s%s", ep, et ? "&continuation-token=" : "",
						     et ? et : "");
		struct cod_buf body;
		cod_buf_init(&body, LIST_MAX_BYTES);
		struct s3req r = {.method = "GET", .bucket = t->bucket, .query = query, .upload_fd = -1, .out_fd = -1,
				  .out_buf = &body, .timeout_ms = timeout_ms};
		struct cod_http_response resp;
		rc = s3_do(&c, &r, &resp, err);
		if (rc == 0 && resp.status != 200)
			rc = s3_error("list", resp.status, &body, err);
		cod_http_response_release(&resp);
		if (rc < 0) {
			cod_buf_release(&body);
			break;
		}
		const char *p = cod_buf_str(&body), *end = p + body.len;
		const char *s;
		while ((s = memmem(p, (size_t)(end - p), "<Contents>", 10))) {
			const char *e = memmem(s, (size_t)(end - s), "</Contents>", 11);
			if (!e)
				break;
			const char *q = s;
			char *key = xml_next(&q, e, "Key");
			q = s;
			cleanup_free char *size = xml_next(&q, e, "Size");
			q = s;
			cleanup_free char *etag = xml_next(&q, e, "ETag");
			if (key) {
				COD_GROW(objs, alloc, count + 1);
				size_t kl = strlen(key);
				objs[count] = (struct cod_s3_object){.key = key,
								     .size = size ? strtoull(size, NULL, 10) : 0,
								     .etag = unquote(etag),
								     .is_dir = kl && key[kl - 1] == '/'};
				count++;
			}
			p = e + 11;
		}
		cleanup_free char *truncated = xml_get(cod_buf_str(&body), "IsTruncated");
		free(token);
		token = xml_get(cod_buf_str(&body), "NextContinuationToken");
		cod_buf_release(&body);
		if (!truncated || strcmp(truncated, "true") || !token)
			break;
	}
	conn_release(&c);
	if (rc < 0) {
		cod_s3_objects_free(objs, count);
		return cod_error_wrap(err, "s3://%s/%s", t->bucket, prefix ? prefix : "");
	}
	*out = objs;
	*n = count;
	return 0;
}

int cod_s3_head(const struct cod_s3_target *t, const char *key, const char *version_id, int64_t timeout_ms,
		struct cod_s3_object *out, char **content_type, struct cod_error **err)
{
	memset(out, 0, sizeof(*out));
	if (content_type)
		*content_type = NULL;
	struct s3conn c;
	if (conn_init(&c, t, err) < 0) {
		conn_release(&c);
		return -1;
	}
	cleanup_free char *ev = version_id ? cod_url_encode(version_id, false) : NULL;
	cleanup_free char *query = ev ? xasprintf("versionId=%s", ev) : NULL;
	struct s3req r = {.method = "HEAD", .bucket = t->bucket, .key = key, .query = query, .upload_fd = -1,
			  .out_fd = -1, .timeout_ms = timeout_ms};
	struct cod_http_response resp;
	int rc = s3_do(&c, &r, &resp, err);
	if (rc == 0 && resp.status != 200)
		rc = s3_error("HEAD", resp.status, NULL, err);
	if (rc == 0) {
		out->key = xstrdup(key);
		const char *len = cod_http_header(&resp, "content-length");
		out->size = len ? strtoull(len, NULL, 10) : 0;
		out->etag = unquote(cod_http_header(&resp, "etag"));
		if (content_type)
			*content_type = xstrdup_or_null(cod_http_header(&resp, "content-type"));
	}
	cod_http_response_release(&resp);
	conn_release(&c);
	if (rc < 0)
		return cod_error_wrap(err, "s3://%s/%s", t->bucket, key);
	return 0;
}

int cod_s3_get(const struct cod_s3_target *t, const char *key, const char *version_id, const char *path,
	       uint64_t max_bytes, int64_t timeout_ms, bool (*cancelled)(void *), void *cancel_arg, uint64_t *bytes,
	       struct cod_error **err)
{
	struct s3conn c;
	if (conn_init(&c, t, err) < 0) {
		conn_release(&c);
		return -1;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		conn_release(&c);
		return cod_error_set(err, COD_E_IO, "create \"%s\": %s", path, strerror(errno));
	}
	cleanup_free char *ev = version_id ? cod_url_encode(version_id, false) : NULL;
	cleanup_free char *query = ev ? xasprintf("versionId=%s", ev) : NULL;
	struct s3req r = {.method = "GET", .bucket = t->bucket, .key = key, .query = query, .upload_fd = -1,
			  .out_fd = fd, .max_bytes = max_bytes, .timeout_ms = timeout_ms, .cancelled = cancelled,
			  .cancel_arg = cancel_arg};
	struct cod_http_response resp;
	int rc = s3_do(&c, &r, &resp, err);
	close(fd);
	if (rc == 0 && resp.status != 200) {
		/* the body went to the file: read the error back from it */
		struct cod_buf body = COD_BUF_INIT;
		char *text = NULL;
		size_t len = 0;
		if (cod_read_file(path, XML_MAX_BYTES, &text, &len, NULL) == 0) {
			cod_buf_add(&body, text, len);
			free(text);
		}
		rc = s3_error("GET", resp.status, &body, err);
		cod_buf_release(&body);
	}
	if (bytes)
		*bytes = resp.bytes;
	cod_http_response_release(&resp);
	conn_release(&c);
	if (rc < 0) {
		unlink(path);
		return cod_error_wrap(err, "s3://%s/%s", t->bucket, key);
	}
	return 0;
}

static int put_part(const struct s3conn *c, const struct cod_s3_target *t, const char *key, const char *query,
		    int fd, uint64_t off, uint64_t len, int64_t timeout_ms, char **etag, char **version_id,
		    struct cod_error **err)
{
	struct s3req r = {.method = "PUT", .bucket = t->bucket, .key = key, .query = query, .upload_fd = fd,
			  .upload_off = off, .upload_len = len, .out_fd = -1, .timeout_ms = timeout_ms};
	struct cod_buf body;
	cod_buf_init(&body, XML_MAX_BYTES);
	r.out_buf = &body;
	if (len == 0) {
		/* an empty object: no file range to read */
		r.upload_fd = -1;
		r.body = "";
		r.body_len = 0;
	}
	struct cod_http_response resp;
	int rc = s3_do(c, &r, &resp, err);
	if (rc == 0 && resp.status != 200)
		rc = s3_error("PUT", resp.status, &body, err);
	if (rc == 0) {
		if (etag)
			*etag = unquote(cod_http_header(&resp, "etag"));
		if (version_id)
			*version_id = xstrdup_or_null(cod_http_header(&resp, "x-amz-version-id"));
	}
	cod_http_response_release(&resp);
	cod_buf_release(&body);
	return rc;
}

static int put_multipart(const struct s3conn *c, const struct cod_s3_target *t, const char *key, int fd,
			 uint64_t size, uint64_t part_size, int64_t timeout_ms, char **etag, char **version_id,
			 struct cod_error **err)
{
	/* create, upload the parts, complete; abort on failure */
	struct cod_buf body;
	cod_buf_init(&body, XML_MAX_BYTES);
	struct s3req cr = {.method = "POST", .bucket = t->bucket, .key = key, .query = "uploads", .body = "",
			   .upload_fd = -1, .out_fd = -1, .out_buf = &body, .timeout_ms = timeout_ms};
	struct cod_http_response resp;
	int rc = s3_do(c, &cr, &resp, err);
	if (rc == 0 && resp.status != 200)
		rc = s3_error("CreateMultipartUpload", resp.status, &body, err);
	cod_http_response_release(&resp);
	cleanup_free char *upload_id = rc == 0 ? xml_get(cod_buf_str(&body), "UploadId") : NULL;
	cod_buf_release(&body);
	if (rc == 0 && !upload_id)
		rc = cod_error_set(err, COD_E_NETWORK, "CreateMultipartUpload: no UploadId in the answer");
	if (rc < 0)
		return -1;
	cleanup_free char *eid = cod_url_encode(upload_id, false);
	cleanup_free char *q = xasprintf("uploadId=%s", eid);
	struct cod_buf complete = COD_BUF_INIT;
	cod_buf_addstr(&complete, "<CompleteMultipartUpload>");
	uint64_t off = 0;
	for (int part = 1; off < size && rc == 0; part++) {
		uint64_t len = size - off < part_size ? size - off : part_size;
		cleanup_free char *pq = xasprintf("partNumber=%d&uploadId=%s", part, eid);
		cleanup_free char *petag = NULL;
		rc = put_part(c, t, key, pq, fd, off, len, timeout_ms, &petag, NULL, err);
		if (rc == 0)
			cod_buf_addf(&complete, "<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag></Part>", part,
				     petag ? petag : "");
		off += len;
	}
	cod_buf_addstr(&complete, "</CompleteMultipartUpload>");
	if (rc == 0) {
		cod_buf_init(&body, XML_MAX_BYTES);
		struct s3req fr = {.method = "POST", .bucket = t->bucket, .key = key, .query = q, .body = complete.buf,
				   .body_len = complete.len, .upload_fd = -1, .out_fd = -1, .out_buf = &body,
				   .timeout_ms = timeout_ms};
		rc = s3_do(c, &fr, &resp, err);
		/* S3 may answer 200 with an <Error> body */
		if (rc == 0 && (resp.status != 200 || strstr(cod_buf_str(&body), "<Error>")))
			rc = s3_error("CompleteMultipartUpload", resp.status == 200 ? 500 : resp.status, &body, err);
		if (rc == 0) {
			cleanup_free char *et = xml_get(cod_buf_str(&body), "ETag");
			if (etag)
				*etag = unquote(et);
			if (version_id)
				*version_id = xstrdup_or_null(cod_http_header(&resp, "x-amz-version-id"));
		}
		cod_http_response_release(&resp);
		cod_buf_release(&body);
		if (rc == 0)
			cod_info("s3", "uploaded s3://%s/%s (%llu bytes) in %llu parts", t->bucket, key,
				 (unsigned long long)size, (unsigned long long)((size + part_size - 1) / part_size));
	}
	if (rc < 0) {
		struct s3req ar = {.method = "DELETE", .bucket = t->bucket, .key = key, .query = q, .upload_fd = -1,
				   .out_fd = -1, .timeout_ms = timeout_ms};
		if (s3_do(c, &ar, &resp, NULL) == 0)
			cod_http_response_release(&resp);
	}
	cod_buf_release(&complete);
	return rc;
}

int cod_s3_put_file(const struct cod_s3_target *t, const char *key, const char *path, uint64_t part_size,
		    int64_t timeout_ms, char **etag, char **version_id, struct cod_error **err)
{
	if (etag)
		*etag = NULL;
	if (version_id)
		*version_id = NULL;
	if (!part_size)
		part_size = DEFAULT_PART_SIZE;
	struct s3conn c;
	if (conn_init(&c, t, err) < 0) {
		conn_release(&c);
		return -1;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		conn_release(&c);
		return cod_error_set(err, COD_E_IO, "open \"%s\": %s", path, strerror(errno));
	}
	uint64_t size = (uint64_t)st.st_size;
	int rc = size <= part_size ? put_part(&c, t, key, NULL, fd, 0, size, timeout_ms, etag, version_id, err)
				   : put_multipart(&c, t, key, fd, size, part_size, timeout_ms, etag, version_id, err);
	close(fd);
	conn_release(&c);
	if (rc < 0)
		return cod_error_wrap(err, "upload s3://%s/%s", t->bucket, key);
	return 0;
}

char *cod_s3_presign_get(const struct cod_s3_target *t, const char *key, const char *version_id, int64_t expires_s,
			 struct cod_error **err)
{
	struct s3conn c;
	if (conn_init(&c, t, err) < 0) {
		conn_release(&c);
		return NULL;
	}
	if (!c.signed_requests) {
		conn_release(&c);
		cod_error_set(err, COD_E_CONFIG, "no AWS credentials to sign with");
		return NULL;
	}
	cleanup_free char *path = object_path(&c, t->bucket, key);
	cleanup_free char *ev = version_id ? cod_url_encode(version_id, false) : NULL;
	cleanup_free char *query = ev ? xasprintf("versionId=%s", ev) : xstrdup("");
	struct cod_sigv4_request r = {.method = "GET", .host = c.host, .path = path, .query = query,
				      .region = c.region, .service = "s3", .when = time(NULL)};
	char *url = cod_sigv4_presign(&r, &c.creds, c.scheme, expires_s);
	conn_release(&c);
	return url;
}

/* ------------------------------------------------------------ the input */

struct s3_params {
	struct cod_s3_target target;
	const char *key;
	const char *filter;
	const char *version_id;
	const char *checksum;
	json_t *partition;
};

static int parse_params(const struct cod_input_source *in, struct s3_params *p, struct cod_error **err)
{
	memset(p, 0, sizeof(*p));
	p->target.bucket = cod_storage_param(in, "Bucket");
	p->target.endpoint = cod_storage_param(in, "Endpoint");
	p->target.region = cod_storage_param(in, "Region");
	p->key = cod_storage_param(in, "Key");
	if (!p->key)
		p->key = "";
	p->filter = cod_storage_param(in, "Filter");
	p->version_id = cod_storage_param(in, "VersionID");
	p->checksum = cod_storage_param(in, "ChecksumSHA256");
	p->partition = cod_json_iget(in->source.params, "Partition");
	if (cod_str_empty(p->target.bucket))
		return cod_error_set(err, COD_E_VALIDATION, "s3 input has no Bucket");
	if (cod_s3_partition_check(p->partition, err) < 0)
		return -1;
	if (!cod_str_empty(p->filter)) {
		regex_t re;
		if (cod_go_regcomp(&re, p->filter, err) < 0)
			return cod_error_wrap(err, "s3 input Filter");
		regfree(&re);
	}
	return 0;
}

static bool is_prefix(const char *key)
{
	size_t n = strlen(key);
	return !n || key[n - 1] == '/' || key[n - 1] == '*';
}

static char *cache_key(const struct s3_params *p, const char *key, const char *validator)
{
	struct cod_input_source fake = {0};
	/* the locator of one object: same host/bucket, this key */
	json_t *params = json_pack("{s:s, s:s}", "Bucket", p->target.bucket, "Key", key);
	if (!cod_str_empty(p->target.endpoint))
		json_object_set_new(params, "Endpoint", json_string(p->target.endpoint));
	fake.source.type = (char *)"s3";
	fake.source.params = params;
	cleanup_free char *loc = cod_storage_locator(&fake);
	json_decref(params);
	return xasprintf("%s#%s", loc ? loc : key, validator ? validator : "");
}

static bool bid_check(const struct cod_config *cfg, const struct cod_input_source *in, char **reason)
{
	struct s3_params p;
	struct cod_error *err = NULL;
	if (parse_params(in, &p, &err) < 0) {
		*reason = xstrdup(err->message);
		cod_error_free(err);
		return false;
	}
	return cod_storage_locality_ok(cfg, &cod_storage_s3, in, reason);
}

/* The objects this execution gets: listed or HEAD'ed, filtered and
 * partitioned. */
static int select_objects(const struct s3_params *p, const struct cod_execution *e, int64_t timeout_ms,
			  struct cod_s3_object **out, size_t *n, const char **prefix_out, struct cod_error **err)
{
	*out = NULL;
	*n = 0;
	*prefix_out = NULL;
	bool prefix = is_prefix(p->key);
	if (!prefix) {
		struct cod_s3_object obj;
		cleanup_free char *ctype = NULL;
		if (cod_s3_head(&p->target, p->key, p->version_id, timeout_ms, &obj, &ctype, err) < 0)
			return -1;
		if (!ctype || (strcasecmp(ctype, "application/x-directory") &&
			       !cod_str_has_prefix(ctype, "application/x-directory;"))) {
			*out = xcalloc(1, sizeof(**out));
			**out = obj;
			*n = 1;
			return 0;
		}
		free(obj.key);
		free(obj.etag);
	}
	size_t kl = strlen(p->key);
	cleanup_free char *list_prefix = xstrndup(p->key, kl && p->key[kl - 1] == '*' ? kl - 1 : kl);
	struct cod_s3_object *all = NULL;
	size_t nall = 0;
	if (cod_s3_list(&p->target, list_prefix, timeout_ms, &all, &nall, err) < 0)
		return -1;
	regex_t re;
	bool filtered = !cod_str_empty(p->filter);
	if (filtered && cod_go_regcomp(&re, p->filter, err) < 0) {
		cod_s3_objects_free(all, nall);
		return -1;
	}
	int64_t count = e && e->job && e->job->count > 0 ? e->job->count : 1;
	int64_t index = e ? e->partition_index : 0;
	size_t keep = 0;
	int rc = 0;
	for (size_t i = 0; i < nall; i++) {
		bool take = !all[i].is_dir && (!filtered || regexec(&re, all[i].key, 0, NULL, 0) == 0);
		if (take) {
			int part = cod_s3_partition_of(p->partition, list_prefix, all[i].key, count, err);
			if (part == -1) {
				rc = -1;
				take = false;
			} else {
				take = part == -2 || part == index;
			}
		}
		if (take) {
			all[keep++] = all[i];
		} else {
			free(all[i].key);
			free(all[i].etag);
		}
	}
	if (filtered)
		regfree(&re);
	if (rc < 0) {
		cod_s3_objects_free(all, keep);
		return -1;
	}
	*out = all;
	*n = keep;
	*prefix_out = p->key;
	return 0;
}

/* Where an object goes under dir: its path relative to the prefix (or its
 * base name for a single object), refusing ".." segments. Heap or NULL. */
static char *object_dest(const char *dir, const char *prefix, const char *key)
{
	const char *rel;
	if (prefix) {
		size_t pl = strlen(prefix);
		if (pl && prefix[pl - 1] == '*')
			pl--;
		rel = !strncmp(key, prefix, pl) ? key + pl : key;
		while (*rel == '/')
			rel++;
	} else {
		rel = strrchr(key, '/') ? strrchr(key, '/') + 1 : key;
	}
	if (!*rel)
		return NULL;
	for (const char *s = rel; *s;) {
		size_t n = strcspn(s, "/");
		if ((n == 2 && !strncmp(s, "..", 2)) || (n == 1 && *s == '.'))
			return NULL;
		s += n;
		while (*s == '/')
			s++;
	}
	return xasprintf("%s/%s", dir, rel);
}

static bool cancelled(void *arg)
{
	return arg && cod_executor_cancelled(arg);
}

static int64_t local_bytes(const struct cod_config *cfg, const struct cod_input_source *in)
{
	if (!cod_cache_enabled(cfg))
		return 0;
	struct s3_params p;
	if (parse_params(in, &p, NULL) < 0)
		return 0;
	struct cod_s3_object *objs = NULL;
	size_t n = 0;
	const char *prefix;
	/* the partition is unknown at bid time: all objects must be here */
	if (select_objects(&p, NULL, BID_TIMEOUT_MS, &objs, &n, &prefix, NULL) < 0)
		return 0;
	int64_t total = 0;
	for (size_t i = 0; i < n && total >= 0; i++) {
		cleanup_free char *key = cache_key(&p, objs[i].key, p.version_id ? p.version_id : objs[i].etag);
		total = cod_cache_size(cfg, key) ? total + (int64_t)objs[i].size : -1;
	}
	cod_s3_objects_free(objs, n);
	return total > 0 ? total : 0;
}

static int prepare(const struct cod_storage_ctx *ctx, struct cod_mount *mount, struct cod_error **err)
{
	struct s3_params p;
	if (parse_params(ctx->input, &p, err) < 0)
		return -1;
	int64_t timeout_ms = ctx->cfg ? ctx->cfg->input_read_timeout_ms : 0;
	struct cod_s3_object *objs = NULL;
	size_t n = 0;
	const char *prefix = NULL;
	if (select_objects(&p, ctx->execution, timeout_ms, &objs, &n, &prefix, err) < 0)
		return -1;
	cleanup_free char *dir = xasprintf("%s/data", ctx->work_dir);
	cod_remove_tree(dir);
	if (cod_mkdir_p(dir, 0755, err) < 0) {
		cod_s3_objects_free(objs, n);
		return -1;
	}
	uint64_t cap = ctx->execution ? ctx->execution->allocated.disk : 0, used = 0;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		cleanup_free char *dest = object_dest(dir, prefix, objs[i].key);
		if (!dest) {
			cod_warn("s3", "skipping object \"%s\": no safe file name under the prefix", objs[i].key);
			continue;
		}
		cleanup_free char *parent = xstrdup(dest);
		*strrchr(parent, '/') = '\0';
		if (cod_mkdir_p(parent, 0755, err) < 0) {
			rc = -1;
			break;
		}
		const char *validator = p.version_id ? p.version_id : objs[i].etag;
		cleanup_free char *key = validator ? cache_key(&p, objs[i].key, validator) : NULL;
		uint64_t bytes = 0;
		bool hit = key && cod_cache_fetch(ctx->cfg, key, dest, &bytes, NULL) == 1;
		if (hit) {
			if (ctx->stats) {
				ctx->stats->bytes_local += bytes;
				ctx->stats->cache_hit = true;
			}
		} else {
			if (cap && used + objs[i].size > cap) {
				rc = cod_error_set(err, COD_E_TOO_LARGE,
						   "s3 objects are larger than the task's Disk (%llu bytes); ask for more "
						   "with Resources.Disk",
						   (unsigned long long)cap);
				break;
			}
			rc = cod_s3_get(&p.target, objs[i].key, p.version_id, dest, cap ? cap - used : 0, timeout_ms,
					cancelled, ctx->run, &bytes, err);
			if (rc < 0)
				break;
			if (ctx->stats)
				ctx->stats->bytes_fetched += bytes;
		}
		used += bytes;
		/* the checksum holds for cached copies too */
		if (!cod_str_empty(p.checksum) && n == 1) {
			char hex[65];
			unsigned char raw[32];
			if (cod_sha256_file(dest, hex, raw, err) < 0) {
				rc = -1;
				break;
			}
			cleanup_free char *b64 = cod_base64_encode(raw, 32);
			if (strcmp(b64, p.checksum) && strcasecmp(hex, p.checksum)) {
				rc = cod_error_set(err, COD_E_VALIDATION,
						   "s3://%s/%s: the object's sha256 is %s, not the ChecksumSHA256 %s",
						   p.target.bucket, objs[i].key, b64, p.checksum);
				break;
			}
		}
		if (key && !hit)
			cod_cache_store(ctx->cfg, key, dest);
	}
	cod_s3_objects_free(objs, n);
	if (rc < 0)
		return -1;
	return cod_storage_mount_ro(ctx, mount, &dir);
}

const struct cod_storage_ops cod_storage_s3 = {
	.name = "s3",
	.bid_check = bid_check,
	.local_bytes = local_bytes,
	.prepare = prepare,
};

/* ------------------------------------------------------------ job get */

int cod_s3_download_result(const struct cod_config *cfg, const json_t *params, const char *dir, int64_t timeout_ms,
			   struct cod_error **err)
{
	(void)cfg;
	struct cod_input_source in = {.source = {.type = (char *)"s3", .params = (json_t *)params}};
	struct s3_params p;
	if (parse_params(&in, &p, err) < 0)
		return -1;
	if (cod_mkdir_p(dir, 0755, err) < 0)
		return -1;
	size_t kl = strlen(p.key);
	if (kl > 7 && !strcmp(p.key + kl - 7, ".tar.gz")) {
		cleanup_free char *tmp = xasprintf("%s.download", dir);
		if (cod_s3_get(&p.target, p.key, p.version_id, tmp, 0, timeout_ms, NULL, NULL, NULL, err) < 0)
			return -1;
		int rc = cod_archive_extract(tmp, dir, 0, err);
		unlink(tmp);
		return rc;
	}
	struct cod_s3_object *objs = NULL;
	size_t n = 0;
	const char *prefix = NULL;
	if (select_objects(&p, NULL, timeout_ms, &objs, &n, &prefix, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		cleanup_free char *dest = object_dest(dir, prefix, objs[i].key);
		if (!dest)
			continue;
		cleanup_free char *parent = xstrdup(dest);
		*strrchr(parent, '/') = '\0';
		rc = cod_mkdir_p(parent, 0755, err);
		if (rc == 0)
			rc = cod_s3_get(&p.target, objs[i].key, NULL, dest, 0, timeout_ms, NULL, NULL, NULL, err);
	}
	cod_s3_objects_free(objs, n);
	return rc;
}
