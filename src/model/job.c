/*
 * Jobs: the field tables of the job spec, decode/encode entry points,
 * spec comparison and diff.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "model/schema.h"
#include "common/banned.h"

#define OMIT COD_FF_OMITEMPTY

/* ------------------------------------------------------------ schemas */

static const struct cod_field spec_config_fields[] = {
	COD_STR("Type", struct cod_spec_config, type, 0),
	COD_JSONF("Params", struct cod_spec_config, params, OMIT),
};
static const struct cod_schema spec_config_schema =
	COD_SCHEMA("SpecConfig", struct cod_spec_config, spec_config_fields, false);

static const struct cod_field input_source_fields[] = {
	COD_OBJ("Source", struct cod_input_source, source, 0, &spec_config_schema),
	COD_STR("Alias", struct cod_input_source, alias, OMIT),
	COD_STR("Target", struct cod_input_source, target, 0),
};
const struct cod_schema cod_input_source_schema =
	COD_SCHEMA("InputSource", struct cod_input_source, input_source_fields, false);

static const struct cod_field result_path_fields[] = {
	COD_STR("Name", struct cod_result_path, name, 0),
	COD_STR("Path", struct cod_result_path, path, 0),
};
static const struct cod_schema result_path_schema =
	COD_SCHEMA("ResultPath", struct cod_result_path, result_path_fields, false);

static const struct cod_field resources_config_fields[] = {
	COD_STR("CPU", struct cod_resources_config, cpu, OMIT),
	COD_STR("Memory", struct cod_resources_config, memory, OMIT),
	COD_STR("Disk", struct cod_resources_config, disk, OMIT),
	COD_STR("GPU", struct cod_resources_config, gpu, OMIT),
};
static const struct cod_schema resources_config_schema =
	COD_SCHEMA("ResourcesConfig", struct cod_resources_config, resources_config_fields, false);

static const struct cod_field port_fields[] = {
	COD_STR("Name", struct cod_port, name, 0),
	COD_INT("Static", struct cod_port, static_port, OMIT),
	COD_INT("Target", struct cod_port, target, OMIT),
	COD_STR("HostNetwork", struct cod_port, host_network, OMIT),
};
static const struct cod_schema port_schema = COD_SCHEMA("Port", struct cod_port, port_fields, false);

static const struct cod_field network_fields[] = {
	COD_ENUMF("Type", struct cod_network, type, OMIT, &cod_enum_network),
	COD_STRLIST("Domains", struct cod_network, domains, OMIT),
	COD_ARR("Ports", struct cod_network, ports, nports, OMIT, &port_schema),
};
static const struct cod_schema network_schema =
	COD_SCHEMA("NetworkConfig", struct cod_network, network_fields, false);

static const struct cod_field timeouts_fields[] = {
	COD_INT("ExecutionTimeout", struct cod_timeouts, execution_timeout, OMIT),
	COD_INT("QueueTimeout", struct cod_timeouts, queue_timeout, OMIT),
	COD_INT("TotalTimeout", struct cod_timeouts, total_timeout, OMIT),
};
static const struct cod_schema timeouts_schema =
	COD_SCHEMA("TimeoutConfig", struct cod_timeouts, timeouts_fields, false);

static const struct cod_field task_fields[] = {
	COD_STR("Name", struct cod_task, name, 0),
	COD_OBJ("Engine", struct cod_task, engine, 0, &spec_config_schema),
	COD_OBJ("Publisher", struct cod_task, publisher, OMIT, &spec_config_schema),
	COD_KVLIST("Env", struct cod_task, env, OMIT),
	COD_KVLIST("Meta", struct cod_task, meta, OMIT),
	COD_ARR("InputSources", struct cod_task, inputs, ninputs, OMIT, &cod_input_source_schema),
	COD_ARR("ResultPaths", struct cod_task, results, nresults, OMIT, &result_path_schema),
	COD_OBJ("Resources", struct cod_task, resources, OMIT, &resources_config_schema),
	COD_OBJ("Network", struct cod_task, network, OMIT, &network_schema),
	COD_OBJ("Timeouts", struct cod_task, timeouts, OMIT, &timeouts_schema),
};
const struct cod_schema cod_task_schema = COD_SCHEMA("Task", struct cod_task, task_fields, false);

static const struct cod_field selector_req_fields[] = {
	COD_STR("Key", struct cod_selector_req, key, 0),
	COD_ENUMF("Operator", struct cod_selector_req, op, 0, &cod_enum_selector_op),
	COD_STRLIST("Values", struct cod_selector_req, values, OMIT),
};
static const struct cod_schema selector_req_schema =
	COD_SCHEMA("LabelSelectorRequirement", struct cod_selector_req, selector_req_fields, false);

static const struct cod_field job_state_fields[] = {
	COD_ENUMF("StateType", struct cod_state_info, type, 0, &cod_enum_job_state),
	COD_STR("Message", struct cod_state_info, message, OMIT),
	COD_KVLIST("Details", struct cod_state_info, details, OMIT),
};
static const struct cod_schema job_state_schema =
	COD_SCHEMA("State", struct cod_state_info, job_state_fields, false);

static const struct cod_field job_fields[] = {
	COD_STR("ID", struct cod_job, id, OMIT),
	COD_STR("Name", struct cod_job, name, OMIT),
	COD_STR("Namespace", struct cod_job, namespace_, OMIT),
	COD_ENUMF("Type", struct cod_job, type, OMIT, &cod_enum_job_type),
	COD_INT("Priority", struct cod_job, priority, OMIT),
	{.name = "Count", .kind = COD_F_INT, .off = offsetof(struct cod_job, count),
	 .flags = OMIT | COD_FF_PRESENT, .present_off = offsetof(struct cod_job, count_set)},
	COD_ARR("Constraints", struct cod_job, constraints.reqs, constraints.n, OMIT, &selector_req_schema),
	COD_KVLIST("Meta", struct cod_job, meta, OMIT),
	COD_KVLIST("Labels", struct cod_job, labels, OMIT),
	COD_ARR("Tasks", struct cod_job, tasks, ntasks, OMIT, &cod_task_schema),
	COD_OBJ("State", struct cod_job, state, OMIT, &job_state_schema),
	COD_UINT("Version", struct cod_job, version, OMIT),
	COD_UINT("Revision", struct cod_job, revision, OMIT),
	COD_INT("CreateTime", struct cod_job, create_time, OMIT),
	COD_INT("ModifyTime", struct cod_job, modify_time, OMIT),
};
const struct cod_schema cod_job_schema = COD_SCHEMA("Job", struct cod_job, job_fields, false);

/* ----------------------------------------------------- decode / encode */

static int empty_spec(struct cod_error **err)
{
	cod_error_set(err, COD_E_BAD_REQUEST, "the job spec is empty; a job needs at least Type and Tasks");
	if (err && *err)
		cod_error_hint(*err, "see `cod job run --help` for an example spec");
	return -1;
}

struct cod_job *cod_job_parse(const char *text, size_t len, struct cod_error **err)
{
	struct cod_error *perr = NULL;
	if (!text)
		len = 0;
	json_t *v = cod_doc_parse(text ? text : "", len, &perr);
	if (!v) {
		/* A document of only comments parses to nothing too. */
		if (perr && !strcmp(perr->message, "empty document")) {
			cod_error_free(perr);
			empty_spec(err);
			return NULL;
		}
		cod_error_wrap(&perr, "parse job spec");
		cod_error_move(err, &perr);
		return NULL;
	}
	if (json_is_null(v) || (json_is_object(v) && json_object_size(v) == 0)) {
		json_decref(v);
		empty_spec(err);
		return NULL;
	}
	struct cod_job *job = cod_job_from_json(v, err);
	json_decref(v);
	return job;
}

struct cod_job *cod_job_from_json(const json_t *v, struct cod_error **err)
{
	if (v && !json_is_object(v)) {
		cod_error_set(err, COD_E_VALIDATION,
			      "the job spec must be a mapping of fields (Type, Tasks, ...), got %s",
			      cod_json_type_name(v));
		return NULL;
	}
	struct cod_job *job = xcalloc(1, sizeof(*job));
	if (cod_schema_decode(&cod_job_schema, v, job, err) < 0) {
		free(job);
		return NULL;
	}
	return job;
}

json_t *cod_job_to_json(const struct cod_job *job)
{
	return cod_schema_encode(&cod_job_schema, job);
}

char *cod_job_dumps(const struct cod_job *job)
{
	return cod_schema_dumps(&cod_job_schema, job);
}

struct cod_job *cod_job_dup(const struct cod_job *job)
{
	if (!job)
		return NULL;
	struct cod_job *copy = xmalloc(sizeof(*copy));
	cod_schema_copy(&cod_job_schema, copy, job);
	return copy;
}

void cod_job_free(struct cod_job *job)
{
	if (!job)
		return;
	cod_schema_release(&cod_job_schema, job);
	free(job);
}

/* ---------------------------------------------------- compare and diff */

static bool reserved_meta(const char *key)
{
	return cod_str_has_prefix(key, "bacalhau.org/") || cod_str_has_prefix(key, "cod.io/");
}

/* The spec part of a job as a tree: server-managed fields removed.
 * With fold, resource strings are lowercased ("1Gb" equals "1gb"). */
static json_t *spec_tree(const struct cod_job *job, bool fold)
{
	json_t *j = cod_job_to_json(job);
	static const char *const server_fields[] = {"ID", "State", "Version", "Revision", "CreateTime",
						    "ModifyTime"};
	for (size_t i = 0; i < COD_ARRAY_SIZE(server_fields); i++)
		json_object_del(j, server_fields[i]);

	json_t *meta = json_object_get(j, "Meta");
	if (meta) {
		const char *k;
		json_t *val;
		void *tmp;
		json_object_foreach_safe(meta, tmp, k, val)
		{
			if (reserved_meta(k))
				json_object_del(meta, k);
		}
		if (!json_object_size(meta))
			json_object_del(j, "Meta");
	}
	if (fold) {
		size_t i;
		json_t *task;
		json_array_foreach(json_object_get(j, "Tasks"), i, task)
		{
			json_t *res = json_object_get(task, "Resources");
			const char *k;
			json_t *val;
			json_object_foreach(res, k, val)
			{
				char *low = cod_str_lower(json_string_value(val));
				json_string_set(val, low);
				free(low);
			}
		}
	}
	return j;
}

bool cod_job_spec_equal(const struct cod_job *a, const struct cod_job *b)
{
	if (!a || !b)
		return a == b;
	json_t *ja = spec_tree(a, true);
	json_t *jb = spec_tree(b, true);
	bool eq = json_equal(ja, jb);
	json_decref(ja);
	json_decref(jb);
	return eq;
}

struct lines {
	char **v;
	size_t n;
};

static void split_lines(char *text, struct lines *out)
{
	size_t alloc = 0;
	out->v = NULL;
	out->n = 0;
	char *p = text;
	while (*p) {
		char *nl = strchr(p, '\n');
		COD_GROW(out->v, alloc, out->n + 1);
		out->v[out->n++] = p;
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
	}
}

static void emit_line(struct cod_buf *b, char prefix, const char *line)
{
	cod_buf_addch(b, prefix);
	cod_buf_addstr(b, line);
	cod_buf_addch(b, '\n');
}

/* LCS over the middle part that differs; beyond this many cells the diff
 * degrades to "all removed, all added", which is still correct. */
#define DIFF_MAX_CELLS (4u * 1024 * 1024)

static void diff_middle(struct cod_buf *b, char **a, size_t na, char **c, size_t nc)
{
	if (!na || !nc || (na + 1) > DIFF_MAX_CELLS / (nc + 1)) {
		for (size_t i = 0; i < na; i++)
			emit_line(b, '-', a[i]);
		for (size_t j = 0; j < nc; j++)
			emit_line(b, '+', c[j]);
		return;
	}
	size_t w = nc + 1;
	unsigned *t = xcalloc(cod_mul_size(na + 1, w), sizeof(*t));
	/* t[i][j] = LCS length of a[i..] and c[j..] */
	for (size_t i = na; i-- > 0;)
		for (size_t j = nc; j-- > 0;) {
			if (!strcmp(a[i], c[j]))
				t[i * w + j] = t[(i + 1) * w + j + 1] + 1;
			else
				t[i * w + j] = t[(i + 1) * w + j] > t[i * w + j + 1] ? t[(i + 1) * w + j]
										  : t[i * w + j + 1];
		}
	size_t i = 0, j = 0;
	while (i < na && j < nc) {
		if (!strcmp(a[i], c[j])) {
			emit_line(b, ' ', a[i]);
			i++;
			j++;
		} else if (t[(i + 1) * w + j] >= t[i * w + j + 1]) {
			emit_line(b, '-', a[i++]);
		} else {
			emit_line(b, '+', c[j++]);
		}
	}
	while (i < na)
		emit_line(b, '-', a[i++]);
	while (j < nc)
		emit_line(b, '+', c[j++]);
	free(t);
}

static char *spec_yaml(const struct cod_job *job)
{
	struct cod_buf b = COD_BUF_INIT;
	if (job) {
		json_t *j = spec_tree(job, false);
		cod_yaml_emit(j, &b);
		json_decref(j);
	}
	cod_buf_addstr(&b, "");
	return cod_buf_detach(&b, NULL);
}

char *cod_job_diff(const struct cod_job *old_job, const struct cod_job *new_job)
{
	char *ya = spec_yaml(old_job), *yb = spec_yaml(new_job);
	struct lines a, c;
	split_lines(ya, &a);
	split_lines(yb, &c);

	struct cod_buf b = COD_BUF_INIT;
	size_t pre = 0;
	while (pre < a.n && pre < c.n && !strcmp(a.v[pre], c.v[pre]))
		pre++;
	size_t post = 0;
	while (post < a.n - pre && post < c.n - pre && !strcmp(a.v[a.n - 1 - post], c.v[c.n - 1 - post]))
		post++;
	for (size_t i = 0; i < pre; i++)
		emit_line(&b, ' ', a.v[i]);
	diff_middle(&b, a.v + pre, a.n - pre - post, c.v + pre, c.n - pre - post);
	for (size_t i = a.n - post; i < a.n; i++)
		emit_line(&b, ' ', a.v[i]);

	free(a.v);
	free(c.v);
	free(ya);
	free(yb);
	cod_buf_addstr(&b, "");
	return cod_buf_detach(&b, NULL);
}

char *cod_job_engine_summary(const struct cod_job *job)
{
	if (!job || !job->ntasks || cod_str_empty(job->tasks[0].engine.type))
		return xstrdup("");
	const struct cod_spec_config *e = &job->tasks[0].engine;
	const char *canon = cod_canonical_spec_type(e->type);
	char *type = canon ? xstrdup(canon) : cod_str_trim(xstrdup(e->type));
	const char *key = NULL;
	if (canon && !strcmp(canon, "docker"))
		key = "Image";
	else if (canon && !strcmp(canon, "wasm"))
		key = "EntryModule";
	const char *arg = key ? json_string_value(cod_json_iget(e->params, key)) : NULL;
	char *out = arg && *arg ? xasprintf("%s %s", type, arg) : xstrdup(type);
	free(type);
	return out;
}
