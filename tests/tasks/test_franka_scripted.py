"""Scripted controllers show every mode of every Franka task through the task's own `step`."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from isaacgymenvs_ddiffpg.tasks import make_task
from isaacgymenvs_ddiffpg.tasks.franka_base import ROBOT_OBS_DIM
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

pytestmark = pytest.mark.slow

FORWARD = rot_y(-np.pi / 2) @ DOWN
"""Hand pointing along +x, fingers' opening direction along y."""


@dataclass
class Episode:
    """What one scripted episode did, per env up to its first terminal step."""

    obs: torch.Tensor  # (T, N, obs_dim): extras["final_obs"] of every step
    success: list[int]  # goal id of the first terminal step, 0 if none
    steps: list[int]  # index of that step, -1 if none

    def path(self, env: int) -> torch.Tensor:
        """(t, obs_dim) observations of `env` until its success (all steps if none)."""
        end = self.steps[env] + 1 if self.steps[env] >= 0 else len(self.obs)
        return self.obs[:end, env]


def run(task, policy) -> Episode:
    """Run one episode of `policy(task) -> (N, 7) actions`, which must stay in [-1, 1]."""
    n = task.num_envs
    success, steps, record = [0] * n, [-1] * n, []
    for step in range(task.max_episode_length):
        actions = policy(task)
        assert actions.shape == (n, 7) and actions.abs().max() <= 1.0
        _, _, terminated, _, extras = task.step(actions)
        record.append(extras["final_obs"].clone())
        for env in terminated.nonzero().flatten().tolist():
            if steps[env] < 0:
                success[env], steps[env] = int(extras["success"][env]), step
        if min(steps) >= 0:
            break
    return Episode(torch.stack(record), success, steps)


def mirror_y(q: np.ndarray) -> np.ndarray:
    """The Panda configuration mirrored through the base's xz plane (same hand shape)."""
    return np.array([-q[0], q[1], -q[2], q[3], -q[4], q[5], np.pi / 2 - q[6]])


def test_reach_around_the_cross_through_all_four_quadrants() -> None:
    task = make_task("FrankaReach", num_envs=5)
    cx, _, cz = task.cfg.cross_center
    goal = tuple(task.cfg.goal)
    # envs 0, 1: over the cross's upper quadrants, hand down, by differential IK
    paths = [
        [
            ((0.30, side * 0.14, cz + 0.13), DOWN),
            ((cx + 0.12, side * 0.14, cz + 0.13), DOWN),
            ((goal[0], side * 0.05, goal[2] + 0.04), DOWN),
        ]
        for side in (1, -1)
    ]
    # envs 2, 3: under the horizontal slab, hand pointing forward with the wrist turned over; the
    # path is planned backwards from the goal, then followed in joint space
    low = [(goal[0], 0.07, goal[2] - 0.05)]
    low += [(x, 0.07 + min(goal[0] - x, 0.06) / 0.06 * 0.05, low[0][2]) for x in (0.58, 0.54)]
    low += [(x, 0.12, low[0][2]) for x in np.linspace(0.50, 0.30, 6)]
    seed = [-1.5, -1.7, 1.4, -2.3, 2.8, 2.4, 0.0]
    under = solve_ik(task, seed, low, FORWARD)[::-1]
    joint_paths = [under[:1], under[:1], under, [mirror_y(q) for q in under], under[:1]]
    # env 4: straight at the goal, where the cross is in the way (envs 2, 3 ignore waypoints)
    paths += [[(goal, DOWN)], [(goal, DOWN)], [(goal, DOWN)]]
    ik, waypoints, joint_path = DiffIK(task), Waypoints(paths, 0.03, 30), JointPath(joint_paths)
    in_joint_space = torch.tensor([False, False, True, True, False])[:, None]

    def policy(t):
        by_ik = ik.action(*waypoints.targets(t.ee_pos.float()))
        return torch.where(in_joint_space, joint_path.action(t), by_ik)

    episode = run(task, policy)
    assert episode.success == [1, 1, 1, 1, 0]
    assert (episode.path(4)[:, 0] < cx).all()
    quadrants = set()
    for env in range(4):
        ee = episode.path(env)[:, :3].double()
        assert ee[0, 0] < cx < ee[-1, 0]
        k = int(torch.nonzero(ee[:, 0] >= cx)[0])  # first step beyond the cross's plane
        w = float((cx - ee[k - 1, 0]) / (ee[k, 0] - ee[k - 1, 0]))
        y, z = (1 - w) * ee[k - 1, 1:] + w * ee[k, 1:]
        assert abs(float(y)) > 0.06 and abs(float(z) - cz) > 0.06  # clear of both slabs
        quadrants.add((np.sign(float(y)), np.sign(float(z) - cz)))
    assert quadrants == {(1.0, 1.0), (-1.0, 1.0), (1.0, -1.0), (-1.0, -1.0)}


def test_push_around_the_wall_on_both_sides() -> None:
    task = make_task("FrankaPush", num_envs=3)
    cfg = task.cfg
    ox, oy = cfg.obstacle_pos
    gx, gy = cfg.goal
    ik = DiffIK(task)
    routes = [[(ox - 0.07, side * 0.13), (ox + 0.08, side * 0.13), (gx, gy)] for side in (1, -1)]
    routes.append([(gx, gy)])  # straight at the goal: the wall stops the cube
    pusher = CubePusher(routes, cfg.cube_half)
    cube = slice(ROBOT_OBS_DIM, ROBOT_OBS_DIM + 2)

    def policy(t):
        return ik.action(pusher.targets(t.ee_pos, t.obs_buf[:, cube]), DOWN.expand(3, 3, 3))

    episode = run(task, policy)
    assert episode.success == [1, 1, 0]
    assert (episode.path(2)[:, cube][:, 0] < ox).all()
    for env, side in enumerate((1, -1)):
        path = episode.path(env)
        cube_xy, ee_y = path[:, cube], path[:, 1]
        assert cube_xy[0, 0] < ox < cube_xy[-1, 0]
        beside = (cube_xy[:, 0] - ox).abs() < cfg.obstacle_half[0] + cfg.cube_half
        assert beside.any()
        # the cube went round the wall on this side, and the pushing hand with it
        clear = cfg.obstacle_half[1] + cfg.cube_half
        assert (side * (cube_xy[beside, 1] - oy) > clear).all()
        assert (side * ee_y[beside] > cfg.obstacle_half[1]).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_peg_into_each_hole(seed: int) -> None:
    task = make_task("FrankaPegInsertion", num_envs=4, seed=seed)
    ik = DiffIK(task)
    paths = []
    for env in range(4):
        x, y, _ = task.cfg.holes[env % 2]
        paths.append([((x, y, 0.16), DOWN), ((x, y, 0.09), DOWN), ((x, y, 0.02), DOWN)])
    script = Waypoints(paths, tolerance=0.01, patience=30)
    episode = run(task, lambda t: ik.action(*script.targets(t.ee_pos.float())))
    assert episode.success == [1, 2, 1, 2]


@pytest.mark.parametrize("seed", [0, 1])
def test_close_each_drawer(seed: int) -> None:
    task = make_task("FrankaDrawerClose", num_envs=4, seed=seed)
    front = task.cfg.cabinet_front
    ik = DiffIK(task)
    paths = [
        [
            ((front - 0.3, y, z), FORWARD),
            ((front - 0.24, y, z), FORWARD),
            ((front - 0.02, y, z), FORWARD),
        ]
        for y, z in task.cfg.drawers
    ]
    script = Waypoints(paths, tolerance=0.02, patience=40)
    episode = run(task, lambda t: ik.action(*script.targets(t.ee_pos.float())))
    assert episode.success == [1, 2, 3, 4]
    for env in range(4):
        openings = episode.path(env)[-1, ROBOT_OBS_DIM : ROBOT_OBS_DIM + 4]
        others = [k for k in range(4) if k != env]
        assert openings[env] <= 0.03 and (openings[others] > 0.1).all()


def test_open_the_door_by_the_handle_and_from_behind() -> None:
    task = make_task("FrankaCabinet", num_envs=2)
    cfg = task.cfg
    handle_z = sum(cfg.door_height) / 2 + cfg.handle_height
    handle_r = sum(cfg.handle_span) / 2
    gap = -cfg.handle_standoff / 2  # between the handle bar and the door
    edge_r = cfg.door_width - 0.05  # on the overhang, beside the carcass
    behind = cfg.door_thickness + 0.04
    pull = (
        [((gap, handle_r), handle_z + 0.12), ((gap, handle_r), handle_z - 0.01)],
        ((gap, handle_r), handle_z - 0.01),
    )
    push = (
        [
            ((-0.1, cfg.door_width + 0.11), 0.5),
            ((behind + 0.01, cfg.door_width + 0.11), 0.5),
            ((behind, edge_r), 0.5),
        ],
        ((0.0, edge_r), 0.5),
    )
    ik = DiffIK(task)
    script = DoorScript((cfg.door_front, cfg.hinge_y), [pull, push])
    episode = run(task, lambda t: ik.action(*script.targets(t.ee_pos, t.obs_buf[:, ROBOT_OBS_DIM])))
    assert episode.success == [1, 1]
    pulled, pushed = episode.path(0)[:, :3], episode.path(1)[:, :3]
    # pulling: the hand never goes behind the door, and reaches between handle bar and door
    assert (pulled[:, 0] < cfg.door_front).all()
    near_handle = (pulled[:, 2] - handle_z).abs() < 0.03
    assert (pulled[near_handle, 0] > cfg.door_front - cfg.handle_standoff).any()
    # pushing: the hand goes round the free edge and behind the door, beside the carcass
    free_edge = cfg.hinge_y + cfg.door_width
    assert (pushed[:, 1] > free_edge + 0.05).any()
    back = cfg.door_front + cfg.door_thickness
    behind_door = (pushed[:, 0] > back) & (pushed[:, 1] > cfg.hinge_y + cfg.carcass_width)
    assert behind_door.any()
