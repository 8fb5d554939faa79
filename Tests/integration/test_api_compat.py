"""Our Protos/ against the official Dragonfly v2 API (dragonfly-api 2.3.8 on PyPI),
with shared/tools/check_api_compat.py: any wire difference or missing core method fails."""

import sys

from conftest import build_descriptor_set, describe, run, shared_tool


def test_protos_match_official_dragonfly_api(tmp_path):
    checker = shared_tool("check_api_compat.py")
    descriptor_set = build_descriptor_set(tmp_path / "ours.pb")
    res = run([sys.executable, checker, descriptor_set, "--require-core"], timeout=120)
    assert res.returncode == 0, describe(res)
