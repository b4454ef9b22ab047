#!/usr/bin/env bash
# Whole-process timings of auditq (start to exit), as the auditq issue states its targets: each command runs
# RUNS times against DATA and the median wall, user and system times are printed. The data set is the query
# benchmarks' (10M events, 100 sealed segments; `make bench` builds it into /tmp/audit-trail-bench-10000000).
#
#   make release && Benchmarks/auditq-process.sh
#   DATA=/tmp/d DAY=2025-03-05 RUNS=7 Benchmarks/auditq-process.sh
# Answers are written as FORMAT (json, the issue's targets; or table, csv) to /dev/null. Wall time is measured
# with the shell's microsecond clock, CPU times and peak memory by /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release}
DATA=${DATA:-/tmp/audit-trail-bench-10000000}
DAY=${DAY:-2025-03-05}          # the third day of the data set, as in the in-process benchmarks
RUNS=${RUNS:-5}
FORMAT=${FORMAT:-json}
COLLECTOR=${COLLECTOR:-$BIN/collector}   # only used to name the heavy and light users
heavy=$("$COLLECTOR" ingest-synthetic --print-heavy-user)
light=$("$COLLECTOR" ingest-synthetic --print-light-user)
trace=$("$BIN/auditq" search --data "$DATA" --user "$heavy" --date "$DAY" --limit 1 2>/dev/null | awk 'NR==2 {print $NF}')

measure() {  # name, then the command
    local name=$1; shift
    local times=() out
    out=$(mktemp)
    for _ in $(seq "$RUNS"); do
        local t0=$EPOCHREALTIME
        /usr/bin/time -f '%U %S %M' -o "$out" "$@" >/dev/null 2>&1 || true
        local t1=$EPOCHREALTIME
        times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }') $(tail -1 "$out")")
    done
    rm -f "$out"
    printf '%s\n' "${times[@]}" | sort -n | awk -v n="$name" -v r="$RUNS" '
        { w[NR]=$1; u[NR]=$2; s[NR]=$3; m[NR]=$4 }
        END { k=int((r+1)/2); printf "%-44s wall %7.4f s  user %6.3f s  sys %6.3f s  max RSS %7d KB  (median of %d)\n", n, w[k], u[k], s[k], m[k], r }'
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
measure "auditq --version (the process floor)" "$BIN/auditq" --version
measure "activity heavy user ($heavy), one day" "$BIN/auditq" activity --data "$DATA" --user "$heavy" --date "$DAY" --format "$FORMAT"
measure "activity light user ($light), one day" "$BIN/auditq" activity --data "$DATA" --user "$light" --date "$DAY" --format "$FORMAT"
measure "search --user heavy, one day" "$BIN/auditq" search --data "$DATA" --user "$heavy" --date "$DAY" --format "$FORMAT"
measure "search --user light, one day" "$BIN/auditq" search --data "$DATA" --user "$light" --date "$DAY" --format "$FORMAT"
measure "trace $trace" "$BIN/auditq" trace --data "$DATA" "$trace" --format "$FORMAT"
measure "search --service orders, one hour" "$BIN/auditq" search --data "$DATA" --service orders --from "${DAY}T10:00:00Z" --to "${DAY}T10:59:59.999999999Z" --format "$FORMAT"
# The count target of issue 17: one hour of one day's traffic grouped by service, as a whole process.
measure "count --by service, one hour" "$BIN/auditq" count --data "$DATA" --by service --from "${DAY}T10:00:00Z" --to "${DAY}T10:59:59.999999999Z" --format "$FORMAT"
bytes=$(du -sb "$DATA/segments" | cut -f1)
out=$(mktemp)
/usr/bin/time -f '%e %U %S' -o "$out" "$BIN/auditq" verify --data "$DATA" >/dev/null
read -r wall user sys < <(tail -1 "$out")
rm -f "$out"
awk -v b="$bytes" -v w="$wall" -v u="$user" -v s="$sys" 'BEGIN {
    printf "%-44s wall %.1f s (%.0f MB/s), user %.1f s + sys %.1f s (%.0f MB/s of CPU) for %d bytes\n",
        "verify (whole data dir, one core)", w, b/w/1e6, u, s, b/(u+s)/1e6, b }'
