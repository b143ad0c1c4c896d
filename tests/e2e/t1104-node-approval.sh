#!/usr/bin/env bash
# Manual approval: a new node stays PENDING and gets no work until approved;
# a rejected node is refused.
. "$(dirname "$0")/lib.sh"

start_cluster_orchestrator -c Orchestrator.NodeManager.ManualApproval=true || { not_ok "orchestrator starts"; exit 1; }
start_compute p1
membership() { curl -s "$API/api/v1/orchestrator/nodes/$1" | jq -r .Node.Membership; }
is_pending() { [ "$(membership p1)" = PENDING ]; }
wait_for "a new node is PENDING" 30 is_pending

J=$(submit_json '{"Job": {"Name": "waits", "Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"},
	"Timeouts": {"QueueTimeout": 120}}]}}')
wait_for "the job queues: no approved node" 15 job_is "$J" Queued
expect_eq "no execution on the pending node" "$(jq_of 'length' "$(executions "$J")")" 0
run_cod node list --filter-approval PENDING --output json
expect_eq "node list --filter-approval PENDING" "$(jq_of '.[0].Info.NodeID' "$OUT")" p1

run_cod node approve p1
expect_eq "cod node approve" "$RC" 0
expect_eq "node is APPROVED" "$(membership p1)" APPROVED
wait_for "the job runs once the node is approved" 30 job_is "$J" Completed

start_compute r1
is_r1_pending() { [ "$(membership r1)" = PENDING ]; }
wait_for "second node PENDING" 30 is_r1_pending
run_cod node reject r1
expect_eq "cod node reject" "$RC" 0
expect_eq "node is REJECTED" "$(membership r1)" REJECTED
J2=$(submit_json '{"Job": {"Name": "not-on-rejected", "Type": "ops", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}}')
wait_for "ops job completes" 30 job_is "$J2" Completed
expect_eq "the rejected node got no work" "$(jq_of '[.[] | select(.NodeID == "r1")] | length' "$(executions "$J2")")" 0
kill_compute r1 TERM
start_compute r1
wait_for "the rejected node is told why when it reconnects" 30 grep -q rejected "$TEST_TMP/r1.log"
expect_eq "a rejected node stays rejected after reconnecting" "$(membership r1)" REJECTED
run_cod node delete r1
expect_eq "cod node delete" "$RC" 0
