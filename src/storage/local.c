/*
 * local.c - the `local` input source (alias `localDirectory`): a path on the
 * compute node itself, mounted where the task wants it. This is the plainest
 * form of data locality: the data never moves.
 *
 * Params: SourcePath (absolute), ReadWrite (bool or "true"), CreateAs
 * (noCreate | dir | file). Only paths matching Compute.AllowListedLocalPaths
 * may be used; each entry is a doublestar glob with an optional ":rw" or
 * ":ro" suffix (default read-only). Write access needs both the job's
 * ReadWrite and a ":rw" grant; a missing path is created only with
 * ReadWrite and a CreateAs other than noCreate (Bacalhau's rules, with its
 * hints on refusal). Paths are resolved (symlinks, "..") before matching so
 * that an allowed prefix cannot be escaped.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/util.h"
#include "storage/http.h"
#include "storage/storage.h"
#include "common/banned.h"

/* ------------------------------------------------------------ globbing */

/* Match one segment of pattern (up to '/' or end) against one segment of
 * path, fnmatch style. */
static bool seg_match(const char *pat, size_t plen, const char *s, size_t slen)
{
	cleanup_free char *p = xstrndup(pat, plen);
	cleanup_free char *t = xstrndup(s, slen);
	return fnmatch(p, t, 0) == 0;
}

static bool match_from(const char *pat, const char *path)
{
	for (;;) {
		if (!*pat)
			return !*path;
		const char *pend = strchr(pat, '/');
		size_t plen = pend ? (size_t)(pend - pat) : strlen(pat);
		if (plen == 2 && pat[0] == '*' && pat[1] == '*') {
			const char *rest = pend ? pend + 1 : "";
			/* '**' matches zero or more whole segments */
			if (!*rest)
				return true;
			if (match_from(rest, path))
				return true;
			for (const char *p = path; *p; p++)
				if (*p == '/' && match_from(rest, p + 1))
					return true;
			return false;
		}
		const char *send = strchr(path, '/');
		size_t slen = send ? (size_t)(send - path) : strlen(path);
		if (!*path && plen)
			return false;
		if (!seg_match(pat, plen, path, slen))
			return false;
		if (!pend)
			return !send;
		if (!send) {
			/* pattern continues; only a trailing "**" may match
			 * nothing more */
			return !strcmp(pend, "/**");
		}
		pat = pend + 1;
		path = send + 1;
	}
}

bool cod_glob_match(const char *pattern, const char *path)
{
	if (!pattern || !path)
		return false;
	/* a trailing slash on either side is not significant */
	cleanup_free char *p = xstrdup(pattern), *t = xstrdup(path);
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	n = strlen(t);
	while (n > 1 && t[n - 1] == '/')
		t[--n] = '\0';
	if (*p == '/' && *t == '/')
		return match_from(p + 1, t + 1);
	return match_from(p, t);
}

char *cod_allowlist_entry(const char *entry, bool *rw)
{
	char *g = cod_str_trim(xstrdup(entry));
	*rw = false;
	size_t n = strlen(g);
	if (n > 3 && (!strcasecmp(g + n - 3, ":rw") || !strcasecmp(g + n - 3, ":ro"))) {
		*rw = !strcasecmp(g + n - 3, ":rw");
		g[n - 3] = '\0';
	}
	return g;
}

/* ------------------------------------------------------------ params */

enum create_as { CREATE_NO = 0, CREATE_DIR, CREATE_FILE };

struct local_params {
	const char *source_path;
	bool read_write;
	enum create_as create_as;
};

static int parse_params(const struct cod_input_source *in, struct local_params *p, char **reason)
{
	memset(p, 0, sizeof(*p));
	p->source_path = cod_storage_param(in, "SourcePath");
	if (cod_str_empty(p->source_path)) {
		*reason = xstrdup("local input has no SourcePath");
		return -1;
	}
	if (p->source_path[0] != '/') {
		*reason = xasprintf("local input SourcePath \"%s\" is not an absolute path", p->source_path);
		return -1;
	}
	p->read_write = cod_storage_param_bool(in, "ReadWrite");
	const char *ca = cod_storage_param(in, "CreateAs");
	if (cod_str_empty(ca) || !strcasecmp(ca, "noCreate"))
		p->create_as = CREATE_NO;
	else if (!strcasecmp(ca, "dir"))
		p->create_as = CREATE_DIR;
	else if (!strcasecmp(ca, "file"))
		p->create_as = CREATE_FILE;
	else {
		*reason = xasprintf("local input CreateAs \"%s\" is not noCreate, dir or file", ca);
		return -1;
	}
	return 0;
}

/* Resolve path: realpath when it exists, else realpath of the nearest
 * existing parent plus the rest (cleaned of "." and ".."). Heap. */
static char *resolve(const char *path)
{
	char buf[PATH_MAX];
	if (realpath(path, buf))
		return xstrdup(buf);
	/* lexical clean first */
	cleanup_free char *copy = xstrdup(path);
	char **segs = NULL;
	size_t n = 0, alloc = 0;
	char *save = NULL;
	for (char *tok = strtok_r(copy, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (!strcmp(tok, "."))
			continue;
		if (!strcmp(tok, "..")) {
			if (n)
				n--;
			continue;
		}
		COD_GROW(segs, alloc, n + 1);
		segs[n++] = tok;
	}
	/* the longest existing prefix, resolved, plus the remainder */
	size_t keep = n;
	char *resolved = NULL;
	for (;;) {
		struct cod_buf b = COD_BUF_INIT;
		cod_buf_addstr(&b, "");
		for (size_t i = 0; i < keep; i++)
			cod_buf_addf(&b, "/%s", segs[i]);
		if (!b.len)
			cod_buf_addch(&b, '/');
		if (realpath(cod_buf_str(&b), buf)) {
			cod_buf_release(&b);
			struct cod_buf r = COD_BUF_INIT;
			cod_buf_addstr(&r, strcmp(buf, "/") ? buf : "");
			for (size_t i = keep; i < n; i++)
				cod_buf_addf(&r, "/%s", segs[i]);
			if (!r.len)
				cod_buf_addch(&r, '/');
			resolved = cod_buf_detach(&r, NULL);
			break;
		}
		cod_buf_release(&b);
		if (!keep) {
			resolved = xstrdup(path);
			break;
		}
		keep--;
	}
	free(segs);
	return resolved;
}

/* Find the allow-list entry that grants path; *rw tells whether it grants
 * write access (a read-only match is kept looking past for an :rw one). */
static bool allowed(const struct cod_config *cfg, const char *path, bool *rw)
{
	bool found = false;
	*rw = false;
	for (size_t i = 0; cfg && i < cfg->compute_allowed_paths.n; i++) {
		bool entry_rw;
		cleanup_free char *glob = cod_allowlist_entry(cfg->compute_allowed_paths.items[i], &entry_rw);
		cleanup_free char *rglob = NULL;
		/* the glob's literal directory part may itself be a symlink */
		if (cod_glob_match(glob, path) ||
		    ((rglob = resolve(glob)) && strcmp(rglob, glob) && cod_glob_match(rglob, path))) {
			found = true;
			if (entry_rw)
				*rw = true;
		}
	}
	return found;
}

/* The allow-list checks; NULL when acceptable, else the reason (heap). */
static char *check(const struct cod_config *cfg, const struct local_params *p, const char *resolved)
{
	bool rw = false;
	if (!allowed(cfg, resolved, &rw)) {
		if (!cfg || !cfg->compute_allowed_paths.n)
			return xasprintf("local input \"%s\" is not allowlisted: this node allows no local paths; "
					 "the node's operator can add it to Compute.AllowListedLocalPaths",
					 p->source_path);
		return xasprintf("local input \"%s\" is not allowlisted; the node allows only: %s%s", p->source_path,
				 cfg->compute_allowed_paths.items[0], cfg->compute_allowed_paths.n > 1 ? ", ..." : "");
	}
	if (p->read_write && !rw)
		return xasprintf("local input \"%s\" is not granted write access; ask for it read-only, or the "
				 "node's operator can add \"%s:rw\" to Compute.AllowListedLocalPaths",
				 p->source_path, p->source_path);
	struct stat st;
	if (stat(resolved, &st) < 0) {
		if (p->create_as == CREATE_NO)
			return xasprintf("local input \"%s\" does not exist on this node", p->source_path);
		if (!p->read_write)
			return xasprintf("local input \"%s\" does not exist and can only be created with ReadWrite",
					 p->source_path);
	}
	return NULL;
}

static bool bid_check(const struct cod_config *cfg, const struct cod_input_source *in, char **reason)
{
	struct local_params p;
	if (parse_params(in, &p, reason) < 0)
		return false;
	cleanup_free char *resolved = resolve(p.source_path);
	char *why = check(cfg, &p, resolved);
	if (why) {
		*reason = why;
		return false;
	}
	return true;
}

static int64_t local_bytes(const struct cod_config *cfg, const struct cod_input_source *in)
{
	struct local_params p;
	cleanup_free char *reason = NULL;
	if (parse_params(in, &p, &reason) < 0)
		return 0;
	cleanup_free char *resolved = resolve(p.source_path);
	cleanup_free char *why = check(cfg, &p, resolved);
	if (why)
		return 0;
	int64_t n = cod_path_bytes(resolved);
	/* an existing empty directory is here all the same */
	return n > 0 ? n : 1;
}

static int prepare(const struct cod_storage_ctx *ctx, struct cod_mount *mount, struct cod_error **err)
{
	struct local_params p;
	cleanup_free char *reason = NULL;
	if (parse_params(ctx->input, &p, &reason) < 0)
		return cod_error_set(err, COD_E_VALIDATION, "%s", reason);
	cleanup_free char *resolved = resolve(p.source_path);
	cleanup_free char *why = check(ctx->cfg, &p, resolved);
	if (why)
		return cod_error_set(err, COD_E_FORBIDDEN, "%s", why);
	struct stat st;
	if (stat(resolved, &st) < 0) {
		if (p.create_as == CREATE_DIR) {
			if (cod_mkdir_p(resolved, 0755, err) < 0)
				return -1;
		} else {
			cleanup_free char *parent = xstrdup(resolved);
			char *slash = strrchr(parent, '/');
			if (slash && slash != parent) {
				*slash = '\0';
				if (cod_mkdir_p(parent, 0755, err) < 0)
					return -1;
			}
			int fd = open(resolved, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
			if (fd < 0)
				return cod_error_set(err, COD_E_IO, "create \"%s\": %s", resolved, strerror(errno));
			close(fd);
		}
	}
	bool rw = false;
	allowed(ctx->cfg, resolved, &rw);
	if (ctx->stats) {
		int64_t n = cod_path_bytes(resolved);
		ctx->stats->bytes_local = n > 0 ? (uint64_t)n : 0;
	}
	mount->source = steal_pointer(&resolved);
	mount->target = xstrdup(ctx->input->target ? ctx->input->target : p.source_path);
	mount->read_only = !(p.read_write && rw);
	return 0;
}

static const char *const aliases[] = {"localDirectory", NULL};

const struct cod_storage_ops cod_storage_local = {
	.name = "local",
	.aliases = aliases,
	.bid_check = bid_check,
	.local_bytes = local_bytes,
	.prepare = prepare,
};
