/*
 * natsd.c - nats-server as a supervised child of the orchestrator.
 *
 * The server gets a config file written under the caller's directory
 * (mode 0600: it may hold the token), its stdout and stderr go to
 * <dir>/nats-server.log, and it writes its pid to <dir>/nats-server.pid.
 * A supervisor thread watches the child through a pidfd (no SIGCHLD
 * handler, so nothing else in the process is disturbed) and restarts it
 * with backoff when it exits without being asked to. The child gets
 * PR_SET_PDEATHSIG so it does not outlive a crashed parent.
 */
#include "transport/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "common/banned.h"

#define READY_TIMEOUT_MS 10000
#define STOP_GRACE_MS 5000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* A child that ran this long before dying starts the backoff over. */
#define STABLE_MS 10000
#define PORT_TRIES 5
#define MAX_PAYLOAD (8 * 1024 * 1024)

struct cod_natsd {
	char *bin;
	char *conf_path;
	char *log_path;
	char *pid_path;
	char *host;	    /* listen address */
	char *connect_host; /* where we (and local clients) connect */
	char *token;
	char *url;
	int port;

	pthread_mutex_t lock;
	pid_t pid;	    /* 0 when no child runs */
	int pidfd;	    /* -1 when pidfd_open is unavailable */
	int64_t started_ms; /* monotonic start of the current child */
	off_t log_offset;   /* where the current child's output starts */
	bool stopping;
	int stop_fd; /* eventfd that wakes the supervisor */
	pthread_t thread;
	bool thread_started;
};

static const char *const bin_candidates[] = {"/usr/sbin/nats-server", "/usr/bin/nats-server",
					     "/usr/local/bin/nats-server", "/usr/local/sbin/nats-server"};

/* libnats sends the token in its CONNECT JSON unescaped (transport.c). */
static bool token_usable(const char *token)
{
	for (const char *p = token ? token : ""; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static char *find_binary(void)
{
	/* An explicit binary (tests, unusual installs) is the only candidate. */
	const char *env = getenv("COD_NATS_SERVER");
	if (!cod_str_empty(env))
		return access(env, X_OK) == 0 ? xstrdup(env) : NULL;
	const char *path = getenv("PATH");
	if (path) {
		cleanup_free char *copy = xstrdup(path);
		char *save = NULL;
		for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
			cleanup_free char *p = xasprintf("%s/nats-server", *dir ? dir : ".");
			if (access(p, X_OK) == 0)
				return steal_pointer(&p);
		}
	}
	for (size_t i = 0; i < COD_ARRAY_SIZE(bin_candidates); i++)
		if (access(bin_candidates[i], X_OK) == 0)
			return xstrdup(bin_candidates[i]);
	return NULL;
}

/* A config-file string: double-quoted with \ and " escaped. */
static void add_quoted(struct cod_buf *b, const char *s)
{
	cod_buf_addch(b, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			cod_buf_addch(b, '\\');
		cod_buf_addch(b, *s);
	}
	cod_buf_addch(b, '"');
}

static int write_config(struct cod_natsd *d, struct cod_error **err)
{
	cleanup_buf struct cod_buf b = COD_BUF_INIT;
	cod_buf_addstr(&b, "# written by cod at every start; edits are lost\nhost: ");
	add_quoted(&b, d->host);
	cod_buf_addf(&b, "\nport: %d\nmax_payload: %d\npid_file: ", d->port, MAX_PAYLOAD);
	add_quoted(&b, d->pid_path);
	cod_buf_addch(&b, '\n');
	if (!cod_str_empty(d->token)) {
		cod_buf_addstr(&b, "authorization {\n  token: ");
		add_quoted(&b, d->token);
		cod_buf_addstr(&b, "\n}\n");
	}
	cleanup_free char *tmp = xasprintf("%s.tmp", d->conf_path);
	cleanup_close int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return cod_error_set(err, COD_E_IO, "write \"%s\": %s", tmp, strerror(errno));
	fchmod(fd, 0600);
	size_t off = 0;
	while (off < b.len) {
		ssize_t n = write(fd, b.buf + off, b.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return cod_error_set(err, COD_E_IO, "write \"%s\": %s", tmp, strerror(errno));
		off += (size_t)n;
	}
	if (fsync(fd) < 0 || rename(tmp, d->conf_path) < 0)
		return cod_error_set(err, COD_E_IO, "write \"%s\": %s", d->conf_path, strerror(errno));
	return 0;
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *sslen)
{
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", port);
	if (getaddrinfo(host, portstr, &hints, &res) != 0 || !res)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* A port nobody listens on right now: bind port 0, read it, close. The
 * server may still lose a race for it; start() retries then. */
static int pick_port(const char *host, int *port, struct cod_error **err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (resolve(host, 0, &ss, &len) < 0)
		return cod_error_set(err, COD_E_CONFIG, "cannot resolve NATS listen address \"%s\"", host);
	cleanup_close int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return cod_error_set(err, COD_E_NETWORK, "pick a free port on \"%s\": %s", host,
				     strerror(errno));
	*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					       : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

static bool tcp_accepts(const char *host, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (resolve(host, port, &ss, &len) < 0)
		return false;
	cleanup_close int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	return connect(fd, (struct sockaddr *)&ss, len) == 0;
}

/* The last lines the current child wrote (heap, may be ""). */
static char *log_tail(struct cod_natsd *d, size_t max_lines)
{
	cleanup_close int fd = open(d->log_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return xstrdup("");
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size <= d->log_offset)
		return xstrdup("");
	off_t start = d->log_offset;
	if (st.st_size - start > 8192)
		start = st.st_size - 8192;
	size_t n = (size_t)(st.st_size - start);
	char *text = xmalloc(n + 1);
	ssize_t got = pread(fd, text, n, start);
	if (got < 0)
		got = 0;
	text[got] = '\0';
	/* Keep the last max_lines lines. */
	size_t lines = 0;
	char *p = text + got;
	while (p > text) {
		p--;
		if (*p == '\n' && p[1] && ++lines > max_lines) {
			p++;
			break;
		}
	}
	char *tail = xstrdup(p);
	free(text);
	cod_str_trim(tail);
	return tail;
}

static bool log_says(struct cod_natsd *d, const char *needle)
{
	cleanup_free char *tail = log_tail(d, 200);
	return strstr(tail, needle) != NULL;
}

static pid_t spawn(struct cod_natsd *d, struct cod_error **err)
{
	cleanup_close int logfd = open(d->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (logfd < 0) {
		cod_error_set(err, COD_E_IO, "open \"%s\": %s", d->log_path, strerror(errno));
		return -1;
	}
	struct stat st;
	d->log_offset = fstat(logfd, &st) == 0 ? st.st_size : 0;
	cleanup_close int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		cod_error_set(err, COD_E_INTERNAL, "fork nats-server: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* Only async-signal-safe calls from here to exec. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		struct sigaction dfl = {.sa_handler = SIG_DFL};
		sigaction(SIGPIPE, &dfl, NULL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		syscall(SYS_close_range, 3U, ~0U, 0U);
		char *const argv[] = {d->bin, (char *)"-c", d->conf_path, NULL};
		execv(d->bin, argv);
		_exit(127);
	}
	d->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (d->pidfd >= 0)
		fcntl(d->pidfd, F_SETFD, FD_CLOEXEC);
	d->started_ms = cod_mono_ms();
	return pid;
}

/* Reap the child if it has exited: true with *status set. */
static bool reaped(struct cod_natsd *d, int *status)
{
	if (d->pid <= 0)
		return true;
	pid_t r = waitpid(d->pid, status, WNOHANG);
	if (r == 0)
		return false;
	if (r < 0 && errno == EINTR)
		return false;
	if (d->pidfd >= 0)
		close(d->pidfd);
	d->pidfd = -1;
	d->pid = 0;
	return true;
}

static char *describe_status(int status)
{
	if (WIFEXITED(status))
		return xasprintf("exit code %d", WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return xasprintf("signal %d", WTERMSIG(status));
	return xstrdup("unknown status");
}

/* Spawn and wait until the server accepts connections. *port_busy tells a
 * bind collision apart from other failures. */
static int launch(struct cod_natsd *d, bool *port_busy, struct cod_error **err)
{
	*port_busy = false;
	pid_t pid = spawn(d, err);
	if (pid < 0)
		return -1;
	pthread_mutex_lock(&d->lock);
	d->pid = pid;
	pthread_mutex_unlock(&d->lock);
	int64_t deadline = cod_mono_ms() + READY_TIMEOUT_MS;
	for (;;) {
		int status = 0;
		if (reaped(d, &status)) {
			cleanup_free char *how = describe_status(status);
			cleanup_free char *tail = log_tail(d, 15);
			*port_busy = strstr(tail, "address already in use") != NULL;
			if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && !*tail)
				cod_error_set(err, COD_E_CONFIG, "nats-server \"%s\" could not be started",
					      d->bin);
			else
				cod_error_set(err, COD_E_UNAVAILABLE,
					      "nats-server exited at start-up (%s): %s", how,
					      *tail ? tail : "no output");
			return -1;
		}
		if (log_says(d, "Server is ready") && tcp_accepts(d->connect_host, d->port))
			return 0;
		if (cod_mono_ms() > deadline) {
			cleanup_free char *tail = log_tail(d, 15);
			kill(d->pid, SIGKILL);
			waitpid(d->pid, NULL, 0);
			if (d->pidfd >= 0)
				close(d->pidfd);
			d->pidfd = -1;
			d->pid = 0;
			return cod_error_set(
			    err, COD_E_TIMEOUT,
			    "nats-server did not accept connections on %s:%d within %d s: %s",
			    d->connect_host, d->port, READY_TIMEOUT_MS / 1000, *tail ? tail : "no output");
		}
		usleep(20000);
	}
}

/* Sleep up to ms, or until stop is asked; true when stopping. */
static bool nap(struct cod_natsd *d, int64_t ms)
{
	struct pollfd p = {.fd = d->stop_fd, .events = POLLIN};
	poll(&p, 1, (int)ms);
	pthread_mutex_lock(&d->lock);
	bool stop = d->stopping;
	pthread_mutex_unlock(&d->lock);
	return stop;
}

static void *supervise(void *arg)
{
	cod_thread_name("cod-natsd");
	struct cod_natsd *d = arg;
	int64_t backoff = BACKOFF_MIN_MS;
	for (;;) {
		if (d->pid > 0) {
			struct pollfd p[2] = {{.fd = d->stop_fd, .events = POLLIN},
					      {.fd = d->pidfd, .events = POLLIN}};
			poll(p, d->pidfd >= 0 ? 2 : 1, d->pidfd >= 0 ? -1 : 100);
		}
		pthread_mutex_lock(&d->lock);
		bool stop = d->stopping;
		pthread_mutex_unlock(&d->lock);
		if (stop)
			break;
		int status = 0;
		bool had_child = d->pid > 0;
		if (had_child) {
			int64_t lived = cod_mono_ms() - d->started_ms;
			if (!reaped(d, &status))
				continue;
			cleanup_free char *how = describe_status(status);
			cleanup_free char *tail = log_tail(d, 5);
			if (lived >= STABLE_MS)
				backoff = BACKOFF_MIN_MS;
			cod_warn("natsd", "nats-server exited unexpectedly (%s); restarting in %lld ms%s%s",
				 how, (long long)backoff, *tail ? ": " : "", tail);
		}
		if (nap(d, backoff))
			break;
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
		bool busy;
		struct cod_error *err = NULL;
		if (launch(d, &busy, &err) < 0) {
			cod_warn("natsd", "restart nats-server: %s", err->message);
			cod_error_free(err);
			continue;
		}
		cod_info("natsd", "nats-server restarted pid=%d url=%s", (int)d->pid, d->url);
	}
	return NULL;
}

static void stop_child(struct cod_natsd *d)
{
	if (d->pid <= 0)
		return;
	kill(d->pid, SIGTERM);
	int64_t deadline = cod_mono_ms() + STOP_GRACE_MS;
	int status;
	while (!reaped(d, &status)) {
		if (cod_mono_ms() > deadline) {
			cod_warn("natsd", "nats-server pid=%d ignored SIGTERM for %d s; killing it",
				 (int)d->pid, STOP_GRACE_MS / 1000);
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &status, 0);
			if (d->pidfd >= 0)
				close(d->pidfd);
			d->pidfd = -1;
			d->pid = 0;
			break;
		}
		if (d->pidfd >= 0) {
			struct pollfd p = {.fd = d->pidfd, .events = POLLIN};
			poll(&p, 1, 50);
		} else {
			usleep(20000);
		}
	}
}

static void natsd_free(struct cod_natsd *d)
{
	if (d->stop_fd >= 0)
		close(d->stop_fd);
	if (d->pidfd >= 0)
		close(d->pidfd);
	pthread_mutex_destroy(&d->lock);
	free(d->bin);
	free(d->conf_path);
	free(d->log_path);
	free(d->pid_path);
	free(d->host);
	free(d->connect_host);
	free(d->token);
	free(d->url);
	free(d);
}

int cod_natsd_start(const char *host, int port, const char *token, const char *dir, struct cod_natsd **out,
		    struct cod_error **err)
{
	*out = NULL;
	cleanup_free char *bin = find_binary();
	if (!bin) {
		cod_error_set(err, COD_E_CONFIG, "nats-server is not installed");
		if (err)
			cod_error_hint(*err,
				       "apt-get install nats-server, or set Orchestrator.NATS.URL to use a "
				       "NATS server that runs elsewhere");
		return -1;
	}
	if (port < 0 || port > 65535)
		return cod_error_set(err, COD_E_CONFIG, "NATS port %d is out of range; use 0..65535", port);
	if (!token_usable(token)) {
		cod_error_set(err, COD_E_CONFIG, "Orchestrator.Auth.Token cannot be used as a NATS token");
		if (err)
			cod_error_hint(*err, "use letters, digits and punctuation other than '\"' and '\\'");
		return -1;
	}
	if (cod_mkdir_p(dir, 0700, err) < 0)
		return -1;

	struct cod_natsd *d = xcalloc(1, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	d->pidfd = -1;
	d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->bin = steal_pointer(&bin);
	d->host = xstrdup(cod_str_empty(host) ? "127.0.0.1" : host);
	if (!strcmp(d->host, "0.0.0.0"))
		d->connect_host = xstrdup("127.0.0.1");
	else if (!strcmp(d->host, "::") || !strcmp(d->host, "[::]"))
		d->connect_host = xstrdup("::1");
	else
		d->connect_host = xstrdup(d->host);
	d->token = xstrdup_or_null(cod_str_empty(token) ? NULL : token);
	d->conf_path = xasprintf("%s/nats-server.conf", dir);
	d->log_path = xasprintf("%s/nats-server.log", dir);
	d->pid_path = xasprintf("%s/nats-server.pid", dir);

	int tries = port == 0 ? PORT_TRIES : 1;
	for (int i = 0;; i++) {
		d->port = port;
		if (port == 0 && pick_port(d->host, &d->port, err) < 0)
			goto fail;
		if (write_config(d, err) < 0)
			goto fail;
		bool busy = false;
		struct cod_error *e = NULL;
		if (launch(d, &busy, &e) == 0)
			break;
		if (busy && i + 1 < tries) {
			cod_debug("natsd", "port %d was taken; picking another", d->port);
			cod_error_free(e);
			continue;
		}
		if (busy)
			cod_error_hint(
			    e, "another process listens on %s:%d; set Orchestrator.Port to a free port",
			    d->host, d->port);
		cod_error_move(err, &e);
		goto fail;
	}
	d->url = xasprintf(strchr(d->connect_host, ':') ? "nats://[%s]:%d" : "nats://%s:%d", d->connect_host,
			   d->port);
	/* From here on the supervisor owns pid and pidfd. */
	pid_t first_pid = d->pid;
	if (pthread_create(&d->thread, NULL, supervise, d) != 0) {
		cod_error_set(err, COD_E_INTERNAL, "start nats-server supervisor: %s", strerror(errno));
		stop_child(d);
		goto fail;
	}
	d->thread_started = true;
	cod_info("natsd", "nats-server pid=%d url=%s auth=%s", (int)first_pid, d->url,
		 d->token ? "token" : "none");
	*out = d;
	return 0;
fail:
	natsd_free(d);
	return -1;
}

const char *cod_natsd_url(const struct cod_natsd *d)
{
	return d->url;
}

int cod_natsd_port(const struct cod_natsd *d)
{
	return d->port;
}

void cod_natsd_stop(struct cod_natsd *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	pthread_mutex_unlock(&d->lock);
	uint64_t one = 1;
	if (write(d->stop_fd, &one, sizeof(one)) < 0)
		cod_debug("natsd", "wake supervisor: %s", strerror(errno));
	if (d->thread_started)
		pthread_join(d->thread, NULL);
	stop_child(d);
	unlink(d->conf_path);
	unlink(d->pid_path);
	natsd_free(d);
}
