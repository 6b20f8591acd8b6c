"""Learning test of DDiffPGSmall on PointMazeV1 (32 envs, the shipped settings), `slow`.

As a user runs it: `python train.py task=PointMazeV1 train=DDiffPGSmall num_envs=32` for the
task's 80,000 env steps, then `test=True mode=all` (about 4.5 minutes on 2 idle cores):
- exploration reached the goal around the wall both above and below, and mode discovery put
  the two routes into separate modes (the checkpoint's replay: a mode of paths above the wall
  and one below, each >= 80% pure);
- each route is played by its own mode embedding with >= 90% success.
How soon both routes are found varies with the seed (measured: one seed had both within
38,400 env steps, another only the route above), so only the full budget is asserted.

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

NUM_ENVS = 32
BUDGET_ENV_STEPS = 80_000
REPO = Path(__file__).resolve().parents[2]


def route_of(path: torch.Tensor | np.ndarray) -> int:
    """+1 above the wall, -1 below, 0 if the (T, 2) xy path never enters the wall's column."""
    path = torch.as_tensor(path)
    in_column = (path[:, 0] > -6.0) & (path[:, 0] < -2.0)
    if not bool(in_column.any()):
        return 0
    return 1 if float(path[in_column, 1].mean()) > 0 else -1


def train_py(cwd: Path, *args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(REPO / "train.py"), *args]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_pointmaze_plays_each_route_by_its_mode(tmp_path: Path) -> None:
    common = ("task=PointMazeV1", "train=DDiffPGSmall", "num_threads=1", "seed=3")
    budget = f"train.params.config.ddiffpg.max_env_steps={BUDGET_ENV_STEPS}"
    train_py(tmp_path, *common, f"num_envs={NUM_ENVS}", budget, "experiment=learn")
    play = ("test=True", "mode=all", "checkpoint=runs/learn/nn/last.pth", "experiment=play")
    train_py(tmp_path, *common, "num_envs=40", *play)

    replay = load_checkpoint(tmp_path / "runs" / "learn" / "nn" / "last.pth")["algo"]["replay"]
    kept = replay["closed"] & replay["valid"] & (replay["success"] > 0)
    routes: dict[int, list[int]] = {}
    for env_index, slot in kept.nonzero().tolist():
        length = int(replay["length"][env_index, slot])
        path = replay["obs"][env_index, slot, : length + 1, :2]
        routes.setdefault(int(replay["group_of"][env_index, slot]), []).append(route_of(path))
    found = json.dumps(
        {str(g): {"above": r.count(1), "below": r.count(-1)} for g, r in routes.items()}
    )
    pure = {g: sum(r) / len(r) for g, r in routes.items() if g > 0}
    assert any(v >= 0.8 for v in pure.values()), f"a mode of paths above the wall: {found}"
    assert any(v <= -0.8 for v in pure.values()), f"a mode of paths below the wall: {found}"

    episodes = np.load(tmp_path / "runs" / "play" / "episodes.npz")
    mode, goal, length, path = (episodes[k] for k in ("mode", "goal", "length", "path"))
    table = {}
    for k in sorted(set(mode.tolist())):
        played = np.flatnonzero(mode == k)
        sides = [route_of(path[i, : length[i] + 1]) for i in played if goal[i] > 0]
        table[int(k)] = {
            "success": float((goal[played] > 0).mean()),
            "above": sides.count(1),
            "below": sides.count(-1),
        }
    report = json.dumps(table)
    modes = {k: v for k, v in table.items() if k != 0}
    assert len(modes) >= 2, f"two modes expected: {report}"
    good = [v for v in modes.values() if v["success"] >= 0.9]
    assert any(v["above"] >= 0.9 * (v["above"] + v["below"]) for v in good), report
    assert any(v["below"] >= 0.9 * (v["above"] + v["below"]) for v in good), report
