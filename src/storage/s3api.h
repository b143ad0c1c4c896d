/*
 * s3api.h - cod's S3 client: AWS Signature Version 4 (header and query
 * signing, s3_sign.c), the credential chain, and the handful of S3 calls
 * the s3 input source, the s3 publisher, the results endpoint and `cod job
 * get` need (s3.c). Path-style addressing for custom endpoints (MinIO,
 * s3rver...), virtual-hosted style for AWS.
 *
 * Credentials, first found wins: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY
 * (+ AWS_SESSION_TOKEN); the shared credentials file (AWS_SHARED_CREDENTIALS_FILE
 * or ~/.aws/credentials) then the config file (AWS_CONFIG_FILE or
 * ~/.aws/config), profile AWS_PROFILE or "default". Region: the spec's,
 * else AWS_REGION / AWS_DEFAULT_REGION, else the profile's, else us-east-1.
 * No credentials: requests go unsigned (public buckets).
 */
#ifndef COD_STORAGE_S3API_H
#define COD_STORAGE_S3API_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"
#include "config/config.h"
#include "model/model.h"

struct cod_aws_creds {
	char *access_key;
	char *secret_key;
	char *session_token; /* or NULL */
	char *region;	     /* from the profile or environment, or NULL */
};

/* Load the chain described above; false when no credentials were found
 * (creds then holds only a region, if any). */
bool cod_aws_creds_load(struct cod_aws_creds *creds);
void cod_aws_creds_release(struct cod_aws_creds *creds);

/* ---- SigV4 (s3_sign.c) ---- */

struct cod_sigv4_request {
	const char *method;
	const char *host;	     /* Host header value (with :port when not default) */
	const char *path;	     /* canonical URI, already URI-encoded */
	const char *query;	     /* canonical query string (sorted, encoded), or "" */
	const struct cod_kvlist *headers; /* extra headers to sign, lower-case names */
	const char *payload_hash; /* hex sha256 of the body, or "UNSIGNED-PAYLOAD" */
	const char *region;
	const char *service; /* "s3" */
	time_t when;	     /* request time (UTC) */
};

/* The "Authorization" header value. Also returns the canonical request and
 * the string to sign when those pointers are not NULL (for tests). Heap. */
char *cod_sigv4_authorization(const struct cod_sigv4_request *r, const struct cod_aws_creds *creds, char **canonical,
			      char **string_to_sign);
/* "20130524T000000Z" */
void cod_sigv4_amz_date(time_t when, char out[17]);
/* A pre-signed URL for r (query signing, X-Amz-Expires = expires_s);
 * scheme is "http" or "https". r->query holds the request's own query
 * parameters (may be ""), r->payload_hash is ignored. Heap. */
char *cod_sigv4_presign(const struct cod_sigv4_request *r, const struct cod_aws_creds *creds, const char *scheme,
			int64_t expires_s);
/* The canonical query string of "a=1&b=2" style input (decoded, sorted,
 * re-encoded the SigV4 way). Heap. */
char *cod_sigv4_canonical_query(const char *query);

/* ---- S3 calls (s3.c) ---- */

struct cod_s3_target {
	const char *bucket;
	const char *endpoint; /* "" or NULL = AWS */
	const char *region;   /* "" or NULL = from the chain */
};

struct cod_s3_object {
	char *key;
	uint64_t size;
	char *etag; /* without quotes */
	bool is_dir;
};

/* List every object under prefix (ListObjectsV2, paginated). */
int cod_s3_list(const struct cod_s3_target *t, const char *prefix, int64_t timeout_ms, struct cod_s3_object **out,
		size_t *n, struct cod_error **err);
void cod_s3_objects_free(struct cod_s3_object *objs, size_t n);
/* HEAD one object: size, ETag, Content-Type (heap, may be NULL). 404 is
 * COD_E_NOT_FOUND. */
int cod_s3_head(const struct cod_s3_target *t, const char *key, const char *version_id, int64_t timeout_ms,
		struct cod_s3_object *out, char **content_type, struct cod_error **err);
/* GET one object into path. cancelled/arg as in cod_http_request. */
int cod_s3_get(const struct cod_s3_target *t, const char *key, const char *version_id, const char *path,
	       uint64_t max_bytes, int64_t timeout_ms, bool (*cancelled)(void *), void *cancel_arg,
	       uint64_t *bytes, struct cod_error **err);
/* PUT a file as key; multipart above part_size (0 = 64 MiB). *etag and
 * *version_id (heap, may be NULL) describe what was stored. */
int cod_s3_put_file(const struct cod_s3_target *t, const char *key, const char *path, uint64_t part_size,
		    int64_t timeout_ms, char **etag, char **version_id, struct cod_error **err);
/* A pre-signed GET URL for key. Heap; NULL with *err when no credentials. */
char *cod_s3_presign_get(const struct cod_s3_target *t, const char *key, const char *version_id, int64_t expires_s,
			 struct cod_error **err);
/* `cod job get` of an "s3" result (a .tar.gz key or a prefix) into dir. */
int cod_s3_download_result(const struct cod_config *cfg, const json_t *params, const char *dir, int64_t timeout_ms,
			   struct cod_error **err);

/* ---- partitioning (s3.c; reference/bacalhau.md §5.2) ---- */

/* FNV-1a, 32 bits (Go's hash/fnv New32a). */
uint32_t cod_fnv1a32(const char *s, size_t n);
/*
 * Which partition (0..count-1) an object key falls into under the spec's
 * Partition {Type, Pattern, StartIndex, EndIndex, DateFormat}; prefix is
 * the input's Key (its trailing '*' removed). -1 with *err on a bad
 * Partition spec.
 */
int cod_s3_partition_of(const json_t *partition, const char *prefix, const char *key, int64_t count,
			struct cod_error **err);
/* Validate a Partition spec (type, pattern, indexes, date layout). */
int cod_s3_partition_check(const json_t *partition, struct cod_error **err);
/* Compile a Go (RE2) pattern as POSIX ERE, translating \d \w \s and
 * their negations. regfree() it. */
#include <regex.h>
int cod_go_regcomp(regex_t *re, const char *pattern, struct cod_error **err);
/* Parse s with a Go time layout (whole string); 0 and *out (UTC) on
 * success. Format it back with cod_go_time_format (heap). */
int cod_go_time_parse(const char *layout, const char *s, struct tm *out);
char *cod_go_time_format(const char *layout, const struct tm *t);

#endif
