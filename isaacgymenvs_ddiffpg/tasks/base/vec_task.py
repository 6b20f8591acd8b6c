"""The batched task base: persistent buffers, same-step reset, and the step order of every task."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium
import mujoco
import numpy as np
import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.sim import SimBackend, WarpBufferConfig, make_backend
from isaacgymenvs_ddiffpg.tasks.coverage import CoverageGrid


@dataclass
class SimConfig:
    """Physics settings shared by every task.

    Attributes:
        backend: "mujoco" (CPU, `mujoco.batch`) or "warp" (MuJoCo Warp).
        device: where the physics runs ("cpu" or "cuda:0").
        num_threads: CPU worker threads for `mujoco.batch`; 0 uses every core.
    """

    backend: str = "mujoco"
    device: str = "cpu"
    num_threads: int = 0


@dataclass
class TaskEnvConfig:
    """Settings every task has; each task extends it with its own fields.

    Attributes:
        num_envs: number of parallel environments.
        episode_length: steps before truncation.
        frame_skip: physics substeps per environment step.
        warp_buffers: contact and constraint buffer sizes per world for sim=warp.
    """

    num_envs: int = 64
    episode_length: int = 500
    frame_skip: int = 5
    warp_buffers: WarpBufferConfig = field(default_factory=WarpBufferConfig)


StepResult = tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]

MAX_STATE_VALUE = 1e10  # MuJoCo's mjMAXVAL: a larger qpos or qvel means the simulation blew up


class VecTask:
    """Base of every batched task (the IsaacGymEnvs `VecTask` contract on MuJoCo).

    All buffers live on `device` (the rl device) and are reused every step:
    `obs_buf (N, obs_dim)` float32, `rew_buf (N,)` float32, `reset_buf (N,)` bool (episode ended
    this step), `terminated_buf (N,)` bool, `timeout_buf (N,)` bool, `success_buf (N,)` long
    (goal id, 0 = none), `progress_buf (N,)` long. Actions are (N, act_dim) in [-1, 1]; each task
    scales them. `step` and `reset` return copies, never the live buffers, so a caller may keep
    an observation across steps (as replay buffers do).

    Step order, for every task:
        1. check the actions' shape (N, act_dim); replace non-finite entries by 0 (counted in
           `extras["nonfinite_actions"]`) and clamp to [-1, 1]; `pre_physics_step(actions)`
           scales them and writes controls;
        2. physics: `frame_skip` substeps of the backend;
        3. blow-ups: an env whose state became non-finite or huge (|x| > 1e10, MuJoCo's limit)
           or that the engine could not step is `physics_reset`: its episode ends as truncated,
           with no reward or success (the backends never reset an env by themselves);
        4. `progress_buf += 1`, episode return accumulates below;
        5. `compute_observations()` fills `obs_buf` from the new state;
        6. `compute_reward()` fills `rew_buf`, `success_buf` and `terminated_buf` (goal reached);
        7. truncation: `timeout_buf = (progress_buf >= episode_length) & ~terminated_buf`, or a
           physics reset;
        8. `extras`: `final_obs` (the observation before any reset, every row), `time_outs`,
           `success`, `terminated`, `episode_return` / `episode_length` (valid where done),
           `physics_reset` (N,) bool (the transition is broken: do not learn from it) and
           `nonfinite_actions` (N,) bool;
        9. same-step reset: `reset_idx` on the finished envs, whose `obs_buf` rows become the first
           observation of their next episode.

    Construction order, for every task:
        1. `build_model()` compiles the scene from `cfg`;
        2. the simulation backend is built on it;
        3. `bind()` caches views into the backend and the task's own constants (goals, limits;
           it may set `obs_dim` or `num_goals` when they follow from `cfg`);
        4. the buffers are allocated and every env is reset.
    Subclasses do not override `__init__`.

    Subclasses set `obs_dim`, `act_dim`, `mode_feature_dim` (the leading observation dims used as
    mode features: maze xy, end-effector xyz), `num_goals`, `max_reward` (largest success
    reward), `coverage_cell` (cell size in metres for state-coverage counts) and implement
    `build_model`, `pre_physics_step`, `compute_observations`, `compute_reward` and
    `reset_state` (and `bind` where they need it).
    """

    Config: ClassVar[type[TaskEnvConfig]] = TaskEnvConfig
    # revision of the task's physics and control: checkpoints record it and are refused by a
    # task of another version (a policy learned on other dynamics)
    version: ClassVar[int] = 1
    obs_dim: int
    act_dim: int
    mode_feature_dim: int
    num_goals: int = 1
    max_reward: float = 10.0
    coverage_cell: float = 1.0

    def __init__(
        self,
        cfg: TaskEnvConfig,
        sim_cfg: SimConfig | None = None,
        rl_device: str = "cpu",
        seed: int = 0,
    ) -> None:
        self.cfg = cfg
        self.sim_cfg = sim_cfg or SimConfig()
        self.device = torch.device(rl_device)
        self.num_envs = cfg.num_envs
        self.max_episode_length = cfg.episode_length
        self.frame_skip = cfg.frame_skip
        self.generator = torch.Generator(device=self.device)
        self.seed(seed)

        self.model = self.build_model()
        # A blown-up simulation is ended by `step` as a truncated episode and reset by the task,
        # never silently reset mid-episode by the engine.
        self.model.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_AUTORESET)
        self.sim: SimBackend = make_backend(
            self.sim_cfg.backend,
            self.model,
            self.num_envs,
            self.sim_cfg.device,
            self.sim_cfg.num_threads,
            cfg.warp_buffers,
        )
        self.dt = self.model.opt.timestep * self.frame_skip
        self.bind()

        n, dev = self.num_envs, self.device
        self.obs_buf = torch.zeros(n, self.obs_dim, device=dev)
        self.rew_buf = torch.zeros(n, device=dev)
        self.reset_buf = torch.zeros(n, dtype=torch.bool, device=dev)
        self.terminated_buf = torch.zeros(n, dtype=torch.bool, device=dev)
        self.timeout_buf = torch.zeros(n, dtype=torch.bool, device=dev)
        self.success_buf = torch.zeros(n, dtype=torch.long, device=dev)
        self.progress_buf = torch.zeros(n, dtype=torch.long, device=dev)
        self.return_buf = torch.zeros(n, device=dev)
        self.extras: dict[str, Any] = {}

        self.observation_space = gymnasium.spaces.Box(
            -np.inf, np.inf, (self.obs_dim,), dtype=np.float32
        )
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (self.act_dim,), dtype=np.float32)
        self.reset()

    # ----------------------------------------------------------------- subclass hooks
    def build_model(self) -> mujoco.MjModel:
        """Compile this task's scene."""
        raise NotImplementedError

    def bind(self) -> None:
        """Cache views into `self.sim` and the task's constants (after the backend is built,
        before the buffers and the first reset)."""

    def pre_physics_step(self, actions: Tensor) -> None:
        """Scale `actions` (N, act_dim) in [-1, 1] and write them to `self.sim.ctrl`."""
        raise NotImplementedError

    def compute_observations(self) -> None:
        """Fill `obs_buf` (N, obs_dim) from the simulation state."""
        raise NotImplementedError

    def compute_reward(self) -> None:
        """Fill `rew_buf` (N,), `success_buf` (N,) and `terminated_buf` (N,) from `obs_buf`."""
        raise NotImplementedError

    def reset_state(self, env_mask: Tensor) -> None:
        """Put the simulations in `env_mask` (N,) bool into a fresh initial state."""
        raise NotImplementedError

    # ----------------------------------------------------------------- public API
    def seed(self, seed: int) -> None:
        """Re-seed the task's own random stream (initial-state noise)."""
        self.generator.manual_seed(seed)

    def config_record(self) -> dict[str, Any]:
        """The task's settings that a checkpoint depends on (all of `cfg` but `num_envs` and the
        Warp buffer sizes, which a resumed run may change)."""
        record = dataclasses.asdict(self.cfg)
        record.pop("num_envs")
        record.pop("warp_buffers")
        return record

    def coverage_grid(self) -> CoverageGrid | None:
        """The grid of mode-feature cells the robot can reach, for state coverage (None: the
        task has none; coverage then counts distinct cells visited)."""
        return None

    def mode_features(self, obs: Tensor) -> Tensor:
        """Mode features of observations: (..., obs_dim) -> (..., mode_feature_dim)."""
        return obs[..., : self.mode_feature_dim]

    def reset_idx(self, env_ids: Tensor) -> None:
        """Start new episodes in the envs `env_ids` (long indices or an (N,) bool mask)."""
        if env_ids.dtype != torch.bool:
            mask = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
            mask[env_ids.to(self.device)] = True
            env_ids = mask
        env_ids = env_ids.to(self.device)
        self.reset_state(env_ids)
        self.progress_buf.masked_fill_(env_ids, 0)
        self.return_buf.masked_fill_(env_ids, 0.0)

    def reset(self) -> Tensor:
        """Reset every env; returns the observations (N, obs_dim)."""
        self.reset_idx(torch.ones(self.num_envs, dtype=torch.bool, device=self.device))
        self.compute_observations()
        return self.obs_buf.clone()

    def step(self, actions: Tensor) -> StepResult:
        """Advance every env by one step (order in the class docstring).

        Args:
            actions: (N, act_dim) in [-1, 1].

        Returns:
            obs (N, obs_dim), reward (N,), terminated (N,) bool, truncated (N,) bool, extras.
        """
        actions = self._checked_actions(actions)
        nonfinite = ~torch.isfinite(actions).all(dim=1)
        actions = torch.nan_to_num(actions, nan=0.0).clamp(-1.0, 1.0)
        self.pre_physics_step(actions)
        self.sim.step(self.frame_skip)
        broken = self._blown_up()
        self.progress_buf += 1
        self.compute_observations()
        self.compute_reward()
        self.rew_buf.masked_fill_(broken, 0.0)
        self.success_buf.masked_fill_(broken, 0)
        self.terminated_buf.masked_fill_(broken, False)
        self.return_buf += self.rew_buf
        torch.logical_and(
            self.progress_buf >= self.max_episode_length,
            ~self.terminated_buf,
            out=self.timeout_buf,
        )
        self.timeout_buf |= broken
        torch.logical_or(self.terminated_buf, self.timeout_buf, out=self.reset_buf)
        self.extras = {
            "final_obs": self.obs_buf.clone(),
            "time_outs": self.timeout_buf.clone(),
            "terminated": self.terminated_buf.clone(),
            "success": self.success_buf.clone(),
            "episode_return": self.return_buf.clone(),
            "episode_length": self.progress_buf.clone(),
            "physics_reset": broken,
            "nonfinite_actions": nonfinite,
        }
        self.reset_idx(self.reset_buf)
        self.compute_observations()
        return (
            self.obs_buf.clone(),
            self.rew_buf.clone(),
            self.extras["terminated"],
            self.extras["time_outs"],
            self.extras,
        )

    def _checked_actions(self, actions: Tensor) -> Tensor:
        """`actions` as an (N, act_dim) float tensor on the rl device, or a clear error."""
        if not isinstance(actions, Tensor):
            if isinstance(actions, (list, tuple, np.ndarray)):
                actions = torch.as_tensor(np.asarray(actions, dtype=np.float32))
            else:
                raise TypeError(
                    f"{type(self).__name__}.step takes actions as a torch tensor of shape "
                    f"({self.num_envs}, {self.act_dim}); got {type(actions).__name__}."
                )
        if tuple(actions.shape) != (self.num_envs, self.act_dim):
            raise ValueError(
                f"{type(self).__name__}.step takes actions of shape ({self.num_envs}, "
                f"{self.act_dim}) (num_envs, act_dim); got {tuple(actions.shape)}. Pass one "
                f"row of {self.act_dim} values in [-1, 1] per env; nothing is broadcast."
            )
        return actions.to(self.device, torch.float32)

    def _blown_up(self) -> Tensor:
        """(N,) bool on the rl device: envs whose physics state is no longer finite (or beyond
        MuJoCo's 1e10 limit), or that the engine failed to step (no host sync)."""
        sim = self.sim
        ok = (sim.qpos.abs() <= MAX_STATE_VALUE).all(dim=1)
        ok &= (sim.qvel.abs() <= MAX_STATE_VALUE).all(dim=1)  # NaN compares false: not ok
        return (~ok | sim.failed).to(self.device)

    def get_env_state(self) -> dict[str, Tensor]:
        """Everything needed to continue this task bit-identically (for checkpoints)."""
        return {
            "sim": self.sim.get_state(),
            "obs": self.obs_buf.clone(),
            "progress": self.progress_buf.clone(),
            "episode_return": self.return_buf.clone(),
            "generator": self.generator.get_state(),
        }

    def set_env_state(self, state: dict[str, Tensor]) -> None:
        """Restore a state from `get_env_state` (same task, same num_envs)."""
        if state["obs"].shape != self.obs_buf.shape:
            raise ValueError(
                f"saved task state has {tuple(state['obs'].shape)} observations, this task has "
                f"{tuple(self.obs_buf.shape)}: resume with the same task and num_envs."
            )
        self.sim.set_state(state["sim"])
        self.obs_buf.copy_(state["obs"])
        self.progress_buf.copy_(state["progress"])
        self.return_buf.copy_(state["episode_return"])
        self.generator.set_state(state["generator"])

    def render(
        self, env_id: int = 0, width: int = 320, height: int = 240, camera: str | int = -1
    ) -> np.ndarray:
        """RGB frame (height, width, 3) uint8 of env `env_id`."""
        return self.sim.render(env_id, width, height, camera)

    def close(self) -> None:
        """Release the simulation."""
        self.sim = None  # type: ignore[assignment]
