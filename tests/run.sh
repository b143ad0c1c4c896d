#!/usr/bin/env bash
# The test runner of `make test`: unit tests (cmocka), fuzz corpus replays
# and e2e scripts, all against the binaries in $BUILD. Counts every test
# case and ends with "N passed, N failed".
#   ONLY=unit|e2e|fuzz   run one family
#   T=t1001              run e2e scripts whose name starts with T
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
export COD="$PWD/$BUILD/cod"
# Leaks are failures; UBSan reports abort the test.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}

passed=0
failed=0
failures=()
logdir=$(mktemp -d "${TMPDIR:-/tmp}/cod-test-logs.XXXXXX")

record() { # name status
	if [ "$2" = ok ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

run_unit() {
	for t in "$BUILD"/tests/test_*; do
		[ -x "$t" ] || continue
		name=$(basename "$t")
		log="$logdir/$name.log"
		"$t" >"$log" 2>&1
		rc=$?
		ok=$(grep -c '^\[       OK \]' "$log")
		bad=$(grep -c '^\[  FAILED  \]' "$log")
		# cmocka prints a summary FAILED line too; count test lines only
		bad_tests=$(grep -E '^\[  FAILED  \] [^0-9]' "$log" | grep -vc 'test(s), listed below' )
		passed=$((passed + ok))
		if [ "$rc" -ne 0 ] || [ "$bad" -gt 0 ]; then
			[ "$bad_tests" -gt 0 ] || bad_tests=1
			failed=$((failed + bad_tests))
			failures+=("$name (see $log)")
			echo "FAIL unit $name"
			tail -n 30 "$log"
		else
			echo "ok   unit $name ($ok tests)"
		fi
	done
}

run_fuzz() {
	for t in "$BUILD"/fuzz/*-replay; do
		[ -x "$t" ] || continue
		name=$(basename "$t" -replay)
		corpus="tests/fuzz/corpus/$name"
		if [ ! -d "$corpus" ]; then
			echo "FAIL fuzz $name: no seed corpus at $corpus"
			record "fuzz $name" fail
			continue
		fi
		log="$logdir/fuzz-$name.log"
		if "$t" "$corpus" >"$log" 2>&1; then
			echo "ok   fuzz $name ($(tail -n 1 "$log"))"
			record "fuzz $name" ok
		else
			echo "FAIL fuzz $name"
			tail -n 30 "$log"
			record "fuzz $name (see $log)" fail
		fi
	done
}

run_e2e() {
	for s in tests/e2e/t[0-9]*.sh; do
		[ -f "$s" ] || continue
		name=$(basename "$s" .sh)
		if [ -n "${T:-}" ] && [[ "$name" != "$T"* ]]; then continue; fi
		log="$logdir/$name.log"
		start=$(date +%s)
		timeout --kill-after=10 600 bash "$s" >"$log" 2>&1
		rc=$?
		ok=$(grep -c '^ok ' "$log")
		bad=$(grep -c '^not ok ' "$log")
		passed=$((passed + ok))
		failed=$((failed + bad))
		if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
			failed=$((failed + 1))
			bad=1
		fi
		if [ "$bad" -gt 0 ]; then
			failures+=("$name (see $log)")
			echo "FAIL e2e  $name (rc=$rc, $ok ok, $bad failed, $(( $(date +%s) - start ))s)"
			grep -E '^not ok|^#' "$log" | head -n 40
			tail -n 15 "$log"
		else
			echo "ok   e2e  $name ($ok checks, $(( $(date +%s) - start ))s)"
		fi
	done
}

case "${ONLY:-all}" in
unit) run_unit ;;
fuzz) run_fuzz ;;
e2e) run_e2e ;;
*) run_unit; run_fuzz; run_e2e ;;
esac

if [ "$failed" -gt 0 ]; then
	echo
	echo "failures:"
	for f in "${failures[@]}"; do echo "  $f"; done
else
	rm -rf "$logdir"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
