#!/usr/bin/env bash
# auditq over a bucket against the same data local (issue 18): a trace by id cold (empty cache) and warm, a heavy
# user's activity warm and local, `verify` over the bucket; whole process, with what each run fetched
# (AUDITQ_FETCH_STATS=1: LISTs, ranged GETs, bytes, and the time spent listing and opening segments).
#
# DATA is a data directory whose sealed segments were shipped to STORE (a collector with a `shipping:` section
# pointed at it; see BENCHMARKS.md); the store's endpoint and keys come from S3ENV (ceph-rgw.sh writes one).
#
#   DATA=/tmp/d STORE=s3://bench/audit S3ENV=/tmp/audit-trail-rgw/s3.env Benchmarks/auditq-s3.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release}
DATA=${DATA:?a data directory whose segments were shipped to STORE}
STORE=${STORE:?s3://bucket/prefix}
S3ENV=${S3ENV:-/tmp/audit-trail-rgw/s3.env}
RUNS=${RUNS:-5}
CACHE=${CACHE:-$(mktemp -d)}
COLLECTOR=${COLLECTOR:-$BIN/collector}
USERS=${USERS:-5000}
set -a; . "$S3ENV"; set +a
export AUDITQ_CACHE_DIR=$CACHE AUDITQ_FETCH_STATS=1
heavy=$("$COLLECTOR" ingest-synthetic --users "$USERS" --print-heavy-user)
day=$("$COLLECTOR" ingest-synthetic --print-first-day)
trace=$("$BIN/auditq" search --data "$DATA" --user "$heavy" --date "$day" --limit 1 --format json 2>/dev/null |
    grep -o '"trace_id":"[0-9a-f]*"' | head -1 | cut -d'"' -f4)

run() {  # name, then the command: one run, wall time (ns clock) and CPU, and the fetch line
    local name=$1; shift
    local out err t0 t1
    out=$(mktemp); err=$(mktemp)
    t0=$(date +%s%N)
    /usr/bin/time -f '%U %S' -o "$out" "$@" >/dev/null 2>"$err" || true
    t1=$(date +%s%N)
    printf '%-44s wall %7.1f ms  user %5.2f s  sys %5.2f s   %s\n' "$name" "$(( (t1 - t0) / 100000 ))e-1" \
        $(tail -1 "$out") "$(grep '^store:' "$err" | sed 's/^store: //')"
    rm -f "$out" "$err"
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ); heavy user $heavy, trace $trace"
for i in $(seq "$RUNS"); do
    rm -rf "$CACHE"
    run "trace, cold (empty cache) #$i" "$BIN/auditq" trace --store "$STORE" "$trace"
    run "trace, warm #$i" "$BIN/auditq" trace --store "$STORE" "$trace"
done
for i in $(seq "$RUNS"); do
    run "trace, warm, listing reused (<= 60 s) #$i" "$BIN/auditq" trace --store "$STORE" --listing-max-age 60 "$trace"
done
for i in $(seq "$RUNS"); do run "trace, local #$i" "$BIN/auditq" trace --data "$DATA" "$trace"; done
run "activity heavy user, cold" "$BIN/auditq" activity --store "$STORE" --user "$heavy" --date "$day"
for i in $(seq "$RUNS"); do
    run "activity heavy user, warm #$i" "$BIN/auditq" activity --store "$STORE" --user "$heavy" --date "$day"
    run "activity heavy user, local #$i" "$BIN/auditq" activity --data "$DATA" --user "$heavy" --date "$day"
done
# Bytes fetched from an empty cache, and warm, for a heavy user's day: search, then activity.
rm -rf "$CACHE"
run "search heavy user, one day, cold (empty cache)" "$BIN/auditq" search --store "$STORE" --user "$heavy" --date "$day"
run "search heavy user, one day, warm" "$BIN/auditq" search --store "$STORE" --user "$heavy" --date "$day"
run "search heavy user, one day, local" "$BIN/auditq" search --data "$DATA" --user "$heavy" --date "$day"
rm -rf "$CACHE"
run "activity heavy user, cold (empty cache)" "$BIN/auditq" activity --store "$STORE" --user "$heavy" --date "$day"
run "verify, bucket" "$BIN/auditq" verify --store "$STORE"
run "verify, local" "$BIN/auditq" verify --data "$DATA"
du -s -B1 "$CACHE" | awk '{print "cache directory after the runs: " $1 " bytes (allocated)"}'
