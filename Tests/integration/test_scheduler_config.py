"""The shipped scheduler example config loads and starts a scheduler."""
from pathlib import Path

from conftest import Server, binary


def test_example_scheduler_config_starts(tmp_path):
    config = Path(__file__).parents[2] / "docker" / "scheduler.yaml"
    s = Server([binary("scheduler"), "--config", config, "--port", "0", "--metrics-port", "0",
                "--listen-ip", "127.0.0.1", "--data-dir", tmp_path / "d"], tmp_path / "log")
    s.stop()
