#!/bin/sh
# Compares `auditq count` of two binaries, byte for byte (stdout and stderr), over every --by key, pairs of keys,
# every filter and term kind, aligned and cut time ranges, and each output format.
# Usage: scripts/compare-count.sh OLD_AUDITQ NEW_AUDITQ OLD_DATA [NEW_DATA [HOUR_START]]
#   NEW_DATA: what the new binary reads (default OLD_DATA): the same records sealed by a newer collector, when
#   the old binary cannot read that format. HOUR_START: an ISO hour the data covers (default
#   2025-03-03T10:00:00Z; its day is used for --date).
set -u
old=$1 new=$2 data=$3 newdata=${4:-$3} hour=${5:-2025-03-03T10:00:00Z}
day=${hour%%T*}
base=${hour%%:*}
h=${base#*T}; h=${h#0}
next=$(printf '%02d' $(( ($h + 3) % 24 )))
ranges="--from=$hour,--to=${base}:59:59.999999999Z
--from=$hour,--to=${day}T$(printf '%02d' $(( ($h + 2) % 24 ))):59:59.999999999Z
--from=$hour,--to=${day}T${next}:00:00Z
--from=${base}:17:00Z,--to=${base}:42:00Z
--date=$day
-"
keys="service user workload status-class route edge-status source service,status-class edge-status,source workload,service,edge-status service,user"
filters="-
--status=error
--status=ok
--status=4xx
--status=200,--method=get
--path-prefix=/api
--min-duration=20ms
--service=orders
--workload=spiffe://cluster.local/ns/commerce/sa/orders"
runs=0 differ=0
tmp=$(mktemp -d)
for range in $ranges; do
    for key in $keys; do
        for filter in $filters; do
            for format in table json csv; do
                set -- count --format "$format"
                [ "$range" = - ] || set -- "$@" $(echo "$range" | tr , ' ')
                [ "$filter" = - ] || set -- "$@" $(echo "$filter" | tr , ' ')
                for k in $(echo "$key" | tr , ' '); do set -- "$@" --by "$k"; done
                "$old" "$@" --data "$data" >"$tmp/old.out" 2>"$tmp/old.err"; echo "rc $?" >>"$tmp/old.err"
                "$new" "$@" --data "$newdata" >"$tmp/new.out" 2>"$tmp/new.err"; echo "rc $?" >>"$tmp/new.err"
                runs=$((runs + 1))
                if ! cmp -s "$tmp/old.out" "$tmp/new.out" || ! cmp -s "$tmp/old.err" "$tmp/new.err"; then
                    differ=$((differ + 1))
                    echo "DIFFERS: $*"
                fi
            done
        done
    done
done
rm -rf "$tmp"
echo "$runs runs, $differ differ"
[ "$differ" -eq 0 ]
