# cod - compute over data.  One GNU Makefile; see README.md.
#
#   make                 build build/cod (and build/libcod.a)
#   make test            install deps, build with ASan+UBSan, run every test
#   make demo            install deps, build, run a job on a local cluster
#   make fuzz            run the libFuzzer targets for FUZZ_SECONDS each
#   make bench           run the benchmarks (never part of make test)
#   SANITIZE=address,undefined make   sanitizer build (into build/san)

CC ?= cc
PKGS := sqlite3 libmicrohttpd libcurl jansson yaml-0.1 libarchive libcrypto libnats
# libcurl, libarchive and libmicrohttpd are loaded on first use (src/common/lazylib.h):
# their headers are used, their libraries are not linked.
LINK_PKGS := sqlite3 jansson yaml-0.1 libcrypto libnats

ifneq ($(SANITIZE),)
BUILD ?= build/san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
OPT ?= -O1
else
BUILD ?= build
SANFLAGS :=
OPT ?= -O2
endif

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wwrite-strings -Wvla -Wpointer-arith -fno-common -Werror \
	-Wno-format-nonliteral
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(LINK_PKGS) 2>/dev/null)

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.1.0)
GIT_COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

CFLAGS ?= -g $(OPT)
ALL_CFLAGS = -std=gnu11 $(CFLAGS) $(WARN) $(SANFLAGS) -pthread -Isrc $(PKG_CFLAGS) \
	-D_GNU_SOURCE -DCOD_VERSION='"$(VERSION)"' -DCOD_GIT_COMMIT='"$(GIT_COMMIT)"' -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS) -pthread
LIBS = $(PKG_LIBS) -lm

LIB_SRC := $(sort $(shell find src -name '*.c' ! -name main.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/src/main.o
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%-replay)

.PHONY: all test check unit e2e demo fuzz bench clean deps format

all: $(BUILD)/cod

Q := $(if $(V),,@)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libcod.a: $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/cod: $(MAIN_OBJ) $(BUILD)/libcod.a
	@$(if $(V),,echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libcod.a
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libcod.a $(ALL_LDFLAGS) $(LIBS) \
		$(shell pkg-config --libs cmocka)

# Fuzz targets linked with a replay driver, so `make test` runs their seed
# corpora under the same sanitizers without needing libFuzzer.
$(BUILD)/fuzz/%-replay: tests/fuzz/%.c tests/fuzz/replay_main.c $(BUILD)/libcod.a
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  FUZZ    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< tests/fuzz/replay_main.c $(BUILD)/libcod.a $(ALL_LDFLAGS) $(LIBS)

$(BUILD)/bench/bench_client: bench/bench_client.c $(BUILD)/libcod.a
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  BENCH   $@")
	$(Q)$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -o $@ $< $(BUILD)/libcod.a $(ALL_LDFLAGS) $(LIBS)

deps:
	@scripts/install-deps.sh

# The test command of README.md: everything, under ASan+UBSan.
test: deps
	@$(MAKE) --no-print-directory SANITIZE=address,undefined check

check: $(BUILD)/cod $(UNIT_BIN) $(FUZZ_REPLAY)
	@BUILD=$(BUILD) tests/run.sh

unit: $(UNIT_BIN)
	@BUILD=$(BUILD) ONLY=unit tests/run.sh

e2e: $(BUILD)/cod
	@BUILD=$(BUILD) ONLY=e2e tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

FUZZ_SECONDS ?= 30
fuzz:
	@scripts/fuzz.sh $(FUZZ_SECONDS)

bench: deps
	@$(MAKE) --no-print-directory all build/bench/bench_client
	@bench/run.sh

format:
	clang-format -i $(LIB_SRC) src/main.c $(UNIT_SRC) $(FUZZ_SRC)

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_BIN:=.d) $(FUZZ_REPLAY:=.d)
