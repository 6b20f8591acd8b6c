"""The training loop of every agent: rollouts, updates, mode discovery, evaluation, logs, saves."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.learning.agents import Agent, make_agent
from isaacgymenvs_ddiffpg.learning.config import AgentConfig
from isaacgymenvs_ddiffpg.learning.core import EnvSpec
from isaacgymenvs_ddiffpg.learning.coverage import Coverage
from isaacgymenvs_ddiffpg.learning.distributed import Distributed
from isaacgymenvs_ddiffpg.learning.evaluation import VecEnv, run_episodes, share
from isaacgymenvs_ddiffpg.learning.run_log import RunLog
from isaacgymenvs_ddiffpg.learning.run_report import RunReport
from isaacgymenvs_ddiffpg.utils.errors import TrainingInterrupted
from isaacgymenvs_ddiffpg.utils.signals import StopRequest
from isaacgymenvs_ddiffpg.utils.timing import PhaseTimer
from isaacgymenvs_ddiffpg.viz.training import TrainingViz


class Trainer(RunReport):
    """Runs an agent on a vecenv (docs/algorithm.md, One iteration): one vector step and the
    learner updates the agent plans for it (`updates_per_step`; DDiffPG's `exploit_...` keys
    after the exploration stop); mode discovery and evaluation every `eval_interval` iterations.

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
        preset: the train config's name (e.g. DDiffPG), named in advice about run times.
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
        preset: str = "",
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
        self.last_good: Path | None = None  # the newest checkpoint written (finite weights)
        self.run_log = RunLog(self.run_dir, enabled=False, total=0, initial=0)  # see train
        self.latest_eval: tuple[int, dict[str, float]] | None = None  # (iteration, table)
        self.preset, self.projected = preset, False
        grid = self.info.get("coverage_grid")
        self.coverage = Coverage(grid, self.device) if grid is not None else None

    # ------------------------------------------------------------------ rollout
    def exploit_share(self) -> float:
        """Share of envs that exploit a mode at this point of the run; the rest explore."""
        return self.algo.exploit_share(self.env_steps, self.first_mode_steps)

    def assign_groups(self, env_mask: Tensor) -> None:
        """Draw exploration or a uniformly chosen mode for the envs in `env_mask` (N,); with
        several exploration groups an exploring env plays one drawn uniformly."""
        gen, n = self.algo.generator, self.num_envs
        exploit = torch.rand(n, device=self.device, generator=gen) < self.exploit_share()
        num_modes = len(self.algo.mode_ids)
        mode = torch.randint(1, max(num_modes, 1) + 1, (n,), device=self.device, generator=gen)
        explore = torch.zeros_like(mode)
        more = self.algo.num_groups - num_modes - 1  # exploration groups after the modes
        if more > 0:
            pick = torch.randint(0, more + 1, (n,), device=self.device, generator=gen)
            explore = torch.where(pick > 0, num_modes + pick, 0)
        new_group = torch.where(exploit & (num_modes > 0), mode, explore)
        self.rollout_group = torch.where(env_mask, new_group, self.rollout_group)

    def explorer_numbers(self) -> Tensor:
        """(N,) long: which exploration group each env plays, from 1 (0: it exploits a mode)."""
        group, num_modes = self.rollout_group, len(self.algo.mode_ids)
        return torch.where(group == 0, 1, torch.where(group > num_modes, group - num_modes + 1, 0))

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
            self.explorer_numbers(),
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
        if self.coverage is not None:
            self.coverage.visit(infos["final_obs"][:, : self.algo.mode_feature_dim])
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

    def train(self) -> None:
        """Train until the iteration or env-step budget is spent; writes nn/last.pth and prints
        what was learned.

        A stop signal (Ctrl-C, SIGTERM, SLURM's SIGUSR2) ends the current iteration, writes
        nn/last.pth and raises `TrainingInterrupted` (after handing a SIGUSR2 on to the handler
        that was installed before, e.g. submitit's requeue). Updates that stay non-finite raise
        `TrainingDivergedError` at the next log.
        """
        (self.run_dir / "nn").mkdir(parents=True, exist_ok=True)
        end = self.final_iteration()[0]
        self.run_log = RunLog(self.run_dir, self.dist.is_main, end, self.iteration)
        self.announce()
        self.started = (time.perf_counter(), self.env_steps)
        try:
            with StopRequest() as stop:
                while not self.dist.broadcast_flag(self.done(), self.device):
                    self.iteration += 1
                    self.step_once()
                    if self.dist.broadcast_flag(stop.requested, self.device):
                        path = self.save(self.run_dir / "nn" / "last.pth")
                        self.run_log.close()
                        stop.hand_over()  # SLURM's SIGUSR2: submitit requeues the job
                        raise TrainingInterrupted(stop.signum or 0, str(path))
                if self.iteration % self.cfg.log_interval:
                    self.log()
                last = self.save(self.run_dir / "nn" / "last.pth")
                self.finish(last)
        finally:
            self.run_log.close()

    def step_once(self) -> None:
        """One iteration: collect, update, discover and evaluate, log and save when due."""
        cfg = self.cfg
        self.timer.enabled = self.iteration % cfg.log_interval == 0
        with self.timer.phase("collect"):
            self.collect()
        if self.viz is not None:
            self.viz.show(self.env)
        if self.iteration > cfg.warm_up_steps:
            for _ in range(self.algo.plan_updates(self.env_steps)):
                with self.timer.phase("update"):
                    losses = self.algo.update()
                self._accumulate(losses)
        warm_up_over = self.iteration == cfg.warm_up_steps
        periodic = self.iteration > cfg.warm_up_steps and self.iteration % cfg.eval_interval == 0
        if warm_up_over or periodic:
            self.discover_and_evaluate()
        if self.iteration % cfg.log_interval == 0:
            self.log()
        if self.iteration % cfg.save_interval == 0:
            name = f"{self.task_name or 'ddiffpg'}_iter{self.iteration}.pth"
            self.save(self.run_dir / "nn" / name)
        self.run_log.advance()

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
        self.run_log.status("clustering")
        start = time.perf_counter()
        found = self.algo.discover_modes()
        cluster_s = time.perf_counter() - start
        if self.first_mode_steps is None and self.algo.mode_ids:
            self.first_mode_steps = self.env_steps
        self.assign_groups(torch.ones(self.num_envs, dtype=torch.bool, device=self.device))
        self.run_log.status("")
        if not self.dist.is_main:
            return
        step = self.env_steps
        scalars = {
            "modes/num_modes": float(len(self.algo.mode_ids)),
            "time/clustering_s": cluster_s,
            "modes/evicted": float(found.evict_ids.numel()),
        }
        if self.coverage is not None:
            scalars["coverage/visited_share"] = self.coverage.share()
        else:
            scalars["coverage/cells_visited"] = float(self.distinct_cells())
        self.run_log.scalars(scalars, step)
        if self.eval_env is None:
            return
        self.run_log.status("evaluating")
        start = time.perf_counter()
        result = self.evaluate()
        self.run_log.status("")
        self.latest_eval = (self.iteration, result)
        self.run_log.scalars({f"eval/{key}": value for key, value in result.items()}, step)
        self.run_log.scalars({"time/evaluation_s": time.perf_counter() - start}, step)
        if self.viz is not None:  # eval video, learning curves, mode atlas
            self.viz.publish(
                self.algo, self.eval_env, result, self.iteration, self.run_log.writer, step
            )

    def evaluate(self) -> dict[str, float]:
        """One episode per eval env under z = 0, then one per eval env under each mode's z; no
        noise. z = 0 and every mode are measured on their own `eval_envs` episodes.

        Returns:
            `success_z0`, `success_goal_<g>` (share of the z = 0 episodes reaching goal g),
            `episode_length` (z = 0), and `success_mode_<k>` for each mode id k.
        """
        assert self.eval_env is not None
        num_eval = self.eval_env.reset().shape[0]
        table: dict[str, float] = {}
        for mode in (0, *self.algo.mode_ids):
            z = self.algo.mode_embedding(mode).expand(num_eval, -1)
            film = self.viz is not None and mode == 0
            recorder = self.viz.recorder(self.eval_env, self.iteration) if film else None  # type: ignore[union-attr]
            result = run_episodes(
                self.algo, self.eval_env, z, self.max_episode_length, on_step=recorder
            )
            success = result["success"].cpu()
            if mode == 0:
                table["success_z0"] = share(success > 0)
                for goal in range(1, self.num_goals + 1):
                    table[f"success_goal_{goal}"] = share(success == goal)
                table["episode_length"] = float(result["length"].float().mean())
            else:
                table[f"success_mode_{mode}"] = share(success > 0)
        return table

    def distinct_cells(self) -> int:
        """Distinct cells (of `coverage_cell` metres) visited by the stored mode-feature paths
        (coverage of a task without a coverage grid)."""
        cell = float(self.info.get("coverage_cell", 1.0))
        replay = self.algo.replay
        steps = torch.arange(replay.obs.shape[2], device=self.device)
        stored = (replay.length > 0) & replay.valid
        visited = (steps[None, None, :] <= replay.length[:, :, None]) & stored[:, :, None]
        features = replay.obs[..., : self.algo.mode_feature_dim][visited]
        return int(torch.unique(torch.floor(features / cell), dim=0).shape[0])

    def extra_state(self) -> dict[str, Any]:
        return {"coverage": self.coverage.state_dict()} if self.coverage is not None else {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if self.coverage is not None and "coverage" in state:
            self.coverage.load_state_dict(state["coverage"])
