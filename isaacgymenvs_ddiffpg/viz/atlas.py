"""The mode atlas: trajectories coloured by mode over the maze map, or end-effector projections."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Patch, Polygon, Rectangle
from torch import Tensor

from isaacgymenvs_ddiffpg.viz.scene import MazeMap, SceneGeom, WorkspaceMap, task_map

__all__ = ["MazeMap", "ModeTrajectories", "WorkspaceMap", "atlas_figure", "draw_atlas",
           "mode_color", "replay_trajectories", "task_map", "write_atlas"]  # fmt: skip

# one colour per mode id (mode 0, z = 0 or unassigned, is grey); ids past 10 reuse the palette
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
           "#17becf", "#e377c2", "#8c564b", "#bcbd22", "#393b79"]  # fmt: skip
MODE0_COLOR = "#7f7f7f"
GOAL_COLOR = "#2ca02c"
MAX_DRAWN_PER_MODE = 100  # successful paths, and as many failed ones, per mode
SUCCESS_ALPHA, FAILURE_ALPHA = 0.4, 0.12
LEGEND_WIDTH = 3.0  # inches right of the panels
PAD_INCHES = 0.1  # white margin around what is drawn
PROJECTIONS = (("x", "y", 0, 1), ("x", "z", 0, 2), ("y", "z", 1, 2))
AtlasMap = MazeMap | WorkspaceMap


def mode_color(mode_id: int) -> tuple[float, float, float]:
    """RGB in [0, 1] of a mode id."""
    return to_rgb(MODE0_COLOR if mode_id == 0 else PALETTE[(mode_id - 1) % len(PALETTE)])


@dataclass
class ModeTrajectories:
    """Trajectories to draw, with the mode each belongs to.

    Attributes:
        paths: (E, T, F) mode-feature paths (F = 2: maze xy, F = 3: end-effector xyz).
        lengths: (E,) number of valid rows of each path.
        modes: (E,) mode id of each trajectory (0: z = 0 or no mode).
        success_rate: mode id -> success rate under its embedding (missing: not evaluated).
        success: (E,) bool, whether each trajectory reached a goal; None: all did. Failed ones
            are drawn faintly, so a mode that failed still shows.
    """

    paths: Tensor
    lengths: Tensor
    modes: Tensor
    success_rate: Mapping[int, float]
    success: Tensor | None = None

    def succeeded(self) -> np.ndarray:
        """(E,) bool numpy array: which trajectories reached a goal."""
        if self.success is None:
            return np.ones(self.modes.shape[0], dtype=bool)
        return self.success.detach().cpu().numpy().astype(bool)


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


def atlas_figure(
    trajectories: ModeTrajectories, scene: AtlasMap | None, title: str
) -> tuple[Figure, dict[int, tuple[float, float, float]]]:
    """The atlas as a matplotlib figure (constrained layout; `draw_atlas` crops it to a tight
    bounding box, so that every label is inside the picture).

    Args:
        trajectories: what to draw.
        scene: the maze map or the Franka workspace under the paths (None: paths only).
        title: the figure's title.

    Returns:
        The figure and the colour of each mode in its legend.
    """
    paths = trajectories.paths.detach().float().cpu().numpy()
    lengths = trajectories.lengths.cpu().numpy()
    modes = trajectories.modes.cpu().numpy()
    won = trajectories.succeeded()
    maze = scene if isinstance(scene, MazeMap) else None
    feature_dim = paths.shape[-1] if paths.ndim == 3 else 2
    panels = [PROJECTIONS[0]] if maze is not None or feature_dim < 3 else list(PROJECTIONS)
    height = 5.0 if maze is None else float(np.clip(5.0 * maze.aspect, 2.5, 6.0))
    figure = Figure(
        figsize=(5.0 * len(panels) + LEGEND_WIDTH, height + 0.6), dpi=100, layout="constrained"
    )
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    shown = sorted({*modes.tolist(), *trajectories.success_rate})
    colors = {mode: mode_color(mode) for mode in shown}
    scene_handles: list[Any] = []
    for axis, (xlabel, ylabel, i, j) in zip(axes, panels, strict=True):
        if maze is not None:
            scene_handles = _draw_maze(axis, maze)
        elif isinstance(scene, WorkspaceMap):
            scene_handles = _draw_workspace(axis, scene, i, j, paths, lengths)
        for mode in shown:
            for reached in (False, True):  # failures underneath
                members = np.flatnonzero((modes == mode) & (won == reached))
                for k in members[:MAX_DRAWN_PER_MODE]:
                    path = paths[k, : max(int(lengths[k]), 1)]
                    _draw_path(axis, path, i, j, colors[mode], reached)
        axis.set_xlabel(f"{xlabel} (m)")
        axis.set_ylabel(f"{ylabel} (m)")
        axis.set_aspect("equal", adjustable="box")
        axis.grid(alpha=0.2)
    handles = scene_handles + [
        Patch(color=colors[mode], label=_legend_label(mode, trajectories)) for mode in shown
    ]
    if handles:
        figure.legend(handles=handles, loc="outside right center", fontsize=9, frameon=False)
    if modes.size == 0:
        axes[0].text(0.5, 0.5, "no trajectories yet", ha="center", va="center",
                     transform=axes[0].transAxes)  # fmt: skip
    figure.suptitle(title, fontsize=11)
    return figure, colors


def draw_atlas(
    trajectories: ModeTrajectories, maze: AtlasMap | None, title: str
) -> tuple[np.ndarray, dict[int, tuple[float, float, float]]]:
    """Draw the atlas (see `atlas_figure`), cropped to what is drawn plus a white margin of
    `PAD_INCHES` (a tight bounding box: no label is cut).

    Returns:
        The picture (height, width, 3) uint8 and the colour of each mode in the legend.
    """
    from PIL import Image

    figure, colors = atlas_figure(trajectories, maze, title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", pad_inches=PAD_INCHES)
    return np.asarray(Image.open(buffer).convert("RGB")), colors


def _draw_path(axis: Axes, path: np.ndarray, i: int, j: int, color: Any, reached: bool) -> None:
    """One (T, F) path in the (i, j) projection: faint with a cross at its end if it failed."""
    alpha = SUCCESS_ALPHA if reached else FAILURE_ALPHA
    width = 1.2 if reached else 0.9
    axis.plot(path[:, i], path[:, j], color=color, alpha=alpha, lw=width, zorder=2)
    axis.plot(path[-1, i], path[-1, j], "o" if reached else "x", color=color,
              alpha=min(1.0, 2.5 * alpha), markersize=3, zorder=3)  # fmt: skip


def _legend_label(mode: int, trajectories: ModeTrajectories) -> str:
    members = (trajectories.modes == mode).cpu().numpy()
    count = int(members.sum())
    rate = trajectories.success_rate.get(mode)
    rate_text = "not evaluated" if rate is None else f"success {rate:.0%}"
    name = "z = 0" if mode == 0 else f"mode {mode}"
    if trajectories.success is None:
        return f"{name}: {count} traj., {rate_text}"
    failed = int((members & ~trajectories.succeeded()).sum())
    return f"{name}: {count} traj. ({failed} failed), {rate_text}"


def _start_handle(axis: Axes, x: float, y: float) -> Line2D:
    (star,) = axis.plot(x, y, marker="*", color="black", markersize=12, linestyle="none",
                        zorder=4, label="start")  # fmt: skip
    return star


def _draw_maze(axis: Axes, maze: MazeMap) -> list[Any]:
    """Walls, goal regions (numbered when there are several) and the start; legend handles."""
    half = maze.scaling / 2
    for x, y in maze.walls:
        axis.add_patch(
            Rectangle((x - half, y - half), maze.scaling, maze.scaling, color="#5a4a3a", lw=0)
        )
    for k, (x, y) in enumerate(maze.goals, start=1):
        axis.add_patch(Circle((x, y), maze.goal_radius, color=GOAL_COLOR, alpha=0.3, lw=0))
        if len(maze.goals) > 1:
            axis.text(x, y, str(k), ha="center", va="center", fontsize=9, color="#1b5e20")
    xs = [x for x, _ in maze.walls]
    ys = [y for _, y in maze.walls]
    axis.set_xlim(min(xs) - half, max(xs) + half)
    axis.set_ylim(min(ys) - half, max(ys) + half)
    many = len(maze.goals) > 1
    goal_label = f"goals 1-{len(maze.goals)} (ids on the map)" if many else "goal"
    goal = Patch(color=GOAL_COLOR, alpha=0.3, label=goal_label)
    return [_start_handle(axis, 0.0, 0.0), goal]


def _draw_workspace(
    axis: Axes, scene: WorkspaceMap, i: int, j: int, paths: np.ndarray, lengths: np.ndarray
) -> list[Any]:
    """The scene's geoms and goal sites in the (i, j) projection, the start, and a view that
    holds them and the paths; legend handles."""
    handles: dict[str, Any] = {"start": _start_handle(axis, scene.start[i], scene.start[j])}
    for geom in scene.geoms:
        patch = _projected(geom, i, j)
        axis.add_patch(patch)
        if geom.role in ("goal", "obstacle", "object") and geom.role not in handles:
            label = {"goal": "goal", "obstacle": "obstacle", "object": "object (at reset)"}
            handles[geom.role] = Patch(
                facecolor=patch.get_facecolor(), edgecolor=patch.get_edgecolor(),
                label=label[geom.role],
            )  # fmt: skip
    named: list[tuple[float, float]] = []
    for name, point in scene.goal_sites:
        xy = (point[i], point[j])
        axis.plot(*xy, marker="X", color=GOAL_COLOR, markersize=9, linestyle="none", zorder=4)
        if all(np.hypot(xy[0] - x, xy[1] - y) > 0.01 for x, y in named):  # one name per spot
            axis.annotate(name, xy, xytext=(4, 4), textcoords="offset points", fontsize=8,
                          color="#1b5e20")  # fmt: skip
            named.append(xy)
    if scene.goal_sites:
        handles["goal sites"] = Line2D([], [], marker="X", color=GOAL_COLOR, linestyle="none",
                                       label="goal (site)")  # fmt: skip
    low, high = scene.view_bounds()
    for path, length in zip(paths, lengths, strict=True):
        low = np.minimum(low, path[: max(int(length), 1)].min(axis=0))
        high = np.maximum(high, path[: max(int(length), 1)].max(axis=0))
    centre, half = (low + high) / 2, 0.55 * float(max(high[i] - low[i], high[j] - low[j])) + 0.02
    axis.set_xlim(centre[i] - half, centre[i] + half)  # square panels of equal axis scales
    axis.set_ylim(centre[j] - half, centre[j] + half)
    return list(handles.values())


def _projected(geom: SceneGeom, i: int, j: int) -> Patch:
    """The geom's outline in the (i, j) projection, in its model colour."""
    r, g, b, a = geom.rgba
    alpha = 0.25 if geom.role == "backdrop" else 0.35 if geom.role == "goal" else 0.6
    style = {
        "facecolor": (r, g, b, alpha * a), "edgecolor": (r * 0.6, g * 0.6, b * 0.6, 0.9),
        "lw": 0.8, "zorder": 0.5 if geom.role == "backdrop" else 1,
    }  # fmt: skip
    radius = geom.circle_in(i, j)
    if radius is not None:
        return Circle((geom.pos[i], geom.pos[j]), radius, **style)
    outline = geom.outline_in(i, j)
    if geom.axis_aligned:
        (x0, y0), (x1, y1) = outline.min(axis=0), outline.max(axis=0)
        return Rectangle((x0, y0), x1 - x0, y1 - y0, **style)
    return Polygon(outline, closed=True, **style)


def write_atlas(
    trajectories: ModeTrajectories,
    maze: AtlasMap | None,
    path: Path,
    title: str,
    writer: Any = None,
    step: int = 0,
) -> dict[int, tuple[float, float, float]]:
    """Draw the atlas into a PNG at `path` and, with a `SummaryWriter`, as image `modes/atlas`.

    Args:
        trajectories: what to draw.
        maze: the map under the paths (`task_map(task)`: a maze or a Franka workspace).
        path: the PNG to write.
        title: the figure's title.
        writer: a tensorboard `SummaryWriter`, or None.
        step: the tensorboard step.

    Returns:
        The colour of each mode in the legend.
    """
    from PIL import Image

    image, colors = draw_atlas(trajectories, maze, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    if writer is not None:
        writer.add_image("modes/atlas", image, step, dataformats="HWC")
    return colors
