"""Train one configuration, then play every learned mode; prints one JSON line.

    python benchmarks/learn.py PointMazeV1 DDiffPGSmall [hydra overrides ...]
    python benchmarks/learn.py AntMazeV1 DDiffPG num_envs=256 max_iterations=2000

Training runs `train.py` exactly as a user would (a subprocess, its own run folder under
runs/bench/); the played evaluation uses a fresh task with `--eval-envs` envs, one episode per
env for z = 0 and for each mode's embedding.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from isaacgymenvs_ddiffpg.learning.player import Player
from isaacgymenvs_ddiffpg.rlgames import RlGamesVecEnv
from isaacgymenvs_ddiffpg.tasks import make_task

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task")
    parser.add_argument("algo")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--eval-envs", type=int, default=40)
    args = parser.parse_args()

    experiment = f"bench/{args.task}_{args.algo}_{time.strftime('%Y%m%d-%H%M%S')}"
    command = [
        sys.executable,
        str(REPO / "train.py"),
        f"task={args.task}",
        f"train={args.algo}",
        f"experiment={experiment}",
        *args.overrides,
    ]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall_clock = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"training failed:\n{done.stderr[-3000:]}")
    checkpoint = Path("runs") / experiment / "nn" / "last.pth"
    env_steps = int(torch.load(checkpoint, map_location="cpu", weights_only=False)["env_steps"])

    player = Player(
        RlGamesVecEnv(make_task(args.task, num_envs=args.eval_envs, seed=12345)),
        "cpu",
        "all",
        task_name=args.task,
    )
    player.restore(checkpoint)
    with contextlib.redirect_stdout(io.StringIO()):
        summary = player.run()
    modes = summary["modes"]
    free = modes["0"]
    result = {
        "task": args.task,
        "algo": args.algo,
        "overrides": args.overrides,
        "env_steps": env_steps,
        "wall_clock_s": round(wall_clock, 1),
        "modes": [int(m) for m in modes if m != "0"],
        "success_rate": free["success_rate"],
        "success_per_goal": {k: v for k, v in free.items() if k.startswith("goal_")},
        "episode_length": round(free["episode_length"], 1),
        "success_per_mode": {m: t["success_rate"] for m, t in modes.items() if m != "0"},
        "goals_per_mode": {
            m: {k: v for k, v in t.items() if k.startswith("goal_")}
            for m, t in modes.items()
            if m != "0"
        },
        "eval_episodes_per_mode": args.eval_envs,
        "run": str(Path("runs") / experiment),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
