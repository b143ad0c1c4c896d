/*
 * rank.c - node selection: the chain of rankers that decides which compute
 * nodes may run a job and which of them are best (reference/bacalhau.md
 * §1.3 "Node selection"; docs/scheduler.md lists every ranker's points).
 *
 * A node is ranked by every ranker in turn; the first ranker that finds it
 * unsuitable stops the chain with rank -1 and its reason. Otherwise the
 * ranks add up. The result is pure: no clock, no global randomness (the
 * jitter comes from a PRNG seeded by the input's seed and the node ID).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/mem.h"
#include "common/util.h"
#include "orchestrator/scheduler.h"
#include "storage/storage.h"
#include "common/banned.h"

#define FAVOUR_PREFIX "favour_"

/* Points, documented in docs/scheduler.md. */
enum {
	POINTS_ENGINE = 10,
	POINTS_PUBLISHER = 10,
	POINTS_STORAGE = 10,
	POINTS_LABELS = 10,
	POINTS_FAVOUR = 10,
	POINTS_NEVER_RAN = 30,
	POINTS_CAPACITY = 80,
	POINTS_QUEUE = 20,
	JITTER_RANGE = 10,
	/* data locality: a node holding all of the job's inputs that any
	 * node holds outranks every difference in capacity and queue */
	POINTS_LOCALITY = 150,
};

/* A ranker's verdict on one node. */
struct verdict {
	int points;
	char *reason; /* set when unsuitable */
};

static __attribute__((format(printf, 2, 3))) int unsuitable(struct verdict *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	v->reason = xvasprintf(fmt, ap);
	va_end(ap);
	return -1;
}

static bool list_has(const struct cod_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->items[i] && !strcasecmp(l->items[i], s))
			return true;
	return false;
}

static bool is_compute_node(const struct cod_node_state *node)
{
	const char *t = node->info.node_type;
	if (cod_str_empty(t))
		return node->info.has_compute;
	return !strcasecmp(t, "Compute");
}

/* ---- candidates: node type, membership, connection */

static int rank_candidate(const struct cod_node_state *node, struct verdict *v)
{
	if (!is_compute_node(node)) {
		const char *t = node->info.node_type;
		if (t && !strcasecmp(t, "Requester"))
			return unsuitable(v, "node is the orchestrator");
		return unsuitable(v, "node is not a compute node (%s)", cod_str_empty(t) ? "no type" : t);
	}
	if (node->membership != COD_NODE_APPROVED)
		return unsuitable(v, "node is not approved (%s)", cod_node_membership_name(node->membership));
	if (node->connection != COD_NODE_CONNECTED)
		return unsuitable(v, "node is disconnected");
	return 0;
}

/* ---- engine, publisher, input sources */

static int rank_engine(const struct cod_task *task, const struct cod_node_state *node, struct verdict *v)
{
	const char *type = task->engine.type ? task->engine.type : "";
	if (!list_has(&node->info.compute.engines, type))
		return unsuitable(v, "does not support engine %s", type);
	v->points += POINTS_ENGINE;
	return 0;
}

static int rank_publisher(const struct cod_task *task, const struct cod_node_state *node, struct verdict *v)
{
	const char *type = task->publisher.type;
	if (cod_str_empty(type))
		return 0;
	if (!list_has(&node->info.compute.publishers, type))
		return unsuitable(v, "does not support publisher %s", type);
	v->points += POINTS_PUBLISHER;
	return 0;
}

static int rank_storage(const struct cod_task *task, const struct cod_node_state *node, struct verdict *v)
{
	if (!task->ninputs)
		return 0;
	for (size_t i = 0; i < task->ninputs; i++) {
		const char *type = task->inputs[i].source.type ? task->inputs[i].source.type : "";
		if (!list_has(&node->info.compute.storages, type))
			return unsuitable(v, "does not support input source %s", type);
	}
	v->points += POINTS_STORAGE;
	return 0;
}

/* ---- label constraints: hard ones must match; favour_ ones add points */

static char *format_req(const struct cod_selector_req *r)
{
	struct cod_selector one = {.reqs = (struct cod_selector_req *)r, .n = 1};
	return cod_selector_format(&one);
}

static int rank_labels(const struct cod_job *job, const struct cod_node_state *node, struct verdict *v)
{
	const struct cod_kvlist *labels = &node->info.labels;
	bool any_hard = false;
	for (size_t i = 0; i < job->constraints.n; i++) {
		const struct cod_selector_req *r = &job->constraints.reqs[i];
		if (r->key && cod_str_has_prefix(r->key, FAVOUR_PREFIX)) {
			struct cod_selector_req soft = *r;
			soft.key = r->key + strlen(FAVOUR_PREFIX);
			if (cod_selector_req_match(&soft, labels))
				v->points += POINTS_FAVOUR;
			continue;
		}
		any_hard = true;
		if (!cod_selector_req_match(r, labels)) {
			cleanup_free char *text = format_req(r);
			return unsuitable(v, "does not match constraint %s", text);
		}
	}
	if (any_hard)
		v->points += POINTS_LABELS;
	return 0;
}

/* ---- resources: maximum job size and over-subscription */

static bool resources_zero(const struct cod_resources *r)
{
	return r->cpu <= 0 && !r->memory && !r->disk && !r->gpu;
}

static int rank_max_usage(const struct cod_resources *need, const struct cod_node_state *node,
			  struct verdict *v)
{
	const struct cod_compute_info *ci = &node->info.compute;
	const struct cod_resources *max = &ci->max_job_requirements;
	/* A node that reported no job limit is limited by its capacity; one
	 * that reported neither is not checked (nothing to compare with). */
	if (resources_zero(max))
		max = &ci->max_capacity;
	if (resources_zero(max))
		return 0;
	if (need->cpu > max->cpu + 1e-9)
		return unsuitable(v, "job needs more than the node's maximum (cpu %g > %g)", need->cpu,
				  max->cpu);
	if (need->memory > max->memory) {
		cleanup_free char *a = cod_format_bytes(need->memory);
		cleanup_free char *b = cod_format_bytes(max->memory);
		return unsuitable(v, "job needs more than the node's maximum (memory %s > %s)", a, b);
	}
	if (need->disk > max->disk) {
		cleanup_free char *a = cod_format_bytes(need->disk);
		cleanup_free char *b = cod_format_bytes(max->disk);
		return unsuitable(v, "job needs more than the node's maximum (disk %s > %s)", a, b);
	}
	if (need->gpu > max->gpu)
		return unsuitable(v, "job needs more than the node's maximum (gpu %llu > %llu)",
				  (unsigned long long)need->gpu, (unsigned long long)max->gpu);
	return 0;
}

/* max - available + queued + job <= max * factor, per dimension the node
 * reports a capacity for. */
static bool over(double max, double avail, double queued, double need, double factor)
{
	if (max <= 0)
		return false;
	double used = max - avail;
	if (used < 0)
		used = 0;
	return used + queued + need > max * factor + 1e-9;
}

static int rank_oversubscription(const struct cod_resources *need, const struct cod_node_state *node,
				 double factor, struct verdict *v)
{
	const struct cod_compute_info *ci = &node->info.compute;
	const struct cod_resources *max = &ci->max_capacity, *av = &ci->available_capacity,
				   *q = &ci->queue_capacity;
	if (factor < 1.0)
		factor = 1.0;
	if (over(max->cpu, av->cpu, q->cpu, need->cpu, factor))
		return unsuitable(v, "node is over-subscribed (cpu)");
	if (over((double)max->memory, (double)av->memory, (double)q->memory, (double)need->memory, factor))
		return unsuitable(v, "node is over-subscribed (memory)");
	if (over((double)max->disk, (double)av->disk, (double)q->disk, (double)need->disk, factor))
		return unsuitable(v, "node is over-subscribed (disk)");
	if (over((double)max->gpu, (double)av->gpu, (double)q->gpu, (double)need->gpu, factor))
		return unsuitable(v, "node is over-subscribed (gpu)");
	return 0;
}

/* ---- previous executions of this job on the node */

static bool exec_live(const struct cod_execution *e)
{
	return e->desired_state.type != COD_DESIRED_STOPPED &&
	       !cod_exec_state_terminal((enum cod_exec_state)e->compute_state.type);
}

/* The job's executions by node: ordered by node ID, then by position in
 * the input, so a node reads its own executions, in input order, instead
 * of scanning every execution of the job (a job of 1,000 executions over
 * 10,000 nodes would make that ten million comparisons per plan). */
struct exec_ref {
	const char *node_id;
	size_t index;
};

struct exec_index {
	struct exec_ref *refs;
	size_t n;
};

static int cmp_exec_ref(const void *a, const void *b)
{
	const struct exec_ref *x = a, *y = b;
	int c = strcmp(x->node_id, y->node_id);
	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

static void exec_index_build(const struct cod_sched_input *in, struct exec_index *idx)
{
	idx->refs = xcalloc(in->nexecs ? in->nexecs : 1, sizeof(*idx->refs));
	idx->n = 0;
	for (size_t i = 0; i < in->nexecs; i++) {
		const struct cod_execution *e = in->execs[i];
		if (e && e->node_id)
			idx->refs[idx->n++] = (struct exec_ref){.node_id = e->node_id, .index = i};
	}
	qsort(idx->refs, idx->n, sizeof(*idx->refs), cmp_exec_ref);
}

/* The first of node_id's references, or idx->n when it has none. */
static size_t exec_index_first(const struct exec_index *idx, const char *node_id)
{
	size_t lo = 0, hi = idx->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(idx->refs[mid].node_id, node_id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < idx->n && !strcmp(idx->refs[lo].node_id, node_id) ? lo : idx->n;
}

static int rank_previous(const struct cod_sched_input *in, const struct exec_index *idx,
			 const struct cod_node_state *node, struct verdict *v)
{
	const struct cod_job *job = in->job;
	const char *node_id = node->info.node_id;
	/* Daemon and ops jobs run once per node by design; a daemon replaces
	 * a failed execution on the same node, bounded by the retry policy,
	 * so the node's terminal executions never exclude it. */
	bool count_runs = job->type != COD_JOB_DAEMON && job->type != COD_JOB_OPS;
	size_t runs = 0;
	for (size_t k = node_id ? exec_index_first(idx, node_id) : idx->n;
	     k < idx->n && !strcmp(idx->refs[k].node_id, node_id); k++) {
		const struct cod_execution *e = in->execs[idx->refs[k].index];
		if (exec_live(e))
			return unsuitable(v, "already running this job");
		/* Older versions had another spec: what they did on this
		 * node says nothing about the current one. */
		if (e->job_version < job->version)
			continue;
		enum cod_exec_state cs = (enum cod_exec_state)e->compute_state.type;
		if (cs == COD_EXEC_ASK_FOR_BID_REJECTED) {
			/* the node's own reason ("does not support engine ...",
			 * "image has no linux/arm64 variant") is what the user
			 * needs to fix the job */
			const char *why = e->compute_state.message;
			if (why && *why && strcmp(why, "bid rejected"))
				return unsuitable(v, "rejected this job: %s", why);
			return unsuitable(v, "rejected this job");
		}
		if (cs == COD_EXEC_COMPLETED || cs == COD_EXEC_FAILED)
			runs++;
	}
	if (!count_runs)
		return 0;
	if (runs > 1)
		return unsuitable(v, "already ran this job");
	if (runs == 0)
		v->points += POINTS_NEVER_RAN;
	return 0;
}

/* ---- available capacity and queue */

static double clamp01(double x)
{
	return x < 0 ? 0 : x > 1 ? 1 : x;
}

static int rank_capacity(const struct cod_node_state *node, struct verdict *v)
{
	const struct cod_compute_info *ci = &node->info.compute;
	const struct cod_resources *max = &ci->max_capacity, *av = &ci->available_capacity,
				   *q = &ci->queue_capacity;
	double free_sum = 0, queue_sum = 0;
	int dims = 0;
	if (max->cpu > 0) {
		free_sum += clamp01(av->cpu / max->cpu);
		queue_sum += clamp01(q->cpu / max->cpu);
		dims++;
	}
	if (max->memory) {
		free_sum += clamp01((double)av->memory / (double)max->memory);
		queue_sum += clamp01((double)q->memory / (double)max->memory);
		dims++;
	}
	if (dims) {
		v->points += (int)(POINTS_CAPACITY * free_sum / dims + 0.5);
		v->points += (int)(POINTS_QUEUE * (1.0 - queue_sum / dims) + 0.5);
	} else if (ci->enqueued_executions <= 0) {
		v->points += POINTS_QUEUE;
	}
	return 0;
}

/* ---- jitter: splitmix64 over seed ^ FNV-1a(node id) */

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; s && *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static int jitter(uint64_t seed, const char *node_id)
{
	return (int)(splitmix64(seed ^ fnv1a(node_id)) % JITTER_RANGE);
}

/* ---- the chain */

/* ---- data locality: bytes of the job's inputs the node already holds,
 * by its advertised inventory (allow-listed paths, input cache) */

static uint64_t local_input_bytes(const struct cod_task *task, const struct cod_node_state *node)
{
	uint64_t total = 0;
	for (size_t i = 0; i < task->ninputs; i++)
		total += cod_storage_inventory_bytes(node->info.compute.inventory, &task->inputs[i]);
	return total;
}

static int rank_locality(uint64_t bytes, uint64_t best, struct verdict *v)
{
	if (!best || !bytes)
		return 0;
	v->points += (int)((double)POINTS_LOCALITY * (double)bytes / (double)best + 0.5);
	return 0;
}

static void rank_one(const struct cod_sched_input *in, const struct exec_index *idx,
		     const struct cod_task *task, const struct cod_resources *need,
		     const struct cod_node_state *node, uint64_t best_local, struct cod_node_rank *out)
{
	struct verdict v = {0};
	out->node = node;
	if (rank_candidate(node, &v) < 0 || rank_engine(task, node, &v) < 0 ||
	    rank_publisher(task, node, &v) < 0 || rank_storage(task, node, &v) < 0 ||
	    rank_labels(in->job, node, &v) < 0 || rank_max_usage(need, node, &v) < 0 ||
	    rank_previous(in, idx, node, &v) < 0) {
		out->rank = -1;
		out->reason = v.reason;
		return;
	}
	/* last: a node unsuitable only by its load is told apart */
	bool busy = rank_oversubscription(need, node, in->cfg ? in->cfg->oversubscription : 1.0, &v) < 0;
	int requirements = v.points;
	uint64_t local = local_input_bytes(task, node);
	rank_locality(local, best_local, &v);
	int locality = v.points - requirements;
	rank_capacity(node, &v);
	int capacity = v.points - requirements - locality;
	int j = jitter(in->seed, node->info.node_id);
	v.points += j;
	if (busy) {
		out->rank = -1;
		out->reason = v.reason;
		out->busy = true;
		out->busy_rank = v.points;
		return;
	}
	out->rank = v.points;
	/* The summary is formatted on demand (cod_node_rank_summary): the
	 * scheduler ranks every node for every plan and reads none of them. */
	out->points = (struct cod_rank_points){.requirements = requirements,
					       .locality = locality,
					       .capacity = capacity,
					       .jitter = j,
					       .local_bytes = local};
}

char *cod_node_rank_summary(const struct cod_node_rank *r)
{
	if (r->rank < 0)
		return xstrdup(r->reason ? r->reason : "unsuitable");
	const struct cod_rank_points *p = &r->points;
	if (p->local_bytes)
		return xasprintf("rank %d (requirements %d, data locality %d for %llu input bytes on the node, "
				 "capacity and queue %d, jitter %d)",
				 r->rank, p->requirements, p->locality, (unsigned long long)p->local_bytes,
				 p->capacity, p->jitter);
	return xasprintf("rank %d (requirements %d, capacity and queue %d, jitter %d)", r->rank,
			 p->requirements + p->locality, p->capacity, p->jitter);
}

/* Sorting small keys instead of the ranks themselves keeps the node
 * structures out of the comparisons. */
struct sort_key {
	const char *node_id;
	int class; /* 2 suitable, 1 busy, 0 unsuitable */
	int rank;
	uint32_t index;
};

static int cmp_key(const void *a, const void *b)
{
	const struct sort_key *x = a, *y = b;
	if (x->class != y->class)
		return x->class > y->class ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank > y->rank ? -1 : 1;
	return strcmp(x->node_id, y->node_id);
}

/* Best first, ties by node ID. */
static struct cod_node_rank *sort_ranks(struct cod_node_rank *ranks, size_t count)
{
	struct sort_key *keys = xcalloc(count ? count : 1, sizeof(*keys));
	for (size_t i = 0; i < count; i++) {
		const char *id = ranks[i].node->info.node_id;
		const struct cod_node_rank *r = &ranks[i];
		keys[i] = (struct sort_key){.node_id = id ? id : "",
					    .class = r->rank >= 0 ? 2
						     : r->busy	  ? 1
								  : 0,
					    .rank = r->busy ? r->busy_rank : r->rank,
					    .index = (uint32_t)i};
	}
	qsort(keys, count, sizeof(*keys), cmp_key);
	struct cod_node_rank *sorted = xcalloc(count ? count : 1, sizeof(*sorted));
	for (size_t i = 0; i < count; i++)
		sorted[i] = ranks[keys[i].index];
	free(keys);
	free(ranks);
	return sorted;
}

int cod_rank_nodes(const struct cod_sched_input *in, struct cod_node_rank **out, size_t *n,
		   struct cod_error **err)
{
	*out = NULL;
	*n = 0;
	if (!in || !in->job)
		return cod_error_set(err, COD_E_INTERNAL, "rank nodes: no job");
	if (!in->job->ntasks)
		return cod_error_set(err, COD_E_VALIDATION, "job \"%s\" has no task",
				     in->job->id ? in->job->id : "");
	const struct cod_task *task = &in->job->tasks[0];
	struct cod_resources need;
	if (cod_task_resources(task, &need, err) < 0)
		return -1;

	/* the most input bytes any node holds: locality points are relative
	 * to it, so they do not depend on how large the data is */
	uint64_t best_local = 0;
	for (size_t i = 0; i < in->nnodes && task->ninputs; i++) {
		if (!in->nodes[i])
			continue;
		uint64_t b = local_input_bytes(task, in->nodes[i]);
		if (b > best_local)
			best_local = b;
	}
	struct exec_index idx;
	exec_index_build(in, &idx);
	struct cod_node_rank *ranks = xcalloc(in->nnodes ? in->nnodes : 1, sizeof(*ranks));
	size_t count = 0;
	for (size_t i = 0; i < in->nnodes; i++) {
		if (!in->nodes[i])
			continue;
		rank_one(in, &idx, task, &need, in->nodes[i], best_local, &ranks[count++]);
	}
	free(idx.refs);
	*out = sort_ranks(ranks, count);
	*n = count;
	return 0;
}

void cod_node_ranks_free(struct cod_node_rank *ranks, size_t n)
{
	if (!ranks)
		return;
	for (size_t i = 0; i < n; i++)
		free(ranks[i].reason);
	free(ranks);
}
