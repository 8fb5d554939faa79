#!/usr/bin/env bash
# dfdaemon benchmark (prints figures; asserts nothing). On 127.0.0.1, release builds:
#  (a) cache hit: dfget of a 1 GiB task the daemon already holds, vs nginx serving the
#      same file to curl; ratio = nginx time / our time (>= 1 means we are as fast).
#  (b) peer to peer: a second dfdaemon fetching the 1 GiB task from the first, MB/s, over
#      our piece stream; and a third (download.protocol: tcp) over Vortex, side by side.
#      d and e repeat b and c into page-cache memory freed a moment before (a busy node's case).
#  (c) the first dfdaemon's peak RSS while downloading 1 GiB from the origin.
# SIZE_MIB overrides the size (default 1024). nginx is used when installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
size_mib=${SIZE_MIB:-1024}
for p in scheduler dfdaemon dfget; do
    flock /tmp/swift-build.lock swift build -c release --product "$p" > /tmp/bench-dfdaemon-build.log 2>&1 \
        || { tail -20 /tmp/bench-dfdaemon-build.log; exit 1; }
done
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
start() {
    local name=$1; shift
    "$@" > "$work/$name.out" 2> "$work/$name.log" & pids+=($!)
    for _ in $(seq 100); do grep -q LISTENING "$work/$name.out" && return; sleep 0.1; done
    echo "$name did not start" >&2; cat "$work/$name.log" >&2; exit 1
}
now() { date +%s.%N; }
mkdir -p "$work/origin"
head -c $((size_mib * 1024 * 1024)) /dev/urandom > "$work/origin/big.bin"
start origin .venv/bin/python Tests/integration/helpers/range_origin.py 0 "$work/origin"
origin=127.0.0.1:$(awk '{print $2}' "$work/origin.out")
start sched "$bin/scheduler" --listen-ip 127.0.0.1 --port 0 --metrics-port 0 --data-dir "$work/s"
sched=127.0.0.1:$(awk '{print $2}' "$work/sched.out")
# Outputs go to the work directory, wherever TMPDIR puts it (TMPDIR=/dev/shm measures the
# data path without the disk).
printf 'download:\n  allowedOutputDirs: ["%s"]\n' "$work" > "$work/ab.yaml"
start a "$bin/dfdaemon" --listen-ip 127.0.0.1 --port 0 --hostname a --scheduler "$sched" --data-dir "$work/a" --unix-socket "$work/a.sock" \
    --config "$work/ab.yaml"
start b "$bin/dfdaemon" --listen-ip 127.0.0.1 --port 0 --hostname b --scheduler "$sched" --data-dir "$work/b" --unix-socket "$work/b.sock" \
    --config "$work/ab.yaml"
printf 'download:\n  protocol: tcp\n  allowedOutputDirs: ["%s"]\n' "$work" > "$work/c.yaml"
start c "$bin/dfdaemon" --listen-ip 127.0.0.1 --port 0 --hostname c --scheduler "$sched" --data-dir "$work/c" --unix-socket "$work/c.sock" \
    --config "$work/c.yaml"
# d and e repeat b and c into warm page-cache memory (below).
start d "$bin/dfdaemon" --listen-ip 127.0.0.1 --port 0 --hostname d --scheduler "$sched" --data-dir "$work/d" --unix-socket "$work/d.sock" \
    --config "$work/ab.yaml"
start e "$bin/dfdaemon" --listen-ip 127.0.0.1 --port 0 --hostname e --scheduler "$sched" --data-dir "$work/e" --unix-socket "$work/e.sock" \
    --config "$work/c.yaml"
apid=${pids[2]}
sleep 0.5

t0=$(now); "$bin/dfget" "http://$origin/big.bin" -O "$work/first.bin" --daemon "unix:$work/a.sock" --quiet; t1=$(now)
rss_a=$(awk '/VmHWM/ {print int($2/1024)}' /proc/$apid/status)
# CPU seconds (user + system) a process has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
sync
a0=$(cpu "$apid"); b0=$(cpu "${pids[3]}"); c0=$(cpu "${pids[4]}")
# PERF_DATA=file: call graphs of a while it serves b (PERF_OF=b: of b; PERF_OF=e: of e, the
# warm Vortex child, below), for `perf report -i file`.
perf_target=$apid; [ "${PERF_OF:-a}" = b ] && perf_target=${pids[3]}
if [ -n "${PERF_DATA:-}" ] && [ "${PERF_OF:-a}" != e ]; then perf record -q -g -o "$PERF_DATA" -p "$perf_target" 2>/dev/null & perf_pid=$!; sleep 0.3; fi
t2=$(now); "$bin/dfget" "http://$origin/big.bin" -O "$work/p2p.bin" --daemon "unix:$work/b.sock" --quiet; t3=$(now)
if [ -n "${PERF_DATA:-}" ] && [ "${PERF_OF:-a}" != e ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
a1=$(cpu "$apid"); b1=$(cpu "${pids[3]}")
sync; t4=$(now); "$bin/dfget" "http://$origin/big.bin" -O "$work/hit.bin" --daemon "unix:$work/a.sock" --quiet; t5=$(now)
sync; a2=$(cpu "$apid")
t8=$(now); "$bin/dfget" "http://$origin/big.bin" -O "$work/vortex.bin" --daemon "unix:$work/c.sock" --quiet; t9=$(now)
a3=$(cpu "$apid"); c1=$(cpu "${pids[4]}")
# The machine's own cost of putting the task's bytes into new page-cache pages: dd into a new
# file, its system CPU. A child pays it once, for its store. On a VM that hands free memory
# back to its host (free page reporting) it is most of a child's CPU, and it falls to a tenth
# when the pages were freed a moment ago; a node whose memory is in use (a full page cache)
# gets its pages that way. So d and e repeat b and c each right after a file of the task's
# size is written and removed (BENCHMARKS.md, session 15).
fill_and_free() {
    .venv/bin/python - "$work/floor.bin" "$size_mib" <<'PY'
import resource, subprocess, sys
subprocess.run(["dd", "if=/dev/zero", f"of={sys.argv[1]}", "bs=1M", f"count={sys.argv[2]}", "status=none"], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime)
PY
    rm -f "$work/floor.bin"
}
floor_s=$(fill_and_free)
# The disk's own ceiling for a child's work: each GiB a child receives is a GiB read by its
# parent and two written (its store and the user's file), all past the page cache. dd does
# the three at once, on files of the task's size; a child cannot beat the time they take.
ceiling() {
    local t0 t1
    sync; t0=$(now)
    dd if="$work/origin/big.bin" of=/dev/null bs=1M iflag=direct status=none & local r=$!
    dd if=/dev/zero of="$work/ceiling1.bin" bs=1M count="$size_mib" oflag=direct status=none & local w1=$!
    dd if=/dev/zero of="$work/ceiling2.bin" bs=1M count="$size_mib" oflag=direct status=none
    wait "$r" "$w1"; t1=$(now)
    rm -f "$work/ceiling1.bin" "$work/ceiling2.bin"
    echo "$size_mib * 1.048576 / ($t1 - $t0)" | bc -l
}
ceiling_mbs=$(ceiling)
d0=$(cpu "${pids[5]}"); t10=$(now); "$bin/dfget" "http://$origin/big.bin" -O "$work/warm-grpc.bin" --daemon "unix:$work/d.sock" --quiet; t11=$(now); d1=$(cpu "${pids[5]}")
fill_and_free > /dev/null
if [ -n "${PERF_DATA:-}" ] && [ "${PERF_OF:-}" = e ]; then perf record -q -g -o "$PERF_DATA" -p "${pids[6]}" 2>/dev/null & perf_pid=$!; sleep 0.3; fi
e0=$(cpu "${pids[6]}"); t12=$(now); "$bin/dfget" "http://$origin/big.bin" -O "$work/warm-tcp.bin" --daemon "unix:$work/e.sock" --quiet; t13=$(now); e1=$(cpu "${pids[6]}")
if [ -n "${PERF_DATA:-}" ] && [ "${PERF_OF:-}" = e ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
cmp -s "$work/warm-grpc.bin" "$work/origin/big.bin" && cmp -s "$work/warm-tcp.bin" "$work/origin/big.bin" \
    || { echo "content differs (warm runs)!" >&2; exit 1; }
rm -f "$work/warm-grpc.bin" "$work/warm-tcp.bin"
# Peak RSS over the whole run so far: a fetched from the origin and served b and c; b and
# c each moved the whole task in from a peer.
peak() { awk '/VmHWM/ {print int($2/1024)}' "/proc/$1/status"; }
rss_a_all=$(peak "${pids[2]}"); rss_b=$(peak "${pids[3]}"); rss_c=$(peak "${pids[4]}")
cmp -s "$work/p2p.bin" "$work/origin/big.bin" && cmp -s "$work/hit.bin" "$work/origin/big.bin" \
    && cmp -s "$work/vortex.bin" "$work/origin/big.bin" || { echo "content differs!" >&2; exit 1; }
c_port=$(awk '{print $2}' "$work/c.out")
vortex_pieces=$(curl -s "http://127.0.0.1:$c_port/metrics" | awk -F' ' '/^dragonfly_dfdaemon_parent_piece_total\{transport="vortex"\}/ {print $2}')
[ -n "$vortex_pieces" ] || { echo "dfdaemon c fetched nothing over Vortex" >&2; exit 1; }
rm -f "$work/vortex.bin" "$work/p2p.bin" "$work/hit.bin" "$work/first.bin"

nginx_s=""
if command -v nginx >/dev/null; then
    cat > "$work/nginx.conf" <<CONF
daemon off; worker_processes 1; pid $work/nginx.pid; error_log $work/nginx.err;
events {}
http { access_log off; sendfile on; server { listen 127.0.0.1:18990; root $work/origin; } }
CONF
    # nginx's workers drop to an unprivileged user: give it its own readable copy.
    mkdir -p "$work/www" && chmod 755 "$work" "$work/www" && cp "$work/origin/big.bin" "$work/www/" && chmod 644 "$work/www/big.bin"
    sed -i "s|root $work/origin|root $work/www|" "$work/nginx.conf"
    nginx -c "$work/nginx.conf" -p "$work" & pids+=($!)
    sleep 0.5
    sync; t6=$(now); curl -sf -o "$work/nginx.bin" http://127.0.0.1:18990/big.bin; t7=$(now)
    cmp -s "$work/nginx.bin" "$work/origin/big.bin" || { echo "nginx served something else" >&2; exit 1; }
    nginx_s=$(echo "$t7 - $t6" | bc -l)
fi


first_s=$(echo "$t1 - $t0" | bc -l); p2p_s=$(echo "$t3 - $t2" | bc -l); hit_s=$(echo "$t5 - $t4" | bc -l)
vortex_s=$(echo "$t9 - $t8" | bc -l)
printf '\ndfdaemon benchmark, %d MiB task, loopback, release, 2 cores shared by every process\n' "$size_mib"
printf '%-52s %12s %10s\n' figure value target
printf '%-52s %10.2f s\n' "first download (origin via dfdaemon a)" "$first_s"
printf '%-52s %8.0f MB/s %10s\n' "(b) peer to peer, dfdaemon b from a, piece stream" "$(echo "$size_mib * 1.048576 / $p2p_s" | bc -l)" ">= 604"
printf '%-52s %8.0f MB/s %10s\n' "(b) peer to peer, dfdaemon c over Vortex ($vortex_pieces pieces)" "$(echo "$size_mib * 1.048576 / $vortex_s" | bc -l)" ">= 604"
printf '%-52s %8.0f MB/s\n' "disk ceiling: 1 read + 2 writes at once (dd, direct)" "$ceiling_mbs"
printf '%-52s %12.2f\n' "  b / ceiling, c / ceiling" "$(echo "$size_mib * 1.048576 / $p2p_s / $ceiling_mbs" | bc -l)"
printf '%-52s %12.2f\n' "" "$(echo "$size_mib * 1.048576 / $vortex_s / $ceiling_mbs" | bc -l)"
printf '%-52s %10.2f s\n' "dfdaemon a CPU serving b (piece stream), per GiB" "$(echo "($a1 - $a0) * 1024 / $size_mib" | bc -l)"
printf '%-52s %10.2f s\n' "dfdaemon a CPU serving c (Vortex), per GiB" "$(echo "($a3 - $a2) * 1024 / $size_mib" | bc -l)"
printf '%-52s %10.2f s\n' "dfdaemon b CPU receiving (piece stream), per GiB" "$(echo "($b1 - $b0) * 1024 / $size_mib" | bc -l)"
printf '%-52s %10.2f s\n' "dfdaemon c CPU receiving (Vortex), per GiB" "$(echo "($c1 - $c0) * 1024 / $size_mib" | bc -l)"
printf '%-52s %10.2f s\n' "kernel: dd into a new file (system CPU), per GiB" "$(echo "$floor_s * 1024 / $size_mib" | bc -l)"
printf '%-52s %8.0f MB/s %10s\n' "(b) warm pages: dfdaemon d from a, piece stream" "$(echo "$size_mib * 1.048576 / ($t11 - $t10)" | bc -l)" ">= 604"
printf '%-52s %8.0f MB/s %10s\n' "(b) warm pages: dfdaemon e from a, Vortex" "$(echo "$size_mib * 1.048576 / ($t13 - $t12)" | bc -l)" ">= 604"
printf '%-52s %10.2f s\n' "dfdaemon d CPU receiving (piece stream, warm), per GiB" "$(echo "($d1 - $d0) * 1024 / $size_mib" | bc -l)"
printf '%-52s %10.2f s\n' "dfdaemon e CPU receiving (Vortex, warm), per GiB" "$(echo "($e1 - $e0) * 1024 / $size_mib" | bc -l)"
printf '%-52s %10d MiB %10s\n' "(c) dfdaemon a peak RSS while downloading" "$rss_a" "<= 80"
printf '%-52s %10d MiB %10s\n' "(c) dfdaemon a peak RSS, download + serving b and c" "$rss_a_all" "<= 80"
printf '%-52s %10d MiB %10s\n' "(c) dfdaemon b peak RSS, piece stream child" "$rss_b" "<= 80"
printf '%-52s %10d MiB %10s\n' "(c) dfdaemon c peak RSS, Vortex child" "$rss_c" "<= 80"
printf '%-52s %10.2f s\n' "cache hit: dfget from a (file already held)" "$hit_s"
if [ -n "$nginx_s" ]; then
    printf '%-52s %10.2f s\n' "nginx + curl, same file" "$nginx_s"
    printf '%-52s %12.2f %10s\n' "(a) ratio nginx time / our cache-hit time" "$(echo "$nginx_s / $hit_s" | bc -l)" ">= 0.8"
else
    echo "(a) nginx not installed (apt-get install nginx-light): no ratio"
fi
