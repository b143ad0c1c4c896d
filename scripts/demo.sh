#!/usr/bin/env bash
# `make demo`: start a local cluster (an orchestrator with its nats-server
# and two compute nodes, as separate processes), run a job end to end on it,
# look at the result through the CLI and the REST API, and stop everything.
#
# The demo job uses the noop engine: the container executor (docker-style
# OCI images run with crun) is the next piece of work; the scheduling,
# transport and compute paths exercised here are the real ones.
set -euo pipefail
cd "$(dirname "$0")/.."
COD=$PWD/build/cod
demo_dir=$(mktemp -d "${TMPDIR:-/tmp}/cod-demo.XXXXXX")
export COD_DIR="$demo_dir/client"
unset COD_API_HOST COD_API_PORT
pid=""
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -INT "$pid"
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$demo_dir"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "cod devstack --computes 2 (orchestrator + nats-server + 2 compute nodes)"
"$COD" devstack --computes 2 --random-ports --stack-dir "$demo_dir/stack" >"$demo_dir/devstack.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
	grep -q COD_NATS_URL "$demo_dir/stack/cod.run" 2>/dev/null && break
	kill -0 "$pid" 2>/dev/null || { cat "$demo_dir/devstack.log"; exit 1; }
	sleep 0.05
done
# shellcheck disable=SC1091
. "$demo_dir/stack/cod.run"
export COD_API_HOST COD_API_PORT
echo "API at http://$COD_API_HOST:$COD_API_PORT, NATS at $COD_NATS_URL"
for _ in $(seq 1 600); do
	n=$("$COD" node list --output json | jq '[.[] | select(.Info.NodeType == "Compute" and .Connection == "CONNECTED")] | length')
	[ "$n" -ge 2 ] && break
	sleep 0.05
done

step "cod node list"
"$COD" node list

cat >"$demo_dir/hello.yaml" <<'YAML'
Name: hello-cod
Type: batch
Count: 2
Labels:
  demo: "true"
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params:
        Sleep: 200ms
        Stdout: "hello from partition ${BACALHAU_PARTITION_INDEX} of ${BACALHAU_PARTITION_COUNT}"
YAML

step "cod job validate hello.yaml"
"$COD" job validate "$demo_dir/hello.yaml"

step "cod job run hello.yaml   (two partitions, spread over the two compute nodes)"
"$COD" job run "$demo_dir/hello.yaml"

step "cod job executions hello-cod"
"$COD" job executions hello-cod

step "curl \$API/api/v1/orchestrator/jobs/hello-cod/executions | jq '.Items[] | {NodeID, Stdout: .RunOutput.Stdout}'"
curl -s "http://$COD_API_HOST:$COD_API_PORT/api/v1/orchestrator/jobs/hello-cod/executions" |
	jq -c '.Items[] | {NodeID, Stdout: .RunOutput.Stdout}'

step "cod job describe hello-cod"
"$COD" job describe hello-cod

echo
echo "Demo finished: the cluster is stopped and its data dir removed."
