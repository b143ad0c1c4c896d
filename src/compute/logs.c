/*
 * logs.c - an execution's log files and the compute node's log server.
 *
 * Files. The runner writes each execution's output to
 * DataDir/compute/executions/<id>/logs/: `stdout` and `stderr` hold the
 * bytes of each stream, and `index` records the order in which chunks of
 * the two reached their files, one fixed-size text record per chunk:
 *
 *   <type><end>\n      type '1' stdout or '2' stderr, end = the stream's
 *                      size after the chunk, 19 decimal digits (21 bytes)
 *
 * A record is appended (O_APPEND, one write) after its chunk was written,
 * so a reader never reads past what the index promises and stdout and
 * stderr lines come back in the order they were written. Where there is
 * no index (an engine that writes the files itself) the reader falls back
 * to the files' sizes: stdout first, then stderr.
 *
 * Server. The node subscribes to cod.node.<id>.logs (transport.h, "log
 * streams"). The NATS callback only queues requests; one server thread
 * owns every stream: it opens the files, skips to Offset or the Tail,
 * sends batches of lines while the reader's credit allows, polls the files
 * every 100 ms while following, and ends a stream once the execution is
 * terminal and its files are drained. A stream holds at most two partial
 * lines (64 KiB each) in memory: nothing is read ahead of the credit, so a
 * slow reader costs the node nothing and never touches the running task,
 * which only appends to its files.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/doc.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "compute/compute_int.h"
#include "common/banned.h"

#define INDEX_NAME "index"
#define INDEX_RECORD 21
#define READ_BLOCK 16384
/* A frame carries at most this many lines or bytes of lines. */
#define FRAME_LINES 256
#define FRAME_BYTES 65536
/* Frames one stream sends per round, so that streams take turns. */
#define FRAMES_PER_ROUND 4
#define POLL_MS 100
#define MAX_STREAMS 512
#define MAX_REQUESTS 4096
#define DEFAULT_CREDIT 8
/* At shutdown, streams get this long to send what is left. */
#define DRAIN_MS 1000

/* ------------------------------------------------------------ index */

int cod_log_index_open(const char *logs_dir, struct cod_error **err)
{
	cleanup_free char *path = xasprintf("%s/" INDEX_NAME, logs_dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		cod_error_set(err, COD_E_IO, "open log index \"%s\": %s", path, strerror(errno));
	return fd;
}

void cod_log_tap_write(void *arg, const struct cod_executor_output *o)
{
	const struct cod_log_tap *tap = arg;
	if (!tap || tap->fd < 0)
		return;
	char rec[INDEX_RECORD + 1];
	snprintf(rec, sizeof(rec), "%c%019llu\n", tap->type == COD_LOG_STDERR ? '2' : '1',
		 (unsigned long long)o->written);
	/* One small write on an O_APPEND file: records never interleave,
	 * even when two threads write the two streams. A failed write only
	 * costs the order of lines, not the lines. */
	ssize_t w;
	do
		w = write(tap->fd, rec, INDEX_RECORD);
	while (w < 0 && errno == EINTR);
}

/* ----------------------------------------------------------- reader */

struct cod_log_reader {
	char *dir;
	int fd[2];	    /* stdout, stderr; -1 until they exist */
	int index_fd;	    /* -1 until it exists */
	bool index_broken;  /* a malformed record: sizes only from then on */
	uint64_t index_pos; /* bytes of the index consumed */
	int cur;	    /* stream of the index chunk being read, -1 = none */
	uint64_t cur_end;
	uint64_t pos[2];	/* bytes of each file consumed */
	struct cod_buf part[2]; /* the unfinished line of each stream */
	uint64_t lines;		/* lines handed out so far */
};

struct cod_log_reader *cod_log_reader_new(const char *logs_dir)
{
	struct cod_log_reader *r = xcalloc(1, sizeof(*r));
	r->dir = xstrdup(logs_dir);
	r->fd[0] = r->fd[1] = r->index_fd = -1;
	r->cur = -1;
	cod_buf_init(&r->part[0], 0);
	cod_buf_init(&r->part[1], 0);
	return r;
}

void cod_log_reader_free(struct cod_log_reader *r)
{
	if (!r)
		return;
	for (int i = 0; i < 2; i++) {
		if (r->fd[i] >= 0)
			close(r->fd[i]);
		cod_buf_release(&r->part[i]);
	}
	if (r->index_fd >= 0)
		close(r->index_fd);
	free(r->dir);
	free(r);
}

uint64_t cod_log_reader_lines(const struct cod_log_reader *r)
{
	return r->lines;
}

static void open_missing(struct cod_log_reader *r)
{
	static const char *const names[] = {"stdout", "stderr"};
	for (int i = 0; i < 2; i++) {
		if (r->fd[i] < 0) {
			cleanup_free char *path = xasprintf("%s/%s", r->dir, names[i]);
			r->fd[i] = open(path, O_RDONLY | O_CLOEXEC);
		}
	}
	if (r->index_fd < 0) {
		cleanup_free char *path = xasprintf("%s/" INDEX_NAME, r->dir);
		r->index_fd = open(path, O_RDONLY | O_CLOEXEC);
	}
}

static uint64_t file_size(int fd)
{
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 0)
		return 0;
	return (uint64_t)st.st_size;
}

/* Hand out a finished line (the unfinished one of stream i). */
static int emit(struct cod_log_reader *r, int i, cod_log_line_fn fn, void *arg)
{
	r->lines++;
	int rc = fn(arg, i + 1, r->part[i].buf ? r->part[i].buf : "", r->part[i].len);
	cod_buf_reset(&r->part[i]);
	return rc;
}

/* Read stream i up to byte end, handing out every line finished on the
 * way. 1 when fn asked to stop (pos is then just after that line). */
static int feed(struct cod_log_reader *r, int i, uint64_t end, cod_log_line_fn fn, void *arg)
{
	char buf[READ_BLOCK];
	while (r->pos[i] < end) {
		uint64_t want = end - r->pos[i];
		if (want > sizeof(buf))
			want = sizeof(buf);
		ssize_t n = pread(r->fd[i], buf, (size_t)want, (off_t)r->pos[i]);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0; /* shorter than promised: what is there was read */
		const char *p = buf;
		size_t left = (size_t)n;
		while (left) {
			size_t room = COD_LOG_LINE_MAX - r->part[i].len;
			size_t scan = left < room ? left : room;
			const char *nl = memchr(p, '\n', scan);
			size_t take = nl ? (size_t)(nl - p) + 1 : scan;
			cod_buf_add(&r->part[i], p, take);
			p += take;
			left -= take;
			r->pos[i] += take;
			if ((nl || r->part[i].len >= COD_LOG_LINE_MAX) && emit(r, i, fn, arg) > 0)
				return 1; /* the rest of buf is read again next time */
		}
	}
	return 0;
}

/* Next index record: stream and end offset. 0 = none complete yet. */
static int next_record(struct cod_log_reader *r, int *stream, uint64_t *end)
{
	if (r->index_fd < 0 || r->index_broken)
		return 0;
	char rec[INDEX_RECORD];
	ssize_t n;
	do
		n = pread(r->index_fd, rec, sizeof(rec), (off_t)r->index_pos);
	while (n < 0 && errno == EINTR);
	if (n != INDEX_RECORD)
		return 0;
	uint64_t v = 0;
	bool ok = (rec[0] == '1' || rec[0] == '2') && rec[INDEX_RECORD - 1] == '\n';
	for (int k = 1; ok && k < INDEX_RECORD - 1; k++) {
		if (rec[k] < '0' || rec[k] > '9')
			ok = false;
		else
			v = v * 10 + (uint64_t)(rec[k] - '0');
	}
	if (!ok) {
		cod_warn("compute", "log index in \"%s\" is malformed at byte %llu; ordering by file sizes",
			 r->dir, (unsigned long long)r->index_pos);
		r->index_broken = true;
		return 0;
	}
	r->index_pos += INDEX_RECORD;
	*stream = rec[0] - '1';
	*end = v;
	return 1;
}

int cod_log_reader_next(struct cod_log_reader *r, bool final, cod_log_line_fn fn, void *arg)
{
	open_missing(r);
	/* The index first: it says in which order chunks were written. */
	for (;;) {
		if (r->cur < 0) {
			int stream;
			uint64_t end;
			if (!next_record(r, &stream, &end))
				break;
			r->cur = stream;
			r->cur_end = end;
		}
		if (r->fd[r->cur] >= 0 && feed(r, r->cur, r->cur_end, fn, arg) > 0)
			return 1;
		r->cur = -1;
	}
	/* Without a (usable) index, or at the end: whatever the files hold
	 * beyond it, stdout first. While the index is in use, only at the
	 * end, so that a chunk whose record is still being written does not
	 * jump the queue. */
	bool indexed = r->index_fd >= 0 && !r->index_broken && r->index_pos > 0;
	if (!indexed || final) {
		for (int i = 0; i < 2; i++)
			if (r->fd[i] >= 0 && feed(r, i, file_size(r->fd[i]), fn, arg) > 0)
				return 1;
	}
	if (final) {
		for (int i = 0; i < 2; i++)
			if (r->part[i].len && emit(r, i, fn, arg) > 0)
				return 1;
	}
	return 0;
}

/* ------------------------------------------------------------- UTF-8 */

json_t *cod_log_line_json(const char *line, size_t len)
{
	const unsigned char *p = (const unsigned char *)line;
	size_t i = 0;
	while (i < len) {
		size_t n = cod_utf8_seq(p + i, len - i);
		if (!n)
			break;
		i += n;
	}
	if (i == len)
		return json_stringn(line, len);
	/* Invalid bytes become U+FFFD, each. */
	struct cod_buf b = COD_BUF_INIT;
	cod_buf_add(&b, line, i);
	while (i < len) {
		size_t n = cod_utf8_seq(p + i, len - i);
		if (n) {
			cod_buf_add(&b, p + i, n);
			i += n;
		} else {
			cod_buf_addstr(&b, "\xef\xbf\xbd");
			i++;
		}
	}
	json_t *s = json_stringn(b.buf, b.len);
	cod_buf_release(&b);
	return s;
}

/* ----------------------------------------------------------- server */

struct log_req {
	char *type;
	json_t *payload;
	char *reply; /* the NATS reply subject of a request, or NULL */
	struct log_req *next;
};

struct log_stream {
	char *id;
	char *execution_id;
	char *reply;
	bool follow;
	int64_t tail;	 /* -1 = all */
	uint64_t offset; /* lines already delivered */
	uint64_t credit; /* frames allowed in total */
	uint64_t sent;	 /* LogLines frames sent */
	uint64_t seq;	 /* frames of any type sent */
	uint64_t skip;	 /* lines up to this number are not sent */
	int64_t last_reader_ms;
	int64_t last_send_ms;
	struct cod_log_reader *rd;
	bool started;
	bool final; /* the execution ended (or no follow): drain and end */
	bool ended;
	struct log_stream *next;
};

struct cod_log_server {
	struct cod_compute *c;
	char *subject;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	bool stopping;
	int64_t drain_until; /* stopping: streams get until then to finish */
	bool started;
	pthread_t thread;
	struct log_req *req_head, *req_tail;
	size_t nreq;
	/* owned by the server thread */
	struct log_stream *streams;
	size_t nstreams;
};

static void req_free(struct log_req *q)
{
	free(q->type);
	json_decref(q->payload);
	free(q->reply);
	free(q);
}

static void stream_free(struct log_stream *st)
{
	cod_log_reader_free(st->rd);
	free(st->id);
	free(st->execution_id);
	free(st->reply);
	free(st);
}

static void send_to(struct cod_log_server *srv, const char *subject, const char *type, json_t *payload)
{
	struct cod_envelope env = {
	    .type = (char *)type,
	    .seq = 0,
	    .source = srv->c->node_id,
	    .time = cod_now_ns(),
	    .payload = payload,
	};
	size_t len;
	cleanup_free char *text = cod_envelope_encode(&env, &len);
	json_decref(payload);
	struct cod_error *err = NULL;
	if (cod_nats_publish(srv->c->nc, subject, text, len, &err) < 0) {
		cod_debug("logs", "send %s to %s: %s", type, subject, err->message);
		cod_error_free(err);
	}
}

/* A frame of a stream (payload consumed; StreamID and Seq added). */
static void send_frame(struct cod_log_server *srv, struct log_stream *st, const char *type, json_t *payload)
{
	json_object_set_new(payload, "StreamID", json_string(st->id));
	json_object_set_new(payload, "Seq", json_integer((json_int_t)++st->seq));
	st->last_send_ms = cod_mono_ms();
	send_to(srv, st->reply, type, payload);
}

static void send_end(struct cod_log_server *srv, struct log_stream *st, const char *error)
{
	send_frame(srv, st, COD_MSG_LOG_END, json_pack("{s:s}", "Error", error ? error : ""));
	st->ended = true;
}

/* The execution's state: 1 terminal (or gone), 0 still going. */
static int exec_terminal(struct cod_log_server *srv, const char *id)
{
	struct cod_execution *e = NULL;
	if (cod_cstore_get(srv->c->store, id, &e, NULL) < 0)
		return 1;
	int t = cod_exec_state_terminal((enum cod_exec_state)e->compute_state.type) ? 1 : 0;
	cod_execution_free(e);
	return t;
}

static char *logs_dir(struct cod_log_server *srv, const char *execution_id)
{
	return xasprintf("%s/executions/%s/logs", srv->c->dir, execution_id);
}

static int count_line(void *arg, int type, const char *line, size_t len)
{
	(void)arg;
	(void)type;
	(void)line;
	(void)len;
	return 0;
}

/* Where the stream starts: after Offset, or at the last Tail lines. */
static void start_stream(struct cod_log_server *srv, struct log_stream *st)
{
	cleanup_free char *dir = logs_dir(srv, st->execution_id);
	st->rd = cod_log_reader_new(dir);
	st->skip = st->offset;
	if (st->tail >= 0) {
		struct cod_log_reader *count = cod_log_reader_new(dir);
		bool final = exec_terminal(srv, st->execution_id) == 1;
		while (cod_log_reader_next(count, final, count_line, NULL) > 0)
			;
		uint64_t total = cod_log_reader_lines(count);
		cod_log_reader_free(count);
		uint64_t from = total > (uint64_t)st->tail ? total - (uint64_t)st->tail : 0;
		if (from > st->skip)
			st->skip = from;
	}
	st->started = true;
}

struct batch {
	struct log_stream *st;
	json_t *lines;
	size_t n, bytes;
};

static int collect(void *arg, int type, const char *line, size_t len)
{
	struct batch *b = arg;
	uint64_t no = cod_log_reader_lines(b->st->rd);
	if (no <= b->st->skip)
		return 0;
	json_t *item = json_object();
	json_object_set_new(item, "Type", json_integer(type));
	json_object_set_new(item, "Line", cod_log_line_json(line, len));
	json_object_set_new(item, "Offset", json_integer((json_int_t)no));
	json_array_append_new(b->lines, item);
	b->n++;
	b->bytes += len;
	return b->n >= FRAME_LINES || b->bytes >= FRAME_BYTES ? 1 : 0;
}

/* One round of a stream; true when it sent something. */
static bool pump(struct cod_log_server *srv, struct log_stream *st, int64_t now)
{
	if (now - st->last_reader_ms > COD_LOG_READER_TIMEOUT_MS) {
		cod_info("logs", "stream=%s execution=%s: the reader went silent; dropped", st->id,
			 st->execution_id);
		st->ended = true;
		return false;
	}
	if (!st->started)
		start_stream(srv, st);
	bool sent = false;
	for (int frames = 0; !st->ended && frames < FRAMES_PER_ROUND && st->sent < st->credit;) {
		struct batch b = {.st = st, .lines = json_array()};
		cod_log_reader_next(st->rd, st->final, collect, &b);
		if (!b.n) {
			json_decref(b.lines);
			if (!st->final) {
				/* Decide before the last read: whatever the task
				 * wrote before it ended is in the files by now. */
				if (st->follow && !exec_terminal(srv, st->execution_id))
					break;
				st->final = true;
				continue;
			}
			send_end(srv, st, NULL);
			sent = true;
			break;
		}
		st->sent++;
		send_frame(srv, st, COD_MSG_LOG_LINES, json_pack("{s:o}", "Lines", b.lines));
		frames++;
		sent = true;
	}
	if (!st->ended && st->follow && now - st->last_send_ms >= COD_LOG_HEARTBEAT_MS)
		send_frame(srv, st, COD_MSG_LOG_HEARTBEAT, json_object());
	return sent;
}

static struct log_stream *find_stream(struct cod_log_server *srv, const char *id)
{
	for (struct log_stream *st = srv->streams; st; st = st->next)
		if (!strcmp(st->id, id))
			return st;
	return NULL;
}

static const char *text_of(const json_t *obj, const char *key)
{
	json_t *v = cod_json_iget(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool subject_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 256)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

static void reply(struct cod_log_server *srv, const char *subject, bool accepted, const char *reason)
{
	if (!subject)
		return;
	send_to(srv, subject, COD_MSG_LOG_OPEN "Response",
		json_pack("{s:b, s:s}", "Accepted", accepted, "Reason", reason ? reason : ""));
}

static void on_open(struct cod_log_server *srv, const struct log_req *q)
{
	const json_t *p = q->payload;
	const char *id = text_of(p, "StreamID"), *exec = text_of(p, "ExecutionID"), *to = text_of(p, "Reply");
	if (!id || !*id || strlen(id) > 128 || !exec || !*exec || !subject_ok(to)) {
		reply(srv, q->reply, false,
		      "malformed LogStreamOpen: StreamID, ExecutionID and Reply are required");
		return;
	}
	pthread_mutex_lock(&srv->lock);
	bool stopping = srv->stopping;
	pthread_mutex_unlock(&srv->lock);
	if (stopping) {
		reply(srv, q->reply, false, "the node is shutting down");
		return;
	}
	struct cod_execution *e = NULL;
	if (cod_cstore_get(srv->c->store, exec, &e, NULL) < 0) {
		cleanup_free char *why = xasprintf("node %s has no execution \"%s\"", srv->c->node_id, exec);
		reply(srv, q->reply, false, why);
		return;
	}
	cod_execution_free(e);
	if (find_stream(srv, id)) {
		reply(srv, q->reply, true, NULL); /* a repeated request */
		return;
	}
	if (srv->nstreams >= MAX_STREAMS) {
		reply(srv, q->reply, false, "too many log streams on this node; try again later");
		return;
	}
	json_t *tail = cod_json_iget(p, "Tail"), *offset = cod_json_iget(p, "Offset"),
	       *credit = cod_json_iget(p, "Credit");
	struct log_stream *st = xcalloc(1, sizeof(*st));
	st->id = xstrdup(id);
	st->execution_id = xstrdup(exec);
	st->reply = xstrdup(to);
	st->follow = json_is_true(cod_json_iget(p, "Follow"));
	st->tail = json_is_integer(tail) && json_integer_value(tail) >= 0 ? json_integer_value(tail) : -1;
	st->offset = json_is_integer(offset) && json_integer_value(offset) > 0
			 ? (uint64_t)json_integer_value(offset)
			 : 0;
	st->credit = json_is_integer(credit) && json_integer_value(credit) >= 0
			 ? (uint64_t)json_integer_value(credit)
			 : DEFAULT_CREDIT;
	st->last_reader_ms = st->last_send_ms = cod_mono_ms();
	st->next = srv->streams;
	srv->streams = st;
	srv->nstreams++;
	reply(srv, q->reply, true, NULL);
	cod_debug("logs", "stream=%s execution=%s follow=%d tail=%lld offset=%llu opened", st->id, exec,
		  st->follow, (long long)st->tail, (unsigned long long)st->offset);
}

static void handle(struct cod_log_server *srv, const struct log_req *q)
{
	if (!strcmp(q->type, COD_MSG_LOG_OPEN)) {
		on_open(srv, q);
		return;
	}
	const char *id = text_of(q->payload, "StreamID");
	struct log_stream *st = id ? find_stream(srv, id) : NULL;
	if (!st)
		return;
	st->last_reader_ms = cod_mono_ms();
	if (!strcmp(q->type, COD_MSG_LOG_CREDIT)) {
		json_t *credit = cod_json_iget(q->payload, "Credit");
		if (json_is_integer(credit) && json_integer_value(credit) > 0 &&
		    (uint64_t)json_integer_value(credit) > st->credit)
			st->credit = (uint64_t)json_integer_value(credit);
	} else if (!strcmp(q->type, COD_MSG_LOG_CANCEL)) {
		st->ended = true;
	}
}

static void *server_main(void *arg)
{
	cod_thread_name("cod-logs");
	struct cod_log_server *srv = arg;
	pthread_mutex_lock(&srv->lock);
	/* Stopping, the streams get a moment to drain: their executions are
	 * over by then, and what they wrote is worth sending. */
	while (!srv->stopping || (srv->streams && cod_mono_ms() < srv->drain_until)) {
		while (srv->req_head) {
			struct log_req *q = srv->req_head;
			srv->req_head = q->next;
			if (!srv->req_head)
				srv->req_tail = NULL;
			srv->nreq--;
			pthread_mutex_unlock(&srv->lock);
			handle(srv, q);
			req_free(q);
			pthread_mutex_lock(&srv->lock);
		}
		pthread_mutex_unlock(&srv->lock);

		bool busy = false;
		int64_t now = cod_mono_ms();
		for (struct log_stream **pp = &srv->streams; *pp;) {
			struct log_stream *st = *pp;
			if (!st->ended)
				busy |= pump(srv, st, now);
			if (st->ended) {
				*pp = st->next;
				srv->nstreams--;
				stream_free(st);
			} else {
				pp = &st->next;
			}
		}

		pthread_mutex_lock(&srv->lock);
		if (!srv->req_head && (!busy || !srv->streams) && (!srv->stopping || srv->streams)) {
			struct timespec ts;
			cod_mono_deadline(&ts, srv->streams ? POLL_MS : 1000);
			pthread_cond_timedwait(&srv->cond, &srv->lock, &ts);
		}
	}
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

/* NATS delivery thread: decode and queue. */
static void on_message(void *ctx, const char *subject, const char *reply_to, const char *data, size_t len)
{
	(void)subject;
	struct cod_log_server *srv = ctx;
	struct cod_envelope env;
	struct cod_error *err = NULL;
	if (cod_envelope_decode(data, len, &env, &err) < 0) {
		cod_debug("logs", "dropped a message on %s: %s", srv->subject, err->message);
		cod_error_free(err);
		return;
	}
	if (strcmp(env.type, COD_MSG_LOG_OPEN) && strcmp(env.type, COD_MSG_LOG_CREDIT) &&
	    strcmp(env.type, COD_MSG_LOG_CANCEL)) {
		cod_debug("logs", "unknown message type \"%s\" on %s; ignored", env.type, srv->subject);
		cod_envelope_release(&env);
		return;
	}
	struct log_req *q = xcalloc(1, sizeof(*q));
	q->type = steal_pointer(&env.type);
	q->payload = steal_pointer(&env.payload);
	q->reply = xstrdup_or_null(reply_to && *reply_to ? reply_to : NULL);
	cod_envelope_release(&env);
	pthread_mutex_lock(&srv->lock);
	if ((srv->stopping && !srv->started) || srv->nreq >= MAX_REQUESTS) {
		pthread_mutex_unlock(&srv->lock);
		req_free(q);
		return;
	}
	if (srv->req_tail)
		srv->req_tail->next = q;
	else
		srv->req_head = q;
	srv->req_tail = q;
	srv->nreq++;
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
}

int cod_log_server_start(struct cod_compute *c, struct cod_error **err)
{
	struct cod_log_server *srv = xcalloc(1, sizeof(*srv));
	srv->c = c;
	srv->subject = cod_subject_logs(c->node_id);
	pthread_mutex_init(&srv->lock, NULL);
	cod_cond_init_mono(&srv->cond);
	c->logs = srv;
	if (cod_nats_subscribe(c->nc, srv->subject, on_message, srv, err) < 0)
		return -1;
	pthread_mutex_lock(&srv->lock);
	int rc = pthread_create(&srv->thread, NULL, server_main, srv);
	srv->started = rc == 0;
	pthread_mutex_unlock(&srv->lock);
	if (rc != 0)
		return cod_error_set(err, COD_E_INTERNAL, "start the log server: %s", strerror(rc));
	return 0;
}

void cod_log_server_stop(struct cod_log_server *srv)
{
	if (!srv)
		return;
	pthread_mutex_lock(&srv->lock);
	if (!srv->stopping)
		srv->drain_until = cod_mono_ms() + DRAIN_MS;
	srv->stopping = true;
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
	if (srv->started)
		pthread_join(srv->thread, NULL);
	pthread_mutex_lock(&srv->lock);
	srv->started = false; /* from now on the callback drops everything */
	pthread_mutex_unlock(&srv->lock);
	while (srv->streams) {
		struct log_stream *st = srv->streams;
		srv->streams = st->next;
		stream_free(st);
	}
	srv->nstreams = 0;
}

void cod_log_server_free(struct cod_log_server *srv)
{
	if (!srv)
		return;
	cod_log_server_stop(srv);
	while (srv->req_head) {
		struct log_req *q = srv->req_head;
		srv->req_head = q->next;
		req_free(q);
	}
	pthread_mutex_destroy(&srv->lock);
	pthread_cond_destroy(&srv->cond);
	free(srv->subject);
	free(srv);
}
