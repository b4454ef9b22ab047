#!/bin/bash
# make soak-crash: KILLS SIGKILLs of a real collector under real traffic, restarting it each time, then the
# count. Traffic: the OpenTelemetry Python SDK exporting spans over OTLP/HTTP and over OTLP/gRPC (batch
# processor, the exporters' own retries) and nginx access lines over syslog TCP. Each exporter writes down every
# span of every batch the collector acknowledged. At the end every acknowledged span must be stored, none twice
# after auditq's query-time duplicate pass, and `auditq verify` must pass.
#
# usage: scripts/soak-crash.sh BIN KILLS   (BIN holds collector and auditq; .venv-otel from `make clients`)
# Ports: SOAK_PORT_HTTP (24318), SOAK_PORT_GRPC (24317), SOAK_PORT_SYSLOG (25514), on 127.0.0.1.
# Between kills the collector runs 1 to 3 s (SOAK_MIN_MS, SOAK_MAX_MS).
set -uo pipefail
BIN=${1:-.build/debug}
KILLS=${2:-50}
HP=${SOAK_PORT_HTTP:-24318}
GP=${SOAK_PORT_GRPC:-24317}
SP=${SOAK_PORT_SYSLOG:-25514}
MIN_MS=${SOAK_MIN_MS:-1000}
MAX_MS=${SOAK_MAX_MS:-3000}
PY=.venv-otel/bin/python
CLIENT=Tests/clients/soak_export.py
work=$(mktemp -d "${TMPDIR:-/tmp}/soak-crash.XXXXXX")
data=$work/data
cpid=
clients=()

cleanup() {
    for p in "${clients[@]}"; do kill -TERM "$p" 2>/dev/null; done
    [ -n "$cpid" ] && kill -KILL "$cpid" 2>/dev/null
    true
}
trap cleanup EXIT

start_collector() {
    "$BIN/collector" serve --data "$data" --otlp-http 127.0.0.1:$HP --otlp-grpc 127.0.0.1:$GP --zipkin off \
        --syslog-udp off --syslog-tcp 127.0.0.1:$SP --fsync interval --fsync-interval-ms 20 \
        --segment-bytes 1048576 --log-level warning >>"$work/collector.out" 2>>"$work/collector.err" &
    cpid=$!
    local tries=0
    until (exec 3<>/dev/tcp/127.0.0.1/$HP) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/$GP) 2>/dev/null \
        && (exec 3<>/dev/tcp/127.0.0.1/$SP) 2>/dev/null; do
        if ! kill -0 "$cpid" 2>/dev/null; then
            echo "soak-crash: the collector did not start; see $work/collector.err" >&2
            tail -5 "$work/collector.err" >&2
            exit 1
        fi
        tries=$((tries + 1))
        [ $tries -gt 600 ] && { echo "soak-crash: the collector did not listen within 60 s" >&2; exit 1; }
        sleep 0.1
    done
}

for f in "$BIN/collector" "$BIN/auditq" "$PY"; do
    [ -x "$f" ] || { echo "soak-crash: $f is missing (make build clients)" >&2; exit 1; }
done
began=$(date +%s.%N)
start_collector
$PY $CLIENT spans http http://127.0.0.1:$HP "$work/acked-http" --rate 400 >"$work/client-http.json" \
    2>"$work/client-http.err" &
clients+=($!)
$PY $CLIENT spans grpc http://127.0.0.1:$GP "$work/acked-grpc" --rate 400 >"$work/client-grpc.json" \
    2>"$work/client-grpc.err" &
clients+=($!)
$PY $CLIENT syslog 127.0.0.1 $SP --rate 200 >"$work/client-syslog.json" 2>"$work/client-syslog.err" &
clients+=($!)

kills=0
while [ $kills -lt "$KILLS" ]; do
    ms=$((MIN_MS + RANDOM % (MAX_MS - MIN_MS + 1)))
    sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
    kill -KILL "$cpid"
    wait "$cpid" 2>/dev/null
    status=$?
    if [ $status -ne $((128 + 9)) ]; then
        echo "soak-crash: the collector exited with $status before kill $((kills + 1))" >&2
        exit 1
    fi
    kills=$((kills + 1))
    start_collector
    printf '\rkills: %d/%d' $kills "$KILLS"
done
echo
# The exporters catch up with the last restart, then flush what they hold and stop; the collector seals.
sleep 5
for p in "${clients[@]}"; do kill -TERM "$p"; done
for p in "${clients[@]}"; do wait "$p"; done
clients=()
kill -TERM "$cpid"
wait "$cpid"
cpid=
ended=$(date +%s.%N)

"$BIN/auditq" verify --data "$data" >"$work/verify.txt" 2>&1
verified=$?
"$BIN/auditq" search --data "$data" --format json >"$work/stored.ndjson" 2>"$work/search.err" \
    || { echo "soak-crash: auditq search failed" >&2; cat "$work/search.err" >&2; exit 1; }

python3 - "$work" "$kills" "$began" "$ended" "$verified" <<'EOF'
import json, sys
work, kills, began, ended, verified = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
acked = set()
for name in ("acked-http", "acked-grpc"):
    try:
        acked.update(line.strip() for line in open(f"{work}/{name}") if line.strip())
    except FileNotFoundError:
        pass
stored = {}
access = 0
for line in open(f"{work}/stored.ndjson"):
    e = json.loads(line)["event"]
    if e.get("kind") == "access":
        access += 1
        continue
    key = f"{e.get('trace_id')}/{e.get('span_id')}"
    stored[key] = stored.get(key, 0) + 1
lost = acked - stored.keys()
twice = sum(1 for n in stored.values() if n > 1)
summary = {}
for name in ("http", "grpc", "syslog"):
    try:
        summary[name] = json.loads(open(f"{work}/client-{name}.json").read().strip().splitlines()[-1])
    except Exception:
        summary[name] = None
print(f"kills: {kills}")
print(f"spans acknowledged: {len(acked)} (OTLP/HTTP {summary['http'] and summary['http']['acknowledged']}, "
      f"OTLP/gRPC {summary['grpc'] and summary['grpc']['acknowledged']}; given up by the exporters: "
      f"{(summary['http'] or {}).get('failed', 0) + (summary['grpc'] or {}).get('failed', 0)})")
print(f"spans stored: {len(stored)}, stored twice after the duplicate pass: {twice}")
print(f"lost: {len(lost)}")
print(f"syslog TCP lines sent: {summary['syslog'] and summary['syslog']['sent']}, stored: {access} (no acknowledgement)")
print(f"verify: {'clean' if verified == 0 else 'FAILED'} ({open(work + '/verify.txt').read().strip().splitlines()[-1]})")
print(f"time: {ended - began:.0f} s")
if lost:
    print("lost, for example:", sorted(lost)[:5])
sys.exit(0 if not lost and twice == 0 and verified == 0 and kills > 0 else 1)
EOF
result=$?
if [ $result -eq 0 ]; then rm -rf "$work"; else echo "soak-crash: FAILED; files kept in $work" >&2; fi
exit $result
