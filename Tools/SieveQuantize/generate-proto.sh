#!/bin/sh
# Regenerates onnx-subset.pb.swift from onnx-subset.proto. Needs protoc (Debian: protobuf-compiler)
# and protoc-gen-swift 1.39.0 (the swift-protobuf version Package.swift pins); builds the plugin
# from the swift-protobuf mirror when it is not on PATH.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
version=1.39.0
plugin=$(command -v protoc-gen-swift || true)
if [ -z "$plugin" ]; then
    src=${SWIFT_PROTOBUF_SRC:-/tmp/swift-protobuf-src}
    plugin=$src/.build/release/protoc-gen-swift
    if [ ! -x "$plugin" ]; then
        if [ ! -d "$src" ]; then
            git -c advice.detachedHead=false clone --quiet --branch "$version" "${SWIFT_PROTOBUF_GIT:-/opt/swift-packages/apple/swift-protobuf.git}" "$src"
        fi
        (cd "$src" && swift build -c release --product protoc-gen-swift)
    fi
fi
found=$("$plugin" --version | awk '{print $2}')
if [ "$found" != "$version" ]; then
    echo "generate-proto.sh: $plugin is version $found, Package.swift pins swift-protobuf $version" >&2
    exit 1
fi
protoc --plugin=protoc-gen-swift="$plugin" --proto_path="$here" \
    --swift_opt=Visibility=Public --swift_out="$here" "$here/onnx-subset.proto"
echo "wrote $here/onnx-subset.pb.swift"
