"""MuJoCo's interactive viewer on one env of a batched task, with keys to switch mode and reset.

`headless=False` opens it on a machine with a display; without one, `EnvViewer.open` says so in
one line and returns None, and the run continues headless.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import mujoco
import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.utils.errors import ConfigError

KEY_NEXT_MODE = ord(".")  # GLFW key code of "."; MuJoCo's own shortcuts leave it free
KEY_RESET = 259  # GLFW_KEY_BACKSPACE, MuJoCo's reset key: it also restarts the episodes here
KEYS_HELP = "viewer keys: '.' plays the next mode, Backspace resets the episodes"


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

    Args:
        task: the batched task (its backend must offer `get_data(env_id)`).
        env_id: the env to show.
        launch: opens the window (MuJoCo's `viewer.launch_passive`; replaceable in tests).
    """

    def __init__(self, task: Any, env_id: int, launch: Callable[..., Any] | None = None) -> None:
        check_viewer_env(env_id, task.num_envs)
        if launch is None:
            from mujoco import viewer as mujoco_viewer

            launch = mujoco_viewer.launch_passive
        self.task, self.env_id = task, env_id
        self.data = mujoco.MjData(task.model)
        self.pending_keys: list[int] = []
        self.handle = launch(task.model, self.data, key_callback=self.pending_keys.append)

    @classmethod
    def open(
        cls, task: Any, env_id: int, launch: Callable[..., Any] | None = None
    ) -> EnvViewer | None:
        """The viewer, or None (after one line saying why) where no window can be opened."""
        check_viewer_env(env_id, task.num_envs)
        if launch is None and not has_display():
            print("headless=False: no display found (DISPLAY is not set); continuing headless.")
            return None
        return cls(task, env_id, launch)

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
        self.handle.close()


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
    steps = 0
    while viewer.is_running() and (max_steps is None or steps < max_steps):
        started = time.perf_counter()
        for key in viewer.keys():
            if key == KEY_NEXT_MODE:
                mode = order[(order.index(mode) + 1) % len(order)] if mode in order else 0
                print(f"playing mode {mode}")
            elif key == KEY_RESET:
                obs = env.reset()
        z = embedding_of(mode).expand(num_envs, -1)
        obs, _, _, _ = env.step(policy.act(obs, z))
        steps += 1
        if not viewer.sync():
            break
        time.sleep(max(0.0, dt - (time.perf_counter() - started)))
    return steps
