#!/usr/bin/env bash
# Duplicate and reordered messages change nothing: with the fault hook on,
# every pair of messages goes out as b a a b in both directions, and every
# job still completes with exactly one completed execution per partition.
. "$(dirname "$0")/lib.sh"

export COD_FAULT_DUPLICATE_MESSAGES=1
start_cluster_orchestrator --log-level debug || { not_ok "orchestrator starts"; exit 1; }
start_compute d1 --log-level debug
start_compute d2 --log-level debug
wait_for "two compute nodes connect" 30 has_connected_nodes 2 || exit 1

ids=()
for i in $(seq 1 20); do
	ids+=("$(submit_json "{\"Job\": {\"Name\": \"dup-$i\", \"Type\": \"batch\", \"Count\": 2,
		\"Tasks\": [{\"Name\": \"main\", \"Engine\": {\"Type\": \"noop\"}}]}}")")
done
all_done() {
	local id
	for id in "${ids[@]}"; do job_terminal "$id" || return 1; done
}
wait_for "all 20 jobs finish" 90 all_done
bad=0
extra=0
for id in "${ids[@]}"; do
	[ "$(job_state "$id")" = Completed ] || bad=$((bad + 1))
	EX=$(executions "$id")
	[ "$(jq_of '[.[] | select(.ComputeState.StateType == 9)] | length' "$EX")" = 2 ] || extra=$((extra + 1))
	[ "$(jq_of '[.[] | select(.ComputeState.StateType == 9) | .PartitionIndex] | unique | length' "$EX")" = 2 ] ||
		extra=$((extra + 1))
done
expect_eq "every job Completed" "$bad" 0
expect_eq "exactly one completed execution per partition" "$extra" 0
check "compute nodes received and dropped duplicates" grep -q "already processed" "$TEST_TMP/d1.log" "$TEST_TMP/d2.log"
check "the orchestrator received and dropped duplicates" grep -q "dropped: duplicate" "$TEST_TMP/orchestrator.log"
