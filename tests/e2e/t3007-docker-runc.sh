#!/usr/bin/env bash
# The same engine on runc (Engines.Types.Docker.Runtime=runc): hello world,
# the OOM report and a cancel, so both runtimes stay covered.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-oci.sh"
oci_require
command -v runc >/dev/null || [ -x /usr/sbin/runc ] || oci_skip "runc is not installed"

start_registry || exit 1
push busybox || { not_ok "push busybox"; exit 1; }
start_oci_cluster -c Engines.Types.Docker.Runtime=runc
BB="$REG/cod-test/busybox:latest"

J=$(submit_json "$(docker_job hello "{\"Image\":\"$BB\",\"Parameters\":[\"echo\",\"hello from runc\"]}")")
wait_for "hello world completes on runc" 60 job_is "$J" Completed
expect_eq "stdout" "$(exec_field "$J" .RunOutput.Stdout)" "hello from runc"
check "runc's state dir was used" test -d "$(ls -d /run/cod/oci/*/runc | head -1)"

J=$(submit_json "$(docker_job oom "{\"Image\":\"$BB\",\"Parameters\":[\"tail\",\"/dev/zero\"]}" '{"Resources":{"Memory":"32Mi"}}')")
wait_for "a job over its memory fails on runc" 60 job_is "$J" Failed
expect_eq "reported as out of memory" "$(exec_field "$J" .ComputeState.Message)" "execution killed: out of memory (limit 32 MiB)"

J=$(submit_json "$(docker_job cancel "{\"Image\":\"$BB\",\"Parameters\":[\"sleep\",\"400\"]}")")
wait_for "a long job runs on runc" 60 bash -c "[ \"\$(curl -s $API/api/v1/orchestrator/jobs/$J/executions | jq -r '.Items[0].ComputeState.StateType')\" = 6 ]"
run_cod job stop "$J"
wait_for "the job is stopped" 30 job_is "$J" Stopped
wait_for "its process is gone" 30 bash -c "! pgrep -f '^sleep 400\$' >/dev/null" || {
	# what the node did with the cancel, for the log
	pgrep -af '^sleep 400$' | sed 's/^/# /'
	grep -E "cancel|Cancel|kill|oci" "$TEST_TMP/c1.log" | tail -20 | sed 's/^/# /'
}

# runc also makes a container's cgroups in a hybrid host's cgroup2 mount;
# none of the three executions' cgroups stays behind, in any hierarchy
# (v1 and hybrid: one per controller; v2: one tree)
ids=$(curl -s "$API/api/v1/orchestrator/jobs?limit=10" | jq -r '.Items[].ID' | while read -r j; do
	curl -s "$API/api/v1/orchestrator/jobs/$j/executions" | jq -r '.Items[].ID'
done)
expect_eq "three executions ran" "$(echo "$ids" | grep -c .)" 3
for e in $ids; do
	wait_for "no cgroup of $e is left" 30 bash -c "! ls -d /sys/fs/cgroup/cod/cod-$e /sys/fs/cgroup/*/cod/cod-$e 2>/dev/null | grep -q ."
done
