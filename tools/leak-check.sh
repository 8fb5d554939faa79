#!/usr/bin/env bash
# Leak and memory-error check of the protobuf-c message runtime: builds the small
# `proto-leak-loop` executable (only the message layer, not the whole package) with
# AddressSanitizer (LeakSanitizer comes with it on Linux) in the shared sanitizer build
# (tools/sanitizer-build.sh) and runs it: it encodes and decodes every kind of field in a
# loop, including decodes that fail part-way. Exits non-zero on any definite leak or
# memory error. Valgrind 3.19 (Debian 12) cannot read the DWARF 5 that Swift 6 emits,
# hence the sanitizer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

products=$(bash tools/sanitizer-build.sh proto-leak-loop | tail -1)
# detect_leaks is the default on x86_64 Linux; spelled out so the intent is visible.
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 "$products/proto-leak-loop" 200
echo "leak-check: no leaks, no memory errors"
