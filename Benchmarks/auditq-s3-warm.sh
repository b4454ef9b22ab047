#!/usr/bin/env bash
# A warm trace by id as whole auditq processes (issue 18's 20 ms target), interleaved so that each kind sees the
# same load: over the bucket with a fresh LIST (the default), over the bucket reusing a saved listing
# (--listing-max-age), the same data local, and `auditq --version` (the process floor). Wall time, ns clock;
# min / p50 / p90 of RUNS runs each. The cache is warmed by one run first.
#
#   DATA=/tmp/d STORE=s3://bench/audit TRACE=<32 hex> S3ENV=/tmp/audit-trail-rgw/s3.env Benchmarks/auditq-s3-warm.sh
set -u
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release}
DATA=${DATA:?a data directory whose segments were shipped to STORE}
STORE=${STORE:?s3://bucket/prefix}
TRACE=${TRACE:?a trace id in the data}
S3ENV=${S3ENV:-/tmp/audit-trail-rgw/s3.env}
RUNS=${RUNS:-15}
set -a; . "$S3ENV"; set +a
export AUDITQ_CACHE_DIR=${AUDITQ_CACHE_DIR:-$(mktemp -d)}
"$BIN/auditq" trace --store "$STORE" "$TRACE" >/dev/null 2>&1
wall() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
declare -A us
for _ in $(seq "$RUNS"); do
    us[fresh]+="$(wall "$BIN/auditq" trace --store "$STORE" "$TRACE") "
    us[reused]+="$(wall "$BIN/auditq" trace --store "$STORE" --listing-max-age 600 "$TRACE") "
    us[local]+="$(wall "$BIN/auditq" trace --data "$DATA" "$TRACE") "
    us[version]+="$(wall "$BIN/auditq" --version) "
done
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
for k in fresh reused local version; do
    printf '%-8s ' "$k"
    echo ${us[$k]} | tr ' ' '\n' | sort -n | awk '{a[NR] = $1} END {
        printf "min %5.1f  p50 %5.1f  p90 %5.1f ms  (%d runs)\n", a[1] / 1000, a[int((NR + 1) / 2)] / 1000,
            a[int(NR * 0.9 + 0.5)] / 1000, NR }'
done
