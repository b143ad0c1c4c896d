#!/usr/bin/env bash
# t1202-logs-websocket-retry: the logs endpoint as Bacalhau's clients use
# it, over WebSocket, checked by a minimal client written here with bash,
# /dev/tcp and openssl (independent of cod's own framing code): the
# handshake and its accept key, unmasked text frames {value:{Type,Line}},
# the close frame, ping/pong, a client close, bad handshakes, unmasked
# client frames. Then `cod job logs -f` through a retry: the node running
# the job is killed, the job moves to the other node, and the follow goes
# on with the new execution until the job completes.
. "$(dirname "$0")/lib.sh"

start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
start_compute node-1
start_compute node-2
wait_for "two compute nodes connect" 30 has_connected_nodes 2

# ---- a tiny WebSocket client
WS_MASK=(55 250 33 61)
# ws_connect PATH [VERSION] [KEY]: connect fd 3, send the opening handshake
ws_connect() {
	WS_KEY=${3-$(head -c 16 /dev/urandom | base64)}
	exec 3<>"/dev/tcp/127.0.0.1/$COD_API_PORT"
	printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: %s\r\n\r\n' \
		"$1" "$COD_API_PORT" "$WS_KEY" "${2:-13}" >&3
}
# ws_read FILE [SECONDS]: everything the server sends until it closes
ws_read() { timeout "${2:-30}" cat <&3 >"$1"; }
ws_close_fd() { exec 3<&- 3>&-; }
# ws_send OPCODE BYTE...: one masked client frame (payload < 126 bytes)
ws_send() {
	local op=$1 n=$(($# - 1)) esc i=0 b
	shift
	esc=$(printf '\\x%02x\\x%02x' $((128 | op)) $((128 | n)))
	for b in "${WS_MASK[@]}"; do esc+=$(printf '\\x%02x' "$b"); done
	for b in "$@"; do
		esc+=$(printf '\\x%02x' $((b ^ WS_MASK[i % 4])))
		i=$((i + 1))
	done
	printf "$esc" >&3
}
ws_send_unmasked_text() { printf '\x81\x02hi' >&3; }
text_bytes() { printf '%s' "$1" | od -An -v -tu1; }
# ws_accept KEY: what the server must answer
ws_accept() { printf '%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11' "$1" | openssl dgst -sha1 -binary | base64; }
# ws_frames FILE: one line per server frame after the HTTP head:
#   "<fin> <opcode> <masked> <length> <payload>" (close: "<code> <reason>")
ws_frames() {
	local f=$1 n i=0 b0 b1 op len j k
	local -a B
	mapfile -t B < <(od -An -v -tu1 "$f" | tr -s ' ' '\n' | grep -v '^$')
	n=${#B[@]}
	while ((i + 3 < n)) && ! ((B[i] == 13 && B[i + 1] == 10 && B[i + 2] == 13 && B[i + 3] == 10)); do i=$((i + 1)); done
	i=$((i + 4))
	while ((i + 1 < n)); do
		b0=${B[i]} b1=${B[i + 1]}
		op=$((b0 & 15)) len=$((b1 & 127)) j=$((i + 2))
		if ((len == 126)); then
			len=$((B[j] << 8 | B[j + 1])) j=$((j + 2))
		elif ((len == 127)); then
			len=0
			for ((k = 0; k < 8; k++)); do len=$((len << 8 | B[j + k])); done
			j=$((j + 8))
		fi
		((b1 & 128)) && j=$((j + 4))
		if ((op == 8)); then
			echo "$((b0 >> 7)) $op $((b1 >> 7)) $len $((B[j] << 8 | B[j + 1])) $(tail -c +$((j + 3)) "$f" | head -c $((len - 2)))"
		else
			echo "$((b0 >> 7)) $op $((b1 >> 7)) $len $(tail -c +$((j + 1)) "$f" | head -c "$len")"
		fi
		i=$((j + len))
	done
}

cat >"$TEST_TMP/alt.yaml" <<'YAML'
Name: alternate
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params: {Lines: 6, Interval: 100ms, Stream: alternate}
YAML
run_cod job run --wait-timeout-secs 30 "$TEST_TMP/alt.yaml"
expect_eq "a job with output completes" "$RC" 0
ALT=$(jq -r '.[0].ID' <<<"$("$COD" job list --output json)")

# ---- handshake, frames, close
ws_connect "/api/v1/orchestrator/jobs/$ALT/logs"
ws_read "$TEST_TMP/ws1"
ws_close_fd
head=$(sed -n '1,/^\r$/p' "$TEST_TMP/ws1" | tr -d '\r')
expect_contains "101 Switching Protocols" "$(head -n1 <<<"$head")" "HTTP/1.1 101"
expect_contains "Upgrade: websocket" "$head" "Upgrade: websocket"
check "Connection: Upgrade" grep -qi '^Connection: *Upgrade' <<<"$head"
expect_eq "Sec-WebSocket-Accept is SHA-1 of the key and the GUID" \
	"$(sed -n 's/^Sec-WebSocket-Accept: //Ip' <<<"$head")" "$(ws_accept "$WS_KEY")"
FR=$(ws_frames "$TEST_TMP/ws1")
expect_eq "one text frame per line, then a close frame" "$(awk '{print $2}' <<<"$FR" | tr '\n' ' ')" "1 1 1 1 1 1 8 "
expect_eq "server frames are final and unmasked" "$(awk '{print $1 $3}' <<<"$FR" | sort -u | tr '\n' ' ')" "10 "
expect_eq "frames carry {value:{Type,Line}}" \
	"$(grep '^1 1 ' <<<"$FR" | cut -d' ' -f5- | jq -r '"\(.value.Type):\(.value.Line)"' | tr -d '\n')" \
	"1:line 12:line 21:line 32:line 41:line 52:line 6"
close=$(grep '^1 8 ' <<<"$FR")
expect_eq "the close frame says 1000 (normal)" "$(cut -d' ' -f5 <<<"$close")" 1000
expect_contains "the close reason names the job state" "$close" "Completed"

# ---- ping while following; then the client closes
cat >"$TEST_TMP/long.yaml" <<'YAML'
Name: long
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params: {Lines: 40, Interval: 100ms}
YAML
run_cod job run --wait=false "$TEST_TMP/long.yaml"
LONG=$OUT
ws_connect "/api/v1/orchestrator/jobs/$LONG/logs?follow=true"
ws_read "$TEST_TMP/ws2" 30 &
READER=$!
sleep 1
# shellcheck disable=SC2046
ws_send 9 $(text_bytes "are you there")
sleep 0.5
ws_send 8 3 232 # close, 1000
wait "$READER"
ws_close_fd
FR=$(ws_frames "$TEST_TMP/ws2")
expect_contains "a ping gets a pong with the same payload" "$FR" "1 10 0 13 are you there"
check "lines were streamed before the close" grep -q '^1 1 0 .*"line 1' <<<"$FR"
expect_eq "the server echoes the client's close (1000)" "$(grep '^1 8 ' <<<"$FR" | cut -d' ' -f5)" 1000
check "the server stopped at the close: not all 40 lines" test "$(grep -c '^1 1 ' <<<"$FR")" -lt 40
wait_for "the job runs on unaffected by its reader leaving" 20 job_is "$LONG" Completed

# ---- protocol errors and bad handshakes
run_cod job run --wait=false --force "$TEST_TMP/long.yaml"
ws_connect "/api/v1/orchestrator/jobs/$LONG/logs?follow=true"
sleep 0.3
ws_send_unmasked_text
ws_read "$TEST_TMP/ws3" 10
ws_close_fd
expect_eq "an unmasked client frame is a protocol error (1002)" \
	"$(ws_frames "$TEST_TMP/ws3" | grep '^1 8 ' | cut -d' ' -f5)" 1002
ws_connect "/api/v1/orchestrator/jobs/$ALT/logs" 8
ws_read "$TEST_TMP/ws4" 10
ws_close_fd
expect_contains "another WebSocket version is refused with 400" "$(head -n1 "$TEST_TMP/ws4")" " 400 "
expect_contains "the refusal says why" "$(cat "$TEST_TMP/ws4")" "Sec-WebSocket-Version"
ws_connect "/api/v1/orchestrator/jobs/$ALT/logs" 13 "not-a-key"
ws_read "$TEST_TMP/ws5" 10
ws_close_fd
expect_contains "a bad key is refused with 400" "$(head -n1 "$TEST_TMP/ws5")" " 400 "
expect_contains "the refusal names the bad handshake" "$(cat "$TEST_TMP/ws5")" "bad WebSocket handshake"
ws_connect "/api/v1/orchestrator/jobs/j-00000000-0000-0000-0000-000000000000/logs"
ws_read "$TEST_TMP/ws6" 10
ws_close_fd
expect_contains "an unknown job is a 404 before any upgrade" "$(head -n1 "$TEST_TMP/ws6")" " 404 "

# ---- follow through a retry on another node
cat >"$TEST_TMP/retry.yaml" <<'YAML'
Name: survivor
Type: batch
Meta:
  cod.retry.attempts: "3"
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params: {Lines: 25, Interval: 200ms}
YAML
run_cod job run --wait=false "$TEST_TMP/retry.yaml"
RJ=$OUT
"$COD" job logs "$RJ" -f >"$TEST_TMP/retry.out" 2>"$TEST_TMP/retry.err" &
FOLLOW=$!
has_lines() { [ "$(wc -l <"$TEST_TMP/retry.out")" -ge 3 ]; }
wait_for "the first execution's lines arrive" 20 has_lines
FIRST=$(executions "$RJ" | jq -r '.[0].NodeID')
kill_compute "$FIRST"
ok "killed $FIRST, which ran the job"
wait_for "the job completes on the other node" 60 job_is "$RJ" Completed
deadline=$((SECONDS + 30))
while kill -0 "$FOLLOW" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
check "the follow ends once the job is done" bash -c "! kill -0 $FOLLOW 2>/dev/null"
wait "$FOLLOW"
expect_eq "the follow exits 0" "$?" 0
SECOND=$(executions "$RJ" | jq -r '.[] | select(.ComputeState.StateType == 9) | .ID')
check "the job has a completed second execution" test -n "$SECOND"
expect_eq "all 25 lines of the retry are printed, with its prefix" \
	"$(grep -c "^\[${SECOND:0:10}\] line" "$TEST_TMP/retry.out")" 25
check "the first execution's lines came before" grep -q '^line 1$' "$TEST_TMP/retry.out"
expect_contains "the retry is announced" "$(cat "$TEST_TMP/retry.err")" "a retry"
