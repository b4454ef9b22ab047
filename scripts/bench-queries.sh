#!/usr/bin/env bash
# Issue 14's questions as whole auditq processes on the 10M-event set: the process floor (`--version`), a trace by
# id over 100 sealed segments, a light and a heavy user's day and activity; then the set's bytes per event.
# Several builds are compared by alternating them question by question, ROUNDS times, so that a machine whose speed
# drifts treats them alike. Wall time from hyperfine (no shell between runs); CPU is its user + system.
# Usage: scripts/bench-queries.sh [AUDITQ ...]   (default .build/release/auditq; run alone on a quiet machine)
# The set is made once by the collector beside the first binary (about 4 minutes, 1.6 GB of log, 280 MB sealed)
# into $DATA, and kept for later runs.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${DATA:-/tmp/audit-bench-10m}
RUNS=${RUNS:-40}
ROUNDS=${ROUNDS:-2}
HEAVY=${HEAVY:-u-045174}
LIGHT=${LIGHT:-u-043035}
DAY=${DAY:-2025-03-05}
TRACE=${TRACE:-3cc2a5c1da1a1ec434e4a7b675bb4e06}
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || BINS=(.build/release/auditq)
command -v hyperfine > /dev/null || { echo "needs hyperfine (apt-get install -y hyperfine)" >&2; exit 1; }

if [ ! -f "$DATA/catalog.aqc" ]; then
    collector="$(dirname "${BINS[0]}")/collector"
    echo "== making the 10M-event set in $DATA with $collector"
    rm -rf "$DATA"
    "$collector" ingest-synthetic --data "$DATA" --requests 1515150 --days 7 --segment-events 100000
fi

questions=(
    "version|--version"
    "trace over 100 segments|trace --data $DATA $TRACE --format json"
    "light user's day|search --data $DATA --user $LIGHT --date $DAY --format json"
    "light user's activity|activity --data $DATA --user $LIGHT --date $DAY --format json"
    "heavy user's day|search --data $DATA --user $HEAVY --date $DAY --format json"
    "heavy user's activity|activity --data $DATA --user $HEAVY --date $DAY --format json"
)

# The answers must not depend on the build.
for q in "${questions[@]:1}"; do
    args=${q#*|}
    first=""
    for b in "${BINS[@]}"; do
        sum=$($b $args 2> /dev/null | md5sum | cut -c1-32)
        [ -z "$first" ] && first=$sum
        [ "$sum" = "$first" ] || { echo "different answers to '$args': ${BINS[0]} and $b" >&2; exit 1; }
    done
done

json=$(mktemp)
trap 'rm -f "$json"' EXIT
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| question | build | round | wall, ms (mean ± σ) | CPU, ms (user + system) |\n| --- | --- | ---: | ---: | ---: |\n'
for q in "${questions[@]}"; do
    name=${q%%|*}
    args=${q#*|}
    runs=$RUNS
    [[ $name == "heavy user's activity" ]] && runs=$(( (RUNS + 3) / 4 ))
    for round in $(seq "$ROUNDS"); do
        # Every other round in reverse order: the first build after a change of question should not always be one.
        order=("${BINS[@]}")
        if (( round % 2 == 0 )); then
            order=()
            for (( i = ${#BINS[@]} - 1; i >= 0; i-- )); do order+=("${BINS[$i]}"); done
        fi
        for b in "${order[@]}"; do
            hyperfine -N --warmup 3 --runs "$runs" --export-json "$json" "$b $args" > /dev/null 2>&1
            python3 - "$json" "$name" "$b" "$round" << 'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print("| %s | %s | %s | %.2f ± %.2f | %.2f |" % (sys.argv[2], sys.argv[3], sys.argv[4], r["mean"] * 1e3,
      r["stddev"] * 1e3, (r["user"] + r["system"]) * 1e3))
EOF
        done
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bytes on disk, bytes per event (index included): $(${BINS[0]} stats --data "$DATA" --layout | awk '$1 == "total" {print $2, $3}')"
