#!/usr/bin/env bash
# kill -9 the orchestrator while 200 noop jobs run, start it again: every
# job completes, none is lost, none completes twice.
. "$(dirname "$0")/lib.sh"

start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
ORCH_ARGS=(-c Orchestrator.Port="${NATS_URL##*:}")
start_compute w1
start_compute w2
wait_for "two compute nodes connect" 30 has_connected_nodes 2 || exit 1

for i in $(seq 1 200); do
	printf '{"Job": {"Name": "crash-%d", "Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop", "Params": {"Sleep": "20ms"}}}]}}' "$i" >"$TEST_TMP/j$i.json"
done
submitted=0
for i in $(seq 1 200); do
	curl -s -o /dev/null -w '%{http_code}\n' -X PUT -H 'Content-Type: application/json' \
		--data-binary "@$TEST_TMP/j$i.json" "$API/api/v1/orchestrator/jobs" | grep -q 200 && submitted=$((submitted + 1))
	if [ "$i" = 120 ]; then kill -KILL "$ORCH_PID"; break; fi
done
wait "$ORCH_PID" 2>/dev/null
keep=(); for p in "${PIDS[@]}"; do [ "$p" = "$ORCH_PID" ] || keep+=("$p"); done; PIDS=("${keep[@]}")
ok "orchestrator killed with SIGKILL after $submitted acknowledged submissions"

# same data dir, same NATS port: compute nodes reconnect on their own
COD_ORCHESTRATOR_AUTH_TOKEN=$CLUSTER_TOKEN start_orchestrator -c Orchestrator.Host=127.0.0.1 "${ORCH_ARGS[@]}" \
	"${FAST_CLUSTER[@]}" || { not_ok "orchestrator restarts"; exit 1; }
ok "orchestrator restarted"
wait_for "compute nodes reconnect" 30 has_connected_nodes 2
for i in $(seq 121 200); do
	curl -s -o /dev/null -w '%{http_code}\n' -X PUT -H 'Content-Type: application/json' \
		--data-binary "@$TEST_TMP/j$i.json" "$API/api/v1/orchestrator/jobs" | grep -q 200 && submitted=$((submitted + 1))
done
expect_eq "200 submissions acknowledged" "$submitted" 200

all_done() {
	local n
	n=$(curl -s "$API/api/v1/orchestrator/jobs?limit=0" | jq '[.Items[] | select(.State.StateType == "Completed")] | length')
	[ "$n" -ge 200 ]
}
wait_for "all 200 jobs complete" 120 all_done
LIST=$(curl -s "$API/api/v1/orchestrator/jobs?limit=0")
expect_eq "exactly 200 jobs exist" "$(jq_of '.Items | length' "$LIST")" 200
expect_eq "none failed" "$(jq_of '[.Items[] | select(.State.StateType != "Completed")] | length' "$LIST")" 0
twice=0
for id in $(jq_of '.Items[].ID' "$LIST"); do
	n=$(curl -s "$API/api/v1/orchestrator/jobs/$id/executions" | jq '[.Items[] | select(.ComputeState.StateType == 9)] | length')
	[ "$n" = 1 ] || twice=$((twice + 1))
done
expect_eq "every job completed exactly once" "$twice" 0
