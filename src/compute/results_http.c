/*
 * results_http.c - the compute node's result server for the local
 * publisher: a read-only HTTP file server (libmicrohttpd) over
 * DataDir/compute/results, answering GET and HEAD for "/<execID>.tar.gz"
 * and "/" (a liveness answer).
 *
 * The advertised address is what clients put in their URLs, so cod checks
 * it before it hands out a single one (Bacalhau issue #4245): 0.0.0.0, ::
 * and empty are refused with a hint, and the node sends an HTTP request
 * with a random token through the advertised address to itself; unless
 * that very request arrives on its own listening socket and the answer
 * comes back, the node does not start.
 *
 * An idle node should stay small, and libmicrohttpd (loaded on first use,
 * see common/lazylib.h) costs several megabytes.  So cod binds the
 * listening socket itself, answers the self-check on plain sockets, and a
 * watcher thread hands the socket to libmicrohttpd when the first client
 * connects; that client waits in the listen backlog meanwhile.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/lazylib.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "publisher/publisher.h"
#include "common/banned.h"

#define RESULTS_PORT_DEFAULT 6001

#define PROBE_CONNECT_MS 3000
#define PROBE_TOTAL_MS 5000
#define PROBE_HEAD_MAX 8192
static const char probe_answer[] = "cod result server\n";

struct cod_results_server {
	int listen_fd;		   /* ours until daemon takes it */
	int wake_fd;		   /* eventfd: tells the watcher to end */
	pthread_t watcher;	   /* started after the self-check */
	bool watching;
	struct MHD_Daemon *daemon; /* set by the watcher; NULL until a client came */
	char *dir;
	char *url;
	int port;
};

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", "text/plain");
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* "<id>.tar.gz" with id made of [A-Za-z0-9_-]: nothing else is served. */
static bool valid_name(const char *name)
{
	size_t n = strlen(name);
	if (n <= 7 || n > 200 || strcmp(name + n - 7, ".tar.gz"))
		return false;
	for (size_t i = 0; i < n - 7; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_'))
			return false;
	}
	return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	(void)version;
	(void)upload_data;
	(void)con_cls;
	struct cod_results_server *s = cls;
	if (*upload_size)
		return MHD_NO;
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	if (!strcmp(url, "/"))
		return reply_text(conn, MHD_HTTP_OK, probe_answer);
	const char *name = url[0] == '/' ? url + 1 : url;
	if (!valid_name(name))
		return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
	cleanup_free char *path = xasprintf("%s/%s", s->dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
	}
	/* the response owns fd from here */
	struct MHD_Response *r = MHD_create_response_from_fd64((uint64_t)st.st_size, fd);
	if (!r) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/gzip");
	cleanup_free char *cd = xasprintf("attachment; filename=\"%s\"", name);
	MHD_add_response_header(r, "Content-Disposition", cd);
	enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static void mhd_log(void *arg, const char *fmt, va_list ap)
{
	(void)arg;
	cleanup_free char *msg = xvasprintf(fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	cod_debug("results", "%s", msg);
}

/* A listening socket on ss with the given port (0 = any), or -1 with errno. */
static int listen_on(const struct sockaddr_storage *ss, int port)
{
	struct sockaddr_storage a = *ss;
	socklen_t len;
	if (a.ss_family == AF_INET6) {
		((struct sockaddr_in6 *)&a)->sin6_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in6);
	} else {
		((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in);
	}
	int fd = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	int on = 1;
	/* what libmicrohttpd does with the sockets it makes itself */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (a.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&a, len) < 0 || listen(fd, SOMAXCONN) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int bound_port(int fd)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		return -1;
	return ntohs(a.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a)->sin6_port
					      : ((struct sockaddr_in *)&a)->sin_port);
}

/* Waits until fd is ready for events or deadline (cod_mono_ms) passes. */
static bool wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - cod_mono_ms();
		if (left <= 0)
			return false;
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return true;
		if (n < 0 && errno != EINTR)
			return false;
	}
}

/* Reads from a non-blocking fd until the text holds end ("" = until the
 * peer closes); false when the deadline passes or b's cap is reached first. */
static bool read_until(int fd, struct cod_buf *b, const char *end, int64_t deadline)
{
	char chunk[1024];
	while (!end[0] || !strstr(cod_buf_str(b), end)) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n > 0) {
			if (cod_buf_add(b, chunk, (size_t)n) < 0)
				return false;
		} else if (n == 0) {
			return end[0] == '\0';
		} else if (errno == EAGAIN || errno == EINTR) {
			if (!wait_fd(fd, POLLIN, deadline))
				return false;
		} else {
			return false;
		}
	}
	return strstr(cod_buf_str(b), end) != NULL;
}

/* A non-blocking connection to host:port, or -1 with *why set. */
static int connect_to(const char *host, int port, int64_t deadline, char **why)
{
	char service[16];
	snprintf(service, sizeof(service), "%d", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(host, service, &hints, &res);
	if (gai) {
		*why = xasprintf("cannot resolve \"%s\": %s", host, gai_strerror(gai));
		return -1;
	}
	int fd = -1, e = ETIMEDOUT;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			e = errno;
			continue;
		}
		int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
		if (rc < 0 && errno == EINPROGRESS) {
			socklen_t len = sizeof(e);
			e = ETIMEDOUT;
			if (wait_fd(fd, POLLOUT, deadline) && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0)
				rc = e ? -1 : 0;
		} else if (rc < 0) {
			e = errno;
		}
		if (rc < 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		*why = xasprintf("connect: %s", strerror(e));
	return fd;
}

/* Accepts connections on listen_fd until one carries the probe's request
 * line, and answers it; the others are closed unanswered. */
static bool answer_probe(int listen_fd, const char *request_line, int64_t deadline)
{
	while (wait_fd(listen_fd, POLLIN, deadline)) {
		cleanup_close int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			continue;
		struct cod_buf head;
		cod_buf_init(&head, PROBE_HEAD_MAX);
		bool ours = read_until(fd, &head, "\r\n\r\n", deadline) &&
			    cod_str_has_prefix(cod_buf_str(&head), request_line);
		cod_buf_release(&head);
		if (!ours)
			continue;
		cleanup_free char *answer = xasprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
						      "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
						      strlen(probe_answer), probe_answer);
		return cod_write_all(fd, answer, strlen(answer)) == 0;
	}
	return false;
}

/*
 * The self-check: an HTTP request for a random path, sent to the advertised
 * host and port, must arrive on our own listening socket (a proxy in
 * between may forward it), and our answer must come back.  NULL when it
 * does, else why not (on the heap).
 */
static char *self_check(const struct cod_results_server *s, const char *adv)
{
	int64_t deadline = cod_mono_ms() + PROBE_TOTAL_MS;
	unsigned char raw[16];
	cod_random_bytes(raw, sizeof(raw));
	char token[2 * sizeof(raw) + 1];
	cod_hex_encode(raw, sizeof(raw), token);
	cleanup_free char *request_line = xasprintf("GET /.cod-self-check/%s HTTP/1.1\r\n", token);
	bool v6 = strchr(adv, ':') != NULL;
	cleanup_free char *request = xasprintf("%sHost: %s%s%s:%d\r\nConnection: close\r\n\r\n", request_line,
					       v6 ? "[" : "", adv, v6 ? "]" : "", s->port);
	char *why = NULL;
	int64_t connect_deadline = cod_mono_ms() + PROBE_CONNECT_MS;
	cleanup_close int fd = connect_to(adv, s->port, connect_deadline, &why);
	if (fd < 0)
		return why;
	if (cod_write_all(fd, request, strlen(request)) < 0)
		return xasprintf("send: %s", strerror(errno));
	if (!answer_probe(s->listen_fd, request_line, deadline))
		return xasprintf("the request sent there did not arrive here within %d s", PROBE_TOTAL_MS / 1000);
	struct cod_buf reply;
	cod_buf_init(&reply, PROBE_HEAD_MAX);
	read_until(fd, &reply, "", deadline);
	const char *r = cod_buf_str(&reply);
	bool ok = cod_str_has_prefix(r, "HTTP/1.") && strlen(r) > 12 && !strncmp(r + 8, " 200", 4) &&
		  strstr(r, probe_answer);
	if (!ok)
		why = xasprintf("unexpected answer \"%.40s\"", r);
	cod_buf_release(&reply);
	return why;
}

/* The watcher: waits for the first client (or stop), then hands the
 * listening socket to libmicrohttpd. */
static void *watch(void *arg)
{
	cod_thread_name("cod-results");
	struct cod_results_server *s = arg;
	struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN}, {.fd = s->wake_fd, .events = POLLIN}};
	for (;;) {
		int n = poll(p, 2, -1);
		if (n < 0 && errno != EINTR)
			return NULL;
		if (p[1].revents)
			return NULL;
		if (p[0].revents)
			break;
	}
	s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request,
				     s, MHD_OPTION_LISTEN_SOCKET, s->listen_fd, MHD_OPTION_THREAD_POOL_SIZE, 2u,
				     MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				     MHD_OPTION_END);
	if (!s->daemon) {
		const char *why = cod_lazy_mhd_error();
		cod_err("results", "the result server at %s cannot serve downloads: %s", s->url,
			why ? why : "libmicrohttpd did not start");
		/* clients get "connection refused" rather than a hang */
		close(s->listen_fd);
	} else {
		cod_debug("results", "libmicrohttpd serves %s from now on", s->url);
	}
	s->listen_fd = -1; /* closed, or the daemon's */
	return NULL;
}

static bool no_address(const char *a)
{
	return cod_str_empty(a) || !strcmp(a, "0.0.0.0") || !strcmp(a, "::") || !strcmp(a, "[::]");
}

int cod_results_server_start(const struct cod_config *cfg, struct cod_results_server **out, struct cod_error **err)
{
	*out = NULL;
	const char *adv = cfg->publisher_local_address;
	if (no_address(adv)) {
		cod_error_set(err, COD_E_CONFIG,
			      "Publishers.Types.Local.Address \"%s\" is not an address clients can download results from",
			      adv ? adv : "");
		if (err)
			cod_error_hint(*err, "set it to this node's host name or IP as clients see it (e.g. -c "
					     "Publishers.Types.Local.Address=10.0.0.5); listen on all interfaces with "
					     "Publishers.Types.Local.ListenAddress=0.0.0.0");
		return -1;
	}
	const char *listen_host = !cod_str_empty(cfg->publisher_local_listen) ? cfg->publisher_local_listen : adv;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(listen_host, NULL, &hints, &res);
	if (gai || !res) {
		cod_error_set(err, COD_E_CONFIG, "result server address \"%s\": %s", listen_host, gai_strerror(gai));
		if (err)
			cod_error_hint(*err, "set Publishers.Types.Local.Address (and ListenAddress) to an address of "
					     "this node");
		return -1;
	}
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);

	struct cod_results_server *s = xcalloc(1, sizeof(*s));
	s->listen_fd = -1;
	s->wake_fd = -1;
	s->dir = xasprintf("%s/compute/results", cfg->data_dir);
	if (cod_mkdir_p(s->dir, 0755, err) < 0) {
		cod_results_server_stop(s);
		return -1;
	}
	int port = (int)cfg->publisher_local_port;
	s->listen_fd = listen_on(&ss, port);
	if (s->listen_fd < 0 && errno == EADDRINUSE && port == RESULTS_PORT_DEFAULT) {
		/* several nodes on one host (devstack): the default is taken */
		cod_warn("results", "port %d is in use; the result server takes a free port instead "
				    "(set Publishers.Types.Local.Port to choose one)", port);
		s->listen_fd = listen_on(&ss, 0);
	}
	if (s->listen_fd < 0) {
		cod_error_set(err, COD_E_UNAVAILABLE, "result server cannot listen on %s:%d: %s", listen_host, port,
			      strerror(errno));
		if (err)
			cod_error_hint(*err, "choose another port with -c Publishers.Types.Local.Port=N (0 = any)");
		cod_results_server_stop(s);
		return -1;
	}
	s->port = bound_port(s->listen_fd);
	bool v6 = strchr(adv, ':') != NULL;
	s->url = xasprintf("http://%s%s%s:%d", v6 ? "[" : "", adv, v6 ? "]" : "", s->port);

	cleanup_free char *why = self_check(s, adv);
	if (why) {
		cod_error_set(err, COD_E_CONFIG,
			      "the result server's advertised address %s does not lead back to this node: %s", s->url,
			      why);
		if (err)
			cod_error_hint(*err, "set Publishers.Types.Local.Address to an address of this node that "
					     "clients can reach (and ListenAddress to where it should listen)");
		cod_results_server_stop(s);
		return -1;
	}
	s->wake_fd = eventfd(0, EFD_CLOEXEC);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	/* room for dlopen (library constructors) and MHD_start_daemon; only
	 * the pages it touches count */
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int rc = s->wake_fd < 0 ? errno : pthread_create(&s->watcher, &attr, watch, s);
	pthread_attr_destroy(&attr);
	if (rc) {
		cod_error_set(err, COD_E_INTERNAL, "result server: cannot start its thread: %s", strerror(rc));
		cod_results_server_stop(s);
		return -1;
	}
	s->watching = true;
	cod_info("results", "result server at %s serving %s", s->url, s->dir);
	*out = s;
	return 0;
}

const char *cod_results_server_url(const struct cod_results_server *s)
{
	return s ? s->url : NULL;
}

void cod_results_server_stop(struct cod_results_server *s)
{
	if (!s)
		return;
	if (s->watching) {
		uint64_t one = 1;
		if (write(s->wake_fd, &one, sizeof(one)) < 0)
			cod_warn("results", "cannot wake the result server's thread: %s", strerror(errno));
		pthread_join(s->watcher, NULL);
	}
	if (s->daemon)
		MHD_stop_daemon(s->daemon); /* closes the listening socket too */
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	free(s->dir);
	free(s->url);
	free(s);
}
