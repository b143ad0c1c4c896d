/*
 * agent.c - `cod agent ...`: ask the node the CLI talks to whether it is
 * alive, its version, its node info and its effective configuration
 * (the /api/v1/agent routes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/mem.h"
#include "common/banned.h"

/* Parse (no arguments), check the format (json or yaml), load config and
 * GET path. Returns -1 with *out set to go on, else the exit code. */
static int agent_get(struct cod_cli *cli, int argc, char **argv, const char *cmd, const char *help,
		     const char *path, json_t **out)
{
	struct cod_flag flags[] = {
		COD_OUTPUT_FLAGS(cli),
		COD_FLAGS_END,
	};
	char usage[64];
	snprintf(usage, sizeof(usage), "%s [flags]", cmd);
	const char *pos[1];
	int npos;
	int rc = cod_cli_parse(cli, argc, argv, flags, usage, help, pos, &npos, 0);
	if (rc)
		return cli->help ? 0 : rc;
	if (cod_output_check(&cli->out, "json,yaml", cmd) < 0)
		return 2;
	struct cod_error *err = NULL;
	if (cod_cli_load_config(cli, &err) < 0 || cod_client_call(cli, "GET", path, NULL, out, &err) < 0)
		return cod_cli_fail(err);
	if (!*out)
		*out = json_object();
	return -1;
}

static void print_structured(struct cod_cli *cli, const json_t *v)
{
	struct cod_output_opts opts = cli->out;
	if (!opts.format)
		opts.format = "yaml";
	cod_print_value(v, &opts, stdout);
}

static const char alive_help[] =
	"Check that the agent (the orchestrator or node the CLI talks to) is up.\n"
	"Prints \"Status: OK\" and exits 0 when it answers.\n\n"
	"Examples:\n"
	"  cod agent alive\n"
	"  cod agent alive --output json";

static int cmd_alive(struct cod_cli *cli, int argc, char **argv)
{
	json_t *resp = NULL;
	int rc = agent_get(cli, argc, argv, "agent alive", alive_help, "/api/v1/agent/alive", &resp);
	if (rc >= 0)
		return rc;
	const char *status = json_string_value(json_object_get(resp, "Status"));
	if (cod_output_structured(&cli->out))
		cod_print_value(resp, &cli->out, stdout);
	else
		printf("Status: %s\n", status ? status : "unknown");
	rc = status && !strcmp(status, "OK") ? 0 : 1;
	json_decref(resp);
	return rc;
}

static const char version_help[] =
	"Print the build version of the agent: {Major, Minor, GitVersion, GitCommit,\n"
	"BuildDate, GOOS, GOARCH}. YAML by default.\n\n"
	"Examples:\n"
	"  cod agent version\n"
	"  cod agent version --output json";

static int cmd_version(struct cod_cli *cli, int argc, char **argv)
{
	json_t *resp = NULL;
	int rc = agent_get(cli, argc, argv, "agent version", version_help, "/api/v1/agent/version", &resp);
	if (rc >= 0)
		return rc;
	print_structured(cli, resp);
	json_decref(resp);
	return 0;
}

static const char node_help[] =
	"Print the agent's own node info: ID, type, labels, protocols, compute\n"
	"capacity and version. YAML by default.\n\n"
	"Examples:\n"
	"  cod agent node\n"
	"  cod agent node --output json --pretty";

static int cmd_node(struct cod_cli *cli, int argc, char **argv)
{
	json_t *resp = NULL;
	int rc = agent_get(cli, argc, argv, "agent node", node_help, "/api/v1/agent/node", &resp);
	if (rc >= 0)
		return rc;
	print_structured(cli, resp);
	json_decref(resp);
	return 0;
}

static const char config_help[] =
	"Print the agent's effective configuration (secrets masked). YAML by\n"
	"default. `cod config list` shows the CLI's own configuration instead.\n\n"
	"Examples:\n"
	"  cod agent config\n"
	"  cod agent config --output json | jq .API";

static int cmd_config(struct cod_cli *cli, int argc, char **argv)
{
	json_t *resp = NULL;
	int rc = agent_get(cli, argc, argv, "agent config", config_help, "/api/v1/agent/config", &resp);
	if (rc >= 0)
		return rc;
	/* the API wraps it as {"config": {...}}; print the config itself */
	json_t *config = json_object_get(resp, "config");
	print_structured(cli, config ? config : resp);
	json_decref(resp);
	return 0;
}

static const struct cod_command agent_commands[] = {
	{"alive", cmd_alive, "check that the agent is up"},
	{"version", cmd_version, "print the agent's version"},
	{"node", cmd_node, "print the agent's node info"},
	{"config", cmd_config, "print the agent's configuration"},
	{NULL, NULL, NULL},
};

int cod_cmd_agent(struct cod_cli *cli, int argc, char **argv)
{
	return cod_cli_dispatch(cli, "agent", agent_commands,
				"  cod agent alive\n"
				"  cod agent config --output json\n",
				argc, argv);
}
