#!/usr/bin/env bash
# The main job, for now: set up, build, start a demo gRPC server (the interop
# TestService with health and reflection) on 127.0.0.1, and talk to it with dfrpc
# through reflection alone. Later issues turn this into the local Dragonfly cluster.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash tools/setup.sh
swift build -c release --product interop-server >/dev/null
swift build -c release --product dfrpc >/dev/null
bin=$(swift build -c release --show-bin-path)

port=${DEMO_PORT:-65010}
log=$(mktemp)
"$bin/interop-server" --port "$port" > "$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 50); do grep -q LISTENING "$log" && break; sleep 0.1; done
grep -q LISTENING "$log" || { echo "server did not start" >&2; exit 1; }
addr="127.0.0.1:$port"

run() { echo "\$ dfrpc $*"; "$bin/dfrpc" "$@"; echo; }
run list "$addr"
run describe "$addr" grpc.testing.TestService
run describe "$addr" scheduler.v2.AnnouncePeerRequest
run call "$addr" grpc.health.v1.Health/Check -d '{"service": "grpc.testing.TestService"}'
run call "$addr" grpc.testing.TestService/StreamingOutputCall -d '{"responseParameters": [{"size": 2}, {"size": 4}]}'
echo '{"payload": {"body": "AAAA"}} {"payload": {"body": "AAAAAAAA"}}' | run call "$addr" grpc.testing.TestService/StreamingInputCall -d @

if [ "${DEMO_KEEP_RUNNING:-0}" = 1 ]; then
    echo "demo server running on $addr (pid $pid); Ctrl-C to stop"
    wait "$pid"
fi
