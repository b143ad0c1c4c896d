#!/usr/bin/env bash
# The ipfs publisher against a real IPFS node (js-ipfs, offline): results
# are laid out and hashed by cod, imported into the node as a CAR and
# pinned; GET /jobs/{id}/results lists the CID; `cod job get` fetches it
# block by block, verifies every block, merges several executions (and
# --raw keeps them apart); a node that serves tampered blocks is caught.
. "$(dirname "$0")/lib.sh"

start_ipfs || { not_ok "IPFS node starts"; exit 1; }
IP=(-c "InputSources.Types.IPFS.Endpoint=$IPFS_API")
start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
start_compute c1 "${DATA_COMPUTE[@]}" -c "Publishers.Types.IPFS.Endpoint=$IPFS_API"
start_compute c2 "${DATA_COMPUTE[@]}" -c "Publishers.Types.IPFS.Endpoint=$IPFS_API"
wait_for "two compute nodes connect" 30 has_connected_nodes 2 || exit 1
run_cod node list --output json
expect_contains "nodes advertise the ipfs publisher" "$(jq_of '.[0].Info.ComputeNodeInfo.Publishers | join(",")' "$OUT")" "ipfs"

job() { # NAME COUNT
	submit_json "{\"Job\": {\"Name\": \"$1\", \"Type\": \"batch\", \"Count\": $2, \"Tasks\": [{\"Name\": \"main\",
		\"Engine\": {\"Type\": \"noop\", \"Params\": {\"Stdout\": \"hello from \${BACALHAU_PARTITION_INDEX}\\n\"}},
		\"Publisher\": {\"Type\": \"ipfs\"}, \"ResultPaths\": [{\"Name\": \"outputs\", \"Path\": \"/outputs\"}]}]}}"
}

ID=$(job one 1)
wait_for "job with the ipfs publisher completes" 30 job_is "$ID" Completed
http GET "/api/v1/orchestrator/jobs/$ID/results"
expect_eq "results endpoint lists one result" "$(jq_of '.Items | length' "$BODY")" 1
expect_eq "the result is an ipfs CID" "$(jq_of '.Items[0].Type' "$BODY")" ipfs
CID=$(jq_of '.Items[0].Params.CID' "$BODY")
check "a CIDv1 (bafy...)" test "${CID:0:4}" = bafy
expect_eq "the node pinned it" "$(curl -s -X POST "$IPFS_URL/api/v0/pin/ls?arg=$CID" | jq -r '[.Keys[].Type] | join(",")')" recursive

cd "$TEST_TMP" || exit 1
run_cod job get "$ID" "${IP[@]}" --output-dir "$TEST_TMP/one"
expect_eq "job get exits 0" "$RC" 0; [ "$RC" = 0 ] || echo "# $ERR"
expect_eq "stdout fetched from IPFS" "$(cat "$TEST_TMP/one/stdout")" "hello from 0"
expect_eq "exitCode fetched" "$(cat "$TEST_TMP/one/exitCode")" 0
check "outputs dir fetched" test -d "$TEST_TMP/one/outputs"
run_cod ipfs add -n "$TEST_TMP/one"
expect_eq "the CID is the results' own CID, as cod computes it" "$OUT" "$CID"
run_cod job get "$ID" "${IP[@]}" --output-dir "$TEST_TMP/one"
expect_eq "a second get into the same directory conflicts" "$RC" 1
expect_contains "the conflict names the file" "$ERR" "cannot merge results as output already exists"

ID2=$(job two 2)
wait_for "Count=2 job completes" 30 job_is "$ID2" Completed
run_cod job get "$ID2" "${IP[@]}" --output-dir "$TEST_TMP/merged"
expect_eq "merged get exits 0" "$RC" 0; [ "$RC" = 0 ] || echo "# $ERR"
expect_eq "stdout of both executions appended" "$(sort "$TEST_TMP/merged/stdout" | tr '\n' ,)" "hello from 0,hello from 1,"
run_cod job get "$ID2" "${IP[@]}" --output-dir "$TEST_TMP/rawdir" --raw
expect_eq "--raw get exits 0" "$RC" 0
expect_eq "--raw keeps one directory per result" "$(ls "$TEST_TMP/rawdir/raw" | wc -l)" 2

run_cod job get "$ID"
expect_eq "job get without an IPFS node configured fails" "$RC" 1
expect_contains "and names the setting" "$ERR" "InputSources.Types.IPFS.Endpoint"

start_tamper_proxy || { not_ok "tamper proxy starts"; exit 1; }
run_cod job get "$ID" -c "InputSources.Types.IPFS.Endpoint=$LIAR_API" --output-dir "$TEST_TMP/lie"
expect_eq "job get through a lying node fails" "$RC" 1
expect_contains "because a block does not match its CID" "$ERR" "does not match its CID"

# a node whose IPFS node is down: the publish fails and says where it looked
start_compute c3 "${DATA_COMPUTE[@]}" -c Publishers.Types.IPFS.Endpoint=/ip4/127.0.0.1/tcp/9 -c Labels=role=down
wait_for "a third node connects" 30 has_connected_nodes 3 || exit 1
ID3=$(submit_json '{"Job": {"Name": "down", "Type": "batch", "Meta": {"cod.retry.attempts": "1"},
	"Constraints": [{"Key": "role", "Operator": "=", "Values": ["down"]}],
	"Tasks": [{"Name": "main", "Engine": {"Type": "noop"}, "Publisher": {"Type": "ipfs"}}]}}')
wait_for "publishing to an unreachable IPFS node fails the job" 60 job_is "$ID3" Failed
expect_contains "the failure names the node's API" \
	"$(executions "$ID3" | jq -r '[.[].ComputeState.Message] | join(" ")')" "127.0.0.1:9"
