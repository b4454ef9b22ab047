#!/usr/bin/env bash
# Adds the real OpenTelemetry Python SDK exporters' request bodies to the fuzz seed corpus: OTLP/HTTP protobuf
# and JSON (traces, logs) and Zipkin JSON, as sent to a recording server. Needs `make clients`.
set -euo pipefail
out=$(mktemp -d)
python3 Tests/clients/capture_server.py "$out" >"$out/port" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$out"' EXIT
until [ -s "$out/port" ]; do sleep 0.1; done
base=http://127.0.0.1:$(cat "$out/port")
rm "$out/port"
(cd Tests/clients && ../../.venv-otel/bin/python otel_export.py "$base" protobuf >/dev/null)
(cd Tests/clients && ../../.venv-otel-json/bin/python otel_export.py "$base" json >/dev/null)
(cd Tests/clients && ../../.venv-otel/bin/python zipkin_export.py "$base" >/dev/null)
cp "$out"/python-sdk-*.pb Tests/Fuzz/corpus/otlp-proto/
cp "$out"/python-sdk-traces-*.json "$out"/python-sdk-logs-*.json Tests/Fuzz/corpus/otlp-json/
cp "$out"/python-sdk-zipkin-*.json Tests/Fuzz/corpus/zipkin/
ls "$out"
