"""What operators see, checked against real tools: every /metrics endpoint through
`promtool check metrics`, the Grafana dashboard's queries through `promtool check rules`
and against the names we export, JSON logs with ids on download lines and no secrets, and
dfget's progress output on a terminal (a pty from `script`) and off one."""

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from conftest import binary, describe, run, tool

HELPERS = Path(__file__).parent / "helpers"
sys.path.insert(0, str(HELPERS))
from local_cluster import SIZE, LocalCluster  # noqa: E402
from manager_proc import ROOT_PASSWORD  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MIB = 1 << 20


def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as res:
        return res.read().decode()


def samples(text):
    """{(name, ((label, value), ...)): value} from Prometheus text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)', line)
        assert m, f"unparseable sample line: {line!r}"
        labels = tuple(sorted(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def total(found, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and want <= set(ls))


def families(text):
    return dict(re.findall(r'^# TYPE (\S+) (\S+)$', text, re.M))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tool("promtool", "prometheus")
    c = LocalCluster(tmp_path_factory.mktemp("ops"))
    # Traffic for every metric: a download through the dfdaemon (the seed peer fetches
    # from the origin, the dfdaemon from the seed peer), and one through the mirror.
    res = c.dfget(c.root / "first.bin", "--quiet")
    assert res.returncode == 0, describe(res) + (c.root / "node.log").read_text()[-3000:]
    assert (c.root / "first.bin").read_bytes() == c.content
    # The dfdaemon as an HTTP proxy for the origin it mirrors; the rule sends it through P2P.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://{c.node.address}"}))
    with opener.open(f"http://{c.origin.address}/model.bin", timeout=60) as res:
        assert res.read() == c.content
    # The manager learns the hosts from its schedulers (and counts them) when asked.
    status, hosts, _ = c.manager.call("GET", "/api/v1/scheduler-clusters/1/hosts", token=c.token)
    assert status == 200, hosts
    yield c
    c.stop()


def test_every_metrics_endpoint_passes_promtool_and_exports_the_seed_names(cluster):
    texts = {name: scrape(url) for name, url in cluster.endpoints().items()}
    for name, text in texts.items():
        res = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
        assert res.returncode == 0 and not res.stdout.strip() and not res.stderr.strip(), \
            f"promtool on {name}: rc={res.returncode}\n{res.stdout}{res.stderr}"

    seed, node = samples(texts["seed"]), samples(texts["dfdaemon"])
    sched, manager = samples(texts["scheduler"]), samples(texts["manager"])
    assert total(seed, "dragonfly_dfdaemon_download_task_total", type="back_to_source") == 1
    assert total(seed, "dragonfly_dfdaemon_download_traffic_total", type="back_to_source") == SIZE
    assert total(seed, "dragonfly_dfdaemon_upload_traffic_total") >= SIZE, "the dfdaemon's bytes came from the seed peer"
    assert total(node, "dragonfly_dfdaemon_download_traffic_total", type="peer") == SIZE
    assert total(node, "dragonfly_dfdaemon_download_traffic_total", type="back_to_source") == 0
    assert total(node, "dragonfly_dfdaemon_proxy_request_total", type="p2p", result="success") == 1
    assert total(sched, "dragonfly_scheduler_download_peer_total") >= 2
    assert total(sched, "dragonfly_scheduler_download_piece_cost_seconds_count") >= SIZE // (4 * MIB)
    assert total(manager, "dragonfly_manager_peer_total") == 2, "seed and dfdaemon, each counted once"

    # gRPC server metrics from the RPC layer, on every gRPC server.
    assert total(sched, "grpc_server_handled_total", grpc_service="scheduler.v2.Scheduler", grpc_method="AnnounceHost",
                 grpc_code="OK") >= 2
    assert total(sched, "grpc_server_started_total", grpc_method="AnnouncePeer", grpc_type="bidi_stream") >= 2
    assert total(sched, "grpc_server_handling_seconds_count", grpc_method="ListHosts") >= 1
    assert total(manager, "grpc_server_handled_total", grpc_service="manager.v2.Manager", grpc_method="ListSchedulers",
                 grpc_code="OK") >= 2
    assert total(manager, "grpc_server_msg_received_total", grpc_method="KeepAlive") >= 2
    assert total(seed, "grpc_server_handled_total", grpc_service="dfdaemon.v2.DfdaemonUpload", grpc_code="OK") >= 1
    assert total(node, "grpc_server_handled_total", grpc_service="dfdaemon.v2.DfdaemonDownload", grpc_method="DownloadTask",
                 grpc_code="OK") >= 1


def test_a_failed_call_is_counted_with_its_code(cluster):
    res = run([binary("dfrpc"), "call", cluster.sched.address, "scheduler.v2.Scheduler/StatTask", "-d", '{"task_id": "nope"}'])
    assert res.returncode != 0, describe(res)
    found = samples(scrape(cluster.endpoints()["scheduler"]))
    assert total(found, "grpc_server_handled_total", grpc_method="StatTask", grpc_code="NOT_FOUND") >= 1


def test_grafana_dashboard_queries_only_metrics_we_export(cluster, tmp_path):
    dash = json.loads((REPO / "docker" / "grafana" / "dragonfly.json").read_text())
    titles = [p["title"] for p in dash["panels"]]
    for needed in ("P2P traffic ratio", "Back-to-source rate", "Active peers per scheduler", "Piece download latency p99"):
        assert needed in titles, titles
    exported = {}
    for url in cluster.endpoints().values():
        exported.update(families(scrape(url)))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 4
    for expr in exprs:
        names = set(re.findall(r'\b(dragonfly_[a-z0-9_]+|grpc_server_[a-z0-9_]+)\b', expr))
        assert names, f"no metric in {expr}"
        for name in names:
            base = re.sub(r'_(bucket|sum|count)$', "", name)
            assert name in exported or exported.get(base) == "histogram", f"{name} (in {expr}) is not exported"
    # Every query must also be valid PromQL: promtool parses them as recording rules.
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:panel{i}", "expr": e}
                                                         for i, e in enumerate(exprs)]}]}
    (tmp_path / "rules.yml").write_text(json.dumps(rules))
    res = run(["promtool", "check", "rules", tmp_path / "rules.yml"])
    assert res.returncode == 0, describe(res)


def test_prometheus_scrape_config_and_alerts_are_valid():
    tool("promtool", "prometheus")
    res = run(["promtool", "check", "config", REPO / "docker" / "prometheus" / "prometheus.yml"])
    assert res.returncode == 0 and "SUCCESS" in res.stdout, describe(res)
    text = (REPO / "docker" / "prometheus" / "prometheus.yml").read_text()
    for port in ("8080", "8002", "65001"):
        assert f":{port}" in text


def test_json_logs_carry_task_and_peer_ids_on_download_lines(cluster):
    lines = (cluster.root / "node.log").read_text().splitlines()
    assert lines
    records = []
    for line in lines:
        record = json.loads(line)  # every line is one JSON object
        assert {"ts", "level", "logger", "msg"} <= record.keys(), record
        records.append(record)
    status, tasks, _ = cluster.manager.call("GET", "/api/v1/scheduler-clusters/1/tasks", token=cluster.token)
    assert status == 200 and tasks, tasks
    task_id = next(t["id"] for t in tasks if t["url"].endswith("/model.bin"))
    started = [r for r in records if r["msg"] == "download started"]
    finished = [r for r in records if r["msg"] == "download finished"]
    assert started and finished, [r["msg"] for r in records][-40:]
    for r in started + finished:
        assert r["task_id"] == task_id and r.get("peer_id"), r
    assert finished[0]["source"] == "peers"
    mirror = [r for r in records if r["msg"].startswith("mirror GET")]
    assert mirror and all(r.get("request_id") for r in mirror), mirror
    # Text logs stay the default: the seed peer's are not JSON.
    seed_first = (cluster.root / "seed.log").read_text().splitlines()[0]
    assert not seed_first.startswith("{"), seed_first


def test_dfget_prints_plain_progress_lines_when_not_on_a_terminal(cluster):
    res = cluster.dfget(cluster.root / "plain.bin")
    assert res.returncode == 0, describe(res)
    lines = res.stderr.strip().splitlines()
    assert "\r" not in res.stderr, "no carriage returns in a log"
    assert re.fullmatch(r"dfget: 12\.0 MiB in \d+\.\d s \([\d.]+ [KMG]?i?B/s\); 0% from peers, 0% from the origin, "
                        r"100% from the local cache", lines[-1]), lines


def test_dfget_draws_a_progress_bar_on_a_terminal(cluster):
    tool("script", "bsdutils")
    # A new URL, so the pieces come from the seed peer, not the dfdaemon's cache.
    (cluster.root / "origin" / "other.bin").write_bytes(os.urandom(SIZE))
    out = cluster.root / "tty.bin"
    cmd = f"{binary('dfget')} http://{cluster.origin.address}/other.bin -O {out} --daemon unix:{cluster.root}/node.sock"
    # Bytes, not text: universal newlines would turn the bar's carriage returns into newlines.
    res = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, timeout=120)
    text = res.stdout.decode(errors="replace")
    assert res.returncode == 0, text[-2000:]
    assert "\r[" in text and "ETA" in text, text[-2000:]
    bars = re.findall(r"\[([= ]{24})\] (\d+)% ", text)
    assert bars and bars[-1] == ("=" * 24, "100"), bars[-3:]
    assert re.search(r"12\.0 MiB/12\.0 MiB .* peers (\d+)%", text), text[-500:]
    summary = re.search(r"dfget: 12\.0 MiB in .*?; (\d+)% from peers, (\d+)% from the origin", text)
    assert summary, text[-500:]
    # The seed peer fetched it from the origin; the dfdaemon got every piece from the seed.
    assert summary.groups() == ("100", "0"), summary.group(0)


def test_secrets_are_not_logged_by_the_manager(cluster):
    status, made, _ = cluster.manager.call("POST", "/api/v1/personal-access-tokens",
                                           {"name": "ci", "scopes": ["job"], "expired_at": "2099-01-01T00:00:00Z"},
                                           token=cluster.token)
    assert status == 201, made
    status, _, _ = cluster.manager.call("GET", "/oapi/v1/jobs", token=made["token"])
    assert status == 200
    bad = cluster.manager.call("POST", "/api/v1/users/signin", {"name": "root", "password": "wrong-" + ROOT_PASSWORD})
    assert bad[0] == 401
    log = Path(cluster.manager.server.log_path).read_text()
    assert log.strip(), "the manager logged something"
    for secret in (ROOT_PASSWORD, made["token"], cluster.token):
        assert secret not in log
    metrics = scrape(cluster.endpoints()["manager"])
    for secret in (ROOT_PASSWORD, made["token"], cluster.token):
        assert secret not in metrics
