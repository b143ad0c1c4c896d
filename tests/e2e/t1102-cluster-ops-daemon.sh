#!/usr/bin/env bash
# ops jobs run once on every matching node; daemon jobs too, and on nodes
# that join later.
. "$(dirname "$0")/lib.sh"

start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
start_compute a -c Labels=role=worker
start_compute b -c Labels=role=worker
start_compute c -c Labels=role=edge
wait_for "three compute nodes connect" 30 has_connected_nodes 3 || exit 1

OPS=$(submit_json '{"Job": {"Name": "ops-all", "Type": "ops", "Tasks": [{"Name": "main",
	"Engine": {"Type": "noop", "Params": {"Stdout": "hello"}}}]}}')
wait_for "ops job completes" 30 job_is "$OPS" Completed
expect_eq "ops ran once per node" "$(jq_of '[.[] | select(.ComputeState.StateType == 9)] | length' "$(executions "$OPS")")" 3
expect_eq "ops executions on distinct nodes" "$(jq_of '[.[].NodeID] | unique | length' "$(executions "$OPS")")" 3

OPS2=$(submit_json '{"Job": {"Name": "ops-workers", "Type": "ops", "Constraints": [{"Key": "role", "Operator": "=", "Values": ["worker"]}],
	"Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}}')
wait_for "constrained ops job completes" 30 job_is "$OPS2" Completed
expect_eq "ops with a constraint ran on the 2 workers" "$(jq_of 'length' "$(executions "$OPS2")")" 2

OPSF=$(submit_json '{"Job": {"Name": "ops-fail", "Type": "ops", "Constraints": [{"Key": "role", "Operator": "=", "Values": ["worker"]}],
	"Tasks": [{"Name": "main", "Engine": {"Type": "noop", "Params": {"ExitCode": 1}}}]}}')
wait_for "an ops job with a failing execution fails" 30 job_is "$OPSF" Failed

D=$(submit_json '{"Job": {"Name": "daemon", "Type": "daemon", "Constraints": [{"Key": "role", "Operator": "in", "Values": ["worker", "late"]}],
	"Tasks": [{"Name": "main", "Engine": {"Type": "noop", "Params": {"Sleep": "1h"}}}]}}')
running_daemons() { [ "$(jq_of '[.[] | select(.DesiredState.StateType == 1 and .ComputeState.StateType != 10)] | length' "$(executions "$D")")" -eq "$1" ]; }
wait_for "daemon runs on the 2 matching nodes" 30 running_daemons 2
wait_for "daemon job is Running" 10 job_is "$D" Running
start_compute d -c Labels=role=late
wait_for "a node joins" 30 has_connected_nodes 4
wait_for "the daemon starts on the node that joined later" 30 running_daemons 3
check "the ops job did not pick up the new node" test "$(jq_of 'length' "$(executions "$OPS")")" -eq 3

run_cod job stop "$D"
expect_eq "stop the daemon" "$RC" 0
stopped() { [ "$(jq_of '[.[] | select(.ComputeState.StateType == 11)] | length' "$(executions "$D")")" -eq 3 ]; }
wait_for "stop reaches the compute nodes: every daemon execution Cancelled" 30 stopped
expect_eq "daemon job is Stopped" "$(job_state "$D")" "Stopped"
