#!/usr/bin/env bash
# Starts s3rver (a real S3-compatible HTTP server, from npm) on loopback for
# cod's tests and demos. Use its built-in credentials
# AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER: it refuses other
# access keys and malformed SigV4 requests, but does not recompute V4
# signatures (cod's signer has unit tests against AWS's examples and an e2e
# cross-check against botocore for that).
#
#   scripts/start-s3.sh DATA_DIR PORT_FILE [BUCKET...]
#
# Runs in the foreground (background it and stop it by its PID); writes the
# port it listens on to PORT_FILE once it is ready. s3rver is installed into
# tests/peers/s3/node_modules on first use (npm; the folder is ignored by git)
# and reused after that.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 DATA_DIR PORT_FILE [BUCKET...]" >&2; exit 2; }
data=$1 portfile=$2
shift 2
peer=tests/peers/s3
if [ ! -x "$peer/node_modules/.bin/s3rver" ]; then
	command -v npm >/dev/null || { echo "start-s3: npm is missing; run scripts/install-deps.sh" >&2; exit 1; }
	echo "start-s3: installing s3rver into $peer/node_modules" >&2
	npm install --prefix "$peer" --no-audit --no-fund --silent >&2
fi
mkdir -p "$data"
args=(-d "$data" -a 127.0.0.1 -p 0)
for b in "$@"; do args+=(--configure-bucket "$b"); done
rm -f "$portfile"
log=$(mktemp "${TMPDIR:-/tmp}/s3rver.XXXXXX")
node "$peer/node_modules/s3rver/bin/s3rver.js" "${args[@]}" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
trap 'exit 0' TERM INT
for _ in $(seq 1 300); do
	port=$(sed -n 's/.*listening on [^:]*:\([0-9]*\).*/\1/p' "$log" | head -n 1)
	if [ -n "$port" ]; then
		echo "$port" >"$portfile.tmp" && mv "$portfile.tmp" "$portfile"
		break
	fi
	kill -0 $pid 2>/dev/null || { cat "$log" >&2; exit 1; }
	sleep 0.1
done
[ -s "$portfile" ] || { echo "start-s3: s3rver did not start" >&2; cat "$log" >&2; exit 1; }
wait $pid
