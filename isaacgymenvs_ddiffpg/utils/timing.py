"""Wall-clock timing of training phases (synchronising CUDA only when asked to)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import torch


class PhaseTimer:
    """Accumulates seconds per named phase.

    On CUDA, kernels run asynchronously; `enabled` iterations synchronise before and after each
    phase so the times are real, and other iterations are not timed at all.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.enabled = True
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        if self.cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        yield
        if self.cuda:
            torch.cuda.synchronize()
        self.seconds[name] += time.perf_counter() - start

    def pop(self) -> dict[str, float]:
        """Return the accumulated seconds and start again."""
        out, self.seconds = dict(self.seconds), defaultdict(float)
        return out
