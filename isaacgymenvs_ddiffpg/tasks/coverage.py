"""State-coverage grids: the cells of the mode-feature space (maze xy, end-effector xyz) a robot
can reach, against which the share of cells a run has visited is measured."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np


@dataclass(frozen=True)
class CoverageGrid:
    """A regular grid over the mode features and the cells of it a robot can reach.

    Attributes:
        origin: (F,) lower corner of the grid.
        cell: cell size (m).
        reachable: bool array of shape (cells along each of the F axes), true where the robot
            can be.
    """

    origin: tuple[float, ...]
    cell: float
    reachable: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.reachable.shape)


def maze_grid(
    bounds: tuple[float, float, float, float], cell: float, free: Callable[[float, float], bool]
) -> CoverageGrid:
    """The xy grid of a maze: cells whose centre lies in a free maze cell are reachable.

    Args:
        bounds: (x_min, x_max, y_min, y_max) of the map, walls included.
        cell: grid cell size (m).
        free: (x, y) -> whether that point lies in a free maze cell.
    """
    x0, x1, y0, y1 = bounds
    nx, ny = int(round((x1 - x0) / cell)), int(round((y1 - y0) / cell))
    xs = x0 + (np.arange(nx) + 0.5) * cell
    ys = y0 + (np.arange(ny) + 0.5) * cell
    reachable = np.array([[free(x, y) for y in ys] for x in xs], dtype=bool)
    return CoverageGrid((x0, y0), cell, reachable)


def workspace_grid(
    model: mujoco.MjModel,
    site: str,
    num_joints: int,
    low: tuple[float, float, float] = (-0.4, -1.0, 0.0),
    high: tuple[float, float, float] = (1.2, 1.0, 1.4),
    cell: float = 0.05,
    samples: int = 40_000,
    seed: int = 0,
) -> CoverageGrid:
    """The end-effector grid of an arm: cells of the box [low, high) (above the table top, z >=
    0) that the site reaches in a uniform sample of joint configurations within their limits
    (kinematics only: contacts are ignored, so a few cells inside obstacles count as reachable).

    Args:
        model: the arm's model (its first `num_joints` joints are sampled).
        site: the end effector's site.
        num_joints: number of arm joints.
        low, high: the box (m).
        cell: grid cell size (m).
        samples: joint configurations sampled.
        seed: seed of the sample.
    """
    lo, hi = np.asarray(low), np.asarray(high)
    shape = tuple(int(n) for n in np.round((hi - lo) / cell))
    reachable = np.zeros(shape, dtype=bool)
    data = mujoco.MjData(model)
    limits = model.jnt_range[:num_joints]
    rng = np.random.default_rng(seed)
    site_id = model.site(site).id
    for q in rng.uniform(limits[:, 0], limits[:, 1], size=(samples, num_joints)):
        data.qpos[:num_joints] = q
        mujoco.mj_kinematics(model, data)
        index = np.floor((data.site_xpos[site_id] - lo) / cell).astype(int)
        if (index >= 0).all() and (index < shape).all():
            reachable[tuple(index)] = True
    return CoverageGrid(tuple(float(v) for v in lo), cell, reachable)
