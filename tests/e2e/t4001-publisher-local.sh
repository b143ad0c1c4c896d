#!/usr/bin/env bash
# The local publisher end to end: results tarred on the compute node,
# served by its result server, listed by GET /jobs/{id}/results and
# downloaded, verified and merged by `cod job get` (--raw, conflicts,
# --output-dir, the default directory, "No results found"); the advertised
# address is checked at start-up (Bacalhau #4245).
. "$(dirname "$0")/lib.sh"

start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
start_compute c1 "${DATA_COMPUTE[@]}"
start_compute c2 "${DATA_COMPUTE[@]}"
wait_for "two compute nodes connect" 30 has_connected_nodes 2 || exit 1
run_cod node list --output json
expect_contains "nodes advertise the local publisher" "$(jq_of '.[0].Info.ComputeNodeInfo.Publishers | join(",")' "$OUT")" "local"

job() { # NAME COUNT PUBLISHER
	submit_json "{\"Job\": {\"Name\": \"$1\", \"Type\": \"batch\", \"Count\": $2, \"Tasks\": [{\"Name\": \"main\",
		\"Engine\": {\"Type\": \"noop\", \"Params\": {\"Stdout\": \"hello from \${BACALHAU_PARTITION_INDEX}\\n\"}},
		\"Publisher\": {\"Type\": \"$3\"}, \"ResultPaths\": [{\"Name\": \"outputs\", \"Path\": \"/outputs\"}]}]}}"
}

ID=$(job one 1 local)
wait_for "job with the local publisher completes" 30 job_is "$ID" Completed
http GET "/api/v1/orchestrator/jobs/$ID/results"
expect_eq "results endpoint lists one result" "$(jq_of '.Items | length' "$BODY")" 1
expect_eq "result is a urlDownload" "$(jq_of '.Items[0].Type' "$BODY")" urlDownload
URL=$(jq_of '.Items[0].Params.URL' "$BODY")
EXEC=$(exec_field "$ID" .ID)
expect_eq "URL names the execution's archive" "${URL##*/}" "$EXEC.tar.gz"
check "the archive is on the node" test -s "$TEST_TMP/c1/compute/results/$EXEC.tar.gz" -o -s "$TEST_TMP/c2/compute/results/$EXEC.tar.gz"
check "the result server serves it" curl -sf -o "$TEST_TMP/r.tgz" "$URL"
expect_contains "archive holds stdout, exitCode and the outputs dir" "$(tar tzf "$TEST_TMP/r.tgz" | sort | tr '\n' ' ')" "exitCode outputs/ stderr stdout"
check "the result server refuses other paths" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' '${URL%/*}/../state.db')\" != 200 ]"

cd "$TEST_TMP" || exit 1
run_cod job get "$ID"
expect_eq "job get exits 0" "$RC" 0
expect_contains "job get says where" "$OUT" "Results for job '$ID' have been written to..."
SHORT=$(echo "$ID" | cut -c1-10)
check "default directory job-<short id>" test -d "$TEST_TMP/job-$SHORT"
expect_eq "stdout downloaded" "$(cat "$TEST_TMP/job-$SHORT/stdout")" "hello from 0"
expect_eq "exitCode downloaded" "$(cat "$TEST_TMP/job-$SHORT/exitCode")" 0
check "outputs dir downloaded" test -d "$TEST_TMP/job-$SHORT/outputs"
check "raw downloads removed after merging" test ! -e "$TEST_TMP/job-$SHORT/raw"

run_cod job get "$ID"
expect_eq "a second get into the same directory conflicts" "$RC" 1
expect_contains "the conflict names the file" "$ERR" "cannot merge results as output already exists: job-$SHORT/"
expect_contains "the conflict hints at --raw" "$ERR" "--raw"

ID2=$(job two 2 local)
wait_for "Count=2 job completes" 30 job_is "$ID2" Completed
run_cod job get "$ID2" --output-dir "$TEST_TMP/merged"
expect_eq "merged get exits 0" "$RC" 0; [ "$RC" = 0 ] || echo "# $ERR"
expect_eq "stdout of both executions appended" "$(sort "$TEST_TMP/merged/stdout" | tr '\n' ,)" "hello from 0,hello from 1,"
run_cod job get "$ID2" --output-dir "$TEST_TMP/rawdir" --raw
expect_eq "--raw get exits 0" "$RC" 0
expect_eq "--raw keeps one directory per result" "$(ls "$TEST_TMP/rawdir/raw" | wc -l)" 2
expect_eq "--raw does not merge" "$(ls "$TEST_TMP/rawdir" | tr '\n' ,)" "raw,"

# a tampered archive on the node is caught by the recorded sha256
EXEC=$(exec_field "$ID" .ID)
for n in c1 c2; do
	f="$TEST_TMP/$n/compute/results/$EXEC.tar.gz"
	[ -f "$f" ] && printf 'garbage' >>"$f"
done
run_cod job get "$ID" --output-dir "$TEST_TMP/tampered"
expect_eq "a tampered result fails" "$RC" 1
expect_contains "the publisher's record catches it" "$ERR" "publisher recorded"

ID3=$(job none 1 noop)
wait_for "noop-published job completes" 30 job_is "$ID3" Completed
run_cod job get "$ID3"
expect_contains "no results: says so" "$OUT" "No results found"
expect_contains "no results: hints at job logs" "$ERR" "cod job logs"

# the advertised address is checked at start-up
COD_COMPUTE_AUTH_TOKEN=$CLUSTER_TOKEN timeout 20 "$COD" serve --compute --data-dir "$TEST_TMP/bad1" --name bad1 \
	-c "Compute.Orchestrators=$NATS_URL" -c Publishers.Types.Local.Address=0.0.0.0 >"$TEST_TMP/bad1.out" 2>&1
expect_eq "Address=0.0.0.0 refused" "$?" 1
expect_contains "with a hint" "$(cat "$TEST_TMP/bad1.out")" "Publishers.Types.Local.Address"
COD_COMPUTE_AUTH_TOKEN=$CLUSTER_TOKEN timeout 30 "$COD" serve --compute --data-dir "$TEST_TMP/bad2" --name bad2 \
	-c "Compute.Orchestrators=$NATS_URL" -c Publishers.Types.Local.Address=192.0.2.1 \
	-c Publishers.Types.Local.ListenAddress=127.0.0.1 -c Publishers.Types.Local.Port=0 >"$TEST_TMP/bad2.out" 2>&1
expect_eq "an address that does not lead back is refused" "$?" 1
expect_contains "the error says so" "$(cat "$TEST_TMP/bad2.out")" "does not lead back to this node"
