/*
 * orchestrator.h - the orchestrator role of `cod serve`: the store, the
 * REST API and (with the cluster) the scheduler and node manager.
 */
#ifndef COD_ORCHESTRATOR_H
#define COD_ORCHESTRATOR_H

#include "common/error.h"
#include "config/config.h"

struct cod_orchestrator;

/* Open the store under cfg->data_dir/orchestrator, register this node,
 * start the API. */
int cod_orchestrator_start(const struct cod_config *cfg, struct cod_orchestrator **out, struct cod_error **err);
int cod_orchestrator_api_port(const struct cod_orchestrator *o);
/* URL compute nodes use to reach this orchestrator's NATS server. */
const char *cod_orchestrator_nats_url(const struct cod_orchestrator *o);
void cod_orchestrator_stop(struct cod_orchestrator *o);

/* This node's name: cfg->node_name, else one generated on first start and
 * kept in DataDir/node-id. Heap. */
char *cod_node_name(const struct cod_config *cfg, struct cod_error **err);

#endif
