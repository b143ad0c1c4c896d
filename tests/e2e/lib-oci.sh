# Helpers of the container (t3xxx) e2e tests. Source after lib.sh:
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/lib-oci.sh"
#   oci_require || exit 0          # prints why and skips when it cannot run
#
# Test images come from scripts/test-images.sh, built once per version of
# that script into ${TMPDIR:-/tmp}/cod-test-images-<hash> and shared by the
# tests; registries come from scripts/start-registry.sh and are stopped
# when the test ends.

REGISTRY_PIDS=()
ROOT_DIR=${ROOT_DIR:-$PWD}

oci_cleanup() {
	local pid
	for pid in "${REGISTRY_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
}
trap 'oci_cleanup; cleanup; exit $?' EXIT

# oci_skip REASON: the test cannot run here; say why (no check passes)
oci_skip() {
	echo "# skip: $*"
	exit 0
}

oci_require() {
	[ "$(id -u)" = 0 ] || oci_skip "containers need root (rootless is not supported)"
	command -v crun >/dev/null || command -v runc >/dev/null || [ -x /usr/sbin/runc ] ||
		oci_skip "no OCI runtime (install crun or runc: scripts/install-deps.sh)"
	[ -x /bin/busybox ] || oci_skip "busybox-static is not installed"
	command -v docker-registry >/dev/null || oci_skip "docker-registry is not installed"
	command -v skopeo >/dev/null || oci_skip "skopeo is not installed"
	oci_images
}

# oci_images: build the test images (cached); sets LAYOUT and IMAGES_DIR
oci_images() {
	local hash
	hash=$(sha256sum "$ROOT_DIR/scripts/test-images.sh" /bin/busybox | sha256sum | cut -c1-12)
	IMAGES_DIR="${TMPDIR:-/tmp}/cod-test-images-$hash"
	LAYOUT="$IMAGES_DIR/layout"
	(
		flock 9
		if [ ! -f "$IMAGES_DIR/.done" ]; then
			"$ROOT_DIR/scripts/test-images.sh" "$IMAGES_DIR" >/dev/null && touch "$IMAGES_DIR/.done"
		fi
	) 9>"${TMPDIR:-/tmp}/cod-test-images.lock"
	[ -f "$IMAGES_DIR/.done" ] || { not_ok "test images built"; exit 1; }
}

# start_registry [USER PASSWORD]: sets REG_PORT, REG (127.0.0.1:PORT)
start_registry() {
	local dir="$TEST_TMP/registry-${#REGISTRY_PIDS[@]}" out
	out=$("$ROOT_DIR/scripts/start-registry.sh" "$dir" "$@") || { not_ok "registry starts"; return 1; }
	REG_PORT=${out% *}
	REGISTRY_PIDS+=("${out#* }")
	REG="127.0.0.1:$REG_PORT"
}

# push NAME [USER:PASSWORD]: copy cod-test/NAME:latest from the layout to $REG
push() {
	local creds=()
	[ -n "${2:-}" ] && creds=(--dest-creds "$2")
	skopeo copy -q --all --dest-tls-verify=false "${creds[@]}" "oci:$LAYOUT:cod-test/$1:latest" \
		"docker://$REG/cod-test/$1:latest" >"$TEST_TMP/skopeo.log" 2>&1 ||
		{ cat "$TEST_TMP/skopeo.log"; return 1; }
}

# docker_job NAME PARAMS-JSON [TASK-EXTRA-JSON] [JOB-EXTRA-JSON]: a batch
# job JSON body with a docker engine; TASK-EXTRA is merged into the task
docker_job() {
	jq -nc --arg n "$1" --argjson p "$2" --argjson t "${3:-{\}}" --argjson j "${4:-{\}}" \
		'{Job: ({Name:$n, Type:"batch", Count:1, Meta:{"cod.retry.attempts":"1"},
		  Tasks:[({Name:"main", Engine:{Type:"docker", Params:$p}} + $t)]} + $j)}'
}

# first_exec JOB: the first execution as JSON
first_exec() { executions "$1" | jq -c '.[0]'; }
exec_field() { first_exec "$1" | jq -r "$2"; }

# a cluster of one orchestrator and one compute node "c1"; extra args go
# to the compute node
start_oci_cluster() {
	start_cluster_orchestrator || { not_ok "orchestrator starts"; exit 1; }
	start_compute c1 "$@"
	wait_for "compute node connects" 30 has_connected_nodes 1 || exit 1
}
