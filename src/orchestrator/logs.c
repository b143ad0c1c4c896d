/*
 * logs.c - the log proxy (logs.h): per-request streams that multiplex the
 * log streams of a job's executions, read from their compute nodes.
 *
 * Locking: p->lock guards the proxy's lists, every stream's flags and
 * every execution stream's frame queue; the NATS callback holds it only to
 * append a frame. Everything else about an execution stream (its state,
 * counters) belongs to the thread of the stream that owns it. Sinks are
 * called without the lock.
 *
 * Frames reach the proxy on one subscription, cod.logs.<instance>.*, the
 * last token being the execution stream's ID: a stream is known to the
 * callback from just before its LogStreamOpen goes out until it is
 * abandoned, and frames for unknown IDs are dropped.
 */
#include "orchestrator/logs.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/doc.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "orchestrator/orchestrator_int.h"
#include "common/banned.h"

/* Frames an execution stream may have in flight. */
#define WINDOW 8
#define MAX_STREAMS 256
#define OPEN_TIMEOUT_MS 3000
#define RETRY_MS 1000
/* Without a frame for this long the execution stream is reopened. */
#define STALE_MS (3 * COD_LOG_HEARTBEAT_MS)
/* A node the orchestrator considers gone gets this long before that. */
#define GONE_STALE_MS 2000
#define POLL_FOLLOW_MS 250
#define IDLE_MS 1000
#define FRAMES_PER_ROUND 4

enum sub_state {
	SUB_NEW,    /* to be opened (again) */
	SUB_OPEN,   /* frames flow */
	SUB_ENDED,  /* the node sent LogEnd */
	SUB_FAILED, /* given up: logs unavailable */
};

struct log_frame {
	char *type;
	json_t *payload;
	struct log_frame *next;
};

/* One execution's stream from its compute node. */
struct log_sub {
	struct cod_log_stream *owner;
	char *execution_id;
	char *node_id;
	char *sid; /* the current StreamID (a reopen picks a new one) */
	enum sub_state state;
	bool registered; /* the NATS callback may queue frames for sid */
	struct log_frame *head, *tail;
	size_t qlen;
	uint64_t expect_seq;
	uint64_t lines;	   /* the Offset of the last line received */
	uint64_t consumed; /* LogLines frames taken, for this sid */
	uint64_t granted;  /* the Credit last sent, for this sid */
	int64_t last_frame_ms, last_credit_ms, retry_at_ms;
	bool exec_terminal;
	bool node_gone_noted;
	struct log_sub *next;  /* the owner's list, in creation order */
	struct log_sub *pnext; /* the proxy's list of registered streams */
};

struct cod_log_stream {
	struct cod_log_proxy *p;
	char *job_id;
	char *namespace_;
	char *execution_id; /* resolved filter, or NULL */
	uint64_t job_version;
	bool all_versions;
	int64_t tail;
	bool follow;
	struct cod_log_sink sink;
	pthread_t thread;
	pthread_cond_t cond; /* CLOCK_MONOTONIC; frames arrived or stop */
	bool started;	     /* the thread was created */
	bool finished;	     /* the thread returned (detached: to be reaped) */
	bool detached;
	bool stop;
	struct log_sub *subs;
	struct cod_log_stream *next;
};

struct cod_log_proxy {
	struct cod_store *store;
	struct cod_nats *nc;
	cod_log_node_fn node_connected;
	void *node_arg;
	char instance[17];
	char *prefix; /* "cod.logs.<instance>." */
	pthread_mutex_t lock;
	bool stopping;
	uint64_t next_sid;
	struct cod_log_stream *streams;
	size_t nstreams;
	struct log_sub *subs; /* registered */
};

/* ------------------------------------------------------------ helpers */

static void frame_free(struct log_frame *f)
{
	free(f->type);
	json_decref(f->payload);
	free(f);
}

static void drop_frames(struct log_sub *sub)
{
	while (sub->head) {
		struct log_frame *f = sub->head;
		sub->head = f->next;
		frame_free(f);
	}
	sub->tail = NULL;
	sub->qlen = 0;
}

/* Take sub out of the callback's reach (p->lock held). */
static void unregister_locked(struct cod_log_proxy *p, struct log_sub *sub)
{
	if (!sub->registered)
		return;
	for (struct log_sub **pp = &p->subs; *pp; pp = &(*pp)->pnext) {
		if (*pp == sub) {
			*pp = sub->pnext;
			break;
		}
	}
	sub->registered = false;
	sub->pnext = NULL;
	drop_frames(sub);
}

static void sub_free(struct log_sub *sub)
{
	drop_frames(sub);
	free(sub->execution_id);
	free(sub->node_id);
	free(sub->sid);
	free(sub);
}

static void publish(struct cod_log_proxy *p, const char *node_id, const char *type, json_t *payload)
{
	cleanup_free char *subject = cod_subject_logs(node_id);
	struct cod_envelope env = {.type = (char *)type, .time = cod_now_ns(), .payload = payload};
	size_t len;
	cleanup_free char *text = cod_envelope_encode(&env, &len);
	json_decref(payload);
	struct cod_error *err = NULL;
	if (cod_nats_publish(p->nc, subject, text, len, &err) < 0) {
		cod_debug("logs", "%s to node=%s: %s", type, node_id, err->message);
		cod_error_free(err);
	}
}

static void send_cancel(struct cod_log_proxy *p, struct log_sub *sub)
{
	if (sub->sid && (sub->state == SUB_OPEN))
		publish(p, sub->node_id, COD_MSG_LOG_CANCEL, json_pack("{s:s}", "StreamID", sub->sid));
}

static void send_credit(struct cod_log_proxy *p, struct log_sub *sub, int64_t now)
{
	sub->granted = sub->consumed + WINDOW;
	sub->last_credit_ms = now;
	publish(p, sub->node_id, COD_MSG_LOG_CREDIT,
		json_pack("{s:s, s:I}", "StreamID", sub->sid, "Credit", (json_int_t)sub->granted));
}

static bool stopping(struct cod_log_stream *s)
{
	pthread_mutex_lock(&s->p->lock);
	bool stop = s->stop || s->p->stopping;
	pthread_mutex_unlock(&s->p->lock);
	return stop;
}

bool cod_log_stream_stopping(struct cod_log_stream *s)
{
	return stopping(s);
}

const char *cod_log_stream_job_id(const struct cod_log_stream *s)
{
	return s->job_id;
}

/* Hand a note (a line from cod itself) to the sink. */
static int note(struct cod_log_stream *s, const struct log_sub *sub, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int note(struct cod_log_stream *s, const struct log_sub *sub, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *text = xvasprintf(fmt, ap);
	va_end(ap);
	cod_info("logs", "job=%s execution=%s: %s", s->job_id, sub ? sub->execution_id : "", text);
	struct cod_log_item item = {.execution_id = sub ? sub->execution_id : "",
				    .node_id = sub ? sub->node_id : "",
				    .type = 0,
				    .line = text,
				    .len = strlen(text)};
	return s->sink.line(s->sink.arg, &item);
}

/* ------------------------------------------------------- NATS callback */

static void on_frame(void *ctx, const char *subject, const char *reply, const char *data, size_t len)
{
	(void)reply;
	struct cod_log_proxy *p = ctx;
	if (!cod_str_has_prefix(subject, p->prefix))
		return;
	const char *sid = subject + strlen(p->prefix);
	struct cod_envelope env;
	if (cod_envelope_decode(data, len, &env, NULL) < 0)
		return;
	pthread_mutex_lock(&p->lock);
	struct log_sub *sub = p->subs;
	while (sub && strcmp(sub->sid, sid))
		sub = sub->pnext;
	/* A well-behaved node sends at most WINDOW line frames ahead; a
	 * frame beyond a generous margin is dropped (the gap reopens). */
	if (sub && sub->qlen < WINDOW * 2 + 4) {
		struct log_frame *f = xcalloc(1, sizeof(*f));
		f->type = steal_pointer(&env.type);
		f->payload = steal_pointer(&env.payload);
		if (sub->tail)
			sub->tail->next = f;
		else
			sub->head = f;
		sub->tail = f;
		sub->qlen++;
		pthread_cond_broadcast(&sub->owner->cond);
	}
	pthread_mutex_unlock(&p->lock);
	cod_envelope_release(&env);
}

/* -------------------------------------------------------------- proxy */

int cod_log_proxy_new(struct cod_store *store, struct cod_nats *nc, cod_log_node_fn node_connected,
		      void *node_arg, struct cod_log_proxy **out, struct cod_error **err)
{
	*out = NULL;
	struct cod_log_proxy *p = xcalloc(1, sizeof(*p));
	p->store = store;
	p->nc = nc;
	p->node_connected = node_connected;
	p->node_arg = node_arg;
	unsigned char rnd[8];
	cod_random_bytes(rnd, sizeof(rnd));
	cod_hex_encode(rnd, sizeof(rnd), p->instance);
	p->prefix = xasprintf("cod.logs.%s.", p->instance);
	pthread_mutex_init(&p->lock, NULL);
	cleanup_free char *wildcard = xasprintf("%s*", p->prefix);
	if (cod_nats_subscribe(nc, wildcard, on_frame, p, err) < 0) {
		pthread_mutex_destroy(&p->lock);
		free(p->prefix);
		free(p);
		return -1;
	}
	*out = p;
	return 0;
}

static void stream_free(struct cod_log_stream *s)
{
	while (s->subs) {
		struct log_sub *sub = s->subs;
		s->subs = sub->next;
		sub_free(sub);
	}
	if (s->sink.release)
		s->sink.release(s->sink.arg);
	pthread_cond_destroy(&s->cond);
	free(s->job_id);
	free(s->namespace_);
	free(s->execution_id);
	free(s);
}

/* Unlink s from the proxy (p->lock held). */
static void unlink_locked(struct cod_log_proxy *p, struct cod_log_stream *s)
{
	for (struct cod_log_stream **pp = &p->streams; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			p->nstreams--;
			break;
		}
	}
	for (struct log_sub *sub = s->subs; sub; sub = sub->next)
		unregister_locked(p, sub);
}

/* Join and free detached streams whose thread returned. */
static void reap(struct cod_log_proxy *p)
{
	for (;;) {
		struct cod_log_stream *done = NULL;
		pthread_mutex_lock(&p->lock);
		for (struct cod_log_stream *s = p->streams; s && !done; s = s->next)
			if (s->detached && s->finished)
				done = s;
		if (done)
			unlink_locked(p, done);
		pthread_mutex_unlock(&p->lock);
		if (!done)
			return;
		if (done->started)
			pthread_join(done->thread, NULL);
		stream_free(done);
	}
}

void cod_log_proxy_shutdown(struct cod_log_proxy *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	for (struct cod_log_stream *s = p->streams; s; s = s->next) {
		s->stop = true;
		pthread_cond_broadcast(&s->cond);
	}
	pthread_mutex_unlock(&p->lock);
	/* Wait for every running thread; closed-by-caller streams stay
	 * linked until their owner closes them. */
	for (;;) {
		struct cod_log_stream *wait_for = NULL;
		pthread_mutex_lock(&p->lock);
		for (struct cod_log_stream *s = p->streams; s && !wait_for; s = s->next)
			if (s->started && !s->finished)
				wait_for = s;
		pthread_mutex_unlock(&p->lock);
		if (!wait_for)
			break;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000000};
		nanosleep(&ts, NULL);
	}
	reap(p);
}

void cod_log_proxy_free(struct cod_log_proxy *p)
{
	if (!p)
		return;
	cod_log_proxy_shutdown(p);
	/* What is left: streams that never ran, and streams whose owner did
	 * not close them (a bug, but freeing beats leaking). */
	while (p->streams) {
		struct cod_log_stream *s = p->streams;
		unlink_locked(p, s);
		if (s->started)
			pthread_join(s->thread, NULL);
		stream_free(s);
	}
	pthread_mutex_destroy(&p->lock);
	free(p->prefix);
	free(p);
}

/* ------------------------------------------------------------- stream */

/* The execution a (prefix of an) ID names among the job's. Heap ID. */
static char *resolve_execution(struct cod_log_proxy *p, const char *ns, const char *job_id, const char *ref,
			       struct cod_error **err)
{
	struct cod_exec_query q = {.namespace_ = ns, .job_ref = job_id, .all_versions = true};
	struct cod_exec_page page = {0};
	if (cod_store_list_executions(p->store, &q, &page, err) < 0)
		return NULL;
	char *found = NULL;
	struct cod_strlist matches = {0};
	for (size_t i = 0; i < page.n; i++) {
		const char *id = page.items[i]->id;
		if (!strcmp(id, ref)) {
			free(found);
			found = xstrdup(id);
			cod_strlist_release(&matches);
			cod_strlist_add(&matches, id);
			break;
		}
		if (cod_str_has_prefix(id, ref) ||
		    (!cod_str_has_prefix(ref, "e-") && cod_str_has_prefix(id, "e-") &&
		     cod_str_has_prefix(id + 2, ref)))
			cod_strlist_add(&matches, id);
	}
	cod_exec_page_release(&page);
	if (!found && matches.n == 1)
		found = xstrdup(matches.items[0]);
	if (!found && matches.n == 0) {
		cod_error_set(err, COD_E_NOT_FOUND, "job %s has no execution \"%s\"", job_id, ref);
		if (err)
			cod_error_hint(*err, "list its executions with 'cod job executions %s'", job_id);
	} else if (!found) {
		struct cod_buf b = COD_BUF_INIT;
		for (size_t i = 0; i < matches.n; i++)
			cod_buf_addf(&b, "%s%s", i ? ", " : "", matches.items[i]);
		cod_error_set(err, COD_E_BAD_REQUEST, "execution ID \"%s\" is ambiguous: it matches %s", ref,
			      cod_buf_str(&b));
		if (err)
			cod_error_hint(*err, "give more characters of the execution ID");
		cod_buf_release(&b);
	}
	cod_strlist_release(&matches);
	return found;
}

int cod_log_stream_open(struct cod_log_proxy *p, const struct cod_log_query *q,
			const struct cod_log_sink *sink, struct cod_log_stream **out, struct cod_error **err)
{
	*out = NULL;
	reap(p);
	pthread_mutex_lock(&p->lock);
	bool down = p->stopping, full = p->nstreams >= MAX_STREAMS;
	pthread_mutex_unlock(&p->lock);
	if (down)
		return cod_error_set(err, COD_E_UNAVAILABLE, "the orchestrator is shutting down");
	if (full) {
		cod_error_set(err, COD_E_EXHAUSTED, "too many log streams are open (%d)", MAX_STREAMS);
		if (err)
			cod_error_hint(*err, "try again when some have finished");
		return -1;
	}
	struct cod_job *job = NULL;
	if (cod_store_get_job(p->store, q->namespace_, q->job_ref, q->job_version, &job, err) < 0)
		return -1;
	struct cod_log_stream *s = xcalloc(1, sizeof(*s));
	s->p = p;
	s->job_id = xstrdup(job->id);
	s->namespace_ = xstrdup(job->namespace_ ? job->namespace_ : "default");
	s->job_version = q->job_version;
	s->all_versions = q->all_versions;
	s->tail = q->tail;
	s->follow = q->follow;
	s->sink = *sink;
	cod_job_free(job);
	cod_cond_init_mono(&s->cond);
	if (!cod_str_empty(q->execution_id)) {
		s->execution_id = resolve_execution(p, s->namespace_, s->job_id, q->execution_id, err);
		if (!s->execution_id) {
			s->sink.release = NULL; /* the caller keeps its arg on failure */
			stream_free(s);
			return -1;
		}
	}
	pthread_mutex_lock(&p->lock);
	s->next = p->streams;
	p->streams = s;
	p->nstreams++;
	pthread_mutex_unlock(&p->lock);
	*out = s;
	return 0;
}

/* Whether an execution got as far as running (and so may have logs). */
static bool ran(const struct cod_execution *e)
{
	if (cod_str_empty(e->node_id))
		return false;
	switch (e->compute_state.type) {
	case COD_EXEC_PREPARING: /* not BidAccepted: queued on the node, no logs yet */
	case COD_EXEC_RUNNING:
	case COD_EXEC_PUBLISHING:
	case COD_EXEC_COMPLETED:
	case COD_EXEC_FAILED:
	case COD_EXEC_CANCELLED:
		return true;
	default:
		return false;
	}
}

/* Read the job and its executions; new ones get an execution stream.
 * *terminal: the job is over; *state its state name (static). */
static int poll_store(struct cod_log_stream *s, bool *terminal, const char **state, struct cod_error **err)
{
	struct cod_job *job = NULL;
	if (cod_store_get_job(s->p->store, s->namespace_, s->job_id, 0, &job, err) < 0)
		return -1;
	*terminal = cod_job_state_terminal((enum cod_job_state)job->state.type);
	*state = cod_job_state_name((enum cod_job_state)job->state.type);
	cod_job_free(job);
	struct cod_exec_query q = {.namespace_ = s->namespace_,
				   .job_ref = s->job_id,
				   .job_version = s->job_version,
				   .all_versions = s->all_versions,
				   .order_by = "created_at"};
	struct cod_exec_page page = {0};
	if (cod_store_list_executions(s->p->store, &q, &page, err) < 0)
		return -1;
	for (size_t i = 0; i < page.n; i++) {
		const struct cod_execution *e = page.items[i];
		if (s->execution_id && strcmp(e->id, s->execution_id))
			continue;
		struct log_sub *sub = s->subs, **last = &s->subs;
		for (; sub; last = &sub->next, sub = sub->next)
			if (!strcmp(sub->execution_id, e->id))
				break;
		if (!sub) {
			if (!ran(e))
				continue;
			sub = xcalloc(1, sizeof(*sub));
			sub->owner = s;
			sub->execution_id = xstrdup(e->id);
			sub->node_id = xstrdup(e->node_id);
			sub->state = SUB_NEW;
			*last = sub;
		}
		sub->exec_terminal = cod_exec_state_terminal((enum cod_exec_state)e->compute_state.type);
	}
	cod_exec_page_release(&page);
	return 0;
}

static bool node_up(struct cod_log_stream *s, const char *node_id)
{
	return !s->p->node_connected || s->p->node_connected(s->p->node_arg, node_id);
}

/* The execution stream is beyond reach for good (p->lock NOT held). */
static int give_up(struct cod_log_stream *s, struct log_sub *sub, const char *why)
{
	pthread_mutex_lock(&s->p->lock);
	unregister_locked(s->p, sub);
	pthread_mutex_unlock(&s->p->lock);
	sub->state = SUB_FAILED;
	return note(s, sub, "logs of execution %s on node %s are unavailable: %s", sub->execution_id,
		    sub->node_id, why);
}

/* Open (or reopen) an execution's stream on its node. < 0: sink gone. */
static int open_sub(struct cod_log_stream *s, struct log_sub *sub, int64_t now)
{
	struct cod_log_proxy *p = s->p;
	bool up = node_up(s, sub->node_id);
	pthread_mutex_lock(&p->lock);
	unregister_locked(p, sub);
	free(sub->sid);
	sub->sid = xasprintf("%llu", (unsigned long long)++p->next_sid);
	sub->registered = true;
	sub->pnext = p->subs;
	p->subs = sub;
	pthread_mutex_unlock(&p->lock);
	sub->expect_seq = 1;
	sub->consumed = 0;
	sub->granted = WINDOW;
	sub->last_frame_ms = sub->last_credit_ms = now;
	cleanup_free char *reply_to = xasprintf("%s%s", p->prefix, sub->sid);
	/* The first open applies Tail; a reopen continues after the last
	 * line received. */
	int64_t tail = sub->lines ? -1 : s->tail;
	json_t *payload =
	    json_pack("{s:s, s:s, s:s, s:I, s:b, s:I, s:I}", "StreamID", sub->sid, "ExecutionID",
		      sub->execution_id, "Reply", reply_to, "Tail", (json_int_t)tail, "Follow", s->follow,
		      "Offset", (json_int_t)sub->lines, "Credit", (json_int_t)WINDOW);
	struct cod_envelope env = {
	    .type = (char *)COD_MSG_LOG_OPEN, .time = cod_now_ns(), .payload = payload};
	size_t len;
	cleanup_free char *text = cod_envelope_encode(&env, &len);
	json_decref(payload);
	cleanup_free char *subject = cod_subject_logs(sub->node_id);
	cleanup_free char *answer = NULL;
	size_t answer_len = 0;
	struct cod_error *err = NULL;
	int rc = up ? cod_nats_request(p->nc, subject, text, len, OPEN_TIMEOUT_MS, &answer, &answer_len, &err)
		    : cod_error_set(&err, COD_E_UNAVAILABLE, "node %s is not connected", sub->node_id);
	if (rc < 0) {
		cleanup_free char *why =
		    xstrdup(err->code == COD_E_UNAVAILABLE && up ? "the node does not answer (no responders)"
								 : err->message);
		cod_error_free(err);
		pthread_mutex_lock(&p->lock);
		unregister_locked(p, sub);
		pthread_mutex_unlock(&p->lock);
		/* Following, a node that is away may come back while its
		 * execution runs; otherwise the lines so far are all there is. */
		if (sub->exec_terminal || !s->follow)
			return give_up(s, sub, why);
		if (!up) {
			if (!sub->node_gone_noted) {
				sub->node_gone_noted = true;
				cod_debug("logs", "execution=%s: node %s is not connected; waiting",
					  sub->execution_id, sub->node_id);
			}
		}
		sub->state = SUB_NEW;
		sub->retry_at_ms = now + RETRY_MS;
		return 0;
	}
	struct cod_envelope reply;
	if (cod_envelope_decode(answer, answer_len, &reply, NULL) < 0)
		return give_up(s, sub, "the node sent a malformed answer");
	bool accepted = json_is_true(cod_json_iget(reply.payload, "Accepted"));
	json_t *reason = cod_json_iget(reply.payload, "Reason");
	cleanup_free char *why = xstrdup(json_is_string(reason) ? json_string_value(reason) : "refused");
	cod_envelope_release(&reply);
	if (!accepted)
		return give_up(s, sub, why);
	sub->state = SUB_OPEN;
	sub->node_gone_noted = false;
	return 0;
}

/* Hand the lines of one frame to the sink. < 0: the sink is gone. */
static int emit_lines(struct cod_log_stream *s, struct log_sub *sub, const json_t *payload)
{
	json_t *lines = cod_json_iget(payload, "Lines");
	size_t i;
	json_t *l;
	json_array_foreach (lines, i, l) {
		json_t *type = cod_json_iget(l, "Type"), *line = cod_json_iget(l, "Line"),
		       *offset = cod_json_iget(l, "Offset");
		if (!json_is_integer(type) || !json_is_string(line))
			continue;
		uint64_t no = json_is_integer(offset) && json_integer_value(offset) > 0
				  ? (uint64_t)json_integer_value(offset)
				  : sub->lines + 1;
		if (no <= sub->lines)
			continue; /* already delivered (a reopen overlapped) */
		sub->lines = no;
		struct cod_log_item item = {.execution_id = sub->execution_id,
					    .node_id = sub->node_id,
					    .type = (int)json_integer_value(type),
					    .line = json_string_value(line),
					    .len = json_string_length(line),
					    .offset = no};
		if (s->sink.line(s->sink.arg, &item) < 0)
			return -1;
	}
	return 0;
}

/* Take up to FRAMES_PER_ROUND frames of sub. *did: something happened.
 * < 0: the sink is gone. */
static int consume(struct cod_log_stream *s, struct log_sub *sub, int64_t now, bool *did)
{
	struct cod_log_proxy *p = s->p;
	for (int n = 0; n < FRAMES_PER_ROUND && sub->state == SUB_OPEN; n++) {
		pthread_mutex_lock(&p->lock);
		struct log_frame *f = sub->head;
		if (f) {
			sub->head = f->next;
			if (!sub->head)
				sub->tail = NULL;
			sub->qlen--;
		}
		pthread_mutex_unlock(&p->lock);
		if (!f)
			break;
		*did = true;
		sub->last_frame_ms = now;
		json_t *seq = cod_json_iget(f->payload, "Seq");
		if (!json_is_integer(seq) || (uint64_t)json_integer_value(seq) != sub->expect_seq) {
			cod_debug("logs", "execution=%s: frame %lld, expected %llu; reopening",
				  sub->execution_id,
				  json_is_integer(seq) ? (long long)json_integer_value(seq) : -1LL,
				  (unsigned long long)sub->expect_seq);
			frame_free(f);
			send_cancel(p, sub);
			sub->state = SUB_NEW;
			sub->retry_at_ms = now;
			break;
		}
		sub->expect_seq++;
		int rc = 0;
		if (!strcmp(f->type, COD_MSG_LOG_LINES)) {
			rc = emit_lines(s, sub, f->payload);
			sub->consumed++;
			if (sub->consumed + WINDOW - sub->granted >= WINDOW / 2)
				send_credit(p, sub, now);
		} else if (!strcmp(f->type, COD_MSG_LOG_END)) {
			json_t *e = cod_json_iget(f->payload, "Error");
			pthread_mutex_lock(&p->lock);
			unregister_locked(p, sub);
			pthread_mutex_unlock(&p->lock);
			sub->state = SUB_ENDED;
			if (json_is_string(e) && *json_string_value(e))
				rc = note(s, sub, "logs of execution %s: %s", sub->execution_id,
					  json_string_value(e));
		}
		frame_free(f);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Keep an open execution stream healthy: keepalive credit, reopen when
 * silent, give up on a node that left. < 0: the sink is gone. */
static int maintain(struct cod_log_stream *s, struct log_sub *sub, int64_t now)
{
	if (sub->state != SUB_OPEN)
		return 0;
	if (now - sub->last_credit_ms >= COD_LOG_CREDIT_KEEPALIVE_MS)
		send_credit(s->p, sub, now);
	int64_t silent = now - sub->last_frame_ms;
	if (silent >= STALE_MS || (silent >= GONE_STALE_MS && !node_up(s, sub->node_id))) {
		cod_debug("logs", "execution=%s on node=%s: silent for %lld ms; reopening", sub->execution_id,
			  sub->node_id, (long long)silent);
		send_cancel(s->p, sub);
		pthread_mutex_lock(&s->p->lock);
		unregister_locked(s->p, sub);
		pthread_mutex_unlock(&s->p->lock);
		sub->state = SUB_NEW;
		sub->retry_at_ms = now;
	}
	return 0;
}

static bool all_done(const struct cod_log_stream *s)
{
	for (const struct log_sub *sub = s->subs; sub; sub = sub->next)
		if (sub->state != SUB_ENDED && sub->state != SUB_FAILED)
			return false;
	return true;
}

static void *stream_main(void *arg)
{
	cod_thread_name("cod-logstream");
	struct cod_log_stream *s = arg;
	struct cod_log_proxy *p = s->p;
	struct cod_error *err = NULL;
	const char *job_state = "";
	bool terminal = false, polled = false, gone = false;
	int64_t next_poll = 0, next_idle = cod_mono_ms() + IDLE_MS;
	while (!stopping(s)) {
		int64_t now = cod_mono_ms();
		if (now >= next_poll && (s->follow || !polled)) {
			if (poll_store(s, &terminal, &job_state, &err) < 0)
				break;
			polled = true;
			next_poll = now + POLL_FOLLOW_MS;
		}
		bool did = false;
		/* Without follow, executions come one after the other; when
		 * following, lines go out as they come. */
		for (struct log_sub *sub = s->subs; sub && !gone; sub = sub->next) {
			if (sub->state == SUB_NEW && now >= sub->retry_at_ms) {
				if (open_sub(s, sub, now) < 0)
					gone = true;
				did = true;
			}
			if (!gone && consume(s, sub, cod_mono_ms(), &did) < 0)
				gone = true;
			if (!gone && maintain(s, sub, cod_mono_ms()) < 0)
				gone = true;
			if (!s->follow && sub->state != SUB_ENDED && sub->state != SUB_FAILED)
				break;
		}
		if (gone)
			break;
		if (polled && all_done(s) && (!s->follow || terminal))
			break;
		now = cod_mono_ms();
		if (now >= next_idle) {
			next_idle = now + IDLE_MS;
			if (s->sink.idle && s->sink.idle(s->sink.arg) < 0) {
				gone = true;
				break;
			}
		}
		if (!did) {
			pthread_mutex_lock(&p->lock);
			bool queued = false;
			for (struct log_sub *sub = s->subs; sub && !queued; sub = sub->next)
				queued = sub->head != NULL;
			if (!queued && !s->stop && !p->stopping) {
				struct timespec ts;
				cod_mono_deadline(&ts, 200);
				pthread_cond_timedwait(&s->cond, &p->lock, &ts);
			}
			pthread_mutex_unlock(&p->lock);
		}
	}
	/* Tell the nodes, forget the frames. */
	for (struct log_sub *sub = s->subs; sub; sub = sub->next) {
		send_cancel(p, sub);
		pthread_mutex_lock(&p->lock);
		unregister_locked(p, sub);
		pthread_mutex_unlock(&p->lock);
	}
	if (!err && !gone && stopping(s)) {
		pthread_mutex_lock(&p->lock);
		bool shutdown = p->stopping;
		pthread_mutex_unlock(&p->lock);
		if (shutdown)
			cod_error_set(&err, COD_E_UNAVAILABLE, "the orchestrator is shutting down");
	}
	s->sink.end(s->sink.arg, err, job_state);
	cod_error_free(err);
	pthread_mutex_lock(&p->lock);
	s->finished = true;
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void cod_log_stream_run(struct cod_log_stream *s, bool detached)
{
	struct cod_log_proxy *p = s->p;
	pthread_mutex_lock(&p->lock);
	s->detached = detached;
	bool down = p->stopping;
	int rc = down ? -1 : pthread_create(&s->thread, NULL, stream_main, s);
	if (rc == 0)
		s->started = true;
	else
		s->finished = true; /* nothing to join: reap just frees it */
	pthread_mutex_unlock(&p->lock);
	if (rc != 0) {
		struct cod_error *err = NULL;
		if (down)
			cod_error_set(&err, COD_E_UNAVAILABLE, "the orchestrator is shutting down");
		else
			cod_error_set(&err, COD_E_INTERNAL, "start a log stream: %s", strerror(rc));
		s->sink.end(s->sink.arg, err, "");
		cod_error_free(err);
		/* a detached stream is freed by the next reap */
	}
}

void cod_log_stream_close(struct cod_log_stream *s)
{
	if (!s)
		return;
	struct cod_log_proxy *p = s->p;
	pthread_mutex_lock(&p->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->cond);
	bool started = s->started;
	pthread_mutex_unlock(&p->lock);
	if (started)
		pthread_join(s->thread, NULL);
	pthread_mutex_lock(&p->lock);
	unlink_locked(p, s);
	pthread_mutex_unlock(&p->lock);
	stream_free(s);
}

/* ------------------------------------------------ the orchestrator's */

static bool node_connected(void *arg, const char *node_id)
{
	struct cod_orchestrator *o = arg;
	pthread_mutex_lock(&o->nodes_lock);
	struct orch_node *n = orch_node_find(o, node_id);
	bool up = n && n->state && n->state->connection == COD_NODE_CONNECTED;
	pthread_mutex_unlock(&o->nodes_lock);
	return up;
}

int orch_logs_start(struct cod_orchestrator *o, struct cod_error **err)
{
	if (cod_log_proxy_new(o->store, o->nc, node_connected, o, &o->logs, err) < 0)
		return cod_error_wrap(err, "start the log proxy");
	o->ctx.logs = o->logs;
	return 0;
}
