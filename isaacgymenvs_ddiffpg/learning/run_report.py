"""What a training run reports: which budget ends it, progress lines and scalars with an
estimate of the time left, a clear stop when its updates stay non-finite, and at the end what it
learned (modes, success under z = 0 and each mode's z) and where its checkpoint is."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from isaacgymenvs_ddiffpg.learning.run_log import RunLog, duration, eval_summary
from isaacgymenvs_ddiffpg.learning.run_state import RunState
from isaacgymenvs_ddiffpg.utils.errors import TrainingDivergedError
from isaacgymenvs_ddiffpg.utils.timing import PhaseTimer

HEALTH_COUNTS = ("dropped_transitions", "physics_resets", "nonfinite_actions")


class RunReport(RunState):
    """The Trainer's reports (a base of `Trainer`, which sets the attributes below)."""

    run_log: RunLog
    device: torch.device
    max_iterations: int
    num_goals: int
    stats: dict[str, torch.Tensor]
    losses: dict[str, torch.Tensor]
    num_updates: int
    log_start: tuple[float, int]
    started: tuple[float, int]
    timer: PhaseTimer
    latest_eval: tuple[int, dict[str, float]] | None
    preset: str
    projected: bool

    def exploit_share(self) -> float:
        raise NotImplementedError

    def evaluate(self) -> dict[str, float]:
        raise NotImplementedError

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
        self.say(
            f"{self.task_name or 'task'} with {type(self.cfg).algorithm}: {per_iteration} env "
            f"steps per iteration; the run stops at iteration {end:,} "
            f"({end * per_iteration:,} env steps), set by {budget}."
        )
        if self.cfg.warm_up_steps >= end:
            self.say(
                f"warning: the warm-up of random actions lasts {self.cfg.warm_up_steps:,} "
                f"iterations, past the end of the run at iteration {end:,}, so nothing will be "
                f"learned. Raise the budget (max_iterations=, or train.params.config."
                f"{type(self.cfg).algorithm}.max_env_steps=) or lower warm_up_steps."
            )

    def say(self, message: str) -> None:
        """A line for the user (console and train.log; printed where there is no run log)."""
        if self.run_log.enabled:
            self.run_log.say(message)
        elif self.dist.is_main:
            print(message)

    def log(self) -> None:
        """Write scalars and a progress line (the only host syncs of the loop, once per
        `log_interval`).

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
        step = self.env_steps
        goals = self.stats["goals"].cpu()
        episodes = int(goals.sum())
        elapsed, steps_then = time.perf_counter() - self.log_start[0], self.log_start[1]
        rate = (step - steps_then) / max(elapsed, 1e-9)
        scalars: dict[str, float] = {
            "perf/env_steps_per_s": rate,
            "perf/iteration": float(self.iteration),
            "modes/num_modes": float(len(self.algo.mode_ids)),
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
        self.run_log.scalars(scalars, step)
        self.report_progress(rate)
        self._reset_stats()

    def report_progress(self, rate: float) -> None:
        """The bar's text, a line in train.log, and (once, after the warm-up) how long the
        budget will take at the measured rate, with a word when that is long for a CPU."""
        latest = eval_summary(self.latest_eval[1]) if self.latest_eval else ""
        modes = len(self.algo.mode_ids)
        self.run_log.progress(self.env_steps, self.cfg.max_env_steps, modes, latest)
        end = self.final_iteration()[0]
        left = (end - self.iteration) * self.num_envs * self.dist.world_size / max(rate, 1e-9)
        self.run_log.note(
            f"iteration {self.iteration:,}/{end:,} | {self.env_steps:,} env steps | "
            f"{rate:,.0f} env-steps/s | {modes} modes | "
            + (f"eval at {self.latest_eval[0]:,}: {latest} | " if self.latest_eval else "")
            + f"about {duration(left)} to go"
        )
        if self.iteration > self.cfg.warm_up_steps and not self.projected:
            self.projected = True
            line = (
                f"At {rate:,.0f} env-steps/s after the warm-up, the run needs about "
                f"{duration(left)} more."
            )
            if self.device.type == "cpu" and left > 2 * 3600 and not self.preset.endswith("Small"):
                small = f"train={self.preset}Small" if self.preset else "a Small preset"
                line += (
                    f" On this CPU {small} is sized for it (or run on a GPU: "
                    f"rl_device=cuda:0 sim_device=cuda:0 sim=warp)."
                )
            self.say(line)

    def _diverged(self, updates: int) -> str:
        return (
            f"Training stopped at iteration {self.iteration}: all {updates} learner updates "
            f"since the last log had non-finite losses or gradients and were skipped "
            f"(health/skipped_updates in tensorboard), so the run cannot learn any more. "
            + self._diverged_tail()
        )

    def finish(self, checkpoint: Path) -> None:
        """At the end: evaluate the final policy (unless that was just done) and print what the
        run learned, with where its checkpoint is."""
        if self.eval_env is not None and self.dist.is_main:
            if self.latest_eval is None or self.latest_eval[0] != self.iteration:
                self.run_log.status("evaluating")
                self.latest_eval = (self.iteration, self.evaluate())
                self.run_log.status("")
                table = self.latest_eval[1]
                self.run_log.scalars({f"eval/{k}": v for k, v in table.items()}, self.env_steps)
        if not self.dist.is_main:
            return
        seconds = time.perf_counter() - self.started[0]
        self.say(
            f"Finished at iteration {self.iteration:,} ({self.env_steps:,} env steps) in "
            f"{duration(seconds)}."
        )
        for line in self.summary():
            self.say(line)
        self.say(f"Checkpoint: {checkpoint}")

    def summary(self) -> list[str]:
        """What the run learned: its modes with their trajectories, and the final evaluation."""
        lines = []
        if self.algo.learns_modes:
            replay = self.algo.replay
            stored = replay.closed & replay.valid
            won = stored & (replay.success > 0)
            counts = [
                (mode, int((stored & (replay.group_of == group)).sum()),
                 int((won & (replay.group_of == group)).sum()))
                for group, mode in enumerate(self.algo.mode_ids, start=1)
            ]  # fmt: skip
            described = ", ".join(
                f"mode {m}: {n} trajectories ({w} successful)" for m, n, w in counts
            )
            lines.append(
                f"Modes (group 0 is exploration): {len(counts)}"
                + (f" - {described}" if counts else "")
            )
        if self.latest_eval is not None:
            iteration, table = self.latest_eval
            episodes = self.cfg.eval_envs
            parts = [f"z = 0 (the policy picks): {table['success_z0']:.2f}"]
            parts += [
                f"mode {k}: {table[f'success_mode_{k}']:.2f}"
                for k in self.algo.mode_ids
                if f"success_mode_{k}" in table
            ]
            lines.append(
                f"Success at iteration {iteration:,} ({episodes} episodes each): "
                + "; ".join(parts)
            )
        return lines
