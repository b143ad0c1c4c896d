#!/usr/bin/env bash
# Data locality across two compute nodes: a dataset under an allow-listed
# path of one node, or in one node's warmed input cache, draws the job to
# that node, which records 0 bytes fetched; data on neither node is
# fetched and the bytes are recorded. A node with
# Compute.JobAdmissionControl.Locality=local bids only for data it holds.
. "$(dirname "$0")/lib.sh"

WWW="$TEST_TMP/www"
mkdir -p "$WWW" "$TEST_TMP/c1data/set"
head -c 300000 /dev/urandom >"$WWW/dataset.bin"
head -c 5000 /dev/urandom >"$WWW/other.bin"
head -c 4096 /dev/urandom >"$TEST_TMP/c1data/set/part-0"
start_http_peer "$WWW" || { not_ok "http peer starts"; exit 1; }

start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
start_compute c1 "${DATA_COMPUTE[@]}" -c "Compute.AllowListedLocalPaths=$TEST_TMP/c1data/**"
start_compute c2 "${DATA_COMPUTE[@]}"
wait_for "two compute nodes connect" 30 has_connected_nodes 2 || exit 1

job() { # NAME INPUT-JSON [CONSTRAINTS-JSON]
	submit_json "{\"Job\": {\"Name\": \"$1\", \"Type\": \"batch\", \"Constraints\": ${3:-[]},
		\"Tasks\": [{\"Name\": \"main\", \"Engine\": {\"Type\": \"noop\"}, \"InputSources\": [$2]}]}}"
}
URL_IN='{"Source": {"Type": "urlDownload", "Params": {"URL": "'"$HTTP_PEER/dataset.bin"'"}}, "Target": "/inputs"}'
LOCAL_IN='{"Source": {"Type": "local", "Params": {"SourcePath": "'"$TEST_TMP/c1data/set"'"}}, "Target": "/data"}'

# 1. an allow-listed local dataset: the job goes to c1, nothing moves
for i in 1 2 3; do
	ID=$(job local-$i "$LOCAL_IN")
	wait_for "local dataset job $i completes" 30 job_is "$ID" Completed
	expect_eq "local dataset job $i ran on c1" "$(exec_field "$ID" .NodeID)" c1
	expect_eq "local dataset job $i fetched 0 bytes" "$(exec_field "$ID" .RunOutput.InputBytes.Fetched)" 0
done

# 2. data on neither node: fetched, and the bytes recorded
ID=$(job warm "$URL_IN" '[{"Key": "name", "Operator": "=", "Values": ["c2"]}]')
wait_for "first download (pinned to c2) completes" 30 job_is "$ID" Completed
expect_eq "first download fetched the whole dataset" "$(exec_field "$ID" .RunOutput.InputBytes.Fetched)" 300000

# 3. c2's warmed cache draws the job, with no constraint
cached_on_c2() {
	curl -s "$API/api/v1/orchestrator/nodes" |
		jq -e --arg u "$HTTP_PEER/dataset.bin" '.Nodes[] | select(.Info.NodeID == "c2") |
			.Info.ComputeNodeInfo.CodInventory.Cached[] | select(.Key | startswith($u))' >/dev/null
}
wait_for "c2 advertises the cached dataset" 30 cached_on_c2
for i in 1 2 3; do
	ID=$(job cached-$i "$URL_IN")
	wait_for "cached dataset job $i completes" 30 job_is "$ID" Completed
	expect_eq "cached dataset job $i ran on c2" "$(exec_field "$ID" .NodeID)" c2
	expect_eq "cached dataset job $i fetched 0 bytes" "$(exec_field "$ID" .RunOutput.InputBytes.Fetched)" 0
	expect_eq "cached dataset job $i read it locally" "$(exec_field "$ID" .RunOutput.InputBytes.Local)" 300000
done

# 4. Locality=local: a node bids only for inputs it holds
start_compute c3 "${DATA_COMPUTE[@]}" -c Compute.JobAdmissionControl.Locality=local
wait_for "third node connects" 30 has_connected_nodes 3 || exit 1
ID=$(job strict "{\"Source\": {\"Type\": \"urlDownload\", \"Params\": {\"URL\": \"$HTTP_PEER/other.bin\"}}, \"Target\": \"/inputs\"}" \
	'[{"Key": "name", "Operator": "=", "Values": ["c3"]}]')
wait_for "Locality=local node refuses data it does not hold" 30 job_is "$ID" Failed
expect_contains "the refusal names Locality" "$(executions "$ID" | jq -r '[.[].ComputeState.Message] | join(" ")')" \
	"JobAdmissionControl.Locality is local"
