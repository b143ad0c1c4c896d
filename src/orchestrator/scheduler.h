/*
 * scheduler.h - the schedulers: pure "desired versus observed" reconcilers.
 *
 * A scheduler worker (orchestrator.c) takes an evaluation from the broker,
 * loads the job, all its executions (every version) and the known nodes,
 * and calls cod_scheduler_process(). The result is a plan; the worker
 * applies it in one store transaction, which also appends the outbox
 * messages the plan implies (see cod_plan_messages below). The scheduler
 * itself touches no store, no clock and no randomness other than its
 * input, so it is unit-testable and deterministic for a given seed.
 *
 * Behaviour follows reference/bacalhau.md §1.3 (batch/service by
 * partition, ops and daemon one execution per matching node, ranking
 * chain, queueing, timeouts), with cod's bounded retry policy.
 */
#ifndef COD_SCHEDULER_H
#define COD_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "model/model.h"

/* Job Meta keys that override the retry policy per job. */
#define COD_META_RETRY_ATTEMPTS "cod.retry.attempts"  /* executions per partition before the job fails */
#define COD_META_RETRY_BACKOFF "cod.retry.backoff"    /* delay before a retry: "5s", "1m" */

struct cod_sched_config {
	int64_t queue_backoff_ms;    /* Orchestrator.Scheduler.QueueBackoff */
	int64_t retry_attempts;      /* default attempts per partition (>= 1); 3 */
	int64_t retry_backoff_ms;    /* default delay before a retry; 0 = at once */
	double oversubscription;     /* >= 1.0 */
	int64_t max_execs_per_eval;  /* rate limit; 0 = none */
};

struct cod_sched_input {
	const struct cod_evaluation *eval;
	const struct cod_job *job;              /* current version, with State */
	struct cod_execution *const *execs;     /* every execution of the job */
	size_t nexecs;
	struct cod_node_state *const *nodes;    /* every known node */
	size_t nnodes;
	int64_t now;                            /* Unix ns */
	uint64_t seed;                          /* ranking jitter */
	const struct cod_sched_config *cfg;
	/* When the current job version was created (Unix ns; the store's
	 * job_versions row). TotalTimeout and QueueTimeout run from the later
	 * of this and job->create_time, so an update or rerun of an old job
	 * gets its full timeouts. 0 = job->create_time. */
	int64_t version_time;
};

/* A change to an existing execution. -1 keeps a state as it is. */
struct cod_exec_update {
	char *execution_id;
	int desired_state;  /* enum cod_exec_desired or -1 */
	int compute_state;  /* enum cod_exec_state or -1 */
	char *message;      /* why; becomes the state Message and a history event */
};

struct cod_plan {
	/* job state change, if any */
	bool set_job_state;
	enum cod_job_state job_state;
	char *job_message;
	/* new executions, fully formed: ID (e-<uuid>), Namespace, EvalID,
	 * JobID, Job (copy), JobVersion, NodeID, PartitionIndex,
	 * AllocatedResources, DesiredState (Pending for batch/service,
	 * Running for ops/daemon: a direct bid), ComputeState New */
	struct cod_execution **new_execs;
	char **new_events; /* each one's history message ("scheduled on node n-1...") */
	size_t n_new;
	struct cod_exec_update *updates;
	size_t n_updates;
	/* follow-up evaluations: WaitUntil set for delayed ones (queueing
	 * backoff, retry backoff, exec-limit) */
	struct cod_evaluation **new_evals;
	size_t n_evals;
	/* job-level history events the plan wants recorded (the applier adds
	 * execution-level events for every update and new execution) */
	struct cod_history_event **events;
	size_t n_events;
};

void cod_plan_release(struct cod_plan *plan);

int cod_scheduler_process(const struct cod_sched_input *in, struct cod_plan *out, struct cod_error **err);

/* ---- ranking (rank.c) ---- */

/* How a suitable node's rank adds up (the summary's figures). */
struct cod_rank_points {
	int requirements;      /* engine, publisher, sources, labels, previous runs */
	int locality;          /* data locality points */
	int capacity;          /* available capacity and queue */
	int jitter;
	uint64_t local_bytes;  /* the job's input bytes the node holds */
};

struct cod_node_rank {
	const struct cod_node_state *node;
	int rank;      /* < 0: unsuitable */
	char *reason;  /* why unsuitable; NULL for a suitable node; owned */
	struct cod_rank_points points;  /* suitable nodes only */
	/* Unsuitable only because it is over-subscribed: busy_rank is the
	 * rank it would have (such nodes sort after the suitable ones, the
	 * least busy first; a scheduler may use them rather than fail). */
	bool busy;
	int busy_rank;
};

/*
 * Rank every node for the job: only Compute nodes that are APPROVED and
 * CONNECTED are candidates (others get rank -1 with the reason). Rankers:
 * engine, publisher, storage sources supported; label constraints (hard,
 * and favour_ soft: +10); max job size (MaxJobRequirements); over-
 * subscription; previous executions of this job on the node (never: 30,
 * once: 0, more or still running or rejected: -1); data locality (up to
 * 150 in proportion to the bytes of the job's inputs the node's advertised
 * inventory holds, relative to the node that holds most; cod_storage_
 * inventory_bytes()); available capacity (up to 80 + 20 for an empty
 * queue); random jitter from seed. Sorted by rank, best first (ties by
 * node ID), then the busy nodes by busy_rank. The caller frees with
 * cod_node_ranks_free(). Previous executions are judged per job version:
 * only the current version's runs and rejections count (a live execution
 * of any version excludes the node), and for daemon and ops jobs runs
 * never exclude (docs/scheduler.md). An unsuitable node's reason says why;
 * a suitable node's points say how its rank adds up. Fails only for a job
 * without a task or with unparseable resources.
 */
int cod_rank_nodes(const struct cod_sched_input *in, struct cod_node_rank **out, size_t *n,
		   struct cod_error **err);
void cod_node_ranks_free(struct cod_node_rank *ranks, size_t n);

/* One line about a ranked node (heap, the caller frees): the reason it is
 * unsuitable, or a summary of its points ("rank 143 (requirements 40,
 * capacity and queue 100, jitter 3)"). Formatted only when asked for:
 * the scheduler ranks every node for every plan. */
char *cod_node_rank_summary(const struct cod_node_rank *r);

/*
 * The messages an execution change implies (reference/bacalhau.md §1.3,
 * "Execution transitions to messages"): a new execution -> AskForBid; desired
 * Pending -> Running -> BidAccepted; desired -> Stopped while the compute
 * state is AskForBid or AskForBidAccepted -> BidRejected; desired -> Stopped
 * while the previous compute state was not terminal -> CancelExecution.
 * A desired-Pending execution still in compute state New (its AskForBid is
 * outstanding) that is stopped also gets BidRejected: the node holds it as
 * a bid awaiting approval. The states compared are prev's (the stored
 * execution) and next's (with the update applied); the scheduler may set
 * the compute state in the same update (Cancelled, BidRejected, Failed,
 * BidAccepted on approval), which does not change the message.
 * prev is NULL for a new execution. Returns the type name or NULL.
 */
const char *cod_plan_message_type(const struct cod_execution *prev, const struct cod_execution *next);

#endif
