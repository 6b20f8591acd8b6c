"""MuJoCo's interactive viewer on one env of a batched task, with keys to switch mode and reset.

`headless=False` opens it on a machine with a display, framed on the task (its `overview`
camera's view), without MuJoCo's side panels, with what is played written at the top left;
without a display, `EnvViewer.open` says so in one line and returns None, and the run continues
headless.
"""

from __future__ import annotations

import math
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np
import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.utils.errors import ConfigError
from isaacgymenvs_ddiffpg.viz.video import mode_label

KEY_NEXT_MODE = ord(".")  # GLFW key code of "."; MuJoCo's own shortcuts leave it free
KEY_RESET = 259  # GLFW_KEY_BACKSPACE, MuJoCo's reset key: it also restarts the episodes here
KEYS_HELP = "viewer keys: '.' plays the next mode, Backspace resets the episodes"
OVERVIEW_CAMERA = "overview"
CLOSE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class CameraView:
    """A view of MuJoCo's free camera: what it looks at, from how far, from which direction.

    Attributes:
        lookat: (3,) the point at the centre of the view.
        distance: from the camera to `lookat` (m).
        azimuth: direction of the view in the xy plane (degrees; 90 looks along +y).
        elevation: of the view (degrees; -90 looks straight down).
    """

    lookat: tuple[float, float, float]
    distance: float
    azimuth: float
    elevation: float

    def apply(self, cam: Any) -> None:
        """Set a `mujoco.MjvCamera` to this free-camera view."""
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        cam.lookat[:] = self.lookat
        cam.distance, cam.azimuth, cam.elevation = self.distance, self.azimuth, self.elevation


def task_view(model: Any) -> CameraView:
    """The free-camera view that shows what the model's `overview` camera shows (the whole maze
    from above, the Panda's workspace), still movable with the mouse; without such a camera,
    the model's centre from 1.5 extents away, 45 degrees above.

    The view looks along the overview camera's axis at the point of that axis nearest the
    model's centre, from as far as makes the free camera's field of view frame the same width.
    """
    camera = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, OVERVIEW_CAMERA)
    centre = np.asarray(model.stat.center, dtype=float)
    if camera < 0:
        x, y, z = (float(v) for v in centre)
        return CameraView((x, y, z), 1.5 * float(model.stat.extent), 90.0, -45.0)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    position = data.cam_xpos[camera].copy()
    axes = data.cam_xmat[camera].reshape(3, 3)
    forward, up = -axes[:, 2], axes[:, 1]  # a camera looks along its -z, its y is up
    along = max(float(np.dot(centre - position, forward)), 1e-3)
    x, y, z = (float(v) for v in position + along * forward)
    widen = math.tan(math.radians(float(model.cam_fovy[camera])) / 2) / math.tan(
        math.radians(float(model.vis.global_.fovy)) / 2
    )
    level = forward[:2] if np.linalg.norm(forward[:2]) > 1e-6 else up[:2]  # straight down: up
    azimuth = math.degrees(math.atan2(float(level[1]), float(level[0])))
    elevation = math.degrees(math.asin(float(np.clip(forward[2], -1.0, 1.0))))
    return CameraView((x, y, z), along * widen, azimuth, elevation)


def has_display() -> bool:
    """Whether a window can be opened (Linux needs an X11 or Wayland display)."""
    if platform.system() != "Linux":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def check_viewer_env(viewer_env: int, num_envs: int) -> None:
    """Raise a `ConfigError` unless `viewer_env` is an env of the task."""
    if not 0 <= viewer_env < num_envs:
        raise ConfigError(
            f"viewer_env={viewer_env} is not an env of this run: it has envs 0..{num_envs - 1} "
            f"(num_envs={num_envs}). Pass viewer_env=<k> with 0 <= k < {num_envs}."
        )


class EnvViewer:
    """Shows env `env_id` of a `VecTask` in MuJoCo's passive viewer; call `sync` after steps.

    The window opens without MuJoCo's side panels (Tab and Shift+Tab show them), with the free
    camera framed on the task (`task_view`) and `label` at the top left.

    Args:
        task: the batched task (its backend must offer `get_data(env_id)`).
        env_id: the env to show.
        launch: opens the window (MuJoCo's `viewer.launch_passive`; replaceable in tests).
        label: what is shown, written on screen (`set_label` changes it).
    """

    def __init__(
        self,
        task: Any,
        env_id: int,
        launch: Callable[..., Any] | None = None,
        label: str = "",
    ) -> None:
        check_viewer_env(env_id, task.num_envs)
        if launch is None:
            from mujoco import viewer as mujoco_viewer

            launch = mujoco_viewer.launch_passive
        self.task, self.env_id = task, env_id
        self.data = mujoco.MjData(task.model)
        mujoco.mj_copyData(self.data, task.model, task.sim.get_data(env_id))
        self.pending_keys: list[int] = []
        before = set(threading.enumerate())
        self.handle = launch(
            task.model,
            self.data,
            key_callback=self.pending_keys.append,
            show_left_ui=False,
            show_right_ui=False,
        )
        self.window_threads = set(threading.enumerate()) - before  # the viewer's render loop
        with self.handle.lock():
            task_view(task.model).apply(self.handle.cam)
        self.set_label(label or f"env {env_id}")

    @classmethod
    def open(
        cls, task: Any, env_id: int, launch: Callable[..., Any] | None = None, label: str = ""
    ) -> EnvViewer | None:
        """The viewer, or None (after one line saying why) where no window can be opened."""
        check_viewer_env(env_id, task.num_envs)
        if launch is None and not has_display():
            print("headless=False: no display found (DISPLAY is not set); continuing headless.")
            return None
        return cls(task, env_id, launch, label)

    def set_label(self, label: str, detail: str = "") -> None:
        """Write `label` (and `detail` beside it) at the top left of the window."""
        self.label = label
        top_left = mujoco.mjtGridPos.mjGRID_TOPLEFT
        self.handle.set_texts([(mujoco.mjtFontScale.mjFONTSCALE_150, top_left, label, detail)])

    def is_running(self) -> bool:
        return bool(self.handle.is_running())

    def keys(self) -> list[int]:
        """Keys pressed since the last call (GLFW key codes)."""
        pressed, self.pending_keys[:] = list(self.pending_keys), []
        return pressed

    def sync(self) -> bool:
        """Show the env's current state; False once the window was closed."""
        if not self.is_running():
            return False
        source = self.task.sim.get_data(self.env_id)
        with self.handle.lock():
            mujoco.mj_copyData(self.data, self.task.model, source)
        self.handle.sync()
        return True

    def close(self) -> None:
        """Close the window and wait (up to `CLOSE_TIMEOUT_S`) until its render loop has ended:
        GLFW, shut down at exit, must not pull the window from under a frame being drawn."""
        self.handle.close()
        for thread in self.window_threads:
            thread.join(timeout=CLOSE_TIMEOUT_S)


@torch.no_grad()
def play_in_viewer(
    viewer: EnvViewer,
    policy: Any,
    env: Any,
    mode_ids: Sequence[int],
    embedding_of: Callable[[int], Tensor],
    start_mode: int,
    max_steps: int | None = None,
) -> int:
    """Play every env under one mode until the window closes, showing `viewer.env_id`.

    Key '.' switches every env to the next mode in `mode_ids` (0 = z = 0 first); Backspace
    starts new episodes. Runs at the task's real-time rate.

    Args:
        viewer: the open viewer.
        policy: anything with `act(obs, mode_embedding)`.
        env: the vecenv the viewer's task belongs to.
        mode_ids: modes to cycle through.
        embedding_of: mode id -> (embedding_dim,) z.
        start_mode: the mode played first.
        max_steps: stop after this many steps (None: when the window closes).

    Returns:
        The number of steps played.
    """
    order = [0, *[m for m in mode_ids if m != 0]]
    mode = start_mode
    obs = env.reset()
    num_envs = obs.shape[0]
    dt = float(getattr(viewer.task, "dt", 0.0))
    print(f"{KEYS_HELP}; playing mode {mode}")
    steps = episode_step = 0
    while viewer.is_running() and (max_steps is None or steps < max_steps):
        started = time.perf_counter()
        for key in viewer.keys():
            if key == KEY_NEXT_MODE:
                mode = order[(order.index(mode) + 1) % len(order)] if mode in order else 0
                print(f"playing mode {mode}")
            elif key == KEY_RESET:
                obs, episode_step = env.reset(), 0
        viewer.set_label(mode_label(mode), f"step {episode_step}")
        z = embedding_of(mode).expand(num_envs, -1)
        obs, _, dones, _ = env.step(policy.act(obs, z))
        episode_step = 0 if bool(dones[viewer.env_id]) else episode_step + 1
        steps += 1
        if not viewer.sync():
            break
        time.sleep(max(0.0, dt - (time.perf_counter() - started)))
    return steps
