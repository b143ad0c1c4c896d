#!/usr/bin/env bash
# Label constraints pick the right nodes; impossible ones fail with the
# reason, or queue when QueueTimeout allows and run once a node fits.
. "$(dirname "$0")/lib.sh"

start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
start_compute eu1 -c Labels=zone=eu,ssd=yes
start_compute us1 -c Labels=zone=us
wait_for "two compute nodes connect" 30 has_connected_nodes 2 || exit 1

node_of() { jq_of '.[0].NodeID' "$(executions "$1")"; }
run_with() { # name constraints-json
	submit_json "{\"Job\": {\"Name\": \"$1\", \"Type\": \"batch\", \"Constraints\": $2,
		\"Tasks\": [{\"Name\": \"main\", \"Engine\": {\"Type\": \"noop\"}}]}}"
}

J=$(run_with eq '[{"Key": "zone", "Operator": "=", "Values": ["eu"]}]')
wait_for "= constraint job completes" 30 job_is "$J" Completed
expect_eq "= picks eu1" "$(node_of "$J")" eu1
J=$(run_with ne '[{"Key": "zone", "Operator": "!=", "Values": ["eu"]}]')
wait_for "!= constraint job completes" 30 job_is "$J" Completed
expect_eq "!= picks us1" "$(node_of "$J")" us1
J=$(run_with in '[{"Key": "zone", "Operator": "in", "Values": ["us", "asia"]}]')
wait_for "in constraint job completes" 30 job_is "$J" Completed
expect_eq "in picks us1" "$(node_of "$J")" us1
J=$(run_with exists '[{"Key": "ssd", "Operator": "exists"}]')
wait_for "exists constraint job completes" 30 job_is "$J" Completed
expect_eq "exists picks eu1" "$(node_of "$J")" eu1

J=$(run_with impossible '[{"Key": "zone", "Operator": "=", "Values": ["mars"]}]')
wait_for "an impossible constraint fails at once" 15 job_is "$J" Failed
http GET "/api/v1/orchestrator/jobs/$J"
MSG=$(jq_of .Job.State.Message "$BODY")
expect_contains "the reason says not enough nodes" "$MSG" "not enough nodes"
expect_contains "the reason names the constraint" "$MSG" "zone"

# with QueueTimeout the job waits for a node that fits
Q=$(submit_json '{"Job": {"Name": "queued", "Type": "batch", "Constraints": [{"Key": "zone", "Operator": "=", "Values": ["asia"]}],
	"Tasks": [{"Name": "main", "Engine": {"Type": "noop"}, "Timeouts": {"QueueTimeout": 120}}]}}')
wait_for "the job is Queued" 15 job_is "$Q" Queued
start_compute asia1 -c Labels=zone=asia
wait_for "the queued job runs once a fitting node joins" 30 job_is "$Q" Completed
expect_eq "it ran on asia1" "$(node_of "$Q")" asia1

# a queue timeout that passes fails the job
QT=$(submit_json '{"Job": {"Name": "queue-timeout", "Type": "batch", "Constraints": [{"Key": "zone", "Operator": "=", "Values": ["moon"]}],
	"Tasks": [{"Name": "main", "Engine": {"Type": "noop"}, "Timeouts": {"QueueTimeout": 2}}]}}')
wait_for "the job is Queued first" 10 job_is "$QT" Queued
wait_for "and Failed once QueueTimeout passed" 30 job_is "$QT" Failed
