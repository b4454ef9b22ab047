#!/usr/bin/env bash
# End-to-end ingest benchmark: a release collector (fsync policy interval) on a fresh data dir, fed by the
# project's load generator on the same machine over loopback. Runs:
#   1. OTLP/HTTP + NDJSON as fast as acknowledged -> sustained events/s and spans/s, collector peak RSS;
#   2. the same at half the rate reached          -> acknowledgement latency percentiles;
#   3. OTLP/gRPC spans as fast as acknowledged    -> spans/s;
#   4. syslog over UDP at SYSLOG_RATE lines/s     -> lines accepted, dropped by the collector and by the kernel;
#   5. with JSON=1 only: OTLP/HTTP JSON spans, then Zipkin v2 JSON spans, as fast as acknowledged -> spans/s;
#   6. nginx access lines only, as NDJSON posts of ACCESS_POST lines, as fast as acknowledged -> lines/s.
# Usage: scripts/bench-ingest.sh [REQUESTS] [CONNECTIONS]   (run alone on a quiet machine; `make bench-ingest`)
# PHASES=5 runs only the JSON phases (with JSON=1), e.g. JSON=1 PHASES=5 scripts/bench-ingest.sh 20000 8.
set -euo pipefail
REQUESTS=${1:-300000}
CONNECTIONS=${2:-8}
SYSLOG_RATE=${SYSLOG_RATE:-100000}
PORT=${PORT:-14318}
GRPC_PORT=$((PORT - 1))
SYSLOG_PORT=$((PORT + 1))
ZIPKIN_PORT=$((PORT + 2))
JSON=${JSON:-0}
PHASES=${PHASES:-123456}
ACCESS_POST=${ACCESS_POST:-500}
ZIPKIN=off
[ "$JSON" = 1 ] && ZIPKIN=127.0.0.1:$ZIPKIN_PORT
BIN=${BIN:-.build/release}
# Another collector on these ports (a second run of this script) would answer the readiness probe below and take
# this run's load: refuse to start instead (PORT=… picks other ports).
for p in $PORT $GRPC_PORT; do
    if (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "port $p is in use: set PORT to another" >&2; exit 1; fi
done
DATA=$(mktemp -d /tmp/audit-bench-ingest.XXXXXX)
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$DATA" "$DATA".*' EXIT

$BIN/collector serve --data "$DATA" --otlp-http 127.0.0.1:$PORT --otlp-grpc 127.0.0.1:$GRPC_PORT \
    --syslog-udp 127.0.0.1:$SYSLOG_PORT --syslog-tcp off --zipkin "$ZIPKIN" --fsync interval --log-level warning > "$DATA.out" &
pid=$!
until (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; do kill -0 $pid 2>/dev/null || exit 1; sleep 0.1; done
metric() { curl -s http://127.0.0.1:$PORT/metrics | awk -v k="$1" '$1 == k {print $2}'; }
# CPU of the collector (user + system, /proc/<pid>/stat) and of the load generator (/usr/bin/time) per phase, as
# the targets are per event of collector CPU with the load generator on the same two cores.
TICKS=$(getconf CLK_TCK)
collector_cpu() { awk '{print $14 + $15}' /proc/$pid/stat; }
cpu_before=0
phase_start() { cpu_before=$(collector_cpu); }
# phase_end EVENTS: prints the collector's CPU per event and the load generator's CPU (from $DATA.time).
phase_end() {
    local ticks=$(( $(collector_cpu) - cpu_before ))
    local gen=$(awk '{print $1 + $2}' "$DATA.time")
    awk -v t=$ticks -v hz=$TICKS -v n="$1" -v g="$gen" 'BEGIN {
        printf "collector CPU %.1f s = %.2f us/event over %d events; load generator CPU %.1f s\n", t/hz, 1e6*t/hz/n, n, g }'
    # Memory per phase, to tell which one raises the peak.
    awk '/VmRSS|VmHWM/ {printf "%s %d MiB  ", $1, $2 / 1024} END {print ""}' /proc/$pid/status
}
loadgen() { /usr/bin/time -f "%U %S" -o "$DATA.time" $BIN/collector loadgen "$@"; }
events_of() { echo "$1" | sed -n 's/^\([0-9]*\) events.*/\1/p'; }

# Peak resident memory of the collector, sampled every 100 ms (VmHWM is read at the end too).
peak_file=$DATA.rss; echo 0 > "$peak_file"
( peak=0; while kill -0 $pid 2>/dev/null; do
    rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss && echo $peak > "$peak_file"
    sleep 0.1; done ) &
sampler=$!

if [[ $PHASES == *1* ]]; then
echo "== 1. OTLP/HTTP + NDJSON, full rate: $REQUESTS synthetic requests over $CONNECTIONS connections"
phase_start
full=$(loadgen --to http://127.0.0.1:$PORT --requests "$REQUESTS" --connections "$CONNECTIONS" --seed 1)
echo "$full"
phase_end "$(events_of "$full")"
rate=$(echo "$full" | sed -n 's/.*: \([0-9]*\) events\/s.*/\1/p')
echo "collector peak RSS so far: $(( $(cat "$peak_file") / 1024 )) MiB"
fi

if [[ $PHASES == *2* ]]; then
half=$(( rate / 2 ))
echo "== 2. OTLP/HTTP + NDJSON at half that rate: $half events/s"
phase_start
halfout=$(loadgen --to http://127.0.0.1:$PORT --requests $(( REQUESTS / 2 )) --connections "$CONNECTIONS" --rate "$half" --seed 2)
echo "$halfout"
phase_end "$(events_of "$halfout")"
fi

if [[ $PHASES == *3* ]]; then
echo "== 3. OTLP/gRPC spans, full rate"
phase_start
grpc=$(loadgen --to http://127.0.0.1:$GRPC_PORT --transport grpc --requests "$REQUESTS" --connections "$CONNECTIONS" --seed 3)
echo "$grpc"
phase_end "$(events_of "$grpc")"
fi

if [[ $PHASES == *4* ]]; then
echo "== 4. syslog over UDP at $SYSLOG_RATE lines/s (nginx-framed access lines)"
before=$(metric 'audit_collector_accepted_items_total{receiver="syslog_udp"}')
phase_start
sent=$(loadgen --to udp://127.0.0.1:$SYSLOG_PORT --transport syslog-udp --requests $(( REQUESTS * 2 )) \
    --connections 2 --rate "$SYSLOG_RATE" --seed 4)
echo "$sent"
sleep 2
phase_end "$(events_of "$sent")"
lines=$(echo "$sent" | sed -n 's/^\([0-9]*\) events.*/\1/p')
after=$(metric 'audit_collector_accepted_items_total{receiver="syslog_udp"}')
dropped=$(metric 'audit_collector_rejected_items_total{receiver="syslog_udp",reason="queue_full"}')
kernel=$(metric 'audit_collector_syslog_udp_kernel_drops')
accepted=$(( ${after%.*} - ${before%.*} ))
echo "syslog: sent $lines, stored $accepted ($(awk -v a=$accepted -v s=$lines 'BEGIN {printf "%.2f", 100 * (s - a) / s}')% lost); dropped by the collector ${dropped:-0}, by the kernel ${kernel:-0}"
fi

if [ "$JSON" = 1 ] && [[ $PHASES == *5* ]]; then
    echo "== 5a. OTLP/HTTP JSON spans, full rate"
    phase_start
    otlpjson=$(loadgen --to http://127.0.0.1:$PORT --transport otlp-json --requests "$REQUESTS" --connections "$CONNECTIONS" --seed 5)
    echo "$otlpjson"
    phase_end "$(events_of "$otlpjson")"
    echo "== 5b. Zipkin v2 JSON spans, full rate"
    phase_start
    zipkin=$(loadgen --to http://127.0.0.1:$ZIPKIN_PORT --transport zipkin --requests "$REQUESTS" --connections "$CONNECTIONS" --seed 6)
    echo "$zipkin"
    phase_end "$(events_of "$zipkin")"
fi

if [[ $PHASES == *6* ]]; then
    echo "== 6. nginx access lines only as NDJSON ($ACCESS_POST lines a post), full rate"
    phase_start
    ndjson=$(loadgen --to http://127.0.0.1:$PORT --transport access-ndjson --requests "$REQUESTS" \
        --requests-per-post "$ACCESS_POST" --connections "$CONNECTIONS" --seed 7)
    echo "$ndjson"
    phase_end "$(events_of "$ndjson")"
fi

hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
echo "== collector peak RSS: $(( $(cat "$peak_file") / 1024 )) MiB sampled, VmHWM $(( hwm / 1024 )) MiB"
kill -TERM $pid; wait $pid || true
kill $sampler 2>/dev/null || true
echo "== stored: $($BIN/auditq stats --data "$DATA" | head -3 | tr '\n' ' ')"
