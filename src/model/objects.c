/*
 * Server objects: executions, evaluations, job history and nodes. Their
 * schemas are lenient (unknown keys ignored) because they travel between
 * cod processes of possibly different versions and to Bacalhau clients.
 */
#include <stdlib.h>
#include <string.h>

#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "model/schema.h"
#include "common/banned.h"

#define OMIT COD_FF_OMITEMPTY

/* ----------------------------------------------------------- resources */

static const struct cod_field resources_fields[] = {
	COD_DOUBLE("CPU", struct cod_resources, cpu, 0),
	COD_UINT("Memory", struct cod_resources, memory, 0),
	COD_UINT("Disk", struct cod_resources, disk, 0),
	COD_UINT("GPU", struct cod_resources, gpu, 0),
};
const struct cod_schema cod_resources_schema =
	COD_SCHEMA("Resources", struct cod_resources, resources_fields, true);

json_t *cod_resources_to_json(const struct cod_resources *r)
{
	return cod_schema_encode(&cod_resources_schema, r);
}

/* ---------------------------------------------------------- executions */

static const struct cod_field spec_config_fields[] = {
	COD_STR("Type", struct cod_spec_config, type, 0),
	COD_JSONF("Params", struct cod_spec_config, params, OMIT),
};
static const struct cod_schema spec_config_schema =
	COD_SCHEMA("SpecConfig", struct cod_spec_config, spec_config_fields, true);

static const struct cod_field exec_state_fields[] = {
	COD_ENUMF("StateType", struct cod_state_info, type, 0, &cod_enum_exec_state),
	COD_STR("Message", struct cod_state_info, message, 0),
	COD_KVLIST("Details", struct cod_state_info, details, OMIT),
};
static const struct cod_schema exec_state_schema =
	COD_SCHEMA("State", struct cod_state_info, exec_state_fields, true);

static const struct cod_field desired_state_fields[] = {
	COD_ENUMF("StateType", struct cod_state_info, type, 0, &cod_enum_exec_desired),
	COD_STR("Message", struct cod_state_info, message, 0),
	COD_KVLIST("Details", struct cod_state_info, details, OMIT),
};
static const struct cod_schema desired_state_schema =
	COD_SCHEMA("State", struct cod_state_info, desired_state_fields, true);

/* RunOutput's stderr key is lowercase in Bacalhau (a struct tag quirk). */
static const struct cod_field run_output_fields[] = {
	COD_STR("Stdout", struct cod_run_output, stdout_text, 0),
	COD_BOOL("StdoutTruncated", struct cod_run_output, stdout_truncated, 0),
	COD_STR("stderr", struct cod_run_output, stderr_text, 0),
	COD_BOOL("StderrTruncated", struct cod_run_output, stderr_truncated, 0),
	COD_INT("ExitCode", struct cod_run_output, exit_code, 0),
	COD_STR("ErrorMsg", struct cod_run_output, error_msg, 0),
	/* cod: what preparing the inputs moved (docs/storage.md) */
	COD_JSONF("InputBytes", struct cod_run_output, input_bytes, OMIT),
};
static const struct cod_schema run_output_schema =
	COD_SCHEMA("RunCommandResult", struct cod_run_output, run_output_fields, true);

/* AllocatedResources{Tasks{<task name>: Resources}}: cod runs one task per
 * job, so one name and one Resources. */
static void alloc_decode(struct cod_decoder *d, const json_t *v, void *base)
{
	struct cod_execution *e = base;
	if (json_is_null(v))
		return;
	if (!json_is_object(v)) {
		cod_decoder_problem(d, "expected an object, got %s", cod_json_type_name(v));
		return;
	}
	json_t *tasks = cod_json_iget(v, "Tasks");
	if (!tasks || json_is_null(tasks))
		return;
	size_t mark = cod_decoder_push(d, "Tasks");
	if (!json_is_object(tasks)) {
		cod_decoder_problem(d, "expected an object, got %s", cod_json_type_name(tasks));
	} else {
		const char *k;
		json_t *val;
		json_object_foreach(tasks, k, val)
		{
			size_t m2 = cod_decoder_push(d, k);
			free(e->alloc_task);
			e->alloc_task = xstrdup(k);
			memset(&e->allocated, 0, sizeof(e->allocated));
			cod_decoder_object(d, &cod_resources_schema, val, &e->allocated);
			cod_decoder_pop(d, m2);
			break;
		}
	}
	cod_decoder_pop(d, mark);
}

static json_t *alloc_encode(const void *base)
{
	const struct cod_execution *e = base;
	json_t *tasks = json_object();
	if (!cod_str_empty(e->alloc_task))
		json_object_set_new(tasks, e->alloc_task, cod_resources_to_json(&e->allocated));
	return json_pack("{s:o}", "Tasks", tasks);
}

static void alloc_dump(struct cod_buf *b, const void *base)
{
	const struct cod_execution *e = base;
	cod_buf_addstr(b, "{\"Tasks\":{");
	if (!cod_str_empty(e->alloc_task) && cod_schema_dump_key(b, e->alloc_task))
		cod_schema_dump_to(b, &cod_resources_schema, &e->allocated);
	cod_buf_addstr(b, "}}");
}

static void alloc_copy(void *dst, const void *src)
{
	((struct cod_execution *)dst)->alloc_task =
		xstrdup_or_null(((const struct cod_execution *)src)->alloc_task);
}

static void alloc_release(void *base)
{
	struct cod_execution *e = base;
	free(e->alloc_task);
	e->alloc_task = NULL;
}

static const struct cod_custom alloc_custom = {
	.decode = alloc_decode, .encode = alloc_encode, .dump = alloc_dump, .copy = alloc_copy,
	.release = alloc_release,
};

static const struct cod_field execution_fields[] = {
	COD_STR("ID", struct cod_execution, id, 0),
	COD_STR("Namespace", struct cod_execution, namespace_, 0),
	COD_STR("EvalID", struct cod_execution, eval_id, 0),
	COD_STR("Name", struct cod_execution, name, 0),
	COD_STR("NodeID", struct cod_execution, node_id, 0),
	COD_STR("JobID", struct cod_execution, job_id, 0),
	COD_PTRF("Job", struct cod_execution, job, 0, &cod_job_schema),
	COD_UINT("JobVersion", struct cod_execution, job_version, 0),
	COD_CUSTOMF("AllocatedResources", &alloc_custom),
	COD_OBJ("DesiredState", struct cod_execution, desired_state, 0, &desired_state_schema),
	COD_OBJ("ComputeState", struct cod_execution, compute_state, 0, &exec_state_schema),
	COD_OBJ("PublishedResult", struct cod_execution, published_result, 0, &spec_config_schema),
	COD_OBJ("RunOutput", struct cod_execution, run_output, 0, &run_output_schema),
	COD_STR("PreviousExecution", struct cod_execution, previous_execution, 0),
	COD_STR("NextExecution", struct cod_execution, next_execution, 0),
	COD_STR("FollowupEvalID", struct cod_execution, followup_eval_id, 0),
	COD_INT("PartitionIndex", struct cod_execution, partition_index, 0),
	COD_UINT("Revision", struct cod_execution, revision, 0),
	COD_INT("CreateTime", struct cod_execution, create_time, 0),
	COD_INT("ModifyTime", struct cod_execution, modify_time, 0),
};
const struct cod_schema cod_execution_schema =
	COD_SCHEMA("Execution", struct cod_execution, execution_fields, true);

struct cod_execution *cod_execution_from_json(const json_t *v, struct cod_error **err)
{
	struct cod_execution *e = xcalloc(1, sizeof(*e));
	if (cod_schema_decode(&cod_execution_schema, v, e, err) < 0) {
		free(e);
		return NULL;
	}
	return e;
}

/* Replace one sub-object of e with what v decodes to, through the same
 * schema the whole execution uses; on problems it stays as it was. */
static void set_part(const struct cod_schema *schema, void *part, const json_t *v)
{
	if (!json_is_object(v))
		return;
	union {
		struct cod_run_output run_output;
		struct cod_spec_config spec;
	} tmp;
	if (cod_schema_decode(schema, v, &tmp, NULL) < 0)
		return;
	cod_schema_release(schema, part);
	memcpy(part, &tmp, schema->size);
}

void cod_execution_set_results(struct cod_execution *e, const json_t *run_output, const json_t *published)
{
	set_part(&run_output_schema, &e->run_output, run_output);
	set_part(&spec_config_schema, &e->published_result, published);
}

json_t *cod_execution_to_json(const struct cod_execution *e)
{
	return cod_schema_encode(&cod_execution_schema, e);
}

char *cod_execution_dumps(const struct cod_execution *e)
{
	return cod_schema_dumps(&cod_execution_schema, e);
}

struct cod_execution *cod_execution_dup(const struct cod_execution *e)
{
	if (!e)
		return NULL;
	struct cod_execution *copy = xmalloc(sizeof(*copy));
	cod_schema_copy(&cod_execution_schema, copy, e);
	return copy;
}

void cod_execution_free(struct cod_execution *e)
{
	if (!e)
		return;
	cod_schema_release(&cod_execution_schema, e);
	free(e);
}

/* --------------------------------------------------------- evaluations */

static const struct cod_field evaluation_fields[] = {
	COD_STR("ID", struct cod_evaluation, id, 0),
	COD_STR("Namespace", struct cod_evaluation, namespace_, 0),
	COD_STR("JobID", struct cod_evaluation, job_id, 0),
	COD_STR("TriggeredBy", struct cod_evaluation, triggered_by, 0),
	COD_STR("Type", struct cod_evaluation, type, 0),
	COD_STR("Status", struct cod_evaluation, status, 0),
	COD_STR("Comment", struct cod_evaluation, comment, OMIT),
	COD_INT("Priority", struct cod_evaluation, priority, 0),
	COD_INT("WaitUntil", struct cod_evaluation, wait_until, 0),
	COD_INT("CreateTime", struct cod_evaluation, create_time, 0),
	COD_INT("ModifyTime", struct cod_evaluation, modify_time, 0),
};
const struct cod_schema cod_evaluation_schema =
	COD_SCHEMA("Evaluation", struct cod_evaluation, evaluation_fields, true);

struct cod_evaluation *cod_evaluation_from_json(const json_t *v, struct cod_error **err)
{
	struct cod_evaluation *e = xcalloc(1, sizeof(*e));
	if (cod_schema_decode(&cod_evaluation_schema, v, e, err) < 0) {
		free(e);
		return NULL;
	}
	return e;
}

json_t *cod_evaluation_to_json(const struct cod_evaluation *e)
{
	return cod_schema_encode(&cod_evaluation_schema, e);
}

char *cod_evaluation_dumps(const struct cod_evaluation *e)
{
	return cod_schema_dumps(&cod_evaluation_schema, e);
}

void cod_evaluation_free(struct cod_evaluation *e)
{
	if (!e)
		return;
	cod_schema_release(&cod_evaluation_schema, e);
	free(e);
}

/* ------------------------------------------------------------- history */

static const struct cod_field event_fields[] = {
	COD_STR("Message", struct cod_history_event, message, 0),
	COD_STR("Topic", struct cod_history_event, topic, 0),
	COD_INT("Timestamp", struct cod_history_event, event_time, 0),
	COD_KVLIST("Details", struct cod_history_event, details, OMIT),
};
static const struct cod_schema event_schema =
	COD_SCHEMA("Event", struct cod_history_event, event_fields, true);

static const struct cod_field job_change_fields[] = {
	COD_ENUMF("Previous", struct cod_history_event, job_state_prev, 0, &cod_enum_job_state),
	COD_ENUMF("New", struct cod_history_event, job_state_new, 0, &cod_enum_job_state),
};
static const struct cod_schema job_change_schema =
	COD_SCHEMA("StateChange", struct cod_history_event, job_change_fields, true);

static const struct cod_field exec_change_fields[] = {
	COD_ENUMF("Previous", struct cod_history_event, exec_state_prev, 0, &cod_enum_exec_state),
	COD_ENUMF("New", struct cod_history_event, exec_state_new, 0, &cod_enum_exec_state),
};
static const struct cod_schema exec_change_schema =
	COD_SCHEMA("StateChange", struct cod_history_event, exec_change_fields, true);

static const struct cod_field history_fields[] = {
	COD_UINT("SeqNum", struct cod_history_event, seq_num, 0),
	COD_ENUMF("Type", struct cod_history_event, type, 0, &cod_enum_history_type),
	COD_STR("JobID", struct cod_history_event, job_id, 0),
	COD_UINT("JobVersion", struct cod_history_event, job_version, 0),
	COD_STR("ExecutionID", struct cod_history_event, execution_id, OMIT),
	COD_INLINE("Event", 0, &event_schema),
	COD_INT("Time", struct cod_history_event, time, 0),
	{.name = "JobState", .kind = COD_F_OBJECT, .off = 0, .sub = &job_change_schema,
	 .flags = OMIT | COD_FF_PRESENT, .present_off = offsetof(struct cod_history_event, has_job_state)},
	{.name = "ExecutionState", .kind = COD_F_OBJECT, .off = 0, .sub = &exec_change_schema,
	 .flags = OMIT | COD_FF_PRESENT,
	 .present_off = offsetof(struct cod_history_event, has_exec_state)},
};
const struct cod_schema cod_history_schema =
	COD_SCHEMA("JobHistory", struct cod_history_event, history_fields, true);

struct cod_history_event *cod_history_from_json(const json_t *v, struct cod_error **err)
{
	struct cod_history_event *h = xcalloc(1, sizeof(*h));
	if (cod_schema_decode(&cod_history_schema, v, h, err) < 0) {
		free(h);
		return NULL;
	}
	return h;
}

json_t *cod_history_to_json(const struct cod_history_event *h)
{
	return cod_schema_encode(&cod_history_schema, h);
}

char *cod_history_dumps(const struct cod_history_event *h)
{
	return cod_schema_dumps(&cod_history_schema, h);
}

void cod_history_free(struct cod_history_event *h)
{
	if (!h)
		return;
	cod_schema_release(&cod_history_schema, h);
	free(h);
}

/* --------------------------------------------------------------- nodes */

static const struct cod_field compute_info_fields[] = {
	COD_STRLIST("ExecutionEngines", struct cod_compute_info, engines, 0),
	COD_STRLIST("Publishers", struct cod_compute_info, publishers, 0),
	COD_STRLIST("StorageSources", struct cod_compute_info, storages, 0),
	COD_OBJ("MaxCapacity", struct cod_compute_info, max_capacity, 0, &cod_resources_schema),
	COD_OBJ("QueueCapacity", struct cod_compute_info, queue_capacity, 0, &cod_resources_schema),
	COD_OBJ("AvailableCapacity", struct cod_compute_info, available_capacity, 0, &cod_resources_schema),
	COD_OBJ("MaxJobRequirements", struct cod_compute_info, max_job_requirements, 0,
		&cod_resources_schema),
	COD_INT("RunningExecutions", struct cod_compute_info, running_executions, 0),
	COD_INT("EnqueuedExecutions", struct cod_compute_info, enqueued_executions, 0),
	COD_STR("address", struct cod_compute_info, address, 0),
	/* cod: the node's data inventory for locality ranking (docs/storage.md) */
	COD_JSONF("CodInventory", struct cod_compute_info, inventory, OMIT),
};
static const struct cod_schema compute_info_schema =
	COD_SCHEMA("ComputeNodeInfo", struct cod_compute_info, compute_info_fields, true);

static const struct cod_field version_fields[] = {
	COD_STR("GitVersion", struct cod_node_info, version, 0),
};
static const struct cod_schema version_schema =
	COD_SCHEMA("BuildVersionInfo", struct cod_node_info, version_fields, true);

static const struct cod_field node_info_fields[] = {
	COD_STR("NodeID", struct cod_node_info, node_id, 0),
	COD_STR("NodeType", struct cod_node_info, node_type, 0),
	COD_KVLIST("Labels", struct cod_node_info, labels, 0),
	COD_STRLIST("SupportedProtocols", struct cod_node_info, supported_protocols, 0),
	{.name = "ComputeNodeInfo", .kind = COD_F_OBJECT, .off = offsetof(struct cod_node_info, compute),
	 .sub = &compute_info_schema, .flags = OMIT | COD_FF_PRESENT,
	 .present_off = offsetof(struct cod_node_info, has_compute)},
	COD_INLINE("BacalhauVersion", 0, &version_schema),
};
const struct cod_schema cod_node_info_schema =
	COD_SCHEMA("NodeInfo", struct cod_node_info, node_info_fields, true);

/* ConnectionState members live in struct cod_node_state itself. */
static const struct cod_field conn_state_fields[] = {
	COD_ENUMF("Status", struct cod_node_state, connection, 0, &cod_enum_connection),
	COD_INT("LastHeartbeat", struct cod_node_state, last_heartbeat, 0),
	COD_UINT("LastComputeSeqNum", struct cod_node_state, last_compute_seq, 0),
	COD_UINT("LastOrchestratorSeqNum", struct cod_node_state, last_orchestrator_seq, 0),
	COD_INT("ConnectedSince", struct cod_node_state, connected_since, 0),
	COD_INT("DisconnectedSince", struct cod_node_state, disconnected_since, 0),
	COD_STR("LastError", struct cod_node_state, last_error, 0),
};
static const struct cod_schema conn_state_schema =
	COD_SCHEMA("ConnectionState", struct cod_node_state, conn_state_fields, true);

static const struct cod_field node_state_fields[] = {
	COD_OBJ("Info", struct cod_node_state, info, 0, &cod_node_info_schema),
	COD_ENUMF("Membership", struct cod_node_state, membership, 0, &cod_enum_membership),
	COD_ENUMF("Connection", struct cod_node_state, connection, 0, &cod_enum_connection),
	COD_INLINE("ConnectionState", 0, &conn_state_schema),
};
const struct cod_schema cod_node_state_schema =
	COD_SCHEMA("NodeState", struct cod_node_state, node_state_fields, true);

struct cod_node_state *cod_node_from_json(const json_t *v, struct cod_error **err)
{
	struct cod_node_state *n = xcalloc(1, sizeof(*n));
	if (cod_schema_decode(&cod_node_state_schema, v, n, err) < 0) {
		free(n);
		return NULL;
	}
	return n;
}

json_t *cod_node_to_json(const struct cod_node_state *n)
{
	return cod_schema_encode(&cod_node_state_schema, n);
}

char *cod_node_dumps(const struct cod_node_state *n)
{
	return cod_schema_dumps(&cod_node_state_schema, n);
}

json_t *cod_node_info_to_json(const struct cod_node_info *n)
{
	return cod_schema_encode(&cod_node_info_schema, n);
}

struct cod_node_state *cod_node_dup(const struct cod_node_state *n)
{
	if (!n)
		return NULL;
	struct cod_node_state *copy = xmalloc(sizeof(*copy));
	cod_schema_copy(&cod_node_state_schema, copy, n);
	return copy;
}

void cod_node_free(struct cod_node_state *n)
{
	if (!n)
		return;
	cod_schema_release(&cod_node_state_schema, n);
	free(n);
}
