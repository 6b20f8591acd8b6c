"""Online replanning: follow a mode, switch to the next mode's embedding when progress stalls.

Progress is task-agnostic: the straight-line distance the mode features (maze xy, end-effector
xyz) moved over the last `window` steps. A policy pressed against a wall it never saw in
training, or circling in a dead end, moves its features less than `min_progress` over the
window and is switched to the next mode (in mode-id order, wrapping around); a policy on its
way to a goal moves more and keeps its mode. Each mode gets a full window before it is judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.utils.errors import ConfigError


@dataclass
class ReplanConfig:
    """When to give up on a mode.

    Attributes:
        window: steps over which progress is measured (and that a new mode is given).
        min_progress: distance (mode-feature units: metres for mazes and end effectors) the
            features must move over `window` steps; None: the task's `coverage_cell`.
    """

    window: int = 50
    min_progress: float | None = None

    def resolved_min_progress(self, coverage_cell: float) -> float:
        """`min_progress`, or the task's coverage cell when unset."""
        return float(coverage_cell if self.min_progress is None else self.min_progress)


class Replanner:
    """Per-env mode choice that moves on to the next mode when the features stall.

    Args:
        mode_ids: the modes to cycle through, in switching order (at least two).
        embeddings: (K, embedding_dim) z of each mode in `mode_ids`, same order.
        start_mode: (N,) mode id each env starts with (must be in `mode_ids`).
        window: steps over which progress is measured.
        min_progress: least distance the features must move over `window` steps.
    """

    def __init__(
        self,
        mode_ids: Sequence[int],
        embeddings: Tensor,
        start_mode: Tensor,
        window: int,
        min_progress: float,
    ) -> None:
        if len(mode_ids) < 2:
            raise ConfigError(
                f"replan=True switches between learned modes, but only {len(mode_ids)} mode "
                f"({list(mode_ids)}) is available. Play a checkpoint that found at least two "
                f"modes (train longer, or lower the clustering threshold), or drop replan=True."
            )
        if window < 1:
            raise ConfigError(f"replan_window must be >= 1 step, got {window}.")
        self.mode_ids = torch.tensor(list(mode_ids), dtype=torch.long, device=start_mode.device)
        self.embeddings = embeddings.to(start_mode.device)
        index = (start_mode[:, None] == self.mode_ids[None, :]).long().argmax(dim=1)
        if not bool((self.mode_ids[index] == start_mode).all()):
            raise ConfigError(
                f"replanning starts from modes {sorted(set(start_mode.tolist()))} but can only "
                f"switch between {list(mode_ids)}; start from one of those."
            )
        self.index = index
        self.window = window
        self.min_progress = min_progress
        self.history: Tensor | None = None  # (window, N, F) ring of past features
        self.steps_in_mode = torch.zeros_like(index)
        self.steps = 0
        self.switches = torch.zeros_like(index)

    @property
    def current_mode(self) -> Tensor:
        """(N,) the mode id each env plays now."""
        return self.mode_ids[self.index]

    @property
    def mode_embedding(self) -> Tensor:
        """(N, embedding_dim) z each env plays now."""
        return self.embeddings[self.index]

    def observe(self, features: Tensor, active: Tensor) -> Tensor:
        """Record this step's features; switch the stalled active envs to their next mode.

        Args:
            features: (N, F) mode features after the step.
            active: (N,) bool, envs whose episode is still running.

        Returns:
            (N,) bool, the envs switched this step.
        """
        if self.history is None:
            self.history = features[None].repeat(self.window, 1, 1)
        slot = self.steps % self.window
        past = self.history[slot].clone()  # features `window` steps ago
        self.history[slot] = features
        self.steps += 1
        self.steps_in_mode += 1
        progress = torch.linalg.vector_norm(features - past, dim=-1)
        stalled = active & (self.steps_in_mode >= self.window) & (progress < self.min_progress)
        self.index = torch.where(stalled, (self.index + 1) % len(self.mode_ids), self.index)
        self.steps_in_mode = torch.where(stalled, 0, self.steps_in_mode)
        self.switches += stalled.long()
        return stalled
