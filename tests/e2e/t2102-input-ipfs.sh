#!/usr/bin/env bash
# IPFS against a real node (js-ipfs from npm, offline): cod's CIDs checked
# against Debian's ipfs_cid, npm's ipfs-car and the node's own `add`;
# `cod ipfs add/get`; ipfs inputs of jobs (directories, single files,
# CIDv0 and CIDv1, the input cache and locality); and a node that serves
# tampered blocks (a proxy flipping a byte in front of the real node),
# caught at the root block and deep in a file, with nothing left behind.
. "$(dirname "$0")/lib.sh"

start_ipfs || { not_ok "IPFS node starts"; exit 1; }
ok "IPFS node at $IPFS_API"
CAR="$PWD/tests/peers/ipfs/node_modules/.bin/ipfs-car"
IP=(-c "InputSources.Types.IPFS.Endpoint=$IPFS_API")

SRC="$TEST_TMP/src"
mkdir -p "$SRC/set/sub"
printf 'hello world\n' >"$SRC/hello.txt"
head -c 1000000 /dev/urandom >"$SRC/set/big.bin" # four chunks
printf 'alpha\n' >"$SRC/set/a.txt"
printf 'beta\n' >"$SRC/set/sub/b.txt"
: >"$SRC/set/empty.txt"

# ---- CIDs computed by cod against three other implementations
run_cod ipfs add -n --cid-version 0 "$SRC/hello.txt"
expect_eq "CIDv0 of 'hello world' is the well-known one" "$OUT" QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o
if command -v ipfs_cid >/dev/null; then
	# 46 MB is more than 174 chunks: a tree of two levels
	head -c 46000000 /dev/urandom >"$TEST_TMP/deep.bin"
	for f in "$SRC/hello.txt" "$SRC/set/big.bin" "$SRC/set/empty.txt" "$TEST_TMP/deep.bin"; do
		run_cod ipfs add -n --cid-version 0 "$f"
		expect_eq "CIDv0 of ${f##*/} matches Debian's ipfs_cid" "$OUT" "$(ipfs_cid "$f" 2>/dev/null | jq -r .CIDv0)"
	done
	rm -f "$TEST_TMP/deep.bin"
else
	echo "# skip: ipfs_cid (Debian package ipfs-cid) is not installed; scripts/install-deps.sh installs it"
fi
run_cod ipfs add -n "$SRC/set"
CID_V1=$OUT
PACKED=$("$CAR" pack "$SRC/set" --output "$TEST_TMP/set.car" 2>&1 | grep -o 'bafy[a-z0-9]*' | tail -n 1)
expect_eq "CIDv1 of a directory tree matches ipfs-car" "$CID_V1" "$PACKED"
NODE_V0=$(curl -s -X POST -F "file=@$SRC/set/big.bin" "$IPFS_URL/api/v0/add" | jq -r .Hash)
run_cod ipfs add -n --cid-version 0 "$SRC/set/big.bin"
expect_eq "CIDv0 of a multi-chunk file matches the node's own add" "$OUT" "$NODE_V0"

# ---- cod ipfs add / get through the node
run_cod ipfs add "${IP[@]}" "$SRC/set"
expect_eq "cod ipfs add prints the CID it computed" "$OUT" "$CID_V1"
run_cod ipfs get "${IP[@]}" "$CID_V1" -o "$TEST_TMP/got"
expect_eq "cod ipfs get exits 0" "$RC" 0
check "the directory comes back byte for byte" diff -r "$SRC/set" "$TEST_TMP/got"
run_cod ipfs add "${IP[@]}" --cid-version 0 "$SRC/hello.txt"
CID_V0=$OUT
run_cod ipfs get "${IP[@]}" "$CID_V1" -o "$TEST_TMP/got"
expect_eq "get refuses to overwrite" "$RC" 1
expect_contains "and says so" "$ERR" "already exists"
run_cod ipfs get "${IP[@]}" not-a-cid
expect_eq "a malformed CID is a usage problem" "$RC" 1
expect_contains "the error names the CID" "$ERR" "CID not-a-cid"
run_cod ipfs get "$CID_V1"
expect_contains "no node configured: says which setting" "$ERR" "InputSources.Types.IPFS.Endpoint"

# ---- a lying node: every block, or only the raw leaves (deep in the DAG)
start_tamper_proxy || { not_ok "tamper proxy starts"; exit 1; }
run_cod ipfs get -c "InputSources.Types.IPFS.Endpoint=$LIAR_API" "$CID_V1" -o "$TEST_TMP/lie1"
expect_eq "a tampered root block is refused" "$RC" 1
expect_contains "the error says the block does not match" "$ERR" "does not match its CID"
check "nothing is left behind" test ! -e "$TEST_TMP/lie1"
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null; unset 'PIDS[-1]'
start_tamper_proxy bafk || { not_ok "leaf tamper proxy starts"; exit 1; }
run_cod ipfs get -c "InputSources.Types.IPFS.Endpoint=$LIAR_API" "$CID_V1" -o "$TEST_TMP/lie2"
expect_eq "a tampered leaf deep in the DAG is refused" "$RC" 1
expect_contains "naming a raw leaf" "$ERR" "block bafk"
check "nothing is left behind either" test ! -e "$TEST_TMP/lie2"

# ---- jobs with ipfs inputs
start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
# no periodic info updates: what a node fetched reaches the locality ranker
# through the prompt update that follows a fetch
start_compute c1 "${DATA_COMPUTE[@]}" "${IP[@]}" -c Compute.Heartbeat.InfoUpdateInterval=1h
start_compute c2 "${DATA_COMPUTE[@]}" "${IP[@]}" -c Compute.Heartbeat.InfoUpdateInterval=1h
start_compute liar "${DATA_COMPUTE[@]}" -c "InputSources.Types.IPFS.Endpoint=$LIAR_API" -c Labels=role=liar
start_compute plain "${DATA_COMPUTE[@]}" -c Labels=role=plain
wait_for "four compute nodes connect" 30 has_connected_nodes 4 || exit 1
run_cod node list --output json
expect_eq "nodes with an IPFS endpoint advertise ipfs" \
	"$(jq_of '[.[] | select(.Info.ComputeNodeInfo.StorageSources | index("ipfs"))] | length' "$OUT")" 3

job() { # NAME CID [CONSTRAINTS-JSON]
	submit_json "{\"Job\": {\"Name\": \"$1\", \"Type\": \"batch\", \"Constraints\": ${3:-[]}, \"Meta\": {\"cod.retry.attempts\": \"1\"},
		\"Tasks\": [{\"Name\": \"main\", \"Engine\": {\"Type\": \"noop\"},
		\"InputSources\": [{\"Source\": {\"Type\": \"ipfs\", \"Params\": {\"CID\": \"$2\"}}, \"Target\": \"/inputs\"}]}]}}"
}
data_of() { echo "$(exec_dir "$(exec_field "$1" .NodeID)" "$(exec_field "$1" .ID)")/inputs/0/data"; }
state_msg() { executions "$1" | jq -r '[.[].ComputeState.Message] | join(" ")'; }
GOOD='[{"Key": "role", "Operator": "notin", "Values": ["liar", "plain"]}]'

ID=$(job dir "$CID_V1" "$GOOD")
wait_for "a job with a CIDv1 directory input completes" 60 job_is "$ID" Completed
check "the input is the directory, byte for byte" diff -r "$SRC/set" "$(data_of "$ID")"
expect_eq "bytes fetched are the files' bytes" "$(exec_field "$ID" .RunOutput.InputBytes.Fetched)" 1000011
FIRST=$(exec_field "$ID" .NodeID)

ID=$(job file "$CID_V0" "$GOOD")
wait_for "a job with a CIDv0 single-file input completes" 60 job_is "$ID" Completed
check "a single file is mounted as that file" cmp -s "$SRC/hello.txt" "$(data_of "$ID")"

# the same CID again, written in upper-case base32: the input cache, and locality
UPPER=$(echo "$CID_V1" | tr a-z A-Z)
ID=$(job again "$UPPER" "$GOOD")
wait_for "the same data under another spelling completes" 60 job_is "$ID" Completed
expect_eq "it lands on the node that holds it" "$(exec_field "$ID" .NodeID)" "$FIRST"
expect_eq "nothing is fetched" "$(exec_field "$ID" .RunOutput.InputBytes.Fetched)" 0
expect_eq "it came from the input cache" "$(exec_field "$ID" '.RunOutput.InputBytes.Inputs[0].CacheHit')" true

# three fresh datasets, each warmed on c2: the next job over it follows it
# there (by chance that would happen one time in eight)
for i in 1 2 3; do
	mkdir -p "$TEST_TMP/fresh$i"
	head -c 20000 /dev/urandom >"$TEST_TMP/fresh$i/data.bin"
	run_cod ipfs add "${IP[@]}" "$TEST_TMP/fresh$i"
	FRESH=$OUT
	ID=$(job "warm$i" "$FRESH" '[{"Key": "name", "Operator": "=", "Values": ["c2"]}]')
	wait_for "dataset $i warmed on c2" 60 job_is "$ID" Completed
	ID=$(job "follow$i" "$FRESH" "$GOOD")
	wait_for "the next job over dataset $i completes" 60 job_is "$ID" Completed
	expect_eq "it follows the data to c2 (fetched $(exec_field "$ID" .RunOutput.InputBytes.Fetched) bytes)" \
		"$(exec_field "$ID" .NodeID)" c2
done

ID=$(job lie "$CID_V1" '[{"Key": "role", "Operator": "=", "Values": ["liar"]}]')
wait_for "a job on a node behind a lying IPFS node fails" 60 job_is "$ID" Failed
expect_contains "the failure says the block does not match" "$(state_msg "$ID")" "does not match its CID"

ID=$(job badcid "QmNotACid" "$GOOD")
wait_for "a malformed CID fails the job" 30 job_is "$ID" Failed
expect_contains "the failure names the CID" "$(curl -s "$API/api/v1/orchestrator/jobs/$ID/history" | jq -r '[.Items[].Event.Message] | join(" ")')" "QmNotACid"

ID=$(job noipfs "$CID_V0" '[{"Key": "role", "Operator": "=", "Values": ["plain"]}]')
wait_for "a node without IPFS is not given ipfs inputs" 30 job_terminal "$ID"
expect_eq "the job does not run there" "$(job_state "$ID")" Failed
