#!/usr/bin/env bash
# What the job spec does to the container: Docker's entrypoint/cmd
# override rules, environment precedence, working directory, an inline
# input mounted read-only, ResultPaths collected, the image's User.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-oci.sh"
oci_require

start_registry || exit 1
for i in busybox entry nobody; do push "$i" || { not_ok "push $i"; exit 1; }; done
start_oci_cluster

BB="$REG/cod-test/busybox:latest"
EP="$REG/cod-test/entry:latest"

# run_job NAME PARAMS [TASK-EXTRA]: submit, wait, set J (job id)
run_job() {
	J=$(submit_json "$(docker_job "$1" "$2" "${3:-{\}}")")
	wait_for "$1 ends" 60 job_terminal "$J"
}
stdout_of() { exec_field "$1" .RunOutput.Stdout; }

# ---- entrypoint / cmd matrix; the image has Entrypoint [/bin/echo ep], Cmd [cmd]
run_job ep-none "{\"Image\":\"$EP\"}"
expect_eq "image entrypoint + image cmd" "$(stdout_of "$J")" "ep cmd"
run_job ep-params "{\"Image\":\"$EP\",\"Parameters\":[\"p1\",\"p2\"]}"
expect_eq "image entrypoint + job parameters" "$(stdout_of "$J")" "ep p1 p2"
run_job ep-entry "{\"Image\":\"$EP\",\"Entrypoint\":[\"/bin/echo\",\"E\"]}"
expect_eq "job entrypoint drops the image cmd" "$(stdout_of "$J")" "E"
run_job ep-both "{\"Image\":\"$EP\",\"Entrypoint\":[\"/bin/echo\",\"E\"],\"Parameters\":[\"x\"]}"
expect_eq "job entrypoint + job parameters" "$(stdout_of "$J")" "E x"
run_job ep-reset "{\"Image\":\"$EP\",\"Entrypoint\":[\"\"],\"Parameters\":[\"/bin/echo\",\"y\"]}"
expect_eq "empty entrypoint resets it; parameters are the command" "$(stdout_of "$J")" "y"
run_job ep-cmdonly "{\"Image\":\"$BB\"}"
expect_eq "busybox with its Cmd [sh] and no stdin exits 0" "$(exec_field "$J" .RunOutput.ExitCode)" 0

# ---- environment: image < task Env < engine EnvironmentVariables < BACALHAU_*
run_job env "{\"Image\":\"$EP\",\"Entrypoint\":[\"env\"],\"EnvironmentVariables\":[\"ENGVAR=engine\",\"MIXED=engine\"]}" \
	'{"Env":{"TASKVAR":"task","MIXED":"task"}}'
ENVOUT=$(stdout_of "$J")
expect_contains "image env" "$ENVOUT" "IMGVAR=image"
expect_contains "task env" "$ENVOUT" "TASKVAR=task"
expect_contains "engine env" "$ENVOUT" "ENGVAR=engine"
expect_contains "engine env wins over task and image" "$ENVOUT" "MIXED=engine"
expect_contains "BACALHAU_JOB_ID injected" "$ENVOUT" "BACALHAU_JOB_ID=$J"
expect_contains "partition index injected" "$ENVOUT" "BACALHAU_PARTITION_INDEX=0"
expect_contains "PATH from the image" "$ENVOUT" "PATH=/usr/local/sbin"
expect_contains "HOME from /etc/passwd" "$ENVOUT" "HOME=/root"

# ---- working directory
run_job wd-image "{\"Image\":\"$EP\",\"Entrypoint\":[\"pwd\"]}"
expect_eq "the image's WorkingDir" "$(stdout_of "$J")" "/work"
run_job wd-job "{\"Image\":\"$EP\",\"Entrypoint\":[\"pwd\"],\"WorkingDirectory\":\"/tmp\"}"
expect_eq "WorkingDirectory overrides it" "$(stdout_of "$J")" "/tmp"
run_job wd-new "{\"Image\":\"$BB\",\"Parameters\":[\"pwd\"],\"WorkingDirectory\":\"/new/dir\"}"
expect_eq "a missing WorkingDirectory is created" "$(stdout_of "$J")" "/new/dir"
docker_job wd-rel "{\"Image\":\"$BB\",\"WorkingDirectory\":\"rel\"}" >"$TEST_TMP/rel.json"
http PUT /api/v1/orchestrator/jobs "$TEST_TMP/rel.json"
expect_eq "a relative WorkingDirectory is refused at submit" "$STATUS" 400
expect_contains "with the parameter named" "$BODY" "WorkingDirectory"
docker_job badparam "{\"Image\":\"$BB\",\"Imag\":\"x\"}" >"$TEST_TMP/bad.json"
http PUT /api/v1/orchestrator/jobs "$TEST_TMP/bad.json"
expect_eq "an unknown parameter is refused at submit" "$STATUS" 400
expect_contains "naming it" "$BODY" "Imag"

# ---- inline input, read-only; ResultPaths
DATA=$(printf 'hello input\n' | base64 -w0)
TASK=$(jq -nc --arg u "data:text/plain;base64,$DATA" '{InputSources:[{Target:"/inputs/data.txt", Source:{Type:"inline", Params:{URL:$u}}}],
	ResultPaths:[{Name:"out", Path:"/outputs"}], Publisher:{Type:"local"}}')
run_job io "{\"Image\":\"$BB\",\"Parameters\":[\"sh\",\"-c\",\"cat /inputs/data.txt; if echo x >> /inputs/data.txt; then echo WRITABLE; else echo readonly; fi; echo result > /outputs/file; mkdir /outputs/sub; echo deep > /outputs/sub/f\"]}" "$TASK"
expect_eq "job with input and outputs completes" "$(job_state "$J")" Completed
OUTTXT=$(stdout_of "$J")
expect_contains "the input is readable" "$OUTTXT" "hello input"
expect_contains "the input is read-only" "$OUTTXT" "readonly"
expect_not_contains "writing the input fails" "$OUTTXT" "WRITABLE"
EDIR="$TEST_TMP/c1/compute/executions/$(exec_field "$J" .ID)"
expect_eq "ResultPath file collected" "$(cat "$EDIR/results/out/file" 2>/dev/null)" "result"
expect_eq "ResultPath subdirectory collected" "$(cat "$EDIR/results/out/sub/f" 2>/dev/null)" "deep"

# ---- the image's User; outputs are writable by it
run_job user "{\"Image\":\"$REG/cod-test/nobody:latest\",\"Parameters\":[\"sh\",\"-c\",\"id -u; echo mine > /outputs/f\"]}" \
	'{"ResultPaths":[{"Name":"out","Path":"/outputs"}],"Publisher":{"Type":"local"}}'
expect_eq "runs as the image's user (nobody)" "$(stdout_of "$J")" "65534"
expect_eq "and can write its outputs" "$(job_state "$J")" Completed
