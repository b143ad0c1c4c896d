/*
 * Enum names and their JSON encodings (reference/bacalhau.md §2.6): job
 * state, network type, membership, connection and history type are strings;
 * execution compute and desired states are integers.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mem.h"
#include "common/util.h"
#include "model/model.h"
#include "model/schema.h"
#include "common/banned.h"

static const char *const job_type_names[] = {"", "batch", "ops", "daemon", "service"};
static const char *const job_state_names[] = {"Undefined", "Pending", "Queued", "Running",
					      "Completed", "Failed",  "Stopped"};
static const char *const exec_state_names[] = {
	"Undefined",  "New",         "AskForBid", "AskForBidAccepted", "AskForBidRejected",
	"BidAccepted", "Running",    "Publishing", "BidRejected",      "Completed",
	"Failed",     "Cancelled",   "Preparing",
};
static const char *const desired_names[] = {"Pending", "Running", "Stopped"};
static const char *const network_names[] = {"Default", "None", "Host", "Full", "HTTP", "Bridge"};
static const char *const membership_names[] = {"PENDING", "APPROVED", "REJECTED"};
static const char *const connection_names[] = {"DISCONNECTED", "CONNECTED"};
static const char *const history_names[] = {"JobLevel", "ExecutionLevel"};
static const char *const selector_op_names[] = {"=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt"};

static const char *name_of(const char *const *names, size_t n, int v, const char *fallback)
{
	if (v < 0 || (size_t)v >= n)
		return fallback;
	return names[v];
}

static int parse_name(const char *const *names, size_t n, const char *s)
{
	if (!s)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (*names[i] && !strcasecmp(names[i], s))
			return (int)i;
	return -1;
}

#define NAMES(a) (a), COD_ARRAY_SIZE(a)

const char *cod_job_type_name(enum cod_job_type t)
{
	return name_of(NAMES(job_type_names), (int)t, "");
}

int cod_job_type_parse(const char *s)
{
	return parse_name(NAMES(job_type_names), s);
}

const char *cod_job_state_name(enum cod_job_state s)
{
	return name_of(NAMES(job_state_names), (int)s, "Undefined");
}

int cod_job_state_parse(const char *s)
{
	return parse_name(NAMES(job_state_names), s);
}

bool cod_job_state_terminal(enum cod_job_state s)
{
	return s == COD_JOB_COMPLETED || s == COD_JOB_FAILED || s == COD_JOB_STOPPED;
}

bool cod_job_state_rerunnable(enum cod_job_state s)
{
	return s != COD_JOB_UNDEFINED && s != COD_JOB_PENDING && s != COD_JOB_QUEUED;
}

const char *cod_exec_state_name(enum cod_exec_state s)
{
	return name_of(NAMES(exec_state_names), (int)s, "Undefined");
}

bool cod_exec_state_terminal(enum cod_exec_state s)
{
	switch (s) {
	case COD_EXEC_BID_REJECTED:
	case COD_EXEC_COMPLETED:
	case COD_EXEC_FAILED:
	case COD_EXEC_CANCELLED:
	case COD_EXEC_ASK_FOR_BID_REJECTED:
		return true;
	default:
		return false;
	}
}

bool cod_exec_state_discarded(enum cod_exec_state s)
{
	switch (s) {
	case COD_EXEC_ASK_FOR_BID_REJECTED:
	case COD_EXEC_BID_REJECTED:
	case COD_EXEC_CANCELLED:
	case COD_EXEC_FAILED:
		return true;
	default:
		return false;
	}
}

const char *cod_exec_desired_name(enum cod_exec_desired s)
{
	return name_of(NAMES(desired_names), (int)s, "Pending");
}

const char *cod_network_type_name(enum cod_network_type t)
{
	return name_of(NAMES(network_names), (int)t, "Default");
}

int cod_network_type_parse(const char *s)
{
	if (!s)
		return -1;
	/* Bacalhau accepts any case and surrounding space. */
	char *tmp = cod_str_trim(xstrdup(s));
	int v = parse_name(NAMES(network_names), tmp);
	free(tmp);
	return v;
}

const char *cod_node_membership_name(enum cod_node_membership m)
{
	return name_of(NAMES(membership_names), (int)m, "PENDING");
}

int cod_node_membership_parse(const char *s)
{
	return parse_name(NAMES(membership_names), s);
}

const char *cod_node_connection_name(enum cod_node_connection c)
{
	return name_of(NAMES(connection_names), (int)c, "DISCONNECTED");
}

int cod_node_connection_parse(const char *s)
{
	return parse_name(NAMES(connection_names), s);
}

const char *cod_selector_op_name(enum cod_selector_op op)
{
	return name_of(NAMES(selector_op_names), (int)op, "=");
}

int cod_selector_op_parse(const char *s)
{
	if (!s)
		return -1;
	int v = parse_name(NAMES(selector_op_names), s);
	if (v >= 0)
		return v;
	/* The k8s metav1 spellings, for specs written against k8s docs. */
	if (!strcasecmp(s, "DoesNotExist"))
		return COD_SEL_NOT_EXISTS;
	if (!strcasecmp(s, "Equals"))
		return COD_SEL_EQ;
	if (!strcasecmp(s, "DoubleEquals"))
		return COD_SEL_DEQ;
	if (!strcasecmp(s, "NotEquals"))
		return COD_SEL_NE;
	return -1;
}

static int parse_job_state(const char *s)
{
	return cod_job_state_parse(s);
}

static int parse_exec_state(const char *s)
{
	return parse_name(NAMES(exec_state_names), s);
}

const struct cod_enum cod_enum_job_type = {
	.names = job_type_names, .n = COD_ARRAY_SIZE(job_type_names), .what = "a job type",
};
const struct cod_enum cod_enum_job_state = {
	.names = job_state_names, .n = COD_ARRAY_SIZE(job_state_names), .what = "a job state",
	.parse = parse_job_state,
};
const struct cod_enum cod_enum_exec_state = {
	.names = exec_state_names, .n = COD_ARRAY_SIZE(exec_state_names), .what = "an execution state",
	.as_int = true, .parse = parse_exec_state,
};
const struct cod_enum cod_enum_exec_desired = {
	.names = desired_names, .n = COD_ARRAY_SIZE(desired_names), .what = "a desired state",
	.as_int = true,
};
const struct cod_enum cod_enum_network = {
	.names = network_names, .n = COD_ARRAY_SIZE(network_names), .what = "a network type",
	.parse = cod_network_type_parse,
};
const struct cod_enum cod_enum_membership = {
	.names = membership_names, .n = COD_ARRAY_SIZE(membership_names), .what = "a membership state",
};
const struct cod_enum cod_enum_connection = {
	.names = connection_names, .n = COD_ARRAY_SIZE(connection_names), .what = "a connection state",
};
const struct cod_enum cod_enum_history_type = {
	.names = history_names, .n = COD_ARRAY_SIZE(history_names), .what = "a history type",
};
const struct cod_enum cod_enum_selector_op = {
	.names = selector_op_names, .n = COD_ARRAY_SIZE(selector_op_names), .what = "an operator",
	.parse = cod_selector_op_parse,
};

/* ---------------------------------------------------------- spec types */

static const char *const known_spec_types[] = {
	"docker", "wasm", "noop", "ipfs", "s3", "s3managed", "local", "localDirectory",
	"urlDownload", "inline", "s3PreSigned",
};

const char *cod_canonical_spec_type(const char *type)
{
	if (!type)
		return NULL;
	size_t len = strlen(type);
	const char *start = type;
	while (len && (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')) {
		start++;
		len--;
	}
	while (len && (start[len - 1] == ' ' || start[len - 1] == '\t' || start[len - 1] == '\n' ||
		       start[len - 1] == '\r'))
		len--;
	for (size_t i = 0; i < COD_ARRAY_SIZE(known_spec_types); i++)
		if (strlen(known_spec_types[i]) == len && !strncasecmp(known_spec_types[i], start, len))
			return known_spec_types[i];
	return NULL;
}

bool cod_spec_type_is(const char *type, const char *name)
{
	const char *c = cod_canonical_spec_type(type);
	return c && !strcasecmp(c, name);
}
