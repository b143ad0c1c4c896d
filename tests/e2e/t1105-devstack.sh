#!/usr/bin/env bash
# `cod devstack`: a whole cluster as separate processes, usable through the
# CLI, and stopped cleanly (no process left) by Ctrl-C.
. "$(dirname "$0")/lib.sh"

STACK="$TEST_TMP/stack"
"$COD" devstack --computes 2 --random-ports --stack-dir "$STACK" >"$TEST_TMP/devstack.out" 2>&1 &
DEVSTACK=$!
PIDS+=("$DEVSTACK")
has_run() { grep -q COD_NATS_URL "$STACK/cod.run"; }
wait_for "devstack writes its cod.run" 60 has_run || { cat "$TEST_TMP/devstack.out"; exit 1; }
export COD_API_HOST=127.0.0.1
COD_API_PORT=$(sed -n 's/^COD_API_PORT=//p' "$STACK/cod.run")
export COD_API_PORT
API="http://127.0.0.1:$COD_API_PORT"
expect_contains "devstack prints how to use it" "$(cat "$TEST_TMP/devstack.out")" "export COD_API_HOST=127.0.0.1 COD_API_PORT=$COD_API_PORT"
wait_for "both compute nodes connect" 60 has_connected_nodes 2

run_cod node list --output json
expect_eq "compute nodes carry devstack labels" \
	"$(jq_of '[.[] | select(.Info.NodeType == "Compute") | .Info.Labels.devstack] | join(",")' "$OUT")" "true,true"
expect_eq "and distinct zones" \
	"$(jq_of '[.[] | select(.Info.NodeType == "Compute") | .Info.Labels.zone] | unique | length' "$OUT")" 2

cat >"$TEST_TMP/job.yaml" <<'YAML'
Name: on-devstack
Type: batch
Count: 2
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params:
        Stdout: "hello from partition ${BACALHAU_PARTITION_INDEX}"
YAML
run_cod job run "$TEST_TMP/job.yaml" --wait-timeout-secs 60
expect_eq "a job runs to completion on the devstack" "$RC" 0
expect_contains "job run reports completion" "$OUT" "Completed"

# BatchScheduling (on by default): every node of the devstack and its NATS
# server run under SCHED_BATCH
policies=$(for p in $(pgrep -f -- "--data-dir $STACK") $(pgrep -x nats-server -P "$(pgrep -f -- "serve --orchestrator.*--data-dir $STACK" | head -n 1)"); do sched_policy "$p"; done | sort -u | tr '\n' ' ')
expect_eq "the devstack's nodes and NATS server run under SCHED_BATCH" "$policies" "3 "

children=$(pgrep -f -- "--data-dir $STACK" | wc -l)
check "devstack runs 3 cod processes (orchestrator + 2 computes)" test "$children" -ge 3
kill -INT "$DEVSTACK"
deadline=$((SECONDS + 30))
while kill -0 "$DEVSTACK" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
wait "$DEVSTACK"
expect_eq "devstack exits 0 on Ctrl-C" "$?" 0
PIDS=()
left=$(pgrep -f -- "$STACK" | wc -l)
expect_eq "no process of the cluster is left (nats-server included)" "$left" 0
