# Shared helpers of the e2e tests. Source it from tNNNN-*.sh:
#   . "$(dirname "$0")/lib.sh"
# Every process a test starts is stopped by its PID when the test ends,
# pass or fail; ports are chosen at run time (API.Port=0, read back from
# the server's cod.run file); waits poll with deadlines.
set -u

COD=${COD:-$PWD/build/cod}
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
	"$COD" serve --orchestrator -c API.Port=0 -c API.Host=127.0.0.1 "$@" \
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
