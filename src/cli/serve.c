/*
 * serve.c - `cod serve`: run this machine as an orchestrator, a compute
 * node, or both (hybrid). Blocks until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "compute/compute.h"
#include "orchestrator/orchestrator.h"
#include "transport/transport.h"
#include "common/banned.h"

static const char help[] =
	"Start a cod node. With --orchestrator it serves the REST API (API.Host:API.Port,\n"
	"default 0.0.0.0:1234), keeps jobs in DataDir/orchestrator/state.db and runs the\n"
	"NATS server compute nodes connect to. It writes DataDir/cod.run with the\n"
	"addresses clients use. With --compute it joins the orchestrators named by\n"
	"Compute.Orchestrators (token: Compute.Auth.Token) and runs their executions,\n"
	"keeping them in DataDir/compute/state.db. Both flags make a hybrid node. It\n"
	"stops cleanly on SIGINT or SIGTERM.\n\n"
	"Examples:\n"
	"  cod serve --orchestrator\n"
	"  cod serve --orchestrator -c API.Port=8080 --data-dir /var/lib/cod\n"
	"  cod serve --compute -c Compute.Orchestrators=nats://10.0.0.5:4222 -c Compute.Auth.Token=secret\n"
	"  cod serve --orchestrator --compute";

/* The default Compute.Orchestrators: in a hybrid node it means "this
 * orchestrator", wherever its NATS server listens. */
static bool default_orchestrators(const struct cod_config *cfg)
{
	return cfg->compute_orchestrators.n == 0 ||
	       (cfg->compute_orchestrators.n == 1 && !strcmp(cfg->compute_orchestrators.items[0], "nats://127.0.0.1:4222"));
}

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
	if (name && cod_config_set(&cli->cfg, "NodeName", name, "--name", &err) < 0)
		return cod_cli_fail(err);
	if (orchestrator)
		cli->cfg.orch_enabled = true;
	if (compute)
		cli->cfg.compute_enabled = true;
	if (!cli->cfg.orch_enabled && !cli->cfg.compute_enabled)
		return cod_cli_usage_error("serve", "choose a role: --orchestrator, --compute, or both");

	/* Block the stop signals before any thread starts so that only
	 * sigwait() below receives them. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Before any thread starts, so that every thread and the NATS
	 * server inherit it: this node's threads hand work to each other all
	 * the time, and with SCHED_BATCH the kernel does not preempt the
	 * waker for the thread it woke (fewer context switches per job;
	 * docs/config.md). The container runtime resets it for executions. */
	if (cli->cfg.batch_scheduling) {
		struct sched_param sp = {0};
		if (sched_setscheduler(0, SCHED_BATCH, &sp) < 0)
			cod_warn("serve",
				 "BatchScheduling: cannot use SCHED_BATCH (%s); running with the default "
				 "policy (set BatchScheduling=false to run so without this warning)",
				 strerror(errno));
	}

	if (cod_mkdir_p(cli->cfg.data_dir, 0700, &err) < 0)
		return cod_cli_fail(err);
	struct cod_orchestrator *orch = NULL;
	struct cod_compute *node = NULL;
	cleanup_free char *run_path = NULL;
	int exit_code = 0, sig = 0;
	if (cli->cfg.orch_enabled) {
		if (cod_orchestrator_start(&cli->cfg, &orch, &err) < 0) {
			exit_code = cod_cli_fail(err);
			goto out;
		}
		int port = cod_orchestrator_api_port(orch);
		const char *host = cli->cfg.api_host;
		if (!strcmp(host, "0.0.0.0") || !strcmp(host, "::"))
			host = "127.0.0.1";
		const char *nats_url = cod_orchestrator_nats_url(orch);
		run_path = xasprintf("%s/cod.run", cli->cfg.data_dir);
		cleanup_free char *run = xasprintf("COD_API_HOST=%s\nCOD_API_PORT=%d\nCOD_NATS_URL=%s\nCOD_PID=%d\n", host,
						   port, nats_url ? nats_url : "", (int)getpid());
		if (cod_write_file_atomic(run_path, run, strlen(run), &err) < 0) {
			exit_code = cod_cli_fail(err);
			goto out;
		}
		printf("cod orchestrator is running.\n"
		       "  API:      http://%s:%d\n"
		       "  NATS:     %s\n"
		       "  data dir: %s\n"
		       "To use it from another shell:\n"
		       "  export COD_API_HOST=%s COD_API_PORT=%d\n",
		       host, port, nats_url ? nats_url : "-", cli->cfg.data_dir, host, port);
		fflush(stdout);
		/* A hybrid node's compute side joins this orchestrator. */
		if (cli->cfg.compute_enabled && nats_url && default_orchestrators(&cli->cfg))
			cod_config_set(&cli->cfg, "Compute.Orchestrators", nats_url, "--orchestrator", NULL);
		if (cli->cfg.compute_enabled && cod_str_empty(cli->cfg.compute_token) && !cod_str_empty(cli->cfg.orch_token))
			cod_config_set(&cli->cfg, "Compute.Auth.Token", cli->cfg.orch_token, "--orchestrator", NULL);
	}
	if (cli->cfg.compute_enabled) {
		if (cod_compute_start(&cli->cfg, &node, &err) < 0) {
			exit_code = cod_cli_fail(err);
			goto out;
		}
		printf("cod compute node %s is running.\n"
		       "  orchestrator: %s\n"
		       "  data dir:     %s/compute\n",
		       cod_compute_node_id(node), cod_compute_url(node), cli->cfg.data_dir);
		fflush(stdout);
	}

	while (sigwait(&set, &sig) != 0)
		;
	cod_info("serve", "signal=%d stopping", sig);
out:
	/* The compute node first: its last messages and ShutdownNotice go
	 * out while a hybrid node's orchestrator still listens. */
	cod_compute_stop(node);
	cod_orchestrator_stop(orch);
	if (run_path && orch)
		unlink(run_path);
	cod_nats_shutdown_library();
	return exit_code;
}
