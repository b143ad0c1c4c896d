#!/usr/bin/env bash
# s3 inputs against s3rver (a real S3 server; it checks access keys, not V4 signatures),
# data put there with the AWS CLI: single objects, prefixes (relative paths
# kept), Filter, ChecksumSHA256, bad credentials, the input cache, and the
# five partition types: a Count=4 job over 40 objects processes every
# object exactly once, and a partition whose execution is lost is retried
# with the same objects.
. "$(dirname "$0")/lib.sh"

start_s3 data || { not_ok "s3rver starts"; exit 1; }
ok "s3rver at $S3_ENDPOINT"
SRC="$TEST_TMP/src"
mkdir -p "$SRC/set/sub" "$SRC/logs"
printf 'alpha\n' >"$SRC/set/a.txt"
printf 'beta beta\n' >"$SRC/set/sub/b.csv"
printf 'single object\n' >"$SRC/one.txt"
for d in 01 02 03 04 05 06 07 08 09 10; do
	for k in 1 2 3 4; do printf '%s-%s\n' "$d" "$k" >"$SRC/logs/2024-03-$d-part$k.log"; done
done
check "AWS CLI uploads the data" awss3 s3 cp --recursive --quiet "$SRC" s3://data/
expect_eq "40 log objects in the bucket" "$(awss3 s3 ls s3://data/logs/ | wc -l)" 40

start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
for n in c1 c2 c3 c4; do start_compute "$n" "${DATA_COMPUTE[@]}"; done
wait_for "four compute nodes connect" 30 has_connected_nodes 4 || exit 1

job() { # NAME COUNT S3-PARAMS-JSON [ENGINE-PARAMS]
	submit_json "{\"Job\": {\"Name\": \"$1\", \"Type\": \"batch\", \"Count\": $2, \"Meta\": {\"cod.retry.attempts\": \"${RETRIES:-1}\"},
		\"Tasks\": [{\"Name\": \"main\", \"Engine\": {\"Type\": \"noop\", \"Params\": ${4:-{\}}},
		\"InputSources\": [{\"Source\": {\"Type\": \"s3\", \"Params\": $3}, \"Target\": \"/inputs\"}]}]}}"
}
s3p() { echo "{\"Bucket\": \"data\", \"Endpoint\": \"$S3_ENDPOINT\", \"Region\": \"us-east-1\"$1}"; }
data_of() { # JOB EXEC-ID -> the execution's input dir
	local node
	node=$(executions "$1" | jq -r --arg e "$2" '.[] | select(.ID == $e) | .NodeID')
	echo "$(exec_dir "$node" "$2")/inputs/0/data"
}
listing() { (cd "$1" && find . -type f | sed 's|^\./||' | sort); }
state_msg() { executions "$1" | jq -r '[.[].ComputeState.Message] | join(" ")'; }

ID=$(job single 1 "$(s3p ', "Key": "one.txt"')")
wait_for "single object job completes" 30 job_is "$ID" Completed
E=$(exec_field "$ID" .ID)
check "object downloaded under its name" cmp -s "$(data_of "$ID" "$E")/one.txt" "$SRC/one.txt"
expect_eq "bytes fetched" "$(exec_field "$ID" .RunOutput.InputBytes.Fetched)" 14

ID=$(job prefix 1 "$(s3p ', "Key": "set/"')")
wait_for "prefix job completes" 30 job_is "$ID" Completed
expect_eq "prefix: relative paths kept" "$(listing "$(data_of "$ID" "$(exec_field "$ID" .ID)")" | tr '\n' ' ')" "a.txt sub/b.csv "

ID=$(job filtered 1 "$(s3p ', "Key": "set/*", "Filter": ".*\\.csv$"')")
wait_for "filtered prefix job completes" 30 job_is "$ID" Completed
expect_eq "Filter keeps only matching keys" "$(listing "$(data_of "$ID" "$(exec_field "$ID" .ID)")" | tr '\n' ' ')" "sub/b.csv "

SUM=$(openssl dgst -sha256 -binary "$SRC/one.txt" | base64)
ID=$(job sum-ok 1 "$(s3p ', "Key": "one.txt", "ChecksumSHA256": "'"$SUM"'"')")
wait_for "matching ChecksumSHA256 completes" 30 job_is "$ID" Completed
ID=$(job sum-bad 1 "$(s3p ', "Key": "set/a.txt", "ChecksumSHA256": "'"$SUM"'"')")
wait_for "mismatching ChecksumSHA256 fails" 30 job_is "$ID" Failed
expect_contains "the error names the checksum" "$(state_msg "$ID")" "ChecksumSHA256"

ID=$(job missing 1 "$(s3p ', "Key": "nope.txt"')")
wait_for "a missing object fails" 30 job_is "$ID" Failed
expect_contains "the error says 404" "$(state_msg "$ID")" "404"

# the same single object on the same node: from the input cache
ID=$(job single-again 1 "$(s3p ', "Key": "one.txt"')" )
wait_for "second single object job completes" 30 job_is "$ID" Completed

# partitioning: every object exactly once over 4 executions
check_partitions() { # NAME PARTITION-JSON
	local id all
	id=$(job "part-$1" 4 "$(s3p ', "Key": "logs/", "Partition": '"$2")")
	wait_for "partition $1: Count=4 job completes" 60 job_is "$id" Completed || return
	all=$(for e in $(executions "$id" | jq -r '.[] | select(.ComputeState.StateType == 9) | .ID'); do
		listing "$(data_of "$id" "$e")"; done | sort)
	expect_eq "partition $1: 40 objects processed" "$(echo "$all" | grep -c .)" 40
	expect_eq "partition $1: each exactly once" "$(echo "$all" | uniq -d | grep -c .)" 0
	
}
check_partitions object '{"Type": "object"}'
OBJ_ID=$(curl -s "$API/api/v1/orchestrator/jobs/part-object" | jq -r .Job.ID)
nonempty=0
for e in $(executions "$OBJ_ID" | jq -r '.[].ID'); do
	[ "$(listing "$(data_of "$OBJ_ID" "$e")" | grep -c .)" -gt 0 ] && nonempty=$((nonempty + 1))
done
check "object partitioning spreads the objects over several executions" test "$nonempty" -ge 3
check_partitions regex '{"Type": "regex", "Pattern": "2024-03-(\\d+)"}'
check_partitions substring '{"Type": "substring", "StartIndex": 8, "EndIndex": 10}'
check_partitions date '{"Type": "date", "DateFormat": "2006-01-02"}'
ID=$(job part-none 4 "$(s3p ', "Key": "logs/", "Partition": {"Type": "none"}')")
wait_for "partition none: Count=4 job completes" 60 job_is "$ID" Completed
for e in $(executions "$ID" | jq -r '.[].ID'); do
	expect_eq "partition none: execution $e gets all 40" "$(listing "$(data_of "$ID" "$e")" | grep -c .)" 40
done
ID=$(job bad-part 1 "$(s3p ', "Key": "logs/", "Partition": {"Type": "substring", "StartIndex": 5, "EndIndex": 2}')")
wait_for "an invalid Partition is refused" 30 job_is "$ID" Failed
expect_contains "with Bacalhau's message" "$(state_msg "$ID")" "end index must be greater than start index"

# a partition whose execution is lost is retried with the same objects
RETRIES=3 ID=$(RETRIES=3 job part-retry 4 "$(s3p ', "Key": "logs/", "Partition": {"Type": "object"}')" '{"Sleep": "6s"}')
running4() { [ "$(executions "$ID" | jq '[.[] | select(.ComputeState.StateType == 6)] | length')" -ge 4 ]; }
wait_for "partitioned job is running" 30 running4
VICTIM_EXEC=$(executions "$ID" | jq -r '[.[] | select(.ComputeState.StateType == 6)][0].ID')
VICTIM_NODE=$(executions "$ID" | jq -r --arg e "$VICTIM_EXEC" '.[] | select(.ID == $e) | .NodeID')
VICTIM_PART=$(executions "$ID" | jq -r --arg e "$VICTIM_EXEC" '.[] | select(.ID == $e) | .PartitionIndex')
BEFORE=$(listing "$(exec_dir "$VICTIM_NODE" "$VICTIM_EXEC")/inputs/0/data")
kill_compute "$VICTIM_NODE" KILL
# the node comes back and reports the execution it lost as failed
start_compute "$VICTIM_NODE" "${DATA_COMPUTE[@]}"
wait_for "job completes after a node crashed mid-partition" 90 job_is "$ID" Completed
RETRY_EXEC=$(executions "$ID" | jq -r --argjson p "$VICTIM_PART" '.[] | select(.PartitionIndex == $p and .ComputeState.StateType == 9) | .ID')
check "partition $VICTIM_PART was retried" test -n "$RETRY_EXEC"
expect_eq "the retry downloaded the same objects" "$(listing "$(data_of "$ID" "$RETRY_EXEC")")" "$BEFORE"
