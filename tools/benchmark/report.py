#!/usr/bin/env python3
"""Parses the h2load and bench-client outputs that run.sh collected and prints the table.

usage: report.py WORKDIR ROUNDS

WORKDIR holds, per server S in (ours, theirs) and round R in 1...ROUNDS:
  S.R.warmup.out                      h2load stdout, fixed request count (checks response sizes)
  S.R.unary1.out / S.R.unary1.log     h2load stdout and --log-file, 1 stream
  S.R.unary64.out / S.R.unary64.log   h2load stdout and --log-file, 64 concurrent streams
  S.R.stream.out / S.R.stream.log     h2load, server streaming (COUNT x 1 MiB per request)
  S.R.swiftstream.out                 bench-client stream (grpc-swift-2 client)
Each figure is the best over the rounds.  With h2load -D, "requests:" and the log cover the
measured period only, while "traffic:" also counts the warm-up, so sizes are checked on warmup.out.
"""
import math
import os
import re
import sys

work = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 1
SERVERS = ("ours", "theirs")
notes = []


def read(name):
    path = os.path.join(work, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return f.read()


def h2load_summary(name):
    """req/s, counters and data bytes from one h2load stdout."""
    text = read(name + ".out")
    if text is None:
        return None
    s = {}
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", text)
    if m:
        s["seconds"] = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
        s["rps"] = float(m.group(3))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", text)
    if m:
        keys = ("total", "started", "done", "succeeded", "failed", "errored", "timeout")
        s.update({k: int(v) for k, v in zip(keys, m.groups())})
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if m:
        s["2xx"], s["3xx"], s["4xx"], s["5xx"] = map(int, m.groups())
    m = re.search(r"traffic: .*\((\d+)\) data", text)
    if m:
        s["data"] = int(m.group(1))
    return s


def latencies_us(name):
    text = read(name + ".log")
    if text is None:
        return []
    out = []
    for line in text.splitlines():
        cols = line.split("\t")
        if len(cols) >= 3 and cols[1] != "-1":
            out.append(int(cols[2]))
    return sorted(out)


def pct(sorted_values, p):
    if not sorted_values:
        return None
    k = max(0, math.ceil(p / 100 * len(sorted_values)) - 1)
    return sorted_values[k]


def check_run(server, name, label, expected_data_per_req=None):
    s = h2load_summary(f"{server}.{name}")
    if s is None:
        notes.append(f"{server} {label}: no h2load output")
        return None
    bad = {k: s.get(k, 0) for k in ("failed", "errored", "timeout", "3xx", "4xx", "5xx") if s.get(k, 0)}
    if bad or s.get("succeeded", 0) == 0:
        notes.append(f"{server} {label}: h2load reported {bad or 'no successful requests'}")
    if expected_data_per_req and s.get("succeeded") and "data" in s:
        per = s["data"] / s["succeeded"]
        if abs(per - expected_data_per_req) > max(2, 0.01 * expected_data_per_req):
            notes.append(f"{server} {label}: {per:.1f} response data bytes per request, expected {expected_data_per_req}")
    return s


def fmt(v, unit):
    if v is None:
        return "n/a"
    if unit == "us":
        return f"{v:,.0f} us"
    if unit == "rps":
        return f"{v:,.0f} req/s"
    if unit == "MBps":
        return f"{v:,.1f} MB/s"
    return str(v)


expected_unary = int(os.environ.get("UNARY_EXPECTED_DATA", "0")) or None
expected_stream = int(os.environ.get("STREAM_EXPECTED_DATA", "0")) or None

rows = []  # (figure, ours, theirs, unit, higher_is_better)


def best(values, higher_is_better):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return max(values) if higher_is_better else min(values)


per = {srv: {} for srv in SERVERS}
for srv in SERVERS:
    runs = []
    for r in range(1, rounds + 1):
        pre = f"{srv}.{r}"
        run = {}
        check_run(srv, f"{r}.warmup", f"round {r} unary warm-up", expected_unary)
        for name, label in (("unary1", "unary 1 stream"), ("unary64", "unary 64 streams")):
            s = check_run(srv, f"{r}.{name}", f"round {r} {label}")
            lat = latencies_us(f"{pre}.{name}")
            if s and s.get("succeeded") and abs(len(lat) - s["succeeded"]) > 1:
                notes.append(f"{srv} round {r} {label}: {len(lat)} log rows for {s['succeeded']} succeeded requests")
            run[name] = {"rps": s.get("rps") if s else None, "p50": pct(lat, 50), "p99": pct(lat, 99)}
        s = check_run(srv, f"{r}.stream", f"round {r} server streaming (h2load)",
                      expected_stream)
        lat = latencies_us(f"{pre}.stream")
        run["stream"] = None
        if s and s.get("data") and lat:
            # response DATA bytes over the summed call durations
            run["stream"] = s["data"] / (sum(lat) / 1e6) / 1e6
        text = read(f"{pre}.swiftstream.out") or ""
        m = re.search(r"MBps=([\d.]+)", text)
        run["swiftstream"] = float(m.group(1)) if m else None
        if not m:
            notes.append(f"{srv} round {r} server streaming (grpc-swift-2 client): {text.strip() or 'no output'}")
        runs.append(run)
    for name in ("unary1", "unary64"):
        per[srv][name] = {
            "rps": best([x[name]["rps"] for x in runs], True),
            "p50": best([x[name]["p50"] for x in runs], False),
            "p99": best([x[name]["p99"] for x in runs], False),
        }
    per[srv]["stream"] = best([x["stream"] for x in runs], True)
    per[srv]["swiftstream"] = best([x["swiftstream"] for x in runs], True)
    per[srv]["all"] = runs

for name, label in (("unary1", "unary, 1 stream"), ("unary64", "unary, 64 streams")):
    rows.append((f"{label}: requests/s", per["ours"][name]["rps"], per["theirs"][name]["rps"], "rps", True))
    rows.append((f"{label}: p50 latency", per["ours"][name]["p50"], per["theirs"][name]["p50"], "us", False))
    rows.append((f"{label}: p99 latency", per["ours"][name]["p99"], per["theirs"][name]["p99"], "us", False))
rows.append(("server streaming 1 MiB msgs (h2load client)", per["ours"]["stream"], per["theirs"]["stream"], "MBps", True))
rows.append(("server streaming 1 MiB msgs (grpc-swift-2 client)", per["ours"]["swiftstream"], per["theirs"]["swiftstream"], "MBps", True))

table = [("figure", "ours", "grpc-swift-2", "ratio", "≥1.0")]
for fig, o, t, unit, hib in rows:
    if o and t:
        r = (o / t) if hib else (t / o)
        ratio, ok = f"{r:.2f}", ("yes" if r >= 1.0 else "NO")
    else:
        ratio, ok = "n/a", "n/a"
    table.append((fig, fmt(o, unit), fmt(t, unit), ratio, ok))

w = [max(len(r[i]) for r in table) for i in range(5)]
line = lambda r: "| " + " | ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)) + " |"
print(line(table[0]))
print("|" + "|".join("-" * (x + 2) for x in w) + "|")
for r in table[1:]:
    print(line(r))
print()
print("per round (" + ", ".join(("unary1 rps", "unary64 rps", "h2load stream MB/s", "swift-client stream MB/s")) + "):")
for srv in SERVERS:
    cells = []
    for i, x in enumerate(per[srv]["all"], 1):
        vals = (x["unary1"]["rps"], x["unary64"]["rps"], x["stream"], x["swiftstream"])
        cells.append(f"r{i}: " + " / ".join("n/a" if v is None else f"{v:,.0f}" for v in vals))
    print(f"  {srv:6}  " + "   ".join(cells))
print()
print("ratio = ours/theirs for throughput; theirs/ours for latency (so >= 1.0 always means ours is at least as good).")
if notes:
    print("problems seen:")
    for n in notes:
        print("  - " + n)
else:
    print("problems seen: none (no failed/errored h2load requests, response sizes as expected).")
