/*
 * api.h - the REST API: an HTTP server (libmicrohttpd) with one route table.
 *
 * Routes keep Bacalhau's /api/v1 paths. A handler runs on one of the
 * server's threads, reads the request (path parameters, query, body) and
 * either fills *out with a JSON body (status 200 unless it sets
 * req->status) and returns 0, or returns -1 with *err set; the server turns
 * the error into Bacalhau's body {Status, Message, RequestID, Code,
 * Component, Hint, Details} with the error's HTTP status.
 *
 * Every request has an arena (req->arena) freed when the response is done.
 * Bodies are capped (API.MaxBodyBytes, default 10 MiB): larger ones get 413
 * without being buffered. A path that exists with another method gets 405
 * and an Allow header; an unknown path 404.
 */
#ifndef COD_API_H
#define COD_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/error.h"
#include "config/config.h"
#include "model/model.h"
#include "store/store.h"

struct MHD_Connection;

/* What handlers may use; owned by the orchestrator (or compute) that
 * started the server, alive while it runs. */
struct cod_api_ctx {
	struct cod_store *store;          /* NULL on a compute-only node */
	const struct cod_config *cfg;
	const struct cod_node_info *self; /* this node */
	int64_t start_time;               /* Unix ns */
	/* Called after a handler committed a new evaluation (submit, stop,
	 * rerun) so the scheduler sees it at once; NULL when no scheduler
	 * runs in this process. */
	void (*on_evaluation)(void *arg, const char *eval_id);
	/* Inside a submission's transaction, once it is written: plan its
	 * evaluation there, so that the submission's commit and sync carry
	 * the plan too. 0 with *plan set when planned (on_evaluation is then
	 * not called), 0 with *plan NULL when left to on_evaluation, -1 when
	 * planning failed (what it wrote is undone; on_evaluation follows).
	 * NULL where no scheduler runs in this process. */
	int (*plan_submission)(void *arg, struct cod_store_tx *tx, const struct cod_submit_result *res, void **plan);
	/* For a plan it made: ok once the submission committed (publish what
	 * the plan sent, before the commit is durable), else drop it. */
	void (*submission_done)(void *arg, void *plan, bool ok);
	/* Called after a node's membership changed or it was deleted. */
	void (*on_node_change)(void *arg, const char *node_id);
	/* Overlay on a node read from the store what the orchestrator knows
	 * of it now and persists only every few seconds (free and queued
	 * capacity, running and enqueued executions, last heartbeat); NULL:
	 * nodes are shown as stored. */
	void (*node_live)(void *arg, struct cod_node_state *node);
	void *hook_arg;
	/* Log streams of jobs (orchestrator/logs.h); NULL where there is no
	 * cluster: the logs endpoint then answers 503. */
	struct cod_log_proxy *logs;
};

#define COD_API_MAX_PARAMS 4

struct cod_api_request {
	struct MHD_Connection *conn;
	const char *method;
	const char *path;
	const char *param_names[COD_API_MAX_PARAMS];
	const char *param_values[COD_API_MAX_PARAMS];
	size_t nparams;
	const char *body; /* NUL-terminated, may be empty */
	size_t body_len;
	char request_id[40];
	struct cod_arena arena;
	struct cod_api_ctx *ctx;
	int status;          /* response status override (0 = 200) */
	const char *location; /* redirect target (arena) */
	const char *component; /* error Component, from the route */
	/* A handler that queued its own response (a stream) sets this to 1
	 * (queued) or -1 (MHD refused it) and returns 0 without *out. */
	int queued;
};

typedef int (*cod_api_handler_fn)(struct cod_api_request *req, json_t **out, struct cod_error **err);

struct cod_api_route {
	const char *method;
	const char *pattern; /* "/api/v1/orchestrator/jobs/{id}/history" */
	cod_api_handler_fn handler;
	const char *component;
};

/* Route tables of each resource (src/api/<resource>.c). */
extern const struct cod_api_route cod_api_agent_routes[];
extern const struct cod_api_route cod_api_job_routes[];
extern const struct cod_api_route cod_api_node_routes[];
extern const struct cod_api_route cod_api_log_routes[];

struct cod_api_server;

/* Start listening on host:port (port 0 = any free port). */
int cod_api_start(struct cod_api_ctx *ctx, const char *host, int port, int threads, size_t max_body,
		  struct cod_api_server **out, struct cod_error **err);
int cod_api_port(const struct cod_api_server *srv);
void cod_api_stop(struct cod_api_server *srv);

/* Request helpers. */
const char *cod_api_param(const struct cod_api_request *req, const char *name);
const char *cod_api_query(const struct cod_api_request *req, const char *key);
/* Every value of a repeatable query parameter (e.g. labels). */
void cod_api_query_all(const struct cod_api_request *req, const char *key, struct cod_strlist *out);
/* Parse integer/bool query parameters; absent -> def. Errors name the parameter. */
int cod_api_query_u64(const struct cod_api_request *req, const char *key, uint64_t def, uint64_t *out,
		      struct cod_error **err);
int cod_api_query_bool(const struct cod_api_request *req, const char *key, bool def, bool *out,
		       struct cod_error **err);
/* Every value of a repeatable selector parameter (labels=...), combined:
 * all requirements must hold. sel is the caller's to release. */
int cod_api_query_selector(const struct cod_api_request *req, const char *key, struct cod_selector *sel,
			   struct cod_error **err);
const char *cod_api_header(const struct cod_api_request *req, const char *name);
/* Parse the body as a JSON object. */
json_t *cod_api_body_json(const struct cod_api_request *req, struct cod_error **err);

/* The error body of Bacalhau's API. New reference. */
json_t *cod_api_error_body(const struct cod_error *err, const char *request_id, const char *component);

#endif
