/*
 * test_transport.c - subjects, envelopes, and the NATS wrapper against a
 * real nats-server started through cod_natsd_start(): delivery order,
 * request/reply, token refusal, restart of a killed server with client
 * reconnection, and a stop that leaves no process behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/util.h"
#include "transport/transport.h"
#include "common/banned.h"

#define TOKEN "s3cret-t0k!$#{}"

static char tmp_root[] = "/tmp/cod-test-transport-XXXXXX";
static struct cod_natsd *server;
static char *server_dir;
static bool have_server_binary;

/* ------------------------------------------------------------ helpers */

static bool nats_server_installed(void)
{
	const char *paths[] = {"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"};
	for (size_t i = 0; i < COD_ARRAY_SIZE(paths); i++)
		if (access(paths[i], X_OK) == 0)
			return true;
	return system("command -v nats-server >/dev/null 2>&1") == 0;
}

static pid_t read_pid(const char *dir)
{
	cleanup_free char *path = xasprintf("%s/nats-server.pid", dir);
	cleanup_free char *text = NULL;
	size_t len;
	for (int i = 0; i < 200; i++) {
		if (access(path, R_OK) == 0 && cod_read_file(path, 64, &text, &len, NULL) == 0 && len > 0)
			break;
		free(text);
		text = NULL;
		usleep(10000);
	}
	if (!text)
		return -1;
	return (pid_t)atoi(text);
}

/* Collects messages of a subscription. */
struct sink {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char **msgs;
	size_t n, alloc;
	int connected_events, disconnected_events;
	bool connected;
};

static void sink_init(struct sink *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
}

static void sink_release(struct sink *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->msgs[i]);
	free(s->msgs);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
}

static void sink_msg(void *ctx, const char *subject, const char *reply, const char *data, size_t len)
{
	(void)subject;
	(void)reply;
	struct sink *s = ctx;
	pthread_mutex_lock(&s->lock);
	COD_GROW(s->msgs, s->alloc, s->n + 1);
	s->msgs[s->n++] = xstrndup(data, len);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void sink_state(void *ctx, bool connected)
{
	struct sink *s = ctx;
	pthread_mutex_lock(&s->lock);
	s->connected = connected;
	if (connected)
		s->connected_events++;
	else
		s->disconnected_events++;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static bool sink_wait(struct sink *s, size_t n, int timeout_ms)
{
	int64_t deadline = cod_mono_ms() + timeout_ms;
	pthread_mutex_lock(&s->lock);
	while (s->n < n && cod_mono_ms() < deadline) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	}
	bool ok = s->n >= n;
	pthread_mutex_unlock(&s->lock);
	return ok;
}

static struct cod_nats *connect_client(const char *token, struct sink *state_sink)
{
	struct cod_nats_opts o = {
	    .url = cod_natsd_url(server),
	    .token = token,
	    .name = "test",
	    .on_state = state_sink ? sink_state : NULL,
	    .ctx = state_sink,
	};
	struct cod_nats *nc = NULL;
	struct cod_error *err = NULL;
	if (cod_nats_connect(&o, &nc, &err) < 0)
		fail_msg("connect: %s", err->message);
	return nc;
}

#define NEED_SERVER()                                                                                        \
	do {                                                                                                 \
		if (!server) {                                                                               \
			printf("skipped: nats-server is not installed\n");                                   \
			skip();                                                                              \
		}                                                                                            \
	} while (0)

/* ----------------------------------------------------------- subjects */

static void test_subjects(void **state)
{
	(void)state;
	cleanup_free char *in = cod_subject_in("n-1");
	cleanup_free char *out = cod_subject_out("n-1");
	cleanup_free char *ctrl = cod_subject_ctrl("n-1");
	assert_string_equal(in, "cod.node.n-1.in");
	assert_string_equal(out, "cod.node.n-1.out");
	assert_string_equal(ctrl, "cod.node.n-1.ctrl");
	cleanup_free char *id = cod_subject_node("cod.node.n-abc.out");
	assert_non_null(id);
	assert_string_equal(id, "n-abc");
	cleanup_free char *id2 = cod_subject_node(ctrl);
	assert_string_equal(id2, "n-1");
	assert_null(cod_subject_node("cod.node..out"));
	assert_null(cod_subject_node("cod.node.x.bogus"));
	assert_null(cod_subject_node("cod.node.x"));
	assert_null(cod_subject_node("other.node.x.in"));
	assert_null(cod_subject_node(NULL));
}

/* ---------------------------------------------------------- envelopes */

static void test_envelope_round_trip(void **state)
{
	(void)state;
	struct cod_envelope env = {
	    .type = (char *)COD_MSG_ASK_FOR_BID,
	    .seq = 42,
	    .source = (char *)"n-orch",
	    .time = 1700000000123456789LL,
	    .payload = json_pack("{s:s, s:{s:i}}", "ExecutionID", "e-1", "Nested", "N", 7),
	};
	size_t len;
	cleanup_free char *text = cod_envelope_encode(&env, &len);
	assert_int_equal(len, strlen(text));
	json_decref(env.payload);

	struct cod_envelope got;
	struct cod_error *err = NULL;
	assert_int_equal(cod_envelope_decode(text, len, &got, &err), 0);
	assert_string_equal(got.type, "AskForBid");
	assert_int_equal(got.seq, 42);
	assert_string_equal(got.source, "n-orch");
	assert_true(got.time == 1700000000123456789LL);
	assert_string_equal(json_string_value(json_object_get(got.payload, "ExecutionID")), "e-1");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(got.payload, "Nested"), "N")), 7);
	cod_envelope_release(&got);

	/* No payload encodes {}; a control message has Seq 0; keys match in
	 * any case. */
	struct cod_envelope ctl = {.type = (char *)COD_MSG_HEARTBEAT};
	cleanup_free char *t2 = cod_envelope_encode(&ctl, NULL);
	assert_int_equal(cod_envelope_decode(t2, strlen(t2), &got, &err), 0);
	assert_int_equal(got.seq, 0);
	assert_true(json_is_object(got.payload));
	assert_int_equal(json_object_size(got.payload), 0);
	cod_envelope_release(&got);
	/* A stored payload goes in as its text; text that is not an object
	 * goes as {}. */
	cleanup_free char *t3 =
	    cod_envelope_encode_text("RunResult", 9, "n-c", 5, " {\"A\":[1,2]}", NULL, NULL);
	assert_string_equal(t3, "{\"Type\":\"RunResult\",\"Seq\":9,\"Source\":\"n-c\",\"Time\":5,\"Payload\":{\"A\":[1,2]}}");
	/* A compute node's capacity rides along as Capacity; none, none. */
	cleanup_free char *tc =
	    cod_envelope_encode_text("BidResult", 2, "n-c", 5, "{}", "{\"RunningExecutions\":3}", NULL);
	assert_int_equal(cod_envelope_decode(tc, strlen(tc), &got, &err), 0);
	assert_int_equal(json_integer_value(json_object_get(got.capacity, "RunningExecutions")), 3);
	cleanup_free char *tc2 = cod_envelope_encode(&got, NULL);
	assert_non_null(strstr(tc2, "\"Capacity\":{\"RunningExecutions\":3}"));
	cod_envelope_release(&got);
	assert_null(strstr(t3, "Capacity"));
	cleanup_free char *t4 = cod_envelope_encode_text("RunResult", 9, "n-c", 5, "[1]", NULL, NULL);
	assert_int_equal(cod_envelope_decode(t4, strlen(t4), &got, &err), 0);
	assert_int_equal(json_object_size(got.payload), 0);
	assert_null(got.capacity);
	cod_envelope_release(&got);
	const char *lower = "{\"type\":\"BidResult\",\"seq\":3}";
	assert_int_equal(cod_envelope_decode(lower, strlen(lower), &got, &err), 0);
	assert_string_equal(got.type, "BidResult");
	assert_int_equal(got.seq, 3);
	assert_string_equal(got.source, "");
	cod_envelope_release(&got);
	cod_envelope_release(NULL);
}

static void test_envelope_malformed(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		const char *needle;
	} cases[] = {
	    {"", "empty message"},
	    {"not json", "malformed envelope"},
	    {"[1,2]", "expected a JSON object"},
	    {"{\"Seq\":1}", "Type is missing"},
	    {"{\"Type\":\"\"}", "Type must be a non-empty string"},
	    {"{\"Type\":5}", "Type must be a non-empty string"},
	    {"{\"Type\":\"X\",\"Seq\":-1}", "Seq must be a non-negative integer"},
	    {"{\"Type\":\"X\",\"Seq\":\"1\"}", "Seq must be a non-negative integer"},
	    {"{\"Type\":\"X\",\"Source\":1}", "Source must be a string"},
	    {"{\"Type\":\"X\",\"Time\":\"now\"}", "Time must be an integer"},
	    {"{\"Type\":\"X\",\"Payload\":[1]}", "Payload must be an object"},
	    {"{\"Type\":\"X\",\"Capacity\":3}", "Capacity must be an object"},
	    {"{\"Type\":\"X\",\"Type\":\"Y\"}", "malformed envelope"},
	    {"{\"Type\":\"X\"", "malformed envelope"},
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(cases); i++) {
		struct cod_envelope env;
		struct cod_error *err = NULL;
		assert_int_equal(cod_envelope_decode(cases[i].text, strlen(cases[i].text), &env, &err), -1);
		assert_non_null(err);
		assert_int_equal(err->code, COD_E_BAD_REQUEST);
		if (!strstr(err->message, cases[i].needle))
			fail_msg("case %zu: \"%s\" does not contain \"%s\"", i, err->message,
				 cases[i].needle);
		assert_null(env.type);
		cod_error_free(err);
	}
	struct cod_envelope env;
	struct cod_error *err = NULL;
	assert_int_equal(cod_envelope_decode(NULL, 0, &env, &err), -1);
	cod_error_free(err);
}

/* ------------------------------------------------------------- server */

static void test_natsd_config(void **state)
{
	(void)state;
	NEED_SERVER();
	assert_true(cod_natsd_port(server) > 0);
	assert_true(cod_str_has_prefix(cod_natsd_url(server), "nats://127.0.0.1:"));
	cleanup_free char *conf = xasprintf("%s/nats-server.conf", server_dir);
	struct stat st;
	assert_int_equal(stat(conf, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* The token is in the file, never on the command line. */
	pid_t pid = read_pid(server_dir);
	assert_true(pid > 0);
	cleanup_free char *cmdline_path = xasprintf("/proc/%d/cmdline", (int)pid);
	cleanup_free char *cmdline = NULL;
	size_t len;
	assert_int_equal(cod_read_file(cmdline_path, 4096, &cmdline, &len, NULL), 0);
	for (size_t i = 0; i < len; i++)
		if (!cmdline[i])
			cmdline[i] = ' ';
	assert_null(strstr(cmdline, "s3cret"));
}

static void test_pubsub_order(void **state)
{
	(void)state;
	NEED_SERVER();
	struct sink sink;
	sink_init(&sink);
	struct cod_nats *sub = connect_client(TOKEN, NULL);
	struct cod_nats *pub = connect_client(TOKEN, NULL);
	struct cod_error *err = NULL;
	assert_int_equal(cod_nats_subscribe(sub, "cod.node.n-order.in", sink_msg, &sink, &err), 0);
	assert_int_equal(cod_nats_flush(sub, 2000, &err), 0);
	for (int i = 1; i <= 1000; i++) {
		char buf[32];
		int n = snprintf(buf, sizeof(buf), "%d", i);
		assert_int_equal(cod_nats_publish(pub, "cod.node.n-order.in", buf, (size_t)n, &err), 0);
	}
	assert_int_equal(cod_nats_flush(pub, 5000, &err), 0);
	assert_true(sink_wait(&sink, 1000, 10000));
	pthread_mutex_lock(&sink.lock);
	assert_int_equal(sink.n, 1000);
	for (size_t i = 0; i < sink.n; i++)
		assert_int_equal(atoi(sink.msgs[i]), (int)i + 1);
	pthread_mutex_unlock(&sink.lock);
	assert_true(cod_nats_connected(pub));
	/* the libnats this builds with lets the handler's thread free them
	 * (the 1000 above, under the sanitizers: no leak, no double free) */
	assert_true(cod_nats_frees_inline());
	cod_nats_close(pub);
	cod_nats_close(sub);
	sink_release(&sink);
}

/* A pulled subscription: messages in order, taken by the caller's own
 * thread; a wait with nothing there ends after its timeout; a stop ends a
 * wait at once; what is still queued is freed by the close. */
struct pull_waiter {
	struct cod_nats_pull *pull;
	int rc;
	int64_t waited_ms;
	pid_t tid;
};

static void *pull_wait(void *arg)
{
	struct pull_waiter *w = arg;
	__atomic_store_n(&w->tid, gettid(), __ATOMIC_RELEASE);
	struct cod_nats_msg m = {0};
	int64_t t0 = cod_mono_ms();
	w->rc = cod_nats_next(w->pull, 60000, &m);
	w->waited_ms = cod_mono_ms() - t0;
	cod_nats_msg_release(&m);
	return NULL;
}

/* Whether the thread whose ID lands in *tid goes to sleep (state S)
 * within timeout_ms. */
static bool thread_sleeps(const pid_t *tid, int timeout_ms)
{
	int64_t deadline = cod_mono_ms() + timeout_ms;
	while (cod_mono_ms() < deadline) {
		pid_t t = __atomic_load_n(tid, __ATOMIC_ACQUIRE);
		if (t > 0) {
			cleanup_free char *path = xasprintf("/proc/self/task/%d/stat", (int)t);
			cleanup_free char *text = NULL;
			size_t len = 0;
			const char *paren = NULL;
			if (cod_read_file(path, 4096, &text, &len, NULL) == 0 &&
			    (paren = strrchr(text, ')')) && paren[1] == ' ' && paren[2] == 'S')
				return true;
		}
		sched_yield();
	}
	return false;
}

static void test_pull_order(void **state)
{
	(void)state;
	NEED_SERVER();
	struct cod_nats *sub = connect_client(TOKEN, NULL);
	struct cod_nats *pub = connect_client(TOKEN, NULL);
	struct cod_error *err = NULL;
	struct cod_nats_pull *pull = NULL;
	assert_int_equal(cod_nats_subscribe_pull(sub, "cod.node.*.out", &pull, &err), 0);
	assert_int_equal(cod_nats_flush(sub, 2000, &err), 0);
	struct cod_nats_msg m = {0};
	int64_t t0 = cod_mono_ms();
	assert_int_equal(cod_nats_next(pull, 0, &m), 0);
	assert_int_equal(cod_nats_next(pull, 50, &m), 0);
	assert_true(cod_mono_ms() - t0 >= 40); /* it waited (libnats rounds to ms) */
	for (int i = 1; i <= 1000; i++) {
		char buf[32];
		int n = snprintf(buf, sizeof(buf), "%d", i);
		assert_int_equal(cod_nats_publish(pub, "cod.node.n-pull.out", buf, (size_t)n, &err), 0);
	}
	assert_int_equal(cod_nats_flush(pub, 5000, &err), 0);
	for (int i = 1; i <= 990; i++) {
		assert_int_equal(cod_nats_next(pull, 10000, &m), 1);
		assert_string_equal(m.subject, "cod.node.n-pull.out");
		char want[32];
		snprintf(want, sizeof(want), "%d", i);
		assert_int_equal(m.len, strlen(want));
		assert_memory_equal(m.data, want, m.len);
		cod_nats_msg_release(&m);
		assert_null(m.raw);
	}
	/* ten left queued: a waiter gets one at once; the rest stay for the close */
	struct pull_waiter w = {.pull = pull};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, pull_wait, &w), 0);
	pthread_join(th, NULL);
	assert_int_equal(w.rc, 1);
	/* nothing arrives for this one: the stop ends its wait */
	struct cod_nats_pull *empty = NULL;
	assert_int_equal(cod_nats_subscribe_pull(sub, "cod.node.*.none", &empty, &err), 0);
	struct pull_waiter w2 = {.pull = empty};
	assert_int_equal(pthread_create(&th, NULL, pull_wait, &w2), 0);
	assert_true(thread_sleeps(&w2.tid, 10000));
	cod_nats_pull_stop(empty);
	pthread_join(th, NULL);
	assert_int_equal(w2.rc, -1);
	assert_true(w2.waited_ms < 30000);
	assert_int_equal(cod_nats_next(empty, 0, &m), -1);
	cod_nats_close(pub);
	cod_nats_close(sub);
}

struct responder {
	struct cod_nats *nc;
	int calls;
};

static void respond(void *ctx, const char *subject, const char *reply, const char *data, size_t len)
{
	struct responder *r = ctx;
	r->calls++;
	assert_non_null(reply);
	char *answer = xasprintf("%s:%.*s", subject, (int)len, data);
	cod_nats_publish(r->nc, reply, answer, strlen(answer), NULL);
	free(answer);
}

static void test_request_reply(void **state)
{
	(void)state;
	NEED_SERVER();
	struct responder r = {0};
	r.nc = connect_client(TOKEN, NULL);
	struct cod_nats *client = connect_client(TOKEN, NULL);
	struct cod_error *err = NULL;
	assert_int_equal(cod_nats_subscribe(r.nc, COD_SUBJECT_ALL_CTRL, respond, &r, &err), 0);
	assert_int_equal(cod_nats_flush(r.nc, 2000, &err), 0);
	char *reply = NULL;
	size_t len = 0;
	assert_int_equal(cod_nats_request(client, "cod.node.n-7.ctrl", "ping", 4, 5000, &reply, &len, &err),
			 0);
	assert_string_equal(reply, "cod.node.n-7.ctrl:ping");
	assert_int_equal(len, strlen(reply));
	free(reply);

	/* Nobody listens on .in: no responders, at once. */
	int64_t t0 = cod_mono_ms();
	assert_int_equal(cod_nats_request(client, "cod.node.n-7.in", "x", 1, 3000, &reply, &len, &err), -1);
	assert_non_null(err);
	assert_true(err->code == COD_E_UNAVAILABLE || err->code == COD_E_TIMEOUT);
	assert_null(reply);
	assert_true(cod_mono_ms() - t0 < 3500);
	cod_error_free(err);
	err = NULL;

	cod_nats_close(client);
	cod_nats_close(r.nc);
	assert_int_equal(r.calls, 1);
}

static void test_wrong_token(void **state)
{
	(void)state;
	NEED_SERVER();
	struct cod_nats_opts o = {.url = cod_natsd_url(server), .token = "wrong", .connect_timeout_ms = 2000};
	struct cod_nats *nc = NULL;
	struct cod_error *err = NULL;
	assert_int_equal(cod_nats_connect(&o, &nc, &err), -1);
	assert_null(nc);
	assert_non_null(err);
	assert_int_equal(err->code, COD_E_UNAUTHORIZED);
	assert_non_null(strstr(err->message, "authorization violation"));
	assert_non_null(err->hint);
	assert_non_null(strstr(err->hint, "Compute.Auth.Token"));
	assert_non_null(strstr(err->hint, "Orchestrator.Auth.Token"));
	cod_error_free(err);
	err = NULL;

	/* No token at all is refused the same way. */
	o.token = NULL;
	assert_int_equal(cod_nats_connect(&o, &nc, &err), -1);
	assert_int_equal(err->code, COD_E_UNAUTHORIZED);
	cod_error_free(err);
	err = NULL;

	/* libnats cannot send a token holding a quote: refused up front. */
	o.url = cod_natsd_url(server);
	o.token = "bad\"token";
	assert_int_equal(cod_nats_connect(&o, &nc, &err), -1);
	assert_int_equal(err->code, COD_E_CONFIG);
	cod_error_free(err);
	err = NULL;
	cleanup_free char *bad_dir = xasprintf("%s/badtoken", tmp_root);
	struct cod_natsd *d = NULL;
	assert_int_equal(cod_natsd_start("127.0.0.1", 0, "a\\b", bad_dir, &d, &err), -1);
	assert_int_equal(err->code, COD_E_CONFIG);
	assert_non_null(strstr(err->message, "Orchestrator.Auth.Token"));
	cod_error_free(err);
	err = NULL;
	o.token = NULL;

	/* A token in the URL works, and messages never show it. */
	cleanup_free char *url = xasprintf("nats://%s@127.0.0.1:%d", "wrong-in-url", cod_natsd_port(server));
	o.url = url;
	assert_int_equal(cod_nats_connect(&o, &nc, &err), -1);
	assert_int_equal(err->code, COD_E_UNAUTHORIZED);
	assert_null(strstr(err->message, "wrong-in-url"));
	cod_error_free(err);
}

static void test_no_server(void **state)
{
	(void)state;
	/* A port nobody listens on. */
	struct cod_nats_opts o = {.url = "nats://127.0.0.1:1", .connect_timeout_ms = 1000};
	struct cod_nats *nc = NULL;
	struct cod_error *err = NULL;
	assert_int_equal(cod_nats_connect(&o, &nc, &err), -1);
	assert_non_null(err);
	assert_int_equal(err->code, COD_E_NETWORK);
	assert_non_null(strstr(err->message, "nats://127.0.0.1:1"));
	assert_non_null(err->hint);
	assert_non_null(strstr(err->hint, "orchestrator"));
	cod_error_free(err);
	err = NULL;
	o.url = "";
	assert_int_equal(cod_nats_connect(&o, &nc, &err), -1);
	assert_int_equal(err->code, COD_E_CONFIG);
	cod_error_free(err);

	/* Asked to retry, connect returns at once and keeps trying. */
	struct sink st;
	sink_init(&st);
	struct cod_nats_opts r = {
	    .url = "nats://127.0.0.1:1", .retry_on_failed_connect = true, .on_state = sink_state, .ctx = &st};
	err = NULL;
	assert_int_equal(cod_nats_connect(&r, &nc, &err), 0);
	assert_false(cod_nats_connected(nc));
	cod_nats_close(nc);
	sink_release(&st);
}

static void test_natsd_restart(void **state)
{
	(void)state;
	NEED_SERVER();
	struct sink st, msgs;
	sink_init(&st);
	sink_init(&msgs);
	struct cod_nats *nc = connect_client(TOKEN, &st);
	struct cod_error *err = NULL;
	assert_int_equal(cod_nats_subscribe(nc, "cod.node.n-r.in", sink_msg, &msgs, &err), 0);
	assert_int_equal(cod_nats_flush(nc, 2000, &err), 0);
	assert_int_equal(cod_nats_publish(nc, "cod.node.n-r.in", "before", 6, &err), 0);
	assert_true(sink_wait(&msgs, 1, 5000));

	pid_t old = read_pid(server_dir);
	assert_true(old > 0);
	cleanup_free char *pidfile = xasprintf("%s/nats-server.pid", server_dir);
	unlink(pidfile);
	assert_int_equal(kill(old, SIGKILL), 0);

	/* The supervisor starts a new server on the same port; the client
	 * reconnects by itself and its subscription works again. */
	int64_t deadline = cod_mono_ms() + 20000;
	pthread_mutex_lock(&st.lock);
	while (st.connected_events < 1 && cod_mono_ms() < deadline) {
		pthread_mutex_unlock(&st.lock);
		usleep(20000);
		pthread_mutex_lock(&st.lock);
	}
	int reconnects = st.connected_events, disconnects = st.disconnected_events;
	pthread_mutex_unlock(&st.lock);
	assert_true(disconnects >= 1);
	assert_true(reconnects >= 1);
	pid_t fresh = read_pid(server_dir);
	assert_true(fresh > 0);
	assert_true(fresh != old);
	assert_true(cod_nats_connected(nc));
	assert_int_equal(cod_nats_publish(nc, "cod.node.n-r.in", "after", 5, &err), 0);
	assert_int_equal(cod_nats_flush(nc, 2000, &err), 0);
	assert_true(sink_wait(&msgs, 2, 5000));
	pthread_mutex_lock(&msgs.lock);
	assert_string_equal(msgs.msgs[msgs.n - 1], "after");
	pthread_mutex_unlock(&msgs.lock);
	cod_nats_close(nc);
	sink_release(&st);
	sink_release(&msgs);
}

static void test_natsd_stop(void **state)
{
	(void)state;
	NEED_SERVER();
	cleanup_free char *dir = xasprintf("%s/stop", tmp_root);
	struct cod_natsd *d = NULL;
	struct cod_error *err = NULL;
	if (cod_natsd_start("127.0.0.1", 0, NULL, dir, &d, &err) < 0)
		fail_msg("start: %s", err->message);
	pid_t pid = read_pid(dir);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, 0), 0);
	/* No token: anyone may connect. */
	struct cod_nats_opts o = {.url = cod_natsd_url(d)};
	struct cod_nats *nc = NULL;
	assert_int_equal(cod_nats_connect(&o, &nc, &err), 0);
	cod_nats_close(nc);
	cod_natsd_stop(d);
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
	cleanup_free char *conf = xasprintf("%s/nats-server.conf", dir);
	assert_int_equal(access(conf, F_OK), -1);
	cod_natsd_stop(NULL);
}

static void test_natsd_missing_binary(void **state)
{
	(void)state;
	setenv("COD_NATS_SERVER", "/nonexistent/nats-server", 1);
	struct cod_natsd *d = NULL;
	struct cod_error *err = NULL;
	cleanup_free char *dir = xasprintf("%s/missing", tmp_root);
	int rc = cod_natsd_start("127.0.0.1", 0, NULL, dir, &d, &err);
	unsetenv("COD_NATS_SERVER");
	assert_int_equal(rc, -1);
	assert_null(d);
	assert_int_equal(err->code, COD_E_CONFIG);
	assert_string_equal(err->message, "nats-server is not installed");
	assert_non_null(strstr(err->hint, "apt-get install nats-server"));
	assert_non_null(strstr(err->hint, "Orchestrator.NATS.URL"));
	cod_error_free(err);
}

/* --------------------------------------------------------------- main */

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(tmp_root))
		return -1;
	have_server_binary = nats_server_installed();
	if (!have_server_binary) {
		printf("nats-server is not installed: the server tests are skipped "
		       "(apt-get install nats-server)\n");
		return 0;
	}
	server_dir = xasprintf("%s/server", tmp_root);
	struct cod_error *err = NULL;
	if (cod_natsd_start("127.0.0.1", 0, TOKEN, server_dir, &server, &err) < 0) {
		fprintf(stderr, "start nats-server: %s\n", err->message);
		cod_error_free(err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cod_natsd_stop(server);
	free(server_dir);
	cod_nats_shutdown_library();
	tmpdir_remove(tmp_root);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_subjects),	       cmocka_unit_test(test_envelope_round_trip),
	    cmocka_unit_test(test_envelope_malformed), cmocka_unit_test(test_natsd_config),
	    cmocka_unit_test(test_pubsub_order),       cmocka_unit_test(test_pull_order),
	    cmocka_unit_test(test_request_reply),      cmocka_unit_test(test_wrong_token),
	    cmocka_unit_test(test_no_server),	       cmocka_unit_test(test_natsd_restart),
	    cmocka_unit_test(test_natsd_stop),	       cmocka_unit_test(test_natsd_missing_binary),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
