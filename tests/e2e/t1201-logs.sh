#!/usr/bin/env bash
# t1201-logs: job logs through a real cluster (orchestrator, nats-server,
# two compute nodes, noop engine writing lines over time): logs of a
# finished job in order with both streams, --tail, follow from submission
# (before any node exists) to the end, two executions with prefixes,
# short and ambiguous execution IDs, Server-Sent Events with curl, the
# plain JSON answer, and a slow reader that must not hold the job back.
. "$(dirname "$0")/lib.sh"

start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
ok "orchestrator starts"
JOBS="$API/api/v1/orchestrator/jobs"

# ---- follow from the moment of submission: no compute node exists yet
cat >"$TEST_TMP/alt.yaml" <<'YAML'
Name: alternate
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params: {Lines: 10, Interval: 200ms, Stream: alternate, Line: "line ${LINE}"}
    Timeouts:
      QueueTimeout: 120
YAML
run_cod job run --wait=false "$TEST_TMP/alt.yaml"
ALT=$OUT
"$COD" job logs "$ALT" --follow >"$TEST_TMP/follow.out" 2>"$TEST_TMP/follow.err" &
FOLLOW=$!
sleep 1
check "follow waits while the job has no execution" kill -0 "$FOLLOW"
start_compute node-1
start_compute node-2
wait_for "two compute nodes connect" 30 has_connected_nodes 2
wait_for "the job completes" 30 job_is "$ALT" Completed
deadline=$((SECONDS + 20))
while kill -0 "$FOLLOW" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
check "follow ends when the job is done" bash -c "! kill -0 $FOLLOW 2>/dev/null"
wait "$FOLLOW"
expect_eq "follow exits 0" "$?" 0
expect_eq "follow printed the stdout lines, in order" "$(tr '\n' ' ' <"$TEST_TMP/follow.out")" \
	"line 1 line 3 line 5 line 7 line 9 "
expect_eq "follow printed the stderr lines to stderr, in order" "$(tr '\n' ' ' <"$TEST_TMP/follow.err")" \
	"line 2 line 4 line 6 line 8 line 10 "

# ---- a finished job: both streams, in the order written
run_cod job logs "$ALT"
expect_eq "job logs exits 0" "$RC" 0
expect_eq "job logs: stdout lines" "$(tr '\n' ' ' <<<"$OUT")" "line 1 line 3 line 5 line 7 line 9 "
expect_eq "job logs: stderr lines" "$(tr '\n' ' ' <<<"$ERR")" "line 2 line 4 line 6 line 8 line 10 "
both=$("$COD" job logs "$ALT" 2>&1)
expect_eq "job logs interleaves the streams as written" "$(tr '\n' ' ' <<<"$both")" \
	"line 1 line 2 line 3 line 4 line 5 line 6 line 7 line 8 line 9 line 10 "
run_cod job logs "${ALT:0:10}" --tail 3
expect_eq "job logs by short ID with --tail 3: the last three lines" "$(printf '%s\n%s\n' "$OUT" "$ERR" | tr '\n' ' ')" \
	"line 9 line 8 line 10 "
run_cod job logs alternate --tail 0
expect_eq "--tail 0 prints nothing" "$OUT$ERR" ""

# ---- a job that prints nothing: no log files, no directory, empty logs
SILENT=$(submit_json '{"Job": {"Name": "silent", "Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}}')
wait_for "a silent job completes" 30 job_is "$SILENT" Completed
SEXEC=$(executions "$SILENT" | jq -r '.[0].ID')
check "a silent noop execution leaves no directory on its node" \
	test ! -e "$TEST_TMP/node-1/compute/executions/$SEXEC" -a ! -e "$TEST_TMP/node-2/compute/executions/$SEXEC"
run_cod job logs "$SILENT"
expect_eq "logs of a silent job exit 0" "$RC" 0
expect_eq "logs of a silent job are empty" "$OUT$ERR" ""
run_cod job logs "$SILENT" --follow
expect_eq "following a finished silent job ends at once, exit 0" "$RC:$OUT$ERR" "0:"
EXEC=$(executions "$ALT" | jq -r '.[0].ID')
run_cod job logs "$ALT" -e "${EXEC:0:10}"
expect_eq "-e with a short execution ID" "$(tr '\n' ' ' <<<"$OUT")" "line 1 line 3 line 5 line 7 line 9 "
run_cod job logs "$ALT" -e e-00000000
expect_eq "an unknown execution exits 1" "$RC" 1
expect_contains "an unknown execution is named" "$ERR" 'has no execution "e-00000000"'
expect_contains "an unknown execution hints the executions list" "$ERR" "cod job executions"
run_cod job logs j-00000000-0000-0000-0000-000000000000
expect_eq "logs of an unknown job exit 1" "$RC" 1
expect_contains "logs of an unknown job hint job list" "$ERR" "cod job list"

# ---- the plain JSON answer and its query parameters
http GET "/api/v1/orchestrator/jobs/$ALT/logs"
expect_eq "JSON answer is 200" "$STATUS" 200
expect_eq "JSON answer has the 10 lines" "$(jq_of '.Items | length' "$BODY")" 10
expect_eq "JSON lines carry Type 1 and 2" "$(jq_of '[.Items[].Type] | map(tostring) | join(",")' "$BODY")" \
	"1,2,1,2,1,2,1,2,1,2"
expect_eq "JSON lines keep their newline" "$(jq_of '.Items[0].Line == "line 1\n"' "$BODY")" true
expect_eq "JSON lines name their execution" "$(jq_of '.Items[0].ExecutionID' "$BODY")" "$EXEC"
expect_eq "JSON lines are numbered" "$(jq_of '[.Items[].Offset] | map(tostring) | join(",")' "$BODY")" \
	"1,2,3,4,5,6,7,8,9,10"
http GET "/api/v1/orchestrator/jobs/$ALT/logs?tail=2"
expect_eq "tail=2 gives two lines" "$(jq_of '[.Items[].Line] | join("")' "$BODY")" "$(printf 'line 9\nline 10\n')"
http GET "/api/v1/orchestrator/jobs/$ALT/logs?tail=true"
expect_eq "Bacalhau's boolean tail gives every line" "$(jq_of '.Items | length' "$BODY")" 10
http GET "/api/v1/orchestrator/jobs/$ALT/logs?tail=-3"
expect_eq "a negative tail is a bad request" "$STATUS" 400
http GET "/api/v1/orchestrator/jobs/nope/logs"
expect_eq "an unknown job is 404" "$STATUS" 404

# ---- Server-Sent Events with curl, following a job from submission
cat >"$TEST_TMP/slow.yaml" <<'YAML'
Name: sse
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params: {Lines: 5, Interval: 200ms}
YAML
run_cod job run --wait=false "$TEST_TMP/slow.yaml"
SSE=$OUT
timeout 30 curl -sN -H 'Accept: text/event-stream' "$JOBS/$SSE/logs?follow=true" >"$TEST_TMP/sse.out"
expect_eq "curl gets the whole stream and the server ends it" "$?" 0
expect_eq "SSE: one data event per line" "$(grep -c '^data: {"value"' "$TEST_TMP/sse.out")" 5
expect_eq "SSE: events carry increasing ids" "$(sed -n 's/^id: //p' "$TEST_TMP/sse.out" | tr '\n' ' ')" "1 2 3 4 5 "
expect_eq "SSE: the lines" "$(sed -n 's/^data: //p' "$TEST_TMP/sse.out" | jq -r 'select(.value) | .value.Line' | tr -d '\n')" \
	"line 1line 2line 3line 4line 5"
check "SSE: the stream ends with an end event" grep -q '^event: end' "$TEST_TMP/sse.out"
expect_eq "SSE: the end event names the job state" \
	"$(sed -n '/^event: end/{n;s/^data: //p}' "$TEST_TMP/sse.out" | jq -r .JobState)" Completed
hdr=$(curl -s -D - -o /dev/null -H 'Accept: text/event-stream' "$JOBS/$SSE/logs")
expect_contains "SSE: content type" "$hdr" "text/event-stream"
code=$(curl -s -o "$TEST_TMP/sse404" -w '%{http_code}' -H 'Accept: text/event-stream' "$JOBS/nope/logs?follow=true")
expect_eq "SSE: an unknown job is a plain 404 before streaming" "$code" 404

# ---- two executions (Count 2, one per node) followed from submission
cat >"$TEST_TMP/two.yaml" <<'YAML'
Name: two
Type: batch
Count: 2
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params: {Lines: 4, Interval: 200ms, Line: "part ${BACALHAU_PARTITION_INDEX} line ${LINE}"}
YAML
run_cod job run --wait=false "$TEST_TMP/two.yaml"
TWO=$OUT
run_cod job logs "$TWO" -f
expect_eq "follow of a Count=2 job exits 0" "$RC" 0
expect_eq "both executions' lines arrive" "$(grep -c 'line' <<<"$OUT")" 8
EX2=$(executions "$TWO" | jq -r '.[].ID')
for e in $EX2; do
	expect_eq "lines of ${e:0:10} carry its prefix" "$(grep -c "^\[${e:0:10}\] part . line" <<<"$OUT")" 4
done
p0=$(grep -o 'part 0 line .' <<<"$OUT" | tr '\n' ' ')
expect_eq "each execution's lines stay in order" "$p0" "part 0 line 1 part 0 line 2 part 0 line 3 part 0 line 4 "
run_cod job logs "$TWO" -e e-
expect_eq "an ambiguous execution prefix exits 1" "$RC" 1
expect_contains "an ambiguous execution prefix lists the matches" "$ERR" "is ambiguous"
for e in $EX2; do expect_contains "the matches include ${e:0:10}" "$ERR" "$e"; done
run_cod job logs "$TWO" -e "$(head -n1 <<<"$EX2")"
expect_eq "-e picks one execution: four lines, no prefix" "$(grep -c '^part . line' <<<"$OUT")" 4

# ---- a slow reader does not hold the job back
cat >"$TEST_TMP/loud.yaml" <<'YAML'
Name: loud
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params:
        Lines: 20000
        Line: "a fairly long line of output number ${LINE} to fill the pipes xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
YAML
run_cod job run --wait=false "$TEST_TMP/loud.yaml"
LOUD=$OUT
curl -sN --limit-rate 2k -H 'Accept: text/event-stream' "$JOBS/$LOUD/logs?follow=true" >"$TEST_TMP/loud.out" &
SLOW=$!
wait_for "the job completes while its only reader is slow" 30 job_is "$LOUD" Completed
check "the slow reader is still reading" kill -0 "$SLOW"
got=$(grep -c '^data: ' "$TEST_TMP/loud.out")
check "the slow reader got only part of the output so far ($got of 20000 lines)" test "$got" -lt 20000
kill "$SLOW" 2>/dev/null
wait "$SLOW" 2>/dev/null
http GET "/api/v1/orchestrator/jobs/$LOUD/logs?tail=1"
expect_contains "the whole output is there afterwards" "$(jq_of '.Items[0].Line' "$BODY")" "number 20000 "
run_cod job logs "$LOUD" --tail 5
expect_eq "the orchestrator still serves logs after a reader went away" "$(wc -l <<<"$OUT")" 5
