/*
 * version.c - `cod version` (and `cod --version`): the versions of this
 * client and of the server it talks to.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/mem.h"
#include "version.h"
#include "common/banned.h"

static const char help[] =
	"Print the version of the cod client and of the server (the API at\n"
	"API.Host:API.Port). With --client the server is not asked. `cod --version`\n"
	"prints the client version only.\n\n"
	"Examples:\n"
	"  cod version\n"
	"  cod version --client\n"
	"  cod version --output json";

int cod_cmd_version(struct cod_cli *cli, int argc, char **argv)
{
	bool client_only = argc > 0 && !strcmp(argv[0], "--version");
	struct cod_flag flags[] = {
		{"client", 0, COD_FLAG_BOOL, &client_only, NULL, "print the client version only", NULL},
		COD_OUTPUT_FLAGS(cli),
		COD_FLAGS_END,
	};
	const char *pos[1];
	int npos;
	int rc = cod_cli_parse(cli, argc, argv, flags, "version [flags]", help, pos, &npos, 0);
	if (rc)
		return cli->help ? 0 : rc;
	struct cod_error *err = NULL;
	if (cod_cli_load_config(cli, &err) < 0)
		return cod_cli_fail(err);
	cleanup_json json_t *client = cod_version_json();
	cleanup_json json_t *server = NULL;
	if (!client_only && cod_client_call(cli, "GET", "/api/v1/agent/version", NULL, &server, &err) < 0)
		server = NULL;
	if (cod_output_structured(&cli->out)) {
		cleanup_json json_t *v = json_pack("{s:O}", "clientVersion", client);
		if (server)
			json_object_set(v, "serverVersion", server);
		cod_print_value(v, &cli->out, stdout);
	} else {
		static const char *const headers[] = {"CLIENT", "SERVER"};
		struct cod_table t;
		cod_table_init(&t, 2, headers);
		const char *row[] = {json_string_value(json_object_get(client, "GitVersion")),
				     json_string_value(json_object_get(server, "GitVersion"))};
		cod_table_add(&t, row);
		cod_table_print(&t, &cli->out, stdout);
		cod_table_release(&t);
	}
	if (err) {
		fflush(stdout);
		fprintf(stderr, "Warning: could not get the server version\n");
		return cod_cli_fail(err);
	}
	return 0;
}
