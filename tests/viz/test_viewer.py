"""The interactive viewer: headless fallback, env checks, the view it opens on, and the mode/reset
keys and on-screen label (a window that presses keys; `test_viewer_screen.py` opens a real one)."""

import contextlib
import math

import mujoco
import numpy as np
import pytest
import torch

from isaacgymenvs_ddiffpg.rlgames import RlGamesVecEnv
from isaacgymenvs_ddiffpg.tasks import make_task
from isaacgymenvs_ddiffpg.utils.errors import ConfigError
from isaacgymenvs_ddiffpg.viz.viewer import (
    KEY_NEXT_MODE,
    KEY_RESET,
    EnvViewer,
    play_in_viewer,
    task_view,
)
from tests.viz.colors import hue_share, wall_share


class FakeWindow:
    """Stands in for `mujoco.viewer.launch_passive`'s handle; presses keys on given syncs and
    records the options, the camera and the texts it was given."""

    def __init__(self, model, data, key_callback, presses=None, **options):
        self.data, self.key_callback, self.options = data, key_callback, options
        self.presses = presses or {}
        self.syncs, self.running = 0, True
        self.shown_x: list[float] = []
        self.cam = mujoco.MjvCamera()
        self.texts: list = []
        self.shown_texts: list[tuple[str, str]] = []

    def set_texts(self, texts):
        self.texts = texts

    def is_running(self):
        return self.running

    def lock(self):
        return contextlib.nullcontext()

    def sync(self):
        self.syncs += 1
        self.shown_x.append(float(self.data.qpos[0]))
        self.shown_texts.append((self.texts[0][2], self.texts[0][3]))
        if self.syncs in self.presses:
            self.key_callback(self.presses[self.syncs])

    def close(self):
        self.running = False


class ModeSpeed:
    """Moves right at a speed set by the embedding's first entry; records what it was given."""

    def __init__(self):
        self.modes_seen: list[float] = []

    def act(self, obs, mode_embedding, noise_std=None):
        self.modes_seen.append(float(mode_embedding[0, 0]))
        return torch.stack((mode_embedding[:, 0], torch.zeros(obs.shape[0])), dim=1)


def test_without_a_display_it_says_so_and_continues(monkeypatch, capsys) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("platform.system", lambda: "Linux")
    task = make_task("PointMazeV1", num_envs=2)
    assert EnvViewer.open(task, 1) is None
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == ["headless=False: no display found (DISPLAY is not set); continuing headless."]


def test_bad_viewer_env_names_the_valid_range() -> None:
    task = make_task("PointMazeV1", num_envs=2)
    with pytest.raises(
        ConfigError, match=r"viewer_env=2 is not an env of this run: it has envs 0..1"
    ):
        EnvViewer.open(task, 2)


def test_keys_switch_the_mode_and_reset_the_episodes() -> None:
    env = RlGamesVecEnv(make_task("PointMazeV1", num_envs=2, seed=0))
    presses = {3: KEY_NEXT_MODE, 6: KEY_NEXT_MODE, 9: KEY_RESET}
    viewer = EnvViewer(env.task, 1, launch=lambda *a, **k: FakeWindow(*a, **k, presses=presses))
    policy = ModeSpeed()
    speed = {0: 0.0, 1: 0.5, 2: 1.0}
    steps = play_in_viewer(
        viewer, policy, env, [1, 2], lambda m: torch.tensor([speed[m], 0.0]), 1, max_steps=12
    )
    assert steps == 12
    # mode 1 for 3 steps, '.' -> mode 2 for 3 steps, '.' -> back to z = 0 (mode order 0, 1, 2)
    assert policy.modes_seen == [0.5] * 3 + [1.0] * 3 + [0.0] * 6
    window = viewer.handle
    assert window.syncs == 12
    assert window.shown_x[8] > 0.3  # env 1 moved right under modes 1 and 2
    assert abs(window.shown_x[9]) < abs(window.shown_x[8])  # Backspace: a new episode began
    # the window opens without side panels, framed on the task, saying what it plays
    assert window.options == {"show_left_ui": False, "show_right_ui": False}
    assert window.cam.type == mujoco.mjtCamera.mjCAMERA_FREE
    assert window.cam.elevation == -90.0  # the maze from above
    labels = [label for label, _ in window.shown_texts]
    assert labels == ["mode 1"] * 3 + ["mode 2"] * 3 + ["z = 0 (the policy picks)"] * 6
    assert window.shown_texts[8][1] == "step 8" and window.shown_texts[9][1] == "step 0"


def render_view(task, view=None, camera="overview") -> np.ndarray:
    """A 160 x 160 offscreen frame of the task from its overview camera or a free-camera view."""
    data = mujoco.MjData(task.model)
    mujoco.mj_forward(task.model, data)
    with mujoco.Renderer(task.model, 160, 160) as renderer:
        if view is None:
            renderer.update_scene(data, camera=camera)
        else:
            cam = mujoco.MjvCamera()
            view.apply(cam)
            renderer.update_scene(data, camera=cam)
        return renderer.render()


def test_the_view_frames_the_maze_as_the_overview_camera_does() -> None:
    task = make_task("PointMazeV1", num_envs=1)
    view = task_view(task.model)
    x0, x1, y0, y1 = task.maze.bounds
    assert view.lookat == pytest.approx(((x0 + x1) / 2, (y0 + y1) / 2, 0.0), abs=1e-6)
    assert (view.azimuth, view.elevation) == pytest.approx((90.0, -90.0))  # from above, +y up
    # the free camera (45 degrees) stands back so as to frame the overview camera's 55 degrees
    height = 1.1 * max(x1 - x0, y1 - y0)
    framed = height * math.tan(math.radians(55) / 2) / math.tan(math.radians(45) / 2)
    assert view.distance == pytest.approx(framed)
    free, overview = wall_share(render_view(task, view)), wall_share(render_view(task))
    assert free > 0.2 and free == pytest.approx(overview, abs=0.05)


def test_the_view_frames_the_franka_workspace() -> None:
    task = make_task("FrankaReach", num_envs=1)
    view = task_view(task.model)
    assert np.linalg.norm(np.subtract(view.lookat, (0.45, 0.0, 0.35))) < 0.1  # overview target
    assert -45.0 < view.elevation < -15.0 and 0.0 < view.azimuth < 90.0
    r, g, b, _ = task.model.geom_rgba[task.model.geom("cross_vertical").id]
    cross = (float(r), float(g), float(b))
    assert hue_share(render_view(task, view), cross, hue_tol=8) > 0.002  # the cross is in view
