#!/usr/bin/env bash
# Starts Debian's docker-registry (distribution 2.x) on 127.0.0.1 at a free
# port, with its config and storage in DIR, in the background.
#
#   scripts/start-registry.sh DIR [USER PASSWORD]
#
# With USER and PASSWORD it requires htpasswd Basic auth (bcrypt, made with
# htpasswd from apache2-utils). Prints "PORT PID" on one line once the
# registry answers; the caller stops it with `kill PID`. Its log is
# DIR/registry.log.
set -euo pipefail

DIR=${1:?usage: start-registry.sh DIR [USER PASSWORD]}
USER_=${2:-}
PASS_=${3:-}
REGISTRY=$(command -v docker-registry || true)
[ -n "$REGISTRY" ] || { echo "start-registry: docker-registry is not installed (apt-get install docker-registry)" >&2; exit 1; }
mkdir -p "$DIR/data"
DIR=$(cd "$DIR" && pwd)

free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}
AUTH=""
if [ -n "$USER_" ]; then
	command -v htpasswd >/dev/null || { echo "start-registry: htpasswd missing (apt-get install apache2-utils)" >&2; exit 1; }
	htpasswd -Bbn "$USER_" "$PASS_" >"$DIR/htpasswd"
	AUTH="auth:
  htpasswd:
    realm: cod-test
    path: $DIR/htpasswd"
fi

# A port found free can be taken before the registry binds it (by another
# server, or as the local port of an outgoing connection): then it starts
# again on another one.
for _attempt in 1 2 3 4 5; do
	PORT=$(free_port)
	cat >"$DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $DIR/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
  secret: cod-test-secret
$AUTH
EOF

	# its own session, so that the caller's terminal signals do not reach it
	setsid "$REGISTRY" serve "$DIR/config.yml" >"$DIR/registry.log" 2>&1 </dev/null &
	PID=$!
	for _ in $(seq 1 100); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v2/" || true)
		if [ "$code" = 200 ] || [ "$code" = 401 ]; then
			echo "$PORT $PID"
			exit 0
		fi
		if ! kill -0 "$PID" 2>/dev/null; then break; fi
		sleep 0.1
	done
	grep -q "address already in use" "$DIR/registry.log" || break
done
echo "start-registry: the registry did not start; log:" >&2
cat "$DIR/registry.log" >&2
kill "$PID" 2>/dev/null || true
exit 1
