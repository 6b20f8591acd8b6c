"""The interactive viewer: headless fallback, env checks, and the mode/reset keys (fake window)."""

import contextlib

import pytest
import torch

from isaacgymenvs_ddiffpg.rlgames import RlGamesVecEnv
from isaacgymenvs_ddiffpg.tasks import make_task
from isaacgymenvs_ddiffpg.utils.errors import ConfigError
from isaacgymenvs_ddiffpg.viz.viewer import KEY_NEXT_MODE, KEY_RESET, EnvViewer, play_in_viewer


class FakeWindow:
    """Stands in for `mujoco.viewer.launch_passive`'s handle; presses keys on given syncs."""

    def __init__(self, model, data, key_callback, presses=None):
        self.data, self.key_callback = data, key_callback
        self.presses = presses or {}
        self.syncs, self.running = 0, True
        self.shown_x: list[float] = []

    def is_running(self):
        return self.running

    def lock(self):
        return contextlib.nullcontext()

    def sync(self):
        self.syncs += 1
        self.shown_x.append(float(self.data.qpos[0]))
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
