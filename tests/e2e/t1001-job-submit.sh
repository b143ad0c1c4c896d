#!/usr/bin/env bash
# Submitting Bacalhau job specs (YAML and JSON) through the CLI and the REST
# API, and reading them back by full ID, short ID and name.
. "$(dirname "$0")/lib.sh"

start_orchestrator || { not_ok "orchestrator starts"; exit 1; }
ok "orchestrator starts on a free port ($COD_API_PORT)"

http GET /api/v1/agent/alive
expect_eq "agent alive status" "$STATUS" 200
expect_eq "agent alive body" "$(jq_of .Status "$BODY")" OK

# every runnable reference spec is accepted as it is
for f in docker.yaml docker-hello.yaml docker-output.yaml docker-output.json docker-s3.yaml noop.yaml \
	nameless.yaml wasm.yaml wasm_legacy.yaml custom-task-type.yaml; do
	run_cod job run "$REF_JOBS/$f" --wait=false
	expect_eq "job run $f exits 0" "$RC" 0
	expect_contains "job run $f prints the job id" "$OUT" "j-"
done

# YAML spec through the CLI, then read back through the API
run_cod job run "$REF_JOBS/docker.yaml" --id-only --wait=false --force
ID=$OUT
check "--id-only prints a full job id" bash -c "[[ '$ID' =~ ^j-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]]"
http GET "/api/v1/orchestrator/jobs/$ID"
expect_eq "get by full id" "$STATUS" 200
expect_eq "job id round trips" "$(jq_of .Job.ID "$BODY")" "$ID"
expect_eq "job name from the spec" "$(jq_of .Job.Name "$BODY")" "Docker Job"
# no compute node exists here: the job is Pending or already Failed ("not enough nodes")
check "job state is a state name (a string)" bash -c "[[ '$(jq_of '.Job.State.StateType' "$BODY")' =~ ^(Pending|Failed)$ ]]"
expect_eq "engine image kept" "$(jq_of '.Job.Tasks[0].Engine.Params.Image' "$BODY")" "busybox:1.37.0"
expect_eq "default CPU applied" "$(jq_of '.Job.Tasks[0].Resources.CPU' "$BODY")" "500m"
expect_eq "default memory applied" "$(jq_of '.Job.Tasks[0].Resources.Memory' "$BODY")" "512Mb"
expect_eq "namespace default" "$(jq_of .Job.Namespace "$BODY")" "default"
check "create time is unix nanoseconds" bash -c "[ $(jq_of .Job.CreateTime "$BODY") -gt 1000000000000000000 ]"

SHORT=${ID:0:10}
http GET "/api/v1/orchestrator/jobs/$SHORT"
expect_eq "get by short id" "$(jq_of .Job.ID "$BODY")" "$ID"
http GET "/api/v1/orchestrator/jobs/Noop%20Job"
expect_eq "get by name" "$(jq_of .Job.Name "$BODY")" "Noop Job"

# a nameless job is named after its id
run_cod job run "$REF_JOBS/nameless.yaml" --id-only --wait=false --force
http GET "/api/v1/orchestrator/jobs/$OUT"
expect_eq "nameless job gets its id as name" "$(jq_of .Job.Name "$BODY")" "$OUT"

# JSON through the API directly
jq -n '{Job: {Name: "api-json", Type: "batch", Labels: {team: "a"},
	Tasks: [{Name: "main", Engine: {Type: "docker", Params: {Image: "busybox", Parameters: ["true"]}}}]}}' \
	>"$TEST_TMP/job.json"
http PUT /api/v1/orchestrator/jobs "$TEST_TMP/job.json"
expect_eq "PUT /jobs accepts JSON" "$STATUS" 200
JID=$(jq_of .JobID "$BODY")
check "PUT returns a job id" bash -c "[[ '$JID' == j-* ]]"
check "PUT returns an evaluation id" bash -c "[ -n '$(jq_of .EvaluationID "$BODY")' ]"
http POST /api/v1/orchestrator/jobs "$TEST_TMP/job.json"
expect_eq "POST alias; unchanged resubmission is refused" "$STATUS" 400
expect_contains "refusal names the fix" "$BODY" "force"

http GET "/api/v1/orchestrator/jobs/$JID?include=history,executions"
expect_eq "include=history,executions" "$(jq_of '.History.Items | length > 0' "$BODY")" "true"
expect_eq "executions empty before scheduling" "$(jq_of '.Executions.Items | length' "$BODY")" 0
expect_eq "history records the submission" "$(jq_of '.History.Items[0].Type' "$BODY")" "JobLevel"

http GET "/api/v1/orchestrator/jobs/$JID/versions"
expect_eq "one version" "$(jq_of '.Items | length' "$BODY")" 1
http GET "/api/v1/orchestrator/jobs/$JID/results"
expect_eq "results empty now" "$(jq_of '.Items | length' "$BODY")" 0
http GET "/api/v1/orchestrator/jobs/$JID/executions"
expect_eq "executions endpoint" "$STATUS" 200

# case-insensitive keys, as Bacalhau accepts them
printf '{"job": {"name": "lower", "type": "batch", "tasks": [{"name": "main", "engine": {"type": "noop"}}]}}' >"$TEST_TMP/lower.json"
http PUT /api/v1/orchestrator/jobs "$TEST_TMP/lower.json"
expect_eq "lowercase keys accepted" "$STATUS" 200

# durability: stop the orchestrator, start it again, everything is there
run_cod job list --limit 0 --output json
BEFORE=$(jq_of 'length' "$OUT")
check "orchestrator stops cleanly" stop_orchestrator
start_orchestrator || not_ok "orchestrator restarts"
run_cod job list --limit 0 --output json
expect_eq "jobs survive a restart" "$(jq_of 'length' "$OUT")" "$BEFORE"
http GET "/api/v1/orchestrator/jobs/$JID"
expect_eq "job readable after restart" "$(jq_of .Job.Name "$BODY")" "api-json"
