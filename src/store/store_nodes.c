/*
 * store_nodes.c - node states and the per-node outbox.
 *
 * The outbox is the transactional outbox of ARCHITECTURE.md: a message for a
 * node exists if and only if the state change that produced it committed.
 * Sequence numbers come from outbox_seq, so they keep increasing per node
 * even after every message was acknowledged and deleted.
 */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/mem.h"
#include "common/util.h"
#include "store/store_int.h"
#include "common/banned.h"

/* -------------------------------------------------------------- nodes */

int cod_store_put_node(struct cod_store *store, const struct cod_node_state *node, struct cod_error **err)
{
	const char *id = node->info.node_id;
	if (cod_str_empty(id))
		return cod_error_set(err, COD_E_BAD_REQUEST, "store node: missing node ID");
	cleanup_free char *doc = cod_node_dumps(node);

	struct cod_store_tx tx;
	if (store_tx_begin(store, true, &tx, err) < 0)
		return -1;
	int rc;
	{
		cleanup_stmt sqlite3_stmt *s = store_stmt(tx.conn, ST_NODE_UPSERT, err);
		if (!s) {
			rc = -1;
		} else {
			store_bind_text(s, 1, id);
			store_bind_text(s, 2, cod_node_membership_name(node->membership));
			store_bind_text(s, 3, cod_node_connection_name(node->connection));
			store_bind_i64(s, 4, tx.now);
			store_bind_text(s, 5, doc);
			rc = store_step_done(tx.conn, s, err, "write node");
		}
	}
	return store_tx_end(&tx, rc, err);
}

static struct cod_node_state *node_decode(const char *doc, struct cod_error **err)
{
	cleanup_json json_t *v = store_load(doc, "node", err);
	if (!v)
		return NULL;
	struct cod_node_state *n = cod_node_from_json(v, err);
	if (!n)
		store_decode_failed(err, "node");
	return n;
}

int cod_store_get_node(struct cod_store *store, const char *id_or_prefix, struct cod_node_state **out,
		       struct cod_error **err)
{
	*out = NULL;
	cleanup_free char *doc = NULL;
	if (store_resolve_doc(store, ST_NODE_RESOLVE, id_or_prefix, "node", "run \"cod node list\" to see node IDs",
			      &doc, err) < 0)
		return -1;
	return (*out = node_decode(doc, err)) ? 0 : -1;
}

static void *node_decode_any(const char *doc, struct cod_error **err)
{
	return node_decode(doc, err);
}

static void node_free_any(void *node)
{
	cod_node_free(node);
}

int cod_store_list_nodes(struct cod_store *store, struct cod_node_state ***out, size_t *n,
			 struct cod_error **err)
{
	return store_list_docs(store, ST_NODE_LIST, node_decode_any, node_free_any, "list nodes", (void ***)out, n,
			       err);
}

int cod_store_delete_node(struct cod_store *store, const char *id, struct cod_error **err)
{
	struct cod_store_tx tx;
	if (store_tx_begin(store, true, &tx, err) < 0)
		return -1;
	int rc;
	{
		cleanup_stmt sqlite3_stmt *s = store_stmt(tx.conn, ST_NODE_DELETE, err);
		if (!s) {
			rc = -1;
		} else {
			store_bind_text(s, 1, id);
			rc = store_step_done(tx.conn, s, err, "delete node");
		}
		if (rc == 0 && sqlite3_changes(tx.conn->db) == 0) {
			rc = cod_error_set(err, COD_E_NOT_FOUND, "node \"%s\" not found", id ? id : "");
			if (err && *err)
				cod_error_hint(*err, "run \"cod node list\" to see node IDs");
		}
	}
	return store_tx_end(&tx, rc, err);
}

/* ------------------------------------------------------------- outbox */

static int outbox_append_tx(struct cod_store_tx *tx, const char *node_id, const char *type,
			    const char *payload, uint64_t *seq_out, struct cod_error **err)
{
	struct store_conn *c = tx->conn;
	if (cod_str_empty(node_id) || cod_str_empty(type))
		return cod_error_set(err, COD_E_INTERNAL, "outbox message: missing node ID or type");
	int64_t seq;
	{
		cleanup_stmt sqlite3_stmt *s = store_stmt(c, ST_OUTBOX_NEXT_SEQ, err);
		if (!s)
			return -1;
		store_bind_text(s, 1, node_id);
		if (sqlite3_step(s) != SQLITE_ROW)
			return store_dberr(c, err, "outbox sequence");
		seq = sqlite3_column_int64(s, 0);
		if (store_step_done(c, s, err, "outbox sequence") < 0)
			return -1;
	}
	cleanup_stmt sqlite3_stmt *s = store_stmt(c, ST_OUTBOX_INSERT, err);
	if (!s)
		return -1;
	store_bind_text(s, 1, node_id);
	store_bind_i64(s, 2, seq);
	store_bind_text(s, 3, type);
	store_bind_text(s, 4, payload ? payload : "null");
	store_bind_i64(s, 5, tx->now);
	if (store_step_done(c, s, err, "append outbox message") < 0)
		return -1;
	if (seq_out)
		*seq_out = (uint64_t)seq;
	return 0;
}

int cod_store_tx_outbox_append(struct cod_store_tx *tx, const char *node_id, const char *type,
			       const char *payload, uint64_t *seq, struct cod_error **err)
{
	return outbox_append_tx(tx, node_id, type, payload, seq, err);
}

int cod_store_outbox_append(struct cod_store *store, const char *node_id, const char *type,
			    const char *payload, uint64_t *seq, struct cod_error **err)
{
	struct cod_store_tx tx;
	if (store_tx_begin(store, true, &tx, err) < 0)
		return -1;
	return store_tx_end(&tx, outbox_append_tx(&tx, node_id, type, payload, seq, err), err);
}

int cod_store_outbox_pending(struct cod_store *store, const char *node_id, uint64_t after_seq, size_t limit,
			     struct cod_outbox_msg **out, size_t *n, struct cod_error **err)
{
	*out = NULL;
	*n = 0;
	struct store_conn *c = store_conn_get(store, err);
	if (!c)
		return -1;
	struct cod_outbox_msg *items = NULL;
	size_t count = 0, alloc = 0;
	int rc = 0;
	{
		cleanup_stmt sqlite3_stmt *s = store_stmt(c, ST_OUTBOX_PENDING, err);
		int step = SQLITE_DONE;
		if (!s) {
			rc = -1;
		} else {
			store_bind_text(s, 1, node_id);
			store_bind_i64(s, 2, after_seq > INT64_MAX ? INT64_MAX : (int64_t)after_seq);
			store_bind_i64(s, 3, limit && limit < INT64_MAX ? (int64_t)limit : -1);
		}
		while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
			COD_GROW(items, alloc, count + 1);
			struct cod_outbox_msg *m = &items[count++];
			m->node_id = xstrdup(node_id);
			m->seq = (uint64_t)sqlite3_column_int64(s, 0);
			m->type = xstrdup(store_col_text(s, 1));
			m->payload = xstrdup(store_col_text(s, 2));
			m->create_time = sqlite3_column_int64(s, 3);
		}
		if (rc == 0 && step != SQLITE_DONE)
			rc = store_dberr(c, err, "read outbox");
	}
	store_conn_put(store, c);
	if (rc < 0) {
		for (size_t i = 0; i < count; i++)
			cod_outbox_msg_release(&items[i]);
		free(items);
		return -1;
	}
	*out = items;
	*n = count;
	return 0;
}

int cod_store_outbox_ack(struct cod_store *store, const char *node_id, uint64_t seq, struct cod_error **err)
{
	struct cod_store_tx tx;
	if (store_tx_begin(store, true, &tx, err) < 0)
		return -1;
	int rc;
	{
		cleanup_stmt sqlite3_stmt *s = store_stmt(tx.conn, ST_OUTBOX_ACK, err);
		if (!s) {
			rc = -1;
		} else {
			store_bind_text(s, 1, node_id);
			store_bind_i64(s, 2, seq > INT64_MAX ? INT64_MAX : (int64_t)seq);
			rc = store_step_done(tx.conn, s, err, "acknowledge outbox messages");
		}
	}
	return store_tx_end(&tx, rc, err);
}

/* One statement of the rebase: node_id ?1, then the integers given. */
static int rebase_step(struct store_conn *c, const char *sql, const char *node_id, const int64_t *v, int nv,
		       int64_t *row, struct cod_error **err)
{
	cleanup_finalize sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK)
		return store_dberr(c, err, "rebase the outbox");
	store_bind_text(s, 1, node_id);
	for (int i = 0; i < nv; i++)
		store_bind_i64(s, i + 2, v[i]);
	int step = sqlite3_step(s);
	if (step == SQLITE_ROW && row) {
		*row = sqlite3_column_int64(s, 0);
		step = sqlite3_step(s);
	}
	return step == SQLITE_DONE ? 0 : store_dberr(c, err, "rebase the outbox");
}

/* Renumber node_id's rows to follow b (transaction open): they are
 * first .. last without holes (acknowledgements delete a prefix). */
static int renumber(struct store_conn *c, const char *node_id, int64_t last, int64_t b,
		    struct cod_error **err)
{
	int64_t first = -1;
	int rc = rebase_step(c, "SELECT coalesce(min(seq), -1) FROM outbox WHERE node_id = ?1", node_id, NULL,
			     0, &first, err);
	int64_t top = b;
	if (rc == 0 && first >= 0) {
		int64_t v[] = {first, b};
		rc = rebase_step(c, "UPDATE outbox SET seq = seq - ?2 + 1 + ?3 WHERE node_id = ?1", node_id,
				 v, 2, NULL, err);
		top = b + (last - first + 1);
	}
	if (rc == 0)
		rc = rebase_step(c,
				 "INSERT INTO outbox_seq (node_id, last_seq) VALUES (?1, ?2) "
				 "ON CONFLICT (node_id) DO UPDATE SET last_seq = excluded.last_seq",
				 node_id, &top, 1, NULL, err);
	return rc;
}

int cod_store_outbox_catch_up(struct cod_store *store, const char *node_id, uint64_t seen, bool *moved,
			      struct cod_error **err)
{
	*moved = false;
	struct cod_store_tx tx;
	if (store_tx_begin(store, true, &tx, err) < 0)
		return -1;
	int64_t s = seen > INT64_MAX / 4 ? INT64_MAX / 4 : (int64_t)seen, last = 0;
	int rc = rebase_step(tx.conn, "SELECT last_seq FROM outbox_seq WHERE node_id = ?1", node_id, NULL, 0,
			     &last, err);
	if (rc == 0 && s > last) {
		rc = renumber(tx.conn, node_id, last, s, err);
		*moved = rc == 0;
	}
	/* nothing renumbered: nothing to make durable (no sync per handshake) */
	tx.nowait = !*moved;
	if (store_tx_end(&tx, rc, err) < 0) {
		*moved = false;
		return -1;
	}
	return 0;
}

int cod_store_tx_outbox_rebase(struct cod_store_tx *tx, const char *node_id, uint64_t acked, uint64_t gap,
			       uint64_t *base, struct cod_error **err)
{
	*base = acked;
	int64_t a = acked > INT64_MAX / 4 ? INT64_MAX / 4 : (int64_t)acked, last = -1;
	int rc = rebase_step(tx->conn, "DELETE FROM outbox WHERE node_id = ?1 AND seq <= ?2", node_id, &a, 1,
			     NULL, err);
	if (rc == 0)
		rc = rebase_step(tx->conn, "SELECT last_seq FROM outbox_seq WHERE node_id = ?1", node_id,
				 NULL, 0, &last, err);
	if (rc == 0 && last >= 0) {
		int64_t b = (last > a ? last : a) + (int64_t)gap;
		rc = renumber(tx->conn, node_id, last, b, err);
		if (rc == 0)
			*base = (uint64_t)b;
	}
	return rc;
}

void cod_outbox_msg_release(struct cod_outbox_msg *m)
{
	if (!m)
		return;
	free(m->node_id);
	free(m->type);
	free(m->payload);
	memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------- compute sequences */

int cod_store_tx_set_compute_seq(struct cod_store_tx *tx, const char *node_id, uint64_t seq, struct cod_error **err)
{
	cleanup_stmt sqlite3_stmt *s = store_stmt(tx->conn, ST_NODE_SEQ_SET, err);
	if (!s)
		return cod_error_wrap(err, "save node sequence");
	store_bind_text(s, 1, node_id);
	store_bind_i64(s, 2, (int64_t)seq);
	return store_step_done(tx->conn, s, err, "save node sequence");
}

int cod_store_get_compute_seq(struct cod_store *store, const char *node_id, uint64_t *seq, bool *found,
			      struct cod_error **err)
{
	*seq = 0;
	*found = false;
	struct store_conn *c = store_conn_get(store, err);
	if (!c)
		return -1;
	int rc = 0;
	{
		cleanup_finalize sqlite3_stmt *s = NULL;
		if (sqlite3_prepare_v2(c->db, "SELECT last_compute_seq FROM node_seq WHERE node_id = ?1", -1, &s, NULL) !=
		    SQLITE_OK) {
			rc = store_dberr(c, err, "read node sequence");
		} else {
			store_bind_text(s, 1, node_id);
			int step = sqlite3_step(s);
			if (step == SQLITE_ROW) {
				*seq = (uint64_t)sqlite3_column_int64(s, 0);
				*found = true;
			} else if (step != SQLITE_DONE) {
				rc = store_dberr(c, err, "read node sequence");
			}
		}
	}
	store_conn_put(store, c);
	return rc;
}
