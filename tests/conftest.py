"""Shared pytest setup: offscreen rendering through EGL; `warp` tests count as `slow`; GPU tests
skip without CUDA."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported: headless rendering

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on the markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "warp" in item.keywords:  # minutes of kernel compilation and CPU-device kernels
            item.add_marker(pytest.mark.slow)
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
