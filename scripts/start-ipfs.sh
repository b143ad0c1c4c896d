#!/usr/bin/env bash
# Starts a real IPFS node - js-ipfs from npm, offline, on loopback - for
# cod's tests and demos. It keeps its repository in REPO_DIR, serves its
# HTTP RPC API on a free port and writes that port to PORT_FILE once the
# daemon is ready.
#
#   scripts/start-ipfs.sh REPO_DIR PORT_FILE
#
# Runs in the foreground (background it and stop it by its PID). js-ipfs
# and ipfs-car are installed into tests/peers/ipfs/node_modules on first use
# (npm; the folder is ignored by git) and reused after that; the package
# pins mortice 3.0.6, with which js-ipfs 0.66 runs offline.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 REPO_DIR PORT_FILE" >&2; exit 2; }
repo=$1 portfile=$2
peer=tests/peers/ipfs
jsipfs=$peer/node_modules/.bin/jsipfs
if [ ! -x "$jsipfs" ]; then
	command -v npm >/dev/null || { echo "start-ipfs: npm is missing; run scripts/install-deps.sh" >&2; exit 1; }
	echo "start-ipfs: installing js-ipfs into $peer/node_modules (a few minutes, once)" >&2
	npm install --prefix "$peer" --no-audit --no-fund --silent >&2
fi
export IPFS_PATH=$repo
if [ ! -f "$repo/config" ]; then
	"$jsipfs" init --profile test >/dev/null
	# no swarm (offline), every listener on a free loopback port
	"$jsipfs" config --json Addresses.Swarm '[]'
	"$jsipfs" config Addresses.API /ip4/127.0.0.1/tcp/0
	"$jsipfs" config Addresses.Gateway /ip4/127.0.0.1/tcp/0
	"$jsipfs" config Addresses.RPC /ip4/127.0.0.1/tcp/0
fi
rm -f "$portfile" "$repo/repo.lock" "$repo/api"
log=$(mktemp "${TMPDIR:-/tmp}/jsipfs.XXXXXX")
"$jsipfs" daemon --offline --enable-preload=false >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
trap 'exit 0' TERM INT
for _ in $(seq 1 600); do
	if grep -q "Daemon is ready" "$log"; then
		port=$(sed -n 's|^HTTP API listening on /ip4/[^/]*/tcp/\([0-9]*\).*|\1|p' "$log" | head -n 1)
		[ -n "$port" ] && { echo "$port" >"$portfile.tmp" && mv "$portfile.tmp" "$portfile"; }
		break
	fi
	kill -0 $pid 2>/dev/null || { cat "$log" >&2; exit 1; }
	sleep 0.1
done
[ -s "$portfile" ] || { echo "start-ipfs: js-ipfs did not start" >&2; cat "$log" >&2; exit 1; }
wait $pid
