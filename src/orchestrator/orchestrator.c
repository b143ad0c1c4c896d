#include "orchestrator/orchestrator.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "api/api.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "store/store.h"
#include "version.h"
#include "common/banned.h"

struct cod_orchestrator {
	struct cod_store *store;
	struct cod_api_server *api;
	struct cod_api_ctx ctx;
	struct cod_node_info self;
};

char *cod_node_name(const struct cod_config *cfg, struct cod_error **err)
{
	if (!cod_str_empty(cfg->node_name))
		return xstrdup(cfg->node_name);
	cleanup_free char *path = xasprintf("%s/node-id", cfg->data_dir);
	cleanup_free char *text = NULL;
	size_t len;
	FILE *probe = fopen(path, "r");
	if (probe) {
		fclose(probe);
		if (cod_read_file(path, 4096, &text, &len, err) < 0)
			return NULL;
		cod_str_trim(text);
		if (*text)
			return xstrdup(text);
	}
	char *name = cod_new_id("n-");
	if (cod_mkdir_p(cfg->data_dir, 0700, err) < 0 || cod_write_file_atomic(path, name, strlen(name), err) < 0) {
		free(name);
		return NULL;
	}
	return name;
}

static void self_info(struct cod_node_info *self, const struct cod_config *cfg, const char *name)
{
	struct utsname u;
	uname(&u);
	self->node_id = xstrdup(name);
	self->node_type = xstrdup("Requester");
	cod_kvlist_copy(&self->labels, &cfg->labels);
	cod_kvlist_set(&self->labels, "name", name);
	cod_kvlist_set(&self->labels, "os_type", "linux");
	cod_kvlist_set(&self->labels, "os_arch", !strcmp(u.machine, "x86_64") ? "amd64" : u.machine);
	cod_strlist_add(&self->supported_protocols, "ncl/v1");
	self->version = xstrdup(cod_version_string());
}

int cod_orchestrator_start(const struct cod_config *cfg, struct cod_orchestrator **out, struct cod_error **err)
{
	struct cod_orchestrator *o = xcalloc(1, sizeof(*o));
	cleanup_free char *name = cod_node_name(cfg, err);
	if (!name)
		goto fail;
	self_info(&o->self, cfg, name);
	cleanup_free char *db = xasprintf("%s/orchestrator/state.db", cfg->data_dir);
	if (cod_store_open(db, &o->store, err) < 0) {
		cod_error_wrap(err, "open store");
		goto fail;
	}
	/* The orchestrator is a node of its own cluster, always approved and
	 * connected (as Bacalhau's self-registration). */
	struct cod_node_state state = {0};
	state.info = o->self;
	state.membership = COD_NODE_APPROVED;
	state.connection = COD_NODE_CONNECTED;
	state.connected_since = cod_now_ns();
	state.last_heartbeat = state.connected_since;
	if (cod_store_put_node(o->store, &state, err) < 0)
		goto fail;
	o->ctx.store = o->store;
	o->ctx.cfg = cfg;
	o->ctx.self = &o->self;
	o->ctx.start_time = cod_now_ns();
	if (cod_api_start(&o->ctx, cfg->api_host, (int)cfg->api_port, (int)cfg->api_threads, (size_t)cfg->api_max_body,
			  &o->api, err) < 0)
		goto fail;
	cod_info("orchestrator", "node=%s api=%s:%d store=%s", name, cfg->api_host, cod_api_port(o->api), db);
	*out = o;
	return 0;
fail:
	cod_orchestrator_stop(o);
	return -1;
}

int cod_orchestrator_api_port(const struct cod_orchestrator *o)
{
	return cod_api_port(o->api);
}

static void node_info_release(struct cod_node_info *n)
{
	free(n->node_id);
	free(n->node_type);
	free(n->version);
	free(n->compute.address);
	cod_kvlist_release(&n->labels);
	cod_strlist_release(&n->supported_protocols);
	cod_strlist_release(&n->compute.engines);
	cod_strlist_release(&n->compute.publishers);
	cod_strlist_release(&n->compute.storages);
	memset(n, 0, sizeof(*n));
}

void cod_orchestrator_stop(struct cod_orchestrator *o)
{
	if (!o)
		return;
	cod_api_stop(o->api);
	cod_store_close(o->store);
	node_info_release(&o->self);
	free(o);
}
