#!/usr/bin/env bash
# Benchmark (not a test): our interop-server (gRPC on nghttp2) against a grpc-swift-2 TestService
# server, one at a time on 127.0.0.1 under the same load, and prints a table with ours/theirs.
#
#   tools/benchmark/run.sh
#
# Figures:
#   - unary UnaryCall (response_size=$UNARY_RESPONSE_SIZE) requests/s, p50 and p99 latency, driven
#     by h2load with a pre-encoded gRPC body at 1 stream (-c 1 -m 1) and 64 concurrent streams
#     (-c 4 -m 16), each for $UNARY_SECONDS s after a 1 s warm-up; percentiles from --log-file
#   - server streaming MB/s: StreamingOutputCall asking for $STREAM_COUNT x 1 MiB messages, with
#     h2load as the client ($STREAM_CALLS calls, one after another), and once with a grpc-swift-2
#     client (bench-client), the same client for both servers
# Each server is measured ROUNDS times in ABBA order (ours, theirs, theirs, ours, ...) and the best
# value of each figure is kept, to damp noise from whatever else runs on the machine.
# Environment knobs: ROUNDS (2), UNARY_SECONDS (5), UNARY_RESPONSE_SIZE (64), STREAM_COUNT (512),
#   STREAM_CALLS (3), HOLD_BUILD_LOCK (1: hold /tmp/swift-build.lock while measuring, so no
#   cooperating `swift build` competes for the 2 cores), KEEP_WORK (0: 1 keeps the raw outputs).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LOCK=/tmp/swift-build.lock
UNARY_SECONDS=${UNARY_SECONDS:-5}
UNARY_RESPONSE_SIZE=${UNARY_RESPONSE_SIZE:-64}
STREAM_COUNT=${STREAM_COUNT:-512}
STREAM_CALLS=${STREAM_CALLS:-3}
STREAM_SIZE=$((1 << 20))
HOLD_BUILD_LOCK=${HOLD_BUILD_LOCK:-1}
ROUNDS=${ROUNDS:-2}
KEEP_WORK=${KEEP_WORK:-0}

command -v h2load >/dev/null || { echo "h2load not found (Debian package nghttp2-client)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found" >&2; exit 1; }

T0=$(date +%s)
WORK=$(mktemp -d /tmp/dfbench.XXXXXX)
SERVER_PID=""

cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ "$KEEP_WORK" == 1 ]]; then echo "raw outputs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[bench] $*" >&2; }

# ---- build (release) ------------------------------------------------------------------------------
log "building interop-server (release)"
(cd "$ROOT" && flock "$LOCK" swift build -c release --product interop-server) >"$WORK/build-ours.log" 2>&1 \
    || { tail -30 "$WORK/build-ours.log" >&2; exit 1; }
log "building bench package (grpc-swift-2 server, bench-client; release)"
(cd "$HERE" && flock "$LOCK" swift build -c release) >"$WORK/build-bench.log" 2>&1 \
    || { tail -30 "$WORK/build-bench.log" >&2; exit 1; }
OURS_BIN="$(cd "$ROOT" && flock "$LOCK" swift build -c release --show-bin-path)/interop-server"
BENCH_BIN="$(cd "$HERE" && flock "$LOCK" swift build -c release --show-bin-path)"
THEIRS_BIN="$BENCH_BIN/bench-grpcswift-server"
CLIENT_BIN="$BENCH_BIN/bench-client"

# ---- request bodies for h2load --------------------------------------------------------------------
"$CLIENT_BIN" body unary "$UNARY_RESPONSE_SIZE" "$WORK/unary.bin"
"$CLIENT_BIN" body stream "$STREAM_COUNT" "$STREAM_SIZE" "$WORK/stream.bin"
# Response DATA per call (gRPC prefix + message) as h2load counts it, to check every call was answered.
varint_len() { local v=$1 n=1; while (( v >= 128 )); do v=$((v >> 7)); n=$((n + 1)); done; echo $n; }
payload_msg_len() { # SimpleResponse/StreamingOutputCallResponse { payload { body = N bytes } }
    local n=$1 inner; inner=$((1 + $(varint_len "$n") + n)); echo $((1 + $(varint_len $inner) + inner))
}
export UNARY_EXPECTED_DATA=$((5 + $(payload_msg_len "$UNARY_RESPONSE_SIZE")))
export STREAM_EXPECTED_DATA=$((STREAM_COUNT * (5 + $(payload_msg_len "$STREAM_SIZE"))))

H2LOAD_HEADERS=(-H 'content-type: application/grpc' -H 'te: trailers')

# ---- measuring ------------------------------------------------------------------------------------
if [[ "$HOLD_BUILD_LOCK" == 1 ]]; then
    log "waiting for $LOCK (no cooperating swift build runs while we measure)"
    exec 9>"$LOCK"
    flock 9
fi

start_server() { # NAME BINARY ARGS...: starts it, sets SERVER_PID and PORT
    local name=$1; shift
    "$@" >"$WORK/$name.server.out" 2>"$WORK/$name.server.err" &
    SERVER_PID=$!
    for _ in $(seq 1 300); do
        if PORT=$(sed -n 's/^LISTENING \([0-9][0-9]*\).*/\1/p' "$WORK/$name.server.out" | head -1) && [[ -n "$PORT" ]]; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "$name server did not start:" >&2; cat "$WORK/$name.server.out" "$WORK/$name.server.err" >&2
    exit 1
}

stop_server() { # NAME
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    else
        wait "$SERVER_PID" 2>/dev/null || true
        echo "$1 server had exited before the end of its run" >>"$WORK/problems"
    fi
    SERVER_PID=""
    if [[ -s "$WORK/$1.server.err" ]]; then
        { echo "$1 server stderr (last lines):"; tail -5 "$WORK/$1.server.err" | sed 's/^/    /'; } >>"$WORK/problems"
    fi
}

measure() { # NAME ROUND BINARY ARGS...
    local name=$1 round=$2; shift 2
    local out="$WORK/$name.$round"
    log "$name (round $round): starting $(basename "$1")"
    start_server "$name" "$@"
    local url="http://127.0.0.1:$PORT/grpc.testing.TestService"
    "$CLIENT_BIN" check --port "$PORT" >"$out.check.out" 2>&1 \
        || { echo "$name check failed: $(cat "$out.check.out")" >>"$WORK/problems"; }
    # Warm-up, not timed; its fixed request count also checks every call got a full response.
    h2load -n 5000 -c 4 -m 16 -d "$WORK/unary.bin" "${H2LOAD_HEADERS[@]}" "$url/UnaryCall" >"$out.warmup.out" 2>&1 || true
    log "$name (round $round): unary, 1 stream, ${UNARY_SECONDS}s"
    h2load -c 1 -m 1 -D "$UNARY_SECONDS" --warm-up-time 1 --log-file "$out.unary1.log" \
        -d "$WORK/unary.bin" "${H2LOAD_HEADERS[@]}" "$url/UnaryCall" >"$out.unary1.out" 2>&1 || true
    log "$name (round $round): unary, 64 streams (4 connections x 16), ${UNARY_SECONDS}s"
    h2load -c 4 -m 16 -D "$UNARY_SECONDS" --warm-up-time 1 --log-file "$out.unary64.log" \
        -d "$WORK/unary.bin" "${H2LOAD_HEADERS[@]}" "$url/UnaryCall" >"$out.unary64.out" 2>&1 || true
    log "$name (round $round): server streaming, $STREAM_CALLS x ($STREAM_COUNT x 1 MiB), h2load client"
    timeout 120 h2load -n "$STREAM_CALLS" -c 1 -m 1 --log-file "$out.stream.log" \
        -d "$WORK/stream.bin" "${H2LOAD_HEADERS[@]}" "$url/StreamingOutputCall" >"$out.stream.out" 2>&1 || true
    log "$name (round $round): server streaming, $STREAM_COUNT x 1 MiB, grpc-swift-2 client"
    timeout 120 "$CLIENT_BIN" stream --port "$PORT" --count "$STREAM_COUNT" --size "$STREAM_SIZE" \
        >"$out.swiftstream.out" 2>&1 || true
    stop_server "$name"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "$ROUNDS"); do
    if (( round % 2 == 1 )); then order=(ours theirs); else order=(theirs ours); fi
    for name in "${order[@]}"; do
        if [[ $name == ours ]]; then measure ours "$round" "$OURS_BIN" --port 0
        else measure theirs "$round" "$THEIRS_BIN" --port 0; fi
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

if [[ "$HOLD_BUILD_LOCK" == 1 ]]; then flock -u 9; exec 9>&-; fi

# ---- report ---------------------------------------------------------------------------------------
echo
echo "dragonfly-swift gRPC benchmark: ours = interop-server (nghttp2 + SwiftNIO), theirs = grpc-swift-2 2.x"
echo "(HTTP2ServerTransport.Posix, default config). Loopback 127.0.0.1, plaintext h2c, release builds."
echo "machine: $(nproc) cores, $(uname -m); load average before measuring: $LOAD_BEFORE, after: $LOAD_AFTER."
echo "NOTE: the server and the load generator (h2load or bench-client) share these $(nproc) cores, so each"
echo "figure is server + client on the same CPUs, not the server alone."
echo "unary: UnaryCall, response_size=$UNARY_RESPONSE_SIZE, h2load ${UNARY_SECONDS}s after 1s warm-up; 1 stream = -c 1 -m 1,"
echo "64 streams = -c 4 -m 16. streaming: StreamingOutputCall, $STREAM_COUNT x 1 MiB per call; h2load: $STREAM_CALLS calls,"
echo "MB/s = response DATA bytes / summed call time; grpc-swift-2 client: 1 call, message bodies / call time."
echo "each figure: best of $ROUNDS rounds per server, rounds in ABBA order."
echo
python3 "$HERE/report.py" "$WORK" "$ROUNDS"
if [[ -s "$WORK/problems" ]]; then
    echo "also:"; sed 's/^/  - /' "$WORK/problems"
fi
for f in "$WORK"/*.check.out; do
    if [[ "$(cat "$f")" != OK ]]; then echo "  - correctness check $(basename "$f" .check.out): $(cat "$f")"; fi
done
echo
echo "total time: $(( $(date +%s) - T0 )) s (including builds)"
exit 0
