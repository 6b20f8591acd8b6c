"""What a training run's checkpoints hold and check: the state to continue bit-identically and
the record of what it depends on; durable saves with nn/last.pth refreshed; checked restores."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.learning.agents import Agent, config_to_dict
from isaacgymenvs_ddiffpg.learning.checkpoint import (
    check_compatible,
    link_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from isaacgymenvs_ddiffpg.learning.config import AgentConfig
from isaacgymenvs_ddiffpg.learning.distributed import Distributed, keep_local_state
from isaacgymenvs_ddiffpg.learning.evaluation import VecEnv
from isaacgymenvs_ddiffpg.utils.errors import CheckpointError, TrainingDivergedError


class RunState:
    """The Trainer's checkpoints (a base of `Trainer`, which sets the attributes below)."""

    cfg: AgentConfig
    algo: Agent
    env: VecEnv
    eval_env: VecEnv | None
    info: dict[str, Any]
    dist: Distributed
    task_name: str
    num_envs: int
    max_episode_length: int
    iteration: int
    env_steps: int
    first_mode_steps: int | None
    obs: Tensor
    rollout_group: Tensor
    noise: Tensor
    last_good: Path | None

    def _reset_stats(self) -> None:
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        """State of the run's own trackers (the Trainer adds its coverage)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore `extra_state` output."""

    def requirements(self) -> dict[str, Any]:
        """What a checkpoint must match to resume into this run, as dotted keys of its state:
        algorithm and the settings that shape the networks, replay and modes; the task, its
        version, settings (layout, episode length, ...) and spaces; the number of envs."""
        info = self.info
        return {
            "config.algorithm": type(self.cfg).algorithm,
            **{f"config.{key}": value for key, value in self.cfg.state_shape().items()},
            "task": self.task_name,
            "task_version": int(info.get("task_version", 1)),
            **{f"task_env.{key}": value for key, value in info.get("task_config", {}).items()},
            "obs_dim": self.algo.obs_dim,
            "act_dim": self.algo.act_dim,
            "max_episode_length": self.max_episode_length,
            "num_envs": self.num_envs,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the run bit-identically, and what it depends on."""
        state: dict[str, Any] = {
            "task": self.task_name,
            "task_version": int(self.info.get("task_version", 1)),
            "task_env": dict(self.info.get("task_config", {})),
            "obs_dim": self.algo.obs_dim,
            "act_dim": self.algo.act_dim,
            "max_episode_length": self.max_episode_length,
            "num_envs": self.num_envs,
            "config": config_to_dict(self.cfg),
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "first_mode_steps": self.first_mode_steps,
            "algo": self.algo.state_dict(),
            "obs": self.obs,
            "rollout_group": self.rollout_group,
            "noise": self.noise,
            "torch_rng": torch.get_rng_state(),
            **self.extra_state(),
        }
        for name, env in (("env_state", self.env), ("eval_env_state", self.eval_env)):
            if env is not None and hasattr(env, "get_env_state"):
                state[name] = env.get_env_state()  # type: ignore[union-attr]
        return state

    def save(self, path: Path) -> Path:
        """Write a checkpoint (rank 0) and make `nn/last.pth` the same file.

        Under torchrun every rank first checks that all hold the same networks, optimisers and
        modes; their digests go into `replica_digests`. Nothing is written when a network or
        optimiser holds a non-finite value.

        Returns:
            `path`.

        Raises:
            TrainingDivergedError: non-finite weights (the last good checkpoint is named).
            CheckpointError: the write failed, e.g. on a full disk (the previous file is kept).
        """
        state = self.state_dict()
        broken = [name for name, value in _floating(state["algo"]) if not _finite(value)]
        if broken:
            raise TrainingDivergedError(
                f"Not writing checkpoint {path}: {', '.join(broken[:4])} hold non-finite values. "
                + self._diverged_tail()
            )
        digests = self.dist.check_replicas(state["algo"])
        if self.dist.is_main:
            state = {**state, "replica_digests": digests} if digests else state
            save_checkpoint(state, path, last_good=self.last_good)
            last = path.parent / "last.pth"
            if path != last:
                link_checkpoint(path, last)
        self.last_good = path
        return path

    def _diverged_tail(self) -> str:
        good = (
            f"The last good checkpoint is {self.last_good}; resume from it "
            f"(checkpoint={self.last_good})"
            if self.last_good is not None
            else "No checkpoint was written before; start again"
        )
        return (
            f"{good} with smaller learning rates (train.params.config."
            f"{type(self.cfg).algorithm}.critic_lr, actor_lr), and check the task's "
            f"observations and rewards for NaN."
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue a run from `state_dict` output (checked for compatibility first)."""
        self.algo.load_state_dict(state["algo"])
        self.iteration, self.env_steps = state["iteration"], state["env_steps"]
        self.first_mode_steps = state["first_mode_steps"]
        self.obs = state["obs"].to(self.device)
        self.rollout_group = state["rollout_group"].to(self.device)
        self.noise = state["noise"].to(self.device)
        torch.set_rng_state(state["torch_rng"])
        self.load_extra_state(state)
        for name, env in (("env_state", self.env), ("eval_env_state", self.eval_env)):
            if name in state and env is not None and hasattr(env, "set_env_state"):
                env.set_env_state(state[name])  # type: ignore[union-attr]
        self._reset_stats()

    def restore(self, path: str | Path) -> None:
        """Resume from a checkpoint file, after checking that it fits this run."""
        state = load_checkpoint(path)
        if "task_env" not in state:
            raise CheckpointError(
                f"Checkpoint {str(path)!r} was written by an earlier version that did not record "
                f"what it depends on (task settings, episode length), so it cannot be resumed; "
                f"it can still be played (test=True), or start a new run without checkpoint=."
            )
        # a setting added after the checkpoint was written held its default there
        defaults = {
            field.name: field.default
            for field in dataclasses.fields(self.cfg)
            if field.default is not dataclasses.MISSING
        }
        state = {**state, "config": {**defaults, **state.get("config", {})}}
        check_compatible(path, state, self.requirements(), "resume")
        if not self.dist.is_main:  # the checkpoint's replay, envs and random streams are rank 0's
            state = keep_local_state(state, self.state_dict())
        self.load_state_dict(state)
        self.last_good = Path(path)


def _floating(tree: Any, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
    """(name, tensor) of every floating tensor in a nested state dict, the replay left out."""
    if isinstance(tree, Tensor):
        if tree.is_floating_point():
            yield prefix, tree
    elif isinstance(tree, dict):
        for key, value in tree.items():
            if key != "replay":
                yield from _floating(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            yield from _floating(value, f"{prefix}[{index}]")


def _finite(tensor: Tensor) -> bool:
    return bool(torch.isfinite(tensor).all())
