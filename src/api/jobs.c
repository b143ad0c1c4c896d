/*
 * jobs.c - /api/v1/orchestrator/jobs: submit, diff, list, get, stop, rerun,
 * history, executions, versions, results (logs: logs.c).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "common/log.h"
#include "storage/s3api.h"
#include "common/banned.h"

static void notify_eval(struct cod_api_request *req, const char *eval_id)
{
	if (req->ctx->on_evaluation && eval_id && *eval_id)
		req->ctx->on_evaluation(req->ctx->hook_arg, eval_id);
}

/* A submission in flight, and the plan made inside its transaction. */
struct submission {
	struct cod_api_request *req;
	void *plan;
};

static int plan_in_tx(void *arg, struct cod_store_tx *tx, const struct cod_submit_result *res)
{
	struct submission *sub = arg;
	const struct cod_api_ctx *ctx = sub->req->ctx;
	return ctx->plan_submission ? ctx->plan_submission(ctx->hook_arg, tx, res, &sub->plan) : 0;
}

/* The submission committed: schedule it while its sync runs, unless its
 * transaction planned it already; then its plan's messages go out now,
 * and the client is answered once the sync is done. */
static void submitted(void *arg, const struct cod_submit_result *res)
{
	struct submission *sub = arg;
	if (!sub->plan) {
		notify_eval(sub->req, res->eval_id);
		return;
	}
	sub->req->ctx->submission_done(sub->req->ctx->hook_arg, sub->plan, true);
	sub->plan = NULL;
}

static const char *ns_of(const struct cod_api_request *req)
{
	const char *ns = cod_api_query(req, "namespace");
	return ns && *ns ? ns : "default";
}

static json_t *strlist_json(const struct cod_strlist *l)
{
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, json_string(l->items[i]));
	return a;
}

/* Decode, normalize and validate the "Job" member of a request body. */
static struct cod_job *job_from_body(struct cod_api_request *req, const json_t *body, struct cod_strlist *warnings,
				     struct cod_error **err)
{
	json_t *jv = cod_json_iget(body, "Job");
	if (!jv || json_is_null(jv)) {
		cod_error_set(err, COD_E_BAD_REQUEST, "request body has no \"Job\"");
		cod_error_hint(*err, "send {\"Job\": {...}, \"Force\": false}");
		return NULL;
	}
	if (!json_is_object(jv)) {
		cod_error_set(err, COD_E_BAD_REQUEST, "\"Job\" must be an object");
		return NULL;
	}
	struct cod_job *job = cod_job_from_json(jv, err);
	if (!job)
		return NULL;
	struct cod_job_defaults defaults;
	cod_config_job_defaults(req->ctx->cfg, &defaults);
	cod_job_normalize(job, &defaults, warnings);
	if (cod_job_validate(job, err) < 0) {
		cod_job_free(job);
		return NULL;
	}
	return job;
}

static int submit(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	cleanup_json json_t *body = cod_api_body_json(req, err);
	if (!body)
		return -1;
	json_t *force_v = cod_json_iget(body, "Force");
	if (force_v && !json_is_boolean(force_v) && !json_is_null(force_v))
		return cod_error_set(err, COD_E_BAD_REQUEST, "\"Force\" must be true or false");
	struct cod_strlist warnings = {0};
	struct cod_job *job = job_from_body(req, body, &warnings, err);
	if (!job) {
		cod_strlist_release(&warnings);
		return -1;
	}
	if (req->ctx->self && req->ctx->self->node_id)
		cod_kvlist_set(&job->meta, "bacalhau.org/orchestrator.id", req->ctx->self->node_id);
	struct cod_submit_result res = {0};
	struct submission sub = {.req = req};
	int rc = cod_store_submit_job_tx(req->ctx->store, job, json_is_true(force_v), plan_in_tx, submitted, &sub, &res,
					 err);
	if (sub.plan) /* not committed */
		req->ctx->submission_done(req->ctx->hook_arg, sub.plan, false);
	cod_job_free(job);
	if (rc < 0) {
		cod_strlist_release(&warnings);
		return -1;
	}
	for (size_t i = 0; i < res.warnings.n; i++)
		cod_strlist_add(&warnings, res.warnings.items[i]);
	*out = json_pack("{s:s, s:s, s:o}", "JobID", res.job_id, "EvaluationID", res.eval_id ? res.eval_id : "",
			 "Warnings", strlist_json(&warnings));
	cod_strlist_release(&warnings);
	cod_submit_result_release(&res);
	return 0;
}

static int diff(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	cleanup_json json_t *body = cod_api_body_json(req, err);
	if (!body)
		return -1;
	struct cod_strlist warnings = {0};
	struct cod_job *job = job_from_body(req, body, &warnings, err);
	if (!job) {
		cod_strlist_release(&warnings);
		return -1;
	}
	if (cod_str_empty(job->name)) {
		cod_job_free(job);
		cod_strlist_release(&warnings);
		cod_error_set(err, COD_E_BAD_REQUEST, "job diff needs Job.Name to find the existing job");
		return -1;
	}
	struct cod_job *old = NULL;
	struct cod_error *lookup_err = NULL;
	if (cod_store_get_job(req->ctx->store, job->namespace_, job->name, 0, &old, &lookup_err) < 0) {
		if (lookup_err->code != COD_E_NOT_FOUND) {
			cod_error_move(err, &lookup_err);
			cod_job_free(job);
			cod_strlist_release(&warnings);
			return -1;
		}
		cod_error_free(lookup_err);
		cod_strlist_add(&warnings, "no job with this name exists yet; submitting it creates a new job");
	}
	cleanup_free char *d = cod_job_diff(old, job);
	*out = json_pack("{s:s, s:o}", "Diff", d ? d : "", "Warnings", strlist_json(&warnings));
	cod_job_free(old);
	cod_job_free(job);
	cod_strlist_release(&warnings);
	return 0;
}

static json_t *jobs_json(struct cod_job **items, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, cod_job_to_json(items[i]));
	return a;
}

static int list(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	struct cod_job_query q = {0};
	q.namespace_ = ns_of(req);
	q.order_by = cod_api_query(req, "order_by");
	q.next_token = cod_api_query(req, "next_token");
	if (cod_api_query_bool(req, "reverse", false, &q.reverse, err) < 0 ||
	    cod_api_query_u64(req, "limit", 0, &q.limit, err) < 0)
		return -1;
	if (q.order_by && *q.order_by && strcmp(q.order_by, "created_at") && strcmp(q.order_by, "modified_at") &&
	    strcmp(q.order_by, "id") && strcmp(q.order_by, "name"))
		return cod_error_set(err, COD_E_BAD_REQUEST,
				     "query parameter \"order_by\": \"%s\" is not supported; use created_at, modified_at, id or name",
				     q.order_by);
	struct cod_selector sel = {0};
	if (cod_api_query_selector(req, "labels", &sel, err) < 0) {
		cod_selector_release(&sel);
		return -1;
	}
	q.labels = sel.n ? &sel : NULL;
	struct cod_job_page page = {0};
	int rc = cod_store_list_jobs(req->ctx->store, &q, &page, err);
	cod_selector_release(&sel);
	if (rc < 0)
		return -1;
	*out = json_pack("{s:o, s:s}", "Items", jobs_json(page.items, page.n), "NextToken",
			 page.next_token ? page.next_token : "");
	cod_job_page_release(&page);
	return 0;
}

static int history_json(struct cod_store *store, const struct cod_history_query *q, json_t **out,
			struct cod_error **err)
{
	struct cod_history_page page = {0};
	if (cod_store_job_history(store, q, &page, err) < 0)
		return -1;
	json_t *items = json_array();
	for (size_t i = 0; i < page.n; i++)
		json_array_append_new(items, cod_history_to_json(page.items[i]));
	*out = json_pack("{s:o, s:s}", "Items", items, "NextToken", page.next_token ? page.next_token : "");
	cod_history_page_release(&page);
	return 0;
}

static int executions_json(struct cod_store *store, const struct cod_exec_query *q, json_t **out,
			   struct cod_error **err)
{
	struct cod_exec_page page = {0};
	if (cod_store_list_executions(store, q, &page, err) < 0)
		return -1;
	json_t *items = json_array();
	for (size_t i = 0; i < page.n; i++)
		json_array_append_new(items, cod_execution_to_json(page.items[i]));
	*out = json_pack("{s:o, s:s}", "Items", items, "NextToken", "");
	cod_exec_page_release(&page);
	return 0;
}

static int get(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	const char *ref = cod_api_param(req, "id");
	uint64_t version, limit;
	if (cod_api_query_u64(req, "job_version", 0, &version, err) < 0 ||
	    cod_api_query_u64(req, "limit", 0, &limit, err) < 0)
		return -1;
	bool with_history = false, with_execs = false;
	const char *include = cod_api_query(req, "include");
	if (include && *include) {
		cleanup_free char *copy = xstrdup(include);
		char *save = NULL;
		for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			cod_str_trim(tok);
			if (!strcasecmp(tok, "history"))
				with_history = true;
			else if (!strcasecmp(tok, "executions"))
				with_execs = true;
			else if (*tok)
				return cod_error_set(err, COD_E_BAD_REQUEST,
						     "query parameter \"include\": \"%s\" is not history or executions", tok);
		}
	}
	struct cod_job *job = NULL;
	if (cod_store_get_job(req->ctx->store, ns_of(req), ref, version, &job, err) < 0)
		return -1;
	json_t *res = json_pack("{s:o}", "Job", cod_job_to_json(job));
	if (with_history) {
		struct cod_history_query hq = {.namespace_ = job->namespace_, .job_ref = job->id,
					       .all_versions = version == 0, .job_version = version, .limit = limit};
		json_t *h = NULL;
		if (history_json(req->ctx->store, &hq, &h, err) < 0)
			goto fail;
		json_object_set_new(res, "History", h);
	}
	if (with_execs) {
		struct cod_exec_query eq = {.namespace_ = job->namespace_, .job_ref = job->id,
					    .all_versions = version == 0, .job_version = version, .limit = limit};
		json_t *e = NULL;
		if (executions_json(req->ctx->store, &eq, &e, err) < 0)
			goto fail;
		json_object_set_new(res, "Executions", e);
	}
	cod_job_free(job);
	*out = res;
	return 0;
fail:
	cod_job_free(job);
	json_decref(res);
	return -1;
}

static int stop(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	const char *reason = cod_api_query(req, "reason");
	cleanup_json json_t *body = NULL;
	if (req->body_len) {
		body = cod_api_body_json(req, err);
		if (!body)
			return -1;
		json_t *r = cod_json_iget(body, "reason");
		if (r && !json_is_string(r) && !json_is_null(r))
			return cod_error_set(err, COD_E_BAD_REQUEST, "\"reason\" must be a string");
		if (json_is_string(r))
			reason = json_string_value(r);
	}
	cleanup_free char *eval_id = NULL;
	if (cod_store_stop_job(req->ctx->store, ns_of(req), cod_api_param(req, "id"),
			       reason && *reason ? reason : "Stopped at user request", &eval_id, err) < 0)
		return -1;
	notify_eval(req, eval_id);
	*out = json_pack("{s:s}", "EvaluationID", eval_id ? eval_id : "");
	return 0;
}

static int rerun(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	uint64_t version = 0;
	const char *reason = "Rerun at user request";
	cleanup_json json_t *body = NULL;
	if (req->body_len) {
		body = cod_api_body_json(req, err);
		if (!body)
			return -1;
		json_t *v = cod_json_iget(body, "JobVersion");
		if (v && !json_is_null(v)) {
			if (!json_is_integer(v) || json_integer_value(v) < 0)
				return cod_error_set(err, COD_E_BAD_REQUEST, "\"JobVersion\" must be a non-negative integer");
			version = (uint64_t)json_integer_value(v);
		}
		json_t *r = cod_json_iget(body, "Reason");
		if (r && !json_is_string(r) && !json_is_null(r))
			return cod_error_set(err, COD_E_BAD_REQUEST, "\"Reason\" must be a string");
		if (json_is_string(r) && *json_string_value(r))
			reason = json_string_value(r);
	}
	struct cod_rerun_result res = {0};
	if (cod_store_rerun_job(req->ctx->store, ns_of(req), cod_api_param(req, "id"), version, reason, &res, err) < 0)
		return -1;
	notify_eval(req, res.eval_id);
	*out = json_pack("{s:s, s:I, s:s, s:[]}", "JobID", res.job_id, "JobVersion", (json_int_t)res.version,
			 "EvaluationID", res.eval_id ? res.eval_id : "", "Warnings");
	cod_rerun_result_release(&res);
	return 0;
}

static int history(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	struct cod_history_query q = {0};
	q.namespace_ = ns_of(req);
	q.job_ref = cod_api_param(req, "id");
	uint64_t since = 0;
	if (cod_api_query_u64(req, "job_version", 0, &q.job_version, err) < 0 ||
	    cod_api_query_bool(req, "all_job_versions", false, &q.all_versions, err) < 0 ||
	    cod_api_query_u64(req, "since", 0, &since, err) < 0 ||
	    cod_api_query_u64(req, "limit", 0, &q.limit, err) < 0)
		return -1;
	q.since = (int64_t)since;
	const char *type = cod_api_query(req, "event_type");
	if (!type || !*type || !strcasecmp(type, "all"))
		q.event_type = COD_HISTORY_ALL;
	else if (!strcasecmp(type, "job"))
		q.event_type = COD_HISTORY_ONLY_JOB;
	else if (!strcasecmp(type, "execution"))
		q.event_type = COD_HISTORY_ONLY_EXECUTION;
	else
		return cod_error_set(err, COD_E_BAD_REQUEST,
				     "query parameter \"event_type\": \"%s\" is not all, job or execution", type);
	q.execution_id = cod_api_query(req, "execution_id");
	q.next_token = cod_api_query(req, "next_token");
	return history_json(req->ctx->store, &q, out, err);
}

static int executions(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	struct cod_exec_query q = {0};
	q.namespace_ = ns_of(req);
	q.job_ref = cod_api_param(req, "id");
	if (cod_api_query_u64(req, "job_version", 0, &q.job_version, err) < 0 ||
	    cod_api_query_bool(req, "all_job_versions", false, &q.all_versions, err) < 0 ||
	    cod_api_query_bool(req, "reverse", false, &q.reverse, err) < 0 ||
	    cod_api_query_u64(req, "limit", 0, &q.limit, err) < 0)
		return -1;
	q.order_by = cod_api_query(req, "order_by");
	if (q.order_by && *q.order_by && strcmp(q.order_by, "create_time") && strcmp(q.order_by, "created_at") &&
	    strcmp(q.order_by, "modify_time") && strcmp(q.order_by, "modified_at"))
		return cod_error_set(err, COD_E_BAD_REQUEST,
				     "query parameter \"order_by\": \"%s\" is not supported; use created_at or modified_at",
				     q.order_by);
	return executions_json(req->ctx->store, &q, out, err);
}

static int versions(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	struct cod_job_page page = {0};
	if (cod_store_job_versions(req->ctx->store, ns_of(req), cod_api_param(req, "id"), &page, err) < 0)
		return -1;
	*out = json_pack("{s:o, s:s}", "Items", jobs_json(page.items, page.n), "NextToken", "");
	cod_job_page_release(&page);
	return 0;
}

/* The result transformer (reference/bacalhau.md §1.5): an s3 archive
 * result becomes s3PreSigned with a pre-signed GET URL, so that clients
 * need no credentials of their own; unless Publishers.Types.S3.
 * PreSignedURLDisabled, or the orchestrator has no AWS credentials (then
 * the result stays as it is and clients fetch it with theirs). */
static void presign_s3_result(const struct cod_config *cfg, json_t *r)
{
	if (!cfg || cfg->publisher_s3_presign_disabled || strcasecmp(json_string_value(json_object_get(r, "Type")), "s3"))
		return;
	json_t *params = json_object_get(r, "Params");
	const char *key = json_string_value(cod_json_iget(params, "Key"));
	if (!key || !cod_str_has_suffix(key, ".tar.gz"))
		return;
	struct cod_s3_target t = {.bucket = json_string_value(cod_json_iget(params, "Bucket")),
				  .endpoint = json_string_value(cod_json_iget(params, "Endpoint")),
				  .region = json_string_value(cod_json_iget(params, "Region"))};
	if (!t.bucket)
		return;
	int64_t expires = cfg->publisher_s3_presign_expiration_ms / 1000;
	struct cod_error *err = NULL;
	char *url = cod_s3_presign_get(&t, key, json_string_value(cod_json_iget(params, "VersionID")),
				       expires > 0 ? expires : 1800, &err);
	if (!url) {
		cod_debug("api", "s3 result not pre-signed: %s", err ? err->message : "?");
		cod_error_free(err);
		return;
	}
	json_t *signed_params = json_deep_copy(params);
	json_object_set_new(signed_params, "PreSignedURL", json_string(url));
	free(url);
	json_object_set_new(r, "Type", json_string("s3PreSigned"));
	json_object_set_new(r, "Params", signed_params);
}

/* Published results of the completed executions of the current version. */
static int results(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	struct cod_exec_query q = {.namespace_ = ns_of(req), .job_ref = cod_api_param(req, "id")};
	struct cod_exec_page page = {0};
	if (cod_store_list_executions(req->ctx->store, &q, &page, err) < 0)
		return -1;
	json_t *items = json_array();
	for (size_t i = 0; i < page.n; i++) {
		const struct cod_execution *e = page.items[i];
		/* noop publishes nothing: no result to fetch */
		if (e->compute_state.type != COD_EXEC_COMPLETED || cod_str_empty(e->published_result.type) ||
		    !strcasecmp(e->published_result.type, "noop"))
			continue;
		json_t *r = json_pack("{s:s}", "Type", e->published_result.type);
		json_object_set_new(r, "Params", e->published_result.params ? json_incref(e->published_result.params)
									   : json_object());
		presign_s3_result(req->ctx->cfg, r);
		json_array_append_new(items, r);
	}
	cod_exec_page_release(&page);
	*out = json_pack("{s:o, s:s}", "Items", items, "NextToken", "");
	return 0;
}

const struct cod_api_route cod_api_job_routes[] = {
	{"PUT", "/api/v1/orchestrator/jobs", submit, "Jobs"},
	{"POST", "/api/v1/orchestrator/jobs", submit, "Jobs"},
	{"GET", "/api/v1/orchestrator/jobs", list, "Jobs"},
	{"PUT", "/api/v1/orchestrator/jobs/diff", diff, "Jobs"},
	{"GET", "/api/v1/orchestrator/jobs/{id}", get, "Jobs"},
	{"DELETE", "/api/v1/orchestrator/jobs/{id}", stop, "Jobs"},
	{"PUT", "/api/v1/orchestrator/jobs/{id}/rerun", rerun, "Jobs"},
	{"GET", "/api/v1/orchestrator/jobs/{id}/history", history, "Jobs"},
	{"GET", "/api/v1/orchestrator/jobs/{id}/executions", executions, "Jobs"},
	{"GET", "/api/v1/orchestrator/jobs/{id}/versions", versions, "Jobs"},
	{"GET", "/api/v1/orchestrator/jobs/{id}/results", results, "Jobs"},
	{NULL, NULL, NULL, NULL},
};
