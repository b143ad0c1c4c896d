#!/usr/bin/env bash
# A compute node killed with SIGKILL while a container runs leaves the
# container behind; when the node starts again it removes it (and its
# rootfs mount), and the execution is reported failed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-oci.sh"
oci_require

start_registry || exit 1
push busybox || { not_ok "push busybox"; exit 1; }
start_oci_cluster
BB="$REG/cod-test/busybox:latest"

J=$(submit_json "$(docker_job crash "{\"Image\":\"$BB\",\"Parameters\":[\"sleep\",\"3000\"]}")")
wait_for "the container runs" 60 bash -c "[ \"\$(curl -s $API/api/v1/orchestrator/jobs/$J/executions | jq -r '.Items[0].ComputeState.StateType')\" = 6 ]"
EID=$(exec_field "$J" .ID)
MERGED="$TEST_TMP/c1/compute/executions/$EID/rootfs/merged"
check "its rootfs is mounted" grep -q "$MERGED" /proc/mounts
kill_compute c1 KILL
sleep 1
check "the container outlives the killed node" bash -c "ls /run/cod/oci/*/*/ | grep -q cod-$EID"

start_compute c1
wait_for "the restarted node removes the container" 30 bash -c "! ls /run/cod/oci/*/*/ | grep -q cod-$EID"
wait_for "and its process" 30 bash -c "! pgrep -f '^sleep 3000\$' >/dev/null"
check "and its rootfs mount" bash -c "! grep -q '$MERGED' /proc/mounts"
wait_for "the execution is reported failed" 60 job_terminal "$J"
expect_contains "as interrupted by the restart" "$(exec_field "$J" .ComputeState.Message)" "restarted"
grep -q "left by an earlier run" "$TEST_TMP/c1.log"
check "the sweep is logged" test $? -eq 0

# The runtime's state directory (in /run, one per data dir) goes with the
# node that stops; before, every data dir a node ever used left one.
ROOT=/run/cod/oci/$(printf %s "$TEST_TMP/c1/compute/images" | sha256sum | cut -c1-12)
check "the node's runtime state directory exists while it runs" test -d "$ROOT"
kill_compute c1 TERM
check "a node that stops removes it" test ! -e "$ROOT"
