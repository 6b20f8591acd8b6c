"""The mode atlas: trajectories coloured by mode over the maze map, or end-effector projections."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle
from torch import Tensor

# one colour per mode id (mode 0, z = 0 or unassigned, is grey); ids past 10 reuse the palette
PALETTE = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#17becf",
    "#e377c2",
    "#8c564b",
    "#bcbd22",
    "#393b79",
]
MODE0_COLOR = "#7f7f7f"
MAX_DRAWN_PER_MODE = 100
LEGEND_WIDTH = 2.6  # inches right of the panels
PROJECTIONS = (("x", "y", 0, 1), ("x", "z", 0, 2), ("y", "z", 1, 2))


def mode_color(mode_id: int) -> tuple[float, float, float]:
    """RGB in [0, 1] of a mode id."""
    return to_rgb(MODE0_COLOR if mode_id == 0 else PALETTE[(mode_id - 1) % len(PALETTE)])


@dataclass(frozen=True)
class MazeMap:
    """What the atlas draws under maze paths: wall cells, goal regions and the start."""

    walls: tuple[tuple[float, float], ...]
    goals: tuple[tuple[float, float], ...]
    scaling: float
    goal_radius: float

    @property
    def aspect(self) -> float:
        """Height over width of the map."""
        xs = [x for x, _ in self.walls]
        ys = [y for _, y in self.walls]
        return (max(ys) - min(ys) + self.scaling) / (max(xs) - min(xs) + self.scaling)

    @classmethod
    def of_task(cls, task: Any) -> MazeMap | None:
        """The map of a maze task (anything with `maze` and `cfg.goal_radius`); None otherwise."""
        maze = getattr(task, "maze", None)
        if maze is None:
            return None
        return cls(maze.walls, maze.goals, maze.scaling, float(task.cfg.goal_radius))


@dataclass
class ModeTrajectories:
    """Trajectories to draw, with the mode each belongs to.

    Attributes:
        paths: (E, T, F) mode-feature paths (F = 2: maze xy, F = 3: end-effector xyz).
        lengths: (E,) number of valid rows of each path.
        modes: (E,) mode id of each trajectory (0: z = 0 or no mode).
        success_rate: mode id -> success rate under its embedding (missing: not evaluated).
    """

    paths: Tensor
    lengths: Tensor
    modes: Tensor
    success_rate: Mapping[int, float]


class ModeLearner(Protocol):
    """What the atlas reads of an agent that learns modes (the learning `Agent` protocol)."""

    @property
    def replay(self) -> Any:
        """Its trajectory replay (`completed` gives the stored paths and their groups)."""
        ...

    @property
    def mode_feature_dim(self) -> int: ...

    @property
    def mode_ids(self) -> list[int]:
        """Mode id of groups 1..K."""
        ...

    @property
    def learns_modes(self) -> bool: ...


def replay_trajectories(algo: ModeLearner, success_rate: Mapping[int, float]) -> ModeTrajectories:
    """The successful trajectories of an agent's replay, labelled with their current mode ids."""
    stored = algo.replay.completed(algo.mode_feature_dim, device="cpu")
    won = (stored["success"] > 0) & (stored["groups"] > 0)
    group_to_mode = torch.tensor([0, *algo.mode_ids], dtype=torch.long)
    return ModeTrajectories(
        paths=stored["paths"][won],
        lengths=stored["lengths"][won] + 1,
        modes=group_to_mode[stored["groups"][won]],
        success_rate=success_rate,
    )


def draw_atlas(
    trajectories: ModeTrajectories, maze: MazeMap | None, title: str
) -> tuple[np.ndarray, dict[int, tuple[float, float, float]]]:
    """Draw the atlas.

    Returns:
        The picture (height, width, 3) uint8 and the colour of each mode drawn.
    """
    paths = trajectories.paths.detach().float().cpu().numpy()
    lengths = trajectories.lengths.cpu().numpy()
    modes = trajectories.modes.cpu().numpy()
    feature_dim = paths.shape[-1] if paths.ndim == 3 else 2
    panels = [("x", "y", 0, 1)] if maze is not None or feature_dim < 3 else list(PROJECTIONS)
    height = 5.0 if maze is None else float(np.clip(5.0 * maze.aspect, 2.5, 6.0))
    figure = Figure(figsize=(5.0 * len(panels) + LEGEND_WIDTH, height + 0.6), dpi=100)
    canvas = FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    colors: dict[int, tuple[float, float, float]] = {}
    for axis, (xlabel, ylabel, i, j) in zip(axes, panels, strict=True):
        if maze is not None:
            _draw_maze(axis, maze)
        for mode in sorted(set(modes.tolist())):
            colors[mode] = mode_color(mode)
            members = np.flatnonzero(modes == mode)[:MAX_DRAWN_PER_MODE]
            for k in members:
                path = paths[k, : max(int(lengths[k]), 1)]
                axis.plot(path[:, i], path[:, j], color=colors[mode], alpha=0.35, linewidth=1.2)
                axis.plot(path[-1, i], path[-1, j], "o", color=colors[mode], markersize=3)
        axis.set_xlabel(f"{xlabel} (m)")
        axis.set_ylabel(f"{ylabel} (m)")
        axis.set_aspect("equal", adjustable="box" if maze is not None else "datalim")
        axis.grid(alpha=0.2)
    handles = [
        Rectangle((0, 0), 1, 1, color=colors[mode], label=_legend_label(mode, trajectories))
        for mode in sorted(colors)
    ]
    if handles:
        figure.legend(handles=handles, loc="center right", fontsize=9, frameon=False)
    else:
        axes[0].text(0.5, 0.5, "no successful trajectories yet", ha="center", va="center",
                     transform=axes[0].transAxes)  # fmt: skip
    figure.suptitle(title, fontsize=11)
    figure.tight_layout(rect=(0.0, 0.0, 1.0 - LEGEND_WIDTH / figure.get_figwidth(), 0.95))
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    return image, colors


def _legend_label(mode: int, trajectories: ModeTrajectories) -> str:
    count = int((trajectories.modes == mode).sum())
    rate = trajectories.success_rate.get(mode)
    rate_text = "not evaluated" if rate is None else f"success {rate:.0%}"
    name = "z = 0" if mode == 0 else f"mode {mode}"
    return f"{name}: {count} traj., {rate_text}"


def _draw_maze(axis: Any, maze: MazeMap) -> None:
    half = maze.scaling / 2
    for x, y in maze.walls:
        axis.add_patch(
            Rectangle((x - half, y - half), maze.scaling, maze.scaling, color="#5a4a3a", lw=0)
        )
    for x, y in maze.goals:
        axis.add_patch(Circle((x, y), maze.goal_radius, color="#2ca02c", alpha=0.25, lw=0))
    axis.plot(0.0, 0.0, marker="*", color="black", markersize=10, linestyle="none")
    xs = [x for x, _ in maze.walls]
    ys = [y for _, y in maze.walls]
    axis.set_xlim(min(xs) - half, max(xs) + half)
    axis.set_ylim(min(ys) - half, max(ys) + half)


def write_atlas(
    trajectories: ModeTrajectories,
    maze: MazeMap | None,
    path: Path,
    title: str,
    writer: Any = None,
    step: int = 0,
) -> dict[int, tuple[float, float, float]]:
    """Draw the atlas into a PNG at `path` and, with a `SummaryWriter`, as image `modes/atlas`.

    Returns:
        The colour of each mode drawn.
    """
    from PIL import Image

    image, colors = draw_atlas(trajectories, maze, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    if writer is not None:
        writer.add_image("modes/atlas", image, step, dataformats="HWC")
    return colors
