"""rl-games glue, the only module importing rl-games: vecenv adapter and algorithm registration."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from rl_games.algos_torch.players import SACPlayer
from rl_games.algos_torch.sac_agent import SACAgent
from rl_games.common import env_configurations, vecenv
from rl_games.common.algo_observer import AlgoObserver
from rl_games.common.ivecenv import IVecEnv
from rl_games.torch_runner import Runner
from torch import Tensor

from isaacgymenvs_ddiffpg.tasks.base.vec_task import VecTask

ENV_NAME = "isaacgymenvs_ddiffpg"
VECENV_TYPE = "ISAACGYMENVS_DDIFFPG"

__all__ = ["ENV_NAME", "RlGamesVecEnv", "Runner", "SuccessObserver", "register_rlgames"]


class RlGamesVecEnv(IVecEnv):
    """A `VecTask` as an rl-games vecenv: the 4-tuple (obs, reward, done, infos) on rl_device.

    `infos` carries the task's extras: `time_outs` (truncation, never terminal), `terminated`,
    `final_obs` (the observation before the same-step reset) and `success` (goal id, 0 = none).
    Agents that need the richer 5-tuple use `.task` directly.
    """

    def __init__(self, task: VecTask) -> None:
        self.task = task

    def step(self, actions: Tensor) -> tuple[Tensor, Tensor, Tensor, dict[str, Any]]:
        obs, reward, terminated, truncated, extras = self.task.step(actions)
        return obs, reward, terminated | truncated, extras

    def reset(self) -> Tensor:
        return self.task.reset()

    def get_number_of_agents(self) -> int:
        return 1

    def get_env_info(self) -> dict[str, Any]:
        return {
            "observation_space": self.task.observation_space,
            "action_space": self.task.action_space,
            "agents": 1,
            "value_size": 1,
        }

    def has_action_masks(self) -> bool:
        return False

    def seed(self, seed: int) -> None:
        self.task.seed(seed)


class SuccessObserver(AlgoObserver):
    """Logs the success rate of finished episodes (`infos['success']`) to tensorboard."""

    def __init__(self) -> None:
        super().__init__()
        self.successes = 0.0
        self.episodes = 0.0
        self.writer = None

    def after_init(self, algo: Any) -> None:
        self.writer = algo.writer

    def process_infos(self, infos: dict[str, Any], done_indices: Tensor) -> None:
        if "success" in infos and done_indices.numel():
            self.successes += float((infos["success"][done_indices] > 0).sum())
            self.episodes += float(done_indices.numel())

    def after_print_stats(self, frame: int, epoch_num: int, total_time: float) -> None:
        if self.writer is not None and self.episodes:
            self.writer.add_scalar("episode/success_rate", self.successes / self.episodes, frame)
            self.successes = self.episodes = 0.0


class _MaxEpochsReached(Exception):
    pass


class BoundedSACAgent(SACAgent):
    """rl-games' SAC, stopping at `max_epochs` even before any episode has ended (rl-games only
    checks after one ends) and always writing `nn/last.pth`."""

    def train_epoch(self) -> Any:
        if self.max_epochs != -1 and self.epoch_num > self.max_epochs:
            self.epoch_num -= 1
            raise _MaxEpochsReached
        return super().train_epoch()

    def train(self) -> Any:
        try:
            result = super().train()
        except _MaxEpochsReached:
            result = (self.last_mean_rewards, self.epoch_num)
        self.save(os.path.join(self.nn_dir, "last"))
        self.writer.flush()
        return result


def register_rlgames(runner: Runner, env_creator: Callable[..., VecTask]) -> None:
    """Register our vecenv under `ENV_NAME` and our algorithms and players with `runner`.

    IsaacGymEnvs users can call this from their own train.py with their own `env_creator`.

    Args:
        runner: the rl-games Runner.
        env_creator: returns the task (called with the train config's `env_config` kwargs).
    """
    env_configurations.register(ENV_NAME, {"vecenv_type": VECENV_TYPE, "env_creator": env_creator})
    vecenv.register(
        VECENV_TYPE,
        lambda config_name, num_actors, **kwargs: RlGamesVecEnv(
            env_configurations.configurations[config_name]["env_creator"](**kwargs)
        ),
    )
    runner.algo_factory.register_builder("rlgames_sac", lambda **kw: BoundedSACAgent(**kw))
    runner.player_factory.register_builder("rlgames_sac", lambda **kw: SACPlayer(**kw))
