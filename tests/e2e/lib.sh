# Shared helpers of the e2e tests. Source it from tNNNN-*.sh:
#   . "$(dirname "$0")/lib.sh"
# Every process a test starts is stopped by its PID when the test ends,
# pass or fail; ports are chosen at run time (API.Port=0, read back from
# the server's cod.run file); waits poll with deadlines.
set -u

COD=${COD:-$PWD/build/cod}
COD_ROOT=$PWD # the repository (tests may cd elsewhere)
TEST_NAME=$(basename "$0" .sh)
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/cod-$TEST_NAME.XXXXXX")
export COD_DIR="$TEST_TMP/cod"
export NO_COLOR=1
unset COD_API_HOST COD_API_PORT
PIDS=()
CHECKS_FAILED=0
CHECK_NO=0

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		local deadline=$((SECONDS + 20))
		while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null
		local rc=$?
		# a server that crashed or leaked on the way out fails the test
		if [ "$rc" -ne 0 ] && [ "$rc" -ne 143 ]; then
			echo "not ok - process $pid exited with $rc at shutdown (see $TEST_TMP/*.log)"
			cat "$TEST_TMP"/*.log 2>/dev/null | tail -n 40
			CHECKS_FAILED=$((CHECKS_FAILED + 1))
		fi
	done
	if [ "$CHECKS_FAILED" -eq 0 ]; then rm -rf "$TEST_TMP"; fi
	[ "$CHECKS_FAILED" -eq 0 ]
}
trap 'cleanup; exit $?' EXIT

ok() { CHECK_NO=$((CHECK_NO + 1)); echo "ok $CHECK_NO - $*"; }
not_ok() {
	CHECK_NO=$((CHECK_NO + 1))
	CHECKS_FAILED=$((CHECKS_FAILED + 1))
	echo "not ok $CHECK_NO - $*"
}

# check DESC CMD...: passes when CMD exits 0
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# expect_eq DESC ACTUAL EXPECTED
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: got '$2', want '$3'"; fi
}

# expect_contains DESC HAYSTACK NEEDLE
expect_contains() {
	case "$2" in
	*"$3"*) ok "$1" ;;
	*) not_ok "$1: '$3' not in: $(printf '%s' "$2" | head -c 600)" ;;
	esac
}

expect_not_contains() {
	case "$2" in
	*"$3"*) not_ok "$1: '$3' unexpectedly in: $(printf '%s' "$2" | head -c 600)" ;;
	*) ok "$1" ;;
	esac
}

# run_cod ARGS...: runs the CLI, sets OUT (stdout), ERR (stderr), RC
run_cod() {
	OUT=$("$COD" "$@" 2>"$TEST_TMP/stderr") && RC=0 || RC=$?
	ERR=$(cat "$TEST_TMP/stderr")
}

# start_orchestrator [extra serve args...]: starts `cod serve --orchestrator`
# on a free port and exports COD_API_HOST/COD_API_PORT for the CLI.
start_orchestrator() {
	mkdir -p "$COD_DIR"
	rm -f "$COD_DIR/cod.run"
	"$COD" serve --orchestrator -c API.Port=0 -c API.Host=127.0.0.1 -c Orchestrator.Port=0 \
		-c Orchestrator.Host=127.0.0.1 "$@" \
		>"$TEST_TMP/orchestrator.log" 2>&1 &
	ORCH_PID=$!
	PIDS+=("$ORCH_PID")
	local deadline=$((SECONDS + 30))
	while [ ! -s "$COD_DIR/cod.run" ]; do
		if ! kill -0 "$ORCH_PID" 2>/dev/null; then
			echo "# orchestrator exited early:"
			sed 's/^/# /' "$TEST_TMP/orchestrator.log"
			return 1
		fi
		if [ $SECONDS -ge $deadline ]; then
			echo "# orchestrator did not start within 30s"
			return 1
		fi
		sleep 0.05
	done
	export COD_API_HOST=127.0.0.1
	COD_API_PORT=$(sed -n 's/^COD_API_PORT=//p' "$COD_DIR/cod.run")
	export COD_API_PORT
	API="http://127.0.0.1:$COD_API_PORT"
}

stop_orchestrator() {
	kill -TERM "$ORCH_PID"
	local deadline=$((SECONDS + 20))
	while kill -0 "$ORCH_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
	wait "$ORCH_PID"
	local rc=$?
	local keep=()
	local p
	for p in "${PIDS[@]}"; do [ "$p" = "$ORCH_PID" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
	return $rc
}

# http METHOD PATH [BODY-FILE|-]: sets STATUS and BODY
http() {
	local method=$1 path=$2 data=${3:-}
	local args=(-s -o "$TEST_TMP/body" -w '%{http_code}' -X "$method")
	if [ -n "$data" ]; then args+=(-H 'Content-Type: application/json' --data-binary "@$data"); fi
	STATUS=$(curl "${args[@]}" "$API$path") || STATUS=000
	BODY=$(cat "$TEST_TMP/body" 2>/dev/null)
}

# jq_of EXPR JSON
jq_of() { printf '%s' "$2" | jq -r "$1"; }

REF_JOBS=${REF_JOBS:-$PWD/../shared/reference/jobs}

# ---- clusters ------------------------------------------------------------

# Settings that make a cluster react within seconds instead of minutes.
FAST_CLUSTER=(-c Compute.Heartbeat.Interval=1s -c Orchestrator.NodeManager.DisconnectTimeout=4s
	-c Orchestrator.Scheduler.HousekeepingInterval=1s -c Orchestrator.Scheduler.HousekeepingTimeout=1s
	-c Orchestrator.Scheduler.QueueBackoff=1s)
CLUSTER_TOKEN=${CLUSTER_TOKEN:-tok-$RANDOM$RANDOM}
declare -A COMPUTE_PID

# start_cluster_orchestrator [extra args]: an orchestrator with its own
# nats-server on free ports and a token; sets NATS_URL too.
start_cluster_orchestrator() {
	COD_ORCHESTRATOR_AUTH_TOKEN=$CLUSTER_TOKEN start_orchestrator -c Orchestrator.Port=0 \
		-c Orchestrator.Host=127.0.0.1 "${FAST_CLUSTER[@]}" "$@" || return 1
	NATS_URL=$(sed -n 's/^COD_NATS_URL=//p' "$COD_DIR/cod.run")
	[ -n "$NATS_URL" ]
}

# sched_policy PID: the process's scheduling policy (0 SCHED_OTHER, 3
# SCHED_BATCH), field 41 of /proc/PID/stat (counted after the comm)
sched_policy() {
	sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f39
}

# start_compute NAME [extra args]: a compute node with its own data dir.
start_compute() {
	local name=$1
	shift
	COD_COMPUTE_AUTH_TOKEN=$CLUSTER_TOKEN "$COD" serve --compute --data-dir "$TEST_TMP/$name" --name "$name" \
		-c "Compute.Orchestrators=$NATS_URL" "${FAST_CLUSTER[@]}" "$@" >"$TEST_TMP/$name.log" 2>&1 &
	COMPUTE_PID[$name]=$!
	PIDS+=("$!")
}

# kill_compute NAME [SIGNAL]: stop one compute node (default SIGKILL).
kill_compute() {
	local pid=${COMPUTE_PID[$1]}
	kill "-${2:-KILL}" "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	local keep=() p
	for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

# wait_for DESC TIMEOUT CMD...: poll CMD every 0.2 s until it succeeds.
wait_for() {
	local desc=$1 timeout=$2
	shift 2
	local deadline=$((SECONDS + timeout))
	while ! "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ]; then
			not_ok "$desc (waited ${timeout}s)"
			return 1
		fi
		sleep 0.2
	done
	ok "$desc"
}

# connected_nodes: how many compute nodes are CONNECTED and APPROVED
connected_nodes() {
	curl -s "$API/api/v1/orchestrator/nodes" |
		jq '[.Nodes[] | select(.Info.NodeType == "Compute" and .Connection == "CONNECTED" and .Membership == "APPROVED")] | length'
}
has_connected_nodes() { [ "$(connected_nodes)" -ge "$1" ]; }

job_state() { curl -s "$API/api/v1/orchestrator/jobs/$1" | jq -r '.Job.State.StateType'; }
job_is() { [ "$(job_state "$1")" = "$2" ]; }
job_terminal() { case "$(job_state "$1")" in Completed | Failed | Stopped) return 0 ;; esac; return 1; }

# submit_json JSON: PUT a {"Job": ...} body, print the job ID
submit_json() {
	printf '%s' "$1" >"$TEST_TMP/submit.json"
	curl -s -X PUT -H 'Content-Type: application/json' --data-binary "@$TEST_TMP/submit.json" \
		"$API/api/v1/orchestrator/jobs" | jq -r '.JobID'
}

# executions JOB: the executions as JSON items
executions() { curl -s "$API/api/v1/orchestrator/jobs/$1/executions" | jq -c '.Items'; }

# ---- data: inputs and results (t2xxx, t4xxx) ------------------------------

# start_http_peer DIR: tests/peers/http_peer.py serving DIR on loopback;
# sets HTTP_PEER (base URL).
start_http_peer() {
	python3 "$PWD/tests/peers/http_peer.py" "$1" "$TEST_TMP/http_peer.port" >"$TEST_TMP/http_peer.log" 2>&1 &
	PIDS+=("$!")
	local deadline=$((SECONDS + 15))
	while [ ! -s "$TEST_TMP/http_peer.port" ] && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
	[ -s "$TEST_TMP/http_peer.port" ] || return 1
	HTTP_PEER="http://127.0.0.1:$(cat "$TEST_TMP/http_peer.port")"
}

# Settings every data test's compute node gets: a free result-server port,
# node info (the data inventory) refreshed every second.
DATA_COMPUTE=(-c Publishers.Types.Local.Port=0 -c Compute.Heartbeat.InfoUpdateInterval=1s)

# exec_field JOB JQ: a jq expression over the job's first execution
exec_field() { executions "$1" | jq -r ".[0] | $2"; }
# exec_dir NODE EXEC: that execution's directory on the node
exec_dir() { echo "$TEST_TMP/$1/compute/executions/$2"; }

# start_s3 [BUCKET...]: s3rver on loopback (scripts/start-s3.sh); sets
# S3_ENDPOINT and exports the credentials s3rver checks signatures with.
start_s3() {
	"$PWD/scripts/start-s3.sh" "$TEST_TMP/s3data" "$TEST_TMP/s3.port" "$@" >"$TEST_TMP/s3rver.log" 2>&1 &
	PIDS+=("$!")
	local deadline=$((SECONDS + 120))
	while [ ! -s "$TEST_TMP/s3.port" ] && [ $SECONDS -lt $deadline ]; do
		kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$TEST_TMP/s3rver.log"; return 1; }
		sleep 0.1
	done
	[ -s "$TEST_TMP/s3.port" ] || return 1
	S3_ENDPOINT="http://127.0.0.1:$(cat "$TEST_TMP/s3.port")"
	export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
	export AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null
}
# awss3 ARGS...: the AWS CLI against s3rver (cross-checks cod's S3 client)
awss3() { aws --endpoint-url "$S3_ENDPOINT" "$@"; }

# start_ipfs: a real IPFS node (js-ipfs, offline) on loopback
# (scripts/start-ipfs.sh); sets IPFS_API (multiaddr) and IPFS_URL.
start_ipfs() {
	"$COD_ROOT/scripts/start-ipfs.sh" "$TEST_TMP/ipfs-repo" "$TEST_TMP/ipfs.port" >"$TEST_TMP/ipfs.log" 2>&1 &
	PIDS+=("$!")
	local deadline=$((SECONDS + 600))
	while [ ! -s "$TEST_TMP/ipfs.port" ] && [ $SECONDS -lt $deadline ]; do
		kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$TEST_TMP/ipfs.log"; return 1; }
		sleep 0.1
	done
	[ -s "$TEST_TMP/ipfs.port" ] || return 1
	IPFS_API="/ip4/127.0.0.1/tcp/$(cat "$TEST_TMP/ipfs.port")"
	IPFS_URL="http://127.0.0.1:$(cat "$TEST_TMP/ipfs.port")"
}

# start_tamper_proxy [PREFIX]: tests/peers/tamper_proxy.py in front of the
# IPFS node, flipping a byte of the blocks whose CID starts with PREFIX;
# sets LIAR_API (multiaddr).
start_tamper_proxy() {
	rm -f "$TEST_TMP/liar.port"
	python3 "$COD_ROOT/tests/peers/tamper_proxy.py" "$IPFS_URL" "$TEST_TMP/liar.port" "${1:-}" >"$TEST_TMP/liar.log" 2>&1 &
	PIDS+=("$!")
	local deadline=$((SECONDS + 15))
	while [ ! -s "$TEST_TMP/liar.port" ] && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
	[ -s "$TEST_TMP/liar.port" ] || return 1
	LIAR_API="/ip4/127.0.0.1/tcp/$(cat "$TEST_TMP/liar.port")"
}
