/*
 * bench_client.c - load and timing client for `make bench` (bench/run.sh).
 *
 *   bench_client alive URL N                REST round trip floor (GET /agent/alive)
 *   bench_client latency URL N              noop job submit -> Completed, one at a time
 *   bench_client throughput URL N CLIENTS   N noop jobs from CLIENTS threads; first submit -> last done
 *   bench_client api URL N                  first page of the job list, and job describe
 *   bench_client scheduler EXECS NODES DIR  EXECS executions over NODES simulated nodes, store included
 *   bench_client populate DIR N             write N completed jobs straight into a store
 *   bench_client runtime BUNDLE N PAR DIR   N runs of BUNDLE by the OCI runtime alone, PAR at once
 *
 * Every mode prints one JSON object on stdout. Times are wall clock (ms).
 */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/mem.h"
#include "common/util.h"
#include "config/config.h"
#include "executor/oci/oci.h"
#include "model/model.h"
#include "orchestrator/scheduler.h"
#include "store/store.h"
#include "store/wal_vfs.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static size_t sink(char *p, size_t s, size_t n, void *u)
{
	cod_buf_add(u, p, s * n);
	return s * n;
}

struct http {
	CURL *c;
	struct curl_slist *hdr;
	struct cod_buf body;
};

static void http_init(struct http *h)
{
	h->c = curl_easy_init();
	h->hdr = curl_slist_append(NULL, "Content-Type: application/json");
	cod_buf_init(&h->body, 0);
	curl_easy_setopt(h->c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(h->c, CURLOPT_WRITEDATA, &h->body);
	curl_easy_setopt(h->c, CURLOPT_HTTPHEADER, h->hdr);
	curl_easy_setopt(h->c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->c, CURLOPT_TCP_NODELAY, 1L);
}

static void http_release(struct http *h)
{
	curl_easy_cleanup(h->c);
	curl_slist_free_all(h->hdr);
	cod_buf_release(&h->body);
}

/* Returns the HTTP status; the body is in h->body. */
static long call(struct http *h, const char *method, const char *url, const char *data)
{
	cod_buf_reset(&h->body);
	curl_easy_setopt(h->c, CURLOPT_URL, url);
	curl_easy_setopt(h->c, CURLOPT_CUSTOMREQUEST, method);
	if (data) {
		curl_easy_setopt(h->c, CURLOPT_POSTFIELDS, data);
		curl_easy_setopt(h->c, CURLOPT_POSTFIELDSIZE, (long)strlen(data));
	} else {
		curl_easy_setopt(h->c, CURLOPT_POSTFIELDS, NULL);
		curl_easy_setopt(h->c, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(h->c, CURLOPT_CUSTOMREQUEST, method);
	}
	long status = 0;
	if (curl_easy_perform(h->c) != CURLE_OK)
		return -1;
	curl_easy_getinfo(h->c, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

static const char job_body[] = "{\"Job\": {\"Type\": \"batch\", \"Tasks\": [{\"Name\": \"main\", "
			       "\"Engine\": {\"Type\": \"noop\"}}]}}";

static char *submit(struct http *h, const char *base)
{
	char url[512];
	snprintf(url, sizeof(url), "%s/api/v1/orchestrator/jobs", base);
	/* BENCH_JOB_BODY: another job to submit (e.g. a container job) */
	const char *body = getenv("BENCH_JOB_BODY");
	long status = call(h, "PUT", url, body && *body ? body : job_body);
	if (status != 200) {
		if (status < 0)
			fprintf(stderr, "bench_client: submit got no answer from %s\n", url);
		else
			fprintf(stderr, "bench_client: submit answered %ld: %.300s\n", status, cod_buf_str(&h->body));
		return NULL;
	}
	json_t *v = json_loads(cod_buf_str(&h->body), 0, NULL);
	const char *id = json_string_value(json_object_get(v, "JobID"));
	char *out = id ? xstrdup(id) : NULL;
	json_decref(v);
	return out;
}

/* Poll until terminal; returns the state and the job's ModifyTime. */
static const char *wait_done(struct http *h, const char *base, const char *id, int64_t *modify_ns, double pause_ms)
{
	char url[512];
	snprintf(url, sizeof(url), "%s/api/v1/orchestrator/jobs/%s", base, id);
	double deadline = now_ms() + 120000;
	while (now_ms() < deadline) {
		if (call(h, "GET", url, NULL) == 200) {
			json_t *v = json_loads(cod_buf_str(&h->body), 0, NULL);
			json_t *job = json_object_get(v, "Job");
			const char *st = json_string_value(json_object_get(json_object_get(job, "State"), "StateType"));
			const char *res = NULL;
			if (st && !strcmp(st, "Completed"))
				res = "Completed";
			else if (st && (!strcmp(st, "Failed") || !strcmp(st, "Stopped"))) {
				res = "Failed";
				const char *why =
				    json_string_value(json_object_get(json_object_get(job, "State"), "Message"));
				fprintf(stderr, "bench_client: job %s %s: %.300s\n", id, st, why ? why : "");
			}
			if (res && modify_ns)
				*modify_ns = json_integer_value(json_object_get(job, "ModifyTime"));
			json_decref(v);
			if (res)
				return res;
		}
		struct timespec ts = {0, (long)(pause_ms * 1e6)};
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "bench_client: job %s did not end within 120 s\n", id);
	return "Timeout";
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void print_stats(const char *what, double *v, size_t n, int failures)
{
	qsort(v, n, sizeof(double), cmp_double);
	double p50 = n ? v[n / 2] : 0, p99 = n ? v[(size_t)((double)(n - 1) * 0.99)] : 0;
	printf("{\"what\": \"%s\", \"samples\": %zu, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"min_ms\": %.3f, "
	       "\"max_ms\": %.3f, \"failures\": %d}\n",
	       what, n, p50, p99, n ? v[0] : 0, n ? v[n - 1] : 0, failures);
}

static int mode_alive(const char *base, int n)
{
	struct http h;
	http_init(&h);
	double *v = xcalloc((size_t)n, sizeof(double));
	char url[512];
	snprintf(url, sizeof(url), "%s/api/v1/agent/alive", base);
	int fails = 0;
	for (int i = 0; i < n; i++) {
		double t0 = now_ms();
		if (call(&h, "GET", url, NULL) != 200)
			fails++;
		v[i] = now_ms() - t0;
	}
	print_stats("alive", v, (size_t)n, fails);
	free(v);
	http_release(&h);
	return 0;
}

static int mode_latency(const char *base, int n)
{
	struct http h;
	http_init(&h);
	double *v = xcalloc((size_t)n, sizeof(double));
	int fails = 0;
	size_t k = 0;
	for (int i = 0; i < n; i++) {
		double t0 = now_ms();
		char *id = submit(&h, base);
		if (!id) {
			fails++;
			continue;
		}
		const char *st = wait_done(&h, base, id, NULL, 0.2);
		if (strcmp(st, "Completed"))
			fails++;
		else
			v[k++] = now_ms() - t0;
		free(id);
	}
	print_stats("latency", v, k, fails);
	free(v);
	http_release(&h);
	return 0;
}

struct tp_arg {
	const char *base;
	int count;
	char **ids;
	int fails;
	int64_t last_ns; /* latest completion (job ModifyTime) seen */
	double *submit_ms; /* each submission's round trip */
};

static void *tp_submit(void *p)
{
	struct tp_arg *a = p;
	struct http h;
	http_init(&h);
	for (int i = 0; i < a->count; i++) {
		double t0 = now_ms();
		a->ids[i] = submit(&h, a->base);
		a->submit_ms[i] = now_ms() - t0;
		if (!a->ids[i])
			a->fails++;
	}
	http_release(&h);
	return NULL;
}

/* One watcher, as Slurm's side is one squeue loop: each job in turn until
 * it is done (a job already done costs one request). */
static void tp_wait(struct tp_arg *args, int clients)
{
	struct http h;
	http_init(&h);
	for (int c = 0; c < clients; c++) {
		struct tp_arg *a = &args[c];
		for (int i = 0; i < a->count; i++) {
			if (!a->ids[i])
				continue;
			int64_t m = 0;
			if (strcmp(wait_done(&h, a->base, a->ids[i], &m, 50), "Completed"))
				a->fails++; /* wait_done said why */
			if (m > a->last_ns)
				a->last_ns = m;
		}
	}
	http_release(&h);
}

static int mode_throughput(const char *base, int n, int clients)
{
	struct tp_arg *args = xcalloc((size_t)clients, sizeof(*args));
	pthread_t *t = xcalloc((size_t)clients, sizeof(*t));
	int64_t start_ns = cod_now_ns();
	for (int c = 0; c < clients; c++) {
		args[c].base = base;
		args[c].count = n / clients + (c < n % clients);
		args[c].ids = xcalloc((size_t)args[c].count + 1, sizeof(char *));
		args[c].submit_ms = xcalloc((size_t)args[c].count + 1, sizeof(double));
		pthread_create(&t[c], NULL, tp_submit, &args[c]);
	}
	for (int c = 0; c < clients; c++)
		pthread_join(t[c], NULL);
	int64_t submitted_ns = cod_now_ns();
	tp_wait(args, clients);
	int fails = 0;
	int64_t last = 0;
	double *sub = xcalloc((size_t)n + 1, sizeof(double));
	size_t nsub = 0;
	for (int c = 0; c < clients; c++) {
		for (int i = 0; i < args[c].count; i++)
			sub[nsub++] = args[c].submit_ms[i];
		free(args[c].submit_ms);
		if (args[c].last_ns > last)
			last = args[c].last_ns;
		fails += args[c].fails;
		for (int i = 0; i < args[c].count; i++)
			free(args[c].ids[i]);
		free(args[c].ids);
	}
	double secs = (double)(last - start_ns) / 1e9;
	qsort(sub, nsub, sizeof(double), cmp_double);
	printf("{\"what\": \"throughput\", \"jobs\": %d, \"clients\": %d, \"submit_s\": %.3f, \"seconds\": %.3f, "
	       "\"jobs_per_s\": %.1f, \"failures\": %d, \"submit_p50_ms\": %.3f, \"submit_p99_ms\": %.3f}\n",
	       n, clients, (double)(submitted_ns - start_ns) / 1e9, secs, secs > 0 ? n / secs : 0, fails,
	       nsub ? sub[nsub / 2] : 0, nsub ? sub[(size_t)((double)(nsub - 1) * 0.99)] : 0);
	free(sub);
	free(args);
	free(t);
	return 0;
}

static int mode_api(const char *base, int n)
{
	struct http h;
	http_init(&h);
	double *v = xcalloc((size_t)n, sizeof(double));
	double *d = xcalloc((size_t)n, sizeof(double));
	char url[512];
	snprintf(url, sizeof(url), "%s/api/v1/orchestrator/jobs?limit=10&reverse=true", base);
	int fails = 0;
	char *id = NULL;
	for (int i = 0; i < n; i++) {
		double t0 = now_ms();
		if (call(&h, "GET", url, NULL) != 200)
			fails++;
		v[i] = now_ms() - t0;
		if (!id) {
			json_t *j = json_loads(cod_buf_str(&h.body), 0, NULL);
			const char *s = json_string_value(json_object_get(json_array_get(json_object_get(j, "Items"), 0), "ID"));
			id = s ? xstrdup(s) : NULL;
			json_decref(j);
		}
	}
	print_stats("list_first_page", v, (size_t)n, fails);
	fails = 0;
	snprintf(url, sizeof(url), "%s/api/v1/orchestrator/jobs/%s?include=history,executions", base, id ? id : "x");
	for (int i = 0; i < n; i++) {
		double t0 = now_ms();
		if (call(&h, "GET", url, NULL) != 200)
			fails++;
		d[i] = now_ms() - t0;
	}
	print_stats("describe", d, (size_t)n, fails);
	free(id);
	free(v);
	free(d);
	http_release(&h);
	return 0;
}

/* ---- in-process: scheduler with the store ---- */

static struct cod_node_state *sim_node(int i)
{
	struct cod_node_state *n = xcalloc(1, sizeof(*n));
	n->info.node_id = xasprintf("sim-%05d", i);
	n->info.node_type = xstrdup("Compute");
	cod_kvlist_set(&n->info.labels, "zone", i % 2 ? "a" : "b");
	cod_strlist_add(&n->info.compute.engines, "noop");
	cod_strlist_add(&n->info.compute.publishers, "noop");
	struct cod_resources cap = {.cpu = 16, .memory = 64ULL << 30, .disk = 1ULL << 40, .gpu = 0};
	n->info.compute.max_capacity = cap;
	n->info.compute.available_capacity = cap;
	n->info.compute.max_job_requirements = cap;
	n->membership = COD_NODE_APPROVED;
	n->connection = COD_NODE_CONNECTED;
	return n;
}

static int mode_scheduler(int execs, int nnodes, const char *dir)
{
	struct cod_store *store = NULL;
	struct cod_error *err = NULL;
	cleanup_free char *db = xasprintf("%s/sched.db", dir);
	if (cod_store_open(db, &store, &err) < 0) {
		fprintf(stderr, "store: %s\n", err->message);
		return 1;
	}
	struct cod_node_state **nodes = xcalloc((size_t)nnodes, sizeof(*nodes));
	for (int i = 0; i < nnodes; i++)
		nodes[i] = sim_node(i);
	int per_job = 1000;
	int jobs = execs / per_job;
	struct cod_sched_config cfg = {.queue_backoff_ms = 60000, .retry_attempts = 3, .oversubscription = 1.0};
	double sched_ms = 0, store_ms = 0;
	long placed = 0;
	struct cod_wal_vfs_stats wal0, wal1;
	cod_wal_vfs_stats(&wal0);
	double t0 = now_ms();
	for (int j = 0; j < jobs; j++) {
		struct cod_job *job = xcalloc(1, sizeof(*job));
		job->type = COD_JOB_BATCH;
		job->count = per_job;
		job->count_set = true;
		job->namespace_ = xstrdup("default");
		job->ntasks = 1;
		job->tasks = xcalloc(1, sizeof(struct cod_task));
		job->tasks[0].name = xstrdup("main");
		job->tasks[0].engine.type = xstrdup("noop");
		job->tasks[0].resources.cpu = xstrdup("100m");
		job->tasks[0].resources.memory = xstrdup("64Mb");
		struct cod_submit_result sr = {0};
		if (cod_store_submit_job(store, job, false, NULL, NULL, &sr, &err) < 0) {
			fprintf(stderr, "submit: %s\n", err->message);
			return 1;
		}
		struct cod_evaluation ev = {.id = sr.eval_id, .job_id = job->id, .triggered_by = (char *)"job-register",
					    .type = (char *)"batch", .status = (char *)"pending"};
		struct cod_sched_input in = {.eval = &ev, .job = job, .nodes = nodes, .nnodes = (size_t)nnodes,
					     .now = cod_now_ns(), .seed = (uint64_t)j, .cfg = &cfg};
		struct cod_plan plan = {0};
		double s0 = now_ms();
		if (cod_scheduler_process(&in, &plan, &err) < 0) {
			fprintf(stderr, "schedule: %s\n", err->message);
			return 1;
		}
		double s1 = now_ms();
		struct cod_store_tx *tx = NULL;
		cod_store_begin(store, &tx, &err);
		for (size_t i = 0; i < plan.n_new; i++) {
			cod_store_tx_put_execution(tx, plan.new_execs[i], NULL);
			cod_store_tx_outbox_append(tx, plan.new_execs[i]->node_id, "AskForBid", "{}", NULL, NULL);
		}
		if (cod_store_commit(tx, &err) < 0) {
			fprintf(stderr, "commit: %s\n", err->message);
			return 1;
		}
		store_ms += now_ms() - s1;
		sched_ms += s1 - s0;
		placed += (long)plan.n_new;
		cod_plan_release(&plan);
		cod_submit_result_release(&sr);
		cod_job_free(job);
	}
	double total = now_ms() - t0;
	cod_wal_vfs_stats(&wal1);
	printf("{\"what\": \"scheduler\", \"placements\": %ld, \"nodes\": %d, \"seconds\": %.3f, "
	       "\"placements_per_s\": %.0f, \"scheduler_s\": %.3f, \"store_s\": %.3f, "
	       "\"wal_writes_per_plan\": %.0f, \"wal_write_calls_per_plan\": %.0f}\n",
	       placed, nnodes, total / 1e3, placed / (total / 1e3), sched_ms / 1e3, store_ms / 1e3,
	       jobs ? (double)(wal1.writes - wal0.writes) / jobs : 0,
	       jobs ? (double)(wal1.syscalls - wal0.syscalls) / jobs : 0);
	for (int i = 0; i < nnodes; i++)
		cod_node_free(nodes[i]);
	free(nodes);
	cod_store_close(store);
	return 0;
}

static int mode_populate(const char *dir, int n)
{
	struct cod_store *store = NULL;
	struct cod_error *err = NULL;
	cleanup_free char *db = xasprintf("%s/orchestrator/state.db", dir);
	if (cod_store_open(db, &store, &err) < 0) {
		fprintf(stderr, "store: %s\n", err->message);
		return 1;
	}
	double t0 = now_ms();
	for (int i = 0; i < n; i++) {
		struct cod_job *job = xcalloc(1, sizeof(*job));
		job->type = COD_JOB_BATCH;
		job->count = 1;
		job->namespace_ = xstrdup("default");
		job->ntasks = 1;
		job->tasks = xcalloc(1, sizeof(struct cod_task));
		job->tasks[0].name = xstrdup("main");
		job->tasks[0].engine.type = xstrdup("noop");
		struct cod_submit_result sr = {0};
		if (cod_store_submit_job(store, job, false, NULL, NULL, &sr, &err) < 0) {
			fprintf(stderr, "submit: %s\n", err->message);
			return 1;
		}
		struct cod_store_tx *tx = NULL;
		cod_store_begin(store, &tx, NULL);
		cod_store_tx_set_job_state(tx, job->id, COD_JOB_COMPLETED, "", 0, NULL);
		struct cod_evaluation *ev = NULL;
		if (cod_store_get_evaluation(store, sr.eval_id, &ev, NULL) == 0) {
			free(ev->status);
			ev->status = xstrdup("complete");
			cod_store_tx_put_evaluation(tx, ev, NULL);
			cod_evaluation_free(ev);
		}
		cod_store_commit(tx, NULL);
		cod_submit_result_release(&sr);
		cod_job_free(job);
	}
	printf("{\"what\": \"populate\", \"jobs\": %d, \"seconds\": %.3f}\n", n, (now_ms() - t0) / 1e3);
	cod_store_close(store);
	return 0;
}

/* The OCI runtime alone: what it can start per second on this machine,
 * with none of cod's work around it, started the way a compute node
 * starts it (the node's spawn, its sealed copy of the runtime, a cgroup
 * per container and its removal). Each worker has its own bundle
 * directory (the runtime writes its pid file and log there) over
 * BUNDLE's root file system. */
struct rt_arg {
	const char *bundle; /* this worker's */
	int *next, n, fails;
	pthread_mutex_t *lock;
};

static void rt_discard(void *arg, int stream, const char *data, size_t len)
{
	(void)arg, (void)stream, (void)data, (void)len;
}

static void *rt_worker(void *p)
{
	struct rt_arg *a = p;
	cleanup_free char *cfg_path = xasprintf("%s/config.json", a->bundle);
	cleanup_json json_t *cfg = json_load_file(cfg_path, 0, NULL);
	for (;;) {
		pthread_mutex_lock(a->lock);
		int i = (*a->next)++;
		pthread_mutex_unlock(a->lock);
		if (i >= a->n)
			break;
		char id[64];
		snprintf(id, sizeof(id), "bench-rt-%d-%d", (int)getpid(), i);
		struct cod_oci_limits limits = {0};
		cleanup_free char *cg = cod_oci_cgroup_prepare(id, &limits);
		json_object_set_new(json_object_get(cfg, "linux"), "cgroupsPath", json_string(cg));
		if (!cfg || json_dump_file(cfg, cfg_path, 0) < 0) {
			a->fails++;
			cod_oci_container_cleanup(id);
			continue;
		}
		struct cod_oci_container *c = cod_oci_container_new(id, a->bundle);
		struct cod_oci_result res;
		struct cod_error *err = NULL;
		if (cod_oci_container_run(c, &limits, rt_discard, NULL, &res, &err) < 0 ||
		    res.outcome != COD_OCI_EXITED || res.exit_code != 0) {
			if (a->fails++ == 0)
				fprintf(stderr, "runtime: %s\n",
					err	      ? err->message
					: res.message ? res.message
						      : "the process failed");
		}
		cod_error_free(err);
		free(res.message);
		cod_oci_container_cleanup(id);
		cod_oci_container_free(c);
	}
	return NULL;
}

static int mode_runtime(const char *bundle, int n, int par, const char *dir)
{
	struct cod_config cfg;
	cod_config_init(&cfg);
	free(cfg.data_dir);
	cfg.data_dir = xstrdup(dir);
	struct cod_error *err = NULL;
	if (cod_oci_configure(&cfg, &err) < 0 || !cod_oci_settings()->runtime_path) {
		fprintf(stderr, "runtime: %s\n", err ? err->message : cod_oci_settings()->runtime_problem);
		cod_error_free(err);
		cod_config_release(&cfg);
		return 1;
	}
	cleanup_free char *src = xasprintf("%s/config.json", bundle);
	cleanup_json json_t *spec = json_load_file(src, 0, NULL);
	char root[4096];
	cleanup_free char *rootfs = xasprintf("%s/rootfs", bundle);
	if (!spec || !realpath(rootfs, root)) {
		fprintf(stderr, "runtime: %s: no config.json or rootfs\n", bundle);
		cod_config_release(&cfg);
		return 1;
	}
	json_object_set_new(json_object_get(spec, "root"), "path", json_string(root));
	struct rt_arg *args = xcalloc((size_t)par, sizeof(*args));
	pthread_t *t = xcalloc((size_t)par, sizeof(*t));
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	int next = 0, fails = 0;
	for (int w = 0; w < par; w++) {
		char *d = xasprintf("%s/bundle-%d", dir, w);
		cleanup_free char *f = xasprintf("%s/config.json", d);
		if (cod_mkdir_p(d, 0755, NULL) < 0 || json_dump_file(spec, f, 0) < 0) {
			fprintf(stderr, "runtime: cannot write %s\n", f);
			exit(1);
		}
		args[w] = (struct rt_arg){.bundle = d, .next = &next, .n = n, .lock = &lock};
	}
	double t0 = now_ms();
	for (int w = 0; w < par; w++)
		pthread_create(&t[w], NULL, rt_worker, &args[w]);
	for (int w = 0; w < par; w++) {
		pthread_join(t[w], NULL);
		fails += args[w].fails;
		free((char *)args[w].bundle);
	}
	double secs = (now_ms() - t0) / 1e3;
	printf("{\"what\": \"runtime\", \"runtime\": \"%s\", \"runs\": %d, \"parallel\": %d, "
	       "\"seconds\": %.3f, \"runs_per_s\": %.1f, \"failures\": %d}\n",
	       cod_oci_settings()->runtime_name, n, par, secs, secs > 0 ? n / secs : 0, fails);
	free(args);
	free(t);
	cod_oci_reset();
	cod_config_release(&cfg);
	return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: see the comment at the top of bench/bench_client.c\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = 2;
	const char *mode = argv[1];
	if (!strcmp(mode, "alive") && argc == 4)
		rc = mode_alive(argv[2], atoi(argv[3]));
	else if (!strcmp(mode, "latency") && argc == 4)
		rc = mode_latency(argv[2], atoi(argv[3]));
	else if (!strcmp(mode, "throughput") && argc == 5)
		rc = mode_throughput(argv[2], atoi(argv[3]), atoi(argv[4]));
	else if (!strcmp(mode, "api") && argc == 4)
		rc = mode_api(argv[2], atoi(argv[3]));
	else if (!strcmp(mode, "scheduler") && argc == 5)
		rc = mode_scheduler(atoi(argv[2]), atoi(argv[3]), argv[4]);
	else if (!strcmp(mode, "populate") && argc == 4)
		rc = mode_populate(argv[2], atoi(argv[3]));
	else if (!strcmp(mode, "runtime") && argc == 6)
		rc = mode_runtime(argv[2], atoi(argv[3]), atoi(argv[4]), argv[5]);
	else
		fprintf(stderr, "bad arguments for mode \"%s\"\n", mode);
	curl_global_cleanup();
	return rc;
}
