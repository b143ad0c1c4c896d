/*
 * dispatch.c - publishes each node's outbox in sequence order. A committer
 * publishes its own messages right after the commit when they are next in
 * their node's sequence (orch_send_committed); the dispatcher thread sends
 * the rest: woken when a committer could not, after handshakes (resume) and
 * when a heartbeat shows messages went unacknowledged for too long (resend).
 */
#include "orchestrator/orchestrator_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/util.h"
#include "common/banned.h"

#define BATCH 256

/* The envelope of a stored message (heap text). */
static char *encode(struct cod_orchestrator *o, const struct cod_outbox_msg *m, size_t *len)
{
	return cod_envelope_encode_text(m->type, m->seq, o->self.node_id, cod_now_ns(), m->payload, NULL,
					len);
}

/* Record that node_id has everything up to last, unless its position
 * moved meanwhile (a handshake resets it: keep that). */
static void mark_sent(struct cod_orchestrator *o, const char *node_id, uint64_t from, uint64_t last)
{
	pthread_mutex_lock(&o->nodes_lock);
	struct orch_node *ne = orch_node_find(o, node_id);
	if (ne && ne->sent_seq == from) {
		ne->sent_seq = last;
		ne->last_send_ms = cod_mono_ms();
	}
	pthread_mutex_unlock(&o->nodes_lock);
}

/* Publish what node_id has after its sent position; returns how many.
 * send_lock held. */
static size_t pump(struct cod_orchestrator *o, const char *node_id)
{
	pthread_mutex_lock(&o->nodes_lock);
	struct orch_node *ne = orch_node_find(o, node_id);
	bool ok = ne && ne->state->connection == COD_NODE_CONNECTED && !ne->need_handshake;
	uint64_t from = ok ? ne->sent_seq : 0;
	pthread_mutex_unlock(&o->nodes_lock);
	if (!ok)
		return 0;
	struct cod_outbox_msg *msgs = NULL;
	size_t n = 0;
	struct cod_error *err = NULL;
	if (cod_store_outbox_pending(o->store, node_id, from, BATCH, &msgs, &n, &err) < 0) {
		cod_warn("dispatch", "node=%s outbox: %s", node_id, err->message);
		cod_error_free(err);
		return 0;
	}
	cleanup_free char *subject = cod_subject_in(node_id);
	char **data = xcalloc(n ? n : 1, sizeof(char *));
	size_t *lens = xcalloc(n ? n : 1, sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		data[i] = encode(o, &msgs[i], &lens[i]);
	/* Test hook (fault injection): every pair goes out reordered and
	 * duplicated, b a a b, which receivers must absorb. */
	bool dup = o->fault_duplicate;
	uint64_t last = from;
	size_t sent = 0;
	for (size_t i = 0; i < n; i++) {
		int rc = 0;
		if (dup && i + 1 < n && i % 2 == 0) {
			size_t order[] = {i + 1, i, i, i + 1};
			for (size_t k = 0; k < 4 && rc == 0; k++)
				rc = cod_nats_publish(o->nc, subject, data[order[k]], lens[order[k]], &err);
			if (rc == 0) {
				last = msgs[i + 1].seq;
				sent += 2;
				i++;
				continue;
			}
		} else {
			rc = cod_nats_publish(o->nc, subject, data[i], lens[i], &err);
			if (rc == 0 && dup)
				rc = cod_nats_publish(o->nc, subject, data[i], lens[i], &err);
		}
		if (rc < 0) {
			cod_debug("dispatch", "node=%s seq=%llu not sent: %s", node_id, (unsigned long long)msgs[i].seq,
				  err->message);
			cod_error_free(err);
			err = NULL;
			break;
		}
		last = msgs[i].seq;
		sent++;
	}
	for (size_t i = 0; i < n; i++)
		free(data[i]);
	free(data);
	free(lens);
	for (size_t i = 0; i < n; i++)
		cod_outbox_msg_release(&msgs[i]);
	free(msgs);
	if (sent)
		mark_sent(o, node_id, from, last);
	return sent;
}

void orch_send_committed(struct cod_orchestrator *o, const struct cod_outbox_msg *msgs, size_t n)
{
	if (!n)
		return;
	bool kick = o->fault_duplicate; /* the test hook lives in pump() */
	pthread_mutex_lock(&o->send_lock);
	for (size_t i = 0; i < n && !o->fault_duplicate; i++) {
		const struct cod_outbox_msg *m = &msgs[i];
		pthread_mutex_lock(&o->nodes_lock);
		struct orch_node *ne = orch_node_find(o, m->node_id);
		bool next = ne && ne->state->connection == COD_NODE_CONNECTED && !ne->need_handshake &&
			    ne->sent_seq + 1 == m->seq;
		pthread_mutex_unlock(&o->nodes_lock);
		if (!next) {
			/* behind (the dispatcher has older ones to send first)
			 * or not connected: the dispatcher decides */
			kick = true;
			continue;
		}
		size_t len;
		cleanup_free char *subject = cod_subject_in(m->node_id);
		cleanup_free char *data = encode(o, m, &len);
		struct cod_error *err = NULL;
		if (cod_nats_publish(o->nc, subject, data, len, &err) < 0) {
			cod_debug("dispatch", "node=%s seq=%llu not sent: %s", m->node_id, (unsigned long long)m->seq,
				  err->message);
			cod_error_free(err);
			kick = true;
			continue;
		}
		mark_sent(o, m->node_id, m->seq - 1, m->seq);
	}
	pthread_mutex_unlock(&o->send_lock);
	if (kick)
		orch_kick_dispatcher(o);
}

void *orch_dispatch_main(void *arg)
{
	cod_thread_name("cod-dispatch");
	struct cod_orchestrator *o = arg;
	for (;;) {
		/* a kick, or once a second in case one was missed */
		pthread_mutex_lock(&o->lock);
		struct timespec ts;
		cod_mono_deadline(&ts, 1000);
		while (!o->dispatch_kick && !o->stopping)
			if (pthread_cond_timedwait(&o->dispatch_cond, &o->lock, &ts) == ETIMEDOUT)
				break;
		bool stopping = o->stopping;
		o->dispatch_kick = false;
		pthread_mutex_unlock(&o->lock);
		if (stopping)
			return NULL;
		struct cod_strlist ids = {0};
		pthread_mutex_lock(&o->nodes_lock);
		for (size_t i = 0; i < o->nnodes; i++)
			if (o->nodes[i].state->connection == COD_NODE_CONNECTED)
				cod_strlist_add(&ids, o->nodes[i].state->info.node_id);
		pthread_mutex_unlock(&o->nodes_lock);
		bool more = false;
		pthread_mutex_lock(&o->send_lock);
		for (size_t i = 0; i < ids.n; i++)
			if (pump(o, ids.items[i]) == BATCH)
				more = true;
		pthread_mutex_unlock(&o->send_lock);
		cod_strlist_release(&ids);
		if (more)
			orch_kick_dispatcher(o);
	}
}
