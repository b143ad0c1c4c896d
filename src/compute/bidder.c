/*
 * bidder.c - whether this node bids for an execution (reference/
 * bacalhau.md §1.4 "Bidder"): semantic checks first, then resources.
 * Every rejection says why in words a user can act on; the reason travels
 * to the orchestrator in BidResult.Reason and ends up in the job history.
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mem.h"
#include "common/util.h"
#include "compute/compute_int.h"
#include "model/schema.h"
#include "publisher/publisher.h"
#include "storage/storage.h"
#include "common/banned.h"

static bool listed(const struct cod_strlist *l, const char *name)
{
	for (size_t i = 0; l && i < l->n; i++)
		if (cod_spec_type_is(name, l->items[i]))
			return true;
	return false;
}

static bool allow_listed(const struct cod_strlist *globs, const char *name)
{
	for (size_t i = 0; globs && i < globs->n; i++)
		if (fnmatch(globs->items[i], name, 0) == 0)
			return true;
	return false;
}

static bool reject(char **reason, char *why)
{
	*reason = why;
	return false;
}

bool cod_bidder_bid(const struct cod_bidder *b, const struct cod_execution *e, struct cod_resources *need,
		    char **reason)
{
	memset(need, 0, sizeof(*need));
	*reason = NULL;
	if (!e->job || !e->job->ntasks)
		return reject(reason, xstrdup("execution carries no job with a task"));
	const struct cod_task *t = &e->job->tasks[0];

	/* Semantic checks. */
	const char *engine = t->engine.type ? t->engine.type : "";
	const struct cod_executor_ops *ops = cod_executor_find(engine);
	if (!ops || (ops->is_installed && !ops->is_installed()))
		return reject(reason, xasprintf("node does not support engine \"%s\"", engine));
	if (!cod_str_empty(t->publisher.type) && !listed(b->publishers, t->publisher.type))
		return reject(reason, xasprintf("node does not support publisher \"%s\"", t->publisher.type));
	for (size_t i = 0; i < t->ninputs; i++) {
		const char *src = t->inputs[i].source.type ? t->inputs[i].source.type : "";
		if (!listed(b->storages, src))
			return reject(reason, xasprintf("node does not support input source \"%s\"", src));
	}
	enum cod_network_type net = t->network.type;
	bool net_ok = ops->supports_network ? ops->supports_network(net)
					    : (net == COD_NET_NONE || net == COD_NET_DEFAULT);
	if (!net_ok)
		return reject(reason, xasprintf("engine \"%s\" does not support network type %s", ops->name,
						cod_network_type_name(net)));
	if (b->reject_networked && net != COD_NET_NONE && net != COD_NET_DEFAULT)
		return reject(reason, xasprintf("node does not accept networked jobs (network type %s; "
						"Compute.JobAdmissionControl.RejectNetworkedJobs)",
						cod_network_type_name(net)));
	if (b->reject_stateless && t->ninputs == 0)
		return reject(reason, xstrdup("node does not accept jobs without inputs "
					      "(Compute.JobAdmissionControl.RejectStatelessJobs)"));
	for (size_t i = 0; i < t->env.n; i++) {
		const char *v = t->env.items[i].value ? t->env.items[i].value : "";
		if (!cod_str_has_prefix(v, "env:"))
			continue;
		if (!allow_listed(b->env_allowlist, v + 4))
			return reject(reason, xasprintf("env %s reads host variable \"%s\", which "
							"Compute.Env.AllowList does not allow",
							t->env.items[i].key, v + 4));
	}

	/* Driver-specific checks (allow-listed paths, image platform...). */
	if (ops->bid_check && !ops->bid_check(e, reason))
		return false;
	const struct cod_publisher_ops *pub = cod_publisher_find(t->publisher.type);
	if (pub && pub->bid_check && !pub->bid_check(b->cfg, &t->publisher, reason))
		return false;
	for (size_t i = 0; i < t->ninputs; i++) {
		const struct cod_storage_ops *st = cod_storage_find(t->inputs[i].source.type);
		if (st && st->bid_check && !st->bid_check(b->cfg, &t->inputs[i], reason))
			return false;
	}

	/* Resources. */
	struct cod_error *err = NULL;
	if (cod_task_resources(t, need, &err) < 0) {
		char *why = xasprintf("invalid resources: %s", err ? err->message : "unknown error");
		cod_error_free(err);
		memset(need, 0, sizeof(*need));
		return reject(reason, why);
	}
	char *exceeds = cod_resources_exceeds(need, &b->max);
	if (exceeds) {
		char *why = xasprintf("job needs %s", exceeds);
		free(exceeds);
		return reject(reason, why);
	}
	return true;
}
