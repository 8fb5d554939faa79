"""The tests' local cluster: tools/local_cluster.py's, with one dfdaemon named `node` that
by default logs JSON and mirrors the origin with a P2P rule for model.bin; `mirror` points
its mirror elsewhere (a registry) instead."""

from conftest import BIN_DIR, binary, cluster_tools

ToolsCluster = cluster_tools.LocalCluster

MIB = 1 << 20
SIZE = 12 * MIB


class LocalCluster(ToolsCluster):
    def __init__(self, root, mirror=None, node_args=("--log-format", "json", "--log-level", "debug")):
        binary("dfdaemon")  # skips cleanly when the build is missing
        if mirror:
            config = f"proxy:\n  registryMirror:\n    url: http://{mirror}\n"
        else:
            config = "proxy:\n  registryMirror:\n    url: http://{origin}\n  rules:\n    - regex: 'model\\.bin$'\n"
        super().__init__(root, BIN_DIR, nodes=("node",), size=SIZE, node_config=config, node_args=node_args)
