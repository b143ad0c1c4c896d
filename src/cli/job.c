/*
 * job.c - `cod job ...`: submit a spec (run, validate), list and inspect
 * jobs (list, describe, history, executions, versions), and change them
 * (stop, rerun). Every command except validate talks to the REST API of
 * the orchestrator (reference/bacalhau.md §4) and decodes its answers with
 * the model's decoders, so tables show what the server stored.
 */
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli/cli.h"
#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "common/banned.h"

#define JOBS_PATH "/api/v1/orchestrator/jobs"
#define POLL_INTERVAL_MS 500

/* ------------------------------------------------------------ helpers */

/* Append "?key=value" or "&key=value" (value escaped); NULL values are
 * left out. */
static void query_add(struct cod_buf *b, const char *key, const char *value)
{
	if (!value)
		return;
	cleanup_free char *escaped = cod_client_escape(value);
	cod_buf_addf(b, "%c%s=%s", strchr(cod_buf_str(b), '?') ? '&' : '?', key, escaped);
}

static void query_add_int(struct cod_buf *b, const char *key, int64_t value)
{
	char text[32];
	snprintf(text, sizeof(text), "%lld", (long long)value);
	query_add(b, key, text);
}

/* "/api/v1/orchestrator/jobs/<ref><suffix>" with the reference escaped. */
static void job_path(struct cod_buf *b, const char *ref, const char *suffix)
{
	cleanup_free char *escaped = cod_client_escape(ref);
	cod_buf_addf(b, JOBS_PATH "/%s%s", escaped, suffix ? suffix : "");
}

/* Namespace query parameter: only when given, so the server's default
 * applies otherwise. */
static void query_namespace(struct cod_buf *b, const char *ns)
{
	if (ns && *ns)
		query_add(b, "namespace", ns);
}

static int call_get(struct cod_cli *cli, struct cod_buf *path, json_t **out, struct cod_error **err)
{
	return cod_client_call(cli, "GET", cod_buf_str(path), NULL, out, err);
}

/* The "Items" array of a list answer (borrowed; an empty array when the
 * answer has none). */
static json_t *items_of(json_t *resp)
{
	json_t *items = json_object_get(resp, "Items");
	if (!json_is_array(items)) {
		items = json_array();
		json_object_set_new(resp, "Items", items);
	}
	return items;
}

/* The "Items" of an object member ({"History": {"Items": [...]}}). */
static json_t *member_items(json_t *resp, const char *key)
{
	json_t *m = json_object_get(resp, key);
	if (!json_is_object(m)) {
		m = json_object();
		json_object_set_new(resp, key, m);
	}
	return items_of(m);
}

static const char *next_token_of(const json_t *resp)
{
	const char *t = json_string_value(json_object_get(resp, "NextToken"));
	return t && *t ? t : NULL;
}

static int bad_answer(struct cod_error **err, const char *what)
{
	return cod_error_wrap(err, "the API sent an invalid %s", what);
}

/* Decode the "Job" member of an answer. */
static struct cod_job *job_of(const json_t *resp, struct cod_error **err)
{
	const json_t *v = json_object_get(resp, "Job");
	if (!json_is_object(v)) {
		cod_error_set(err, COD_E_INTERNAL, "the API answer has no \"Job\"");
		return NULL;
	}
	struct cod_job *job = cod_job_from_json(v, err);
	if (!job)
		bad_answer(err, "job");
	return job;
}

/* Fetch a job by ID, short ID or name. */
static struct cod_job *fetch_job(struct cod_cli *cli, const char *ref, const char *ns, struct cod_error **err)
{
	cleanup_buf struct cod_buf path = COD_BUF_INIT;
	job_path(&path, ref, NULL);
	query_namespace(&path, ns);
	cleanup_json json_t *resp = NULL;
	if (call_get(cli, &path, &resp, err) < 0)
		return NULL;
	return job_of(resp, err);
}

static void print_warnings(const struct cod_strlist *warnings, bool hide)
{
	if (hide)
		return;
	for (size_t i = 0; i < warnings->n; i++)
		fprintf(stderr, "Warning: %s\n", warnings->items[i]);
}

static void add_unique(struct cod_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->items[i], s))
			return;
	cod_strlist_add(l, s);
}

/* A time cell: the age ("3m ago"), or the full time with --wide. */
static char *time_cell(const struct cod_cli *cli, int64_t unix_ns)
{
	return cli->out.wide ? cod_fmt_time(unix_ns) : cod_fmt_age(unix_ns);
}

static char *id_cell(const struct cod_cli *cli, const char *id)
{
	return cli->out.wide ? xstrdup(id ? id : "") : cod_short_id(id);
}

static char *u64_text(uint64_t v)
{
	return xasprintf("%llu", (unsigned long long)v);
}

/* One item of an answer as a table row: decode it and add its cells; -1
 * with err set when it does not decode. */
typedef int (*item_row_fn)(struct cod_cli *cli, struct cod_table *t, json_t *item, struct cod_error **err);

/* The items of an answer: as they are with a structured --output, else a
 * table, one row per item; widths (column, width pairs ending with 0
 * width) caps columns. what names an item in the error. 0 or the exit
 * code. */
static int print_items(struct cod_cli *cli, json_t *items, const char *const *headers, size_t ncols,
		       const size_t (*widths)[2], const char *what, item_row_fn row)
{
	if (cod_output_structured(&cli->out)) {
		cod_print_value(items, &cli->out, stdout);
		return 0;
	}
	struct cod_table t;
	cod_table_init(&t, ncols, headers);
	for (; widths && (*widths)[1]; widths++)
		cod_table_set_width(&t, (*widths)[0], (*widths)[1]);
	size_t i;
	json_t *item;
	json_array_foreach (items, i, item) {
		struct cod_error *err = NULL;
		if (row(cli, &t, item, &err) < 0) {
			cod_table_release(&t);
			bad_answer(&err, what);
			return cod_cli_fail(err);
		}
	}
	cod_table_print(&t, &cli->out, stdout);
	cod_table_release(&t);
	return 0;
}

static char *labels_text(const struct cod_kvlist *labels)
{
	struct cod_buf b = COD_BUF_INIT;
	for (size_t i = 0; i < labels->n; i++)
		cod_buf_addf(&b, "%s%s=%s", i ? ", " : "", labels->items[i].key, labels->items[i].value);
	cod_buf_addstr(&b, "");
	return cod_buf_detach(&b, NULL);
}

static void print_more_hint(const char *cmd, const char *token, const char *ns)
{
	fprintf(stderr, "To fetch more records use: cod %s --next-token %s", cmd, token);
	if (ns && *ns && strcmp(ns, "default"))
		fprintf(stderr, " --namespace '%s'", ns);
	fputc('\n', stderr);
}

/* Read, parse, normalize (with the defaults of the client's config) and
 * validate a job spec file; "-" is stdin. */
static struct cod_job *load_job(struct cod_cli *cli, const char *file, const char *ns, const struct cod_template *tpl,
				struct cod_strlist *warnings, struct cod_error **err)
{
	cleanup_free char *raw = NULL, *text = NULL;
	size_t raw_len = 0, len = 0;
	if (cod_read_file(file, 0, &raw, &raw_len, err) < 0)
		return NULL;
	const char *name = strcmp(file, "-") ? file : "stdin";
	struct cod_template none = {0};
	if (cod_template_expand(tpl ? tpl : &none, raw ? raw : "", raw_len, &text, &len, err) < 0) {
		if ((*err)->code != COD_E_USAGE)
			cod_error_wrap(err, "job spec \"%s\"", name);
		return NULL;
	}
	struct cod_job *job = cod_job_parse(text ? text : "", len, err);
	if (!job) {
		cod_error_wrap(err, "job spec \"%s\"", name);
		return NULL;
	}
	if (ns && *ns) {
		free(job->namespace_);
		job->namespace_ = xstrdup(ns);
	}
	struct cod_job_defaults defaults;
	cod_config_job_defaults(&cli->cfg, &defaults);
	cod_job_normalize(job, &defaults, warnings);
	if (cod_job_validate(job, err) < 0) {
		cod_error_wrap(err, "job spec \"%s\"", name);
		cod_job_free(job);
		return NULL;
	}
	return job;
}

/* "job describe ID|NAME [flags]" -> "job describe" and "ID|NAME". */
static void split_usage(const char *usage, char *cmd, size_t cmd_size, char *arg, size_t arg_size)
{
	const char *p = usage;
	const char *end = usage + strlen(usage);
	while (*p) {
		const char *sp = strchr(p, ' ');
		if (!sp) {
			p = end;
			break;
		}
		char c = sp[1];
		if (c == '[' || c == '-' || (c >= 'A' && c <= 'Z')) {
			p = sp;
			break;
		}
		p = sp + 1;
	}
	snprintf(cmd, cmd_size, "%.*s", (int)(p - usage), usage);
	const char *a = *p ? p + 1 : p;
	const char *a_end = strchr(a, ' ');
	snprintf(arg, arg_size, "%.*s", (int)(a_end ? a_end - a : (ptrdiff_t)strlen(a)), a);
}

/* Common start of every subcommand: parse flags, check the number of
 * arguments and the output format, load config. Returns -1 to go on, else
 * the exit code to return. */
static int start(struct cod_cli *cli, int argc, char **argv, const struct cod_flag *flags, const char *usage,
		 const char *help, const char **pos, int *npos, int min_pos, int max_pos, const char *formats)
{
	int rc = cod_cli_parse(cli, argc, argv, flags, usage, help, pos, npos, max_pos);
	if (rc)
		return cli->help ? 0 : rc;
	char cmd[64], arg[64];
	split_usage(usage, cmd, sizeof(cmd), arg, sizeof(arg));
	if (*npos < min_pos)
		return cod_cli_usage_error(cmd, "missing argument %s", arg);
	if (formats && cod_output_check(&cli->out, formats, cmd) < 0)
		return 2;
	struct cod_error *err = NULL;
	if (cod_cli_load_config(cli, &err) < 0)
		return cod_cli_fail(err);
	return -1;
}

/* ---------------------------------------------------------------- run */

/* Ctrl-C while waiting: stop following, leave the job running. */
static volatile sig_atomic_t interrupted;

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && !interrupted)
		;
}

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* ------------------------------------------------------------ progress */

/*
 * Progress of a job while `job run` waits: one line per state change,
 * from the job's history (and, for a running "Preparing" phase, the
 * execution's live message such as "pulling image 12.3/45.0 MB"):
 *
 *   Job submitted
 *   Scheduled on node-1
 *   Preparing (pulling image 12.3/45.0 MB)
 *   Running
 *   Completed in 1.2s
 *
 * Executions are told apart by their short ID when there are several
 * (Count > 1); a retry says so. On a terminal a spinner line under the
 * last one shows the current phase and the time it has taken; in a pipe
 * there is no spinner and a phase's message updates at most every 5 s.
 */
struct exec_track {
	char *id;
	char *node;
	int state;
	char *message;	    /* the last message shown */
	int64_t shown_ms;   /* when it was shown */
	size_t index;	    /* 0 for the first execution */
};

struct progress {
	struct cod_cli *cli;
	bool spinner; /* stdout is a terminal */
	bool color;
	bool multi;   /* Count > 1: prefix execution lines */
	uint64_t last_seq;
	struct exec_track *ex;
	size_t nex, aex;
	char *status; /* what the spinner line says */
	int64_t status_since;
	bool spinner_drawn;
	unsigned frame;
};

static struct exec_track *track(struct progress *p, const char *id)
{
	for (size_t i = 0; i < p->nex; i++)
		if (!strcmp(p->ex[i].id, id))
			return &p->ex[i];
	COD_GROW(p->ex, p->aex, p->nex + 1);
	struct exec_track *t = &p->ex[p->nex];
	memset(t, 0, sizeof(*t));
	t->id = xstrdup(id);
	t->index = p->nex++;
	return t;
}

static void progress_release(struct progress *p)
{
	for (size_t i = 0; i < p->nex; i++) {
		free(p->ex[i].id);
		free(p->ex[i].node);
		free(p->ex[i].message);
	}
	free(p->ex);
	free(p->status);
}

static void clear_spinner(struct progress *p)
{
	if (p->spinner_drawn) {
		fputs("\r\033[K", stdout);
		p->spinner_drawn = false;
	}
}

static void draw_spinner(struct progress *p)
{
	static const char *const frames[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};
	if (!p->spinner || !p->status)
		return;
	cleanup_free char *took = cod_fmt_duration_ns((cod_mono_ms() - p->status_since) * 1000000LL);
	fprintf(stdout, "\r\033[K%s %s (%s)", frames[p->frame++ % COD_ARRAY_SIZE(frames)], p->status, took);
	fflush(stdout);
	p->spinner_drawn = true;
}

/* Print one progress line (and make it what the spinner shows). */
static void progress_line(struct progress *p, const struct exec_track *t, const char *color, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void progress_line(struct progress *p, const struct exec_track *t, const char *color, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *text = xvasprintf(fmt, ap);
	va_end(ap);
	clear_spinner(p);
	cleanup_free char *sid = t && p->multi ? cod_short_id(t->id) : NULL;
	cleanup_free char *line = sid ? xasprintf("[%s] %s", sid, text) : xstrdup(text);
	if (color && p->color)
		printf("  %s%s\033[0m\n", color, line);
	else
		printf("  %s\n", line);
	fflush(stdout);
	free(p->status);
	p->status = steal_pointer(&line);
	p->status_since = cod_mono_ms();
}

#define GREEN "\033[32m"
#define RED "\033[31m"
#define YELLOW "\033[33m"

static void exec_event(struct progress *p, const struct cod_history_event *h, struct cod_execution **execs, size_t ne)
{
	struct exec_track *t = track(p, h->execution_id);
	const char *node = NULL;
	for (size_t i = 0; i < ne; i++)
		if (!strcmp(execs[i]->id, t->id))
			node = execs[i]->node_id;
	if (node && !t->node)
		t->node = xstrdup(node);
	const char *msg = h->message ? h->message : "";
	int state = h->exec_state_new;
	t->state = state;
	free(t->message);
	t->message = xstrdup(msg);
	t->shown_ms = cod_mono_ms();
	switch (state) {
	case COD_EXEC_NEW:
		if (t->index > 0 && !p->multi)
			progress_line(p, t, YELLOW, "Retrying: scheduled on %s", t->node ? t->node : "a node");
		else
			progress_line(p, t, NULL, "Scheduled on %s", t->node ? t->node : "a node");
		break;
	case COD_EXEC_PREPARING:
		if (*msg && strcmp(msg, "preparing"))
			progress_line(p, t, NULL, "Preparing (%s)", msg);
		else
			progress_line(p, t, NULL, "Preparing");
		break;
	case COD_EXEC_RUNNING:
		progress_line(p, t, NULL, "Running");
		break;
	case COD_EXEC_PUBLISHING:
		progress_line(p, t, NULL, "Publishing");
		break;
	case COD_EXEC_COMPLETED:
		if (p->multi)
			progress_line(p, t, GREEN, "Completed");
		break;
	case COD_EXEC_FAILED:
		progress_line(p, t, RED, "Failed%s%s%s", *msg ? " (" : "", msg, *msg ? ")" : "");
		break;
	case COD_EXEC_CANCELLED:
		progress_line(p, t, NULL, "Cancelled%s%s%s", *msg ? " (" : "", msg, *msg ? ")" : "");
		break;
	case COD_EXEC_ASK_FOR_BID_REJECTED:
	case COD_EXEC_BID_REJECTED:
		progress_line(p, t, YELLOW, "Rejected by %s%s%s%s", t->node ? t->node : "the node", *msg ? " (" : "",
			      msg, *msg ? ")" : "");
		break;
	default:
		break; /* bids: not worth a line */
	}
}

static void job_event(struct progress *p, const struct cod_history_event *h)
{
	const char *msg = h->message ? h->message : "";
	if (!h->has_job_state) {
		if (*msg)
			progress_line(p, NULL, NULL, "%s", msg);
		return;
	}
	switch (h->job_state_new) {
	case COD_JOB_PENDING:
		progress_line(p, NULL, NULL, "%s", *msg ? msg : "Job submitted");
		break;
	case COD_JOB_QUEUED:
		progress_line(p, NULL, YELLOW, "Queued%s%s%s", *msg ? " (" : "", msg, *msg ? ")" : "");
		break;
	default:
		break; /* Running: the executions say more; the end: after the wait */
	}
}

/* Live messages of a phase ("pulling image 30/45 MB"), which change
 * without history events. */
static void live_messages(struct progress *p, struct cod_execution **execs, size_t ne)
{
	for (size_t i = 0; i < ne; i++) {
		const struct cod_execution *e = execs[i];
		struct exec_track *t = NULL;
		for (size_t k = 0; k < p->nex && !t; k++)
			if (!strcmp(p->ex[k].id, e->id))
				t = &p->ex[k];
		const char *msg = e->compute_state.message ? e->compute_state.message : "";
		if (!t || t->state != COD_EXEC_PREPARING || e->compute_state.type != COD_EXEC_PREPARING || !*msg ||
		    !strcmp(msg, t->message ? t->message : ""))
			continue;
		free(t->message);
		t->message = xstrdup(msg);
		cleanup_free char *sid = p->multi ? cod_short_id(t->id) : NULL;
		if (p->spinner) {
			/* on a terminal the spinner line shows it */
			free(p->status);
			p->status = sid ? xasprintf("[%s] Preparing (%s)", sid, msg) : xasprintf("Preparing (%s)", msg);
		} else if (cod_mono_ms() - t->shown_ms >= 5000) {
			t->shown_ms = cod_mono_ms();
			progress_line(p, t, NULL, "Preparing (%s)", msg);
		}
	}
}

/* One poll: new history events, live messages. */
static int progress_poll(struct progress *p, const char *id, const char *ns, const struct cod_job *job,
			 struct cod_error **err)
{
	cleanup_buf struct cod_buf path = COD_BUF_INIT;
	job_path(&path, id, "/history");
	query_namespace(&path, ns);
	query_add_int(&path, "job_version", (int64_t)job->version);
	cleanup_json json_t *hist = NULL;
	if (call_get(p->cli, &path, &hist, err) < 0)
		return -1;
	cleanup_buf struct cod_buf epath = COD_BUF_INIT;
	job_path(&epath, id, "/executions");
	query_namespace(&epath, ns);
	cleanup_json json_t *eresp = NULL;
	if (call_get(p->cli, &epath, &eresp, err) < 0)
		return -1;
	json_t *eitems = items_of(eresp);
	size_t ne = json_array_size(eitems);
	struct cod_execution **execs = xcalloc(ne + 1, sizeof(*execs));
	int rc = 0;
	for (size_t i = 0; i < ne && rc == 0; i++)
		if (!(execs[i] = cod_execution_from_json(json_array_get(eitems, i), err)))
			rc = bad_answer(err, "execution");
	size_t i;
	json_t *item;
	json_array_foreach(items_of(hist), i, item)
	{
		if (rc < 0)
			break;
		struct cod_history_event *h = cod_history_from_json(item, err);
		if (!h) {
			rc = bad_answer(err, "history event");
			break;
		}
		if (h->seq_num > p->last_seq) {
			p->last_seq = h->seq_num;
			if (h->type == COD_HISTORY_EXECUTION && !cod_str_empty(h->execution_id) && h->has_exec_state)
				exec_event(p, h, execs, ne);
			else if (h->type == COD_HISTORY_JOB)
				job_event(p, h);
		}
		cod_history_free(h);
	}
	if (rc == 0)
		live_messages(p, execs, ne);
	for (size_t k = 0; k < ne; k++)
		cod_execution_free(execs[k]);
	free(execs);
	return rc;
}

/*
 * Poll the job every 500 ms until it is terminal, the timeout passes or
 * Ctrl-C, showing progress (unless quiet). *final gets the last state
 * seen; *timed_out tells whether the wait gave up.
 */
static int wait_job(struct cod_cli *cli, const char *id, const char *ns, int64_t timeout_s, bool quiet,
		    struct cod_job **final, bool *timed_out, struct cod_error **err)
{
	int64_t deadline = cod_mono_ms() + timeout_s * 1000;
	*timed_out = false;
	*final = NULL;
	struct progress p = {.cli = cli, .spinner = cli->is_tty && !quiet, .color = cod_use_color(cli)};
	p.status_since = cod_mono_ms();
	int rc = 0;
	for (;;) {
		struct cod_job *job = fetch_job(cli, id, ns, err);
		if (!job) {
			rc = -1;
			break;
		}
		p.multi = job->count > 1 || job->type == COD_JOB_OPS || job->type == COD_JOB_DAEMON;
		if (!quiet && progress_poll(&p, id, ns, job, err) < 0) {
			cod_job_free(job);
			rc = -1;
			break;
		}
		if (cod_job_state_terminal((enum cod_job_state)job->state.type)) {
			*final = job;
			break;
		}
		int64_t now = cod_mono_ms();
		if (now >= deadline || interrupted) {
			*final = job;
			*timed_out = !interrupted;
			break;
		}
		cod_job_free(job);
		/* the spinner turns while we wait for the next poll */
		int64_t next = now + POLL_INTERVAL_MS < deadline ? now + POLL_INTERVAL_MS : deadline;
		while (!interrupted && cod_mono_ms() < next) {
			draw_spinner(&p);
			sleep_ms(p.spinner ? 100 : next - cod_mono_ms());
		}
	}
	clear_spinner(&p);
	fflush(stdout);
	progress_release(&p);
	return rc;
}

static void print_next_steps(FILE *f, const char *id, bool has_publisher)
{
	fprintf(f,
		"\nTo get more details about the run, execute:\n\tcod job describe %s\n\n"
		"To get more details about the run executions, execute:\n\tcod job executions %s\n",
		id, id);
	if (has_publisher)
		fprintf(f, "\nTo download the results, execute:\n\tcod job get %s\n", id);
}

/* The last progress line: how the job ended. */
static void print_outcome(struct cod_cli *cli, FILE *f, const struct cod_job *job)
{
	enum cod_job_state state = (enum cod_job_state)job->state.type;
	cleanup_free char *took = cod_fmt_duration_ns(job->modify_time - job->create_time);
	const char *msg = job->state.message ? job->state.message : "";
	bool color = f == stdout ? cod_use_color(cli) : cod_use_color_fd(cli, 2);
	const char *on = !color ? "" : state == COD_JOB_COMPLETED ? GREEN : state == COD_JOB_FAILED ? RED : YELLOW;
	const char *off = color ? "\033[0m" : "";
	if (state == COD_JOB_COMPLETED)
		fprintf(f, "  %sCompleted in %s%s\n", on, took, off);
	else if (state == COD_JOB_FAILED)
		fprintf(f, "  %sFailed in %s%s%s%s\n", on, took, *msg ? ": " : "", msg, off);
	else
		fprintf(f, "  %s%s%s%s%s\n", on, cod_job_state_name(state), *msg ? ": " : "", msg, off);
}

static const char run_help[] =
	"Submit a job spec (YAML or JSON, Bacalhau's format) from a file or stdin.\n"
	"The spec is parsed, normalized and validated locally first; every problem is\n"
	"reported at once. By default the command then shows the job's progress until\n"
	"it finishes (--wait-timeout-secs): one line per step (submitted, scheduled,\n"
	"preparing, running, publishing, completed), with a spinner on a terminal.\n"
	"Ctrl+C stops waiting; the job keeps running. --follow prints the job's output\n"
	"instead, as it runs. The exit code is 1 when the job failed.\n\n"
	"Templating: the spec may use {{.name}} placeholders, filled from -V name=value\n"
	"and from environment variables whose names match -E REGEX ({{.env.NAME}}\n"
	"also reads them); --no-template sends the spec as written. See docs/cli.md.\n\n"
	"Resubmitting a job with the same Name updates it (a new version); an\n"
	"unchanged spec is refused unless --force.\n\n"
	"Examples:\n"
	"  cod job run job.yaml\n"
	"  cod job run --follow job.yaml             # print the job's output as it runs\n"
	"  cod job run --wait=false job.yaml         # print only the job ID\n"
	"  cod job run -V image=busybox:1.37 -E '^DATA_' job.yaml\n"
	"  cat job.json | cod job run -\n"
	"  cod job run --dry-run --output json job.yaml";

/* Print the job's output until it ends (--follow). */
static int follow_job(struct cod_cli *cli, const char *id, const char *ns, int64_t wait_timeout, bool *timed_out,
		      struct cod_error **err)
{
	*timed_out = false;
	struct cod_logs_opts o = {.namespace_ = ns,
				  .tail = -1,
				  .follow = true,
				  .deadline_ms = cod_mono_ms() + wait_timeout * 1000,
				  .stop = &interrupted};
	cleanup_free char *state = NULL;
	if (cod_cli_print_logs(cli, id, &o, &state, err) == 0)
		return 0;
	if ((*err)->code == COD_E_TIMEOUT) {
		*timed_out = true;
		cod_error_free(*err);
		*err = NULL;
		return 0;
	}
	if (interrupted) {
		cod_error_free(*err);
		*err = NULL;
		return 0;
	}
	return -1;
}

/*
 * Submit a loaded job (consumed) and follow it as `job run` does: dry run,
 * warnings, --id-only, --wait with progress (or --follow with the job's
 * output), the final state and exit code. Shared by `job run` and
 * `docker run`.
 */
int cod_cli_run_job(struct cod_cli *cli, struct cod_job *job, struct cod_strlist *warnings,
		    const struct cod_run_opts *ro)
{
	struct cod_error *err = NULL;
	bool wait = ro->wait, id_only = ro->id_only, dry_run = ro->dry_run, force = ro->force;
	bool hide_warnings = ro->hide_warnings, follow = ro->follow && ro->wait;
	int64_t wait_timeout = ro->wait_timeout > 0 ? ro->wait_timeout : 600;
	int rc;
	if (dry_run) {
		print_warnings(warnings, hide_warnings);
		cod_strlist_release(warnings);
		cleanup_json json_t *v = cod_job_to_json(job);
		struct cod_output_opts opts = cli->out;
		if (!opts.format)
			opts.format = "yaml";
		cod_print_value(v, &opts, stdout);
		cod_job_free(job);
		return 0;
	}
	bool has_publisher = job->ntasks && !cod_str_empty(job->tasks[0].publisher.type);
	cleanup_json json_t *body = json_pack("{s:o, s:b}", "Job", cod_job_to_json(job), "Force", force);
	char *job_ns = xstrdup(job->namespace_);
	cod_job_free(job);
	cleanup_json json_t *resp = NULL;
	if (cod_client_call(cli, "PUT", JOBS_PATH, body, &resp, &err) < 0) {
		print_warnings(warnings, hide_warnings);
		cod_strlist_release(warnings);
		free(job_ns);
		return cod_cli_fail(err);
	}
	size_t i;
	json_t *w;
	json_array_foreach(json_object_get(resp, "Warnings"), i, w)
	{
		if (json_is_string(w))
			add_unique(warnings, json_string_value(w));
	}
	print_warnings(warnings, hide_warnings);
	cod_strlist_release(warnings);
	const char *id = json_string_value(json_object_get(resp, "JobID"));
	if (!id || !*id) {
		free(job_ns);
		cod_error_set(&err, COD_E_INTERNAL, "the API accepted the job but sent no JobID");
		return cod_cli_fail(err);
	}
	/* With --follow stdout carries the job's output only. */
	FILE *info = follow ? stderr : stdout;
	if (!wait || id_only) {
		printf("%s\n", id);
		if (!wait) {
			free(job_ns);
			return 0;
		}
	} else if (follow) {
		fprintf(info, "Job successfully submitted. Job ID: %s\n", id);
		fprintf(info, "Waiting for logs... (Ctrl+C to stop following; the job keeps running)\n\n");
	} else {
		printf("Job successfully submitted. Job ID: %s\n", id);
		printf("Checking job status... (Enter Ctrl+C to exit at any time, your job will continue running):\n\n");
	}
	fflush(stdout);

	struct sigaction sa = {.sa_handler = on_sigint}, old_sa;
	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	sigaction(SIGINT, &sa, &old_sa);
	struct cod_job *final = NULL;
	bool timed_out = false;
	if (follow) {
		rc = follow_job(cli, id, job_ns, wait_timeout, &timed_out, &err);
		if (rc == 0)
			final = fetch_job(cli, id, job_ns, &err);
		if (!final)
			rc = -1;
	} else {
		rc = wait_job(cli, id, job_ns, wait_timeout, id_only, &final, &timed_out, &err);
	}
	sigaction(SIGINT, &old_sa, NULL);
	free(job_ns);
	if (rc < 0)
		return cod_cli_fail(err);
	enum cod_job_state state = (enum cod_job_state)final->state.type;
	bool done = cod_job_state_terminal(state);
	if (interrupted && !done) {
		fprintf(stderr,
			"\nStopped waiting: job %s keeps running (it is %s).\n"
			"Follow it with: cod job logs -f %s\nCheck it with:  cod job describe %s\n",
			id, cod_job_state_name(state), id, id);
		cod_job_free(final);
		return 130;
	}
	if (!id_only && done) {
		if (follow)
			fputc('\n', info);
		print_outcome(cli, info, final);
	}
	if (!id_only)
		print_next_steps(info, id, has_publisher);
	fflush(stdout);
	rc = 0;
	if (timed_out && !done) {
		fprintf(stderr,
			"Warning: job %s is still %s after %llds; it keeps running — check later with: cod job describe %s\n",
			id, cod_job_state_name(state), (long long)wait_timeout, id);
	} else if (state == COD_JOB_FAILED) {
		cod_error_set(&err, COD_E_BAD_REQUEST, "job failed: %s",
			      final->state.message && *final->state.message ? final->state.message : "no reason given");
		cod_error_hint(err, "run 'cod job describe %s' to see its executions and their errors", id);
		rc = cod_cli_fail(err);
	} else if (state == COD_JOB_STOPPED) {
		fprintf(stderr, "Job %s was stopped%s%s\n", id, final->state.message ? ": " : "",
			final->state.message ? final->state.message : "");
	}
	cod_job_free(final);
	return rc;
}

static int cmd_run(struct cod_cli *cli, int argc, char **argv)
{
	bool wait = true, id_only = false, dry_run = false, force = false, hide_warnings = false, follow = false;
	bool no_template = false;
	int64_t wait_timeout = 600;
	const char *ns = NULL;
	struct cod_strlist vars = {0}, env_patterns = {0};
	struct cod_flag flags[] = {
		{"wait", 0, COD_FLAG_BOOL, &wait, NULL, "wait for the job to finish (default true; --wait=false)", NULL},
		{"wait-timeout-secs", 0, COD_FLAG_INT, &wait_timeout, "N", "stop waiting after N seconds (default 600)",
		 NULL},
		{"follow", 'f', COD_FLAG_BOOL, &follow, NULL, "print the job's output as it runs, until it ends", NULL},
		{"id-only", 0, COD_FLAG_BOOL, &id_only, NULL, "print only the job ID", NULL},
		{"dry-run", 0, COD_FLAG_BOOL, &dry_run, NULL, "print the normalized job instead of submitting it", NULL},
		{"force", 0, COD_FLAG_BOOL, &force, NULL, "submit even if the spec is unchanged", NULL},
		{"hide-warnings", 0, COD_FLAG_BOOL, &hide_warnings, NULL, "do not print warnings", NULL},
		{"namespace", 0, COD_FLAG_STR, &ns, "NS", "namespace of the job (overrides the spec's)", NULL},
		{"template-vars", 'V', COD_FLAG_LIST, &vars, "KEY=VALUE", "a template variable (repeatable)", NULL},
		{"template-envs", 'E', COD_FLAG_LIST, &env_patterns, "REGEX",
		 "environment variables whose names match become template variables (repeatable)", NULL},
		{"no-template", 0, COD_FLAG_BOOL, &no_template, NULL, "do not expand {{...}} in the spec", NULL},
		COD_OUTPUT_FLAGS(cli),
		COD_FLAGS_END,
	};
	const char *pos[1];
	int npos;
	int rc = start(cli, argc, argv, flags, "job run FILE|- [flags]", run_help, pos, &npos, 1, 1, "json,yaml");
	if (rc >= 0)
		goto out;
	rc = 2;
	if (wait_timeout <= 0) {
		cod_cli_usage_error("job run", "flag --wait-timeout-secs: %lld is not a positive number of seconds",
				    (long long)wait_timeout);
		goto out;
	}
	struct cod_template tpl = {.vars = &vars, .env_patterns = &env_patterns, .disabled = no_template};
	struct cod_error *err = NULL;
	struct cod_strlist warnings = {0};
	struct cod_job *job = load_job(cli, pos[0], ns, &tpl, &warnings, &err);
	if (!job) {
		if (err && err->code == COD_E_VALIDATION && !err->hint)
			cod_error_hint(err, "fix the fields named above; `cod job validate FILE` checks a spec "
					    "without submitting it");
		print_warnings(&warnings, hide_warnings);
		cod_strlist_release(&warnings);
		rc = cod_cli_fail(err);
		goto out;
	}
	struct cod_run_opts ro = {.wait = wait, .wait_timeout = wait_timeout, .id_only = id_only, .dry_run = dry_run,
				  .force = force, .hide_warnings = hide_warnings, .follow = follow};
	rc = cod_cli_run_job(cli, job, &warnings, &ro);
out:
	cod_strlist_release(&vars);
	cod_strlist_release(&env_patterns);
	return rc;
}

/* ----------------------------------------------------------- validate */

static const char validate_help[] =
	"Check a job spec locally, without submitting it: parse it strictly, apply\n"
	"the defaults of the config and validate it. Every problem is listed with the\n"
	"path of its field. Exits 0 when the spec is valid, 1 otherwise.\n\n"
	"Examples:\n"
	"  cod job validate job.yaml\n"
	"  cat job.json | cod job validate -";

static int cmd_validate(struct cod_cli *cli, int argc, char **argv)
{
	bool hide_warnings = false, no_template = false;
	struct cod_strlist vars = {0}, env_patterns = {0};
	struct cod_flag flags[] = {
		{"hide-warnings", 0, COD_FLAG_BOOL, &hide_warnings, NULL, "do not print warnings", NULL},
		{"template-vars", 'V', COD_FLAG_LIST, &vars, "KEY=VALUE", "a template variable (repeatable)", NULL},
		{"template-envs", 'E', COD_FLAG_LIST, &env_patterns, "REGEX",
		 "environment variables whose names match become template variables", NULL},
		{"no-template", 0, COD_FLAG_BOOL, &no_template, NULL, "do not expand {{...}} in the spec", NULL},
		COD_FLAGS_END,
	};
	const char *pos[1];
	int npos;
	int rc = start(cli, argc, argv, flags, "job validate FILE|- [flags]", validate_help, pos, &npos, 1, 1, NULL);
	if (rc < 0) {
		struct cod_error *err = NULL;
		struct cod_strlist warnings = {0};
		struct cod_template tpl = {.vars = &vars, .env_patterns = &env_patterns, .disabled = no_template};
		struct cod_job *job = load_job(cli, pos[0], NULL, &tpl, &warnings, &err);
		print_warnings(&warnings, hide_warnings);
		cod_strlist_release(&warnings);
		if (job) {
			cod_job_free(job);
			printf("The job spec is valid\n");
			rc = 0;
		} else {
			rc = cod_cli_fail(err);
		}
	}
	cod_strlist_release(&vars);
	cod_strlist_release(&env_patterns);
	return rc;
}

/* --------------------------------------------------------------- list */

static const char list_help[] =
	"List jobs, ordered by creation time (--order-by, --order-reversed). By\n"
	"default 10 jobs of the \"default\" namespace that are not canaries; use --all\n"
	"to fetch every page, --namespace '*' for every namespace and --labels to\n"
	"filter with a label selector.\n\n"
	"Examples:\n"
	"  cod job list\n"
	"  cod job list --limit 50 --order-by modified_at\n"
	"  cod job list --labels 'team=data,env in (prod,staging)' --output json";

static int job_row(struct cod_cli *cli, struct cod_table *t, json_t *item, struct cod_error **err)
{
	struct cod_job *job = cod_job_from_json(item, err);
	if (!job)
		return -1;
	cleanup_free char *created = time_cell(cli, job->create_time);
	cleanup_free char *id = id_cell(cli, job->id);
	cleanup_free char *engine = cod_job_engine_summary(job);
	const char *row[] = {created,
			     id,
			     job->name,
			     engine,
			     cod_job_type_name(job->type),
			     cod_job_state_name((enum cod_job_state)job->state.type)};
	cod_table_add(t, row);
	cod_job_free(job);
	return 0;
}

static int cmd_list(struct cod_cli *cli, int argc, char **argv)
{
	int64_t limit = 10;
	const char *next_token = NULL, *order_by = NULL, *labels = "bacalhau_canary != true", *ns = "default";
	bool reversed = false, all = false;
	struct cod_flag flags[] = {
		{"limit", 0, COD_FLAG_INT, &limit, "N", "jobs per page (default 10; 0 = all)", NULL},
		{"next-token", 0, COD_FLAG_STR, &next_token, "TOKEN", "continue from a previous page", NULL},
		{"order-by", 0, COD_FLAG_STR, &order_by, "FIELD", "created_at, modified_at, id or name", NULL},
		{"order-reversed", 0, COD_FLAG_BOOL, &reversed, NULL, "reverse the order", NULL},
		{"labels", 0, COD_FLAG_STR, &labels, "SELECTOR",
		 "label selector (default \"bacalhau_canary != true\"; \"\" = none)", NULL},
		{"namespace", 0, COD_FLAG_STR, &ns, "NS", "namespace (default \"default\"; '*' = all)", NULL},
		{"all", 0, COD_FLAG_BOOL, &all, NULL, "fetch every page", NULL},
		COD_OUTPUT_FLAGS(cli),
		COD_FLAGS_END,
	};
	const char *pos[1];
	int npos;
	int rc = start(cli, argc, argv, flags, "job list [flags]", list_help, pos, &npos, 0, 0, NULL);
	if (rc >= 0)
		return rc;
	if (limit < 0)
		return cod_cli_usage_error("job list", "flag --limit: %lld is negative", (long long)limit);
	if (order_by && strcmp(order_by, "created_at") && strcmp(order_by, "modified_at") && strcmp(order_by, "id") &&
	    strcmp(order_by, "name"))
		return cod_cli_usage_error("job list", "flag --order-by: \"%s\" is not created_at, modified_at, id or name",
					   order_by);
	struct cod_error *err = NULL;
	cleanup_json json_t *jobs = json_array();
	cleanup_free char *token = next_token ? xstrdup(next_token) : NULL;
	for (;;) {
		cleanup_buf struct cod_buf path = COD_BUF_INIT;
		cod_buf_addstr(&path, JOBS_PATH);
		query_namespace(&path, ns);
		if (labels && *labels)
			query_add(&path, "labels", labels);
		if (token) {
			query_add(&path, "next_token", token);
		} else {
			query_add_int(&path, "limit", limit);
			query_add(&path, "order_by", order_by);
			if (reversed)
				query_add(&path, "reverse", "true");
		}
		cleanup_json json_t *resp = NULL;
		if (call_get(cli, &path, &resp, &err) < 0)
			return cod_cli_fail(err);
		json_array_extend(jobs, items_of(resp));
		free(token);
		token = next_token_of(resp) ? xstrdup(next_token_of(resp)) : NULL;
		if (!all || !token)
			break;
	}
	static const char *const headers[] = {"CREATED", "ID", "NAME", "JOB", "TYPE", "STATE"};
	static const size_t widths[][2] = {{2, 30}, {3, 40}, {0, 0}};
	rc = print_items(cli, jobs, headers, COD_ARRAY_SIZE(headers), widths, "job", job_row);
	if (rc)
		return rc;
	if (token)
		print_more_hint("job list", token, ns);
	return 0;
}

/* ----------------------------------------------------------- describe */

struct kv_lines {
	const char *keys[16];
	char *values[16];
	size_t n;
};

static void kv_add(struct kv_lines *kv, const char *key, char *value)
{
	if (kv->n < COD_ARRAY_SIZE(kv->keys)) {
		kv->keys[kv->n] = key;
		kv->values[kv->n++] = value;
	} else {
		free(value);
	}
}

static void kv_print(struct kv_lines *kv)
{
	size_t w = 0;
	for (size_t i = 0; i < kv->n; i++)
		if (strlen(kv->keys[i]) > w)
			w = strlen(kv->keys[i]);
	for (size_t i = 0; i < kv->n; i++) {
		printf("%-*s = %s\n", (int)w, kv->keys[i], kv->values[i]);
		free(kv->values[i]);
	}
	kv->n = 0;
}

static void print_history_table(struct cod_cli *cli, struct cod_history_event **events, size_t n, bool job_level,
				const char *exec_id)
{
	static const char *const headers[] = {"TIME", "REV.", "TOPIC", "EVENT"};
	struct cod_table t;
	cod_table_init(&t, COD_ARRAY_SIZE(headers), headers);
	cod_table_set_width(&t, 3, 80);
	for (size_t i = 0; i < n; i++) {
		const struct cod_history_event *h = events[i];
		if (job_level ? h->type != COD_HISTORY_JOB
			      : (h->type != COD_HISTORY_EXECUTION || !h->execution_id || strcmp(h->execution_id, exec_id)))
			continue;
		cleanup_free char *when = cod_fmt_time(h->event_time ? h->event_time : h->time);
		cleanup_free char *rev = u64_text(h->job_version);
		const char *row[] = {when, rev, h->topic, h->message};
		cod_table_add(&t, row);
	}
	if (t.nrows) {
		struct cod_output_opts opts = cli->out;
		opts.format = "table";
		cod_table_print(&t, &opts, stdout);
	} else {
		printf("none yet\n");
	}
	cod_table_release(&t);
}

static void print_output_block(const char *title, const char *text, bool truncated, const char *job_id,
			       const char *exec_id)
{
	if (cod_str_empty(text) && !truncated)
		return;
	printf("\n%s\n", title);
	if (text && *text) {
		fputs(text, stdout);
		if (text[strlen(text) - 1] != '\n')
			fputc('\n', stdout);
	}
	if (truncated) {
		cleanup_free char *sid = cod_short_id(exec_id);
		printf("…Output truncated (the first %d bytes); all of it: cod job logs %s -e %s\n", 2048, job_id, sid);
	}
}

/* Inputs: what preparing them moved (RunOutput.InputBytes). */
static void print_inputs(const json_t *ib)
{
	json_t *inputs = json_object_get(ib, "Inputs");
	if (!json_array_size(inputs))
		return;
	static const char *const headers[] = {"NAME", "TYPE", "LOCAL", "FETCHED", "CACHE"};
	struct cod_table t;
	cod_table_init(&t, COD_ARRAY_SIZE(headers), headers);
	size_t i;
	json_t *in;
	json_array_foreach(inputs, i, in)
	{
		cleanup_free char *local = cod_format_bytes((uint64_t)json_integer_value(json_object_get(in, "Local")));
		cleanup_free char *fetched =
		    cod_format_bytes((uint64_t)json_integer_value(json_object_get(in, "Fetched")));
		const char *row[] = {json_string_value(json_object_get(in, "Name")),
				     json_string_value(json_object_get(in, "Type")), local, fetched,
				     json_is_true(json_object_get(in, "CacheHit")) ? "hit" : ""};
		cod_table_add(&t, row);
	}
	cleanup_free char *local = cod_format_bytes((uint64_t)json_integer_value(json_object_get(ib, "Local")));
	cleanup_free char *fetched = cod_format_bytes((uint64_t)json_integer_value(json_object_get(ib, "Fetched")));
	printf("\nInputs (%s local, %s fetched)\n", local, fetched);
	struct cod_output_opts opts = {.format = "table"};
	cod_table_print(&t, &opts, stdout);
	cod_table_release(&t);
}

/* Where the results went (PublishedResult). */
static void print_results(const struct cod_spec_config *r, const char *job_id)
{
	if (cod_str_empty(r->type))
		return;
	printf("\nResults\n");
	if (!strcasecmp(r->type, "noop")) {
		printf("Not published (publisher noop)\n");
		return;
	}
	printf("Published with %s", r->type);
	const char *key;
	json_t *v;
	bool first = true;
	json_object_foreach(r->params, key, v)
	{
		if (json_is_string(v))
			printf("%s%s=%s", first ? ": " : ", ", key, json_string_value(v));
		else if (json_is_integer(v))
			printf("%s%s=%lld", first ? ": " : ", ", key, (long long)json_integer_value(v));
		first = false;
	}
	printf("\nDownload them with: cod job get %s\n", job_id);
}

static const char describe_help[] =
	"Show a job: its spec summary and state, a count of its executions per state,\n"
	"its history, its executions and their output. The job may be named by full\n"
	"ID, short ID (j-1234abcd) or Name. --output json|yaml prints the API's\n"
	"answer {Job, History, Executions}.\n\n"
	"Examples:\n"
	"  cod job describe j-6f9c2a1b\n"
	"  cod job describe my-job --version 2\n"
	"  cod job describe j-6f9c2a1b --output json --pretty";

/* The text of describe (everything decoded). */
static void describe_print(struct cod_cli *cli, const struct cod_job *job, struct cod_history_event **events, size_t nh,
			   struct cod_execution **execs, size_t ne)
{
	struct kv_lines kv = {0};
	kv_add(&kv, "ID", xstrdup(job->id ? job->id : ""));
	kv_add(&kv, "Name", xstrdup(job->name ? job->name : ""));
	kv_add(&kv, "Namespace", xstrdup(job->namespace_ ? job->namespace_ : ""));
	kv_add(&kv, "Type", xstrdup(cod_job_type_name(job->type)));
	kv_add(&kv, "State", xstrdup(cod_job_state_name((enum cod_job_state)job->state.type)));
	if (!cod_str_empty(job->state.message))
		kv_add(&kv, "Message", xstrdup(job->state.message));
	if (job->type == COD_JOB_BATCH || job->type == COD_JOB_SERVICE)
		kv_add(&kv, "Count", xasprintf("%lld", (long long)job->count));
	kv_add(&kv, "Created Time", cod_fmt_time(job->create_time));
	kv_add(&kv, "Modified Time", cod_fmt_time(job->modify_time));
	kv_add(&kv, "Version", u64_text(job->version));
	if (job->labels.n)
		kv_add(&kv, "Labels", labels_text(&job->labels));
	cleanup_free char *engine = cod_job_engine_summary(job);
	if (*engine)
		kv_add(&kv, "Engine", xstrdup(engine));
	kv_print(&kv);

	printf("\nSummary\n");
	if (!ne) {
		printf("none yet\n");
	} else {
		/* count per compute state, in state order */
		for (int s = COD_EXEC_UNDEFINED; s <= COD_EXEC_PREPARING; s++) {
			size_t count = 0;
			for (size_t i = 0; i < ne; i++)
				if (execs[i]->compute_state.type == s)
					count++;
			if (count)
				kv_add(&kv, cod_exec_state_name((enum cod_exec_state)s), xasprintf("%zu", count));
		}
		kv_print(&kv);
	}

	printf("\nJob History\n");
	print_history_table(cli, events, nh, true, NULL);

	printf("\nExecutions\n");
	if (!ne) {
		printf("none yet\n");
	} else {
		static const char *const headers[] = {"ID", "NODE ID", "STATE", "DESIRED", "REV.", "CREATED", "MODIFIED",
						      "COMMENT"};
		struct cod_table t;
		cod_table_init(&t, COD_ARRAY_SIZE(headers), headers);
		cod_table_set_width(&t, 7, 60);
		for (size_t i = 0; i < ne; i++) {
			const struct cod_execution *e = execs[i];
			cleanup_free char *id = id_cell(cli, e->id);
			cleanup_free char *node = id_cell(cli, e->node_id);
			cleanup_free char *rev = u64_text(e->revision);
			cleanup_free char *created = cod_fmt_age(e->create_time);
			cleanup_free char *modified = cod_fmt_age(e->modify_time);
			const char *row[] = {id,
					     node,
					     cod_exec_state_name((enum cod_exec_state)e->compute_state.type),
					     cod_exec_desired_name((enum cod_exec_desired)e->desired_state.type),
					     rev,
					     created,
					     modified,
					     e->compute_state.message};
			cod_table_add(&t, row);
		}
		struct cod_output_opts opts = cli->out;
		opts.format = "table";
		cod_table_print(&t, &opts, stdout);
		cod_table_release(&t);
	}

	for (size_t i = 0; i < ne; i++) {
		const struct cod_execution *e = execs[i];
		printf("\nExecution %s History\n", e->id);
		print_history_table(cli, events, nh, false, e->id);
		const struct cod_run_output *o = &e->run_output;
		if (!cod_str_empty(o->error_msg))
			printf("\nExecution Error\n%s\n", o->error_msg);
		print_inputs(o->input_bytes);
		print_results(&e->published_result, job->id);
		print_output_block("Standard Output", o->stdout_text, o->stdout_truncated, job->id, e->id);
		print_output_block("Standard Error", o->stderr_text, o->stderr_truncated, job->id, e->id);
	}
}

static int describe_text(struct cod_cli *cli, json_t *resp, struct cod_error **err)
{
	struct cod_job *job = job_of(resp, err);
	if (!job)
		return -1;
	json_t *hist_items = member_items(resp, "History");
	json_t *exec_items = member_items(resp, "Executions");
	size_t nh = json_array_size(hist_items), ne = json_array_size(exec_items);
	struct cod_history_event **events = xcalloc(nh + 1, sizeof(*events));
	struct cod_execution **execs = xcalloc(ne + 1, sizeof(*execs));
	int rc = 0;
	for (size_t i = 0; i < nh && rc == 0; i++)
		if (!(events[i] = cod_history_from_json(json_array_get(hist_items, i), err)))
			rc = bad_answer(err, "history event");
	for (size_t i = 0; i < ne && rc == 0; i++)
		if (!(execs[i] = cod_execution_from_json(json_array_get(exec_items, i), err)))
			rc = bad_answer(err, "execution");
	if (rc == 0)
		describe_print(cli, job, events, nh, execs, ne);
	for (size_t i = 0; i < nh; i++)
		cod_history_free(events[i]);
	for (size_t i = 0; i < ne; i++)
		cod_execution_free(execs[i]);
	free(events);
	free(execs);
	cod_job_free(job);
	return rc;
}

static int cmd_describe(struct cod_cli *cli, int argc, char **argv)
{
	const char *ns = NULL;
	int64_t version = 0;
	struct cod_flag flags[] = {
		{"namespace", 0, COD_FLAG_STR, &ns, "NS", "namespace of the job (default \"default\")", NULL},
		{"version", 'v', COD_FLAG_INT, &version, "N", "describe this version of the spec (default: current)", NULL},
		COD_OUTPUT_FLAGS(cli),
		COD_FLAGS_END,
	};
	const char *pos[1];
	int npos;
	int rc = start(cli, argc, argv, flags, "job describe ID|NAME [flags]", describe_help, pos, &npos, 1, 1,
		       "json,yaml");
	if (rc >= 0)
		return rc;
	if (version < 0)
		return cod_cli_usage_error("job describe", "flag --version: %lld is negative", (long long)version);
	struct cod_error *err = NULL;
	cleanup_buf struct cod_buf path = COD_BUF_INIT;
	job_path(&path, pos[0], NULL);
	query_namespace(&path, ns);
	query_add(&path, "include", "history,executions");
	if (version)
		query_add_int(&path, "job_version", version);
	cleanup_json json_t *resp = NULL;
	if (call_get(cli, &path, &resp, &err) < 0)
		return cod_cli_fail(err);
	if (cod_output_structured(&cli->out)) {
		cod_print_value(resp, &cli->out, stdout);
		return 0;
	}
	if (describe_text(cli, resp, &err) < 0)
		return cod_cli_fail(err);
	return 0;
}

/* --------------------------------------------------------------- stop */

static const char stop_help[] =
	"Stop a job: its executions are cancelled and it ends in state Stopped. The\n"
	"command does not wait for the executions to stop. A job that already\n"
	"finished (Completed, Failed or Stopped) cannot be stopped.\n\n"
	"Examples:\n"
	"  cod job stop j-6f9c2a1b\n"
	"  cod job stop my-job --reason 'wrong input' --quiet";

static int cmd_stop(struct cod_cli *cli, int argc, char **argv)
{
	const char *ns = NULL, *reason = NULL;
	bool quiet = false;
	struct cod_flag flags[] = {
		{"namespace", 0, COD_FLAG_STR, &ns, "NS", "namespace of the job (default \"default\")", NULL},
		{"reason", 0, COD_FLAG_STR, &reason, "TEXT", "why the job is stopped (default \"Stopped at user request\")",
		 NULL},
		{"quiet", 'q', COD_FLAG_BOOL, &quiet, NULL, "print nothing on success", NULL},
		COD_FLAGS_END,
	};
	const char *pos[1];
	int npos;
	int rc = start(cli, argc, argv, flags, "job stop ID [flags]", stop_help, pos, &npos, 1, 1, NULL);
	if (rc >= 0)
		return rc;
	struct cod_error *err = NULL;
	struct cod_job *job = fetch_job(cli, pos[0], ns, &err);
	if (!job)
		return cod_cli_fail(err);
	if (cod_job_state_terminal((enum cod_job_state)job->state.type)) {
		cod_error_set(&err, COD_E_CONFLICT, "job %s is already in a terminal state (%s)", job->id,
			      cod_job_state_name((enum cod_job_state)job->state.type));
		if (job->state.type != COD_JOB_STOPPED)
			cod_error_hint(err, "run 'cod job rerun %s' to run it again", job->id);
		cod_job_free(job);
		return cod_cli_fail(err);
	}
	cleanup_buf struct cod_buf path = COD_BUF_INIT;
	job_path(&path, job->id, NULL);
	query_namespace(&path, job->namespace_);
	cod_job_free(job);
	cleanup_json json_t *body = json_pack("{s:s}", "reason", reason ? reason : "Stopped at user request");
	cleanup_json json_t *resp = NULL;
	if (cod_client_call(cli, "DELETE", cod_buf_str(&path), body, &resp, &err) < 0)
		return cod_cli_fail(err);
	if (!quiet) {
		const char *eval = json_string_value(json_object_get(resp, "EvaluationID"));
		printf("Job stop successfully submitted with evaluation ID: %s\n", eval && *eval ? eval : "(none)");
	}
	return 0;
}

/* -------------------------------------------------------------- rerun */

static const char rerun_help[] =
	"Run a finished job again: the spec of the current version (or of --version)\n"
	"becomes a new version and is scheduled again. A job that is still Pending or\n"
	"Queued cannot be rerun.\n\n"
	"Examples:\n"
	"  cod job rerun j-6f9c2a1b\n"
	"  cod job rerun my-job --version 1 --reason 'retry with the old spec'";

static int cmd_rerun(struct cod_cli *cli, int argc, char **argv)
{
	const char *ns = NULL, *reason = NULL;
	int64_t version = 0;
	struct cod_flag flags[] = {
		{"namespace", 0, COD_FLAG_STR, &ns, "NS", "namespace of the job (default \"default\")", NULL},
		{"version", 'v', COD_FLAG_INT, &version, "N", "rerun this version of the spec (default: current)", NULL},
		{"reason", 0, COD_FLAG_STR, &reason, "TEXT", "why the job is rerun", NULL},
		COD_FLAGS_END,
	};
	const char *pos[1];
	int npos;
	int rc = start(cli, argc, argv, flags, "job rerun ID|NAME [flags]", rerun_help, pos, &npos, 1, 1, NULL);
	if (rc >= 0)
		return rc;
	if (version < 0)
		return cod_cli_usage_error("job rerun", "flag --version: %lld is negative", (long long)version);
	struct cod_error *err = NULL;
	cleanup_buf struct cod_buf path = COD_BUF_INIT;
	job_path(&path, pos[0], "/rerun");
	query_namespace(&path, ns);
	cleanup_json json_t *body = json_object();
	if (version)
		json_object_set_new(body, "JobVersion", json_integer(version));
	if (reason)
		json_object_set_new(body, "Reason", json_string(reason));
	cleanup_json json_t *resp = NULL;
	if (cod_client_call(cli, "PUT", cod_buf_str(&path), body, &resp, &err) < 0)
		return cod_cli_fail(err);
	const char *id = json_string_value(json_object_get(resp, "JobID"));
	const char *eval = json_string_value(json_object_get(resp, "EvaluationID"));
	printf("Job successfully rerun. Job ID: %s, version %lld, evaluation %s\n", id ? id : pos[0],
	       (long long)json_integer_value(json_object_get(resp, "JobVersion")), eval && *eval ? eval : "(none)");
	size_t i;
	json_t *w;
	json_array_foreach(json_object_get(resp, "Warnings"), i, w)
	{
		if (json_is_string(w))
			fprintf(stderr, "Warning: %s\n", json_string_value(w));
	}
	return 0;
}

/* ------------------------------------------------------------ history */

static const char history_help[] =
	"List the events of a job: state changes of the job and of its executions.\n"
	"By default the events of the current version; --all-versions for every\n"
	"version, --event-type and --execution-id to narrow them down.\n\n"
	"Examples:\n"
	"  cod job history j-6f9c2a1b\n"
	"  cod job history my-job --event-type execution --output json\n"
	"  cod job history my-job --all-versions --limit 20";

static int history_row(struct cod_cli *cli, struct cod_table *t, json_t *item, struct cod_error **err)
{
	struct cod_history_event *h = cod_history_from_json(item, err);
	if (!h)
		return -1;
	cleanup_free char *when = cod_fmt_time(h->event_time ? h->event_time : h->time);
	cleanup_free char *ver = u64_text(h->job_version);
	cleanup_free char *exec = id_cell(cli, h->execution_id);
	const char *row[] = {when,	h->type == COD_HISTORY_JOB ? "Job" : "Execution", ver, exec, h->topic,
			     h->message};
	cod_table_add(t, row);
	cod_history_free(h);
	return 0;
}

static int cmd_history(struct cod_cli *cli, int argc, char **argv)
{
	const char *ns = NULL, *event_type = NULL, *exec_id = NULL, *next_token = NULL;
	int64_t version = 0, limit = 0;
	bool all_versions = false;
	struct cod_flag flags[] = {
		{"event-type", 0, COD_FLAG_STR, &event_type, "TYPE", "all, job or execution (default all)", NULL},
		{"execution-id", 0, COD_FLAG_STR, &exec_id, "ID", "only the events of this execution", NULL},
		{"version", 'v', COD_FLAG_INT, &version, "N", "events of this job version (default: current)", NULL},
		{"all-versions", 0, COD_FLAG_BOOL, &all_versions, NULL, "events of every version", NULL},
		{"limit", 0, COD_FLAG_INT, &limit, "N", "events per page (default 0 = all)", NULL},
		{"next-token", 0, COD_FLAG_STR, &next_token, "TOKEN", "continue from a previous page", NULL},
		{"namespace", 0, COD_FLAG_STR, &ns, "NS", "namespace of the job (default \"default\")", NULL},
		COD_OUTPUT_FLAGS(cli),
		COD_FLAGS_END,
	};
	const char *pos[1];
	int npos;
	int rc = start(cli, argc, argv, flags, "job history ID [flags]", history_help, pos, &npos, 1, 1, NULL);
	if (rc >= 0)
		return rc;
	if (event_type && strcasecmp(event_type, "all") && strcasecmp(event_type, "job") &&
	    strcasecmp(event_type, "execution"))
		return cod_cli_usage_error("job history", "flag --event-type: \"%s\" is not all, job or execution",
					   event_type);
	if (version < 0 || limit < 0)
		return cod_cli_usage_error("job history", "flags --version and --limit cannot be negative");
	struct cod_error *err = NULL;
	cleanup_buf struct cod_buf path = COD_BUF_INIT;
	job_path(&path, pos[0], "/history");
	query_namespace(&path, ns);
	query_add(&path, "event_type", event_type);
	query_add(&path, "execution_id", exec_id);
	if (version)
		query_add_int(&path, "job_version", version);
	if (all_versions)
		query_add(&path, "all_job_versions", "true");
	if (limit)
		query_add_int(&path, "limit", limit);
	query_add(&path, "next_token", next_token);
	cleanup_json json_t *resp = NULL;
	if (call_get(cli, &path, &resp, &err) < 0)
		return cod_cli_fail(err);
	static const char *const headers[] = {"TIME", "LEVEL", "JOB VERSION", "EXEC. ID", "TOPIC", "EVENT"};
	static const size_t widths[][2] = {{5, 80}, {0, 0}};
	rc = print_items(cli, items_of(resp), headers, COD_ARRAY_SIZE(headers), widths, "history event",
			 history_row);
	if (rc)
		return rc;
	const char *token = next_token_of(resp);
	if (token) {
		cleanup_free char *cmd = xasprintf("job history %s", pos[0]);
		print_more_hint(cmd, token, ns);
	}
	return 0;
}

/* --------------------------------------------------------- executions */

static const char executions_help[] =
	"List the executions of a job: one per attempt on a node, with their compute\n"
	"state, desired state and the latest comment. By default those of the current\n"
	"version; --all-versions for every version.\n\n"
	"Examples:\n"
	"  cod job executions j-6f9c2a1b\n"
	"  cod job executions my-job --all-versions --order-by modified_at --output json";

static int execution_row(struct cod_cli *cli, struct cod_table *t, json_t *item, struct cod_error **err)
{
	struct cod_execution *e = cod_execution_from_json(item, err);
	if (!e)
		return -1;
	cleanup_free char *created = time_cell(cli, e->create_time);
	cleanup_free char *modified = time_cell(cli, e->modify_time);
	cleanup_free char *id = id_cell(cli, e->id);
	cleanup_free char *node = id_cell(cli, e->node_id);
	cleanup_free char *ver = u64_text(e->job_version);
	cleanup_free char *rev = u64_text(e->revision);
	const char *row[] = {created,
			     modified,
			     id,
			     ver,
			     node,
			     rev,
			     cod_exec_state_name((enum cod_exec_state)e->compute_state.type),
			     cod_exec_desired_name((enum cod_exec_desired)e->desired_state.type),
			     e->compute_state.message};
	cod_table_add(t, row);
	cod_execution_free(e);
	return 0;
}

static int cmd_executions(struct cod_cli *cli, int argc, char **argv)
{
	const char *ns = NULL, *order_by = NULL;
	int64_t version = 0, limit = 0;
	bool all_versions = false, reversed = false;
	struct cod_flag flags[] = {
		{"version", 'v', COD_FLAG_INT, &version, "N", "executions of this job version (default: current)", NULL},
		{"all-versions", 0, COD_FLAG_BOOL, &all_versions, NULL, "executions of every version", NULL},
		{"limit", 0, COD_FLAG_INT, &limit, "N", "at most N executions (default 0 = all)", NULL},
		{"order-by", 0, COD_FLAG_STR, &order_by, "FIELD", "created_at or modified_at", NULL},
		{"order-reversed", 0, COD_FLAG_BOOL, &reversed, NULL, "reverse the order", NULL},
		{"namespace", 0, COD_FLAG_STR, &ns, "NS", "namespace of the job (default \"default\")", NULL},
		COD_OUTPUT_FLAGS(cli),
		COD_FLAGS_END,
	};
	const char *pos[1];
	int npos;
	int rc = start(cli, argc, argv, flags, "job executions ID [flags]", executions_help, pos, &npos, 1, 1, NULL);
	if (rc >= 0)
		return rc;
	if (version < 0 || limit < 0)
		return cod_cli_usage_error("job executions", "flags --version and --limit cannot be negative");
	if (order_by && strcmp(order_by, "created_at") && strcmp(order_by, "modified_at") &&
	    strcmp(order_by, "create_time") && strcmp(order_by, "modify_time"))
		return cod_cli_usage_error("job executions", "flag --order-by: \"%s\" is not created_at or modified_at",
					   order_by);
	struct cod_error *err = NULL;
	cleanup_buf struct cod_buf path = COD_BUF_INIT;
	job_path(&path, pos[0], "/executions");
	query_namespace(&path, ns);
	if (version)
		query_add_int(&path, "job_version", version);
	if (all_versions)
		query_add(&path, "all_job_versions", "true");
	if (limit)
		query_add_int(&path, "limit", limit);
	query_add(&path, "order_by", order_by);
	if (reversed)
		query_add(&path, "reverse", "true");
	cleanup_json json_t *resp = NULL;
	if (call_get(cli, &path, &resp, &err) < 0)
		return cod_cli_fail(err);
	static const char *const headers[] = {"CREATED", "MODIFIED", "ID",    "JOB VERSION", "NODE ID",
					      "REV.",    "STATE",    "DESIRED", "COMMENT"};
	static const size_t widths[][2] = {{8, 60}, {0, 0}};
	return print_items(cli, items_of(resp), headers, COD_ARRAY_SIZE(headers), widths, "execution",
			   execution_row);
}

/* ----------------------------------------------------------- versions */

static const char versions_help[] =
	"List the versions of a job's spec. A job gets a new version each time it is\n"
	"resubmitted with changes under the same Name, or rerun.\n\n"
	"Examples:\n"
	"  cod job versions my-job\n"
	"  cod job versions j-6f9c2a1b --output yaml";

static int version_row(struct cod_cli *cli, struct cod_table *t, json_t *item, struct cod_error **err)
{
	(void)cli;
	struct cod_job *job = cod_job_from_json(item, err);
	if (!job)
		return -1;
	/* a version is created when the job is modified */
	cleanup_free char *when = cod_fmt_time(job->modify_time ? job->modify_time : job->create_time);
	cleanup_free char *ver = u64_text(job->version);
	const char *row[] = {when, ver};
	cod_table_add(t, row);
	cod_job_free(job);
	return 0;
}

static int cmd_versions(struct cod_cli *cli, int argc, char **argv)
{
	const char *ns = NULL;
	struct cod_flag flags[] = {
		{"namespace", 0, COD_FLAG_STR, &ns, "NS", "namespace of the job (default \"default\")", NULL},
		COD_OUTPUT_FLAGS(cli),
		COD_FLAGS_END,
	};
	const char *pos[1];
	int npos;
	int rc = start(cli, argc, argv, flags, "job versions ID [flags]", versions_help, pos, &npos, 1, 1, NULL);
	if (rc >= 0)
		return rc;
	struct cod_error *err = NULL;
	cleanup_buf struct cod_buf path = COD_BUF_INIT;
	job_path(&path, pos[0], "/versions");
	query_namespace(&path, ns);
	cleanup_json json_t *resp = NULL;
	if (call_get(cli, &path, &resp, &err) < 0)
		return cod_cli_fail(err);
	static const char *const headers[] = {"CREATED AT", "JOB VERSION"};
	return print_items(cli, items_of(resp), headers, COD_ARRAY_SIZE(headers), NULL, "job version",
			   version_row);
}

/* -------------------------------------------------------------- group */

static const struct cod_command job_commands[] = {
	{"run", cmd_run, "submit a job spec (YAML or JSON) and follow it"},
	{"list", cmd_list, "list jobs"},
	{"describe", cmd_describe, "show a job, its history, executions and output"},
	{"stop", cmd_stop, "stop a job"},
	{"rerun", cmd_rerun, "run a finished job again as a new version"},
	{"history", cmd_history, "list the events of a job"},
	{"executions", cmd_executions, "list the executions of a job"},
	{"versions", cmd_versions, "list the versions of a job's spec"},
	{"validate", cmd_validate, "check a job spec locally without submitting it"},
	{"logs", cod_cmd_job_logs, "print a job's output, or follow it as it runs"},
	{NULL, NULL, NULL},
};

int cod_cmd_job(struct cod_cli *cli, int argc, char **argv)
{
	return cod_cli_dispatch(cli, "job", job_commands,
				"  cod job run job.yaml\n"
				"  cod job list --output json\n"
				"  cod job describe j-6f9c2a1b\n",
				argc, argv);
}
