#!/usr/bin/env bash
# urlDownload inputs from a real HTTP server on loopback: file naming (URL,
# redirect, Content-Disposition), sha256 check, the Disk cap, retries per
# InputSources.MaxRetryCount, errors naming the input, and the input cache
# (a second job revalidates with If-None-Match and fetches nothing).
. "$(dirname "$0")/lib.sh"

WWW="$TEST_TMP/www"
mkdir -p "$WWW"
printf 'one two three\n' >"$WWW/words.txt"
head -c 200000 /dev/urandom >"$WWW/big.bin"
SHA=$(sha256sum "$WWW/words.txt" | cut -d' ' -f1)
start_http_peer "$WWW" || { not_ok "http peer starts"; exit 1; }

start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
start_compute c1 "${DATA_COMPUTE[@]}" -c InputSources.MaxRetryCount=3
wait_for "compute node connects" 30 has_connected_nodes 1 || exit 1

job() { # NAME INPUT-JSON [RESOURCES-JSON]
	submit_json "{\"Job\": {\"Name\": \"$1\", \"Type\": \"batch\", \"Meta\": {\"cod.retry.attempts\": \"1\"},
		\"Tasks\": [{\"Name\": \"main\", \"Engine\": {\"Type\": \"noop\"}, \"Resources\": ${3:-{\}},
		\"InputSources\": [$2]}]}}"
}
url_input() { echo '{"Source": {"Type": "urlDownload", "Params": {"URL": "'"$1"'"'"${2:+, $2}"'}}, "Target": "/inputs"}'; }
input_file() { # JOB NAME: path of the downloaded file on the node
	echo "$(exec_dir c1 "$(exec_field "$1" .ID)")/inputs/0/data/$2"
}
state_msg() { executions "$1" | jq -r '[.[].ComputeState.Message] | join(" ")'; }

ID=$(job plain "$(url_input "$HTTP_PEER/words.txt")")
wait_for "download job completes" 30 job_is "$ID" Completed
check "file named after the URL, content intact" cmp -s "$(input_file "$ID" words.txt)" "$WWW/words.txt"
expect_eq "bytes fetched reported" "$(exec_field "$ID" '.RunOutput.InputBytes.Fetched')" 14

ID=$(job cached "$(url_input "$HTTP_PEER/words.txt")")
wait_for "the same URL again completes" 30 job_is "$ID" Completed
expect_eq "second time: nothing fetched" "$(exec_field "$ID" '.RunOutput.InputBytes.Fetched')" 0
expect_eq "second time: served from the node" "$(exec_field "$ID" '.RunOutput.InputBytes.Local')" 14
expect_eq "input cache hit reported" "$(exec_field "$ID" '.RunOutput.InputBytes.Inputs[0].CacheHit')" true
check "cached copy has the right bytes" cmp -s "$(input_file "$ID" words.txt)" "$WWW/words.txt"
run_cod node list --output json
expect_contains "node advertises the cached URL" "$(jq_of '.[0].Info.ComputeNodeInfo.CodInventory.Cached[].Key' "$OUT")" "$HTTP_PEER/words.txt#etag:"

ID=$(job redirected "$(url_input "$HTTP_PEER/redirect/big.bin")")
wait_for "redirect is followed" 30 job_is "$ID" Completed
check "file named after the final URL" cmp -s "$(input_file "$ID" big.bin)" "$WWW/big.bin"

ID=$(job disposition "$(url_input "$HTTP_PEER/cd/words.txt")")
wait_for "Content-Disposition download completes" 30 job_is "$ID" Completed
check "file named by Content-Disposition" test -f "$(input_file "$ID" named.txt)"

ID=$(job sha-ok "$(url_input "$HTTP_PEER/words.txt" '"SHA256": "'"$SHA"'"')")
wait_for "matching SHA256 completes" 30 job_is "$ID" Completed
ID=$(job sha-bad "$(url_input "$HTTP_PEER/big.bin" '"SHA256": "'"$SHA"'"')")
wait_for "mismatching SHA256 fails" 30 job_is "$ID" Failed
expect_contains "the error says sha256" "$(state_msg "$ID")" "sha256"

ID=$(job too-big "$(url_input "$HTTP_PEER/big.bin")" '{"Disk": "100kb"}')
wait_for "a download larger than the task's Disk fails" 30 job_is "$ID" Failed
expect_contains "the error names the limit" "$(state_msg "$ID")" "larger than the limit"

ID=$(job flaky "$(url_input "$HTTP_PEER/flaky/2/words.txt")")
wait_for "two 503s then success: retried per MaxRetryCount" 30 job_is "$ID" Completed
ID=$(job flakier "$(url_input "$HTTP_PEER/flaky/5/big.bin")")
wait_for "more failures than MaxRetryCount: fails" 30 job_is "$ID" Failed
expect_contains "the error names the input" "$(state_msg "$ID")" 'prepare input "/inputs"'
expect_contains "the error has the HTTP status" "$(state_msg "$ID")" "503"

ID=$(job missing "$(url_input "$HTTP_PEER/nope.txt")")
wait_for "404 fails" 30 job_is "$ID" Failed
expect_contains "404 is reported" "$(state_msg "$ID")" "HTTP 404"

ID=$(job notweb "$(url_input "ftp://example.invalid/x")")
expect_eq "a non-http URL is refused at submission" "$ID" null
