"""DIPO baseline: DDiffPG's diffusion actor and action-gradient targets, one critic, no modes."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.profiler import record_function

from isaacgymenvs_ddiffpg.learning.baselines.base import BaselineAgent
from isaacgymenvs_ddiffpg.learning.baselines.config import DIPOConfig
from isaacgymenvs_ddiffpg.learning.diffusion import DiffusionPolicy, smoothed_sample
from isaacgymenvs_ddiffpg.learning.group_adamw import make_adamw
from isaacgymenvs_ddiffpg.learning.target_actions import ascend_critic


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
        self.denoise = self.compiler(DiffusionPolicy.denoise)
        self.smoothed_sample = self.compiler(smoothed_sample)
        self.ascend_critic = self.compiler(ascend_critic)
        self.actor_loss = self.compiler(DiffusionPolicy.loss_from)

    def actor_action(self, obs: Tensor, mode_embedding: Tensor) -> Tensor:
        """A sample of the diffusion policy on s (no modes: `mode_embedding` is ignored)."""
        noise = self.actor.chain_noise(obs.shape[0], self.generator, self.device, obs.dtype)
        return self.denoise(self.actor, obs, noise)

    def update(self) -> dict[str, Tensor]:
        """One learner update in DDiffPG's order, with a single group.

        Returns:
            Detached losses and statistics for logging.
        """
        cfg, gen, device = self.cfg, self.generator, self.device
        self.begin_update()
        # 1. A uniform batch; reward = extrinsic + NovelD bonus.
        with record_function("update/batch"):
            batch = self.sample()
        obs = batch["obs"]
        size = cfg.batch_size
        # 2. Critic step; a' sampled from the actor on s', with TD3 smoothing noise.
        with record_function("update/critic"):
            next_action = self.smoothed_sample(
                self.actor,
                batch["next_obs"][0],
                self.actor.chain_noise(size, gen, device, obs.dtype),
                torch.randn((size, self.act_dim), device=device, generator=gen),
                cfg.target_noise_std,
                cfg.target_noise_clip,
            )[None]
            critic_loss = self.critic_step(batch, next_action)
        # 3. Target actions: Adam ascent on the just-updated min(Q1, Q2), written back.
        with record_function("update/target_actions"):
            target_action, target_q = self.ascend_critic(
                self.critic,
                obs,
                batch["target_action"],
                cfg.action_steps,
                cfg.action_lr,
                max_grad_norm=cfg.max_grad_norm,
                flat_grad=cfg.action_flat_grad,
            )
            self.replay.write_target_actions(batch["indices"], target_action)
        # 4. One diffusion behaviour-cloning step on (s, a_target).
        with record_function("update/actor"):
            timestep, noise = self.actor.loss_noise(size, gen, device, obs.dtype)
            actor_loss = self.actor_loss(self.actor, obs[0], target_action[0], timestep, noise)
            self.step_actor(actor_loss, self.actor_opt)
        # 5. One novelty step.
        self.num_updates += 1
        with record_function("update/novelty"):
            novelty_loss = self.novelty_step(batch)
        with record_function("update/stats"):  # the Q itself came with the ascent's graph
            target_q = target_q.mean()
        return {
            "loss/critic": critic_loss,
            "loss/actor": actor_loss.detach(),
            "loss/novelty": novelty_loss,
            "reward/intrinsic": batch["intrinsic"].mean(),
            "value/target_action_q": target_q,
            **self.health(),
        }
