#!/usr/bin/env bash
# Scheduler benchmark (not a test: it prints figures and asserts nothing).
#
#   tools/bench-scheduler/run.sh
#
# Builds `scheduler` in release, then for each run starts a fresh scheduler on 127.0.0.1 and drives
# it with driver.py, simulated dfdaemon peers over the real gRPC API (scheduler.v2 AnnounceHost and
# AnnouncePeer, Python grpcio + the official dragonfly-api package from .venv):
#   A  one task, $PEERS peers (default 5,000) on $HOSTS hosts (default 100)
#   B  $TASKS tasks (default 1,000) x $PEERS_PER_TASK peers (default 10)
# each at $CONCURRENCY peers in flight (default 64: throughput and latency under load) and at 1 in
# flight (latency without queueing). The first peer of every task goes back to source and holds its
# stream; every later peer registers, takes its first answer (the measured latency), reports a
# started download, one piece and success, and closes its stream. See driver.py for the details.
#
# Prints a table: registrations/s, p50/p99 register→first answer (client side), the scheduler's own
# register histogram, answer types, the scheduler's VmHWM/VmRSS (/proc/PID/status, read at the end
# of the run), and CPU of the scheduler, of the Python client and of the whole machine.
#
# Environment knobs: PEERS (5000), HOSTS (100), TASKS (1000), PEERS_PER_TASK (10), CONCURRENCY (64),
#   RUNS ("one-task:$CONCURRENCY one-task:1 many-tasks:$CONCURRENCY many-tasks:1"),
#   RETRY_INTERVAL (20ms: scheduler.retryInterval), RUN_TIMEOUT (240 s per run, hard),
#   HOLD_BUILD_LOCK (1: hold /tmp/swift-build.lock while measuring, so no cooperating `swift build`
#   competes for the 2 cores), SKIP_BUILD (0), KEEP_WORK (0: 1 keeps the raw outputs).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LOCK=/tmp/swift-build.lock
PEERS=${PEERS:-5000}
HOSTS=${HOSTS:-100}
TASKS=${TASKS:-1000}
PEERS_PER_TASK=${PEERS_PER_TASK:-10}
CONCURRENCY=${CONCURRENCY:-64}
RUNS=${RUNS:-"one-task:$CONCURRENCY one-task:1 many-tasks:$CONCURRENCY many-tasks:1"}
RETRY_INTERVAL=${RETRY_INTERVAL:-20ms}
RUN_TIMEOUT=${RUN_TIMEOUT:-240}
HOLD_BUILD_LOCK=${HOLD_BUILD_LOCK:-1}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP_WORK=${KEEP_WORK:-0}
PY="$ROOT/.venv/bin/python"

[[ -x "$PY" ]] || { echo "$PY not found: run tools/setup.sh" >&2; exit 1; }
"$PY" -c 'import grpc, dragonfly_api.scheduler_pb2_grpc' 2>/dev/null \
    || { echo "grpcio / dragonfly-api missing in .venv: run tools/setup.sh" >&2; exit 1; }

WORK=$(mktemp -d /tmp/dfsched-bench.XXXXXX)
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

log() { echo "[bench-scheduler] $*" >&2; }

# ---- build (release) ------------------------------------------------------------------------------
if [[ "$SKIP_BUILD" != 1 ]]; then
    log "building scheduler (release)"
    (cd "$ROOT" && flock "$LOCK" swift build -c release --product scheduler) >"$WORK/build.log" 2>&1 \
        || { tail -30 "$WORK/build.log" >&2; exit 1; }
fi
BIN="$(cd "$ROOT" && flock "$LOCK" swift build -c release --show-bin-path)/scheduler"
[[ -x "$BIN" ]] || { echo "$BIN not found" >&2; exit 1; }

cat >"$WORK/scheduler.yaml" <<EOF
# Written by tools/bench-scheduler/run.sh. A short retry interval so that peers which find no
# parent on the first round are not held 500 ms; everything else is Dragonfly's default.
scheduler:
  retryInterval: $RETRY_INTERVAL
EOF

# ---- measuring ------------------------------------------------------------------------------------
if [[ "$HOLD_BUILD_LOCK" == 1 ]]; then
    log "waiting for $LOCK (no cooperating swift build runs while we measure)"
    exec 9>"$LOCK"
    flock 9
fi

start_server() { # NAME: starts a fresh scheduler, sets SERVER_PID, GRPC_PORT, METRICS_PORT
    local name=$1
    mkdir -p "$WORK/$name.data"
    "$BIN" --port 0 --metrics-port 0 --listen-ip 127.0.0.1 --data-dir "$WORK/$name.data" \
        --config "$WORK/scheduler.yaml" >"$WORK/$name.server.out" 2>"$WORK/$name.server.err" &
    SERVER_PID=$!
    for _ in $(seq 1 300); do
        local line
        line=$(grep -m1 '^LISTENING ' "$WORK/$name.server.out" || true)
        if [[ -n "$line" ]]; then
            read -r _ GRPC_PORT _ METRICS_PORT <<<"$line"
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "scheduler ($name) did not start:" >&2; cat "$WORK/$name.server.out" "$WORK/$name.server.err" >&2
    exit 1
}

stop_server() { # NAME: SIGTERM to our scheduler's PID, SIGKILL after 10 s
    local name=$1
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "$name: scheduler did not stop on SIGTERM within 10 s; killed" >>"$WORK/problems"
            kill -9 "$SERVER_PID" 2>/dev/null || true
        fi
    else
        echo "$name: scheduler had exited before the end of its run" >>"$WORK/problems"
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    # Anything the scheduler logged above info level is worth a look.
    if grep -vE '^[^ ]+ (INFO|DEBUG|TRACE|NOTICE) ' "$WORK/$name.server.err" | grep -q .; then
        { echo "$name: scheduler stderr (non-info lines, first 5):"
          grep -vE '^[^ ]+ (INFO|DEBUG|TRACE|NOTICE) ' "$WORK/$name.server.err" | head -5 | sed 's/^/    /'; } \
            >>"$WORK/problems"
    fi
}

results=()
for run in $RUNS; do
    scenario=${run%%:*}
    inflight=${run##*:}
    name="$scenario-c$inflight"
    log "$name: starting a fresh scheduler"
    start_server "$name"
    log "$name: driving (pid $SERVER_PID, port $GRPC_PORT)"
    rc=0
    timeout -k 5 "$((RUN_TIMEOUT + 30))" "$PY" "$HERE/driver.py" \
        --target "127.0.0.1:$GRPC_PORT" --pid "$SERVER_PID" --metrics-port "$METRICS_PORT" \
        --scenario "$scenario" --peers "$PEERS" --tasks "$TASKS" --peers-per-task "$PEERS_PER_TASK" \
        --hosts "$HOSTS" --concurrency "$inflight" --timeout "$RUN_TIMEOUT" \
        --json "$WORK/$name.json" >"$WORK/$name.driver.out" 2>"$WORK/$name.driver.err" || rc=$?
    stop_server "$name"
    if [[ ! -s "$WORK/$name.json" ]]; then
        printf '{"scenario": "%s", "concurrency": %s, "error": "driver exited %s without a result"}\n' \
            "$scenario" "$inflight" "$rc" >"$WORK/$name.json"
        { echo "$name: driver stderr (last lines):"; tail -5 "$WORK/$name.driver.err" | sed 's/^/    /'; } \
            >>"$WORK/problems"
    fi
    results+=("$WORK/$name.json")
done

echo
"$PY" "$HERE/report.py" "${results[@]}"
echo
echo "scheduler: $BIN (release); config: scheduler.retryInterval $RETRY_INTERVAL, other keys default"
if [[ -s "$WORK/problems" ]]; then
    echo
    echo "problems:"
    cat "$WORK/problems"
fi
