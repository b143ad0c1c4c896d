/*
 * serve.c - `cod serve`: run this machine as an orchestrator (and, with the
 * cluster, a compute node). Blocks until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "orchestrator/orchestrator.h"
#include "common/banned.h"

static const char help[] =
	"Start a cod node. With --orchestrator it serves the REST API (API.Host:API.Port,\n"
	"default 0.0.0.0:1234) and keeps jobs in DataDir/orchestrator/state.db.\n"
	"It writes DataDir/cod.run with the address clients use, and stops cleanly on\n"
	"SIGINT or SIGTERM.\n\n"
	"Examples:\n"
	"  cod serve --orchestrator\n"
	"  cod serve --orchestrator -c API.Port=8080 --data-dir /var/lib/cod";

int cod_cmd_serve(struct cod_cli *cli, int argc, char **argv)
{
	bool orchestrator = false, compute = false;
	const char *name = NULL;
	struct cod_flag flags[] = {
		{"orchestrator", 0, COD_FLAG_BOOL, &orchestrator, NULL, "run the orchestrator (API, store, scheduler)", NULL},
		{"compute", 0, COD_FLAG_BOOL, &compute, NULL, "run a compute node", NULL},
		{"name", 0, COD_FLAG_STR, &name, "NAME", "node name (default: generated and kept in the data dir)", NULL},
		COD_FLAGS_END,
	};
	const char *pos[1];
	int npos;
	int rc = cod_cli_parse(cli, argc, argv, flags, "serve [flags]", help, pos, &npos, 0);
	if (rc)
		return cli->help ? 0 : rc;
	struct cod_error *err = NULL;
	if (cod_cli_load_config(cli, &err) < 0)
		return cod_cli_fail(err);
	if (name)
		cod_config_set(&cli->cfg, "NodeName", name, "--name", NULL);
	if (orchestrator)
		cli->cfg.orch_enabled = true;
	if (compute)
		cli->cfg.compute_enabled = true;
	if (!cli->cfg.orch_enabled && !cli->cfg.compute_enabled)
		return cod_cli_usage_error("serve", "choose a role: --orchestrator, --compute, or both");
	if (cli->cfg.compute_enabled) {
		cod_error_set(&err, COD_E_NOT_IMPLEMENTED, "compute nodes are not available in this build yet");
		cod_error_hint(err, "run 'cod serve --orchestrator' for the API and job store");
		return cod_cli_fail(err);
	}

	/* Block the stop signals before any thread starts so that only
	 * sigwait() below receives them. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (cod_mkdir_p(cli->cfg.data_dir, 0700, &err) < 0)
		return cod_cli_fail(err);
	struct cod_orchestrator *orch = NULL;
	if (cod_orchestrator_start(&cli->cfg, &orch, &err) < 0)
		return cod_cli_fail(err);
	int port = cod_orchestrator_api_port(orch);
	const char *host = cli->cfg.api_host;
	if (!strcmp(host, "0.0.0.0") || !strcmp(host, "::"))
		host = "127.0.0.1";
	cleanup_free char *run_path = xasprintf("%s/cod.run", cli->cfg.data_dir);
	cleanup_free char *run = xasprintf("COD_API_HOST=%s\nCOD_API_PORT=%d\nCOD_PID=%d\n", host, port, (int)getpid());
	if (cod_write_file_atomic(run_path, run, strlen(run), &err) < 0) {
		cod_orchestrator_stop(orch);
		return cod_cli_fail(err);
	}
	printf("cod orchestrator is running.\n"
	       "  API:      http://%s:%d\n"
	       "  data dir: %s\n"
	       "To use it from another shell:\n"
	       "  export COD_API_HOST=%s COD_API_PORT=%d\n",
	       host, port, cli->cfg.data_dir, host, port);
	fflush(stdout);

	int sig = 0;
	while (sigwait(&set, &sig) != 0)
		;
	cod_info("serve", "signal=%d stopping", sig);
	cod_orchestrator_stop(orch);
	unlink(run_path);
	return 0;
}
