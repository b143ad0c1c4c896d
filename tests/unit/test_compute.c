/*
 * test_compute.c - the compute node: capacity parsing and resource math,
 * the executor buffer (priority order, capacity, skip-ahead), the bidder's
 * reasons, the noop executor, the execution store, startup recovery,
 * inbound sequence handling, the execution runner, and one run against a
 * real nats-server with a stand-in orchestrator (skipped when nats-server
 * is not installed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "compute/compute_int.h"
#include "config/config.h"
#include "executor/executor.h"
#include "model/model.h"
#include "transport/transport.h"
#include "common/banned.h"

static char tmp_root[] = "/tmp/cod-test-compute-XXXXXX";
static int dir_counter;

#define GiB (1024ULL * 1024 * 1024)

/* ------------------------------------------------------------ helpers */

static char *new_dir(void)
{
	char *d = xasprintf("%s/d%d", tmp_root, ++dir_counter);
	if (cod_mkdir_p(d, 0700, NULL) < 0)
		fail_msg("mkdir %s", d);
	return d;
}

/* A config for a node in its own data dir with 2 CPUs, 4 GiB, 10 GiB. */
static void test_config(struct cod_config *cfg, const char *data_dir)
{
	cod_config_init(cfg);
	struct cod_error *err = NULL;
	const char *sets[][2] = {
	    {"DataDir", data_dir},
	    {"NodeName", "n-test"},
	    {"Compute.AllocatedCapacity.CPU", "2"},
	    {"Compute.AllocatedCapacity.Memory", "4Gi"},
	    {"Compute.AllocatedCapacity.Disk", "10Gi"},
	    {"Compute.AllocatedCapacity.GPU", "0"},
	    {"Compute.Env.AllowList", "COD_TEST_*"},
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(sets); i++)
		if (cod_config_set(cfg, sets[i][0], sets[i][1], "test", &err) < 0)
			fail_msg("config %s: %s", sets[i][0], err->message);
}

/* An execution of a job written as JSON text. */
static struct cod_execution *make_exec(const char *id, const char *job_json, enum cod_exec_desired desired)
{
	struct cod_error *err = NULL;
	struct cod_job *job = cod_job_parse(job_json, strlen(job_json), &err);
	if (!job)
		fail_msg("job: %s (%s)", err->message, err->ndetails ? err->details[0] : "");
	if (!job->id)
		job->id = xstrdup("j-test");
	struct cod_execution *e = xcalloc(1, sizeof(*e));
	e->id = xstrdup(id);
	e->job_id = xstrdup(job->id);
	e->namespace_ = xstrdup("default");
	e->job = job;
	e->desired_state.type = (int)desired;
	return e;
}

#define JOB(type, task)                                                                                      \
	"{\"Name\":\"t\",\"Type\":\"" type                                                                   \
	"\",\"Count\":3,\"Priority\":0,\"Tasks\":[{\"Name\":\"main\"," task "}]}"
#define NOOP_JOB(type, extra_task) JOB(type, "\"Engine\":{\"Type\":\"noop\"}" extra_task)
/* A noop job with Params (a JSON object) and more task fields. */
#define NOOP_PARAMS(type, params, extra_task)                                                                \
	JOB(type, "\"Engine\":{\"Type\":\"noop\",\"Params\":" params "}" extra_task)

static struct cod_envelope ask_for_bid(uint64_t seq, struct cod_execution *e)
{
	struct cod_envelope env = {
	    .type = xstrdup(COD_MSG_ASK_FOR_BID),
	    .seq = seq,
	    .source = xstrdup("orch"),
	    .payload = json_pack("{s:o}", "Execution", cod_execution_to_json(e)),
	};
	return env;
}

static struct cod_envelope simple_msg(const char *type, uint64_t seq, const char *exec_id)
{
	struct cod_envelope env = {
	    .type = xstrdup(type),
	    .seq = seq,
	    .source = xstrdup("orch"),
	    .payload = json_pack("{s:s, s:s}", "ExecutionID", exec_id, "Reason", "test says so"),
	};
	return env;
}

static void feed(struct cod_compute *c, struct cod_envelope env)
{
	cod_compute_handle(c, &env);
	cod_envelope_release(&env);
}

static int exec_state(struct cod_compute *c, const char *id)
{
	struct cod_execution *e = NULL;
	if (cod_cstore_get(c->store, id, &e, NULL) < 0)
		return -1;
	int s = e->compute_state.type;
	cod_execution_free(e);
	return s;
}

static struct cod_execution *get_exec(struct cod_compute *c, const char *id)
{
	struct cod_execution *e = NULL;
	struct cod_error *err = NULL;
	if (cod_cstore_get(c->store, id, &e, &err) < 0)
		fail_msg("get %s: %s", id, err->message);
	return e;
}

/* Outbox messages after seq, as (type, payload) pairs. */
struct outbox {
	struct cod_cstore_msg *m;
	size_t n;
};

static struct outbox outbox_after(struct cod_compute *c, uint64_t after)
{
	struct outbox o = {0};
	struct cod_error *err = NULL;
	if (cod_cstore_outbox_pending(c->store, after, 0, &o.m, &o.n, &err) < 0)
		fail_msg("outbox: %s", err->message);
	return o;
}

static json_t *outbox_payload(const struct outbox *o, size_t i)
{
	return json_loads(o->m[i].payload, 0, NULL);
}

static void run_until_idle(struct cod_compute *c, int timeout_ms)
{
	int64_t deadline = cod_mono_ms() + timeout_ms;
	for (;;) {
		cod_compute_tick(c);
		pthread_mutex_lock(&c->lock);
		bool idle = !c->running && c->buffer.n == 0;
		pthread_mutex_unlock(&c->lock);
		if (idle)
			return;
		if (cod_mono_ms() > deadline)
			fail_msg("executions still running after %d ms", timeout_ms);
		usleep(5000);
	}
}

/* ----------------------------------------------------------- capacity */

static void test_capacity_allocate(void **state)
{
	(void)state;
	const struct cod_resources sys = {.cpu = 8, .memory = 16 * GiB, .disk = 100 * GiB, .gpu = 2};
	struct cod_resources r;
	struct cod_error *err = NULL;

	assert_int_equal(cod_capacity_allocate("80%", "80%", "80%", "100%", &sys, &r, &err), 0);
	assert_true(r.cpu > 6.399 && r.cpu < 6.401);
	assert_true(r.memory == (uint64_t)(16 * GiB * 0.8));
	assert_true(r.disk == 80 * GiB);
	assert_int_equal(r.gpu, 2);

	assert_int_equal(cod_capacity_allocate("2", "4Gi", "500Mb", "1", &sys, &r, &err), 0);
	assert_true(r.cpu == 2);
	assert_true(r.memory == 4 * GiB);
	assert_true(r.disk == 500ULL * 1000 * 1000 || r.disk == 500ULL * 1024 * 1024);
	assert_int_equal(r.gpu, 1);

	assert_int_equal(cod_capacity_allocate("500m", " 50 % ", "", NULL, &sys, &r, &err), 0);
	assert_true(r.cpu == 0.5);
	assert_true(r.memory == 8 * GiB);
	assert_true(r.disk == 100 * GiB);
	assert_int_equal(r.gpu, 2);

	/* Absolute values above the machine are allowed (overcommit). */
	assert_int_equal(cod_capacity_allocate("64", "1Ti", "1Ti", "50%", &sys, &r, &err), 0);
	assert_true(r.cpu == 64);
	assert_int_equal(r.gpu, 1);

	static const struct {
		const char *cpu, *mem, *disk, *gpu, *key;
	} bad[] = {
	    {"abc", "1Gi", "1Gi", "0", "Compute.AllocatedCapacity.CPU"},
	    {"150%", "1Gi", "1Gi", "0", "Compute.AllocatedCapacity.CPU"},
	    {"0%", "1Gi", "1Gi", "0", "Compute.AllocatedCapacity.CPU"},
	    {"%", "1Gi", "1Gi", "0", "Compute.AllocatedCapacity.CPU"},
	    {"1", "lots", "1Gi", "0", "Compute.AllocatedCapacity.Memory"},
	    {"1", "1Gi", "-5%", "0", "Compute.AllocatedCapacity.Disk"},
	    {"1", "1Gi", "1Gi", "-1", "Compute.AllocatedCapacity.GPU"},
	    {"1", "1Gi", "1Gi", "1.5", "Compute.AllocatedCapacity.GPU"},
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(bad); i++) {
		err = NULL;
		assert_int_equal(
		    cod_capacity_allocate(bad[i].cpu, bad[i].mem, bad[i].disk, bad[i].gpu, &sys, &r, &err),
		    -1);
		assert_int_equal(err->code, COD_E_CONFIG);
		if (!strstr(err->message, bad[i].key))
			fail_msg("case %zu: \"%s\" does not name %s", i, err->message, bad[i].key);
		assert_non_null(err->hint);
		cod_error_free(err);
	}

	/* The machine itself. */
	struct cod_kvlist gpu_labels = {0};
	cod_capacity_system(tmp_root, &r, &gpu_labels);
	assert_true(r.cpu >= 1);
	assert_true(r.memory > 0);
	assert_true(r.disk > 0);
	/* GPU labels exist exactly when GPUs were found. */
	assert_int_equal(gpu_labels.n, r.gpu * 2);
	cod_kvlist_release(&gpu_labels);
}

/* nvidia-smi cannot run here: a fake one on PATH prints what the real one
 * prints for two GPUs. */
static void test_capacity_gpus(void **state)
{
	(void)state;
	cleanup_free char *dir = new_dir();
	cleanup_free char *bin_dir = xasprintf("%s/fake_nvidia_smi", dir);
	assert_int_equal(cod_mkdir_p(bin_dir, 0700, NULL), 0);
	cleanup_free char *script = xasprintf("%s/nvidia-smi", bin_dir);
	const char *text = "#!/bin/sh\n"
			   "case \"$*\" in *--query-gpu=index,name,memory.total*) ;; *) exit 2 ;; esac\n"
			   "printf '0, NVIDIA H200, 143771\\n1, NVIDIA H200, 143771\\n'\n";
	assert_int_equal(cod_write_file_atomic(script, text, strlen(text), NULL), 0);
	assert_int_equal(chmod(script, 0755), 0);
	cleanup_free char *old_path = xstrdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	cleanup_free char *path = xasprintf("%s:%s", bin_dir, old_path);
	setenv("PATH", path, 1);
	struct cod_resources r;
	struct cod_kvlist labels = {0};
	cod_capacity_system(dir, &r, &labels);
	setenv("PATH", old_path, 1);
	assert_int_equal(r.gpu, 2);
	assert_int_equal(labels.n, 4);
	assert_string_equal(cod_kvlist_get(&labels, "GPU-0"), "NVIDIA-H200");
	assert_string_equal(cod_kvlist_get(&labels, "GPU-1-Memory"), "143771-MiB");
	cod_kvlist_release(&labels);

	/* "100%" of them, or fewer. */
	struct cod_resources max;
	assert_int_equal(cod_capacity_allocate("1", "1Gi", "1Gi", "100%", &r, &max, NULL), 0);
	assert_int_equal(max.gpu, 2);
	assert_int_equal(cod_capacity_allocate("1", "1Gi", "1Gi", "50%", &r, &max, NULL), 0);
	assert_int_equal(max.gpu, 1);

	/* A failing nvidia-smi means no GPUs, never an error. */
	const char *broken = "#!/bin/sh\nexit 9\n";
	assert_int_equal(cod_write_file_atomic(script, broken, strlen(broken), NULL), 0);
	assert_int_equal(chmod(script, 0755), 0);
	setenv("PATH", path, 1);
	cod_capacity_system(dir, &r, &labels);
	setenv("PATH", old_path, 1);
	assert_int_equal(r.gpu, 0);
	assert_int_equal(labels.n, 0);
}

static void test_resources_math(void **state)
{
	(void)state;
	const struct cod_resources max = {.cpu = 2, .memory = 4 * GiB, .disk = 10 * GiB, .gpu = 0};
	struct cod_resources used = {.cpu = 1.5, .memory = GiB};
	struct cod_resources need = {.cpu = 0.5, .memory = 3 * GiB};
	assert_true(cod_resources_fit(&need, &used, &max));
	need.cpu = 0.6;
	assert_false(cod_resources_fit(&need, &used, &max));
	cod_resources_add(&used, &need);
	assert_true(used.cpu > 2.09 && used.cpu < 2.11);
	cod_resources_sub(&used, &need);
	cod_resources_sub(&used, &need);
	assert_true(used.cpu >= 0 && used.cpu < 0.91);
	assert_true(used.memory == 0);

	struct cod_resources cpu4 = {.cpu = 4};
	cleanup_free char *a = cod_resources_exceeds(&cpu4, &max);
	assert_string_equal(a, "cpu 4 > node max 2");
	struct cod_resources mem8 = {.cpu = 1, .memory = 8 * GiB};
	cleanup_free char *b = cod_resources_exceeds(&mem8, &max);
	assert_string_equal(b, "memory 8.0 GiB > node max 4.0 GiB");
	struct cod_resources gpu1 = {.gpu = 1};
	cleanup_free char *g = cod_resources_exceeds(&gpu1, &max);
	assert_string_equal(g, "gpu 1 > node max 0");
	struct cod_resources ok = {.cpu = 2, .memory = 4 * GiB};
	assert_null(cod_resources_exceeds(&ok, &max));
}

/* ------------------------------------------------------------- buffer */

static void expect_next(struct cod_buffer *b, const char *want)
{
	char *id = NULL;
	struct cod_resources need;
	bool got = cod_buffer_next(b, &id, &need);
	if (!want) {
		if (got)
			fail_msg("expected nothing, got %s", id);
		return;
	}
	if (!got)
		fail_msg("expected %s, got nothing", want);
	assert_string_equal(id, want);
	free(id);
}

static void test_buffer_priority(void **state)
{
	(void)state;
	const struct cod_resources max = {.cpu = 2, .memory = 4 * GiB};
	struct cod_buffer b;
	cod_buffer_init(&b, &max);
	struct cod_resources one = {.cpu = 1}, two = {.cpu = 2};
	struct cod_error *err = NULL;
	assert_int_equal(cod_buffer_enqueue(&b, "low", 0, &one, &err), 0);
	assert_int_equal(cod_buffer_enqueue(&b, "mid-1", 5, &one, &err), 0);
	assert_int_equal(cod_buffer_enqueue(&b, "mid-2", 5, &one, &err), 0);
	assert_int_equal(cod_buffer_enqueue(&b, "high", 10, &two, &err), 0);
	assert_int_equal(cod_buffer_enqueue(&b, "mid-1", 5, &one, &err), 0); /* not twice */
	assert_int_equal(b.n, 4);
	assert_true(b.queued.cpu == 5);
	assert_true(cod_buffer_contains(&b, "mid-2"));

	expect_next(&b, "high"); /* takes the whole node */
	expect_next(&b, NULL);
	assert_int_equal(b.nrunning, 1);
	struct cod_resources avail;
	cod_buffer_available(&b, &avail);
	assert_true(avail.cpu == 0);
	cod_buffer_done(&b, &two);
	expect_next(&b, "mid-1"); /* FIFO among equal priorities */
	expect_next(&b, "mid-2");
	expect_next(&b, NULL);
	cod_buffer_done(&b, &one);
	expect_next(&b, "low");
	assert_int_equal(b.n, 0);
	assert_true(b.queued.cpu == 0);
	assert_int_equal(b.nrunning, 2);

	/* Something that never fits is refused outright. */
	struct cod_resources huge = {.cpu = 4};
	assert_int_equal(cod_buffer_enqueue(&b, "huge", 0, &huge, &err), -1);
	assert_int_equal(err->code, COD_E_EXHAUSTED);
	assert_non_null(strstr(err->message, "cpu 4 > node max 2"));
	cod_error_free(err);
	cod_buffer_release(&b);
}

static void test_buffer_skip_ahead(void **state)
{
	(void)state;
	const struct cod_resources max = {.cpu = 2, .memory = 4 * GiB};
	struct cod_buffer b;
	cod_buffer_init(&b, &max);
	struct cod_resources one = {.cpu = 1}, two = {.cpu = 2}, mem = {.memory = 3 * GiB};
	assert_int_equal(cod_buffer_enqueue(&b, "first", 0, &one, NULL), 0);
	expect_next(&b, "first"); /* 1 of 2 CPUs in use */
	assert_int_equal(cod_buffer_enqueue(&b, "big", 10, &two, NULL), 0);
	assert_int_equal(cod_buffer_enqueue(&b, "small", 0, &one, NULL), 0);
	/* big waits for capacity; small skips ahead. */
	expect_next(&b, "small");
	expect_next(&b, NULL);
	cod_buffer_done(&b, &one);
	expect_next(&b, NULL);
	cod_buffer_done(&b, &one);
	expect_next(&b, "big");
	cod_buffer_done(&b, &two);

	/* Memory counts too; remove drops a queued one. */
	assert_int_equal(cod_buffer_enqueue(&b, "m1", 0, &mem, NULL), 0);
	assert_int_equal(cod_buffer_enqueue(&b, "m2", 0, &mem, NULL), 0);
	assert_int_equal(cod_buffer_enqueue(&b, "m3", 0, &mem, NULL), 0);
	expect_next(&b, "m1");
	expect_next(&b, NULL);
	assert_true(cod_buffer_remove(&b, "m2"));
	assert_false(cod_buffer_remove(&b, "m2"));
	assert_false(cod_buffer_contains(&b, "m2"));
	cod_buffer_done(&b, &mem);
	expect_next(&b, "m3");
	cod_buffer_release(&b);
}

/* ------------------------------------------------------------- bidder */

static void expect_bid(const struct cod_bidder *b, const char *job_json, const char *reason_part)
{
	struct cod_execution *e = make_exec("e-bid", job_json, COD_DESIRED_PENDING);
	struct cod_resources need;
	char *reason = NULL;
	bool ok = cod_bidder_bid(b, e, &need, &reason);
	if (!reason_part) {
		if (!ok)
			fail_msg("expected a bid for %s, got \"%s\"", job_json, reason);
	} else {
		if (ok)
			fail_msg("expected a rejection (%s) for %s", reason_part, job_json);
		if (!strstr(reason, reason_part))
			fail_msg("reason \"%s\" does not contain \"%s\"", reason, reason_part);
	}
	free(reason);
	cod_execution_free(e);
}

static void test_bidder(void **state)
{
	(void)state;
	struct cod_strlist publishers = {0}, storages = {0}, allow = {0};
	cod_strlist_add(&publishers, "noop");
	cod_strlist_add(&allow, "COD_TEST_*");
	struct cod_bidder b = {
	    .max = {.cpu = 2, .memory = 4 * GiB, .disk = 10 * GiB},
	    .publishers = &publishers,
	    .storages = &storages,
	    .env_allowlist = &allow,
	};
	expect_bid(&b, NOOP_JOB("batch", ",\"Resources\":{\"CPU\":\"1\",\"Memory\":\"1Gi\"}"), NULL);
	expect_bid(&b, NOOP_JOB("batch", ",\"Resources\":{\"CPU\":\"2\",\"Memory\":\"4Gi\"}"), NULL);
	expect_bid(&b, NOOP_JOB("batch", ",\"Resources\":{\"CPU\":\"4\"}"), "job needs cpu 4 > node max 2");
	expect_bid(&b, NOOP_JOB("batch", ",\"Resources\":{\"Memory\":\"8Gi\"}"),
		   "job needs memory 8.0 GiB > node max 4.0 GiB");
	expect_bid(&b, NOOP_JOB("batch", ",\"Resources\":{\"GPU\":\"1\"}"), "job needs gpu 1 > node max 0");
	expect_bid(&b,
		   "{\"Name\":\"t\",\"Type\":\"batch\",\"Tasks\":[{\"Name\":\"main\",\"Engine\":{\"Type\":"
		   "\"flibble\","
		   "\"Params\":{\"Image\":\"busybox\"}}}]}",
		   "node does not support engine \"flibble\"");
	expect_bid(&b, NOOP_JOB("batch", ",\"Publisher\":{\"Type\":\"noop\"}"), NULL);
	expect_bid(&b, NOOP_JOB("batch", ",\"Publisher\":{\"Type\":\"s3\",\"Params\":{\"Bucket\":\"b\"}}"),
		   "node does not support publisher \"s3\"");
	expect_bid(&b,
		   NOOP_JOB("batch",
			    ",\"InputSources\":[{\"Source\":{\"Type\":\"urlDownload\",\"Params\":{\"URL\":"
			    "\"http://x/y\"}},\"Target\":\"/in\"}]"),
		   "node does not support input source \"urlDownload\"");
	expect_bid(&b, NOOP_JOB("batch", ",\"Network\":{\"Type\":\"Host\"}"), NULL);
	expect_bid(&b, NOOP_JOB("batch", ",\"Network\":{\"Type\":\"HTTP\",\"Domains\":[\"example.com\"]}"),
		   "does not support network type HTTP");
	expect_bid(&b, NOOP_JOB("batch", ",\"Env\":{\"A\":\"env:COD_TEST_X\"}"), NULL);
	expect_bid(&b, NOOP_JOB("batch", ",\"Env\":{\"A\":\"env:HOME\"}"),
		   "env A reads host variable \"HOME\", which Compute.Env.AllowList does not allow");

	b.reject_networked = true;
	expect_bid(&b, NOOP_JOB("batch", ",\"Network\":{\"Type\":\"Full\"}"),
		   "does not accept networked jobs");
	expect_bid(&b, NOOP_JOB("batch", ",\"Network\":{\"Type\":\"None\"}"), NULL);
	b.reject_stateless = true;
	expect_bid(&b, NOOP_JOB("batch", ""), "does not accept jobs without inputs");

	/* No job at all. */
	struct cod_execution bare = {.id = (char *)"e-bare"};
	struct cod_resources need;
	char *reason = NULL;
	assert_false(cod_bidder_bid(&b, &bare, &need, &reason));
	assert_non_null(strstr(reason, "no job"));
	free(reason);
	cod_strlist_release(&publishers);
	cod_strlist_release(&storages);
	cod_strlist_release(&allow);
}

/* --------------------------------------------------------------- noop */

struct noop_case {
	struct cod_task task;
	struct cod_kvlist env;
	struct cod_executor_run run;
	struct cod_error *err;
	int rc;
	int64_t took_ms;
};

static void noop_setup(struct noop_case *nc, const char *params_json, size_t cap)
{
	memset(nc, 0, sizeof(*nc));
	nc->task.engine.type = (char *)"noop";
	nc->task.engine.params = params_json ? json_loads(params_json, 0, NULL) : NULL;
	cod_kvlist_set(&nc->env, "BACALHAU_PARTITION_INDEX", "2");
	cod_kvlist_set(&nc->env, "NAME", "world");
	cod_executor_run_init(&nc->run, cap);
	nc->run.task = &nc->task;
	nc->run.env = &nc->env;
}

static void noop_release(struct noop_case *nc)
{
	json_decref(nc->task.engine.params);
	cod_kvlist_release(&nc->env);
	cod_executor_run_release(&nc->run);
	cod_error_free(nc->err);
}

static void *noop_thread(void *arg)
{
	struct noop_case *nc = arg;
	int64_t t0 = cod_mono_ms();
	nc->rc = cod_executor_noop.run(&nc->run, &nc->err);
	nc->took_ms = cod_mono_ms() - t0;
	return NULL;
}

static void noop_run(struct noop_case *nc)
{
	noop_thread(nc);
}

static void test_noop_executor(void **state)
{
	(void)state;
	struct noop_case nc;

	/* Registry. */
	assert_ptr_equal(cod_executor_find(" NOOP "), &cod_executor_noop);
	assert_null(cod_executor_find("flibble"));
	assert_null(cod_executor_find(NULL));
	struct cod_strlist installed = {0};
	cod_executor_installed(&installed);
	assert_true(installed.n >= 1);
	assert_string_equal(installed.items[0], "noop");
	cod_strlist_release(&installed);
	size_t n;
	assert_non_null(cod_executor_all(&n));
	assert_true(n >= 1);

	/* Nothing: exit code 0, no output. */
	noop_setup(&nc, NULL, 2048);
	noop_run(&nc);
	assert_int_equal(nc.rc, 0);
	assert_int_equal(nc.run.exit_code, 0);
	assert_string_equal(cod_buf_str(&nc.run.out.buf), "");
	noop_release(&nc);

	/* Exit code, ${VAR} substitution, case-insensitive keys. */
	noop_setup(&nc,
		   "{\"exitcode\": 3, \"Stdout\": \"partition=${BACALHAU_PARTITION_INDEX} hello "
		   "${NAME}${MISSING} $NAME ${\", "
		   "\"STDERR\": \"err ${NAME}\"}",
		   2048);
	noop_run(&nc);
	assert_int_equal(nc.rc, 0);
	assert_int_equal(nc.run.exit_code, 3);
	assert_string_equal(cod_buf_str(&nc.run.out.buf), "partition=2 hello world $NAME ${");
	assert_string_equal(cod_buf_str(&nc.run.err.buf), "err world");
	assert_false(nc.run.out.truncated);
	noop_release(&nc);

	/* ExitCode as a string; output beyond the cap is cut and flagged. */
	noop_setup(&nc, "{\"ExitCode\": \"7\", \"Stdout\": \"0123456789abcdef\"}", 8);
	noop_run(&nc);
	assert_int_equal(nc.run.exit_code, 7);
	assert_string_equal(cod_buf_str(&nc.run.out.buf), "01234567");
	assert_true(nc.run.out.truncated);
	noop_release(&nc);

	/* Sleep as a number of seconds and as a duration. */
	noop_setup(&nc, "{\"Sleep\": 0.2}", 2048);
	noop_run(&nc);
	assert_int_equal(nc.rc, 0);
	assert_true(nc.took_ms >= 190);
	noop_release(&nc);
	noop_setup(&nc, "{\"Sleep\": \"150ms\"}", 2048);
	noop_run(&nc);
	assert_int_equal(nc.rc, 0);
	assert_true(nc.took_ms >= 140);
	noop_release(&nc);

	/* A cancel wakes a long sleep at once. */
	noop_setup(&nc, "{\"Sleep\": \"30s\", \"Stdout\": \"never\"}", 2048);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, noop_thread, &nc), 0);
	usleep(100000);
	cod_executor_cancel(&cod_executor_noop, &nc.run);
	pthread_join(t, NULL);
	assert_int_equal(nc.rc, -1);
	assert_string_equal(nc.err->message, "cancelled");
	assert_true(nc.took_ms < 5000);
	assert_string_equal(cod_buf_str(&nc.run.out.buf), "");
	assert_true(cod_executor_cancelled(&nc.run));
	noop_release(&nc);

	/* Cancelled before it starts. */
	noop_setup(&nc, NULL, 2048);
	cod_executor_cancel(&cod_executor_noop, &nc.run);
	noop_run(&nc);
	assert_int_equal(nc.rc, -1);
	noop_release(&nc);

	/* Fail, and the parameter errors. */
	static const struct {
		const char *params, *msg;
	} bad[] = {
	    {"{\"Fail\": \"disk on fire\"}", "disk on fire"},
	    {"{\"Bogus\": 1}",
	     "noop: unknown parameter \"Bogus\"; known: Sleep, ExitCode, Stdout, Stderr, Fail"},
	    {"{\"Sleep\": \"soon\"}", "noop: parameter \"Sleep\": is not a duration"},
	    {"{\"Sleep\": -1}", "noop: parameter \"Sleep\": must be a non-negative number"},
	    {"{\"Sleep\": [1]}", "noop: parameter \"Sleep\": must be a duration string"},
	    {"{\"ExitCode\": \"x\"}", "noop: parameter \"ExitCode\": must be an integer"},
	    {"{\"Stdout\": 5}", "noop: parameter \"Stdout\": must be a string"},
	};
	for (size_t i = 0; i < COD_ARRAY_SIZE(bad); i++) {
		noop_setup(&nc, bad[i].params, 2048);
		noop_run(&nc);
		assert_int_equal(nc.rc, -1);
		if (!strstr(nc.err->message, bad[i].msg))
			fail_msg("case %zu: \"%s\" does not contain \"%s\"", i, nc.err->message, bad[i].msg);
		noop_release(&nc);
	}

	/* The expansion helper on its own. */
	cleanup_free char *x = cod_executor_expand("${A}-${B}-${}-${A", NULL);
	assert_string_equal(x, "--${}-${A");
}

/* -------------------------------------------------------------- store */

static void test_cstore_round_trip(void **state)
{
	(void)state;
	cleanup_free char *dir = new_dir();
	cleanup_free char *path = xasprintf("%s/sub/state.db", dir);
	struct cod_cstore *s = NULL;
	struct cod_error *err = NULL;
	assert_int_equal(cod_cstore_open(path, &s, &err), 0);
	assert_int_equal(cod_cstore_last_orch_seq(s), 0);
	assert_int_equal(cod_cstore_outbox_last(s), 0);

	struct cod_execution *e = make_exec("e-1", NOOP_JOB("batch", ""), COD_DESIRED_PENDING);
	e->compute_state.type = COD_EXEC_ASK_FOR_BID_ACCEPTED;
	e->create_time = 1000;
	struct cod_cstore_write w = {
	    .execution = e, .msg_type = "BidResult", .msg_payload = "{\"A\":1}", .orch_seq = 4};
	assert_int_equal(cod_cstore_write(s, &w, &err), 0);
	assert_int_equal(w.msg_seq, 1);
	struct cod_cstore_write w2 = {.msg_type = "RunResult", .msg_payload = "{\"B\":2}"};
	assert_int_equal(cod_cstore_write(s, &w2, &err), 0);
	assert_int_equal(w2.msg_seq, 2);
	struct cod_cstore_write w3 = {.orch_seq = 5};
	assert_int_equal(cod_cstore_write(s, &w3, &err), 0);
	assert_int_equal(cod_cstore_last_orch_seq(s), 5);

	struct cod_execution *got = NULL;
	assert_int_equal(cod_cstore_get(s, "e-1", &got, &err), 0);
	assert_string_equal(got->id, "e-1");
	assert_int_equal(got->compute_state.type, COD_EXEC_ASK_FOR_BID_ACCEPTED);
	assert_non_null(got->job);
	assert_string_equal(got->job->tasks[0].engine.type, "noop");
	cod_execution_free(got);
	assert_int_equal(cod_cstore_get(s, "e-none", &got, &err), -1);
	assert_int_equal(err->code, COD_E_NOT_FOUND);
	cod_error_free(err);
	err = NULL;

	/* The copy kept of a live execution since its write is what its
	 * document decodes to. */
	struct cod_execution **listed = NULL;
	size_t nlisted = 0;
	assert_int_equal(cod_cstore_list(s, &listed, &nlisted, &err), 0);
	assert_int_equal(nlisted, 1);
	assert_int_equal(cod_cstore_get(s, "e-1", &got, &err), 0);
	cleanup_free char *kept = cod_execution_dumps(got), *decoded = cod_execution_dumps(listed[0]);
	assert_string_equal(kept, decoded);
	assert_true(got->modify_time > 0);
	cod_execution_free(got);
	cod_cstore_list_free(listed, nlisted);

	/* Update in place. */
	e->compute_state.type = COD_EXEC_COMPLETED;
	struct cod_cstore_write w4 = {.execution = e};
	assert_int_equal(cod_cstore_write(s, &w4, &err), 0);
	struct cod_execution **list = NULL;
	size_t n = 0;
	assert_int_equal(cod_cstore_list(s, &list, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(list[0]->compute_state.type, COD_EXEC_COMPLETED);
	cod_cstore_list_free(list, n);

	struct cod_cstore_msg *msgs = NULL;
	assert_int_equal(cod_cstore_outbox_pending(s, 0, 10, &msgs, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(msgs[0].seq, 1);
	assert_string_equal(msgs[0].type, "BidResult");
	assert_string_equal(msgs[1].payload, "{\"B\":2}");
	cod_cstore_msgs_free(msgs, n);
	assert_int_equal(cod_cstore_outbox_ack(s, 1, &err), 0);
	assert_int_equal(cod_cstore_outbox_pending(s, 0, 10, &msgs, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(msgs[0].seq, 2);
	cod_cstore_msgs_free(msgs, n);
	cod_cstore_close(s);

	/* Counters survive a reopen; numbering never goes back. */
	assert_int_equal(cod_cstore_open(path, &s, &err), 0);
	assert_int_equal(cod_cstore_last_orch_seq(s), 5);
	assert_int_equal(cod_cstore_outbox_last(s), 2);
	assert_int_equal(cod_cstore_outbox_ack(s, 2, &err), 0);
	struct cod_cstore_write w5 = {.msg_type = "X", .msg_payload = "{}"};
	assert_int_equal(cod_cstore_write(s, &w5, &err), 0);
	assert_int_equal(w5.msg_seq, 3);

	/* Resume after a handshake. The usual case changes nothing. */
	bool changed = true;
	assert_int_equal(cod_cstore_outbox_resume(s, 2, &changed, &err), 0);
	assert_false(changed);
	assert_int_equal(cod_cstore_outbox_last(s), 3);
	/* The orchestrator knew up to 10 (this store was reset): pending 3
	 * becomes 11. */
	assert_int_equal(cod_cstore_outbox_resume(s, 10, &changed, &err), 0);
	assert_true(changed);
	assert_int_equal(cod_cstore_outbox_last(s), 11);
	assert_int_equal(cod_cstore_outbox_pending(s, 10, 10, &msgs, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(msgs[0].seq, 11);
	assert_string_equal(msgs[0].type, "X");
	cod_cstore_msgs_free(msgs, n);
	/* It lost what it had acknowledged and has only up to 4: the pending
	 * message becomes 5 instead of leaving a hole. */
	struct cod_cstore_write w6 = {.msg_type = "Y", .msg_payload = "{}"};
	assert_int_equal(cod_cstore_write(s, &w6, &err), 0);
	assert_int_equal(w6.msg_seq, 12);
	assert_int_equal(cod_cstore_outbox_resume(s, 4, &changed, &err), 0);
	assert_true(changed);
	assert_int_equal(cod_cstore_outbox_last(s), 6);
	assert_int_equal(cod_cstore_outbox_pending(s, 0, 10, &msgs, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(msgs[0].seq, 5);
	assert_string_equal(msgs[0].type, "X");
	assert_int_equal(msgs[1].seq, 6);
	assert_string_equal(msgs[1].type, "Y");
	cod_cstore_msgs_free(msgs, n);
	/* Nothing pending: numbering continues after what it says it has,
	 * higher or lower. */
	assert_int_equal(cod_cstore_outbox_ack(s, 6, &err), 0);
	assert_int_equal(cod_cstore_outbox_resume(s, 20, &changed, &err), 0);
	assert_int_equal(cod_cstore_outbox_last(s), 20);
	assert_int_equal(cod_cstore_outbox_resume(s, 2, &changed, &err), 0);
	assert_true(changed);
	assert_int_equal(cod_cstore_outbox_last(s), 2);
	cod_cstore_close(s);
	cod_execution_free(e);

	/* A path that cannot be created fails cleanly. */
	assert_int_equal(cod_cstore_open("/proc/no/such/state.db", &s, &err), -1);
	assert_non_null(err);
	cod_error_free(err);
}

/* ------------------------------------------------------------ recovery */

static void put_raw(struct cod_cstore *s, const char *id, const char *type, enum cod_exec_state st)
{
	cleanup_free char *job = xasprintf("{\"Name\":\"t\",\"Type\":\"%s\",\"Tasks\":[{\"Name\":\"main\","
					   "\"Engine\":{\"Type\":\"noop\"},\"Resources\":{\"CPU\":\"1\"}}]}",
					   type);
	struct cod_execution *e = make_exec(id, job, COD_DESIRED_RUNNING);
	e->compute_state.type = (int)st;
	e->allocated.cpu = 1;
	e->alloc_task = xstrdup("main");
	struct cod_cstore_write w = {.execution = e};
	struct cod_error *err = NULL;
	if (cod_cstore_write(s, &w, &err) < 0)
		fail_msg("write: %s", err->message);
	cod_execution_free(e);
}

static void test_recovery(void **state)
{
	(void)state;
	cleanup_free char *dir = new_dir();
	cleanup_free char *db = xasprintf("%s/compute/state.db", dir);
	struct cod_cstore *s = NULL;
	struct cod_error *err = NULL;
	assert_int_equal(cod_cstore_open(db, &s, &err), 0);
	put_raw(s, "e-batch-running", "batch", COD_EXEC_RUNNING);
	put_raw(s, "e-ops-accepted", "ops", COD_EXEC_BID_ACCEPTED);
	put_raw(s, "e-batch-publishing", "batch", COD_EXEC_PUBLISHING);
	put_raw(s, "e-daemon-running", "daemon", COD_EXEC_RUNNING);
	put_raw(s, "e-service-accepted", "service", COD_EXEC_BID_ACCEPTED);
	put_raw(s, "e-batch-bid", "batch", COD_EXEC_ASK_FOR_BID_ACCEPTED);
	put_raw(s, "e-batch-done", "batch", COD_EXEC_COMPLETED);
	cod_cstore_close(s);

	struct cod_config cfg;
	test_config(&cfg, dir);
	struct cod_compute *c = NULL;
	if (cod_compute_open(&cfg, &c, &err) < 0)
		fail_msg("open: %s", err->message);
	assert_string_equal(cod_compute_node_id(c), "n-test");

	const char *failed[] = {"e-batch-running", "e-ops-accepted", "e-batch-publishing"};
	for (size_t i = 0; i < COD_ARRAY_SIZE(failed); i++) {
		struct cod_execution *e = get_exec(c, failed[i]);
		assert_int_equal(e->compute_state.type, COD_EXEC_FAILED);
		assert_string_equal(e->compute_state.message,
				    "node restarted while the execution was running");
		cod_execution_free(e);
	}
	assert_int_equal(exec_state(c, "e-daemon-running"), COD_EXEC_BID_ACCEPTED);
	assert_int_equal(exec_state(c, "e-service-accepted"), COD_EXEC_BID_ACCEPTED);
	assert_int_equal(exec_state(c, "e-batch-bid"), COD_EXEC_ASK_FOR_BID_ACCEPTED);
	assert_int_equal(exec_state(c, "e-batch-done"), COD_EXEC_COMPLETED);
	assert_true(cod_buffer_contains(&c->buffer, "e-daemon-running"));
	assert_true(cod_buffer_contains(&c->buffer, "e-service-accepted"));
	assert_int_equal(c->buffer.n, 2);

	struct outbox o = outbox_after(c, 0);
	assert_int_equal(o.n, 3);
	for (size_t i = 0; i < o.n; i++) {
		assert_string_equal(o.m[i].type, "ComputeError");
		json_t *p = outbox_payload(&o, i);
		assert_string_equal(json_string_value(json_object_get(p, "Message")),
				    "node restarted while the execution was running");
		assert_non_null(json_object_get(p, "ExecutionID"));
		assert_string_equal(json_string_value(json_object_get(p, "JobID")), "j-test");
		json_decref(p);
	}
	cod_cstore_msgs_free(o.m, o.n);

	/* The restarted daemon runs (and, being noop, ends). */
	run_until_idle(c, 5000);
	assert_int_equal(exec_state(c, "e-daemon-running"), COD_EXEC_COMPLETED);
	cod_compute_stop(c);

	/* A second start finds nothing to recover. */
	assert_int_equal(cod_compute_open(&cfg, &c, &err), 0);
	assert_int_equal(c->buffer.n, 0);
	cod_compute_stop(c);
	cod_config_release(&cfg);
}

/* -------------------------------------------------------- inbound seq */

static void test_inbound_seq(void **state)
{
	(void)state;
	cleanup_free char *dir = new_dir();
	struct cod_config cfg;
	test_config(&cfg, dir);
	struct cod_compute *c = NULL;
	struct cod_error *err = NULL;
	if (cod_compute_open(&cfg, &c, &err) < 0)
		fail_msg("open: %s", err->message);

	struct cod_execution *e1 =
	    make_exec("e-1", NOOP_JOB("batch", ",\"Resources\":{\"CPU\":\"1\"}"), COD_DESIRED_PENDING);
	struct cod_execution *e2 = make_exec("e-2",
					     "{\"Name\":\"t\",\"Type\":\"batch\",\"Tasks\":[{\"Name\":"
					     "\"main\",\"Engine\":{\"Type\":\"flibble\"}}]}",
					     COD_DESIRED_PENDING);
	struct cod_execution *e3 = make_exec("e-3", NOOP_JOB("ops", ""), COD_DESIRED_RUNNING);
	struct cod_execution *e9 = make_exec("e-9", NOOP_JOB("batch", ""), COD_DESIRED_PENDING);

	feed(c, ask_for_bid(1, e1));
	assert_int_equal(exec_state(c, "e-1"), COD_EXEC_ASK_FOR_BID_ACCEPTED);
	assert_int_equal(c->last_orch_seq, 1);
	/* A duplicate seq is dropped, whatever it carries. */
	feed(c, ask_for_bid(1, e9));
	assert_int_equal(exec_state(c, "e-9"), -1);
	/* A gap is ignored (and asks for an early heartbeat). */
	c->heartbeat_now = false;
	feed(c, ask_for_bid(3, e3));
	assert_int_equal(exec_state(c, "e-3"), -1);
	assert_true(c->heartbeat_now);
	assert_int_equal(c->last_orch_seq, 1);
	/* Control messages have no place on the data plane. */
	feed(c, simple_msg("BidAccepted", 0, "e-1"));
	assert_int_equal(exec_state(c, "e-1"), COD_EXEC_ASK_FOR_BID_ACCEPTED);

	feed(c, ask_for_bid(2, e2));
	struct cod_execution *got = get_exec(c, "e-2");
	assert_int_equal(got->compute_state.type, COD_EXEC_ASK_FOR_BID_REJECTED);
	assert_string_equal(got->compute_state.message, "node does not support engine \"flibble\"");
	cod_execution_free(got);
	/* Resent, 3 now follows. Desired Running: a direct bid. */
	feed(c, ask_for_bid(3, e3));
	assert_int_equal(exec_state(c, "e-3"), COD_EXEC_BID_ACCEPTED);
	assert_true(cod_buffer_contains(&c->buffer, "e-3"));
	assert_int_equal(c->last_orch_seq, 3);

	/* Repeats for a known execution change nothing. */
	feed(c, ask_for_bid(4, e1));
	assert_int_equal(exec_state(c, "e-1"), COD_EXEC_ASK_FOR_BID_ACCEPTED);
	feed(c, simple_msg("BidAccepted", 5, "e-1"));
	assert_int_equal(exec_state(c, "e-1"), COD_EXEC_BID_ACCEPTED);
	assert_true(cod_buffer_contains(&c->buffer, "e-1"));
	feed(c, simple_msg("BidAccepted", 6, "e-1"));
	assert_int_equal(exec_state(c, "e-1"), COD_EXEC_BID_ACCEPTED);
	assert_int_equal(c->buffer.n, 2);
	/* Cancel takes it out of the queue. */
	feed(c, simple_msg("CancelExecution", 7, "e-1"));
	got = get_exec(c, "e-1");
	assert_int_equal(got->compute_state.type, COD_EXEC_CANCELLED);
	assert_string_equal(got->compute_state.message, "test says so");
	cod_execution_free(got);
	assert_false(cod_buffer_contains(&c->buffer, "e-1"));
	/* A rejection of something already over, an unknown execution, an
	 * unknown type: nothing changes but the seq moves on. */
	feed(c, simple_msg("BidRejected", 8, "e-2"));
	assert_int_equal(exec_state(c, "e-2"), COD_EXEC_ASK_FOR_BID_REJECTED);
	feed(c, simple_msg("CancelExecution", 9, "e-nobody"));
	feed(c, simple_msg("SomethingNew", 10, "e-1"));
	assert_int_equal(c->last_orch_seq, 10);

	/* The outbox: one BidResult per bid, and the confirmation of the
	 * stop of e-1, which the node had accepted to run. */
	struct outbox o = outbox_after(c, 0);
	assert_int_equal(o.n, 4);
	const char *ids[] = {"e-1", "e-2", "e-3"};
	const bool accepted[] = {true, false, true};
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(o.m[i].type, "BidResult");
		assert_int_equal(o.m[i].seq, i + 1);
		json_t *p = outbox_payload(&o, i);
		assert_string_equal(json_string_value(json_object_get(p, "ExecutionID")), ids[i]);
		assert_string_equal(json_string_value(json_object_get(p, "JobID")), "j-test");
		assert_true(json_is_boolean(json_object_get(p, "Accepted")));
		assert_int_equal(json_is_true(json_object_get(p, "Accepted")), accepted[i]);
		if (!accepted[i])
			assert_string_equal(json_string_value(json_object_get(p, "Reason")),
					    "node does not support engine \"flibble\"");
		json_decref(p);
	}
	assert_string_equal(o.m[3].type, "ExecutionProgress");
	json_t *p = outbox_payload(&o, 3);
	assert_string_equal(json_string_value(json_object_get(p, "ExecutionID")), "e-1");
	assert_int_equal(json_integer_value(json_object_get(p, "ComputeState")), COD_EXEC_CANCELLED);
	assert_string_equal(json_string_value(json_object_get(p, "Message")), "test says so");
	json_decref(p);
	cod_cstore_msgs_free(o.m, o.n);
	cod_compute_stop(c);

	/* The processed seq is durable. */
	assert_int_equal(cod_compute_open(&cfg, &c, &err), 0);
	assert_int_equal(c->last_orch_seq, 10);
	/* e-3 was accepted but never ran: an ops execution fails on restart,
	 * which is a fifth message. */
	assert_int_equal(exec_state(c, "e-3"), COD_EXEC_FAILED);
	assert_int_equal(c->outbox_last, 5);
	cod_compute_stop(c);

	cod_execution_free(e1);
	cod_execution_free(e2);
	cod_execution_free(e3);
	cod_execution_free(e9);
	cod_config_release(&cfg);
}

/* ------------------------------------------------------------- runner */

static void test_runner(void **state)
{
	(void)state;
	cleanup_free char *dir = new_dir();
	struct cod_config cfg;
	test_config(&cfg, dir);
	struct cod_compute *c = NULL;
	struct cod_error *err = NULL;
	if (cod_compute_open(&cfg, &c, &err) < 0)
		fail_msg("open: %s", err->message);
	setenv("COD_TEST_HOSTVAR", "from-host", 1);
	/* every phase stored and reported as it comes */
	cfg.compute_phase_report_ms = 0;

	struct cod_execution *ok = make_exec(
	    "e-ok",
	    NOOP_PARAMS("batch",
			"{\"Stdout\":\"${BACALHAU_EXECUTION_ID} ${BACALHAU_JOB_ID} ${BACALHAU_JOB_TYPE} "
			"${BACALHAU_PARTITION_INDEX}/${BACALHAU_PARTITION_COUNT} ${MINE} ${HOSTV}\"}",
			",\"Env\":{\"MINE\":\"x\",\"HOSTV\":\"env:COD_TEST_HOSTVAR\"},"
			"\"Publisher\":{\"Type\":\"noop\"}"),
	    COD_DESIRED_RUNNING);
	ok->partition_index = 1;
	struct cod_execution *exit2 = make_exec(
	    "e-exit", NOOP_PARAMS("batch", "{\"ExitCode\":2,\"Stderr\":\"bad\"}", ""), COD_DESIRED_RUNNING);
	struct cod_execution *boom =
	    make_exec("e-fail", NOOP_PARAMS("ops", "{\"Fail\":\"it broke\"}", ""), COD_DESIRED_RUNNING);
	struct cod_execution *big =
	    make_exec("e-big", NOOP_PARAMS("batch", "{\"Stdout\":\"REPLACE\"}", ""), COD_DESIRED_RUNNING);
	{
		/* 3000 bytes of stdout: cut to 2048 and flagged. */
		char *text = xmalloc(3001);
		memset(text, 'x', 3000);
		text[3000] = '\0';
		json_object_set_new(big->job->tasks[0].engine.params, "Stdout", json_string(text));
		free(text);
	}
	struct cod_execution *slow = make_exec(
	    "e-slow", NOOP_PARAMS("batch", "{\"Sleep\":\"30s\"}", ",\"Timeouts\":{\"ExecutionTimeout\":1}"),
	    COD_DESIRED_RUNNING);
	struct cod_execution *cancel =
	    make_exec("e-cancel", NOOP_PARAMS("batch", "{\"Sleep\":\"30s\"}", ""), COD_DESIRED_RUNNING);

	uint64_t seq = 0;
	feed(c, ask_for_bid(++seq, ok));
	feed(c, ask_for_bid(++seq, exit2));
	feed(c, ask_for_bid(++seq, boom));
	feed(c, ask_for_bid(++seq, big));
	run_until_idle(c, 5000);

	struct cod_execution *e = get_exec(c, "e-ok");
	assert_int_equal(e->compute_state.type, COD_EXEC_COMPLETED);
	assert_string_equal(e->run_output.stdout_text, "e-ok j-test batch 1/3 x from-host");
	assert_int_equal(e->run_output.exit_code, 0);
	assert_string_equal(e->published_result.type, "noop");
	cod_execution_free(e);
	e = get_exec(c, "e-exit");
	assert_int_equal(e->compute_state.type, COD_EXEC_FAILED);
	assert_string_equal(e->compute_state.message, "exit code 2");
	assert_int_equal(e->run_output.exit_code, 2);
	assert_string_equal(e->run_output.stderr_text, "bad");
	cod_execution_free(e);
	e = get_exec(c, "e-fail");
	assert_int_equal(e->compute_state.type, COD_EXEC_FAILED);
	assert_string_equal(e->compute_state.message, "it broke");
	cod_execution_free(e);
	e = get_exec(c, "e-big");
	assert_int_equal(e->compute_state.type, COD_EXEC_COMPLETED);
	assert_int_equal(strlen(e->run_output.stdout_text), COD_RUN_OUTPUT_MAX);
	assert_true(e->run_output.stdout_truncated);
	cod_execution_free(e);

	/* What the orchestrator hears for e-ok: BidResult, Preparing and
	 * Running progress, RunResult. */
	struct outbox o = outbox_after(c, 0);
	size_t seen = 0;
	for (size_t i = 0; i < o.n; i++) {
		json_t *p = outbox_payload(&o, i);
		const char *id = json_string_value(json_object_get(p, "ExecutionID"));
		if (!strcmp(id, "e-ok")) {
			if (seen == 0) {
				assert_string_equal(o.m[i].type, "BidResult");
				assert_true(json_is_true(json_object_get(p, "Accepted")));
			} else if (seen == 1 || seen == 2) {
				assert_string_equal(o.m[i].type, "ExecutionProgress");
				assert_int_equal(json_integer_value(json_object_get(p, "ComputeState")),
						 seen == 1 ? COD_EXEC_PREPARING : COD_EXEC_RUNNING);
			} else {
				assert_string_equal(o.m[i].type, "RunResult");
				json_t *rcr = json_object_get(p, "RunCommandResult");
				assert_string_equal(json_string_value(json_object_get(rcr, "Stdout")),
						    "e-ok j-test batch 1/3 x from-host");
				assert_non_null(json_object_get(rcr, "stderr"));
				assert_int_equal(json_integer_value(json_object_get(rcr, "ExitCode")), 0);
				assert_string_equal(json_string_value(json_object_get(
							json_object_get(p, "PublishResult"), "Type")),
						    "noop");
			}
			seen++;
		}
		if (!strcmp(id, "e-exit") && !strcmp(o.m[i].type, "ComputeError")) {
			assert_string_equal(json_string_value(json_object_get(p, "Message")), "exit code 2");
			json_t *rcr = json_object_get(p, "RunCommandResult");
			assert_int_equal(json_integer_value(json_object_get(rcr, "ExitCode")), 2);
		}
		json_decref(p);
	}
	assert_int_equal(seen, 4);
	uint64_t last = o.m[o.n - 1].seq;
	cod_cstore_msgs_free(o.m, o.n);

	/* ExecutionTimeout cancels and fails; CancelExecution wins over the
	 * runner's own outcome. */
	feed(c, ask_for_bid(++seq, slow));
	feed(c, ask_for_bid(++seq, cancel));
	int64_t t0 = cod_mono_ms();
	for (int i = 0; i < 100 && exec_state(c, "e-cancel") != COD_EXEC_RUNNING; i++) {
		cod_compute_tick(c);
		usleep(10000);
	}
	assert_int_equal(exec_state(c, "e-cancel"), COD_EXEC_RUNNING);
	feed(c, simple_msg("CancelExecution", ++seq, "e-cancel"));
	run_until_idle(c, 10000);
	assert_true(cod_mono_ms() - t0 < 8000);
	e = get_exec(c, "e-slow");
	assert_int_equal(e->compute_state.type, COD_EXEC_FAILED);
	assert_string_equal(e->compute_state.message, "execution timed out after 1s");
	cod_execution_free(e);
	assert_int_equal(exec_state(c, "e-cancel"), COD_EXEC_CANCELLED);
	o = outbox_after(c, last);
	bool timed_out_msg = false;
	for (size_t i = 0; i < o.n; i++) {
		json_t *p = outbox_payload(&o, i);
		const char *id = json_string_value(json_object_get(p, "ExecutionID"));
		if (!strcmp(id, "e-cancel"))
			assert_true(!strcmp(o.m[i].type, "BidResult") ||
				    !strcmp(o.m[i].type, "ExecutionProgress"));
		if (!strcmp(id, "e-slow") && !strcmp(o.m[i].type, "ComputeError")) {
			assert_string_equal(json_string_value(json_object_get(p, "Message")),
					    "execution timed out after 1s");
			timed_out_msg = true;
		}
		json_decref(p);
	}
	assert_true(timed_out_msg);
	last = o.n ? o.m[o.n - 1].seq : last;
	cod_cstore_msgs_free(o.m, o.n);
	assert_int_equal(c->buffer.nrunning, 0);
	assert_true(c->buffer.running.cpu == 0);

	/* Phases wait: an execution over before the delay reports its
	 * result alone; one that lasts reports the phase it is in once the
	 * delay has passed, then its result. */
	struct cod_execution *quick =
	    make_exec("e-quick", NOOP_PARAMS("batch", "{}", ""), COD_DESIRED_RUNNING);
	struct cod_execution *lasting =
	    make_exec("e-lasting", NOOP_PARAMS("batch", "{\"Sleep\":\"600ms\"}", ""), COD_DESIRED_RUNNING);
	cfg.compute_phase_report_ms = 60000;
	feed(c, ask_for_bid(++seq, quick));
	run_until_idle(c, 5000);
	cfg.compute_phase_report_ms = 100;
	feed(c, ask_for_bid(++seq, lasting));
	run_until_idle(c, 10000);
	assert_int_equal(exec_state(c, "e-quick"), COD_EXEC_COMPLETED);
	assert_int_equal(exec_state(c, "e-lasting"), COD_EXEC_COMPLETED);
	o = outbox_after(c, last);
	const char *quick_seen[4] = {0}, *lasting_seen[4] = {0};
	int lasting_phase = -1;
	size_t nquick = 0, nlasting = 0;
	for (size_t i = 0; i < o.n; i++) {
		json_t *p = outbox_payload(&o, i);
		const char *id = json_string_value(json_object_get(p, "ExecutionID"));
		if (!strcmp(id, "e-quick") && nquick < 4)
			quick_seen[nquick++] = o.m[i].type;
		if (!strcmp(id, "e-lasting") && nlasting < 4) {
			if (!strcmp(o.m[i].type, "ExecutionProgress"))
				lasting_phase = (int)json_integer_value(json_object_get(p, "ComputeState"));
			lasting_seen[nlasting++] = o.m[i].type;
		}
		json_decref(p);
	}
	assert_int_equal(nquick, 2);
	assert_string_equal(quick_seen[0], "BidResult");
	assert_string_equal(quick_seen[1], "RunResult");
	/* BidResult, Running (Preparing too, if a slow machine took 100 ms
	 * to prepare), RunResult */
	assert_true(nlasting == 3 || nlasting == 4);
	assert_string_equal(lasting_seen[0], "BidResult");
	assert_string_equal(lasting_seen[nlasting - 2], "ExecutionProgress");
	assert_int_equal(lasting_phase, COD_EXEC_RUNNING);
	assert_string_equal(lasting_seen[nlasting - 1], "RunResult");
	cod_cstore_msgs_free(o.m, o.n);

	cod_compute_stop(c);
	unsetenv("COD_TEST_HOSTVAR");
	cod_execution_free(quick);
	cod_execution_free(lasting);
	cod_execution_free(ok);
	cod_execution_free(exit2);
	cod_execution_free(boom);
	cod_execution_free(big);
	cod_execution_free(slow);
	cod_execution_free(cancel);
	cod_config_release(&cfg);
}

/* ----------------------------------------------- against nats-server */

/* A stand-in orchestrator: answers control requests, records what the
 * node sends. */
struct fake_orch {
	struct cod_nats *nc;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int handshakes, heartbeats, shutdowns, info_updates;
	bool refuse_next_heartbeat;
	uint64_t last_compute_seq; /* highest seq received on .out */
	uint64_t handshake_lcs;	   /* what the next handshake reply says, or UINT64_MAX */
	uint64_t ack_cap;	   /* heartbeats acknowledge at most this */
	struct cod_envelope *out;
	size_t nout, alloc;
};

static void fake_ctrl(void *ctx, const char *subject, const char *reply, const char *data, size_t len)
{
	(void)subject;
	struct fake_orch *f = ctx;
	struct cod_envelope env;
	if (cod_envelope_decode(data, len, &env, NULL) < 0 || !reply)
		return;
	pthread_mutex_lock(&f->lock);
	json_t *resp = NULL;
	if (!strcmp(env.type, COD_MSG_HANDSHAKE)) {
		f->handshakes++;
		json_t *info = json_object_get(env.payload, "NodeInfo");
		assert_string_equal(json_string_value(json_object_get(info, "NodeType")), "Compute");
		uint64_t lcs = f->handshake_lcs != UINT64_MAX ? f->handshake_lcs : f->last_compute_seq;
		f->handshake_lcs = UINT64_MAX;
		resp =
		    json_pack("{s:b, s:s, s:I, s:I}", "Accepted", 1, "Reason", "", "LastComputeSeqNum",
			      (json_int_t)lcs, "LastOrchestratorSeqNum",
			      json_object_get(env.payload, "LastOrchestratorSeqNum")
				  ? json_integer_value(json_object_get(env.payload, "LastOrchestratorSeqNum"))
				  : 0);
	} else if (!strcmp(env.type, COD_MSG_HEARTBEAT)) {
		f->heartbeats++;
		bool refuse = f->refuse_next_heartbeat;
		f->refuse_next_heartbeat = false;
		uint64_t ack = f->last_compute_seq < f->ack_cap ? f->last_compute_seq : f->ack_cap;
		resp = json_pack("{s:b, s:s, s:I}", "Accepted", !refuse, "Reason",
				 refuse ? "who are you" : "", "LastComputeSeqNum", (json_int_t)ack);
	} else if (!strcmp(env.type, COD_MSG_SHUTDOWN_NOTICE)) {
		f->shutdowns++;
		resp = json_object();
	} else if (!strcmp(env.type, COD_MSG_UPDATE_NODE_INFO)) {
		f->info_updates++;
		resp = json_pack("{s:b}", "Accepted", 1);
	}
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	if (resp) {
		/* Replies as envelopes, the way transport.h describes messages. */
		struct cod_envelope r = {.type = env.type, .source = (char *)"orch", .payload = resp};
		size_t n;
		char *text = cod_envelope_encode(&r, &n);
		cod_nats_publish(f->nc, reply, text, n, NULL);
		free(text);
		json_decref(resp);
	}
	cod_envelope_release(&env);
}

static void fake_out(void *ctx, const char *subject, const char *reply, const char *data, size_t len)
{
	(void)subject;
	(void)reply;
	struct fake_orch *f = ctx;
	struct cod_envelope env;
	if (cod_envelope_decode(data, len, &env, NULL) < 0)
		return;
	pthread_mutex_lock(&f->lock);
	if (env.seq == f->last_compute_seq + 1)
		f->last_compute_seq = env.seq;
	COD_GROW(f->out, f->alloc, f->nout + 1);
	f->out[f->nout++] = env;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

/* Wait until a message of type for exec_id arrived (at index >= from). */
static bool fake_wait(struct fake_orch *f, const char *type, const char *exec_id, size_t from, int timeout_ms,
		      size_t *at)
{
	int64_t deadline = cod_mono_ms() + timeout_ms;
	pthread_mutex_lock(&f->lock);
	for (;;) {
		for (size_t i = from; i < f->nout; i++) {
			const char *id = json_string_value(json_object_get(f->out[i].payload, "ExecutionID"));
			if (!strcmp(f->out[i].type, type) && (!exec_id || (id && !strcmp(id, exec_id)))) {
				if (at)
					*at = i;
				pthread_mutex_unlock(&f->lock);
				return true;
			}
		}
		if (cod_mono_ms() > deadline)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&f->cond, &f->lock, &ts);
	}
	pthread_mutex_unlock(&f->lock);
	return false;
}

static bool wait_counter(struct fake_orch *f, int *counter, int want, int timeout_ms)
{
	int64_t deadline = cod_mono_ms() + timeout_ms;
	pthread_mutex_lock(&f->lock);
	while (*counter < want && cod_mono_ms() < deadline) {
		pthread_mutex_unlock(&f->lock);
		usleep(10000);
		pthread_mutex_lock(&f->lock);
	}
	bool ok = *counter >= want;
	pthread_mutex_unlock(&f->lock);
	return ok;
}

static void send_in(struct cod_nats *nc, const char *node, struct cod_envelope env)
{
	cleanup_free char *subj = cod_subject_in(node);
	size_t n;
	cleanup_free char *text = cod_envelope_encode(&env, &n);
	assert_int_equal(cod_nats_publish(nc, subj, text, n, NULL), 0);
	cod_envelope_release(&env);
}

static bool nats_server_installed(void)
{
	return access("/usr/sbin/nats-server", X_OK) == 0 || access("/usr/bin/nats-server", X_OK) == 0 ||
	       system("command -v nats-server >/dev/null 2>&1") == 0;
}

static void test_node_over_nats(void **state)
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
	if (cod_natsd_start("127.0.0.1", 0, "tok3n", natsdir, &d, &err) < 0)
		fail_msg("natsd: %s", err->message);

	struct fake_orch f = {0};
	pthread_mutex_init(&f.lock, NULL);
	pthread_cond_init(&f.cond, NULL);
	f.handshake_lcs = UINT64_MAX;
	f.ack_cap = UINT64_MAX;
	struct cod_nats_opts o = {.url = cod_natsd_url(d), .token = "tok3n", .name = "fake-orch"};
	assert_int_equal(cod_nats_connect(&o, &f.nc, &err), 0);
	assert_int_equal(cod_nats_subscribe(f.nc, COD_SUBJECT_ALL_CTRL, fake_ctrl, &f, &err), 0);
	assert_int_equal(cod_nats_subscribe(f.nc, COD_SUBJECT_ALL_OUT, fake_out, &f, &err), 0);
	assert_int_equal(cod_nats_flush(f.nc, 2000, &err), 0);

	struct cod_config cfg;
	test_config(&cfg, dir);
	assert_int_equal(cod_config_set(&cfg, "Compute.Orchestrators", cod_natsd_url(d), "test", &err), 0);
	assert_int_equal(cod_config_set(&cfg, "Compute.Heartbeat.Interval", "200ms", "test", &err), 0);
	assert_int_equal(cod_config_set(&cfg, "Compute.PhaseReportDelay", "1m", "test", &err), 0);
	assert_int_equal(cod_config_set(&cfg, "Compute.Heartbeat.InfoUpdateInterval", "300ms", "test", &err),
			 0);

	/* A wrong token stops the start with a clear error. */
	struct cod_compute *c = NULL;
	assert_int_equal(cod_config_set(&cfg, "Compute.Auth.Token", "wrong", "test", &err), 0);
	assert_int_equal(cod_compute_start(&cfg, &c, &err), -1);
	assert_null(c);
	assert_int_equal(err->code, COD_E_UNAUTHORIZED);
	assert_non_null(strstr(err->message, "compute node \"n-test\""));
	assert_non_null(strstr(err->message, "refused the token"));
	assert_non_null(strstr(err->hint, "Compute.Auth.Token"));
	cod_error_free(err);
	err = NULL;

	assert_int_equal(cod_config_set(&cfg, "Compute.Auth.Token", "tok3n", "test", &err), 0);
	if (cod_compute_start(&cfg, &c, &err) < 0)
		fail_msg("start: %s", err->message);
	assert_string_equal(cod_compute_url(c), cod_natsd_url(d));
	assert_true(wait_counter(&f, &f.handshakes, 1, 5000));
	assert_true(wait_counter(&f, &f.heartbeats, 1, 5000));
	assert_true(wait_counter(&f, &f.info_updates, 1, 5000));

	/* A batch bid, accepted by the orchestrator, runs to the end. */
	struct cod_execution *e1 = make_exec(
	    "e-n1", NOOP_PARAMS("batch", "{\"Stdout\":\"hi ${BACALHAU_JOB_ID}\"}", ""), COD_DESIRED_PENDING);
	send_in(f.nc, "n-test", ask_for_bid(1, e1));
	size_t at = 0;
	assert_true(fake_wait(&f, "BidResult", "e-n1", 0, 5000, &at));
	pthread_mutex_lock(&f.lock);
	assert_int_equal(f.out[at].seq, 1);
	assert_string_equal(f.out[at].source, "n-test");
	assert_true(json_is_true(json_object_get(f.out[at].payload, "Accepted")));
	pthread_mutex_unlock(&f.lock);
	send_in(f.nc, "n-test", simple_msg("BidAccepted", 2, "e-n1"));
	assert_true(fake_wait(&f, "RunResult", "e-n1", 0, 5000, &at));
	pthread_mutex_lock(&f.lock);
	json_t *rcr = json_object_get(f.out[at].payload, "RunCommandResult");
	assert_string_equal(json_string_value(json_object_get(rcr, "Stdout")), "hi j-test");
	/* BidResult, RunResult: over within a minute, its phases are not
	 * reported */
	assert_int_equal(f.out[at].seq, 2);
	pthread_mutex_unlock(&f.lock);

	/* The heartbeat reply acknowledges: the node's outbox empties. */
	for (int i = 0; i < 300; i++) {
		pthread_mutex_lock(&c->lock);
		uint64_t acked = c->acked_seq;
		pthread_mutex_unlock(&c->lock);
		if (acked >= 2)
			break;
		usleep(10000);
	}
	struct outbox ob = outbox_after(c, 0);
	assert_int_equal(ob.n, 0);
	cod_cstore_msgs_free(ob.m, ob.n);

	/* The orchestrator stops acknowledging, then forgets the node:
	 * handshake again and resend after what it says it has. */
	pthread_mutex_lock(&f.lock);
	f.ack_cap = 2;
	pthread_mutex_unlock(&f.lock);
	struct cod_execution *e2 = make_exec(
	    "e-n2", NOOP_PARAMS("ops", "{\"Sleep\":\"30s\"}", ",\"Timeouts\":{\"ExecutionTimeout\":1}"),
	    COD_DESIRED_RUNNING);
	send_in(f.nc, "n-test", ask_for_bid(3, e2));
	assert_true(fake_wait(&f, "ComputeError", "e-n2", 0, 8000, &at));
	pthread_mutex_lock(&f.lock);
	assert_string_equal(json_string_value(json_object_get(f.out[at].payload, "Message")),
			    "execution timed out after 1s");
	size_t mark = f.nout;
	f.handshake_lcs = 2;
	f.refuse_next_heartbeat = true;
	pthread_mutex_unlock(&f.lock);
	assert_true(wait_counter(&f, &f.handshakes, 2, 5000));
	/* Messages 3.. come again: the BidResult of e-n2 first. */
	assert_true(fake_wait(&f, "BidResult", "e-n2", mark, 5000, &at));
	pthread_mutex_lock(&f.lock);
	assert_int_equal(f.out[at].seq, 3);
	pthread_mutex_unlock(&f.lock);

	/* Stop: a ShutdownNotice reaches the orchestrator. */
	cod_compute_stop(c);
	assert_true(wait_counter(&f, &f.shutdowns, 1, 2000));

	cod_nats_close(f.nc);
	for (size_t i = 0; i < f.nout; i++)
		cod_envelope_release(&f.out[i]);
	free(f.out);
	pthread_mutex_destroy(&f.lock);
	pthread_cond_destroy(&f.cond);

	/* With no server at all the start fails with a network error. */
	cod_natsd_stop(d);
	assert_int_equal(cod_config_set(&cfg, "Compute.Orchestrators", "nats://127.0.0.1:1", "test", &err),
			 0);
	assert_int_equal(cod_compute_start(&cfg, &c, &err), -1);
	assert_int_equal(err->code, COD_E_NETWORK);
	assert_non_null(strstr(err->message, "nats://127.0.0.1:1"));
	cod_error_free(err);

	cod_execution_free(e1);
	cod_execution_free(e2);
	cod_config_release(&cfg);
}

/* --------------------------------------------------------------- main */

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmp_root) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	cod_nats_shutdown_library();
	tmpdir_remove(tmp_root);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_capacity_allocate),
	    cmocka_unit_test(test_capacity_gpus),
	    cmocka_unit_test(test_resources_math),
	    cmocka_unit_test(test_buffer_priority),
	    cmocka_unit_test(test_buffer_skip_ahead),
	    cmocka_unit_test(test_bidder),
	    cmocka_unit_test(test_noop_executor),
	    cmocka_unit_test(test_cstore_round_trip),
	    cmocka_unit_test(test_recovery),
	    cmocka_unit_test(test_inbound_seq),
	    cmocka_unit_test(test_runner),
	    cmocka_unit_test(test_node_over_nats),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
