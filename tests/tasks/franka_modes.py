"""Scripted policies for every mode of every Franka task, one mode per env.

`scripted_modes(task, modes)` returns a policy `task -> (N, 7) actions` under which env i plays
mode `modes[i]` of the task (numbering below); the scripted tests check that each mode
succeeds, and `benchmarks/mode_thresholds.py` measures how far apart the modes' paths are.

Modes: FrankaReach 0..3 the cross's quadrants (0 over left, 1 over right, 2 under left, 3
under right), 4 straight at the goal (blocked); FrankaPush 0 left, 1 right, 2 straight
(blocked); FrankaPegInsertion 0, 1 the holes; FrankaDrawerClose 0..3 the drawers; FrankaCabinet
0 pulling the handle, 1 pushing the edge from behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.tasks.franka_base import ROBOT_OBS_DIM, FrankaTask
from tests.tasks.franka_scripts import (
    DOWN,
    CubePusher,
    DiffIK,
    DoorScript,
    JointPath,
    Waypoints,
    rot_y,
    solve_ik,
)

FORWARD = rot_y(-np.pi / 2) @ DOWN
"""Hand pointing along +x, fingers' opening direction along y."""

Policy = Callable[[FrankaTask], Tensor]


def mirror_y(q: np.ndarray) -> np.ndarray:
    """The Panda configuration mirrored through the base's xz plane (same hand shape)."""
    return np.array([-q[0], q[1], -q[2], q[3], -q[4], q[5], np.pi / 2 - q[6]])


def reach(task: FrankaTask, modes: Sequence[int]) -> Policy:
    cx, _, cz = task.cfg.cross_center  # type: ignore[attr-defined]
    goal = tuple(task.cfg.goal)  # type: ignore[attr-defined]
    # over the upper quadrants, hand down, by differential IK
    over = {
        mode: [
            ((0.30, side * 0.14, cz + 0.13), DOWN),
            ((cx + 0.12, side * 0.14, cz + 0.13), DOWN),
            ((goal[0], side * 0.05, goal[2] + 0.04), DOWN),
        ]
        for mode, side in ((0, 1), (1, -1))
    }
    # under the horizontal slab, hand forward with the wrist turned over; the path is planned
    # backwards from the goal, then followed in joint space
    low = [(goal[0], 0.07, goal[2] - 0.05)]
    low += [(x, 0.07 + min(goal[0] - x, 0.06) / 0.06 * 0.05, low[0][2]) for x in (0.58, 0.54)]
    low += [(x, 0.12, low[0][2]) for x in np.linspace(0.50, 0.30, 6)]
    seed = [-1.5, -1.7, 1.4, -2.3, 2.8, 2.4, 0.0]
    under = solve_ik(task, seed, low, FORWARD)[::-1]
    under_paths = {2: under, 3: [mirror_y(q) for q in under]}
    paths = [over.get(m, [(goal, DOWN)]) for m in modes]
    joint_paths = [under_paths.get(m, under[:1]) for m in modes]
    ik, waypoints, joint_path = DiffIK(task), Waypoints(paths, 0.03, 30), JointPath(joint_paths)
    in_joint_space = torch.tensor([m in under_paths for m in modes])[:, None]

    def policy(t: FrankaTask) -> Tensor:
        by_ik = ik.action(*waypoints.targets(t.ee_pos.float()))
        return torch.where(in_joint_space, joint_path.action(t), by_ik)

    return policy


def push(task: FrankaTask, modes: Sequence[int]) -> Policy:
    cfg = task.cfg
    ox, _ = cfg.obstacle_pos  # type: ignore[attr-defined]
    gx, gy = cfg.goal  # type: ignore[attr-defined]
    around = {
        m: [(ox - 0.07, s * 0.13), (ox + 0.08, s * 0.13), (gx, gy)] for m, s in ((0, 1), (1, -1))
    }
    routes = [around.get(m, [(gx, gy)]) for m in modes]
    ik, pusher = DiffIK(task), CubePusher(routes, cfg.cube_half)  # type: ignore[attr-defined]
    cube = slice(ROBOT_OBS_DIM, ROBOT_OBS_DIM + 2)
    n = len(modes)
    return lambda t: ik.action(pusher.targets(t.ee_pos, t.obs_buf[:, cube]), DOWN.expand(n, 3, 3))


def peg(task: FrankaTask, modes: Sequence[int]) -> Policy:
    paths = []
    for mode in modes:
        x, y, _ = task.cfg.holes[mode]  # type: ignore[attr-defined]
        paths.append([((x, y, 0.16), DOWN), ((x, y, 0.09), DOWN), ((x, y, 0.02), DOWN)])
    ik, script = DiffIK(task), Waypoints(paths, tolerance=0.01, patience=30)
    return lambda t: ik.action(*script.targets(t.ee_pos.float()))


def drawer(task: FrankaTask, modes: Sequence[int]) -> Policy:
    front = task.cfg.cabinet_front  # type: ignore[attr-defined]
    paths = []
    for mode in modes:
        y, z = task.cfg.drawers[mode]  # type: ignore[attr-defined]
        points = (front - 0.3, front - 0.24, front - 0.02)
        paths.append([((x, y, z), FORWARD) for x in points])
    ik, script = DiffIK(task), Waypoints(paths, tolerance=0.02, patience=40)
    return lambda t: ik.action(*script.targets(t.ee_pos.float()))


def cabinet(task: FrankaTask, modes: Sequence[int]) -> Policy:
    cfg = task.cfg
    handle_z = sum(cfg.door_height) / 2 + cfg.handle_height  # type: ignore[attr-defined]
    handle_r = sum(cfg.handle_span) / 2  # type: ignore[attr-defined]
    gap = -cfg.handle_standoff / 2  # type: ignore[attr-defined]  # between bar and door
    edge_r = cfg.door_width - 0.05  # type: ignore[attr-defined]  # on the overhang
    behind = cfg.door_thickness + 0.04  # type: ignore[attr-defined]
    width = cfg.door_width  # type: ignore[attr-defined]
    pull = (
        [((gap, handle_r), handle_z + 0.12), ((gap, handle_r), handle_z - 0.01)],
        ((gap, handle_r), handle_z - 0.01),
    )
    push_from_behind = (
        [
            ((-0.1, width + 0.11), 0.5),
            ((behind + 0.01, width + 0.11), 0.5),
            ((behind, edge_r), 0.5),
        ],
        ((0.0, edge_r), 0.5),
    )
    plans = [(pull, push_from_behind)[m] for m in modes]
    ik = DiffIK(task)
    script = DoorScript((cfg.door_front, cfg.hinge_y), plans)  # type: ignore[attr-defined]
    return lambda t: ik.action(*script.targets(t.ee_pos, t.obs_buf[:, ROBOT_OBS_DIM]))


SCRIPTS: dict[str, Callable[[FrankaTask, Sequence[int]], Policy]] = {
    "FrankaReach": reach,
    "FrankaPush": push,
    "FrankaPegInsertion": peg,
    "FrankaDrawerClose": drawer,
    "FrankaCabinet": cabinet,
}
NUM_MODES = {
    "FrankaReach": 4,
    "FrankaPush": 2,
    "FrankaPegInsertion": 2,
    "FrankaDrawerClose": 4,
    "FrankaCabinet": 2,
}


def scripted_modes(name: str, task: FrankaTask, modes: Sequence[int]) -> Policy:
    """The policy under which env i of `task` (the task called `name`) plays `modes[i]`."""
    return SCRIPTS[name](task, modes)
