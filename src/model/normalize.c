/*
 * Normalizing a submitted job: what Bacalhau does to a spec between
 * decoding and validation (trimmed types, Count rules, reserved Meta,
 * one task, per-type defaults) plus the legacy wasm form.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "model/schema.h"
#include "common/banned.h"

static void warn(struct cod_strlist *warnings, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void warn(struct cod_strlist *warnings, const char *fmt, ...)
{
	if (!warnings)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	cod_strlist_add(warnings, msg);
	free(msg);
}

static void trim_str(char **s)
{
	if (*s)
		cod_str_trim(*s);
}

/* Trim a spec Type and spell known types the canonical way. */
static void normalize_spec(struct cod_spec_config *c)
{
	trim_str(&c->type);
	const char *canon = cod_canonical_spec_type(c->type);
	if (canon && strcmp(canon, c->type)) {
		free(c->type);
		c->type = xstrdup(canon);
	}
	/* An empty Type with empty Params is "unset". */
	if (cod_str_empty(c->type) && c->params && json_object_size(c->params) == 0) {
		json_decref(c->params);
		c->params = NULL;
	}
}

static const char *params_key(const json_t *params, const char *key)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)params, k, v)
	{
		if (!strcasecmp(k, key))
			return k;
	}
	return NULL;
}

static void add_input(struct cod_task *t, struct cod_input_source *in)
{
	t->inputs = xrealloc(t->inputs, cod_mul_size(t->ninputs + 1, sizeof(*t->inputs)));
	t->inputs[t->ninputs++] = *in;
	memset(in, 0, sizeof(*in));
}

/* A legacy wasm module reference (an InputSource object) becomes an input of
 * the task; returns its target path (owned by the task) or NULL when the
 * object is not a well-formed InputSource (validation reports it). */
static const char *legacy_module(struct cod_task *t, const json_t *obj, const char *fallback_alias)
{
	struct cod_input_source in;
	if (cod_schema_decode(&cod_input_source_schema, obj, &in, NULL) < 0)
		return NULL;
	normalize_spec(&in.source);
	if (cod_str_empty(in.target)) {
		free(in.target);
		in.target = xasprintf("/cod/wasm/%s.wasm", cod_str_empty(in.alias) ? fallback_alias : in.alias);
	}
	add_input(t, &in);
	return t->inputs[t->ninputs - 1].target;
}

static void normalize_wasm_legacy(struct cod_task *t, struct cod_strlist *warnings)
{
	json_t *params = t->engine.params;
	if (!params || !cod_spec_type_is(t->engine.type, "wasm"))
		return;
	const char *key = params_key(params, "EntryModule");
	json_t *entry = key ? json_object_get(params, key) : NULL;
	if (json_is_object(entry)) {
		const char *target = legacy_module(t, entry, "entry");
		if (target) {
			warn(warnings, "Tasks[0].Engine.Params.EntryModule: the legacy module form was "
				       "converted to an input source mounted at \"%s\"",
			     target);
			json_object_set_new(params, key, json_string(target));
		}
	}
	key = params_key(params, "ImportModules");
	json_t *imports = key ? json_object_get(params, key) : NULL;
	if (json_is_array(imports)) {
		size_t i;
		json_t *m;
		json_array_foreach(imports, i, m)
		{
			if (!json_is_object(m))
				continue;
			char alias[32];
			snprintf(alias, sizeof(alias), "import%zu", i);
			const char *target = legacy_module(t, m, alias);
			if (target)
				json_array_set_new(imports, i, json_string(target));
		}
	}
}

static const struct cod_task_defaults *defaults_for(const struct cod_job_defaults *d, enum cod_job_type t)
{
	if (!d)
		return NULL;
	switch (t) {
	case COD_JOB_BATCH:
		return &d->batch;
	case COD_JOB_OPS:
		return &d->ops;
	case COD_JOB_DAEMON:
		return &d->daemon;
	case COD_JOB_SERVICE:
		return &d->service;
	default:
		return NULL;
	}
}

static void default_str(char **field, const char *def)
{
	if (cod_str_empty(*field) && !cod_str_empty(def)) {
		free(*field);
		*field = xstrdup(def);
	}
}

static void apply_defaults(struct cod_job *job, const struct cod_task_defaults *td)
{
	if (!td)
		return;
	if (!job->priority)
		job->priority = td->priority;
	for (size_t i = 0; i < job->ntasks; i++) {
		struct cod_task *t = &job->tasks[i];
		default_str(&t->resources.cpu, td->cpu);
		default_str(&t->resources.memory, td->memory);
		default_str(&t->resources.disk, td->disk);
		default_str(&t->resources.gpu, td->gpu);
		if (cod_str_empty(t->publisher.type) && !cod_str_empty(td->publisher_type)) {
			default_str(&t->publisher.type, td->publisher_type);
			normalize_spec(&t->publisher);
		}
		if (!t->timeouts.execution_timeout)
			t->timeouts.execution_timeout = td->execution_timeout;
		if (!t->timeouts.queue_timeout)
			t->timeouts.queue_timeout = td->queue_timeout;
		if (!t->timeouts.total_timeout)
			t->timeouts.total_timeout = td->total_timeout;
	}
}

static bool reserved_meta(const char *key)
{
	return cod_str_has_prefix(key, "bacalhau.org/") || cod_str_has_prefix(key, "cod.io/");
}

void cod_job_normalize(struct cod_job *job, const struct cod_job_defaults *defaults,
		       struct cod_strlist *warnings)
{
	if (!job)
		return;
	trim_str(&job->name);
	trim_str(&job->namespace_);
	if (cod_str_empty(job->namespace_)) {
		free(job->namespace_);
		job->namespace_ = xstrdup("default");
	}

	if (job->state.type || job->state.message || job->state.details.n || job->version || job->revision ||
	    job->create_time || job->modify_time) {
		warn(warnings, "State, Version, Revision, CreateTime and ModifyTime are set by the server; "
			       "the values in the spec were ignored");
		free(job->state.message);
		job->state.message = NULL;
		cod_kvlist_release(&job->state.details);
		job->state.type = COD_JOB_UNDEFINED;
		job->version = job->revision = 0;
		job->create_time = job->modify_time = 0;
	}

	for (size_t i = 0; i < job->meta.n;) {
		if (reserved_meta(job->meta.items[i].key)) {
			warn(warnings, "Meta key \"%s\" is reserved for the server and was removed",
			     job->meta.items[i].key);
			char *key = xstrdup(job->meta.items[i].key);
			cod_kvlist_del(&job->meta, key);
			free(key);
		} else {
			i++;
		}
	}

	if (job->ntasks)
		trim_str(&job->tasks[0].name);
	if (job->ntasks > 1) {
		warn(warnings, "job has %zu tasks; only the first (\"%s\") is kept", job->ntasks,
		     job->tasks[0].name ? job->tasks[0].name : "");
		for (size_t i = 1; i < job->ntasks; i++)
			cod_schema_release(&cod_task_schema, &job->tasks[i]);
		job->ntasks = 1;
	}

	for (size_t i = 0; i < job->ntasks; i++) {
		struct cod_task *t = &job->tasks[i];
		trim_str(&t->name);
		normalize_spec(&t->engine);
		normalize_spec(&t->publisher);
		for (size_t j = 0; j < t->ninputs; j++)
			normalize_spec(&t->inputs[j].source);
		normalize_wasm_legacy(t, warnings);
	}

	switch (job->type) {
	case COD_JOB_BATCH:
	case COD_JOB_SERVICE:
		if (!job->count_set)
			job->count = 1;
		job->count_set = true;
		break;
	case COD_JOB_OPS:
	case COD_JOB_DAEMON:
		/* They run once per matching node; a Count above 1 is left for
		 * validation to refuse. */
		if (job->count <= 1)
			job->count = 0;
		job->count_set = true;
		break;
	default:
		break;
	}

	apply_defaults(job, defaults_for(defaults, job->type));
}
