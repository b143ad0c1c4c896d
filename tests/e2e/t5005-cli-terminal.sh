#!/usr/bin/env bash
# t5005-cli-terminal: `cod job run` on a real terminal (tmux): a spinner
# line shows the current step while the job runs and is gone at the end,
# the outcome is in colour, --no-style and NO_COLOR turn colour off, and
# `cod job logs` prefixes lines of several executions in colour.
. "$(dirname "$0")/lib.sh"

if ! command -v tmux >/dev/null; then
	# a skip is not a pass: say why and count nothing
	echo "# skip: tmux is not installed (scripts/install-deps.sh installs it)"
	exit 0
fi
SOCK="cod-t5005-$$"
trap 'tmux -L "$SOCK" kill-server 2>/dev/null; cleanup; exit $?' EXIT

start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
start_compute node-1
wait_for "a compute node connects" 30 has_connected_nodes 1

cat >"$TEST_TMP/job.yaml" <<'YAML'
Name: terminal
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params: {Sleep: 3s}
YAML

# term NAME COMMAND: run COMMAND in a tmux window of its own (a terminal
# of 160x40), colour allowed; screen NAME [-e]: what the window shows
term() {
	local name=$1
	shift
	if ! tmux -L "$SOCK" has-session 2>/dev/null; then
		tmux -L "$SOCK" new-session -d -s main -x 160 -y 40 "sleep 600"
	fi
	tmux -L "$SOCK" new-window -d -n "$name" \
		"env -u NO_COLOR COD_API_HOST=$COD_API_HOST COD_API_PORT=$COD_API_PORT COD_DIR=$COD_DIR $*; echo EXIT=\$?; sleep 600"
}
screen() { tmux -L "$SOCK" capture-pane -p ${2:+"$2"} -t "main:$1" 2>/dev/null; }
finished() { screen "$1" | grep -q '^EXIT='; }
spinning() { screen "$1" | grep -Eq '^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] .*Running \([0-9.]+m?s\)'; }

term run "$COD job run $TEST_TMP/job.yaml"
wait_for "a spinner shows the running step on a terminal" 20 spinning run
wait_for "the run finishes" 30 finished run
final=$(screen run)
expect_contains "the run exits 0" "$final" "EXIT=0"
expect_contains "the steps are there" "$final" "  Running"
check "the outcome is there" grep -Eq '^  Completed in ' <<<"$final"
check "the spinner line is gone at the end" bash -c "! grep -q '⠋\|⠙\|⠹\|⠸\|⠼\|⠴\|⠦\|⠧\|⠇\|⠏' <<<\"\$0\"" "$final"
colored=$(screen run -e)
check "the outcome is green on a terminal" grep -q $'\033\\[32mCompleted in' <<<"$colored"

term plain "$COD job run --force --no-style $TEST_TMP/job.yaml"
wait_for "the --no-style run finishes" 30 finished plain
expect_not_contains "--no-style: no colour" "$(screen plain -e | grep Completed)" $'\033[32m'

term nocolor "NO_COLOR=1 $COD job run --force $TEST_TMP/job.yaml"
wait_for "the NO_COLOR run finishes" 30 finished nocolor
expect_not_contains "NO_COLOR: no colour" "$(screen nocolor -e | grep Completed)" $'\033[32m'

term piped "$COD job run --force $TEST_TMP/job.yaml | cat"
wait_for "the piped run finishes" 30 finished piped
check "piped: plain lines, no spinner" bash -c "! grep -q '⠋\|⠙\|⠹' <<<\"\$0\"" "$(screen piped)"

start_compute node-2
wait_for "a second compute node connects" 30 has_connected_nodes 2
cat >"$TEST_TMP/two.yaml" <<'YAML'
Name: two
Type: batch
Count: 2
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params: {Stdout: "hello\n"}
YAML
run_cod job run "$TEST_TMP/two.yaml" --wait-timeout-secs 30
TWO=$(jq -r '.[] | select(.Name == "two") | .ID' <<<"$("$COD" job list --output json)")
term logs "$COD job logs $TWO"
wait_for "job logs finishes" 20 finished logs
check "execution prefixes are coloured on a terminal" grep -q $'\033\\[3[0-9]m\\[e-' <<<"$(screen logs -e)"
run_cod job logs "$TWO"
expect_not_contains "no colour in a pipe" "$OUT" $'\033['
expect_eq "two prefixed lines in a pipe" "$(grep -c '^\[e-[0-9a-f]\{8\}\] hello$' <<<"$OUT")" 2
