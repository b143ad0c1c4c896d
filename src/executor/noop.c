/*
 * noop.c - the noop executor: runs nothing, but can act like a task.
 *
 * Params (all optional, keys case-insensitive):
 *   Sleep     "500ms", "2s", "1m" or a number of seconds (0.5): wait that
 *             long, cancellable
 *   ExitCode  the exit code to report (integer)
 *   Stdout    text written to stdout; ${NAME} expands the execution's
 *   Stderr    environment (BACALHAU_PARTITION_INDEX, task Env...)
 *   Fail      an error message: the run fails with it (after Sleep and Lines)
 *   Lines     write this many lines over time (1..1000000), after Sleep:
 *   Interval  the pause before each line but the first (a duration)
 *   Line      the text of each line (default "line ${LINE}"); ${LINE} is
 *             the line's number, ${NAME} the execution's environment
 *   Stream    where lines go: stdout (default), stderr, or alternate
 *             (odd lines to stdout, even ones to stderr)
 * Lines exist to exercise log streaming: output that arrives while the
 * execution runs. Anything else is refused, so a typo does not silently
 * pass.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "executor/executor.h"
#include "common/banned.h"

#define KNOWN_PARAMS "Sleep, ExitCode, Stdout, Stderr, Fail, Lines, Interval, Line, Stream"

struct noop_params {
	int64_t sleep_ms;
	int64_t exit_code;
	const char *stdout_text;
	const char *stderr_text;
	const char *fail;
	int64_t lines;
	int64_t interval_ms;
	const char *line;
	int stream; /* 0 stdout, 1 stderr, 2 alternate */
};

static int parse_duration(const char *key, const json_t *v, int64_t *out, struct cod_error **err);

static int param_error(struct cod_error **err, const char *key, const char *what)
{
	return cod_error_set(err, COD_E_VALIDATION, "noop: parameter \"%s\": %s", key, what);
}

static int parse_params(const json_t *params, struct noop_params *p, struct cod_error **err)
{
	memset(p, 0, sizeof(*p));
	if (!params || json_is_null(params))
		return 0;
	if (!json_is_object(params))
		return cod_error_set(err, COD_E_VALIDATION, "noop: Params must be an object");
	const char *key;
	json_t *v;
	json_object_foreach ((json_t *)params, key, v) {
		if (!strcasecmp(key, "Sleep") || !strcasecmp(key, "Interval")) {
			if (parse_duration(key, v, !strcasecmp(key, "Sleep") ? &p->sleep_ms : &p->interval_ms, err) < 0)
				return -1;
		} else if (!strcasecmp(key, "Lines")) {
			if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000000)
				return param_error(err, key, "must be an integer from 1 to 1000000");
			p->lines = json_integer_value(v);
		} else if (!strcasecmp(key, "Line")) {
			if (!json_is_string(v))
				return param_error(err, key, "must be a string");
			p->line = json_string_value(v);
		} else if (!strcasecmp(key, "Stream")) {
			const char *sv = json_is_string(v) ? json_string_value(v) : "";
			if (!strcasecmp(sv, "stdout"))
				p->stream = 0;
			else if (!strcasecmp(sv, "stderr"))
				p->stream = 1;
			else if (!strcasecmp(sv, "alternate"))
				p->stream = 2;
			else
				return param_error(err, key, "must be stdout, stderr or alternate");
		} else if (!strcasecmp(key, "ExitCode")) {
			if (json_is_integer(v)) {
				p->exit_code = json_integer_value(v);
			} else if (!json_is_string(v) ||
				   cod_parse_i64(json_string_value(v), &p->exit_code) < 0) {
				return param_error(err, key, "must be an integer");
			}
		} else if (!strcasecmp(key, "Stdout") || !strcasecmp(key, "Stderr") ||
			   !strcasecmp(key, "Fail")) {
			if (!json_is_string(v))
				return param_error(err, key, "must be a string");
			const char *s = json_string_value(v);
			if (!strcasecmp(key, "Stdout"))
				p->stdout_text = s;
			else if (!strcasecmp(key, "Stderr"))
				p->stderr_text = s;
			else
				p->fail = s;
		} else {
			return cod_error_set(err, COD_E_VALIDATION,
					     "noop: unknown parameter \"%s\"; known: " KNOWN_PARAMS, key);
		}
	}
	return 0;
}

static int parse_duration(const char *key, const json_t *v, int64_t *out, struct cod_error **err)
{
	if (json_is_number(v)) {
		double s = json_number_value(v);
		if (!(s >= 0) || s > 365.0 * 86400)
			return param_error(err, key, "must be a non-negative number of seconds");
		*out = (int64_t)llround(s * 1000);
	} else if (json_is_string(v)) {
		if (cod_parse_duration_ms(json_string_value(v), out) < 0)
			return param_error(err, key, "is not a duration; use e.g. 500ms, 2s or 1m");
	} else {
		return param_error(err, key, "must be a duration string or a number of seconds");
	}
	return 0;
}

/* Lines over time; true when cancelled. */
static bool write_lines(struct cod_executor_run *run, const struct noop_params *p)
{
	struct cod_kvlist env = {0};
	if (run->env)
		cod_kvlist_copy(&env, run->env);
	bool cancelled = false;
	for (int64_t i = 1; i <= p->lines && !cancelled; i++) {
		if (i > 1 && p->interval_ms > 0 && cod_executor_wait(run, cod_mono_ms() + p->interval_ms)) {
			cancelled = true;
			break;
		}
		char num[32];
		snprintf(num, sizeof(num), "%lld", (long long)i);
		cod_kvlist_set(&env, "LINE", num);
		cleanup_free char *text = cod_executor_expand(p->line ? p->line : "line ${LINE}", &env);
		cleanup_free char *withnl = xasprintf("%s\n", text);
		bool to_err = p->stream == 1 || (p->stream == 2 && i % 2 == 0);
		cod_executor_output_add(to_err ? &run->err : &run->out, withnl, strlen(withnl));
		cancelled = cod_executor_cancelled(run);
	}
	cod_kvlist_release(&env);
	return cancelled;
}

static bool noop_supports_network(enum cod_network_type type)
{
	return type == COD_NET_NONE || type == COD_NET_DEFAULT || type == COD_NET_HOST ||
	       type == COD_NET_FULL;
}

static int noop_run(struct cod_executor_run *run, struct cod_error **err)
{
	struct noop_params p;
	if (parse_params(run->task ? run->task->engine.params : NULL, &p, err) < 0)
		return -1;
	if (cod_executor_cancelled(run))
		return cod_error_set(err, COD_E_UNAVAILABLE, "cancelled");
	if (p.sleep_ms > 0 && cod_executor_wait(run, cod_mono_ms() + p.sleep_ms))
		return cod_error_set(err, COD_E_UNAVAILABLE, "cancelled");
	if (p.lines && write_lines(run, &p))
		return cod_error_set(err, COD_E_UNAVAILABLE, "cancelled");
	if (p.fail)
		return cod_error_set(err, COD_E_INTERNAL, "%s", p.fail);
	if (p.stdout_text) {
		cleanup_free char *text = cod_executor_expand(p.stdout_text, run->env);
		cod_executor_output_add(&run->out, text, strlen(text));
	}
	if (p.stderr_text) {
		cleanup_free char *text = cod_executor_expand(p.stderr_text, run->env);
		cod_executor_output_add(&run->err, text, strlen(text));
	}
	run->exit_code = p.exit_code;
	return 0;
}

const struct cod_executor_ops cod_executor_noop = {
    .name = "noop",
    .is_installed = NULL, /* nothing to install */
    .supports_network = noop_supports_network,
    .run = noop_run,
    .cancel = NULL, /* cod_executor_wait() wakes on cancel */
};
