/*
 * transport.c - subjects, envelopes and the libnats wrapper.
 *
 * The wrapper keeps libnats at arm's length: one struct cod_nats owns the
 * connection, its options and the closures of its subscriptions, and maps
 * natsStatus values to cod errors with hints. Closing is careful about
 * libnats' threads: a subscription's handler may be running on its
 * delivery thread while we unsubscribe, and connection callbacks run on the
 * library's callback thread, so close waits for the "subscription
 * complete" and "connection closed" callbacks before freeing anything
 * those threads might touch.
 */
#include "transport/transport.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <nats/nats.h>

#include "common/doc.h"
#include "common/json_fast.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "common/banned.h"

#define SUBJECT_PREFIX "cod.node."
/* How long close waits for libnats' threads to let go of our closures. */
#define CLOSE_WAIT_MS 5000
/* Reconnect backoff: 100 ms doubling to 2 s, plus up to 20% jitter. */
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 2000

/* ------------------------------------------------------------ subjects */

static char *subject(const char *node_id, const char *kind)
{
	return xasprintf(SUBJECT_PREFIX "%s.%s", node_id, kind);
}

char *cod_subject_in(const char *node_id)
{
	return subject(node_id, "in");
}

char *cod_subject_out(const char *node_id)
{
	return subject(node_id, "out");
}

char *cod_subject_ctrl(const char *node_id)
{
	return subject(node_id, "ctrl");
}

char *cod_subject_logs(const char *node_id)
{
	return subject(node_id, "logs");
}

char *cod_subject_node(const char *subj)
{
	if (!subj || !cod_str_has_prefix(subj, SUBJECT_PREFIX))
		return NULL;
	const char *id = subj + strlen(SUBJECT_PREFIX);
	const char *dot = strchr(id, '.');
	if (!dot || dot == id)
		return NULL;
	const char *kind = dot + 1;
	if (strcmp(kind, "in") && strcmp(kind, "out") && strcmp(kind, "ctrl"))
		return NULL;
	return xstrndup(id, (size_t)(dot - id));
}

/* ----------------------------------------------------------- envelopes */

bool cod_fault_duplicate_messages(const char *who)
{
	const char *fault = getenv("COD_FAULT_DUPLICATE_MESSAGES");
	bool on = fault && *fault && strcmp(fault, "0");
	if (on)
		cod_warn(who, "COD_FAULT_DUPLICATE_MESSAGES is set: messages go out duplicated and reordered");
	return on;
}

/* A JSON string; text that is not UTF-8 becomes "". */
static void add_string(struct cod_buf *b, const char *s)
{
	json_t *v = json_string(s ? s : "");
	if (v)
		cod_json_emit(v, 0, b);
	else
		cod_buf_addstr(b, "\"\"");
	json_decref(v);
}

char *cod_envelope_encode_text(const char *type, uint64_t seq, const char *source, int64_t time,
			       const char *payload, const char *capacity, size_t *len)
{
	struct cod_buf b = COD_BUF_INIT;
	cod_buf_addstr(&b, "{\"Type\":");
	add_string(&b, type);
	cod_buf_addf(&b, ",\"Seq\":%" PRIu64 ",\"Source\":", seq);
	add_string(&b, source);
	cod_buf_addf(&b, ",\"Time\":%" PRId64 ",\"Payload\":", time);
	const char *p = payload ? payload : "";
	p += strspn(p, " \t\r\n");
	cod_buf_addstr(&b, *p == '{' ? p : "{}");
	if (capacity && *capacity == '{') {
		cod_buf_addstr(&b, ",\"Capacity\":");
		cod_buf_addstr(&b, capacity);
	}
	cod_buf_addch(&b, '}');
	return cod_buf_detach(&b, len);
}

char *cod_envelope_encode(const struct cod_envelope *env, size_t *len)
{
	cleanup_free char *payload = env->payload ? cod_json_dumps(env->payload, 0) : NULL;
	cleanup_free char *capacity = env->capacity ? cod_json_dumps(env->capacity, 0) : NULL;
	return cod_envelope_encode_text(env->type, env->seq, env->source, env->time, payload, capacity, len);
}

static int malformed(struct cod_error **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int malformed(struct cod_error **err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *what = xvasprintf(fmt, ap);
	va_end(ap);
	return cod_error_set(err, COD_E_BAD_REQUEST, "malformed envelope: %s", what);
}

int cod_envelope_decode(const char *data, size_t len, struct cod_envelope *out, struct cod_error **err)
{
	memset(out, 0, sizeof(*out));
	if (!data || !len)
		return malformed(err, "empty message");
	json_error_t jerr;
	json_t *root = cod_json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return malformed(err, "%s (at byte %d)", jerr.text, jerr.position);
	int rc = -1;
	json_t *type, *seq, *source, *tm, *payload, *capacity;
	if (!json_is_object(root)) {
		malformed(err, "expected a JSON object");
		goto out;
	}
	type = cod_json_iget(root, "Type");
	if (!type || json_is_null(type)) {
		malformed(err, "Type is missing");
		goto out;
	}
	if (!json_is_string(type) || !*json_string_value(type)) {
		malformed(err, "Type must be a non-empty string");
		goto out;
	}
	seq = cod_json_iget(root, "Seq");
	if (seq && !json_is_null(seq) && (!json_is_integer(seq) || json_integer_value(seq) < 0)) {
		malformed(err, "Seq must be a non-negative integer");
		goto out;
	}
	source = cod_json_iget(root, "Source");
	if (source && !json_is_null(source) && !json_is_string(source)) {
		malformed(err, "Source must be a string");
		goto out;
	}
	tm = cod_json_iget(root, "Time");
	if (tm && !json_is_null(tm) && !json_is_integer(tm)) {
		malformed(err, "Time must be an integer (Unix nanoseconds)");
		goto out;
	}
	payload = cod_json_iget(root, "Payload");
	if (payload && !json_is_null(payload) && !json_is_object(payload)) {
		malformed(err, "Payload must be an object");
		goto out;
	}
	capacity = cod_json_iget(root, "Capacity");
	if (capacity && !json_is_null(capacity) && !json_is_object(capacity)) {
		malformed(err, "Capacity must be an object");
		goto out;
	}
	out->type = xstrdup(json_string_value(type));
	out->seq = seq && json_is_integer(seq) ? (uint64_t)json_integer_value(seq) : 0;
	out->source = xstrdup(source && json_is_string(source) ? json_string_value(source) : "");
	out->time = tm && json_is_integer(tm) ? (int64_t)json_integer_value(tm) : 0;
	out->payload = payload && json_is_object(payload) ? json_incref(payload) : json_object();
	out->capacity = capacity && json_is_object(capacity) ? json_incref(capacity) : NULL;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

void cod_envelope_release(struct cod_envelope *env)
{
	if (!env)
		return;
	free(env->type);
	free(env->source);
	json_decref(env->payload);
	json_decref(env->capacity);
	memset(env, 0, sizeof(*env));
}

/* ------------------------------------------------------ the connection */

struct nats_sub {
	struct cod_nats *owner;
	natsSubscription *sub;
	cod_nats_msg_fn fn; /* NULL: a pulled subscription (cod_nats_pull) */
	void *ctx;
	bool complete; /* libnats will not call fn again */
	struct nats_sub *next;
};

struct cod_nats {
	natsConnection *conn;
	natsOptions *opts;
	char *url; /* for messages, token removed */
	cod_nats_state_fn on_state;
	void *ctx;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool closing;
	bool closed; /* the closed callback ran */
	struct nats_sub *subs;
};

/* "nats://secret@host:4222" -> "nats://host:4222" for messages and logs. */
static char *redact_url(const char *url)
{
	struct cod_buf b = COD_BUF_INIT;
	const char *p = url;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		cleanup_free char *one = xstrndup(p, n);
		char *scheme = strstr(one, "://");
		char *host = scheme ? scheme + 3 : one;
		char *at = strrchr(host, '@');
		if (b.len)
			cod_buf_addch(&b, ',');
		if (at) {
			cod_buf_add(&b, one, (size_t)(host - one));
			cod_buf_addstr(&b, at + 1);
		} else {
			cod_buf_addstr(&b, one);
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return cod_buf_detach(&b, NULL);
}

/* A connection state change, reported unless the connection is closing. */
static void state_changed(struct cod_nats *nc, bool up)
{
	pthread_mutex_lock(&nc->lock);
	bool closing = nc->closing;
	pthread_mutex_unlock(&nc->lock);
	if (closing)
		return;
	if (up)
		cod_info("nats", "connected to %s", nc->url);
	else
		cod_warn("nats", "disconnected from %s; reconnecting", nc->url);
	if (nc->on_state)
		nc->on_state(nc->ctx, up);
}

static void on_disconnected(natsConnection *conn, void *closure)
{
	(void)conn;
	state_changed(closure, false);
}

static void on_connected(natsConnection *conn, void *closure)
{
	(void)conn;
	state_changed(closure, true);
}

static void on_closed(natsConnection *conn, void *closure)
{
	(void)conn;
	struct cod_nats *nc = closure;
	pthread_mutex_lock(&nc->lock);
	nc->closed = true;
	pthread_cond_broadcast(&nc->cond);
	pthread_mutex_unlock(&nc->lock);
}

static int64_t reconnect_delay(natsConnection *conn, int attempts, void *closure)
{
	(void)conn;
	(void)closure;
	int64_t ms = RECONNECT_MIN_MS;
	for (int i = 1; i < attempts && ms < RECONNECT_MAX_MS; i++)
		ms *= 2;
	if (ms > RECONNECT_MAX_MS)
		ms = RECONNECT_MAX_MS;
	uint32_t r;
	cod_random_bytes(&r, sizeof(r));
	return ms + (int64_t)(r % (uint32_t)(ms / 5 + 1));
}

static bool auth_failure(natsStatus s, const char *text)
{
	return s == NATS_CONNECTION_AUTH_FAILED || (text && strcasestr(text, "authorization violation")) ||
	       (text && strcasestr(text, "authentication"));
}

/* Map a failed libnats call to a cod error; returns -1. what prefixes the
 * message ("publish to ..."); NULL for connect, whose messages name the
 * server themselves. */
static int nats_fail(struct cod_nats *nc, natsStatus s, struct cod_error **err, const char *what)
{
	natsStatus last = NATS_OK;
	const char *text = nats_GetLastError(&last);
	const char *url = nc && nc->url ? nc->url : "NATS";
	const char *pre = what ? what : "";
	const char *sep = what ? ": " : "";
	if (auth_failure(s, text) || auth_failure(last, NULL)) {
		cod_error_set(err, COD_E_UNAUTHORIZED,
			      "%s%sNATS server %s refused the token: authorization violation", pre, sep, url);
		if (err)
			cod_error_hint(*err, "compute nodes must present the orchestrator's token: set "
					     "Compute.Auth.Token to the value of Orchestrator.Auth.Token");
		return -1;
	}
	switch (s) {
	case NATS_NO_SERVER:
		cod_error_set(err, COD_E_NETWORK, "%s%scannot connect to NATS at %s: no server is listening",
			      pre, sep, url);
		if (err)
			cod_error_hint(*err, "start the orchestrator ('cod serve --orchestrator') or point "
					     "Compute.Orchestrators at it");
		return -1;
	case NATS_TIMEOUT:
		return cod_error_set(err, COD_E_TIMEOUT, "%s%stimed out (%s)", pre, sep, url);
	case NATS_NO_RESPONDERS:
		return cod_error_set(err, COD_E_UNAVAILABLE, "%s%snobody is listening (no responders)", pre,
				     sep);
	case NATS_CONNECTION_CLOSED:
	case NATS_CONNECTION_DISCONNECTED:
	case NATS_STALE_CONNECTION:
	case NATS_IO_ERROR:
	case NATS_NOT_YET_CONNECTED:
		return cod_error_set(err, COD_E_NETWORK, "%s%s%s (%s)", pre, sep, natsStatus_GetText(s), url);
	case NATS_MAX_PAYLOAD:
		return cod_error_set(err, COD_E_TOO_LARGE, "%s%smessage larger than the server's max payload",
				     pre, sep);
	case NATS_INVALID_SUBJECT:
	case NATS_INVALID_ARG:
	case NATS_ADDRESS_MISSING:
		return cod_error_set(err, COD_E_CONFIG, "%s%s%s", pre, sep,
				     text && *text ? text : natsStatus_GetText(s));
	default:
		return cod_error_set(err, COD_E_NETWORK, "%s%s%s (%s)", pre, sep,
				     text && *text ? text : natsStatus_GetText(s), url);
	}
}

/* Split "a,b" into libnats' server list. */
static natsStatus set_servers(natsOptions *opts, const char *url)
{
	if (!strchr(url, ','))
		return natsOptions_SetURL(opts, url);
	struct cod_strlist list = {0};
	const char *p = url;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char *one = xstrndup(p, n);
		cod_str_trim(one);
		if (*one)
			cod_strlist_add(&list, one);
		free(one);
		p += n;
		if (*p == ',')
			p++;
	}
	natsStatus s = natsOptions_SetServers(opts, (const char **)list.items, (int)list.n);
	cod_strlist_release(&list);
	return s;
}

/* libnats copies the token into its CONNECT JSON without escaping it, so a
 * quote or backslash would break the handshake with a confusing error. */
static bool token_usable(const char *token)
{
	for (const char *p = token ? token : ""; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static void nats_free(struct cod_nats *nc)
{
	if (nc->opts)
		natsOptions_Destroy(nc->opts);
	pthread_mutex_destroy(&nc->lock);
	pthread_cond_destroy(&nc->cond);
	free(nc->url);
	free(nc);
}

int cod_nats_connect(const struct cod_nats_opts *o, struct cod_nats **out, struct cod_error **err)
{
	*out = NULL;
	if (cod_str_empty(o->url))
		return cod_error_set(err, COD_E_CONFIG, "no NATS URL given");
	if (!token_usable(o->token)) {
		cod_error_set(err, COD_E_CONFIG,
			      "the NATS token cannot be used: it holds a quote, backslash or "
			      "control character");
		if (err)
			cod_error_hint(*err,
				       "choose a token without them for both Orchestrator.Auth.Token and "
				       "Compute.Auth.Token");
		return -1;
	}
	struct cod_nats *nc = xcalloc(1, sizeof(*nc));
	pthread_mutex_init(&nc->lock, NULL);
	cod_cond_init_mono(&nc->cond);
	nc->url = redact_url(o->url);
	nc->on_state = o->on_state;
	nc->ctx = o->ctx;

	natsStatus s = natsOptions_Create(&nc->opts);
	if (s == NATS_OK)
		s = set_servers(nc->opts, o->url);
	if (s == NATS_OK && !cod_str_empty(o->token))
		s = natsOptions_SetToken(nc->opts, o->token);
	if (s == NATS_OK && !cod_str_empty(o->name))
		s = natsOptions_SetName(nc->opts, o->name);
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(nc->opts, true);
	if (s == NATS_OK)
		s = natsOptions_SetAllowReconnect(nc->opts, true);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(nc->opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetCustomReconnectDelay(nc->opts, reconnect_delay, nc);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(nc->opts,
					   o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 5000);
	/* Requests made while reconnecting fail at once instead of waiting
	 * out their timeout: the caller retries after the reconnect. */
	if (s == NATS_OK)
		s = natsOptions_SetFailRequestsOnDisconnect(nc->opts, true);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(nc->opts, on_disconnected, nc);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(nc->opts, on_connected, nc);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(nc->opts, on_closed, nc);
	if (s == NATS_OK && o->retry_on_failed_connect)
		s = natsOptions_SetRetryOnFailedConnect(nc->opts, true, on_connected, nc);
	if (s != NATS_OK) {
		nats_fail(nc, s, err, "configure the NATS connection");
		nats_free(nc);
		return -1;
	}
	s = natsConnection_Connect(&nc->conn, nc->opts);
	if (s == NATS_NOT_YET_CONNECTED) {
		cod_info("nats", "%s is not reachable yet; connecting in the background", nc->url);
	} else if (s != NATS_OK) {
		nats_fail(nc, s, err, NULL);
		/* The fields of err name nc->url, which goes away now. */
		if (nc->conn)
			natsConnection_Destroy(nc->conn);
		nats_free(nc);
		return -1;
	} else {
		cod_debug("nats", "connected to %s", nc->url);
	}
	*out = nc;
	return 0;
}

/*
 * natsMsg_Destroy() hands a received message to libnats's collector
 * thread, waking it when it is idle: one more thread switch per message,
 * as costly here as a few store statements. A handled message is nobody
 * else's, so it is freed at once with the function that thread would
 * call. libnats exports it without declaring it: it is looked up weakly,
 * and without it messages go to the collector as before.
 */
extern void natsMsg_free(void *object) __attribute__((weak));

static void msg_release(natsMsg *msg)
{
	if (natsMsg_free)
		natsMsg_free(msg);
	else
		natsMsg_Destroy(msg);
}

bool cod_nats_frees_inline(void)
{
	return natsMsg_free != NULL;
}

static void on_message(natsConnection *conn, natsSubscription *sub, natsMsg *msg, void *closure)
{
	(void)conn;
	(void)sub;
	struct nats_sub *s = closure;
	s->fn(s->ctx, natsMsg_GetSubject(msg), natsMsg_GetReply(msg), natsMsg_GetData(msg),
	      (size_t)natsMsg_GetDataLength(msg));
	msg_release(msg);
}

static void on_sub_complete(void *closure)
{
	struct nats_sub *s = closure;
	struct cod_nats *nc = s->owner;
	pthread_mutex_lock(&nc->lock);
	s->complete = true;
	pthread_cond_broadcast(&nc->cond);
	pthread_mutex_unlock(&nc->lock);
}

/* fn NULL: a pulled subscription, which no libnats thread calls back. */
static struct nats_sub *subscribe(struct cod_nats *nc, const char *subj, cod_nats_msg_fn fn, void *ctx,
				  struct cod_error **err)
{
	struct nats_sub *s = xcalloc(1, sizeof(*s));
	s->owner = nc;
	s->fn = fn;
	s->ctx = ctx;
	natsStatus st;
	if (fn) {
		st = natsConnection_Subscribe(&s->sub, nc->conn, subj, on_message, s);
		if (st == NATS_OK)
			st = natsSubscription_SetOnCompleteCB(s->sub, on_sub_complete, s);
	} else {
		st = natsConnection_SubscribeSync(&s->sub, nc->conn, subj);
		s->complete = true;
	}
	/* Messages are small; a deep pending queue rides out a burst while
	 * the handler or the pulling thread is busy (a dropped message is
	 * resent anyway). */
	if (st == NATS_OK)
		st = natsSubscription_SetPendingLimits(s->sub, 1 << 20, 256 << 20);
	if (st != NATS_OK) {
		cleanup_free char *what = xasprintf("subscribe to \"%s\"", subj);
		nats_fail(nc, st, err, what);
		if (s->sub) {
			natsSubscription_Unsubscribe(s->sub);
			natsSubscription_Destroy(s->sub);
		}
		free(s);
		return NULL;
	}
	pthread_mutex_lock(&nc->lock);
	s->next = nc->subs;
	nc->subs = s;
	pthread_mutex_unlock(&nc->lock);
	return s;
}

int cod_nats_subscribe(struct cod_nats *nc, const char *subj, cod_nats_msg_fn fn, void *ctx,
		       struct cod_error **err)
{
	return subscribe(nc, subj, fn, ctx, err) ? 0 : -1;
}

int cod_nats_subscribe_pull(struct cod_nats *nc, const char *subj, struct cod_nats_pull **out,
			    struct cod_error **err)
{
	*out = (struct cod_nats_pull *)subscribe(nc, subj, NULL, NULL, err);
	return *out ? 0 : -1;
}

int cod_nats_next(struct cod_nats_pull *p, int timeout_ms, struct cod_nats_msg *msg)
{
	struct nats_sub *s = (struct nats_sub *)p;
	natsMsg *m = NULL;
	natsStatus st = natsSubscription_NextMsg(&m, s->sub, timeout_ms);
	if (st == NATS_TIMEOUT)
		return 0;
	if (st == NATS_SLOW_CONSUMER)
		return 0; /* messages were dropped (senders resend); the queue goes on */
	if (st != NATS_OK)
		return -1;
	msg->subject = natsMsg_GetSubject(m);
	msg->data = natsMsg_GetData(m);
	msg->len = (size_t)natsMsg_GetDataLength(m);
	msg->raw = m;
	return 1;
}

void cod_nats_msg_release(struct cod_nats_msg *msg)
{
	if (msg->raw)
		msg_release(msg->raw);
	memset(msg, 0, sizeof(*msg));
}

void cod_nats_pull_stop(struct cod_nats_pull *p)
{
	if (p)
		natsSubscription_Unsubscribe(((struct nats_sub *)p)->sub);
}

int cod_nats_publish(struct cod_nats *nc, const char *subj, const void *data, size_t len,
		     struct cod_error **err)
{
	natsStatus s = natsConnection_Publish(nc->conn, subj, data, (int)len);
	if (s != NATS_OK) {
		cleanup_free char *what = xasprintf("publish to \"%s\"", subj);
		return nats_fail(nc, s, err, what);
	}
	return 0;
}

int cod_nats_request(struct cod_nats *nc, const char *subj, const void *data, size_t len, int timeout_ms,
		     char **reply, size_t *reply_len, struct cod_error **err)
{
	*reply = NULL;
	if (reply_len)
		*reply_len = 0;
	natsMsg *msg = NULL;
	natsStatus s =
	    natsConnection_Request(&msg, nc->conn, subj, data, (int)len, timeout_ms > 0 ? timeout_ms : 1);
	if (s != NATS_OK) {
		cleanup_free char *what = xasprintf("request on \"%s\"", subj);
		nats_fail(nc, s, err, what);
		if (s == NATS_TIMEOUT && err && *err) {
			cod_error_free(*err);
			*err = NULL;
			cod_error_set(err, COD_E_TIMEOUT, "request on \"%s\": no reply within %d ms", subj,
				      timeout_ms);
		}
		return -1;
	}
	int n = natsMsg_GetDataLength(msg);
	*reply = xstrndup(natsMsg_GetData(msg) ? natsMsg_GetData(msg) : "", (size_t)n);
	if (reply_len)
		*reply_len = (size_t)n;
	msg_release(msg);
	return 0;
}

int cod_nats_flush(struct cod_nats *nc, int timeout_ms, struct cod_error **err)
{
	natsStatus s = natsConnection_FlushTimeout(nc->conn, timeout_ms > 0 ? timeout_ms : 1);
	if (s != NATS_OK)
		return nats_fail(nc, s, err, "flush");
	return 0;
}

bool cod_nats_connected(struct cod_nats *nc)
{
	return nc && nc->conn && natsConnection_Status(nc->conn) == NATS_CONN_STATUS_CONNECTED;
}

void cod_nats_close(struct cod_nats *nc)
{
	if (!nc)
		return;
	pthread_mutex_lock(&nc->lock);
	nc->closing = true;
	struct nats_sub *subs = nc->subs;
	nc->subs = NULL;
	pthread_mutex_unlock(&nc->lock);

	for (struct nats_sub *s = subs; s; s = s->next)
		natsSubscription_Unsubscribe(s->sub);
	if (nc->conn && natsConnection_Status(nc->conn) == NATS_CONN_STATUS_CONNECTED)
		natsConnection_FlushTimeout(nc->conn, 1000);
	if (nc->conn)
		natsConnection_Close(nc->conn);

	/* Wait until no libnats thread can call into our closures. */
	struct timespec deadline;
	cod_mono_deadline(&deadline, CLOSE_WAIT_MS);
	bool all_done = true;
	pthread_mutex_lock(&nc->lock);
	for (;;) {
		all_done = nc->closed || !nc->conn;
		for (struct nats_sub *s = subs; s; s = s->next)
			all_done = all_done && s->complete;
		if (all_done)
			break;
		if (pthread_cond_timedwait(&nc->cond, &nc->lock, &deadline) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&nc->lock);

	while (subs) {
		struct nats_sub *next = subs->next;
		natsSubscription_Destroy(subs->sub);
		if (subs->complete || all_done)
			free(subs);
		/* else: a delivery thread may still hold it; leaking a few
		 * bytes beats a use after free. */
		subs = next;
	}
	if (nc->conn)
		natsConnection_Destroy(nc->conn);
	if (!all_done) {
		cod_warn("nats", "connection to %s did not close within %d ms", nc->url, CLOSE_WAIT_MS);
		return; /* the closed callback may still come: keep nc */
	}
	nats_free(nc);
}

void cod_nats_shutdown_library(void)
{
	nats_Close();
}
