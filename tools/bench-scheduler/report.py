#!/usr/bin/env python3
"""Prints the scheduler benchmark table from the driver's JSON results.

usage: report.py RESULT.json...   (one file per run, in column order)

Rows are figures, columns are runs, and the last column is the issue's target where it has one.
Latency is client side: from writing RegisterPeerRequest to reading the first AnnouncePeerResponse
(NormalTask, NeedBackToSource or EmptyTask). The "server-side" rows come from the scheduler's own
dragonfly_scheduler_register_peer_duration_seconds histogram (register handled → answer written).
"""
import json
import sys

MIB = 1024 * 1024


def ms(x):
    return "-" if x is None else f"{x * 1000:.2f}"


def load(path):
    with open(path) as f:
        r = json.load(f)
    r["_path"] = path
    return r


def column_title(r):
    if r.get("scenario") == "one-task":
        what = f"A: 1 task x {r.get('peers_per_task', '?')}"
    else:
        what = f"B: {r.get('tasks', '?')} x {r.get('peers_per_task', '?')}"
    return f"{what}, {r.get('concurrency', '?')} in flight"


def hist_share(r, le):
    h = r.get("server_register_histogram") or {}
    count = h.get("count") or 0
    v = (h.get("le") or {}).get(str(float(le)))
    return None if not count or v is None else v / count


def pct(x):
    return "-" if x is None else f"{100 * x:.1f}%"


def rows(r):
    if "error" in r:
        return None
    lat = r["latency_all"]
    answers = r.get("answers", {})
    st = r.get("server_status", {})
    wall = r["wall_seconds"]
    errors = sum(r.get("errors", {}).values())
    server_hist = r.get("server_register_histogram") or {}
    return {
        "registrations (answered/sent)": f"{r['answered']}/{r['registrations']}",
        "registrations/s": f"{r['registrations_per_second']:.0f}",
        "register→1st answer p50 (ms)": ms(lat.get("p50")),
        "register→1st answer p99 (ms)": ms(lat.get("p99")),
        "  p99.9 / max (ms)": f"{ms(lat.get('p999'))} / {ms(lat.get('max'))}",
        "  p99 of Normal answers (ms)": ms(r["latency_by_answer"].get("normal", {}).get("p99")),
        "server-side mean (ms)": ms(server_hist.get("mean")),
        "server-side ≤1 ms / ≤5 ms": f"{pct(hist_share(r, 0.001))} / {pct(hist_share(r, 0.005))}",
        "answers Normal / BackToSource / Empty": "{} / {} / {}".format(
            answers.get("normal", 0), answers.get("back_to_source", 0), answers.get("empty", 0)),
        "stream errors": str(errors),
        "scheduler VmHWM (MiB)": f"{st.get('VmHWM', 0) / MIB:.1f}",
        "scheduler VmRSS at end (MiB)": f"{st.get('VmRSS', 0) / MIB:.1f}",
        "scheduler CPU (cores)": f"{r['server_cpu_seconds'] / wall:.2f}",
        "client CPU (cores, Python)": f"{r['client_cpu_seconds'] / wall:.2f}",
        "machine busy (cores of {})".format(r.get("cpus", "?")): f"{r.get('system_busy_cpus', 0):.2f}",
        "wall (s)": f"{wall:.1f}",
    }


TARGETS = {
    "register→1st answer p99 (ms)": "≤ 5 (at 5,000 peers)",
    "scheduler VmHWM (MiB)": "≤ 256",
    "scheduler VmRSS at end (MiB)": "≤ 256",
}


def main(paths):
    runs = [load(p) for p in paths]
    cols = [(column_title(r), rows(r)) for r in runs]
    labels = []
    for _, rs in cols:
        for k in (rs or {}):
            if k not in labels:
                labels.append(k)
    headers = ["figure"] + [t for t, _ in cols] + ["target"]
    table = []
    for label in labels:
        line = [label]
        for _, rs in cols:
            line.append("n/a" if rs is None else rs.get(label, "-"))
        line.append(TARGETS.get(label, ""))
        table.append(line)
    widths = [max(len(str(row[i])) for row in [headers] + table) for i in range(len(headers))]

    def fmt(row):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    print("Scheduler benchmark: scheduler.v2.Scheduler/AnnouncePeer over gRPC on 127.0.0.1,")
    print("one Python grpcio client process (asyncio), one HTTP/2 connection per simulated host.")
    print(fmt(headers))
    print("  ".join("-" * w for w in widths))
    for row in table:
        print(fmt(row))
    notes = []
    for title, r in zip((t for t, _ in cols), runs):
        if "error" in r:
            notes.append(f"{title}: {r['error']}")
            continue
        if r.get("errors"):
            notes.append(f"{title}: errors {r['errors']}; first: {r.get('first_error')}")
        if r.get("metrics_error"):
            notes.append(f"{title}: /metrics not read: {r['metrics_error']}")
        parts = r.get("latency_by_fifth") or []
        if len(parts) == 5:
            notes.append(f"{title}: p50/p99 ms by fifth of the peers, in send order: " + ", ".join(
                f"{ms(p['p50'])}/{ms(p['p99'])}" for p in parts))
        slow = r.get("slowest") or []
        if slow:
            notes.append(f"{title}: slowest answers: " + ", ".join(
                f"{s['latency'] * 1000:.1f} ms ({s['answer']} at +{s['at']:.2f} s)" for s in slow[:3]))
        origin = r.get("origin_answers") or {}
        if origin.get("normal"):
            notes.append(f"{title}: {origin['normal']} origin peers got parents instead of back-to-source")
    if notes:
        print()
        for n in notes:
            print("- " + n)


if __name__ == "__main__":
    main(sys.argv[1:])
