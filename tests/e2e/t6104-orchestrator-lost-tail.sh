#!/usr/bin/env bash
# t6104-orchestrator-lost-tail: the orchestrator publishes a plan's messages
# once its commit is made, before the WAL sync, so a power cut can lose
# commits whose messages the nodes already have. Simulated: the
# orchestrator's files are copied while it is stopped (what a power cut
# leaves), more jobs start, then it is killed and started again on the
# copy. The nodes must cancel the executions it no longer knows, and take
# its new messages, numbered past everything they saw. Heartbeats are
# rare here: a heartbeat reply acknowledges the node's messages after a
# sync, which a power cut right after the copy would not have let happen.
. "$(dirname "$0")/lib.sh"

SLOW_ACKS=(-c Orchestrator.NodeManager.DisconnectTimeout=10m)
start_cluster_orchestrator "${SLOW_ACKS[@]}" || { not_ok "orchestrator starts"; exit 1; }
ORCH_ARGS=(-c Orchestrator.Port="${NATS_URL##*:}" "${SLOW_ACKS[@]}")
start_compute w1 -c Compute.Heartbeat.Interval=10m
start_compute w2 -c Compute.Heartbeat.Interval=10m
wait_for "two compute nodes connect" 30 has_connected_nodes 2 || exit 1

submit() { # NAME SLEEP [CPU]: prints the job ID
	printf '{"Job": {"Name": "%s", "Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop", "Params": {"Sleep": "%s"}}, "Resources": {"CPU": "%s"}}]}}' \
		"$1" "$2" "${3:-500m}" |
		curl -s -X PUT -H 'Content-Type: application/json' --data-binary @- "$API/api/v1/orchestrator/jobs" | jq -r .JobID
}
count_state() { # STATE: jobs in that state
	curl -s "$API/api/v1/orchestrator/jobs?limit=0" | jq --arg s "$1" '[.Items[] | select(.State.StateType == $s)] | length'
}
at_least() { [ "$(count_state "$1")" -ge "$2" ]; }

for i in $(seq 1 6); do submit "before-$i" 10ms >/dev/null; done
wait_for "six jobs complete" 30 at_least Completed 6

# the snapshot a power cut would leave
kill -STOP "$ORCH_PID"
cp -a "$COD_DIR" "$TEST_TMP/snapshot"
kill -CONT "$ORCH_PID"
ok "orchestrator files copied while it was stopped"

lost=()
# small: the nodes' capacity the orchestrator sees after the restart is
# what their handshakes said, before the cancellations (heartbeats are rare)
for i in $(seq 1 8); do lost+=("$(submit "lost-$i" 5m 100m)"); done
wait_for "eight long jobs are approved" 30 at_least Running 8
accepted_on_nodes() { # 6 before, 8 lost
	[ "$(cat "$TEST_TMP/w1.log" "$TEST_TMP/w2.log" | grep -c -- '-> BidAccepted')" -ge 14 ]
}
wait_for "the nodes hold them" 30 accepted_on_nodes

kill -KILL "$ORCH_PID"
wait "$ORCH_PID" 2>/dev/null
keep=(); for p in "${PIDS[@]}"; do [ "$p" = "$ORCH_PID" ] || keep+=("$p"); done; PIDS=("${keep[@]}")
rm -rf "$COD_DIR"
cp -a "$TEST_TMP/snapshot" "$COD_DIR"
COD_ORCHESTRATOR_AUTH_TOKEN=$CLUSTER_TOKEN start_orchestrator -c Orchestrator.Host=127.0.0.1 "${FAST_CLUSTER[@]}" \
	"${ORCH_ARGS[@]}" || { not_ok "orchestrator restarts on the copy"; exit 1; }
ok "orchestrator restarted on the copy"
wait_for "compute nodes reconnect" 30 has_connected_nodes 2

missing=0
for id in "${lost[@]}"; do
	code=$(curl -s -o /dev/null -w '%{http_code}' "$API/api/v1/orchestrator/jobs/$id")
	[ "$code" = 404 ] && missing=$((missing + 1))
done
expect_eq "the copy does not know the eight long jobs" "$missing" 8

cancelled_on_nodes() {
	[ "$(cat "$TEST_TMP/w1.log" "$TEST_TMP/w2.log" | grep -c 'Cancelled: the orchestrator does not know this execution')" -ge 8 ]
}
wait_for "the nodes cancel the executions the orchestrator lost" 30 cancelled_on_nodes
check "a node learns where the orchestrator's messages continue" \
	grep -q "the orchestrator's messages continue after" "$TEST_TMP/w1.log" "$TEST_TMP/w2.log"

for i in $(seq 1 10); do submit "after-$i" 10ms >/dev/null; done
wait_for "ten new jobs complete (the nodes take the new numbering)" 30 at_least Completed 16
failed=$(count_state Failed)
expect_eq "none failed" "$failed" 0
[ "$failed" = 0 ] || curl -s "$API/api/v1/orchestrator/jobs?limit=0" |
	jq -r '[.Items[] | select(.State.StateType == "Failed")][0].State.Message' | sed 's/^/# /'
