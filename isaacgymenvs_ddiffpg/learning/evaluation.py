"""Policy evaluation: one episode per env under a given mode embedding per env, no added noise."""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.learning.replan import Replanner


class VecEnv(Protocol):
    """What the agent needs of an environment (the rl-games vecenv 4-tuple with our infos)."""

    def reset(self) -> Tensor: ...

    def step(self, actions: Tensor) -> tuple[Tensor, Tensor, Tensor, dict[str, Any]]: ...

    def get_env_info(self) -> dict[str, Any]: ...


class Policy(Protocol):
    def act(
        self, obs: Tensor, mode_embedding: Tensor, noise_std: Tensor | None = None
    ) -> Tensor: ...


class StepHook(Protocol):
    """Called after every step of `run_episodes` (e.g. to render a video frame)."""

    def __call__(self, step: int, finished: Tensor) -> None: ...


@torch.no_grad()
def run_episodes(
    policy: Policy,
    env: VecEnv,
    mode_embedding: Tensor,
    max_steps: int,
    feature_dim: int = 0,
    replanner: Replanner | None = None,
    on_step: StepHook | None = None,
) -> dict[str, Tensor]:
    """Run every env from a reset until its first episode ends (or `max_steps` pass).

    Args:
        policy: anything with `act(obs, mode_embedding, noise_std)`.
        env: the vecenv (infos must carry `success` and `final_obs`).
        mode_embedding: (N, embedding_dim) z per env (ignored with a `replanner`).
        max_steps: step limit (the task's episode length).
        feature_dim: if > 0, also record the first `feature_dim` observation dims per step.
        replanner: chooses each env's z every step and switches stalled envs' modes (needs
            `feature_dim` > 0).
        on_step: called with (step, finished (N,) bool) after the reset (step 0) and after every
            step.

    Returns:
        `success` (N,) goal id of the first episode (0 = none), `length` (N,), `finished` (N,)
        bool; with `feature_dim`, `paths` (N, max_steps + 1, feature_dim) (rows past an
        episode's end repeat its final observation); with a `replanner`, `final_mode` (N,) the
        mode played at the end and `switches` (N,) the number of mode switches.
    """
    if replanner is not None and feature_dim <= 0:
        raise ValueError("run_episodes: a replanner needs feature_dim > 0 to measure progress")
    obs = env.reset()
    n = obs.shape[0]
    finished = torch.zeros(n, dtype=torch.bool, device=obs.device)
    success = torch.zeros(n, dtype=torch.long, device=obs.device)
    length = torch.zeros(n, dtype=torch.long, device=obs.device)
    paths = [obs[:, :feature_dim].clone()] if feature_dim else []
    if on_step is not None:
        on_step(0, finished)
    for step in range(1, max_steps + 1):
        z = mode_embedding if replanner is None else replanner.mode_embedding
        obs, _, dones, infos = env.step(policy.act(obs, z))
        newly = dones.bool() & ~finished
        success = torch.where(newly, infos["success"], success)
        length = torch.where(newly, step, length)
        if feature_dim:
            current = torch.where(dones.bool()[:, None], infos["final_obs"], obs)[:, :feature_dim]
            paths.append(torch.where(finished[:, None], paths[-1], current))
        finished |= dones.bool()
        if replanner is not None:
            replanner.observe(paths[-1], ~finished)
        if on_step is not None:
            on_step(step, finished)
        if step % 25 == 0 and bool(finished.all()):
            break
    out = {"success": success, "length": torch.where(finished, length, max_steps)}
    out["finished"] = finished
    if feature_dim:
        out["paths"] = torch.stack(paths, dim=1)
    if replanner is not None:
        out["final_mode"] = replanner.current_mode.clone()
        out["switches"] = replanner.switches.clone()
    return out


def share(mask: Tensor) -> float:
    """The share of True in `mask` as an exact ratio of counts (host).

    A float32 mean is not exact: 36 of 40 episodes give 0.89999998, which fails a ">= 0.9"
    test that 36 / 40 = 0.9 passes.
    """
    return int(mask.sum()) / max(mask.numel(), 1)


def success_table(success: Tensor, modes: Tensor, num_goals: int) -> dict[str, float]:
    """Success rate overall, per goal and per mode of a batch of evaluated episodes.

    Args:
        success: (N,) goal ids (0 = none).
        modes: (N,) mode id played in each episode (0 = z = 0).
        num_goals: number of goals of the task.

    Returns:
        `success_rate`, `goal_<k>` (share of episodes reaching goal k), `mode_<m>` (success
        rate of the episodes played under mode m).
    """
    success, modes = success.cpu(), modes.cpu()
    table = {"success_rate": share(success > 0)}
    for goal in range(1, num_goals + 1):
        table[f"goal_{goal}"] = share(success == goal)
    for mode in sorted(set(modes.tolist())):
        played = modes == mode
        table[f"mode_{mode}"] = share(success[played] > 0)
    return table
