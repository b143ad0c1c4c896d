/*
 * server.c - libmicrohttpd glue, routing and error bodies.
 */
#include "api/api.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/buf.h"
#include "common/doc.h"
#include "common/lazylib.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "common/banned.h"

struct cod_api_server {
	struct MHD_Daemon *daemon;
	struct cod_api_ctx *ctx;
	size_t max_body;
	int port;
};

/* Per-connection state while a request is read. */
struct req_state {
	struct cod_buf body;
	bool too_large;
	int64_t start_ms;
};

static const struct cod_api_route *const route_tables[] = {
	cod_api_agent_routes,
	cod_api_job_routes,
	cod_api_node_routes,
	cod_api_log_routes,
};

/* Match "/a/{x}/b" against "/a/123/b"; on success path params go to req. */
static bool match_pattern(const char *pattern, const char *path, struct cod_api_request *req)
{
	size_t nparams = 0;
	const char *p = pattern, *s = path;
	while (*p && *s) {
		if (*p == '{') {
			const char *close = strchr(p, '}');
			const char *seg_end = strchr(s, '/');
			size_t seg_len = seg_end ? (size_t)(seg_end - s) : strlen(s);
			if (!close || !seg_len || nparams >= COD_API_MAX_PARAMS)
				return false;
			if (req) {
				req->param_names[nparams] = cod_arena_strndup(&req->arena, p + 1, (size_t)(close - p - 1));
				req->param_values[nparams] = cod_arena_strndup(&req->arena, s, seg_len);
			}
			nparams++;
			p = close + 1;
			s += seg_len;
			continue;
		}
		if (*p != *s)
			return false;
		p++;
		s++;
	}
	/* tolerate one trailing slash on the request */
	if (!*p && *s == '/' && !s[1])
		s++;
	if (*p || *s)
		return false;
	if (req)
		req->nparams = nparams;
	return true;
}

static const struct cod_api_route *find_route(struct cod_api_request *req, struct cod_buf *allow)
{
	for (size_t t = 0; t < COD_ARRAY_SIZE(route_tables); t++) {
		for (const struct cod_api_route *r = route_tables[t]; r->pattern; r++) {
			if (!match_pattern(r->pattern, req->path, NULL))
				continue;
			if (!strcmp(r->method, req->method) ||
			    (!strcmp(req->method, "HEAD") && !strcmp(r->method, "GET"))) {
				match_pattern(r->pattern, req->path, req);
				return r;
			}
			if (!strstr(cod_buf_str(allow), r->method))
				cod_buf_addf(allow, "%s%s", allow->len ? ", " : "", r->method);
		}
	}
	return NULL;
}

json_t *cod_api_error_body(const struct cod_error *err, const char *request_id, const char *component)
{
	json_t *body = json_pack("{s:i, s:s, s:s, s:s, s:s}", "Status", cod_error_http_status(err->code),
				 "Message", err->message, "RequestID", request_id ? request_id : "", "Code",
				 cod_error_code_name(err->code), "Component",
				 err->component ? err->component : (component ? component : "API"));
	if (err->hint)
		json_object_set_new(body, "Hint", json_string(err->hint));
	if (err->ndetails) {
		json_t *details = json_object();
		json_t *problems = json_array();
		for (size_t i = 0; i < err->ndetails; i++)
			json_array_append_new(problems, json_string(err->details[i]));
		json_object_set_new(details, "Problems", problems);
		json_object_set_new(body, "Details", details);
	}
	return body;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, int status, const json_t *body,
				 const char *request_id, const char *location, const char *allow)
{
	struct cod_buf out = COD_BUF_INIT;
	if (body) {
		cod_json_emit(body, 0, &out);
		cod_buf_addch(&out, '\n');
	}
	size_t len = 0;
	char *data = cod_buf_detach(&out, &len);
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(data);
		return MHD_NO;
	}
	if (body)
		MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
	MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
	MHD_add_response_header(resp, "Server", "cod/" COD_VERSION);
	if (request_id)
		MHD_add_response_header(resp, "X-Request-ID", request_id);
	if (location)
		MHD_add_response_header(resp, "Location", location);
	if (allow)
		MHD_add_response_header(resp, "Allow", allow);
	enum MHD_Result r = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, struct cod_error *err, const char *request_id,
				  const char *component, const char *allow)
{
	json_t *body = cod_api_error_body(err, request_id, component);
	enum MHD_Result r = send_json(conn, cod_error_http_status(err->code), body, request_id, NULL, allow);
	json_decref(body);
	return r;
}

static enum MHD_Result dispatch(struct cod_api_server *srv, struct MHD_Connection *conn, const char *url,
				const char *method, struct req_state *st)
{
	struct cod_api_request req = {0};
	req.conn = conn;
	req.method = method;
	req.path = url;
	req.ctx = srv->ctx;
	req.body = cod_buf_str(&st->body);
	req.body_len = st->body.len;
	const char *given_id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-ID");
	if (given_id && strlen(given_id) < sizeof(req.request_id) && *given_id)
		snprintf(req.request_id, sizeof(req.request_id), "%s", given_id);
	else
		cod_uuid4(req.request_id);

	struct cod_error *err = NULL;
	json_t *out = NULL;
	enum MHD_Result r;
	struct cod_buf allow = COD_BUF_INIT;

	if (!strcmp(method, "OPTIONS")) {
		struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
		MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, PUT, POST, DELETE, OPTIONS");
		MHD_add_response_header(resp, "Access-Control-Allow-Headers", "*");
		r = MHD_queue_response(conn, MHD_HTTP_NO_CONTENT, resp);
		MHD_destroy_response(resp);
		return r;
	}

	if (st->too_large) {
		cod_error_set(&err, COD_E_TOO_LARGE, "request body is larger than %zu bytes", srv->max_body);
		cod_error_hint(err, "send a smaller body; job specs are usually a few kilobytes");
		r = send_error(conn, err, req.request_id, "API", NULL);
		cod_error_free(err);
		return r;
	}

	const struct cod_api_route *route = find_route(&req, &allow);
	if (!route) {
		if (allow.len) {
			cod_error_set(&err, COD_E_METHOD, "method %s is not allowed on \"%s\"", method, url);
			cod_error_hint(err, "use %s", allow.buf);
			r = send_error(conn, err, req.request_id, "API", allow.buf);
		} else {
			cod_error_set(&err, COD_E_NOT_FOUND, "no such endpoint \"%s %s\"", method, url);
			cod_error_hint(err, "endpoints live under /api/v1/ (agent, orchestrator/jobs, orchestrator/nodes)");
			r = send_error(conn, err, req.request_id, "API", NULL);
		}
		cod_error_free(err);
		cod_buf_release(&allow);
		cod_arena_release(&req.arena);
		return r;
	}
	cod_buf_release(&allow);
	req.component = route->component;
	int rc = route->handler(&req, &out, &err);
	if (rc < 0) {
		if (!err)
			cod_error_set(&err, COD_E_INTERNAL, "handler failed without a reason");
		cod_debug("api", "request_id=%s method=%s path=%s status=%d error=\"%s\"", req.request_id, method, url,
			  cod_error_http_status(err->code), err->message);
		r = send_error(conn, err, req.request_id, route->component, NULL);
		cod_error_free(err);
	} else if (req.queued) {
		/* a stream queued its own response (logs.c) */
		r = req.queued > 0 ? MHD_YES : MHD_NO;
	} else {
		int status = req.status ? req.status : 200;
		cod_debug("api", "request_id=%s method=%s path=%s status=%d ms=%lld", req.request_id, method, url,
			  status, (long long)(cod_mono_ms() - st->start_ms));
		r = send_json(conn, status, out, req.request_id, req.location, NULL);
	}
	json_decref(out);
	cod_arena_release(&req.arena);
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	(void)version;
	struct cod_api_server *srv = cls;
	struct req_state *st = *con_cls;
	if (!st) {
		st = xcalloc(1, sizeof(*st));
		cod_buf_init(&st->body, srv->max_body);
		st->start_ms = cod_mono_ms();
		*con_cls = st;
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		int64_t n;
		if (cl && cod_parse_i64(cl, &n) == 0 && n > 0 && (uint64_t)n > srv->max_body) {
			/* Refuse before reading: MHD closes the connection after. */
			st->too_large = true;
			return dispatch(srv, conn, url, method, st);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!st->too_large && cod_buf_add(&st->body, upload_data, *upload_data_size) < 0) {
			st->too_large = true;
			cod_buf_release(&st->body);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	return dispatch(srv, conn, url, method, st);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct req_state *st = *con_cls;
	if (st) {
		cod_buf_release(&st->body);
		free(st);
		*con_cls = NULL;
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	cod_debug("http", "%s", msg);
}

int cod_api_start(struct cod_api_ctx *ctx, const char *host, int port, int threads, size_t max_body,
		  struct cod_api_server **out, struct cod_error **err)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t sslen;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL;
	const char *bind_host = (host && *host) ? host : "0.0.0.0";
	int gai = getaddrinfo(bind_host, NULL, &hints, &res);
	if (gai || !res)
		return cod_error_set(err, COD_E_CONFIG, "API.Host \"%s\": %s", bind_host, gai_strerror(gai));
	memcpy(&ss, res->ai_addr, res->ai_addrlen);
	sslen = res->ai_addrlen;
	freeaddrinfo(res);
	(void)sslen;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_ALLOW_UPGRADE;
	if (ss.ss_family == AF_INET6) {
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		flags |= MHD_USE_IPv6;
	} else {
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
	}

	struct cod_api_server *srv = xcalloc(1, sizeof(*srv));
	srv->ctx = ctx;
	srv->max_body = max_body;
	srv->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, srv,
				       MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				       MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(threads > 0 ? threads : 1),
				       MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
				       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
				       MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				       MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
				       MHD_OPTION_END);
	if (!srv->daemon && cod_lazy_mhd_error()) {
		free(srv);
		return cod_error_set(err, COD_E_UNAVAILABLE, "cannot start the API server: %s", cod_lazy_mhd_error());
	}
	if (!srv->daemon) {
		free(srv);
		cod_error_set(err, COD_E_UNAVAILABLE, "cannot listen on %s:%d", bind_host, port);
		if (err)
			cod_error_hint(*err, "is another cod already running? choose a port with --api-port or -c API.Port=N");
		return -1;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? info->port : port;
	*out = srv;
	return 0;
}

int cod_api_port(const struct cod_api_server *srv)
{
	return srv->port;
}

void cod_api_stop(struct cod_api_server *srv)
{
	if (!srv)
		return;
	MHD_stop_daemon(srv->daemon);
	free(srv);
}

const char *cod_api_param(const struct cod_api_request *req, const char *name)
{
	for (size_t i = 0; i < req->nparams; i++)
		if (!strcmp(req->param_names[i], name))
			return req->param_values[i];
	return NULL;
}

const char *cod_api_query(const struct cod_api_request *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

struct collect {
	const char *key;
	struct cod_strlist *out;
};

static enum MHD_Result collect_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	struct collect *c = cls;
	if (key && !strcmp(key, c->key) && value && *value)
		cod_strlist_add(c->out, value);
	return MHD_YES;
}

void cod_api_query_all(const struct cod_api_request *req, const char *key, struct cod_strlist *out)
{
	struct collect c = {.key = key, .out = out};
	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect_cb, &c);
}

int cod_api_query_u64(const struct cod_api_request *req, const char *key, uint64_t def, uint64_t *out,
		      struct cod_error **err)
{
	const char *v = cod_api_query(req, key);
	if (!v || !*v) {
		*out = def;
		return 0;
	}
	int64_t n;
	if (cod_parse_i64(v, &n) < 0 || n < 0)
		return cod_error_set(err, COD_E_BAD_REQUEST,
				     "query parameter \"%s\": \"%s\" is not a non-negative integer", key, v);
	*out = (uint64_t)n;
	return 0;
}

int cod_api_query_bool(const struct cod_api_request *req, const char *key, bool def, bool *out,
		       struct cod_error **err)
{
	const char *v = cod_api_query(req, key);
	if (!v) {
		*out = def;
		return 0;
	}
	if (!*v || !strcasecmp(v, "true") || !strcmp(v, "1")) {
		*out = true;
		return 0;
	}
	if (!strcasecmp(v, "false") || !strcmp(v, "0")) {
		*out = false;
		return 0;
	}
	return cod_error_set(err, COD_E_BAD_REQUEST, "query parameter \"%s\": \"%s\" is not true or false", key, v);
}

const char *cod_api_header(const struct cod_api_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

json_t *cod_api_body_json(const struct cod_api_request *req, struct cod_error **err)
{
	if (!req->body_len) {
		cod_error_set(err, COD_E_BAD_REQUEST, "request body is empty; expected a JSON object");
		return NULL;
	}
	json_t *v = cod_json_parse(req->body, req->body_len, err);
	if (!v)
		return NULL;
	if (!json_is_object(v)) {
		json_decref(v);
		cod_error_set(err, COD_E_BAD_REQUEST, "request body must be a JSON object");
		return NULL;
	}
	return v;
}

int cod_api_query_selector(const struct cod_api_request *req, const char *key, struct cod_selector *sel,
			   struct cod_error **err)
{
	struct cod_strlist values = {0};
	cod_api_query_all(req, key, &values);
	for (size_t i = 0; i < values.n; i++) {
		struct cod_selector part = {0};
		if (cod_selector_parse(values.items[i], &part, err) < 0) {
			cod_strlist_release(&values);
			return cod_error_wrap(err, "query parameter \"%s\"", key);
		}
		for (size_t j = 0; j < part.n; j++) {
			sel->reqs = xrealloc(sel->reqs, cod_mul_size(sel->n + 1, sizeof(*sel->reqs)));
			sel->reqs[sel->n++] = part.reqs[j];
		}
		free(part.reqs);
	}
	cod_strlist_release(&values);
	return 0;
}
