#!/usr/bin/env bash
# Images: a multi-arch index resolves to this node's platform; an image
# without it is rejected at bid time with the platforms named; malicious
# layers are refused; a registry with Basic auth works with credentials and
# fails clearly without; offline import (OCI layout tar, docker save) and
# the image CLI (ls, rm, prune, pull).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-oci.sh"
oci_require

start_registry || exit 1
for i in busybox multi armonly evil-dotdot evil-abs evil-symlink; do push "$i" || { not_ok "push $i"; exit 1; }; done
OPEN_REG=$REG
start_registry coduser codpass || exit 1
AUTH_REG=$REG
push busybox coduser:codpass || { not_ok "push to the auth registry"; exit 1; }
ok "registries at $OPEN_REG (open) and $AUTH_REG (htpasswd)"

# c1 has the credentials of the auth registry; c2 has none
start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
start_compute c1 -c "Engines.Types.Docker.Credentials=$AUTH_REG=coduser:codpass" -c Labels=role=auth
start_compute c2 -c Labels=role=anon
wait_for "two compute nodes connect" 30 has_connected_nodes 2 || exit 1

run_job() {
	J=$(submit_json "$(docker_job "$1" "$2" "${3:-{\}}" "${4:-{\}}")")
	wait_for "$1 ends" 60 job_terminal "$J"
}
on_c1='{"Constraints":[{"Key":"role","Operator":"=","Values":["auth"]}]}'
on_c2='{"Constraints":[{"Key":"role","Operator":"=","Values":["anon"]}]}'
PLATFORM="linux/$(uname -m | sed 's/x86_64/amd64/; s/aarch64/arm64/')"

# ---- multi-arch index
run_job multi "{\"Image\":\"$OPEN_REG/cod-test/multi:latest\",\"Parameters\":[\"echo\",\"multi ok\"]}" '{}' "$on_c1"
expect_eq "a multi-arch index runs" "$(job_state "$J")" Completed
expect_eq "with its output" "$(exec_field "$J" .RunOutput.Stdout)" "multi ok"
run_cod image ls --data-dir "$TEST_TMP/c1" --output json
expect_eq "the index resolved to this node's platform" \
	"$(jq_of '.[] | select(.Ref | contains("multi")) | .Platform' "$OUT")" "$PLATFORM"
check "and the index digest is recorded" test "$(jq_of '.[] | select(.Ref | contains("multi")) | .Index' "$OUT")" != null

# ---- wrong platform: rejected at bid, the platforms named
J=$(submit_json "$(docker_job armonly "{\"Image\":\"$OPEN_REG/cod-test/armonly:latest\"}" '{}' "$on_c1")")
wait_for "an image without this platform fails" 30 job_is "$J" Failed
MSG=$(exec_field "$J" .ComputeState.Message)
expect_contains "rejected at bid time with the node's platform named" "$MSG" "has no $PLATFORM variant"
expect_contains "and the available ones listed" "$MSG" "available: linux/arm64, linux/s390x"
expect_eq "the execution was a rejected bid" "$(exec_field "$J" .ComputeState.StateType)" 4

# ---- malicious layers
declare -A WHY=([dotdot]='it leaves the image root ("..")' [abs]="absolute paths may not appear" [symlink]='its parent "evil" is a symlink')
for kind in dotdot abs symlink; do
	run_job "evil-$kind" "{\"Image\":\"$OPEN_REG/cod-test/evil-$kind:latest\",\"Parameters\":[\"true\"]}" '{}' "$on_c1"
	expect_eq "evil-$kind is refused" "$(job_state "$J")" Failed
	M=$(exec_field "$J" .ComputeState.Message)
	expect_contains "evil-$kind: a clear error" "$M" "refused layer entry"
	expect_contains "evil-$kind: saying why" "$M" "${WHY[$kind]}"
done
check "nothing escaped: no /etc/cod-escape" test ! -e /etc/cod-escape
check "nothing escaped: no /tmp/cod-evil-target/pwned" test ! -e /tmp/cod-evil-target/pwned
check "nothing escaped: no escape file above the store" bash -c "! find '$TEST_TMP' -name escape | grep -q ."

# ---- Basic auth
run_job auth-ok "{\"Image\":\"$AUTH_REG/cod-test/busybox:latest\",\"Parameters\":[\"echo\",\"authed\"]}" '{}' "$on_c1"
expect_eq "with credentials the private image runs" "$(exec_field "$J" .RunOutput.Stdout)" "authed"
J=$(submit_json "$(docker_job auth-none "{\"Image\":\"$AUTH_REG/cod-test/busybox:latest\"}" '{}' "$on_c2")")
wait_for "without credentials it fails" 30 job_is "$J" Failed
MSG=$(exec_field "$J" .ComputeState.Message)
expect_contains "clearly: unauthorized" "$MSG" "unauthorized"
expect_contains "with how to fix it" "$MSG" "Engines.Types.Docker.Credentials"
COD_DIR="$TEST_TMP/badcreds" run_cod image pull "$AUTH_REG/cod-test/busybox:latest" \
	-c "Engines.Types.Docker.Credentials=$AUTH_REG=coduser:wrong"
check "wrong credentials fail the pull" test "$RC" -ne 0
expect_contains "saying the credentials were refused" "$ERR" "refused the credentials"

# ---- the image CLI on c2's store (offline import, then a job uses it)
L="$TEST_TMP/layout.tar"
(cd "$LAYOUT" && tar -cf "$L" .)
run_cod image import "$L" --data-dir "$TEST_TMP/c2"
expect_eq "import of an OCI layout tar" "$RC" 0
expect_contains "names the images" "$OUT" "Imported docker.io/cod-test/entry:latest"
run_cod image import "$IMAGES_DIR/busybox-save.tar" --data-dir "$TEST_TMP/c2"
expect_contains "import of a docker save tarball" "$OUT" "Imported docker.io/cod-test/saved:1.0"
run_job saved '{"Image":"cod-test/saved:1.0","Parameters":["cat","/etc/cod-release"]}' '{}' "$on_c2"
expect_eq "an imported image runs without any registry" "$(exec_field "$J" .RunOutput.Stdout)" "cod-test"
run_cod image ls --data-dir "$TEST_TMP/c2"
expect_contains "image ls lists it" "$OUT" "docker.io/cod-test/saved:1.0"
expect_contains "with its last use" "$OUT" "ago"
BEFORE=$(du -sk "$TEST_TMP/c2/compute/images" | cut -f1)
run_cod image rm cod-test/saved:1.0 cod-test/entry --data-dir "$TEST_TMP/c2"
expect_eq "image rm" "$RC" 0
expect_contains "frees what only they used" "$OUT" "Freed"
AFTER=$(du -sk "$TEST_TMP/c2/compute/images" | cut -f1)
check "the store shrank ($BEFORE -> $AFTER KiB)" test "$AFTER" -lt "$BEFORE"
run_cod image ls --data-dir "$TEST_TMP/c2" --output json
expect_eq "removed images are gone" "$(jq_of '[.[] | select(.Ref | test("saved|entry"))] | length' "$OUT")" 0
run_cod image prune --max-size 1 --data-dir "$TEST_TMP/c2"
expect_eq "prune --max-size evicts least recently used images" "$RC" 0
run_cod image ls --data-dir "$TEST_TMP/c2" --output json
expect_eq "until the store fits" "$(jq_of 'length' "$OUT")" 0
run_cod image rm nope:1 --data-dir "$TEST_TMP/c2"
check "image rm of an unknown image fails" test "$RC" -ne 0
expect_contains "naming it" "$ERR" "docker.io/library/nope:1"
