#!/usr/bin/env bash
# `make demo`: a real containerized job end to end on a local cluster,
# offline. It builds a busybox image from Debian's busybox-static, serves it
# from a local registry (Debian's docker-registry), starts a devstack (an
# orchestrator with its nats-server and two compute nodes, as separate
# processes), runs a job that reads an input dataset and publishes its
# results, downloads them with `cod job get`, prints them, and stops
# everything.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
COD=$ROOT/build/cod
demo_dir=$(mktemp -d "${TMPDIR:-/tmp}/cod-demo.XXXXXX")
export COD_DIR="$demo_dir/client"
unset COD_API_HOST COD_API_PORT
pid="" reg_pid=""
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -INT "$pid"
		wait "$pid" 2>/dev/null || true
	fi
	[ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null
	rm -rf "$demo_dir"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
	echo "make demo runs containers with crun/runc and needs root (or sudo make demo)" >&2
	exit 1
fi

step "building a busybox image from Debian's busybox-static (offline) and serving it from a local registry"
scripts/test-images.sh "$demo_dir/images" >/dev/null
out=$(scripts/start-registry.sh "$demo_dir/registry")
reg_port=${out% *}
reg_pid=${out#* }
IMAGE="127.0.0.1:$reg_port/cod-demo/busybox:latest"
skopeo copy -q --all --dest-tls-verify=false "oci:$demo_dir/images/layout:cod-test/busybox:latest" "docker://$IMAGE"
echo "image: $IMAGE"

step "cod devstack --computes 2   (orchestrator + nats-server + 2 compute nodes)"
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
for _ in $(seq 1 600); do
	n=$("$COD" node list --output json | jq '[.[] | select(.Info.NodeType == "Compute" and .Connection == "CONNECTED")] | length')
	[ "$n" -ge 2 ] && break
	sleep 0.05
done
"$COD" node list --show labels

cat >"$demo_dir/fruits.yaml" <<YAML
Name: fruit-stats
Type: batch
Count: 1
Tasks:
  - Name: main
    Engine:
      Type: docker
      Params:
        Image: $IMAGE
        Entrypoint: [/bin/sh, -c]
        Parameters:
          - |
            echo "counting fruit on \$(hostname)"
            wc -l < /inputs/fruits.txt > /outputs/count.txt
            sort -r /inputs/fruits.txt > /outputs/sorted.txt
            echo "done: \$(cat /outputs/count.txt) lines"
    InputSources:
      - Alias: fruits
        Target: /inputs/fruits.txt
        Source:
          Type: inline
          Params:
            URL: "data:text/plain,apple%0Acherry%0Abanana%0Adate%0A"
    ResultPaths:
      - Name: outputs
        Path: /outputs
    Publisher:
      Type: local
    Resources:
      CPU: 250m
      Memory: 64Mb
YAML

step "cod job run fruits.yaml   (a busybox container reading an input and writing results)"
"$COD" job run "$demo_dir/fruits.yaml" --wait-timeout-secs 120

step "cod job logs fruit-stats"
"$COD" job logs fruit-stats

step "cod job get fruit-stats --output-dir results"
"$COD" job get fruit-stats --output-dir "$demo_dir/results"

step "the published results"
find "$demo_dir/results" -type f | sort | sed "s|$demo_dir/||"
echo "--- outputs/sorted.txt"
cat "$demo_dir/results/outputs/sorted.txt"
echo "--- outputs/count.txt"
cat "$demo_dir/results/outputs/count.txt"

echo
echo "Demo finished: the cluster and the registry are stopped, and their data removed."
