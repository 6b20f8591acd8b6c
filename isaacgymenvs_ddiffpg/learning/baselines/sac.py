"""SAC baseline: a tanh-Gaussian actor with a learned temperature on DDiffPG's critic."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.profiler import record_function

from isaacgymenvs_ddiffpg.learning.baselines.base import BaselineAgent, frozen, mlp
from isaacgymenvs_ddiffpg.learning.baselines.config import SACConfig
from isaacgymenvs_ddiffpg.learning.critics import GroupDistributionalDoubleQ
from isaacgymenvs_ddiffpg.learning.group_adamw import make_adamw


class TanhGaussianActor(nn.Module):
    """pi(a | s) = tanh(N(mu(s), sigma(s)^2)), with log sigma squashed into [min, max]."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: tuple[int, ...],
        log_std_min: float = -5.0,
        log_std_max: float = 2.0,
    ) -> None:
        super().__init__()
        self.net = mlp(obs_dim, hidden, 2 * act_dim)
        self.act_dim = act_dim
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Gaussian parameters before the tanh.

        Args:
            obs: (..., obs_dim).

        Returns:
            mean: (..., act_dim); log_std: (..., act_dim) in [log_std_min, log_std_max].
        """
        mean, raw = self.net(obs).chunk(2, dim=-1)
        scale = 0.5 * (self.log_std_max - self.log_std_min)
        return mean, self.log_std_min + scale * (torch.tanh(raw) + 1.0)

    def noise(self, obs: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The standard normal draws of `sample` for `obs` (..., obs_dim): (..., act_dim)."""
        shape = (*obs.shape[:-1], self.act_dim)
        return torch.randn(shape, device=obs.device, dtype=obs.dtype, generator=generator)

    def sample(
        self, obs: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """A reparameterised sample and its log-probability (with the tanh correction).

        Args:
            obs: (..., obs_dim).
            generator: generator on ``obs.device`` for the noise.

        Returns:
            action: (..., act_dim) in (-1, 1); log_prob: (...).
        """
        return self.sample_from(obs, self.noise(obs, generator))

    def sample_from(self, obs: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
        """`sample` with given noise (..., act_dim): a pure function of its inputs."""
        mean, log_std = self(obs)
        pre_tanh = mean + log_std.exp() * noise
        action = torch.tanh(pre_tanh)
        gaussian = -0.5 * noise.square() - log_std - 0.5 * math.log(2 * math.pi)
        # log |d tanh(u) / du| = 2 (log 2 - u - softplus(-2u)), the stable form of log(1 - a^2).
        squash = 2.0 * (math.log(2.0) - pre_tanh - nn.functional.softplus(-2.0 * pre_tanh))
        return action, (gaussian - squash).sum(dim=-1)

    def mean_action(self, obs: Tensor) -> Tensor:
        """tanh(mu(s)), the action evaluation plays: (..., act_dim)."""
        return torch.tanh(self(obs)[0])


def sac_soft_target(
    actor: TanhGaussianActor,
    next_obs: Tensor,
    noise: Tensor,
    reward: Tensor,
    not_done: Tensor,
    gamma: float,
    alpha: Tensor,
) -> tuple[Tensor, Tensor]:
    """a' ~ pi(s') and the soft reward r - gamma alpha log pi(a'|s') of the C51 target.

    Args:
        actor: the policy.
        next_obs: (1, B, obs_dim); noise: (1, B, act_dim) standard normal.
        reward, not_done: (1, B).
        gamma: discount; alpha: 0-d temperature.

    Returns:
        next_action: (1, B, act_dim); soft_reward: (1, B).
    """
    with torch.no_grad():
        next_action, next_log_prob = actor.sample_from(next_obs, noise)
        return next_action, reward - gamma * not_done * alpha * next_log_prob


def sac_actor_loss(
    actor: TanhGaussianActor,
    critic: GroupDistributionalDoubleQ,
    obs: Tensor,
    noise: Tensor,
    alpha: Tensor,
) -> tuple[Tensor, Tensor]:
    """SAC's actor loss mean(alpha log pi(a|s) - min(Q1, Q2)(s, a)), a reparameterised.

    Args:
        actor, critic: the policy and the (frozen) critic.
        obs: (1, B, obs_dim); noise: (1, B, act_dim) standard normal.
        alpha: 0-d temperature.

    Returns:
        loss: 0-d; log_prob: (1, B) detached, for the temperature's step.
    """
    action, log_prob = actor.sample_from(obs, noise)
    loss = (alpha * log_prob - critic.q(obs, action)).mean()
    return loss, log_prob.detach()


class SAC(BaselineAgent[SACConfig, TanhGaussianActor]):
    """Soft actor-critic (Haarnoja et al., 2018) in this framework, as released for DDiffPG.

    Critic: DDiffPG's C51 clipped double-Q with one group (the same critic for every
    algorithm). The entropy term enters the distributional target as a per-sample reward
    shift, r + gamma (z - alpha log pi(a'|s')) = (r - gamma alpha log pi(a'|s')) + gamma z,
    so the projection stays C51's; the shifted atoms are clipped to [v_min, v_max] like any
    other. The temperature alpha is learned (Adam on log alpha) toward `target_entropy`
    (default -act_dim). Rollouts sample the policy (its own noise; the Trainer's mixed noise
    std only switches sampling on), evaluation uses the mean action tanh(mu); with the
    Trainer's `noise_correlation` > 0 rollouts take the mean plus the Trainer's AR(1) noise,
    like the other algorithms.
    Arguments as for `BaselineAgent`.
    """

    def __init__(self, cfg: SACConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(cfg, *args, **kwargs)
        self.actor = TanhGaussianActor(
            self.obs_dim, self.act_dim, tuple(cfg.actor_hidden), cfg.log_std_min, cfg.log_std_max
        ).to(self.device)
        self.actor_opt = make_adamw(self.actor.parameters(), lr=cfg.actor_lr)
        self.log_alpha = torch.tensor(math.log(cfg.init_alpha), device=self.device)
        self.log_alpha.requires_grad_(True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr, fused=True)
        self.target_entropy = (
            cfg.target_entropy if cfg.target_entropy is not None else -float(self.act_dim)
        )
        self.sample_from = self.compiler(TanhGaussianActor.sample_from)
        self.mean_action = self.compiler(TanhGaussianActor.mean_action)
        self.soft_target = self.compiler(sac_soft_target)
        self.actor_loss = self.compiler(sac_actor_loss)

    @property
    def alpha(self) -> Tensor:
        """The entropy temperature exp(log alpha), detached."""
        return self.log_alpha.detach().exp()

    @torch.no_grad()
    def act(self, obs: Tensor, mode_embedding: Tensor, noise_std: Tensor | None = None) -> Tensor:
        """Sampled actions while training (`noise_std` given), mean actions otherwise.

        Args:
            obs: (N, obs_dim).
            mode_embedding: (N, embedding_dim), ignored (SAC has no modes).
            noise_std: (N,) only whether it is None matters: SAC explores with its own noise.

        Returns:
            actions: (N, act_dim) in [-1, 1].
        """
        self.compiler.begin_step()
        if noise_std is None:
            return self.mean_action(self.actor, obs)
        return self.sample_from(self.actor, obs, self.actor.noise(obs, self.generator))[0]

    def update(self) -> dict[str, Tensor]:
        """One learner update: critic, actor, temperature, novelty.

        Returns:
            Detached losses and statistics for logging.
        """
        self.begin_update()
        # 1. A uniform batch; reward = extrinsic + NovelD bonus.
        with record_function("update/batch"):
            batch = self.sample()
        obs, not_done = batch["obs"], (~batch["terminated"]).to(batch["reward"].dtype)
        alpha = self.alpha
        # 2. Critic step toward the soft target: a' ~ pi(s'), entropy as a reward shift.
        with record_function("update/critic"):
            next_obs = batch["next_obs"]
            next_action, soft_reward = self.soft_target(
                self.actor,
                next_obs,
                self.actor.noise(next_obs, self.generator),
                batch["total_reward"],
                not_done,
                self.cfg.gamma,
                alpha,
            )
            critic_loss = self.critic_step(batch, next_action, soft_reward)
        with record_function("update/actor"):
            # 3. Actor step: minimise alpha log pi(a|s) - min(Q1, Q2)(s, a), a reparameterised.
            with frozen(self.critic):
                actor_loss, log_prob = self.actor_loss(
                    self.actor, self.critic, obs, self.actor.noise(obs, self.generator), alpha
                )
            self.step_actor(actor_loss, self.actor_opt)
            # 4. Temperature step: alpha grows when the entropy is below its target.
            alpha_loss = -(self.log_alpha * (log_prob + self.target_entropy)).mean()
            self.step_actor(alpha_loss, self.alpha_opt, max_grad_norm=None)
        # 5. One novelty step.
        self.num_updates += 1
        with record_function("update/novelty"):
            novelty_loss = self.novelty_step(batch)
        return {
            "loss/critic": critic_loss,
            "loss/actor": actor_loss.detach(),
            "loss/alpha": alpha_loss.detach(),
            "loss/novelty": novelty_loss,
            "value/alpha": self.alpha,
            "value/entropy": -log_prob.mean(),
            "reward/intrinsic": batch["intrinsic"].mean(),
            **self.health(),
        }

    def _extra_state(self) -> dict[str, Any]:
        return {
            "log_alpha": self.log_alpha.detach().clone(),
            "alpha_opt": self.alpha_opt.state_dict(),
        }

    def _load_extra(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])
