/*
 * transport.h - how orchestrator and compute nodes talk: NATS.
 *
 * Compute nodes dial out to the orchestrator's NATS server (no inbound port
 * on a compute node). Subjects, one set per compute node <id>:
 *
 *   cod.node.<id>.in    orchestrator -> compute, data plane (envelopes)
 *   cod.node.<id>.out   compute -> orchestrator, data plane (envelopes)
 *   cod.node.<id>.ctrl  compute -> orchestrator, request/reply control
 *                       (Handshake, Heartbeat, UpdateNodeInfo, ShutdownNotice)
 *
 * Every message is a JSON envelope {Type, Seq, Source, Time, Payload}.
 * Data-plane messages carry a per-direction sequence number taken from the
 * sender's durable outbox (SQLite), so delivery is at-least-once and in
 * order: the receiver processes Seq == last+1, drops Seq <= last
 * (duplicates) and ignores gaps (the sender resends from the last
 * acknowledged Seq). Acknowledgements travel in the control plane:
 * heartbeats carry LastOrchestratorSeqNum, their replies LastComputeSeqNum.
 * Control messages have Seq 0. Replies to control requests are envelopes
 * too: Type "<request type>Response" (e.g. "HandshakeResponse"), Seq 0,
 * Payload as documented below.
 *
 * Sequence resumption: the handshake reply's LastOrchestratorSeqNum is the
 * last orchestrator message the orchestrator knows the node processed; a
 * node whose own record is lower (it lost its state) adopts the reply's
 * value, since earlier messages are gone. An orchestrator that has no record
 * of a node's sequence (a new or wiped store) accepts the first data
 * message it gets from that node as the start.
 *
 * Threads: callbacks run on libnats' delivery threads (one per
 * subscription). They decode and either enqueue into the owning
 * component's queue or do what the message asks under that component's
 * lock when it is short (a control request's store operation and reply; a
 * compute node's in-order data message); a pulled subscription
 * (cod_nats_subscribe_pull) has no delivery thread.
 */
#ifndef COD_TRANSPORT_H
#define COD_TRANSPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* ---- message types (Bacalhau's NCL names) ---- */
/* orchestrator -> compute */
#define COD_MSG_ASK_FOR_BID "AskForBid"             /* {Execution (full, with Job)} */
#define COD_MSG_BID_ACCEPTED "BidAccepted"          /* {ExecutionID, Accepted: true} */
#define COD_MSG_BID_REJECTED "BidRejected"          /* {ExecutionID, Reason} */
#define COD_MSG_CANCEL_EXECUTION "CancelExecution"  /* {ExecutionID, Reason} */
/* compute -> orchestrator */
#define COD_MSG_BID_RESULT "BidResult"              /* {ExecutionID, JobID, Accepted, Reason} */
#define COD_MSG_RUN_RESULT "RunResult"              /* {ExecutionID, JobID, PublishResult, RunCommandResult} */
#define COD_MSG_COMPUTE_ERROR "ComputeError"        /* {ExecutionID, JobID, Message} */
/* cod addition: progress of an execution (integers of enum
 * cod_exec_state): Preparing, Running or Publishing, with a Message such as
 * "pulling image 12.3/45.0 MB" for users; and Cancelled or BidRejected to
 * confirm that a stop reached an execution the node had started. */
#define COD_MSG_EXECUTION_PROGRESS "ExecutionProgress" /* {ExecutionID, JobID, ComputeState, Message} */
/* control requests (compute -> orchestrator, with reply) */
#define COD_MSG_HANDSHAKE "Handshake"
/* request {NodeInfo, StartTime, LastOrchestratorSeqNum}
 * reply   {Accepted, Reason, LastComputeSeqNum, LastOrchestratorSeqNum} */
#define COD_MSG_HEARTBEAT "Heartbeat"
/* request {NodeID, AvailableCapacity, QueueUsedCapacity, LastOrchestratorSeqNum,
 *          RunningExecutions, EnqueuedExecutions}
 * reply   {Accepted, Reason, LastComputeSeqNum}  (Accepted false: handshake again) */
#define COD_MSG_UPDATE_NODE_INFO "UpdateNodeInfo"  /* {NodeInfo} -> {Accepted, Reason} */
#define COD_MSG_SHUTDOWN_NOTICE "ShutdownNotice"   /* {NodeID, Reason, LastOrchestratorSeqNum} -> {} */

/* Subject names (heap strings). */
char *cod_subject_in(const char *node_id);
char *cod_subject_out(const char *node_id);
char *cod_subject_ctrl(const char *node_id);
char *cod_subject_logs(const char *node_id); /* cod.node.<id>.logs */
/* Wildcards the orchestrator subscribes to. */
#define COD_SUBJECT_ALL_OUT "cod.node.*.out"
#define COD_SUBJECT_ALL_CTRL "cod.node.*.ctrl"
/* Node ID from a subject "cod.node.<id>.<kind>" (heap), NULL if malformed. */
char *cod_subject_node(const char *subject);

/*
 * ---- log streams (docs/transport.md, "Log streams") ----
 *
 * An execution's stdout and stderr live in files on its compute node
 * (DataDir/compute/executions/<id>/logs/{stdout,stderr,index}); the
 * orchestrator reads them on a user's request through a stream with flow
 * control, so that a slow reader never stalls the job nor grows anyone's
 * memory:
 *
 *   orchestrator -> cod.node.<id>.logs, request/reply:
 *     LogStreamOpen   {StreamID, ExecutionID, Reply, Tail, Follow, Offset, Credit}
 *                     reply {Accepted, Reason} (an envelope, Seq 0)
 *   orchestrator -> cod.node.<id>.logs, publish:
 *     LogStreamCredit {StreamID, Credit}   cumulative: frames allowed in total
 *     LogStreamCancel {StreamID}
 *   compute -> Reply (a subject the orchestrator listens on), publish:
 *     LogLines        {StreamID, Seq, Lines: [{Type, Line, Offset}]}
 *     LogHeartbeat    {StreamID, Seq}      while following and idle (5 s)
 *     LogEnd          {StreamID, Seq, Error}  drained and the execution is
 *                     terminal (or Follow is false); Error "" when fine
 *
 * Type is 1 for stdout, 2 for stderr (Bacalhau's ExecutionLogType). Line
 * is one line with its newline (the last line of a stream may have none;
 * lines longer than 64 KiB are cut), invalid UTF-8 replaced by U+FFFD.
 * Offset counts the execution's lines (both streams, in write order): the
 * Offset of a line is its number, from 1. A stream opened with Offset N
 * starts after line N (a reader resumes with the last Offset it got);
 * Tail T starts at the last T lines (-1 = all). Seq numbers every frame of
 * a stream from 1; a gap means frames were lost and the reader reopens.
 * Credit: the compute node sends a LogLines frame only while frames sent <
 * Credit; the reader raises Credit as it consumes frames and repeats it at
 * least every 20 s as a keepalive. A stream whose reader is silent for 60
 * s is dropped; a reader that hears nothing for 15 s reopens the stream.
 */
#define COD_MSG_LOG_OPEN "LogStreamOpen"
#define COD_MSG_LOG_CREDIT "LogStreamCredit"
#define COD_MSG_LOG_CANCEL "LogStreamCancel"
#define COD_MSG_LOG_LINES "LogLines"
#define COD_MSG_LOG_HEARTBEAT "LogHeartbeat"
#define COD_MSG_LOG_END "LogEnd"
#define COD_LOG_STDOUT 1
#define COD_LOG_STDERR 2
/* Longest line sent in one piece; longer lines are cut into pieces. */
#define COD_LOG_LINE_MAX 65536
#define COD_LOG_HEARTBEAT_MS 5000
#define COD_LOG_READER_TIMEOUT_MS 60000
#define COD_LOG_CREDIT_KEEPALIVE_MS 20000

/* ---- envelopes ---- */

struct cod_envelope {
	char *type;
	uint64_t seq; /* 0 for control messages */
	char *source; /* node ID of the sender */
	int64_t time; /* Unix ns */
	json_t *payload;
	/* NULL, or what a compute node had free and queued when it sent the
	 * message: the members of a heartbeat's payload (AvailableCapacity,
	 * QueueUsedCapacity, RunningExecutions, EnqueuedExecutions) */
	json_t *capacity;
};

/* COD_FAULT_DUPLICATE_MESSAGES (a test hook): whether this process's
 * dispatcher sends every pair of messages as b a a b; warns when set. */
bool cod_fault_duplicate_messages(const char *who);

/* Encode to JSON text (heap, NUL-terminated). */
char *cod_envelope_encode(const struct cod_envelope *env, size_t *len);
/* The same for a payload that is already JSON text (an object, as stored
 * in an outbox): it goes in as it is, without being parsed again; text
 * that is not an object is sent as {}. capacity: NULL or an object's text,
 * sent as the envelope's Capacity. */
char *cod_envelope_encode_text(const char *type, uint64_t seq, const char *source, int64_t time,
			       const char *payload, const char *capacity, size_t *len);
/* Decode; a malformed envelope is COD_E_BAD_REQUEST naming what is wrong. */
int cod_envelope_decode(const char *data, size_t len, struct cod_envelope *out, struct cod_error **err);
void cod_envelope_release(struct cod_envelope *env);

/* ---- NATS connection ---- */

struct cod_nats;

/* Called on a delivery thread for every message of a subscription. data is
 * valid only during the call. reply is NULL unless the sender wants one. */
typedef void (*cod_nats_msg_fn)(void *ctx, const char *subject, const char *reply, const char *data,
				size_t len);
/* Connection state changes: connected=false on disconnect, true on
 * (re)connect. Called on a libnats thread. */
typedef void (*cod_nats_state_fn)(void *ctx, bool connected);

struct cod_nats_opts {
	const char *url;        /* nats://host:port; may hold a token: nats://tok@host:port */
	const char *token;      /* or NULL */
	const char *name;       /* connection name shown by the server */
	cod_nats_state_fn on_state;
	void *ctx;
	int connect_timeout_ms; /* first connection; 0 = 5000 */
	bool retry_on_failed_connect; /* keep trying in the background instead of failing */
};

/* Whether received messages are freed on the thread that handled them
 * (libnats's natsMsg_free found) rather than by libnats's collector
 * thread, which each message would wake when idle. */
bool cod_nats_frees_inline(void);

/*
 * Connect. Sets SendAsap (latency), unlimited reconnects with backoff. A
 * refused token is COD_E_UNAUTHORIZED ("authorization violation: check
 * Compute.Auth.Token"); an unreachable server COD_E_NETWORK naming the URL.
 */
int cod_nats_connect(const struct cod_nats_opts *opts, struct cod_nats **out, struct cod_error **err);
int cod_nats_subscribe(struct cod_nats *nc, const char *subject, cod_nats_msg_fn fn, void *ctx,
		       struct cod_error **err);
/*
 * A subscription whose messages the consumer's own thread takes (libnats's
 * synchronous subscription): libnats's reader thread queues a message and
 * wakes the consumer directly, where a callback subscription has its
 * delivery thread in between (one thread wake-up more per message; on a
 * virtual machine a wake-up costs what a few SQLite statements do). For a
 * component that queues every message for one thread of its own anyway.
 */
struct cod_nats_pull;
struct cod_nats_msg {
	const char *subject;
	const char *data;
	size_t len;
	void *raw; /* what cod_nats_msg_release frees */
};
int cod_nats_subscribe_pull(struct cod_nats *nc, const char *subject, struct cod_nats_pull **out,
			    struct cod_error **err);
/* The next message, waiting up to timeout_ms for one (0: only one already
 * there). 1: *msg is set (release it); 0: none came, or libnats dropped
 * some for a full queue (their senders resend them); -1: the subscription
 * was stopped or the connection closed. */
int cod_nats_next(struct cod_nats_pull *p, int timeout_ms, struct cod_nats_msg *msg);
void cod_nats_msg_release(struct cod_nats_msg *msg);
/* Unsubscribe: a thread waiting in cod_nats_next returns -1 at once. The
 * pull is freed by cod_nats_close, after its thread has finished with it. */
void cod_nats_pull_stop(struct cod_nats_pull *p);
int cod_nats_publish(struct cod_nats *nc, const char *subject, const void *data, size_t len,
		     struct cod_error **err);
/* Request/reply; *reply is heap (NUL-terminated). Timeout -> COD_E_TIMEOUT. */
int cod_nats_request(struct cod_nats *nc, const char *subject, const void *data, size_t len, int timeout_ms,
		     char **reply, size_t *reply_len, struct cod_error **err);
/* Flush pending publishes (waits up to timeout_ms). */
int cod_nats_flush(struct cod_nats *nc, int timeout_ms, struct cod_error **err);
bool cod_nats_connected(struct cod_nats *nc);
/* Unsubscribe everything, drain, close, free. Safe on NULL. */
void cod_nats_close(struct cod_nats *nc);
/* Release libnats' process-wide state; call once at process exit. */
void cod_nats_shutdown_library(void);

/* ---- the embedded nats-server (orchestrator side) ---- */

struct cod_natsd;

/*
 * Start `nats-server` as a supervised child listening on host:port (port 0
 * = a free port), with token auth when token is set (written to a config
 * file under dir, mode 0600, never on the command line). Waits until it
 * accepts connections. Restarted with backoff if it dies unexpectedly.
 * A missing nats-server binary is COD_E_CONFIG with an install hint.
 */
int cod_natsd_start(const char *host, int port, const char *token, const char *dir, struct cod_natsd **out,
		    struct cod_error **err);
/* Client URL of the server, "nats://127.0.0.1:4222" (owned by natsd). */
const char *cod_natsd_url(const struct cod_natsd *d);
int cod_natsd_port(const struct cod_natsd *d);
/* Stop (SIGTERM, then SIGKILL after a grace period) and free. Safe on NULL. */
void cod_natsd_stop(struct cod_natsd *d);

#endif
