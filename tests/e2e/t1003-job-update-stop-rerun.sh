#!/usr/bin/env bash
# Update by name (new version), stop, rerun, history. No compute node runs
# here: the QueueTimeout keeps the job Queued instead of failing it at once.
. "$(dirname "$0")/lib.sh"

start_orchestrator || { not_ok "orchestrator starts"; exit 1; }

cat >"$TEST_TMP/v1.yaml" <<'YAML'
Name: hello
Type: batch
Count: 2
Tasks:
  - Name: main
    Timeouts:
      QueueTimeout: 3600
    Engine:
      Type: docker
      Params:
        Image: busybox:1.37.0
        Entrypoint: [/bin/sh]
        Parameters: [-c, echo world1]
YAML
sed 's/world1/world2/' "$TEST_TMP/v1.yaml" >"$TEST_TMP/v2.yaml"

run_cod job run "$TEST_TMP/v1.yaml" --id-only --wait=false
ID=$OUT
expect_eq "v1 submitted" "$RC" 0
run_cod job run "$TEST_TMP/v1.yaml" --wait=false
expect_eq "unchanged resubmission refused" "$RC" 1
expect_contains "refusal says no changes" "$ERR" "no changes"
expect_contains "refusal hints --force" "$ERR" "--force"

run_cod job run "$TEST_TMP/v2.yaml" --id-only --wait=false
expect_eq "changed spec accepted" "$RC" 0
expect_eq "update keeps the job id" "$OUT" "$ID"
http GET "/api/v1/orchestrator/jobs/hello"
expect_eq "version is 2" "$(jq_of .Job.Version "$BODY")" 2
expect_contains "spec is the new one" "$(jq_of '.Job.Tasks[0].Engine.Params.Parameters[1]' "$BODY")" "world2"
http GET "/api/v1/orchestrator/jobs/hello?job_version=1"
expect_contains "version 1 still readable" "$(jq_of '.Job.Tasks[0].Engine.Params.Parameters[1]' "$BODY")" "world1"
http GET "/api/v1/orchestrator/jobs/$ID/versions"
expect_eq "two versions listed" "$(jq_of '[.Items[].Version] | join(",")' "$BODY")" "1,2"

run_cod job run "$TEST_TMP/v2.yaml" --force --id-only --wait=false
expect_eq "--force resubmits unchanged" "$RC" 0
http GET "/api/v1/orchestrator/jobs/hello"
expect_eq "forced update is version 3" "$(jq_of .Job.Version "$BODY")" 3

# diff
jq -n '{Job: {Name: "hello", Type: "batch", Count: 2, Tasks: [{Name: "main", Timeouts: {QueueTimeout: 3600}, Engine: {Type: "docker",
	Params: {Image: "busybox:1.37.0", Entrypoint: ["/bin/sh"], Parameters: ["-c", "echo world3"]}}}]}}' >"$TEST_TMP/d.json"
http PUT /api/v1/orchestrator/jobs/diff "$TEST_TMP/d.json"
expect_eq "diff endpoint" "$STATUS" 200
expect_contains "diff shows the removed line" "$(jq_of .Diff "$BODY")" "-"
expect_contains "diff shows the new value" "$(jq_of .Diff "$BODY")" "world3"

# stop
printf '{"reason": "testing stop"}' >"$TEST_TMP/reason.json"
http DELETE "/api/v1/orchestrator/jobs/$ID" "$TEST_TMP/reason.json"
expect_eq "stop answers 200" "$STATUS" 200
check "stop returns an evaluation id" bash -c "[ -n '$(jq_of .EvaluationID "$BODY")' ]"
http GET "/api/v1/orchestrator/jobs/$ID"
expect_eq "job is Stopped" "$(jq_of .Job.State.StateType "$BODY")" "Stopped"
expect_contains "stop reason kept" "$(jq_of .Job.State.Message "$BODY")" "testing stop"
http DELETE "/api/v1/orchestrator/jobs/$ID"
expect_eq "stopping a stopped job is a no-op" "$STATUS" 200

http GET "/api/v1/orchestrator/jobs/$ID/history?event_type=job"
check "history has the stop event" bash -c "jq -e '[.Items[] | select(.JobState.New == \"Stopped\")] | length == 1' <<<'$BODY' >/dev/null"
http GET "/api/v1/orchestrator/jobs/$ID/history?event_type=execution"
expect_eq "no execution events yet" "$(jq_of '.Items | length' "$BODY")" 0
http GET "/api/v1/orchestrator/jobs/$ID/history?event_type=nope"
expect_eq "bad event_type is a 400" "$STATUS" 400

# rerun
printf '{"JobVersion": 1, "Reason": "again"}' >"$TEST_TMP/rerun.json"
http PUT "/api/v1/orchestrator/jobs/$ID/rerun" "$TEST_TMP/rerun.json"
expect_eq "rerun answers 200" "$STATUS" 200
expect_eq "rerun creates version 4" "$(jq_of .JobVersion "$BODY")" 4
http GET "/api/v1/orchestrator/jobs/$ID"
check "rerun job is Pending or Queued" bash -c "[[ '$(jq_of .Job.State.StateType "$BODY")' =~ ^(Pending|Queued)$ ]]"
expect_contains "rerun uses version 1's spec" "$(jq_of '.Job.Tasks[0].Engine.Params.Parameters[1]' "$BODY")" "world1"
http PUT "/api/v1/orchestrator/jobs/$ID/rerun" "$TEST_TMP/rerun.json"
expect_eq "rerun of a pending or queued job is refused" "$STATUS" 400

# the CLI's view of the same operations
run_cod job stop hello
expect_eq "cod job stop by name" "$RC" 0
expect_contains "stop message" "$OUT" "evaluation ID"
run_cod job stop hello
expect_eq "second stop is an error in the CLI" "$RC" 1
run_cod job rerun hello
expect_eq "cod job rerun" "$RC" 0
run_cod job versions hello --output json
expect_eq "five versions" "$(jq_of 'length' "$OUT")" 5
