/*
 * docker.c - `cod docker run [flags] IMAGE [CMD] [ARGS...]`: a job with a
 * docker engine built from flags, then submitted and followed exactly as
 * `cod job run` does (cod_cli_run_job).
 *
 * As with `docker run`, everything after IMAGE belongs to the container:
 * `cod docker run busybox ls -l /` passes "-l" to ls. Flags go before the
 * image; "--" may separate them from it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "common/banned.h"

static const char docker_run_help[] =
    "Run a container image as a job: the engine is docker, the command and\n"
    "arguments after IMAGE become its Parameters. The job is submitted and\n"
    "followed like `cod job run` (--wait, --follow, --id-only, --dry-run).\n"
    "\n"
    "Inputs (-i) are written src=URI,dst=PATH[,opt=KEY=VALUE] or just URI (mounted\n"
    "at /inputs): file:///path (local, opt=rw=true for read-write), http(s)://...\n"
    "(urlDownload), s3://bucket/key (opt=region=..., opt=endpoint=...),\n"
    "ipfs://CID, data:... (inline).\n"
    "Outputs (-o) are NAME:PATH (a ResultPath); a publisher (-p) stores them:\n"
    "local, noop, ipfs, s3://bucket/prefix.\n"
    "\n"
    "Examples:\n"
    "  cod docker run busybox echo hello\n"
    "  cod docker run --memory 256Mi --cpu 500m -o out:/outputs -p local \\\n"
    "      busybox sh -c 'date > /outputs/now'\n"
    "  cod docker run -i src=file:///data/in,dst=/in --network None alpine wc -l /in/x\n"
    "  cod docker run --target all --entrypoint /bin/uname busybox -a\n";

/* Flags (of this command and the global ones) that take a value: the
 * pre-scan that finds IMAGE must skip their values. */
static bool takes_value(const struct cod_flag *flags, const char *arg)
{
	static const char *const global_long[] = {"api-host", "api-port", "config", "data-dir", "log-level"};
	if (arg[1] == '-') {
		if (strchr(arg, '='))
			return false;
		for (size_t i = 0; i < COD_ARRAY_SIZE(global_long); i++)
			if (!strcmp(arg + 2, global_long[i]))
				return true;
		for (const struct cod_flag *f = flags; f->long_name; f++)
			if (!strcmp(arg + 2, f->long_name))
				return f->type != COD_FLAG_BOOL;
		return false;
	}
	if (arg[2])
		return false; /* -xVALUE */
	if (arg[1] == 'c')
		return true;
	for (const struct cod_flag *f = flags; f->long_name; f++)
		if (f->short_name == arg[1])
			return f->type != COD_FLAG_BOOL;
	return false;
}

/* -i: "URI", "URI,dst=PATH,opt=K=V" or "src=URI,dst=PATH,...". A data:
 * URI may hold commas itself: the options start at the first ",dst=",
 * ",src=" or ",opt=". */
static int parse_input(const char *text, json_t **out, struct cod_error **err)
{
	*out = NULL;
	cleanup_free char *copy = xstrdup(text);
	const char *src = NULL, *dst = NULL;
	cleanup_json json_t *opts = json_object();
	char *rest = copy;
	if (!cod_str_has_prefix(copy, "src=") && !cod_str_has_prefix(copy, "dst=") &&
	    !cod_str_has_prefix(copy, "opt=")) {
		/* a bare URI first */
		char *cut = NULL;
		static const char *const keys[] = {",dst=", ",src=", ",opt="};
		for (size_t i = 0; i < COD_ARRAY_SIZE(keys); i++) {
			char *k = strstr(copy, keys[i]);
			if (k && (!cut || k < cut))
				cut = k;
		}
		src = copy;
		rest = NULL;
		if (cut) {
			*cut = '\0';
			rest = cut + 1;
		}
	}
	for (char *p = rest; p && *p;) {
		char *comma = cod_str_has_prefix(p, "src=data:") ? NULL : strchr(p, ',');
		if (comma)
			*comma = '\0';
		if (cod_str_has_prefix(p, "src="))
			src = p + 4;
		else if (cod_str_has_prefix(p, "dst="))
			dst = p + 4;
		else if (cod_str_has_prefix(p, "opt=")) {
			char *eq = strchr(p + 4, '=');
			if (!eq)
				return cod_error_set(err, COD_E_USAGE,
						     "flag --input \"%s\": opt needs key=value", text);
			*eq = '\0';
			json_object_set_new(opts, p + 4, json_string(eq + 1));
		} else {
			return cod_error_set(err, COD_E_USAGE,
					     "flag --input \"%s\": \"%s\" is not src=, dst= or opt=", text,
					     p);
		}
		p = comma ? comma + 1 : NULL;
	}
	if (cod_str_empty(src))
		return cod_error_set(err, COD_E_USAGE, "flag --input \"%s\": no source URI", text);
	if (!dst)
		dst = "/inputs";
	json_t *source = NULL;
	if (cod_str_has_prefix(src, "file://") || src[0] == '/') {
		const char *path = cod_str_has_prefix(src, "file://") ? src + 7 : src;
		json_t *rw = json_object_get(opts, "rw");
		source =
		    json_pack("{s:s, s:{s:s, s:b}}", "Type", "local", "Params", "SourcePath", path,
			      "ReadWrite", json_is_string(rw) && !strcasecmp(json_string_value(rw), "true"));
	} else if (cod_str_has_prefix(src, "http://") || cod_str_has_prefix(src, "https://")) {
		source = json_pack("{s:s, s:{s:s}}", "Type", "urlDownload", "Params", "URL", src);
	} else if (cod_str_has_prefix(src, "ipfs://")) {
		source = json_pack("{s:s, s:{s:s}}", "Type", "ipfs", "Params", "CID", src + 7);
	} else if (cod_str_has_prefix(src, "s3://")) {
		const char *bucket = src + 5;
		const char *slash = strchr(bucket, '/');
		cleanup_free char *b = slash ? xstrndup(bucket, (size_t)(slash - bucket)) : xstrdup(bucket);
		source = json_pack("{s:s, s:{s:s, s:s}}", "Type", "s3", "Params", "Bucket", b, "Key",
				   slash ? slash + 1 : "");
		json_t *params = json_object_get(source, "Params");
		const char *k;
		json_t *v;
		json_object_foreach (opts, k, v) {
			if (!strcasecmp(k, "region"))
				json_object_set(params, "Region", v);
			else if (!strcasecmp(k, "endpoint"))
				json_object_set(params, "Endpoint", v);
		}
	} else if (cod_str_has_prefix(src, "data:")) {
		source = json_pack("{s:s, s:{s:s}}", "Type", "inline", "Params", "URL", src);
	} else {
		return cod_error_set(
		    err, COD_E_USAGE,
		    "flag --input \"%s\": unknown scheme; use file://, http(s)://, s3://, ipfs:// or data:",
		    text);
	}
	*out = json_pack("{s:o, s:s}", "Source", source, "Target", dst);
	return 0;
}

static json_t *parse_publisher(const char *text)
{
	if (cod_str_has_prefix(text, "s3://")) {
		const char *bucket = text + 5;
		const char *slash = strchr(bucket, '/');
		cleanup_free char *b = slash ? xstrndup(bucket, (size_t)(slash - bucket)) : xstrdup(bucket);
		return json_pack("{s:s, s:{s:s, s:s}}", "Type", "s3", "Params", "Bucket", b, "Key",
				 slash ? slash + 1 : "");
	}
	if (cod_str_has_prefix(text, "ipfs://"))
		text = "ipfs";
	return json_pack("{s:s}", "Type", text);
}

/* Split repeatable "a=b,c=d" values into a map. */
static int add_labels(json_t *map, const struct cod_strlist *vals, const char *flag, struct cod_error **err)
{
	for (size_t i = 0; i < vals->n; i++) {
		cleanup_free char *copy = xstrdup(vals->items[i]);
		for (char *p = copy; p && *p;) {
			char *comma = strchr(p, ',');
			if (comma)
				*comma = '\0';
			char *eq = strchr(p, '=');
			if (!eq || eq == p)
				return cod_error_set(err, COD_E_USAGE, "flag --%s \"%s\": write key=value",
						     flag, p);
			*eq = '\0';
			json_object_set_new(map, cod_str_trim(p), json_string(eq + 1));
			p = comma ? comma + 1 : NULL;
		}
	}
	return 0;
}

static json_t *strings(char **items, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(items[i]));
	return a;
}

struct run_flags {
	struct cod_strlist entrypoint, env, inputs, outputs, labels, constraints;
	const char *workdir, *publisher, *cpu, *memory, *disk, *gpu, *network, *target, *name, *ns;
	int64_t timeout, queue_timeout, count, priority;
	bool count_set, priority_set;
};

static void run_flags_release(struct run_flags *f)
{
	cod_strlist_release(&f->entrypoint);
	cod_strlist_release(&f->env);
	cod_strlist_release(&f->inputs);
	cod_strlist_release(&f->outputs);
	cod_strlist_release(&f->labels);
	cod_strlist_release(&f->constraints);
}

static struct cod_job *build_job(const struct run_flags *f, const char *image, char **cmd, size_t ncmd,
				 struct cod_error **err)
{
	cleanup_json json_t *params = json_pack("{s:s}", "Image", image);
	if (f->entrypoint.n)
		json_object_set_new(params, "Entrypoint", strings(f->entrypoint.items, f->entrypoint.n));
	if (ncmd)
		json_object_set_new(params, "Parameters", strings(cmd, ncmd));
	if (f->env.n)
		json_object_set_new(params, "EnvironmentVariables", strings(f->env.items, f->env.n));
	if (f->workdir)
		json_object_set_new(params, "WorkingDirectory", json_string(f->workdir));
	json_t *task =
	    json_pack("{s:s, s:{s:s, s:O}}", "Name", "main", "Engine", "Type", "docker", "Params", params);
	cleanup_json json_t *job =
	    json_pack("{s:s, s:o}", "Type", f->target && !strcasecmp(f->target, "all") ? "ops" : "batch",
		      "Tasks", json_pack("[o]", task));
	if (f->name)
		json_object_set_new(job, "Name", json_string(f->name));
	if (f->ns)
		json_object_set_new(job, "Namespace", json_string(f->ns));
	if (f->count_set)
		json_object_set_new(job, "Count", json_integer(f->count));
	if (f->priority_set)
		json_object_set_new(job, "Priority", json_integer(f->priority));
	if (f->labels.n) {
		json_t *labels = json_object();
		json_object_set_new(job, "Labels", labels);
		if (add_labels(labels, &f->labels, "labels", err) < 0)
			return NULL;
	}
	json_t *res = json_object();
	if (f->cpu)
		json_object_set_new(res, "CPU", json_string(f->cpu));
	if (f->memory)
		json_object_set_new(res, "Memory", json_string(f->memory));
	if (f->disk)
		json_object_set_new(res, "Disk", json_string(f->disk));
	if (f->gpu)
		json_object_set_new(res, "GPU", json_string(f->gpu));
	if (json_object_size(res))
		json_object_set_new(task, "Resources", res);
	else
		json_decref(res);
	if (f->network)
		json_object_set_new(task, "Network", json_pack("{s:s}", "Type", f->network));
	if (f->timeout || f->queue_timeout) {
		json_t *t = json_object();
		if (f->timeout)
			json_object_set_new(t, "ExecutionTimeout", json_integer(f->timeout));
		if (f->queue_timeout)
			json_object_set_new(t, "QueueTimeout", json_integer(f->queue_timeout));
		json_object_set_new(task, "Timeouts", t);
	}
	if (f->inputs.n) {
		json_t *ins = json_array();
		json_object_set_new(task, "InputSources", ins);
		for (size_t i = 0; i < f->inputs.n; i++) {
			json_t *in;
			if (parse_input(f->inputs.items[i], &in, err) < 0)
				return NULL;
			json_array_append_new(ins, in);
		}
	}
	if (f->outputs.n) {
		json_t *outs = json_array();
		json_object_set_new(task, "ResultPaths", outs);
		for (size_t i = 0; i < f->outputs.n; i++) {
			const char *o = f->outputs.items[i];
			const char *colon = strchr(o, ':');
			if (!colon || colon == o || !colon[1])
				return cod_error_set(
					   err, COD_E_USAGE,
					   "flag --output \"%s\": write NAME:PATH, e.g. outputs:/outputs", o),
				       NULL;
			cleanup_free char *name = xstrndup(o, (size_t)(colon - o));
			json_array_append_new(outs, json_pack("{s:s, s:s}", "Name", name, "Path", colon + 1));
		}
	}
	if (f->publisher)
		json_object_set_new(task, "Publisher", parse_publisher(f->publisher));
	struct cod_job *j = cod_job_from_json(job, err);
	if (!j)
		return NULL;
	for (size_t i = 0; i < f->constraints.n; i++) {
		struct cod_selector sel;
		if (cod_selector_parse(f->constraints.items[i], &sel, err) < 0) {
			cod_error_wrap(err, "flag --constraints");
			cod_job_free(j);
			return NULL;
		}
		size_t total = cod_add_size(j->constraints.n, sel.n);
		j->constraints.reqs =
		    xrealloc(j->constraints.reqs, cod_mul_size(total ? total : 1, sizeof(*sel.reqs)));
		for (size_t k = 0; k < sel.n; k++)
			j->constraints.reqs[j->constraints.n++] = sel.reqs[k];
		free(sel.reqs);
	}
	return j;
}

static int cmd_run(struct cod_cli *cli, int argc, char **argv)
{
	struct run_flags f = {0};
	bool wait = true, id_only = false, dry_run = false, force = false, hide_warnings = false,
	     follow = false;
	int64_t wait_timeout = 600;
	struct cod_flag flags[] = {
	    {"entrypoint", 0, COD_FLAG_LIST, &f.entrypoint, "ARG",
	     "replace the image's entrypoint; repeat for more words (\"\" = none)", NULL},
	    {"workdir", 'w', COD_FLAG_STR, &f.workdir, "DIR", "working directory in the container (absolute)",
	     NULL},
	    {"env", 'e', COD_FLAG_LIST, &f.env, "K=V", "an environment variable (repeatable)", NULL},
	    {"input", 'i', COD_FLAG_LIST, &f.inputs, "SPEC", "an input: src=URI,dst=PATH or URI (repeatable)",
	     NULL},
	    {"output", 'o', COD_FLAG_LIST, &f.outputs, "NAME:PATH", "a result path (repeatable)", NULL},
	    {"publisher", 'p', COD_FLAG_STR, &f.publisher, "TYPE",
	     "where results go: local, noop, ipfs, s3://b/k", NULL},
	    {"cpu", 0, COD_FLAG_STR, &f.cpu, "CPU", "CPU, e.g. 500m or 2", NULL},
	    {"memory", 0, COD_FLAG_STR, &f.memory, "SIZE", "memory, e.g. 256Mi", NULL},
	    {"disk", 0, COD_FLAG_STR, &f.disk, "SIZE", "disk for writes and outputs, e.g. 1Gi", NULL},
	    {"gpu", 0, COD_FLAG_STR, &f.gpu, "N", "GPUs", NULL},
	    {"network", 0, COD_FLAG_STR, &f.network, "TYPE", "None (default), Host or Full", NULL},
	    {"timeout", 0, COD_FLAG_INT, &f.timeout, "SECS", "execution timeout in seconds", NULL},
	    {"queue-timeout", 0, COD_FLAG_INT, &f.queue_timeout, "SECS",
	     "how long the job may wait for a node", NULL},
	    {"count", 0, COD_FLAG_INT, &f.count, "N", "executions to run (partitions)", &f.count_set},
	    {"target", 0, COD_FLAG_STR, &f.target, "any|all", "any: one node (batch); all: every node (ops)",
	     NULL},
	    {"constraints", 0, COD_FLAG_LIST, &f.constraints, "SELECTOR",
	     "node label selector, e.g. zone=a,gpu!=none", NULL},
	    {"labels", 'l', COD_FLAG_LIST, &f.labels, "K=V", "job labels (repeatable, or comma-separated)",
	     NULL},
	    {"name", 0, COD_FLAG_STR, &f.name, "NAME", "job name", NULL},
	    {"namespace", 0, COD_FLAG_STR, &f.ns, "NS", "job namespace", NULL},
	    {"priority", 0, COD_FLAG_INT, &f.priority, "N", "job priority", &f.priority_set},
	    {"wait", 0, COD_FLAG_BOOL, &wait, NULL, "wait for the job to finish (default true; --wait=false)",
	     NULL},
	    {"wait-timeout-secs", 0, COD_FLAG_INT, &wait_timeout, "N",
	     "stop waiting after N seconds (default 600)", NULL},
	    {"follow", 'f', COD_FLAG_BOOL, &follow, NULL, "print the job's output as it runs, until it ends",
	     NULL},
	    {"id-only", 0, COD_FLAG_BOOL, &id_only, NULL, "print only the job ID", NULL},
	    {"dry-run", 0, COD_FLAG_BOOL, &dry_run, NULL, "print the job instead of submitting it", NULL},
	    {"force", 0, COD_FLAG_BOOL, &force, NULL, "submit even if the spec is unchanged", NULL},
	    {"hide-warnings", 0, COD_FLAG_BOOL, &hide_warnings, NULL, "do not print warnings", NULL},
	    COD_FLAGS_END,
	};
	/* IMAGE is the first argument that is not a flag or a flag's value;
	 * what follows it is the container's */
	int image_at = argc;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			image_at = i + 1;
			break;
		}
		if (a[0] != '-' || !a[1]) {
			image_at = i;
			break;
		}
		if (takes_value(flags, a))
			i++;
	}
	int flag_argc =
	    image_at < argc && image_at > 0 && !strcmp(argv[image_at - 1], "--") ? image_at - 1 : image_at;
	const char *pos[1];
	int npos = 0;
	int rc = cod_cli_parse(cli, flag_argc, argv, flags, "docker run [flags] IMAGE [CMD] [ARGS...]",
			       docker_run_help, pos, &npos, 0);
	if (rc) {
		rc = cli->help ? 0 : rc;
		goto out;
	}
	if (image_at >= argc) {
		rc = cod_cli_usage_error("docker run", "missing argument IMAGE");
		goto out;
	}
	if (wait_timeout <= 0) {
		rc = cod_cli_usage_error("docker run",
					 "flag --wait-timeout-secs: %lld is not a positive number of seconds",
					 (long long)wait_timeout);
		goto out;
	}
	if (f.target && strcasecmp(f.target, "any") && strcasecmp(f.target, "all")) {
		rc = cod_cli_usage_error("docker run", "flag --target: \"%s\" is not any or all", f.target);
		goto out;
	}
	struct cod_error *err = NULL;
	if (cod_cli_load_config(cli, &err) < 0) {
		rc = cod_cli_fail(err);
		goto out;
	}
	struct cod_job *job =
	    build_job(&f, argv[image_at], argv + image_at + 1, (size_t)(argc - image_at - 1), &err);
	if (!job) {
		rc = cod_cli_fail(err);
		goto out;
	}
	struct cod_strlist warnings = {0};
	struct cod_job_defaults defaults;
	cod_config_job_defaults(&cli->cfg, &defaults);
	cod_job_normalize(job, &defaults, &warnings);
	if (cod_job_validate(job, &err) < 0) {
		cod_job_free(job);
		for (size_t i = 0; i < warnings.n && !hide_warnings; i++)
			fprintf(stderr, "Warning: %s\n", warnings.items[i]);
		cod_strlist_release(&warnings);
		rc = cod_cli_fail(err);
		goto out;
	}
	struct cod_run_opts ro = {.wait = wait,
				  .wait_timeout = wait_timeout,
				  .id_only = id_only,
				  .dry_run = dry_run,
				  .force = force,
				  .hide_warnings = hide_warnings,
				  .follow = follow};
	rc = cod_cli_run_job(cli, job, &warnings, &ro);
out:
	run_flags_release(&f);
	return rc;
}

static const struct cod_command docker_commands[] = {
    {"run", cmd_run, "run a container image as a job"},
    {NULL, NULL, NULL},
};

int cod_cmd_docker(struct cod_cli *cli, int argc, char **argv)
{
	return cod_cli_dispatch(cli, "docker", docker_commands, NULL, argc, argv);
}
