#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "common/banned.h"

#define OFF(field) offsetof(struct cod_config, field)

#define JOB_DEFAULTS_ROWS(Type, field, prio)                                                                  \
	{"JobDefaults." Type ".Priority", COD_CFG_INT, prio, NULL, "default priority of " Type " jobs",        \
	 OFF(field.priority), 0, 1000000},                                                                      \
	{"JobDefaults." Type ".Task.Resources.CPU", COD_CFG_STR, "500m", NULL,                                   \
	 "default CPU of " Type " tasks (k8s form: 500m, 2)", OFF(field.cpu), 0, 0},                            \
	{"JobDefaults." Type ".Task.Resources.Memory", COD_CFG_STR, "512Mb", NULL,                               \
	 "default memory of " Type " tasks (512Mb, 1Gi)", OFF(field.memory), 0, 0},                             \
	{"JobDefaults." Type ".Task.Resources.Disk", COD_CFG_STR, "", NULL, "default disk of " Type " tasks",    \
	 OFF(field.disk), 0, 0},                                                                                \
	{"JobDefaults." Type ".Task.Resources.GPU", COD_CFG_STR, "", NULL, "default GPUs of " Type " tasks",     \
	 OFF(field.gpu), 0, 0},                                                                                 \
	{"JobDefaults." Type ".Task.Publisher.Type", COD_CFG_STR, "", NULL,                                      \
	 "default publisher of " Type " tasks (local, s3, ipfs, noop)", OFF(field.publisher_type), 0, 0},       \
	{"JobDefaults." Type ".Task.Timeouts.ExecutionTimeout", COD_CFG_INT, "0", NULL,                          \
	 "default execution timeout of " Type " tasks in seconds (0 = none)", OFF(field.execution_timeout), 0,  \
	 INT32_MAX},                                                                                            \
	{"JobDefaults." Type ".Task.Timeouts.QueueTimeout", COD_CFG_INT, "0", NULL,                              \
	 "default queue timeout of " Type " tasks in seconds (0 = fail when not placeable)",                    \
	 OFF(field.queue_timeout), 0, INT32_MAX},                                                               \
	{"JobDefaults." Type ".Task.Timeouts.TotalTimeout", COD_CFG_INT, "0", NULL,                              \
	 "default total timeout of " Type " jobs in seconds (0 = none)", OFF(field.total_timeout), 0, INT32_MAX}

static const struct cod_config_key keys[] = {
	{"DataDir", COD_CFG_STR, "", "COD_DIR", "data directory (default ~/.cod)", OFF(data_dir), 0, 0},
	{"NodeName", COD_CFG_STR, "", "COD_NODE_NAME", "this node's name (default: generated once, kept in DataDir)",
	 OFF(node_name), 0, 0},
	{"Labels", COD_CFG_MAP, "", "COD_LABELS", "static node labels (k=v,k2=v2)", OFF(labels), 0, 0},
	{"Logging.Level", COD_CFG_STR, "info", "COD_LOG_LEVEL", "log level: debug, info, warn, error",
	 OFF(log_level), 0, 0},
	{"BatchScheduling", COD_CFG_BOOL, "true", "COD_BATCH_SCHEDULING",
	 "run `cod serve` and its NATS server under SCHED_BATCH (no preemption between its own threads on "
	 "wake-up); executions keep the default policy",
	 OFF(batch_scheduling), 0, 0},
	{"API.Host", COD_CFG_STR, "0.0.0.0", "COD_API_HOST",
	 "REST API address: the server listens on it, clients connect to it (0.0.0.0 = 127.0.0.1)",
	 OFF(api_host), 0, 0},
	{"API.Port", COD_CFG_INT, "1234", "COD_API_PORT", "REST API port (0 = any free port, see DataDir/cod.run)", OFF(api_port), 0, 65535},
	{"API.MaxBodyBytes", COD_CFG_INT, "10485760", "COD_API_MAXBODYBYTES", "largest request body accepted",
	 OFF(api_max_body), 1024, INT32_MAX},
	{"API.Threads", COD_CFG_INT, "32", "COD_API_THREADS",
	 "HTTP server threads (a submission holds one until its job is on disk)", OFF(api_threads), 1, 256},
	{"Orchestrator.Enabled", COD_CFG_BOOL, "false", "COD_ORCHESTRATOR_ENABLED", "run the orchestrator",
	 OFF(orch_enabled), 0, 0},
	{"Orchestrator.Host", COD_CFG_STR, "0.0.0.0", "COD_ORCHESTRATOR_HOST", "NATS listen address",
	 OFF(orch_host), 0, 0},
	{"Orchestrator.Port", COD_CFG_INT, "4222", "COD_ORCHESTRATOR_PORT", "NATS listen port (0 = any free port)", OFF(orch_port), 0,
	 65535},
	{"Orchestrator.Advertise", COD_CFG_STR, "", "COD_ORCHESTRATOR_ADVERTISE",
	 "address compute nodes use to reach this orchestrator", OFF(orch_advertise), 0, 0},
	{"Orchestrator.Auth.Token", COD_CFG_STR, "", "COD_ORCHESTRATOR_AUTH_TOKEN",
	 "shared token compute nodes must present", OFF(orch_token), 0, 0},
	{"Orchestrator.NATS.URL", COD_CFG_STR, "", "COD_ORCHESTRATOR_NATS_URL",
	 "use this NATS server instead of starting one", OFF(orch_nats_url), 0, 0},
	{"Orchestrator.NodeManager.DisconnectTimeout", COD_CFG_DURATION, "1m", NULL,
	 "mark a node disconnected after this long without a heartbeat", OFF(orch_disconnect_timeout_ms), 0, 0},
	{"Orchestrator.NodeManager.ManualApproval", COD_CFG_BOOL, "false", NULL,
	 "new nodes wait for `cod node approve`", OFF(orch_manual_approval), 0, 0},
	{"Orchestrator.Scheduler.WorkerCount", COD_CFG_INT, "0", NULL, "scheduler workers (0 = one per CPU)",
	 OFF(orch_worker_count), 0, 1024},
	{"Orchestrator.Scheduler.QueueBackoff", COD_CFG_DURATION, "1m", NULL,
	 "delay before a queued job is evaluated again", OFF(orch_queue_backoff_ms), 0, 0},
	{"Orchestrator.Scheduler.HousekeepingInterval", COD_CFG_DURATION, "30s", NULL,
	 "how often timeouts are checked", OFF(orch_housekeeping_interval_ms), 0, 0},
	{"Orchestrator.Scheduler.HousekeepingTimeout", COD_CFG_DURATION, "2m", NULL,
	 "grace period after a timeout before it is enforced", OFF(orch_housekeeping_timeout_ms), 0, 0},
	{"Orchestrator.Scheduler.RetryAttempts", COD_CFG_INT, "3", NULL,
	 "executions per partition before a job fails (per job: Meta cod.retry.attempts)", OFF(orch_retry_attempts), 1,
	 100},
	{"Orchestrator.Scheduler.RetryBackoff", COD_CFG_DURATION, "0s", NULL,
	 "delay before a failed execution is retried (per job: Meta cod.retry.backoff)", OFF(orch_retry_backoff_ms), 0,
	 0},
	{"Orchestrator.EvaluationBroker.VisibilityTimeout", COD_CFG_DURATION, "1m", NULL,
	 "lease time of an evaluation handed to a worker", OFF(orch_visibility_timeout_ms), 0, 0},
	{"Orchestrator.EvaluationBroker.MaxRetryCount", COD_CFG_INT, "10", NULL,
	 "deliveries before an evaluation is dead-lettered", OFF(orch_eval_max_retries), 1, 1000},
	{"Compute.Enabled", COD_CFG_BOOL, "false", "COD_COMPUTE_ENABLED", "run a compute node", OFF(compute_enabled),
	 0, 0},
	{"Compute.Orchestrators", COD_CFG_LIST, "nats://127.0.0.1:4222", "COD_COMPUTE_ORCHESTRATORS",
	 "orchestrators to connect to", OFF(compute_orchestrators), 0, 0},
	{"Compute.Auth.Token", COD_CFG_STR, "", "COD_COMPUTE_AUTH_TOKEN", "token to present to the orchestrator",
	 OFF(compute_token), 0, 0},
	{"Compute.Heartbeat.Interval", COD_CFG_DURATION, "15s", NULL, "heartbeat period",
	 OFF(compute_heartbeat_ms), 0, 0},
	{"Compute.Heartbeat.InfoUpdateInterval", COD_CFG_DURATION, "1m", NULL, "node info update period",
	 OFF(compute_info_update_ms), 0, 0},
	{"Compute.AllocatedCapacity.CPU", COD_CFG_STR, "80%", NULL, "CPU offered to jobs (percent or cores)",
	 OFF(compute_alloc_cpu), 0, 0},
	{"Compute.AllocatedCapacity.Memory", COD_CFG_STR, "80%", NULL, "memory offered to jobs",
	 OFF(compute_alloc_memory), 0, 0},
	{"Compute.AllocatedCapacity.Disk", COD_CFG_STR, "80%", NULL, "disk offered to jobs",
	 OFF(compute_alloc_disk), 0, 0},
	{"Compute.AllocatedCapacity.GPU", COD_CFG_STR, "100%", NULL, "GPUs offered to jobs",
	 OFF(compute_alloc_gpu), 0, 0},
	{"Compute.Preparing.Timeout", COD_CFG_DURATION, "10m", NULL,
	 "time allowed to prepare an execution (inputs, image pull); not part of ExecutionTimeout",
	 OFF(compute_prepare_timeout_ms), 0, 0},
	{"Compute.PhaseReportDelay", COD_CFG_DURATION, "20ms", NULL,
	 "how long an execution runs before its phases (Preparing, Running, Publishing) are stored and reported; "
	 "one over sooner reports its result only; 0 reports every phase",
	 OFF(compute_phase_report_ms), 0, 0},
	{"InputSources.MaxRetryCount", COD_CFG_INT, "3", NULL, "attempts to prepare each input before the execution fails",
	 OFF(compute_input_retries), 1, 100},
	{"Compute.AllowListedLocalPaths", COD_CFG_LIST, "", NULL,
	 "host paths jobs may mount (globs, optional :rw or :ro)", OFF(compute_allowed_paths), 0, 0},
	{"Compute.Env.AllowList", COD_CFG_LIST, "", NULL, "host variables jobs may read with env:NAME",
	 OFF(compute_env_allowlist), 0, 0},
	{"Compute.JobAdmissionControl.RejectNetworkedJobs", COD_CFG_BOOL, "false", NULL,
	 "refuse to bid for jobs that ask for a network (Host, Full, HTTP, Bridge)", OFF(compute_reject_networked),
	 0, 0},
	{"Compute.JobAdmissionControl.RejectStatelessJobs", COD_CFG_BOOL, "false", NULL,
	 "refuse to bid for jobs without input sources", OFF(compute_reject_stateless), 0, 0},
	{"Compute.JobAdmissionControl.Locality", COD_CFG_STR, "anywhere", NULL,
	 "local: bid only for jobs whose inputs are all on this node (allow-listed path or input cache); anywhere",
	 OFF(compute_locality), 0, 0},
	{"InputSources.Disabled", COD_CFG_LIST, "", NULL, "input source types this node refuses (e.g. urlDownload,ipfs)",
	 OFF(input_disabled), 0, 0},
	{"InputSources.ReadTimeout", COD_CFG_DURATION, "5m", NULL, "time allowed to fetch one input (one attempt)",
	 OFF(input_read_timeout_ms), 0, 0},
	{"InputSources.Cache.MaxSize", COD_CFG_STR, "5GB", NULL,
	 "size of the node's input cache (DataDir/compute/cache; LRU; 0 = no cache)", OFF(input_cache_max_size), 0, 0},
	{"InputSources.Types.IPFS.Endpoint", COD_CFG_STR, "", NULL,
	 "IPFS node HTTP RPC API for ipfs inputs and `job get` (multiaddr /ip4/127.0.0.1/tcp/5001 or URL)",
	 OFF(input_ipfs_endpoint), 0, 0},
	{"Publishers.Disabled", COD_CFG_LIST, "", NULL, "publisher types this node refuses (e.g. local,ipfs)",
	 OFF(publisher_disabled), 0, 0},
	{"Publishers.Types.Local.Address", COD_CFG_STR, "127.0.0.1", NULL,
	 "address clients use to download local-publisher results from this node (checked at start-up)",
	 OFF(publisher_local_address), 0, 0},
	{"Publishers.Types.Local.ListenAddress", COD_CFG_STR, "", NULL,
	 "address the result server listens on (default: Address; 0.0.0.0 = all)", OFF(publisher_local_listen), 0,
	 0},
	{"Publishers.Types.Local.Port", COD_CFG_INT, "6001", NULL,
	 "port of the result server (0 = any free port; a busy default falls back to a free one)",
	 OFF(publisher_local_port), 0, 65535},
	{"Publishers.Types.IPFS.Endpoint", COD_CFG_STR, "", NULL,
	 "IPFS node HTTP RPC API results are added to (default: InputSources.Types.IPFS.Endpoint)",
	 OFF(publisher_ipfs_endpoint), 0, 0},
	{"Publishers.Types.S3.PreSignedURLDisabled", COD_CFG_BOOL, "false", NULL,
	 "return S3 results as they are instead of pre-signed download URLs", OFF(publisher_s3_presign_disabled), 0,
	 0},
	{"Publishers.Types.S3.PartSize", COD_CFG_STR, "64MiB", NULL,
	 "results larger than this go to S3 as a multipart upload of parts this size (S3's minimum is 5MiB)",
	 OFF(publisher_s3_part_size), 0, 0},
	{"Publishers.Types.S3.PreSignedURLExpiration", COD_CFG_DURATION, "30m", NULL,
	 "lifetime of the pre-signed URLs of S3 results", OFF(publisher_s3_presign_expiration_ms), 0, 0},
	{"Engines.Types.Docker.Runtime", COD_CFG_STR, "auto", "COD_DOCKER_RUNTIME",
	 "OCI runtime of the docker engine: auto (crun, else runc), crun or runc", OFF(docker_runtime), 0, 0},
	{"Engines.Types.Docker.Credentials", COD_CFG_MAP, "", NULL,
	 "registry credentials: host=user:password (docker.io for Docker Hub)", OFF(docker_credentials), 0, 0},
	{"Engines.Types.Docker.ConfigFile", COD_CFG_STR, "", NULL,
	 "Docker config.json with registry auths (default $DOCKER_CONFIG/config.json, ~/.docker/config.json)",
	 OFF(docker_config_path), 0, 0},
	{"Engines.Types.Docker.InsecureRegistries", COD_CFG_LIST, "", NULL,
	 "registries reached over plain HTTP (loopback hosts always are)", OFF(docker_insecure_registries), 0, 0},
	{"Engines.Types.Docker.ImageStore.MaxSize", COD_CFG_STR, "20GB", NULL,
	 "size cap of DataDir/compute/images; unused images are removed past it (0 = none)", OFF(docker_store_max),
	 0, 0},
	{"Engines.Types.Docker.ManifestCache.TTL", COD_CFG_DURATION, "1h", NULL,
	 "how long a resolved image manifest is trusted at bid time", OFF(docker_manifest_ttl_ms), 0, 0},
	{"Engines.Types.Docker.ResolveTimeout", COD_CFG_DURATION, "10s", NULL,
	 "time allowed to resolve an image at bid time", OFF(docker_resolve_timeout_ms), 0, 0},
	{"Engines.Types.Docker.ReadOnlyRootfs", COD_CFG_BOOL, "false", NULL,
	 "mount the container's root filesystem read-only (/tmp and outputs stay writable)",
	 OFF(docker_readonly_rootfs), 0, 0},
	JOB_DEFAULTS_ROWS("Batch", def_batch, "0"),
	JOB_DEFAULTS_ROWS("Ops", def_ops, "0"),
	JOB_DEFAULTS_ROWS("Daemon", def_daemon, "0"),
	JOB_DEFAULTS_ROWS("Service", def_service, "0"),
};

const struct cod_config_key *cod_config_keys(size_t *n)
{
	*n = COD_ARRAY_SIZE(keys);
	return keys;
}

const struct cod_config_key *cod_config_find_key(const char *key)
{
	for (size_t i = 0; i < COD_ARRAY_SIZE(keys); i++)
		if (!strcasecmp(keys[i].key, key))
			return &keys[i];
	return NULL;
}

static const char *closest_key(const char *key)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;
	for (size_t i = 0; i < COD_ARRAY_SIZE(keys); i++) {
		size_t d = cod_edit_distance(key, keys[i].key);
		if (d < best_d) {
			best_d = d;
			best = keys[i].key;
		}
	}
	return best_d <= 4 ? best : NULL;
}

static int unknown_key(const char *key, const char *source, struct cod_error **err)
{
	cod_error_set(err, COD_E_CONFIG, "%s: unknown config key \"%s\"", source, key);
	const char *near = closest_key(key);
	if (err && near)
		cod_error_hint(*err, "did you mean \"%s\"? `cod config list` shows every key", near);
	else if (err)
		cod_error_hint(*err, "`cod config list` shows every key");
	return -1;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "1", "yes", "on"};
	static const char *const no[] = {"false", "0", "no", "off"};
	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = true;
			return true;
		}
		if (!strcasecmp(s, no[i])) {
			*out = false;
			return true;
		}
	}
	return false;
}

static void split_list(const char *value, struct cod_strlist *out)
{
	cod_strlist_release(out);
	cleanup_free char *copy = xstrdup(value);
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		cod_str_trim(tok);
		if (*tok)
			cod_strlist_add(out, tok);
	}
}

static int split_map(const char *value, struct cod_kvlist *out, const struct cod_config_key *k,
		     const char *source, struct cod_error **err)
{
	struct cod_kvlist tmp = {0};
	cleanup_free char *copy = xstrdup(value);
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		cod_str_trim(tok);
		if (!*tok)
			continue;
		char *eq = strchr(tok, '=');
		if (!eq || eq == tok) {
			cod_kvlist_release(&tmp);
			return cod_error_set(err, COD_E_CONFIG, "%s: %s: \"%s\" is not key=value; use e.g. zone=eu,gpu=yes",
					     source, k->key, tok);
		}
		*eq = '\0';
		cod_kvlist_set(&tmp, cod_str_trim(tok), cod_str_trim(eq + 1));
	}
	cod_kvlist_release(out);
	*out = tmp;
	return 0;
}

static int set_value(struct cod_config *cfg, const struct cod_config_key *k, const char *value,
		     const char *source, struct cod_error **err)
{
	void *slot = (char *)cfg + k->offset;
	switch (k->type) {
	case COD_CFG_STR: {
		char **s = slot;
		free(*s);
		*s = xstrdup(value);
		return 0;
	}
	case COD_CFG_INT: {
		int64_t v;
		if (cod_parse_i64(value, &v) < 0)
			return cod_error_set(err, COD_E_CONFIG, "%s: %s: \"%s\" is not an integer", source, k->key,
					     value);
		if (k->max > k->min && (v < k->min || v > k->max))
			return cod_error_set(err, COD_E_CONFIG, "%s: %s: %lld is out of range; use %lld..%lld", source,
					     k->key, (long long)v, (long long)k->min, (long long)k->max);
		*(int64_t *)slot = v;
		return 0;
	}
	case COD_CFG_BOOL:
		if (!parse_bool(value, slot))
			return cod_error_set(err, COD_E_CONFIG, "%s: %s: \"%s\" is not a boolean; use true or false",
					     source, k->key, value);
		return 0;
	case COD_CFG_DURATION: {
		int64_t ms;
		if (cod_parse_duration_ms(value, &ms) < 0)
			return cod_error_set(err, COD_E_CONFIG, "%s: %s: \"%s\" is not a duration; use e.g. 30s, 5m or 1h",
					     source, k->key, value);
		*(int64_t *)slot = ms;
		return 0;
	}
	case COD_CFG_LIST:
		split_list(value, slot);
		return 0;
	case COD_CFG_MAP:
		return split_map(value, slot, k, source, err);
	}
	return 0;
}

int cod_config_set(struct cod_config *cfg, const char *key, const char *value, const char *source,
		   struct cod_error **err)
{
	const struct cod_config_key *k = cod_config_find_key(key);
	if (!k)
		return unknown_key(key, source, err);
	return set_value(cfg, k, value, source, err);
}

void cod_config_init(struct cod_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < COD_ARRAY_SIZE(keys); i++) {
		if (set_value(cfg, &keys[i], keys[i].def, "default", NULL) < 0)
			abort(); /* a bad default is a programmer error */
	}
}

void cod_config_release(struct cod_config *cfg)
{
	for (size_t i = 0; i < COD_ARRAY_SIZE(keys); i++) {
		void *slot = (char *)cfg + keys[i].offset;
		switch (keys[i].type) {
		case COD_CFG_STR:
			free(*(char **)slot);
			*(char **)slot = NULL;
			break;
		case COD_CFG_LIST:
			cod_strlist_release(slot);
			break;
		case COD_CFG_MAP:
			cod_kvlist_release(slot);
			break;
		default:
			break;
		}
	}
}

int cod_config_apply_env(struct cod_config *cfg, struct cod_error **err)
{
	for (size_t i = 0; i < COD_ARRAY_SIZE(keys); i++) {
		char name[160];
		const char *env = keys[i].env;
		if (!env) {
			/* COD_ + key with dots as underscores, upper case */
			size_t o = 0;
			o += (size_t)snprintf(name, sizeof(name), "COD_");
			for (const char *p = keys[i].key; *p && o + 1 < sizeof(name); p++)
				name[o++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
			name[o] = '\0';
			env = name;
		}
		const char *v = getenv(env);
		if (v && set_value(cfg, &keys[i], v, env, err) < 0)
			return -1;
	}
	return 0;
}

static char *scalar_text(const json_t *v)
{
	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (json_is_integer(v))
		return xasprintf("%lld", (long long)json_integer_value(v));
	if (json_is_real(v))
		return xasprintf("%g", json_real_value(v));
	if (json_is_boolean(v))
		return xstrdup(json_is_true(v) ? "true" : "false");
	if (json_is_null(v))
		return xstrdup("");
	return NULL;
}

static int load_tree(struct cod_config *cfg, const json_t *node, const char *prefix, const char *path,
		     struct cod_error **err)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)node, k, v)
	{
		cleanup_free char *full = *prefix ? xasprintf("%s.%s", prefix, k) : xstrdup(k);
		const struct cod_config_key *key = cod_config_find_key(full);
		if (!key && json_is_object(v)) {
			if (load_tree(cfg, v, full, path, err) < 0)
				return -1;
			continue;
		}
		if (!key)
			return unknown_key(full, path, err);
		cleanup_free char *text = NULL;
		if (key->type == COD_CFG_LIST && json_is_array(v)) {
			struct cod_buf b = COD_BUF_INIT;
			size_t i;
			json_t *item;
			json_array_foreach(v, i, item)
			{
				cleanup_free char *s = scalar_text(item);
				if (!s) {
					cod_buf_release(&b);
					return cod_error_set(err, COD_E_CONFIG, "%s: %s[%zu]: expected a string", path,
							     key->key, i);
				}
				if (i)
					cod_buf_addch(&b, ',');
				cod_buf_addstr(&b, s);
			}
			text = cod_buf_detach(&b, NULL);
		} else if (key->type == COD_CFG_MAP && json_is_object(v)) {
			struct cod_buf b = COD_BUF_INIT;
			const char *mk;
			json_t *mv;
			bool first = true;
			json_object_foreach(v, mk, mv)
			{
				cleanup_free char *s = scalar_text(mv);
				if (!s) {
					cod_buf_release(&b);
					return cod_error_set(err, COD_E_CONFIG, "%s: %s.%s: expected a string", path,
							     key->key, mk);
				}
				cod_buf_addf(&b, "%s%s=%s", first ? "" : ",", mk, s);
				first = false;
			}
			text = cod_buf_detach(&b, NULL);
		} else {
			text = scalar_text(v);
			if (!text)
				return cod_error_set(err, COD_E_CONFIG, "%s: %s: expected a %s value", path, key->key,
						     key->type == COD_CFG_LIST ? "list" : key->type == COD_CFG_MAP ? "map" : "scalar");
		}
		if (set_value(cfg, key, text, path, err) < 0)
			return -1;
	}
	return 0;
}

int cod_config_load_text(struct cod_config *cfg, const char *text, size_t len, const char *source,
			 struct cod_error **err)
{
	size_t i = 0;
	while (i < len && isspace((unsigned char)text[i]))
		i++;
	if (i == len)
		return 0; /* an empty config file is fine */
	cleanup_json json_t *tree = cod_doc_parse(text, len, err);
	if (!tree)
		return cod_error_wrap(err, "config file \"%s\"", source);
	if (!json_is_object(tree))
		return cod_error_set(err, COD_E_CONFIG, "config file \"%s\": expected a map of keys", source);
	return load_tree(cfg, tree, "", source, err);
}

int cod_config_load_file(struct cod_config *cfg, const char *path, bool optional, struct cod_error **err)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	FILE *probe = fopen(path, "r");
	if (!probe) {
		if (optional && errno == ENOENT)
			return 0;
		return cod_error_set(err, COD_E_CONFIG, "config file \"%s\": %s", path, strerror(errno));
	}
	fclose(probe);
	if (cod_read_file(path, 4u << 20, &text, &len, err) < 0)
		return -1;
	return cod_config_load_text(cfg, text, len, path, err);
}

char *cod_config_get_text(const struct cod_config *cfg, const struct cod_config_key *k)
{
	const void *slot = (const char *)cfg + k->offset;
	switch (k->type) {
	case COD_CFG_STR:
		return xstrdup(*(char *const *)slot ? *(char *const *)slot : "");
	case COD_CFG_INT:
		return xasprintf("%lld", (long long)*(const int64_t *)slot);
	case COD_CFG_BOOL:
		return xstrdup(*(const bool *)slot ? "true" : "false");
	case COD_CFG_DURATION: {
		int64_t ms = *(const int64_t *)slot;
		if (ms % 3600000 == 0 && ms)
			return xasprintf("%lldh", (long long)(ms / 3600000));
		if (ms % 60000 == 0 && ms)
			return xasprintf("%lldm", (long long)(ms / 60000));
		if (ms % 1000 == 0)
			return xasprintf("%llds", (long long)(ms / 1000));
		return xasprintf("%lldms", (long long)ms);
	}
	case COD_CFG_LIST: {
		const struct cod_strlist *l = slot;
		struct cod_buf b = COD_BUF_INIT;
		for (size_t i = 0; i < l->n; i++)
			cod_buf_addf(&b, "%s%s", i ? "," : "", l->items[i]);
		return cod_buf_detach(&b, NULL);
	}
	case COD_CFG_MAP: {
		const struct cod_kvlist *l = slot;
		struct cod_buf b = COD_BUF_INIT;
		for (size_t i = 0; i < l->n; i++)
			cod_buf_addf(&b, "%s%s=%s", i ? "," : "", l->items[i].key, l->items[i].value);
		return cod_buf_detach(&b, NULL);
	}
	}
	return xstrdup("");
}

char *cod_config_default_data_dir(void)
{
	const char *d = getenv("COD_DIR");
	if (d && *d)
		return xstrdup(d);
	const char *home = getenv("HOME");
	return xasprintf("%s/.cod", home && *home ? home : "/tmp");
}

/* Set a dotted key inside a nested tree, creating maps on the way; keys
 * already present are matched case-insensitively so the file keeps the
 * user's spelling. */
static void tree_set(json_t *root, const char *key, json_t *value)
{
	cleanup_free char *copy = xstrdup(key);
	json_t *node = root;
	char *save = NULL;
	char *part = strtok_r(copy, ".", &save);
	while (part) {
		char *next = strtok_r(NULL, ".", &save);
		const char *existing = NULL;
		const char *k;
		json_t *v;
		json_object_foreach(node, k, v)
		{
			if (!strcasecmp(k, part))
				existing = k;
		}
		const char *name = existing ? existing : part;
		if (!next) {
			json_object_set_new(node, name, value);
			return;
		}
		json_t *child = json_object_get(node, name);
		if (!json_is_object(child)) {
			child = json_object();
			json_object_set_new(node, name, child);
		}
		node = child;
		part = next;
	}
	json_decref(value);
}

int cod_config_file_set(const char *path, const char *key, const char *value, struct cod_error **err)
{
	const struct cod_config_key *k = cod_config_find_key(key);
	if (!k)
		return unknown_key(key, "config set", err);
	/* validate by parsing into a scratch config */
	struct cod_config scratch;
	cod_config_init(&scratch);
	int rc = set_value(&scratch, k, value, "config set", err);
	cod_config_release(&scratch);
	if (rc < 0)
		return -1;

	json_t *tree = NULL;
	cleanup_free char *text = NULL;
	size_t len = 0;
	FILE *probe = fopen(path, "r");
	if (probe) {
		fclose(probe);
		if (cod_read_file(path, 4u << 20, &text, &len, err) < 0)
			return -1;
		size_t i = 0;
		while (i < len && isspace((unsigned char)text[i]))
			i++;
		if (i < len) {
			tree = cod_doc_parse(text, len, err);
			if (!tree)
				return cod_error_wrap(err, "config file \"%s\"", path);
			if (!json_is_object(tree)) {
				json_decref(tree);
				return cod_error_set(err, COD_E_CONFIG, "config file \"%s\": expected a map of keys", path);
			}
		}
	}
	if (!tree)
		tree = json_object();

	json_t *jv;
	if (k->type == COD_CFG_INT)
		jv = json_integer(strtoll(value, NULL, 10));
	else if (k->type == COD_CFG_BOOL) {
		bool b = false;
		parse_bool(value, &b);
		jv = json_boolean(b);
	} else if (k->type == COD_CFG_LIST) {
		struct cod_strlist l = {0};
		split_list(value, &l);
		jv = json_array();
		for (size_t i = 0; i < l.n; i++)
			json_array_append_new(jv, json_string(l.items[i]));
		cod_strlist_release(&l);
	} else if (k->type == COD_CFG_MAP) {
		struct cod_kvlist m = {0};
		split_map(value, &m, k, "config set", NULL);
		jv = json_object();
		for (size_t i = 0; i < m.n; i++)
			json_object_set_new(jv, m.items[i].key, json_string(m.items[i].value));
		cod_kvlist_release(&m);
	} else {
		jv = json_string(value);
	}
	tree_set(tree, k->key, jv);

	struct cod_buf out = COD_BUF_INIT;
	cod_yaml_emit(tree, &out);
	json_decref(tree);
	cleanup_free char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (cod_mkdir_p(dir, 0700, err) < 0) {
			cod_buf_release(&out);
			return -1;
		}
	}
	rc = cod_write_file_atomic(path, out.buf, out.len, err);
	cod_buf_release(&out);
	return rc;
}

static void task_defaults(const struct cod_task_default_cfg *c, struct cod_task_defaults *out)
{
	out->priority = c->priority;
	out->cpu = c->cpu;
	out->memory = c->memory;
	out->disk = c->disk;
	out->gpu = c->gpu;
	out->publisher_type = c->publisher_type;
	out->execution_timeout = c->execution_timeout;
	out->queue_timeout = c->queue_timeout;
	out->total_timeout = c->total_timeout;
}

void cod_config_job_defaults(const struct cod_config *cfg, struct cod_job_defaults *out)
{
	task_defaults(&cfg->def_batch, &out->batch);
	task_defaults(&cfg->def_ops, &out->ops);
	task_defaults(&cfg->def_daemon, &out->daemon);
	task_defaults(&cfg->def_service, &out->service);
}
