/*
 * storage.h - the input source driver family: what gets a task's
 * InputSources onto the compute node before it runs.
 *
 * A driver is one `const struct cod_storage_ops` table in its own file
 * (src/storage/<name>.c), listed in the registry of storage.c and found by
 * Source.Type, case-insensitively, or by one of its aliases
 * (cod_storage_find("localDirectory") is the local driver). A node
 * advertises (StorageSources) the drivers whose is_installed() says yes;
 * its bidder rejects jobs that need any other.
 *
 * The compute node's runner calls prepare() for every input in the
 * Preparing phase, on the execution's thread, retrying up to
 * InputSources.MaxRetryCount times; the mount it fills is bound into the
 * task at the input's Target. cleanup() runs after the execution ended,
 * whatever happened.
 */
#ifndef COD_STORAGE_H
#define COD_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"
#include "config/config.h"
#include "executor/executor.h"
#include "model/model.h"

struct cod_storage_ctx {
	const struct cod_config *cfg;           /* the node's config */
	const struct cod_execution *execution;  /* with Job */
	const struct cod_input_source *input;   /* Job.Tasks[0].InputSources[index] */
	size_t index;
	const char *exec_dir;                   /* DataDir/compute/executions/<id> */
	const char *work_dir;                   /* exec_dir/inputs/<index>: empty, the driver's to fill */
	struct cod_executor_run *run;           /* for cancellation (cod_executor_cancelled) and progress */
	/* Out: what preparing this input moved, filled by the driver (zeroed
	 * by the runner before each attempt); may be NULL in tests. */
	struct cod_storage_stats *stats;
};

/* Bytes of one input that were already on the node (an allow-listed
 * path, the input cache, the spec itself) and bytes that came over the
 * network, for the execution's data-locality report. */
struct cod_storage_stats {
	uint64_t bytes_local;
	uint64_t bytes_fetched;
	bool cache_hit; /* some of it came from the input cache */
};

struct cod_storage_ops {
	const char *name;             /* Source.Type: "local", "urlDownload", "s3", "ipfs", "inline" */
	const char *const *aliases;   /* NULL-terminated or NULL: other accepted Type names */

	/* Whether this node can fetch such inputs (config present, server
	 * reachable). NULL = always. Cheap; called at start-up and on info
	 * updates. */
	bool (*is_installed)(const struct cod_config *cfg);

	/* Optional bid-time check on the node (allow-lists, params): false
	 * with *reason (heap) rejects the bid. */
	bool (*bid_check)(const struct cod_config *cfg, const struct cod_input_source *in, char **reason);

	/* Optional: bytes of this input on the node when ALL of it is here
	 * (an allow-listed path that exists, a cached copy); 0 when some of it
	 * would have to be fetched; -1 = unknown. Used by
	 * Compute.JobAdmissionControl.Locality=local. Bounded: may ask a
	 * remote server for validators, never downloads. */
	int64_t (*local_bytes)(const struct cod_config *cfg, const struct cod_input_source *in);

	/* Fetch or locate the input; fill *mount (heap strings): source = the
	 * host path, target = in->target, read_only unless granted. Errors
	 * name the cause; the runner prefixes the input's name. */
	int (*prepare)(const struct cod_storage_ctx *ctx, struct cod_mount *mount, struct cod_error **err);

	/* Optional: undo prepare() (the runner removes work_dir itself). */
	void (*cleanup)(const struct cod_storage_ctx *ctx, struct cod_mount *mount);
};

extern const struct cod_storage_ops cod_storage_inline;
extern const struct cod_storage_ops cod_storage_local;
extern const struct cod_storage_ops cod_storage_url;
extern const struct cod_storage_ops cod_storage_s3;
extern const struct cod_storage_ops cod_storage_ipfs;

/* A string parameter of an input (case-insensitive key) or NULL. */
const char *cod_storage_param(const struct cod_input_source *in, const char *key);
/* A boolean parameter: JSON true or the string "true" (any case). */
bool cod_storage_param_bool(const struct cod_input_source *in, const char *key);

/* Fill *mount with the fetched *path (taken over), mounted read-only at
 * the input's Target (default /inputs). Returns 0. */
int cod_storage_mount_ro(const struct cod_storage_ctx *ctx, struct cod_mount *mount, char **path);

/* Whether the input source type is in InputSources.Disabled. */
bool cod_storage_disabled(const struct cod_config *cfg, const char *type);

/*
 * Compute.JobAdmissionControl.Locality: with "local", a node bids only for
 * inputs that are wholly on it (local_bytes() > 0). Drivers call this from
 * their bid_check. true = acceptable.
 */
bool cod_storage_locality_ok(const struct cod_config *cfg, const struct cod_storage_ops *ops,
			     const struct cod_input_source *in, char **reason);

/* ---- allow-listed local paths (local.c) ---- */

/*
 * Match path against a doublestar glob: '*' and '?' stay inside one path
 * segment, '**' spans segments (a trailing "/ **" also matches the
 * directory itself), [...] classes as fnmatch.
 */
bool cod_glob_match(const char *pattern, const char *path);
/* Split an AllowListedLocalPaths entry "glob[:rw|:ro]": the glob (heap)
 * and whether it grants write access. */
char *cod_allowlist_entry(const char *entry, bool *rw);

/* ---- node inventory and locality (storage.c) ---- */

/*
 * The node's data inventory advertised in NodeInfo (ComputeNodeInfo.
 * CodInventory): {"LocalPaths": [{"Pattern", "ReadWrite", "Root",
 * "Bytes"}], "Cached": [{"Key", "Size"}]}. New reference.
 */
json_t *cod_storage_inventory(const struct cod_config *cfg);
/*
 * Bytes of one input that a node's advertised inventory says it holds
 * (0 = none known). Pure: used by the orchestrator's locality ranker.
 */
uint64_t cod_storage_inventory_bytes(const json_t *inventory, const struct cod_input_source *in);
/*
 * The location key of an input in inventories ("ipfs://<cid>",
 * "s3://<endpoint>/<bucket>/<key>", the URL): what a cache entry is filed
 * under before its validator. Heap; NULL for inputs without one.
 */
char *cod_storage_locator(const struct cod_input_source *in);

/* Decode an RFC 2397 data: URI (base64 or percent-encoded) into out. */
int cod_data_uri_decode(const char *uri, struct cod_buf *out, struct cod_error **err);

const struct cod_storage_ops *cod_storage_find(const char *type);
const struct cod_storage_ops *const *cod_storage_all(size_t *n);
/* Names of the installed drivers, each followed by its aliases (the
 * StorageSources a node advertises). */
void cod_storage_installed(const struct cod_config *cfg, struct cod_strlist *out);

#endif
