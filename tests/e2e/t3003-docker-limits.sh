#!/usr/bin/env bash
# Limits and ends of a container: memory (OOM reported as such), CPU quota
# visible in the container's cgroup, disk (the writable layer and outputs),
# ExecutionTimeout (and that preparing does not count), cancel through
# `cod job stop`, network None (only lo, no route) vs Host.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-oci.sh"
oci_require

start_registry || exit 1
push busybox || { not_ok "push busybox"; exit 1; }
# preparing takes 3 s longer on this node (fault injection): ExecutionTimeout must not see it
COD_FAULT_OCI_PREPARE_DELAY_MS=3000 start_oci_cluster
BB="$REG/cod-test/busybox:latest"
RUNTIME_ROOT=/run/cod/oci

run_job() {
	J=$(submit_json "$(docker_job "$1" "$2" "${3:-{\}}")")
	wait_for "$1 ends" 90 job_terminal "$J"
}
msg_of() { exec_field "$1" .ComputeState.Message; }

# ---- memory
run_job oom "{\"Image\":\"$BB\",\"Parameters\":[\"sh\",\"-c\",\"echo start; tail /dev/zero\"]}" '{"Resources":{"Memory":"64Mi"}}'
expect_eq "a job over its memory fails" "$(job_state "$J")" Failed
expect_eq "reported as out of memory" "$(msg_of "$J")" "execution killed: out of memory (limit 64 MiB)"
expect_eq "exit code 137" "$(exec_field "$J" .RunOutput.ExitCode)" 137
expect_contains "output before the kill kept" "$(exec_field "$J" .RunOutput.Stdout)" "start"
run_job mem-ok "{\"Image\":\"$BB\",\"Parameters\":[\"sh\",\"-c\",\"head -c 20000000 /dev/zero | wc -c\"]}" '{"Resources":{"Memory":"64Mi"}}'
expect_eq "a job within its memory completes" "$(job_state "$J")" Completed

# ---- CPU: the quota is in the container's cgroup (v1 cpu.cfs_quota_us, v2 cpu.max)
run_job cpu "{\"Image\":\"$BB\",\"Parameters\":[\"sh\",\"-c\",\"cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us\"]}" \
	'{"Resources":{"CPU":"500m"}}'
CPU_OUT=$(exec_field "$J" .RunOutput.Stdout | tr '\n' ' ')
case "$CPU_OUT" in
"50000 100000 "*) ok "CPU 500m is a 50000/100000 quota ($CPU_OUT)" ;;
*) not_ok "CPU 500m is a 50000/100000 quota: got '$CPU_OUT'" ;;
esac

# ---- disk: writes to the rootfs count
run_job disk "{\"Image\":\"$BB\",\"Parameters\":[\"sh\",\"-c\",\"dd if=/dev/zero of=/big bs=1M count=40 2>/dev/null; sleep 20\"]}" \
	'{"Resources":{"Disk":"10Mi"}}'
expect_eq "a job over its disk fails" "$(job_state "$J")" Failed
expect_contains "reported as a disk limit" "$(msg_of "$J")" "execution killed: disk limit exceeded (limit 10 MiB"
run_job disk-out "{\"Image\":\"$BB\",\"Parameters\":[\"sh\",\"-c\",\"dd if=/dev/zero of=/outputs/big bs=1M count=40 2>/dev/null; sleep 20\"]}" \
	'{"Resources":{"Disk":"10Mi"},"ResultPaths":[{"Name":"out","Path":"/outputs"}],"Publisher":{"Type":"local"}}'
expect_contains "outputs count against the disk limit" "$(msg_of "$J")" "disk limit exceeded"

# ---- ExecutionTimeout: the container is killed; preparing (3 s here) does not count
START=$SECONDS
run_job timeout "{\"Image\":\"$BB\",\"Parameters\":[\"sleep\",\"60\"]}" '{"Timeouts":{"ExecutionTimeout":2}}'
expect_eq "a job over its ExecutionTimeout fails" "$(job_state "$J")" Failed
expect_contains "reported as a timeout" "$(msg_of "$J")" "timed out"
check "and ends well before its sleep would" test $((SECONDS - START)) -lt 40
run_job slow-prep "{\"Image\":\"$BB\",\"Parameters\":[\"sh\",\"-c\",\"sleep 1; echo done\"]}" '{"Timeouts":{"ExecutionTimeout":2}}'
expect_eq "3 s of preparing + 1 s of running fit a 2 s ExecutionTimeout" "$(job_state "$J")" Completed

# ---- cancel
# a duration no other test uses, so the process check below finds only this one
NAP=$((3000 + RANDOM % 1000))
J=$(submit_json "$(docker_job cancel "{\"Image\":\"$BB\",\"Parameters\":[\"sleep\",\"$NAP\"]}")")
wait_for "long job runs" 60 bash -c "[ \"\$(curl -s $API/api/v1/orchestrator/jobs/$J/executions | jq -r '.Items[0].ComputeState.StateType')\" = 6 ]"
EID=$(exec_field "$J" .ID)
check "its container exists" bash -c "ls $RUNTIME_ROOT/*/*/ | grep -q cod-$EID"
run_cod job stop "$J"
expect_eq "job stop exits 0" "$RC" 0
wait_for "the job is stopped" 30 job_is "$J" Stopped
wait_for "the container is gone" 30 bash -c "! ls $RUNTIME_ROOT/*/*/ | grep -q cod-$EID"
check "no process of it is left" bash -c "! pgrep -f '^sleep $NAP\$' >/dev/null"

# ---- network
NETCMD="ip -o link | wc -l; ip route | wc -l; if printf 'GET /v2/ HTTP/1.0\\r\\n\\r\\n' | nc -w 3 127.0.0.1 $REG_PORT 2>/dev/null | grep -q '200 OK'; then echo reached; else echo unreachable; fi"
NETP=$(jq -nc --arg i "$BB" --arg c "$NETCMD" '{Image:$i, Parameters:["sh","-c",$c]}')
run_job net-none "$NETP" '{"Network":{"Type":"None"}}'
expect_eq "network None: only lo, no route, host services unreachable" \
	"$(echo $(exec_field "$J" .RunOutput.Stdout))" "1 0 unreachable"
run_job net-host "$NETP" '{"Network":{"Type":"Host"}}'
expect_contains "network Host: the host's loopback services are reachable" "$(exec_field "$J" .RunOutput.Stdout)" "reached"
J=$(submit_json "$(docker_job net-http "{\"Image\":\"$BB\"}" '{"Network":{"Type":"HTTP","Domains":["example.com"]}}')")
wait_for "network HTTP is rejected" 30 job_is "$J" Failed
expect_contains "at bid time, with the reason" "$(msg_of "$J")" "does not support network type HTTP"
