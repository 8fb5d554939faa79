#!/usr/bin/env bash
# Builds `dragonfly-fuzz` with libFuzzer and AddressSanitizer (LeakSanitizer included) in
# the shared sanitizer build (tools/sanitizer-build.sh) and runs each target for a bounded
# time from the committed seeds in Tests/Fuzz/corpus. Any crash, sanitizer report or leak
# fails; the input that caused it is kept under $DF_ARTIFACTS/fuzz/ (or a temporary
# directory) and its path printed.
#
#   tools/fuzz.sh                       # every target, FUZZ_SECONDS (default 30) each
#   FUZZ_SECONDS=3600 tools/fuzz.sh h2  # one target, longer
#   FUZZ_JOBS=1 tools/fuzz.sh           # one target at a time (default two)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

seconds=${FUZZ_SECONDS:-30}
if [ $# -gt 0 ]; then targets=("$@"); else targets=(h2 grpc http1 config taskid vortex scheduler layout); fi
artifacts=${DF_ARTIFACTS:-$(mktemp -d /tmp/dragonfly-artifacts-XXXXXX)}/fuzz
mkdir -p "$artifacts"
echo "fuzz: building dragonfly-fuzz in the shared sanitizer build (tools/sanitizer-build.sh)"
products=$(bash tools/sanitizer-build.sh dragonfly-fuzz | tail -1)
bin="$products/dragonfly-fuzz"
# Without libFuzzer's driver the executable only replays its seeds: that is not fuzzing.
if ! nm "$bin" | grep " T LLVMFuzzerRunDriver\$" > /dev/null; then
    echo "fuzz: $bin has no libFuzzer driver linked" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Each run uses one core; two at a time keep a 2-core machine busy and halve the wait.
jobs=${FUZZ_JOBS:-2}
run_target() {
    local target=$1
    # New inputs go to a scratch corpus; the committed seeds are only read.
    mkdir -p "$work/$target"
    if ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0 "$bin" "$target" \
            -max_total_time="$seconds" -timeout=10 -rss_limit_mb=3072 -max_len=65536 -print_final_stats=1 \
            -artifact_prefix="$artifacts/$target-" "$work/$target" "Tests/Fuzz/corpus/$target" > "$work/$target.log" 2>&1; then
        runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$work/$target.log" | grep -Eo '[0-9]+$' || echo "?")
        cov=$(grep -Eo 'cov: [0-9]+' "$work/$target.log" | tail -1 || true)
        echo "fuzz $target: ${seconds}s, $runs inputs, $cov, no crashes or leaks"
    else
        echo "fuzz $target: FAILED" >&2
        grep -E "ERROR|SUMMARY|Fatal error|panic|crash-|leak-|timeout-" "$work/$target.log" | head -20 >&2 || tail -40 "$work/$target.log" >&2
        ls "$artifacts"/"$target"-* 2>/dev/null | sed 's/^/  input kept at /' >&2 || true
        return 1
    fi
}
failed=0
pids=()
for target in "${targets[@]}"; do
    run_target "$target" & pids+=($!)
    if [ ${#pids[@]} -ge "$jobs" ]; then
        wait "${pids[0]}" || failed=1
        pids=("${pids[@]:1}")
    fi
done
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
exit $failed
