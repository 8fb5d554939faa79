#!/usr/bin/env bash
# The main job: set up this machine, build the release binaries, and run a local Dragonfly
# cluster on 127.0.0.1 (an origin, the manager on SQLite, a scheduler, a seed peer and two
# dfdaemons, each with its own ports and data dir), download a test file with dfget
# through each dfdaemon and show where its bytes came from. The cluster stays up until
# Ctrl-C, which stops every server. tools/local_cluster.py does the cluster part; the
# integration tests use the same script. Extra arguments go to it (--no-hold, --size-mib N,
# --nodes N, --work-dir DIR).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash tools/setup.sh
for product in manager scheduler dfdaemon dfget dfrpc dragonfly; do
    # The release build the README and the Dockerfiles use.
    swift build -c release --static-swift-stdlib --product "$product" > .build-demo.log 2>&1 \
        || { grep -E "error" .build-demo.log | head -20; exit 1; }
done
exec .venv/bin/python tools/local_cluster.py --bin-dir "$(swift build -c release --show-bin-path)" "$@"
