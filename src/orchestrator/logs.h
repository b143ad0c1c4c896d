/*
 * logs.h - the orchestrator's log proxy: the logs of a job's executions,
 * read from their compute nodes over NATS (transport.h, "log streams")
 * and handed to a sink (the REST API's WebSocket, Server-Sent Events or
 * JSON answer; src/api/logs.c).
 *
 * One stream serves one request for one job. Its thread watches the job in
 * the store, opens a stream to the node of every execution that ran (and,
 * when following, of every execution that starts later: a retry on
 * another node joins the stream), multiplexes their lines, and ends when
 * the job is terminal and every execution's log is drained; without
 * follow, when the lines so far are out. Each execution's stream has a
 * window of 8 frames: the proxy grants more only as the sink takes lines,
 * so a slow client slows the reading on the compute node and nothing else.
 * A node that stops answering (killed, disconnected) is retried until its
 * execution is terminal; then the sink gets a note that its logs are
 * unavailable and the stream goes on with the other executions.
 *
 * Threads: sink callbacks run on the stream's own thread and may block
 * (that is the backpressure); they should return within a second or so
 * when cod_log_stream_stopping() turns true.
 */
#ifndef COD_ORCHESTRATOR_LOGS_H
#define COD_ORCHESTRATOR_LOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "store/store.h"
#include "transport/transport.h"

struct cod_log_proxy;
struct cod_log_stream;

struct cod_log_query {
	const char *namespace_;	  /* NULL or "" = "default" */
	const char *job_ref;	  /* ID, short ID or name */
	const char *execution_id; /* full ID or unique prefix; NULL or "" = every execution */
	uint64_t job_version;	  /* executions of this version; 0 = the current one */
	bool all_versions;	  /* executions of every version */
	int64_t tail;		  /* the last N lines of each execution; -1 = all */
	bool follow;
};

struct cod_log_item {
	const char *execution_id;
	const char *node_id;
	int type;	  /* COD_LOG_STDOUT, COD_LOG_STDERR; 0 = a note from cod */
	const char *line; /* UTF-8, with its newline (a note has none) */
	size_t len;
	uint64_t offset; /* the line's number in its execution's log */
};

struct cod_log_sink {
	/* One line (or note). < 0 ends the stream (the client went away);
	 * blocking here holds back the reading on the compute nodes. */
	int (*line)(void *arg, const struct cod_log_item *item);
	/* About once a second; < 0 ends the stream. May be NULL. */
	int (*idle)(void *arg);
	/* The stream is over: err NULL when it ended as asked (job terminal
	 * and drained, or not following), job_state the job's last state
	 * ("Completed"; "" unknown). Called exactly once, last, for a stream
	 * that ran. */
	void (*end)(void *arg, const struct cod_error *err, const char *job_state);
	/* The stream is freed (whether it ran or not): release arg. May be NULL. */
	void (*release)(void *arg);
	void *arg;
};

/* Is this node connected (the proxy gives up on nodes that are not)?
 * Called on stream threads. */
typedef bool (*cod_log_node_fn)(void *arg, const char *node_id);

/* A proxy reading over nc (borrowed; subscribes to its own reply
 * subjects) with the job and execution state of store (borrowed). */
int cod_log_proxy_new(struct cod_store *store, struct cod_nats *nc, cod_log_node_fn node_connected,
		      void *node_arg, struct cod_log_proxy **out, struct cod_error **err);
/* End every stream (sinks get end() with COD_E_UNAVAILABLE "the
 * orchestrator is shutting down") and join their threads; later opens
 * fail. Call before stopping the HTTP server. */
void cod_log_proxy_shutdown(struct cod_log_proxy *p);
/* Free, after the NATS connection closed. Streams never run are released;
 * every other one must have been closed (detached ones are freed here). */
void cod_log_proxy_free(struct cod_log_proxy *p);

/*
 * Check a query and prepare its stream, without starting it: unknown job
 * COD_E_NOT_FOUND (hint: cod job list), an execution ID matching none of
 * the job's COD_E_NOT_FOUND, matching several COD_E_BAD_REQUEST listing
 * them, too many streams COD_E_EXHAUSTED, a proxy shutting down
 * COD_E_UNAVAILABLE. sink is copied.
 */
int cod_log_stream_open(struct cod_log_proxy *p, const struct cod_log_query *q,
			const struct cod_log_sink *sink, struct cod_log_stream **out, struct cod_error **err);
/* Start its thread. detached: the proxy frees the stream after end();
 * otherwise the caller must cod_log_stream_close() it. On a proxy that is
 * shutting down, end() is called at once on the calling thread. */
void cod_log_stream_run(struct cod_log_stream *s, bool detached);
/* Stop (if running), wait for the thread (end() has then been called)
 * and free. Not for detached streams. Safe on NULL. */
void cod_log_stream_close(struct cod_log_stream *s);
/* For sinks: whether the stream is being stopped (shutdown or close). */
bool cod_log_stream_stopping(struct cod_log_stream *s);
/* The job's full ID (owned by the stream). */
const char *cod_log_stream_job_id(const struct cod_log_stream *s);

#endif
