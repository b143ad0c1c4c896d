#!/usr/bin/env bash
# t5001-cli-usage: help texts, usage errors and their exit codes, an
# unreachable API, and local job spec validation. No server runs here
# except where said.
. "$(dirname "$0")/lib.sh"

# ---- root
run_cod
expect_eq "cod without arguments exits 2" "$RC" 2
expect_contains "cod without arguments prints usage to stderr" "$ERR" "Usage"

run_cod --help
expect_eq "cod --help exits 0" "$RC" 0
expect_contains "cod --help shows usage" "$OUT" "Usage"
expect_contains "cod --help lists the job group" "$OUT" "job "
expect_contains "cod --help has examples" "$OUT" "Examples"

# ---- every group and every subcommand has help with usage and an example
declare -A SUBS=(
	[job]="run list describe stop rerun history executions versions validate"
	[node]="list describe approve reject delete"
	[agent]="alive version node config"
	[config]="list set"
)
for group in job node agent config; do
	run_cod "$group" --help
	expect_eq "cod $group --help exits 0" "$RC" 0
	expect_contains "cod $group --help shows usage" "$OUT" "Usage"
	expect_contains "cod $group --help has an example" "$OUT" "Examples:"
	group_help=$OUT
	for sub in ${SUBS[$group]}; do
		expect_contains "cod $group --help lists $sub" "$group_help" "  $sub "
		run_cod "$group" "$sub" --help
		expect_eq "cod $group $sub --help exits 0" "$RC" 0
		expect_contains "cod $group $sub --help shows usage" "$OUT" "Usage:"
		expect_contains "cod $group $sub --help shows the command" "$OUT" "cod $group $sub"
		expect_contains "cod $group $sub --help has an example" "$OUT" "Examples:"
		run_cod "$group" "$sub" -h
		expect_eq "cod $group $sub -h exits 0" "$RC" 0
	done
	run_cod "$group"
	expect_eq "cod $group without a subcommand exits 2" "$RC" 2
	expect_contains "cod $group without a subcommand lists commands" "$ERR" "Commands:"
done
run_cod version --help
expect_eq "cod version --help exits 0" "$RC" 0
expect_contains "cod version --help shows usage" "$OUT" "Usage:"
expect_contains "cod version --help has an example" "$OUT" "Examples:"
expect_contains "cod version --help lists --client" "$OUT" "--client"
run_cod job list --help
expect_contains "job list --help lists its flags" "$OUT" "--next-token"
expect_contains "job list --help lists the output flags" "$OUT" "--output FORMAT"
expect_contains "job list --help lists the global flags" "$OUT" "--api-port"

# ---- unknown commands and subcommands
run_cod jbo list
expect_eq "unknown command exits 2" "$RC" 2
expect_contains "unknown command is named" "$ERR" 'unknown command "jbo"'
expect_contains "unknown command gets a did-you-mean hint" "$ERR" 'did you mean "cod job"'
run_cod job lsit
expect_eq "unknown job subcommand exits 2" "$RC" 2
expect_contains "unknown subcommand gets a did-you-mean hint" "$ERR" 'did you mean "cod job list"'
run_cod node aprove n-1
expect_eq "unknown node subcommand exits 2" "$RC" 2
expect_contains "node subcommand hint" "$ERR" 'did you mean "cod node approve"'
run_cod config lst
expect_eq "unknown config subcommand exits 2" "$RC" 2
expect_contains "config subcommand hint" "$ERR" 'did you mean "cod config list"'
run_cod agent xyzzy
expect_eq "unknown agent subcommand far from any exits 2" "$RC" 2
expect_contains "far-off subcommand points at --help" "$ERR" "cod agent --help"

# ---- unknown flags
run_cod job list --limt 5
expect_eq "unknown flag exits 2" "$RC" 2
expect_contains "unknown flag is named" "$ERR" "unknown flag --limt"
expect_contains "unknown flag gets a did-you-mean hint" "$ERR" "did you mean --limit"
run_cod job list --frobnicate
expect_eq "unknown flag without a near one exits 2" "$RC" 2
expect_contains "usage errors point at --help" "$ERR" "cod job list --help"
run_cod node list -Z
expect_eq "unknown short flag exits 2" "$RC" 2

# ---- missing and extra arguments
for cmd in "job run" "job validate" "job describe" "job stop" "job rerun" "job history" "job executions" \
	"job versions" "node describe" "node approve" "node reject" "node delete" "config set"; do
	# shellcheck disable=SC2086
	run_cod $cmd
	expect_eq "cod $cmd without its argument exits 2" "$RC" 2
	expect_contains "cod $cmd names the missing argument" "$ERR" "missing"
done
run_cod job describe a b
expect_eq "an extra argument exits 2" "$RC" 2
expect_contains "an extra argument is named" "$ERR" 'unexpected argument "b"'
run_cod config set API.Port
expect_eq "config set without a value exits 2" "$RC" 2
run_cod job list --limit
expect_eq "a flag without its value exits 2" "$RC" 2
expect_contains "a flag without its value is named" "$ERR" "flag --limit needs a value"

# ---- bad flag values
run_cod job list --limit ten
expect_eq "non-integer --limit exits 2" "$RC" 2
expect_contains "non-integer --limit is explained" "$ERR" "is not an integer"
run_cod job list --limit -3
expect_eq "negative --limit exits 2" "$RC" 2
run_cod job run --wait=maybe "$REF_JOBS/docker.yaml"
expect_eq "non-boolean --wait exits 2" "$RC" 2
run_cod job run --wait-timeout-secs 0 "$REF_JOBS/docker.yaml"
expect_eq "zero --wait-timeout-secs exits 2" "$RC" 2
run_cod job list --order-by colour
expect_eq "unknown --order-by exits 2" "$RC" 2
run_cod job history j-1 --event-type sometimes
expect_eq "unknown --event-type exits 2" "$RC" 2
run_cod node list --show labels,gizmos
expect_eq "unknown --show group exits 2" "$RC" 2
expect_contains "unknown --show group is named" "$ERR" '"gizmos"'
run_cod node list --filter-approval MAYBE
expect_eq "unknown --filter-approval exits 2" "$RC" 2
run_cod node list --filter-status ASLEEP
expect_eq "unknown --filter-status exits 2" "$RC" 2

# ---- bad --output values
run_cod job list --output xml
expect_eq "--output xml exits 2" "$RC" 2
expect_contains "--output xml is explained" "$ERR" '"xml" is not one of'
run_cod node list -o html
expect_eq "-o html exits 2" "$RC" 2
run_cod job describe j-1 --output csv
expect_eq "job describe --output csv exits 2 (json or yaml only)" "$RC" 2
run_cod node describe n-1 --output table
expect_eq "node describe --output table exits 2" "$RC" 2
run_cod job run --output csv "$REF_JOBS/docker.yaml"
expect_eq "job run --output csv exits 2" "$RC" 2
run_cod agent version --output csv
expect_eq "agent version --output csv exits 2" "$RC" 2

# ---- the API is unreachable: exit 1 with a hint to start an orchestrator
for cmd in "job list" "job describe j-1" "job stop j-1" "node list" "agent alive" "version"; do
	# shellcheck disable=SC2086
	run_cod $cmd --api-port 1
	expect_eq "cod $cmd with no server exits 1" "$RC" 1
	expect_contains "cod $cmd with no server says so" "$ERR" "cannot reach the cod API"
	expect_contains "cod $cmd with no server hints at serve" "$ERR" "cod serve --orchestrator"
done
run_cod job run --wait=false --api-port 1 "$REF_JOBS/docker.yaml"
expect_eq "job run with no server exits 1" "$RC" 1
expect_contains "job run with no server hints at serve" "$ERR" "cod serve --orchestrator"
COD_API_PORT=1 run_cod agent alive
expect_eq "COD_API_PORT is used by the client" "$RC" 1
expect_contains "COD_API_PORT names the port" "$ERR" "127.0.0.1:1"
run_cod version --client --api-port 1
expect_eq "version --client needs no server" "$RC" 0
expect_contains "version --client prints the client version" "$OUT" "v"
expect_eq "version --client prints no error" "$ERR" ""
run_cod --version
expect_eq "cod --version exits 0 without a server" "$RC" 0
expect_contains "cod --version shows CLIENT" "$OUT" "CLIENT"

# ---- local validation of every reference job spec
for f in "$REF_JOBS"/*; do
	name=$(basename "$f")
	run_cod job validate "$f"
	if [ "$name" = empty.yaml ]; then
		expect_eq "job validate $name fails" "$RC" 1
		expect_contains "job validate $name explains why" "$ERR" "Error:"
		expect_not_contains "job validate $name prints no success" "$OUT" "valid"
	else
		expect_eq "job validate $name passes" "$RC" 0
		expect_contains "job validate $name says so" "$OUT" "The job spec is valid"
	fi
done
run_cod job validate - <"$REF_JOBS/docker-output.json"
expect_eq "job validate - reads stdin" "$RC" 0
run_cod job validate "$TEST_TMP/missing.yaml"
expect_eq "job validate of a missing file exits 1" "$RC" 1
expect_contains "job validate of a missing file names it" "$ERR" "missing.yaml"

cat >"$TEST_TMP/bad.yaml" <<'EOF'
Type: batch
Count: -3
Tasks:
  - Name: main
    Engine:
      Type: docker
    Resources:
      Memory: lots
EOF
run_cod job validate "$TEST_TMP/bad.yaml"
expect_eq "an invalid spec fails validation" "$RC" 1
expect_contains "every problem is listed (count)" "$ERR" "Count"
expect_contains "every problem is listed (image)" "$ERR" "Tasks[0].Engine.Params.Image"
expect_contains "every problem is listed (memory)" "$ERR" "Tasks[0].Resources.Memory"
# job run validates locally before it talks to the API
run_cod job run --api-port 1 "$TEST_TMP/bad.yaml"
expect_eq "job run of an invalid spec exits 1" "$RC" 1
expect_not_contains "job run of an invalid spec does not call the API" "$ERR" "cannot reach"
expect_contains "job run of an invalid spec lists its problems" "$ERR" "Tasks[0].Resources.Memory"

printf 'Type: batch\nTasks:\n  - Name: main\n    Engine:\n      Type: noop\n    Colour: blue\n' >"$TEST_TMP/unknown.yaml"
run_cod job validate "$TEST_TMP/unknown.yaml"
expect_eq "an unknown field fails validation" "$RC" 1
expect_contains "the unknown field is named with its path" "$ERR" "Colour"

# --dry-run prints the normalized job without a server
run_cod job run --dry-run --api-port 1 "$REF_JOBS/nameless.yaml"
expect_eq "job run --dry-run needs no server" "$RC" 0
expect_contains "job run --dry-run prints yaml" "$OUT" "Type: batch"
expect_contains "job run --dry-run applies defaults" "$OUT" "Namespace: default"
run_cod job run --dry-run --output json --namespace team-a --api-port 1 "$REF_JOBS/docker.yaml"
expect_eq "job run --dry-run --output json exits 0" "$RC" 0
expect_eq "job run --dry-run json parses and --namespace overrides" "$(jq_of .Namespace "$OUT")" "team-a"
expect_eq "job run --dry-run json keeps the image" "$(jq_of '.Tasks[0].Engine.Params.Image' "$OUT")" "busybox:1.37.0"
