"""`check_vec_task`: checks a batched task against the VecTask contract, explaining failures."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.tasks.base.vec_task import VecTask


class TaskCheckError(AssertionError):
    """A task broke the VecTask contract; the message says the likely cause."""


def _expect(ok: bool, message: str) -> None:
    if not ok:
        raise TaskCheckError(message)


def _check_tensor(name: str, x: Tensor, shape: tuple[int, ...], dtype: torch.dtype, env) -> None:
    _expect(
        isinstance(x, Tensor),
        f"{name} is a {type(x).__name__}, not a torch.Tensor: tasks return torch tensors on "
        f"rl_device (convert numpy arrays with torch.from_numpy(...).to(device)).",
    )
    _expect(
        tuple(x.shape) == shape,
        f"{name} has shape {tuple(x.shape)}, expected {shape}: check num_envs and the "
        f"obs_dim/act_dim class attributes against what compute_observations writes.",
    )
    _expect(
        x.dtype == dtype,
        f"{name} has dtype {x.dtype}, expected {dtype}: write into the preallocated buffers "
        f"(copy_) instead of replacing them.",
    )
    _expect(
        x.device == env.device,
        f"{name} is on {x.device}, expected rl_device {env.device}: move it with .to(self.device).",
    )


def check_vec_task(
    make_env: Callable[[], VecTask], num_steps: int = 60, seed: int = 0
) -> dict[str, int]:
    """Check a task's spaces, buffers, reset semantics, finiteness and determinism.

    Args:
        make_env: builds a fresh task (called twice, for the determinism check).
        num_steps: random-action steps to run.
        seed: torch seed of the random actions.

    Returns:
        Counts seen during the run: `done`, `terminated`, `truncated`.

    Raises:
        TaskCheckError: with a message naming the broken rule and its likely cause.
    """
    env = make_env()
    n, obs_dim, act_dim = env.num_envs, env.obs_dim, env.act_dim
    _expect(
        env.observation_space.shape == (obs_dim,) and env.action_space.shape == (act_dim,),
        f"spaces {env.observation_space.shape}/{env.action_space.shape} disagree with "
        f"obs_dim={obs_dim}/act_dim={act_dim}: spaces are per-env (single) Boxes.",
    )
    _expect(
        bool((env.action_space.low == -1).all() and (env.action_space.high == 1).all()),
        "the action space must be [-1, 1]: scale actions inside the task (pre_physics_step).",
    )
    _expect(
        0 < env.mode_feature_dim <= obs_dim,
        f"mode_feature_dim={env.mode_feature_dim} must name leading observation dims.",
    )
    obs = env.reset()
    _check_tensor("reset() observation", obs, (n, obs_dim), torch.float32, env)
    _expect(bool((env.progress_buf == 0).all()), "reset() must zero progress_buf.")

    gen = torch.Generator().manual_seed(seed)
    counts = {"done": 0, "terminated": 0, "truncated": 0}
    trace = []
    for _ in range(num_steps):
        actions = (torch.rand(n, act_dim, generator=gen) * 2.4 - 1.2).to(env.device)
        obs, rew, term, trunc, extras = env.step(actions)
        _check_tensor("observation", obs, (n, obs_dim), torch.float32, env)
        _check_tensor("reward", rew, (n,), torch.float32, env)
        _check_tensor("terminated", term, (n,), torch.bool, env)
        _check_tensor("truncated", trunc, (n,), torch.bool, env)
        for key in ("final_obs", "time_outs", "success", "terminated"):
            _expect(key in extras, f"extras lacks {key!r}: VecTask.step fills it; call super().")
        _check_tensor("extras['final_obs']", extras["final_obs"], (n, obs_dim), torch.float32, env)
        _check_tensor("extras['success']", extras["success"], (n,), torch.long, env)
        _expect(
            bool(torch.isfinite(obs).all() and torch.isfinite(extras["final_obs"]).all()),
            "non-finite observation: the simulation diverged (timestep too large, actions not "
            "clamped or scaled too high, or a bad initial state).",
        )
        _expect(bool(torch.isfinite(rew).all()), "non-finite reward.")
        _expect(
            not bool((term & trunc).any()),
            "an env is both terminated and truncated: a goal reached on the last step is "
            "terminal, and truncation must exclude it.",
        )
        _expect(
            bool(((extras["success"] > 0) == term).all()),
            "terminated must equal success > 0 (reaching a goal is the only terminal event).",
        )
        _expect(
            bool((extras["success"] <= env.num_goals).all()),
            f"success id above num_goals={env.num_goals}.",
        )
        done = term | trunc
        _expect(
            bool((env.progress_buf[done] == 0).all()),
            "finished envs must be reset in the same step (progress_buf back to 0).",
        )
        _expect(
            bool((env.progress_buf <= env.max_episode_length).all()),
            "progress_buf ran past max_episode_length: truncation is not being applied.",
        )
        _expect(
            bool(torch.equal(extras["final_obs"][~done], obs[~done])),
            "extras['final_obs'] must equal the returned observation for envs that did not "
            "finish (it is the observation before any reset).",
        )
        counts["done"] += int(done.sum())
        counts["terminated"] += int(term.sum())
        counts["truncated"] += int(trunc.sum())
        trace.append(obs.clone())

    twin = make_env()
    twin.reset()
    gen.manual_seed(seed)
    for step, expected in enumerate(trace):
        actions = (torch.rand(n, act_dim, generator=gen) * 2.4 - 1.2).to(twin.device)
        obs = twin.step(actions)[0]
        _expect(
            bool(torch.equal(obs, expected)),
            f"two tasks built the same way diverged at step {step}: the task is not "
            f"deterministic (unseeded randomness, or state left over between episodes).",
        )
    return counts
