"""Learning test of DDiffPGSmall on PointMazeV1 (32 envs, the shipped settings), `slow`.

As a user runs it: `python train.py task=PointMazeV1 train=DDiffPGSmall num_envs=64` for the
task's 160,000 env steps, then `test=True mode=all`, for three seeds at once (about 12 minutes
on 2 idle cores). What one seed learns depends on the floats of its machine's CPU kernels, so
the test asserts what holds across seeds, by majority:
- in most seeds every learned mode plays one route (above or below the wall) with >= 90%
  success, that route in >= 90% of its successful episodes;
- in most seeds exploration found both routes and mode discovery made them separate modes,
  each >= 80% pure in the checkpoint's replay.
The per-seed outcomes are printed in the assertion message; `benchmarks/learn.py --seeds`
measures the same over more seeds.

Route of a successful path: the side of the wall (y > 0 above, y < 0 below) on which it crosses
the wall's column, -6 < x < -2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from isaacgymenvs_ddiffpg.learning.checkpoint import load_checkpoint

NUM_ENVS = 64
SEEDS = (0, 1, 2)
REPO = Path(__file__).resolve().parents[2]


def route_of(path: torch.Tensor | np.ndarray) -> int:
    """+1 above the wall, -1 below, 0 if the (T, 2) xy path never enters the wall's column."""
    path = torch.as_tensor(path)
    in_column = (path[:, 0] > -6.0) & (path[:, 0] < -2.0)
    if not bool(in_column.any()):
        return 0
    return 1 if float(path[in_column, 1].mean()) > 0 else -1


def train_py(cwd: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(REPO / "train.py"), *args, "num_threads=1"]
    command.append("+train.params.torch_threads=1")
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def wait_all(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        _, stderr = process.communicate()
        assert process.returncode == 0, stderr[-3000:]


def replay_routes(checkpoint: Path) -> dict[int, list[int]]:
    """Group -> routes of the successful trajectories the checkpoint's replay labels with it."""
    replay = load_checkpoint(checkpoint)["algo"]["replay"]
    kept = replay["closed"] & replay["valid"] & (replay["success"] > 0)
    routes: dict[int, list[int]] = {}
    for env_index, slot in kept.nonzero().tolist():
        length = int(replay["length"][env_index, slot])
        path = replay["obs"][env_index, slot, : length + 1, :2]
        routes.setdefault(int(replay["group_of"][env_index, slot]), []).append(route_of(path))
    return routes


def played_modes(episodes_file: Path) -> dict[int, dict[str, float]]:
    """Played mode (>= 1) -> success, and its successful episodes above and below the wall."""
    episodes = np.load(episodes_file)
    mode, goal, length, path = (episodes[k] for k in ("mode", "goal", "length", "path"))
    table = {}
    for k in sorted(set(mode.tolist()) - {0}):
        played = np.flatnonzero(mode == k)
        sides = [route_of(path[i, : length[i] + 1]) for i in played if goal[i] > 0]
        table[int(k)] = {
            "success": float((goal[played] > 0).mean()),
            "above": sides.count(1),
            "below": sides.count(-1),
        }
    return table


def plays_own_route(mode: dict[str, float]) -> bool:
    main = max(mode["above"], mode["below"])
    return mode["success"] >= 0.9 and main >= 0.9 * (mode["above"] + mode["below"])


@pytest.mark.slow
def test_pointmaze_modes_play_their_routes_in_most_seeds(tmp_path: Path) -> None:
    common = ("task=PointMazeV1", "train=DDiffPGSmall")
    runs = [(f"seed={seed}", f"num_envs={NUM_ENVS}", f"experiment=s{seed}") for seed in SEEDS]
    wait_all([train_py(tmp_path, *common, *run) for run in runs])
    wait_all(
        [
            train_py(
                tmp_path,
                *common,
                f"seed={seed}",
                "num_envs=40",
                "test=True",
                "mode=all",
                f"checkpoint=runs/s{seed}/nn/last.pth",
            )
            for seed in SEEDS
        ]
    )

    outcome = {}
    for seed in SEEDS:
        run = tmp_path / "runs" / f"s{seed}"
        (play,) = (run / "play").iterdir()
        routes = replay_routes(run / "nn" / "last.pth")
        pure = [sum(r) / len(r) for g, r in routes.items() if g > 0]
        modes = played_modes(play / "episodes.npz")
        replay = {str(g): {"above": r.count(1), "below": r.count(-1)} for g, r in routes.items()}
        outcome[seed] = {
            "replay": replay,
            "played": modes,
            "modes_play_routes": bool(modes) and all(plays_own_route(m) for m in modes.values()),
            "both_routes_are_modes": any(p >= 0.8 for p in pure) and any(p <= -0.8 for p in pure),
        }
    report = json.dumps(outcome)
    majority = len(SEEDS) // 2 + 1
    assert sum(o["modes_play_routes"] for o in outcome.values()) >= majority, report
    assert sum(o["both_routes_are_modes"] for o in outcome.values()) >= majority, report
