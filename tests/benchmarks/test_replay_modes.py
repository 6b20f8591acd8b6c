"""benchmarks/replay_modes.py: stored successes by route, and which of their clusters are modes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from isaacgymenvs_ddiffpg.learning.trainer import Trainer
from isaacgymenvs_ddiffpg.rlgames import RlGamesVecEnv
from isaacgymenvs_ddiffpg.tasks import make_task
from tests.benchmarks.test_compare_and_update_cost import load
from tests.learning.test_trainer import EASY, tiny_config


def test_replay_modes_reads_back_the_last_discovery_round(tmp_path: Path) -> None:
    """40 iterations on a maze with a goal left and one right of the start, re-clustering at the
    last one: reading the replay back gives the clusters discovery made modes of, and no more."""
    env = RlGamesVecEnv(make_task("PointMazeV1", num_envs=8, env=EASY, seed=0))
    config = tiny_config(cluster_threshold=6.0, warm_up_steps=30, eval_interval=10, min_mode_size=2)
    eval_env = RlGamesVecEnv(make_task("PointMazeV1", num_envs=4, env=EASY, seed=1))
    trainer = Trainer(config, env, tmp_path, "cpu", seed=0, max_iterations=40, eval_env=eval_env)
    trainer.train()
    agent = trainer.algo
    # a name without a route reading of its own: each goal is a route
    out = load("replay_modes").replay_modes(agent, env.task, "two goals", 2)

    assert sum(out["routes"].values()) == out["successes"] > 0
    assert set(out["routes"]) == {"goal 1", "goal 2"}
    assert out["modes"] == len(agent.mode_ids) == 2
    modes = [c for c in out["clusters"] if c["mode"]]
    assert len(modes) == 2
    assert all(c["in_modes"] == c["size"] >= config.min_mode_size for c in modes)
    assert all(c["in_modes"] == 0 for c in out["clusters"] if not c["mode"])
    assert all(sum(c["routes"].values()) == c["size"] for c in out["clusters"])
    outside = sum(out["routes_outside_modes"].values())
    assert outside == out["successes"] - sum(c["size"] for c in modes)


def test_evaluation_scripts_name_a_missing_checkpoint_or_run_config(tmp_path: Path) -> None:
    """A checkpoint that is not there, or one without its run's config.yaml two folders up, is
    one clear line from learn.py and replay_modes.py, not a traceback."""
    env = RlGamesVecEnv(make_task("PointMazeV1", num_envs=4, env=EASY, seed=0))
    Trainer(tiny_config(), env, tmp_path, "cpu", seed=0, max_iterations=2).train()
    checkpoint = tmp_path / "nn" / "last.pth"  # a Trainer alone writes no config.yaml
    assert checkpoint.is_file() and not (tmp_path / "config.yaml").exists()
    repo = Path(__file__).resolve().parents[2]
    # the scripts import the package from this checkout, installed or not
    child_env = {**os.environ, "PYTHONPATH": str(repo)}
    for command in (["learn.py", "--checkpoint"], ["replay_modes.py"]):
        for path, names in ((tmp_path / "none.pth", "does not exist"), (checkpoint, "config.yaml")):
            done = subprocess.run(
                [sys.executable, str(repo / "benchmarks" / command[0]), *command[1:], str(path)],
                capture_output=True,
                text=True,
                env=child_env,
            )
            assert done.returncode == 1, done.stderr
            assert names in done.stderr and "Traceback" not in done.stderr
    assert checkpoint.is_file()  # nothing on disk was touched
