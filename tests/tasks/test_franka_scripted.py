"""Scripted controllers show every mode of every Franka task through the task's own `step`."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from isaacgymenvs_ddiffpg.tasks import make_task
from isaacgymenvs_ddiffpg.tasks.franka_base import ROBOT_OBS_DIM
from tests.tasks.franka_modes import scripted_modes

pytestmark = pytest.mark.slow


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


def test_reach_around_the_cross_through_all_four_quadrants() -> None:
    task = make_task("FrankaReach", num_envs=5)
    cx, _, cz = task.cfg.cross_center
    # envs 0, 1: over the upper quadrants; 2, 3: under the horizontal slab; 4: straight at the
    # goal, where the cross is in the way
    policy = scripted_modes("FrankaReach", task, [0, 1, 2, 3, 4])
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
    cube = slice(ROBOT_OBS_DIM, ROBOT_OBS_DIM + 2)
    policy = scripted_modes("FrankaPush", task, [0, 1, 2])  # left, right, straight: blocked
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
    episode = run(task, scripted_modes("FrankaPegInsertion", task, [0, 1, 0, 1]))
    assert episode.success == [1, 2, 1, 2]


@pytest.mark.parametrize("seed", [0, 1])
def test_close_each_drawer(seed: int) -> None:
    task = make_task("FrankaDrawerClose", num_envs=4, seed=seed)
    episode = run(task, scripted_modes("FrankaDrawerClose", task, [0, 1, 2, 3]))
    assert episode.success == [1, 2, 3, 4]
    for env in range(4):
        openings = episode.path(env)[-1, ROBOT_OBS_DIM : ROBOT_OBS_DIM + 4]
        others = [k for k in range(4) if k != env]
        assert openings[env] <= 0.03 and (openings[others] > 0.1).all()


def test_open_the_door_by_the_handle_and_from_behind() -> None:
    task = make_task("FrankaCabinet", num_envs=2)
    cfg = task.cfg
    handle_z = sum(cfg.door_height) / 2 + cfg.handle_height
    episode = run(task, scripted_modes("FrankaCabinet", task, [0, 1]))  # pull, push
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
