/*
 * devstack.c - `cod devstack`: a whole local cluster as separate processes:
 * an orchestrator (which runs its own nats-server) and N compute nodes,
 * each with its own data dir, labels and log file. Ctrl-C stops them all.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/mem.h"
#include "common/util.h"
#include "common/banned.h"

static const char help[] =
	"Start a local cluster: one orchestrator (REST API + embedded nats-server) and N\n"
	"compute nodes, each a separate `cod serve` process with its own data dir under\n"
	"the devstack dir, labels devstack=true, node-index=<i> and zone=zone-<i%2>, and a\n"
	"log file. Compute nodes authenticate with a token generated for this cluster.\n"
	"It prints how to point the CLI at the cluster; Ctrl-C stops everything.\n\n"
	"Examples:\n"
	"  cod devstack --computes 3\n"
	"  cod devstack --computes 2 --random-ports --data-dir /tmp/stack";

struct child {
	char *name;
	pid_t pid;
	char *log;
};

static pid_t spawn(char *const argv[], const char *log_path, char *const envp[])
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		/* own process group: a Ctrl-C reaches devstack, which then stops
		 * the children in order */
		setpgid(0, 0);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve("/proc/self/exe", argv, envp);
		_exit(127);
	}
	return pid;
}

/* Read KEY=VALUE from a cod.run file. Heap or NULL. */
static char *run_value(const char *path, const char *key)
{
	cleanup_free char *text = NULL;
	size_t len;
	if (cod_read_file(path, 4096, &text, &len, NULL) < 0)
		return NULL;
	size_t klen = strlen(key);
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (!strncmp(line, key, klen) && line[klen] == '=')
			return xstrdup(line + klen + 1);
	return NULL;
}

static void stop_child(struct child *c, int timeout_ms)
{
	if (c->pid <= 0)
		return;
	kill(c->pid, SIGTERM);
	int64_t deadline = cod_mono_ms() + timeout_ms;
	int status;
	while (waitpid(c->pid, &status, WNOHANG) == 0) {
		if (cod_mono_ms() > deadline) {
			kill(c->pid, SIGKILL);
			waitpid(c->pid, &status, 0);
			break;
		}
		struct timespec ts = {0, 20000000};
		nanosleep(&ts, NULL);
	}
	c->pid = 0;
}

/* environ plus extra variables (a static-size env is enough here). */
static char **env_with(char **extra, size_t nextra)
{
	extern char **environ;
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = xcalloc(n + nextra + 1, sizeof(char *));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		bool overridden = false;
		for (size_t j = 0; j < nextra && !overridden; j++) {
			size_t eq = (size_t)(strchr(extra[j], '=') - extra[j]);
			overridden = !strncmp(environ[i], extra[j], eq + 1);
		}
		/* children get their data dir from --data-dir, not from ours */
		if (!overridden && strncmp(environ[i], "COD_DIR=", 8) && strncmp(environ[i], "COD_API_PORT=", 13) &&
		    strncmp(environ[i], "COD_API_HOST=", 13))
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < nextra; j++)
		env[k++] = extra[j];
	env[k] = NULL;
	return env;
}

int cod_cmd_devstack(struct cod_cli *cli, int argc, char **argv)
{
	int64_t computes = 2, orchestrators = 1, hybrids = 0;
	bool random_ports = false, keep = false;
	const char *stack_dir = NULL;
	struct cod_flag flags[] = {
		{"computes", 0, COD_FLAG_INT, &computes, "N", "compute nodes to start (default 2)", NULL},
		{"orchestrators", 0, COD_FLAG_INT, &orchestrators, "N", "orchestrators (only 1 is supported)", NULL},
		{"hybrids", 0, COD_FLAG_INT, &hybrids, "N", "run the orchestrator as a hybrid node too (0 or 1)", NULL},
		{"random-ports", 0, COD_FLAG_BOOL, &random_ports, NULL, "pick free ports instead of 1234/4222", NULL},
		{"stack-dir", 0, COD_FLAG_STR, &stack_dir, "DIR", "keep the cluster's data in DIR (default: a temporary dir removed at exit)", NULL},
		{"keep", 0, COD_FLAG_BOOL, &keep, NULL, "do not remove the temporary dir at exit", NULL},
		COD_FLAGS_END,
	};
	const char *pos[1];
	int npos;
	int rc = cod_cli_parse(cli, argc, argv, flags, "devstack [flags]", help, pos, &npos, 0);
	if (rc)
		return cli->help ? 0 : rc;
	if (computes < 0 || computes > 64)
		return cod_cli_usage_error("devstack", "--computes must be 0..64");
	if (hybrids < 0 || hybrids > 1)
		return cod_cli_usage_error("devstack", "--hybrids must be 0 or 1: one orchestrator per devstack");
	if (orchestrators != 1 && !(orchestrators == 0 && hybrids == 1))
		return cod_cli_usage_error("devstack", "--orchestrators must be 1 (or 0 with --hybrids 1)");
	if (computes == 0 && hybrids == 0)
		return cod_cli_usage_error("devstack", "a cluster needs a compute node: --computes N or --hybrids 1");
	struct cod_error *err = NULL;
	if (cod_cli_load_config(cli, &err) < 0)
		return cod_cli_fail(err);

	cleanup_free char *dir = NULL;
	bool temp = !stack_dir && !cli->data_dir;
	if (stack_dir)
		dir = xstrdup(stack_dir);
	else if (cli->data_dir)
		dir = xasprintf("%s/devstack", cli->data_dir);
	else {
		char tmpl[] = "/tmp/cod-devstack.XXXXXX";
		if (!mkdtemp(tmpl)) {
			cod_error_set(&err, COD_E_IO, "create a temporary dir: %s", strerror(errno));
			return cod_cli_fail(err);
		}
		dir = xstrdup(tmpl);
	}
	if (cod_mkdir_p(dir, 0700, &err) < 0)
		return cod_cli_fail(err);

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);

	unsigned char rnd[16];
	cod_random_bytes(rnd, sizeof(rnd));
	char token[2 * sizeof(rnd) + 1];
	cod_hex_encode(rnd, sizeof(rnd), token);
	cleanup_free char *tok1 = xasprintf("COD_ORCHESTRATOR_AUTH_TOKEN=%s", token);
	cleanup_free char *tok2 = xasprintf("COD_COMPUTE_AUTH_TOKEN=%s", token);
	char *extra[] = {tok1, tok2};
	char **env = env_with(extra, 2);

	size_t nchildren = (size_t)computes + 1;
	struct child *children = xcalloc(nchildren, sizeof(*children));
	int exit_code = 0;

	/* the orchestrator */
	cleanup_free char *odir = xasprintf("%s/orchestrator", dir);
	cleanup_free char *orun = xasprintf("%s/cod.run", odir);
	unlink(orun);
	cleanup_free char *api_port = xasprintf("API.Port=%d", random_ports ? 0 : (int)cli->cfg.api_port);
	cleanup_free char *nats_port = xasprintf("Orchestrator.Port=%d", random_ports ? 0 : (int)cli->cfg.orch_port);
	children[0].name = xstrdup(hybrids ? "hybrid" : "orchestrator");
	children[0].log = xasprintf("%s/%s.log", dir, children[0].name);
	char *oargv[] = {(char *)"cod", (char *)"serve", (char *)"--orchestrator", hybrids ? (char *)"--compute" : (char *)"--orchestrator",
			 (char *)"--name", children[0].name, (char *)"--data-dir", odir, (char *)"-c", api_port, (char *)"-c", nats_port,
			 (char *)"-c", (char *)"API.Host=127.0.0.1", (char *)"-c", (char *)"Orchestrator.Host=127.0.0.1",
			 (char *)"-c", (char *)"Labels=devstack=true,node-index=0,zone=zone-0", NULL};
	children[0].pid = spawn(oargv, children[0].log, env);
	cleanup_free char *nats_url = NULL;
	cleanup_free char *port = NULL;
	cleanup_free char *run = NULL, *run_path = NULL; /* before the gotos */
	int64_t deadline = cod_mono_ms() + 30000;
	while (!(port = run_value(orun, "COD_API_PORT")) || !(nats_url = run_value(orun, "COD_NATS_URL"))) {
		int status;
		if (waitpid(children[0].pid, &status, WNOHANG) == children[0].pid) {
			children[0].pid = 0;
			cod_error_set(&err, COD_E_UNAVAILABLE, "the orchestrator exited at start; see %s", children[0].log);
			exit_code = cod_cli_fail(err);
			goto out;
		}
		if (cod_mono_ms() > deadline) {
			cod_error_set(&err, COD_E_TIMEOUT, "the orchestrator did not start within 30s; see %s",
				      children[0].log);
			exit_code = cod_cli_fail(err);
			goto out;
		}
		free(port);
		port = NULL;
		struct timespec ts = {0, 20000000};
		nanosleep(&ts, NULL);
	}

	/* the compute nodes */
	for (size_t i = 1; i < nchildren; i++) {
		struct child *c = &children[i];
		c->name = xasprintf("compute-%zu", i);
		c->log = xasprintf("%s/%s.log", dir, c->name);
		cleanup_free char *cdir = xasprintf("%s/%s", dir, c->name);
		cleanup_free char *orchs = xasprintf("Compute.Orchestrators=%s", nats_url);
		cleanup_free char *labels = xasprintf("Labels=devstack=true,node-index=%zu,zone=zone-%zu", i, i % 2);
		char *cargv[] = {(char *)"cod", (char *)"serve", (char *)"--compute", (char *)"--name", c->name,
				 (char *)"--data-dir", cdir,
				 (char *)"-c", orchs, (char *)"-c", labels, NULL};
		c->pid = spawn(cargv, c->log, env);
	}

	run = xasprintf("COD_API_HOST=127.0.0.1\nCOD_API_PORT=%s\nCOD_NATS_URL=%s\nCOD_PID=%d\n", port, nats_url,
			(int)getpid());
	run_path = xasprintf("%s/cod.run", dir);
	cod_write_file_atomic(run_path, run, strlen(run), NULL);
	printf("cod devstack is running: 1 %s, %lld compute node%s.\n"
	       "  API:   http://127.0.0.1:%s\n"
	       "  NATS:  %s\n"
	       "  data:  %s (logs: %s/*.log)\n\n"
	       "To use it from another shell:\n"
	       "  export COD_API_HOST=127.0.0.1 COD_API_PORT=%s\n"
	       "  cod node list\n\n"
	       "Press Ctrl-C to stop the cluster.\n",
	       hybrids ? "hybrid orchestrator" : "orchestrator", (long long)computes, computes == 1 ? "" : "s", port,
	       nats_url, dir, dir, port);
	fflush(stdout);

	for (;;) {
		struct timespec ts = {1, 0};
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM)
			break;
		for (size_t i = 0; i < nchildren; i++) {
			int status;
			if (children[i].pid > 0 && waitpid(children[i].pid, &status, WNOHANG) == children[i].pid) {
				fprintf(stderr, "Warning: %s exited (%s %d); see %s\n", children[i].name,
					WIFSIGNALED(status) ? "signal" : "status",
					WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), children[i].log);
				children[i].pid = 0;
			}
		}
	}
	printf("\nStopping the cluster...\n");
	unlink(run_path);
out:
	for (size_t i = nchildren; i-- > 0;)
		stop_child(&children[i], 10000);
	for (size_t i = 0; i < nchildren; i++) {
		free(children[i].name);
		free(children[i].log);
	}
	free(children);
	free(env);
	if (temp && !keep) {
		cleanup_free char *cmd = xasprintf("rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "Warning: could not remove %s\n", dir);
	} else {
		printf("Cluster data kept in %s\n", dir);
	}
	return exit_code;
}
