#!/usr/bin/env bash
# The s3 publisher against s3rver (a real S3 server; it checks the access
# key and the form of SigV4 requests, not the signature itself, so cod's
# pre-signed URLs are cross-checked against botocore's): key templates, gzip and plain encodings, multipart
# uploads, the results endpoint's pre-signed URLs, and `cod job get` for
# both (pre-signed, and with the client's own credentials); objects
# cross-checked with the AWS CLI.
. "$(dirname "$0")/lib.sh"

start_s3 results || { not_ok "s3rver starts"; exit 1; }
start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
start_compute c1 "${DATA_COMPUTE[@]}" -c Publishers.Types.S3.PartSize=1KiB
wait_for "compute node connects" 30 has_connected_nodes 1 || exit 1
run_cod node list --output json
expect_contains "node with AWS credentials advertises the s3 publisher" \
	"$(jq_of '.[0].Info.ComputeNodeInfo.Publishers | join(",")' "$OUT")" "s3"

job() { # NAME PUBLISHER-PARAMS [STDOUT]
	submit_json "{\"Job\": {\"Name\": \"$1\", \"Type\": \"batch\", \"Tasks\": [{\"Name\": \"main\",
		\"Engine\": {\"Type\": \"noop\", \"Params\": {\"Stdout\": \"${3:-published to s3}\"}},
		\"Publisher\": {\"Type\": \"s3\", \"Params\": $2},
		\"ResultPaths\": [{\"Name\": \"outputs\", \"Path\": \"/outputs\"}]}]}}"
}
pub() { echo "{\"Bucket\": \"results\", \"Endpoint\": \"$S3_ENDPOINT\", \"Region\": \"us-east-1\"$1}"; }

ID=$(job gz "$(pub ', "Key": "jobs/{jobID}/{executionID}"')")
wait_for "gzip-published job completes" 30 job_is "$ID" Completed
EXEC=$(exec_field "$ID" .ID)
expect_eq "published result is s3" "$(exec_field "$ID" .PublishedResult.Type)" s3
expect_eq "key template expanded, .tar.gz appended" "$(exec_field "$ID" .PublishedResult.Params.Key)" "jobs/$ID/$EXEC.tar.gz"
check "the AWS CLI sees the archive" awss3 s3api head-object --bucket results --key "jobs/$ID/$EXEC.tar.gz"
awss3 s3 cp --quiet "s3://results/jobs/$ID/$EXEC.tar.gz" "$TEST_TMP/gz.tgz"
expect_contains "archive holds stdout and exitCode" "$(tar tzf "$TEST_TMP/gz.tgz" | sort | tr '\n' ' ')" "exitCode outputs/ stderr stdout"
expect_eq "recorded checksum matches the object" "$(exec_field "$ID" .PublishedResult.Params.ChecksumSHA256)" \
	"$(openssl dgst -sha256 -binary "$TEST_TMP/gz.tgz" | base64)"

http GET "/api/v1/orchestrator/jobs/$ID/results"
expect_eq "results endpoint pre-signs it" "$(jq_of '.Items[0].Type' "$BODY")" s3PreSigned
URL=$(jq_of '.Items[0].Params.PreSignedURL' "$BODY")
expect_contains "a SigV4 query-signed URL" "$URL" "X-Amz-Signature="
check "s3rver accepts the pre-signed URL (signature checked)" curl -sf -o /dev/null "$URL"
# botocore (the AWS CLI's signer) signs the same request at the same time
# to the same signature
cat >"$TEST_TMP/presign.py" <<'PY'
import datetime, sys, urllib.parse
import botocore.auth as ba
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
url = sys.argv[1]
u = urllib.parse.urlsplit(url)
q = dict(urllib.parse.parse_qsl(u.query))
when = datetime.datetime.strptime(q["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
class Fixed(datetime.datetime):
    @classmethod
    def utcnow(cls): return when
    @classmethod
    def now(cls, tz=None): return when.replace(tzinfo=tz)
ba.datetime.datetime = Fixed
r = AWSRequest(method="GET", url=f"{u.scheme}://{u.netloc}{u.path}")
ba.S3SigV4QueryAuth(Credentials("S3RVER", "S3RVER"), "s3", "us-east-1", expires=int(q["X-Amz-Expires"])).add_auth(r)
print(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.url).query))["X-Amz-Signature"])
PY
if python3 -c 'import botocore' 2>/dev/null; then
	expect_eq "botocore computes the same pre-signed signature" "$(python3 "$TEST_TMP/presign.py" "$URL")" "${URL##*X-Amz-Signature=}"
else
	echo "# skip: botocore cross-check: no botocore (scripts/install-deps.sh installs awscli)"
fi

# job get through the pre-signed URL, with no credentials on the client
run_env() { env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$@"; }
OUT=$(run_env "$COD" job get "$ID" --output-dir "$TEST_TMP/got" 2>"$TEST_TMP/err") && RC=0 || RC=$?
expect_eq "job get (pre-signed) exits 0" "$RC" 0
expect_eq "job get (pre-signed) downloads stdout" "$(cat "$TEST_TMP/got/stdout")" "published to s3"

# signing disabled: the result stays s3 and the client uses its own credentials
ID2=$(job plain "$(pub ', "Key": "plain/{jobID}", "Encoding": "plain"')")
wait_for "plain-published job completes" 30 job_is "$ID2" Completed
expect_eq "plain: key is a prefix" "$(exec_field "$ID2" .PublishedResult.Params.Key)" "plain/$ID2/"
expect_eq "plain: one object per file" "$(awss3 s3 ls "s3://results/plain/$ID2/" --recursive | awk '{print $4}' | sed "s|plain/$ID2/||" | sort | tr '\n' ' ')" "exitCode stderr stdout "
http GET "/api/v1/orchestrator/jobs/$ID2/results"
expect_eq "plain results are not pre-signed" "$(jq_of '.Items[0].Type' "$BODY")" s3
run_cod job get "$ID2" --output-dir "$TEST_TMP/plain"
expect_eq "job get (plain, client credentials) exits 0" "$RC" 0
expect_eq "job get (plain) downloads stdout" "$(cat "$TEST_TMP/plain/stdout")" "published to s3"

# multipart: a result larger than PartSize (1KiB here) goes up in parts
BIG=$(head -c 3000 /dev/zero | tr '\0' 'x')
ID3=$(job big "$(pub ', "Key": "big/{executionID}", "Encoding": "plain"')" "$BIG")
wait_for "job with a 3000-byte stdout completes" 30 job_is "$ID3" Completed
KEY="$(exec_field "$ID3" .PublishedResult.Params.Key)stdout"
expect_eq "the stdout went up whole" "$(awss3 s3api head-object --bucket results --key "$KEY" | jq .ContentLength)" 3000
expect_contains "as a multipart upload of 3 parts" "$(cat "$TEST_TMP/c1.log")" "$KEY (3000 bytes) in 3 parts"
check "its bytes are intact" bash -c "[ \"\$(aws --endpoint-url $S3_ENDPOINT s3 cp --quiet s3://results/$KEY -)\" = '$BIG' ]"

# Encoding that is neither gzip nor plain is refused at bid time
ID4=$(job badenc "$(pub ', "Key": "x", "Encoding": "zip"')")
wait_for "a bad Encoding fails" 30 job_is "$ID4" Failed
