/*
 * storage.c - the input source registry.
 */
#include "storage/storage.h"

#include <string.h>
#include <strings.h>

#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "storage/cache.h"
#include "storage/http.h"
#include "storage/unixfs.h"
#include "common/banned.h"

/* Inventory entries advertised at most (the node info stays small). */
#define INVENTORY_MAX 512

static const struct cod_storage_ops *const registry[] = {
	&cod_storage_inline,
	&cod_storage_local,
	&cod_storage_url,
	&cod_storage_s3,
	&cod_storage_ipfs,
};

const struct cod_storage_ops *cod_storage_find(const char *type)
{
	if (!type)
		return NULL;
	cleanup_free char *t = cod_str_trim(xstrdup(type));
	for (size_t i = 0; i < COD_ARRAY_SIZE(registry); i++) {
		if (!strcasecmp(registry[i]->name, t))
			return registry[i];
		for (const char *const *a = registry[i]->aliases; a && *a; a++)
			if (!strcasecmp(*a, t))
				return registry[i];
	}
	return NULL;
}

const struct cod_storage_ops *const *cod_storage_all(size_t *n)
{
	*n = COD_ARRAY_SIZE(registry);
	return registry;
}

void cod_storage_installed(const struct cod_config *cfg, struct cod_strlist *out)
{
	for (size_t i = 0; i < COD_ARRAY_SIZE(registry); i++)
		if (!cod_storage_disabled(cfg, registry[i]->name) &&
		    (!registry[i]->is_installed || registry[i]->is_installed(cfg))) {
			cod_strlist_add(out, registry[i]->name);
			/* aliases too, as Bacalhau lists them: a job that names
			 * localDirectory finds the node that has local */
			for (const char *const *a = registry[i]->aliases; a && *a; a++)
				cod_strlist_add(out, *a);
		}
}

bool cod_storage_disabled(const struct cod_config *cfg, const char *type)
{
	const struct cod_storage_ops *ops = cod_storage_find(type);
	for (size_t i = 0; cfg && i < cfg->input_disabled.n; i++) {
		const struct cod_storage_ops *d = cod_storage_find(cfg->input_disabled.items[i]);
		if ((d && d == ops) || !strcasecmp(cfg->input_disabled.items[i], type))
			return true;
	}
	return false;
}

const char *cod_storage_param(const struct cod_input_source *in, const char *key)
{
	json_t *v = cod_json_iget(in->source.params, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

bool cod_storage_param_bool(const struct cod_input_source *in, const char *key)
{
	json_t *v = cod_json_iget(in->source.params, key);
	if (json_is_true(v))
		return true;
	return json_is_string(v) && !strcasecmp(json_string_value(v), "true");
}

bool cod_storage_locality_ok(const struct cod_config *cfg, const struct cod_storage_ops *ops,
			     const struct cod_input_source *in, char **reason)
{
	if (!cfg || cod_str_empty(cfg->compute_locality) || strcasecmp(cfg->compute_locality, "local"))
		return true;
	if (ops->local_bytes && ops->local_bytes(cfg, in) > 0)
		return true;
	cleanup_free char *where = cod_storage_locator(in);
	*reason = xasprintf("input %s%s%s is not on this node and Compute.JobAdmissionControl.Locality is local",
			    where ? "\"" : "", where ? where : (in->source.type ? in->source.type : "?"),
			    where ? "\"" : "");
	return false;
}

/* ------------------------------------------------------------ locality */

static const char *pstr(const json_t *params, const char *key)
{
	json_t *v = cod_json_iget(params, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* "s3://<endpoint host or aws-region>/<bucket>/<key>" */
static char *s3_locator(const struct cod_input_source *in, bool *prefix)
{
	const char *bucket = pstr(in->source.params, "Bucket");
	const char *key = pstr(in->source.params, "Key");
	const char *endpoint = pstr(in->source.params, "Endpoint");
	if (cod_str_empty(bucket))
		return NULL;
	if (!key)
		key = "";
	size_t kl = strlen(key);
	*prefix = !kl || key[kl - 1] == '/' || key[kl - 1] == '*';
	if (kl && key[kl - 1] == '*')
		kl--;
	const char *host = "aws";
	cleanup_free char *h = NULL;
	if (!cod_str_empty(endpoint)) {
		const char *p = strstr(endpoint, "://");
		p = p ? p + 3 : endpoint;
		h = xstrndup(p, strcspn(p, "/"));
		host = h;
	}
	return xasprintf("s3://%s/%s/%.*s", host, bucket, (int)kl, key);
}

int cod_storage_mount_ro(const struct cod_storage_ctx *ctx, struct cod_mount *mount, char **path)
{
	mount->source = steal_pointer(path);
	mount->target = xstrdup(ctx->input->target ? ctx->input->target : "/inputs");
	mount->read_only = true;
	return 0;
}

char *cod_storage_locator(const struct cod_input_source *in)
{
	const struct cod_storage_ops *ops = cod_storage_find(in->source.type);
	if (ops == &cod_storage_url) {
		const char *url = pstr(in->source.params, "URL");
		return url ? xstrdup(url) : NULL;
	}
	if (ops && !strcmp(ops->name, "ipfs")) {
		const char *text = pstr(in->source.params, "CID");
		struct cod_cid cid;
		if (!text || cod_cid_parse(text, &cid, NULL) < 0)
			return text ? xasprintf("ipfs://%s", text) : NULL;
		cleanup_free char *canonical = cod_cid_string(&cid);
		return xasprintf("ipfs://%s", canonical);
	}
	if (ops && !strcmp(ops->name, "s3")) {
		bool prefix;
		return s3_locator(in, &prefix);
	}
	if (ops == &cod_storage_local) {
		const char *p = pstr(in->source.params, "SourcePath");
		return p ? xstrdup(p) : NULL;
	}
	return NULL;
}

json_t *cod_storage_inventory(const struct cod_config *cfg)
{
	json_t *paths = json_array();
	for (size_t i = 0; cfg && i < cfg->compute_allowed_paths.n; i++) {
		bool rw;
		cleanup_free char *glob = cod_allowlist_entry(cfg->compute_allowed_paths.items[i], &rw);
		/* the literal directory before the first wildcard */
		size_t lit = strcspn(glob, "*?[{");
		cleanup_free char *root = xstrndup(glob, lit);
		if (glob[lit]) {
			char *slash = strrchr(root, '/');
			if (slash)
				slash[slash == root ? 1 : 0] = '\0';
		}
		int64_t bytes = cod_path_bytes(root);
		json_array_append_new(paths, json_pack("{s:s, s:b, s:s, s:I}", "Pattern", glob, "ReadWrite", rw, "Root",
						       root, "Bytes", (json_int_t)(bytes > 0 ? bytes : 0)));
	}
	return json_pack("{s:o, s:o}", "LocalPaths", paths, "Cached", cod_cache_inventory(cfg, INVENTORY_MAX));
}

uint64_t cod_storage_inventory_bytes(const json_t *inventory, const struct cod_input_source *in)
{
	if (!json_is_object(inventory))
		return 0;
	const struct cod_storage_ops *ops = cod_storage_find(in->source.type);
	if (!ops)
		return 0;
	size_t i;
	json_t *e;
	if (ops == &cod_storage_local) {
		const char *path = pstr(in->source.params, "SourcePath");
		bool want_rw = cod_storage_param_bool(in, "ReadWrite");
		uint64_t best = 0;
		json_array_foreach(json_object_get(inventory, "LocalPaths"), i, e)
		{
			const char *pattern = json_string_value(json_object_get(e, "Pattern"));
			if (!path || !pattern || !cod_glob_match(pattern, path))
				continue;
			if (want_rw && !json_is_true(json_object_get(e, "ReadWrite")))
				continue;
			/* the size of the allowed root stands for the path: the
			 * node has it, whatever its exact size */
			json_int_t b = json_integer_value(json_object_get(e, "Bytes"));
			uint64_t n = b > 0 ? (uint64_t)b : 1;
			if (n > best)
				best = n;
		}
		return best;
	}
	bool prefix = false;
	cleanup_free char *loc = NULL;
	if (!strcmp(ops->name, "s3"))
		loc = s3_locator(in, &prefix);
	else
		loc = cod_storage_locator(in);
	if (!loc)
		return 0;
	size_t ll = strlen(loc);
	uint64_t total = 0;
	json_array_foreach(json_object_get(inventory, "Cached"), i, e)
	{
		const char *key = json_string_value(json_object_get(e, "Key"));
		json_int_t size = json_integer_value(json_object_get(e, "Size"));
		if (!key || size <= 0 || strncmp(key, loc, ll))
			continue;
		/* the same object (key + "#validator"), or under a prefix */
		if (key[ll] == '\0' || key[ll] == '#' || prefix)
			total += (uint64_t)size;
	}
	return total;
}
