#!/usr/bin/env bash
# Regenerates every generated file from Protos/: the protobuf-c C sources (with the
# google/protobuf well-known types they import), the Swift API layer over them, and the
# serialized descriptors that server reflection serves. Run from anywhere; output is
# committed so a build never needs protoc.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

wkt_dir=${PROTOBUF_INCLUDE:-/usr/include}
wkt=(google/protobuf/timestamp.proto google/protobuf/duration.proto google/protobuf/empty.proto google/protobuf/descriptor.proto)
mapfile -t protos < <(cd Protos && find . -name '*.proto' | sed 's|^\./||' | LC_ALL=C sort)

c_out=Sources/CProtos
rm -rf "$c_out/include" "$c_out/generated"
mkdir -p "$c_out/include" "$c_out/generated"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

protoc-c --c_out="$tmp" -I Protos -I "$wkt_dir" "${protos[@]}" "${wkt[@]}"
# Headers go under include/ (their #include paths are relative to it), sources beside.
(cd "$tmp" && find . -name '*.pb-c.h' | sed 's|^\./||' | LC_ALL=C sort) > "$tmp/headers.txt"
while read -r h; do
    mkdir -p "$c_out/include/$(dirname "$h")"
    cp "$tmp/$h" "$c_out/include/$h"
done < "$tmp/headers.txt"
(cd "$tmp" && find . -name '*.pb-c.c' | sed 's|^\./||' | LC_ALL=C sort) | while read -r c; do
    flat=$(echo "$c" | tr '/' '_')
    # The .c files include their header by its path relative to include/.
    cp "$tmp/$c" "$c_out/generated/$flat"
done

# One descriptor set with everything, for the Swift generator and for reflection.
protoc --include_imports --descriptor_set_out="$tmp/all.pb" -I Protos -I "$wkt_dir" "${protos[@]}" "${wkt[@]}"

"${PYTHON:-$root/.venv/bin/python}" tools/gen_swift.py \
    --descriptor-set "$tmp/all.pb" \
    --c-headers "$tmp/headers.txt" \
    --c-out "$c_out" \
    --swift-out Sources/GeneratedAPI
echo "generated: $(wc -l < "$tmp/headers.txt") C headers, Swift API in Sources/GeneratedAPI"
