/*
 * nodes.c - the node manager: handshakes, heartbeats, node info updates and
 * shutdown notices from compute nodes (NATS request/reply), membership and
 * connection state, and the outbox acknowledgements heartbeats carry.
 */
#include "orchestrator/orchestrator_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/doc.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "common/banned.h"

/* How far numbering jumps at each start: more than the messages whose
 * commits a crash could lose after they were published. */
#define OUTBOX_RESTART_GAP ((uint64_t)1 << 32)

/* A node that has not acknowledged what was sent for this long gets the
 * unacknowledged messages again (they may have been lost in a reconnect). */
static int64_t resend_after_ms(const struct cod_orchestrator *o)
{
	int64_t hb = o->cfg->compute_heartbeat_ms;
	return hb * 2 > 5000 ? hb * 2 : 5000;
}

struct orch_node *orch_node_find(struct cod_orchestrator *o, const char *node_id)
{
	for (size_t i = 0; i < o->nnodes; i++)
		if (!strcmp(o->nodes[i].state->info.node_id, node_id))
			return &o->nodes[i];
	return NULL;
}

static struct orch_node *node_add(struct cod_orchestrator *o, struct cod_node_state *state)
{
	COD_GROW(o->nodes, o->nodes_alloc, o->nnodes + 1);
	struct orch_node *n = &o->nodes[o->nnodes++];
	memset(n, 0, sizeof(*n));
	n->state = state;
	return n;
}

int orch_nodes_load(struct cod_orchestrator *o, struct cod_error **err)
{
	struct cod_node_state **all = NULL;
	size_t n = 0, i = 0;
	if (cod_store_list_nodes(o->store, &all, &n, err) < 0)
		return -1;
	/* Messages are published once committed, before their commit is
	 * durable: a crash may have lost commits whose messages a node has.
	 * Each node's numbering starts again past a gap, in one transaction
	 * durable before anything is sent; what is still unacknowledged
	 * follows the gap, and the node's handshake learns where (the
	 * handshake reply's LastOrchestratorSeqNum). */
	struct cod_store_tx *tx = NULL;
	if (cod_store_begin(o->store, &tx, err) < 0)
		goto fail;
	int64_t now = cod_mono_ms();
	for (; i < n; i++) {
		if (!all[i]->info.node_type || strcmp(all[i]->info.node_type, "Compute")) {
			cod_node_free(all[i]);
			continue;
		}
		/* Connected nodes keep their state for one disconnect timeout:
		 * they reconnect and handshake again after our restart. */
		struct orch_node *ne = node_add(o, all[i]);
		uint64_t seq = 0, base = 0;
		bool found = false;
		if (cod_store_get_compute_seq(o->store, all[i]->info.node_id, &seq, &found, err) < 0 ||
		    cod_store_tx_outbox_rebase(tx, all[i]->info.node_id, all[i]->last_orchestrator_seq,
					       OUTBOX_RESTART_GAP, &base, err) < 0) {
			cod_store_rollback(tx);
			i++; /* all[i] belongs to the node table now */
			goto fail;
		}
		/* without a record, the first message from the node is the start */
		ne->compute_seq_known = found;
		ne->last_compute_seq = seq;
		ne->acked_seq = ne->sent_seq = base;
		ne->need_handshake = true;
		ne->last_seen_ms = now;
	}
	free(all);
	return cod_store_commit(tx, err);
fail:
	for (; i < n; i++)
		cod_node_free(all[i]);
	free(all);
	return -1;
}

void orch_nodes_free(struct cod_orchestrator *o)
{
	for (size_t i = 0; i < o->nnodes; i++)
		cod_node_free(o->nodes[i].state);
	free(o->nodes);
	o->nodes = NULL;
	o->nnodes = 0;
}

void orch_nodes_snapshot(struct cod_orchestrator *o, struct cod_node_state ***out, size_t *n)
{
	pthread_mutex_lock(&o->nodes_lock);
	*out = xcalloc(o->nnodes ? o->nnodes : 1, sizeof(**out));
	*n = o->nnodes;
	for (size_t i = 0; i < o->nnodes; i++)
		(*out)[i] = cod_node_dup(o->nodes[i].state);
	pthread_mutex_unlock(&o->nodes_lock);
}

/* A copy of the node's state for the store, with the sequence numbers. */
static struct cod_node_state *persistable(const struct orch_node *ne)
{
	struct cod_node_state *copy = cod_node_dup(ne->state);
	copy->last_compute_seq = ne->last_compute_seq;
	copy->last_orchestrator_seq = ne->acked_seq;
	return copy;
}

static void persist(struct cod_orchestrator *o, struct cod_node_state *copy)
{
	struct cod_error *err = NULL;
	if (cod_store_put_node(o->store, copy, &err) < 0) {
		cod_warn("nodes", "node=%s persist: %s", copy->info.node_id, err->message);
		cod_error_free(err);
	}
	cod_node_free(copy);
}

static void reply(struct cod_orchestrator *o, const char *reply_to, const char *type, json_t *payload)
{
	if (!reply_to) {
		json_decref(payload);
		return;
	}
	cleanup_free char *rtype = xasprintf("%sResponse", type);
	struct cod_envelope env = {.type = rtype, .seq = 0, .source = o->self.node_id, .time = cod_now_ns(),
				   .payload = payload};
	size_t len = 0;
	cleanup_free char *data = cod_envelope_encode(&env, &len);
	json_decref(payload);
	struct cod_error *err = NULL;
	if (cod_nats_publish(o->nc, reply_to, data, len, &err) < 0) {
		cod_warn("nodes", "reply %s: %s", rtype, err->message);
		cod_error_free(err);
	}
}

static int resources_from_json(const json_t *v, struct cod_resources *r)
{
	if (!json_is_object(v))
		return -1;
	json_t *cpu = cod_json_iget(v, "CPU"), *mem = cod_json_iget(v, "Memory"), *disk = cod_json_iget(v, "Disk"),
	       *gpu = cod_json_iget(v, "GPU");
	r->cpu = json_is_number(cpu) ? json_number_value(cpu) : 0;
	r->memory = json_is_integer(mem) && json_integer_value(mem) > 0 ? (uint64_t)json_integer_value(mem) : 0;
	r->disk = json_is_integer(disk) && json_integer_value(disk) > 0 ? (uint64_t)json_integer_value(disk) : 0;
	r->gpu = json_is_integer(gpu) && json_integer_value(gpu) > 0 ? (uint64_t)json_integer_value(gpu) : 0;
	return 0;
}

static struct cod_node_state *info_from_payload(const json_t *payload, const char *node_id, struct cod_error **err)
{
	json_t *info = cod_json_iget(payload, "NodeInfo");
	if (!json_is_object(info)) {
		cod_error_set(err, COD_E_BAD_REQUEST, "payload has no NodeInfo");
		return NULL;
	}
	json_t *wrapped = json_pack("{s:O}", "Info", info);
	struct cod_node_state *st = cod_node_from_json(wrapped, err);
	json_decref(wrapped);
	if (!st)
		return NULL;
	if (!st->info.node_id || strcmp(st->info.node_id, node_id)) {
		cod_error_set(err, COD_E_BAD_REQUEST, "NodeInfo.NodeID \"%s\" does not match the subject's node \"%s\"",
			      st->info.node_id ? st->info.node_id : "", node_id);
		cod_node_free(st);
		return NULL;
	}
	free(st->info.node_type);
	st->info.node_type = xstrdup("Compute");
	return st;
}

static uint64_t json_u64(const json_t *obj, const char *key)
{
	json_t *v = cod_json_iget(obj, key);
	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static void handshake(struct cod_orchestrator *o, const char *node_id, const char *reply_to, const json_t *payload)
{
	struct cod_error *err = NULL;
	struct cod_node_state *info = info_from_payload(payload, node_id, &err);
	if (!info) {
		cod_warn("nodes", "node=%s handshake refused: %s", node_id, err->message);
		reply(o, reply_to, COD_MSG_HANDSHAKE,
		      json_pack("{s:b, s:s}", "Accepted", 0, "Reason", err->message));
		cod_error_free(err);
		return;
	}
	uint64_t node_last = json_u64(payload, "LastOrchestratorSeqNum");
	/* A node that has seen numbers this store never handed out (the
	 * orchestrator's store was reset, the node's was not) would drop
	 * our next messages as repeats: number them past what it saw. */
	bool moved = false;
	if (node_last && cod_store_outbox_catch_up(o->store, node_id, node_last, &moved, &err) < 0) {
		cod_warn("nodes", "node=%s handshake: %s", node_id, err->message);
		reply(o, reply_to, COD_MSG_HANDSHAKE,
		      json_pack("{s:b, s:s}", "Accepted", 0, "Reason", err->message));
		cod_error_free(err);
		cod_node_free(info);
		return;
	}
	if (moved)
		cod_info("nodes",
			 "node=%s has seen messages up to %llu, beyond this store's numbering: it continues "
			 "from there",
			 node_id, (unsigned long long)node_last);
	int64_t now = cod_now_ns();
	bool joined = false;
	pthread_mutex_lock(&o->nodes_lock);
	struct orch_node *ne = orch_node_find(o, node_id);
	if (ne && ne->state->membership == COD_NODE_REJECTED) {
		pthread_mutex_unlock(&o->nodes_lock);
		cod_node_free(info);
		cod_info("nodes", "node=%s handshake refused: rejected", node_id);
		reply(o, reply_to, COD_MSG_HANDSHAKE,
		      json_pack("{s:b, s:s}", "Accepted", 0, "Reason",
				"node is rejected; an operator can delete it with 'cod node delete'"));
		return;
	}
	if (!ne) {
		ne = node_add(o, info);
		ne->state->membership = o->cfg->orch_manual_approval ? COD_NODE_PENDING : COD_NODE_APPROVED;
		info = NULL;
	} else {
		/* keep what the orchestrator owns: membership, times */
		info->membership = ne->state->membership;
		info->connection = ne->state->connection;
		info->connected_since = ne->state->connected_since;
		info->disconnected_since = ne->state->disconnected_since;
		cod_node_free(ne->state);
		ne->state = info;
		info = NULL;
	}
	if (ne->state->connection != COD_NODE_CONNECTED) {
		ne->state->connection = COD_NODE_CONNECTED;
		ne->state->connected_since = now;
		joined = true;
	}
	ne->state->last_heartbeat = now;
	ne->last_seen_ms = cod_mono_ms();
	free(ne->state->last_error);
	ne->state->last_error = NULL;
	/* resume the outbox from what the node processed; a node that lost
	 * its state, or talks to us for the first time since our start
	 * (the numbering moved on, see orch_nodes_load), adopts our
	 * acknowledged position */
	ne->need_handshake = false;
	if (node_last > ne->acked_seq)
		ne->acked_seq = node_last;
	ne->sent_seq = ne->acked_seq;
	uint64_t acked = ne->acked_seq;
	uint64_t compute_last = ne->compute_seq_known ? ne->last_compute_seq : 0;
	bool approved = ne->state->membership == COD_NODE_APPROVED;
	struct cod_node_state *copy = persistable(ne);
	pthread_mutex_unlock(&o->nodes_lock);

	persist(o, copy);
	/* The inbox commits without waiting for the sync: acknowledge the
	 * node's messages only once what processed them is durable (the
	 * persist above usually made it so already). */
	struct cod_error *serr = NULL;
	if (cod_store_sync(o->store, &serr) < 0) {
		/* refused: the node shakes hands again later */
		cod_warn("nodes", "node=%s handshake: %s", node_id, serr->message);
		reply(o, reply_to, COD_MSG_HANDSHAKE, json_pack("{s:b, s:s}", "Accepted", 0, "Reason", serr->message));
		cod_error_free(serr);
		return;
	}
	if (cod_store_outbox_ack(o->store, node_id, acked, &err) < 0) {
		cod_warn("nodes", "node=%s outbox ack: %s", node_id, err->message);
		cod_error_free(err);
		err = NULL;
	}
	cod_info("nodes", "node=%s handshake accepted membership=%s resume_seq=%llu", node_id,
		 approved ? "APPROVED" : "PENDING", (unsigned long long)acked);
	reply(o, reply_to, COD_MSG_HANDSHAKE,
	      json_pack("{s:b, s:s, s:I, s:I}", "Accepted", 1, "Reason", "", "LastComputeSeqNum",
			(json_int_t)compute_last, "LastOrchestratorSeqNum", (json_int_t)acked));
	orch_kick_dispatcher(o);
	if (joined && approved)
		orch_node_event(o, node_id, true);
}

void orch_node_capacity_locked(struct orch_node *ne, const json_t *capacity)
{
	struct cod_compute_info *ci = &ne->state->info.compute;
	resources_from_json(cod_json_iget(capacity, "AvailableCapacity"), &ci->available_capacity);
	resources_from_json(cod_json_iget(capacity, "QueueUsedCapacity"), &ci->queue_capacity);
	ci->running_executions = (int64_t)json_u64(capacity, "RunningExecutions");
	ci->enqueued_executions = (int64_t)json_u64(capacity, "EnqueuedExecutions");
	ne->dirty = true;
}

static void heartbeat(struct cod_orchestrator *o, const char *node_id, const char *reply_to, const json_t *payload)
{
	uint64_t node_last = json_u64(payload, "LastOrchestratorSeqNum");
	pthread_mutex_lock(&o->nodes_lock);
	struct orch_node *ne = orch_node_find(o, node_id);
	if (!ne || ne->state->connection != COD_NODE_CONNECTED ||
	    ne->state->membership == COD_NODE_REJECTED || ne->need_handshake) {
		bool rejected = ne && ne->state->membership == COD_NODE_REJECTED;
		bool restarted = ne && ne->need_handshake;
		pthread_mutex_unlock(&o->nodes_lock);
		reply(o, reply_to, COD_MSG_HEARTBEAT,
		      json_pack("{s:b, s:s}", "Accepted", 0, "Reason",
				rejected    ? "node is rejected"
				: restarted ? "the orchestrator restarted; handshake again"
					    : "unknown or disconnected node; handshake again"));
		return;
	}
	orch_node_capacity_locked(ne, payload); /* marks ne dirty */
	ne->state->last_heartbeat = cod_now_ns();
	ne->last_seen_ms = cod_mono_ms();
	bool ack = node_last > ne->acked_seq;
	if (ack)
		ne->acked_seq = node_last;
	bool resend = false;
	if (ne->acked_seq < ne->sent_seq && ne->last_seen_ms - ne->last_send_ms > resend_after_ms(o)) {
		ne->sent_seq = ne->acked_seq;
		resend = true;
	}
	uint64_t acked = ne->acked_seq;
	uint64_t compute_last = ne->compute_seq_known ? ne->last_compute_seq : 0;
	pthread_mutex_unlock(&o->nodes_lock);

	/* The inbox commits without waiting for the sync: acknowledge the
	 * node's messages only once what processed them is durable. */
	struct cod_error *serr = NULL;
	if (cod_store_sync(o->store, &serr) < 0) {
		cod_warn("nodes", "node=%s heartbeat: %s", node_id, serr->message);
		cod_error_free(serr);
		compute_last = 0; /* acknowledges nothing */
	}
	reply(o, reply_to, COD_MSG_HEARTBEAT,
	      json_pack("{s:b, s:s, s:I}", "Accepted", 1, "Reason", "", "LastComputeSeqNum", (json_int_t)compute_last));
	struct cod_error *err = NULL;
	if (ack && cod_store_outbox_ack(o->store, node_id, acked, &err) < 0) {
		cod_warn("nodes", "node=%s outbox ack: %s", node_id, err->message);
		cod_error_free(err);
	}
	if (resend)
		orch_kick_dispatcher(o);
}

static void update_info(struct cod_orchestrator *o, const char *node_id, const char *reply_to, const json_t *payload)
{
	struct cod_error *err = NULL;
	struct cod_node_state *info = info_from_payload(payload, node_id, &err);
	if (!info) {
		reply(o, reply_to, COD_MSG_UPDATE_NODE_INFO, json_pack("{s:b, s:s}", "Accepted", 0, "Reason", err->message));
		cod_error_free(err);
		return;
	}
	pthread_mutex_lock(&o->nodes_lock);
	struct orch_node *ne = orch_node_find(o, node_id);
	if (!ne || ne->state->membership == COD_NODE_REJECTED) {
		pthread_mutex_unlock(&o->nodes_lock);
		cod_node_free(info);
		reply(o, reply_to, COD_MSG_UPDATE_NODE_INFO,
		      json_pack("{s:b, s:s}", "Accepted", 0, "Reason", ne ? "node is rejected" : "handshake first"));
		return;
	}
	info->membership = ne->state->membership;
	info->connection = ne->state->connection;
	info->connected_since = ne->state->connected_since;
	info->disconnected_since = ne->state->disconnected_since;
	info->last_heartbeat = cod_now_ns();
	cod_node_free(ne->state);
	ne->state = info;
	ne->last_seen_ms = cod_mono_ms();
	struct cod_node_state *copy = persistable(ne);
	pthread_mutex_unlock(&o->nodes_lock);
	persist(o, copy);
	reply(o, reply_to, COD_MSG_UPDATE_NODE_INFO, json_pack("{s:b, s:s}", "Accepted", 1, "Reason", ""));
}

static void mark_disconnected(struct orch_node *ne, const char *why)
{
	ne->state->connection = COD_NODE_DISCONNECTED;
	ne->state->disconnected_since = cod_now_ns();
	free(ne->state->last_error);
	ne->state->last_error = xstrdup(why);
	ne->dirty = true;
}

static void shutdown_notice(struct cod_orchestrator *o, const char *node_id, const char *reply_to,
			    const json_t *payload)
{
	json_t *reason = cod_json_iget(payload, "Reason");
	pthread_mutex_lock(&o->nodes_lock);
	struct orch_node *ne = orch_node_find(o, node_id);
	struct cod_node_state *copy = NULL;
	if (ne && ne->state->connection == COD_NODE_CONNECTED) {
		mark_disconnected(ne, json_is_string(reason) ? json_string_value(reason) : "node shut down");
		uint64_t last = json_u64(payload, "LastOrchestratorSeqNum");
		if (last > ne->acked_seq)
			ne->acked_seq = last;
		copy = persistable(ne);
	}
	pthread_mutex_unlock(&o->nodes_lock);
	reply(o, reply_to, COD_MSG_SHUTDOWN_NOTICE, json_object());
	if (copy) {
		cod_info("nodes", "node=%s shut down", node_id);
		persist(o, copy);
		orch_node_event(o, node_id, false);
	}
}

void orch_on_ctrl(void *ctx, const char *subject, const char *reply_to, const char *data, size_t len)
{
	struct cod_orchestrator *o = ctx;
	cleanup_free char *node_id = cod_subject_node(subject);
	struct cod_envelope env = {0};
	struct cod_error *err = NULL;
	if (!node_id || cod_envelope_decode(data, len, &env, &err) < 0) {
		cod_warn("nodes", "subject=%s dropped: %s", subject, err ? err->message : "bad subject");
		cod_error_free(err);
		return;
	}
	if (!strcmp(env.type, COD_MSG_HANDSHAKE))
		handshake(o, node_id, reply_to, env.payload);
	else if (!strcmp(env.type, COD_MSG_HEARTBEAT))
		heartbeat(o, node_id, reply_to, env.payload);
	else if (!strcmp(env.type, COD_MSG_UPDATE_NODE_INFO))
		update_info(o, node_id, reply_to, env.payload);
	else if (!strcmp(env.type, COD_MSG_SHUTDOWN_NOTICE))
		shutdown_notice(o, node_id, reply_to, env.payload);
	else
		cod_warn("nodes", "node=%s unknown control message \"%s\"", node_id, env.type);
	cod_envelope_release(&env);
}

void orch_nodes_check(struct cod_orchestrator *o, bool persist_all)
{
	int64_t now = cod_mono_ms();
	int64_t timeout = o->cfg->orch_disconnect_timeout_ms > 0 ? o->cfg->orch_disconnect_timeout_ms : 60000;
	struct cod_strlist lost = {0};
	struct cod_node_state **copies = NULL;
	size_t ncopies = 0;
	pthread_mutex_lock(&o->nodes_lock);
	for (size_t i = 0; i < o->nnodes; i++) {
		struct orch_node *ne = &o->nodes[i];
		if (ne->state->connection == COD_NODE_CONNECTED && now - ne->last_seen_ms > timeout) {
			mark_disconnected(ne, "no heartbeat within Orchestrator.NodeManager.DisconnectTimeout");
			cod_strlist_add(&lost, ne->state->info.node_id);
		}
		if (ne->dirty && (persist_all || ne->state->connection == COD_NODE_DISCONNECTED)) {
			copies = xrealloc(copies, cod_mul_size(ncopies + 1, sizeof(*copies)));
			copies[ncopies++] = persistable(ne);
			ne->dirty = false;
		}
	}
	pthread_mutex_unlock(&o->nodes_lock);
	for (size_t i = 0; i < ncopies; i++)
		persist(o, copies[i]);
	free(copies);
	for (size_t i = 0; i < lost.n; i++) {
		cod_warn("nodes", "node=%s disconnected: no heartbeat", lost.items[i]);
		orch_node_event(o, lost.items[i], false);
	}
	cod_strlist_release(&lost);
}

void orch_node_live(void *arg, struct cod_node_state *node)
{
	struct cod_orchestrator *o = arg;
	if (!node->info.node_id)
		return;
	pthread_mutex_lock(&o->nodes_lock);
	const struct orch_node *ne = orch_node_find(o, node->info.node_id);
	if (ne) {
		const struct cod_compute_info *live = &ne->state->info.compute;
		struct cod_compute_info *ci = &node->info.compute;
		ci->available_capacity = live->available_capacity;
		ci->queue_capacity = live->queue_capacity;
		ci->running_executions = live->running_executions;
		ci->enqueued_executions = live->enqueued_executions;
		node->last_heartbeat = ne->state->last_heartbeat;
	}
	pthread_mutex_unlock(&o->nodes_lock);
}

void orch_node_changed(void *arg, const char *node_id)
{
	struct cod_orchestrator *o = arg;
	struct cod_node_state *fresh = NULL;
	struct cod_error *err = NULL;
	int rc = cod_store_get_node(o->store, node_id, &fresh, &err);
	cod_error_free(err);
	bool approved_now = false;
	pthread_mutex_lock(&o->nodes_lock);
	struct orch_node *ne = orch_node_find(o, node_id);
	if (ne && rc < 0) {
		/* deleted: forget it; if it is still running it handshakes
		 * again and comes back as a new node */
		cod_node_free(ne->state);
		*ne = o->nodes[--o->nnodes];
	} else if (ne && fresh) {
		approved_now = ne->state->membership != COD_NODE_APPROVED && fresh->membership == COD_NODE_APPROVED &&
			       ne->state->connection == COD_NODE_CONNECTED;
		ne->state->membership = fresh->membership;
		if (fresh->membership == COD_NODE_REJECTED && ne->state->connection == COD_NODE_CONNECTED)
			mark_disconnected(ne, "node rejected by an operator");
	}
	pthread_mutex_unlock(&o->nodes_lock);
	cod_node_free(fresh);
	if (approved_now)
		orch_node_event(o, node_id, true);
}
