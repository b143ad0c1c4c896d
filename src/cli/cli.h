/*
 * cli.h - the cod command line: one dispatch table of command groups
 * (cli.c), a flag parser, an API client and table/csv/json/yaml output.
 *
 * Every command is a function `int fn(struct cod_cli *cli, int argc, char
 * **argv)` that returns an exit code: 0 ok, 1 failure, 2 usage error.
 * Errors go to stderr on one line ("Error: ...") followed by a hint line
 * when there is one (cod_cli_fail()).
 */
#ifndef COD_CLI_H
#define COD_CLI_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/error.h"
#include "config/config.h"

enum cod_flag_type {
	COD_FLAG_BOOL,
	COD_FLAG_STR,
	COD_FLAG_INT,
	COD_FLAG_LIST, /* repeatable, struct cod_strlist */
};

struct cod_flag {
	const char *long_name;  /* "output" */
	char short_name;        /* 'o' or 0 */
	enum cod_flag_type type;
	void *value;            /* bool *, const char **, int64_t *, struct cod_strlist * */
	const char *arg_name;   /* "FORMAT" */
	const char *help;
	bool *seen;             /* optional: set when given */
};

#define COD_FLAGS_END {NULL, 0, COD_FLAG_BOOL, NULL, NULL, NULL, NULL}

struct cod_output_opts {
	const char *format; /* table|csv|json|yaml */
	bool wide;
	bool hide_header;
	bool no_style;
	bool pretty;
};

struct cod_cli {
	const char *argv0;
	struct cod_config cfg;
	/* global flags */
	const char *api_host;
	int64_t api_port;
	struct cod_strlist config_args; /* -c FILE | Key=Value */
	const char *data_dir;
	const char *log_level;
	bool help;
	struct cod_output_opts out;
	bool is_tty;
	/* Shell completion (completion.c): cod_cli_dispatch() prints the
	 * subcommands and cod_cli_parse() the flags instead of running. */
	bool complete;
};

struct cod_command {
	const char *name;
	int (*fn)(struct cod_cli *cli, int argc, char **argv);
	const char *summary;
};

/* Entry point from main(). */
int cod_cli_main(int argc, char **argv);

/*
 * Parse flags of a command (plus the global flags) from argv[1..]. Flags
 * and positional arguments may interleave; "--" ends flags. Positional
 * arguments are returned in pos (argv pointers). Returns 0, or 2 after
 * printing a usage error; `--help` prints usage and returns 1 with
 * cli->help set (the caller returns 0).
 */
int cod_cli_parse(struct cod_cli *cli, int argc, char **argv, const struct cod_flag *flags, const char *usage,
		  const char *help_text, const char **pos, int *npos, int max_pos);
/* Add the output flags (--output, --wide, ...) to a flag table. */
#define COD_OUTPUT_FLAGS(cli)                                                                                  \
	{"output", 'o', COD_FLAG_STR, &(cli)->out.format, "FORMAT", "output format: table, csv, json or yaml", NULL}, \
	{"wide", 0, COD_FLAG_BOOL, &(cli)->out.wide, NULL, "do not truncate columns", NULL},                    \
	{"hide-header", 0, COD_FLAG_BOOL, &(cli)->out.hide_header, NULL, "do not print the table header", NULL}, \
	{"no-style", 0, COD_FLAG_BOOL, &(cli)->out.no_style, NULL, "plain output: no colour or borders", NULL},  \
	{"pretty", 0, COD_FLAG_BOOL, &(cli)->out.pretty, NULL, "indent json output", NULL}

/* Print "Error: <message>" and "Hint: <hint>" and return the exit code of
 * the error (freeing it). */
int cod_cli_fail(struct cod_error *err);
/* Usage error: prints the message and a pointer to --help; returns 2. */
int cod_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Dispatch to a subcommand of a group; the group's help ends with
 * examples (lines of "  cod ...\n") when not NULL. */
int cod_cli_dispatch(struct cod_cli *cli, const char *group, const struct cod_command *cmds,
		     const char *examples, int argc, char **argv);
/* The table of command groups (for completion). */
const struct cod_command *cod_cli_groups(void);
/* Load config (files, env, flags, -c) into cli->cfg after parsing. */
int cod_cli_load_config(struct cod_cli *cli, struct cod_error **err);

/* ---- API client (client.c) ---- */

/* Base URL "http://host:port" from config (0.0.0.0 -> 127.0.0.1). Heap. */
char *cod_client_base_url(struct cod_cli *cli);
/*
 * Call the API. path includes the query string. body may be NULL. On HTTP
 * 2xx *out gets the parsed JSON (NULL for an empty body); otherwise the
 * server's error body becomes *err (message, hint, code). A connection
 * failure is COD_E_NETWORK with a hint on starting the orchestrator.
 */
int cod_client_call(struct cod_cli *cli, const char *method, const char *path, const json_t *body, json_t **out,
		    struct cod_error **err);
/* URL-escape one query value. Heap. */
char *cod_client_escape(const char *s);

/* One Server-Sent Event: event name ("" for the default "message"),
 * data (data: lines joined by newlines) and id; valid during the call. */
struct cod_sse_event {
	const char *event;
	const char *data;
	const char *id;
};
/* Return < 0 to stop reading (the call then returns 0). */
typedef int (*cod_sse_fn)(void *arg, const struct cod_sse_event *ev);
/*
 * GET path with "Accept: text/event-stream" and hand each event to fn as
 * it arrives. Returns 0 when the server ended the stream (or fn stopped
 * it); errors as cod_client_call() (non-2xx: the server's error). Stops
 * with COD_E_TIMEOUT at deadline_ms (cod_mono_ms(); 0 = none) and with
 * COD_E_UNAVAILABLE "interrupted" as soon as *stop turns true (may be
 * NULL). A server silent for 60 s (it sends keepalives every 15) is
 * COD_E_NETWORK.
 */
int cod_client_sse(struct cod_cli *cli, const char *path, cod_sse_fn fn, void *arg, int64_t deadline_ms,
		   volatile sig_atomic_t *stop, struct cod_error **err);

/* ---- output (output.c) ---- */

struct cod_table {
	size_t ncols;
	const char **headers;
	size_t *max_width; /* per column truncation width (0 = none), ignored with --wide */
	char ***rows;      /* rows[i][j], owned */
	size_t nrows;
	size_t alloc;
};

void cod_table_init(struct cod_table *t, size_t ncols, const char *const *headers);
/* Add a row of ncols strings (copied; NULL prints as ""). */
void cod_table_add(struct cod_table *t, const char *const *cells);
void cod_table_set_width(struct cod_table *t, size_t col, size_t width);
void cod_table_print(struct cod_table *t, const struct cod_output_opts *opts, FILE *f);
void cod_table_release(struct cod_table *t);

/* Print a JSON value as json (compact or --pretty) or yaml per opts. */
void cod_print_value(const json_t *v, const struct cod_output_opts *opts, FILE *f);
/* Whether the format is json or yaml (a "structured" format). */
bool cod_output_structured(const struct cod_output_opts *opts);
/* Validate --output against allowed formats ("table,csv,json,yaml"). */
int cod_output_check(const struct cod_output_opts *opts, const char *allowed, const char *cmd);

/* Human helpers. */
char *cod_fmt_time(int64_t unix_ns);          /* "2026-11-28 09:19:58" local, "" for 0 */
char *cod_fmt_age(int64_t unix_ns);           /* "3m ago" */
char *cod_fmt_duration_ns(int64_t ns);        /* "1.2s", "3m4s" */
char *cod_short_id(const char *id);           /* "j-1234abcd" */
bool cod_use_color(const struct cod_cli *cli); /* for stdout */
/* Colour on fd: a terminal, no --no-style, no NO_COLOR. */
bool cod_use_color_fd(const struct cod_cli *cli, int fd);

/* ---- submitting jobs (job.c) ---- */

struct cod_run_opts {
	bool wait;            /* follow the job until it ends (default true) */
	int64_t wait_timeout; /* seconds; 0 = 600 */
	bool id_only;
	bool dry_run;         /* print the normalized job instead */
	bool force;
	bool hide_warnings;
	bool follow;          /* stream the job's logs while waiting */
};

/* Submit job (consumed; normalized and validated by the caller) and follow
 * it as `cod job run` does; returns the exit code. warnings are printed and
 * released. */
int cod_cli_run_job(struct cod_cli *cli, struct cod_job *job, struct cod_strlist *warnings,
		    const struct cod_run_opts *opts);

/* ---- job spec templates (template.c) ---- */

struct cod_template {
	const struct cod_strlist *vars;		/* -V NAME=VALUE; may be NULL */
	const struct cod_strlist *env_patterns; /* -E REGEX (POSIX extended); may be NULL */
	bool disabled;				/* --no-template */
};
/* Fill {{.name}}, {{.env.NAME}} and {{"text"}} in a spec (template.c
 * documents the subset). *out is heap, NUL-terminated. Errors name the
 * action: no value, not allowed, not supported; bad flags COD_E_USAGE. */
int cod_template_expand(const struct cod_template *t, const char *text, size_t len, char **out, size_t *out_len,
			struct cod_error **err);

/* ---- job logs (logs.c) ---- */

struct cod_logs_opts {
	const char *namespace_;
	const char *execution_id; /* full or unique prefix; NULL = all */
	int64_t tail;		  /* last N lines of each execution; -1 = all */
	bool follow;
	int64_t job_version;	  /* 0 = current */
	int64_t deadline_ms;	  /* cod_mono_ms(); 0 = none */
	volatile sig_atomic_t *stop; /* stop when it turns true (Ctrl-C) */
	bool prefix_known;	  /* prefix says whether to prefix lines... */
	bool prefix;		  /* ...instead of asking the API about the job */
};

/* Print a job's log lines as `cod job logs` does (stdout lines to stdout,
 * stderr lines to stderr). 0 when the stream ended as asked, *job_state
 * (heap, may be NULL) the job's last state; -1 with err otherwise
 * (COD_E_TIMEOUT at the deadline, COD_E_UNAVAILABLE "interrupted"). */
int cod_cli_print_logs(struct cod_cli *cli, const char *job_ref, const struct cod_logs_opts *o, char **job_state,
		       struct cod_error **err);
int cod_cmd_job_logs(struct cod_cli *cli, int argc, char **argv);

/* ---- command groups ---- */
int cod_cmd_job(struct cod_cli *cli, int argc, char **argv);
/* `cod job get` (get.c), and the job group with it in front (get.c). */
int cod_cmd_job_get(struct cod_cli *cli, int argc, char **argv);
int cod_cmd_job_group(struct cod_cli *cli, int argc, char **argv);
int cod_cmd_node(struct cod_cli *cli, int argc, char **argv);
int cod_cmd_docker(struct cod_cli *cli, int argc, char **argv);
int cod_cmd_image(struct cod_cli *cli, int argc, char **argv);
int cod_cmd_ipfs(struct cod_cli *cli, int argc, char **argv);
int cod_cmd_agent(struct cod_cli *cli, int argc, char **argv);
int cod_cmd_version(struct cod_cli *cli, int argc, char **argv);
int cod_cmd_config(struct cod_cli *cli, int argc, char **argv);
int cod_cmd_serve(struct cod_cli *cli, int argc, char **argv);
int cod_cmd_devstack(struct cod_cli *cli, int argc, char **argv);
int cod_cmd_completion(struct cod_cli *cli, int argc, char **argv);

#endif
