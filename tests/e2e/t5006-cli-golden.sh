#!/usr/bin/env bash
# t5006-cli-golden: the tables of job list, describe, executions, history
# and node list compared line by line with expected output, after masking
# what changes from run to run (IDs, times, ages, machine sizes) and
# squeezing blanks; the columns of their JSON and YAML forms. A change to
# these outputs should be deliberate: update the expectations here.
. "$(dirname "$0")/lib.sh"

start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
# the job is over in milliseconds: its phases are not reported (with the
# default 20 ms a slow machine might report some, hence a minute)
start_compute node-1 -c Compute.PhaseReportDelay=1m
wait_for "a compute node connects" 30 has_connected_nodes 1

cat >"$TEST_TMP/golden.yaml" <<'YAML'
Name: golden
Type: batch
Labels: {team: data}
Tasks:
  - Name: main
    Engine:
      Type: noop
      Params: {Stdout: "hello\n", Stderr: "warn\n"}
YAML
run_cod job run "$TEST_TMP/golden.yaml" --wait-timeout-secs 30
expect_eq "the job completes" "$RC" 0

# mask: IDs, times, ages, numbers where asked; squeeze blanks
mask() {
	sed -E -e 's/\b([jen])-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\b/\1-FULLID/g' \
		-e 's/\b([jen])-[0-9a-f]{8}\b/\1-SHORT/g' \
		-e 's/[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}/TIME/g' \
		-e 's/[0-9.]+(ms|s|m[0-9]+s|h[0-9]+m|d[0-9]+h) ago/AGO/g' \
		-e 's/ +$//' | tr -s ' '
}
# golden DESC EXPECTED COMMAND...: compare the masked output
golden() {
	local desc=$1 want=$2
	shift 2
	run_cod "$@"
	local got
	got=$(mask <<<"$OUT")
	if [ "$RC" = 0 ] && [ "$got" = "$want" ]; then
		ok "$desc"
	else
		not_ok "$desc (rc=$RC)"
		diff <(echo "$want") <(echo "$got") | sed 's/^/# /'
	fi
}

golden "job list" "$(cat <<'EOF'
CREATED ID NAME JOB TYPE STATE
AGO j-SHORT golden noop batch Completed
EOF
)" job list

golden "job list --wide" "$(cat <<'EOF'
CREATED ID NAME JOB TYPE STATE
TIME j-FULLID golden noop batch Completed
EOF
)" job list --wide

golden "job list csv" "$(cat <<'EOF'
CREATED,ID,NAME,JOB,TYPE,STATE
AGO,j-SHORT,golden,noop,batch,Completed
EOF
)" job list --output csv

golden "job executions" "$(cat <<'EOF'
CREATED MODIFIED ID JOB VERSION NODE ID REV. STATE DESIRED COMMENT
AGO AGO e-SHORT 1 node-1 4 Completed Stopped execution completed
EOF
)" job executions golden

golden "job history" "$(cat <<'EOF'
TIME LEVEL JOB VERSION EXEC. ID TOPIC EVENT
TIME Job 1 Submission Job submitted
TIME Execution 1 e-SHORT Scheduling scheduled on node node-1
TIME Execution 1 e-SHORT Execution bid accepted
TIME Execution 1 e-SHORT Scheduling bid accepted
TIME Job 1 Scheduling job running
TIME Execution 1 e-SHORT Execution execution completed
TIME Job 1 Scheduling job completed
EOF
)" job history golden

golden "job describe" "$(cat <<'EOF'
ID = j-FULLID
Name = golden
Namespace = default
Type = batch
State = Completed
Count = 1
Created Time = TIME
Modified Time = TIME
Version = 1
Labels = team=data
Engine = noop

Summary
Completed = 1

Job History
TIME REV. TOPIC EVENT
TIME 1 Submission Job submitted
TIME 1 Scheduling job running
TIME 1 Scheduling job completed

Executions
ID NODE ID STATE DESIRED REV. CREATED MODIFIED COMMENT
e-SHORT node-1 Completed Stopped 4 AGO AGO execution completed

Execution e-FULLID History
TIME REV. TOPIC EVENT
TIME 1 Scheduling scheduled on node node-1
TIME 1 Execution bid accepted
TIME 1 Scheduling bid accepted
TIME 1 Execution execution completed

Results
Not published (publisher noop)

Standard Output
hello

Standard Error
warn
EOF
)" job describe golden

# node list: sizes depend on the machine
run_cod node list --labels name=node-1
got=$(mask <<<"$OUT" | sed -E 's/os_arch=[a-z0-9_]+/os_arch=ARCH/; s/[0-9]+(\.[0-9]+)?/N/g')
expect_eq "node list" "$got" "$(cat <<'EOF'
ID TYPE APPROVAL STATUS LABELS CPU MEMORY DISK GPU
node-N Compute APPROVED CONNECTED name=node-N os_type=linux os_arch=ARCH N / N N GiB / N GiB N GiB / N GiB N / N
EOF
)"
run_cod node list --show version --labels name=node-1
expect_eq "node list --show version" "$(mask <<<"$OUT" | sed -E 's/v[0-9.]+/VERSION/; s/amd64|arm64/ARCH/')" "$(cat <<'EOF'
ID TYPE APPROVAL STATUS VERSION ARCHITECTURE OS
node-1 Compute APPROVED CONNECTED VERSION ARCH linux
EOF
)"
run_cod node list
expect_eq "node list shortens the orchestrator's generated ID" "$(mask <<<"$OUT" | grep -c '^n-SHORT Requester')" 1

# ---- JSON and YAML keep full IDs and their columns
run_cod job list --output json
expect_eq "job list json: the Job keys" "$(jq -c '.[0] | keys' <<<"$OUT")" \
	'["Count","CreateTime","ID","Labels","Meta","ModifyTime","Name","Namespace","Revision","State","Tasks","Type","Version"]'
check "job list json has the full ID" grep -Eq '"j-[0-9a-f]{8}-' <<<"$OUT"
run_cod job executions golden --output json
expect_eq "job executions json: the Execution keys" "$(jq -c '.[0] | keys' <<<"$OUT")" \
	'["AllocatedResources","ComputeState","CreateTime","DesiredState","EvalID","FollowupEvalID","ID","Job","JobID","JobVersion","ModifyTime","Name","Namespace","NextExecution","NodeID","PartitionIndex","PreviousExecution","PublishedResult","Revision","RunOutput"]'
run_cod job history golden --output yaml
check "job history yaml lists events with their keys" grep -q '^- ' <<<"$OUT"
for key in JobID Type Event Time; do
	check "job history yaml has $key" grep -Eq "^  $key:" <<<"$OUT"
done
run_cod job describe golden --output json
expect_eq "job describe json: {Job, History, Executions}" "$(jq -c 'keys' <<<"$OUT")" '["Executions","History","Job"]'
