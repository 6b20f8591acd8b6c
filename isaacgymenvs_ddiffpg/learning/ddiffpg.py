"""DDiffPG on the shared core: diffusion actor, modes, and one update in the paper's order."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.profiler import record_function

from isaacgymenvs_ddiffpg.learning.config import DDiffPGConfig
from isaacgymenvs_ddiffpg.learning.core import AgentCore, EnvSpec
from isaacgymenvs_ddiffpg.learning.critics import remap_groups
from isaacgymenvs_ddiffpg.learning.diffusion import DiffusionPolicy, smoothed_sample
from isaacgymenvs_ddiffpg.learning.discovery import Discovery, discover_modes
from isaacgymenvs_ddiffpg.learning.distributed import Distributed
from isaacgymenvs_ddiffpg.learning.dtw import DTWCache
from isaacgymenvs_ddiffpg.learning.group_adamw import guarded_step, make_adamw
from isaacgymenvs_ddiffpg.learning.modes import ModeEmbeddings
from isaacgymenvs_ddiffpg.learning.target_actions import ascend_critic


def actor_embeddings(
    group_z: Tensor,
    per_group: int,
    zero_prob: float,
    generator: torch.Generator,
    explorer: Tensor | None = None,
) -> Tensor:
    """The mode embeddings the actor is cloned under: each mode sample keeps its group's z_k or,
    with probability `zero_prob`, gets z = 0 (the policy that picks the mode itself); an
    exploration group always keeps its z.

    Args:
        group_z: (G, E) z of each group, z_explore first.
        per_group: B, samples per group.
        zero_prob: chance of z = 0 for a mode sample.
        generator: generator on ``group_z.device``.
        explorer: (G,) bool, the exploration groups (default: group 0 only).

    Returns:
        z: (G, B, E).
    """
    num_groups = group_z.shape[0]
    z = group_z[:, None, :].expand(num_groups, per_group, -1)
    drop = torch.rand((num_groups, per_group, 1), device=group_z.device, generator=generator)
    if explorer is None:
        explorer = torch.arange(num_groups, device=group_z.device) == 0
    drop = (drop < zero_prob) & ~explorer[:, None, None]
    return torch.where(drop, 0.0, z)


class DDiffPG(AgentCore[DDiffPGConfig, DiffusionPolicy]):
    """Deep Diffusion Policy Gradient (Li et al., 2024) on one device; see docs/algorithm.md.

    Groups: group 0 is exploration (Q_explore, z_explore); group 1 <= k <= K is the k-th
    discovered mode (Q_k, z_k, user-facing id `embeddings.mode_ids[k]`); groups K + 1 ..
    K + explorers - 1 are further exploration groups (`explorers`). All critics are stacked
    over groups and updated together.

    Args:
        cfg, spec, device, seed: as for `AgentCore`.
        dist: the process group (default: torch.distributed's, or a single process); under
            torchrun every rank starts from rank 0's networks and embeddings.
    """

    learns_modes = True

    def __init__(
        self,
        cfg: DDiffPGConfig,
        spec: EnvSpec,
        device: str | torch.device,
        seed: int,
        dist: Distributed | None = None,
    ) -> None:
        region = cfg.mode_region
        if region is not None and len(region[0]) != spec.mode_feature_dim:
            raise ValueError(
                f"mode_region_low/high give {len(region[0])} bounds but the task has "
                f"{spec.mode_feature_dim} mode features; give one bound per feature"
            )
        # The actor's initial weights are the first draws of the agent's seed, the critic's next.
        self.actor = DiffusionPolicy(
            spec.obs_dim + cfg.embedding_dim,
            spec.act_dim,
            cfg.denoising_steps,
            cfg.time_dim,
            tuple(cfg.actor_hidden),
        ).to(device)
        self.actor_opt = make_adamw(self.actor.parameters(), lr=cfg.actor_lr)
        super().__init__(
            cfg,
            spec,
            device,
            seed,
            num_target_slots=cfg.max_modes + cfg.explorers,
            num_critic_groups=cfg.explorers,
        )
        self.embeddings = ModeEmbeddings(cfg.embedding_dim, cfg.use_embedding, seed, cfg.explorers)
        self.dist = dist if dist is not None else Distributed()
        self.dist.broadcast_modules(self.actor, self.critic, self.critic_target, self.novelty)
        self.dist.sync_state(self.embeddings)
        self.group_z = self.embeddings.group_embeddings(self.device)
        self.batch_size = cfg.batch_size  # transitions per update (see `plan_updates`)
        self.success_labels: dict[int, int] = {}
        self.dtw_cache = DTWCache()
        self.denoise = self.compiler(DiffusionPolicy.denoise)
        self.smoothed_sample = self.compiler(smoothed_sample)
        self.ascend_critic = self.compiler(ascend_critic)
        self.actor_loss = self.compiler(DiffusionPolicy.loss_from)

    @property
    def num_groups(self) -> int:
        """Exploration groups plus discovered modes, K + explorers."""
        return len(self.embeddings.mode_ids) + self.cfg.explorers - 1

    def explorer_mask(self) -> Tensor:
        """(G,) bool on the device: the exploration groups (0 and those after the modes)."""
        groups = torch.arange(self.num_groups, device=self.device)
        return (groups == 0) | (groups >= len(self.embeddings.mode_ids))

    @property
    def mode_ids(self) -> list[int]:
        """Stable user-facing ids of the modes, group 1..K."""
        return self.embeddings.mode_ids[1:]

    def actor_action(self, obs: Tensor, mode_embedding: Tensor) -> Tensor:
        """A sample of the diffusion policy conditioned on (s, z); shapes as for `act`."""
        cond = torch.cat((obs, mode_embedding), dim=-1)
        noise = self.actor.chain_noise(cond.shape[0], self.generator, self.device, cond.dtype)
        return self.denoise(self.actor, cond, noise)

    @property
    def exploration_stop(self) -> float:
        """Env steps from which every env exploits (`exploration_stop_steps` or the ratio)."""
        cfg = self.cfg
        if cfg.exploration_stop_steps is not None:
            return float(cfg.exploration_stop_steps)
        return cfg.exploration_stop_ratio * cfg.max_env_steps

    def plan_updates(self, env_steps: int) -> int:
        """Updates of the iteration at `env_steps`, and their batch size (`self.batch_size`):
        `exploit_updates_per_step` of `exploit_batch_size` from the exploration stop on, where
        set; `updates_per_step` of `batch_size` before it."""
        cfg = self.cfg
        late = env_steps >= self.exploration_stop
        self.batch_size = cfg.batch_size
        if late and cfg.exploit_batch_size is not None:
            self.batch_size = cfg.exploit_batch_size
        if late and cfg.exploit_updates_per_step is not None:
            return cfg.exploit_updates_per_step
        return cfg.updates_per_step

    def exploit_share(self, env_steps: int, first_mode_steps: int | None) -> float:
        """Share p of envs that exploit a mode (docs/algorithm.md, Rollout); the rest explore.

        Args:
            env_steps: env steps of the run so far.
            first_mode_steps: env steps when the first mode was found (None: not yet).
        """
        cfg, num_modes = self.cfg, len(self.mode_ids)  # the further explorers are no modes
        if num_modes == 0:
            return 0.0
        stop = self.exploration_stop
        if env_steps >= stop:
            return 1.0
        if cfg.exploration == "fixed":
            return cfg.exploration_fix_ratio
        if cfg.exploration == "linear":  # 0 -> 1 from the first discovered mode to the stop
            first = first_mode_steps if first_mode_steps is not None else env_steps
            return min(1.0, (env_steps - first) / max(stop - first, 1.0))
        return 1.0 - 1.0 / (num_modes + 1)

    def update(self) -> dict[str, Tensor]:
        """One learner update in the order of the algorithm box (docs/algorithm.md, Update).

        Each phase is a named profiler range (``update/batch``, ``update/critic``,
        ``update/target_actions``, ``update/actor``, ``update/novelty``, ``update/stats``), so a
        ``torch.profiler`` trace shows where an update's time goes. The random draws come from
        the agent's generator here; the pieces they feed are pure functions, compiled with
        ``cfg.compile``.

        Returns:
            Detached losses and statistics for logging (no host sync here).
        """
        cfg, gen, device = self.cfg, self.generator, self.device
        num_groups = self.num_groups
        per_group = self.batch_size // num_groups
        size = num_groups * per_group
        self.compiler.begin_step()

        with record_function("update/batch"):
            # 1. Multimodal batch: an equal share per group; group 0 (exploration) draws from
            #    all stored data including running episodes (`explore_data: own`: the exploring
            #    envs' data only), group k from mode k's trajectories.
            own = cfg.explore_data == "own"
            batch = self.replay.sample(
                per_group, num_groups, gen, cfg.mode_success_share, own, cfg.explorers
            )
            obs, next_obs, action = batch["obs"], batch["next_obs"], batch["action"]
            has_data = batch["has_data"]

            # 2. Intrinsic reward (NovelD on RND), recomputed for every batch, never stored; the
            #    same pass gives the novelty loss of step 7 (the predictor is stepped last).
            intrinsic, novelty_loss = self.novelty_reward_and_loss(
                self.novelty, obs.flatten(0, 1), next_obs.flatten(0, 1)
            )
            intrinsic = intrinsic.view(num_groups, per_group)

            # 3. Rewards: Q_explore learns the intrinsic reward only (with `route_bonus`, also
            #    that share of the extrinsic reward of successes on routes no mode takes),
            #    each Q_k extrinsic + intrinsic.
            explorer = self.explorer_mask()
            explore_reward = intrinsic
            if cfg.route_bonus > 0.0:
                new_route = batch["new_route"].to(intrinsic.dtype)
                explore_reward = intrinsic + cfg.route_bonus * new_route * batch["reward"]
            reward = torch.where(explorer[:, None], explore_reward, intrinsic + batch["reward"])

        with record_function("update/critic"):
            # 4. Critic step for every group at once: a' from the actor under the group's own
            #    z, TD3 smoothing noise, C51 target = min of the two projected target
            #    distributions.
            z = self.group_z[:, None, :].expand(num_groups, per_group, -1)
            next_action = self.smoothed_sample(
                self.actor,
                torch.cat((next_obs, z), dim=-1).flatten(0, 1),
                self.actor.chain_noise(size, gen, device, obs.dtype),
                torch.randn((size, self.act_dim), device=device, generator=gen),
                cfg.target_noise_std,
                cfg.target_noise_clip,
            ).view_as(action)
            loss, group_loss = self.critic_loss(
                self.critic,
                self.critic_target,
                obs,
                action,
                reward,
                next_obs,
                next_action,
                (~batch["terminated"]).to(reward.dtype),
                cfg.gamma,
                has_data.to(reward.dtype),
            )
            self.critic_opt.zero_grad()
            loss.backward()
            self.dist.average_gradients(self.critic.parameters())
            # no step on a non-finite update; a mode left without data is not trained
            self.critic_opt.step(skip=~torch.isfinite(loss), active=has_data)
            self.group_soft_update(self.critic_target, self.critic, cfg.tau, has_data)

        with record_function("update/target_actions"):
            # 5. Target actions: Adam ascent on each group's own, just-updated min(Q1, Q2),
            #    clamped to the action bounds and written back into the replay (a mode without
            #    data keeps its stored ones). `action_flat_grad` holds for the mode critics;
            #    Q_explore, which learns only the small intrinsic reward, has slopes of its size
            #    everywhere: its flat slope is `explore_flat_grad` x its own mean slope.
            flat = torch.where(explorer, 0.0, cfg.action_flat_grad)
            relative = torch.where(explorer, cfg.explore_flat_grad, 0.0)
            target_action, target_q = self.ascend_critic(
                self.critic,
                obs,
                batch["target_action"],
                cfg.action_steps,
                cfg.action_lr,
                max_grad_norm=cfg.max_grad_norm,
                flat_grad=flat,
                active=has_data,
                relative_flat=relative,
            )
            if cfg.target_radius is not None:  # the modes' targets near their stored actions
                radius = cfg.target_radius
                near = action + (target_action - action).clamp(-radius, radius)
                bounded = ~explorer & has_data
                target_action = torch.where(bounded[:, None, None], near, target_action)
            self.replay.write_target_actions(batch["indices"], target_action)

        with record_function("update/actor"):
            # 6. One diffusion behaviour-cloning step on the concatenation of all groups'
            #    (s + z_group, a_target); a share of the mode samples uses z = 0, which keeps
            #    z = 0 the multimodal policy that lets the sampler choose the mode.
            actor_z = actor_embeddings(
                self.group_z, per_group, cfg.zero_embedding_prob, gen, explorer
            )
            # A mode left without data drew group 0's samples with its own stale targets: it
            # is not cloned, as its critic is not trained. With `mode_success_share` a mode
            # clones only its samples from successful trajectories.
            clone = has_data[:, None].expand(num_groups, per_group)
            if cfg.mode_success_share > 0:
                clone = clone & batch["success"]
            weight = clone.flatten().to(obs.dtype)
            timestep, noise = self.actor.loss_noise(size, gen, device, obs.dtype)
            actor_loss = self.actor_loss(
                self.actor,
                torch.cat((obs, actor_z), dim=-1).flatten(0, 1),
                target_action.flatten(0, 1),
                timestep,
                noise,
                weight,
            )
            self.actor_opt.zero_grad()
            actor_loss.backward()
            self.dist.average_gradients(self.actor.parameters())
            actor_params = list(self.actor.parameters())
            actor_skipped = guarded_step(
                self.actor_opt, actor_params, actor_loss, cfg.max_grad_norm
            )

        with record_function("update/novelty"):
            # 7. One novelty step: the RND predictor regresses its target on obs and next obs.
            self.novelty_opt.zero_grad()
            novelty_loss.backward()
            predictor = list(self.novelty.rnd.predictor.parameters())
            self.dist.average_gradients(predictor)
            novelty_skipped = guarded_step(
                self.novelty_opt, predictor, novelty_loss, cfg.max_grad_norm
            )

        with record_function("update/stats"):  # the Q itself came with the ascent's graph
            target_q = target_q.mean(dim=1)
        return {
            "loss/critic": loss.detach(),
            "loss/critic_per_group": group_loss,
            "loss/actor": actor_loss.detach(),
            "loss/novelty": novelty_loss.detach(),
            "reward/intrinsic": intrinsic.mean(),
            "value/target_action_q": target_q,
            "health/skipped_updates": (
                self.critic_opt.skipped | actor_skipped | novelty_skipped
            ).float(),
        }

    def discover_modes(self) -> Discovery:
        """Re-cluster successful trajectories and re-map critics, slots and embeddings (host).

        Under torchrun, rank 0 clusters the trajectories of every rank and broadcasts the round
        (`Distributed.discover_on_main`); the caps then apply to all ranks' buffers together.

        Returns:
            The discovery round (plan, labels, evictions) as it applies to this rank.
        """
        found = self.dist.discover_on_main(
            self.replay.completed(self.mode_feature_dim),
            lambda trajectories: discover_modes(
                trajectories,
                self.dtw_cache,
                self.success_labels,
                self.embeddings.mode_ids,
                self.cfg.cluster_settings,
                self.replay.capacity * self.dist.world_size,
                self.rng,
            ),
        )
        plan = found.plan
        # the further explorers follow the modes: they keep their critics and slots
        old_modes, more = len(self.embeddings.mode_ids) - 1, self.cfg.explorers - 1
        extra = list(range(old_modes + 1, old_modes + 1 + more))
        source = torch.tensor(plan.source + extra, dtype=torch.long, device=self.device)
        fresh = torch.tensor(plan.fresh_optimizer + [False] * more, device=self.device)
        remap_groups(self.critic, self.critic_target, self.critic_opt, source, fresh)
        self.replay.remap_slots(source)
        self.replay.evict(found.evict_ids)
        self.replay.set_groups(found.ids, found.groups)
        self.replay.set_new_routes(found.new_route_ids)
        self.embeddings.apply_plan(plan)
        self.dist.sync_state(self.embeddings)  # new modes' embeddings are rank 0's draws
        self.group_z = self.embeddings.group_embeddings(self.device)
        self.success_labels = found.success_labels
        return found

    def mode_embedding(self, mode_id: int) -> Tensor:
        """(embedding_dim,) z of a user-facing mode id; 0 gives z = 0 (the sampler chooses)."""
        if mode_id == 0:
            return torch.zeros(self.cfg.embedding_dim, device=self.device)
        if mode_id not in self.mode_ids:
            raise KeyError(mode_id)
        return self.embeddings.for_mode(mode_id).to(self.device)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training bit-identically."""
        return {
            **self.core_state_dict(),
            "num_groups": self.num_groups,
            "embeddings": self.embeddings.state_dict(),
            "success_labels": dict(self.success_labels),
        }

    def load_state_dict(self, state: dict[str, Any], with_replay: bool = True) -> None:
        """Restore `state_dict` output (sizes must match this instance's settings)."""
        self.load_core_state_dict(state, state["num_groups"], with_replay)
        self.embeddings.load_state_dict(state["embeddings"])
        self.group_z = self.embeddings.group_embeddings(self.device)
        self.success_labels = dict(state["success_labels"])
