"""Played episodes collected across modes and written to `episodes.npz` for users' own analysis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

FEATURE_NAMES = {2: ["x", "y"], 3: ["x", "y", "z"]}


class EpisodeLog:
    """The episodes of a play run, one row per episode.

    `episodes.npz` holds, for E episodes of at most T steps and F mode features:
    `mode` (E,) the mode played (0: z = 0; the starting mode of replanned episodes),
    `final_mode` (E,) the mode played at the end, `replanned` (E,) bool, `switches` (E,) mode
    switches, `goal` (E,) goal id reached (0: none), `length` (E,) steps, `path` (E, T + 1, F)
    float32 mode features (maze xy or end-effector xyz) from the reset on; rows after
    `length` repeat the last one. Also `feature_names` (F,), `task` and `checkpoint_iteration`.
    """

    def __init__(self) -> None:
        self.rows: list[dict[str, Tensor]] = []

    def add(self, result: dict[str, Tensor], mode: int, replanned: bool = False) -> None:
        """Add the episodes of one `run_episodes` call (which recorded `paths`)."""
        success = result["success"].cpu()
        num = success.shape[0]
        self.rows.append(
            {
                "mode": torch.full((num,), mode, dtype=torch.long),
                "final_mode": result.get("final_mode", torch.full((num,), mode)).cpu().long(),
                "replanned": torch.full((num,), replanned, dtype=torch.bool),
                "switches": result.get("switches", torch.zeros(num)).cpu().long(),
                "goal": success.long(),
                "length": result["length"].cpu().long(),
                "path": result["paths"].detach().float().cpu(),
            }
        )

    def columns(self) -> dict[str, Tensor]:
        """Every column concatenated over the added runs (paths padded to a common length)."""
        if not self.rows:
            return {}
        horizon = max(row["path"].shape[1] for row in self.rows)
        columns: dict[str, Tensor] = {}
        for key in self.rows[0]:
            parts = [row[key] for row in self.rows]
            if key == "path":
                parts = [
                    torch.cat((p, p[:, -1:].expand(-1, horizon - p.shape[1], -1)), dim=1)
                    for p in parts
                ]
            columns[key] = torch.cat(parts)
        return columns

    def save(self, path: Path, task: str, checkpoint_iteration: int) -> Path:
        """Write `episodes.npz` (layout in the class docstring)."""
        columns: dict[str, Any] = {key: value.numpy() for key, value in self.columns().items()}
        feature_dim = columns["path"].shape[-1] if "path" in columns else 0
        names = FEATURE_NAMES.get(feature_dim, [f"f{i}" for i in range(feature_dim)])
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            **columns,
            feature_names=np.array(names),
            task=np.array(task),
            checkpoint_iteration=np.array(checkpoint_iteration),
        )
        return path
