#!/usr/bin/env bash
# Where the collector's memory goes under load (issue 15): a release collector (fsync interval) fed two
# `collector loadgen` runs of REQ requests (about 264,000 events: one 128 MiB segment rolls and seals), then
# VmHWM/VmRSS per phase and once the seal is done, the peaks of VmRSS, RssAnon and RssFile sampled every 100 ms,
# and the anonymous maps over 1 MiB resident from /proc/PID/smaps (glibc arenas are 64 MiB-aligned maps; a large
# single map is malloc's mmap of big blocks). MALLOC_ENV="MALLOC_ARENA_MAX=2" passes malloc settings.
# Usage: BIN=.build/release REQ=20000 scripts/collector-memory.sh
set -euo pipefail
BIN=${BIN:-.build/release}
REQ=${REQ:-20000}
PORT=${PORT:-15418}
DATA=$(mktemp -d "${TMPDIR:-/tmp}/audit-memory.XXXXXX")
env ${MALLOC_ENV:-} $BIN/collector serve --data "$DATA" --otlp-http 127.0.0.1:$PORT --otlp-grpc 127.0.0.1:$((PORT-1)) \
  --syslog-udp off --syslog-tcp off --zipkin off --fsync interval --log-level info > "$DATA.out" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$DATA" "$DATA".*' EXIT
until (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; do sleep 0.1; done
st() { awk '/VmRSS|VmHWM|Threads/ {printf "%s %d  ", $1, $2} END {print ""}' /proc/$pid/status; }
echo "start: $(st)"
( while kill -0 $pid 2>/dev/null; do echo "$(date +%s.%N | cut -c1-14) $(awk '/VmRSS|RssAnon|RssFile/ {printf "%s %d ", $1, $2/1024}' /proc/$pid/status 2>/dev/null)"; sleep 0.1; done ) > "$DATA.samples" &
$BIN/collector loadgen --to http://127.0.0.1:$PORT --requests $REQ --connections 8 --seed 1 | tail -1
echo "after run 1: $(st)"
$BIN/collector loadgen --to http://127.0.0.1:$PORT --requests $REQ --connections 8 --seed 2 | tail -1 || true
echo "after run 2: $(st)"
for i in $(seq 1 600); do ls "$DATA"/segments/*.seg.tmp >/dev/null 2>&1 || [ $i -lt 20 ] || break; sleep 0.5; done
echo "after the seal: $(st)"
python3 - "$pid" <<'PY'
import sys,re
pid=sys.argv[1]; tot={}; big=0
cur=None
for line in open(f"/proc/{pid}/smaps"):
    m=re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)",line)
    if m:
        cur=((m.group(4) or "anon").split("/")[-1], m.group(3)); start=int(m.group(1),16); end=int(m.group(2),16); continue
    if line.startswith("Rss:"):
        kb=int(line.split()[1]); tot[cur]=tot.get(cur,0)+kb
        if cur[0]=="anon" and kb>1024: big+=1; print("   anon map", hex(start), (end-start)>>20, "MiB reserved", kb>>10, "MiB resident", cur[1])
for k,v in sorted(tot.items(), key=lambda x:-x[1])[:8]: print("  ", k, v//1024, "MiB")
print("   anon maps over 1 MiB resident:", big)
PY
echo "peaks sampled (MiB):"
awk '{print $3}' "$DATA.samples" | sort -n | tail -1 | sed 's/^/  max VmRSS /'
awk '{print $5}' "$DATA.samples" | sort -n | tail -1 | sed 's/^/  max RssAnon /'
awk '{print $7}' "$DATA.samples" | sort -n | tail -1 | sed 's/^/  max RssFile /'
grep "sealed segment" "$DATA.out" || echo "no segment sealed: raise REQ"
