#!/bin/sh
# Installs the Debian packages that cod's build, tests and demo need.
# Idempotent: packages already present are skipped, and apt is not touched at
# all when nothing is missing. Works as root or through sudo.
set -eu

PKGS="
build-essential pkg-config clang libclang-rt-14-dev
libsqlite3-dev libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev
libyaml-dev libarchive-dev libssl-dev libcmocka-dev libnats-dev uuid-dev
nats-server sqlite3 curl jq ca-certificates
nodejs npm python3 awscli
crun runc busybox-static docker-registry skopeo apache2-utils procps tmux ipfs-cid
"

# Tools that may come from elsewhere than Debian (a Node.js distribution
# bundles npm; awscli may be installed with pip): a working command counts
# as installed, so apt is not asked for a conflicting package.
provided_by_command() {
	case "$1" in
	nodejs) command -v node >/dev/null 2>&1 ;;
	npm) command -v npm >/dev/null 2>&1 ;;
	awscli) command -v aws >/dev/null 2>&1 ;;
	python3) command -v python3 >/dev/null 2>&1 ;;
	*) return 1 ;;
	esac
}

missing=""
for p in $PKGS; do
	if provided_by_command "$p"; then
		continue
	fi
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	exit 0
fi

echo "install-deps: installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "install-deps: missing packages:$missing; run as root or install sudo" >&2
		exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
