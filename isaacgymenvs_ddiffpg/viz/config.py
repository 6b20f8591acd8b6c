"""Typed settings of what a run shows besides its logs: videos, viewer, mode atlas, replanning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from isaacgymenvs_ddiffpg.utils.errors import ConfigError


@dataclass
class VizConfig:
    """The top-level config keys of the same names (`RootConfig` extends this class), handed
    as one object to the training hooks (`TrainingViz`) and the player (`PlayOptions`).

    Attributes:
        capture_video: record mp4 videos (runs/<experiment>/videos/, and tensorboard).
        capture_video_freq: iterations between recorded episodes while training.
        camera: camera of the videos; `overview` frames the whole maze or workspace, `free` is
            MuJoCo's free camera, or any camera name of the task's model.
        headless: no viewer.
        viewer_env: the env the viewer shows and the videos film.
        replan: in play, compare each mode with and without online replanning.
        replan_window: steps over which replanning measures progress.
        replan_min_progress: distance the mode features must move over the window (null: the
            task's coverage cell, 1 m for the standard mazes).
        mode_atlas: draw the mode atlas (runs/<experiment>/modes/*.png, and tensorboard).
    """

    capture_video: bool = False
    capture_video_freq: int = 500
    camera: str = "overview"
    headless: bool = True
    viewer_env: int = 0
    replan: bool = False
    replan_window: int = 50
    replan_min_progress: float | None = None
    mode_atlas: bool = True

    def check(self, task: Any) -> None:
        """Fail at start-up, not at the first video, on a camera or env the task does not have.

        Args:
            task: the run's task (its `model` and `num_envs` are checked against).

        Raises:
            ConfigError: naming the setting and the values the task allows.
        """
        from isaacgymenvs_ddiffpg.viz.video import resolve_camera
        from isaacgymenvs_ddiffpg.viz.viewer import check_viewer_env

        if self.capture_video:
            resolve_camera(task.model, self.camera)
        if self.capture_video or not self.headless:
            check_viewer_env(self.viewer_env, task.num_envs)
        if self.replan_window < 1:
            raise ConfigError(f"replan_window must be >= 1 step, got {self.replan_window}.")
