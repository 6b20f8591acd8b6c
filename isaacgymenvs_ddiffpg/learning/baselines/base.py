"""What the TD3, SAC and DIPO baselines share: one critic, replay, novelty, and no modes."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from isaacgymenvs_ddiffpg.learning.baselines.config import BaselineConfig
from isaacgymenvs_ddiffpg.learning.critics import (
    GroupDistributionalDoubleQ,
    critic_loss,
    soft_update,
)
from isaacgymenvs_ddiffpg.learning.discovery import Discovery
from isaacgymenvs_ddiffpg.learning.group_adamw import GroupAdamW
from isaacgymenvs_ddiffpg.learning.modes import ModePlan
from isaacgymenvs_ddiffpg.learning.novelty import novelty_from_config
from isaacgymenvs_ddiffpg.learning.replay import TrajectoryReplay


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """An ELU MLP ``in_dim -> hidden -> out_dim`` with a linear output layer."""
    dims = (in_dim, *hidden)
    layers: list[nn.Module] = []
    for dim_in, dim_out in zip(dims[:-1], dims[1:], strict=True):
        layers += [nn.Linear(dim_in, dim_out), nn.ELU()]
    layers.append(nn.Linear(dims[-1], out_dim))
    return nn.Sequential(*layers)


class BaselineAgent:
    """Base of the single-policy baselines, with the interface the Trainer uses for DDiffPG.

    The critic is DDiffPG's C51 clipped double-Q with a single group (the released baselines
    use the same distributional double-Q), trained on extrinsic + intrinsic reward; replay,
    novelty and the critic step are DDiffPG's code. There is one group (exploration), no mode
    embedding (`group_z` is a row of zeros the actors ignore) and no mode discovery.
    Subclasses build an `actor` module and implement `act`, `update`, `_extra_state` and
    `_load_extra`.

    Args:
        cfg: settings.
        obs_dim, act_dim: sizes of one env's observation and action.
        mode_feature_dim: leading observation dims that are positions (novelty encoding).
        max_episode_length: longest episode, for the trajectory replay.
        num_envs: parallel envs writing into the replay.
        max_reward: the task's largest success reward (sets the value support).
        device: where everything lives.
        seed: seed of every random stream of the algorithm.
    """

    def __init__(
        self,
        cfg: BaselineConfig,
        obs_dim: int,
        act_dim: int,
        mode_feature_dim: int,
        max_episode_length: int,
        num_envs: int,
        max_reward: float,
        device: str | torch.device,
        seed: int,
    ) -> None:
        self.cfg = cfg
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.mode_feature_dim = mode_feature_dim
        self.device = torch.device(device)
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.v_max = cfg.v_max if cfg.v_max is not None else 1.2 * max_reward
        self.critic = GroupDistributionalDoubleQ(
            1, obs_dim, act_dim, tuple(cfg.critic_hidden), cfg.num_atoms, cfg.v_min, self.v_max
        ).to(self.device)
        self.critic_target = copy.deepcopy(self.critic)
        self.critic_opt = GroupAdamW(
            self.critic.parameters(), 1, cfg.critic_lr, max_grad_norm=cfg.max_grad_norm
        )
        self.novelty, self.novelty_opt = novelty_from_config(
            cfg, obs_dim, mode_feature_dim, self.device
        )
        self.replay = TrajectoryReplay(
            num_envs, cfg.memory_size, max_episode_length, obs_dim, act_dim, 1, self.device
        )
        self.group_z = torch.zeros(1, cfg.embedding_dim, device=self.device)
        self.mode_ids: list[int] = []
        self.num_updates = 0

    @property
    def num_groups(self) -> int:
        """Always 1: the baselines have no modes."""
        return 1

    def mode_embedding(self, mode_id: int) -> Tensor:
        """(embedding_dim,) zeros for mode 0, the only mode a baseline has."""
        if mode_id != 0:
            raise KeyError(mode_id)
        return torch.zeros(self.cfg.embedding_dim, device=self.device)

    def discover_modes(self) -> Discovery:
        """No mode discovery: an identity plan, nothing labelled or evicted."""
        empty = torch.zeros(0, dtype=torch.long)
        plan = ModePlan(source=[0], fresh_optimizer=[False], fresh_embedding=[False], mode_ids=[0])
        return Discovery(plan=plan, ids=empty, groups=empty, evict_ids=empty, success_labels={})

    # ------------------------------------------------------------------ update pieces
    def sample(self) -> dict[str, Tensor]:
        """A uniform batch of `batch_size` stored transitions with its training reward.

        Returns:
            `TrajectoryReplay.sample` output with a group axis of 1 (e.g. ``obs`` (1, B,
            obs_dim)) plus ``intrinsic`` (1, B) and ``total_reward`` (1, B) = extrinsic +
            intrinsic (intrinsic = 0 when `use_intrinsic` is off).
        """
        batch = self.replay.sample(self.cfg.batch_size, 1, self.generator)
        if self.cfg.use_intrinsic:
            with torch.no_grad():
                intrinsic = self.novelty.intrinsic_reward(batch["obs"][0], batch["next_obs"][0])
            intrinsic = intrinsic[None]
        else:
            intrinsic = torch.zeros_like(batch["reward"])
        batch["intrinsic"] = intrinsic
        batch["total_reward"] = batch["reward"] + intrinsic
        return batch

    def critic_step(
        self, batch: dict[str, Tensor], next_action: Tensor, reward: Tensor | None = None
    ) -> Tensor:
        """One C51 double-Q step and a Polyak update of the target critic.

        Args:
            batch: `sample` output.
            next_action: (1, B, act_dim) a' for the target.
            reward: (1, B) reward of the Bellman target (default: ``total_reward``).

        Returns:
            The detached loss.
        """
        loss, _ = critic_loss(
            self.critic,
            self.critic_target,
            batch["obs"],
            batch["action"],
            batch["total_reward"] if reward is None else reward,
            batch["next_obs"],
            next_action,
            (~batch["terminated"]).to(batch["reward"].dtype),
            self.cfg.gamma,
        )
        self.critic_opt.zero_grad()
        loss.backward()
        self.critic_opt.step()
        soft_update(self.critic_target, self.critic, self.cfg.tau)
        return loss.detach()

    def smoothed(self, action: Tensor) -> Tensor:
        """TD3 target smoothing: a' + clip(N(0, std^2), -clip, clip), clamped to [-1, 1]."""
        cfg = self.cfg
        noise = torch.randn(action.shape, device=self.device, generator=self.generator)
        noise = (noise * cfg.target_noise_std).clamp(-cfg.target_noise_clip, cfg.target_noise_clip)
        return (action + noise).clamp(-1.0, 1.0)

    def novelty_step(self, batch: dict[str, Tensor]) -> Tensor:
        """One RND predictor step on the batch's obs and next obs (skipped without novelty)."""
        if not self.cfg.use_intrinsic:
            return torch.zeros((), device=self.device)
        loss = self.novelty.loss(torch.cat((batch["obs"], batch["next_obs"])).flatten(0, 1))
        self.novelty_opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(
            self.novelty.rnd.predictor.parameters(), self.cfg.max_grad_norm
        )
        self.novelty_opt.step()
        return loss.detach()

    def step_actor(self, loss: Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backpropagate `loss` into `optimizer`'s parameters only, clip and step it."""
        params = [param for group in optimizer.param_groups for param in group["params"]]
        optimizer.zero_grad()
        loss.backward(inputs=params)
        torch.nn.utils.clip_grad_norm_(params, self.cfg.max_grad_norm)
        optimizer.step()

    def update(self) -> dict[str, Tensor]:
        """One learner update; see the subclass."""
        raise NotImplementedError

    # ------------------------------------------------------------------ checkpoints
    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra(self, state: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training bit-identically."""
        opt = self.critic_opt
        return {
            "algorithm": self.cfg.algorithm,
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
            "num_updates": self.num_updates,
            "generator": self.generator.get_state(),
            "rng": self.rng.bit_generator.state,
            **self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any], with_replay: bool = True) -> None:
        """Restore `state_dict` output (sizes must match this instance's settings)."""
        if state.get("algorithm") != self.cfg.algorithm:
            raise ValueError(
                f"state of {state.get('algorithm')!r}, this agent is {self.cfg.algorithm!r}"
            )
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        saved = state["critic_opt"]
        self.critic_opt.step_count = saved["step_count"].to(self.device, copy=True)
        self.critic_opt.exp_avg = [t.to(self.device, copy=True) for t in saved["exp_avg"]]
        self.critic_opt.exp_avg_sq = [t.to(self.device, copy=True) for t in saved["exp_avg_sq"]]
        self.novelty.load_state_dict(state["novelty"])
        self.novelty_opt.load_state_dict(state["novelty_opt"])
        if with_replay:
            self.replay.load_state_dict(state["replay"])
        self.num_updates = int(state["num_updates"])
        self.generator.set_state(state["generator"].cpu())
        self.rng.bit_generator.state = state["rng"]
        self._load_extra(state)
