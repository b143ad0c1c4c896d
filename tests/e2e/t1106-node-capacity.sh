#!/usr/bin/env bash
# The free capacity the orchestrator sees for a node (what its
# over-subscription check and ranking use) follows the node's messages, not
# only its heartbeats: with heartbeats an hour apart, the CPU a long job
# holds shows as soon as the node answers the next bid, and comes back with
# the last result; the nodes API shows that live view, not the node state
# the orchestrator persists every few seconds. A job that finds the node
# over-subscribed (busy) is not failed with QueueTimeout 0: the node gets
# it anyway, queues it and runs it when the long job is done.
. "$(dirname "$0")/lib.sh"

start_cluster_orchestrator -c Orchestrator.NodeManager.DisconnectTimeout=1h || { not_ok "orchestrator starts"; exit 1; }
start_compute c1 -c Compute.Heartbeat.Interval=1h -c Compute.Heartbeat.InfoUpdateInterval=1h \
	-c Compute.AllocatedCapacity.CPU=2
wait_for "the compute node connects" 30 has_connected_nodes 1 || exit 1

avail_cpu() { curl -s "$API/api/v1/orchestrator/nodes/c1" | jq -r '.Node.Info.ComputeNodeInfo.AvailableCapacity.CPU'; }
exec_state_is() { [ "$(exec_field "$1" .ComputeState.StateType)" = "$2" ]; }
noop_job() { # name cpu params-json
	submit_json "{\"Job\": {\"Name\": \"$1\", \"Type\": \"batch\", \"Tasks\": [{\"Name\": \"main\",
		\"Engine\": {\"Type\": \"noop\", \"Params\": $3}, \"Resources\": {\"CPU\": \"$2\"}}]}}"
}

expect_eq "an idle node: all of its CPU is free" "$(avail_cpu)" 2

LONG=$(noop_job long 1.5 '{"Lines": 80, "Interval": "250ms"}')
wait_for "the long job runs" 20 job_is "$LONG" Running
SHORT=$(noop_job short 0.5 '{}')
wait_for "a short job next to it completes" 20 job_is "$SHORT" Completed
# the job's result was processed, so was the capacity its message carried
expect_eq "the node's answers carried the CPU the long job holds (no heartbeat since)" "$(avail_cpu)" 0.5
check "the long job still runs" job_is "$LONG" Running
run_cod node list --output json
expect_eq "node list shows the same live view" \
	"$(jq_of '.[] | select(.Info.NodeID == "c1") | .Info.ComputeNodeInfo.AvailableCapacity.CPU' "$OUT")" 0.5

# 1.5 used + 2 asked > 2 x 1.5 (OverSubscriptionFactor): the node is busy
BIG=$(noop_job big 2 '{}')
wait_for "a job that finds the node busy is placed on it, not failed" 10 \
	bash -c "curl -s $API/api/v1/orchestrator/jobs/$BIG/history | grep -q 'scheduled on node c1, which is busy'"
# compute state 5 = BidAccepted: accepted and queued on the node, not started
wait_for "it waits in the node's queue" 10 exec_state_is "$BIG" 5
check "while the long job runs" job_is "$LONG" Running
wait_for "the long job completes" 30 job_is "$LONG" Completed
wait_for "then the queued job runs and completes" 20 job_is "$BIG" Completed
expect_eq "the results gave the CPU back" "$(avail_cpu)" 2
