"""Env-steps/s of our tasks against raw stepping of the same model, per backend; prints JSON.

    python benchmarks/sim_throughput.py                      # AntMazeV1, PointMazeV1 at 64/512/4096
    python benchmarks/sim_throughput.py --tasks FrankaReach --num-envs 512
    python benchmarks/sim_throughput.py --sims mujoco warp --num-envs 16 64 256  # Warp on the CPU
    python benchmarks/sim_throughput.py --sims warp --sim-device cuda:0 \\
        --num-envs 1024 4096 16384 65536 --ddiffpg-share DDiffPG           # on a GPU

Both sides step the task's own compiled model with the task's frame skip, from the same physics
states and with the same controls; the raw side only writes controls and steps (no observations,
rewards or resets): `mujoco.batch.Batch` on the same threads for sim=mujoco, a second MuJoCo Warp
backend on the same device for sim=warp. The two are measured in alternating blocks and the
ratio is the median of the per-block ratios, so machine noise hits both alike. Backends named
together in `--sims` run one after the other in one process; `warp_over_mujoco` compares their
task env-steps/s at the same N (less protected from noise than the alternating ratios).

`--ddiffpg-share PRESET` also times DDiffPG iterations (one vector step, then the preset's
learner updates; mode discovery excluded) with the task and the learner on `--sim-device`, and
reports the share of an iteration spent in `task.step` (physics, observations, rewards, resets)
and in the physics alone. PRESET is DDiffPG (the paper's sizes) or DDiffPGSmall. Torch runs on
one thread, so the CPU figures do not depend on what else shares the machine's cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from mujoco.batch import Batch
from omegaconf import OmegaConf

from isaacgymenvs_ddiffpg.learning.config import DDiffPGConfig
from isaacgymenvs_ddiffpg.learning.trainer import Trainer
from isaacgymenvs_ddiffpg.rlgames import RlGamesVecEnv
from isaacgymenvs_ddiffpg.sim import make_backend
from isaacgymenvs_ddiffpg.tasks import make_task
from isaacgymenvs_ddiffpg.tasks.base.vec_task import SimConfig, VecTask

TRAIN_CONFIG_DIR = Path(__file__).resolve().parent.parent / "isaacgymenvs_ddiffpg" / "cfg" / "train"


def sync(device: str) -> None:
    """Wait for queued GPU work, so that host timers measure it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], steps: int, device: str) -> float:
    """Seconds for `steps` calls of `fn`, the device drained before and after."""
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return time.perf_counter() - start


class RawStepper:
    """The task's model on a bare backend: writes the controls and steps, nothing else."""

    def __init__(self, task: VecTask, sim: str, device: str) -> None:
        self.task, self.sim = task, sim
        if sim == "mujoco":
            self.batch = Batch(task.model, task.num_envs, nthread=task.sim.num_threads)  # type: ignore[attr-defined]
            self.batch.reset()
        else:
            self.backend = make_backend(
                "warp", task.model, task.num_envs, device, 1, task.cfg.warp_buffers
            )
        self.controls = torch.zeros(task.num_envs, task.act_dim)
        self.host_controls = self.controls.double().numpy()

    def load(self, state: torch.Tensor, actions: torch.Tensor) -> None:
        """Start from `state` (a task's `sim.get_state()`) with controls `actions`."""
        if self.sim == "mujoco":
            self.batch.state[...] = state.numpy()
            self.host_controls = actions.double().numpy()
        else:
            self.backend.set_state(state)
            self.controls = self.controls.to(self.backend.device)
        self.controls.copy_(actions)

    def step(self) -> None:
        act_dim, frame_skip = self.task.act_dim, self.task.frame_skip
        if self.sim == "mujoco":
            self.batch.ctrl[:, :act_dim] = self.host_controls  # trailing actuators stay fixed
            self.batch.step(nstep=frame_skip)
        else:
            self.backend.ctrl[:, :act_dim] = self.controls
            self.backend.step(frame_skip)


def measure(
    name: str, sim: str, device: str, num_envs: int, blocks: int, min_block_s: float
) -> dict:
    """Task and raw env-steps/s of one task, backend and size."""
    task = make_task(name, num_envs=num_envs, sim=SimConfig(sim, device), rl_device=device)
    gen = torch.Generator().manual_seed(0)
    actions = (torch.rand(num_envs, task.act_dim, generator=gen) * 2 - 1).to(device)
    raw = RawStepper(task, sim, device)
    step_task = lambda: task.step(actions)  # noqa: E731
    task.step(actions)  # first call: CUDA graph capture or kernel loading
    raw.load(task.sim.get_state(), actions)
    raw.step()
    steps = 1  # block length: enough steps for min_block_s of task time
    while timed(step_task, steps, device) < min_block_s / 4:
        steps *= 2
    steps *= 4
    task_s, raw_s, ratios = [], [], []
    for _ in range(blocks):
        start_state = task.sim.get_state()
        t_task = timed(step_task, steps, device)
        raw.load(start_state, actions)  # the raw side steps the same states the task stepped
        t_raw = timed(raw.step, steps, device)
        task_s.append(t_task)
        raw_s.append(t_raw)
        ratios.append(t_raw / t_task)
    env_steps = num_envs * steps
    return {
        "task": name,
        "sim": sim,
        "sim_device": device,
        "num_envs": num_envs,
        "frame_skip": task.frame_skip,
        "threads": getattr(task.sim, "num_threads", 1),
        "task_env_steps_per_s": round(env_steps / statistics.median(task_s)),
        "raw_env_steps_per_s": round(env_steps / statistics.median(raw_s)),
        "raw_physics_steps_per_s": round(env_steps * task.frame_skip / statistics.median(raw_s)),
        "ratio_task_to_raw": round(statistics.median(ratios), 3),
    }


def ddiffpg_config(preset: str) -> DDiffPGConfig:
    """The paper's settings (DDiffPG) or the CPU preset's overrides of them (DDiffPGSmall)."""
    overrides: dict = {}
    if preset != "DDiffPG":
        section = OmegaConf.load(TRAIN_CONFIG_DIR / f"{preset}.yaml").params.config.ddiffpg
        overrides = OmegaConf.to_container(section, resolve=True)  # type: ignore[assignment]
    overrides.update(warm_up_steps=2, eval_interval=10**9, eval_envs=1)
    return DDiffPGConfig(**overrides)


def ddiffpg_share(name: str, sim: str, device: str, num_envs: int, preset: str, iters: int) -> dict:
    """Share of DDiffPG iterations (after warm-up, without mode discovery) spent simulating."""
    task = make_task(name, num_envs=num_envs, sim=SimConfig(sim, device), rl_device=device)
    clock = {"task": 0.0, "physics": 0.0}

    def clocked(fn: Callable, key: str) -> Callable:
        def wrapper(*args):
            sync(device)
            start = time.perf_counter()
            out = fn(*args)
            sync(device)
            clock[key] += time.perf_counter() - start
            return out

        return wrapper

    task.step = clocked(task.step, "task")  # type: ignore[method-assign]
    task.sim.step = clocked(task.sim.step, "physics")  # type: ignore[method-assign]
    cfg = ddiffpg_config(preset)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, RlGamesVecEnv(task), Path(run_dir), device, seed=0)

        def iteration() -> None:
            trainer.iteration += 1
            trainer.collect()
            if trainer.iteration > cfg.warm_up_steps:
                for _ in range(cfg.updates_per_step):
                    trainer.algo.update()

        for _ in range(cfg.warm_up_steps + 2):  # fill the replay, compile, warm caches
            iteration()
        clock.update(task=0.0, physics=0.0)
        total = timed(iteration, iters, device)
    return {
        "task": name,
        "sim": sim,
        "sim_device": device,
        "num_envs": num_envs,
        "preset": preset,
        "batch_size": cfg.batch_size,
        "updates_per_step": cfg.updates_per_step,
        "iteration_s": round(total / iters, 4),
        "task_step_share": round(clock["task"] / total, 3),
        "physics_share": round(clock["physics"] / total, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["AntMazeV1", "PointMazeV1"])
    parser.add_argument("--sims", nargs="+", default=["mujoco"], choices=["mujoco", "warp"])
    parser.add_argument("--sim-device", default="cpu", help="cpu or cuda:0 (sim=warp only)")
    parser.add_argument("--num-envs", nargs="+", type=int, default=[64, 512, 4096])
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--min-block-s", type=float, default=1.0)
    parser.add_argument("--ddiffpg-share", choices=["DDiffPG", "DDiffPGSmall"])
    parser.add_argument("--ddiffpg-iters", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    devices = {sim: args.sim_device if sim == "warp" else "cpu" for sim in args.sims}
    results = [
        measure(name, sim, devices[sim], n, args.blocks, args.min_block_s)
        for name in args.tasks
        for n in args.num_envs
        for sim in args.sims
    ]
    rate = {(r["task"], r["num_envs"], r["sim"]): r["task_env_steps_per_s"] for r in results}
    comparison = [
        {"task": t, "num_envs": n, "warp_over_mujoco": round(w / rate[(t, n, "mujoco")], 3)}
        for (t, n, sim), w in rate.items()
        if sim == "warp" and (t, n, "mujoco") in rate
    ]
    shares = [
        ddiffpg_share(name, sim, devices[sim], n, args.ddiffpg_share, args.ddiffpg_iters)
        for name in args.tasks
        for n in args.num_envs
        for sim in args.sims
        if args.ddiffpg_share
    ]
    machine = {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    report = {"benchmark": "sim_throughput", "machine": machine, "results": results}
    if comparison:
        report["comparison"] = comparison
    if shares:
        report["ddiffpg_share"] = shares
    print(json.dumps(report))


if __name__ == "__main__":
    main()
