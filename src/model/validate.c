/*
 * Semantic validation of a job spec. Every problem is collected, each
 * naming its field path, so a user fixes a spec in one round trip.
 *
 * Engine types are not checked against a list here: any non-empty Type
 * passes, and the scheduler refuses engines no node offers. Params of the
 * engines, publishers and sources cod knows are checked.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "model/schema.h"
#include "common/banned.h"

#define problem cod_problem_add

static bool is_abs_path(const char *s)
{
	return s && s[0] == '/';
}

/* Env names: uppercase letter first, then [A-Z0-9_]. */
static bool env_name_ok(const char *s)
{
	if (!s || !(*s >= 'A' && *s <= 'Z'))
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return true;
}

static bool env_reserved(const char *s)
{
	return cod_str_has_prefix(s, "BACALHAU_") || cod_str_has_prefix(s, "COD_");
}

/* A port name becomes part of an env var name (BACALHAU_PORT_<Name>). */
static bool port_name_ok(const char *s)
{
	if (cod_str_empty(s) || !(isalpha((unsigned char)*s) || *s == '_'))
		return false;
	for (const char *p = s; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '_'))
			return false;
	return true;
}

static bool ip_ok(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* ------------------------------------------------------------ params */

static const json_t *param(const json_t *params, const char *key)
{
	const json_t *v = cod_json_iget(params, key);
	return json_is_null(v) ? NULL : v;
}

/* A required non-empty string param; reports and returns NULL otherwise. */
static const char *need_string(struct cod_problems *p, const json_t *params, const char *path,
			       const char *key, const char *hint)
{
	const json_t *v = param(params, key);
	if (!v) {
		problem(p, "%s.%s: missing; %s", path, key, hint);
		return NULL;
	}
	if (!json_is_string(v)) {
		problem(p, "%s.%s: expected a string, got %s", path, key, cod_json_type_name(v));
		return NULL;
	}
	if (!*json_string_value(v)) {
		problem(p, "%s.%s: must not be empty; %s", path, key, hint);
		return NULL;
	}
	return json_string_value(v);
}

static void opt_string(struct cod_problems *p, const json_t *params, const char *path, const char *key)
{
	const json_t *v = param(params, key);
	if (v && !json_is_string(v))
		problem(p, "%s.%s: expected a string, got %s", path, key, cod_json_type_name(v));
}

/* An array of strings or null. Returns the array when it is well-formed. */
static const json_t *opt_string_array(struct cod_problems *p, const json_t *params, const char *path,
				      const char *key)
{
	const json_t *v = param(params, key);
	if (!v)
		return NULL;
	if (!json_is_array(v)) {
		problem(p, "%s.%s: expected an array of strings, got %s", path, key, cod_json_type_name(v));
		return NULL;
	}
	bool ok = true;
	size_t i;
	json_t *item;
	json_array_foreach(v, i, item)
	{
		if (!json_is_string(item)) {
			problem(p, "%s.%s[%zu]: expected a string, got %s", path, key, i,
				cod_json_type_name(item));
			ok = false;
		}
	}
	return ok ? v : NULL;
}

/* Keys of params not among known: problems with a did-you-mean hint. */
static void unknown_params(struct cod_problems *p, const json_t *params, const char *path, const char *what,
			   const char *const *known, size_t nknown)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)params, k, v)
	{
		bool found = false;
		for (size_t i = 0; i < nknown && !found; i++)
			found = !strcasecmp(k, known[i]);
		if (found)
			continue;
		const char *best = cod_did_you_mean(k, known, nknown);
		if (best)
			problem(p, "%s.%s: unknown %s parameter \"%s\"; did you mean \"%s\"?", path, k, what, k,
				best);
		else
			problem(p, "%s.%s: unknown %s parameter \"%s\"", path, k, what, k);
	}
}

static void check_docker(struct cod_problems *p, const json_t *params, const char *tpath)
{
	static const char *const known[] = {"Image", "Entrypoint", "Parameters", "EnvironmentVariables",
					    "WorkingDirectory"};
	char *path = xasprintf("%s.Engine.Params", tpath);
	unknown_params(p, params, path, "docker", known, COD_ARRAY_SIZE(known));
	need_string(p, params, path, "Image", "a docker task needs an image, e.g. Image: busybox:1.37.0");
	opt_string_array(p, params, path, "Entrypoint");
	opt_string_array(p, params, path, "Parameters");
	const json_t *env = opt_string_array(p, params, path, "EnvironmentVariables");
	size_t i;
	json_t *item;
	json_array_foreach(env, i, item)
	{
		const char *s = json_string_value(item);
		const char *eq = strchr(s, '=');
		if (!eq || eq == s)
			problem(p, "%s.EnvironmentVariables[%zu]: \"%s\" is not of the form NAME=value", path, i,
				s);
		else if (env_reserved(s))
			problem(p, "%s.EnvironmentVariables[%zu]: \"%.*s\" is reserved (names must not start "
				   "with BACALHAU_ or COD_)",
				path, i, (int)(eq - s), s);
	}
	const json_t *wd = param(params, "WorkingDirectory");
	if (wd && !json_is_string(wd))
		problem(p, "%s.WorkingDirectory: expected a string, got %s", path, cod_json_type_name(wd));
	else if (wd && *json_string_value(wd) && !is_abs_path(json_string_value(wd)))
		problem(p, "%s.WorkingDirectory: \"%s\" must be an absolute path", path, json_string_value(wd));
	free(path);
}

static void check_wasm(struct cod_problems *p, const json_t *params, const char *tpath)
{
	static const char *const known[] = {"EntryModule", "Entrypoint", "Parameters", "EnvironmentVariables",
					    "ImportModules"};
	char *path = xasprintf("%s.Engine.Params", tpath);
	unknown_params(p, params, path, "wasm", known, COD_ARRAY_SIZE(known));
	need_string(p, params, path, "EntryModule",
		    "a wasm task needs the path of its module, e.g. the Target of an input source");
	opt_string(p, params, path, "Entrypoint");
	opt_string_array(p, params, path, "Parameters");
	opt_string_array(p, params, path, "ImportModules");
	const json_t *env = param(params, "EnvironmentVariables");
	if (env && !json_is_object(env)) {
		problem(p, "%s.EnvironmentVariables: expected a map of strings, got %s", path,
			cod_json_type_name(env));
	} else if (env) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)env, k, v)
		{
			if (json_is_object(v) || json_is_array(v))
				problem(p, "%s.EnvironmentVariables.%s: expected a string, got %s", path, k,
					cod_json_type_name(v));
		}
	}
	free(path);
}

static void check_publisher(struct cod_problems *p, const struct cod_spec_config *pub, const char *tpath)
{
	if (cod_str_empty(pub->type))
		return;
	if (cod_spec_type_is(pub->type, "s3")) {
		char *path = xasprintf("%s.Publisher.Params", tpath);
		need_string(p, pub->params, path, "Bucket", "the s3 publisher needs a bucket");
		need_string(p, pub->params, path, "Key", "the s3 publisher needs a key (prefix) for results");
		free(path);
	}
}

static void check_source(struct cod_problems *p, const struct cod_spec_config *src, const char *ipath)
{
	char *path = xasprintf("%s.Source.Params", ipath);
	const json_t *params = src->params;
	if (cod_str_empty(src->type)) {
		problem(p, "%s.Source.Type: missing; use e.g. s3, urlDownload, ipfs, inline or local", ipath);
	} else if (cod_spec_type_is(src->type, "s3")) {
		need_string(p, params, path, "Bucket", "an s3 input needs a bucket");
	} else if (cod_spec_type_is(src->type, "urlDownload")) {
		const char *url = need_string(p, params, path, "URL", "a urlDownload input needs a URL");
		if (url && strncasecmp(url, "http://", 7) && strncasecmp(url, "https://", 8))
			problem(p, "%s.URL: \"%s\" must be an http:// or https:// URL", path, url);
	} else if (cod_spec_type_is(src->type, "ipfs")) {
		need_string(p, params, path, "CID", "an ipfs input needs a CID");
	} else if (cod_spec_type_is(src->type, "inline")) {
		const char *url = need_string(p, params, path, "URL", "an inline input needs a data: URL");
		if (url && strncasecmp(url, "data:", 5))
			problem(p, "%s.URL: an inline source must be a \"data:\" URL", path);
	} else if (cod_spec_type_is(src->type, "local") || cod_spec_type_is(src->type, "localDirectory")) {
		const char *sp = need_string(p, params, path, "SourcePath", "a local input needs a SourcePath");
		if (sp && !is_abs_path(sp))
			problem(p, "%s.SourcePath: \"%s\" must be an absolute path", path, sp);
	}
	free(path);
}

/* ------------------------------------------------------------- parts */

static void check_inputs(struct cod_problems *p, const struct cod_task *t, const char *tpath)
{
	for (size_t j = 0; j < t->ninputs; j++) {
		const struct cod_input_source *in = &t->inputs[j];
		char *ipath = xasprintf("%s.InputSources[%zu]", tpath, j);
		check_source(p, &in->source, ipath);
		if (cod_str_empty(in->target))
			problem(p, "%s.Target: missing; set where the input is mounted, e.g. /inputs", ipath);
		else if (!is_abs_path(in->target))
			problem(p, "%s.Target: \"%s\" must be an absolute path", ipath, in->target);
		for (size_t k = 0; k < j; k++) {
			const struct cod_input_source *o = &t->inputs[k];
			if (!cod_str_empty(in->target) && o->target && !strcmp(in->target, o->target))
				problem(p, "%s.Target: \"%s\" is also the target of InputSources[%zu]", ipath,
					in->target, k);
			if (!cod_str_empty(in->alias) && o->alias && !strcmp(in->alias, o->alias))
				problem(p, "%s.Alias: \"%s\" is also the alias of InputSources[%zu]", ipath,
					in->alias, k);
		}
		free(ipath);
	}
}

static void check_results(struct cod_problems *p, const struct cod_task *t, const char *tpath)
{
	for (size_t j = 0; j < t->nresults; j++) {
		const struct cod_result_path *r = &t->results[j];
		if (cod_str_empty(r->name))
			problem(p, "%s.ResultPaths[%zu].Name: missing; name the result, e.g. outputs", tpath, j);
		if (cod_str_empty(r->path))
			problem(p, "%s.ResultPaths[%zu].Path: missing; set the directory to publish, e.g. /outputs",
				tpath, j);
		else if (!is_abs_path(r->path))
			problem(p, "%s.ResultPaths[%zu].Path: \"%s\" must be an absolute path", tpath, j, r->path);
		for (size_t k = 0; k < j; k++) {
			const struct cod_result_path *o = &t->results[k];
			if (!cod_str_empty(r->name) && o->name && !strcmp(r->name, o->name))
				problem(p, "%s.ResultPaths[%zu].Name: \"%s\" is also the name of ResultPaths[%zu]",
					tpath, j, r->name, k);
			if (!cod_str_empty(r->path) && o->path && !strcmp(r->path, o->path))
				problem(p, "%s.ResultPaths[%zu].Path: \"%s\" is also the path of ResultPaths[%zu]",
					tpath, j, r->path, k);
		}
	}
	if (t->nresults && cod_str_empty(t->publisher.type))
		problem(p, "%s.Publisher: the task has ResultPaths but no publisher; set %s.Publisher, "
			   "e.g. Type: local",
			tpath, tpath);
}

static void check_resources(struct cod_problems *p, const struct cod_resources_config *rc, const char *tpath)
{
	double cpu;
	uint64_t bytes;
	int64_t gpu;
	if (!cod_str_empty(rc->cpu) && cod_parse_cpu(rc->cpu, &cpu) < 0)
		problem(p, "%s.Resources.CPU: \"%s\" is not a CPU quantity; use e.g. 500m or 2", tpath, rc->cpu);
	if (!cod_str_empty(rc->memory) && cod_parse_bytes(rc->memory, &bytes) < 0)
		problem(p, "%s.Resources.Memory: \"%s\" is not a size; use e.g. 512Mb or 2Gi", tpath, rc->memory);
	if (!cod_str_empty(rc->disk) && cod_parse_bytes(rc->disk, &bytes) < 0)
		problem(p, "%s.Resources.Disk: \"%s\" is not a size; use e.g. 512Mb or 2Gi", tpath, rc->disk);
	if (!cod_str_empty(rc->gpu) && (cod_parse_i64(rc->gpu, &gpu) < 0 || gpu < 0))
		problem(p, "%s.Resources.GPU: \"%s\" is not a GPU count; use a whole number such as 1", tpath,
			rc->gpu);
}

static void check_network(struct cod_problems *p, const struct cod_network *n, const char *tpath)
{
	const char *type = cod_network_type_name(n->type);
	if (n->domains.n && n->type != COD_NET_HTTP)
		problem(p, "%s.Network.Domains: only allowed with Type HTTP, not %s", tpath, type);
	for (size_t i = 0; i < n->domains.n; i++)
		if (cod_str_empty(n->domains.items[i]))
			problem(p, "%s.Network.Domains[%zu]: must not be empty", tpath, i);
	bool ports_ok = n->type == COD_NET_HOST || n->type == COD_NET_FULL || n->type == COD_NET_BRIDGE;
	if (n->nports && !ports_ok)
		problem(p, "%s.Network.Ports: only allowed with Type Host, Full or Bridge, not %s", tpath, type);
	for (size_t i = 0; i < n->nports; i++) {
		const struct cod_port *pt = &n->ports[i];
		if (!port_name_ok(pt->name))
			problem(p, "%s.Network.Ports[%zu].Name: \"%s\" must be a name usable in an environment "
				   "variable (letters, digits and _, not starting with a digit)",
				tpath, i, pt->name ? pt->name : "");
		for (size_t k = 0; k < i && pt->name; k++)
			if (n->ports[k].name && !strcmp(n->ports[k].name, pt->name))
				problem(p, "%s.Network.Ports[%zu].Name: \"%s\" is also the name of Ports[%zu]", tpath,
					i, pt->name, k);
		if (pt->static_port && (pt->static_port < 1024 || pt->static_port > 65535))
			problem(p, "%s.Network.Ports[%zu].Static: %lld is not a port from 1024 to 65535", tpath, i,
				(long long)pt->static_port);
		if (pt->target && n->type != COD_NET_BRIDGE)
			problem(p, "%s.Network.Ports[%zu].Target: only allowed with network Type Bridge", tpath, i);
		else if (pt->target < 0 || pt->target > 65535)
			problem(p, "%s.Network.Ports[%zu].Target: %lld is not a port from 1 to 65535", tpath, i,
				(long long)pt->target);
		if (!cod_str_empty(pt->host_network) && !ip_ok(pt->host_network))
			problem(p, "%s.Network.Ports[%zu].HostNetwork: \"%s\" is not an IP address", tpath, i,
				pt->host_network);
	}
}

static void check_timeouts(struct cod_problems *p, const struct cod_timeouts *to, const char *tpath)
{
	bool neg = false;
	if (to->execution_timeout < 0) {
		problem(p, "%s.Timeouts.ExecutionTimeout: must not be negative, got %lld", tpath,
			(long long)to->execution_timeout);
		neg = true;
	}
	if (to->queue_timeout < 0) {
		problem(p, "%s.Timeouts.QueueTimeout: must not be negative, got %lld", tpath,
			(long long)to->queue_timeout);
		neg = true;
	}
	if (to->total_timeout < 0) {
		problem(p, "%s.Timeouts.TotalTimeout: must not be negative, got %lld", tpath,
			(long long)to->total_timeout);
		neg = true;
	}
	/* Compare in unsigned space: both are non-negative here and the sum of
	 * two int64 maxima fits in a uint64. */
	if (!neg && to->total_timeout > 0 &&
	    (uint64_t)to->execution_timeout + (uint64_t)to->queue_timeout > (uint64_t)to->total_timeout)
		problem(p, "%s.Timeouts: ExecutionTimeout (%lld) + QueueTimeout (%lld) must not exceed "
			   "TotalTimeout (%lld)",
			tpath, (long long)to->execution_timeout, (long long)to->queue_timeout,
			(long long)to->total_timeout);
}

static void check_task(struct cod_problems *p, const struct cod_task *t, size_t i)
{
	char tpath[32];
	snprintf(tpath, sizeof(tpath), "Tasks[%zu]", i);
	if (cod_str_empty(t->name))
		problem(p, "%s.Name: missing; a task needs a name, e.g. main", tpath);

	const char *etype = t->engine.type;
	char *trimmed = etype ? cod_str_trim(xstrdup(etype)) : NULL;
	if (cod_str_empty(trimmed))
		problem(p, "%s.Engine.Type: missing; set the engine, e.g. docker, wasm or noop", tpath);
	else if (cod_spec_type_is(etype, "docker"))
		check_docker(p, t->engine.params, tpath);
	else if (cod_spec_type_is(etype, "wasm"))
		check_wasm(p, t->engine.params, tpath);
	free(trimmed);

	check_publisher(p, &t->publisher, tpath);

	for (size_t k = 0; k < t->env.n; k++) {
		const char *name = t->env.items[k].key;
		if (!env_name_ok(name))
			problem(p, "%s.Env.%s: \"%s\" is not a valid name; use UPPERCASE letters, digits and _, "
				   "starting with a letter",
				tpath, name, name);
		else if (env_reserved(name))
			problem(p, "%s.Env.%s: names starting with BACALHAU_ or COD_ are reserved", tpath, name);
		if (cod_str_empty(t->env.items[k].value))
			problem(p, "%s.Env.%s: the value must not be empty", tpath, name);
	}
	for (size_t k = 0; k < t->meta.n; k++)
		if (!*t->meta.items[k].key)
			problem(p, "%s.Meta: keys must not be empty", tpath);

	check_inputs(p, t, tpath);
	check_results(p, t, tpath);
	check_resources(p, &t->resources, tpath);
	check_network(p, &t->network, tpath);
	check_timeouts(p, &t->timeouts, tpath);
}

int cod_job_validate(const struct cod_job *job, struct cod_error **err)
{
	struct cod_problems p = {0};
	if (!job)
		return cod_error_set(err, COD_E_VALIDATION, "no job given");

	if (job->type == COD_JOB_TYPE_UNSET)
		problem(&p, "Type: missing; set the job type: batch, ops, daemon or service");
	if (!job->ntasks)
		problem(&p, "Tasks: missing; a job needs one task, e.g. Tasks: [{Name: main, Engine: {Type: docker, "
			    "Params: {Image: busybox}}}]");
	else if (job->ntasks > 1)
		problem(&p, "Tasks: a job has exactly one task, got %zu", job->ntasks);

	if (job->count < 0)
		problem(&p, "Count: must not be negative, got %lld", (long long)job->count);
	else if ((job->type == COD_JOB_OPS || job->type == COD_JOB_DAEMON) && job->count > 1)
		problem(&p, "Count: must be 0 or omitted for %s jobs (they run once on every matching node), "
			    "got %lld; >1 is invalid",
			cod_job_type_name(job->type), (long long)job->count);
	if (job->priority < 0)
		problem(&p, "Priority: must not be negative, got %lld", (long long)job->priority);

	for (size_t i = 0; i < job->constraints.n; i++) {
		char *msg = NULL;
		if (cod_selector_req_check(&job->constraints.reqs[i], &msg) < 0)
			problem(&p, "Constraints[%zu]: %s", i, msg);
		free(msg);
	}
	for (size_t i = 0; i < job->labels.n; i++)
		if (!*job->labels.items[i].key)
			problem(&p, "Labels: keys must not be empty");
	for (size_t i = 0; i < job->meta.n; i++)
		if (!*job->meta.items[i].key)
			problem(&p, "Meta: keys must not be empty");

	for (size_t i = 0; i < job->ntasks; i++)
		check_task(&p, &job->tasks[i], i);

	if (cod_problems_finish(&p, err) < 0) {
		cod_problems_release(&p);
		return -1;
	}
	return 0;
}
