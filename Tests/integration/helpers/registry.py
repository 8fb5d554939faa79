"""Debian's docker-registry (CNCF distribution) as a test origin, and images built without
Docker: an OCI layout written here, pushed with `skopeo copy --preserve-digests`."""

import gzip
import hashlib
import io
import json
import re
import socket
import subprocess
import tarfile
import time
from pathlib import Path

from conftest import stop_process

ACCESS = re.compile(r'"(GET|HEAD) (\S+) HTTP/1\.1" (\d+) (\d+)')


class Registry:
    """A docker-registry process on a loopback port, optionally behind htpasswd basic auth."""

    def __init__(self, root, port, users=None, token_auth=None, tls=None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.address = f"127.0.0.1:{self.port}"
        auth = ""
        if users:
            lines = []
            for user, password in users.items():
                out = subprocess.run(["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True)
                lines.append(out.stdout.strip())
            (self.root / "htpasswd").write_text("\n".join(lines) + "\n")
            auth = f"auth:\n  htpasswd:\n    realm: test-realm\n    path: {self.root / 'htpasswd'}\n"
        if token_auth:
            realm, service, issuer, cert = token_auth
            auth = (f"auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n"
                    f"    rootcertbundle: {cert}\n")
        tls_yaml = f"  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}\n" if tls else ""
        (self.root / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.address}\n{tls_yaml}{auth}")
        self.log_path = self.root / "registry.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(self.root / "config.yml")],
                                     stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log_path.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("docker-registry did not start listening")

    def access(self):
        """(method, path, status, bytes written) for every request served so far."""
        return [(m.group(1), m.group(2), int(m.group(3)), int(m.group(4)))
                for m in ACCESS.finditer(self.log_path.read_text())]

    def blob_gets(self, digest):
        return [a for a in self.access() if a[0] == "GET" and a[1].endswith(f"/blobs/{digest}")]

    def blob_file(self, digest):
        hexd = digest.split(":", 1)[1]
        return self.root / "data" / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"

    def stop(self):
        stop_process(self.proc)
        self._log.close()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_image(layout, tag, layer_bytes, note="test"):
    """Writes an OCI image layout with one gzip'd tar layer holding `layer_bytes` as a file.
    Returns {"manifest": digest, "config": digest, "layer": digest, "layer_blob": bytes}."""
    layout = Path(layout)
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("data.bin")
        info.size = len(layer_bytes)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(layer_bytes))
    layer_tar = tar_buffer.getvalue()
    layer = gzip.compress(layer_tar, compresslevel=1, mtime=0)

    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Labels": {"note": note}},
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer_tar)]},
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(layer), "size": len(layer)}],
    }, sort_keys=True).encode()
    for blob in (layer, config, manifest):
        (blobs / sha256(blob).split(":")[1]).write_bytes(blob)
    index_path = layout / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"schemaVersion": 2, "manifests": []}
    index["manifests"] = [m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
    index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(manifest),
                               "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": tag}})
    index_path.write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return {"manifest": sha256(manifest), "config": sha256(config), "layer": sha256(layer), "layer_blob": layer}


def push(layout, tag, registry, repo, creds=None):
    # --dest-tls-verify=false also allows plain HTTP.
    cmd = ["skopeo", "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false",
           f"oci:{layout}:{tag}", f"docker://{registry.address}/{repo}:{tag}"]
    if creds:
        cmd[2:2] = ["--dest-creds", creds]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)


def build_index(layout, tag, platforms):
    """An OCI image index under `tag` with one small image per platform ("linux/arm64", …).
    Returns {platform: build_image result} and the index digest under "index"."""
    layout = Path(layout)
    images = {}
    entries = []
    for platform in platforms:
        os_name, arch = platform.split("/")[:2]
        img = build_image(layout, f"{tag}-{arch}", hashlib.sha256(platform.encode()).digest() * 4096, note=platform)
        images[platform] = img
        manifest = (layout / "blobs" / "sha256" / img["manifest"].split(":")[1]).read_bytes()
        entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": img["manifest"],
                        "size": len(manifest), "platform": {"os": os_name, "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": entries}, sort_keys=True).encode()
    (layout / "blobs" / "sha256" / sha256(index).split(":")[1]).write_bytes(index)
    top = json.loads((layout / "index.json").read_text())
    top["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha256(index),
                             "size": len(index), "annotations": {"org.opencontainers.image.ref.name": tag}})
    (layout / "index.json").write_text(json.dumps(top))
    images["index"] = sha256(index)
    return images


def push_all(layout, tag, registry, repo, creds=None):
    """Like push, for an index: every platform's image goes too."""
    cmd = ["skopeo", "copy", "--quiet", "--all", "--preserve-digests", "--dest-tls-verify=false",
           f"oci:{layout}:{tag}", f"docker://{registry.address}/{repo}:{tag}"]
    if creds:
        cmd[2:2] = ["--dest-creds", creds]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
