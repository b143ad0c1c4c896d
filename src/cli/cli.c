/*
 * cli.c - cod's entry point: global flags, the command table, the flag
 * parser and error printing.
 */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "common/banned.h"

static const struct cod_command groups[] = {
	{"job", cod_cmd_job_group, "submit, inspect, stop and rerun jobs, and get their results"},
	{"node", cod_cmd_node, "list, describe, approve, reject and delete nodes"},
	{"docker", cod_cmd_docker, "run a container image as a job (docker run)"},
	{"image", cod_cmd_image, "list, pull, import and remove images of this node's store"},
	{"ipfs", cod_cmd_ipfs, "add data to an IPFS node and fetch CIDs, verified"},
	{"agent", cod_cmd_agent, "query the agent the CLI talks to (alive, version, node, config)"},
	{"config", cod_cmd_config, "show and change configuration"},
	{"serve", cod_cmd_serve, "start a cod node (orchestrator, compute, or both)"},
	{"devstack", cod_cmd_devstack, "start a local cluster: orchestrator and compute nodes"},
	{"version", cod_cmd_version, "print client and server versions"},
	{"completion", cod_cmd_completion, "print a shell completion script (bash or zsh)"},
	{NULL, NULL, NULL},
};

const struct cod_command *cod_cli_groups(void)
{
	return groups;
}

static void print_root_help(FILE *f)
{
	fprintf(f, "cod - compute over data: run containers and WASM next to your data.\n\n"
		   "Usage:\n  cod <command> [subcommand] [flags]\n\nCommands:\n");
	for (const struct cod_command *c = groups; c->name; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fprintf(f, "\nGlobal flags:\n"
		   "      --api-host HOST     API host (env COD_API_HOST, default 127.0.0.1)\n"
		   "      --api-port PORT     API port (env COD_API_PORT, default 1234)\n"
		   "  -c, --config ARG        config file, or Key=Value override (repeatable)\n"
		   "      --data-dir DIR      data directory (env COD_DIR, default ~/.cod)\n"
		   "      --log-level LEVEL   debug, info, warn or error\n"
		   "  -h, --help              help for any command\n"
		   "\nExamples:\n"
		   "  cod serve --orchestrator                 # start an orchestrator on :1234\n"
		   "  cod job run job.yaml                     # submit a Bacalhau job spec\n"
		   "  cod job list --output json\n"
		   "\nRun 'cod <command> --help' for more about a command.\n");
}

int cod_cli_fail(struct cod_error *err)
{
	if (!err) {
		fprintf(stderr, "Error: unknown failure\n");
		return 1;
	}
	fprintf(stderr, "Error: %s\n", err->message);
	for (size_t i = 0; i < err->ndetails; i++)
		if (err->ndetails > 1 || strcmp(err->details[i], err->message))
			fprintf(stderr, "  - %s\n", err->details[i]);
	if (err->hint)
		fprintf(stderr, "Hint: %s\n", err->hint);
	int code = cod_error_exit_code(err->code);
	cod_error_free(err);
	return code;
}

int cod_cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "Error: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\nHint: run 'cod %s --help' for usage\n", cmd);
	va_end(ap);
	return 2;
}

static const struct cod_flag global_flags[] = {
	{"api-host", 0, COD_FLAG_STR, NULL, "HOST", "API host", NULL},
	{"api-port", 0, COD_FLAG_INT, NULL, "PORT", "API port", NULL},
	{"config", 'c', COD_FLAG_LIST, NULL, "ARG", "config file or Key=Value", NULL},
	{"data-dir", 0, COD_FLAG_STR, NULL, "DIR", "data directory", NULL},
	{"log-level", 0, COD_FLAG_STR, NULL, "LEVEL", "log level", NULL},
	{"help", 'h', COD_FLAG_BOOL, NULL, NULL, "show help", NULL},
	COD_FLAGS_END,
};

static void *global_slot(struct cod_cli *cli, size_t i)
{
	switch (i) {
	case 0:
		return &cli->api_host;
	case 1:
		return &cli->api_port;
	case 2:
		return &cli->config_args;
	case 3:
		return &cli->data_dir;
	case 4:
		return &cli->log_level;
	default:
		return &cli->help;
	}
}

static void print_flags(FILE *f, const struct cod_flag *flags)
{
	for (const struct cod_flag *fl = flags; fl && fl->long_name; fl++) {
		char left[64], shortf[8] = "    ";
		if (fl->short_name)
			snprintf(shortf, sizeof(shortf), "-%c, ", fl->short_name);
		snprintf(left, sizeof(left), "%s--%s%s%s", shortf, fl->long_name, fl->arg_name ? " " : "",
			 fl->arg_name ? fl->arg_name : "");
		fprintf(f, "  %-30s %s\n", left, fl->help);
	}
}

static int set_flag(const struct cod_flag *fl, void *slot, const char *value, const char *cmd)
{
	switch (fl->type) {
	case COD_FLAG_BOOL:
		if (!value || !strcasecmp(value, "true") || !strcmp(value, "1"))
			*(bool *)slot = true;
		else if (!strcasecmp(value, "false") || !strcmp(value, "0"))
			*(bool *)slot = false;
		else
			return cod_cli_usage_error(cmd, "flag --%s: \"%s\" is not true or false", fl->long_name, value);
		break;
	case COD_FLAG_STR:
		*(const char **)slot = value;
		break;
	case COD_FLAG_INT: {
		int64_t v;
		if (cod_parse_i64(value, &v) < 0)
			return cod_cli_usage_error(cmd, "flag --%s: \"%s\" is not an integer", fl->long_name, value);
		*(int64_t *)slot = v;
		break;
	}
	case COD_FLAG_LIST:
		cod_strlist_add(slot, value);
		break;
	}
	if (fl->seen)
		*fl->seen = true;
	return 0;
}

/* Find a flag by long or short name in the command's table, then the
 * global one; *slot gets where its value goes. */
static const struct cod_flag *find_flag(struct cod_cli *cli, const struct cod_flag *flags, const char *lname,
					char sname, void **slot)
{
	for (const struct cod_flag *fl = flags; fl && fl->long_name; fl++) {
		if ((lname && !strcmp(fl->long_name, lname)) || (sname && fl->short_name == sname)) {
			*slot = fl->value;
			return fl;
		}
	}
	for (size_t i = 0; global_flags[i].long_name; i++) {
		const struct cod_flag *fl = &global_flags[i];
		if ((lname && !strcmp(fl->long_name, lname)) || (sname && fl->short_name == sname)) {
			*slot = global_slot(cli, i);
			return fl;
		}
	}
	return NULL;
}

static const char *closest_flag(const struct cod_flag *flags, const char *name)
{
	const char *best = NULL;
	size_t best_d = 3;
	for (const struct cod_flag *fl = flags; fl && fl->long_name; fl++) {
		size_t d = cod_edit_distance(name, fl->long_name);
		if (d < best_d) {
			best_d = d;
			best = fl->long_name;
		}
	}
	return best;
}

/* "job run FILE|-" -> "job run", for hints. */
static void command_name(const char *usage, char *out, size_t n)
{
	snprintf(out, n, "%s", usage);
	for (char *p = out; *p; p++) {
		if (*p == ' ' && (p[1] == '[' || p[1] == '<' || p[1] == '-' || (p[1] >= 'A' && p[1] <= 'Z'))) {
			*p = '\0';
			break;
		}
	}
}

/* Completion: the flags of a command, or the values of the flag being
 * completed (argv's last word). */
static void complete_flags(const struct cod_flag *flags, int argc, char **argv)
{
	const char *last = argc > 1 ? argv[argc - 1] : "";
	for (const struct cod_flag *const *t = (const struct cod_flag *const[]){flags, global_flags, NULL}; *t; t++) {
		for (const struct cod_flag *fl = *t; fl->long_name; fl++) {
			bool named = (last[0] == '-' && last[1] == '-' && !strcmp(last + 2, fl->long_name)) ||
				     (last[0] == '-' && last[1] == fl->short_name && !last[2] && fl->short_name);
			if (named && fl->type != COD_FLAG_BOOL) {
				if (!strcmp(fl->long_name, "output"))
					printf("table\ncsv\njson\nyaml\n");
				return; /* a value: nothing to offer (the shell offers files) */
			}
		}
	}
	for (const struct cod_flag *const *t = (const struct cod_flag *const[]){flags, global_flags, NULL}; *t; t++) {
		for (const struct cod_flag *fl = *t; fl->long_name; fl++) {
			printf("--%s\n", fl->long_name);
			if (fl->short_name)
				printf("-%c\n", fl->short_name);
		}
	}
}

int cod_cli_parse(struct cod_cli *cli, int argc, char **argv, const struct cod_flag *flags, const char *usage,
		  const char *help_text, const char **pos, int *npos, int max_pos)
{
	if (cli->complete) {
		complete_flags(flags, argc, argv);
		cli->help = true;
		*npos = 0;
		return 1;
	}
	char cmd[64];
	command_name(usage, cmd, sizeof(cmd));
	*npos = 0;
	bool only_pos = false;
	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		if (only_pos || a[0] != '-' || !a[1]) {
			if (*npos >= max_pos)
				return cod_cli_usage_error(cmd, "unexpected argument \"%s\"", a);
			pos[(*npos)++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = true;
			continue;
		}
		void *slot = NULL;
		const struct cod_flag *fl;
		const char *value = NULL;
		cleanup_free char *name = NULL;
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			name = eq ? xstrndup(a + 2, (size_t)(eq - a - 2)) : xstrdup(a + 2);
			value = eq ? eq + 1 : NULL;
			fl = find_flag(cli, flags, name, 0, &slot);
			if (!fl) {
				const char *near = closest_flag(flags, name);
				if (near)
					return cod_cli_usage_error(cmd, "unknown flag --%s (did you mean --%s?)", name, near);
				return cod_cli_usage_error(cmd, "unknown flag --%s", name);
			}
		} else {
			if (a[2]) {
				/* -oVALUE or -abc is not supported for clarity except -xVALUE */
				fl = find_flag(cli, flags, NULL, a[1], &slot);
				if (!fl)
					return cod_cli_usage_error(cmd, "unknown flag -%c", a[1]);
				value = a + 2;
			} else {
				fl = find_flag(cli, flags, NULL, a[1], &slot);
				if (!fl)
					return cod_cli_usage_error(cmd, "unknown flag -%c", a[1]);
			}
		}
		if (fl->type != COD_FLAG_BOOL && !value) {
			if (i + 1 >= argc)
				return cod_cli_usage_error(cmd, "flag --%s needs a value%s%s", fl->long_name,
							   fl->arg_name ? " " : "", fl->arg_name ? fl->arg_name : "");
			value = argv[++i];
		}
		if (set_flag(fl, slot, value, cmd))
			return 2;
	}
	if (cli->help) {
		printf("%s\n\nUsage:\n  cod %s\n", help_text, usage);
		if (flags && flags->long_name) {
			printf("\nFlags:\n");
			print_flags(stdout, flags);
		}
		printf("\nGlobal flags:\n");
		print_flags(stdout, global_flags);
		return 1;
	}
	if (cli->out.format && cod_output_check(&cli->out, "table,csv,json,yaml", cmd) < 0)
		return 2;
	return 0;
}

int cod_cli_dispatch(struct cod_cli *cli, const char *group, const struct cod_command *cmds,
		     const char *examples, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;
	if (cli->complete) {
		for (const struct cod_command *c = cmds; sub && c->name; c++)
			if (!strcmp(c->name, sub))
				return c->fn(cli, argc - 1, argv + 1);
		for (const struct cod_command *c = cmds; c->name; c++)
			printf("%s\n", c->name);
		return 0;
	}
	if (!sub || !strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
		FILE *f = sub ? stdout : stderr;
		fprintf(f, "Usage:\n  cod %s <command> [flags]\n\nCommands:\n", group);
		for (const struct cod_command *c = cmds; c->name; c++)
			fprintf(f, "  %-12s %s\n", c->name, c->summary);
		fprintf(f, "\nRun 'cod %s <command> --help' for more.\n", group);
		if (examples)
			fprintf(f, "\nExamples:\n%s", examples);
		return sub ? 0 : 2;
	}
	for (const struct cod_command *c = cmds; c->name; c++)
		if (!strcmp(c->name, sub))
			return c->fn(cli, argc - 1, argv + 1);
	const char *near = NULL;
	size_t best = 3;
	for (const struct cod_command *c = cmds; c->name; c++) {
		size_t d = cod_edit_distance(sub, c->name);
		if (d < best) {
			best = d;
			near = c->name;
		}
	}
	fprintf(stderr, "Error: unknown command \"%s\" for \"cod %s\"\n", sub, group);
	if (near)
		fprintf(stderr, "Hint: did you mean \"cod %s %s\"?\n", group, near);
	else
		fprintf(stderr, "Hint: run 'cod %s --help' for the list of commands\n", group);
	return 2;
}

int cod_cli_load_config(struct cod_cli *cli, struct cod_error **err)
{
	struct cod_config *cfg = &cli->cfg;
	bool have_file = false;
	for (size_t i = 0; i < cli->config_args.n; i++) {
		const char *arg = cli->config_args.items[i];
		if (!strchr(arg, '=')) {
			if (access(arg, F_OK) == 0 || strchr(arg, '/') || cod_str_has_suffix(arg, ".yaml") ||
			    cod_str_has_suffix(arg, ".yml") || cod_str_has_suffix(arg, ".json")) {
				if (cod_config_load_file(cfg, arg, false, err) < 0)
					return -1;
				have_file = true;
			}
		}
	}
	/* the data dir decides where the default config file is */
	cleanup_free char *dir = NULL;
	if (cli->data_dir)
		dir = xstrdup(cli->data_dir);
	else
		dir = cod_config_default_data_dir();
	if (!have_file) {
		cleanup_free char *path = xasprintf("%s/config.yaml", dir);
		if (cod_config_load_file(cfg, path, true, err) < 0)
			return -1;
	}
	if (cod_config_apply_env(cfg, err) < 0)
		return -1;
	if (cli->data_dir || cod_str_empty(cfg->data_dir))
		cod_config_set(cfg, "DataDir", dir, "--data-dir", NULL);
	if (cli->api_host && cod_config_set(cfg, "API.Host", cli->api_host, "--api-host", err) < 0)
		return -1;
	if (cli->api_port) {
		char port[32];
		snprintf(port, sizeof(port), "%lld", (long long)cli->api_port);
		if (cod_config_set(cfg, "API.Port", port, "--api-port", err) < 0)
			return -1;
	}
	if (cli->log_level && cod_config_set(cfg, "Logging.Level", cli->log_level, "--log-level", err) < 0)
		return -1;
	for (size_t i = 0; i < cli->config_args.n; i++) {
		const char *arg = cli->config_args.items[i];
		const char *eq = strchr(arg, '=');
		if (eq) {
			cleanup_free char *key = xstrndup(arg, (size_t)(eq - arg));
			if (cod_config_set(cfg, key, eq + 1, "-c", err) < 0)
				return -1;
		} else if (!strchr(arg, '/') && !cod_str_has_suffix(arg, ".yaml") && !cod_str_has_suffix(arg, ".yml") &&
			   !cod_str_has_suffix(arg, ".json") && access(arg, F_OK) != 0) {
			/* a bare key means true, as Bacalhau does */
			if (cod_config_set(cfg, arg, "true", "-c", err) < 0)
				return -1;
		}
	}
	int level = cod_log_parse_level(cfg->log_level);
	if (level < 0)
		return cod_error_set(err, COD_E_CONFIG, "Logging.Level: \"%s\" is not debug, info, warn or error",
				     cfg->log_level);
	cod_log_set_level((enum cod_log_level)level);
	return 0;
}

int cod_cli_main(int argc, char **argv)
{
	struct cod_cli cli;
	memset(&cli, 0, sizeof(cli));
	cli.argv0 = "cod";
	cli.is_tty = isatty(STDOUT_FILENO);
	cod_config_init(&cli.cfg);
	int rc;
	if (argc < 2) {
		print_root_help(stderr);
		rc = 2;
	} else if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		print_root_help(stdout);
		rc = 0;
	} else if (!strcmp(argv[1], "--version")) {
		rc = cod_cmd_version(&cli, argc - 1, argv + 1);
	} else {
		rc = -1;
		for (const struct cod_command *c = groups; c->name; c++) {
			if (!strcmp(c->name, argv[1])) {
				rc = c->fn(&cli, argc - 1, argv + 1);
				break;
			}
		}
		if (rc == -1) {
			const char *near = NULL;
			size_t best = 3;
			for (const struct cod_command *c = groups; c->name; c++) {
				size_t d = cod_edit_distance(argv[1], c->name);
				if (d < best) {
					best = d;
					near = c->name;
				}
			}
			fprintf(stderr, "Error: unknown command \"%s\"\n", argv[1]);
			if (near)
				fprintf(stderr, "Hint: did you mean \"cod %s\"?\n", near);
			else
				fprintf(stderr, "Hint: run 'cod --help' for the list of commands\n");
			rc = 2;
		}
	}
	cod_strlist_release(&cli.config_args);
	cod_config_release(&cli.cfg);
	return rc;
}
