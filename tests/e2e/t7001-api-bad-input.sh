#!/usr/bin/env bash
# Bad input to the REST API: each case gets the right status, Bacalhau's
# error body naming the problem, and nothing reaches the store.
. "$(dirname "$0")/lib.sh"

start_orchestrator || { not_ok "orchestrator starts"; exit 1; }

count_jobs() { http GET "/api/v1/orchestrator/jobs?namespace=*"; jq_of '.Items | length' "$BODY"; }
expect_error_body() { # desc
	check "$1: error body has Status, Message, Code, RequestID, Component" \
		bash -c "jq -e '.Status and .Message and .Code and .RequestID and .Component' <<<'$(printf '%s' "$BODY" | sed "s/'/ /g")' >/dev/null"
}

printf '{"Job": {"Type": "batch", ' >"$TEST_TMP/broken.json"
http PUT /api/v1/orchestrator/jobs "$TEST_TMP/broken.json"
expect_eq "malformed JSON is 400" "$STATUS" 400
expect_contains "message says invalid JSON" "$(jq_of .Message "$BODY")" "invalid JSON"
expect_error_body "malformed JSON"

printf '[1,2,3]' >"$TEST_TMP/array.json"
http PUT /api/v1/orchestrator/jobs "$TEST_TMP/array.json"
expect_eq "non-object body is 400" "$STATUS" 400

printf '{"Force": true}' >"$TEST_TMP/nojob.json"
http PUT /api/v1/orchestrator/jobs "$TEST_TMP/nojob.json"
expect_eq "missing Job is 400" "$STATUS" 400
expect_contains "message names Job" "$(jq_of .Message "$BODY")" "Job"

jq -n '{Job: {Type: "batch", Tasks: [{Name: "main", Engine: {Type: "docker", Params: {Image: "x"}},
	Resources: {Memory: "12XB", CPU: "lots"}, InputSources: [{Source: {Type: "s3"}, Target: "rel"}]}]}}' >"$TEST_TMP/invalid.json"
http PUT /api/v1/orchestrator/jobs "$TEST_TMP/invalid.json"
expect_eq "invalid spec is 400" "$STATUS" 400
expect_eq "validation code" "$(jq_of .Code "$BODY")" "ValidationError"
expect_contains "memory problem named with its path" "$BODY" 'Tasks[0].Resources.Memory'
expect_contains "memory problem suggests a fix" "$BODY" "512Mb"
expect_contains "cpu problem reported too" "$BODY" 'Tasks[0].Resources.CPU'
expect_contains "input problem reported too" "$BODY" 'Tasks[0].InputSources[0]'
check "every problem listed in Details" bash -c "[ $(jq_of '.Details.Problems | length' "$BODY") -ge 3 ]"

jq -n '{Job: {Type: "batch", Bogus: 1, Tasks: [{Name: "main", Engine: {Type: "noop"}, Envv: {}}]}}' >"$TEST_TMP/unknown.json"
http PUT /api/v1/orchestrator/jobs "$TEST_TMP/unknown.json"
expect_eq "unknown fields are 400" "$STATUS" 400
expect_contains "unknown top-level field named" "$BODY" "Bogus"
expect_contains "did-you-mean hint for Envv" "$BODY" "Env"

jq -n '{Job: {Type: "cron", Tasks: [{Name: "main", Engine: {Type: "noop"}}]}}' >"$TEST_TMP/type.json"
http PUT /api/v1/orchestrator/jobs "$TEST_TMP/type.json"
expect_eq "unknown job type is 400" "$STATUS" 400
expect_contains "job type problem names the choices" "$BODY" "batch"

# over 10 MiB: refused with 413 without being stored
head -c $((10 * 1024 * 1024 + 100)) /dev/zero | tr '\0' 'a' | sed 's/^/{"Job":"/; s/$/"}/' >"$TEST_TMP/huge.json"
http PUT /api/v1/orchestrator/jobs "$TEST_TMP/huge.json"
expect_eq "body over 10 MiB is 413" "$STATUS" 413
STATUS=$(curl -s -o "$TEST_TMP/body" -w '%{http_code}' -X PUT -H 'Transfer-Encoding: chunked' \
	-H 'Content-Type: application/json' --data-binary "@$TEST_TMP/huge.json" "$API/api/v1/orchestrator/jobs")
expect_eq "chunked body over 10 MiB is 413" "$STATUS" 413

http GET /api/v1/orchestrator/jobs/j-00000000-0000-4000-8000-000000000000
expect_eq "unknown job id is 404" "$STATUS" 404
expect_eq "not found code" "$(jq_of .Code "$BODY")" "NotFound"
expect_contains "hint suggests job list" "$(jq_of .Hint "$BODY")" "job list"
http GET /api/v1/orchestrator/jobs/no-such-name/history
expect_eq "history of unknown job is 404" "$STATUS" 404
http DELETE /api/v1/orchestrator/jobs/no-such-name
expect_eq "stop of unknown job is 404" "$STATUS" 404
http GET /api/v1/orchestrator/nodes/n-nope
expect_eq "unknown node is 404" "$STATUS" 404

http PATCH /api/v1/orchestrator/jobs
expect_eq "wrong method is 405" "$STATUS" 405
expect_contains "405 says which methods work" "$BODY" "GET"
http DELETE /api/v1/agent/alive
expect_eq "DELETE on agent/alive is 405" "$STATUS" 405
http GET /api/v1/nothing-here
expect_eq "unknown path is 404" "$STATUS" 404

STATUS=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$API/livez")
expect_contains "legacy /livez redirects" "$STATUS" "301"

expect_eq "nothing half-written reached the store" "$(count_jobs)" 0

# the server survived all of it
http GET /api/v1/agent/alive
expect_eq "server still alive" "$STATUS" 200
