#!/usr/bin/env bash
# kill -9 a compute node mid-job: it goes DISCONNECTED and the execution is
# retried on another node; nothing stays Running.
. "$(dirname "$0")/lib.sh"

start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
start_compute n1 -c Labels=slot=first
wait_for "first node connects" 30 has_connected_nodes 1 || exit 1

J=$(submit_json '{"Job": {"Name": "survivor", "Type": "batch", "Tasks": [{"Name": "main",
	"Engine": {"Type": "noop", "Params": {"Sleep": "3s"}}}]}}')
running_on_n1() { jq -e '.[] | select(.NodeID == "n1" and .ComputeState.StateType == 6)' <<<"$(executions "$J")"; }
wait_for "the execution runs on n1" 30 running_on_n1
start_compute n2 -c Labels=slot=second
wait_for "a second node connects" 30 has_connected_nodes 2
kill_compute n1
ok "n1 killed with SIGKILL"
node_status() { curl -s "$API/api/v1/orchestrator/nodes/n1" | jq -r .Node.Connection; }
n1_gone() { [ "$(node_status)" = DISCONNECTED ]; }
wait_for "n1 is marked DISCONNECTED" 30 n1_gone
wait_for "the job completes on another node" 60 job_is "$J" Completed
EX=$(executions "$J")
expect_eq "the n1 execution failed as lost" "$(jq_of '[.[] | select(.NodeID == "n1")][0].ComputeState.StateType' "$EX")" 10
expect_eq "the retry completed on n2" "$(jq_of '[.[] | select(.ComputeState.StateType == 9)][0].NodeID' "$EX")" n2
expect_eq "nothing is left running" "$(jq_of '[.[] | select(.ComputeState.StateType == 6)] | length' "$EX")" 0

# a restarted compute node fails what it was running (side effects unknown)
J2=$(submit_json '{"Job": {"Name": "restart", "Type": "batch", "Constraints": [{"Key": "slot", "Operator": "=", "Values": ["second"]}],
	"Meta": {"cod.retry.attempts": "2"}, "Tasks": [{"Name": "main", "Engine": {"Type": "noop", "Params": {"Sleep": "2s"}}}]}}')
running_on_n2() { jq -e '.[] | select(.NodeID == "n2" and .ComputeState.StateType == 6)' <<<"$(executions "$J2")"; }
wait_for "the execution runs on n2" 30 running_on_n2
kill_compute n2
start_compute n2 -c Labels=slot=second
wait_for "the job completes after the restart" 60 job_is "$J2" Completed
EX=$(executions "$J2")
expect_eq "the interrupted execution failed" "$(jq_of '[.[] | select(.ComputeState.StateType == 10)] | length' "$EX")" 1
expect_eq "its retry completed" "$(jq_of '[.[] | select(.ComputeState.StateType == 9)] | length' "$EX")" 1

# a daemon restarted with its node runs again in its directory, without the
# old run's logs: its first output comes after a 5 s sleep, so for that long
# the restarted run has written nothing
D=$(submit_json '{"Job": {"Name": "restarted-daemon", "Type": "daemon", "Constraints": [{"Key": "slot", "Operator": "=", "Values": ["second"]}],
	"Tasks": [{"Name": "main", "Engine": {"Type": "noop", "Params": {"Sleep": "5s", "Lines": 1000, "Interval": "1s"}}}]}}')
DEXEC=
daemon_exec() { DEXEC=$(jq -r '[.[] | select(.NodeID == "n2")][0].ID // empty' <<<"$(executions "$D")"); [ -n "$DEXEC" ]; }
wait_for "the daemon is placed on n2" 30 daemon_exec
DLOG="$TEST_TMP/n2/compute/executions/$DEXEC/logs/stdout"
wait_for "its first run writes a line" 30 test -s "$DLOG"
kill_compute n2
start_compute n2 -c Labels=slot=second
wait_for "n2 comes back" 30 grep -q "daemon/service executions restarted" "$TEST_TMP/n2.log"
check "the restarted run starts without the old run's log" test ! -e "$DLOG"
wait_for "and writes its own" 30 test -s "$DLOG"
