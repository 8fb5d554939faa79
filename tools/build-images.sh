#!/usr/bin/env bash
# Builds the three images (dragonfly-swift/{manager,scheduler,dfdaemon}:dev) from release
# binaries made on this Debian 12 host with the README's command, into the Docker daemon that
# $DOCKER_HOST names. Only the Dockerfiles' runtime stage runs (--build-arg
# BINARIES=prebuilt); their build stage needs the official Swift image, which this machine
# cannot pull. Without a local debian:bookworm-slim the base is made with debootstrap and
# `docker import`.
#
#   tools/build-images.sh [BINARY_DIR]   # a dir with manager scheduler dfdaemon dfget dfcache dfctl dfrpc;
#                                        # default: build them into .build/release
# DOCKER_CLI picks the client (Debian's docker.io client has BuildKit built in).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
docker_cli=${DOCKER_CLI:-docker}
products=(manager scheduler dfdaemon dfget dfcache dfctl dfrpc)

bin=${1:-}
if [ -z "$bin" ]; then
    for p in "${products[@]}"; do
        swift build -c release --static-swift-stdlib --product "$p"
    done
    bin=.build/release
fi
for p in "${products[@]}"; do
    [ -x "$bin/$p" ] || { echo "build-images: no $bin/$p" >&2; exit 1; }
done

work=$(mktemp -d /tmp/dragonfly-images-XXXXXX)
trap 'rm -rf "$work"' EXIT

if ! "$docker_cli" image inspect debian:bookworm-slim >/dev/null 2>&1; then
    echo "build-images: making debian:bookworm-slim with debootstrap"
    debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
    tar -C "$work/rootfs" -c . | "$docker_cli" import - debian:bookworm-slim >/dev/null
    rm -rf "$work/rootfs"
fi

declare -A binaries=([manager]="manager" [scheduler]="scheduler" [dfdaemon]="dfdaemon dfget dfcache dfctl dfrpc")
for image in manager scheduler dfdaemon; do
    ctx="$work/$image"
    mkdir -p "$ctx/docker/prebuilt"
    cp docker/*.yaml "docker/Dockerfile.$image" "$ctx/docker/"
    for b in ${binaries[$image]}; do cp "$bin/$b" "$ctx/docker/prebuilt/"; done
    echo "build-images: dragonfly-swift/$image:dev"
    DOCKER_BUILDKIT=1 "$docker_cli" build --quiet --network host --build-arg BINARIES=prebuilt \
        -f "$ctx/docker/Dockerfile.$image" -t "dragonfly-swift/$image:dev" "$ctx" >/dev/null
done
echo "build-images: done"
