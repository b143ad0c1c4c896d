/*
 * http.c - the data paths' HTTP client (libcurl) and the file helpers the
 * storage drivers, publishers and `cod job get` share.
 */
#include "storage/http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
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

#include "common/lazylib.h"
#include "common/mem.h"
#include "common/util.h"
#include "common/banned.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void cod_http_request_init(struct cod_http_request *req, const char *url)
{
	memset(req, 0, sizeof(*req));
	req->url = url;
	req->upload_fd = -1;
	req->out_fd = -1;
}

struct xfer {
	const struct cod_http_request *req;
	struct cod_http_response *resp;
	bool too_large;
	bool write_failed;
	int write_errno;
	uint64_t upload_pos;
	const char *body_pos;
	size_t body_left;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	if (x->req->max_bytes && x->resp->bytes + n > x->req->max_bytes) {
		x->too_large = true;
		return 0;
	}
	if (x->req->out_fd >= 0) {
		size_t off = 0;
		while (off < n) {
			ssize_t w = write(x->req->out_fd, data + off, n - off);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				x->write_failed = true;
				x->write_errno = errno;
				return 0;
			}
			off += (size_t)w;
		}
	} else if (x->req->out_buf) {
		if (cod_buf_add(x->req->out_buf, data, n) < 0) {
			x->too_large = true;
			return 0;
		}
	}
	x->resp->bytes += n;
	return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	if (n >= 5 && !strncmp(data, "HTTP/", 5)) {
		/* a new response (after a redirect or 100-continue): forget
		 * the previous one's headers */
		cod_kvlist_release(&x->resp->headers);
		return n;
	}
	const char *colon = memchr(data, ':', n);
	if (!colon)
		return n;
	cleanup_free char *name = xstrndup(data, (size_t)(colon - data));
	for (char *p = name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	cleanup_free char *value = xstrndup(colon + 1, n - (size_t)(colon + 1 - data));
	cod_kvlist_set(&x->resp->headers, cod_str_trim(name), cod_str_trim(value));
	return n;
}

static size_t on_upload(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t want = size * nmemb;
	if (x->req->upload_fd >= 0) {
		uint64_t left = x->req->upload_len - x->upload_pos;
		if (want > left)
			want = (size_t)left;
		if (!want)
			return 0;
		ssize_t r = pread(x->req->upload_fd, buf, want, (off_t)(x->req->upload_off + x->upload_pos));
		if (r < 0)
			return CURL_READFUNC_ABORT;
		x->upload_pos += (uint64_t)r;
		return (size_t)r;
	}
	if (want > x->body_left)
		want = x->body_left;
	memcpy(buf, x->body_pos, want);
	x->body_pos += want;
	x->body_left -= want;
	return want;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)ultotal;
	(void)ulnow;
	struct xfer *x = arg;
	if (x->req->cancelled && x->req->cancelled(x->req->cancel_arg))
		return 1;
	if (x->req->progress)
		x->req->progress(x->req->progress_arg, (uint64_t)dlnow, (uint64_t)dltotal);
	return 0;
}

int cod_http_do(const struct cod_http_request *req, struct cod_http_response *resp, struct cod_error **err)
{
	pthread_once(&curl_once, curl_init_once);
	memset(resp, 0, sizeof(*resp));
	CURL *curl = curl_easy_init();
	if (!curl)
		return cod_error_set(err, COD_E_INTERNAL, "cannot initialise libcurl: %s",
				     cod_lazy_curl_error() ? cod_lazy_curl_error() : "out of memory");
	struct xfer x = {.req = req, .resp = resp, .body_pos = req->body, .body_left = req->body_len};
	struct curl_slist *hdrs = NULL;
	for (size_t i = 0; req->headers && i < req->headers->n; i++)
		hdrs = curl_slist_append(hdrs, req->headers->items[i]);
	char errbuf[CURL_ERROR_SIZE] = "";
	const char *method = req->method ? req->method : "GET";
	curl_easy_setopt(curl, CURLOPT_URL, req->url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "cod/" COD_VERSION);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &x);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 10000));
	if (req->timeout_ms > 0)
		curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
	if (req->follow_redirects) {
		curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
	}
	if (req->max_bytes)
		curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_bytes);
	bool has_body = req->upload_fd >= 0 || req->body;
	curl_mime *mime = NULL;
	if (req->form_file) {
		mime = curl_mime_init(curl);
		curl_mimepart *part = curl_mime_addpart(mime);
		curl_mime_name(part, "file");
		curl_mime_filedata(part, req->form_file);
		curl_mime_type(part, "application/octet-stream");
		curl_easy_setopt(curl, CURLOPT_MIMEPOST, mime);
		hdrs = curl_slist_append(hdrs, "Expect:");
	} else if (!strcmp(method, "HEAD")) {
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(method, "PUT") && has_body) {
		curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_upload);
		curl_easy_setopt(curl, CURLOPT_READDATA, &x);
		curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)(req->upload_fd >= 0 ? req->upload_len : req->body_len));
		/* S3 and friends answer 100-continue slowly or not at all */
		hdrs = curl_slist_append(hdrs, "Expect:");
	} else if (has_body) {
		curl_easy_setopt(curl, CURLOPT_POST, 1L);
		curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_upload);
		curl_easy_setopt(curl, CURLOPT_READDATA, &x);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(req->upload_fd >= 0 ? req->upload_len : req->body_len));
		hdrs = curl_slist_append(hdrs, "Expect:");
		if (strcmp(method, "POST"))
			curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	} else if (strcmp(method, "GET")) {
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
		if (!strcmp(method, "POST")) {
			curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
			curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
		}
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	CURLcode rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
	char *eff = NULL;
	curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &eff);
	resp->effective_url = xstrdup(eff ? eff : req->url);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(curl);
	curl_mime_free(mime);
	if (rc == CURLE_OK)
		return 0;
	if (x.too_large || rc == CURLE_FILESIZE_EXCEEDED)
		return cod_error_set(err, COD_E_TOO_LARGE, "%s is larger than the limit of %llu bytes", req->url,
				     (unsigned long long)req->max_bytes);
	if (x.write_failed)
		return cod_error_set(err, COD_E_IO, "write download of %s: %s", req->url, strerror(x.write_errno));
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		return cod_error_set(err, COD_E_UNAVAILABLE, "cancelled");
	if (rc == CURLE_OPERATION_TIMEDOUT)
		return cod_error_set(err, COD_E_TIMEOUT, "%s %s: %s", method, req->url, *errbuf ? errbuf : "timed out");
	return cod_error_set(err, COD_E_NETWORK, "%s %s: %s", method, req->url,
			     *errbuf ? errbuf : curl_easy_strerror(rc));
}

void cod_http_response_release(struct cod_http_response *resp)
{
	cod_kvlist_release(&resp->headers);
	free(resp->effective_url);
	memset(resp, 0, sizeof(*resp));
}

const char *cod_http_header(const struct cod_http_response *resp, const char *name)
{
	return cod_kvlist_get(&resp->headers, name);
}

/* ------------------------------------------------------------- URLs */

char *cod_url_encode(const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	struct cod_buf b = COD_BUF_INIT;
	cod_buf_addstr(&b, "");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' || (keep_slash && *p == '/')) {
			cod_buf_addch(&b, (char)*p);
		} else {
			char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			cod_buf_add(&b, esc, 3);
		}
	}
	return cod_buf_detach(&b, NULL);
}

char *cod_url_decode(const char *s, bool plus_space)
{
	struct cod_buf b = COD_BUF_INIT;
	cod_buf_addstr(&b, "");
	for (const char *p = s; *p; p++) {
		if (*p == '%') {
			int h = cod_hex_digit((unsigned char)p[1]), l = h >= 0 ? cod_hex_digit((unsigned char)p[2]) : -1;
			if (h < 0 || l < 0) {
				cod_buf_release(&b);
				return NULL;
			}
			cod_buf_addch(&b, (char)(h * 16 + l));
			p += 2;
		} else if (*p == '+' && plus_space) {
			cod_buf_addch(&b, ' ');
		} else {
			cod_buf_addch(&b, *p);
		}
	}
	return cod_buf_detach(&b, NULL);
}

/* ----------------------------------------------------------- hashing */


void cod_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char d[32];
	unsigned int n = 0;
	EVP_Digest(data, len, d, &n, EVP_sha256(), NULL);
	cod_hex_encode(d, 32, hex);
}

int cod_sha256_file(const char *path, char hex[65], unsigned char raw[32], struct cod_error **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cod_error_set(err, COD_E_IO, "open \"%s\": %s", path, strerror(errno));
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	char buf[65536];
	ssize_t r;
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		EVP_DigestUpdate(ctx, buf, (size_t)r);
	int saved = errno;
	close(fd);
	unsigned char d[32];
	unsigned int n = 0;
	EVP_DigestFinal_ex(ctx, d, &n);
	EVP_MD_CTX_free(ctx);
	if (r < 0)
		return cod_error_set(err, COD_E_IO, "read \"%s\": %s", path, strerror(saved));
	cod_hex_encode(d, 32, hex);
	if (raw)
		memcpy(raw, d, 32);
	return 0;
}

char *cod_base64_encode(const void *data, size_t len)
{
	size_t out_len = 4 * ((len + 2) / 3);
	char *out = xmalloc(out_len + 1);
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	out[out_len] = '\0';
	return out;
}

/* ------------------------------------------------------------- trees */

int64_t cod_path_bytes(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return -1;
	if (S_ISREG(st.st_mode))
		return (int64_t)st.st_size;
	if (!S_ISDIR(st.st_mode))
		return 0;
	DIR *d = opendir(path);
	if (!d)
		return 0;
	int64_t total = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		cleanup_free char *sub = xasprintf("%s/%s", path, de->d_name);
		int64_t n = cod_path_bytes(sub);
		if (n > 0)
			total += n;
	}
	closedir(d);
	return total;
}

int cod_remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	DIR *d = opendir(path);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			cleanup_free char *sub = xasprintf("%s/%s", path, de->d_name);
			cod_remove_tree(sub);
		}
		closedir(d);
	}
	return rmdir(path);
}

static int copy_file(const char *src, const char *dst, mode_t mode, struct cod_error **err)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return cod_error_set(err, COD_E_IO, "open \"%s\": %s", src, strerror(errno));
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 0777);
	if (out < 0) {
		int e = errno;
		close(in);
		return cod_error_set(err, COD_E_IO, "create \"%s\": %s", dst, strerror(e));
	}
	char buf[65536];
	ssize_t r;
	int rc = 0;
	while ((r = read(in, buf, sizeof(buf))) > 0) {
		ssize_t off = 0;
		while (off < r) {
			ssize_t w = write(out, buf + off, (size_t)(r - off));
			if (w < 0) {
				rc = cod_error_set(err, COD_E_IO, "write \"%s\": %s", dst, strerror(errno));
				break;
			}
			off += w;
		}
		if (rc < 0)
			break;
	}
	if (r < 0 && rc == 0)
		rc = cod_error_set(err, COD_E_IO, "read \"%s\": %s", src, strerror(errno));
	close(in);
	if (close(out) < 0 && rc == 0)
		rc = cod_error_set(err, COD_E_IO, "close \"%s\": %s", dst, strerror(errno));
	return rc;
}

int cod_copy_tree(const char *src, const char *dst, bool link_files, struct cod_error **err)
{
	struct stat st;
	if (lstat(src, &st) < 0)
		return cod_error_set(err, COD_E_IO, "stat \"%s\": %s", src, strerror(errno));
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlink(src, target, sizeof(target) - 1);
		if (n < 0)
			return cod_error_set(err, COD_E_IO, "readlink \"%s\": %s", src, strerror(errno));
		target[n] = '\0';
		if (symlink(target, dst) < 0)
			return cod_error_set(err, COD_E_IO, "symlink \"%s\": %s", dst, strerror(errno));
		return 0;
	}
	if (S_ISREG(st.st_mode)) {
		if (link_files && link(src, dst) == 0)
			return 0;
		return copy_file(src, dst, st.st_mode, err);
	}
	if (!S_ISDIR(st.st_mode))
		return 0; /* devices, fifos, sockets: not data */
	if (mkdir(dst, (st.st_mode & 0777) | 0700) < 0)
		return cod_error_set(err, COD_E_IO, "create \"%s\": %s", dst, strerror(errno));
	DIR *d = opendir(src);
	if (!d)
		return cod_error_set(err, COD_E_IO, "open \"%s\": %s", src, strerror(errno));
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		cleanup_free char *s = xasprintf("%s/%s", src, de->d_name);
		cleanup_free char *t = xasprintf("%s/%s", dst, de->d_name);
		rc = cod_copy_tree(s, t, link_files, err);
	}
	closedir(d);
	return rc;
}
