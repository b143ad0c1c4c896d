#!/usr/bin/env bash
# The docker engine end to end: a node advertises it, pulls busybox from a
# real registry (docker-registry on loopback), runs it with crun/runc, and
# reports stdout and the exit code; its output lands in the execution's logs;
# the container's rootfs and cgroups are gone afterwards.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-oci.sh"
oci_require

start_registry || exit 1
push busybox || { not_ok "push busybox to the registry"; exit 1; }
ok "busybox pushed to $REG"
start_oci_cluster

run_cod node list --output json
expect_contains "the compute node advertises the docker engine" "$OUT" '"docker"'

IMG="$REG/cod-test/busybox:latest"
ID=$(submit_json "$(docker_job hello "{\"Image\":\"$IMG\",\"Parameters\":[\"echo\",\"hello from a container\"]}")")
check "job submitted" test -n "$ID"
wait_for "hello world completes" 60 job_is "$ID" Completed || { cat "$TEST_TMP/c1.log" | tail -20; }
expect_eq "stdout" "$(exec_field "$ID" .RunOutput.Stdout)" "hello from a container"
expect_eq "exit code 0" "$(exec_field "$ID" .RunOutput.ExitCode)" 0
EID=$(exec_field "$ID" .ID)
EDIR="$TEST_TMP/c1/compute/executions/$EID"
expect_eq "stdout in the execution's log file" "$(cat "$EDIR/logs/stdout" 2>/dev/null)" "hello from a container"
check "the noop publisher leaves no results dir (no copies of the logs)" test ! -e "$EDIR/results"
check "the container rootfs is removed" test ! -e "$EDIR/rootfs"
check "no overlay mount is left" bash -c "! grep -q '$EDIR' /proc/mounts"
check "the image is in the node's store" test -n "$(ls "$TEST_TMP/c1/compute/images/refs/")"
run_cod job history "$ID" --output json
expect_eq "the Preparing phase is in the history" "$(jq_of '[.[] | select(.ExecutionState.New == 12)] | length > 0' "$OUT")" true

# BatchScheduling (on by default): the node runs under SCHED_BATCH, the
# execution under the default policy
expect_eq "the compute node runs under SCHED_BATCH" "$(sched_policy "${COMPUTE_PID[c1]}")" 3
PID_ID=$(submit_json "$(docker_job policy "{\"Image\":\"$IMG\",\"Parameters\":[\"sh\",\"-c\",\"sed 's/.*) //' /proc/self/stat | cut -d' ' -f39\"]}")")
wait_for "the policy job completes" 60 job_is "$PID_ID" Completed
expect_eq "the container's process runs under SCHED_OTHER" "$(exec_field "$PID_ID" .RunOutput.Stdout)" 0

# a failing command: exit code reported, job Failed
FID=$(submit_json "$(docker_job fails "{\"Image\":\"$IMG\",\"Parameters\":[\"sh\",\"-c\",\"echo oops >&2; exit 3\"]}")")
wait_for "a failing container fails the job" 60 job_is "$FID" Failed
expect_eq "exit code 3" "$(exec_field "$FID" .RunOutput.ExitCode)" 3
expect_contains "stderr captured" "$(exec_field "$FID" .RunOutput.stderr)" "oops"

# a command that does not exist in the image: a clear error
NID=$(submit_json "$(docker_job nocmd "{\"Image\":\"$IMG\",\"Parameters\":[\"/no/such/binary\"]}")")
wait_for "a missing binary fails the job" 60 job_is "$NID" Failed
http GET "/api/v1/orchestrator/jobs/$NID/executions"
expect_contains "the error names the binary" "$BODY" "/no/such/binary"

# an image that does not exist: rejected at bid time, named
MID=$(submit_json "$(docker_job missing "{\"Image\":\"$REG/cod-test/nope:latest\"}")")
wait_for "a missing image fails the job" 60 job_is "$MID" Failed
expect_contains "the bid rejection names the image" "$(exec_field "$MID" .ComputeState.Message)" "cod-test/nope"
