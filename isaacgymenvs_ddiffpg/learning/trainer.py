"""The training loop of every agent: rollouts, updates, mode discovery, evaluation, logs, saves."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from isaacgymenvs_ddiffpg.learning.agents import Agent, config_to_dict, make_agent
from isaacgymenvs_ddiffpg.learning.checkpoint import load_checkpoint, save_checkpoint
from isaacgymenvs_ddiffpg.learning.config import AgentConfig
from isaacgymenvs_ddiffpg.learning.core import EnvSpec
from isaacgymenvs_ddiffpg.learning.distributed import Distributed, keep_local_state
from isaacgymenvs_ddiffpg.learning.evaluation import VecEnv, run_episodes, success_table
from isaacgymenvs_ddiffpg.utils.timing import PhaseTimer
from isaacgymenvs_ddiffpg.viz.training import TrainingViz


class Trainer:
    """Runs an agent on a vecenv (docs/algorithm.md, One iteration): one vector step and
    `updates_per_step` learner updates per iteration; mode discovery and evaluation every
    `eval_interval` iterations.

    Under torchrun (an initialised process group) each rank runs this loop on its own envs;
    `env_steps` counts the steps of all ranks, and only rank 0 logs, evaluates and saves.

    Args:
        cfg: the agent's settings (its class picks the algorithm).
        env: training vecenv; `get_env_info()` must give `observation_space`, `action_space`,
            `mode_feature_dim`, `num_goals`, `max_episode_length` and `max_reward`.
        run_dir: run folder (`nn/` and `summaries/` are written there).
        device: rl device.
        seed: seed of the algorithm's random streams.
        max_iterations: iteration budget (-1: only `cfg.max_env_steps` counts).
        eval_env: evaluation vecenv (None: no evaluation).
        task_name: recorded in checkpoints and checked on resume.
        viz: videos, mode atlas and viewer (None: none of them).
    """

    def __init__(
        self,
        cfg: AgentConfig,
        env: VecEnv,
        run_dir: Path,
        device: str | torch.device,
        seed: int,
        max_iterations: int = -1,
        eval_env: VecEnv | None = None,
        task_name: str = "",
        viz: TrainingViz | None = None,
    ) -> None:
        self.cfg, self.env, self.eval_env = cfg, env, eval_env
        self.info = env.get_env_info()
        self.device = torch.device(device)
        self.dist = Distributed()
        self.run_dir = Path(run_dir)
        self.task_name = task_name
        self.viz = viz
        self.max_iterations = max_iterations
        self.obs = env.reset()
        self.num_envs = self.obs.shape[0]
        self.num_goals = int(self.info["num_goals"])
        self.max_episode_length = int(self.info["max_episode_length"])
        spec = EnvSpec.from_env_info(self.info, self.num_envs)
        self.algo: Agent = make_agent(cfg, spec, self.device, seed)
        self.noise_std = torch.linspace(
            cfg.noise_std_min, cfg.noise_std_max, self.num_envs, device=self.device
        )
        self.rollout_group = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.noise = torch.zeros(self.num_envs, self.algo.act_dim, device=self.device)
        self.iteration = 0
        self.env_steps = 0
        self.first_mode_steps: int | None = None
        self._reset_stats()
        self.timer = PhaseTimer(self.device)
        self.writer: SummaryWriter | None = None

    # ------------------------------------------------------------------ rollout
    def exploit_share(self) -> float:
        """Share of envs that exploit a mode at this point of the run; the rest explore."""
        return self.algo.exploit_share(self.env_steps, self.first_mode_steps)

    def assign_groups(self, env_mask: Tensor) -> None:
        """Draw explore (group 0) or a uniformly chosen mode for the envs in `env_mask` (N,)."""
        gen, n = self.algo.generator, self.num_envs
        exploit = torch.rand(n, device=self.device, generator=gen) < self.exploit_share()
        num_modes = self.algo.num_groups - 1
        mode = torch.randint(1, max(num_modes, 1) + 1, (n,), device=self.device, generator=gen)
        new_group = torch.where(exploit & (num_modes > 0), mode, 0)
        self.rollout_group = torch.where(env_mask, new_group, self.rollout_group)

    def collect(self) -> None:
        """One vector step of every env, stored into the trajectory replay."""
        correlation = self.cfg.noise_correlation
        if correlation > 0:  # AR(1) noise, stationary N(0, 1) per env and action dim
            fresh = torch.randn(self.noise.shape, device=self.device, generator=self.algo.generator)
            self.noise.mul_(correlation).add_(fresh, alpha=(1.0 - correlation**2) ** 0.5)
        if self.iteration <= self.cfg.warm_up_steps:
            if correlation > 0:
                actions = self.noise.clamp(-1.0, 1.0)
            else:
                shape = (self.num_envs, self.algo.act_dim)
                actions = torch.rand(shape, device=self.device, generator=self.algo.generator)
                actions = actions * 2 - 1
        else:
            z = self.algo.group_z[self.rollout_group]
            if correlation > 0:
                actions = self.algo.act(self.obs, z) + self.noise * self.noise_std[:, None]
                actions = actions.clamp(-1.0, 1.0)
            else:
                actions = self.algo.act(self.obs, z, self.noise_std)
        next_obs, reward, dones, infos = self.env.step(actions)
        dones = dones.bool()
        terminated = dones & ~infos["time_outs"].bool()
        self.algo.replay.add(
            self.obs, actions, reward, infos["final_obs"], terminated, dones, infos["success"]
        )
        self.assign_groups(dones)
        goals = torch.nn.functional.one_hot(infos["success"], self.num_goals + 1)
        self.stats["goals"] += (goals * dones[:, None]).sum(dim=0)
        self.stats["length"] += (infos["episode_length"] * dones).sum()
        self.obs = next_obs
        self.env_steps += self.num_envs * self.dist.world_size  # every rank steps as many

    def _reset_stats(self) -> None:
        self.stats = {
            "goals": torch.zeros(self.num_goals + 1, device=self.device, dtype=torch.long),
            "length": torch.zeros((), device=self.device, dtype=torch.long),
        }
        self.losses: dict[str, Tensor] = {}
        self.num_updates = 0
        self.log_start = (time.perf_counter(), self.env_steps)

    # ------------------------------------------------------------------ loop
    def done(self) -> bool:
        if 0 < self.max_iterations <= self.iteration:
            return True
        return self.env_steps >= self.cfg.max_env_steps

    def train(self) -> None:
        """Train until the iteration or env-step budget is spent; writes nn/last.pth."""
        cfg = self.cfg
        (self.run_dir / "nn").mkdir(parents=True, exist_ok=True)
        main = self.dist.is_main  # only rank 0 writes
        self.writer = SummaryWriter(str(self.run_dir / "summaries")) if main else None
        total = self.max_iterations if self.max_iterations > 0 else None
        bar = tqdm(
            total=total, initial=self.iteration, unit="it", dynamic_ncols=True, disable=not main
        )
        while not self.dist.broadcast_flag(self.done(), self.device):
            self.iteration += 1
            self.timer.enabled = self.iteration % cfg.log_interval == 0
            with self.timer.phase("collect"):
                self.collect()
            if self.viz is not None:
                self.viz.show(self.env)
            if self.iteration > cfg.warm_up_steps:
                for _ in range(cfg.updates_per_step):
                    with self.timer.phase("update"):
                        losses = self.algo.update()
                    self._accumulate(losses)
            warm_up_over = self.iteration == cfg.warm_up_steps
            periodic = self.iteration > cfg.warm_up_steps and (
                self.iteration % cfg.eval_interval == 0
            )
            if warm_up_over or periodic:
                self.discover_and_evaluate()
            if self.iteration % cfg.log_interval == 0:
                self.log(bar)
            if self.iteration % cfg.save_interval == 0:
                self.save(
                    self.run_dir / "nn" / f"{self.task_name or 'ddiffpg'}_iter{self.iteration}.pth"
                )
            bar.update(1)
        if self.iteration % cfg.log_interval:
            self.log(bar)
        bar.close()
        self.save(self.run_dir / "nn" / "last.pth")
        if self.writer is not None:
            self.writer.close()

    def _accumulate(self, losses: dict[str, Tensor]) -> None:
        for key, value in losses.items():
            if key in self.losses and self.losses[key].shape == value.shape:
                self.losses[key] = self.losses[key] + value
            else:
                self.losses[key] = value.clone()
        self.num_updates += 1

    def discover_and_evaluate(self) -> None:
        """Mode discovery, then (with an eval env) evaluation of z = 0 and every mode's z."""
        start = time.perf_counter()
        found = self.algo.discover_modes()
        cluster_s = time.perf_counter() - start
        if self.first_mode_steps is None and self.algo.num_groups > 1:
            self.first_mode_steps = self.env_steps
        self.assign_groups(torch.ones(self.num_envs, dtype=torch.bool, device=self.device))
        if not self.dist.is_main:
            return
        assert self.writer is not None
        step = self.env_steps
        self.writer.add_scalar("modes/num_modes", self.algo.num_groups - 1, step)
        self.writer.add_scalar("time/clustering_s", cluster_s, step)
        self.writer.add_scalar("modes/evicted", int(found.evict_ids.numel()), step)
        self.writer.add_scalar("coverage/cells_visited", self.coverage(), step)
        if self.eval_env is None:
            return
        result = self.evaluate()
        for key, value in result.items():
            self.writer.add_scalar(f"eval/{key}", value, step)
        if self.viz is not None:  # eval video, mode atlas
            self.viz.publish(self.algo, self.eval_env, result, self.iteration, self.writer, step)

    def evaluate(self) -> dict[str, float]:
        """One episode per eval env; env j plays mode j mod (K + 1) (0: z = 0), no noise."""
        assert self.eval_env is not None
        num_eval = self.eval_env.reset().shape[0]
        choices = [0, *self.algo.mode_ids]
        modes = torch.tensor([choices[j % len(choices)] for j in range(num_eval)])
        z = torch.stack([self.algo.mode_embedding(m) for m in modes.tolist()])
        recorder = self.viz.recorder(self.eval_env, self.iteration) if self.viz else None
        result = run_episodes(
            self.algo, self.eval_env, z, self.max_episode_length, on_step=recorder
        )
        table = success_table(result["success"], modes, self.num_goals)
        table["episode_length"] = float(result["length"].float().mean())
        return table

    def coverage(self) -> int:
        """Distinct cells (of `coverage_cell` metres) visited by the stored mode-feature paths."""
        cell = float(self.info.get("coverage_cell", 1.0))
        replay = self.algo.replay
        steps = torch.arange(replay.obs.shape[2], device=self.device)
        stored = (replay.length > 0) & replay.valid
        visited = (steps[None, None, :] <= replay.length[:, :, None]) & stored[:, :, None]
        features = replay.obs[..., : self.algo.mode_feature_dim][visited]
        return int(torch.unique(torch.floor(features / cell), dim=0).shape[0])

    def log(self, bar: tqdm) -> None:
        """Write scalars (the only host syncs of the loop, once per `log_interval`)."""
        self.dist.sum_(self.stats["goals"], self.stats["length"])  # episodes of every rank
        if not self.dist.is_main:
            self.timer.pop()
            self._reset_stats()
            return
        assert self.writer is not None
        step = self.env_steps
        goals = self.stats["goals"].cpu()
        episodes = int(goals.sum())
        elapsed, steps_then = time.perf_counter() - self.log_start[0], self.log_start[1]
        scalars: dict[str, float] = {
            "perf/env_steps_per_s": (step - steps_then) / max(elapsed, 1e-9),
            "perf/iteration": float(self.iteration),
            "modes/num_modes": float(self.algo.num_groups - 1),
            "rollout/exploit_share": self.exploit_share(),
        }
        if episodes:
            scalars["episode/success_rate"] = float(goals[1:].sum()) / episodes
            scalars["episode/length"] = float(self.stats["length"]) / episodes
            for goal in range(1, self.num_goals + 1):
                scalars[f"episode/success_goal_{goal}"] = float(goals[goal]) / episodes
        for key, value in self.losses.items():
            mean = (value / max(self.num_updates, 1)).cpu()
            if mean.ndim == 0:
                scalars[key] = float(mean)
            else:
                for group, item in enumerate(mean.tolist()):
                    scalars[f"{key}/group_{group}"] = item
        for phase, seconds in self.timer.pop().items():
            scalars[f"time/{phase}_s"] = seconds
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, step)
        bar.set_postfix(
            steps=step,
            modes=self.algo.num_groups - 1,
            success=f"{scalars.get('episode/success_rate', 0.0):.2f}",
        )
        self._reset_stats()

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the run bit-identically."""
        state: dict[str, Any] = {
            "task": self.task_name,
            "obs_dim": self.algo.obs_dim,
            "act_dim": self.algo.act_dim,
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
        }
        for name, env in (("env_state", self.env), ("eval_env_state", self.eval_env)):
            if env is not None and hasattr(env, "get_env_state"):
                state[name] = env.get_env_state()  # type: ignore[union-attr]
        return state

    def save(self, path: Path) -> None:
        """Write a checkpoint (rank 0). Under torchrun every rank first checks that all hold
        the same networks, optimisers and modes; their digests go into `replica_digests`."""
        state = self.state_dict()
        digests = self.dist.check_replicas(state["algo"])
        if self.dist.is_main:
            save_checkpoint({**state, "replica_digests": digests} if digests else state, path)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue a run from `state_dict` output (checked for compatibility first)."""
        self.algo.load_state_dict(state["algo"])
        self.iteration, self.env_steps = state["iteration"], state["env_steps"]
        self.first_mode_steps = state["first_mode_steps"]
        self.obs = state["obs"].to(self.device)
        self.rollout_group = state["rollout_group"].to(self.device)
        self.noise = state["noise"].to(self.device)
        torch.set_rng_state(state["torch_rng"])
        for name, env in (("env_state", self.env), ("eval_env_state", self.eval_env)):
            if name in state and env is not None and hasattr(env, "set_env_state"):
                env.set_env_state(state[name])  # type: ignore[union-attr]
        self._reset_stats()

    def restore(self, path: str | Path) -> None:
        """Resume from a checkpoint file."""
        state = load_checkpoint(
            path,
            expect={
                "task": self.task_name,
                "obs_dim": self.algo.obs_dim,
                "act_dim": self.algo.act_dim,
                "num_envs": self.num_envs,
            },
            expect_config=self.cfg.state_shape(),
        )
        if not self.dist.is_main:  # the checkpoint's replay, envs and random streams are rank 0's
            state = keep_local_state(state, self.state_dict())
        self.load_state_dict(state)
