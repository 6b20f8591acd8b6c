"""Simulation backends: one class per physics engine behind one interface (`SimBackend`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import mujoco
import numpy as np
from torch import Tensor


@dataclass
class WarpBufferConfig:
    """Per-world buffer sizes of the MuJoCo Warp backend (`task.env.warp_buffers`; unused by
    sim=mujoco, whose buffers grow as needed).

    Attributes:
        nconmax: contacts per world. The contact buffer holds `nconmax * num_envs` contacts shared
            by all worlds, so this bounds the average, not every world.
        njmax: constraint rows per world (contacts take 4 rows each with the pyramidal cone,
            plus joint limits and equalities); a hard limit for every world.
    """

    nconmax: int = 32
    njmax: int = 128


class SimBufferOverflowError(RuntimeError):
    """A simulation needed more contacts or constraint rows than its buffers hold."""


class SimBackend(Protocol):
    """What a task may use of a physics engine.

    All state views are live torch tensors of shape (num_envs, ...), on `device`; writes to
    `qpos`, `qvel` and `ctrl` are the simulations' state at their next call. Derived views
    (body and site positions) are current after `forward`, and one substep behind after `step`.
    """

    model: mujoco.MjModel
    num_envs: int
    device: str
    qpos: Tensor
    qvel: Tensor
    ctrl: Tensor
    failed: Tensor  # (num_envs,) bool: the engine could not run the last `step` of this sim

    def step(self, nstep: int) -> None:
        """Advance every simulation by `nstep` physics substeps (the frame skip)."""
        ...

    def reset(self, env_mask: Tensor) -> None:
        """Reset the simulations where `env_mask` (num_envs,) bool is true to the model defaults."""
        ...

    def forward(self, env_mask: Tensor | None = None) -> None:
        """Recompute derived quantities (positions, contacts) from the current state."""
        ...

    def get_state(self) -> Tensor:
        """A copy of the full physics state of every simulation, (num_envs, state_dim)."""
        ...

    def set_state(self, state: Tensor) -> None:
        """Restore a state from `get_state`."""
        ...

    def body_xpos(self, name: str) -> Tensor:
        """Live (num_envs, 3) world positions of a body."""
        ...

    def site_xpos(self, name: str) -> Tensor:
        """Live (num_envs, 3) world positions of a site."""
        ...

    def render(self, env_id: int, width: int, height: int, camera: str | int = -1) -> np.ndarray:
        """RGB image (height, width, 3) uint8 of one simulation."""
        ...


def make_backend(
    name: str,
    model: mujoco.MjModel,
    num_envs: int,
    device: str,
    num_threads: int,
    warp_buffers: WarpBufferConfig | None = None,
) -> SimBackend:
    """Build the backend called `name` ("mujoco" or "warp") for `model`.

    Args:
        name: "mujoco" (CPU, `mujoco.batch`) or "warp" (MuJoCo Warp, CUDA or Warp's CPU device).
        model: the compiled model.
        num_envs: number of simulations.
        device: where the physics runs (sim=warp only; sim=mujoco always runs on the CPU).
        num_threads: CPU worker threads of sim=mujoco; 0 uses every core.
        warp_buffers: contact and constraint buffer sizes of sim=warp.
    """
    if name == "mujoco":
        from isaacgymenvs_ddiffpg.sim.mujoco_batch import MujocoBatchBackend

        return MujocoBatchBackend(model, num_envs, num_threads=num_threads)
    if name == "warp":
        try:
            from isaacgymenvs_ddiffpg.sim.mujoco_warp import MujocoWarpBackend
        except ImportError as err:
            raise ImportError(
                f"sim=warp needs MuJoCo Warp ({err.name or err} is missing): install the gpu "
                f'extra, pip install -e ".[gpu]", or use sim=mujoco.'
            ) from err
        return MujocoWarpBackend(model, num_envs, device=device, buffers=warp_buffers)
    raise ValueError(f"Unknown simulation backend sim={name!r}; choose one of: mujoco, warp.")
