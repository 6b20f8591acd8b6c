"""What every agent is built on: critic, target and optimiser, novelty, replay, random streams."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from isaacgymenvs_ddiffpg.learning.compiled import Compiler
from isaacgymenvs_ddiffpg.learning.config import AgentConfig
from isaacgymenvs_ddiffpg.learning.critics import (
    GroupDistributionalDoubleQ,
    critic_loss,
    group_soft_update,
    soft_update,
)
from isaacgymenvs_ddiffpg.learning.group_adamw import GroupAdamW
from isaacgymenvs_ddiffpg.learning.novelty import Novelty, novelty_from_config
from isaacgymenvs_ddiffpg.learning.replay import TrajectoryReplay

ConfigT = TypeVar("ConfigT", bound=AgentConfig)
ActorT = TypeVar("ActorT", bound=nn.Module)


@dataclass(frozen=True)
class EnvSpec:
    """The vecenv an agent learns from: what sizes its networks, replay and value support.

    Attributes:
        obs_dim, act_dim: sizes of one env's observation and action.
        mode_feature_dim: leading observation dims that are mode features (maze xy, ee xyz);
            the novelty model encodes them positionally and mode discovery compares them.
        max_episode_length: longest episode, for the trajectory replay.
        num_envs: parallel envs writing into the replay.
        max_reward: the task's largest success reward (sets the value support).
    """

    obs_dim: int
    act_dim: int
    mode_feature_dim: int
    max_episode_length: int
    num_envs: int
    max_reward: float

    @classmethod
    def from_env_info(cls, info: Mapping[str, Any], num_envs: int) -> EnvSpec:
        """The spec of a vecenv with `num_envs` envs from its `get_env_info()`."""
        return cls(
            obs_dim=int(info["observation_space"].shape[0]),
            act_dim=int(info["action_space"].shape[0]),
            mode_feature_dim=int(info["mode_feature_dim"]),
            max_episode_length=int(info["max_episode_length"]),
            num_envs=num_envs,
            max_reward=float(info["max_reward"]),
        )


def smooth_target_action(action: Tensor, noise: Tensor, std: float, clip: float) -> Tensor:
    """TD3's target policy smoothing: a' + clip(std * noise, -clip, clip), clamped to [-1, 1].

    Args:
        action: (..., act_dim) a' for the critic's target.
        noise: (..., act_dim) standard normal draws.
        std, clip: the noise's standard deviation and bound.

    Returns:
        smoothed: (..., act_dim).
    """
    return (action + (noise * std).clamp(-clip, clip)).clamp(-1.0, 1.0)


class AgentCore(Generic[ConfigT, ActorT]):
    """The parts DDiffPG and the baselines share, and their checkpoint state.

    A C51 clipped double-Q critic stacked over groups (`GroupDistributionalDoubleQ`) with its
    Polyak target and `GroupAdamW`; the novelty model (NovelD on RND) and the AdamW of its
    predictor; the trajectory replay; the agent's random streams (a torch generator on the
    device for everything sampled in a rollout or update, a numpy generator for host-side
    choices); and `act`, the actor's action plus per-env Gaussian exploration noise.
    Subclasses build `actor` and `actor_opt` and implement `actor_action` and `update`; they
    name their settings and actor classes as the type parameters, e.g. ``AgentCore[DDiffPGConfig,
    DiffusionPolicy]``.

    With ``cfg.compile`` the pieces every update and every step run (the critic loss, the
    critics' optimiser step and Polyak update, the novelty pass; the subclasses add theirs) are
    `torch.compile`d by `compiler` (`learning/compiled.py`); the modules themselves are not
    replaced, so checkpoints are the same either way.

    Args:
        cfg: settings.
        spec: the vecenv the agent learns from.
        device: where everything lives.
        seed: seed of the agent's random streams.
        num_target_slots: target actions stored per transition (one per critic group).
        num_critic_groups: critic groups to start with, each with its own initial weights.
    """

    cfg: ConfigT
    actor: ActorT
    actor_opt: torch.optim.Optimizer

    def __init__(
        self,
        cfg: ConfigT,
        spec: EnvSpec,
        device: str | torch.device,
        seed: int,
        num_target_slots: int = 1,
        num_critic_groups: int = 1,
    ) -> None:
        self.cfg = cfg
        self.obs_dim, self.act_dim = spec.obs_dim, spec.act_dim
        self.mode_feature_dim = spec.mode_feature_dim
        self.device = torch.device(device)
        self.compiler = Compiler(cfg.compile, self.device)
        self.critic_loss = self.compiler(critic_loss)
        self.soft_update = self.compiler(soft_update)
        self.group_soft_update = self.compiler(group_soft_update)
        self.novelty_reward_and_loss = self.compiler(Novelty.reward_and_loss)
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.v_max = cfg.v_max if cfg.v_max is not None else 1.2 * spec.max_reward
        self.v_min = cfg.v_min if cfg.v_min is not None else -self.v_max
        self.critic = self._make_critic(num_critic_groups)
        self.critic_target = copy.deepcopy(self.critic)
        self.critic_opt = self._make_critic_opt(num_critic_groups)
        self.novelty, self.novelty_opt = novelty_from_config(
            cfg, spec.obs_dim, spec.mode_feature_dim, self.device
        )
        self.replay = TrajectoryReplay(
            spec.num_envs,
            cfg.memory_size,
            spec.max_episode_length,
            spec.obs_dim,
            spec.act_dim,
            num_target_slots,
            self.device,
        )

    def plan_updates(self, env_steps: int) -> int:
        """The number of learner updates of the iteration at `env_steps` (the settings'
        `updates_per_step`; DDiffPG can run more, on larger batches, once exploration stops)."""
        del env_steps
        return self.cfg.updates_per_step

    def _make_critic(self, num_groups: int) -> GroupDistributionalDoubleQ:
        cfg = self.cfg
        return GroupDistributionalDoubleQ(
            num_groups,
            self.obs_dim,
            self.act_dim,
            tuple(cfg.critic_hidden),
            cfg.num_atoms,
            self.v_min,
            self.v_max,
        ).to(self.device)

    def _make_critic_opt(self, num_groups: int) -> GroupAdamW:
        return GroupAdamW(
            self.critic.parameters(),
            num_groups,
            self.cfg.critic_lr,
            max_grad_norm=self.cfg.max_grad_norm,
            compiler=self.compiler,
        )

    def actor_action(self, obs: Tensor, mode_embedding: Tensor) -> Tensor:
        """The actor's action before exploration noise (a diffusion actor samples it).

        Args:
            obs: (N, obs_dim).
            mode_embedding: (N, embedding_dim) z per env (ignored by agents without modes).

        Returns:
            actions: (N, act_dim).
        """
        raise NotImplementedError

    @torch.no_grad()
    def act(self, obs: Tensor, mode_embedding: Tensor, noise_std: Tensor | None = None) -> Tensor:
        """The actor's actions plus optional per-env Gaussian exploration noise.

        Args:
            obs: (N, obs_dim).
            mode_embedding: (N, embedding_dim) z per env (z_explore, z_k, or 0).
            noise_std: (N,) std of added Gaussian exploration noise, or None for none.

        Returns:
            actions: (N, act_dim) in [-1, 1].
        """
        self.compiler.begin_step()
        actions = self.actor_action(obs, mode_embedding)
        if noise_std is not None:
            noise = torch.randn(actions.shape, device=self.device, generator=self.generator)
            actions = actions + noise * noise_std[:, None]
        return actions.clamp(-1.0, 1.0)

    def core_state_dict(self) -> dict[str, Any]:
        """The shared parts' state: actor, critic, their optimisers, novelty, replay, RNG."""
        opt = self.critic_opt
        return {
            "actor": self.actor.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "critic_opt": {
                "step_count": opt.step_count,
                "exp_avg": opt.exp_avg,
                "exp_avg_sq": opt.exp_avg_sq,
            },
            "novelty": self.novelty.state_dict(),
            "novelty_opt": self.novelty_opt.state_dict(),
            "replay": self.replay.state_dict(),
            "generator": self.generator.get_state(),
            "rng": self.rng.bit_generator.state,
        }

    def load_core_state_dict(
        self, state: dict[str, Any], num_groups: int = 1, with_replay: bool = True
    ) -> None:
        """Restore `core_state_dict` output; the critics are rebuilt with `num_groups` groups."""
        self.actor.load_state_dict(state["actor"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic = self._make_critic(num_groups)
        self.critic.load_state_dict(state["critic"])
        self.critic_target = self._make_critic(num_groups)
        self.critic_target.load_state_dict(state["critic_target"])
        self.critic_opt = self._make_critic_opt(num_groups)
        saved = state["critic_opt"]
        self.critic_opt.step_count = saved["step_count"].to(self.device, copy=True)
        self.critic_opt.exp_avg = [t.to(self.device, copy=True) for t in saved["exp_avg"]]
        self.critic_opt.exp_avg_sq = [t.to(self.device, copy=True) for t in saved["exp_avg_sq"]]
        self.novelty.load_state_dict(state["novelty"])
        self.novelty_opt.load_state_dict(state["novelty_opt"])
        if with_replay:
            self.replay.load_state_dict(state["replay"])
        self.generator.set_state(state["generator"].cpu())
        self.rng.bit_generator.state = state["rng"]
