#!/usr/bin/env python3
"""Checks the direction of the module graph that docs/ARCHITECTURE.md draws.

- The transport layers (bytes, HTTP/2, gRPC, HTTP/1.1, Vortex) know nothing of Dragonfly.
- The Dragonfly layers that neither serve nor call RPCs (config, storage, the scheduling
  and manager cores, registry and mirror logic) do not link the gRPC transport.
- No library or executable imports a module @testable (a release build cannot).
Run from the repository root; reads the manifest through `swift package dump-package`.
"""
import json
import pathlib
import re
import subprocess
import sys

TRANSPORT = {"Locking", "ConnectionLimits", "ProtoCore", "RPCCore", "RPCTransport", "HTTPServing",
             "VortexProtocol", "VortexTransport", "RPCServices", "ProtoJSON"}
DRAGONFLY = {"DragonflyCommon", "DragonflyRPC", "CLICommon", "PeerConfig", "PeerStorage", "PeerDaemon",
             "PeerNode", "RegistryClient", "MirrorRouting", "RegistryMirror", "SchedulerCore",
             "SchedulerService", "SchedulerNode", "ManagerCore", "ManagerService", "ManagerNode",
             "ManagerClient", "SQLStore", "RuntimeSetup", "Preheating"}
NO_RPC_TRANSPORT = {"DragonflyCommon", "CLICommon", "PeerConfig", "PeerStorage", "RegistryClient",
                    "MirrorRouting", "SchedulerCore", "ManagerCore", "SQLStore", "RuntimeSetup"}


def main():
    manifest = json.loads(subprocess.run(["swift", "package", "dump-package"], capture_output=True,
                                         text=True, check=True).stdout)
    deps, kinds = {}, {}
    for t in manifest["targets"]:
        names = []
        for d in t.get("dependencies", []):
            for key in ("byName", "target"):
                if key in d:
                    names.append(d[key][0])
        deps[t["name"]] = names
        kinds[t["name"]] = t["type"]

    def reach(name, seen=None):
        seen = set() if seen is None else seen
        for d in deps.get(name, []):
            if d not in seen:
                seen.add(d)
                reach(d, seen)
        return seen

    problems = []
    for name in TRANSPORT:
        bad = reach(name) & DRAGONFLY
        if bad:
            problems.append(f"{name} (transport) depends on Dragonfly modules {sorted(bad)}")
    for name in NO_RPC_TRANSPORT:
        if "RPCTransport" in reach(name):
            problems.append(f"{name} links the gRPC transport; only what serves or calls RPCs may")
    unknown = (TRANSPORT | DRAGONFLY) - set(deps)
    if unknown:
        problems.append(f"modules named here but not in the manifest: {sorted(unknown)}")
    testable = re.compile(r"^\s*@testable\s+import\s+(\w+)", re.M)
    for t in manifest["targets"]:
        if t["type"] == "test":
            continue
        path = pathlib.Path(t.get("path") or f"Sources/{t['name']}")
        for f in path.rglob("*.swift"):
            for m in testable.finditer(f.read_text(errors="replace")):
                problems.append(f"{f}: @testable import {m.group(1)} in a non-test target")
    for p in problems:
        print("layering:", p, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"layering OK: {len(deps)} targets")


if __name__ == "__main__":
    main()
