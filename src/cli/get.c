/*
 * get.c - `cod job get ID`: download every published result of a job
 * (local-publisher URLs, pre-signed S3 URLs, S3 objects with the client's
 * own credentials, IPFS CIDs through the configured IPFS node), verify what
 * can be verified (sizes, sha256, CIDs block by block), and merge them into
 * one directory (reference/bacalhau.md §1.5).
 *
 * Layout: each result is first downloaded into <out>/raw/<name>/. Unless
 * --raw, the raw trees are then merged into <out>: stdout, stderr and
 * exitCode of several executions are appended one after the other; any
 * other file present in two results is a conflict, reported by name
 * before anything is moved (the raw trees stay for inspection).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "publisher/publisher.h"
#include "storage/http.h"
#include "storage/ipfs.h"
#include "storage/s3api.h"
#include "common/banned.h"

/* Below this a download shows no progress bar. */
#define PROGRESS_MIN_BYTES (1u << 20)

struct get_opts {
	const char *output_dir;
	bool raw;
	int64_t timeout_ms;
};

struct progress {
	const char *name;
	bool show;
	int64_t last_ms;
	bool drawn;
};

static void draw_progress(void *arg, uint64_t done, uint64_t total)
{
	struct progress *p = arg;
	if (!p->show || (total && total < PROGRESS_MIN_BYTES) || (!total && done < PROGRESS_MIN_BYTES))
		return;
	int64_t now = cod_mono_ms();
	if (now - p->last_ms < 200 && done != total)
		return;
	p->last_ms = now;
	cleanup_free char *d = cod_format_bytes(done);
	if (total) {
		cleanup_free char *t = cod_format_bytes(total);
		int width = 30, fill = (int)((double)done / (double)total * width);
		char bar[32];
		for (int i = 0; i < width; i++)
			bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
		bar[width] = '\0';
		fprintf(stderr, "\r%-24.24s [%s] %3d%% %s / %s   ", p->name, bar, (int)(100.0 * (double)done / (double)total),
			d, t);
	} else {
		fprintf(stderr, "\r%-24.24s %s   ", p->name, d);
	}
	p->drawn = true;
}

static void end_progress(struct progress *p)
{
	if (p->drawn)
		fputc('\n', stderr);
	p->drawn = false;
}

/* IPFS content has no size up front: bytes so far. */
static void ipfs_progress(void *arg, uint64_t done)
{
	draw_progress(arg, done, 0);
}

/* ------------------------------------------------------------ fetchers */

/* GET url into path; checks the status. */
static int fetch_url(const char *url, const char *path, const struct get_opts *o, const char *name,
		     struct cod_error **err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return cod_error_set(err, COD_E_IO, "create \"%s\": %s", path, strerror(errno));
	struct progress pr = {.name = name, .show = isatty(STDERR_FILENO)};
	struct cod_http_request req;
	cod_http_request_init(&req, url);
	req.out_fd = fd;
	req.follow_redirects = true;
	req.timeout_ms = o->timeout_ms;
	req.progress = draw_progress;
	req.progress_arg = &pr;
	struct cod_http_response resp;
	int rc = cod_http_do(&req, &resp, err);
	end_progress(&pr);
	close(fd);
	if (rc == 0 && (resp.status < 200 || resp.status >= 300)) {
		rc = cod_error_set(err, resp.status == 404 ? COD_E_NOT_FOUND : COD_E_NETWORK, "GET %s: HTTP %ld", url,
				   resp.status);
		if (resp.status == 404)
			cod_error_hint(*err, "the compute node may have been reset, or the result removed");
		else if (resp.status == 403)
			cod_error_hint(*err, "a pre-signed URL may have expired (Publishers.Types.S3.PreSignedURLExpiration); "
					     "run `cod job get` again for a fresh one");
	}
	if (rc < 0 && *err && (*err)->code == COD_E_NETWORK && !(*err)->hint)
		cod_error_hint(*err, "the result server must be reachable from here: the compute node's "
				     "Publishers.Types.Local.Address says where it is");
	cod_http_response_release(&resp);
	return rc;
}

static bool is_targz(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	cleanup_free char *path = s ? xstrndup(s, strcspn(s, "?#")) : NULL;
	n = path ? strlen(path) : 0;
	return n > 7 && (!strcmp(path + n - 7, ".tar.gz") || !strcmp(path + n - 4, ".tgz"));
}

/* Download a file result; an archive is unpacked into dir, anything else
 * is saved in dir under its own name. */
static int fetch_file(const char *url, const char *dir, const char *file_name, const json_t *params,
		      const struct get_opts *o, const char *name, struct cod_error **err)
{
	if (cod_mkdir_p(dir, 0755, err) < 0)
		return -1;
	cleanup_free char *tmp = xasprintf("%s.download", dir);
	if (fetch_url(url, tmp, o, name, err) < 0) {
		unlink(tmp);
		return -1;
	}
	/* what the publisher recorded about the file */
	struct stat st;
	json_t *size = cod_json_iget(params, "Size");
	if (json_is_integer(size) && stat(tmp, &st) == 0 && (json_int_t)st.st_size != json_integer_value(size)) {
		unlink(tmp);
		return cod_error_set(err, COD_E_VALIDATION, "%s: downloaded %lld bytes, the publisher recorded %lld", url,
				     (long long)st.st_size, (long long)json_integer_value(size));
	}
	json_t *sha = cod_json_iget(params, "SHA256");
	json_t *csum = cod_json_iget(params, "ChecksumSHA256");
	if (json_is_string(sha) || (json_is_string(csum) && *json_string_value(csum))) {
		char hex[65];
		unsigned char raw[32];
		if (cod_sha256_file(tmp, hex, raw, err) < 0) {
			unlink(tmp);
			return -1;
		}
		cleanup_free char *b64 = cod_base64_encode(raw, 32);
		if ((json_is_string(sha) && strcasecmp(hex, json_string_value(sha))) ||
		    (json_is_string(csum) && *json_string_value(csum) && strcmp(b64, json_string_value(csum)))) {
			unlink(tmp);
			return cod_error_set(err, COD_E_VALIDATION,
					     "%s: the download's sha256 does not match what the publisher recorded", url);
		}
	}
	int rc;
	if (is_targz(file_name)) {
		rc = cod_archive_extract(tmp, dir, 0, err);
	} else {
		const char *base = strrchr(file_name, '/');
		base = base ? base + 1 : file_name;
		cleanup_free char *dst = xasprintf("%s/%s", dir, *base ? base : "result");
		rc = rename(tmp, dst) < 0 ? cod_error_set(err, COD_E_IO, "rename \"%s\": %s", dst, strerror(errno)) : 0;
	}
	unlink(tmp);
	return rc;
}

static const char *pstr(const json_t *params, const char *key)
{
	json_t *v = cod_json_iget(params, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A short, unique-enough directory name for result i. Heap. */
static char *result_name(const char *type, const json_t *params, size_t i)
{
	const char *src = NULL;
	if (!strcasecmp(type, "ipfs"))
		src = pstr(params, "CID");
	else if (!strcasecmp(type, "urlDownload"))
		src = pstr(params, "URL");
	else
		src = pstr(params, "Key");
	if (!src)
		return xasprintf("result-%zu", i);
	cleanup_free char *path = xstrndup(src, strcspn(src, "?#"));
	size_t n = strlen(path);
	while (n && path[n - 1] == '/')
		path[--n] = '\0';
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	cleanup_free char *name = xstrdup(*base ? base : "result");
	n = strlen(name);
	if (n > 7 && !strcmp(name + n - 7, ".tar.gz"))
		name[n - 7] = '\0';
	for (char *p = name; *p; p++)
		if (*p == '/' || *p == '\\' || (unsigned char)*p < 0x20)
			*p = '_';
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return xasprintf("result-%zu", i);
	return xasprintf("%zu-%s", i, name);
}

static int fetch_one(struct cod_cli *cli, const json_t *item, const char *dir, size_t i, const struct get_opts *o,
		     struct cod_error **err)
{
	const char *type = pstr(item, "Type");
	json_t *params = cod_json_iget(item, "Params");
	if (!type)
		return cod_error_set(err, COD_E_VALIDATION, "result %zu has no Type", i);
	cleanup_free char *name = result_name(type, params, i);
	if (!strcasecmp(type, "urlDownload") || !strcasecmp(type, "http") || !strcasecmp(type, "https")) {
		const char *url = pstr(params, "URL");
		if (!url)
			return cod_error_set(err, COD_E_VALIDATION, "urlDownload result %zu has no URL", i);
		return fetch_file(url, dir, url, params, o, name, err);
	}
	if (!strcasecmp(type, "s3PreSigned")) {
		const char *url = pstr(params, "PreSignedURL");
		const char *key = pstr(params, "Key");
		if (!url)
			return cod_error_set(err, COD_E_VALIDATION, "s3PreSigned result %zu has no PreSignedURL", i);
		return fetch_file(url, dir, key ? key : "result", params, o, name, err);
	}
	if (!strcasecmp(type, "s3")) {
		/* not pre-signed (plain encoding, or signing disabled): fetch
		 * with this client's own AWS credentials */
		return cod_s3_download_result(&cli->cfg, params, dir, o->timeout_ms, err);
	}
	if (!strcasecmp(type, "ipfs")) {
		const char *cid = pstr(params, "CID");
		if (!cid)
			return cod_error_set(err, COD_E_VALIDATION, "ipfs result %zu has no CID", i);
		const char *endpoint = !cod_str_empty(cli->cfg.input_ipfs_endpoint) ? cli->cfg.input_ipfs_endpoint
										     : cli->cfg.publisher_ipfs_endpoint;
		if (cod_str_empty(endpoint)) {
			cod_error_set(err, COD_E_CONFIG, "result %zu is IPFS CID %s, and no IPFS node is configured", i, cid);
			cod_error_hint(*err, "point the CLI at an IPFS node's API: -c InputSources.Types.IPFS.Endpoint="
					     "/ip4/127.0.0.1/tcp/5001");
			return -1;
		}
		if (cod_mkdir_p(dir, 0755, err) < 0)
			return -1;
		struct progress pr = {.name = cid, .show = isatty(STDERR_FILENO)};
		struct cod_ipfs_get_opts go = {.endpoint = endpoint, .timeout_ms = o->timeout_ms, .into_dir = true,
					       .progress = ipfs_progress, .progress_arg = &pr};
		int rc = cod_ipfs_get(&go, cid, dir, NULL, err);
		end_progress(&pr);
		return rc;
	}
	return cod_error_set(err, COD_E_NOT_IMPLEMENTED, "result %zu has type \"%s\", which cod cannot download", i,
			     type);
}

/* ------------------------------------------------------------- merging */

static bool special_file(const char *rel)
{
	return !strcmp(rel, "stdout") || !strcmp(rel, "stderr") || !strcmp(rel, "exitCode");
}

/* Check (move = false) or do (move = true) the merge of one raw tree. */
static int merge_tree(const char *from, const char *to, const char *rel, bool append_mode, bool move,
		      struct cod_strlist *claimed, struct cod_error **err)
{
	cleanup_free char *src = *rel ? xasprintf("%s/%s", from, rel) : xstrdup(from);
	DIR *d = opendir(src);
	if (!d)
		return cod_error_set(err, COD_E_IO, "open \"%s\": %s", src, strerror(errno));
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		cleanup_free char *sub = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		cleanup_free char *s = xasprintf("%s/%s", from, sub);
		cleanup_free char *t = xasprintf("%s/%s", to, sub);
		struct stat st, tst;
		if (lstat(s, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (lstat(t, &tst) == 0 && !S_ISDIR(tst.st_mode))
				rc = cod_error_set(err, COD_E_CONFLICT,
						   "cannot merge results as output already exists: %s", t);
			else if (move && cod_mkdir_p(t, 0755, err) < 0)
				rc = -1;
			else
				rc = merge_tree(from, to, sub, append_mode, move, claimed, err);
			continue;
		}
		if (append_mode && special_file(sub)) {
			if (move) {
				int in = open(s, O_RDONLY | O_CLOEXEC);
				int out = open(t, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
				char buf[65536];
				ssize_t r;
				while (in >= 0 && out >= 0 && (r = read(in, buf, sizeof(buf))) > 0)
					if (write(out, buf, (size_t)r) != r)
						break;
				if (in >= 0)
					close(in);
				if (out >= 0)
					close(out);
				unlink(s);
			}
			continue;
		}
		bool taken = lstat(t, &tst) == 0;
		for (size_t i = 0; !taken && claimed && i < claimed->n; i++)
			taken = !strcmp(claimed->items[i], t);
		if (taken) {
			rc = cod_error_set(err, COD_E_CONFLICT, "cannot merge results as output already exists: %s", t);
			continue;
		}
		if (!move) {
			cod_strlist_add(claimed, t);
			continue;
		}
		if (rename(s, t) < 0)
			rc = cod_error_set(err, COD_E_IO, "move \"%s\": %s", t, strerror(errno));
	}
	closedir(d);
	return rc;
}

/* -------------------------------------------------------------- command */

int cod_cmd_job_get(struct cod_cli *cli, int argc, char **argv)
{
	const char *output_dir = NULL, *timeout = NULL;
	bool raw = false;
	const struct cod_flag flags[] = {
	    {"output-dir", 0, COD_FLAG_STR, &output_dir, "DIR", "where to write the results (default ./job-<id>)", NULL},
	    {"raw", 0, COD_FLAG_BOOL, &raw, NULL, "keep each execution's results apart under DIR/raw", NULL},
	    {"download-timeout-secs", 0, COD_FLAG_STR, &timeout, "DURATION",
	     "time allowed for each download (seconds or 30s, 5m; default 5m)", NULL},
	    COD_FLAGS_END,
	};
	const char *pos[1];
	int npos = 0;
	int rc = cod_cli_parse(cli, argc, argv, flags, "job get ID [flags]",
			       "Download the published results of a job: local-publisher URLs, S3 objects (pre-signed\n"
			       "or with your AWS credentials) and IPFS CIDs (through InputSources.Types.IPFS.Endpoint),\n"
			       "verified, then merged into one directory (--raw keeps them apart).\n\n"
			       "Examples:\n  cod job get j-6f9c2a1b\n  cod job get j-6f9c2a1b --output-dir results --raw",
			       pos, &npos, 1);
	if (rc)
		return cli->help ? 0 : rc;
	if (npos != 1 || cod_str_empty(pos[0]))
		return cod_cli_usage_error("job get", "expected one job ID");
	struct cod_error *err = NULL;
	if (cod_cli_load_config(cli, &err) < 0)
		return cod_cli_fail(err);
	struct get_opts o = {.raw = raw, .timeout_ms = 5 * 60 * 1000};
	if (timeout && cod_parse_duration_ms(timeout, &o.timeout_ms) < 0)
		return cod_cli_usage_error("job get", "--download-timeout-secs \"%s\" is not a duration", timeout);

	/* the job first: its full ID names the default directory */
	cleanup_free char *esc = cod_client_escape(pos[0]);
	cleanup_free char *jpath = xasprintf("/api/v1/orchestrator/jobs/%s", esc);
	json_t *job = NULL;
	if (cod_client_call(cli, "GET", jpath, NULL, &job, &err) < 0)
		return cod_cli_fail(err);
	const char *job_id = pstr(cod_json_iget(job, "Job"), "ID");
	cleanup_free char *id = xstrdup(job_id ? job_id : pos[0]);
	json_decref(job);
	cleanup_free char *eid = cod_client_escape(id);
	cleanup_free char *rpath = xasprintf("/api/v1/orchestrator/jobs/%s/results", eid);
	json_t *results = NULL;
	if (cod_client_call(cli, "GET", rpath, NULL, &results, &err) < 0)
		return cod_cli_fail(err);
	json_t *items = cod_json_iget(results, "Items");
	size_t n = json_is_array(items) ? json_array_size(items) : 0;
	if (!n) {
		json_decref(results);
		printf("No results found\n");
		fprintf(stderr, "Hint: the job may still be running, have failed, or use the noop publisher; see its "
				"output with `cod job logs %s` or `cod job describe %s`\n",
			id, id);
		return 0;
	}

	cleanup_free char *short_id = cod_short_id(id);
	cleanup_free char *out = output_dir ? xstrdup(output_dir) : xasprintf("job-%s", short_id);
	cleanup_free char *raw_dir = xasprintf("%s/raw", out);
	if (cod_mkdir_p(raw_dir, 0755, &err) < 0) {
		json_decref(results);
		return cod_cli_fail(err);
	}
	struct cod_strlist dirs = {0};
	for (size_t i = 0; i < n; i++) {
		json_t *item = json_array_get(items, i);
		cleanup_free char *name = result_name(pstr(item, "Type") ? pstr(item, "Type") : "",
						      cod_json_iget(item, "Params"), i);
		cleanup_free char *dir = xasprintf("%s/%s", raw_dir, name);
		cod_remove_tree(dir);
		if (fetch_one(cli, item, dir, i, &o, &err) < 0) {
			cod_error_wrap(&err, "download result %zu of %zu", i + 1, n);
			cod_strlist_release(&dirs);
			json_decref(results);
			return cod_cli_fail(err);
		}
		cod_strlist_add(&dirs, dir);
	}
	json_decref(results);

	if (!o.raw) {
		bool append_mode = dirs.n > 1;
		struct cod_strlist claimed = {0};
		int mrc = 0;
		for (size_t i = 0; i < dirs.n && mrc == 0; i++)
			mrc = merge_tree(dirs.items[i], out, "", append_mode, false, &claimed, &err);
		cod_strlist_release(&claimed);
		for (size_t i = 0; i < dirs.n && mrc == 0; i++)
			mrc = merge_tree(dirs.items[i], out, "", append_mode, true, NULL, &err);
		if (mrc < 0) {
			cod_strlist_release(&dirs);
			if (err && !err->hint)
				cod_error_hint(err, "the downloads are kept in %s; use --raw to keep each result apart, "
						    "or --output-dir to write elsewhere",
					       raw_dir);
			return cod_cli_fail(err);
		}
		cod_remove_tree(raw_dir);
	}
	cod_strlist_release(&dirs);
	char abs[4096];
	const char *shown = realpath(out, abs) ? abs : out;
	printf("Results for job '%s' have been written to...\n%s\n", id, shown);
	return 0;
}

/* `cod job ...`, with `get` in front of the job group's own commands. */
int cod_cmd_job_group(struct cod_cli *cli, int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "get"))
		return cod_cmd_job_get(cli, argc - 1, argv + 1);
	int rc = cod_cmd_job(cli, argc, argv);
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))
		fputs("\nDownloading results:\n  cod job get ID [--output-dir DIR] [--raw]\n",
		      argc < 2 ? stderr : stdout);
	return rc;
}
