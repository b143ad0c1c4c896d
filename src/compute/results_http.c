/*
 * results_http.c - the compute node's result server for the local
 * publisher: a read-only HTTP file server (libmicrohttpd) over
 * DataDir/compute/results, answering GET and HEAD for "/<execID>.tar.gz"
 * and "/" (a liveness answer, used by the start-up self-check).
 *
 * The advertised address is what clients put in their URLs, so cod checks
 * it before it hands out a single one (Bacalhau issue #4245): 0.0.0.0, ::
 * and empty are refused with a hint, and the node fetches "/" through the
 * advertised address itself; when that fails the node does not start.
 */
#include <arpa/inet.h>
#include <errno.h>
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

#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "publisher/publisher.h"
#include "storage/http.h"
#include "common/banned.h"

#define RESULTS_PORT_DEFAULT 6001

struct cod_results_server {
	struct MHD_Daemon *daemon;
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
		return reply_text(conn, MHD_HTTP_OK, "cod result server\n");
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

static struct MHD_Daemon *listen_on(struct cod_results_server *s, const struct sockaddr_storage *ss, int port)
{
	struct sockaddr_storage a = *ss;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	if (a.ss_family == AF_INET6) {
		((struct sockaddr_in6 *)&a)->sin6_port = htons((uint16_t)port);
		flags |= MHD_USE_IPv6;
	} else {
		((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)port);
	}
	return MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
				(struct sockaddr *)&a, MHD_OPTION_THREAD_POOL_SIZE, 2u,
				MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				MHD_OPTION_END);
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
	s->dir = xasprintf("%s/compute/results", cfg->data_dir);
	if (cod_mkdir_p(s->dir, 0755, err) < 0) {
		free(s->dir);
		free(s);
		return -1;
	}
	int port = (int)cfg->publisher_local_port;
	s->daemon = listen_on(s, &ss, port);
	if (!s->daemon && port == RESULTS_PORT_DEFAULT) {
		/* several nodes on one host (devstack): the default is taken */
		cod_warn("results", "port %d is in use; the result server takes a free port instead "
				    "(set Publishers.Types.Local.Port to choose one)", port);
		s->daemon = listen_on(s, &ss, 0);
	}
	if (!s->daemon) {
		cod_error_set(err, COD_E_UNAVAILABLE, "result server cannot listen on %s:%d", listen_host, port);
		if (err)
			cod_error_hint(*err, "choose another port with -c Publishers.Types.Local.Port=N (0 = any)");
		free(s->dir);
		free(s);
		return -1;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : port;
	bool v6 = strchr(adv, ':') != NULL;
	s->url = xasprintf("http://%s%s%s:%d", v6 ? "[" : "", adv, v6 ? "]" : "", s->port);

	/* the self-check: the advertised address must lead back here */
	cleanup_free char *probe = xasprintf("%s/", s->url);
	struct cod_buf body;
	cod_buf_init(&body, 4096);
	struct cod_http_request req;
	cod_http_request_init(&req, probe);
	req.out_buf = &body;
	req.timeout_ms = 5000;
	req.connect_timeout_ms = 3000;
	struct cod_http_response resp;
	struct cod_error *perr = NULL;
	int rc = cod_http_do(&req, &resp, &perr);
	bool ok = rc == 0 && resp.status == 200 && strstr(cod_buf_str(&body), "cod result server");
	cod_http_response_release(&resp);
	cod_buf_release(&body);
	if (!ok) {
		cod_error_set(err, COD_E_CONFIG,
			      "the result server's advertised address %s does not lead back to this node%s%s", s->url,
			      perr ? ": " : "", perr ? perr->message : "");
		if (err)
			cod_error_hint(*err, "set Publishers.Types.Local.Address to an address of this node that "
					     "clients can reach (and ListenAddress to where it should listen)");
		cod_error_free(perr);
		cod_results_server_stop(s);
		return -1;
	}
	cod_error_free(perr);
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
	if (s->daemon)
		MHD_stop_daemon(s->daemon);
	free(s->dir);
	free(s->url);
	free(s);
}
