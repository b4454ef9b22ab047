# The two commands of the README, plus benchmarks. Every target installs what a fresh Debian machine lacks.
SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DATA ?= ./data
APT_PACKAGES := liblz4-dev zlib1g-dev pkg-config openssl curl libcurl4-openssl-dev

.PHONY: deps clients edge browser debugger report-sample objectstore s3-start s3-stop build release run demo test lint format bench bench-check bench-ingest bench-queries bench-tls bench-request-limits soak-crash proto clean fuzz fuzz-smoke fuzz-build

# System libraries the package links (zlib, LZ4) and pkg-config to find them.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing; \
	fi

# Real protocol clients for the tests: the OpenTelemetry Python SDK and its OTLP exporters from PyPI. The JSON
# exporter pins an older common package than the protobuf one, so each gets a virtualenv of its own.
OTEL_SDK := opentelemetry-sdk==1.45.2
clients:
	@python3 -m venv --help >/dev/null 2>&1 || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv)
	@[ -x .venv-otel/bin/python ] && .venv-otel/bin/python -c "import opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.zipkin.json" 2>/dev/null || \
		(python3 -m venv .venv-otel && .venv-otel/bin/pip install -q $(OTEL_SDK) opentelemetry-exporter-otlp-proto-http==1.45.2 \
		opentelemetry-exporter-otlp-proto-grpc==1.45.2 opentelemetry-exporter-zipkin-json==1.45.1)
	@[ -x .venv-otel-json/bin/python ] || (python3 -m venv .venv-otel-json && .venv-otel-json/bin/pip install -q $(OTEL_SDK) opentelemetry-exporter-otlp-json-http==0.66b1)

# The shipped products only: TestSupport (a plain target) imports Testing, which only test builds can see.
build: deps
	swift build --product collector
	swift build --product auditq

# Release builds link the Swift runtime and Foundation statically: every auditq question is a process of its own,
# and the dynamic loader's relocations were half of a light question's CPU (BENCHMARKS.md, "process floor").
# They export no symbols to the dynamic table: SwiftPM exports all of them (42,583 for auditq), and the runtime's
# backtracer calls dladdr at start, which scans that table (10 % of `auditq --version`). PIE stays, for ASLR.
# Every release build here passes the same flags, so they share one build cache.
RELEASE_BUILD := swift build -c release --static-swift-stdlib -Xlinker --no-export-dynamic

release: deps
	$(RELEASE_BUILD) --product collector
	$(RELEASE_BUILD) --product auditq

# The main job: a collector on a local data dir, fed for about a minute with realistic edge + mesh traffic by the
# project's load generator — the requests' spans (sidecars, services, analytics pool) over OTLP/gRPC and the
# nginx edge's access lines over syslog UDP, at the same time, from the same seed, so they join into traces —
# then auditq shows what one user did, with one request's whole trace, and verifies the store. The collector
# stays in the foreground until Ctrl-C (which makes it finish, write and seal).
PORT ?= 4318
GRPC_PORT ?= 4317
SYSLOG_PORT ?= 5514
ZIPKIN_PORT ?= 9411
RUN_REQUESTS ?= 20000
BIN ?= .build/release
run: release
	@$(MAKE) --no-print-directory demo BIN=.build/release

# The part of `make run` after the build (BIN=.build/debug runs it on a debug build).
demo:
	@rm -rf $(DATA) $(DATA).seal.key $(DATA).seal.key.pub
	@$(BIN)/collector keygen --out $(DATA).seal.key >/dev/null
	@$(BIN)/collector serve --data $(DATA) --signing-key $(DATA).seal.key --otlp-http 127.0.0.1:$(PORT) --otlp-grpc 127.0.0.1:$(GRPC_PORT) --zipkin 127.0.0.1:$(ZIPKIN_PORT) \
		--syslog-udp 127.0.0.1:$(SYSLOG_PORT) --syslog-tcp 127.0.0.1:$(SYSLOG_PORT) --segment-bytes 4194304 --log-level warning & \
	pid=$$!; trap 'kill -INT $$pid 2>/dev/null; wait $$pid' INT TERM; \
	until (exec 3<>/dev/tcp/127.0.0.1/$(PORT)) 2>/dev/null; do kill -0 $$pid 2>/dev/null || exit 1; sleep 0.2; done; \
	sleep 0.5; \
	echo "== about a minute of traffic: $(RUN_REQUESTS) synthetic requests, each an nginx access line (syslog UDP) and 3-12 sidecar, service and analytics spans (OTLP/gRPC)"; \
	$(BIN)/collector loadgen --transport grpc --to http://127.0.0.1:$(GRPC_PORT) --requests $(RUN_REQUESTS) --connections 2 --rate 2000 & spans=$$!; \
	$(BIN)/collector loadgen --transport syslog-udp --to udp://127.0.0.1:$(SYSLOG_PORT) --requests $(RUN_REQUESTS) --rate 340 || exit 1; \
	wait $$spans || exit 1; \
	sleep 1; \
	$(BIN)/auditq stats --data $(DATA); \
	user=$$($(BIN)/collector ingest-synthetic --print-heavy-user); \
	echo; echo "== what did $$user do today? (first 15 requests, each with the whole trace it started)"; \
	$(BIN)/auditq activity --data $(DATA) --user $$user --date today --limit 15; \
	trace=$$($(BIN)/auditq search --data $(DATA) --user $$user --date today --limit 1 2>/dev/null | awk 'NR==2 {print $$NF}'); \
	echo; echo "== the whole trace of that user's first request: the edge's access event, every hop, the analytics call"; \
	$(BIN)/auditq trace --data $(DATA) $$trace; \
	echo; echo "== verify the store"; \
	$(BIN)/auditq verify --data $(DATA) --public-key $(DATA).seal.key.pub --require-signatures; \
	echo; echo "The collector is still running (OTLP/HTTP 127.0.0.1:$(PORT), OTLP/gRPC $(GRPC_PORT), syslog $(SYSLOG_PORT)) with data in $(DATA); Ctrl-C stops it (it seals first)."; \
	wait $$pid

# nginx for the end-to-end suite: Debian's nginx-core has auth_request. Installing it must not start a system
# nginx on port 80 (policy-rc.d refuses service starts during the install when no policy is in place).
edge:
	@nginx -V 2>&1 | grep -q http_auth_request_module || { \
		policy=/usr/sbin/policy-rc.d; added=; \
		if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee $$policy >/dev/null && $(SUDO) chmod +x $$policy && added=1; fi; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nginx-core; status=$$?; \
		[ -n "$$added" ] && $(SUDO) rm -f $$policy; exit $$status; }

# Debian's Chromium for the tests that look at report.html as a person would: headless, it renders the page
# to a screenshot and dumps the DOM it built (DejaVu: the page's fallback font, so text renders the same everywhere).
browser:
	@command -v chromium >/dev/null && dpkg -s fonts-dejavu-core >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium fonts-dejavu-core; }

# The sample report.html screenshot of the README (docs/images/report-html.png), from a debug build.
report-sample: browser
	swift build --product collector
	swift build --product auditq
	scripts/report-sample.sh .build/debug docs/images/report-html.png

# The object-store tests' S3: Debian's Ceph (mon, OSD, radosgw), run on loopback by scripts/ceph-rgw.sh.
CEPH_PACKAGES := radosgw ceph-mon ceph-osd
CEPH_RGW_DIR ?= /tmp/audit-trail-rgw
export CEPH_RGW_DIR
objectstore:
	@missing=$$(for p in $(CEPH_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Every test: build everything (the crash test runs the SegmentCrashWriter executable), then run the suite
# (the end-to-end suite runs nginx, the example services and the built collector and auditq; the report tests
# run Chromium). An RGW is started for the run unless one already runs in CEPH_RGW_DIR, and stopped after it (by
# pid) if this run started it; its endpoint and keys reach the tests as AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY, AWS_REGION.
#
# The suite runs under scripts/test-watchdog.py: a test that hangs would otherwise run into CI's limit and leave no
# trace (`swift test` passes output on in 4 KiB blocks, so CI's tail lags). It follows the test process's event
# stream; after TEST_SILENCE seconds in which no test starts or ends, TEST_LIMIT seconds in all, or 120 s between the
# run's end and its processes' exit, it prints the tests still running and every thread's stack (gdb), and fails.
TEST_SILENCE ?= 600
TEST_LIMIT ?= 2400
test: deps clients edge browser objectstore debugger
	swift build --build-tests
	@started=; if ! scripts/ceph-rgw.sh status; then scripts/ceph-rgw.sh start || exit 1; started=1; fi; \
	trap '[ -n "$$started" ] && scripts/ceph-rgw.sh stop' EXIT; \
	set -a; . $(CEPH_RGW_DIR)/s3.env; set +a; \
	scripts/test-watchdog.py --silence $(TEST_SILENCE) --limit $(TEST_LIMIT) --report .build/test-watchdog.txt \
		--events .build/test-events.jsonl -- swift test --skip-build \
		--experimental-event-stream-output .build/test-events.jsonl --experimental-event-stream-version 0

# gdb, for the watchdog's stacks of a hung test run.
debugger:
	@command -v gdb >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq gdb)

# A store to try things on by hand (make s3-start; set -a; . $(CEPH_RGW_DIR)/s3.env; set +a; ...; make s3-stop).
s3-start: objectstore
	scripts/ceph-rgw.sh start
s3-stop:
	scripts/ceph-rgw.sh stop

# Formatting: swift-format (it ships with the toolchain) with the committed .swift-format (4 spaces, 120 columns).
# Generated protobuf code is left as protoc writes it. `lint` fails on any finding; CI runs it before the tests.
FORMAT_PATHS := Package.swift Benchmarks/Package.swift $(shell git ls-files 'Sources/*.swift' 'Tests/*.swift' 'Benchmarks/*.swift' | grep -v '/Generated/')
lint:
	@echo "swift format lint: $(words $(FORMAT_PATHS)) files"
	@swift format lint --strict --parallel $(FORMAT_PATHS)

format:
	@swift format format --in-place --parallel $(FORMAT_PATHS)

# Fuzzing: one libFuzzer binary (AddressSanitizer on) whose target is picked by FUZZ_TARGET, built in a scratch path
# of its own. It links only the parsers (CollectorParsers, LogFormat, OTLP), not the server stack. `fuzz` is the
# long campaign (FUZZ_SECONDS per target); `fuzz-smoke` the bounded run CI makes. Crashes fail the target; keep
# each crashing input in Tests/Fuzz/regressions/<target>/ (the test suite replays them).
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_TARGETS := otlp-proto otlp-json zipkin access-ndjson syslog jwt segment
fuzz-build: deps
	swift build --scratch-path .build-fuzzer -c debug --product AuditFuzz \
		-Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -DFUZZING

fuzz: fuzz-build
	scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	scripts/fuzz.sh $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

# End-to-end ingest load: a release collector (fsync interval) fed by `collector loadgen` on the same machine,
# as fast as acknowledged and then at half that rate; prints events/s, spans/s, ack latency and peak RSS.
# Run alone on a quiet machine. BENCH_REQUESTS synthetic requests (about 6.6 events each).
BENCH_REQUESTS ?= 300000
bench-ingest: deps
	$(RELEASE_BUILD) --product collector
	$(RELEASE_BUILD) --product auditq
	scripts/bench-ingest.sh $(BENCH_REQUESTS) 8

# Issue 14's questions as whole auditq processes on the 10M-event set (made once in $(BENCH_QUERIES_DATA), about
# 4 minutes): the process floor, a trace, a light and a heavy user's day and activity; wall and CPU from hyperfine.
# Compare builds with scripts/bench-queries.sh OLD/auditq NEW/auditq. Run alone on a quiet machine.
BENCH_QUERIES_DATA ?= /tmp/audit-bench-10m
bench-queries: deps
	@command -v hyperfine >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq hyperfine)
	$(RELEASE_BUILD) --product collector
	$(RELEASE_BUILD) --product auditq
	DATA=$(BENCH_QUERIES_DATA) scripts/bench-queries.sh .build/release/auditq

# What TLS costs: OTLP/gRPC ingest in plain text and over TLS, same traffic, release build. Run alone.
bench-tls: deps
	$(RELEASE_BUILD) --product collector
	scripts/bench-tls.sh $(BENCH_TLS_REQUESTS) 8
BENCH_TLS_REQUESTS ?= 100000

# What one hostile request costs the collector's memory (bodies of empty values and items, about 60 MB each, one
# fresh release collector per body): answer and peak RSS per body. About a minute; run alone.
bench-request-limits: deps
	$(RELEASE_BUILD) --product collector
	scripts/bench-request-limits.sh

# Crash soak (not in CI): SOAK_KILLS SIGKILLs of a debug collector under the OpenTelemetry Python SDK's traffic
# over OTLP/HTTP and OTLP/gRPC and nginx lines over syslog TCP, restarting it each time; then every span an
# exporter saw acknowledged must be stored, none twice after the duplicate pass, and verify clean. A few minutes.
SOAK_KILLS ?= 50
soak-crash: deps clients
	swift build --product collector
	swift build --product auditq
	scripts/soak-crash.sh .build/debug $(SOAK_KILLS)

# Micro-benchmarks (ordo-one/benchmark) on the realistic traffic; run alone on a quiet machine.
bench: deps
	cd Benchmarks && swift package --allow-writing-to-package-directory benchmark

# The committed allocation counts (Benchmarks/Thresholds/, mallocs only): fails when a stage allocates more per event.
# After a change that lowers them: cd Benchmarks && swift package --allow-writing-to-package-directory benchmark
# thresholds update --target <Target>, and commit the files.
bench-check: deps
	cd Benchmarks && swift package benchmark thresholds check --target IngestBenchmarks --target NormalizerBenchmarks

# Regenerates the committed OTLP code from Sources/Collector/OTLPProto/protos (needs protoc; never run by CI).
proto: deps
	@command -v protoc >/dev/null || $(SUDO) apt-get install -y -qq protobuf-compiler
	swift build -c release --product protoc-gen-swift --scratch-path .build-protoc
	swift build -c release --product protoc-gen-grpc-swift-2 --scratch-path .build-protoc
	PROTOC_GEN_SWIFT=$(CURDIR)/.build-protoc/release/protoc-gen-swift Sources/Collector/OTLPProto/regenerate.sh
	PROTOC_GEN_GRPC_SWIFT=$(CURDIR)/.build-protoc/release/protoc-gen-grpc-swift-2 Sources/Collector/OTLPGRPC/regenerate.sh

clean:
	rm -rf .build .build-fuzzer .fuzz Benchmarks/.build $(DATA)
