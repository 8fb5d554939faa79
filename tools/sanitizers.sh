#!/usr/bin/env bash
# Runs the P2P, registry-mirror and Vortex integration tests against servers built with a
# sanitizer: ThreadSanitizer (data races) and AddressSanitizer (use after free, overflows).
# The scheduler, dfdaemon and dfget are built with `--sanitize=thread` in .build-tsan, or
# in the AddressSanitizer build the leak check and fuzz targets share (.build-asan,
# tools/sanitizer-build.sh); every other program the tests start comes from DF_BIN_DIR
# (default .build/debug). Sanitizer reports go to files, not just stderr, so a report from
# a process the tests killed still fails the run.
#
#   tools/sanitizers.sh                # thread, then address
#   tools/sanitizers.sh thread         # one of them
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(thread address)
plain_bin=${DF_BIN_DIR:-$root/.build/debug}
tests=(Tests/integration/test_p2p_download.py Tests/integration/test_registry_mirror.py Tests/integration/test_mirror_http.py Tests/integration/test_vortex.py)
lock=()
if command -v flock >/dev/null; then lock=(flock /tmp/swift-build.lock); fi

failed=0
for kind in "${kinds[@]}"; do
    case $kind in
        thread) scratch=.build-tsan; runtime=__tsan_init; options_var=TSAN_OPTIONS
                options="suppressions=$root/tools/tsan-suppressions.txt:" ;;
        # Servers are stopped by signal; leaks at exit are the leak check's business.
        address) scratch=.build-asan; runtime=__asan_init; options_var=ASAN_OPTIONS; options="detect_leaks=0:" ;;
        *) echo "unknown sanitizer $kind (thread or address)" >&2; exit 2 ;;
    esac
    if [ "$kind" = thread ]; then
        # Whether ThreadSanitizer can see a continuation's ordering on this toolchain (see
        # tools/tsan-handover/main.swift); the answer explains reports in NIO's handovers.
        probe=$(mktemp -d)
        if swiftc -sanitize=thread -g tools/tsan-handover/main.swift -o "$probe/handover" > "$probe/build.log" 2>&1; then
            if TSAN_OPTIONS=exitcode=0 "$probe/handover" 2>&1 | grep -q "WARNING: ThreadSanitizer: data race"; then
                echo "sanitizer thread: this toolchain reports a race in a correct continuation handover (tools/tsan-handover)"
            else
                echo "sanitizer thread: this toolchain sees continuation handovers; the NIO suppressions may be dropped"
            fi
        fi
        rm -rf "$probe"
    fi
    if [ "$kind" = address ]; then
        # The build the leak check and the fuzz targets share: most modules are built already.
        bash tools/sanitizer-build.sh scheduler dfdaemon dfget > /dev/null
    else
        for product in scheduler dfdaemon dfget; do
            if ! "${lock[@]}" swift build --product "$product" --sanitize="$kind" --scratch-path "$scratch" > "$scratch-$product.log" 2>&1; then
                grep -E "error" "$scratch-$product.log" | head -20 || tail -20 "$scratch-$product.log"
                exit 1
            fi
        done
    fi
    bin=$(mktemp -d)
    reports=$(mktemp -d)
    for program in "$plain_bin"/*; do
        [ -f "$program" ] && [ -x "$program" ] && ln -s "$program" "$bin/"
    done
    for product in scheduler dfdaemon dfget; do
        # A build without the runtime would pass everything and check nothing.
        if ! nm "$scratch/debug/$product" | grep " $runtime\$" > /dev/null; then
            echo "$scratch/debug/$product has no $runtime: not built with the $kind sanitizer" >&2
            exit 1
        fi
        ln -sf "$root/$scratch/debug/$product" "$bin/$product"
    done
    echo "sanitizer $kind: ${tests[*]##*/}"
    if ! env "$options_var=${options}log_path=$reports/report" DF_REQUIRE_BINARIES=1 DF_BIN_DIR="$bin" \
            .venv/bin/python -m pytest "${tests[@]}" -q -p no:cacheprovider; then
        failed=1
    fi
    if compgen -G "$reports/report*" > /dev/null; then
        echo "sanitizer $kind: reports from $(ls "$reports" | wc -l) processes" >&2
        grep -h "^SUMMARY\|^WARNING\|^ERROR" "$reports"/report* | sort | uniq -c | sort -rn | head -40 >&2
        if [ -n "${DF_ARTIFACTS:-}" ]; then
            mkdir -p "$DF_ARTIFACTS/sanitizer-$kind" && cp "$reports"/report* "$DF_ARTIFACTS/sanitizer-$kind/"
        fi
        failed=1
    else
        echo "sanitizer $kind: no reports"
    fi
    rm -rf "$bin" "$reports"
done
exit $failed
