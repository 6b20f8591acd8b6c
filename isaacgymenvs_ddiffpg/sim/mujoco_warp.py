"""GPU simulation backend: `num_envs` worlds of one MuJoCo model stepped by MuJoCo Warp.

State lives in Warp arrays; `qpos`, `qvel`, `ctrl` and the body/site position views are those
arrays wrapped by `wp.to_torch` (zero copy, float32, on the simulation device), so tasks read
and write them with torch ops and nothing crosses to the host. On CUDA the frame-skip substeps,
the masked reset and the kinematics pass are each captured once in a CUDA graph and replayed on
torch's current stream, so torch's writes (actions, reset states) and Warp's kernels stay in
order without synchronisation. On Warp's CPU device (slow: single-threaded kernels) the same
calls run eagerly; it exists so that CI can test this code path without a GPU.

Buffer overflow: MuJoCo Warp allocates contacts (`nconmax` per world, pooled over all worlds)
and constraint rows (`njmax` per world, hard) up front; when a step needs more, it drops
contacts or constraints and sets a per-world `overflow` bitmask. After every step the bitmask
is OR-ed into a device accumulator (one small torch op, no host sync); the accumulator is read
on the host every `overflow_check_interval` steps (every step on CPU, where reading is free) and
a set bit raises `SimBufferOverflowError` naming the `task.env.warp_buffers` setting to raise.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, cast

import mujoco
import mujoco_warp as mjw
import numpy as np
import torch
import warp as wp
from mujoco_warp import OverflowType
from torch import Tensor

from isaacgymenvs_ddiffpg.sim import SimBufferOverflowError, WarpBufferConfig

_STATE_SIG = int(mujoco.mjtState.mjSTATE_INTEGRATION)
# overflow bits caused by too small buffers -> the setting that sizes that buffer
_OVERFLOW_SETTING = {
    OverflowType.NEFC: ("njmax", "constraint rows per world"),
    OverflowType.NJMAX_NNZ: ("njmax", "non-zeros of the constraint Jacobian (njmax x nv)"),
    OverflowType.BROADPHASE: ("nconmax", "candidate contact pairs (nconmax x num_envs in all)"),
    OverflowType.NARROWPHASE: ("nconmax", "contacts (nconmax x num_envs in all)"),
    OverflowType.CCD: ("nconmax", "convex-collision contacts (nconmax x num_envs in all)"),
}
_BUFFER_BITS = int(sum(_OVERFLOW_SETTING))


class MujocoWarpBackend:
    """MuJoCo Warp worlds with zero-copy float32 torch views of their state.

    Args:
        model: the compiled model every world runs (the same MJCF as the CPU backend).
        num_envs: number of worlds.
        device: "cpu" (Warp's CPU device) or a CUDA device such as "cuda:0".
        buffers: contact and constraint buffer sizes per world.
        overflow_check_interval: steps between host reads of the overflow flags on CUDA.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        num_envs: int,
        device: str = "cpu",
        buffers: WarpBufferConfig | None = None,
        overflow_check_interval: int = 100,
    ) -> None:
        self.model = model
        self.num_envs = num_envs
        self.buffers = buffers or WarpBufferConfig()
        if self.buffers.nconmax < 1 or self.buffers.njmax < 1:
            raise ValueError(
                f"task.env.warp_buffers must be positive, got nconmax={self.buffers.nconmax}, "
                f"njmax={self.buffers.njmax}."
            )
        # no start-up banner and no line per compiled or loaded kernel module
        wp.config.log_level = max(wp.config.log_level, wp.LOG_WARNING)
        wp.init()
        self.wp_device = wp.get_device(device)
        self.device = str(self.wp_device)  # canonical: "cpu" or "cuda:0"
        self.is_cuda = self.wp_device.is_cuda
        self.overflow_check_interval = overflow_check_interval if self.is_cuda else 1
        # on CUDA, Warp work runs on torch's current stream so that it is ordered with torch ops
        self._stream = wp.stream_from_torch(torch.device(self.device)) if self.is_cuda else None
        # MuJoCo Warp never resets a world by itself (a blown-up world shows in its state, see
        # `failed`), and it refuses models that ask for the CPU engine's reset to be disabled.
        autoreset = int(mujoco.mjtDisableBit.mjDSBL_AUTORESET)
        flags = model.opt.disableflags
        model.opt.disableflags = flags & ~autoreset
        try:
            with wp.ScopedDevice(self.wp_device):
                self.wp_model = mjw.put_model(model)
                self.wp_model.opt.warn_overflow = 0  # reported by our check, not kernel prints
                self.data = mjw.make_data(
                    model, nworld=num_envs, nconmax=self.buffers.nconmax, njmax=self.buffers.njmax
                )
        finally:
            model.opt.disableflags = flags
        wp.synchronize_device(self.wp_device)  # built on Warp's stream, used on torch's
        self.qpos = wp.to_torch(self.data.qpos)
        self.qvel = wp.to_torch(self.data.qvel)
        self.ctrl = wp.to_torch(self.data.ctrl)
        self._xpos = wp.to_torch(self.data.xpos)  # (N, nbody, 3)
        self._site_xpos = wp.to_torch(self.data.site_xpos)  # (N, nsite, 3)
        self._overflow = wp.to_torch(self.data.overflow)  # (N,) int32 bitmask, sticky per world
        self._overflow_seen = torch.zeros_like(self._overflow)
        self._steps_since_check = 0
        self._reset_mask = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        self._reset_mask_wp = wp.from_torch(self._reset_mask)
        # MuJoCo Warp raises no per-world errors: a blown-up world shows in its state instead
        self.failed = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        self._graphs: dict[object, wp.Graph] = {}
        self._renderer: mujoco.Renderer | None = None
        self._render_data: mujoco.MjData | None = None
        self.reset(torch.ones(num_envs, dtype=torch.bool, device=self.device))

    # ----------------------------------------------------------------- launching
    def _scope(self) -> AbstractContextManager:
        """Eager Warp launches go to torch's current stream (CUDA) or the CPU device."""
        if self._stream is not None:
            return wp.ScopedStream(self._stream)
        return wp.ScopedDevice(self.wp_device)

    def _run(self, key: object, body: Callable[[], None]) -> None:
        """Run `body` (a fixed sequence of Warp launches): eagerly on CPU; on CUDA captured in
        a graph on first use (keyed by `key`) and replayed on torch's current stream."""
        if not self.is_cuda:
            with self._scope():
                body()
            return
        graph = self._graphs.get(key)
        if graph is None:
            with wp.ScopedCapture(device=self.wp_device) as capture:
                body()
            graph = capture.graph
            assert graph is not None
            self._graphs[key] = graph
        wp.capture_launch(graph, stream=self._stream)

    def _step_body(self, nstep: int) -> Callable[[], None]:
        def body() -> None:
            for _ in range(nstep):
                mjw.step(self.wp_model, self.data)

        return body

    def _reset_body(self) -> None:
        mjw.reset_data(self.wp_model, self.data, reset=self._reset_mask_wp)

    def _kinematics_body(self) -> None:
        mjw.kinematics(self.wp_model, self.data)

    # ----------------------------------------------------------------- SimBackend
    def step(self, nstep: int) -> None:
        """Advance every world by `nstep` substeps; raises `SimBufferOverflowError` (checked every
        `overflow_check_interval` calls on CUDA, every call on CPU) if a buffer overflowed."""
        self._run(("step", nstep), self._step_body(nstep))
        self._overflow_seen.bitwise_or_(self._overflow)
        self._steps_since_check += 1
        if self._steps_since_check >= self.overflow_check_interval:
            self.check_overflow()

    def check_overflow(self) -> None:
        """Raise `SimBufferOverflowError` if any world overflowed a buffer since the last check
        (one host read of the accumulated flags)."""
        steps, self._steps_since_check = self._steps_since_check, 0
        seen = self._overflow_seen.bitwise_and(_BUFFER_BITS)
        if not bool(seen.any()):
            return
        flags = int(np.bitwise_or.reduce(seen.cpu().numpy()))
        worlds = int((seen != 0).sum())
        self._overflow_seen.zero_()
        problems: dict[str, list[str]] = {}
        for bit, (setting, what) in _OVERFLOW_SETTING.items():
            if flags & bit:
                problems.setdefault(setting, []).append(what)
        current = {"nconmax": self.buffers.nconmax, "njmax": self.buffers.njmax}
        lines = [
            f"task.env.warp_buffers.{setting}={current[setting]} is too small: the "
            f"{' and '.join(whats)} overflowed"
            for setting, whats in problems.items()
        ]
        raise SimBufferOverflowError(
            f"MuJoCo Warp ran out of buffer space in {worlds} of {self.num_envs} worlds "
            f"in the {steps} env step{'s' if steps > 1 else ''} since the last check, so "
            f"contacts or constraints were dropped and the physics is wrong. "
            + "; ".join(lines)
            + f". Raise {'it' if len(problems) == 1 else 'them'} in the task's yaml or on the "
            + "command line, e.g. "
            + " ".join(f"task.env.warp_buffers.{s}={2 * current[s]}" for s in problems)
            + "."
        )

    def reset(self, env_mask: Tensor) -> None:
        """Reset the worlds where `env_mask` (num_envs,) bool is true to the model defaults
        (qpos0, zero velocity and controls), on the device."""
        self._reset_mask.copy_(env_mask)
        if not self.is_cuda and not bool(self._reset_mask.any()):
            return  # on CUDA the graph runs regardless: no host sync to find out
        self._run("reset", self._reset_body)

    def forward(self, env_mask: Tensor | None = None) -> None:
        """Recompute body and site positions of every world from `qpos` (the mask is not
        needed: the pass is idempotent); contacts are recomputed by the next `step`."""
        self._run("kinematics", self._kinematics_body)

    def get_state(self) -> Tensor:
        """Every world's full integration state, (num_envs, nstate) float64 on the CPU, in the
        layout of `mujoco.mjtState.mjSTATE_INTEGRATION` (the CPU backend's layout, so a
        checkpoint resumes on either backend)."""
        size = mujoco.mj_stateSize(self.model, _STATE_SIG)
        state = wp.empty((self.num_envs, size), dtype=float, device=self.wp_device)
        with self._scope():
            mjw.get_state(self.wp_model, self.data, cast(Any, state), _STATE_SIG)
        return wp.to_torch(state).to("cpu", torch.float64)

    def set_state(self, state: Tensor) -> None:
        """Restore states from `get_state` of either backend, (num_envs, nstate)."""
        values = state.to(self.device, torch.float32).contiguous()
        with self._scope():
            mjw.set_state(self.wp_model, self.data, cast(Any, wp.from_torch(values)), _STATE_SIG)
            mjw.kinematics(self.wp_model, self.data)

    def body_xpos(self, name: str) -> Tensor:
        return self._xpos[:, self.model.body(name).id]

    def site_xpos(self, name: str) -> Tensor:
        return self._site_xpos[:, self.model.site(name).id]

    def get_data(self, env_id: int) -> mujoco.MjData:
        """A forwarded host copy of one world, for rendering or inspection."""
        data = self._render_data if self._render_data is not None else mujoco.MjData(self.model)
        if self._stream is not None:
            wp.synchronize_stream(self._stream)
        mjw.get_data_into(data, self.model, self.data, world_id=env_id)
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
