"""CPU simulation backend: `num_envs` copies of one MuJoCo model stepped by `mujoco.batch.Batch`."""

from __future__ import annotations

import os
import warnings

import mujoco
import numpy as np
import torch
from mujoco.batch import Batch, SimulationError
from torch import Tensor


def _view(array: np.ndarray) -> Tensor:
    """Zero-copy torch view of a numpy array (derived fields are read-only arrays)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns on read-only arrays
        return torch.from_numpy(array)


class MujocoBatchBackend:
    """`mujoco.batch.Batch` with zero-copy float64 torch views of its state.

    Args:
        model: the compiled model every simulation runs.
        num_envs: number of simulations.
        num_threads: worker threads; 0 uses every core. Results are bit-identical at any count.
    """

    device = "cpu"

    def __init__(self, model: mujoco.MjModel, num_envs: int, num_threads: int = 0) -> None:
        self.model = model
        self.num_envs = num_envs
        self.num_threads = num_threads or (os.cpu_count() or 1)
        self.batch = Batch(model, num_envs, nthread=self.num_threads)
        self.qpos = _view(self.batch.bind("qpos"))
        self.qvel = _view(self.batch.bind("qvel"))
        self.ctrl = _view(self.batch.bind("ctrl"))
        self.failed = torch.zeros(num_envs, dtype=torch.bool)
        self._renderer: mujoco.Renderer | None = None
        self._render_data: mujoco.MjData | None = None
        self.batch.reset()

    def step(self, nstep: int) -> None:
        """Step every simulation; one that MuJoCo raised an error in keeps its state and is
        marked in `failed` until the next step."""
        self.failed.zero_()
        try:
            self.batch.step(nstep=nstep)
        except SimulationError as err:
            self.failed[torch.as_tensor(err.ids, dtype=torch.long)] = True

    def reset(self, env_mask: Tensor) -> None:
        ids = np.flatnonzero(env_mask.cpu().numpy())
        if ids.size:
            self.batch.reset(ids.astype(np.int32))

    def forward(self, env_mask: Tensor | None = None) -> None:
        ids = None if env_mask is None else np.flatnonzero(env_mask.cpu().numpy()).astype(np.int32)
        if ids is None or ids.size:
            self.batch.forward(ids, stage=mujoco.mjtStage.mjSTAGE_POS)

    def get_state(self) -> Tensor:
        """A copy of every simulation's full integration state, (num_envs, nstate) float64."""
        return torch.from_numpy(self.batch.state.copy())

    def set_state(self, state: Tensor) -> None:
        """Restore states from `get_state`; the next step continues bit-identically."""
        self.batch.state[...] = state.numpy()

    def body_xpos(self, name: str) -> Tensor:
        return _view(self.batch.body(name).xpos)

    def site_xpos(self, name: str) -> Tensor:
        return _view(self.batch.site(name).xpos)

    def get_data(self, env_id: int) -> mujoco.MjData:
        """A forwarded copy of one simulation, for rendering or inspection."""
        data = self.batch.get_data(env_id, self._render_data)
        mujoco.mj_forward(self.model, data)
        self._render_data = data
        return data

    def render(self, env_id: int, width: int, height: int, camera: str | int = -1) -> np.ndarray:
        if self._renderer is None or (self._renderer.width, self._renderer.height) != (
            width,
            height,
        ):
            self._renderer = mujoco.Renderer(self.model, height=height, width=width)
        self._renderer.update_scene(self.get_data(env_id), camera=camera)
        return self._renderer.render()
