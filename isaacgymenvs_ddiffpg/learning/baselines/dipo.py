"""DIPO baseline: DDiffPG's diffusion actor and action-gradient targets, one critic, no modes."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.profiler import record_function

from isaacgymenvs_ddiffpg.learning.baselines.base import BaselineAgent
from isaacgymenvs_ddiffpg.learning.baselines.config import DIPOConfig
from isaacgymenvs_ddiffpg.learning.core import smooth_target_action
from isaacgymenvs_ddiffpg.learning.diffusion import DiffusionPolicy
from isaacgymenvs_ddiffpg.learning.group_adamw import make_adamw
from isaacgymenvs_ddiffpg.learning.target_actions import improve_target_actions


class DIPO(BaselineAgent[DIPOConfig, DiffusionPolicy]):
    """DIPO (Yang et al., 2023) as in DDiffPG's released baselines: DDiffPG without modes.

    The same DDPM actor (conditioned on the state only), the same action-gradient target
    actions (Adam ascent on min(Q1, Q2), written back into the replay) and one behaviour-
    cloning step per update; a single C51 clipped double-Q trained on extrinsic + intrinsic
    reward over all data, no clustering, no mode critics, no multimodal batch. Exploration:
    the Trainer's mixed per-env Gaussian noise. Arguments as for `BaselineAgent`.
    """

    def __init__(self, cfg: DIPOConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(cfg, *args, **kwargs)
        self.actor = DiffusionPolicy(
            self.obs_dim, self.act_dim, cfg.denoising_steps, cfg.time_dim, tuple(cfg.actor_hidden)
        ).to(self.device)
        self.actor_opt = make_adamw(self.actor.parameters(), lr=cfg.actor_lr)

    def actor_action(self, obs: Tensor, mode_embedding: Tensor) -> Tensor:
        """A sample of the diffusion policy on s (no modes: `mode_embedding` is ignored)."""
        return self.actor.sample(obs, self.generator)

    def update(self) -> dict[str, Tensor]:
        """One learner update in DDiffPG's order, with a single group.

        Returns:
            Detached losses and statistics for logging.
        """
        cfg, gen = self.cfg, self.generator
        self.begin_update()
        # 1. A uniform batch; reward = extrinsic + NovelD bonus.
        with record_function("update/batch"):
            batch = self.sample()
        obs = batch["obs"]
        # 2. Critic step; a' sampled from the actor on s', with TD3 smoothing noise.
        with record_function("update/critic"):
            next_action = self.actor.sample(batch["next_obs"][0], gen)[None]
            next_action = smooth_target_action(
                next_action, cfg.target_noise_std, cfg.target_noise_clip, gen
            )
            critic_loss = self.critic_step(batch, next_action)
        # 3. Target actions: Adam ascent on the just-updated min(Q1, Q2), written back.
        with record_function("update/target_actions"):
            target_action = improve_target_actions(
                self.critic.q,
                obs,
                batch["target_action"],
                cfg.action_steps,
                cfg.action_lr,
                max_grad_norm=cfg.max_grad_norm,
                flat_grad=cfg.action_flat_grad,
            )
            finite = torch.isfinite(target_action).all(dim=-1, keepdim=True)
            target_action = torch.where(finite, target_action, batch["target_action"])
            self.replay.write_target_actions(batch["indices"], target_action)
        # 4. One diffusion behaviour-cloning step on (s, a_target).
        with record_function("update/actor"):
            actor_loss = self.actor.loss(obs[0], target_action[0], gen)
            self.step_actor(actor_loss, self.actor_opt)
        # 5. One novelty step.
        self.num_updates += 1
        with record_function("update/novelty"):
            novelty_loss = self.novelty_step(batch)
        with record_function("update/stats"), torch.no_grad():
            target_q = self.critic.q(obs, target_action).mean()
        return {
            "loss/critic": critic_loss,
            "loss/actor": actor_loss.detach(),
            "loss/novelty": novelty_loss,
            "reward/intrinsic": batch["intrinsic"].mean(),
            "value/target_action_q": target_q,
            **self.health(),
        }
