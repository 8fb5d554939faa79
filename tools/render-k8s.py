#!/usr/bin/env python3
"""Writes docker/k8s/ from the Helm chart docker/helm/dragonfly, so the plain manifests are
the chart's output and never a second source. `--check` writes nothing and fails when the
files differ from a fresh render (the test suite runs it).

Needs helm-python-sdk (Helm's own Go library; Tests/integration/requirements.txt).
Usage: .venv/bin/python tools/render-k8s.py [--check]
"""
import sys
from pathlib import Path

import helm_python as helm

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "docker" / "helm" / "dragonfly"
OUT = ROOT / "docker" / "k8s"
RELEASE, NAMESPACE = "dragonfly", "dragonfly-system"
# The release docker/k8s stands for: the chart's defaults, plus the namespace and the
# Prometheus Operator's ServiceMonitors (applied on their own, under monitoring/).
VALUES = {
    "createNamespace": True,
    **{c: {"metrics": {"serviceMonitor": {"enable": True}}} for c in ("manager", "scheduler", "seedClient", "client")},
}
# Output file -> (what it holds, the chart's templates in apply order).
FILES = {
    "00-namespace.yaml": ("Everything Dragonfly runs lives in this namespace. Apply the folder in file-name order:\n"
                          "  kubectl apply -f docker/k8s/\n"
                          "and, where the Prometheus Operator is installed, kubectl apply -f docker/k8s/monitoring/",
                          ["namespace.yaml"]),
    "20-manager.yaml": ("The manager: gRPC on 65003; REST, console, /metrics and /healthy on 8080; SQLite on a claim.",
                        ["manager/secret.yaml", "manager/configmap.yaml", "manager/pvc.yaml", "manager/service.yaml",
                         "manager/deployment.yaml"]),
    "30-scheduler.yaml": ("The scheduler: gRPC on 65002, /metrics and /healthy on 8002.",
                          ["scheduler/configmap.yaml", "scheduler/service.yaml", "scheduler/deployment.yaml"]),
    "40-seed-peer.yaml": ("Seed peers: dfdaemons in seed-peer mode, each with its cache on its own claim.",
                          ["seed-client/configmap.yaml", "seed-client/service.yaml", "seed-client/statefulset.yaml"]),
    "50-dfdaemon.yaml": ("A dfdaemon on every node, and the init container that points containerd at it.",
                         ["client/configmap.yaml", "client/service.yaml", "client/daemonset.yaml"]),
    "monitoring/servicemonitors.yaml": ("Prometheus Operator scrape targets, one per component. Apply only where the\n"
                                        "operator's CRDs are installed: kubectl apply -f docker/k8s/monitoring/",
                                        ["manager/servicemonitor.yaml", "scheduler/servicemonitor.yaml",
                                         "seed-client/servicemonitor.yaml", "client/servicemonitor.yaml"]),
}


def render():
    """{relative path: text} of docker/k8s as the chart renders it now."""
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(VALUES, name=RELEASE, namespace=NAMESPACE)
    prefix = f"{chart_name()}/templates/"
    templates = {k[len(prefix):]: v for k, v in rendered.items() if k.startswith(prefix) and not k.endswith(".tpl")}
    placed = {t for _, names in FILES.values() for t in names}
    unplaced = {t for t, text in templates.items() if text.strip()} - placed
    if unplaced:
        sys.exit(f"templates with output that no file under docker/k8s holds: {sorted(unplaced)}")
    out = {}
    for path, (about, names) in FILES.items():
        header = "".join(f"# {line}\n" if line else "#\n" for line in about.splitlines())
        header += "# Rendered from docker/helm/dragonfly by tools/render-k8s.py: edit the chart, then run it.\n"
        docs = [templates[n].strip("\n") for n in names if templates.get(n, "").strip()]
        out[path] = header + "---\n".join(d + "\n" for d in docs)
    return out


def chart_name():
    with helm.Chart.load(str(CHART)) as chart:
        return chart.name


def main():
    check = "--check" in sys.argv[1:]
    wanted = render()
    existing = {str(p.relative_to(OUT)): p.read_text() for p in OUT.rglob("*.yaml")}
    stale = sorted(set(existing) - set(wanted))
    changed = sorted(p for p in wanted if existing.get(p) != wanted[p])
    if check:
        if stale or changed:
            sys.exit(f"docker/k8s differs from the chart's render: changed {changed}, not rendered {stale}; "
                     "run tools/render-k8s.py")
        print(f"docker/k8s matches the chart ({len(wanted)} files)")
        return
    for p in stale:
        (OUT / p).unlink()
    for p, text in wanted.items():
        (OUT / p).parent.mkdir(parents=True, exist_ok=True)
        (OUT / p).write_text(text)
    print(f"wrote {len(wanted)} files to docker/k8s" + (f", removed {stale}" if stale else ""))


if __name__ == "__main__":
    main()
