/*
 * logs.c - `cod job logs`: a job's output, read through the orchestrator
 * from the compute nodes (Server-Sent Events of
 * GET /api/v1/orchestrator/jobs/{id}/logs; docs/logs.md). Also the log
 * printer behind `cod job run --follow` and `cod docker run -f`.
 *
 * Lines of the task's stdout go to stdout, those of its stderr to stderr,
 * in the order the task wrote them. When a job has several executions
 * (Count > 1, ops and daemon jobs, or a retry on another node) each line
 * starts with its execution's short ID, "[e-1a2b3c4d] ". Remarks from cod
 * (an execution whose node is gone) go to stderr, starting with "cod: ".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "common/banned.h"

#define JOBS_PATH "/api/v1/orchestrator/jobs"

static void query_add(struct cod_buf *b, const char *key, const char *value)
{
	if (!value || !*value)
		return;
	cleanup_free char *escaped = cod_client_escape(value);
	cod_buf_addf(b, "%c%s=%s", strchr(cod_buf_str(b), '?') ? '&' : '?', key, escaped);
}

static const char *const prefix_colors[] = {"\033[36m", "\033[35m", "\033[33m", "\033[32m", "\033[34m"};

struct printer {
	struct cod_cli *cli;
	bool multi;		  /* prefix every line */
	bool single;		  /* one execution asked for (-e): never prefix */
	struct cod_strlist execs; /* seen, in order */
	bool color_out, color_err;
	bool ended;
	char *job_state;
	struct cod_error *err;
	uint64_t lines;
};

static size_t exec_index(struct printer *p, const char *id)
{
	for (size_t i = 0; i < p->execs.n; i++)
		if (!strcmp(p->execs.items[i], id))
			return i;
	cod_strlist_add(&p->execs, id);
	return p->execs.n - 1;
}

static void print_prefix(struct printer *p, FILE *f, const char *exec_id, size_t idx)
{
	cleanup_free char *short_id = cod_short_id(exec_id);
	if (f == stdout ? p->color_out : p->color_err)
		fprintf(f, "%s[%s]\033[0m ", prefix_colors[idx % COD_ARRAY_SIZE(prefix_colors)], short_id);
	else
		fprintf(f, "[%s] ", short_id);
}

static int on_event(void *arg, const struct cod_sse_event *ev)
{
	struct printer *p = arg;
	cleanup_json json_t *v = json_loads(ev->data, 0, NULL);
	if (!strcmp(ev->event, "end")) {
		const char *state = json_string_value(json_object_get(v, "JobState"));
		free(p->job_state);
		p->job_state = xstrdup(state ? state : "");
		p->ended = true;
		return -1;
	}
	if (!strcmp(ev->event, "error")) {
		const char *msg = json_string_value(json_object_get(v, "error"));
		const char *code = json_string_value(json_object_get(v, "Code"));
		cod_error_set(&p->err, code ? cod_error_code_from_name(code) : COD_E_INTERNAL, "%s",
			      msg ? msg : "the log stream failed");
		return -1;
	}
	if (!strcmp(ev->event, "note")) {
		const char *msg = json_string_value(json_object_get(v, "Message"));
		fflush(stdout);
		fprintf(stderr, "cod: %s\n", msg ? msg : "");
		fflush(stderr);
		return 0;
	}
	json_t *value = json_object_get(v, "value");
	const char *line = json_string_value(json_object_get(value, "Line"));
	const char *exec = json_string_value(json_object_get(value, "ExecutionID"));
	const char *node = json_string_value(json_object_get(value, "NodeID"));
	json_int_t type = json_integer_value(json_object_get(value, "Type"));
	if (!line)
		return 0;
	size_t len = json_string_length(json_object_get(value, "Line"));
	size_t before = p->execs.n;
	size_t idx = exec ? exec_index(p, exec) : 0;
	if (!p->multi && !p->single && p->execs.n > 1 && p->execs.n > before) {
		/* a retry: from now on, say which execution a line is from */
		p->multi = true;
		fflush(stdout);
		fprintf(stderr, "cod: execution %s%s%s starts (a retry); lines carry their execution's ID\n",
			exec, node && *node ? " on node " : "", node && *node ? node : "");
	}
	FILE *f = type == 2 ? stderr : stdout;
	/* keep the two streams in order on a terminal */
	fflush(f == stdout ? stderr : stdout);
	if (p->multi && exec)
		print_prefix(p, f, exec, idx);
	fwrite(line, 1, len, f);
	if (p->multi && (!len || line[len - 1] != '\n'))
		fputc('\n', f);
	fflush(f);
	p->lines++;
	return 0;
}

int cod_cli_print_logs(struct cod_cli *cli, const char *job_ref, const struct cod_logs_opts *o,
		       char **job_state, struct cod_error **err)
{
	if (job_state)
		*job_state = NULL;
	struct printer p = {
	    .cli = cli, .color_out = cod_use_color_fd(cli, 1), .color_err = cod_use_color_fd(cli, 2)};
	p.single = !cod_str_empty(o->execution_id);
	if (!p.single && !o->prefix_known) {
		/* prefix from the start when the job has several executions */
		struct cod_buf path = COD_BUF_INIT;
		cleanup_free char *escaped = cod_client_escape(job_ref);
		cod_buf_addf(&path, JOBS_PATH "/%s", escaped);
		query_add(&path, "namespace", o->namespace_);
		json_t *resp = NULL;
		int rc = cod_client_call(cli, "GET", cod_buf_str(&path), NULL, &resp, err);
		cod_buf_release(&path);
		if (rc < 0)
			return -1;
		json_t *job = json_object_get(resp, "Job");
		const char *type = json_string_value(json_object_get(job, "Type"));
		json_int_t count = json_integer_value(json_object_get(job, "Count"));
		p.multi = count > 1 || (type && (!strcmp(type, "ops") || !strcmp(type, "daemon")));
		json_decref(resp);
	} else if (!p.single) {
		p.multi = o->prefix;
	}
	struct cod_buf path = COD_BUF_INIT;
	cleanup_free char *escaped = cod_client_escape(job_ref);
	cod_buf_addf(&path, JOBS_PATH "/%s/logs", escaped);
	query_add(&path, "namespace", o->namespace_);
	query_add(&path, "execution_id", o->execution_id);
	if (o->follow)
		query_add(&path, "follow", "true");
	if (o->tail >= 0) {
		char n[32];
		snprintf(n, sizeof(n), "%lld", (long long)o->tail);
		query_add(&path, "tail", n);
	}
	if (o->job_version > 0) {
		char n[32];
		snprintf(n, sizeof(n), "%lld", (long long)o->job_version);
		query_add(&path, "job_version", n);
	}
	int rc = cod_client_sse(cli, cod_buf_str(&path), on_event, &p, o->deadline_ms, o->stop, err);
	cod_buf_release(&path);
	fflush(stdout);
	fflush(stderr);
	if (rc == 0 && p.err) {
		cod_error_move(err, &p.err);
		rc = -1;
	} else if (rc == 0 && !p.ended) {
		cod_error_set(err, COD_E_NETWORK, "the log stream ended early (the orchestrator went away?)");
		rc = -1;
	}
	cod_error_free(p.err);
	cod_strlist_release(&p.execs);
	if (job_state && rc == 0)
		*job_state = steal_pointer(&p.job_state);
	free(p.job_state);
	return rc;
}

/* ------------------------------------------------------------ command */

static const char logs_help[] =
    "Print the output of a job's executions, read from the compute nodes that ran\n"
    "them. The task's stdout goes to stdout and its stderr to stderr, in the order\n"
    "it was written. With several executions (Count > 1, ops and daemon jobs, a\n"
    "retry) every line starts with its execution's short ID; -e picks one\n"
    "execution (a unique prefix of its ID is enough).\n\n"
    "--follow keeps printing as the job runs, from the moment it is submitted:\n"
    "it waits for the first execution, picks up executions that start later\n"
    "(a retry on another node) and returns when the job is finished. --tail N\n"
    "starts at the last N lines of each execution.\n\n"
    "Examples:\n"
    "  cod job logs j-6f9c2a1b\n"
    "  cod job logs j-6f9c2a1b --follow\n"
    "  cod job logs my-job --tail 20 -e e-3c1d";

int cod_cmd_job_logs(struct cod_cli *cli, int argc, char **argv)
{
	bool follow = false;
	int64_t tail = -1, version = 0;
	const char *exec = NULL, *ns = NULL;
	bool tail_seen = false;
	struct cod_flag flags[] = {
	    {"follow", 'f', COD_FLAG_BOOL, &follow, NULL, "keep printing until the job is finished", NULL},
	    {"tail", 't', COD_FLAG_INT, &tail, "N", "start at the last N lines of each execution",
	     &tail_seen},
	    {"execution-id", 'e', COD_FLAG_STR, &exec, "ID", "only this execution (full ID or unique prefix)",
	     NULL},
	    {"version", 'v', COD_FLAG_INT, &version, "N", "executions of this job version (default: current)",
	     NULL},
	    {"namespace", 0, COD_FLAG_STR, &ns, "NS", "namespace of the job (default \"default\")", NULL},
	    {"no-style", 0, COD_FLAG_BOOL, &cli->out.no_style, NULL, "no colour", NULL},
	    COD_FLAGS_END,
	};
	const char *pos[1];
	int npos;
	int rc = cod_cli_parse(cli, argc, argv, flags, "job logs ID [flags]", logs_help, pos, &npos, 1);
	if (rc)
		return cli->help ? 0 : rc;
	if (npos < 1)
		return cod_cli_usage_error("job logs", "missing argument ID");
	if (tail_seen && tail < 0)
		return cod_cli_usage_error("job logs", "flag --tail: %lld is negative", (long long)tail);
	if (version < 0)
		return cod_cli_usage_error("job logs", "flag --version: %lld is negative",
					   (long long)version);
	struct cod_error *err = NULL;
	if (cod_cli_load_config(cli, &err) < 0)
		return cod_cli_fail(err);
	struct cod_logs_opts o = {.namespace_ = ns,
				  .execution_id = exec,
				  .tail = tail_seen ? tail : -1,
				  .follow = follow,
				  .job_version = version};
	if (cod_cli_print_logs(cli, pos[0], &o, NULL, &err) < 0) {
		if (err && err->code == COD_E_NOT_FOUND && !err->hint)
			cod_error_hint(err, "list jobs with 'cod job list'");
		return cod_cli_fail(err);
	}
	return 0;
}
