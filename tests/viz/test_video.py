"""Offscreen frames, mp4 files and tensorboard videos of real MuJoCo episodes (CPU rendering)."""

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from isaacgymenvs_ddiffpg.learning.evaluation import run_episodes
from isaacgymenvs_ddiffpg.rlgames import RlGamesVecEnv
from isaacgymenvs_ddiffpg.tasks import load_task_config, make_task
from isaacgymenvs_ddiffpg.utils.errors import ConfigError
from isaacgymenvs_ddiffpg.viz.video import (
    EpisodeRecorder,
    VideoConfig,
    add_video,
    mode_label,
    render_frame,
)

SMALL = VideoConfig(width=96, height=64)


class Push:
    """Pushes every env left at full force (reaches PointMazeV1's goal... or a wall)."""

    def act(self, obs, mode_embedding, noise_std=None):
        return torch.tensor([[-1.0, 0.0]]).expand(obs.shape[0], -1)


def test_frame_is_not_blank_and_follows_the_state() -> None:
    task = make_task("PointMazeV1", num_envs=2, seed=0)
    first = render_frame(task, 0, SMALL)
    assert first.shape == (64, 96, 3) and first.dtype == np.uint8
    assert first.std() > 10  # walls, floor and ball, not one colour
    task.sim.qpos[0, :2] = torch.tensor([0.0, 4.0], dtype=torch.float64)  # into the cell above
    moved = render_frame(task, 0, SMALL)
    assert np.abs(moved.astype(int) - first.astype(int)).sum() > 1000


def test_unknown_camera_names_the_cameras_there_are() -> None:
    task = make_task("PointMazeV1", num_envs=1)
    with pytest.raises(ConfigError, match="'overview'.*'free'"):
        render_frame(task, 0, VideoConfig(camera="top", width=32, height=32))
    assert render_frame(task, 0, VideoConfig(camera="free", width=32, height=32)).std() > 0


def test_recorded_episode_decodes_with_its_frame_count_and_size(tmp_path: Path) -> None:
    env_cfg = {**load_task_config("PointMazeV1").env, "episode_length": 12, "start_noise": 0.0}
    env = RlGamesVecEnv(make_task("PointMazeV1", num_envs=2, env=env_cfg, seed=0))
    recorder = EpisodeRecorder(env.task, 1, SMALL)
    result = run_episodes(Push(), env, torch.zeros(2, 1), 12, on_step=recorder)
    assert int(result["length"][1]) == 12 and len(recorder.frames) == 12  # reset + 11 steps
    path = recorder.write(tmp_path / "videos" / "PointMazeV1_mode0_iter0.mp4")
    frames = np.stack(list(iio.imiter(path)))
    assert frames.shape == (12, 64, 96, 3)
    assert recorder.fps == round(1 / env.task.dt)  # real time
    assert np.abs(frames[-1].astype(int) - frames[0].astype(int)).mean() > 0.1  # it moved

    writer = SummaryWriter(str(tmp_path / "summaries"))
    add_video(writer, "videos/eval_mode0", recorder.frames, recorder.fps, step=7)
    writer.close()
    events = EventAccumulator(str(tmp_path / "summaries")).Reload()
    (image,) = events.Images("videos/eval_mode0")
    assert image.step == 7 and (image.width, image.height) == (96, 64)
    assert image.encoded_image_string[:6] == b"GIF89a"


def test_every_frame_says_what_is_played_and_the_step() -> None:
    config = VideoConfig(width=240, height=160)
    task = make_task("PointMazeV1", num_envs=2, seed=0)
    recorder = EpisodeRecorder(task, 1, config, label=mode_label(2))
    assert recorder.label == "mode 2" and EpisodeRecorder(task, 1, config).label == "env 1"
    assert mode_label(0) == "z = 0 (the policy picks)"
    assert mode_label(1, replan=True) == "mode 1, replanning"
    plain = render_frame(task, 1, config)
    recorder(0, torch.zeros(2, dtype=torch.bool))
    recorder(7, torch.zeros(2, dtype=torch.bool))
    first, later = recorder.frames
    changed = np.abs(first.astype(int) - plain.astype(int)).max(axis=-1) > 0
    rows, cols = np.nonzero(changed)
    assert rows.max() < 30 and cols.max() < 160  # only the label box at the top left changed
    white = (first[:30].min(axis=-1) > 200) & (np.ptp(first[:30].astype(int), axis=-1) < 30)
    assert white.sum() > 20  # white text on the dark box
    assert (first[:30] != later[:30]).any()  # "step 0" became "step 7"
    assert (first[30:] == later[30:]).all()
