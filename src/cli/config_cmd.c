/*
 * config_cmd.c - `cod config list|set`: the CLI's own configuration, from
 * the one config table (config/config.h). list shows the effective value of
 * every key after config files, environment and -c overrides; set writes a
 * key into $COD_DIR/config.yaml, or into the file given with -c FILE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/mem.h"
#include "common/util.h"
#include "common/banned.h"

static const char list_help[] =
	"List every configuration key with its effective value (after the config\n"
	"file, COD_* environment variables, flags and -c Key=Value overrides) and a\n"
	"description.\n\n"
	"Examples:\n"
	"  cod config list\n"
	"  cod config list --output json | jq '.[] | select(.Key == \"API.Port\")'\n"
	"  COD_API_PORT=4321 cod config list --wide";

static int cmd_list(struct cod_cli *cli, int argc, char **argv)
{
	struct cod_flag flags[] = {
		COD_OUTPUT_FLAGS(cli),
		COD_FLAGS_END,
	};
	const char *pos[1];
	int npos;
	int rc = cod_cli_parse(cli, argc, argv, flags, "config list [flags]", list_help, pos, &npos, 0);
	if (rc)
		return cli->help ? 0 : rc;
	struct cod_error *err = NULL;
	if (cod_cli_load_config(cli, &err) < 0)
		return cod_cli_fail(err);
	size_t n;
	const struct cod_config_key *keys = cod_config_keys(&n);
	if (cod_output_structured(&cli->out)) {
		cleanup_json json_t *all = json_array();
		for (size_t i = 0; i < n; i++) {
			cleanup_free char *value = cod_config_get_text(&cli->cfg, &keys[i]);
			json_array_append_new(all, json_pack("{s:s, s:s, s:s}", "Key", keys[i].key, "Value", value,
							     "Description", keys[i].desc));
		}
		cod_print_value(all, &cli->out, stdout);
		return 0;
	}
	static const char *const headers[] = {"KEY", "VALUE", "DESCRIPTION"};
	struct cod_table t;
	cod_table_init(&t, COD_ARRAY_SIZE(headers), headers);
	cod_table_set_width(&t, 1, 40);
	cod_table_set_width(&t, 2, 70);
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *value = cod_config_get_text(&cli->cfg, &keys[i]);
		const char *row[] = {keys[i].key, value, keys[i].desc};
		cod_table_add(&t, row);
	}
	cod_table_print(&t, &cli->out, stdout);
	cod_table_release(&t);
	return 0;
}

/* The file `config set` writes: the last -c FILE, else DataDir/config.yaml
 * (DataDir from --data-dir, else $COD_DIR, else ~/.cod), the same file the
 * CLI reads by default. */
static char *target_file(const struct cod_cli *cli)
{
	const char *file = NULL;
	for (size_t i = 0; i < cli->config_args.n; i++) {
		const char *arg = cli->config_args.items[i];
		if (!strchr(arg, '=') && (access(arg, F_OK) == 0 || strchr(arg, '/') || cod_str_has_suffix(arg, ".yaml") ||
					  cod_str_has_suffix(arg, ".yml") || cod_str_has_suffix(arg, ".json")))
			file = arg;
	}
	if (file)
		return xstrdup(file);
	cleanup_free char *dir = cli->data_dir ? xstrdup(cli->data_dir) : cod_config_default_data_dir();
	return xasprintf("%s/config.yaml", dir);
}

static const char set_help[] =
	"Set a configuration key in the config file: $COD_DIR/config.yaml (default\n"
	"~/.cod/config.yaml), or the file given with -c FILE. The key and value are\n"
	"checked against the config table first; other keys in the file are kept.\n"
	"The form \"config set KEY VALUE\" is accepted too.\n\n"
	"Examples:\n"
	"  cod config set API.Port=4321\n"
	"  cod config set JobDefaults.Batch.Task.Resources.Memory=1Gi\n"
	"  cod config set -c ./cluster.yaml Labels=zone=eu,gpu=no";

static int cmd_set(struct cod_cli *cli, int argc, char **argv)
{
	const char *pos[2];
	int npos;
	int rc = cod_cli_parse(cli, argc, argv, NULL, "config set KEY=VALUE", set_help, pos, &npos, 2);
	if (rc)
		return cli->help ? 0 : rc;
	if (npos == 0)
		return cod_cli_usage_error("config set", "missing argument KEY=VALUE");
	cleanup_free char *key = NULL;
	const char *value;
	const char *eq = strchr(pos[0], '=');
	if (npos == 2) {
		if (eq)
			return cod_cli_usage_error("config set", "give either KEY=VALUE or KEY VALUE, not both");
		key = xstrdup(pos[0]);
		value = pos[1];
	} else {
		if (!eq)
			return cod_cli_usage_error("config set", "missing value for \"%s\"; use %s=VALUE", pos[0], pos[0]);
		key = xstrndup(pos[0], (size_t)(eq - pos[0]));
		value = eq + 1;
	}
	cod_str_trim(key);
	cleanup_free char *file = target_file(cli);
	struct cod_error *err = NULL;
	if (cod_config_file_set(file, key, value, &err) < 0)
		return cod_cli_fail(err);
	const struct cod_config_key *k = cod_config_find_key(key);
	printf("Set %s = %s in %s\n", k ? k->key : key, value, file);
	return 0;
}

static const struct cod_command config_commands[] = {
	{"list", cmd_list, "list every key with its effective value"},
	{"set", cmd_set, "set a key in the config file"},
	{NULL, NULL, NULL},
};

int cod_cmd_config(struct cod_cli *cli, int argc, char **argv)
{
	return cod_cli_dispatch(cli, "config", config_commands,
				"  cod config list\n"
				"  cod config set API.Port=4321\n",
				argc, argv);
}
