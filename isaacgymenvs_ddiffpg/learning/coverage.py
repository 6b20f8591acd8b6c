"""State coverage: the cumulative share of the reachable mode-feature cells a run has visited."""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch
from torch import Tensor


class Grid(Protocol):
    """A grid over the mode features (e.g. `tasks.coverage.CoverageGrid`)."""

    origin: tuple[float, ...]
    cell: float
    reachable: np.ndarray


class Coverage:
    """Which cells of a grid the run has visited, on the device, cumulatively (evicted
    trajectories stay counted); the share is of the cells the robot can reach.

    Args:
        grid: the task's grid (origin, cell size, reachable cells).
        device: where the visited flags live.
    """

    def __init__(self, grid: Grid, device: torch.device) -> None:
        shape = grid.reachable.shape
        self.size = math.prod(shape)
        self.origin = torch.tensor(grid.origin, dtype=torch.float32, device=device)
        self.cell = float(grid.cell)
        self.shape = torch.tensor(shape, device=device)
        strides = [math.prod(shape[i + 1 :]) for i in range(len(shape))]
        self.strides = torch.tensor(strides, device=device)
        self.reachable = torch.as_tensor(grid.reachable.reshape(-1), device=device)
        # one slot more than the grid: points outside it land there
        self.visited = torch.zeros(self.size + 1, dtype=torch.bool, device=device)

    @torch.no_grad()
    def visit(self, features: Tensor) -> None:
        """Mark the cells of (N, F) mode features as visited (no host sync)."""
        index = torch.floor((features.float() - self.origin) / self.cell).long()
        inside = ((index >= 0) & (index < self.shape)).all(dim=1)
        flat = (index * self.strides).sum(dim=1)
        self.visited[torch.where(inside, flat, self.size)] = True

    def share(self) -> float:
        """The share of the reachable cells visited so far (a host read)."""
        seen = self.visited[: self.size] & self.reachable
        return float(seen.sum()) / max(int(self.reachable.sum()), 1)

    def state_dict(self) -> dict[str, Tensor]:
        return {"visited": self.visited.clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.visited.copy_(state["visited"])
