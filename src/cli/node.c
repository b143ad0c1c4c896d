/*
 * node.c - `cod node ...`: list and describe the nodes the orchestrator
 * knows, and approve, reject or delete them (reference/bacalhau.md §3, §4:
 * /api/v1/orchestrator/nodes).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "common/banned.h"

#define NODES_PATH "/api/v1/orchestrator/nodes"

static void query_add(struct cod_buf *b, const char *key, const char *value)
{
	if (!value || !*value)
		return;
	cleanup_free char *escaped = cod_client_escape(value);
	cod_buf_addf(b, "%c%s=%s", strchr(cod_buf_str(b), '?') ? '&' : '?', key, escaped);
}

static void node_path(struct cod_buf *b, const char *id)
{
	cleanup_free char *escaped = cod_client_escape(id);
	cod_buf_addf(b, NODES_PATH "/%s", escaped);
}

/* Parse flags, check arguments and output format, load config: -1 to go
 * on, else the exit code. */
static int start(struct cod_cli *cli, int argc, char **argv, const struct cod_flag *flags, const char *cmd,
		 const char *usage, const char *help, const char **pos, int *npos, int nargs, const char *formats)
{
	int rc = cod_cli_parse(cli, argc, argv, flags, usage, help, pos, npos, nargs);
	if (rc)
		return cli->help ? 0 : rc;
	if (*npos < nargs)
		return cod_cli_usage_error(cmd, "missing argument ID (a node ID, or a unique prefix of one)");
	if (formats && cod_output_check(&cli->out, formats, cmd) < 0)
		return 2;
	struct cod_error *err = NULL;
	if (cod_cli_load_config(cli, &err) < 0)
		return cod_cli_fail(err);
	return -1;
}

/* --------------------------------------------------------------- list */

enum show_group { SHOW_LABELS = 1, SHOW_CAPACITY = 2, SHOW_VERSION = 4, SHOW_FEATURES = 8 };

static int parse_show(const char *text, unsigned *out)
{
	static const struct {
		const char *name;
		unsigned bit;
	} groups[] = {{"labels", SHOW_LABELS},
		      {"capacity", SHOW_CAPACITY},
		      {"version", SHOW_VERSION},
		      {"features", SHOW_FEATURES}};
	*out = 0;
	cleanup_free char *copy = xstrdup(text);
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		cod_str_trim(tok);
		if (!*tok)
			continue;
		bool found = false;
		for (size_t i = 0; i < COD_ARRAY_SIZE(groups); i++) {
			if (!strcasecmp(tok, groups[i].name)) {
				*out |= groups[i].bit;
				found = true;
			}
		}
		if (!found)
			return cod_cli_usage_error("node list",
						   "flag --show: \"%s\" is not labels, capacity, version or features", tok);
	}
	return 0;
}

static char *join(const struct cod_strlist *l, const char *sep)
{
	struct cod_buf b = COD_BUF_INIT;
	for (size_t i = 0; i < l->n; i++)
		cod_buf_addf(&b, "%s%s", i ? sep : "", l->items[i]);
	cod_buf_addstr(&b, "");
	return cod_buf_detach(&b, NULL);
}

static char *labels_cell(const struct cod_kvlist *labels)
{
	struct cod_buf b = COD_BUF_INIT;
	for (size_t i = 0; i < labels->n; i++)
		cod_buf_addf(&b, "%s%s=%s", i ? " " : "", labels->items[i].key, labels->items[i].value);
	cod_buf_addstr(&b, "");
	return cod_buf_detach(&b, NULL);
}

static char *bytes_cell(uint64_t avail, uint64_t max)
{
	cleanup_free char *a = cod_format_bytes(avail);
	cleanup_free char *m = cod_format_bytes(max);
	return xasprintf("%s / %s", a, m);
}

/* Label value of the first key present. */
static const char *label_of(const struct cod_kvlist *labels, const char *const *keys)
{
	for (; *keys; keys++) {
		const char *v = cod_kvlist_get(labels, *keys);
		if (v)
			return v;
	}
	return "";
}

/* One node's cells, appended to row[] from index *n on; the strings are
 * owned by cells[] (freed by the caller). */
static void node_row(const struct cod_node_state *node, unsigned show, bool wide, char **cells, size_t *n)
{
	const struct cod_node_info *info = &node->info;
	/* generated IDs are shortened (n-1a2b3c4d), names as given */
	cells[(*n)++] = wide ? xstrdup(info->node_id ? info->node_id : "") : cod_short_id(info->node_id);
	cells[(*n)++] = xstrdup(info->node_type ? info->node_type : "");
	cells[(*n)++] = xstrdup(cod_node_membership_name(node->membership));
	cells[(*n)++] = xstrdup(cod_node_connection_name(node->connection));
	if (show & SHOW_LABELS)
		cells[(*n)++] = labels_cell(&info->labels);
	if (show & SHOW_CAPACITY) {
		const struct cod_compute_info *c = &info->compute;
		if (info->has_compute) {
			cells[(*n)++] = xasprintf("%.1f / %.1f", c->available_capacity.cpu, c->max_capacity.cpu);
			cells[(*n)++] = bytes_cell(c->available_capacity.memory, c->max_capacity.memory);
			cells[(*n)++] = bytes_cell(c->available_capacity.disk, c->max_capacity.disk);
			cells[(*n)++] = xasprintf("%llu / %llu", (unsigned long long)c->available_capacity.gpu,
						  (unsigned long long)c->max_capacity.gpu);
		} else {
			for (int i = 0; i < 4; i++)
				cells[(*n)++] = xstrdup("");
		}
	}
	if (show & SHOW_VERSION) {
		static const char *const arch_keys[] = {"Architecture", "os_arch", "arch", NULL};
		static const char *const os_keys[] = {"Operating-System", "os_type", "os", NULL};
		cells[(*n)++] = xstrdup(info->version ? info->version : "");
		cells[(*n)++] = xstrdup(label_of(&info->labels, arch_keys));
		cells[(*n)++] = xstrdup(label_of(&info->labels, os_keys));
	}
	if (show & SHOW_FEATURES) {
		cells[(*n)++] = join(&info->compute.engines, " ");
		cells[(*n)++] = join(&info->compute.storages, " ");
		cells[(*n)++] = join(&info->compute.publishers, " ");
	}
}

static const char list_help[] =
	"List the nodes the orchestrator knows: the orchestrator itself (type\n"
	"Requester) and the compute nodes that joined it, with their approval and\n"
	"connection status. --show picks extra column groups: labels, capacity\n"
	"(available / max), version (version, architecture, OS) and features\n"
	"(engines, input sources, publishers).\n\n"
	"Examples:\n"
	"  cod node list\n"
	"  cod node list --show labels,capacity,version,features --wide\n"
	"  cod node list --filter-approval PENDING --output json";

static int cmd_list(struct cod_cli *cli, int argc, char **argv)
{
	const char *labels = NULL, *approval = NULL, *status = NULL, *order_by = NULL, *show_text = "labels,capacity";
	bool reversed = false;
	int64_t limit = 0;
	struct cod_flag flags[] = {
		{"labels", 0, COD_FLAG_STR, &labels, "SELECTOR", "only nodes whose labels match the selector", NULL},
		{"filter-approval", 0, COD_FLAG_STR, &approval, "STATE", "PENDING, APPROVED or REJECTED", NULL},
		{"filter-status", 0, COD_FLAG_STR, &status, "STATE", "CONNECTED or DISCONNECTED", NULL},
		{"order-by", 0, COD_FLAG_STR, &order_by, "FIELD",
		 "id, type, status, available_cpu, available_memory, available_disk or available_gpu", NULL},
		{"order-reversed", 0, COD_FLAG_BOOL, &reversed, NULL, "reverse the order", NULL},
		{"limit", 0, COD_FLAG_INT, &limit, "N", "at most N nodes (default 0 = all)", NULL},
		{"show", 0, COD_FLAG_STR, &show_text, "GROUPS",
		 "column groups: labels,capacity,version,features (default labels,capacity)", NULL},
		COD_OUTPUT_FLAGS(cli),
		COD_FLAGS_END,
	};
	const char *pos[1];
	int npos;
	int rc = start(cli, argc, argv, flags, "node list", "node list [flags]", list_help, pos, &npos, 0, NULL);
	if (rc >= 0)
		return rc;
	unsigned show = 0;
	if (parse_show(show_text, &show))
		return 2;
	if (approval && *approval && cod_node_membership_parse(approval) < 0)
		return cod_cli_usage_error("node list", "flag --filter-approval: \"%s\" is not PENDING, APPROVED or REJECTED",
					   approval);
	if (status && *status && cod_node_connection_parse(status) < 0)
		return cod_cli_usage_error("node list", "flag --filter-status: \"%s\" is not CONNECTED or DISCONNECTED",
					   status);
	if (limit < 0)
		return cod_cli_usage_error("node list", "flag --limit: %lld is negative", (long long)limit);
	struct cod_buf path = COD_BUF_INIT;
	cod_buf_addstr(&path, NODES_PATH);
	query_add(&path, "labels", labels);
	query_add(&path, "filter-approval", approval);
	query_add(&path, "filter-status", status);
	query_add(&path, "order_by", order_by);
	if (reversed)
		query_add(&path, "reverse", "true");
	if (limit) {
		char text[32];
		snprintf(text, sizeof(text), "%lld", (long long)limit);
		query_add(&path, "limit", text);
	}
	struct cod_error *err = NULL;
	cleanup_json json_t *resp = NULL;
	rc = cod_client_call(cli, "GET", cod_buf_str(&path), NULL, &resp, &err);
	cod_buf_release(&path);
	if (rc < 0)
		return cod_cli_fail(err);
	json_t *nodes = json_object_get(resp, "Nodes");
	if (!json_is_array(nodes)) {
		nodes = json_array();
		json_object_set_new(resp, "Nodes", nodes);
	}
	if (cod_output_structured(&cli->out)) {
		cod_print_value(nodes, &cli->out, stdout);
		return 0;
	}
	const char *headers[20];
	size_t nh = 0;
	headers[nh++] = "ID";
	headers[nh++] = "TYPE";
	headers[nh++] = "APPROVAL";
	headers[nh++] = "STATUS";
	size_t labels_col = 0;
	if (show & SHOW_LABELS) {
		labels_col = nh;
		headers[nh++] = "LABELS";
	}
	if (show & SHOW_CAPACITY) {
		headers[nh++] = "CPU";
		headers[nh++] = "MEMORY";
		headers[nh++] = "DISK";
		headers[nh++] = "GPU";
	}
	if (show & SHOW_VERSION) {
		headers[nh++] = "VERSION";
		headers[nh++] = "ARCHITECTURE";
		headers[nh++] = "OS";
	}
	if (show & SHOW_FEATURES) {
		headers[nh++] = "ENGINES";
		headers[nh++] = "INPUTS FROM";
		headers[nh++] = "OUTPUTS";
	}
	struct cod_table t;
	cod_table_init(&t, nh, headers);
	if (show & SHOW_LABELS)
		cod_table_set_width(&t, labels_col, 50);
	size_t i;
	json_t *item;
	json_array_foreach(nodes, i, item)
	{
		struct cod_node_state *node = cod_node_from_json(item, &err);
		if (!node) {
			cod_table_release(&t);
			cod_error_wrap(&err, "the API sent an invalid node");
			return cod_cli_fail(err);
		}
		char *cells[20] = {0};
		size_t n = 0;
		node_row(node, show, cli->out.wide, cells, &n);
		cod_table_add(&t, (const char *const *)cells);
		for (size_t c = 0; c < n; c++)
			free(cells[c]);
		cod_node_free(node);
	}
	cod_table_print(&t, &cli->out, stdout);
	cod_table_release(&t);
	return 0;
}

/* ----------------------------------------------------------- describe */

static const char describe_help[] =
	"Show everything the orchestrator knows about a node (its NodeState): info,\n"
	"labels, capacity, approval and connection. YAML by default; --output json\n"
	"for JSON. The ID may be a unique prefix.\n\n"
	"Examples:\n"
	"  cod node describe n-1a2b3c4d\n"
	"  cod node describe n-1a2b --output json --pretty";

static int cmd_describe(struct cod_cli *cli, int argc, char **argv)
{
	struct cod_flag flags[] = {
		COD_OUTPUT_FLAGS(cli),
		COD_FLAGS_END,
	};
	const char *pos[1];
	int npos;
	int rc = start(cli, argc, argv, flags, "node describe", "node describe ID [flags]", describe_help, pos, &npos,
		       1, "json,yaml");
	if (rc >= 0)
		return rc;
	struct cod_buf path = COD_BUF_INIT;
	node_path(&path, pos[0]);
	struct cod_error *err = NULL;
	cleanup_json json_t *resp = NULL;
	rc = cod_client_call(cli, "GET", cod_buf_str(&path), NULL, &resp, &err);
	cod_buf_release(&path);
	if (rc < 0)
		return cod_cli_fail(err);
	json_t *node = json_object_get(resp, "Node");
	if (!json_is_object(node)) {
		cod_error_set(&err, COD_E_INTERNAL, "the API answer has no \"Node\"");
		return cod_cli_fail(err);
	}
	struct cod_output_opts opts = cli->out;
	if (!opts.format)
		opts.format = "yaml";
	cod_print_value(node, &opts, stdout);
	return 0;
}

/* ------------------------------------------- approve, reject, delete */

/* PUT {Action, Message, NodeID}; the answer is {Success, Error}. */
static int node_action(struct cod_cli *cli, int argc, char **argv, const char *action, const char *done,
		       const char *help)
{
	const char *message = NULL;
	struct cod_flag flags[] = {
		{"message", 'm', COD_FLAG_STR, &message, "TEXT", "why (kept with the node's history)", NULL},
		COD_FLAGS_END,
	};
	char cmd[32], usage[64];
	snprintf(cmd, sizeof(cmd), "node %s", action);
	snprintf(usage, sizeof(usage), "node %s ID [-m MESSAGE]", action);
	const char *pos[1];
	int npos;
	int rc = start(cli, argc, argv, flags, cmd, usage, help, pos, &npos, 1, NULL);
	if (rc >= 0)
		return rc;
	struct cod_buf path = COD_BUF_INIT;
	node_path(&path, pos[0]);
	cleanup_json json_t *body =
		json_pack("{s:s, s:s, s:s}", "Action", action, "Message", message ? message : "", "NodeID", pos[0]);
	struct cod_error *err = NULL;
	cleanup_json json_t *resp = NULL;
	rc = cod_client_call(cli, "PUT", cod_buf_str(&path), body, &resp, &err);
	cod_buf_release(&path);
	if (rc < 0)
		return cod_cli_fail(err);
	if (!json_is_true(json_object_get(resp, "Success"))) {
		const char *why = json_string_value(json_object_get(resp, "Error"));
		cod_error_set(&err, COD_E_BAD_REQUEST, "%s", why && *why ? why : "the orchestrator refused the action");
		return cod_cli_fail(err);
	}
	printf("Node %s %s\n", pos[0], done);
	return 0;
}

static const char approve_help[] =
	"Approve a node so that the orchestrator schedules work on it (needed when\n"
	"Orchestrator.NodeManager.ManualApproval is on).\n\n"
	"Examples:\n"
	"  cod node approve n-1a2b3c4d\n"
	"  cod node approve n-1a2b3c4d -m 'checked by ops'";

static const char reject_help[] =
	"Reject a node: it is disconnected and gets no more work.\n\n"
	"Examples:\n"
	"  cod node reject n-1a2b3c4d\n"
	"  cod node reject n-1a2b3c4d -m 'unknown machine'";

static const char delete_help[] =
	"Delete a node from the orchestrator's list. A node that is still running\n"
	"will register again when it next connects.\n\n"
	"Examples:\n"
	"  cod node delete n-1a2b3c4d\n"
	"  cod node delete n-1a2b3c4d -m 'decommissioned'";

static int cmd_approve(struct cod_cli *cli, int argc, char **argv)
{
	return node_action(cli, argc, argv, "approve", "approved", approve_help);
}

static int cmd_reject(struct cod_cli *cli, int argc, char **argv)
{
	return node_action(cli, argc, argv, "reject", "rejected", reject_help);
}

static int cmd_delete(struct cod_cli *cli, int argc, char **argv)
{
	return node_action(cli, argc, argv, "delete", "deleted", delete_help);
}

static const struct cod_command node_commands[] = {
	{"list", cmd_list, "list nodes with their status and capacity"},
	{"describe", cmd_describe, "show a node's full state"},
	{"approve", cmd_approve, "approve a node"},
	{"reject", cmd_reject, "reject a node"},
	{"delete", cmd_delete, "delete a node"},
	{NULL, NULL, NULL},
};

int cod_cmd_node(struct cod_cli *cli, int argc, char **argv)
{
	return cod_cli_dispatch(cli, "node", node_commands,
				"  cod node list\n"
				"  cod node approve n-1a2b3c4d\n",
				argc, argv);
}
