#!/usr/bin/env bash
# A batch job with Count=3 over three compute nodes: one partition per node,
# distinct partition env vars, Completed; a wrong token is refused.
. "$(dirname "$0")/lib.sh"

start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
ok "orchestrator with embedded nats-server at $NATS_URL"
for n in c1 c2 c3; do start_compute "$n"; done
wait_for "three compute nodes connect" 30 has_connected_nodes 3 || exit 1

run_cod node list --output json
expect_eq "node list shows 3 compute nodes" "$(jq_of '[.[] | select(.Info.NodeType == "Compute")] | length' "$OUT")" 3
expect_contains "compute nodes advertise the noop engine" "$OUT" '"noop"'

ID=$(submit_json '{"Job": {"Name": "spread", "Type": "batch", "Count": 3, "Tasks": [{"Name": "main",
	"Engine": {"Type": "noop", "Params": {"Stdout": "partition=${BACALHAU_PARTITION_INDEX} of ${BACALHAU_PARTITION_COUNT} job=${BACALHAU_JOB_ID}"}}}]}}')
check "job submitted" test -n "$ID"
# the submission's own transaction schedules it: its executions exist
# when the submit call returns, and their events carry the submission's
# transaction time
EX=$(executions "$ID")
expect_eq "three executions when the submit returns" "$(jq_of 'length' "$EX")" 3
http GET "/api/v1/orchestrator/jobs/$ID/history"
expect_eq "scheduled in the submission's transaction" \
	"$(jq_of '[.Items[] | select(.Event.Message == "Job submitted" or (.Event.Message | startswith("scheduled on node"))) | .Time] | unique | length' "$BODY")" 1
wait_for "job completes" 30 job_is "$ID" Completed
EX=$(executions "$ID")
expect_eq "three completed executions" "$(jq_of '[.[] | select(.ComputeState.StateType == 9)] | length' "$EX")" 3
expect_eq "on three distinct nodes" "$(jq_of '[.[].NodeID] | unique | length' "$EX")" 3
expect_eq "partitions 0,1,2" "$(jq_of '[.[].PartitionIndex] | sort | map(tostring) | join(",")' "$EX")" "0,1,2"
expect_eq "each execution saw its own partition" \
	"$(jq_of '[.[].RunOutput.Stdout | capture("partition=(?<p>[0-9]+)").p] | sort | join(",")' "$EX")" "0,1,2"
expect_contains "partition count and job id injected" "$(jq_of '.[0].RunOutput.Stdout' "$EX")" "of 3 job=$ID"

run_cod job describe "$ID"
expect_contains "describe shows Completed" "$OUT" "Completed"
http GET "/api/v1/orchestrator/jobs/$ID/history?event_type=execution"
check "execution history recorded" bash -c "[ $(jq_of '.Items | length' "$BODY") -ge 6 ]"

# cod job run --wait follows the job to the end
cat >"$TEST_TMP/wait.yaml" <<'YAML'
Name: waited
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params:
        Sleep: 300ms
YAML
run_cod job run "$TEST_TMP/wait.yaml" --wait-timeout-secs 30
expect_eq "job run --wait exits 0 for a completed job" "$RC" 0
expect_contains "job run --wait reports completion" "$OUT" "Completed"

# a job that lasts past Compute.PhaseReportDelay (20 ms) reports the phase
# it is in (Running, 6; Preparing too on a machine slow enough to take
# 20 ms for it) between its bid and its result; the message that
# started it was handled on the node's NATS thread, which wakes the agent
# for the report
LID=$(submit_json '{"Job": {"Name": "lasting", "Type": "batch",
	"Tasks": [{"Name": "main", "Engine": {"Type": "noop", "Params": {"Sleep": "300ms"}}}]}}')
wait_for "lasting job completes" 30 job_is "$LID" Completed
http GET "/api/v1/orchestrator/jobs/$LID/history"
expect_eq "the lasting job's execution went BidAccepted, Running, Completed" \
	"$(jq_of '[.Items[] | select(.Type == "ExecutionLevel") | .ExecutionState.New] | map(select(. == 5 or . == 6 or . == 9)) | map(tostring) | join(",")' "$BODY")" "5,6,9"

# a failing job: exit code 3 on every attempt -> Failed after bounded retries
FID=$(submit_json '{"Job": {"Name": "fails", "Type": "batch", "Meta": {"cod.retry.attempts": "2"},
	"Tasks": [{"Name": "main", "Engine": {"Type": "noop", "Params": {"ExitCode": 3}}}]}}')
wait_for "failing job ends Failed" 30 job_is "$FID" Failed
EX=$(executions "$FID")
expect_eq "retried exactly twice (cod.retry.attempts=2)" "$(jq_of 'length' "$EX")" 2
http GET "/api/v1/orchestrator/jobs/$FID"
expect_contains "failure reason names the attempts" "$(jq_of .Job.State.Message "$BODY")" "2"
run_cod job run "$TEST_TMP/wait.yaml" --wait-timeout-secs 30 --force
cat >"$TEST_TMP/fail.yaml" <<'YAML'
Name: fail-wait
Type: batch
Meta:
  cod.retry.attempts: "1"
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params:
        Fail: simulated failure
YAML
run_cod job run "$TEST_TMP/fail.yaml" --wait-timeout-secs 30
expect_eq "job run --wait exits 1 for a failed job" "$RC" 1
expect_contains "the failure reason is printed" "$ERR" "simulated failure"

# an unknown engine fails at once with per-node reasons
UID_=$(submit_json '{"Job": {"Name": "flibble", "Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "flibble"}}]}}')
wait_for "unknown engine fails" 15 job_is "$UID_" Failed
http GET "/api/v1/orchestrator/jobs/$UID_"
expect_contains "not enough nodes message" "$(jq_of .Job.State.Message "$BODY")" "not enough nodes to run job"
expect_contains "per-node reason" "$(jq_of .Job.State.Message "$BODY")" "does not support engine flibble"

# a compute node with a wrong token exits non-zero with a clear message
COD_COMPUTE_AUTH_TOKEN=wrong "$COD" serve --compute --data-dir "$TEST_TMP/bad" -c "Compute.Orchestrators=$NATS_URL" \
	>"$TEST_TMP/bad.log" 2>&1 &
BAD=$!
deadline=$((SECONDS + 20))
while kill -0 $BAD 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
if kill -0 $BAD 2>/dev/null; then kill -9 $BAD; not_ok "wrong token: compute exits"; else
	wait $BAD; rc=$?
	check "wrong token: non-zero exit" test "$rc" -ne 0
	expect_contains "wrong token: message says so" "$(cat "$TEST_TMP/bad.log")" "uthoriz"
fi
