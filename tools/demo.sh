#!/usr/bin/env bash
# The main job: set up, build, and run a local Dragonfly cluster on 127.0.0.1 — an origin
# HTTP server, the manager, a scheduler registered with it, a seed peer and a dfdaemon that
# find the scheduler through the manager — then download through it with dfget and show
# that the origin served each piece once.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash tools/setup.sh
for product in manager scheduler dfdaemon dfget dfrpc; do
    swift build -c release --product "$product" > .build-demo.log 2>&1 || { grep -E "error" .build-demo.log | head -20; exit 1; }
done
bin=$(swift build -c release --show-bin-path)

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

start() { # name, then the command; waits for its LISTENING line
    local name=$1; shift
    "$@" > "$work/$name.out" 2> "$work/$name.log" &
    pids+=($!)
    for _ in $(seq 100); do grep -q LISTENING "$work/$name.out" && return; sleep 0.1; done
    echo "$name did not start:" >&2; cat "$work/$name.log" >&2; exit 1
}

mkdir -p "$work/origin"
head -c $((24 * 1024 * 1024)) /dev/urandom > "$work/origin/model.bin"
start origin .venv/bin/python Tests/integration/helpers/range_origin.py 0 "$work/origin"
origin="127.0.0.1:$(awk '{print $2}' "$work/origin.out")"
DRAGONFLY_INITIAL_ROOT_PASSWORD=dragonfly-demo \
    start manager "$bin/manager" --listen-ip 127.0.0.1 --grpc-port 0 --rest-port 0 --data-dir "$work/manager"
manager="127.0.0.1:$(awk '{print $2}' "$work/manager.out")"
rest="127.0.0.1:$(awk '{print $4}' "$work/manager.out")"
start scheduler "$bin/scheduler" --listen-ip 127.0.0.1 --advertise-ip 127.0.0.1 --port 0 --metrics-port 0 \
    --data-dir "$work/scheduler" --manager "$manager"
sched="127.0.0.1:$(awk '{print $2}' "$work/scheduler.out")"
# The peers are given only the manager: it tells them which scheduler serves them.
start seed "$bin/dfdaemon" --seed-peer --listen-ip 127.0.0.1 --ip 127.0.0.1 --hostname seed --port 0 \
    --manager "$manager" --data-dir "$work/seed" --unix-socket "$work/seed.sock"
start peer "$bin/dfdaemon" --listen-ip 127.0.0.1 --ip 127.0.0.1 --hostname node-1 --port 0 \
    --manager "$manager" --data-dir "$work/peer" --unix-socket "$work/peer.sock"
for _ in $(seq 100); do
    grep -q "names schedulers" "$work/seed.log" && grep -q "names schedulers" "$work/peer.log" && break
    sleep 0.1
done
sleep 0.5  # both peers announced to the scheduler

echo "cluster: origin $origin, manager $manager (REST $rest), scheduler $sched, seed peer and dfdaemon on 127.0.0.1"
echo
token=$(curl -s -X POST "http://$rest/api/v1/users/signin" -d '{"name":"root","password":"dragonfly-demo"}' \
    | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["token"])')
echo "manager's schedulers (GET /api/v1/schedulers):"
curl -s -H "Authorization: Bearer $token" "http://$rest/api/v1/schedulers" \
    | .venv/bin/python -c 'import json,sys; [print("  ", s["hostname"], s["ip"], s["port"], s["state"]) for s in json.load(sys.stdin)]'
echo
echo "\$ dfget http://$origin/model.bin -O model.bin     (through the dfdaemon)"
time "$bin/dfget" "http://$origin/model.bin" -O "$work/model.bin" --daemon "unix:$work/peer.sock"
cmp "$work/model.bin" "$work/origin/model.bin" && echo "content identical to the origin's"
echo
echo "scheduler's view of the hosts:"
"$bin/dfrpc" call "$sched" scheduler.v2.Scheduler/ListHosts -d '{}' | grep -E '"(hostname|type)"' || true
echo
echo "origin saw $(grep -c '^GET' "$work/origin.log") ranged GETs for $(( (24 * 1024 * 1024 + 4194303) / 4194304 )) pieces"
peer_port=$(awk '{print $2}' "$work/peer.out")
echo "dfdaemon metrics (http://127.0.0.1:$peer_port/metrics):"
curl -s "http://127.0.0.1:$peer_port/metrics" | grep -E '^dragonfly_dfdaemon_(download|upload)_traffic' || true
