"""Maze layout strings: parsing, validation and cell geometry."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import mujoco

from isaacgymenvs_ddiffpg.utils.errors import ConfigError

WALL, FREE, START, GOAL = "1", "0", "R", "G"


@dataclass(frozen=True)
class MazeLayout:
    """A parsed maze.

    Rows are given top to bottom; cell (row, col) has its centre at
    x = scaling * (col - col_start), y = scaling * (row - row_start), so the start cell is the
    origin and the row index grows with +y.

    Attributes:
        rows: the layout rows, with `extra_walls` applied.
        start: (row, col) of the start cell.
        goals: goal centres (x, y), ordered by decreasing y, then increasing x; goal id k is
            `goals[k - 1]`.
        walls: wall cell centres (x, y).
        scaling: cell size in metres.
    """

    rows: tuple[str, ...]
    start: tuple[int, int]
    goals: tuple[tuple[float, float], ...]
    walls: tuple[tuple[float, float], ...]
    scaling: float

    def cell_center(self, row: int, col: int) -> tuple[float, float]:
        """World (x, y) of the centre of cell (row, col)."""
        return (
            self.scaling * (col - self.start[1]),
            self.scaling * (row - self.start[0]),
        )

    def cell_of(self, x: float, y: float) -> tuple[int, int]:
        """(row, col) of the cell containing world point (x, y)."""
        return (
            round(y / self.scaling) + self.start[0],
            round(x / self.scaling) + self.start[1],
        )

    def is_free(self, row: int, col: int) -> bool:
        """Whether cell (row, col) lies inside the map and is not a wall."""
        inside = 0 <= row < len(self.rows) and 0 <= col < len(self.rows[0])
        return inside and self.rows[row][col] != WALL

    def cell_path(self, start: tuple[int, int], end: tuple[int, int]) -> list[tuple[int, int]]:
        """A shortest path of free cells from `start` to `end` (both included), moving between
        edge-adjacent cells; empty when no path connects them."""
        previous: dict[tuple[int, int], tuple[int, int] | None] = {start: None}
        queue = deque([start])
        while queue:
            cell = queue.popleft()
            if cell == end:
                path = [cell]
                while (before := previous[path[-1]]) is not None:
                    path.append(before)
                return path[::-1]
            row, col = cell
            for step in ((row + 1, col), (row - 1, col), (row, col + 1), (row, col - 1)):
                if step not in previous and self.is_free(*step):
                    previous[step] = cell
                    queue.append(step)
        return []

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(x_min, x_max, y_min, y_max) of the whole map, walls included."""
        x0, y0 = self.cell_center(0, 0)
        x1, y1 = self.cell_center(len(self.rows) - 1, len(self.rows[0]) - 1)
        half = self.scaling / 2
        return x0 - half, x1 + half, y0 - half, y1 + half


FORMAT_HINT = (
    "A layout is rows of equal length separated by '/', using '1' (wall), '0' (free), exactly "
    "one 'R' (start) and at least one 'G' (goal); fix task.env.layout."
)


def _fail(layout: str, problem: str, hint: str = FORMAT_HINT) -> ConfigError:
    return ConfigError(f"Malformed maze layout {layout!r}: {problem}. {hint}")


def parse_layout(
    layout: str, scaling: float = 4.0, extra_walls: list[list[float]] | None = None
) -> MazeLayout:
    """Parse and validate a layout string such as "11111/10001/1G1R1/10001/11111".

    Args:
        layout: rows separated by "/".
        scaling: cell size in metres.
        extra_walls: (x, y) centres of free cells to turn into walls (replanning variants).

    Raises:
        ConfigError: ragged rows, unknown characters, no or several starts, no goal, a start with
            no free neighbour, an extra wall that is not on a free cell, or a goal that no path
            of free cells connects to the start.
    """
    rows = [r.strip() for r in layout.strip().split("/")]
    if not rows or not rows[0]:
        raise _fail(layout, "it is empty")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        lengths = ", ".join(str(len(r)) for r in rows)
        raise _fail(layout, f"rows have different lengths ({lengths})")
    bad = sorted({c for r in rows for c in r} - {WALL, FREE, START, GOAL})
    if bad:
        raise _fail(layout, f"unknown character(s) {', '.join(map(repr, bad))}")
    starts = [(i, j) for i, r in enumerate(rows) for j, c in enumerate(r) if c == START]
    if len(starts) != 1:
        raise _fail(layout, f"it has {len(starts)} start cells 'R', expected exactly one")
    if not any(GOAL in r for r in rows):
        raise _fail(layout, "it has no goal cell 'G'")
    grid = [list(r) for r in rows]
    (sr, sc) = starts[0]
    probe = MazeLayout(tuple(rows), (sr, sc), (), (), scaling)
    for xy in extra_walls or []:
        r, c = probe.cell_of(float(xy[0]), float(xy[1]))
        inside = 0 <= r < len(grid) and 0 <= c < len(grid[0])
        if not inside or grid[r][c] != FREE:
            raise _fail(layout, f"extra wall at {tuple(xy)} is not on a free '0' cell")
        grid[r][c] = WALL

    def free(i: int, j: int) -> bool:
        return 0 <= i < len(grid) and 0 <= j < len(grid[0]) and grid[i][j] != WALL

    if not any(free(sr + di, sc + dj) for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1))):
        raise _fail(layout, f"the start cell (row {sr}, col {sc}) has no free neighbour")

    cells = [(i, j, c) for i, r in enumerate(grid) for j, c in enumerate(r)]
    goals = sorted(
        (probe.cell_center(i, j) for i, j, c in cells if c == GOAL),
        key=lambda xy: (-xy[1], xy[0]),
    )
    walls = tuple(probe.cell_center(i, j) for i, j, c in cells if c == WALL)
    maze = MazeLayout(tuple("".join(r) for r in grid), (sr, sc), tuple(goals), walls, scaling)
    for i, j, c in cells:
        if c == GOAL and not maze.cell_path((sr, sc), (i, j)):
            x, y = maze.cell_center(i, j)
            raise _fail(
                layout,
                f"the goal at row {i}, col {j} (x = {x:g}, y = {y:g}) cannot be reached: no path "
                f"of free cells connects it to the start",
                "Open a path of '0' cells between 'R' and every 'G' in task.env.layout (or "
                "drop the extra walls that close it).",
            )
    return maze


def add_maze_to_spec(
    spec: mujoco.MjSpec, maze: MazeLayout, wall_height: float, goal_radius: float
) -> None:
    """Add static wall boxes and visual goal markers to `spec`'s world body.

    Walls have contype 0 and conaffinity 1: they touch the robot only (world-body geoms never
    collide with each other), which keeps contacts cheap.
    """
    half = maze.scaling / 2
    for k, (x, y) in enumerate(maze.walls):
        spec.worldbody.add_geom(
            name=f"wall_{k}",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[half, half, wall_height / 2],
            pos=[x, y, wall_height / 2],
            contype=0,
            conaffinity=1,
            material="wall",
        )
    for k, (x, y) in enumerate(maze.goals, start=1):
        spec.worldbody.add_geom(
            name=f"goal_{k}",
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            size=[goal_radius, 0.01, 0],
            pos=[x, y, 0.01],
            contype=0,
            conaffinity=0,
            rgba=[0.2, 0.9, 0.3, 0.6],
        )
    x0, x1, y0, y1 = maze.bounds
    spec.worldbody.add_camera(
        name="overview",
        pos=[(x0 + x1) / 2, (y0 + y1) / 2, 1.1 * max(x1 - x0, y1 - y0)],
        xyaxes=[1, 0, 0, 0, 1, 0],
        fovy=55,
    )
