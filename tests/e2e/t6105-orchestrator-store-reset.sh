#!/usr/bin/env bash
# t6105-orchestrator-store-reset: the orchestrator's store is wiped and the
# orchestrator started again while a compute node keeps its own. The node
# has seen message numbers the new store never handed out; at its
# handshake the orchestrator numbers past them, so new jobs run there
# (instead of their messages being dropped as repeats).
. "$(dirname "$0")/lib.sh"

start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
ORCH_ARGS=(-c Orchestrator.Port="${NATS_URL##*:}")
start_compute w1
wait_for "a compute node connects" 30 has_connected_nodes 1 || exit 1

submit() { # NAME
	printf '{"Job": {"Name": "%s", "Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}}' "$1" |
		curl -s -o /dev/null -X PUT -H 'Content-Type: application/json' --data-binary @- "$API/api/v1/orchestrator/jobs"
}
completed_at_least() {
	[ "$(curl -s "$API/api/v1/orchestrator/jobs?limit=0" | jq '[.Items[] | select(.State.StateType == "Completed")] | length')" -ge "$1" ]
}
for i in $(seq 1 5); do submit "before-$i"; done
wait_for "five jobs complete" 30 completed_at_least 5

kill -TERM "$ORCH_PID"
wait "$ORCH_PID" 2>/dev/null
keep=(); for p in "${PIDS[@]}"; do [ "$p" = "$ORCH_PID" ] || keep+=("$p"); done; PIDS=("${keep[@]}")
rm -rf "$COD_DIR"
COD_ORCHESTRATOR_AUTH_TOKEN=$CLUSTER_TOKEN start_orchestrator -c Orchestrator.Host=127.0.0.1 "${FAST_CLUSTER[@]}" \
	"${ORCH_ARGS[@]}" || { not_ok "orchestrator starts on an empty store"; exit 1; }
ok "orchestrator started on an empty store"
wait_for "the compute node connects again" 30 has_connected_nodes 1

for i in $(seq 1 3); do submit "after-$i"; done
wait_for "three new jobs complete on the node" 30 completed_at_least 3
check "the orchestrator says it numbers past what the node saw" \
	grep -q "beyond this store's numbering" "$TEST_TMP/orchestrator.log"
