"""The Helm chart under docker/helm/dragonfly, through Helm's own Go library
(helm-python-sdk's libhelm_c): lint, render with defaults and overrides, the refusals of
values that cannot work, and that docker/k8s is the chart's output. test_deployment.py
holds every rendered set to the Kubernetes schema and cross-reference checks."""

import sys
import tomllib

import pytest
import yaml

from conftest import REPO_ROOT, binary, describe, run
from test_deployment import CHART, HELM_OVERRIDES, NAMESPACE, K8S_VERSION, deep_merge, helm_module

COMPONENTS = ("manager", "scheduler", "seedClient", "client")


def render(values=None):
    helm = helm_module()
    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(values or {}, name="dragonfly", namespace=NAMESPACE)
    return [doc for k, text in sorted(out.items()) if not k.endswith(".tpl") for doc in yaml.safe_load_all(text) if doc]


def find(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def config_of(docs, cm, key):
    return yaml.safe_load(find(docs, "ConfigMap", cm)["data"][key])


def render_error(values):
    helm = helm_module()
    with helm.Chart.load(str(CHART)) as chart:
        with pytest.raises(Exception) as err:
            chart.render(values, name="dragonfly", namespace=NAMESPACE)
    return str(err.value)


@pytest.mark.parametrize("overrides", ["defaults", *HELM_OVERRIDES])
def test_helm_lint_finds_nothing(overrides):
    helm = helm_module()
    values = {} if overrides == "defaults" else HELM_OVERRIDES[overrides]
    report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE, kube_version=f"v{K8S_VERSION}")
    assert report["total_charts_linted"] == 1, report
    findings = [f for f in report["messages"] if f["severity"] >= 2]
    assert not findings and not report["errors"], report


def test_docker_k8s_is_the_charts_render():
    res = run([sys.executable, REPO_ROOT / "tools" / "render-k8s.py", "--check"], timeout=120)
    assert res.returncode == 0, describe(res)
    assert "matches the chart" in res.stdout


def test_the_values_users_of_the_upstream_chart_know():
    helm = helm_module()
    with helm.Chart.load(str(CHART)) as chart:
        values = chart.values
    for c in COMPONENTS:
        section = values[c]
        assert {"enable", "image", "resources", "config", "metrics", "nodeSelector", "tolerations"} <= set(section), c
        assert {"repository", "tag", "pullPolicy"} <= set(section["image"]), c
        assert "serviceMonitor" in section["metrics"], c
        if c != "client":
            assert "replicas" in section, c
    assert values["manager"]["database"]["type"] == "sqlite"
    assert "mysql" not in yaml.safe_dump(values).lower() and "redis" not in yaml.safe_dump(values).lower()


def test_placement_and_sizes_reach_every_workload():
    values = {c: {"nodeSelector": {"dragonfly.example/pool": c}, "tolerations": [{"key": "dedicated", "operator": "Exists"}],
                  "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}}
              for c in COMPONENTS}
    docs = render(values)
    workloads = {"manager": ("Deployment", "dragonfly-manager"), "scheduler": ("Deployment", "dragonfly-scheduler"),
                 "seedClient": ("StatefulSet", "dragonfly-seed-peer"), "client": ("DaemonSet", "dragonfly-dfdaemon")}
    for c, (kind, name) in workloads.items():
        spec = find(docs, kind, name)["spec"]["template"]["spec"]
        assert spec["nodeSelector"] == {"dragonfly.example/pool": c}, c
        assert {"key": "dedicated", "operator": "Exists"} in spec["tolerations"], c
        assert spec["containers"][0]["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}, c


def test_components_can_be_left_out():
    docs = render({"seedClient": {"enable": False}, "client": {"enable": False}})
    names = {d["metadata"]["name"] for d in docs}
    assert "dragonfly-manager" in names and "dragonfly-scheduler" in names
    assert not any(n.startswith(("dragonfly-seed-peer", "dragonfly-dfdaemon", "dragonfly-dfinit")) for n in names), names


def test_sqlite_by_default_on_a_claim_and_postgres_from_a_secret():
    docs = render()
    deploy = find(docs, "Deployment", "dragonfly-manager")
    data = next(v for v in deploy["spec"]["template"]["spec"]["volumes"] if v["name"] == "data")
    assert data["persistentVolumeClaim"]["claimName"] == find(docs, "PersistentVolumeClaim", "dragonfly-manager-data")["metadata"]["name"]
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    assert "--database-url" not in deploy["spec"]["template"]["spec"]["containers"][0]["args"]

    docs = render(HELM_OVERRIDES["helm-postgres"])
    deploy = find(docs, "Deployment", "dragonfly-manager")
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][-2:] == ["--database-url", "$(DRAGONFLY_DATABASE_URL)"]
    ref = next(e for e in container["env"] if e["name"] == "DRAGONFLY_DATABASE_URL")["valueFrom"]["secretKeyRef"]
    assert find(docs, "Secret", ref["name"])["stringData"][ref["key"]].startswith("postgres://")
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    assert deploy["spec"]["replicas"] == 2

    # A Secret of the user's own: referenced, not made.
    docs = render({"manager": {"database": {"type": "postgres", "postgres": {"existingSecret": "my-db", "existingSecretKey": "url"}}}})
    container = find(docs, "Deployment", "dragonfly-manager")["spec"]["template"]["spec"]["containers"][0]
    ref = next(e for e in container["env"] if e["name"] == "DRAGONFLY_DATABASE_URL")["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "my-db", "key": "url"}
    assert "database-url" not in find(docs, "Secret", "dragonfly-manager")["stringData"]


def test_values_that_cannot_work_are_refused_at_render():
    assert "needs manager.database.type postgres" in render_error({"manager": {"replicas": 2}})
    assert "needs manager.database.postgres.url or existingSecret" in render_error({"manager": {"database": {"type": "postgres"}}})


def test_one_registry_list_feeds_the_mirror_and_dfinit(tmp_path):
    """client.registries: the dfdaemon serves exactly these, and `dfdaemon init` run on the
    rendered dfinit.yaml writes a hosts.toml for each that sends pulls to the mirror."""
    docs = render(HELM_OVERRIDES["helm-registries"])
    daemon = config_of(docs, "dragonfly-dfdaemon-config", "dfdaemon.yaml")
    dfinit = config_of(docs, "dragonfly-dfinit", "dfinit.yaml")
    served = {r["host"]: r["url"] for r in daemon["proxy"]["registries"]}
    assert served == {"docker.io": "https://registry-1.docker.io", "harbor.example.com": "https://harbor.example.com"}
    containerd = dfinit["containerRuntime"]["containerd"]
    assert {r["hostNamespace"]: r["serverAddr"] for r in containerd["registries"]} == served
    node = tmp_path / "etc-containerd"
    node.mkdir()
    certs = node / "certs.d"
    # A config that already names its certs directory (under tmp_path): without one, init
    # would set the node's /etc/containerd/certs.d.
    (node / "config.toml").write_text(f'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "{certs}"\n')
    containerd["configPath"] = str(node / "config.toml")
    (tmp_path / "dfinit.yaml").write_text(yaml.safe_dump(dfinit))
    res = run([binary("dfdaemon"), "init", "--config", tmp_path / "dfinit.yaml"], timeout=30)
    assert res.returncode == 0, describe(res)
    written = {p.parent.name: tomllib.loads(p.read_text()) for p in certs.glob("*/hosts.toml")}
    assert set(written) == set(served)
    for host, toml in written.items():
        assert toml["server"] == served[host]
        assert list(toml["host"]) == ["http://127.0.0.1:65001"], toml


def test_tls_points_every_component_at_the_mounted_secret():
    docs = render(HELM_OVERRIDES["helm-tls"])
    configs = {"dragonfly-manager-config": "manager.yaml", "dragonfly-scheduler-config": "scheduler.yaml",
               "dragonfly-seed-peer-config": "seed-peer.yaml", "dragonfly-dfdaemon-config": "dfdaemon.yaml"}
    for cm, key in configs.items():
        tls = config_of(docs, cm, key)["tls"]
        assert tls == {"cert": "/etc/dragonfly/tls/tls.crt", "key": "/etc/dragonfly/tls/tls.key",
                       "caCert": "/etc/dragonfly/tls/ca.crt"}, cm
    for d in docs:
        if d["kind"] not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        spec = d["spec"]["template"]["spec"]
        assert {"name": "tls", "secret": {"secretName": "dragonfly-tls"}} in spec["volumes"], d["metadata"]["name"]
        mounts = spec["containers"][0]["volumeMounts"]
        assert {"name": "tls", "mountPath": "/etc/dragonfly/tls", "readOnly": True} in mounts, d["metadata"]["name"]
    # The dfdaemons move HTTP/1.1 (mirror, /metrics, /healthy) to their plaintext port, and
    # containerd is pointed there.
    for cm, key in (("dragonfly-seed-peer-config", "seed-peer.yaml"), ("dragonfly-dfdaemon-config", "dfdaemon.yaml")):
        assert config_of(docs, cm, key)["http"] == {"port": 65004}
    assert config_of(docs, "dragonfly-dfinit", "dfinit.yaml")["proxy"]["addr"] == "http://127.0.0.1:65004"
    ds = find(docs, "DaemonSet", "dragonfly-dfdaemon")["spec"]["template"]["spec"]["containers"][0]
    assert ds["readinessProbe"]["httpGet"]["port"] == "http"
    assert {"name": "http", "containerPort": 65004, "hostPort": 65004} in ds["ports"]
