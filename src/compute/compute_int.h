/*
 * compute_int.h - what the compute node's files share, and what the unit
 * tests drive directly. Not part of the node's interface (compute.h is).
 *
 *   capacity.c  system resources, Compute.AllocatedCapacity, resource math
 *   buffer.c    the executor buffer: priority queue + capacity tracker
 *   bidder.c    semantic and resource checks of an AskForBid
 *   cstore.c    the node's execution store and outbox (SQLite)
 *   agent.c     the node: lifecycle, message handlers, recovery, runners
 *   session.c   handshake, heartbeats, node info, the outbox dispatcher
 *   logs.c      execution log files (index of stdout/stderr order) and the
 *               log server that streams them to the orchestrator
 */
#ifndef COD_COMPUTE_INT_H
#define COD_COMPUTE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"
#include "compute/compute.h"
#include "config/config.h"
#include "executor/executor.h"
#include "model/model.h"
#include "transport/transport.h"

/* RunOutput.Stdout / stderr are cut to this many bytes (Bacalhau: 2 KB). */
#define COD_RUN_OUTPUT_MAX 2048

/* ----------------------------------------------------------- capacity */

/* What this machine has: CPUs usable by this process, MemTotal, free disk
 * of data_dir (statvfs f_bavail), and GPUs from nvidia-smi (count; labels
 * GPU-<i> and GPU-<i>-Memory added to gpu_labels when it is not NULL). */
void cod_capacity_system(const char *data_dir, struct cod_resources *out, struct cod_kvlist *gpu_labels);

/* Compute.AllocatedCapacity: each of cpu, memory, disk, gpu is a
 * percentage of the system's ("80%") or an absolute k8s-style value
 * ("2", "500m", "4Gi", "1"); NULL or "" = 100%. COD_E_CONFIG naming the
 * key on a bad value. */
int cod_capacity_allocate(const char *cpu, const char *memory, const char *disk, const char *gpu,
			  const struct cod_resources *system, struct cod_resources *out,
			  struct cod_error **err);

/* need fits when used + need <= max in every dimension. */
bool cod_resources_fit(const struct cod_resources *need, const struct cod_resources *used,
		       const struct cod_resources *max);
void cod_resources_add(struct cod_resources *acc, const struct cod_resources *r);
void cod_resources_sub(struct cod_resources *acc, const struct cod_resources *r); /* floors at 0 */
/* "cpu 4 > node max 2" for the first dimension of need above max (heap),
 * NULL when need fits into max. */
char *cod_resources_exceeds(const struct cod_resources *need, const struct cod_resources *max);

/* ------------------------------------------------------------- buffer */

struct cod_buffer_item {
	char *execution_id;
	int64_t priority; /* Job.Priority: higher runs first */
	uint64_t order;	  /* FIFO among equal priorities */
	struct cod_resources need;
};

/*
 * Queued executions sorted by priority (then arrival), and the capacity
 * that running ones use. Not locked: the agent owns it.
 */
struct cod_buffer {
	struct cod_resources max;
	struct cod_resources running; /* usage of started executions */
	struct cod_resources queued;  /* usage of queued ones */
	size_t nrunning;
	struct cod_buffer_item *items;
	size_t n, alloc;
	uint64_t next_order;
};

void cod_buffer_init(struct cod_buffer *b, const struct cod_resources *max);
void cod_buffer_release(struct cod_buffer *b);
/* Queue an execution. -1 (COD_E_EXHAUSTED) when need can never fit into
 * max; a known ID is not queued twice (returns 0). */
int cod_buffer_enqueue(struct cod_buffer *b, const char *execution_id, int64_t priority,
		       const struct cod_resources *need, struct cod_error **err);
/* Take the first queued execution (by priority, then FIFO) that fits into
 * the free capacity, skipping ahead past ones that do not; its usage
 * moves to running. *execution_id is heap. false when none fits. */
bool cod_buffer_next(struct cod_buffer *b, char **execution_id, struct cod_resources *need);
/* A started execution ended: release its usage. */
void cod_buffer_done(struct cod_buffer *b, const struct cod_resources *need);
/* Drop a queued execution; false when it is not queued. */
bool cod_buffer_remove(struct cod_buffer *b, const char *execution_id);
bool cod_buffer_contains(const struct cod_buffer *b, const char *execution_id);
/* max - running. */
void cod_buffer_available(const struct cod_buffer *b, struct cod_resources *out);

/* ------------------------------------------------------------- bidder */

struct cod_bidder {
	const struct cod_config *cfg;		 /* for the drivers' bid checks; may be NULL in tests */
	struct cod_resources max;		 /* MaxCapacity */
	const struct cod_strlist *publishers;	 /* installed publisher types */
	const struct cod_strlist *storages;	 /* installed input source types */
	const struct cod_strlist *env_allowlist; /* Compute.Env.AllowList globs */
	bool reject_networked;
	bool reject_stateless;
};

/*
 * Decide an AskForBid. Semantic checks first (engine installed, publisher
 * installed, input sources installed, network type supported by the
 * engine, env: references allow-listed, admission rules), then resources
 * (Tasks[0] resources must fit into max). true = bid; false with *reason
 * (heap) naming the first problem: "node does not support engine
 * \"docker\"", "job needs cpu 4 > node max 2". *need is the task's
 * resources either way (zero when they cannot be parsed).
 */
bool cod_bidder_bid(const struct cod_bidder *b, const struct cod_execution *e, struct cod_resources *need,
		    char **reason);

/* -------------------------------------------------------------- store */

/*
 * The node's execution store, DataDir/compute/state.db: executions (their
 * JSON with the compute state as a column), the outbox of messages to the
 * orchestrator (seq, type, payload), and two counters: the last
 * orchestrator sequence number processed and the last outbox sequence
 * number handed out (numbers never go back, even after acked rows are
 * deleted). WAL, synchronous=NORMAL (COD_STORE_SYNC=full|normal|off overrides).
 * One connection behind a mutex: any thread may call.
 */
struct cod_cstore;

int cod_cstore_open(const char *path, struct cod_cstore **out, struct cod_error **err);
void cod_cstore_close(struct cod_cstore *s);

/* One execution; COD_E_NOT_FOUND when unknown. *out is the caller's. */
int cod_cstore_get(struct cod_cstore *s, const char *id, struct cod_execution **out, struct cod_error **err);
/* Every execution, oldest first; free with cod_cstore_list_free(). */
int cod_cstore_list(struct cod_cstore *s, struct cod_execution ***out, size_t *n, struct cod_error **err);
void cod_cstore_list_free(struct cod_execution **list, size_t n);

/* One transaction: an execution upsert, an outbox message and the new
 * last processed orchestrator seq, each optional. */
struct cod_cstore_write {
	const struct cod_execution *execution; /* or NULL */
	const char *msg_type;		       /* or NULL */
	const char *msg_payload;	       /* JSON text */
	uint64_t orch_seq;		       /* 0 = unchanged */
	uint64_t msg_seq;		       /* out: the message's seq */
};
int cod_cstore_write(struct cod_cstore *s, struct cod_cstore_write *w, struct cod_error **err);

struct cod_cstore_msg {
	uint64_t seq;
	char *type;
	char *payload;
	int64_t create_time;
};
/* Messages with seq > after, in order, at most limit. */
int cod_cstore_outbox_pending(struct cod_cstore *s, uint64_t after, size_t limit, struct cod_cstore_msg **out,
			      size_t *n, struct cod_error **err);
void cod_cstore_msgs_free(struct cod_cstore_msg *m, size_t n);
/* Delete messages with seq <= seq (the orchestrator has them). */
int cod_cstore_outbox_ack(struct cod_cstore *s, uint64_t seq, struct cod_error **err);
/* After a handshake in which the orchestrator said it has messages up to
 * lcs (and those were acknowledged): make the pending messages follow lcs
 * without a hole (lcs+1, lcs+2, ...) and continue numbering after them.
 * Nothing changes in the usual case; it renumbers when a store was reset
 * or the orchestrator lost messages it had acknowledged, so that delivery
 * does not wait forever for messages that no longer exist. */
int cod_cstore_outbox_resume(struct cod_cstore *s, uint64_t lcs, bool *changed, struct cod_error **err);
uint64_t cod_cstore_last_orch_seq(struct cod_cstore *s);
uint64_t cod_cstore_outbox_last(struct cod_cstore *s);

/* --------------------------------------------------------------- logs */

/* One stream of a running execution, tapped by its output: after each
 * chunk reaches the stream's file, a record goes to the index file fd. */
struct cod_log_tap {
	int fd;	  /* logs/index, shared by both taps; owned by the runner */
	int type; /* COD_LOG_STDOUT or COD_LOG_STDERR */
};
/* Create (truncate) logs_dir/index for appending; the fd or -1. */
int cod_log_index_open(const char *logs_dir, struct cod_error **err);
/* A cod_executor_output on_write hook; arg is a struct cod_log_tap. */
void cod_log_tap_write(void *arg, const struct cod_executor_output *o);

/*
 * Reading an execution's logs (logs_dir = .../executions/<id>/logs, which
 * may not exist yet): lines of stdout and stderr in the order they were
 * written, each with its newline, lines longer than COD_LOG_LINE_MAX cut.
 * cod_log_reader_next() hands every line available now to fn (type
 * COD_LOG_STDOUT/STDERR; line valid during the call) and returns 0; with
 * final (the execution ended) also unfinished last lines. When fn returns
 * > 0 it took that line and wants no more now: next() returns 1 and the
 * next call continues after it. cod_log_reader_lines() is the number of
 * lines handed out so far (inside fn: the number of the current line).
 */
struct cod_log_reader;
typedef int (*cod_log_line_fn)(void *arg, int type, const char *line, size_t len);
struct cod_log_reader *cod_log_reader_new(const char *logs_dir);
void cod_log_reader_free(struct cod_log_reader *r);
int cod_log_reader_next(struct cod_log_reader *r, bool final, cod_log_line_fn fn, void *arg);
uint64_t cod_log_reader_lines(const struct cod_log_reader *r);
/* A JSON string of a log line; invalid UTF-8 bytes become U+FFFD. */
json_t *cod_log_line_json(const char *line, size_t len);

/* The log server (transport.h, "log streams"): subscribes to
 * cod.node.<id>.logs on c->nc and starts its thread; sets c->logs.
 * stop() joins the thread and drops the streams (call before closing
 * NATS); free() after NATS is closed, as its callback may run until then. */
struct cod_log_server;
int cod_log_server_start(struct cod_compute *c, struct cod_error **err);
void cod_log_server_stop(struct cod_log_server *srv);
void cod_log_server_free(struct cod_log_server *srv);

/* -------------------------------------------------------------- agent */

struct compute_inbound {
	struct cod_envelope env;
	struct compute_inbound *next;
};

/* One started execution and its thread. */
struct compute_running {
	struct cod_compute *c;
	char *execution_id;
	struct cod_execution *execution; /* the runner's copy */
	const struct cod_executor_ops *ops;
	struct cod_executor_run run;
	struct cod_kvlist env;
	char *exec_dir;
	struct cod_resources need;
	int64_t deadline_ms; /* cod_mono_ms(); 0 = no deadline in the current phase */
	int64_t timeout_s;   /* ExecutionTimeout; 0 = none */
	bool preparing;      /* the deadline is the preparing timeout */
	bool prepared;       /* the driver's prepare() or run() was called: cleanup() is due */
	struct cod_mount *mounts; /* prepared inputs */
	size_t nmounts;
	char *results_dir;
	struct cod_spec_config published; /* the publisher's result */
	json_t *input_bytes;		  /* RunOutput.InputBytes: what preparing the inputs moved */
	int log_index_fd;		  /* logs/index; -1 until the first output */
	pthread_mutex_t log_lock;	  /* opening the log files (either stream's thread) */
	struct cod_log_tap log_taps[2];	  /* stdout, stderr -> log_index_fd */
	bool timed_out;
	bool done; /* the runner finished its work: free it */
	/* Phase reports wait: the phase an execution is in (Preparing,
	 * Running, Publishing) is stored and reported to the orchestrator only
	 * once the execution has lasted Compute.PhaseReportDelay (or a driver
	 * reports progress); one that ends sooner reports its result alone. */
	int phase;		   /* enum cod_exec_state; the phase not yet reported */
	const char *phase_message; /* a string literal */
	int64_t report_at;	   /* cod_mono_ms() */
	bool reported;		   /* phases are stored and reported as they come */
	struct compute_running *next;
	struct compute_running *next_ready; /* runner queue */
};

/* Runner threads, kept for the next execution rather than created and
 * ended for each one (c->lock). */
struct compute_runners {
	struct compute_running *ready_head, *ready_tail; /* waiting for a thread */
	pthread_cond_t cond;				/* work queued, or stopping */
	pthread_t *threads;
	size_t nthreads, alloc;
	size_t idle;   /* threads waiting for work */
	size_t queued; /* executions in the ready queue */
	size_t wake;   /* of them, not yet signalled (runners_wake) */
	bool stop;
};

struct cod_compute {
	const struct cod_config *cfg;
	char *node_id;
	char *dir; /* DataDir/compute */
	char *url; /* orchestrators, comma-separated, as configured */
	char *url_display;
	char *subj_in, *subj_out, *subj_ctrl;
	struct cod_cstore *store;
	struct cod_nats *nc;
	int64_t start_time; /* Unix ns */
	int request_timeout_ms;
	/* COD_FAULT_DUPLICATE_MESSAGES (tests): the dispatcher sends every
	 * pair of messages as b a a b. */
	bool fault_duplicate;
	int64_t heartbeat_ms, info_update_ms;

	struct cod_resources system, max;
	struct cod_kvlist labels;
	struct cod_strlist engines, publishers, storages;
	struct cod_results_server *results; /* the local publisher's server; NULL when not running */
	struct cod_bidder bidder;

	pthread_mutex_t lock;
	pthread_cond_t agent_cond, ctrl_cond, disp_cond; /* CLOCK_MONOTONIC */
	bool stopping;					 /* no new work; runners are being cancelled */
	bool disp_stop;					 /* the dispatcher ends (after a last flush) */

	/* Messages that came while the session was down (or before those
	 * were handled): the agent takes them in order; otherwise the NATS
	 * delivery thread handles a message itself (on_inbound). */
	struct compute_inbound *in_head, *in_tail;
	size_t in_len;
	int64_t agent_sleep_until; /* monotonic ms the agent sleeps until; 0 while it runs */
	uint64_t last_orch_seq; /* mirrors the store */

	bool connected;
	bool session_ok;    /* handshake accepted since the last (re)connect */
	bool heartbeat_now; /* a gap was seen: tell the orchestrator soon */
	bool info_now;      /* the data inventory grew: send node info soon */
	uint64_t session_gen;
	uint64_t disp_cursor; /* last seq published in this session */
	uint64_t outbox_last; /* last seq appended */
	uint64_t acked_seq;   /* last LastComputeSeqNum seen */
	int ack_stalls;	      /* heartbeats in a row without ack progress */

	struct cod_buffer buffer;
	struct compute_running *running;
	struct compute_runners runners;
	struct cod_log_server *logs; /* logs.c */

	pthread_t agent_thr, ctrl_thr, disp_thr;
	bool agent_started, ctrl_started, disp_started;
};

/*
 * Open the node without connecting: node ID, store, capacity, labels,
 * startup recovery (batch/ops executions that were executing become
 * Failed with a ComputeError in the outbox; daemon/service ones go back
 * to BidAccepted and into the buffer). cod_compute_start() is this plus
 * NATS and threads; tests drive it directly.
 */
int cod_compute_open(const struct cod_config *cfg, struct cod_compute **out, struct cod_error **err);
/* Process one inbound envelope now on the calling thread (as the agent
 * thread does): Seq == last+1 is handled, older ones are dropped, gaps
 * ignored. */
void cod_compute_handle(struct cod_compute *c, const struct cod_envelope *env);
/* One round of the agent's housekeeping (tests drive it without the
 * agent thread): join finished runners, enforce ExecutionTimeout, start
 * every queued execution that fits. */
void cod_compute_tick(struct cod_compute *c);
/* Join finished runners and release their capacity; with wait, first
 * wait until every runner finished. */
void cod_compute_reap(struct cod_compute *c, bool wait);

/* session.c: the connection side. Called with c->lock NOT held. */
void *cod_compute_ctrl_main(void *arg);
void *cod_compute_disp_main(void *arg);
/* NodeInfo as sent in Handshake and UpdateNodeInfo (c->lock held). */
json_t *cod_compute_node_info_json(struct cod_compute *c);
/* Send ShutdownNotice (best effort, short timeout). */
void cod_compute_send_shutdown(struct cod_compute *c);
/* A write that appended outbox message seq (type, payload) just committed:
 * publish it now when it is the next one to go out, so that it does not
 * wait for the dispatcher thread (c->lock held). */
void cod_compute_send_committed(struct cod_compute *c, uint64_t seq, const char *type, const char *payload);
/* Wait up to timeout_ms until the outbox is published (c->lock NOT held). */
void cod_compute_flush_outbox(struct cod_compute *c, int timeout_ms);
/* Deadline helper for CLOCK_MONOTONIC condition variables. */

#endif
