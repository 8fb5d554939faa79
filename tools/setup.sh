#!/usr/bin/env bash
# Installs what building and testing need on Debian 12: the C libraries of the design
# card, protoc/protoc-c (to check generated code), HTTP/2 and TLS tools used by tests,
# a registry and image pullers for the mirror tests (skopeo, containerd, podman, dockerd), SQLite and a PostgreSQL server for the
# manager, headless chromium for the web console, Go with grpc-go (a foreign client), and a Python venv with grpcio and the official dragonfly-api package.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

packages=(libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libprotobuf-dev
          libssl-dev zlib1g-dev nghttp2-client openssl valgrind python3-venv pkg-config prometheus
          docker-registry skopeo containerd podman docker.io debootstrap apache2-utils libsqlite3-dev postgresql
          chromium chromium-driver fonts-dejavu-core binutils
          golang-go golang-google-grpc-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r Tests/integration/requirements.txt
echo "setup: system packages and .venv ready"
