#!/usr/bin/env bash
# t1203-logs-shutdown: log streams are torn down cleanly when daemons stop
# in the middle of them. A compute node stopped (SIGTERM) while a follow
# reads its logs exits 0 (no leak, no sanitizer report) and the follow goes
# on; an orchestrator stopped while a CLI follow, a curl SSE stream and a
# WebSocket client are attached exits 0, and each client is told: `event:
# error` for SSE, a close frame 1001 for WebSocket, an error for the CLI.
. "$(dirname "$0")/lib.sh"

start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
start_compute node-1
start_compute node-2
wait_for "two compute nodes connect" 30 has_connected_nodes 2
JOBS="$API/api/v1/orchestrator/jobs"

cat >"$TEST_TMP/long.yaml" <<'YAML'
Name: long
Type: batch
Count: 2
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params: {Lines: 200, Interval: 100ms}
YAML
run_cod job run --wait=false "$TEST_TMP/long.yaml"
JID=$OUT
running() { [ "$(executions "$JID" | jq '[.[] | select(.ComputeState.StateType == 6)] | length')" = 2 ]; }
wait_for "both executions run" 40 running

# ---- a compute node stops while its logs are streamed
"$COD" job logs "$JID" -f >"$TEST_TMP/cli.out" 2>"$TEST_TMP/cli.err" &
CLI=$!
sleep 1.5
kill -TERM "${COMPUTE_PID[node-2]}"
wait "${COMPUTE_PID[node-2]}"
expect_eq "a compute node stopped mid-stream exits 0" "$?" 0
kill_compute node-2 TERM # forget it
wait "$CLI"
expect_eq "the follow ends when the job does" "$?" 0
GONE=$(executions "$JID" | jq -r '.[] | select(.NodeID == "node-2" and (.ComputeState.Message | test("shut down"))) | .ID')
check "node-2's execution failed as the node shut down" test -n "$GONE"
expect_not_contains "the stopping node sent what its execution wrote" "$(cat "$TEST_TMP/cli.err")" "$GONE"

# ---- the orchestrator stops while clients follow
cat >"$TEST_TMP/long1.yaml" <<'YAML'
Name: long1
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params: {Lines: 200, Interval: 100ms}
YAML
run_cod job run --wait=false "$TEST_TMP/long1.yaml"
JID=$OUT
running1() { [ "$(executions "$JID" | jq '[.[] | select(.ComputeState.StateType == 6)] | length')" = 1 ]; }
wait_for "the job runs" 20 running1
"$COD" job logs "$JID" -f >"$TEST_TMP/cli.out" 2>"$TEST_TMP/cli.err" &
CLI=$!
curl -sN -H 'Accept: text/event-stream' "$JOBS/$JID/logs?follow=true" >"$TEST_TMP/sse.out" &
CURL=$!
exec 3<>"/dev/tcp/127.0.0.1/$COD_API_PORT"
printf 'GET /api/v1/orchestrator/jobs/%s/logs?follow=true HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n' "$JID" >&3
timeout 30 cat <&3 >"$TEST_TMP/ws.out" &
WS=$!
sleep 1.5
stop_orchestrator
expect_eq "the orchestrator stopped with streams attached exits 0" "$?" 0
wait "$CURL"
grep -q '^event: error' "$TEST_TMP/sse.out" && grep -q 'shutting down' "$TEST_TMP/sse.out"
expect_eq "the SSE client is told that the orchestrator shuts down" "$?" 0
wait "$WS"
exec 3<&- 3>&-
# the last frame: 0x88, length, then 1001 = 0x03 0xe9
check "the WebSocket client gets a close frame 1001 (going away)" \
	bash -c "od -An -v -tx1 '$TEST_TMP/ws.out' | tr -d ' \n' | grep -q '88[0-9a-f]\{2\}03e9'"
deadline=$((SECONDS + 20))
while kill -0 "$CLI" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
wait "$CLI"
expect_eq "the CLI follow ends with an error" "$?" 1
expect_contains "the CLI says why" "$(cat "$TEST_TMP/cli.err")" "shutting down"
check "the CLI printed lines before" grep -q 'line 1$' "$TEST_TMP/cli.out"
