/*
 * nodes.c - /api/v1/orchestrator/nodes: list, get, approve/reject/delete.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "common/doc.h"
#include "common/mem.h"
#include "common/util.h"
#include "common/banned.h"

static double avail(const struct cod_node_state *n, const char *what)
{
	const struct cod_resources *r = &n->info.compute.available_capacity;
	if (!strcmp(what, "available_cpu"))
		return r->cpu;
	if (!strcmp(what, "available_memory"))
		return (double)r->memory;
	if (!strcmp(what, "available_disk"))
		return (double)r->disk;
	return (double)r->gpu;
}

static int cmp_nodes(const void *a, const void *b, void *arg)
{
	const char *order_key = arg;
	const struct cod_node_state *x = *(struct cod_node_state *const *)a;
	const struct cod_node_state *y = *(struct cod_node_state *const *)b;
	if (!strcmp(order_key, "type"))
		return strcmp(x->info.node_type ? x->info.node_type : "", y->info.node_type ? y->info.node_type : "");
	if (!strcmp(order_key, "status"))
		return (int)x->connection - (int)y->connection;
	if (cod_str_has_prefix(order_key, "available_")) {
		double dx = avail(x, order_key), dy = avail(y, order_key);
		return dx < dy ? -1 : dx > dy;
	}
	return strcmp(x->info.node_id, y->info.node_id);
}

static int list(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	bool reverse;
	uint64_t limit;
	if (cod_api_query_bool(req, "reverse", false, &reverse, err) < 0 ||
	    cod_api_query_u64(req, "limit", 0, &limit, err) < 0)
		return -1;
	const char *order = cod_api_query(req, "order_by");
	static const char *const orders[] = {"id", "type", "available_cpu", "available_memory", "available_disk",
					     "available_gpu", "status"};
	bool known = !order || !*order;
	for (size_t i = 0; !known && i < COD_ARRAY_SIZE(orders); i++)
		known = !strcmp(order, orders[i]);
	if (!known)
		return cod_error_set(err, COD_E_BAD_REQUEST,
				     "query parameter \"order_by\": \"%s\" is not supported; use id, type, status or available_cpu|memory|disk|gpu",
				     order);
	/* Bacalhau's server reads the hyphenated names; accept both. */
	const char *approval = cod_api_query(req, "filter-approval");
	if (!approval)
		approval = cod_api_query(req, "filter_approval");
	const char *status = cod_api_query(req, "filter-status");
	if (!status)
		status = cod_api_query(req, "filter_status");
	int want_membership = -1, want_connection = -1;
	if (approval && *approval && (want_membership = cod_node_membership_parse(approval)) < 0)
		return cod_error_set(err, COD_E_BAD_REQUEST,
				     "query parameter \"filter-approval\": \"%s\" is not PENDING, APPROVED or REJECTED",
				     approval);
	if (status && *status && (want_connection = cod_node_connection_parse(status)) < 0)
		return cod_error_set(err, COD_E_BAD_REQUEST,
				     "query parameter \"filter-status\": \"%s\" is not CONNECTED or DISCONNECTED", status);
	struct cod_selector sel = {0};
	if (cod_api_query_selector(req, "labels", &sel, err) < 0) {
		cod_selector_release(&sel);
		return -1;
	}

	struct cod_node_state **nodes = NULL;
	size_t n = 0;
	if (cod_store_list_nodes(req->ctx->store, &nodes, &n, err) < 0) {
		cod_selector_release(&sel);
		return -1;
	}
	for (size_t i = 0; i < n && req->ctx->node_live; i++)
		req->ctx->node_live(req->ctx->hook_arg, nodes[i]);
	qsort_r(nodes, n, sizeof(*nodes), cmp_nodes, (void *)(order && *order ? order : "id"));
	json_t *items = json_array();
	size_t emitted = 0;
	for (size_t k = 0; k < n; k++) {
		size_t i = reverse ? n - 1 - k : k;
		struct cod_node_state *node = nodes[i];
		if (want_membership >= 0 && (int)node->membership != want_membership)
			continue;
		if (want_connection >= 0 && (int)node->connection != want_connection)
			continue;
		if (sel.n && !cod_selector_match(&sel, &node->info.labels))
			continue;
		if (limit && emitted >= limit)
			continue;
		json_array_append_new(items, cod_node_to_json(node));
		emitted++;
	}
	for (size_t i = 0; i < n; i++)
		cod_node_free(nodes[i]);
	free(nodes);
	cod_selector_release(&sel);
	*out = json_pack("{s:o, s:s}", "Nodes", items, "NextToken", "");
	return 0;
}

static int get(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	struct cod_node_state *node = NULL;
	if (cod_store_get_node(req->ctx->store, cod_api_param(req, "id"), &node, err) < 0)
		return -1;
	if (req->ctx->node_live)
		req->ctx->node_live(req->ctx->hook_arg, node);
	*out = json_pack("{s:o}", "Node", cod_node_to_json(node));
	cod_node_free(node);
	return 0;
}

/* {Action: approve|reject|delete, Message, NodeID} -> {Success, Error}.
 * Unknown nodes are 404; an action that changes nothing is Success=false
 * with the reason, as Bacalhau answers. */
static int update(struct cod_api_request *req, json_t **out, struct cod_error **err)
{
	cleanup_json json_t *body = cod_api_body_json(req, err);
	if (!body)
		return -1;
	json_t *action_v = cod_json_iget(body, "Action");
	if (!json_is_string(action_v))
		return cod_error_set(err, COD_E_BAD_REQUEST, "\"Action\" is required: approve, reject or delete");
	const char *action = json_string_value(action_v);
	const char *id = cod_api_param(req, "id");
	if (!id) {
		json_t *id_v = cod_json_iget(body, "NodeID");
		if (!json_is_string(id_v) || !*json_string_value(id_v))
			return cod_error_set(err, COD_E_BAD_REQUEST, "\"NodeID\" is required");
		id = json_string_value(id_v);
	}
	struct cod_node_state *node = NULL;
	if (cod_store_get_node(req->ctx->store, id, &node, err) < 0)
		return -1;
	int rc = 0;
	const char *failure = NULL;
	if (!strcasecmp(action, "approve")) {
		if (node->membership == COD_NODE_APPROVED)
			failure = "node is already approved";
		else {
			node->membership = COD_NODE_APPROVED;
			rc = cod_store_put_node(req->ctx->store, node, err);
		}
	} else if (!strcasecmp(action, "reject")) {
		if (node->membership == COD_NODE_REJECTED)
			failure = "node is already rejected";
		else {
			node->membership = COD_NODE_REJECTED;
			node->connection = COD_NODE_DISCONNECTED;
			rc = cod_store_put_node(req->ctx->store, node, err);
		}
	} else if (!strcasecmp(action, "delete")) {
		if (node->info.node_type && !strcmp(node->info.node_type, "Requester"))
			failure = "the orchestrator's own node cannot be deleted";
		else
			rc = cod_store_delete_node(req->ctx->store, node->info.node_id, err);
	} else {
		cod_node_free(node);
		return cod_error_set(err, COD_E_BAD_REQUEST, "\"Action\": \"%s\" is not approve, reject or delete", action);
	}
	if (rc == 0 && !failure && req->ctx->on_node_change)
		req->ctx->on_node_change(req->ctx->hook_arg, node->info.node_id);
	cod_node_free(node);
	if (rc < 0)
		return -1;
	if (failure)
		*out = json_pack("{s:b, s:s}", "Success", 0, "Error", failure);
	else
		*out = json_pack("{s:b}", "Success", 1);
	return 0;
}

const struct cod_api_route cod_api_node_routes[] = {
	{"GET", "/api/v1/orchestrator/nodes", list, "Nodes"},
	{"GET", "/api/v1/orchestrator/nodes/{id}", get, "Nodes"},
	{"PUT", "/api/v1/orchestrator/nodes/{id}", update, "Nodes"},
	{"PUT", "/api/v1/orchestrator/nodes", update, "Nodes"},
	{NULL, NULL, NULL, NULL},
};
