#!/usr/bin/env bash
# Builds the container test images offline from Debian's busybox-static,
# with nothing but tar, gzip, sha256sum and jq (no Docker, no network):
#
#   OUT/layout/            an OCI image layout holding, by ref name:
#     cod-test/busybox:latest   busybox with /bin/sh etc.; Cmd ["sh"]
#     cod-test/entry:latest     Entrypoint ["/bin/echo","ep"], Cmd ["cmd"],
#                               WorkingDir /work, Env IMGVAR=image, MIXED=image
#     cod-test/nobody:latest    busybox running as User "nobody"
#     cod-test/multi:latest     an index: linux/amd64 (busybox) and a fake
#                               linux/arm64 manifest (arm64 config, same layer)
#     cod-test/armonly:latest   an index with linux/arm64 and linux/s390x only
#     cod-test/evil-dotdot:latest   a layer with "../../escape"
#     cod-test/evil-abs:latest      a layer with "/etc/cod-escape"
#     cod-test/evil-symlink:latest  "evil -> /tmp/..." then "evil/pwned"
#   OUT/busybox-save.tar   the busybox image as `docker save` writes it
#
# Usage: scripts/test-images.sh OUT      (prints OUT/layout)
# Push them to a registry with
#   skopeo copy --all --dest-tls-verify=false oci:OUT/layout:cod-test/busybox:latest \
#       docker://127.0.0.1:PORT/cod-test/busybox:latest
set -euo pipefail

OUT=${1:?usage: test-images.sh OUT}
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || { echo "test-images: $BUSYBOX missing (apt-get install busybox-static)" >&2; exit 1; }
if ldd "$BUSYBOX" >/dev/null 2>&1; then
	echo "test-images: $BUSYBOX is not static (install busybox-static)" >&2
	exit 1
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
L="$OUT/layout"
W="$OUT/work"
rm -rf "$L" "$W"
mkdir -p "$L/blobs/sha256" "$W"
echo '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
MANIFESTS='[]'

# blob FILE MEDIATYPE: store FILE as a blob, print its descriptor
blob() {
	local d s
	d=$(sha256sum "$1" | cut -d' ' -f1)
	s=$(stat -c %s "$1")
	cp "$1" "$L/blobs/sha256/$d"
	jq -nc --arg m "$2" --arg d "sha256:$d" --argjson s "$s" '{mediaType:$m, digest:$d, size:$s}'
}

# layer DIR-or-TAR: a gzip layer; prints "descriptor diffid" (cached per source)
declare -A LAYERS
layer() {
	local src=$1 tarf="$W/layer.$RANDOM.tar"
	if [ -n "${LAYERS[$src]:-}" ]; then
		echo "${LAYERS[$src]}"
		return
	fi
	if [ -d "$src" ]; then
		tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$src" -cf "$tarf" .
	else
		cp "$src" "$tarf"
	fi
	local diffid
	diffid=$(sha256sum "$tarf" | cut -d' ' -f1)
	gzip -n -c "$tarf" >"$tarf.gz"
	echo "$(blob "$tarf.gz" application/vnd.oci.image.layer.v1.tar+gzip) sha256:$diffid"
}

# image REF ARCH CONFIG-JSON LAYER... : config + manifest; adds REF to index
# unless REF is "-"; sets DESC to the manifest descriptor with its platform
image() {
	local ref=$1 arch=$2 cfg=$3
	shift 3
	local descs='[]' diffids='[]' l desc diffid
	for l in "$@"; do
		read -r desc diffid <<<"$(layer "$l")"
		LAYERS[$l]="$desc $diffid"
		descs=$(jq -c --argjson d "$desc" '. + [$d]' <<<"$descs")
		diffids=$(jq -c --arg d "$diffid" '. + [$d]' <<<"$diffids")
	done
	jq -c --arg a "$arch" --argjson ids "$diffids" \
		'{architecture:$a, os:"linux", config:., rootfs:{type:"layers", diff_ids:$ids},
		  history:[{created_by:"cod scripts/test-images.sh"}]}' <<<"$cfg" >"$W/config.json"
	local cdesc mdesc
	cdesc=$(blob "$W/config.json" application/vnd.oci.image.config.v1+json)
	jq -nc --argjson c "$cdesc" --argjson l "$descs" \
		'{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json", config:$c, layers:$l}' \
		>"$W/manifest.json"
	mdesc=$(blob "$W/manifest.json" application/vnd.oci.image.manifest.v1+json)
	mdesc=$(jq -c --arg a "$arch" '. + {platform:{architecture:$a, os:"linux"}}' <<<"$mdesc")
	if [ "$ref" != - ]; then
		MANIFESTS=$(jq -c --argjson m "$mdesc" --arg r "$ref" \
			'. + [$m + {annotations:{"org.opencontainers.image.ref.name":$r}}]' <<<"$MANIFESTS")
	fi
	DESC=$mdesc
}

# index REF MANIFEST-DESCRIPTOR...
index() {
	local ref=$1
	shift
	local ms
	ms=$(printf '%s\n' "$@" | jq -sc .)
	jq -nc --argjson m "$ms" '{schemaVersion:2, mediaType:"application/vnd.oci.image.index.v1+json", manifests:$m}' \
		>"$W/index.json"
	local idesc
	idesc=$(blob "$W/index.json" application/vnd.oci.image.index.v1+json)
	MANIFESTS=$(jq -c --argjson m "$idesc" --arg r "$ref" \
		'. + [$m + {annotations:{"org.opencontainers.image.ref.name":$r}}]' <<<"$MANIFESTS")
}

# ---- the busybox root file system
ROOT="$W/rootfs"
mkdir -p "$ROOT"/{bin,etc,tmp,root,work,home}
chmod 1777 "$ROOT/tmp"
cp "$BUSYBOX" "$ROOT/bin/busybox"
APPLETS="sh ash echo cat ls id env pwd mkdir touch sleep dd head tail tr wc grep sed ip ping wget nc cp mv rm ln
sort true false test [ kill uname hostname stat printf seq yes date df du find xargs chmod readlink tee expr
awk cut basename dirname whoami sync nproc"
for app in $APPLETS; do
	ln -s busybox "$ROOT/bin/$app"
done
cat >"$ROOT/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/home:/bin/sh
EOF
cat >"$ROOT/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
echo "cod-test" >"$ROOT/etc/cod-release"

PATHENV='"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"'
image cod-test/busybox:latest amd64 "{\"Env\":[$PATHENV],\"Cmd\":[\"sh\"]}" "$ROOT"
BB=$DESC
image cod-test/entry:latest amd64 \
	"{\"Env\":[$PATHENV,\"IMGVAR=image\",\"MIXED=image\"],\"Entrypoint\":[\"/bin/echo\",\"ep\"],\"Cmd\":[\"cmd\"],\"WorkingDir\":\"/work\"}" \
	"$ROOT"
image cod-test/nobody:latest amd64 "{\"Env\":[$PATHENV],\"Cmd\":[\"id\"],\"User\":\"nobody\"}" "$ROOT"
image - arm64 "{\"Env\":[$PATHENV],\"Cmd\":[\"sh\"]}" "$ROOT"
ARM=$DESC
image - s390x "{\"Env\":[$PATHENV],\"Cmd\":[\"sh\"]}" "$ROOT"
S390=$DESC
index cod-test/multi:latest "$BB" "$ARM"
index cod-test/armonly:latest "$ARM" "$S390"

# ---- malicious layers
EV="$W/evil"
mkdir -p "$EV"
echo pwned >"$EV/x"
tar -C "$EV" -cPf "$W/dotdot.tar" --transform 's,^x$,../../escape,' x
tar -C "$EV" -cPf "$W/abs.tar" --transform 's,^x$,/etc/cod-escape,' x
ln -s /tmp/cod-evil-target "$EV/evil"
tar -C "$EV" -cf "$W/symlink.tar" evil
tar -C "$EV" -rf "$W/symlink.tar" --transform 's,^x$,evil/pwned,' x
for kind in dotdot abs symlink; do
	image "cod-test/evil-$kind:latest" amd64 "{\"Env\":[$PATHENV],\"Cmd\":[\"sh\"]}" "$ROOT" "$W/$kind.tar"
done

jq -nc --argjson m "$MANIFESTS" '{schemaVersion:2, mediaType:"application/vnd.oci.image.index.v1+json", manifests:$m}' \
	>"$L/index.json"

# ---- `docker save` tarball of busybox
DS="$W/save"
mkdir -p "$DS/layer1"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$ROOT" -cf "$DS/layer1/layer.tar" .
DIFF=$(sha256sum "$DS/layer1/layer.tar" | cut -d' ' -f1)
jq -nc --arg d "sha256:$DIFF" "{architecture:\"amd64\", os:\"linux\", config:{Env:[$PATHENV], Cmd:[\"sh\"]}, rootfs:{type:\"layers\", diff_ids:[\$d]}}" \
	>"$DS/cfg.json"
CFG=$(sha256sum "$DS/cfg.json" | cut -d' ' -f1)
mv "$DS/cfg.json" "$DS/$CFG.json"
jq -nc --arg c "$CFG.json" '[{Config:$c, RepoTags:["cod-test/saved:1.0"], Layers:["layer1/layer.tar"]}]' >"$DS/manifest.json"
tar -C "$DS" -cf "$OUT/busybox-save.tar" manifest.json "$CFG.json" layer1

rm -rf "$W"
echo "$L"
