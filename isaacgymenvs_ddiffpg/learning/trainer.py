"""The training loop of every agent: rollouts, updates, mode discovery, evaluation, logs, saves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from isaacgymenvs_ddiffpg.learning.agents import Agent, config_to_dict, make_agent
from isaacgymenvs_ddiffpg.learning.checkpoint import (
    check_compatible,
    link_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from isaacgymenvs_ddiffpg.learning.config import AgentConfig
from isaacgymenvs_ddiffpg.learning.core import EnvSpec
from isaacgymenvs_ddiffpg.learning.distributed import Distributed, keep_local_state
from isaacgymenvs_ddiffpg.learning.evaluation import VecEnv, run_episodes, success_table
from isaacgymenvs_ddiffpg.utils.errors import (
    CheckpointError,
    TrainingDivergedError,
    TrainingInterrupted,
)
from isaacgymenvs_ddiffpg.utils.signals import StopRequest
from isaacgymenvs_ddiffpg.utils.timing import PhaseTimer
from isaacgymenvs_ddiffpg.viz.training import TrainingViz

HEALTH_COUNTS = ("dropped_transitions", "physics_resets", "nonfinite_actions")


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
        self.last_good: Path | None = None  # the newest checkpoint written (finite weights)

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
        broken = infos.get("physics_reset")
        dropped = self.algo.replay.add(
            self.obs,
            actions,
            reward,
            infos["final_obs"],
            terminated,
            dones,
            infos["success"],
            broken,
        )
        self.assign_groups(dones)
        goals = torch.nn.functional.one_hot(infos["success"], self.num_goals + 1)
        self.stats["goals"] += (goals * dones[:, None]).sum(dim=0)
        self.stats["length"] += (infos["episode_length"] * dones).sum()
        self.stats["dropped_transitions"] += dropped.sum()
        if broken is not None:
            self.stats["physics_resets"] += broken.sum()
        if "nonfinite_actions" in infos:
            self.stats["nonfinite_actions"] += infos["nonfinite_actions"].sum()
        self.obs = next_obs
        self.env_steps += self.num_envs * self.dist.world_size  # every rank steps as many

    def _reset_stats(self) -> None:
        count = {"device": self.device, "dtype": torch.long}
        self.stats = {
            "goals": torch.zeros(self.num_goals + 1, **count),
            "length": torch.zeros((), **count),
            "dropped_transitions": torch.zeros((), **count),
            "physics_resets": torch.zeros((), **count),
            "nonfinite_actions": torch.zeros((), **count),
        }
        self.losses: dict[str, Tensor] = {}
        self.num_updates = 0
        self.log_start = (time.perf_counter(), self.env_steps)

    # ------------------------------------------------------------------ loop
    def done(self) -> bool:
        if 0 < self.max_iterations <= self.iteration:
            return True
        return self.env_steps >= self.cfg.max_env_steps

    def final_iteration(self) -> tuple[int, str]:
        """The iteration at which the run will stop, and which budget stops it there."""
        per_iteration = self.num_envs * self.dist.world_size
        left = max(self.cfg.max_env_steps - self.env_steps, 0)
        by_steps = self.iteration + -(-left // per_iteration)
        if 0 < self.max_iterations < by_steps:
            return self.max_iterations, f"max_iterations={self.max_iterations}"
        return by_steps, f"max_env_steps={self.cfg.max_env_steps:,}"

    def announce(self) -> None:
        """Say which budget ends the run and when, and warn when the warm-up outlasts it."""
        end, budget = self.final_iteration()
        per_iteration = self.num_envs * self.dist.world_size
        print(
            f"{self.task_name or 'task'} with {type(self.cfg).algorithm}: {per_iteration} env "
            f"steps per iteration; the run stops at iteration {end:,} "
            f"({end * per_iteration:,} env steps), set by {budget}."
        )
        if self.cfg.warm_up_steps >= end:
            print(
                f"warning: the warm-up of random actions lasts {self.cfg.warm_up_steps:,} "
                f"iterations, past the end of the run at iteration {end:,}, so nothing will be "
                f"learned. Raise the budget (max_iterations=, or train.params.config."
                f"{type(self.cfg).algorithm}.max_env_steps=) or lower warm_up_steps."
            )

    def train(self) -> None:
        """Train until the iteration or env-step budget is spent; writes nn/last.pth.

        A stop signal (Ctrl-C, SIGTERM, SLURM's SIGUSR2) ends the current iteration, writes
        nn/last.pth and raises `TrainingInterrupted` (after handing a SIGUSR2 on to the handler
        that was installed before, e.g. submitit's requeue). Updates that stay non-finite raise
        `TrainingDivergedError` at the next log.
        """
        cfg = self.cfg
        (self.run_dir / "nn").mkdir(parents=True, exist_ok=True)
        main = self.dist.is_main  # only rank 0 writes
        self.writer = SummaryWriter(str(self.run_dir / "summaries")) if main else None
        if main:
            self.announce()
        total = self.final_iteration()[0]
        bar = tqdm(
            total=total, initial=self.iteration, unit="it", dynamic_ncols=True, disable=not main
        )
        try:
            with StopRequest() as stop:
                while not self.dist.broadcast_flag(self.done(), self.device):
                    self.iteration += 1
                    self.step_once(bar)
                    if self.dist.broadcast_flag(stop.requested, self.device):
                        path = self.save(self.run_dir / "nn" / "last.pth")
                        bar.close()
                        stop.hand_over()  # SLURM's SIGUSR2: submitit requeues the job
                        raise TrainingInterrupted(stop.signum or 0, str(path))
                if self.iteration % cfg.log_interval:
                    self.log(bar)
                bar.close()
                self.save(self.run_dir / "nn" / "last.pth")
        finally:
            bar.close()
            if self.writer is not None:
                self.writer.close()

    def step_once(self, bar: tqdm) -> None:
        """One iteration: collect, update, discover and evaluate, log and save when due."""
        cfg = self.cfg
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
        periodic = self.iteration > cfg.warm_up_steps and self.iteration % cfg.eval_interval == 0
        if warm_up_over or periodic:
            self.discover_and_evaluate()
        if self.iteration % cfg.log_interval == 0:
            self.log(bar)
        if self.iteration % cfg.save_interval == 0:
            name = f"{self.task_name or 'ddiffpg'}_iter{self.iteration}.pth"
            self.save(self.run_dir / "nn" / name)
        bar.update(1)

    def _accumulate(self, losses: dict[str, Tensor]) -> None:
        """Sum each update's losses and statistics (logged as means, `health/` as counts)."""
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
        """Write scalars (the only host syncs of the loop, once per `log_interval`).

        Raises:
            TrainingDivergedError: every learner update since the last log was skipped as
                non-finite (the same on every rank: gradients are averaged across ranks).
        """
        skipped = self.losses.get("health/skipped_updates")
        if skipped is not None and int(skipped) >= self.num_updates > 0:
            raise TrainingDivergedError(self._diverged(self.num_updates))
        counts = [self.stats[key] for key in HEALTH_COUNTS]
        self.dist.sum_(self.stats["goals"], self.stats["length"], *counts)  # every rank's
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
        for key in HEALTH_COUNTS:
            scalars[f"health/{key}"] = float(self.stats[key])
        for key, value in self.losses.items():
            if key.startswith("health/"):  # counts, not means
                scalars[key] = float(value)
                continue
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

    def _diverged(self, updates: int) -> str:
        return (
            f"Training stopped at iteration {self.iteration}: all {updates} learner updates "
            f"since the last log had non-finite losses or gradients and were skipped "
            f"(health/skipped_updates in tensorboard), so the run cannot learn any more. "
            + self._diverged_tail()
        )

    # ------------------------------------------------------------------ checkpoints
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
