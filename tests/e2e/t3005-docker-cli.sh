#!/usr/bin/env bash
# `cod docker run`: flags map onto the job spec (checked with --dry-run),
# the command after IMAGE keeps its own flags, and it submits and follows a
# job exactly like `cod job run` (--wait, --follow, --id-only, exit codes).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-oci.sh"
oci_require

# ---- flag mapping (no cluster needed)
run_cod docker run --dry-run --entrypoint /bin/echo -w /tmp -e A=1 -e B=2 \
	-i src=file:///data,dst=/in,opt=rw=true -i https://example.com/f -i s3://bkt/key/x,dst=/s3,opt=region=eu \
	-i ipfs://QmCID,dst=/ipfs -i 'data:text/plain;base64,aGk=,dst=/d' -o out:/outputs -p local \
	--cpu 500m --memory 64Mi --disk 1Gi --network None --timeout 30 --queue-timeout 60 --count 2 \
	-l a=b,c=d --constraints 'zone=x' --name named --namespace ns1 --priority 5 busybox:1.36 ls -l /
expect_eq "dry run exits 0" "$RC" 0
printf '%s\n' "$OUT" >"$TEST_TMP/dry.yaml"
J=$("$COD" job validate "$TEST_TMP/dry.yaml" >/dev/null 2>&1 && echo valid)
expect_eq "the printed job is a valid spec" "$J" valid
y() { printf '%s' "$OUT" | grep -A "${2:-0}" -- "$1" | tr -s ' \n' ' '; }
expect_contains "Image" "$OUT" "Image: busybox:1.36"
expect_contains "the command keeps its flags" "$(y 'Parameters:' 3)" 'Parameters: - ls - "-l" - /'
expect_contains "--entrypoint" "$(y 'Entrypoint:' 1)" "Entrypoint: - /bin/echo"
expect_contains "-e" "$(y 'EnvironmentVariables:' 2)" "- A=1 - B=2"
expect_contains "-w" "$OUT" "WorkingDirectory: /tmp"
expect_contains "-i file:// is a local input" "$(y 'Type: local' 3)" "SourcePath: /data ReadWrite: true"
expect_contains "-i https:// is urlDownload" "$(y 'Type: urlDownload' 2)" "URL: https://example.com/f"
expect_contains "-i s3://" "$(y 'Type: s3' 4)" "Bucket: bkt Key: key/x Region: eu"
expect_contains "-i ipfs://" "$(y 'Type: ipfs' 2)" "CID: QmCID"
expect_contains "-i data:" "$(y 'Type: inline' 2)" "URL: data:text/plain;base64,aGk="
expect_contains "a bare URI goes to /inputs" "$OUT" "Target: /inputs"
expect_contains "-o" "$(y 'ResultPaths:' 2)" "Name: out Path: /outputs"
expect_contains "-p" "$(y 'Publisher:' 1)" "Type: local"
expect_contains "resources" "$(y 'Resources:' 3)" "CPU: 500m Memory: 64Mi Disk: 1Gi"
expect_contains "--network" "$(y 'Network:' 1)" "Type: None"
expect_contains "timeouts" "$(y 'Timeouts:' 2)" "ExecutionTimeout: 30 QueueTimeout: 60"
expect_contains "--count" "$OUT" "Count: 2"
expect_contains "--labels" "$(y 'Labels:' 2)" "a: b c: d"
expect_contains "--constraints" "$(y 'Constraints:' 3)" "Key: zone Operator: = Values:"
expect_contains "--name" "$OUT" "Name: named"
expect_contains "--namespace" "$OUT" "Namespace: ns1"
expect_contains "--priority" "$OUT" "Priority: 5"
run_cod docker run --dry-run --target all busybox
expect_contains "--target all is an ops job" "$OUT" "Type: ops"
run_cod docker run --dry-run -- busybox --weird-flag
expect_contains "after --, everything is the container's" "$(y 'Parameters:' 1)" "- \"--weird-flag\""
run_cod docker run --dry-run
expect_eq "a missing image is a usage error" "$RC" 2
expect_contains "naming IMAGE" "$ERR" "missing argument IMAGE"
run_cod docker run --dry-run -i ftp://x/y busybox
check "an unknown input scheme is refused" test "$RC" -ne 0
expect_contains "with the schemes listed" "$ERR" "file://, http(s)://, s3://, ipfs:// or data:"
run_cod docker run --dry-run -o nocolon busybox
expect_contains "-o needs NAME:PATH" "$ERR" "NAME:PATH"
run_cod docker run --dry-run --target some busybox
expect_eq "a bad --target is a usage error" "$RC" 2

# ---- against a cluster
start_registry || exit 1
push busybox || { not_ok "push busybox"; exit 1; }
start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
start_compute c1
start_compute c2
wait_for "two compute nodes connect" 30 has_connected_nodes 2 || exit 1
BB="$REG/cod-test/busybox:latest"

run_cod docker run --wait-timeout-secs 60 "$BB" echo hello world
expect_eq "docker run waits and exits 0" "$RC" 0
expect_contains "it reports completion like job run" "$OUT" "Completed"
JID=$(printf '%s' "$OUT" | sed -n 's/.*Job ID: \(j-[0-9a-f-]*\).*/\1/p' | head -1)
expect_eq "the container's stdout is recorded" "$(exec_field "$JID" .RunOutput.Stdout)" "hello world"

run_cod docker run --wait-timeout-secs 60 -f "$BB" sh -c 'echo one; sleep 1; echo two'
expect_eq "--follow exits 0" "$RC" 0
expect_eq "--follow streams the container's output" "$OUT" "$(printf 'one\ntwo')"

run_cod docker run --wait-timeout-secs 60 "$BB" sh -c 'exit 4'
expect_eq "a failing container: docker run exits 1" "$RC" 1
expect_contains "with the reason" "$ERR" "exit code 4"

run_cod docker run --id-only --wait=false "$BB" true
expect_eq "--id-only prints the id only" "$(printf '%s' "$OUT" | grep -c '^j-')" 1
wait_for "that job completes too" 60 job_is "$OUT" Completed

run_cod docker run --wait-timeout-secs 60 --target all "$BB" hostname
expect_eq "--target all runs on every node" "$RC" 0
JID=$(printf '%s' "$OUT" | sed -n 's/.*Job ID: \(j-[0-9a-f-]*\).*/\1/p' | head -1)
expect_eq "two executions, one per node" "$(executions "$JID" | jq '[.[] | select(.ComputeState.StateType == 9)] | length')" 2
