"""Online replanning: a blocked mode is abandoned for the next one, a progressing one is kept."""

from typing import Any

import pytest
import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.learning.evaluation import run_episodes
from isaacgymenvs_ddiffpg.learning.replan import ReplanConfig, Replanner
from isaacgymenvs_ddiffpg.utils.errors import ConfigError

# mode 1 heads right into a wall at x = 0.5; mode 2 heads left to the goal at x = -3
EMBEDDINGS = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])


class Corridor:
    """A 1-D corridor vecenv: x moves by 0.2 * action, a wall stops it at x = 0.5, reaching
    x <= -3 is goal 1 (terminal); episodes last at most 60 steps."""

    def __init__(self, num_envs: int) -> None:
        self.x = torch.zeros(num_envs, 2)
        self.t = torch.zeros(num_envs, dtype=torch.long)

    def reset(self) -> Tensor:
        self.x.zero_()
        self.t.zero_()
        return self.x.clone()

    def step(self, actions: Tensor) -> tuple[Tensor, Tensor, Tensor, dict[str, Any]]:
        self.x[:, 0] = (self.x[:, 0] + 0.2 * actions[:, 0]).clamp(max=0.5)
        self.t += 1
        success = (self.x[:, 0] <= -3.0).long()
        dones = (success > 0) | (self.t >= 60)
        final = self.x.clone()
        self.x[dones] = 0.0
        self.t[dones] = 0
        infos = {"success": success, "final_obs": final}
        return self.x.clone(), success.float(), dones, infos

    def get_env_info(self) -> dict[str, Any]:
        return {}


class FollowEmbedding:
    """Moves along the first coordinate of its mode embedding."""

    def act(self, obs: Tensor, mode_embedding: Tensor, noise_std: Tensor | None = None) -> Tensor:
        return mode_embedding[:, :1].expand(-1, 2).clone()


def replanner(start_mode: int, num_envs: int = 3) -> Replanner:
    cfg = ReplanConfig(window=5, min_progress=0.3)
    return Replanner(
        [1, 2],
        EMBEDDINGS,
        torch.full((num_envs,), start_mode),
        cfg.window,
        cfg.resolved_min_progress(coverage_cell=1.0),
    )


def play(start_mode: int, replan: bool) -> dict[str, Tensor]:
    env = Corridor(3)
    z = EMBEDDINGS[start_mode - 1].expand(3, -1)
    planner = replanner(start_mode) if replan else None
    return run_episodes(FollowEmbedding(), env, z, 60, feature_dim=2, replanner=planner)


def test_blocked_mode_switches_to_the_next_and_succeeds() -> None:
    stuck = play(start_mode=1, replan=False)
    assert (stuck["success"] == 0).all()  # pressed against the wall until time runs out
    rescued = play(start_mode=1, replan=True)
    assert (rescued["success"] == 1).all()
    assert (rescued["switches"] == 1).all() and (rescued["final_mode"] == 2).all()
    # 3 steps to the wall, a 5-step window to notice, 18 steps back to the goal
    assert 20 <= int(rescued["length"][0]) <= 30


def test_progressing_mode_is_never_switched() -> None:
    result = play(start_mode=2, replan=True)
    assert (result["success"] == 1).all()
    assert (result["switches"] == 0).all() and (result["final_mode"] == 2).all()
    assert int(result["length"][0]) == 15


def test_stall_detector_judges_each_mode_after_a_full_window() -> None:
    planner = replanner(start_mode=1, num_envs=2)
    still = torch.zeros(2, 2)
    active = torch.tensor([True, False])  # env 1's episode is over: never switched
    switched = [bool(planner.observe(still, active)[0]) for _ in range(12)]
    assert switched == [False] * 4 + [True] + [False] * 4 + [True] + [False] * 2
    assert planner.current_mode.tolist() == [1, 1]  # two switches: 1 -> 2 -> 1
    assert planner.switches.tolist() == [2, 0]


def test_replanning_needs_two_modes() -> None:
    with pytest.raises(ConfigError, match="only 1 mode"):
        Replanner([1], EMBEDDINGS[:1], torch.ones(2, dtype=torch.long), 5, 0.3)
    with pytest.raises(ConfigError, match="can only switch between"):
        Replanner([1, 2], EMBEDDINGS, torch.full((2,), 7), 5, 0.3)


def test_default_min_progress_is_the_coverage_cell() -> None:
    assert ReplanConfig().resolved_min_progress(coverage_cell=1.0) == 1.0
    assert ReplanConfig(min_progress=0.05).resolved_min_progress(coverage_cell=1.0) == 0.05
