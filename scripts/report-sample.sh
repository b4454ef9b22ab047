#!/usr/bin/env bash
# The sample report.html of the README: `make run`'s traffic on a smaller scale (a signing collector fed nginx
# access lines over syslog UDP and the mesh's spans over OTLP/gRPC by the load generator), sealed on SIGINT; an
# evidence bundle of the heaviest user's 00:10-00:20 UTC (two requests, one reaching the analytics pool), checked;
# Chromium's headless screenshot of its report.html, made small by pngquant when installed.
# Usage: scripts/report-sample.sh BIN_DIR OUT_PNG (needs chromium; run from the repository).
set -euo pipefail
bin=${1:-.build/debug}
png=${2:-docs/images/report-html.png}
work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin/collector" keygen --out "$work/seal.key" >/dev/null
"$bin/collector" serve --data "$work/data" --signing-key "$work/seal.key" --otlp-http 127.0.0.1:0 \
    --otlp-grpc 127.0.0.1:14317 --syslog-udp 127.0.0.1:15514 --syslog-tcp off --zipkin off --log-level warning &
pid=$!
until (exec 3<>/dev/tcp/127.0.0.1/14317) 2>/dev/null; do kill -0 $pid; sleep 0.2; done
"$bin/collector" loadgen --transport grpc --to http://127.0.0.1:14317 --requests 3000 --start 2025-03-03 \
    --connections 2 --rate 4000 >/dev/null &
spans=$!
"$bin/collector" loadgen --transport syslog-udp --to udp://127.0.0.1:15514 --requests 3000 --start 2025-03-03 \
    --rate 1000 >/dev/null
wait $spans
sleep 1
kill -INT $pid
wait $pid || true
pid=
user=$("$bin/collector" ingest-synthetic --print-heavy-user)
"$bin/auditq" evidence --data "$work/data" --user "$user" --from 2025-03-03T00:10:00Z --to 2025-03-03T00:20:00Z \
    --out "$work/bundle" >/dev/null
"$bin/auditq" verify --bundle "$work/bundle" --public-key "$work/seal.key.pub" --require-signatures
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --user-data-dir="$work/profile" \
    --window-size=1100,1250 --screenshot="$png" "file://$work/bundle/report.html" 2>/dev/null
# A palette PNG is a third of the size and looks the same (pngquant is optional).
if command -v pngquant >/dev/null; then pngquant --force --quality=70-90 --output "$png" "$png"; fi
echo "$png"
