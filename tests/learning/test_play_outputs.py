"""What training and playing write besides checkpoints: eval videos, mode atlases, the episode
export, per-mode videos and the replanning comparison (a tiny real run on an easy maze)."""

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from isaacgymenvs_ddiffpg.learning.player import Player, PlayOptions
from isaacgymenvs_ddiffpg.learning.replan import ReplanConfig
from isaacgymenvs_ddiffpg.learning.trainer import Trainer
from isaacgymenvs_ddiffpg.rlgames import RlGamesVecEnv
from isaacgymenvs_ddiffpg.tasks import make_task
from isaacgymenvs_ddiffpg.utils.errors import ConfigError
from isaacgymenvs_ddiffpg.viz.training import TrainingViz
from isaacgymenvs_ddiffpg.viz.video import VideoConfig
from tests.learning.test_trainer import EASY, make_trainer, tiny_config

SMALL_VIDEO = VideoConfig(capture=True, freq=30, width=64, height=48)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 iterations: re-clustering at 30 and 40, each drawing an atlas; one video (due every
    30 iterations). So short a run stores few successes per route: two make a mode."""
    run_dir = tmp_path_factory.mktemp("run")
    env = RlGamesVecEnv(make_task("PointMazeV1", num_envs=8, env=EASY, seed=0))
    eval_env = RlGamesVecEnv(make_task("PointMazeV1", num_envs=4, env=EASY, seed=1))
    viz = TrainingViz(run_dir, "PointMazeV1", SMALL_VIDEO)
    trainer = Trainer(
        tiny_config(cluster_threshold=6.0, warm_up_steps=30, eval_interval=10, min_mode_size=2),
        env,
        run_dir,
        "cpu",
        seed=0,
        max_iterations=40,
        eval_env=eval_env,
        task_name="PointMazeV1",
        viz=viz,
    )
    trainer.train()
    assert trainer.algo.mode_ids == [1, 2], "the easy maze gives a left and a right mode"
    return run_dir


@pytest.mark.slow
def test_training_writes_eval_videos_and_mode_atlases(trained: Path) -> None:
    assert [p.name for p in (trained / "videos").iterdir()] == ["PointMazeV1_mode0_iter30.mp4"]
    frames = np.stack(list(iio.imiter(trained / "videos" / "PointMazeV1_mode0_iter30.mp4")))
    assert frames.shape[1:] == (48, 64, 3) and 2 <= frames.shape[0] <= 40
    atlases = sorted(p.name for p in (trained / "modes").iterdir())
    assert atlases == [
        "PointMazeV1_curves.jsonl",
        "PointMazeV1_curves.png",
        "PointMazeV1_iter30.png",
        "PointMazeV1_iter40.png",
    ]
    events = EventAccumulator(str(trained / "summaries")).Reload()
    assert [e.step for e in events.Images("modes/atlas")] == [30 * 8, 40 * 8]  # env steps
    assert len(events.Images("videos/eval_mode0")) == 1


@pytest.mark.slow
def test_play_writes_videos_episodes_atlas_and_replanning(trained: Path, tmp_path: Path) -> None:
    env = RlGamesVecEnv(make_task("PointMazeV1", num_envs=4, env=EASY, seed=3))
    options = PlayOptions(
        run_dir=tmp_path,
        video=SMALL_VIDEO,
        replan=True,
        replan_config=ReplanConfig(window=10, min_progress=0.5),
    )
    player = Player(env, "cpu", "1", task_name="PointMazeV1", options=options)
    player.restore(trained / "nn" / "last.pth")
    summary = player.run()

    videos = sorted(p.name for p in (tmp_path / "videos").iterdir())
    assert videos == ["PointMazeV1_mode1_iter40.mp4", "PointMazeV1_mode1_replan_iter40.mp4"]
    replan = summary["replan"]
    assert list(replan["start_modes"]) == ["1"] and replan["window"] == 10
    assert replan["success_fixed"] == summary["modes"]["1"]["success_rate"]

    episodes = np.load(tmp_path / "episodes.npz")
    assert episodes["mode"].tolist() == [1] * 8  # mode 1 played, then replanned from mode 1
    assert episodes["replanned"].tolist() == [False] * 4 + [True] * 4
    assert set(episodes["final_mode"][4:].tolist()) <= {1, 2}
    assert str(episodes["task"]) == "PointMazeV1" and int(episodes["checkpoint_iteration"]) == 40
    assert episodes["feature_names"].tolist() == ["x", "y"]
    paths, lengths, goals = episodes["path"], episodes["length"], episodes["goal"]
    assert paths.shape[0] == 8 and paths.shape[2] == 2 and set(goals.tolist()) <= {0, 1, 2}
    for path, length, goal in zip(paths, lengths, goals, strict=True):
        assert np.allclose(path[0], 0.0)  # the reset state (no start noise)
        if goal:  # the last point lies in the goal it reached (3 m radius around x = -/+4)
            assert abs(path[length, 0] - (-4.0 if goal == 1 else 4.0)) < 3.0
    assert (tmp_path / "modes" / "PointMazeV1_play_iter40.png").is_file()
    assert summary["episodes_file"] == str(tmp_path / "episodes.npz")


def test_replanning_refuses_a_checkpoint_without_two_modes(tmp_path: Path) -> None:
    make_trainer(tmp_path / "run", max_iterations=2).train()  # still warming up: no modes
    env = RlGamesVecEnv(make_task("PointMazeV1", num_envs=2, env=EASY, seed=3))
    player = Player(env, "cpu", "0", "PointMazeV1", PlayOptions(replan=True))
    player.restore(tmp_path / "run" / "nn" / "last.pth")
    with pytest.raises(ConfigError, match=r"replan=True .* has 0 mode\(s\) \(\[\]\)"):
        player.run()
