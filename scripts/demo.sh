#!/usr/bin/env bash
# `make demo`: start a local orchestrator, submit a Bacalhau job spec, look
# at it through the CLI and the REST API, and stop everything again.
#
# Compute nodes and the scheduler come with the cluster work; until then the
# demo shows the orchestrator half of the path: the job is accepted, stored
# durably and visible, and stays Pending because no compute node exists.
set -euo pipefail
cd "$(dirname "$0")/.."
COD=$PWD/build/cod
demo_dir=$(mktemp -d "${TMPDIR:-/tmp}/cod-demo.XXXXXX")
export COD_DIR="$demo_dir/cod"
unset COD_API_HOST COD_API_PORT
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$demo_dir"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting an orchestrator (data in $COD_DIR)"
"$COD" serve --orchestrator -c API.Host=127.0.0.1 -c API.Port=0 >"$demo_dir/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
	[ -s "$COD_DIR/cod.run" ] && break
	kill -0 "$pid" 2>/dev/null || { cat "$demo_dir/serve.log"; exit 1; }
	sleep 0.05
done
# shellcheck disable=SC1091
. "$COD_DIR/cod.run"
export COD_API_HOST COD_API_PORT
echo "API at http://$COD_API_HOST:$COD_API_PORT"

cat >"$demo_dir/hello.yaml" <<'YAML'
Name: hello-cod
Type: batch
Count: 1
Labels:
  demo: "true"
Tasks:
  - Name: main
    Engine:
      Type: docker
      Params:
        Image: busybox:1.37.0
        Entrypoint: [/bin/sh]
        Parameters: [-c, echo hello from cod]
YAML

step "cod job validate hello.yaml"
"$COD" job validate "$demo_dir/hello.yaml"

step "cod job run hello.yaml --wait=false"
"$COD" job run "$demo_dir/hello.yaml" --wait=false

step "cod job list"
"$COD" job list

step "cod job describe hello-cod"
"$COD" job describe hello-cod

step "curl \$API/api/v1/orchestrator/jobs/hello-cod | jq .Job.State"
curl -s "http://$COD_API_HOST:$COD_API_PORT/api/v1/orchestrator/jobs/hello-cod" | jq .Job.State

step "cod node list"
"$COD" node list

echo
echo "The job is stored and Pending: compute nodes, which run it, arrive with the cluster work."
echo "Demo finished; the orchestrator is stopped and its data dir removed."
