"""rl-games adapter, the only module importing rl-games: vecenv adapter, algorithm registration."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from rl_games.algos_torch.players import SACPlayer
from rl_games.algos_torch.sac_agent import SACAgent
from rl_games.common import env_configurations, vecenv
from rl_games.common.algo_observer import AlgoObserver
from rl_games.common.ivecenv import IVecEnv
from rl_games.interfaces.base_algorithm import BaseAlgorithm
from rl_games.torch_runner import Runner
from torch import Tensor

from isaacgymenvs_ddiffpg.learning.agents import ALGORITHMS
from isaacgymenvs_ddiffpg.learning.config import AgentConfig
from isaacgymenvs_ddiffpg.learning.player import Player, PlayOptions
from isaacgymenvs_ddiffpg.learning.trainer import Trainer
from isaacgymenvs_ddiffpg.tasks.base.vec_task import VecTask
from isaacgymenvs_ddiffpg.utils.errors import ConfigError
from isaacgymenvs_ddiffpg.viz.config import VizConfig
from isaacgymenvs_ddiffpg.viz.training import TrainingViz

ENV_NAME = "isaacgymenvs_ddiffpg"
VECENV_TYPE = "ISAACGYMENVS_DDIFFPG"

__all__ = [
    "ENV_NAME",
    "DDiffPGAgent",
    "DDiffPGPlayer",
    "RlGamesVecEnv",
    "Runner",
    "SuccessObserver",
    "register_rlgames",
]


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

    def get_number_of_agents(self) -> int:  # pyright: ignore[reportIncompatibleMethodOverride]
        return 1

    def get_env_info(self) -> dict[str, Any]:  # pyright: ignore[reportIncompatibleMethodOverride]
        task = self.task
        return {
            "observation_space": task.observation_space,
            "action_space": task.action_space,
            "agents": 1,
            "value_size": 1,
            "mode_feature_dim": task.mode_feature_dim,
            "num_goals": task.num_goals,
            "max_episode_length": task.max_episode_length,
            "max_reward": task.max_reward,
            "coverage_cell": task.coverage_cell,
            "task_version": task.version,
            "coverage_grid": task.coverage_grid(),
            "task_config": task.config_record(),
        }

    def get_env_state(self) -> dict[str, Any]:  # pyright: ignore[reportIncompatibleMethodOverride]
        return self.task.get_env_state()

    def set_env_state(self, env_state: dict[str, Any]) -> None:
        self.task.set_env_state(env_state)

    def has_action_masks(self) -> bool:  # pyright: ignore[reportIncompatibleMethodOverride]
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


def agent_config(algo_name: str, config: dict[str, Any]) -> AgentConfig:
    """Typed settings of `algo_name` (ddiffpg, td3, sac, dipo) from `params.config.<algo_name>`."""
    schema = ALGORITHMS[algo_name].config
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), config.get(algo_name, {}))
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except (OmegaConfBaseException, ValueError) as err:
        keys = ", ".join(field.name for field in dataclasses.fields(schema))
        raise ConfigError(
            f"Invalid train.params.config.{algo_name}: {getattr(err, 'msg', err)}. Valid keys "
            f"(typed in {schema.__module__.replace('.', '/')}.py): {keys}."
        ) from None


class DDiffPGAgent(BaseAlgorithm):
    """DDiffPG as an rl-games algorithm (`algo.name: ddiffpg`); the work is done by `Trainer`.

    The baselines run through the same class (`algo.name: td3`, `sac`, `dipo`): the name picks
    the typed settings section and with it the agent the Trainer builds. `eval_env_creator`
    and `viz` are `register_rlgames`'s.
    """

    def __init__(
        self,
        base_name: str,
        params: dict[str, Any],
        eval_env_creator: Callable[[int], VecTask] | None,
        viz: VizConfig,
    ) -> None:
        config = params["config"]
        self.config = config
        env_name = config["env_name"]
        self.vec_env = vecenv.create_vec_env(
            env_name, config["num_actors"], **config.get("env_config", {})
        )
        cfg = agent_config(params["algo"]["name"], config)
        eval_env = RlGamesVecEnv(eval_env_creator(cfg.eval_envs)) if eval_env_creator else None
        run_dir = Path(config.get("train_dir", "runs")) / config["full_experiment_name"]
        self.trainer = Trainer(
            cfg,
            self.vec_env,
            run_dir,
            config.get("device", "cpu"),
            seed=int(params.get("seed", 0)),
            max_iterations=int(config.get("max_epochs", -1)),
            eval_env=eval_env,
            task_name=config.get("name", ""),
            preset=config.get("preset", ""),
            viz=TrainingViz.from_config(viz, run_dir, config.get("name", "")),
        )
        self.model = self.trainer.algo.actor

    @property
    def device(self) -> torch.device:  # pyright: ignore[reportIncompatibleVariableOverride, reportIncompatibleMethodOverride]
        return self.trainer.device

    def clear_stats(self) -> None:
        pass

    def train(self) -> None:
        self.trainer.train()

    def train_epoch(self) -> None:
        raise NotImplementedError("DDiffPG runs its own loop; call train().")

    def get_full_state_weights(self) -> dict[str, Any]:  # pyright: ignore[reportIncompatibleMethodOverride]
        return self.trainer.state_dict()

    def set_full_state_weights(self, weights: dict[str, Any], set_epoch: bool = True) -> None:
        self.trainer.load_state_dict(weights)

    def get_weights(self) -> dict[str, Any]:  # pyright: ignore[reportIncompatibleMethodOverride]
        return {"actor": self.trainer.algo.actor.state_dict()}

    def set_weights(self, weights: dict[str, Any]) -> None:
        self.trainer.algo.actor.load_state_dict(weights["actor"])

    def get_param(self, param_name: str) -> Any:
        return getattr(self.trainer.cfg, param_name)

    def set_param(self, param_name: str, param_value: Any) -> None:
        setattr(self.trainer.cfg, param_name, param_value)

    def restore(self, fn: str, set_epoch: bool = True) -> None:
        self.trainer.restore(fn)


class DDiffPGPlayer(Player):
    """The player as rl-games builds it (`player.mode` selects the mode to play)."""

    def __init__(self, params: dict[str, Any], viz: VizConfig) -> None:
        config = params["config"]
        env = vecenv.create_vec_env(
            config["env_name"], config["num_actors"], **config.get("env_config", {})
        )
        player = config.get("player", {})
        run_dir = Path(config.get("train_dir", "runs")) / config["full_experiment_name"]
        super().__init__(
            env,
            config.get("device", "cpu"),
            str(player.get("mode", "0")),
            config.get("name", ""),
            PlayOptions.from_config(viz, run_dir),
        )


def register_rlgames(
    runner: Runner,
    env_creator: Callable[..., VecTask],
    eval_env_creator: Callable[[int], VecTask] | None = None,
    viz: VizConfig | None = None,
) -> None:
    """Register our vecenv under `ENV_NAME` and our algorithms and players with `runner`.

    Algorithms: `ddiffpg` (DDiffPG agent and player), our baselines `td3`, `sac` and `dipo`
    (same agent and player classes) and `rlgames_sac` (rl-games' SAC).
    IsaacGymEnvs users can call this from their own train.py with their own `env_creator`.

    Args:
        runner: the rl-games Runner.
        env_creator: returns the task (called with the train config's `env_config` kwargs).
        eval_env_creator: returns a separate task with the given number of envs for the
            periodic evaluation (None: no evaluation).
        viz: videos, viewer, mode atlas and replanning of our algorithms' runs (None: the
            defaults, `VizConfig()`).
    """
    viz = viz if viz is not None else VizConfig()
    env_configurations.register(ENV_NAME, {"vecenv_type": VECENV_TYPE, "env_creator": env_creator})
    vecenv.register(
        VECENV_TYPE,
        lambda config_name, num_actors, **kwargs: RlGamesVecEnv(
            env_configurations.configurations[config_name]["env_creator"](**kwargs)
        ),
    )
    for name in ALGORITHMS:  # DDiffPG and the baselines train through the same Trainer
        runner.algo_factory.register_builder(
            name, lambda **kw: DDiffPGAgent(**kw, eval_env_creator=eval_env_creator, viz=viz)
        )
        runner.player_factory.register_builder(name, lambda **kw: DDiffPGPlayer(**kw, viz=viz))
    runner.algo_factory.register_builder("rlgames_sac", lambda **kw: BoundedSACAgent(**kw))
    runner.player_factory.register_builder("rlgames_sac", lambda **kw: SACPlayer(**kw))
