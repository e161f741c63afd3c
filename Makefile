# codeframe-guard build. `make` builds both binaries; `make test` builds and
# runs every test; `make SANITIZE=address,undefined test` does the same under
# ASan+UBSan in a separate build folder.
CC      ?= cc
SHARED  ?= ../shared
ifeq ($(SANITIZE),)
BUILD   ?= build
OPT     ?= -O2 -g -D_FORTIFY_SOURCE=3
else
BUILD   ?= build/san
# FORTIFY and ASan intercept the same functions; ASan's checks are stricter.
OPT     ?= -O1 -g -fno-omit-frame-pointer -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
endif

WARN    := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wvla -Wconversion -Wno-sign-conversion -Werror
HARDEN  := -fstack-protector-strong -fstack-clash-protection -fPIE
CFLAGS  += $(WARN) $(HARDEN) $(OPT) -Icommon -Iwebhook -Inodeagent -MMD -MP
LDFLAGS += -pie -Wl,-z,relro,-z,now $(if $(SANITIZE),-fsanitize=$(SANITIZE))
LIBS    := -lmicrohttpd -lgnutls -lcurl -lssl -lcrypto -lcjson -lyaml -lseccomp -lpthread -lm

COMMON_SRC := $(wildcard common/*.c)
WH_SRC     := $(filter-out webhook/wh_main.c,$(wildcard webhook/*.c))
NA_SRC     := $(filter-out nodeagent/na_main.c,$(wildcard nodeagent/*.c))
TEST_SUPPORT_SRC := $(wildcard tests/support/*.c)
TEST_SRC   := $(wildcard tests/test_*.c)
BENCH_SRC  := $(wildcard bench/bench_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

BINS := $(BUILD)/codeframe-webhook
ifneq ($(wildcard nodeagent/na_main.c),)
BINS += $(BUILD)/codeframe-agent
endif
TESTS   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all test tests conformance bench lint format deps demo clean manifests e2e images
all: $(BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libcf.a: $(call obj,$(COMMON_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libwh.a: $(call obj,$(WH_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libna.a: $(call obj,$(NA_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libtestsupport.a: $(call obj,$(TEST_SUPPORT_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/codeframe-webhook: $(call obj,webhook/wh_main.c) $(BUILD)/libwh.a $(BUILD)/libcf.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
$(BUILD)/codeframe-agent: $(call obj,nodeagent/na_main.c) $(BUILD)/libna.a $(BUILD)/libcf.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

LIBSET := $(BUILD)/libtestsupport.a $(BUILD)/libwh.a $(BUILD)/libna.a $(BUILD)/libcf.a
$(BUILD)/tests/%: $(call obj,tests/%.c) $(LIBSET)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lcriterion
$(BUILD)/bench/%: $(call obj,bench/%.c) $(LIBSET)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

tests: $(BINS) $(TESTS)

# Every Criterion binary and every tests/*.sh script; a summary line at the end.
test: deps-check tests
	SHARED=$(SHARED) BUILD=$(BUILD) SANITIZE=$(SANITIZE) scripts/run-tests.sh $(TESTS) $(wildcard tests/test_*.sh)

conformance: $(BUILD)/codeframe-webhook
	scripts/conformance.sh $(BUILD)/codeframe-webhook $(SHARED)/corpus/psa

bench: $(BINS) $(BENCHES)
	BUILD=$(BUILD) scripts/bench.sh $(BENCHES)

lint:
	scripts/lint.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

deps:
	scripts/deps.sh

# Fails with a hint instead of a wall of missing-header errors.
deps-check:
	@scripts/deps.sh --check || { echo "missing packages: run 'make deps' (as root)"; exit 2; }

demo: deps all
	scripts/demo.sh $(BUILD)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Flat manifests/*.yaml rendered from charts/codeframe-guard (default values);
# tests/test_chart.sh fails when they are out of date.
manifests:
	scripts/render-manifests.sh manifests

# Container images with docker or podman; fails (exit 1) when no engine is
# reachable, so a pipeline never mistakes "nothing built" for success.
images:
	scripts/images.sh

# End-to-end against a real control plane built from Go source (tests/e2e,
# docs/testing.md). The first run builds kube-apiserver & co. (slow, cached in
# build/e2e); `e2e` always tears the cluster down.
.PHONY: e2e-build e2e-cluster-up e2e-cluster-down
e2e-build:
	scripts/e2e-build.sh
e2e-cluster-up:
	scripts/e2e-cluster.sh up
e2e-cluster-down:
	scripts/e2e-cluster.sh down
e2e: $(BUILD)/codeframe-webhook
	BUILD=$(BUILD) scripts/e2e-test.sh
