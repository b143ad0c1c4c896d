/*
 * config.h - cod's configuration: one declarative table.
 *
 * Each row of the table (config.c) names a key ("API.Port"), its type, its
 * default, its environment variable, a description, a validator and the
 * offset of its value in struct cod_config. The same table drives the YAML
 * config file, -c Key=Value overrides, environment variables, flags that
 * map to keys, `cod config list` and validation messages.
 *
 * Precedence, highest first: -c Key=Value, flags, environment, config files
 * (-c FILE, in order; else $COD_DIR/config.yaml), defaults.
 * Keys match case-insensitively; an unknown key is an error with a
 * "did you mean" hint.
 */
#ifndef COD_CONFIG_H
#define COD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "model/model.h"

enum cod_cfg_type {
	COD_CFG_STR,
	COD_CFG_INT,
	COD_CFG_BOOL,
	COD_CFG_DURATION, /* stored in milliseconds; written "30s", "1m", "2h" */
	COD_CFG_LIST,     /* struct cod_strlist; written "a,b" or a YAML list */
	COD_CFG_MAP,      /* struct cod_kvlist; written "k=v,k2=v2" or a YAML map */
};

struct cod_config_key {
	const char *key;
	enum cod_cfg_type type;
	const char *def;   /* default, in the textual form */
	const char *env;   /* environment variable */
	const char *desc;
	size_t offset;     /* into struct cod_config */
	int64_t min, max;  /* INT bounds when max > min */
};

struct cod_task_default_cfg {
	int64_t priority;
	char *cpu, *memory, *disk, *gpu;
	char *publisher_type;
	int64_t execution_timeout, queue_timeout, total_timeout; /* seconds */
};

struct cod_config {
	char *data_dir;
	char *node_name;
	struct cod_kvlist labels;
	char *log_level;
	bool batch_scheduling;

	char *api_host;
	int64_t api_port;
	int64_t api_max_body;
	int64_t api_threads;

	bool orch_enabled;
	char *orch_host;
	int64_t orch_port;
	char *orch_advertise;
	char *orch_token;
	char *orch_nats_url;
	int64_t orch_disconnect_timeout_ms;
	bool orch_manual_approval;
	int64_t orch_worker_count;
	int64_t orch_queue_backoff_ms;
	int64_t orch_housekeeping_interval_ms;
	int64_t orch_housekeeping_timeout_ms;
	int64_t orch_retry_attempts;
	int64_t orch_retry_backoff_ms;
	int64_t orch_visibility_timeout_ms;
	int64_t orch_eval_max_retries;

	bool compute_enabled;
	struct cod_strlist compute_orchestrators;
	char *compute_token;
	int64_t compute_heartbeat_ms;
	int64_t compute_info_update_ms;
	char *compute_alloc_cpu, *compute_alloc_memory, *compute_alloc_disk, *compute_alloc_gpu;
	int64_t compute_prepare_timeout_ms;
	int64_t compute_phase_report_ms;
	int64_t compute_input_retries;
	struct cod_strlist compute_allowed_paths;
	struct cod_strlist compute_env_allowlist;
	bool compute_reject_networked;
	bool compute_reject_stateless;
	char *compute_locality; /* Compute.JobAdmissionControl.Locality: local | anywhere */

	/* inputs and results (src/storage, src/publisher) */
	struct cod_strlist input_disabled;
	int64_t input_read_timeout_ms;
	char *input_cache_max_size;
	char *input_ipfs_endpoint;
	struct cod_strlist publisher_disabled;
	char *publisher_local_address;
	char *publisher_local_listen;
	int64_t publisher_local_port;
	char *publisher_ipfs_endpoint;
	bool publisher_s3_presign_disabled;
	char *publisher_s3_part_size;
	int64_t publisher_s3_presign_expiration_ms;

	/* Engines.Types.Docker: the OCI container executor (src/executor/oci) */
	char *docker_runtime;                  /* auto | crun | runc */
	struct cod_kvlist docker_credentials;  /* registry host -> "user:password" */
	char *docker_config_path;              /* Docker config.json ("auths") */
	struct cod_strlist docker_insecure_registries; /* plain-HTTP registries */
	char *docker_store_max;                /* size cap of DataDir/compute/images */
	int64_t docker_manifest_ttl_ms;        /* bid-time manifest cache */
	int64_t docker_resolve_timeout_ms;     /* registry look-ups at bid time */
	bool docker_readonly_rootfs;

	struct cod_task_default_cfg def_batch, def_ops, def_daemon, def_service;
};

/* The table, for `cod config list` and docs. */
const struct cod_config_key *cod_config_keys(size_t *n);
const struct cod_config_key *cod_config_find_key(const char *key);

/* Fill cfg with defaults. */
void cod_config_init(struct cod_config *cfg);
void cod_config_release(struct cod_config *cfg);

/* Set one key from text; source names where it came from for messages
 * ("-c", "COD_API_PORT", "config.yaml"). */
int cod_config_set(struct cod_config *cfg, const char *key, const char *value, const char *source,
		   struct cod_error **err);
/* Apply the environment variables of every key. */
int cod_config_apply_env(struct cod_config *cfg, struct cod_error **err);
/* Merge a YAML config file (nested PascalCase maps). A missing file is not
 * an error when optional. */
int cod_config_load_file(struct cod_config *cfg, const char *path, bool optional, struct cod_error **err);
/* Merge config text (YAML or JSON); source names it in messages. */
int cod_config_load_text(struct cod_config *cfg, const char *text, size_t len, const char *source,
			 struct cod_error **err);
/* Current value of a key as text (heap). */
char *cod_config_get_text(const struct cod_config *cfg, const struct cod_config_key *k);

/* Default data dir: $COD_DIR, else $HOME/.cod. Heap string. */
char *cod_config_default_data_dir(void);

/* Write Key=Value into a YAML config file, keeping its other keys. */
int cod_config_file_set(const char *path, const char *key, const char *value, struct cod_error **err);

/* The job defaults as the model wants them (pointers into cfg). */
void cod_config_job_defaults(const struct cod_config *cfg, struct cod_job_defaults *out);

#endif
