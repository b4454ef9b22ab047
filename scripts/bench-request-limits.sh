#!/usr/bin/env bash
# What one hostile request costs the collector's memory: bodies of tiny items or values that are large once decoded
# (empty attributes, span events, links, array and list elements, log records; two bytes of protobuf each), each
# posted once to a fresh release collector with the default configuration. Prints, per body, its size, the answer
# and the collector's peak resident memory (VmHWM). The limits `limits.max_items_per_request` and
# `limits.max_values_per_request` are what keep these peaks near the body's own size.
# Usage: scripts/bench-request-limits.sh [COUNT]   (COUNT empty values per protobuf body, default 30,000,000;
# BIN=<dir holding collector> to measure another build; `make bench-request-limits`)
set -euo pipefail
COUNT=${1:-30000000}
PORT=${PORT:-17318}
BIN=${BIN:-.build/release}
WORK=$(mktemp -d /tmp/audit-bench-limits.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -KILL $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT

# The bodies: protobuf written field by field (a trace request around one span), JSON as text.
python3 - "$WORK" "$COUNT" <<'EOF'
import sys
work, n = sys.argv[1], int(sys.argv[2])
def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)
def ld(field, payload): return varint(field << 3 | 2) + varint(len(payload)) + payload
def span(extra): return ld(1, b'\x01' * 16) + ld(2, b'\x02' * 8) + ld(5, b'x') + extra
def traces(s): return ld(1, ld(2, ld(2, s)))
bodies = {
    'protobuf-attributes': traces(span(b'\x4a\x00' * n)),
    'protobuf-span-events': traces(span(b'\x5a\x00' * n)),
    'protobuf-links': traces(span(b'\x6a\x00' * n)),
    'protobuf-array-elements': traces(span(ld(9, ld(1, b'k') + ld(2, ld(5, b'\x0a\x00' * n))))),
    'protobuf-list-entries': traces(span(ld(9, ld(1, b'k') + ld(2, ld(6, b'\x0a\x00' * n))))),
    'protobuf-resource-attributes': ld(1, ld(1, b'\x0a\x00' * n) + ld(2, ld(2, span(b'')))),
    'protobuf-span-event-attributes': traces(span(ld(11, b'\x1a\x00' * n))),
    'protobuf-empty-log-records': ld(1, ld(2, b'\x12\x00' * n)),
}
for name, body in bodies.items():
    open(f'{work}/{name}.x-protobuf', 'wb').write(body)
j = n * 2 // 3
head = '{"traceId":"01010101010101010101010101010101","spanId":"0202020202020202","name":"x",'
def json_traces(s): return '{"resourceSpans":[{"scopeSpans":[{"spans":[' + s + ']}]}]}'
open(f'{work}/json-attributes.json', 'w').write(json_traces(head + '"attributes":[' + ','.join(['{}'] * j) + ']}'))
open(f'{work}/json-array-elements.json', 'w').write(json_traces(
    head + '"attributes":[{"key":"k","value":{"arrayValue":{"values":[' + ','.join(['{}'] * j) + ']}}}]}'))
line = '{"msec":"1700000000.123","a":[' + ','.join(['0'] * 500000) + ']}\n'
open(f'{work}/ndjson-arrays.x-ndjson', 'w').write(line * max(1, n // 500000))
open(f'{work}/zipkin-tags.json.zipkin', 'w').write(
    '[{"traceId":"0101010101010101","id":"0202020202020202","name":"x","timestamp":1700000000000000,"tags":{'
    + ','.join('"%x":""' % i for i in range(n // 6)) + '}}]')
EOF

printf '%-32s %10s %8s %12s  %s\n' body MB answer "peak MiB" "what it said"
for f in "$WORK"/*.*; do
    name=$(basename "$f"); name=${name%%.*}
    case "$f" in
        *.x-protobuf) path=/v1/traces; type=application/x-protobuf; port=$PORT ;;
        *.x-ndjson) path=/v1/access; type=application/x-ndjson; port=$PORT ;;
        *.zipkin) path=/api/v2/spans; type=application/json; port=$((PORT + 2)) ;;
        *) path=/v1/traces; type=application/json; port=$PORT ;;
    esac
    [[ $name == protobuf-empty-log-records ]] && path=/v1/logs
    rm -rf "$WORK/data"
    "$BIN/collector" serve --data "$WORK/data" --otlp-http 127.0.0.1:$PORT --otlp-grpc 127.0.0.1:$((PORT - 1)) \
        --zipkin 127.0.0.1:$((PORT + 2)) --syslog-udp off --syslog-tcp off --log-level warning > "$WORK/out" 2>&1 &
    pid=$!
    until curl -s -o /dev/null http://127.0.0.1:$PORT/healthz; do kill -0 $pid 2>/dev/null || exit 1; sleep 0.1; done
    code=$(curl -s -m 300 -o "$WORK/answer" -w '%{http_code}' -H "Content-Type: $type" --data-binary @"$f" \
        http://127.0.0.1:$port$path)
    peak=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' /proc/$pid/status)
    kill -TERM $pid; wait $pid 2>/dev/null || true; pid=
    # The answer's text (a google.rpc.Status: protobuf for protobuf bodies), from its first readable word.
    said=$(LC_ALL=C tr -c '[:print:]' ' ' < "$WORK/answer" | sed -E 's/^.*(the request|[0-9]+ rejected|event [0-9]+ of the batch)/\1/' | cut -c1-110)
    mb=$(awk -v b="$(stat -c %s "$f")" 'BEGIN {printf "%.1f", b / 1e6}')
    printf '%-32s %10s %8s %12s  %s\n' "$name" "$mb" "$code" "$peak" "$said"
done
