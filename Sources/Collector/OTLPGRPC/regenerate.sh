#!/usr/bin/env bash
# Regenerates Generated/*.grpc.swift (the OTLP TraceService and LogsService server and client stubs) from the
# protos in ../OTLPProto/protos (never run by CI: the output is committed).
#
# Needs protoc (Debian: apt-get install protobuf-compiler) and protoc-gen-grpc-swift-2 of the
# grpc-swift-protobuf version in Package.swift. `make proto` builds the plugin and runs this script with
# PROTOC_GEN_GRPC_SWIFT set.
set -euo pipefail
cd "$(dirname "$0")"
plugin=${PROTOC_GEN_GRPC_SWIFT:-$(command -v protoc-gen-grpc-swift-2)}
rm -rf Generated
mkdir Generated
protoc --plugin=protoc-gen-grpc-swift="$plugin" \
    --grpc-swift_out=Generated --grpc-swift_opt=Visibility=Public --grpc-swift_opt=FileNaming=PathToUnderscores \
    --grpc-swift_opt=Server=true --grpc-swift_opt=Client=true \
    -I ../OTLPProto/protos -I /usr/include \
    opentelemetry/proto/collector/trace/v1/trace_service.proto \
    opentelemetry/proto/collector/logs/v1/logs_service.proto
echo "generated: $(ls Generated | tr '\n' ' ')"
