"""Bad video, viewer and replanning settings fail at start-up with a message naming the fix."""

import pytest

from isaacgymenvs_ddiffpg.learning.player import play_options
from isaacgymenvs_ddiffpg.tasks import make_task
from isaacgymenvs_ddiffpg.utils.errors import ConfigError
from isaacgymenvs_ddiffpg.viz.training import VIZ_KEYS, TrainingViz, check_viz_settings

DEFAULTS = {
    "capture_video": False,
    "capture_video_freq": 500,
    "camera": "overview",
    "headless": True,
    "viewer_env": 0,
    "replan": False,
    "replan_window": 50,
    "replan_min_progress": None,
    "mode_atlas": True,
}


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
        check_viz_settings(task, {**DEFAULTS, **overrides})


def test_settings_reach_the_trainer_and_the_player(tmp_path) -> None:
    assert set(DEFAULTS) == set(VIZ_KEYS)
    task = make_task("FrankaReach", num_envs=1)
    check_viz_settings(task, {**DEFAULTS, "capture_video": True})  # Franka has `overview` too
    settings = {**DEFAULTS, "capture_video": True, "camera": "free", "replan_window": 7}
    viz = TrainingViz.from_settings(settings, tmp_path, "PointMazeV1")
    assert viz.video.capture and viz.video.camera == "free" and viz.video.freq == 500
    options = play_options({**settings, "replan": True, "replan_min_progress": 0.3}, tmp_path)
    assert options.replan and options.replan_config.window == 7
    assert options.replan_config.resolved_min_progress(coverage_cell=1.0) == 0.3
    assert options.video.camera == "free" and options.run_dir == tmp_path
