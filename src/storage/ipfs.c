/*
 * ipfs.c - the IPFS client (see ipfs.h).
 */
#include "storage/ipfs.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/util.h"
#include "storage/cache.h"
#include "storage/http.h"
#include "storage/storage.h"
#include "common/banned.h"

#define MAX_BLOCK (4u << 20)	   /* IPFS blocks are at most 2 MiB; room to spare */
#define MAX_ENTRIES 1000000	   /* files and directories one fetch may create */
#define MAX_DEPTH 256
#define DEFAULT_TIMEOUT_MS 60000

char *cod_ipfs_api_url(const char *endpoint, struct cod_error **err)
{
	if (cod_str_empty(endpoint)) {
		cod_error_set(err, COD_E_CONFIG, "no IPFS node is configured");
		cod_error_hint(err ? *err : NULL, "set InputSources.Types.IPFS.Endpoint (or Publishers.Types.IPFS.Endpoint) to the "
				     "node's RPC API, e.g. /ip4/127.0.0.1/tcp/5001");
		return NULL;
	}
	if (strstr(endpoint, "://")) {
		if (strncasecmp(endpoint, "http://", 7) && strncasecmp(endpoint, "https://", 8)) {
			cod_error_set(err, COD_E_CONFIG, "IPFS endpoint \"%s\" is not an http:// or https:// URL",
				      endpoint);
			return NULL;
		}
		char *url = xstrdup(endpoint);
		size_t n = strlen(url);
		while (n && url[n - 1] == '/')
			url[--n] = '\0';
		return url;
	}
	/* /<ip4|ip6|dns|dns4|dns6>/<host>/tcp/<port>[/http|/https] */
	cleanup_free char *copy = xstrdup(endpoint);
	char *part[6] = {0};
	size_t n = 0;
	char *save = NULL;
	for (char *t = strtok_r(copy, "/", &save); t && n < COD_ARRAY_SIZE(part); t = strtok_r(NULL, "/", &save))
		part[n++] = t;
	bool ok = endpoint[0] == '/' && (n == 4 || n == 5) && strtok_r(NULL, "/", &save) == NULL &&
		  !strcmp(part[2], "tcp") && strspn(part[3], "0123456789") == strlen(part[3]) && atoi(part[3]) > 0 &&
		  atoi(part[3]) < 65536 &&
		  (!strcmp(part[0], "ip4") || !strcmp(part[0], "ip6") || !strncmp(part[0], "dns", 3)) &&
		  (n == 4 || !strcmp(part[4], "http") || !strcmp(part[4], "https"));
	if (!ok) {
		cod_error_set(err, COD_E_CONFIG, "IPFS endpoint \"%s\" is neither a multiaddr nor a URL", endpoint);
		cod_error_hint(err ? *err : NULL, "write it as /ip4/127.0.0.1/tcp/5001 or http://127.0.0.1:5001");
		return NULL;
	}
	const char *scheme = n == 5 ? part[4] : "http";
	if (!strcmp(part[0], "ip6"))
		return xasprintf("%s://[%s]:%s", scheme, part[1], part[3]);
	return xasprintf("%s://%s:%s", scheme, part[1], part[3]);
}

/* POST base/api/v0/<call>; the body lands in out (capped at max). A
 * non-200 answer is an error quoting the node's Message. */
static int rpc(const char *base, const char *call, const char *form_file, struct cod_buf *out, size_t max,
	       int64_t timeout_ms, bool (*cancelled)(void *), void *cancel_arg, struct cod_error **err)
{
	cleanup_free char *url = xasprintf("%s/api/v0/%s", base, call);
	cod_buf_reset(out);
	out->max = max;
	struct cod_http_request req;
	cod_http_request_init(&req, url);
	req.method = "POST";
	req.form_file = form_file;
	req.out_buf = out;
	req.max_bytes = max;
	req.timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
	req.cancelled = cancelled;
	req.cancel_arg = cancel_arg;
	struct cod_http_response resp;
	int rc = cod_http_do(&req, &resp, err);
	long status = resp.status;
	cod_http_response_release(&resp);
	if (rc < 0) {
		if (*err && (*err)->code == COD_E_NETWORK)
			cod_error_hint(err ? *err : NULL, "check that the IPFS node is running and its RPC API is at %s", base);
		return -1;
	}
	if (status == 200)
		return 0;
	json_t *j = json_loadb(out->buf ? out->buf : "", out->len, 0, NULL);
	json_t *m = json_object_get(j, "Message");
	cod_error_set(err, status == 404 || status == 405 ? COD_E_CONFIG : COD_E_NETWORK,
		      "IPFS node %s: %s: HTTP %ld%s%s", base, call, status, json_is_string(m) ? ": " : "",
		      json_is_string(m) ? json_string_value(m) : "");
	json_decref(j);
	if (status == 404 || status == 405)
		cod_error_hint(err ? *err : NULL, "is %s an IPFS node's RPC API (usually port 5001), not its gateway?", base);
	return -1;
}

/* ---------------------------------------------------------------- get */

struct walk {
	const struct cod_ipfs_get_opts *o;
	char *base;
	uint64_t written;
	uint64_t entries;
};

static int fetch_block(struct walk *w, const struct cod_cid *cid, struct cod_buf *out, struct cod_error **err)
{
	if (cid->mh_code == COD_MH_IDENTITY) {
		cod_buf_reset(out);
		cod_buf_add(out, cid->digest, cid->digest_len);
		return 0;
	}
	cleanup_free char *s = cod_cid_string(cid);
	cleanup_free char *call = xasprintf("block/get?arg=%s", s);
	if (rpc(w->base, call, NULL, out, MAX_BLOCK, w->o->timeout_ms, w->o->cancelled, w->o->cancel_arg, err) < 0)
		return -1;
	if (!cod_cid_verify(cid, out->buf ? out->buf : "", out->len)) {
		cod_error_set(err, COD_E_VALIDATION,
			      "block %s from the IPFS node at %s does not match its CID: the node served tampered or "
			      "corrupt data",
			      s, w->base);
		cod_error_hint(err ? *err : NULL, "cod refuses it; check the node's repository (ipfs repo verify)");
		return -1;
	}
	return 0;
}

static int write_all(int fd, const void *data, size_t len, struct cod_error **err)
{
	return cod_write_all(fd, data, len) < 0 ? cod_error_set(err, COD_E_IO, "write: %s", strerror(errno)) : 0;
}

static int put_bytes(struct walk *w, int fd, const uint8_t *data, size_t len, struct cod_error **err)
{
	if (w->o->max_bytes && w->written + len > w->o->max_bytes) {
		cod_error_set(err, COD_E_TOO_LARGE, "the IPFS content is larger than the limit of %llu bytes",
			      (unsigned long long)w->o->max_bytes);
		cod_error_hint(err ? *err : NULL, "downloads are capped at the task's Disk; ask for more with Resources.Disk");
		return -1;
	}
	if (write_all(fd, data, len, err) < 0)
		return -1;
	w->written += len;
	if (w->o->progress)
		w->o->progress(w->o->progress_arg, w->written);
	return 0;
}

/* Write the file under a fetched block (raw data or a UnixFS file node). */
static int file_block(struct walk *w, const struct cod_cid *cid, const struct cod_buf *block, int fd,
		      unsigned depth, struct cod_error **err)
{
	const uint8_t *b = (const uint8_t *)(block->buf ? block->buf : "");
	if (cid->codec == COD_CODEC_RAW)
		return put_bytes(w, fd, b, block->len, err);
	if (depth > MAX_DEPTH)
		return cod_error_set(err, COD_E_VALIDATION, "IPFS file DAG is nested too deep");
	struct cod_pb_node node;
	if (cod_pb_decode(b, block->len, &node, err) < 0)
		return -1;
	struct cod_unixfs u;
	int rc = node.data ? cod_unixfs_decode(node.data, node.data_len, &u, err)
			   : cod_error_set(err, COD_E_VALIDATION, "dag-pb block without UnixFS data");
	if (rc == 0 && u.type != COD_UNIXFS_FILE && u.type != COD_UNIXFS_RAW) {
		cod_unixfs_release(&u);
		rc = cod_error_set(err, COD_E_VALIDATION, "a file's DAG holds a UnixFS node of type %d", u.type);
	}
	if (rc < 0) {
		cod_pb_node_release(&node);
		return -1;
	}
	uint64_t start = w->written;
	if (u.data_len)
		rc = put_bytes(w, fd, u.data, u.data_len, err);
	cleanup_buf struct cod_buf child = COD_BUF_INIT;
	for (size_t i = 0; rc == 0 && i < node.n_links; i++) {
		if (w->o->cancelled && w->o->cancelled(w->o->cancel_arg)) {
			rc = cod_error_set(err, COD_E_UNAVAILABLE, "cancelled");
			break;
		}
		rc = fetch_block(w, &node.links[i].cid, &child, err);
		if (rc == 0)
			rc = file_block(w, &node.links[i].cid, &child, fd, depth + 1, err);
	}
	if (rc == 0 && u.has_filesize && node.n_links && w->written - start != u.filesize)
		rc = cod_error_set(err, COD_E_VALIDATION, "IPFS file node says %llu bytes but holds %llu",
				   (unsigned long long)u.filesize, (unsigned long long)(w->written - start));
	cod_unixfs_release(&u);
	cod_pb_node_release(&node);
	return rc;
}

static bool valid_name(const char *name)
{
	return *name && strcmp(name, ".") && strcmp(name, "..") && !strchr(name, '/');
}

static int entry_block(struct walk *w, const struct cod_cid *cid, const struct cod_buf *block, const char *path,
		       bool exists, unsigned depth, struct cod_error **err);

static int entry(struct walk *w, const struct cod_cid *cid, const char *path, unsigned depth, struct cod_error **err)
{
	cleanup_buf struct cod_buf block = COD_BUF_INIT;
	if (fetch_block(w, cid, &block, err) < 0)
		return -1;
	return entry_block(w, cid, &block, path, false, depth, err);
}

/* The links of a directory node (or of a HAMT shard, whose link names
 * carry a hex prefix of pad characters: a name of just the prefix is a
 * sub-shard of the same directory). */
static int dir_links(struct walk *w, const struct cod_pb_node *node, size_t pad, const char *path, unsigned depth,
		     struct cod_error **err)
{
	for (size_t i = 0; i < node->n_links; i++) {
		const struct cod_pb_link *l = &node->links[i];
		const char *name = l->name;
		if (pad) {
			if (strlen(name) < pad)
				return cod_error_set(err, COD_E_VALIDATION, "HAMT shard link \"%s\" is too short", name);
			if (strlen(name) == pad) {
				cleanup_buf struct cod_buf shard = COD_BUF_INIT;
				if (fetch_block(w, &l->cid, &shard, err) < 0)
					return -1;
				if (entry_block(w, &l->cid, &shard, path, true, depth + 1, err) < 0)
					return -1;
				continue;
			}
			name += pad;
		}
		if (!valid_name(name)) {
			cod_error_set(err, COD_E_VALIDATION, "IPFS directory \"%s\" has an entry named \"%s\"", path,
				      name);
			cod_error_hint(err ? *err : NULL, "cod writes only plain names: not empty, \".\", \"..\" or with '/'");
			return -1;
		}
		cleanup_free char *sub = xasprintf("%s/%s", path, name);
		if (entry(w, &l->cid, sub, depth + 1, err) < 0)
			return -1;
	}
	return 0;
}

static int entry_block(struct walk *w, const struct cod_cid *cid, const struct cod_buf *block, const char *path,
		       bool exists, unsigned depth, struct cod_error **err)
{
	if (depth > MAX_DEPTH)
		return cod_error_set(err, COD_E_VALIDATION, "IPFS directories nested too deep");
	if (++w->entries > MAX_ENTRIES)
		return cod_error_set(err, COD_E_TOO_LARGE, "IPFS content has more than %d entries", MAX_ENTRIES);
	struct cod_unixfs u = {.type = COD_UNIXFS_FILE};
	struct cod_pb_node node = {0};
	if (cid->codec == COD_CODEC_DAG_PB) {
		if (cod_pb_decode((const uint8_t *)(block->buf ? block->buf : ""), block->len, &node, err) < 0)
			return -1;
		bool has_data = node.data != NULL;
		if (!has_data || cod_unixfs_decode(node.data, node.data_len, &u, err) < 0) {
			cod_pb_node_release(&node);
			return has_data ? -1 : cod_error_set(err, COD_E_VALIDATION, "dag-pb block without UnixFS data");
		}
	}
	int rc = 0;
	if (u.type == COD_UNIXFS_FILE || u.type == COD_UNIXFS_RAW) {
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0) {
			rc = cod_error_set(err, COD_E_IO, "create \"%s\": %s", path, strerror(errno));
		} else {
			rc = file_block(w, cid, block, fd, 0, err);
			if (close(fd) < 0 && rc == 0)
				rc = cod_error_set(err, COD_E_IO, "write \"%s\": %s", path, strerror(errno));
		}
	} else if (u.type == COD_UNIXFS_DIRECTORY || u.type == COD_UNIXFS_HAMT) {
		size_t pad = 0;
		if (u.type == COD_UNIXFS_HAMT) {
			if (u.fanout < 2 || u.fanout > 4096 || (u.fanout & (u.fanout - 1)))
				rc = cod_error_set(err, COD_E_VALIDATION, "HAMT shard with fanout %llu",
						   (unsigned long long)u.fanout);
			for (uint64_t f = u.fanout - 1; f; f >>= 4)
				pad++;
		}
		if (rc == 0 && !exists && mkdir(path, 0755) < 0)
			rc = cod_error_set(err, COD_E_IO, "create \"%s\": %s", path, strerror(errno));
		if (rc == 0)
			rc = dir_links(w, &node, pad, path, depth, err);
	} else if (u.type == COD_UNIXFS_SYMLINK) {
		cleanup_free char *target = xstrndup((const char *)(u.data ? u.data : (const uint8_t *)""), u.data_len);
		if (!*target || strlen(target) != u.data_len)
			rc = cod_error_set(err, COD_E_VALIDATION, "IPFS symlink \"%s\" has no usable target", path);
		else if (symlink(target, path) < 0)
			rc = cod_error_set(err, COD_E_IO, "create symlink \"%s\": %s", path, strerror(errno));
	} else {
		rc = cod_error_set(err, COD_E_VALIDATION, "UnixFS node type %d at \"%s\" is not a file, directory or "
							  "symlink", u.type, path);
	}
	cod_unixfs_release(&u);
	cod_pb_node_release(&node);
	return rc;
}

/* Whether a fetched root is a directory (dag-pb UnixFS Directory/HAMT). */
static bool is_dir_block(const struct cod_cid *cid, const struct cod_buf *block)
{
	if (cid->codec != COD_CODEC_DAG_PB)
		return false;
	struct cod_pb_node node;
	if (cod_pb_decode((const uint8_t *)(block->buf ? block->buf : ""), block->len, &node, NULL) < 0)
		return false;
	struct cod_unixfs u;
	bool dir = node.data && cod_unixfs_decode(node.data, node.data_len, &u, NULL) == 0 &&
		   (u.type == COD_UNIXFS_DIRECTORY || u.type == COD_UNIXFS_HAMT);
	if (node.data && dir)
		cod_unixfs_release(&u);
	cod_pb_node_release(&node);
	return dir;
}

int cod_ipfs_get(const struct cod_ipfs_get_opts *o, const char *cid_text, const char *dest, uint64_t *bytes,
		 struct cod_error **err)
{
	if (bytes)
		*bytes = 0;
	struct cod_cid cid;
	if (cod_cid_parse(cid_text, &cid, err) < 0)
		return -1;
	struct walk w = {.o = o};
	w.base = cod_ipfs_api_url(o->endpoint, err);
	if (!w.base)
		return -1;
	cleanup_buf struct cod_buf root = COD_BUF_INIT;
	int rc = fetch_block(&w, &cid, &root, err);
	cleanup_free char *path = NULL;
	bool exists = false;
	if (rc == 0 && o->into_dir) {
		exists = is_dir_block(&cid, &root);
		path = exists ? xstrdup(dest) : xasprintf("%s/%s", dest, cid_text);
	} else {
		path = xstrdup(dest);
	}
	if (rc == 0)
		rc = entry_block(&w, &cid, &root, path, exists, 0, err);
	if (rc < 0 && path && !exists)
		cod_remove_tree(path);
	if (rc < 0)
		cod_error_wrap(err, "ipfs %s", cid_text);
	if (bytes)
		*bytes = w.written;
	free(w.base);
	return rc;
}

/* ---------------------------------------------------------------- add */

/* A CARv1 header: varint length, then the dag-cbor map
 * {"roots": [CID], "version": 1}. Its length depends only on the CID's. */
static void car_header(const struct cod_cid *root, struct cod_buf *out)
{
	cleanup_buf struct cod_buf cid = COD_BUF_INIT;
	cod_buf_addch(&cid, 0); /* the identity multibase prefix of CIDs in CBOR */
	cod_cid_encode(root, &cid);
	cleanup_buf struct cod_buf cbor = COD_BUF_INIT;
	static const uint8_t head[] = {0xa2, 0x65, 'r', 'o', 'o', 't', 's', 0x81, 0xd8, 0x2a, 0x58};
	cod_buf_add(&cbor, head, sizeof(head));
	cod_buf_addch(&cbor, (char)cid.len); /* < 256 for sha2-256 CIDs */
	cod_buf_add(&cbor, cid.buf, cid.len);
	static const uint8_t tail[] = {0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x01};
	cod_buf_add(&cbor, tail, sizeof(tail));
	uint8_t v[10];
	cod_buf_add(out, v, cod_varint_put(v, cbor.len));
	cod_buf_add(out, cbor.buf, cbor.len);
}

static int car_section(void *arg, const struct cod_cid *cid, const uint8_t *block, size_t len,
		       struct cod_error **err)
{
	int fd = *(int *)arg;
	cleanup_buf struct cod_buf head = COD_BUF_INIT;
	cleanup_buf struct cod_buf c = COD_BUF_INIT;
	cod_cid_encode(cid, &c);
	uint8_t v[10];
	cod_buf_add(&head, v, cod_varint_put(v, c.len + len));
	cod_buf_add(&head, c.buf, c.len);
	if (write_all(fd, head.buf, head.len, err) < 0)
		return -1;
	return write_all(fd, block, len, err);
}

static int import_car(const char *base, const char *car, const struct cod_cid *root, int64_t timeout_ms,
		      struct cod_error **err)
{
	cleanup_buf struct cod_buf out = COD_BUF_INIT;
	if (rpc(base, "dag/import?pin-roots=true", car, &out, 1 << 20, timeout_ms, NULL, NULL, err) < 0)
		return -1;
	cleanup_free char *want = cod_cid_string(root);
	/* newline-delimited JSON; the Root line names the imported root */
	const char *p = cod_buf_str(&out);
	while (*p) {
		size_t n = strcspn(p, "\n");
		json_t *j = json_loadb(p, n, 0, NULL);
		json_t *r = json_object_get(j, "Root");
		const char *got = json_string_value(json_object_get(json_object_get(r, "Cid"), "/"));
		const char *pin_err = json_string_value(json_object_get(r, "PinErrorMsg"));
		int rc = 1;
		if (got) {
			struct cod_cid c;
			if (cod_cid_parse(got, &c, NULL) < 0 || !cod_cid_equal(&c, root))
				rc = cod_error_set(err, COD_E_VALIDATION,
						   "the IPFS node at %s imported root %s, but cod computed %s", base, got,
						   want);
			else if (!cod_str_empty(pin_err))
				rc = cod_error_set(err, COD_E_NETWORK, "the IPFS node at %s did not pin %s: %s", base,
						   want, pin_err);
			else
				rc = 0;
		}
		json_decref(j);
		if (rc <= 0)
			return rc;
		p += n;
		if (*p)
			p++;
	}
	return cod_error_set(err, COD_E_NETWORK, "the IPFS node at %s did not confirm the import of %s", base, want);
}

int cod_ipfs_add(const char *endpoint, const char *path, const struct cod_unixfs_opts *uo, const char *tmp_dir,
		 int64_t timeout_ms, struct cod_cid *root, uint64_t *bytes, struct cod_error **err)
{
	cleanup_free char *base = cod_ipfs_api_url(endpoint, err);
	if (!base)
		return -1;
	cleanup_free char *car = xasprintf("%s/.ipfs-add-XXXXXX", tmp_dir);
	int fd = mkstemp(car);
	if (fd < 0)
		return cod_error_set(err, COD_E_IO, "create \"%s\": %s", car, strerror(errno));
	/* room for the header, whose root is known only at the end */
	struct cod_cid placeholder;
	cod_cid_of(uo->cid_version, COD_CODEC_DAG_PB, "", 0, &placeholder);
	cleanup_buf struct cod_buf head = COD_BUF_INIT;
	car_header(&placeholder, &head);
	struct cod_unixfs_opts o = *uo;
	o.sink = car_section;
	o.sink_arg = &fd;
	int rc = write_all(fd, head.buf, head.len, err);
	if (rc == 0)
		rc = cod_unixfs_add(path, &o, root, bytes, err);
	if (rc == 0) {
		cod_buf_reset(&head);
		car_header(root, &head);
		if (pwrite(fd, head.buf, head.len, 0) != (ssize_t)head.len)
			rc = cod_error_set(err, COD_E_IO, "write CAR header: %s", strerror(errno));
	}
	close(fd);
	if (rc == 0)
		rc = import_car(base, car, root, timeout_ms, err);
	unlink(car);
	return rc;
}

/* ------------------------------------------------------- input source */

static const char *endpoint_of(const struct cod_config *cfg)
{
	return cfg ? cfg->input_ipfs_endpoint : NULL;
}

static bool is_installed(const struct cod_config *cfg)
{
	return !cod_str_empty(endpoint_of(cfg));
}

/* The canonical CID of an input (heap), or NULL with *reason. */
static char *input_cid(const struct cod_input_source *in, char **reason)
{
	const char *text = cod_storage_param(in, "CID");
	if (cod_str_empty(text)) {
		*reason = xstrdup("ipfs input has no CID parameter");
		return NULL;
	}
	struct cod_cid cid;
	struct cod_error *err = NULL;
	if (cod_cid_parse(text, &cid, &err) < 0) {
		*reason = xasprintf("ipfs input: %s", err->message);
		cod_error_free(err);
		return NULL;
	}
	return cod_cid_string(&cid);
}

static bool bid_check(const struct cod_config *cfg, const struct cod_input_source *in, char **reason)
{
	cleanup_free char *cid = input_cid(in, reason);
	if (!cid)
		return false;
	return cod_storage_locality_ok(cfg, &cod_storage_ipfs, in, reason);
}

static char *cache_key(const char *cid)
{
	return xasprintf("ipfs://%s", cid);
}

static int64_t local_bytes(const struct cod_config *cfg, const struct cod_input_source *in)
{
	cleanup_free char *reason = NULL;
	cleanup_free char *cid = input_cid(in, &reason);
	if (!cid)
		return 0;
	cleanup_free char *key = cache_key(cid);
	return (int64_t)cod_cache_size(cfg, key);
}

static bool run_cancelled(void *arg)
{
	return arg && cod_executor_cancelled(arg);
}

static int prepare(const struct cod_storage_ctx *ctx, struct cod_mount *mount, struct cod_error **err)
{
	cleanup_free char *reason = NULL;
	cleanup_free char *cid = input_cid(ctx->input, &reason);
	if (!cid)
		return cod_error_set(err, COD_E_VALIDATION, "%s", reason);
	cleanup_free char *key = cache_key(cid);
	cleanup_free char *dest = xasprintf("%s/data", ctx->work_dir);
	cod_remove_tree(dest);
	uint64_t bytes = 0;
	if (cod_cache_fetch(ctx->cfg, key, dest, &bytes, NULL) == 1) {
		if (ctx->stats) {
			ctx->stats->bytes_local = bytes;
			ctx->stats->cache_hit = true;
		}
	} else {
		struct cod_ipfs_get_opts o = {
			.endpoint = endpoint_of(ctx->cfg),
			.timeout_ms = ctx->cfg ? ctx->cfg->input_read_timeout_ms : 0,
			.max_bytes = ctx->execution ? ctx->execution->allocated.disk : 0,
			.cancelled = run_cancelled,
			.cancel_arg = ctx->run,
		};
		int rc = cod_ipfs_get(&o, cid, dest, &bytes, err);
		if (ctx->stats)
			ctx->stats->bytes_fetched = bytes;
		if (rc < 0)
			return -1;
		cod_cache_store(ctx->cfg, key, dest);
	}
	return cod_storage_mount_ro(ctx, mount, &dest);
}

const struct cod_storage_ops cod_storage_ipfs = {
	.name = "ipfs",
	.is_installed = is_installed,
	.bid_check = bid_check,
	.local_bytes = local_bytes,
	.prepare = prepare,
};
