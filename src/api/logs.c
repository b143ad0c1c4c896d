/*
 * logs.c - GET /api/v1/orchestrator/jobs/{id}/logs: a job's log lines,
 * from the orchestrator's log proxy (orchestrator/logs.h), in one of three
 * shapes chosen by the request (docs/logs.md):
 *
 *   WebSocket (Upgrade: websocket), as Bacalhau's clients expect: one text
 *     frame per line, {"value": {"Type": 1|2, "Line": "...", "ExecutionID",
 *     "NodeID", "Offset"}}, a frame {"error": "..."} when the stream fails,
 *     then a close frame (1000 when the job ended, 1001 at shutdown, 1011
 *     on errors). Client pings are answered; a client close ends it.
 *   Server-Sent Events (Accept: text/event-stream): each line an event
 *     with `id:` and `data:` holding the same JSON; `event: note` for
 *     cod's own remarks (an execution's logs are unavailable), `event:
 *     end` ({"JobState"}) or `event: error` ({"error", "Code"}) last, and
 *     a `: keepalive` comment every 15 s.
 *   Otherwise JSON, not streamed: {"Items": [...], "Notes": [...],
 *     "Truncated"} with the lines so far (follow is ignored).
 *
 * Query: execution_id (full or unique prefix), tail (N last lines of each
 * execution; Bacalhau's boolean tail=true|false means all lines),
 * follow, job_version, all_job_versions, namespace.
 *
 * Backpressure: the stream's thread writes into the connection; when the
 * client reads slowly the writes wait, the proxy stops granting credit to
 * the compute nodes, and they stop reading files. Nothing is buffered
 * beyond 256 KiB per SSE client (and the socket's own buffers).
 */
#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "api/api.h"
#include "api/ws.h"
#include "common/buf.h"
#include "common/doc.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "orchestrator/logs.h"
#include "common/banned.h"

#define SSE_BUFFER_MAX (256u << 10)
#define SSE_KEEPALIVE_MS 15000
#define JSON_MAX_BYTES (16u << 20)
#define JSON_WAIT_MS 60000
#define WS_IN_MAX 65536
#define WS_STALL_MS 30000
#define WS_CLOSE_WAIT_MS 1000

/* {"Type", "Line", "ExecutionID", "NodeID", "Offset"}: a line as JSON. */
static json_t *item_json(const struct cod_log_item *item)
{
	json_t *v = json_object();
	json_object_set_new(v, "Type", json_integer(item->type));
	json_object_set_new(v, "Line", json_stringn(item->line, item->len));
	json_object_set_new(v, "ExecutionID", json_string(item->execution_id ? item->execution_id : ""));
	json_object_set_new(v, "NodeID", json_string(item->node_id ? item->node_id : ""));
	json_object_set_new(v, "Offset", json_integer((json_int_t)item->offset));
	return v;
}

static json_t *note_json(const struct cod_log_item *item)
{
	return json_pack("{s:s, s:s, s:s%}", "ExecutionID", item->execution_id ? item->execution_id : "",
			 "NodeID", item->node_id ? item->node_id : "", "Message", item->line, item->len);
}

/* Whether a comma-separated header value holds token (case-insensitive). */
static bool has_token(const char *value, const char *token)
{
	size_t n = strlen(token);
	for (const char *p = value ? value : ""; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *end = p;
		while (*end && *end != ',' && *end != ';')
			end++;
		const char *e = end;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - p) == n && !strncasecmp(p, token, n))
			return true;
		p = end;
		while (*p && *p != ',')
			p++;
	}
	return false;
}

/* -------------------------------------------------------------- query */

static int parse_query(struct cod_api_request *req, struct cod_log_query *q, struct cod_error **err)
{
	memset(q, 0, sizeof(*q));
	q->namespace_ = cod_api_query(req, "namespace");
	q->job_ref = cod_api_param(req, "id");
	q->execution_id = cod_api_query(req, "execution_id");
	if (cod_api_query_u64(req, "job_version", 0, &q->job_version, err) < 0 ||
	    cod_api_query_bool(req, "all_job_versions", false, &q->all_versions, err) < 0 ||
	    cod_api_query_bool(req, "follow", false, &q->follow, err) < 0)
		return -1;
	q->tail = -1;
	const char *tail = cod_api_query(req, "tail");
	if (tail && *tail && strcasecmp(tail, "true") && strcasecmp(tail, "false")) {
		int64_t n;
		if (cod_parse_i64(tail, &n) < 0 || n < 0)
			return cod_error_set(
			    err, COD_E_BAD_REQUEST,
			    "query parameter \"tail\": \"%s\" is not a number of lines (or true/false)",
			    tail);
		q->tail = n;
	}
	return 0;
}

/* ---------------------------------------------------------------- JSON */

struct collect {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	json_t *items, *notes;
	size_t bytes;
	bool truncated;
	bool done;
	struct cod_error *err;
};

static int collect_line(void *arg, const struct cod_log_item *item)
{
	struct collect *c = arg;
	pthread_mutex_lock(&c->lock);
	int rc = 0;
	if (c->bytes + item->len > JSON_MAX_BYTES) {
		c->truncated = true;
		rc = -1;
	} else {
		c->bytes += item->len;
		json_array_append_new(item->type ? c->items : c->notes,
				      item->type ? item_json(item) : note_json(item));
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static void collect_end(void *arg, const struct cod_error *err, const char *job_state)
{
	(void)job_state;
	struct collect *c = arg;
	pthread_mutex_lock(&c->lock);
	if (err) {
		cod_error_set(&c->err, err->code, "%s", err->message);
		if (err->hint)
			cod_error_hint(c->err, "%s", err->hint);
	}
	c->done = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static int answer_json(struct cod_api_request *req, struct cod_log_query *q, json_t **out,
		       struct cod_error **err)
{
	struct collect c = {.items = json_array(), .notes = json_array()};
	pthread_mutex_init(&c.lock, NULL);
	cod_cond_init_mono(&c.cond);
	q->follow = false;
	struct cod_log_sink sink = {.line = collect_line, .end = collect_end, .arg = &c};
	struct cod_log_stream *s = NULL;
	int rc = cod_log_stream_open(req->ctx->logs, q, &sink, &s, err);
	if (rc == 0) {
		cod_log_stream_run(s, false);
		int64_t deadline = cod_mono_ms() + JSON_WAIT_MS;
		pthread_mutex_lock(&c.lock);
		while (!c.done && cod_mono_ms() < deadline) {
			struct timespec ts;
			cod_mono_deadline(&ts, 200);
			pthread_cond_timedwait(&c.cond, &c.lock, &ts);
		}
		if (!c.done)
			c.truncated = true;
		pthread_mutex_unlock(&c.lock);
		cod_log_stream_close(s);
		if (c.err) {
			cod_error_move(err, &c.err);
			rc = -1;
		}
	}
	if (rc == 0)
		*out = json_pack("{s:o, s:o, s:b}", "Items", c.items, "Notes", c.notes, "Truncated",
				 c.truncated);
	else {
		json_decref(c.items);
		json_decref(c.notes);
	}
	pthread_mutex_destroy(&c.lock);
	pthread_cond_destroy(&c.cond);
	return rc;
}

/* ----------------------------------------------------------------- SSE */

struct sse {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* room in out, or closed */
	struct MHD_Connection *conn;
	struct cod_buf out;
	size_t off;	 /* bytes of out already handed to MHD */
	bool suspended;	 /* we suspended conn in the reader */
	bool ended;	 /* the last event is in out */
	bool closed;	 /* MHD is done with the response */
	int64_t last_ms; /* last event queued */
	uint64_t next_id;
	struct cod_log_stream *stream;
};

/* Let MHD send what is queued (c->lock held). */
static void sse_wake_locked(struct sse *c)
{
	if (c->suspended && !c->closed) {
		c->suspended = false;
		MHD_resume_connection(c->conn);
	}
}

/* Queue one event, waiting while the client is behind. < 0: gone. */
static int sse_put(struct sse *c, const char *event, const json_t *data, bool with_id)
{
	cleanup_free char *text = cod_json_dumps(data, 0);
	pthread_mutex_lock(&c->lock);
	while (!c->closed && c->out.len - c->off > SSE_BUFFER_MAX && !cod_log_stream_stopping(c->stream)) {
		struct timespec ts;
		cod_mono_deadline(&ts, 200);
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	}
	int rc = -1;
	if (!c->closed) {
		if (event)
			cod_buf_addf(&c->out, "event: %s\n", event);
		if (with_id)
			cod_buf_addf(&c->out, "id: %llu\n", (unsigned long long)++c->next_id);
		cod_buf_addf(&c->out, "data: %s\n\n", text);
		c->last_ms = cod_mono_ms();
		sse_wake_locked(c);
		rc = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static int sse_line(void *arg, const struct cod_log_item *item)
{
	struct sse *c = arg;
	if (!item->type) {
		cleanup_json json_t *n = note_json(item);
		return sse_put(c, "note", n, false);
	}
	cleanup_json json_t *v = json_pack("{s:o}", "value", item_json(item));
	return sse_put(c, NULL, v, true);
}

static int sse_idle(void *arg)
{
	struct sse *c = arg;
	pthread_mutex_lock(&c->lock);
	int rc = c->closed ? -1 : 0;
	if (!c->closed && cod_mono_ms() - c->last_ms >= SSE_KEEPALIVE_MS) {
		/* also how a vanished client is noticed: MHD does not watch
		 * a suspended connection */
		cod_buf_addstr(&c->out, ": keepalive\n\n");
		c->last_ms = cod_mono_ms();
		sse_wake_locked(c);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static void sse_end(void *arg, const struct cod_error *err, const char *job_state)
{
	struct sse *c = arg;
	cleanup_json json_t *v =
	    err ? json_pack("{s:s, s:s}", "error", err->message, "Code", cod_error_code_name(err->code))
		: json_pack("{s:s}", "JobState", job_state ? job_state : "");
	sse_put(c, err ? "error" : "end", v, false);
	pthread_mutex_lock(&c->lock);
	c->ended = true;
	sse_wake_locked(c);
	pthread_mutex_unlock(&c->lock);
}

static void sse_release(void *arg)
{
	struct sse *c = arg;
	cod_buf_release(&c->out);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

/* MHD wants body bytes (on its thread). */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct sse *c = cls;
	pthread_mutex_lock(&c->lock);
	size_t avail = c->out.len - c->off;
	ssize_t n;
	if (avail) {
		n = (ssize_t)(avail < max ? avail : max);
		memcpy(buf, c->out.buf + c->off, (size_t)n);
		c->off += (size_t)n;
		if (c->off == c->out.len) {
			cod_buf_reset(&c->out);
			c->off = 0;
		}
		pthread_cond_broadcast(&c->cond);
	} else if (c->ended) {
		n = MHD_CONTENT_READER_END_OF_STREAM;
	} else {
		/* nothing yet: MHD calls again once resumed */
		c->suspended = true;
		MHD_suspend_connection(c->conn);
		n = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* MHD is done with the response (sent, or the client left). */
static void sse_free(void *cls)
{
	struct sse *c = cls;
	pthread_mutex_lock(&c->lock);
	c->closed = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	cod_log_stream_close(c->stream); /* frees c (sse_release) */
}

static int answer_sse(struct cod_api_request *req, const struct cod_log_query *q, struct cod_error **err)
{
	struct sse *c = xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	cod_cond_init_mono(&c->cond);
	cod_buf_init(&c->out, 0);
	c->conn = req->conn;
	c->last_ms = cod_mono_ms();
	struct cod_log_sink sink = {
	    .line = sse_line, .idle = sse_idle, .end = sse_end, .release = sse_release, .arg = c};
	if (cod_log_stream_open(req->ctx->logs, q, &sink, &c->stream, err) < 0) {
		sse_release(c);
		return -1;
	}
	struct MHD_Response *resp =
	    MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, sse_read, c, sse_free);
	if (!resp) {
		cod_log_stream_close(c->stream);
		return cod_error_set(err, COD_E_INTERNAL, "cannot create a streaming response");
	}
	MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
	MHD_add_response_header(resp, "Server", "cod/" COD_VERSION);
	MHD_add_response_header(resp, "X-Request-ID", req->request_id);
	enum MHD_Result r = MHD_queue_response(req->conn, MHD_HTTP_OK, resp);
	if (r == MHD_YES)
		cod_log_stream_run(c->stream, false);
	/* On failure, destroying the response calls sse_free. */
	MHD_destroy_response(resp);
	req->queued = r == MHD_YES ? 1 : -1;
	return 0;
}

/* ----------------------------------------------------------- WebSocket */

struct ws {
	MHD_socket sock;
	struct MHD_UpgradeResponseHandle *urh;
	struct cod_log_stream *stream;
	uint8_t in[WS_IN_MAX];
	size_t inlen;
	bool close_sent;
	bool peer_gone;
};

/* Send everything, waiting for the socket up to WS_STALL_MS (or 1 s at
 * the end, when the stream is already stopping). */
static int ws_send(struct ws *w, const void *data, size_t len, bool at_end)
{
	const char *p = data;
	int64_t deadline = cod_mono_ms() + (at_end ? WS_CLOSE_WAIT_MS : WS_STALL_MS);
	while (len) {
		ssize_t n = send(w->sock, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			deadline = cod_mono_ms() + (at_end ? WS_CLOSE_WAIT_MS : WS_STALL_MS);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			w->peer_gone = true;
			return -1;
		}
		if (cod_mono_ms() >= deadline || (!at_end && cod_log_stream_stopping(w->stream)))
			return -1;
		struct pollfd pfd = {.fd = w->sock, .events = POLLOUT};
		poll(&pfd, 1, 200);
	}
	return 0;
}

static int ws_send_frame(struct ws *w, enum cod_ws_opcode op, const void *data, size_t len, bool at_end)
{
	struct cod_buf b = COD_BUF_INIT;
	cod_ws_frame(&b, op, data, len, NULL);
	int rc = ws_send(w, b.buf, b.len, at_end);
	cod_buf_release(&b);
	return rc;
}

static void ws_send_close(struct ws *w, uint16_t code, const char *reason)
{
	if (w->close_sent || w->peer_gone)
		return;
	struct cod_buf b = COD_BUF_INIT;
	cod_ws_close_frame(&b, code, reason, NULL);
	ws_send(w, b.buf, b.len, true);
	cod_buf_release(&b);
	w->close_sent = true;
}

/* Read and answer what the client sent: pings, a close. wait_ms > 0
 * waits that long for something to arrive. < 0: the connection is over. */
static int ws_service(struct ws *w, int wait_ms)
{
	if (w->peer_gone)
		return -1;
	if (wait_ms > 0) {
		struct pollfd pfd = {.fd = w->sock, .events = POLLIN};
		poll(&pfd, 1, wait_ms);
	}
	for (;;) {
		if (w->inlen < sizeof(w->in)) {
			ssize_t n = recv(w->sock, w->in + w->inlen, sizeof(w->in) - w->inlen, MSG_DONTWAIT);
			if (n == 0) {
				w->peer_gone = true;
				return -1;
			}
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				w->peer_gone = true;
				return -1;
			}
			if (n > 0)
				w->inlen += (size_t)n;
		}
		struct cod_ws_frame f;
		const char *why = NULL;
		ssize_t used = cod_ws_parse(w->in, w->inlen, WS_IN_MAX - 14, true, &f, &why);
		if (used < 0) {
			cod_debug("api", "websocket: %s; closing", why);
			ws_send_close(w, COD_WS_CLOSE_PROTOCOL, why);
			return -1;
		}
		if (used == 0) {
			if (w->inlen == sizeof(w->in)) { /* cannot happen: frames are capped */
				ws_send_close(w, COD_WS_CLOSE_TOO_BIG, "frame too large");
				return -1;
			}
			return 0;
		}
		int rc = 0;
		if (f.opcode == COD_WS_PING) {
			rc = ws_send_frame(w, COD_WS_PONG, f.payload, f.len, false);
		} else if (f.opcode == COD_WS_CLOSE) {
			/* echo the client's status, as RFC 6455 §5.5.1 asks */
			uint16_t code =
			    f.len >= 2 ? (uint16_t)((f.payload[0] << 8) | f.payload[1]) : COD_WS_CLOSE_NORMAL;
			if (!w->close_sent)
				ws_send_close(w, code, "");
			w->peer_gone = true;
			rc = -1;
		}
		/* text, binary, pong: nothing to do */
		memmove(w->in, w->in + used, w->inlen - (size_t)used);
		w->inlen -= (size_t)used;
		if (rc < 0)
			return -1;
	}
}

static int ws_line(void *arg, const struct cod_log_item *item)
{
	struct ws *w = arg;
	if (ws_service(w, 0) < 0)
		return -1;
	if (!item->type)
		return 0; /* notes are not part of Bacalhau's stream */
	cleanup_json json_t *v = json_pack("{s:o}", "value", item_json(item));
	cleanup_free char *text = cod_json_dumps(v, 0);
	return ws_send_frame(w, COD_WS_TEXT, text, strlen(text), false);
}

static int ws_idle(void *arg)
{
	return ws_service(arg, 0);
}

static void ws_end(void *arg, const struct cod_error *err, const char *job_state)
{
	struct ws *w = arg;
	if (!w->peer_gone) {
		uint16_t code = COD_WS_CLOSE_NORMAL;
		cleanup_free char *reason = NULL;
		if (err) {
			cleanup_json json_t *v = json_pack("{s:s}", "error", err->message);
			cleanup_free char *text = cod_json_dumps(v, 0);
			ws_send_frame(w, COD_WS_TEXT, text, strlen(text), true);
			code =
			    err->code == COD_E_UNAVAILABLE ? COD_WS_CLOSE_GOING_AWAY : COD_WS_CLOSE_INTERNAL;
			reason = xstrdup(err->message);
		} else {
			reason = xasprintf("job %s", job_state && *job_state ? job_state : "logs sent");
		}
		ws_send_close(w, code, reason);
		/* give the client a moment to answer the close */
		int64_t deadline = cod_mono_ms() + WS_CLOSE_WAIT_MS;
		while (!w->peer_gone && cod_mono_ms() < deadline && ws_service(w, 100) == 0)
			;
	}
	MHD_upgrade_action(w->urh, MHD_UPGRADE_ACTION_CLOSE);
	w->urh = NULL;
}

static void ws_release(void *arg)
{
	free(arg);
}

/* The 101 went out: the socket is ours (MHD thread; must not block). */
static void ws_upgraded(void *cls, struct MHD_Connection *connection, void *con_cls, const char *extra_in,
			size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	(void)connection;
	(void)con_cls;
	struct ws *w = cls;
	w->sock = sock;
	w->urh = urh;
	if (extra_in_size > sizeof(w->in))
		extra_in_size = sizeof(w->in);
	if (extra_in_size)
		memcpy(w->in, extra_in, extra_in_size);
	w->inlen = extra_in_size;
	cod_log_stream_run(w->stream, true);
}

static int answer_ws(struct cod_api_request *req, const struct cod_log_query *q, struct cod_error **err)
{
	const char *version = cod_api_header(req, "Sec-WebSocket-Version");
	const char *key = cod_api_header(req, "Sec-WebSocket-Key");
	if (strcmp(req->method, "GET"))
		return cod_error_set(err, COD_E_BAD_REQUEST,
				     "bad WebSocket handshake: the method must be GET");
	if (!has_token(cod_api_header(req, "Connection"), "upgrade")) {
		cod_error_set(err, COD_E_BAD_REQUEST,
			      "bad WebSocket handshake: \"Connection: Upgrade\" is missing");
		cod_error_hint(*err, "a proxy may have dropped it; or drop \"Upgrade\" and send "
				     "\"Accept: text/event-stream\" for Server-Sent Events");
		return -1;
	}
	if (!version || strcmp(version, "13")) {
		cod_error_set(err, COD_E_BAD_REQUEST,
			      "bad WebSocket handshake: Sec-WebSocket-Version \"%s\" is not 13",
			      version ? version : "");
		cod_error_hint(*err, "cod speaks WebSocket version 13 (RFC 6455)");
		return -1;
	}
	if (!cod_ws_key_valid(key)) {
		cod_error_set(
		    err, COD_E_BAD_REQUEST,
		    "bad WebSocket handshake: Sec-WebSocket-Key \"%s\" is not 16 base64-encoded bytes",
		    key ? key : "");
		return -1;
	}
	struct ws *w = xcalloc(1, sizeof(*w));
	w->sock = -1;
	struct cod_log_sink sink = {
	    .line = ws_line, .idle = ws_idle, .end = ws_end, .release = ws_release, .arg = w};
	if (cod_log_stream_open(req->ctx->logs, q, &sink, &w->stream, err) < 0) {
		free(w);
		return -1;
	}
	struct MHD_Response *resp = MHD_create_response_for_upgrade(ws_upgraded, w);
	if (!resp) {
		cod_log_stream_close(w->stream);
		return cod_error_set(err, COD_E_INTERNAL, "cannot create the WebSocket upgrade response");
	}
	cleanup_free char *accept = cod_ws_accept(key);
	MHD_add_response_header(resp, "Upgrade", "websocket");
	MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
	MHD_add_response_header(resp, "Server", "cod/" COD_VERSION);
	MHD_add_response_header(resp, "X-Request-ID", req->request_id);
	enum MHD_Result r = MHD_queue_response(req->conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
	MHD_destroy_response(resp);
	if (r != MHD_YES)
		cod_log_stream_close(w->stream); /* never upgraded: frees w */
	/* else: ws_upgraded runs the stream; should the upgrade never
	 * happen, the proxy releases it when it stops */
	req->queued = r == MHD_YES ? 1 : -1;
	return 0;
}

/* ------------------------------------------------------------- handler */

static int logs(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	if (!req->ctx->logs) {
		cod_error_set(err, COD_E_UNAVAILABLE, "this node does not serve job logs");
		cod_error_hint(*err, "ask the orchestrator's API (cod serve --orchestrator)");
		return -1;
	}
	struct cod_log_query q;
	if (parse_query(req, &q, err) < 0)
		return -1;
	const char *upgrade = cod_api_header(req, "Upgrade");
	if (upgrade && *upgrade) {
		if (!has_token(upgrade, "websocket"))
			return cod_error_set(err, COD_E_BAD_REQUEST,
					     "cannot upgrade to \"%s\"; only to websocket", upgrade);
		return answer_ws(req, &q, err);
	}
	if (has_token(cod_api_header(req, "Accept"), "text/event-stream"))
		return answer_sse(req, &q, err);
	return answer_json(req, &q, out, err);
}

const struct cod_api_route cod_api_log_routes[] = {
    {"GET", "/api/v1/orchestrator/jobs/{id}/logs", logs, "Jobs"},
    {NULL, NULL, NULL, NULL},
};
