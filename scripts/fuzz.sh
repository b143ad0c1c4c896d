#!/usr/bin/env bash
# Builds every tests/fuzz/fuzz_*.c with clang's libFuzzer + ASan/UBSan and
# runs each for the given number of seconds (default 30), starting from its
# seed corpus. New interesting inputs go to tests/fuzz/corpus-new/<target>/
# (ignored by git); crashers stop the run and are left in that directory.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
scripts/install-deps.sh
out=build/fuzz-libfuzzer
mkdir -p "$out"
pkgs="sqlite3 libmicrohttpd libcurl jansson yaml-0.1 libarchive libcrypto libnats"
# libcurl, libarchive and libmicrohttpd are loaded on first use (src/common/lazylib.h)
link_pkgs="sqlite3 jansson yaml-0.1 libcrypto libnats"
# shellcheck disable=SC2046
srcs=$(find src -name '*.c' ! -name main.c | sort)
for target in tests/fuzz/fuzz_*.c; do
	name=$(basename "$target" .c)
	bin="$out/$name"
	echo "== building $name"
	# shellcheck disable=SC2086
	clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -D_GNU_SOURCE \
		-DCOD_VERSION='"fuzz"' -DCOD_GIT_COMMIT='"fuzz"' $(pkg-config --cflags $pkgs) \
		-o "$bin" "$target" $srcs $(pkg-config --libs $link_pkgs) -lm -pthread
	mkdir -p "tests/fuzz/corpus-new/$name"
	echo "== running $name for ${secs}s"
	(cd "tests/fuzz/corpus-new/$name" &&
		"../../../../$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
			. "../../corpus/$name")
done
echo "fuzzing finished without crashes"
