/*
 * agent.c - /api/v1/agent/...: liveness, version, this node, its config.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "api/api.h"
#include "common/mem.h"
#include "common/util.h"
#include "version.h"
#include "common/banned.h"

static int alive(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	(void)req;
	(void)err;
	*out = json_pack("{s:s}", "Status", "OK");
	return 0;
}

static int version(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	(void)req;
	(void)err;
	*out = cod_version_json();
	return 0;
}

static int node(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	if (!req->ctx->self)
		return cod_error_set(err, COD_E_UNAVAILABLE, "node info is not available yet");
	*out = cod_node_info_to_json(req->ctx->self);
	return 0;
}

static int debug(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	(void)err;
	int64_t uptime_ns = cod_now_ns() - req->ctx->start_time;
	*out = json_pack("[{s:s, s:{s:I, s:I}}]", "Component", "agent", "Info", "StartTime",
			 (json_int_t)req->ctx->start_time, "UptimeSeconds", (json_int_t)(uptime_ns / 1000000000LL));
	return 0;
}

/* The effective configuration as a nested tree, secrets masked. */
static int config(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	(void)err;
	json_t *root = json_object();
	size_t n;
	const struct cod_config_key *keys = cod_config_keys(&n);
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *value = cod_config_get_text(req->ctx->cfg, &keys[i]);
		if (strstr(keys[i].key, "Token") && *value) {
			free(value);
			value = xstrdup("********");
		}
		cleanup_free char *path = xstrdup(keys[i].key);
		json_t *node_ = root;
		char *save = NULL;
		char *part = strtok_r(path, ".", &save);
		while (part) {
			char *next = strtok_r(NULL, ".", &save);
			if (!next) {
				json_object_set_new(node_, part, json_string(value));
				break;
			}
			json_t *child = json_object_get(node_, part);
			if (!child) {
				child = json_object();
				json_object_set_new(node_, part, child);
			}
			node_ = child;
			part = next;
		}
	}
	*out = json_pack("{s:o}", "config", root);
	return 0;
}

static int redirect_version(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	(void)out;
	(void)err;
	req->status = 301;
	req->location = "/api/v1/agent/version";
	return 0;
}

static int redirect_alive(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	(void)out;
	(void)err;
	req->status = 301;
	req->location = "/api/v1/agent/alive";
	return 0;
}

const struct cod_api_route cod_api_agent_routes[] = {
	{"GET", "/", redirect_version, "Agent"},
	{"GET", "/version", redirect_version, "Agent"},
	{"GET", "/livez", redirect_alive, "Agent"},
	{"GET", "/api/v1/agent/alive", alive, "Agent"},
	{"GET", "/api/v1/agent/version", version, "Agent"},
	{"GET", "/api/v1/agent/node", node, "Agent"},
	{"GET", "/api/v1/agent/debug", debug, "Agent"},
	{"GET", "/api/v1/agent/config", config, "Agent"},
	{NULL, NULL, NULL, NULL},
};
