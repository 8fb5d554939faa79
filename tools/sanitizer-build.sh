#!/usr/bin/env bash
# One AddressSanitizer build, in .build-asan, shared by the leak check (proto-leak-loop),
# the fuzz targets (dragonfly-fuzz) and the ASan integration run (scheduler, dfdaemon,
# dfget). Every module is compiled once with ASan and libFuzzer's coverage instrumentation
# (what -sanitize=fuzzer compiles in, without linking libFuzzer's main, which would clash
# with each server's own); libFuzzer's driver comes from its no-main archive, which only
# dragonfly-fuzz references (CFuzzMain, built with DF_FUZZ_DRIVER), so only it links it.
# The servers resolve the coverage hooks to the ASan runtime's empty defaults.
#
#   tools/sanitizer-build.sh PRODUCT...      # prints the products' directory last
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scratch=${SANITIZER_SCRATCH:-.build-asan}
toolchain=$(dirname "$(readlink -f "$(command -v swiftc)")")/..
driver=$(ls "$toolchain"/lib/swift/clang/lib/linux/libclang_rt.fuzzer_no_main-"$(uname -m)".a 2>/dev/null | head -1 || true)
if [ -z "$driver" ]; then
    echo "sanitizer build: no libclang_rt.fuzzer_no_main in $toolchain/lib/swift/clang/lib/linux" >&2
    exit 1
fi
flags=(
    -Xswiftc -sanitize=address
    -Xswiftc -sanitize-coverage=edge,indirect-calls,trace-cmp,inline-8bit-counters,pc-table
    -Xcc -fsanitize=fuzzer-no-link,address -Xcc -DDF_FUZZ_DRIVER=1
    -Xlinker "$driver"
)
# Builds share two cores with other work on developer machines; take the common lock.
lock=()
if command -v flock >/dev/null; then lock=(flock /tmp/swift-build.lock); fi
for product in "$@"; do
    if ! "${lock[@]}" swift build --product "$product" --scratch-path "$scratch" "${flags[@]}" > "$scratch-$product.log" 2>&1; then
        grep -E "error" "$scratch-$product.log" | head -40 >&2 || tail -40 "$scratch-$product.log" >&2
        exit 1
    fi
    # A build without the runtime would pass everything and check nothing.
    if ! nm "$scratch/debug/$product" | grep " __asan_init\$" > /dev/null; then
        echo "$scratch/debug/$product has no __asan_init: not built with AddressSanitizer" >&2
        exit 1
    fi
done
echo "$root/$scratch/debug"
