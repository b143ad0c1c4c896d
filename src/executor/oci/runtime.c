/*
 * runtime.c - running a bundle with crun or runc, supervised.
 *
 *   <runtime> --root <state> [--cgroup-manager=cgroupfs] run --bundle B --pid-file P ID
 *
 * is a child of the compute node; its stdout and stderr are pipes read
 * here and handed to the caller, its end is watched through a pidfd (no
 * SIGCHLD handler). The exit status of `run` is the container's (128+N
 * for a signal). A kill request runs `<runtime> kill --all ID KILL`, again
 * every 500 ms until the container is gone (a kill can arrive before the
 * runtime created it); if the runtime itself hangs, it is SIGKILLed after
 * 10 s and the state is deleted.
 *
 * cgroups: the container's cgroup is /cod/<id>/ctr; cod creates /cod/<id>
 * first and keeps it until the end, because the runtime removes the
 * container's own cgroup when the container exits, taking its OOM
 * counters with it:
 *   v2: /cod/<id>/memory.events "oom_kill" counts the container's OOM kills
 *       (events are hierarchical);
 *   v1: oom_kill is not hierarchical; the container's memory.oom_control is
 *       polled while it runs, and /cod/<id>/memory.max_usage_in_bytes
 *       reaching the limit together with a SIGKILL end says OOM too.
 *
 * Disk: without project quotas on the data dir, a watchdog measures the
 * writable layer and the result directories every second (less often for
 * big trees) and kills the container once they exceed the task's Disk.
 */
#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "executor/oci/oci.h"
#include "common/banned.h"

#define STATE_ROOT "/run/cod/oci"
#define KILL_RETRY_MS 500
#define RUNTIME_HANG_MS 10000
#define DISK_CHECK_MS 1000
#define OOM_POLL_MS 200

extern char **environ;

struct cod_oci_container {
	char *id;
	char *bundle;
	int wake[2]; /* kill requests wake the supervisor */
	pthread_mutex_t lock;
	bool kill_requested;
};

/* The hierarchies a container's cgroups are removed from on v1 and hybrid
 * hosts; "unified" is a hybrid host's cgroup2 mount, where runc makes
 * them too (crun does not see it, see spawn_child). */
static const char *const v1_hierarchies[] = {"memory", "cpu",	  "cpuacct", "pids",	"cpuset",
					     "blkio",  "devices", "freezer", "systemd", "unified"};

/* ------------------------------------------------------------ processes */

/* The runtime's state directory: one per data dir, so that compute nodes
 * sharing a machine (a devstack) never see each other's containers, and a
 * node can sweep what a crash of its own left behind. */
char *cod_oci_state_root(void)
{
	const struct cod_oci_settings *s = cod_oci_settings();
	unsigned char md[32];
	unsigned int len = 0;
	EVP_Digest(s->images_dir, strlen(s->images_dir), md, &len, EVP_sha256(), NULL);
	return xasprintf("%s/%02x%02x%02x%02x%02x%02x/%s", STATE_ROOT, md[0], md[1], md[2], md[3], md[4],
			 md[5], s->runtime_name ? s->runtime_name : "none");
}

void cod_oci_state_release(void)
{
	if (!cod_oci_settings()->runtime_path)
		return;
	cleanup_free char *root = cod_oci_state_root();
	/* empty once every container is deleted; the runtime makes it again */
	if (rmdir(root) == 0) {
		*strrchr(root, '/') = '\0';
		rmdir(root);
	}
}

/* argv for the runtime: global options first. Heap array of borrowed or
 * heap strings: free with free_argv. */
static char **runtime_argv(const char *const *args)
{
	const struct cod_oci_settings *s = cod_oci_settings();
	size_t n = 0;
	while (args[n])
		n++;
	char **argv = xcalloc(n + 6, sizeof(char *));
	size_t i = 0;
	argv[i++] = xstrdup(s->runtime_path);
	argv[i++] = xstrdup("--root");
	argv[i++] = cod_oci_state_root();
	/* runc uses cgroupfs unless --systemd-cgroup is given */
	if (!strcmp(s->runtime_name, "crun"))
		argv[i++] = xstrdup("--cgroup-manager=cgroupfs");
	for (size_t j = 0; j < n; j++)
		argv[i++] = xstrdup(args[j]);
	argv[i] = NULL;
	return argv;
}

static void free_argv(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* What the child of spawn_runtime() needs, prepared before it starts. */
struct spawn_args {
	char **argv;
	char *const *envp;
	int devnull, out_fd, err_fd;
	int exe_fd; /* the runtime's sealed copy, or -1: argv[0] */
	bool hide;
};

/*
 * crun and runc copy their own binary into a sealed memfd and execute
 * that copy before they touch a container (CVE-2019-5736), unless they
 * already run from one: a second exec, with its dynamic linking, at every
 * container. The node makes that copy once (what runc's memfd-bind does)
 * and starts the runtime from it. A runtime upgraded on disk is picked up
 * when the node restarts. -1 when the copy cannot be made.
 */
static int runtime_exe_fd = -1;
static char *runtime_exe_path; /* what it is a copy of */

static void seal_runtime(void)
{
	const char *path = cod_oci_settings()->runtime_path;
	int in = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (in < 0)
		return;
	int fd = memfd_create(cod_oci_settings()->runtime_name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	struct stat st;
	bool ok = fd >= 0 && fstat(in, &st) == 0;
	for (off_t off = 0; ok && off < st.st_size;) {
		ssize_t n = sendfile(fd, in, &off, (size_t)(st.st_size - off));
		ok = n > 0;
	}
	close(in);
	if (ok)
		ok = fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) == 0;
	if (!ok) {
		cod_debug("oci", "no sealed copy of %s (%s): each run copies itself", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	if (fd < 3) { /* above the descriptors the child sets up */
		int hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		close(fd);
		if (hi < 0)
			return;
		fd = hi;
	}
	runtime_exe_fd = fd;
	runtime_exe_path = xstrdup(path);
}

/* The child: it runs in the parent's memory, on its own stack, until
 * execve (CLONE_VFORK suspends the parent meanwhile), so only system
 * calls run here, nothing that allocates or locks. */
__attribute__((no_sanitize("address"))) static int spawn_child(void *arg)
{
	const struct spawn_args *a = arg;
	if (a->devnull >= 0)
		dup2(a->devnull, 0);
	dup2(a->out_fd >= 0 ? a->out_fd : a->devnull, 1);
	dup2(a->err_fd >= 0 ? a->err_fd : a->devnull, 2);
	if (a->exe_fd > 3) /* kept until execveat, which closes it (CLOEXEC) */
		syscall(SYS_close_range, 3U, (unsigned)a->exe_fd - 1, 0U);
	syscall(SYS_close_range, a->exe_fd >= 3 ? (unsigned)a->exe_fd + 1 : 3U, ~0U, 0U);
	setpgid(0, 0);
	/* the execution runs with the default policy, whatever the node's
	 * own (BatchScheduling) */
	struct sched_param sp = {0};
	sched_setscheduler(0, SCHED_OTHER, &sp);
	if (a->hide) {
		/* a private mount namespace without the cgroup2 mount of a
		 * hybrid host, which crun 1.8 refuses */
		if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
			umount2("/sys/fs/cgroup/unified", MNT_DETACH);
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (a->exe_fd >= 0)
		syscall(SYS_execveat, a->exe_fd, "", a->argv, a->envp, AT_EMPTY_PATH);
	execve(a->argv[0], a->argv, a->envp);
	_exit(127);
}

/* The child's stack: it only makes system calls. */
#define SPAWN_STACK (64 * 1024)

/*
 * Start the runtime with stdout/stderr on the given fds (-1 = /dev/null).
 * Not fork(): copying the page tables of a large multi-threaded process
 * for each container cost more CPU than the runtime itself on virtual
 * machines where page-table writes trap. clone(CLONE_VM | CLONE_VFORK) is
 * what posix_spawn does, which cannot set up the mount namespace here.
 * Signals stay blocked from the clone until just before execve.
 */
static pid_t spawn_runtime(char **argv, int out_fd, int err_fd)
{
	const struct cod_oci_settings *s = cod_oci_settings();
	char *const envp[] = {(char *)"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			      NULL};
	static pthread_once_t sealed = PTHREAD_ONCE_INIT;
	pthread_once(&sealed, seal_runtime);
	bool copy = runtime_exe_path && s->runtime_path && !strcmp(runtime_exe_path, s->runtime_path);
	struct spawn_args a = {.argv = argv,
			       .exe_fd = copy ? runtime_exe_fd : -1,
			       .envp = envp,
			       .devnull = open("/dev/null", O_RDWR | O_CLOEXEC),
			       .out_fd = out_fd,
			       .err_fd = err_fd,
			       .hide = s->crun_hide_unified};
	char *stack = xmalloc(SPAWN_STACK);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = clone(spawn_child, stack + SPAWN_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	free(stack);
	if (a.devnull >= 0)
		close(a.devnull);
	return pid;
}

static int wait_child(pid_t pid, int64_t timeout_ms)
{
	int64_t deadline = cod_mono_ms() + timeout_ms;
	int status = 0;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -1;
		if (cod_mono_ms() >= deadline) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			return -1;
		}
		struct timespec ts = {0, 2 * 1000000};
		nanosleep(&ts, NULL);
	}
}

int cod_oci_runtime_exec(const char *const *args, struct cod_buf *out, int64_t timeout_ms)
{
	if (!cod_oci_settings()->runtime_path)
		return -1;
	char **argv = runtime_argv(args);
	int p[2] = {-1, -1};
	if (out && pipe2(p, O_CLOEXEC) < 0) {
		free_argv(argv);
		return -1;
	}
	pid_t pid = spawn_runtime(argv, out ? p[1] : -1, out ? p[1] : -1);
	free_argv(argv);
	if (out)
		close(p[1]);
	if (pid < 0) {
		if (out)
			close(p[0]);
		return -1;
	}
	if (out) {
		char buf[4096];
		ssize_t n;
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		int64_t deadline = cod_mono_ms() + timeout_ms;
		while (cod_mono_ms() < deadline) {
			int left = (int)(deadline - cod_mono_ms());
			if (poll(&pfd, 1, left > 0 ? left : 0) <= 0)
				break;
			n = read(p[0], buf, sizeof(buf));
			if (n <= 0)
				break;
			cod_buf_add(out, buf, (size_t)n);
		}
		close(p[0]);
	}
	int status = wait_child(pid, timeout_ms);
	return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* -------------------------------------------------------------- cgroups */

static char *cg_dir(const char *controller, const char *id)
{
	if (cod_oci_settings()->cgroup_mode == COD_CGROUP_V2)
		return xasprintf("/sys/fs/cgroup/cod/%s", id);
	return xasprintf("/sys/fs/cgroup/%s/cod/%s", controller ? controller : "unified", id);
}

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, text, strlen(text)) < 0)
		cod_debug("oci", "write %s: %s", path, strerror(errno));
	close(fd);
}

/*
 * cgroup v1: when a container exits, crun freezes its cgroup, kills what
 * is left and thaws it. The kernel switches its freezer on when a first
 * cgroup freezes and off when the last one thaws, and each switch patches
 * kernel text on every CPU: a tenth of crun's CPU time per container on a
 * virtual machine here. An empty cgroup kept frozen keeps the freezer on,
 * so those freezes only count. It holds no process; a restart reuses it.
 */
static void keep_freezer_on(void)
{
	if (access("/sys/fs/cgroup/freezer", F_OK) != 0)
		return;
	mkdir("/sys/fs/cgroup/freezer/cod", 0755);
	mkdir("/sys/fs/cgroup/freezer/cod/keep-frozen", 0755);
	write_text("/sys/fs/cgroup/freezer/cod/keep-frozen/freezer.state", "FROZEN");
}

char *cod_oci_cgroup_prepare(const char *id, const struct cod_oci_limits *limits)
{
	(void)limits;
	const struct cod_oci_settings *s = cod_oci_settings();
	if (s->cgroup_mode == COD_CGROUP_V2) {
		/* let the controllers reach /cod/<id>/ctr */
		write_text("/sys/fs/cgroup/cgroup.subtree_control", "+memory +cpu +pids");
		mkdir("/sys/fs/cgroup/cod", 0755);
		write_text("/sys/fs/cgroup/cod/cgroup.subtree_control", "+memory +cpu +pids");
		cleanup_free char *d = cg_dir(NULL, id);
		mkdir(d, 0755);
		cleanup_free char *sc = xasprintf("%s/cgroup.subtree_control", d);
		write_text(sc, "+memory +cpu +pids");
	} else if (s->cgroup_mode == COD_CGROUP_V1 || s->cgroup_mode == COD_CGROUP_HYBRID) {
		static pthread_once_t freezer_once = PTHREAD_ONCE_INIT;
		pthread_once(&freezer_once, keep_freezer_on);
		cleanup_free char *top = xasprintf("/sys/fs/cgroup/memory/cod");
		mkdir(top, 0755);
		cleanup_free char *d = cg_dir("memory", id);
		mkdir(d, 0755);
	}
	return xasprintf("/cod/%s/ctr", id);
}

static void cgroup_remove(const char *id)
{
	const struct cod_oci_settings *s = cod_oci_settings();
	if (s->cgroup_mode == COD_CGROUP_V2) {
		cleanup_free char *d = cg_dir(NULL, id);
		cleanup_free char *ctr = xasprintf("%s/ctr", d);
		rmdir(ctr);
		rmdir(d);
		return;
	}
	for (size_t i = 0; i < COD_ARRAY_SIZE(v1_hierarchies); i++) {
		cleanup_free char *d = cg_dir(v1_hierarchies[i], id);
		cleanup_free char *ctr = xasprintf("%s/ctr", d);
		rmdir(ctr);
		rmdir(d);
	}
}

/* "key value" lines: the value of key, or -1. */
static int64_t keyed_value(const char *path, const char *key)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (cod_read_file(path, 1 << 16, &text, &len, NULL) < 0)
		return -1;
	size_t kn = strlen(key);
	for (char *line = text; line && *line;) {
		if (!strncmp(line, key, kn) && line[kn] == ' ')
			return strtoll(line + kn + 1, NULL, 10);
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return -1;
}

static int64_t number_file(const char *path)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (cod_read_file(path, 4096, &text, &len, NULL) < 0)
		return -1;
	return strtoll(text, NULL, 10);
}

/* OOM kills seen so far in the container's cgroups. */
static int64_t oom_kills(const char *id)
{
	const struct cod_oci_settings *s = cod_oci_settings();
	if (s->cgroup_mode == COD_CGROUP_V2) {
		cleanup_free char *d = cg_dir(NULL, id);
		cleanup_free char *ev = xasprintf("%s/memory.events", d);
		return keyed_value(ev, "oom_kill");
	}
	cleanup_free char *d = cg_dir("memory", id);
	cleanup_free char *ev = xasprintf("%s/ctr/memory.oom_control", d);
	return keyed_value(ev, "oom_kill");
}

static bool v1_peak_reached(const char *id, uint64_t limit)
{
	if (!limit || cod_oci_settings()->cgroup_mode == COD_CGROUP_V2)
		return false;
	cleanup_free char *d = cg_dir("memory", id);
	cleanup_free char *p = xasprintf("%s/memory.max_usage_in_bytes", d);
	int64_t peak = number_file(p);
	return peak >= 0 && (uint64_t)peak + (256u << 10) >= limit;
}

/* ------------------------------------------------------------ container */

struct cod_oci_container *cod_oci_container_new(const char *id, const char *bundle_dir)
{
	struct cod_oci_container *c = xcalloc(1, sizeof(*c));
	c->id = xstrdup(id);
	c->bundle = xstrdup(bundle_dir);
	if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) < 0)
		c->wake[0] = c->wake[1] = -1;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void cod_oci_container_free(struct cod_oci_container *c)
{
	if (!c)
		return;
	if (c->wake[0] >= 0)
		close(c->wake[0]);
	if (c->wake[1] >= 0)
		close(c->wake[1]);
	pthread_mutex_destroy(&c->lock);
	free(c->id);
	free(c->bundle);
	free(c);
}

void cod_oci_container_kill(struct cod_oci_container *c)
{
	pthread_mutex_lock(&c->lock);
	c->kill_requested = true;
	if (c->wake[1] >= 0 && write(c->wake[1], "k", 1) < 0) {
		/* the pipe is full: a wake-up is pending anyway */
	}
	pthread_mutex_unlock(&c->lock);
}

static bool kill_wanted(struct cod_oci_container *c)
{
	pthread_mutex_lock(&c->lock);
	bool k = c->kill_requested;
	pthread_mutex_unlock(&c->lock);
	return k;
}

static void runtime_kill(const char *id)
{
	const char *args[] = {"kill", "--all", id, "KILL", NULL};
	cod_oci_runtime_exec(args, NULL, 5000);
}

void cod_oci_container_cleanup(const char *id)
{
	if (!cod_oci_settings()->runtime_path)
		return;
	/* `run` deletes the container when its process ends; only one that
	 * is still known to the runtime (killed, crashed) needs `delete` */
	cleanup_free char *root = cod_oci_state_root();
	cleanup_free char *state = xasprintf("%s/%s", root, id);
	struct stat st;
	if (lstat(state, &st) == 0) {
		const char *args[] = {"delete", "--force", id, NULL};
		cod_oci_runtime_exec(args, NULL, 10000);
	}
	cgroup_remove(id);
}

static uint64_t disk_usage(const struct cod_oci_limits *l)
{
	uint64_t used = l->rootfs ? cod_oci_rootfs_usage(l->rootfs) : 0;
	if (l->results_dir)
		used += cod_oci_du(l->results_dir);
	return used;
}

/* The runtime's own error (not the task's): the last line of its log. */
static char *runtime_error(const char *log_path)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (cod_read_file(log_path, 1 << 20, &text, &len, NULL) < 0 || !len)
		return NULL;
	while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
		text[--len] = '\0';
	char *last = strrchr(text, '\n');
	last = last ? last + 1 : text;
	/* JSON log lines: {"msg": "..."} */
	cleanup_json json_t *j = json_loads(last, 0, NULL);
	json_t *msg = j ? json_object_get(j, "msg") : NULL;
	if (json_is_string(msg))
		return xstrdup(json_string_value(msg));
	return *last ? xstrdup(last) : NULL;
}

int cod_oci_container_run(struct cod_oci_container *c, const struct cod_oci_limits *limits,
			  cod_oci_output_fn out, void *out_arg, struct cod_oci_result *res,
			  struct cod_error **err)
{
	memset(res, 0, sizeof(*res));
	const struct cod_oci_settings *s = cod_oci_settings();
	if (!s->runtime_path)
		return cod_error_set(err, COD_E_CONFIG, "docker engine: %s",
				     s->runtime_problem ? s->runtime_problem : "no runtime");
	cleanup_free char *pidfile = xasprintf("%s/container.pid", c->bundle);
	cleanup_free char *logfile = xasprintf("%s/runtime.log", c->bundle);
	unlink(pidfile);
	unlink(logfile);
	const char *args[] = {"--log",	 logfile,      "--log-format", "json", "run", "--bundle",
			      c->bundle, "--pid-file", pidfile,	       c->id,  NULL};
	/* global options go before the command: rebuild around them */
	char **argv = runtime_argv(args);
	int op[2], ep[2];
	if (pipe2(op, O_CLOEXEC) < 0)
		return cod_error_set(err, COD_E_INTERNAL, "pipe: %s", strerror(errno));
	if (pipe2(ep, O_CLOEXEC) < 0) {
		close(op[0]);
		close(op[1]);
		return cod_error_set(err, COD_E_INTERNAL, "pipe: %s", strerror(errno));
	}
	int64_t started = cod_mono_ms();
	pid_t pid = spawn_runtime(argv, op[1], ep[1]);
	free_argv(argv);
	close(op[1]);
	close(ep[1]);
	if (pid < 0) {
		close(op[0]);
		close(ep[0]);
		return cod_error_set(err, COD_E_INTERNAL, "start %s: %s", s->runtime_name, strerror(errno));
	}
	int pidfd = pidfd_open_(pid);
	cod_debug("oci", "container=%s %s run started (pid %d)", c->id, s->runtime_name, (int)pid);

	bool out_open = true, err_open = true, exited = false, killing = false;
	int status = 0;
	int64_t next_kill = 0, kill_started = 0, next_disk = limits->disk ? cod_mono_ms() + DISK_CHECK_MS : 0;
	int64_t next_oom =
	    limits->memory && s->cgroup_mode != COD_CGROUP_V2 ? cod_mono_ms() + OOM_POLL_MS : 0;
	int64_t disk_interval = DISK_CHECK_MS;
	int64_t ooms = 0;
	char buf[65536];
	while (out_open || err_open || !exited) {
		struct pollfd pfd[4];
		int n = 0, i_out = -1, i_err = -1, i_wake = -1, i_pid = -1;
		if (out_open) {
			pfd[n] = (struct pollfd){.fd = op[0], .events = POLLIN};
			i_out = n++;
		}
		if (err_open) {
			pfd[n] = (struct pollfd){.fd = ep[0], .events = POLLIN};
			i_err = n++;
		}
		if (c->wake[0] >= 0) {
			pfd[n] = (struct pollfd){.fd = c->wake[0], .events = POLLIN};
			i_wake = n++;
		}
		if (!exited && pidfd >= 0) {
			pfd[n] = (struct pollfd){.fd = pidfd, .events = POLLIN};
			i_pid = n++;
		}
		int timeout = 1000;
		int64_t now = cod_mono_ms();
		if (killing && next_kill)
			timeout = (int)(next_kill > now ? next_kill - now : 0);
		if (next_disk && next_disk - now < timeout)
			timeout = (int)(next_disk > now ? next_disk - now : 0);
		if (next_oom && next_oom - now < timeout)
			timeout = (int)(next_oom > now ? next_oom - now : 0);
		if (pidfd < 0 && !exited && timeout > 50)
			timeout = 50;
		int pr = poll(pfd, (nfds_t)n, timeout);
		if (pr < 0 && errno != EINTR)
			break;
		if (i_out >= 0 && pfd[i_out].revents) {
			ssize_t r = read(op[0], buf, sizeof(buf));
			if (r > 0)
				out(out_arg, 1, buf, (size_t)r);
			else if (r == 0 || (errno != EINTR && errno != EAGAIN))
				out_open = false;
		}
		if (i_err >= 0 && pfd[i_err].revents) {
			ssize_t r = read(ep[0], buf, sizeof(buf));
			if (r > 0)
				out(out_arg, 2, buf, (size_t)r);
			else if (r == 0 || (errno != EINTR && errno != EAGAIN))
				err_open = false;
		}
		if (i_wake >= 0 && pfd[i_wake].revents) {
			while (read(c->wake[0], buf, sizeof(buf)) > 0)
				;
		}
		if (!exited && (pidfd < 0 || (i_pid >= 0 && pfd[i_pid].revents))) {
			pid_t r = waitpid(pid, &status, WNOHANG);
			if (r == pid)
				exited = true;
		}
		now = cod_mono_ms();
		if (!exited && !killing && kill_wanted(c)) {
			if (res->outcome == COD_OCI_EXITED)
				res->outcome = COD_OCI_KILLED;
			killing = true;
			kill_started = now;
			next_kill = now;
		}
		if (killing && !exited && now >= next_kill) {
			runtime_kill(c->id);
			next_kill = cod_mono_ms() + KILL_RETRY_MS;
			if (now - kill_started > RUNTIME_HANG_MS) {
				cod_warn("oci", "container=%s: %s does not end; killing it", c->id,
					 s->runtime_name);
				kill(-pid, SIGKILL);
				kill(pid, SIGKILL);
			}
		}
		if (exited && (out_open || err_open) && killing && now - kill_started > RUNTIME_HANG_MS) {
			/* a process outside the container holds the pipes */
			break;
		}
		if (next_oom && now >= next_oom && !exited) {
			int64_t k = oom_kills(c->id);
			if (k > ooms)
				ooms = k;
			next_oom = now + OOM_POLL_MS;
		}
		if (next_disk && now >= next_disk && !exited) {
			int64_t t0 = cod_mono_ms();
			uint64_t used = disk_usage(limits);
			int64_t took = cod_mono_ms() - t0;
			/* keep the watchdog under ~10% of a core on big trees */
			disk_interval = took * 10 > DISK_CHECK_MS ? took * 10 : DISK_CHECK_MS;
			next_disk = cod_mono_ms() + disk_interval;
			if (used > limits->disk && !killing) {
				res->outcome = COD_OCI_DISK;
				res->disk_used = used;
				cod_info(
				    "oci",
				    "container=%s exceeded its disk limit (%llu > %llu bytes); killing it",
				    c->id, (unsigned long long)used, (unsigned long long)limits->disk);
				killing = true;
				kill_started = now;
				next_kill = now;
			}
		}
	}
	close(op[0]);
	close(ep[0]);
	if (!exited) {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (pidfd >= 0)
		close(pidfd);
	int64_t code = WIFEXITED(status)     ? WEXITSTATUS(status)
		       : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
					     : -1;
	res->exit_code = code;
	cod_debug("oci", "container=%s ended with %lld after %lld ms", c->id, (long long)code,
		  (long long)(cod_mono_ms() - started));

	/* OOM? */
	int64_t k = oom_kills(c->id);
	if (k > ooms)
		ooms = k;
	if (res->outcome == COD_OCI_EXITED && code != 0 &&
	    (ooms > 0 || (code == 128 + SIGKILL && v1_peak_reached(c->id, limits->memory))))
		res->outcome = COD_OCI_OOM;

	/* Did the runtime fail before the task ran? It logs why. */
	bool started_ok = access(pidfile, F_OK) == 0;
	if (res->outcome == COD_OCI_EXITED && code != 0) {
		cleanup_free char *msg = runtime_error(logfile);
		if (msg && (!started_ok || strstr(msg, "executable file") || strstr(msg, "exec:") ||
			    strstr(msg, "container create failed") || strstr(msg, "no such file"))) {
			res->outcome = COD_OCI_START_FAILED;
			res->message = steal_pointer(&msg);
		}
	}
	if (res->outcome == COD_OCI_DISK && !res->disk_used)
		res->disk_used = disk_usage(limits);
	return 0;
}

int cod_oci_sweep(void)
{
	const struct cod_oci_settings *s = cod_oci_settings();
	if (!s->runtime_path)
		return 0;
	cleanup_free char *root = cod_oci_state_root();
	DIR *d = opendir(root);
	if (!d)
		return 0;
	struct cod_strlist ids = {0};
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (cod_str_has_prefix(de->d_name, "cod-"))
			cod_strlist_add(&ids, de->d_name);
	closedir(d);
	for (size_t i = 0; i < ids.n; i++) {
		cod_warn("oci", "removing container %s left by an earlier run of this node", ids.items[i]);
		const char *kill_args[] = {"kill", "--all", ids.items[i], "KILL", NULL};
		cod_oci_runtime_exec(kill_args, NULL, 5000);
		cod_oci_container_cleanup(ids.items[i]);
		/* its rootfs mount, if the execution dir is ours */
		cleanup_free char *exec = xasprintf("%s/../executions/%s", s->images_dir, ids.items[i] + 4);
		cleanup_free char *merged = xasprintf("%s/rootfs/merged", exec);
		cleanup_free char *rootfs = xasprintf("%s/rootfs", exec),
				  *bundle = xasprintf("%s/bundle", exec);
		umount2(merged, MNT_DETACH);
		cod_oci_rmtree(rootfs);
		cod_oci_rmtree(bundle);
	}
	int n = (int)ids.n;
	cod_strlist_release(&ids);
	return n;
}
