#!/usr/bin/env python3
"""Load driver for the scheduler benchmark: simulated dfdaemon peers over the real gRPC API.

usage: driver.py --target 127.0.0.1:PORT --pid PID --metrics-port PORT --scenario one-task|many-tasks
                 [--peers N] [--tasks T] [--peers-per-task P] [--hosts H] [--concurrency C]
                 [--timeout SECONDS] [--json FILE]

Each host is announced with AnnounceHost and gets its own gRPC channel (one HTTP/2 connection,
as one dfdaemon has). Each peer opens its own AnnouncePeer stream on its host's channel:

  register ──► first answer (latency measured here, client side)
     NormalTaskResponse        ─► DownloadPeerStarted, DownloadPieceFinished (from the first
                                  candidate parent), DownloadPeerFinished (ends the stream)
     NeedBackToSourceResponse  ─► DownloadPeerBackToSourceStarted, DownloadPieceBackToSourceFinished,
                                  DownloadPeerBackToSourceFinished (ends the stream)
     EmptyTaskResponse         ─► DownloadPeerFinished

The first peer of each task ("origin peer") is registered before the others of its task: it is
sent back to source, reports DownloadPeerBackToSourceStarted and a few back-to-source pieces, and
keeps its stream open until the scenario's other peers are done, so that later peers can be given
parents. At most --concurrency peers are between "register sent" and "stream closed" at a time.

Prints one JSON object (also written to --json) with the figures; report.py formats the table.
No assertions: it measures.
"""
import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time
import urllib.request

import grpc
from google.protobuf import duration_pb2

from dragonfly_api import common_pb2, scheduler_pb2, scheduler_pb2_grpc

PIECE_LENGTH = 4 * 1024 * 1024
ORIGIN_PIECES = 4


def clk_tck():
    return os.sysconf(os.sysconf_names["SC_CLK_TCK"])


def proc_cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / clk_tck()


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "Threads"):
                parts = value.split()
                out[key] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1) \
                    if key != "Threads" else int(parts[0])
    return out


def system_busy_ticks():
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


def self_cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def scrape_metrics(port):
    """The scheduler's /metrics as {name{labels}: value} for the series we read."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except Exception as e:  # noqa: BLE001 - a benchmark reports what it could not read
        return {"error": str(e)}
    wanted = ("dragonfly_scheduler_register_peer_duration_seconds", "dragonfly_scheduler_announce_peer",
              "dragonfly_scheduler_concurrent_schedule_total", "dragonfly_scheduler_schedule_duration_seconds")
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(wanted):
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


def histogram(metrics, name):
    """Cumulative buckets [(le, count)] and the count of one Prometheus histogram."""
    buckets = []
    for key, value in metrics.items():
        if key.startswith(name + "_bucket{"):
            le = key.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), value))
    buckets.sort()
    count = metrics.get(name + "_count", 0.0)
    total = metrics.get(name + "_sum", 0.0)
    return buckets, count, total


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[k]


def summarize(values):
    v = sorted(values)
    if not v:
        return {"n": 0}
    return {"n": len(v), "p50": percentile(v, 0.50), "p90": percentile(v, 0.90), "p99": percentile(v, 0.99),
            "p999": percentile(v, 0.999), "max": v[-1], "mean": sum(v) / len(v)}


def fifths(samples):
    """p50/p99 of each fifth of the registrations, in the order they were sent: shows whether
    the answer gets slower as the task (or the scheduler) fills up."""
    ordered = [lat for lat, at, _, _ in sorted(samples, key=lambda s: s[1])]
    n = len(ordered)
    out = []
    for i in range(5):
        part = sorted(ordered[i * n // 5:(i + 1) * n // 5])
        if part:
            out.append({"p50": percentile(part, 0.5), "p99": percentile(part, 0.99), "n": len(part)})
    return out


class Stats:
    def __init__(self):
        self.latency = {"normal": [], "back_to_source": [], "empty": []}
        self.errors = {}
        self.first_error = None
        self.origin_answers = {}
        self.completed = 0
        self.samples = []  # (latency, start offset, peer id, kind)
        self.t_start = time.perf_counter()

    def record(self, kind, t0, t1, peer_id):
        self.latency.setdefault(kind, []).append(t1 - t0)
        self.samples.append((t1 - t0, t0 - self.t_start, peer_id, kind))

    def error(self, where, exc):
        key = f"{where}: {type(exc).__name__}"
        if isinstance(exc, (grpc.aio.AioRpcError, StatusError)):
            key = f"{where}: {exc.code().name if callable(exc.code) else exc.code.name}"
        self.errors[key] = self.errors.get(key, 0) + 1
        if self.first_error is None:
            detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
            self.first_error = f"{key}: {detail}"


def req(host_id, task_id, peer_id, **kw):
    return scheduler_pb2.AnnouncePeerRequest(host_id=host_id, task_id=task_id, peer_id=peer_id, **kw)


def download_for(task_id):
    return common_pb2.Download(url=f"http://origin.invalid/blobs/{task_id}", type=common_pb2.STANDARD,
                               priority=common_pb2.LEVEL0, piece_length=PIECE_LENGTH)


def piece(number, parent_id=None, back_to_source=False):
    p = common_pb2.Piece(number=number, offset=number * PIECE_LENGTH, length=PIECE_LENGTH,
                         digest="crc32:00000000", cost=duration_pb2.Duration(nanos=20_000_000))
    if parent_id:
        p.parent_id = parent_id
    p.traffic_type = common_pb2.BACK_TO_SOURCE if back_to_source else common_pb2.REMOTE_PEER
    return p


def answer_kind(response):
    which = response.WhichOneof("response")
    return {"normal_task_response": "normal", "need_back_to_source_response": "back_to_source",
            "empty_task_response": "empty"}.get(which, which or "none")


class StatusError(Exception):
    def __init__(self, code, details):
        super().__init__(f"{code.name}: {details}")
        self.code = code


async def check_status(call):
    code = await call.code()
    if code != grpc.StatusCode.OK:
        raise StatusError(code, await call.details())


async def finish_call(call):
    await call.done_writing()
    # Drain anything left and wait for the status; an error status raises here.
    while await call.read() is not grpc.aio.EOF:
        pass
    await check_status(call)


async def run_peer(stub, host_id, task_id, peer_id, stats):
    """One ordinary peer: register, first answer, a short download report, close."""
    call = stub.AnnouncePeer()
    try:
        register = req(host_id, task_id, peer_id,
                       register_peer_request=scheduler_pb2.RegisterPeerRequest(download=download_for(task_id)))
        t0 = time.perf_counter()
        await call.write(register)
        response = await call.read()
        t1 = time.perf_counter()
        if response is grpc.aio.EOF:
            await check_status(call)
            raise RuntimeError("stream ended without an answer")
        kind = answer_kind(response)
        stats.record(kind, t0, t1, peer_id)
        if kind == "normal":
            parents = response.normal_task_response.candidate_parents
            parent_id = parents[0].id if parents else None
            await call.write(req(host_id, task_id, peer_id,
                                 download_peer_started_request=scheduler_pb2.DownloadPeerStartedRequest()))
            await call.write(req(host_id, task_id, peer_id, download_piece_finished_request=(
                scheduler_pb2.DownloadPieceFinishedRequest(piece=piece(0, parent_id)))))
            await call.write(req(host_id, task_id, peer_id,
                                 download_peer_finished_request=scheduler_pb2.DownloadPeerFinishedRequest()))
        elif kind == "back_to_source":
            await call.write(req(host_id, task_id, peer_id, download_peer_back_to_source_started_request=(
                scheduler_pb2.DownloadPeerBackToSourceStartedRequest())))
            await call.write(req(host_id, task_id, peer_id, download_piece_back_to_source_finished_request=(
                scheduler_pb2.DownloadPieceBackToSourceFinishedRequest(piece=piece(0, back_to_source=True)))))
            await call.write(req(host_id, task_id, peer_id, download_peer_back_to_source_finished_request=(
                scheduler_pb2.DownloadPeerBackToSourceFinishedRequest())))
        else:
            await call.write(req(host_id, task_id, peer_id,
                                 download_peer_finished_request=scheduler_pb2.DownloadPeerFinishedRequest()))
        await finish_call(call)
        stats.completed += 1
    except Exception as e:  # noqa: BLE001
        stats.error("peer", e)
        call.cancel()


async def run_origin_peer(stub, host_id, task_id, peer_id, stats, ready, release):
    """The task's first peer: goes back to source, reports a few pieces, holds its stream
    until `release` is set, then reports back-to-source success."""
    call = stub.AnnouncePeer()
    try:
        register = req(host_id, task_id, peer_id,
                       register_peer_request=scheduler_pb2.RegisterPeerRequest(download=download_for(task_id)))
        t0 = time.perf_counter()
        await call.write(register)
        response = await call.read()
        t1 = time.perf_counter()
        if response is grpc.aio.EOF:
            await check_status(call)
            raise RuntimeError("stream ended without an answer")
        kind = answer_kind(response)
        stats.record(kind, t0, t1, peer_id)
        stats.origin_answers[kind] = stats.origin_answers.get(kind, 0) + 1
        if kind == "normal":
            await call.write(req(host_id, task_id, peer_id,
                                 download_peer_started_request=scheduler_pb2.DownloadPeerStartedRequest()))
        else:
            await call.write(req(host_id, task_id, peer_id, download_peer_back_to_source_started_request=(
                scheduler_pb2.DownloadPeerBackToSourceStartedRequest())))
            for n in range(ORIGIN_PIECES):
                await call.write(req(host_id, task_id, peer_id, download_piece_back_to_source_finished_request=(
                    scheduler_pb2.DownloadPieceBackToSourceFinishedRequest(piece=piece(n, back_to_source=True)))))
        ready.set()
        await release.wait()
        if kind == "normal":
            await call.write(req(host_id, task_id, peer_id,
                                 download_peer_finished_request=scheduler_pb2.DownloadPeerFinishedRequest()))
        else:
            await call.write(req(host_id, task_id, peer_id, download_peer_back_to_source_finished_request=(
                scheduler_pb2.DownloadPeerBackToSourceFinishedRequest())))
        await finish_call(call)
        stats.completed += 1
    except Exception as e:  # noqa: BLE001
        stats.error("origin peer", e)
        ready.set()
        call.cancel()


async def pool(jobs, concurrency):
    """Runs the coroutine factories in `jobs` with at most `concurrency` at once."""
    it = iter(jobs)

    async def worker():
        for job in it:
            await job()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def announce_hosts(stub, n, run_id):
    ids = []
    for i in range(n):
        host_id = f"bench-{run_id}-host-{i:04d}"
        host = common_pb2.Host(
            id=host_id, type=0, hostname=f"bench-host-{i:04d}", ip=f"127.0.{1 + i // 250}.{1 + i % 250}",
            port=4000, download_port=4001,
            network=common_pb2.Network(max_tx_bandwidth=10_000_000_000, max_rx_bandwidth=10_000_000_000,
                                       idc="bench-idc", location="bench|zone-a"))
        await stub.AnnounceHost(scheduler_pb2.AnnounceHostRequest(host=host,
                                                                  interval=duration_pb2.Duration(seconds=300)))
        ids.append(host_id)
    return ids


async def scenario(args):
    run_id = f"{os.getpid()}"
    opts = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_receive_message_length", 64 << 20)]
    control = grpc.aio.insecure_channel(args.target, options=opts)
    await asyncio.wait_for(control.channel_ready(), 10)
    control_stub = scheduler_pb2_grpc.SchedulerStub(control)
    host_ids = await announce_hosts(control_stub, args.hosts, run_id)
    # One HTTP/2 connection per simulated host, as one dfdaemon keeps one to its scheduler.
    channels = [grpc.aio.insecure_channel(args.target, options=opts + [("bench.host", i)])
                for i in range(args.hosts)]
    await asyncio.gather(*(asyncio.wait_for(c.channel_ready(), 10) for c in channels))
    stubs = [scheduler_pb2_grpc.SchedulerStub(c) for c in channels]

    if args.scenario == "one-task":
        tasks, per_task = 1, args.peers
    else:
        tasks, per_task = args.tasks, args.peers_per_task
    task_ids = [f"bench-{run_id}-task-{t:05d}" for t in range(tasks)]

    def host_of(t, j):
        # Peers of one task sit on different hosts while there are hosts enough.
        return (t * per_task + j) % args.hosts

    stats = Stats()
    release = asyncio.Event()
    cpu_server0, cpu_self0, sys0 = proc_cpu_seconds(args.pid), self_cpu_seconds(), system_busy_ticks()
    start = time.perf_counter()
    stats.t_start = start

    # Phase 1: each task's origin peer (back to source, holds its stream).
    origin_tasks = []
    readies = []

    def origin_job(t):
        async def job():
            ready = asyncio.Event()
            readies.append(ready)
            h = host_of(t, 0)
            origin_tasks.append(asyncio.create_task(run_origin_peer(
                stubs[h], host_ids[h], task_ids[t], f"{task_ids[t]}-peer-00000", stats, ready, release)))
            await ready.wait()
        return job

    await pool([origin_job(t) for t in range(tasks)], min(args.concurrency, tasks))
    phase1_end = time.perf_counter()

    # Phase 2: the other peers, in a shuffled order across tasks, bounded concurrency.
    order = [(t, j) for t in range(tasks) for j in range(1, per_task)]
    random.Random(42).shuffle(order)

    def peer_job(t, j):
        h = host_of(t, j)
        return lambda: run_peer(stubs[h], host_ids[h], task_ids[t], f"{task_ids[t]}-peer-{j:05d}", stats)

    await pool([peer_job(t, j) for t, j in order], args.concurrency)
    end = time.perf_counter()
    cpu_server1, cpu_self1, sys1 = proc_cpu_seconds(args.pid), self_cpu_seconds(), system_busy_ticks()
    status_loaded = proc_status(args.pid)
    metrics = scrape_metrics(args.metrics_port)

    release.set()
    await asyncio.gather(*origin_tasks)
    for c in channels:
        await c.close()
    await control.close()

    wall = end - start
    registrations = tasks * per_task
    all_latency = [x for v in stats.latency.values() for x in v]
    buckets, count, total = histogram(metrics, "dragonfly_scheduler_register_peer_duration_seconds")
    server_hist = {"count": count, "mean": (total / count) if count else None,
                   "le": {str(le): c for le, c in buckets}}
    return {
        "scenario": args.scenario,
        "tasks": tasks, "peers_per_task": per_task, "hosts": args.hosts, "concurrency": args.concurrency,
        "registrations": registrations,
        "answered": len(all_latency),
        "completed_streams": stats.completed,
        "wall_seconds": wall,
        "phase1_seconds": phase1_end - start,
        "registrations_per_second": len(all_latency) / wall if wall > 0 else None,
        "latency_all": summarize(all_latency),
        "latency_by_answer": {k: summarize(v) for k, v in stats.latency.items() if v},
        "answers": {k: len(v) for k, v in stats.latency.items() if v},
        "origin_answers": stats.origin_answers,
        "errors": stats.errors,
        "first_error": stats.first_error,
        "latency_by_fifth": fifths(stats.samples),
        "slowest": [{"latency": l, "at": at, "peer": p, "answer": k}
                    for l, at, p, k in sorted(stats.samples, reverse=True)[:5]],
        "system_busy_cpus": (sys1[0] - sys0[0]) / max(1, sys1[1] - sys0[1]) * os.cpu_count(),
        "cpus": os.cpu_count(),
        "server_cpu_seconds": cpu_server1 - cpu_server0,
        "client_cpu_seconds": cpu_self1 - cpu_self0,
        "server_status": status_loaded,
        "server_register_histogram": server_hist,
        "metrics_error": metrics.get("error"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True)
    ap.add_argument("--pid", type=int, required=True, help="the scheduler's PID (CPU and RSS are read from /proc)")
    ap.add_argument("--metrics-port", type=int, required=True)
    ap.add_argument("--scenario", choices=("one-task", "many-tasks"), required=True)
    ap.add_argument("--peers", type=int, default=5000, help="one-task: peers of the task")
    ap.add_argument("--tasks", type=int, default=1000, help="many-tasks: number of tasks")
    ap.add_argument("--peers-per-task", type=int, default=10, help="many-tasks: peers per task")
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=300, help="hard limit for the scenario, seconds")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args()

    async def bounded():
        return await asyncio.wait_for(scenario(args), args.timeout)

    try:
        result = asyncio.run(bounded())
    except asyncio.TimeoutError:
        result = {"scenario": args.scenario, "error": f"timed out after {args.timeout:.0f} s"}
    text = json.dumps(result, indent=1, sort_keys=True)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
