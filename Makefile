# idemcache: `make` builds build/idemcache; `make deps` installs the Debian
# and npm packages it needs; `make test` and `make run` call deps first, then
# run every suite (unit, ASan+UBSan, integration, fuzz) or the demo.
JOBS        ?= 2
PORT        ?= 8080
ORIGIN_PORT ?= 9000
FUZZ_SECONDS ?= 15
FUZZ_LONG   ?= 600
FUZZERS     := fuzz_request_head fuzz_response_head fuzz_chunked fuzz_body_key fuzz_connect \
               fuzz_peer fuzz_cache_key fuzz_cache_head fuzz_netaddr fuzz_sf fuzz_range \
               fuzz_h2_request fuzz_h2_session
STAMP       := build/.configured
CMAKE_Q     := cmake -Wno-dev --log-level=WARNING
# A failed compile must fail the target: bash with pipefail, so the filter
# that hides make's progress lines does not hide make's exit status.
SHELL       := /bin/bash
.SHELLFLAGS := -o pipefail -c
# One stuck test cannot hold the run: each test has a deadline, and a test
# file's process exits when its tests end even if something is left open.
NODE_TEST   := node --test --test-concurrency=1 --test-timeout=180000 --test-force-exit

.PHONY: all deps build asan fuzz-build test unit unit-asan integration integration-asan \
        fuzz-smoke fuzz mutants run bench format clean

all: build

deps:
	@scripts/deps.sh

build:
	@$(CMAKE_Q) -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	@$(MAKE) -s -C build -j$(JOBS) 2>&1 | { grep -v "^\[" || true; }
	@test -x build/idemcache

asan:
	@CC=clang $(CMAKE_Q) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DIDEM_SANITIZE=ON >/dev/null
	@$(MAKE) -s -C build-asan -j$(JOBS) 2>&1 | { grep -v "^\[" || true; }
	@test -x build-asan/idemcache

fuzz-build:
	@CC=clang $(CMAKE_Q) -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DIDEM_SANITIZE=ON -DIDEM_FUZZ=ON >/dev/null
	@$(MAKE) -s -C build-fuzz -j$(JOBS) $(FUZZERS) 2>&1 | { grep -v "^\[" || true; }

unit: deps build
	@echo "== unit tests (release)"
	@cd build && ctest --output-on-failure --no-tests=error

unit-asan: deps asan
	@echo "== unit tests (ASan+UBSan)"
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure --no-tests=error

integration: deps build
	@echo "== integration tests (release)"
	@IDEMCACHE_BIN=$(CURDIR)/build/idemcache $(NODE_TEST) tests/integration/*.test.mjs

integration-asan: deps asan
	@echo "== integration tests (ASan+UBSan)"
	@IDEMCACHE_BIN=$(CURDIR)/build-asan/idemcache IDEMCACHE_SANITIZED=1 \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(NODE_TEST) tests/integration/*.test.mjs

# Each fuzzer runs briefly over the committed corpus; new inputs go to a
# scratch directory so the committed corpus only changes on purpose.
fuzz-smoke: deps fuzz-build
	@echo "== fuzz smoke ($(FUZZ_SECONDS)s per target)"
	@set -e; for f in $(FUZZERS); do \
	  d=$$(mktemp -d); \
	  build-fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -dict=tests/fuzz/http.dict -print_final_stats=1 \
	    -artifact_prefix=$$d/ $$d tests/fuzz/corpus/$$f 2>$$d/log || { cat $$d/log | tail -40; exit 1; }; \
	  echo "$$f: $$(grep -o 'stat::number_of_executed_units: *[0-9]*' $$d/log | grep -o '[0-9]*$$') executions, no crash"; \
	  rm -rf $$d; \
	done

fuzz: deps fuzz-build
	@for f in $(FUZZERS); do \
	  build-fuzz/$$f -max_total_time=$(FUZZ_LONG) -dict=tests/fuzz/http.dict \
	    -artifact_prefix=tests/fuzz/corpus/$$f/ tests/fuzz/corpus/$$f; \
	done

test: unit unit-asan integration integration-asan fuzz-smoke
	@echo "== all suites passed"

# Planted bugs from tests/mutants.json, one at a time: each must be caught.
# Not part of `make test` (one rebuild and suite run per mutant).
mutants: build
	@node scripts/mutants.mjs $(MUTANTS)

# PORT (8080) for idemcache, ORIGIN_PORT (9000) for the demo Connect service.
run: deps build
	@PORT=$(PORT) ORIGIN_PORT=$(ORIGIN_PORT) node examples/run.mjs

bench: deps build
	@scripts/deps.sh --bench
	@bench/run.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz
