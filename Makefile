# The two commands of the README, plus benchmarks. Every target installs what a fresh Debian machine lacks.
SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DATA ?= ./data
APT_PACKAGES := liblz4-dev zlib1g-dev pkg-config

.PHONY: deps clients build release run test bench bench-ingest proto clean fuzz fuzz-smoke fuzz-build

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

build: deps
	swift build

release: deps
	swift build -c release

# The main job: a collector on a local data dir, fed with realistic edge + mesh traffic over OTLP/HTTP and
# NDJSON by the project's load generator, queried by auditq; then the collector stays in the foreground until
# Ctrl-C (which makes it finish, write and seal).
PORT ?= 4318
run: release
	@rm -rf $(DATA)
	@.build/release/collector serve --data $(DATA) --otlp-http 127.0.0.1:$(PORT) --segment-bytes 33554432 --log-level warning & \
	pid=$$!; trap 'kill -INT $$pid 2>/dev/null; wait $$pid' INT TERM; \
	until (exec 3<>/dev/tcp/127.0.0.1/$(PORT)) 2>/dev/null; do kill -0 $$pid 2>/dev/null || exit 1; sleep 0.2; done; \
	echo "== sending 100,000 synthetic requests (an nginx access event and 3-12 spans each) to the collector"; \
	.build/release/collector loadgen --to http://127.0.0.1:$(PORT) --requests 100000 --connections 4 || exit 1; \
	.build/release/auditq stats --data $(DATA); \
	user=$$(.build/release/collector ingest-synthetic --print-heavy-user); \
	echo; echo "== what did $$user do today? (first 15 requests, each with the whole trace it started)"; \
	.build/release/auditq activity --data $(DATA) --user $$user --date today --limit 15; \
	trace=$$(.build/release/auditq search --data $(DATA) --user $$user --date today --limit 1 2>/dev/null | awk 'NR==2 {print $$NF}'); \
	echo; echo "== the whole trace of that user's first request"; \
	.build/release/auditq trace --data $(DATA) $$trace; \
	echo; echo "== verify the store"; \
	.build/release/auditq verify --data $(DATA); \
	echo; echo "The collector is still running on 127.0.0.1:$(PORT) with data in $(DATA); Ctrl-C stops it (it seals first)."; \
	wait $$pid

# Every test: build everything (the crash test runs the SegmentCrashWriter executable), then run the suite.
test: deps clients
	swift build --build-tests
	swift test --skip-build

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
	swift build -c release --product collector
	swift build -c release --product auditq
	scripts/bench-ingest.sh $(BENCH_REQUESTS) 8

# Micro-benchmarks (ordo-one/benchmark) on the realistic traffic; run alone on a quiet machine.
bench: deps
	cd Benchmarks && swift package --allow-writing-to-package-directory benchmark

# Regenerates the committed OTLP code from Sources/Collector/OTLPProto/protos (needs protoc; never run by CI).
proto: deps
	@command -v protoc >/dev/null || $(SUDO) apt-get install -y -qq protobuf-compiler
	swift build -c release --product protoc-gen-swift --scratch-path .build-protoc
	swift build -c release --product protoc-gen-grpc-swift-2 --scratch-path .build-protoc
	PROTOC_GEN_SWIFT=$(CURDIR)/.build-protoc/release/protoc-gen-swift Sources/Collector/OTLPProto/regenerate.sh
	PROTOC_GEN_GRPC_SWIFT=$(CURDIR)/.build-protoc/release/protoc-gen-grpc-swift-2 Sources/Collector/OTLPGRPC/regenerate.sh

clean:
	rm -rf .build .build-fuzzer .fuzz Benchmarks/.build $(DATA)
