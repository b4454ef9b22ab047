#!/usr/bin/env bash
# End-to-end ingest benchmark: a release collector (fsync policy interval) on a fresh data dir, fed by the
# project's load generator on the same machine over loopback HTTP. Two runs:
#   1. as fast as acknowledged  -> sustained events/s and spans/s, collector peak RSS;
#   2. at half the rate reached -> acknowledgement latency percentiles.
# Usage: scripts/bench-ingest.sh [REQUESTS] [CONNECTIONS]   (run alone on a quiet machine; `make bench-ingest`)
set -euo pipefail
REQUESTS=${1:-300000}
CONNECTIONS=${2:-8}
PORT=${PORT:-14318}
BIN=.build/release
DATA=$(mktemp -d /tmp/audit-bench-ingest.XXXXXX)
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$DATA"' EXIT

$BIN/collector serve --data "$DATA" --otlp-http 127.0.0.1:$PORT --fsync interval --log-level warning > "$DATA.out" &
pid=$!
until (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; do kill -0 $pid 2>/dev/null || exit 1; sleep 0.1; done

# Peak resident memory of the collector, sampled every 100 ms (VmHWM is read at the end too).
peak_file=$DATA.rss; echo 0 > "$peak_file"
( peak=0; while kill -0 $pid 2>/dev/null; do
    rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss && echo $peak > "$peak_file"
    sleep 0.1; done ) &
sampler=$!

echo "== full rate: $REQUESTS synthetic requests over $CONNECTIONS connections"
full=$($BIN/collector loadgen --to http://127.0.0.1:$PORT --requests "$REQUESTS" --connections "$CONNECTIONS" --seed 1)
echo "$full"
rate=$(echo "$full" | sed -n 's/.*: \([0-9]*\) events\/s.*/\1/p')
hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
echo "collector peak RSS: $(( $(cat "$peak_file") / 1024 )) MiB sampled, VmHWM $(( hwm / 1024 )) MiB"

half=$(( rate / 2 ))
echo "== half rate: $half events/s"
$BIN/collector loadgen --to http://127.0.0.1:$PORT --requests $(( REQUESTS / 2 )) --connections "$CONNECTIONS" --rate "$half" --seed 2

kill -TERM $pid; wait $pid || true
kill $sampler 2>/dev/null || true
echo "== stored: $($BIN/auditq stats --data "$DATA" | head -3 | tr '\n' ' ')"
