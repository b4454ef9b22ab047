#!/usr/bin/env bash
# What TLS costs at sustained ingest: the same release collector (fsync interval) fed the same synthetic
# OTLP/gRPC traffic by the project's load generator, once in plain text and once over TLS, each on
# a fresh data dir; prints spans/s of each and the TLS cost in percent. Certificates come from openssl.
# Usage: scripts/bench-tls.sh [REQUESTS] [CONNECTIONS]   (run alone on a quiet machine; `make bench-tls`)
set -euo pipefail
REQUESTS=${1:-100000}
CONNECTIONS=${2:-8}
PORT=${PORT:-14418}
GRPC_PORT=$((PORT - 1))
BIN=.build/release
WORK=$(mktemp -d /tmp/audit-bench-tls.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -TERM $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT

# A CA, a server certificate for 127.0.0.1 and a client certificate with a SPIFFE id.
cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=bench-ca 2>/dev/null
for n in server client; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $n.key -out $n.csr -subj /CN=$n 2>/dev/null
done
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
printf 'subjectAltName=URI:spiffe://bench/client\nextendedKeyUsage=clientAuth\n' > client.ext
for n in server client; do
    openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $n.pem -days 1 -extfile $n.ext 2>/dev/null
done
chmod 600 ./*.key
cd - >/dev/null

run() {  # name, then collector flags
    local name=$1; shift
    rm -rf "$WORK/data"
    $BIN/collector serve --data "$WORK/data" --otlp-http 127.0.0.1:$PORT --otlp-grpc 127.0.0.1:$GRPC_PORT --zipkin off \
        --syslog-udp off --syslog-tcp off --fsync interval --log-level warning "$@" > "$WORK/out" &
    pid=$!
    until grep -q "grpc://" "$WORK/out" 2>/dev/null; do kill -0 $pid 2>/dev/null || exit 1; sleep 0.1; done
    local ca=()
    [ $# -gt 0 ] && ca=(--grpc-ca "$WORK/ca.pem")
    local out
    out=$($BIN/collector loadgen --to http://127.0.0.1:$GRPC_PORT --transport grpc --requests "$REQUESTS" \
        --connections "$CONNECTIONS" --seed 3 "${ca[@]}")
    kill -TERM $pid; wait $pid || true; pid=
    local spans
    spans=$(echo "$out" | sed -n 's/.*(\([0-9]*\) spans\/s).*/\1/p' | head -1)
    echo "$name: $out" >&2
    echo "$spans"
}

plain=$(run plain)
tls=$(run tls --tls-cert "$WORK/server.pem" --tls-key "$WORK/server.key")
echo "plain text: $plain spans/s"
echo "TLS:        $tls spans/s"
awk -v p="$plain" -v t="$tls" 'BEGIN { printf "TLS costs %.1f%% of plain-text throughput (target: at most 25%%)\n", 100 * (p - t) / p }'
