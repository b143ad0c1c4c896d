/*
 * test_logs.c - execution log files and their reader (src/compute/logs.c):
 * stdout/stderr order from the index, the fallback without an index,
 * unfinished and over-long lines, pausing and resuming, files that appear
 * late, a malformed index; a log file opened by the first chunk; UTF-8
 * sanitizing of lines; the noop engine's Lines writing through the index
 * tap; and the log server's protocol over
 * a real nats-server (skipped without one): credit bounds what is sent,
 * Tail, Offset, unknown executions, the end once the execution is over.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "compute/compute_int.h"
#include "executor/executor.h"
#include "transport/transport.h"
#include "common/banned.h"

static char tmp_root[] = "/tmp/cod-test-logs-XXXXXX";
static int dir_counter;

static char *new_dir(void)
{
	char *d = xasprintf("%s/d%d", tmp_root, ++dir_counter);
	if (cod_mkdir_p(d, 0700, NULL) < 0)
		fail_msg("mkdir %s", d);
	return d;
}

/* A writer as the runner sets one up: stdout, stderr, index taps. */
struct writer {
	struct cod_executor_output out[2];
	struct cod_log_tap taps[2];
	int index_fd;
};

static void writer_open(struct writer *w, const char *dir, bool with_index)
{
	memset(w, 0, sizeof(*w));
	w->index_fd = with_index ? cod_log_index_open(dir, NULL) : -1;
	static const char *const names[] = {"stdout", "stderr"};
	for (int i = 0; i < 2; i++) {
		cod_buf_init(&w->out[i].buf, 16);
		cleanup_free char *path = xasprintf("%s/%s", dir, names[i]);
		w->out[i].fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
		assert_true(w->out[i].fd >= 0);
		w->taps[i] = (struct cod_log_tap){.fd = w->index_fd, .type = i + 1};
		if (with_index) {
			w->out[i].on_write = cod_log_tap_write;
			w->out[i].on_write_arg = &w->taps[i];
		}
	}
}

static void writer_put(struct writer *w, int stream, const char *text)
{
	cod_executor_output_add(&w->out[stream - 1], text, strlen(text));
}

static void writer_close(struct writer *w)
{
	for (int i = 0; i < 2; i++) {
		close(w->out[i].fd);
		cod_buf_release(&w->out[i].buf);
	}
	if (w->index_fd >= 0)
		close(w->index_fd);
}

/* Lines collected as "<type>:<line>" joined, newlines shown as '|'. */
struct got {
	struct cod_buf text;
	int stop_after; /* ask to pause after this many lines (0 = never) */
	int n;
	size_t longest;
};

static int collect(void *arg, int type, const char *line, size_t len)
{
	struct got *g = arg;
	cod_buf_addf(&g->text, "%d:", type);
	for (size_t i = 0; i < len; i++)
		cod_buf_addch(&g->text, line[i] == '\n' ? '|' : line[i]);
	cod_buf_addch(&g->text, ' ');
	if (len > g->longest)
		g->longest = len;
	g->n++;
	return g->stop_after && g->n % g->stop_after == 0 ? 1 : 0;
}

static char *read_all(const char *dir, bool final, int stop_after)
{
	struct cod_log_reader *r = cod_log_reader_new(dir);
	struct got g = {.stop_after = stop_after};
	cod_buf_init(&g.text, 0);
	cod_buf_addstr(&g.text, "");
	int rounds = 0;
	while (cod_log_reader_next(r, final, collect, &g) > 0)
		rounds++;
	if (stop_after)
		assert_true(rounds > 0);
	assert_int_equal(cod_log_reader_lines(r), (uint64_t)g.n);
	cod_log_reader_free(r);
	return cod_buf_detach(&g.text, NULL);
}

/* ------------------------------------------------------------ tests */

static void test_order_from_index(void **state)
{
	(void)state;
	cleanup_free char *dir = new_dir();
	struct writer w;
	writer_open(&w, dir, true);
	writer_put(&w, 1, "out 1\n");
	writer_put(&w, 2, "err 1\n");
	writer_put(&w, 1, "out 2\nout 3\n");
	writer_put(&w, 2, "err 2\n");
	writer_put(&w, 1, "out 4\n");
	writer_close(&w);
	cleanup_free char *got = read_all(dir, true, 0);
	assert_string_equal(got, "1:out 1| 2:err 1| 1:out 2| 1:out 3| 2:err 2| 1:out 4| ");
	/* the same when the reader pauses after every line */
	cleanup_free char *paused = read_all(dir, true, 1);
	assert_string_equal(paused, got);
}

static void test_without_index(void **state)
{
	(void)state;
	cleanup_free char *dir = new_dir();
	struct writer w;
	writer_open(&w, dir, false);
	writer_put(&w, 1, "a\n");
	writer_put(&w, 2, "b\n");
	writer_put(&w, 1, "c\n");
	writer_close(&w);
	cleanup_free char *got = read_all(dir, true, 0);
	assert_string_equal(got, "1:a| 1:c| 2:b| "); /* stdout first */
}

static void test_partial_lines(void **state)
{
	(void)state;
	cleanup_free char *dir = new_dir();
	struct writer w;
	writer_open(&w, dir, true);
	writer_put(&w, 1, "hel");
	writer_put(&w, 2, "warn\n");
	writer_put(&w, 1, "lo\nno newline");
	writer_close(&w);
	/* while running: only finished lines */
	cleanup_free char *running = read_all(dir, false, 0);
	assert_string_equal(running, "2:warn| 1:hello| ");
	/* at the end: the unfinished one too */
	cleanup_free char *done = read_all(dir, true, 0);
	assert_string_equal(done, "2:warn| 1:hello| 1:no newline ");
}

static void test_incremental(void **state)
{
	(void)state;
	cleanup_free char *dir = new_dir();
	/* nothing exists yet: no lines, no error */
	struct cod_log_reader *r = cod_log_reader_new(dir);
	struct got g = {0};
	cod_buf_init(&g.text, 0);
	assert_int_equal(cod_log_reader_next(r, false, collect, &g), 0);
	assert_int_equal(g.n, 0);
	struct writer w;
	writer_open(&w, dir, true);
	writer_put(&w, 1, "one\n");
	assert_int_equal(cod_log_reader_next(r, false, collect, &g), 0);
	writer_put(&w, 2, "two\n");
	writer_put(&w, 1, "three\n");
	assert_int_equal(cod_log_reader_next(r, false, collect, &g), 0);
	assert_int_equal(cod_log_reader_next(r, true, collect, &g), 0);
	assert_string_equal(cod_buf_str(&g.text), "1:one| 2:two| 1:three| ");
	assert_int_equal(cod_log_reader_lines(r), 3);
	writer_close(&w);
	cod_log_reader_free(r);
	cod_buf_release(&g.text);
}

static void test_long_lines(void **state)
{
	(void)state;
	cleanup_free char *dir = new_dir();
	struct writer w;
	writer_open(&w, dir, true);
	size_t n = COD_LOG_LINE_MAX * 2 + 100;
	char *big = xmalloc(n + 2);
	memset(big, 'x', n);
	big[n] = '\n';
	big[n + 1] = '\0';
	writer_put(&w, 1, big);
	free(big);
	writer_close(&w);
	struct cod_log_reader *r = cod_log_reader_new(dir);
	struct got g = {0};
	cod_buf_init(&g.text, 0);
	assert_int_equal(cod_log_reader_next(r, true, collect, &g), 0);
	assert_int_equal(g.n, 3); /* cut into 64 KiB pieces */
	assert_int_equal(g.longest, COD_LOG_LINE_MAX);
	cod_log_reader_free(r);
	cod_buf_release(&g.text);
}

static void test_malformed_index(void **state)
{
	(void)state;
	cleanup_free char *dir = new_dir();
	struct writer w;
	writer_open(&w, dir, true);
	writer_put(&w, 1, "a\n");
	writer_put(&w, 2, "b\n");
	if (write(w.index_fd, "garbage garbage garbag", 21) != 21)
		fail_msg("write");
	writer_close(&w);
	/* what the index covers comes in order, the rest by file */
	cleanup_free char *got = read_all(dir, true, 0);
	assert_string_equal(got, "1:a| 2:b| ");
}

static void test_utf8(void **state)
{
	(void)state;
	json_t *s = cod_log_line_json("h\xc3\xa9llo\n", 7);
	assert_string_equal(json_string_value(s), "h\xc3\xa9llo\n");
	json_decref(s);
	/* a stray byte, an overlong encoding, a surrogate, a cut sequence */
	const char bad[] = "a\xff"
			   "b\xc0\xaf"
			   "c\xed\xa0\x80"
			   "d\xe2\x82";
	s = cod_log_line_json(bad, sizeof(bad) - 1);
	assert_non_null(s);
	assert_string_equal(json_string_value(s), "a\xef\xbf\xbd"
						  "b\xef\xbf\xbd\xef\xbf\xbd"
						  "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
						  "d\xef\xbf\xbd\xef\xbf\xbd");
	json_decref(s);
	s = cod_log_line_json("nul\0byte", 8);
	assert_int_equal(json_string_length(s), 8);
	json_decref(s);
}

/* An output with an open hook: no file until the first chunk, one call
 * whatever follows, and a hook that fails costs the file, not RunOutput. */
struct opener {
	char *path;
	int calls;
	bool fail;
};

static int open_hook(void *arg, struct cod_executor_output *o)
{
	(void)o;
	struct opener *op = arg;
	op->calls++;
	return op->fail ? -1 : open(op->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
}

static void test_open_on_first_write(void **state)
{
	(void)state;
	cleanup_free char *dir = new_dir();
	struct opener op = {.path = xasprintf("%s/stdout", dir)};
	struct cod_executor_output o = {.fd = -1, .open = open_hook, .open_arg = &op};
	cod_buf_init(&o.buf, 64);
	cod_executor_output_add(&o, "", 0);
	assert_int_equal(op.calls, 0);
	assert_int_equal(access(op.path, F_OK), -1);
	cod_executor_output_add(&o, "one\n", 4);
	cod_executor_output_add(&o, "two\n", 4);
	assert_int_equal(op.calls, 1);
	assert_int_equal(o.written, 8);
	cleanup_free char *text = NULL;
	size_t len = 0;
	assert_int_equal(cod_read_file(op.path, 1024, &text, &len, NULL), 0);
	assert_string_equal(text, "one\ntwo\n");
	close(o.fd);
	cod_buf_release(&o.buf);

	struct opener bad = {.path = op.path, .fail = true};
	struct cod_executor_output f = {.fd = -1, .open = open_hook, .open_arg = &bad};
	cod_buf_init(&f.buf, 64);
	cod_executor_output_add(&f, "lost\n", 5);
	cod_executor_output_add(&f, "kept\n", 5);
	assert_int_equal(bad.calls, 1);
	assert_int_equal(f.written, 0);
	assert_string_equal(cod_buf_str(&f.buf), "lost\nkept\n");
	cod_buf_release(&f.buf);
	free(op.path);
}

/* The noop engine's Lines go through the tap like any engine's output. */
static void test_noop_lines(void **state)
{
	(void)state;
	cleanup_free char *dir = new_dir();
	struct writer w;
	writer_open(&w, dir, true);
	struct cod_executor_run run;
	cod_executor_run_init(&run, 2048);
	run.out.fd = w.out[0].fd;
	run.err.fd = w.out[1].fd;
	run.out.on_write = run.err.on_write = cod_log_tap_write;
	run.out.on_write_arg = &w.taps[0];
	run.err.on_write_arg = &w.taps[1];
	struct cod_task task = {0};
	struct cod_error *err = NULL;
	task.engine.params =
	    cod_json_parse("{\"Lines\": 4, \"Stream\": \"alternate\", \"Line\": \"n=${LINE}\"}", 56, &err);
	assert_non_null(task.engine.params);
	run.task = &task;
	assert_int_equal(cod_executor_noop.run(&run, &err), 0);
	json_decref(task.engine.params);
	cod_executor_run_release(&run);
	writer_close(&w);
	cleanup_free char *got = read_all(dir, true, 0);
	assert_string_equal(got, "1:n=1| 2:n=2| 1:n=3| 2:n=4| ");

	/* bad Params are named */
	task.engine.params = cod_json_parse("{\"Lines\": 0}", 12, &err);
	cod_executor_run_init(&run, 16);
	run.task = &task;
	assert_int_equal(cod_executor_noop.run(&run, &err), -1);
	assert_non_null(strstr(err->message, "Lines"));
	cod_error_free(err);
	json_decref(task.engine.params);
	cod_executor_run_release(&run);
}

/* ------------------------------------------------- the log server */

struct frames {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int lines_frames, ends, heartbeats;
	uint64_t lines, last_offset;
	bool gap; /* offsets not contiguous */
	struct cod_buf text;
	char *end_error;
};

static void on_reply(void *ctx, const char *subject, const char *reply, const char *data, size_t len)
{
	(void)subject;
	(void)reply;
	struct frames *f = ctx;
	struct cod_envelope env;
	if (cod_envelope_decode(data, len, &env, NULL) < 0)
		return;
	pthread_mutex_lock(&f->lock);
	if (!strcmp(env.type, COD_MSG_LOG_LINES)) {
		f->lines_frames++;
		size_t i;
		json_t *l;
		json_array_foreach (json_object_get(env.payload, "Lines"), i, l) {
			uint64_t off = (uint64_t)json_integer_value(json_object_get(l, "Offset"));
			if (f->last_offset && off != f->last_offset + 1)
				f->gap = true;
			f->last_offset = off;
			f->lines++;
			cod_buf_addstr(&f->text, json_string_value(json_object_get(l, "Line")));
		}
	} else if (!strcmp(env.type, COD_MSG_LOG_END)) {
		f->ends++;
		free(f->end_error);
		f->end_error = xstrdup(json_string_value(json_object_get(env.payload, "Error")));
	} else if (!strcmp(env.type, COD_MSG_LOG_HEARTBEAT)) {
		f->heartbeats++;
	}
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	cod_envelope_release(&env);
}

static void frames_reset(struct frames *f)
{
	pthread_mutex_lock(&f->lock);
	f->lines_frames = f->ends = f->heartbeats = 0;
	f->lines = f->last_offset = 0;
	f->gap = false;
	cod_buf_reset(&f->text);
	pthread_mutex_unlock(&f->lock);
}

static void settle(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Wait until the stream has ended (or ms passed). */
static void wait_end(struct frames *f, int ms)
{
	int64_t deadline = cod_mono_ms() + ms;
	pthread_mutex_lock(&f->lock);
	while (!f->ends && cod_mono_ms() < deadline) {
		pthread_mutex_unlock(&f->lock);
		settle(20);
		pthread_mutex_lock(&f->lock);
	}
	pthread_mutex_unlock(&f->lock);
}

static json_t *send_req(struct cod_nats *nc, const char *type, json_t *payload, bool request)
{
	struct cod_envelope env = {.type = (char *)type, .time = cod_now_ns(), .payload = payload};
	size_t len;
	char *text = cod_envelope_encode(&env, &len);
	json_decref(payload);
	json_t *answer = NULL;
	struct cod_error *err = NULL;
	if (request) {
		char *reply = NULL;
		size_t rlen = 0;
		if (cod_nats_request(nc, "cod.node.n-logs.logs", text, len, 3000, &reply, &rlen, &err) < 0)
			fail_msg("request: %s", err->message);
		struct cod_envelope r;
		assert_int_equal(cod_envelope_decode(reply, rlen, &r, NULL), 0);
		answer = json_incref(r.payload);
		cod_envelope_release(&r);
		free(reply);
	} else {
		assert_int_equal(cod_nats_publish(nc, "cod.node.n-logs.logs", text, len, &err), 0);
	}
	free(text);
	return answer;
}

static json_t *open_stream(struct cod_nats *nc, const char *sid, const char *exec, int64_t tail, bool follow,
			   int64_t offset, int64_t credit)
{
	cleanup_free char *reply = xasprintf("test.reply.%s", sid);
	return send_req(nc, COD_MSG_LOG_OPEN,
			json_pack("{s:s, s:s, s:s, s:I, s:b, s:I, s:I}", "StreamID", sid, "ExecutionID", exec,
				  "Reply", reply, "Tail", (json_int_t)tail, "Follow", follow, "Offset",
				  (json_int_t)offset, "Credit", (json_int_t)credit),
			true);
}

static void set_exec_state(struct cod_cstore *store, const char *id, enum cod_exec_state st)
{
	struct cod_execution e = {0};
	e.id = (char *)id;
	e.compute_state.type = (int)st;
	struct cod_cstore_write w = {.execution = &e};
	struct cod_error *err = NULL;
	if (cod_cstore_write(store, &w, &err) < 0)
		fail_msg("cstore write: %s", err->message);
}

static bool nats_server_installed(void)
{
	return system("command -v nats-server >/dev/null 2>&1 || test -x /usr/sbin/nats-server") == 0;
}

static void test_server_protocol(void **state)
{
	(void)state;
	if (!nats_server_installed()) {
		printf("skipped: nats-server is not installed\n");
		skip();
	}
	cleanup_free char *dir = new_dir();
	cleanup_free char *natsdir = xasprintf("%s/nats", dir);
	struct cod_natsd *d = NULL;
	struct cod_error *err = NULL;
	if (cod_natsd_start("127.0.0.1", 0, NULL, natsdir, &d, &err) < 0)
		fail_msg("natsd: %s", err->message);
	struct cod_nats_opts o = {.url = cod_natsd_url(d), .name = "node"};
	struct cod_nats_opts ro = {.url = cod_natsd_url(d), .name = "reader"};
	struct cod_nats *node_nc = NULL, *reader = NULL;
	assert_int_equal(cod_nats_connect(&o, &node_nc, &err), 0);
	assert_int_equal(cod_nats_connect(&ro, &reader, &err), 0);
	struct frames f = {0};
	pthread_mutex_init(&f.lock, NULL);
	pthread_cond_init(&f.cond, NULL);
	cod_buf_init(&f.text, 0);
	assert_int_equal(cod_nats_subscribe(reader, "test.reply.*", on_reply, &f, &err), 0);
	assert_int_equal(cod_nats_flush(reader, 2000, &err), 0);

	/* a node with one running execution that wrote 1000 lines */
	struct cod_compute *c = xcalloc(1, sizeof(*c));
	c->node_id = xstrdup("n-logs");
	c->dir = xstrdup(dir);
	c->nc = node_nc;
	cleanup_free char *db = xasprintf("%s/state.db", dir);
	assert_int_equal(cod_cstore_open(db, &c->store, &err), 0);
	const char *exec = "e-11111111-2222-3333-4444-555555555555";
	set_exec_state(c->store, exec, COD_EXEC_RUNNING);
	cleanup_free char *logs = xasprintf("%s/executions/%s/logs", dir, exec);
	assert_int_equal(cod_mkdir_p(logs, 0755, NULL), 0);
	struct writer w;
	writer_open(&w, logs, true);
	for (int i = 1; i <= 1000; i++) {
		char line[32];
		snprintf(line, sizeof(line), "line %d\n", i);
		writer_put(&w, i % 3 ? 1 : 2, line);
	}
	assert_int_equal(cod_log_server_start(c, &err), 0);
	assert_int_equal(cod_nats_flush(node_nc, 2000, &err), 0);

	/* unknown execution: refused with a reason */
	json_t *a = open_stream(reader, "s0", "e-nope", -1, true, 0, 8);
	assert_false(json_is_true(json_object_get(a, "Accepted")));
	assert_non_null(strstr(json_string_value(json_object_get(a, "Reason")), "no execution"));
	json_decref(a);

	/* credit 1: one frame (256 lines) and no more, however long we wait */
	a = open_stream(reader, "s1", exec, -1, true, 0, 1);
	assert_true(json_is_true(json_object_get(a, "Accepted")));
	json_decref(a);
	settle(500);
	pthread_mutex_lock(&f.lock);
	assert_int_equal(f.lines_frames, 1);
	assert_int_equal(f.lines, 256);
	pthread_mutex_unlock(&f.lock);
	/* credit is cumulative: 3 frames in all */
	send_req(reader, COD_MSG_LOG_CREDIT,
		 json_pack("{s:s, s:I}", "StreamID", "s1", "Credit", (json_int_t)3), false);
	settle(500);
	pthread_mutex_lock(&f.lock);
	assert_int_equal(f.lines_frames, 3);
	assert_int_equal(f.lines, 768);
	assert_int_equal(f.ends, 0);
	pthread_mutex_unlock(&f.lock);
	/* more lines while it runs, then the end: the rest, then LogEnd */
	writer_put(&w, 1, "last words\n");
	set_exec_state(c->store, exec, COD_EXEC_COMPLETED);
	send_req(reader, COD_MSG_LOG_CREDIT,
		 json_pack("{s:s, s:I}", "StreamID", "s1", "Credit", (json_int_t)100), false);
	wait_end(&f, 3000);
	pthread_mutex_lock(&f.lock);
	assert_int_equal(f.ends, 1);
	assert_string_equal(f.end_error, "");
	assert_int_equal(f.lines, 1001);
	assert_false(f.gap);
	assert_non_null(strstr(cod_buf_str(&f.text), "line 1000\nlast words\n"));
	pthread_mutex_unlock(&f.lock);

	/* Tail and Offset */
	frames_reset(&f);
	json_decref(open_stream(reader, "s2", exec, 3, false, 0, 8));
	wait_end(&f, 3000);
	assert_string_equal(cod_buf_str(&f.text), "line 999\nline 1000\nlast words\n");
	assert_int_equal(f.last_offset, 1001);
	frames_reset(&f);
	json_decref(open_stream(reader, "s3", exec, -1, false, 998, 8));
	wait_end(&f, 3000);
	assert_string_equal(cod_buf_str(&f.text), "line 999\nline 1000\nlast words\n");
	/* a cancelled stream sends nothing more */
	frames_reset(&f);
	json_decref(open_stream(reader, "s4", exec, -1, true, 0, 0));
	send_req(reader, COD_MSG_LOG_CANCEL, json_pack("{s:s}", "StreamID", "s4"), false);
	send_req(reader, COD_MSG_LOG_CREDIT,
		 json_pack("{s:s, s:I}", "StreamID", "s4", "Credit", (json_int_t)100), false);
	settle(400);
	assert_int_equal(f.lines, 0);
	assert_int_equal(f.ends, 0);

	writer_close(&w);
	cod_log_server_stop(c->logs);
	cod_nats_close(node_nc);
	cod_log_server_free(c->logs);
	cod_nats_close(reader);
	cod_cstore_close(c->store);
	free(c->node_id);
	free(c->dir);
	free(c);
	cod_natsd_stop(d);
	cod_buf_release(&f.text);
	free(f.end_error);
	pthread_mutex_destroy(&f.lock);
	pthread_cond_destroy(&f.cond);
}

TMPDIR_GROUP(tmp_root)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_from_index),
	    cmocka_unit_test(test_without_index),
	    cmocka_unit_test(test_partial_lines),
	    cmocka_unit_test(test_incremental),
	    cmocka_unit_test(test_long_lines),
	    cmocka_unit_test(test_malformed_index),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_open_on_first_write),
	    cmocka_unit_test(test_noop_lines),
	    cmocka_unit_test(test_server_protocol),
	};
	int rc = cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
	cod_nats_shutdown_library();
	return rc;
}
