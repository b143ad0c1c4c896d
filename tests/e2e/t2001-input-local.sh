#!/usr/bin/env bash
# The local input source through a real cluster: allow-listed paths (globs,
# :rw/:ro), refusal hints, the localDirectory alias, CreateAs, and the
# locality report (bytes read on the node, none fetched).
. "$(dirname "$0")/lib.sh"

DATA="$TEST_TMP/data"
mkdir -p "$DATA/set1" "$DATA/private" "$TEST_TMP/rw"
printf 'hello local\n' >"$DATA/set1/a.txt"
head -c 1000 /dev/zero >"$DATA/set1/b.bin"

start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
start_compute c1 "${DATA_COMPUTE[@]}" -c "Compute.AllowListedLocalPaths=$DATA/set*/**,$TEST_TMP/rw/**:rw"
wait_for "compute node connects" 30 has_connected_nodes 1 || exit 1

run_cod node list --output json
expect_contains "node advertises the local input source" "$(jq_of '.[0].Info.ComputeNodeInfo.StorageSources | join(",")' "$OUT")" "local"
expect_contains "node advertises urlDownload" "$(jq_of '.[0].Info.ComputeNodeInfo.StorageSources | join(",")' "$OUT")" "urlDownload"
expect_contains "node advertises its allow-listed paths" \
	"$(jq_of '.[0].Info.ComputeNodeInfo.CodInventory.LocalPaths[].Pattern' "$OUT")" "$DATA/set*/**"

job() { # NAME INPUT-JSON
	submit_json "{\"Job\": {\"Name\": \"$1\", \"Type\": \"batch\", \"Meta\": {\"cod.retry.attempts\": \"1\"},
		\"Tasks\": [{\"Name\": \"main\", \"Engine\": {\"Type\": \"noop\", \"Params\": {\"Stdout\": \"ok\"}},
		\"InputSources\": [$2]}]}}"
}

ID=$(job ok '{"Source": {"Type": "local", "Params": {"SourcePath": "'"$DATA/set1"'"}}, "Target": "/data"}')
wait_for "allow-listed local input: job completes" 30 job_is "$ID" Completed
expect_eq "bytes read locally" "$(exec_field "$ID" '.RunOutput.InputBytes.Local')" 1012
expect_eq "nothing fetched" "$(exec_field "$ID" '.RunOutput.InputBytes.Fetched')" 0
expect_eq "per-input report names the driver" "$(exec_field "$ID" '.RunOutput.InputBytes.Inputs[0].Type')" local

ID=$(job alias '{"Source": {"Type": "localDirectory", "Params": {"SourcePath": "'"$DATA/set1/a.txt"'"}}, "Target": "/a.txt"}')
wait_for "localDirectory alias works for a single file" 30 job_is "$ID" Completed
expect_eq "file bytes read locally" "$(exec_field "$ID" '.RunOutput.InputBytes.Local')" 12

ID=$(job denied '{"Source": {"Type": "local", "Params": {"SourcePath": "'"$DATA/private"'"}}, "Target": "/p"}')
wait_for "non-allow-listed path fails" 30 job_is "$ID" Failed
MSG=$(executions "$ID" | jq -r "[.[].ComputeState.Message] | join(\" \")")
expect_contains "refusal says it is not allowlisted" "$MSG" "is not allowlisted"

ID=$(job escape '{"Source": {"Type": "local", "Params": {"SourcePath": "'"$DATA/set1/../private"'"}}, "Target": "/p"}')
wait_for "'..' cannot escape an allowed prefix" 30 job_is "$ID" Failed

ID=$(job rw-denied '{"Source": {"Type": "local", "Params": {"SourcePath": "'"$DATA/set1"'", "ReadWrite": true}}, "Target": "/d"}')
wait_for "read-write on a read-only grant fails" 30 job_is "$ID" Failed
MSG=$(executions "$ID" | jq -r "[.[].ComputeState.Message] | join(\" \")")
expect_contains "refusal says write access is not granted" "$MSG" "is not granted write access"

ID=$(job create '{"Source": {"Type": "local", "Params": {"SourcePath": "'"$TEST_TMP/rw/new/dir"'", "ReadWrite": "true", "CreateAs": "dir"}}, "Target": "/out"}')
wait_for "CreateAs dir with ReadWrite on an :rw grant completes" 30 job_is "$ID" Completed
check "the directory was created" test -d "$TEST_TMP/rw/new/dir"

ID=$(job nocreate '{"Source": {"Type": "local", "Params": {"SourcePath": "'"$DATA/set1/missing"'"}}, "Target": "/m"}')
wait_for "a missing path without CreateAs fails" 30 job_is "$ID" Failed
MSG=$(executions "$ID" | jq -r "[.[].ComputeState.Message] | join(\" \")")
expect_contains "refusal says it does not exist" "$MSG" "does not exist"
