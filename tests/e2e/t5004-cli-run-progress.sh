#!/usr/bin/env bash
# t5004-cli-run-progress: what `cod job run` shows while it waits (one
# plain line per step in a pipe, the outcome, the exit code), --follow
# (the job's output on stdout, everything else on stderr), Ctrl-C (the job
# keeps running), templating (-V, -E, --no-template), `job logs` usage
# errors, `job describe` with output and results, shell completion, and
# friendly errors.
. "$(dirname "$0")/lib.sh"

start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
start_compute node-1
wait_for "a compute node connects" 30 has_connected_nodes 1

# ---- progress lines in a pipe
cat >"$TEST_TMP/ok.yaml" <<'YAML'
Name: progress
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params: {Lines: 3, Interval: 200ms, Stdout: "done\n"}
YAML
run_cod job run "$TEST_TMP/ok.yaml" --wait-timeout-secs 30
expect_eq "job run exits 0 for a completed job" "$RC" 0
steps=$(sed -n '/^Checking job status/,/^To get more/p' <<<"$OUT" | grep '^  ' | sed 's/^  //')
# a phase is shown once it has lasted 20 ms: this job prepares nothing
# and runs for 600 ms
expect_eq "one line per step, in order" "$(sed 's/Completed in .*/Completed in/' <<<"$steps" | tr '\n' '|')" \
	"Job submitted|Scheduled on node-1|Running|Completed in|"
check "the outcome says how long it took" grep -Eq '^  Completed in [0-9.]+(ms|s)$' <<<"$OUT"
check "no spinner or carriage return in a pipe" bash -c "! grep -q \$'\r' <<<\"\$0\"" "$OUT"
expect_not_contains "no colour in a pipe" "$OUT" $'\033['
expect_contains "next steps: describe" "$OUT" "cod job describe j-"
expect_contains "next steps: executions" "$OUT" "cod job executions j-"

cat >"$TEST_TMP/fail.yaml" <<'YAML'
Name: failing
Type: batch
Meta:
  cod.retry.attempts: "2"
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params: {ExitCode: 3}
YAML
run_cod job run "$TEST_TMP/fail.yaml" --wait-timeout-secs 30
expect_eq "a failed job exits 1" "$RC" 1
expect_contains "each failed execution is a line" "$OUT" "Failed (exit code 3)"
expect_contains "the retry is a line" "$OUT" "Retrying: scheduled on node-1"
check "the outcome line says Failed and why" grep -Eq '^  Failed in .*: partition 0 failed 2 times' <<<"$OUT"
expect_contains "the error repeats the reason" "$ERR" "Error: job failed: partition 0 failed 2 times"

# ---- --follow: stdout is the job's output
cat >"$TEST_TMP/follow.yaml" <<'YAML'
Name: follower
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params: {Lines: 4, Interval: 200ms, Stream: alternate}
YAML
run_cod job run "$TEST_TMP/follow.yaml" --follow --wait-timeout-secs 30
expect_eq "job run --follow exits 0" "$RC" 0
expect_eq "job run --follow: stdout has the job's stdout only" "$(tr '\n' ' ' <<<"$OUT")" "line 1 line 3 "
expect_contains "job run --follow: the job's stderr on stderr" "$ERR" $'line 2\nline 4'
expect_contains "job run --follow: submission on stderr" "$ERR" "Job successfully submitted"
expect_contains "job run --follow: outcome on stderr" "$ERR" "Completed in"
run_cod job run "$TEST_TMP/follow.yaml" -f --force --wait-timeout-secs 30
expect_eq "job run -f is --follow" "$(tr '\n' ' ' <<<"$OUT")" "line 1 line 3 "

# ---- Ctrl-C stops waiting, the job runs on
cat >"$TEST_TMP/long.yaml" <<'YAML'
Name: long
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params: {Sleep: 4s}
YAML
"$COD" job run "$TEST_TMP/long.yaml" >"$TEST_TMP/int.out" 2>"$TEST_TMP/int.err" &
RUNNER=$!
started() { grep -q Running "$TEST_TMP/int.out"; }
wait_for "the job is running" 20 started
kill -INT "$RUNNER"
wait "$RUNNER"
expect_eq "Ctrl-C exits 130" "$?" 130
expect_contains "Ctrl-C says the job keeps running" "$(cat "$TEST_TMP/int.err")" "keeps running"
expect_contains "Ctrl-C says how to follow it" "$(cat "$TEST_TMP/int.err")" "cod job logs -f j-"
LID=$(sed -n 's/^Job successfully submitted. Job ID: //p' "$TEST_TMP/int.out")
wait_for "the interrupted job still completes" 20 job_is "$LID" Completed
"$COD" job run --force -f "$TEST_TMP/long.yaml" >"$TEST_TMP/int2.out" 2>"$TEST_TMP/int2.err" &
RUNNER=$!
sleep 1.5
kill -INT "$RUNNER"
wait "$RUNNER"
expect_eq "Ctrl-C while following exits 130" "$?" 130
expect_contains "... and says the job keeps running" "$(cat "$TEST_TMP/int2.err")" "keeps running"

# ---- templating
cat >"$TEST_TMP/tpl.yaml" <<'YAML'
Name: "{{.name}}"
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params: {Stdout: "region={{ .COD_TEST_REGION }} literal={{`{{x}}`}}"}
YAML
COD_TEST_REGION=eu-1 run_cod job run "$TEST_TMP/tpl.yaml" -V name=templated -E '^COD_TEST_' --wait-timeout-secs 30
expect_eq "a templated spec runs" "$RC" 0
run_cod job logs templated
expect_eq "its variables were filled in" "$OUT" "region=eu-1 literal={{x}}"
run_cod job run "$TEST_TMP/tpl.yaml" --wait=false
expect_eq "a missing template variable exits 1" "$RC" 1
expect_contains "a missing template variable is named" "$ERR" "{{.name}} has no value"
expect_contains "... with a hint" "$ERR" "-V name=VALUE"
run_cod job run "$TEST_TMP/tpl.yaml" --no-template --dry-run
expect_eq "--no-template sends the spec as written" "$(grep -c '{{' <<<"$OUT")" 2
COD_TEST_REGION=eu-1 run_cod job validate "$TEST_TMP/tpl.yaml" -V name=x -E 'COD_TEST_REGION'
expect_eq "job validate takes the template flags too" "$RC" 0
run_cod job run "$TEST_TMP/tpl.yaml" -V 'bad name=1'
expect_eq "a bad -V is a usage error" "$RC" 2

# ---- job logs: usage errors
run_cod job logs
expect_eq "job logs without an ID exits 2" "$RC" 2
run_cod job logs progress --tail -1
expect_eq "a negative --tail exits 2" "$RC" 2
run_cod job logs --help
expect_contains "job logs --help lists --follow" "$OUT" "--follow"
expect_contains "job logs --help has examples" "$OUT" "Examples:"
run_cod job logs progress --api-port 1
expect_eq "job logs without an API exits 1" "$RC" 1
expect_contains "job logs without an API hints how to start one" "$ERR" "cod serve --orchestrator"

# ---- describe: output, full logs hint, inputs and results where known
cat >"$TEST_TMP/big.yaml" <<'YAML'
Name: bigout
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params: {Lines: 300}
YAML
run_cod job run "$TEST_TMP/big.yaml" --wait-timeout-secs 30
run_cod job describe bigout
expect_contains "describe shows the output" "$OUT" "Standard Output"
expect_contains "describe notes the truncation and where to get it all" "$OUT" "…Output truncated"
expect_contains "... naming job logs" "$OUT" "cod job logs j-"
run_cod job logs bigout --tail 1
expect_eq "job logs has the line describe cut" "$OUT" "line 300"

# ---- completion
run_cod completion bash
expect_eq "completion bash exits 0" "$RC" 0
expect_contains "the bash script registers cod" "$OUT" "complete -o default -F _cod_complete cod"
check "the bash script is valid bash" bash -n <<<"$OUT"
run_cod completion zsh
expect_contains "the zsh script defines _cod" "$OUT" "#compdef cod"
run_cod completion fish
expect_eq "an unknown shell exits 2" "$RC" 2
# drive the bash function as bash would
complete_words() { # WORDS...: what bash offers for the last word
	bash -c '
		source <("$COD" completion bash)
		COMP_WORDS=("$COD" "$@"); COMP_CWORD=$#
		_cod_complete
		printf "%s\n" "${COMPREPLY[@]}"' _ "$@"
}
expect_contains "cod <TAB> offers the groups" "$(complete_words '')" "job"
expect_eq "cod jo<TAB>" "$(complete_words jo)" "job"
expect_contains "cod job l<TAB> offers list and logs" "$(complete_words job l | tr '\n' ' ')" "list logs"
expect_contains "cod job logs --f<TAB>" "$(complete_words job logs --f)" "--follow"
expect_eq "cod job list --output <TAB> offers the formats" "$(complete_words job list --output '' | tr '\n' ' ')" \
	"table csv json yaml "
expect_eq "cod job run <TAB> leaves file names to the shell" "$(complete_words job run '')" ""
expect_contains "cod node list --sh<TAB>" "$(complete_words node list --sh)" "--show"

# ---- friendly errors
run_cod job describe j-00000000
expect_eq "an unknown short ID exits 1" "$RC" 1
expect_contains "an unknown job suggests job list" "$ERR" "cod job list"
run_cod job logs j-
expect_eq "an ambiguous job prefix exits 1" "$RC" 1
expect_contains "an ambiguous job prefix lists the matches" "$ERR" "j-"
