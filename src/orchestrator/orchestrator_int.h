/*
 * orchestrator_int.h - what the orchestrator's files share. Not an
 * interface (orchestrator.h is).
 *
 * Threads and what they own:
 *   - API threads (libmicrohttpd): submit/stop/rerun write the store, then
 *     hand the new evaluation to the broker (orch_eval_created);
 *   - NATS delivery threads: control requests (node manager, nodes.c)
 *     answer at once;
 *   - the inbox thread (inbox.c): takes the nodes' data messages from
 *     their subscription itself; compute results -> store -> evaluations,
 *     planned in the same transaction when no worker has their job;
 *   - scheduler workers (workers.c): broker -> scheduler -> plan -> store;
 *   - the dispatcher (dispatch.c): store outbox -> NATS, in sequence order;
 *   - housekeeping (orchestrator.c): node health and timeouts.
 * The node table is shared under nodes_lock; everything durable goes
 * through the store.
 */
#ifndef COD_ORCHESTRATOR_INT_H
#define COD_ORCHESTRATOR_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "config/config.h"
#include "orchestrator/broker.h"
#include "orchestrator/logs.h"
#include "orchestrator/orchestrator.h"
#include "orchestrator/scheduler.h"
#include "store/store.h"
#include "transport/transport.h"

struct orch_node {
	struct cod_node_state *state; /* owned */
	bool compute_seq_known;       /* false until the first message after a restart */
	uint64_t last_compute_seq;    /* last data message processed from the node */
	uint64_t sent_seq;            /* last outbox seq published to the node */
	uint64_t acked_seq;           /* last outbox seq the node acknowledged */
	int64_t last_seen_ms;         /* monotonic, last handshake or heartbeat */
	int64_t last_send_ms;         /* monotonic, last publish to the node */
	bool dirty;                   /* live fields changed since last persisted */
	bool need_handshake;	      /* loaded at start: nothing is sent before its handshake */
};

struct cod_orchestrator {
	const struct cod_config *cfg;
	struct cod_store *store;
	struct cod_api_server *api;
	struct cod_api_ctx ctx;
	struct cod_node_info self;
	struct cod_sched_config sched_cfg;

	struct cod_natsd *natsd;
	char *nats_url;
	struct cod_nats *nc;
	struct cod_nats_pull *data_sub; /* the nodes' data messages (inbox) */
	struct cod_broker *broker;

	pthread_mutex_t lock;	      /* stopping, dispatch_kick */
	pthread_cond_t cond;	      /* stopping (housekeeping) */
	pthread_cond_t dispatch_cond; /* dispatch_kick, and stopping */
	bool stopping;
	bool dispatch_kick;

	pthread_t *workers;
	size_t nworkers;
	pthread_t dispatcher, inbox_thread, housekeeper;
	bool threads_started;

	/* Held while publishing to nodes (dispatch.c), by the dispatcher and
	 * by committers sending their own messages, so that each node's
	 * messages leave in sequence order. Taken before nodes_lock. */
	pthread_mutex_t send_lock;
	bool fault_duplicate; /* COD_FAULT_DUPLICATE_MESSAGES (tests) */

	pthread_mutex_t nodes_lock;
	struct orch_node *nodes;
	size_t nnodes, nodes_alloc;

	struct cod_log_proxy *logs; /* logs.c */
};

/* orchestrator.c */
/* A new pending evaluation of job, not stored (caller frees). */
struct cod_evaluation *orch_eval_make(const struct cod_job *job, const char *trigger, int64_t wait_until);
/* A new pending evaluation of job, stored on its own, then enqueued. */
int orch_new_eval(struct cod_orchestrator *o, const struct cod_job *job, const char *trigger, int64_t wait_until,
		  struct cod_error **err);
void orch_enqueue_all(struct cod_orchestrator *o, struct cod_evaluation **evs, size_t n);
/* Evaluations for every job with unfinished executions on node_id, plus
 * (join) every active daemon job and every queued job. */
void orch_node_event(struct cod_orchestrator *o, const char *node_id, bool join);
void orch_kick_dispatcher(struct cod_orchestrator *o);

/* nodes.c */
int orch_nodes_load(struct cod_orchestrator *o, struct cod_error **err);
void orch_nodes_free(struct cod_orchestrator *o);
void orch_on_ctrl(void *ctx, const char *subject, const char *reply, const char *data, size_t len);
/* Copies of every known node (caller frees each and the array). */
void orch_nodes_snapshot(struct cod_orchestrator *o, struct cod_node_state ***out, size_t *n);
/* Mark nodes silent for longer than the disconnect timeout; persist live
 * fields of changed nodes. */
void orch_nodes_check(struct cod_orchestrator *o, bool persist_all);
/* The API changed a node's membership or deleted it: reload it. */
void orch_node_changed(void *arg, const char *node_id);
/* The API's node_live hook (api.h). */
void orch_node_live(void *arg, struct cod_node_state *node);
/* Find a node (nodes_lock held). */
struct orch_node *orch_node_find(struct cod_orchestrator *o, const char *node_id);
/* What a node said it has free and queued, from a heartbeat's payload or
 * a message's Capacity (nodes_lock held). */
void orch_node_capacity_locked(struct orch_node *ne, const json_t *capacity);

/* inbox.c */
void *orch_inbox_main(void *arg);

/* workers.c */
void *orch_worker_main(void *arg);

/* One evaluation to plan and apply: taken from the broker by a worker, or
 * claimed by the inbox for its own transaction (cod_broker_claim). */
struct orch_work {
	struct cod_evaluation *ev; /* owned */
	char *receipt;		   /* owned: the broker's lease */
	struct cod_job *job;
	struct cod_exec_page page;
	struct cod_plan plan;
	bool planned; /* plan computed: apply it */
	bool unstored; /* claimed as it was made and done in the same
			* transaction: never written to the store */
	int rc;	      /* 0: ack, -1: nack */
	struct cod_evaluation **later; /* evaluations to enqueue after commit */
	size_t nlater;
};

/* The messages plans appended, to publish once they committed. */
struct orch_sent {
	struct cod_outbox_msg *msgs;
	size_t n;
};
void orch_sent_release(struct orch_sent *s);
/* Append a message (text, consumed) to node_id's outbox inside tx and
 * note it in sent, to be published once tx commits. */
int orch_outbox_add(struct cod_store_tx *tx, const char *node_id, const char *type, char *text,
		    struct orch_sent *sent, struct cod_error **err);

/* Load what the scheduler needs, through the store's reads of the calling
 * thread (a writer hold, or a transaction's own reads), and run it; false
 * when there is nothing to apply (w->rc says whether to ack). */
bool orch_plan_one(struct cod_orchestrator *o, struct orch_work *w, struct cod_node_state **nodes, size_t nnodes);
/* orch_plan_one for each, over one snapshot of the nodes; how many have a
 * plan to apply. */
size_t orch_plan_all(struct cod_orchestrator *o, struct orch_work *ws, size_t n);
/* Apply the planned ones in tx, each in its own savepoint: a plan that
 * fails is undone alone and nacked. -1 only when tx itself failed. */
int orch_apply_plans(struct cod_store_tx *tx, struct orch_work *ws, size_t n, struct orch_sent *sent,
		     struct cod_error **err);
/* It committed: publish sent, enqueue the plans' follow-up evaluations. */
void orch_plans_committed(struct cod_orchestrator *o, struct orch_work *ws, size_t n, const struct orch_sent *sent);
/* Ack or nack each with the broker, record the evaluations coalesced
 * into them, and release them. */
void orch_works_finish(struct cod_orchestrator *o, struct orch_work *ws, size_t n);
/* The API's plan_submission and submission_done (api.h), arg the
 * orchestrator: a new submission's evaluation claimed and planned inside
 * the submission's transaction. */
int orch_plan_submission(void *arg, struct cod_store_tx *tx, const struct cod_submit_result *res, void **plan);
void orch_submission_done(void *arg, void *plan, bool ok);

/* dispatch.c */
void *orch_dispatch_main(void *arg);
/* After the commit that appended them: publish msgs (in seq order per
 * node) at once where each is next in its node's sequence; the dispatcher
 * takes over (kicked) for the others. */
void orch_send_committed(struct cod_orchestrator *o, const struct cod_outbox_msg *msgs, size_t n);

/* logs.c: the log proxy (logs.h) on o->nc, as o->logs and o->ctx.logs.
 * Stop with cod_log_proxy_shutdown() before the API, free after NATS. */
int orch_logs_start(struct cod_orchestrator *o, struct cod_error **err);

#endif
