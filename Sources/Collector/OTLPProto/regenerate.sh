#!/usr/bin/env bash
# Regenerates Generated/*.pb.swift from protos/ (never run by CI: the output is committed).
#
# Needs protoc (Debian: apt-get install protobuf-compiler, which also ships the well-known types under
# /usr/include) and protoc-gen-swift of the swift-protobuf version in Package.swift. `make proto` builds the
# plugin from the resolved dependency and runs this script with PROTOC_GEN_SWIFT set.
set -euo pipefail
cd "$(dirname "$0")"
plugin=${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift)}
rm -rf Generated
mkdir Generated
protos=$(cd protos && find . -name '*.proto' | sed 's|^\./||' | sort)
protoc --plugin=protoc-gen-swift="$plugin" \
    --swift_out=Generated --swift_opt=Visibility=Public --swift_opt=FileNaming=PathToUnderscores \
    -I protos -I /usr/include $protos
echo "generated: $(ls Generated | tr '\n' ' ')"
