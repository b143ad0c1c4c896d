/*
 * oci.h - cod's container machinery, without a Docker daemon: image
 * references, a registry (distribution v2) client, a content-addressed
 * image store, layer unpacking, per-execution root filesystems, OCI
 * runtime configs and the runtime (crun, else runc) that runs them.
 *
 * Design (docs/executor-oci.md has the long form):
 *
 *   ref.c       "busybox:1.36" -> registry-1.docker.io / library/busybox / 1.36
 *   registry.c  libcurl; anonymous, Bearer-challenge and Basic auth; manifests
 *               into capped buffers; blobs streamed to disk with sha256
 *               verification and Range resume
 *   store.c     DataDir/compute/images: blobs/sha256/<hex> (verified),
 *               tmp/ (partial downloads, per-blob locks that deduplicate
 *               concurrent pulls across threads and processes),
 *               refs/<sha256(ref)>.json (a tag's image record),
 *               rootfs/<manifest-hex>/ (the image's layers applied in
 *               order); size cap and garbage collection
 *   image.c     resolve a reference to a platform manifest (index
 *               selection, bid-time cache), pull, import of OCI layouts and
 *               `docker save` tarballs
 *   unpack.c    one layer (gzip, zstd or plain tar) onto a directory with
 *               whiteouts and opaque dirs; refuses "../", absolute paths
 *               and writes through symlinked parents
 *   rootfs.c    an execution's root: overlayfs over the image rootfs, or a
 *               copy when overlayfs cannot be mounted
 *   spec.c      the runtime's config.json from image config + job spec
 *   runtime.c   runtime detection, cgroups (v1, v2, hybrid), run, kill,
 *               OOM and disk-limit detection
 *
 * The driver (src/executor/docker.c) ties them to the executor contract.
 *
 * Threads: every function may be called from any thread. Global settings
 * are written once by cod_oci_configure() before the compute node starts
 * its threads; the manifest cache has its own lock; the store serializes
 * writers with flock(2) on files under tmp/, which also keeps two cod
 * processes sharing a data dir apart.
 *
 * Ownership: char * results are heap strings the caller frees; structs
 * filled by a function are released with their _release function.
 */
#ifndef COD_OCI_H
#define COD_OCI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"
#include "config/config.h"
#include "model/model.h"

#define COD_OCI_DEFAULT_REGISTRY "docker.io"
#define COD_OCI_DOCKER_HUB_HOST "registry-1.docker.io"

/* Media types. */
#define COD_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define COD_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define COD_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define COD_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define COD_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define COD_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

/* Manifests, indexes and configs bigger than this are refused. */
#define COD_OCI_MANIFEST_MAX (4u << 20)

/* ------------------------------------------------------------ settings */

enum cod_cgroup_mode { COD_CGROUP_NONE = 0, COD_CGROUP_V1, COD_CGROUP_V2, COD_CGROUP_HYBRID };

struct cod_oci_settings {
	char *data_dir;	    /* DataDir */
	char *images_dir;   /* DataDir/compute/images */
	char *runtime_name; /* "crun" | "runc" | NULL when none usable */
	char *runtime_path;
	char *runtime_problem; /* why no runtime is usable (is_installed false) */
	enum cod_cgroup_mode cgroup_mode;
	/* crun refuses hybrid hosts: run it in a private mount namespace
	 * without the cgroup2 mount at /sys/fs/cgroup/unified. */
	bool crun_hide_unified;
	bool overlay_ok;	       /* overlayfs mounts work (probed at configure) */
	struct cod_kvlist credentials; /* registry host -> "user:password" */
	char *docker_config;	       /* path or NULL */
	struct cod_strlist insecure;   /* plain-HTTP registries */
	uint64_t store_max;	       /* bytes, 0 = none */
	int64_t manifest_ttl_ms;
	int64_t resolve_timeout_ms;
	bool readonly_rootfs;
	char os[16], arch[16], variant[16]; /* this node's platform */
};

/* Take the node's settings (DataDir, Engines.Types.Docker.*), detect the
 * runtime and cgroup mode. Called once at compute-node start and by the
 * image CLI; later calls replace the settings. */
int cod_oci_configure(const struct cod_config *cfg, struct cod_error **err);
/* The settings (configured or defaults); never NULL. Read-only. */
const struct cod_oci_settings *cod_oci_settings(void);
/* Release what configure allocated (tests, exit). */
void cod_oci_reset(void);
/* "linux/amd64" (heap). */
char *cod_oci_node_platform(void);

/* ----------------------------------------------------------- references */

struct cod_oci_ref {
	char *registry;	  /* "docker.io", "ghcr.io", "127.0.0.1:5000" */
	char *repository; /* "library/busybox" */
	char *tag;	  /* "latest" unless a digest alone was given; NULL then */
	char *digest;	  /* "sha256:<64 hex>" or NULL */
};

/* Parse a reference as Docker writes it. A malformed one is
 * COD_E_VALIDATION with the reason. */
int cod_oci_ref_parse(const char *text, struct cod_oci_ref *ref, struct cod_error **err);
void cod_oci_ref_release(struct cod_oci_ref *ref);
/* Canonical "registry/repository[:tag][@digest]". */
char *cod_oci_ref_string(const struct cod_oci_ref *ref);
/* The host to connect to ("registry-1.docker.io" for docker.io). */
const char *cod_oci_ref_host(const struct cod_oci_ref *ref);
/* "sha256:<64 lowercase hex>"? */
bool cod_oci_digest_valid(const char *digest);

/* ------------------------------------------------------------- registry */

struct cod_oci_registry;
/* A client for ref's repository. timeout_ms bounds each request's
 * connect and idle time (0 = defaults). Credentials come from the
 * settings (config, docker config.json, DOCKER_USERNAME/PASSWORD for
 * Docker Hub); user/password override them when not NULL. */
struct cod_oci_registry *cod_oci_registry_new(const struct cod_oci_ref *ref, const char *user,
					      const char *password, int64_t timeout_ms);
void cod_oci_registry_free(struct cod_oci_registry *reg);

/* Called while a transfer runs; return true to abort it. */
typedef bool (*cod_oci_abort_fn)(void *arg);
typedef void (*cod_oci_progress_fn)(void *arg, uint64_t done, uint64_t total);
void cod_oci_registry_set_abort(struct cod_oci_registry *reg, cod_oci_abort_fn fn, void *arg);

/* GET a manifest or index by tag or digest. *body (capped) gets the bytes,
 * *media_type and *digest (computed from the bytes; checked against
 * reference when it is a digest) are heap strings. Not found is
 * COD_E_NOT_FOUND, missing or wrong credentials COD_E_UNAUTHORIZED. */
int cod_oci_registry_manifest(struct cod_oci_registry *reg, const char *reference, struct cod_buf *body,
			      char **media_type, char **digest, struct cod_error **err);
/* Download a blob to path (appending to a partial file there with a
 * Range request, restarting if the server ignores it), verifying its
 * sha256 and size. The file is left in place on failure, for a resume. */
int cod_oci_registry_blob(struct cod_oci_registry *reg, const char *digest, uint64_t size, const char *path,
			  cod_oci_progress_fn progress, void *progress_arg, struct cod_error **err);
/* Fetch a small blob (an image config) into memory, verified. */
int cod_oci_registry_blob_mem(struct cod_oci_registry *reg, const char *digest, struct cod_buf *out,
			      struct cod_error **err);
/* Upload a blob and a manifest (cod image push and tests). */
int cod_oci_registry_push_blob(struct cod_oci_registry *reg, const char *digest, const void *data, size_t len,
			       struct cod_error **err);
int cod_oci_registry_push_manifest(struct cod_oci_registry *reg, const char *reference,
				   const char *media_type, const void *data, size_t len,
				   struct cod_error **err);

/* Look up credentials for a registry host: config map, docker config.json,
 * DOCKER_USERNAME/DOCKER_PASSWORD (Docker Hub only). Returns true and heap
 * strings when found. */
bool cod_oci_credentials(const char *registry, char **user, char **password);

/* ------------------------------------------------------------ manifests */

struct cod_oci_descriptor {
	char *media_type;
	char *digest;
	uint64_t size;
	char *platform; /* "os/arch[/variant]" for index entries, else NULL */
};

/* An image resolved for one platform. */
struct cod_oci_image {
	char *ref;	       /* canonical reference */
	char *index_digest;    /* when the reference named an index, else NULL */
	char *manifest_digest; /* the platform manifest */
	char *platform;	       /* "linux/amd64" */
	struct cod_oci_descriptor config;
	struct cod_oci_descriptor *layers;
	size_t nlayers;
	json_t *config_json; /* the image config blob (with "config": Env, Cmd...) */
	char *rootfs;	     /* images/rootfs/<manifest-hex> once unpacked */
	uint64_t size;	     /* blobs, compressed */
	int hold_fd;	     /* cod_oci_pull(): the rootfs is held (GC skips it); -1 */
};
void cod_oci_image_release(struct cod_oci_image *img);

/* Parse an index/manifest list: descriptors of its manifests. */
int cod_oci_parse_index(const char *data, size_t len, struct cod_oci_descriptor **out, size_t *n,
			struct cod_error **err);
/* Parse an image manifest into img->config and img->layers. */
int cod_oci_parse_manifest(const char *data, size_t len, struct cod_oci_image *img, struct cod_error **err);
void cod_oci_descriptors_free(struct cod_oci_descriptor *d, size_t n);
/* Pick the entry of an index for platform ("linux/amd64", "linux/arm/v7").
 * Returns its index or -1. */
int cod_oci_select_platform(const struct cod_oci_descriptor *d, size_t n, const char *platform);
/* "image \"x\" has no linux/arm64 variant; available: linux/amd64, ..." */
char *cod_oci_platform_mismatch(const char *image, const char *platform, const struct cod_oci_descriptor *d,
				size_t n);
bool cod_oci_is_index(const char *media_type, const char *data, size_t len);

/* Resolve at bid time: whether the image exists for this node's platform.
 * Uses the local store first, then the registry (bounded by the resolve
 * timeout), and caches the answer for the manifest TTL. 0 = runnable;
 * -1 with *err: COD_E_VALIDATION for a platform mismatch or a bad
 * reference, COD_E_NOT_FOUND, COD_E_UNAUTHORIZED, COD_E_NETWORK. */
int cod_oci_resolve(const char *image, struct cod_error **err);
void cod_oci_resolve_cache_clear(void);
/* Measure the image store against ImageStore.MaxSize at the next pull
 * even if it does not grow the store (cod_oci_configure: after a start,
 * the cap may have been lowered). */
void cod_oci_store_measure_next(void);

/* Pull (or find locally) image for this node's platform and unpack it:
 * img gets the manifest, config and rootfs. abort/progress as above;
 * progress_msg reports phases ("pulling image x: 12.0/45.0 MB"). */
typedef void (*cod_oci_message_fn)(void *arg, const char *message);
int cod_oci_pull(const char *image, cod_oci_abort_fn abort_fn, void *abort_arg, cod_oci_message_fn message,
		 void *message_arg, struct cod_oci_image *img, struct cod_error **err);

/* The same, but always asking the registry (`cod image pull`). */
int cod_oci_pull_refresh(const char *image, struct cod_oci_image *img, struct cod_error **err);

/* Import an OCI layout (directory or tar) or a `docker save` tarball into
 * the store. names gets the references imported. */
int cod_oci_import(const char *path, struct cod_strlist *names, struct cod_error **err);

/* ---------------------------------------------------------------- store */

struct cod_oci_store_entry {
	char *ref;
	char *manifest_digest;
	char *index_digest;
	char *platform;
	uint64_t size;	   /* blobs + unpacked rootfs, bytes */
	int64_t pulled_ns; /* when it was pulled or imported */
	int64_t used_ns;   /* when an execution last used it */
};

/* Paths inside the store (heap). */
char *cod_oci_blob_path(const char *digest);
bool cod_oci_blob_exists(const char *digest);
/* Ensure the store's directories exist. */
int cod_oci_store_init(struct cod_error **err);
/* Make a blob available: present, verified, or fetched by fetch(). The
 * per-blob lock makes concurrent callers wait for one download. */
typedef int (*cod_oci_fetch_fn)(void *arg, const char *partial_path, struct cod_error **err);
int cod_oci_store_blob(const char *digest, cod_oci_fetch_fn fetch, void *arg, cod_oci_abort_fn abort_fn,
		       void *abort_arg, struct cod_error **err);
/* Add bytes as a blob (verified against digest when given, else
 * computed into *digest_out). */
int cod_oci_store_put(const void *data, size_t len, const char *digest, char **digest_out,
		      struct cod_error **err);
/* Read a small blob (capped at COD_OCI_MANIFEST_MAX). */
int cod_oci_store_read(const char *digest, struct cod_buf *out, struct cod_error **err);
/* Write / read / remove the record of a reference. */
int cod_oci_store_put_ref(const struct cod_oci_store_entry *e, struct cod_error **err);
int cod_oci_store_get_ref(const char *ref, struct cod_oci_store_entry *e, struct cod_error **err);
int cod_oci_store_list(struct cod_oci_store_entry **out, size_t *n, struct cod_error **err);
void cod_oci_store_entry_release(struct cod_oci_store_entry *e);
void cod_oci_store_list_free(struct cod_oci_store_entry *l, size_t n);
/* Remove a reference (and, with gc, what nothing else uses). */
int cod_oci_store_remove(const char *ref, struct cod_error **err);
/* Remove blobs and rootfs dirs no reference uses (skipping those in use
 * by a running execution); with max_bytes > 0 also remove least recently
 * used images until the store fits. *freed gets the bytes removed.
 * keep_ref (after a pull: the image just pulled) is never evicted, and
 * then GC does not wait for pulls in progress (it does nothing instead). */
int cod_oci_store_gc(uint64_t max_bytes, const char *keep_ref, uint64_t *freed, struct cod_error **err);
/* Total bytes of the store. */
uint64_t cod_oci_store_size(void);
/* Mark a rootfs in use by an execution (shared lock held while the fd is
 * open) and its image as used now. Returns the fd (close it to release)
 * or -1. */
int cod_oci_store_hold(const char *manifest_digest);
/* Unpack img's layers into its rootfs dir unless done; sets img->rootfs.
 * before (may be NULL) runs just before layers are unpacked. Returns 1
 * when this call unpacked them, 0 when they were already, -1 on error. */
int cod_oci_store_unpack(struct cod_oci_image *img, cod_oci_abort_fn abort_fn, void *abort_arg,
			 void (*before)(void *arg), void *before_arg, struct cod_error **err);
/* Pulls hold the store lock shared while they fetch (GC takes it
 * exclusively). Returns the fd to close, or -1 (cancelled, I/O). */
int cod_oci_store_lock_shared(cod_oci_abort_fn abort_fn, void *abort_arg);
/* Bytes used under a directory (st_blocks), not following symlinks or
 * other file systems. */
uint64_t cod_oci_du(const char *path);
/* rm -rf without following symlinks or crossing mounts. */
int cod_oci_rmtree(const char *path);

/* --------------------------------------------------------------- unpack */

/* Apply one layer (a tar, optionally gzip/zstd/bzip2/xz compressed) to
 * the directory root. Whiteouts remove what lower layers put there. An
 * entry leaving root ("../x", "/etc/x", or a path through a symlink) is
 * refused: COD_E_VALIDATION naming the entry. */
int cod_oci_unpack_layer(const char *layer_path, const char *root, cod_oci_abort_fn abort_fn, void *abort_arg,
			 struct cod_error **err);

/* --------------------------------------------------------------- rootfs */

struct cod_oci_rootfs {
	char *dir;	     /* <exec>/rootfs */
	char *merged;	     /* the container's root */
	char *upper;	     /* writable layer (overlay) or NULL */
	bool mounted;	     /* overlay mounted */
	bool copied;	     /* copy fallback */
	uint64_t base_bytes; /* size of the copy at start (copy fallback) */
};
int cod_oci_rootfs_create(const char *image_rootfs, const char *exec_dir, struct cod_oci_rootfs *r,
			  struct cod_error **err);
/* Bytes written by the container to its root filesystem. */
uint64_t cod_oci_rootfs_usage(const struct cod_oci_rootfs *r);
void cod_oci_rootfs_destroy(struct cod_oci_rootfs *r);

/* ----------------------------------------------------------------- spec */

struct cod_oci_mount {
	const char *source;
	const char *target;
	bool read_only;
};

/* What the job asks of the container, resolved from the engine Params. */
struct cod_oci_run_spec {
	const char *container_id;
	const char *rootfs; /* absolute */
	bool readonly_rootfs;
	const json_t *image_config;	      /* the image config blob */
	const struct cod_strlist *entrypoint; /* NULL = not given */
	const struct cod_strlist *parameters; /* NULL = not given */
	const struct cod_kvlist *task_env;    /* task Env + BACALHAU_* */
	const struct cod_strlist *engine_env; /* "K=V" */
	const char *workdir;		      /* NULL = image's */
	const struct cod_oci_mount *mounts;
	size_t nmounts;
	enum cod_network_type network;
	double cpu;	 /* cores, 0 = none */
	uint64_t memory; /* bytes, 0 = none (also enforced by runtime.c) */
	int64_t pids;	 /* 0 = none */
	const char *cgroups_path;
	const char *hostname;
	const char *etc_hosts;		   /* a file bound at /etc/hosts, or NULL */
	const char *resolv_conf;	   /* a file bound at /etc/resolv.conf, or NULL */
	const struct cod_strlist *devices; /* host device paths to pass (GPUs) */
};

/* The argv Docker would run: entrypoint + cmd with Docker's override
 * rules. Empty -> COD_E_VALIDATION "no command". */
int cod_oci_command(const json_t *image_config, const struct cod_strlist *entrypoint,
		    const struct cod_strlist *parameters, struct cod_strlist *argv, struct cod_error **err);
/* The container environment: image Env < task Env < engine
 * EnvironmentVariables < BACALHAU_* (later wins), PATH and HOME
 * defaulted. */
void cod_oci_environment(const json_t *image_config, const struct cod_kvlist *task_env,
			 const struct cod_strlist *engine_env, struct cod_kvlist *out);
/* Resolve the image's User ("", "uid", "uid:gid", "name", "name:group")
 * against rootfs's /etc/passwd and /etc/group. */
int cod_oci_user(const char *user, const char *rootfs, uint32_t *uid, uint32_t *gid, struct cod_error **err);
/* Build config.json. */
json_t *cod_oci_runtime_config(const struct cod_oci_run_spec *s, struct cod_error **err);

/* -------------------------------------------------------------- runtime */

struct cod_oci_container;
typedef void (*cod_oci_output_fn)(void *arg, int stream /* 1 or 2 */, const char *data, size_t len);

struct cod_oci_limits {
	uint64_t memory;	 /* bytes, 0 = none */
	uint64_t disk;		 /* bytes for the writable layer + outputs, 0 = none */
	const char *results_dir; /* counted against disk */
	const struct cod_oci_rootfs *rootfs;
};

enum cod_oci_outcome {
	COD_OCI_EXITED = 0,   /* exit_code valid */
	COD_OCI_KILLED,	      /* cancelled (kill requested) */
	COD_OCI_OOM,	      /* out of memory */
	COD_OCI_DISK,	      /* disk limit exceeded */
	COD_OCI_START_FAILED, /* the runtime could not start it: message */
};

struct cod_oci_result {
	enum cod_oci_outcome outcome;
	int64_t exit_code;
	char *message; /* heap; the runtime's error for START_FAILED */
	uint64_t disk_used;
};

/* The cgroup path to put in config.json for container id ("/cod/<id>/ctr")
 * after preparing its parent (limits that must survive the container,
 * for OOM detection). */
char *cod_oci_cgroup_prepare(const char *id, const struct cod_oci_limits *limits);
/* Start bundle_dir/config.json as container id and supervise it until it
 * ends: output goes to out(), cod_oci_container_kill() (any thread) ends it.
 * Blocks. */
struct cod_oci_container *cod_oci_container_new(const char *id, const char *bundle_dir);
void cod_oci_container_free(struct cod_oci_container *c);
void cod_oci_container_kill(struct cod_oci_container *c);
int cod_oci_container_run(struct cod_oci_container *c, const struct cod_oci_limits *limits,
			  cod_oci_output_fn out, void *out_arg, struct cod_oci_result *res,
			  struct cod_error **err);
/* Remove the container's runtime state and cgroups (idempotent). */
void cod_oci_container_cleanup(const char *id);
/* The runtime's --root for this data dir (heap). */
char *cod_oci_state_root(void);
/* The node closes: remove its runtime state directory (in /run, one per
 * data dir) unless a container is still in it. */
void cod_oci_state_release(void);
/* Remove containers an earlier run of this node left (a crash): kill,
 * delete, unmount. Returns how many. Compute node start only. */
int cod_oci_sweep(void);
/* Run the runtime with args (e.g. "--version"); output into out. */
int cod_oci_runtime_exec(const char *const *args, struct cod_buf *out, int64_t timeout_ms);

#endif
