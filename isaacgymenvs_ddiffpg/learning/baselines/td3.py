"""TD3 baseline: a deterministic tanh MLP actor on DDiffPG's critic, replay and novelty."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn
from torch.profiler import record_function

from isaacgymenvs_ddiffpg.learning.baselines.base import BaselineAgent, frozen, mlp
from isaacgymenvs_ddiffpg.learning.baselines.config import TD3Config
from isaacgymenvs_ddiffpg.learning.core import smooth_target_action
from isaacgymenvs_ddiffpg.learning.critics import GroupDistributionalDoubleQ
from isaacgymenvs_ddiffpg.learning.group_adamw import make_adamw


class TanhActor(nn.Module):
    """Deterministic policy a = tanh(MLP(s)) (ELU hidden layers)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.net = mlp(obs_dim, hidden, act_dim)

    def forward(self, obs: Tensor) -> Tensor:
        """Actions of the observations.

        Args:
            obs: (..., obs_dim).

        Returns:
            action: (..., act_dim) in (-1, 1).
        """
        return torch.tanh(self.net(obs))


def td3_next_action(
    actor_target: TanhActor, next_obs: Tensor, noise: Tensor, std: float, clip: float
) -> Tensor:
    """a' = the target actor's action on s' with TD3's smoothing noise (`smooth_target_action`).

    Args:
        actor_target: the Polyak-averaged actor.
        next_obs: (..., obs_dim); noise: (..., act_dim) standard normal.
        std, clip: the smoothing noise's std and bound.
    """
    with torch.no_grad():
        return smooth_target_action(actor_target(next_obs), noise, std, clip)


def td3_actor_loss(actor: TanhActor, critic: GroupDistributionalDoubleQ, obs: Tensor) -> Tensor:
    """-mean min(Q1, Q2)(s, mu(s)), the deterministic policy gradient's loss.

    Args:
        actor, critic: the policy and the (frozen) critic.
        obs: (1, B, obs_dim).
    """
    return -critic.q(obs, actor(obs)).mean()


class TD3(BaselineAgent[TD3Config, TanhActor]):
    """TD3 (Fujimoto et al., 2018) in this framework, as in the released baseline settings.

    Critic: DDiffPG's C51 clipped double-Q with one group, so that TD3, SAC, DIPO and DDiffPG
    differ only in the actor and the mode machinery. The actor maximises min(Q1, Q2) (the
    value DDiffPG's target actions ascend) every `policy_delay` critic steps; a' comes from a
    Polyak-averaged target actor with TD3 smoothing noise. Exploration: the Trainer's mixed
    per-env Gaussian noise. Arguments as for `BaselineAgent`.
    """

    def __init__(self, cfg: TD3Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(cfg, *args, **kwargs)
        self.actor = TanhActor(self.obs_dim, self.act_dim, tuple(cfg.actor_hidden)).to(self.device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.actor_opt = make_adamw(self.actor.parameters(), lr=cfg.actor_lr)
        self.policy = self.compiler(TanhActor.forward)
        self.next_action = self.compiler(td3_next_action)
        self.actor_loss = self.compiler(td3_actor_loss)

    def actor_action(self, obs: Tensor, mode_embedding: Tensor) -> Tensor:
        """mu(s) (TD3 has no modes: `mode_embedding` is ignored); shapes as for `act`."""
        return self.policy(self.actor, obs)

    def update(self) -> dict[str, Tensor]:
        """One learner update: critic, (delayed) actor and target actor, novelty.

        Returns:
            Detached losses and statistics for logging.
        """
        self.begin_update()
        # 1. A uniform batch; reward = extrinsic + NovelD bonus.
        with record_function("update/batch"):
            batch = self.sample()
        obs = batch["obs"]
        # 2. Critic step toward r + gamma * min of the projected targets at a' = smoothed mu'(s').
        with record_function("update/critic"):
            next_obs = batch["next_obs"]
            noise_shape = (*next_obs.shape[:-1], self.act_dim)
            next_action = self.next_action(
                self.actor_target,
                next_obs,
                torch.randn(noise_shape, device=self.device, generator=self.generator),
                self.cfg.target_noise_std,
                self.cfg.target_noise_clip,
            )
            critic_loss = self.critic_step(batch, next_action)
        # 3. Every `policy_delay` updates: actor ascends min(Q1, Q2), then its Polyak target.
        self.num_updates += 1
        out = {"loss/critic": critic_loss}
        if self.num_updates % self.cfg.policy_delay == 0:
            with record_function("update/actor"):
                with frozen(self.critic):
                    actor_loss = self.actor_loss(self.actor, self.critic, obs)
                self.step_actor(actor_loss, self.actor_opt)
                self.soft_update(self.actor_target, self.actor, self.cfg.tau)
            out["loss/actor"] = actor_loss.detach()
        # 4. One novelty step.
        with record_function("update/novelty"):
            out["loss/novelty"] = self.novelty_step(batch)
        out["reward/intrinsic"] = batch["intrinsic"].mean()
        return {**out, **self.health()}

    def _extra_state(self) -> dict[str, Any]:
        return {"actor_target": self.actor_target.state_dict()}

    def _load_extra(self, state: dict[str, Any]) -> None:
        self.actor_target.load_state_dict(state["actor_target"])
