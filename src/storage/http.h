/*
 * http.h - the HTTP client the data paths share (urlDownload, S3, IPFS,
 * the publishers and `cod job get`): one libcurl request with a hard cap
 * on what it may download, a deadline, cancellation and progress.
 *
 * A request either streams its body into a file descriptor or collects it
 * in a capped buffer. Response headers are kept (names lower-cased). The
 * call returns 0 whenever a response arrived, whatever its status: the
 * caller decides what a 404 means. It returns -1 when none did (DNS,
 * connect, TLS, reset: COD_E_NETWORK; deadline: COD_E_TIMEOUT; cancelled:
 * COD_E_UNAVAILABLE "cancelled"; the cap was hit: COD_E_TOO_LARGE).
 */
#ifndef COD_STORAGE_HTTP_H
#define COD_STORAGE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"
#include "model/model.h"

struct cod_http_request {
	const char *method;		  /* NULL = GET; "HEAD" sends no body back */
	const char *url;
	const struct cod_strlist *headers; /* "Name: value" lines, borrowed */
	/* Request body: memory, or a byte range of a file (upload_fd >= 0). */
	const void *body;
	size_t body_len;
	int upload_fd; /* -1 = none; 0 is a valid fd only when upload_len > 0 */
	uint64_t upload_off, upload_len;
	/* Or: POST this file as the one part, named "file", of a
	 * multipart/form-data body (the IPFS RPC API's way). */
	const char *form_file;
	/* Response body: into out_fd (>= 0), else into out_buf (may be NULL:
	 * discarded). */
	int out_fd;
	struct cod_buf *out_buf;
	uint64_t max_bytes;	  /* 0 = no cap; more is COD_E_TOO_LARGE */
	int64_t timeout_ms;	  /* whole transfer; 0 = none */
	int64_t connect_timeout_ms; /* 0 = 10 s */
	bool follow_redirects;	  /* up to 10 */
	/* Polled while the transfer runs: true aborts it. */
	bool (*cancelled)(void *arg);
	void *cancel_arg;
	/* Called now and then with bytes received and the expected total
	 * (0 = unknown). */
	void (*progress)(void *arg, uint64_t done, uint64_t total);
	void *progress_arg;
};

struct cod_http_response {
	long status;
	struct cod_kvlist headers; /* lower-case names; the last value wins */
	char *effective_url;	   /* after redirects */
	uint64_t bytes;		   /* body bytes received */
};

/* Initialise a request with the defaults above (no fds, GET). */
void cod_http_request_init(struct cod_http_request *req, const char *url);
int cod_http_do(const struct cod_http_request *req, struct cod_http_response *resp, struct cod_error **err);
void cod_http_response_release(struct cod_http_response *resp);
/* A response header (lower-case name) or NULL. */
const char *cod_http_header(const struct cod_http_response *resp, const char *name);

/* Percent-encode s for a URL: unreserved characters stay, '/' stays when
 * keep_slash. Heap. */
char *cod_url_encode(const char *s, bool keep_slash);
/* Decode %XX escapes (and '+' when plus_space). Heap; NULL on bad input. */
char *cod_url_decode(const char *s, bool plus_space);

/* Hex SHA-256 of a file (65 bytes out); raw digest too when raw != NULL. */
int cod_sha256_file(const char *path, char hex[65], unsigned char raw[32], struct cod_error **err);
void cod_sha256_hex(const void *data, size_t len, char hex[65]);

/* Standard base64 (with padding). Heap. */
char *cod_base64_encode(const void *data, size_t len);

/* Bytes under path: a file's size, or the sum of a tree's regular files
 * (symlinks not followed). -1 when path does not exist. */
int64_t cod_path_bytes(const char *path);
/* rm -rf path (symlinks removed, not followed). Missing is not an error. */
int cod_remove_tree(const char *path);
/* Copy a tree (or file) from src to dst, hard-linking regular files when
 * link is set and the file systems allow it, copying otherwise. dst must
 * not exist. */
int cod_copy_tree(const char *src, const char *dst, bool link, struct cod_error **err);

#endif
