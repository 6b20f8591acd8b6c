"""Env-steps/s of our tasks against raw `mujoco.batch` stepping of the same model; prints JSON.

    python benchmarks/sim_throughput.py                      # AntMazeV1, PointMazeV1 at 64/512/4096
    python benchmarks/sim_throughput.py --tasks FrankaReach --num-envs 512

Both sides step the task's own compiled model with the task's frame skip on the same number of
threads, from the same physics states and with the same controls; the raw side only writes
controls and steps (no observations, rewards or resets). The two are measured in alternating
blocks and the ratio is the median of the per-block ratios, so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
from mujoco.batch import Batch

from isaacgymenvs_ddiffpg.tasks import make_task


def time_task(task, actions: torch.Tensor, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        task.step(actions)
    return time.perf_counter() - start


def time_raw(batch: Batch, controls, frame_skip: int, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        batch.ctrl[:, : controls.shape[1]] = controls  # a task may leave trailing actuators fixed
        batch.step(nstep=frame_skip)
    return time.perf_counter() - start


def measure(name: str, num_envs: int, blocks: int, min_block_s: float) -> dict:
    task = make_task(name, num_envs=num_envs)
    gen = torch.Generator().manual_seed(0)
    actions = torch.rand(num_envs, task.act_dim, generator=gen) * 2 - 1
    batch = Batch(task.model, num_envs, nthread=task.sim.num_threads)
    batch.reset()
    controls = actions.double().numpy()
    # block length: enough steps for min_block_s of task time
    steps = 1
    while time_task(task, actions, steps) < min_block_s / 4:
        steps *= 2
    steps *= 4
    task_s, raw_s, ratios = [], [], []
    for _ in range(blocks):
        start_state = task.sim.get_state().numpy()
        t_task = time_task(task, actions, steps)
        batch.state[...] = start_state  # the raw side steps the same states the task stepped
        t_raw = time_raw(batch, controls, task.frame_skip, steps)
        task_s.append(t_task)
        raw_s.append(t_raw)
        ratios.append(t_raw / t_task)
    env_steps = num_envs * steps
    return {
        "task": name,
        "num_envs": num_envs,
        "frame_skip": task.frame_skip,
        "threads": task.sim.num_threads,
        "task_env_steps_per_s": round(env_steps / statistics.median(task_s)),
        "raw_env_steps_per_s": round(env_steps / statistics.median(raw_s)),
        "raw_physics_steps_per_s": round(env_steps * task.frame_skip / statistics.median(raw_s)),
        "ratio_task_to_raw": round(statistics.median(ratios), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["AntMazeV1", "PointMazeV1"])
    parser.add_argument("--num-envs", nargs="+", type=int, default=[64, 512, 4096])
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--min-block-s", type=float, default=1.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = [
        measure(name, n, args.blocks, args.min_block_s)
        for name in args.tasks
        for n in args.num_envs
    ]
    machine = {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine()}
    print(json.dumps({"benchmark": "sim_throughput", "machine": machine, "results": results}))


if __name__ == "__main__":
    main()
