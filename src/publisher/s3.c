/*
 * s3.c - the `s3` publisher: results to an S3 bucket (reference/bacalhau.md
 * §5.3). Params: Bucket, Key, Endpoint, Region, Encoding (gzip, the
 * default: one tar.gz object; plain: one object per file under Key as a
 * prefix). Key templates: {jobID}, {executionID}, {nodeID}, {date}
 * (YYYYMMDD) and {time} (HHMMSS), UTC. As Bacalhau does, a gzip Key gets
 * ".tar.gz" appended when it lacks it and a plain Key a trailing '/'.
 * Files larger than Publishers.Types.S3.PartSize go up as multipart
 * uploads. The result is an s3 SpecConfig (Bucket, Key, Endpoint, Region,
 * VersionID, ChecksumSHA256 of the archive) that the orchestrator turns
 * into a pre-signed URL for clients.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "publisher/publisher.h"
#include "storage/http.h"
#include "storage/s3api.h"
#include "common/banned.h"

static const char *pstr(const json_t *params, const char *key)
{
	json_t *v = cod_json_iget(params, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool is_installed(const struct cod_config *cfg)
{
	(void)cfg;
	struct cod_aws_creds c;
	bool ok = cod_aws_creds_load(&c);
	cod_aws_creds_release(&c);
	return ok;
}

static bool plain_encoding(const json_t *params, char **reason)
{
	const char *enc = pstr(params, "Encoding");
	if (cod_str_empty(enc) || !strcasecmp(enc, "gzip"))
		return false;
	if (!strcasecmp(enc, "plain"))
		return true;
	if (reason)
		*reason = xasprintf("s3 publisher Encoding \"%s\" is not gzip or plain", enc);
	return false;
}

static bool bid_check(const struct cod_config *cfg, const struct cod_spec_config *spec, char **reason)
{
	(void)cfg;
	if (cod_str_empty(pstr(spec->params, "Bucket"))) {
		*reason = xstrdup("s3 publisher has no Bucket");
		return false;
	}
	plain_encoding(spec->params, reason);
	return *reason == NULL;
}

static void replace_all(struct cod_buf *b, const char *text, const char *from, const char *to)
{
	size_t fl = strlen(from);
	for (const char *p = text; *p;) {
		const char *hit = strstr(p, from);
		if (!hit) {
			cod_buf_addstr(b, p);
			break;
		}
		cod_buf_add(b, p, (size_t)(hit - p));
		cod_buf_addstr(b, to);
		p = hit + fl;
	}
}

/* Bacalhau's ParsePublishedKey. */
char *cod_s3_publish_key(const char *tmpl, const struct cod_execution *e, const char *node_id, bool archive,
			 time_t now)
{
	cleanup_free char *key = xstrdup(tmpl ? tmpl : "");
	size_t n = strlen(key);
	if (archive && !cod_str_has_suffix(key, ".tar.gz")) {
		char *k = xasprintf("%s.tar.gz", key);
		free(key);
		key = k;
	} else if (!archive && (!n || key[n - 1] != '/')) {
		char *k = xasprintf("%s/", key);
		free(key);
		key = k;
	}
	struct tm tm;
	gmtime_r(&now, &tm);
	char date[16], tod[16];
	strftime(date, sizeof(date), "%Y%m%d", &tm);
	strftime(tod, sizeof(tod), "%H%M%S", &tm);
	const char *from[] = {"{nodeID}", "{executionID}", "{jobID}", "{date}", "{time}"};
	const char *to[] = {node_id ? node_id : "", e->id ? e->id : "", e->job_id ? e->job_id : "", date, tod};
	for (size_t i = 0; i < COD_ARRAY_SIZE(from); i++) {
		struct cod_buf b = COD_BUF_INIT;
		cod_buf_addstr(&b, "");
		replace_all(&b, key, from[i], to[i]);
		free(key);
		key = cod_buf_detach(&b, NULL);
	}
	/* S3 keys do not start with '/' */
	char *k = key;
	while (*k == '/')
		k++;
	return xstrdup(k);
}

static int upload_tree(const struct cod_s3_target *t, const char *root, const char *rel, const char *prefix,
		       uint64_t part, int64_t timeout_ms, struct cod_error **err)
{
	cleanup_free char *dir = *rel ? xasprintf("%s/%s", root, rel) : xstrdup(root);
	DIR *d = opendir(dir);
	if (!d)
		return cod_error_set(err, COD_E_IO, "open \"%s\": %s", dir, strerror(errno));
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		cleanup_free char *sub = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		cleanup_free char *path = xasprintf("%s/%s", root, sub);
		struct stat st;
		if (lstat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			rc = upload_tree(t, root, sub, prefix, part, timeout_ms, err);
		} else if (S_ISREG(st.st_mode)) {
			cleanup_free char *key = xasprintf("%s%s", prefix, sub);
			rc = cod_s3_put_file(t, key, path, part, timeout_ms, NULL, NULL, err);
		}
	}
	closedir(d);
	return rc;
}

static int publish(const struct cod_publish_ctx *ctx, struct cod_spec_config *result, struct cod_error **err)
{
	const json_t *params = ctx->spec->params;
	cleanup_free char *reason = NULL;
	if (!bid_check(ctx->cfg, ctx->spec, &reason))
		return cod_error_set(err, COD_E_VALIDATION, "%s", reason);
	bool plain = plain_encoding(params, NULL);
	struct cod_s3_target t = {.bucket = pstr(params, "Bucket"), .endpoint = pstr(params, "Endpoint"),
				  .region = pstr(params, "Region")};
	uint64_t part = 0;
	if (ctx->cfg && !cod_str_empty(ctx->cfg->publisher_s3_part_size))
		cod_parse_bytes(ctx->cfg->publisher_s3_part_size, &part);
	int64_t timeout_ms = 0; /* uploads take what they take; cancellation ends them */
	cleanup_free char *key = cod_s3_publish_key(pstr(params, "Key"), ctx->execution, ctx->node_id, !plain, time(NULL));
	json_t *out = json_pack("{s:s, s:s}", "Bucket", t.bucket, "Key", key);
	if (!cod_str_empty(t.endpoint))
		json_object_set_new(out, "Endpoint", json_string(t.endpoint));
	if (!cod_str_empty(t.region))
		json_object_set_new(out, "Region", json_string(t.region));
	if (plain) {
		if (upload_tree(&t, ctx->results_dir, "", key, part, timeout_ms, err) < 0) {
			json_decref(out);
			return -1;
		}
	} else {
		cleanup_free char *archive = xasprintf("%s/results.tar.gz", ctx->exec_dir);
		uint64_t size = 0;
		char hex[65];
		unsigned char raw[32];
		cleanup_free char *etag = NULL, *version = NULL;
		if (cod_archive_targz(ctx->results_dir, archive, &size, err) < 0 ||
		    cod_sha256_file(archive, hex, raw, err) < 0 ||
		    cod_s3_put_file(&t, key, archive, part, timeout_ms, &etag, &version, err) < 0) {
			unlink(archive);
			json_decref(out);
			return -1;
		}
		unlink(archive);
		cleanup_free char *b64 = cod_base64_encode(raw, 32);
		json_object_set_new(out, "ChecksumSHA256", json_string(b64));
		if (!cod_str_empty(version))
			json_object_set_new(out, "VersionID", json_string(version));
	}
	result->type = xstrdup("s3");
	result->params = out;
	return 0;
}

const struct cod_publisher_ops cod_publisher_s3 = {
	.name = "s3",
	.is_installed = is_installed,
	.bid_check = bid_check,
	.publish = publish,
};
