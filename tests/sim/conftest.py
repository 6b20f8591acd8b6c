"""Tests marked `warp` skip themselves when MuJoCo Warp (the gpu extra) is not installed."""

import importlib.util

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if importlib.util.find_spec("mujoco_warp") is not None:
        return
    skip = pytest.mark.skip(reason='needs MuJoCo Warp: pip install -e ".[gpu]"')
    for item in items:
        if "warp" in item.keywords:
            item.add_marker(skip)
