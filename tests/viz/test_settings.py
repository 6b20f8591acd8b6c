"""Bad video, viewer and replanning settings fail at start-up with a message naming the fix; the
top-level keys reach the training hooks and the player as one typed `VizConfig`."""

import dataclasses

import pytest
from hydra import compose, initialize_config_module

from isaacgymenvs_ddiffpg.config import register_configs, viz_config
from isaacgymenvs_ddiffpg.learning.player import PlayOptions
from isaacgymenvs_ddiffpg.tasks import make_task
from isaacgymenvs_ddiffpg.utils.errors import ConfigError
from isaacgymenvs_ddiffpg.viz.config import VizConfig
from isaacgymenvs_ddiffpg.viz.training import TrainingViz


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"capture_video": True, "camera": "top"}, "camera='top' is not a camera"),
        ({"capture_video": True, "viewer_env": 3}, "viewer_env=3 is not an env of this run"),
        ({"headless": False, "viewer_env": -1}, "viewer_env=-1 is not an env of this run"),
        ({"replan_window": 0}, "replan_window must be >= 1"),
    ],
)
def test_bad_settings_are_refused(overrides: dict, message: str) -> None:
    task = make_task("PointMazeV1", num_envs=2)
    with pytest.raises(ConfigError, match=message):
        VizConfig(**overrides).check(task)


def test_top_level_keys_become_one_viz_config() -> None:
    register_configs()
    chosen = ["capture_video=True", "camera=free", "replan_window=7", "mode_atlas=False"]
    with initialize_config_module("isaacgymenvs_ddiffpg.cfg", version_base="1.3"):
        default = compose("config", overrides=["task=PointMazeV1"])
        overridden = compose("config", overrides=["task=PointMazeV1", *chosen])
    assert viz_config(default) == VizConfig()
    expected = VizConfig(capture_video=True, camera="free", replan_window=7, mode_atlas=False)
    assert viz_config(overridden) == expected


def test_settings_reach_the_trainer_and_the_player(tmp_path) -> None:
    task = make_task("FrankaReach", num_envs=1)
    VizConfig(capture_video=True).check(task)  # Franka has `overview` too
    viz = VizConfig(capture_video=True, camera="free", replan_window=7)
    hooks = TrainingViz.from_config(viz, tmp_path, "PointMazeV1")
    assert hooks.video.capture and hooks.video.camera == "free" and hooks.video.freq == 500
    replanning = dataclasses.replace(viz, replan=True, replan_min_progress=0.3)
    options = PlayOptions.from_config(replanning, tmp_path)
    assert options.replan and options.replan_config.window == 7
    assert options.replan_config.resolved_min_progress(coverage_cell=1.0) == 0.3
    assert options.video.camera == "free" and options.run_dir == tmp_path
