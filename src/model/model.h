/*
 * model.h - cod's data model: jobs, tasks, executions, evaluations, job
 * history, nodes, with Bacalhau's field names and enum encodings.
 *
 * Every struct here can be decoded from a jansson tree (strictly: unknown or
 * ill-typed fields are errors naming their path, keys match case-
 * insensitively), encoded back to one, duplicated and released. The codec is
 * table-driven (schema.h): one field table per struct is the single place
 * that knows a field's JSON name, type and offset.
 *
 * Ownership: every char * and json_t * inside these structs is owned by the
 * struct. cod_*_free() frees a heap object and everything it holds;
 * cod_*_release() frees what an embedded struct holds and zeroes it.
 *
 * Encodings (reference/bacalhau.md §2.4, §2.6, §4): job State.StateType is a
 * string ("Pending"), execution ComputeState/DesiredState are integers, node
 * Membership/Connection and history Type are strings, times are Unix ns.
 */
#ifndef COD_MODEL_H
#define COD_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* ---------------------------------------------------------------- lists */

struct cod_kv {
	char *key;
	char *value;
};

/* An ordered string map; keys unique. Encoded as a JSON object. */
struct cod_kvlist {
	struct cod_kv *items;
	size_t n;
};

struct cod_strlist {
	char **items;
	size_t n;
};

void cod_kvlist_set(struct cod_kvlist *l, const char *key, const char *value);
const char *cod_kvlist_get(const struct cod_kvlist *l, const char *key);
bool cod_kvlist_del(struct cod_kvlist *l, const char *key);
void cod_kvlist_copy(struct cod_kvlist *dst, const struct cod_kvlist *src);
void cod_kvlist_release(struct cod_kvlist *l);
void cod_strlist_add(struct cod_strlist *l, const char *s);
void cod_strlist_copy(struct cod_strlist *dst, const struct cod_strlist *src);
void cod_strlist_release(struct cod_strlist *l);

/* ---------------------------------------------------------------- enums */

enum cod_job_type {
	COD_JOB_TYPE_UNSET = 0,
	COD_JOB_BATCH,
	COD_JOB_OPS,
	COD_JOB_DAEMON,
	COD_JOB_SERVICE,
};
const char *cod_job_type_name(enum cod_job_type t);       /* "batch"; "" for unset */
int cod_job_type_parse(const char *s);                     /* case-insensitive; -1 unknown */

enum cod_job_state {
	COD_JOB_UNDEFINED = 0,
	COD_JOB_PENDING,
	COD_JOB_QUEUED,
	COD_JOB_RUNNING,
	COD_JOB_COMPLETED,
	COD_JOB_FAILED,
	COD_JOB_STOPPED,
};
const char *cod_job_state_name(enum cod_job_state s);     /* "Pending" */
int cod_job_state_parse(const char *s);                    /* -1 unknown */
bool cod_job_state_terminal(enum cod_job_state s);
bool cod_job_state_rerunnable(enum cod_job_state s);

enum cod_exec_state {
	COD_EXEC_UNDEFINED = 0,
	COD_EXEC_NEW,
	COD_EXEC_ASK_FOR_BID,
	COD_EXEC_ASK_FOR_BID_ACCEPTED,
	COD_EXEC_ASK_FOR_BID_REJECTED,
	COD_EXEC_BID_ACCEPTED,
	COD_EXEC_RUNNING,
	COD_EXEC_PUBLISHING,
	COD_EXEC_BID_REJECTED,
	COD_EXEC_COMPLETED,
	COD_EXEC_FAILED,
	COD_EXEC_CANCELLED,
	COD_EXEC_PREPARING, /* cod: image pull and inputs, outside ExecutionTimeout */
};
const char *cod_exec_state_name(enum cod_exec_state s);   /* "BidAccepted" */
bool cod_exec_state_terminal(enum cod_exec_state s);
bool cod_exec_state_discarded(enum cod_exec_state s);

enum cod_exec_desired {
	COD_DESIRED_PENDING = 0,
	COD_DESIRED_RUNNING,
	COD_DESIRED_STOPPED,
};
const char *cod_exec_desired_name(enum cod_exec_desired s);

enum cod_network_type {
	COD_NET_DEFAULT = 0,
	COD_NET_NONE,
	COD_NET_HOST,
	COD_NET_FULL,
	COD_NET_HTTP,
	COD_NET_BRIDGE,
};
const char *cod_network_type_name(enum cod_network_type t); /* "None" */
int cod_network_type_parse(const char *s);

enum cod_node_membership { COD_NODE_PENDING = 0, COD_NODE_APPROVED, COD_NODE_REJECTED };
enum cod_node_connection { COD_NODE_DISCONNECTED = 0, COD_NODE_CONNECTED };
const char *cod_node_membership_name(enum cod_node_membership m); /* "APPROVED" */
int cod_node_membership_parse(const char *s);
const char *cod_node_connection_name(enum cod_node_connection c); /* "CONNECTED" */
int cod_node_connection_parse(const char *s);

/* ---------------------------------------------------------- resources */

/* Parsed resources. CPU in cores, memory/disk in bytes, GPU count. */
struct cod_resources {
	double cpu;
	uint64_t memory;
	uint64_t disk;
	uint64_t gpu;
};

/* k8s CPU quantity: "500m", "2", "0.5", "1.5k"... */
int cod_parse_cpu(const char *s, double *out);
/* humanize sizes: "512Mb", "1Gi", "2GB", "1.5 gb", "1024" (bytes). */
int cod_parse_bytes(const char *s, uint64_t *out);
/* "512.0 MiB", "1.0 GiB", "0 B". Heap string. */
char *cod_format_bytes(uint64_t bytes);

/* --------------------------------------------------------- selectors */

enum cod_selector_op {
	COD_SEL_EQ = 0, /* "=" */
	COD_SEL_DEQ,    /* "==" */
	COD_SEL_NE,     /* "!=" */
	COD_SEL_IN,     /* "in" */
	COD_SEL_NOTIN,  /* "notin" */
	COD_SEL_EXISTS, /* "exists" */
	COD_SEL_NOT_EXISTS, /* "!" */
	COD_SEL_GT,     /* "gt" */
	COD_SEL_LT,     /* "lt" */
};
const char *cod_selector_op_name(enum cod_selector_op op);
int cod_selector_op_parse(const char *s);

struct cod_selector_req {
	char *key;
	enum cod_selector_op op;
	struct cod_strlist values;
};

struct cod_selector {
	struct cod_selector_req *reqs;
	size_t n;
};

/* Parse a k8s selector string: "a=b,c!=d,e in (x,y),f notin (z),g,!h,n>3,n<9".
 * Fills out (caller releases). Errors name the offending requirement. */
int cod_selector_parse(const char *text, struct cod_selector *out, struct cod_error **err);
/* Check one requirement's operator/value-count rules; msg names the problem. */
int cod_selector_req_check(const struct cod_selector_req *r, char **msg);
bool cod_selector_match(const struct cod_selector *sel, const struct cod_kvlist *labels);
bool cod_selector_req_match(const struct cod_selector_req *r, const struct cod_kvlist *labels);
char *cod_selector_format(const struct cod_selector *sel);
void cod_selector_release(struct cod_selector *sel);
void cod_selector_copy(struct cod_selector *dst, const struct cod_selector *src);

/* --------------------------------------------------------------- job */

/* {Type, Params}. Type is trimmed; compared case-insensitively. */
struct cod_spec_config {
	char *type;
	json_t *params; /* object or NULL */
};

struct cod_input_source {
	struct cod_spec_config source;
	char *alias;
	char *target;
};

struct cod_result_path {
	char *name;
	char *path;
};

/* Resources as written in the spec (strings). */
struct cod_resources_config {
	char *cpu;
	char *memory;
	char *disk;
	char *gpu;
};

struct cod_port {
	char *name;
	int64_t static_port;
	int64_t target;
	char *host_network;
};

struct cod_network {
	enum cod_network_type type;
	struct cod_strlist domains;
	struct cod_port *ports;
	size_t nports;
};

/* Seconds; 0 = none. */
struct cod_timeouts {
	int64_t execution_timeout;
	int64_t queue_timeout;
	int64_t total_timeout;
};

struct cod_task {
	char *name;
	struct cod_spec_config engine;
	struct cod_spec_config publisher;
	struct cod_kvlist env;
	struct cod_kvlist meta;
	struct cod_input_source *inputs; /* InputSources */
	size_t ninputs;
	struct cod_result_path *results; /* ResultPaths */
	size_t nresults;
	struct cod_resources_config resources;
	struct cod_network network;
	struct cod_timeouts timeouts;
};

struct cod_state_info {
	int type; /* enum cod_job_state / cod_exec_state / cod_exec_desired */
	char *message;
	struct cod_kvlist details;
};

struct cod_job {
	char *id;
	char *name;
	char *namespace_;
	enum cod_job_type type;
	int64_t priority;
	int64_t count;
	bool count_set; /* Count present in the input (explicit 0 = stop all) */
	struct cod_selector constraints;
	struct cod_kvlist meta;
	struct cod_kvlist labels;
	struct cod_task *tasks;
	size_t ntasks;
	struct cod_state_info state; /* type: enum cod_job_state */
	uint64_t version;
	uint64_t revision;
	int64_t create_time;
	int64_t modify_time;
};

/* Decode a job spec document (YAML or JSON text). Strict: every problem of
 * decoding is reported at once in err->details, each naming its field path
 * ("Tasks[0].Resources.Memory: ..."). Semantic validation is separate. */
struct cod_job *cod_job_parse(const char *text, size_t len, struct cod_error **err);
/* Decode from a tree (e.g. the "Job" member of an API body). */
struct cod_job *cod_job_from_json(const json_t *v, struct cod_error **err);
/* Encode with Bacalhau names; empty optional fields omitted. New reference. */
json_t *cod_job_to_json(const struct cod_job *job);
/* The same as compact JSON text (heap), written without building the tree;
 * likewise cod_execution_dumps() and the others below. */
char *cod_job_dumps(const struct cod_job *job);
struct cod_job *cod_job_dup(const struct cod_job *job);
void cod_job_free(struct cod_job *job);

/* Per-type defaults from config (JobDefaults.<Type>...). Strings may be NULL
 * or "" for "no default". */
struct cod_task_defaults {
	int64_t priority;
	const char *cpu, *memory, *disk, *gpu;
	const char *publisher_type;
	int64_t execution_timeout, queue_timeout, total_timeout;
};
struct cod_job_defaults {
	struct cod_task_defaults batch, ops, daemon, service;
};

/* Normalize a submitted job (trim types, Count rules, Namespace default
 * "default", Name default = ID, drop reserved Meta keys, Tasks truncated to
 * one) and apply defaults. Warnings (heap strings) are appended to *warnings. */
void cod_job_normalize(struct cod_job *job, const struct cod_job_defaults *defaults,
		       struct cod_strlist *warnings);
/* Semantic validation: every problem at once (VALIDATION error with one
 * detail per problem, message summarising them on one line). */
int cod_job_validate(const struct cod_job *job, struct cod_error **err);
/* Resources of task i parsed (after defaults). */
int cod_task_resources(const struct cod_task *task, struct cod_resources *out, struct cod_error **err);
/* Whether two jobs have the same spec (ignoring ID, State, Version,
 * Revision, times and reserved meta; resource strings case-insensitive). */
bool cod_job_spec_equal(const struct cod_job *a, const struct cod_job *b);
/* A line diff of the two specs as YAML ("-"/"+"/" " prefixed lines). */
char *cod_job_diff(const struct cod_job *old_job, const struct cod_job *new_job);
/* A short engine summary for tables: "docker busybox:1.37.0", "wasm wasm.main",
 * "noop". Heap string; "" when the job has no task. */
char *cod_job_engine_summary(const struct cod_job *job);

/* ------------------------------------------------------- executions */

struct cod_run_output {
	char *stdout_text; /* "Stdout" */
	bool stdout_truncated;
	char *stderr_text; /* "stderr" (sic) */
	bool stderr_truncated;
	int64_t exit_code;
	char *error_msg;
	/* cod: {"Local": bytes, "Fetched": bytes, "Inputs": [{"Name", "Type",
	 * "Local", "Fetched", "CacheHit"}]}, or NULL */
	json_t *input_bytes;
};

struct cod_execution {
	char *id; /* e-<uuid> */
	char *namespace_;
	char *eval_id;
	char *name;
	char *node_id;
	char *job_id;
	struct cod_job *job; /* full copy, may be NULL */
	uint64_t job_version;
	char *alloc_task; /* AllocatedResources.Tasks key */
	struct cod_resources allocated;
	struct cod_state_info desired_state; /* type: enum cod_exec_desired */
	struct cod_state_info compute_state; /* type: enum cod_exec_state */
	struct cod_spec_config published_result;
	struct cod_run_output run_output;
	char *previous_execution;
	char *next_execution;
	char *followup_eval_id;
	int64_t partition_index;
	uint64_t revision;
	int64_t create_time;
	int64_t modify_time;
};

struct cod_execution *cod_execution_from_json(const json_t *v, struct cod_error **err);
json_t *cod_execution_to_json(const struct cod_execution *e);
char *cod_execution_dumps(const struct cod_execution *e);
struct cod_execution *cod_execution_dup(const struct cod_execution *e);
/* Set e's RunOutput and PublishedResult from their JSON (a compute node's
 * RunCommandResult and PublishResult), each only when it is an object that
 * decodes. */
void cod_execution_set_results(struct cod_execution *e, const json_t *run_output, const json_t *published);
void cod_execution_free(struct cod_execution *e);

/* ------------------------------------------------------ evaluations */

struct cod_evaluation {
	char *id;
	char *namespace_;
	char *job_id;
	char *triggered_by; /* job-register, job-update, job-cancel, job-rerun, ... */
	char *type;         /* job type name */
	char *status;       /* pending, complete, failed, canceled, blocked */
	char *comment;
	int64_t priority;
	int64_t wait_until;
	int64_t create_time;
	int64_t modify_time;
};

struct cod_evaluation *cod_evaluation_from_json(const json_t *v, struct cod_error **err);
json_t *cod_evaluation_to_json(const struct cod_evaluation *e);
char *cod_evaluation_dumps(const struct cod_evaluation *e);
void cod_evaluation_free(struct cod_evaluation *e);

/* ----------------------------------------------------------- history */

enum cod_history_type { COD_HISTORY_JOB = 0, COD_HISTORY_EXECUTION };

struct cod_history_event {
	uint64_t seq_num;
	enum cod_history_type type; /* "JobLevel" | "ExecutionLevel" */
	char *job_id;
	uint64_t job_version;
	char *execution_id;
	char *message; /* Event.Message */
	char *topic;   /* Event.Topic */
	int64_t event_time; /* Event.Timestamp */
	struct cod_kvlist details; /* Event.Details */
	int64_t time;
	bool has_job_state;
	int job_state_prev, job_state_new;
	bool has_exec_state;
	int exec_state_prev, exec_state_new;
};

struct cod_history_event *cod_history_from_json(const json_t *v, struct cod_error **err);
json_t *cod_history_to_json(const struct cod_history_event *h);
char *cod_history_dumps(const struct cod_history_event *h);
void cod_history_free(struct cod_history_event *h);

/* ------------------------------------------------------------- nodes */

struct cod_compute_info {
	struct cod_strlist engines;    /* ExecutionEngines */
	struct cod_strlist publishers; /* Publishers */
	struct cod_strlist storages;   /* StorageSources */
	struct cod_resources max_capacity;
	struct cod_resources queue_capacity; /* "QueueCapacity" */
	struct cod_resources available_capacity;
	struct cod_resources max_job_requirements;
	int64_t running_executions;
	int64_t enqueued_executions;
	char *address; /* "address" (sic) */
	/* cod: {"LocalPaths": [...], "Cached": [...]} (cod_storage_inventory()),
	 * or NULL */
	json_t *inventory;
};

struct cod_node_info {
	char *node_id;
	char *node_type; /* "Requester" | "Compute" */
	struct cod_kvlist labels;
	struct cod_strlist supported_protocols;
	bool has_compute;
	struct cod_compute_info compute;
	char *version; /* BacalhauVersion.GitVersion */
};

struct cod_node_state {
	struct cod_node_info info;
	enum cod_node_membership membership;
	enum cod_node_connection connection;
	int64_t last_heartbeat;
	int64_t connected_since;
	int64_t disconnected_since;
	uint64_t last_compute_seq;
	uint64_t last_orchestrator_seq;
	char *last_error;
};

struct cod_node_state *cod_node_from_json(const json_t *v, struct cod_error **err);
json_t *cod_node_to_json(const struct cod_node_state *n);
char *cod_node_dumps(const struct cod_node_state *n);
json_t *cod_node_info_to_json(const struct cod_node_info *n);
struct cod_node_state *cod_node_dup(const struct cod_node_state *n);
void cod_node_free(struct cod_node_state *n);

json_t *cod_resources_to_json(const struct cod_resources *r);

#endif
