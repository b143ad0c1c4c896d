/*
 * session.c - the compute node's side of the conversation with the
 * orchestrator: handshake (retried with backoff until accepted, again
 * after every reconnect), heartbeats carrying capacity and the last
 * orchestrator sequence number, node-info updates, the ShutdownNotice,
 * and the dispatcher that publishes the outbox in sequence order.
 *
 * Acknowledgements: a handshake reply's LastComputeSeqNum says what the
 * orchestrator has; the outbox rows up to it are deleted and publishing
 * resumes after it. Heartbeat replies acknowledge the same way; when two
 * heartbeats in a row show no progress while messages are out, the
 * dispatcher rewinds and sends them again (NATS does not keep messages
 * for a subscriber that was away).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/doc.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "compute/compute_int.h"
#include "storage/storage.h"
#include "version.h"
#include "common/banned.h"

#define HANDSHAKE_BACKOFF_MIN_MS 250
#define INFO_NOW_MIN_GAP_MS 500 /* the soonest node info follows another when the inventory grew */
#define HANDSHAKE_BACKOFF_MAX_MS 5000
/* Refused by the orchestrator (e.g. "node is rejected"): ask rarely. */
#define HANDSHAKE_REJECTED_MAX_MS 30000
#define HEARTBEAT_FAILURES_MAX 3
#define ACK_STALLS_MAX 2
#define SHUTDOWN_TIMEOUT_MS 1000
#define DISPATCH_BATCH 256

static const char *const protocols[] = {"ncl/v1"};

json_t *cod_compute_node_info_json(struct cod_compute *c)
{
	/* The struct borrows everything: encoding only reads it. */
	struct cod_node_info info = {0};
	info.node_id = c->node_id;
	info.node_type = (char *)"Compute";
	info.labels = c->labels;
	info.supported_protocols.items = (char **)protocols;
	info.supported_protocols.n = COD_ARRAY_SIZE(protocols);
	info.has_compute = true;
	info.compute.engines = c->engines;
	info.compute.publishers = c->publishers;
	info.compute.storages = c->storages;
	info.compute.max_capacity = c->max;
	info.compute.queue_capacity = c->buffer.queued;
	cod_buffer_available(&c->buffer, &info.compute.available_capacity);
	info.compute.max_job_requirements = c->max;
	info.compute.running_executions = (int64_t)c->buffer.nrunning;
	info.compute.enqueued_executions = (int64_t)c->buffer.n;
	info.version = (char *)cod_version_string();
	info.compute.inventory = cod_storage_inventory(c->cfg);
	json_t *out = cod_node_info_to_json(&info);
	json_decref(info.compute.inventory);
	return out;
}

/* A control request envelope (heap text); payload is consumed. */
static char *ctrl_message(struct cod_compute *c, const char *type, json_t *payload, size_t *len)
{
	struct cod_envelope env = {
	    .type = (char *)type,
	    .seq = 0,
	    .source = c->node_id,
	    .time = cod_now_ns(),
	    .payload = payload,
	};
	char *text = cod_envelope_encode(&env, len);
	json_decref(payload);
	return text;
}

/* The response object of a reply: an envelope's Payload, or the reply
 * itself when it is a bare object. NULL when it is not JSON. */
static json_t *reply_payload(const char *text, size_t len)
{
	json_t *v = json_loadb(text, len, 0, NULL);
	if (!json_is_object(v)) {
		json_decref(v);
		return NULL;
	}
	json_t *type = cod_json_iget(v, "Type");
	json_t *payload = cod_json_iget(v, "Payload");
	if (json_is_string(type) && json_is_object(payload)) {
		json_incref(payload);
		json_decref(v);
		return payload;
	}
	return v;
}

static uint64_t json_u64(const json_t *obj, const char *key)
{
	json_t *v = cod_json_iget(obj, key);
	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static const char *json_text(const json_t *obj, const char *key)
{
	json_t *v = cod_json_iget(obj, key);
	return json_is_string(v) ? json_string_value(v) : "";
}

/* Send a control request; the reply's payload or NULL (logged). */
static json_t *request(struct cod_compute *c, const char *type, json_t *payload, int timeout_ms, bool quiet)
{
	size_t len;
	cleanup_free char *msg = ctrl_message(c, type, payload, &len);
	cleanup_free char *reply = NULL;
	size_t reply_len = 0;
	struct cod_error *err = NULL;
	if (cod_nats_request(c->nc, c->subj_ctrl, msg, len, timeout_ms, &reply, &reply_len, &err) < 0) {
		if (quiet)
			cod_debug("compute", "%s: %s", type, err->message);
		else
			cod_warn("compute", "%s: %s", type, err->message);
		cod_error_free(err);
		return NULL;
	}
	json_t *obj = reply_payload(reply, reply_len);
	if (!obj)
		cod_warn("compute", "%s: the orchestrator's reply is not a JSON object", type);
	return obj;
}

/* Acknowledge the outbox up to lcs (c->lock held). */
static void acknowledge(struct cod_compute *c, uint64_t lcs, bool from_heartbeat)
{
	if (lcs > c->outbox_last)
		lcs = c->outbox_last;
	if (lcs > c->acked_seq) {
		struct cod_error *err = NULL;
		if (cod_cstore_outbox_ack(c->store, lcs, &err) < 0) {
			cod_warn("compute", "acknowledge outbox: %s", err->message);
			cod_error_free(err);
			return;
		}
		c->acked_seq = lcs;
		c->ack_stalls = 0;
		return;
	}
	if (!from_heartbeat || c->disp_cursor <= lcs) {
		c->ack_stalls = 0;
		return;
	}
	if (++c->ack_stalls >= ACK_STALLS_MAX) {
		cod_info("compute",
			 "orchestrator still has messages up to %llu of %llu; sending the rest again",
			 (unsigned long long)lcs, (unsigned long long)c->disp_cursor);
		c->disp_cursor = lcs;
		c->session_gen++;
		c->ack_stalls = 0;
		pthread_cond_broadcast(&c->disp_cond);
	}
}

/* 0 when accepted; *rejected when the orchestrator said no. */
static int handshake(struct cod_compute *c, bool *rejected, int attempt)
{
	*rejected = false;
	pthread_mutex_lock(&c->lock);
	uint64_t gen = c->session_gen;
	json_t *payload =
	    json_pack("{s:o, s:I, s:I}", "NodeInfo", cod_compute_node_info_json(c), "StartTime",
		      (json_int_t)c->start_time, "LastOrchestratorSeqNum", (json_int_t)c->last_orch_seq);
	pthread_mutex_unlock(&c->lock);
	json_t *reply = request(c, COD_MSG_HANDSHAKE, payload, c->request_timeout_ms, attempt > 1);
	if (!reply)
		return -1;
	if (!json_is_true(cod_json_iget(reply, "Accepted"))) {
		const char *reason = json_text(reply, "Reason");
		cod_warn("compute", "the orchestrator refused this node: %s; asking again later",
			 *reason ? reason : "no reason given");
		*rejected = true;
		json_decref(reply);
		return -1;
	}
	uint64_t lcs = json_u64(reply, "LastComputeSeqNum");
	uint64_t los = json_u64(reply, "LastOrchestratorSeqNum");
	json_decref(reply);

	pthread_mutex_lock(&c->lock);
	if (gen != c->session_gen || !c->connected) {
		/* The connection changed under us: start over. */
		pthread_mutex_unlock(&c->lock);
		return -1;
	}
	struct cod_error *err = NULL;
	/* Up to lcs the orchestrator has our messages, unless lcs is beyond
	 * anything this store ever numbered (the store was reset): then none
	 * of the pending ones are among them. */
	c->acked_seq = 0;
	if (lcs <= c->outbox_last)
		acknowledge(c, lcs, false);
	if (cod_cstore_outbox_resume(c->store, lcs, NULL, &err) < 0) {
		cod_err("compute", "handshake: %s", err->message);
		cod_error_free(err);
		pthread_mutex_unlock(&c->lock);
		return -1;
	}
	c->outbox_last = cod_cstore_outbox_last(c->store);
	c->acked_seq = lcs;
	if (los > c->last_orch_seq) {
		/* The orchestrator will not resend what this node's store
		 * forgot (a reset store under a kept node ID): follow it. */
		struct cod_cstore_write w = {.orch_seq = los};
		if (cod_cstore_write(c->store, &w, &err) < 0) {
			cod_err("compute", "handshake: %s", err->message);
			cod_error_free(err);
			pthread_mutex_unlock(&c->lock);
			return -1;
		}
		cod_info("compute",
			 "the orchestrator's messages continue after %llu (it restarted, or forgot this "
			 "node's; we had %llu)",
			 (unsigned long long)los, (unsigned long long)c->last_orch_seq);
		c->last_orch_seq = los;
	}
	c->disp_cursor = lcs;
	c->session_gen++;
	c->session_ok = true;
	c->ack_stalls = 0;
	pthread_cond_broadcast(&c->disp_cond);
	pthread_cond_broadcast(&c->agent_cond); /* inbound messages waited for this */
	cod_info(
	    "compute",
	    "node=%s handshake accepted; orchestrator has our messages up to %llu, we have its up to %llu",
	    c->node_id, (unsigned long long)lcs, (unsigned long long)c->last_orch_seq);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* What the node has free and queued (c->lock held): a heartbeat's payload
 * and the Capacity of every message the node sends, so that the
 * orchestrator's over-subscription check sees the node as of its last
 * message rather than of its last heartbeat (up to 15 s old, and one taken
 * at a busy moment kept the node out of placements until the next). */
static json_t *capacity_json(struct cod_compute *c)
{
	struct cod_resources available;
	cod_buffer_available(&c->buffer, &available);
	return json_pack("{s:o, s:o, s:I, s:I}", "AvailableCapacity", cod_resources_to_json(&available),
			 "QueueUsedCapacity", cod_resources_to_json(&c->buffer.queued), "RunningExecutions",
			 (json_int_t)c->buffer.nrunning, "EnqueuedExecutions", (json_int_t)c->buffer.n);
}

static char *capacity_text(struct cod_compute *c)
{
	json_t *j = capacity_json(c);
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}

static void heartbeat(struct cod_compute *c, int *failures)
{
	pthread_mutex_lock(&c->lock);
	json_t *payload = capacity_json(c);
	json_object_set_new(payload, "NodeID", json_string(c->node_id));
	json_object_set_new(payload, "LastOrchestratorSeqNum", json_integer((json_int_t)c->last_orch_seq));
	uint64_t gen = c->session_gen;
	pthread_mutex_unlock(&c->lock);
	json_t *reply = request(c, COD_MSG_HEARTBEAT, payload, c->request_timeout_ms, false);
	pthread_mutex_lock(&c->lock);
	if (!reply) {
		if (++*failures >= HEARTBEAT_FAILURES_MAX && c->session_ok) {
			cod_warn("compute", "%d heartbeats failed; handshaking again", *failures);
			c->session_ok = false;
			c->session_gen++;
		}
		pthread_mutex_unlock(&c->lock);
		return;
	}
	*failures = 0;
	json_t *accepted = cod_json_iget(reply, "Accepted");
	if (json_is_false(accepted)) {
		const char *reason = json_text(reply, "Reason");
		cod_info("compute", "orchestrator asks for a new handshake%s%s", *reason ? ": " : "", reason);
		c->session_ok = false;
		c->session_gen++;
	} else if (gen == c->session_gen && cod_json_iget(reply, "LastComputeSeqNum")) {
		acknowledge(c, json_u64(reply, "LastComputeSeqNum"), true);
	}
	pthread_mutex_unlock(&c->lock);
	json_decref(reply);
}

static void update_info(struct cod_compute *c)
{
	pthread_mutex_lock(&c->lock);
	json_t *payload = json_pack("{s:o}", "NodeInfo", cod_compute_node_info_json(c));
	pthread_mutex_unlock(&c->lock);
	json_t *reply = request(c, COD_MSG_UPDATE_NODE_INFO, payload, c->request_timeout_ms, false);
	if (reply && json_is_false(cod_json_iget(reply, "Accepted"))) {
		const char *reason = json_text(reply, "Reason");
		cod_warn("compute", "node info update refused%s%s", *reason ? ": " : "", reason);
	}
	json_decref(reply);
}

static void wait_until(struct cod_compute *c, pthread_cond_t *cond, int64_t deadline_ms)
{
	struct timespec ts;
	cod_mono_deadline(&ts, deadline_ms - cod_mono_ms());
	pthread_cond_timedwait(cond, &c->lock, &ts);
}

void *cod_compute_ctrl_main(void *arg)
{
	cod_thread_name("cod-session");
	struct cod_compute *c = arg;
	int64_t backoff = HANDSHAKE_BACKOFF_MIN_MS, retry_at = 0, next_hb = 0, next_info = 0, last_info = 0;
	int attempt = 0, hb_failures = 0;
	pthread_mutex_lock(&c->lock);
	while (!c->stopping) {
		int64_t now = cod_mono_ms();
		int64_t wake = now + 1000;
		if (!c->session_ok) {
			if (c->connected && now >= retry_at) {
				pthread_mutex_unlock(&c->lock);
				bool rejected = false;
				int rc = handshake(c, &rejected, ++attempt);
				pthread_mutex_lock(&c->lock);
				now = cod_mono_ms();
				if (rc == 0) {
					attempt = 0;
					hb_failures = 0;
					backoff = HANDSHAKE_BACKOFF_MIN_MS;
					next_hb = now + c->heartbeat_ms;
					next_info = now + c->info_update_ms;
				} else {
					int64_t cap =
					    rejected ? HANDSHAKE_REJECTED_MAX_MS : HANDSHAKE_BACKOFF_MAX_MS;
					if (rejected && backoff < 1000)
						backoff = 1000;
					retry_at = now + backoff;
					backoff = backoff * 2 > cap ? cap : backoff * 2;
				}
				continue;
			}
			if (c->connected && retry_at < wake)
				wake = retry_at;
		} else if (c->heartbeat_now || now >= next_hb) {
			c->heartbeat_now = false;
			pthread_mutex_unlock(&c->lock);
			heartbeat(c, &hb_failures);
			pthread_mutex_lock(&c->lock);
			next_hb = cod_mono_ms() + c->heartbeat_ms;
			continue;
		} else if (now >= next_info || (c->info_now && now >= last_info + INFO_NOW_MIN_GAP_MS)) {
			c->info_now = false;
			last_info = now;
			pthread_mutex_unlock(&c->lock);
			update_info(c);
			pthread_mutex_lock(&c->lock);
			next_info = cod_mono_ms() + c->info_update_ms;
			continue;
		} else {
			wake = next_hb < next_info ? next_hb : next_info;
			if (c->info_now && last_info + INFO_NOW_MIN_GAP_MS < wake)
				wake = last_info + INFO_NOW_MIN_GAP_MS;
		}
		wait_until(c, &c->ctrl_cond, wake);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Publish one stored message as an envelope. */
static int publish(struct cod_compute *c, const struct cod_cstore_msg *m, const char *capacity)
{
	size_t len;
	cleanup_free char *text =
	    cod_envelope_encode_text(m->type, m->seq, c->node_id, m->create_time, m->payload, capacity, &len);
	struct cod_error *err = NULL;
	if (cod_nats_publish(c->nc, c->subj_out, text, len, &err) < 0) {
		cod_warn("compute", "publish %s seq=%llu: %s", m->type, (unsigned long long)m->seq,
			 err->message);
		cod_error_free(err);
		return -1;
	}
	cod_debug("compute", "sent %s seq=%llu", m->type, (unsigned long long)m->seq);
	return 0;
}

void cod_compute_send_committed(struct cod_compute *c, uint64_t seq, const char *type, const char *payload)
{
	/* the dispatcher owns the test hook's reordering */
	if (c->fault_duplicate || !c->connected || !c->session_ok || c->disp_cursor + 1 != seq)
		return;
	struct cod_cstore_msg m = {.seq = seq, .type = (char *)type, .payload = (char *)payload,
				   .create_time = cod_now_ns()};
	cleanup_free char *capacity = capacity_text(c);
	if (publish(c, &m, capacity) == 0)
		c->disp_cursor = seq;
}

void *cod_compute_disp_main(void *arg)
{
	cod_thread_name("cod-dispatch");
	struct cod_compute *c = arg;
	pthread_mutex_lock(&c->lock);
	while (!c->disp_stop) {
		if (!c->connected || !c->session_ok || c->disp_cursor >= c->outbox_last) {
			wait_until(c, &c->disp_cond, cod_mono_ms() + 1000);
			continue;
		}
		uint64_t after = c->disp_cursor, last = c->outbox_last, gen = c->session_gen;
		cleanup_free char *capacity = capacity_text(c);
		pthread_mutex_unlock(&c->lock);

		struct cod_cstore_msg *msgs = NULL;
		size_t n = 0;
		struct cod_error *err = NULL;
		uint64_t sent = after;
		bool failed = false;
		if (cod_cstore_outbox_pending(c->store, after, DISPATCH_BATCH, &msgs, &n, &err) < 0) {
			cod_err("compute", "read outbox: %s", err->message);
			cod_error_free(err);
			failed = true;
		}
		for (size_t i = 0; i < n && !failed; i++) {
			if (c->fault_duplicate && i + 1 < n) {
				/* Test hook: a pair goes out reordered and
				 * duplicated, b a a b; the orchestrator must
				 * absorb it. */
				const struct cod_cstore_msg *order[] = {&msgs[i + 1], &msgs[i], &msgs[i],
									&msgs[i + 1]};
				for (size_t k = 0; k < 4 && !failed; k++)
					failed = publish(c, order[k], capacity) < 0;
				if (!failed)
					sent = msgs[++i].seq;
				continue;
			}
			if (publish(c, &msgs[i], capacity) < 0 ||
			    (c->fault_duplicate && publish(c, &msgs[i], capacity) < 0))
				failed = true;
			else
				sent = msgs[i].seq;
		}
		if (!failed && n == 0)
			sent = last; /* acknowledged and deleted meanwhile */
		cod_cstore_msgs_free(msgs, n);

		pthread_mutex_lock(&c->lock);
		if (gen == c->session_gen && sent > c->disp_cursor)
			c->disp_cursor = sent;
		pthread_cond_broadcast(&c->disp_cond);
		if (failed)
			wait_until(c, &c->disp_cond, cod_mono_ms() + 500);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

void cod_compute_flush_outbox(struct cod_compute *c, int timeout_ms)
{
	int64_t deadline = cod_mono_ms() + timeout_ms;
	pthread_mutex_lock(&c->lock);
	while (c->session_ok && c->connected && c->disp_cursor < c->outbox_last && cod_mono_ms() < deadline)
		wait_until(c, &c->disp_cond, deadline);
	pthread_mutex_unlock(&c->lock);
	if (c->nc && cod_nats_connected(c->nc))
		cod_nats_flush(c->nc, timeout_ms, NULL);
}

void cod_compute_send_shutdown(struct cod_compute *c)
{
	pthread_mutex_lock(&c->lock);
	bool send = c->connected;
	json_t *payload = json_pack("{s:s, s:s, s:I}", "NodeID", c->node_id, "Reason", "node shutting down",
				    "LastOrchestratorSeqNum", (json_int_t)c->last_orch_seq);
	pthread_mutex_unlock(&c->lock);
	if (!send) {
		json_decref(payload);
		return;
	}
	json_t *reply = request(c, COD_MSG_SHUTDOWN_NOTICE, payload, SHUTDOWN_TIMEOUT_MS, true);
	json_decref(reply);
}
