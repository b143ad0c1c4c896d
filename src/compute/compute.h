/*
 * compute.h - the compute role of `cod serve`: a node that dials out to the
 * orchestrator over NATS, bids for executions, queues them by priority
 * until capacity frees, runs them through an executor and reports back.
 *
 * Design (docs/compute.md): executions live in the node's own SQLite store
 * (DataDir/compute/state.db); every state change commits together with the
 * message it causes (transactional outbox) and with the sequence number of
 * the orchestrator message that caused it, so a crash neither loses nor
 * repeats work. Threads: an agent thread owns inbound messages, the buffer
 * and the runners; a control thread does handshake, heartbeats and node
 * info updates; a dispatcher thread publishes the outbox in order; each
 * running execution has its own thread.
 */
#ifndef COD_COMPUTE_H
#define COD_COMPUTE_H

#include "common/error.h"
#include "config/config.h"

struct cod_compute;

/*
 * Start the compute node: open its store, recover executions left from a
 * previous run, connect to cfg->compute_orchestrators with
 * Compute.Auth.Token, subscribe to cod.node.<id>.in and start the threads.
 * The handshake with the orchestrator then happens in the background and
 * is retried until accepted. Fails when the store cannot be opened, the
 * capacity settings are invalid, or the first connection fails:
 * COD_E_UNAUTHORIZED for a refused token, COD_E_NETWORK when no NATS
 * server answers. cfg is borrowed and must outlive the node.
 */
int cod_compute_start(const struct cod_config *cfg, struct cod_compute **out, struct cod_error **err);

/* This node's ID (owned by the node). */
const char *cod_compute_node_id(const struct cod_compute *c);
/* The orchestrator URL(s) the node connects to, token removed (owned). */
const char *cod_compute_url(const struct cod_compute *c);

/*
 * Stop: refuse new work, cancel running executions (batch and ops ones
 * become Failed "node shut down while the execution was running";
 * daemon and service ones keep their state and restart with the node),
 * give the outbox a moment to reach the orchestrator, send a
 * ShutdownNotice, join every thread, close NATS and the store, free.
 * Safe on NULL.
 */
void cod_compute_stop(struct cod_compute *c);

#endif
