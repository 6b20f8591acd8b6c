"""Shared logic of the Franka Panda tasks: joint-delta control, observation and reward."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import mujoco
import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.assets import asset_path
from isaacgymenvs_ddiffpg.tasks.base.vec_task import TaskEnvConfig, VecTask
from isaacgymenvs_ddiffpg.tasks.coverage import CoverageGrid, workspace_grid

NUM_ARM_JOINTS = 7
ROBOT_OBS_DIM = 3 + 3 + NUM_ARM_JOINTS  # ee position, ee velocity, arm joint positions

TABLE_POS = (0.3, 0.0, -0.02)  # table top at z = 0, the robot base's plane
TABLE_HALF = (0.7, 0.8, 0.02)
CAMERA_POS = (-0.9, -1.5, 1.5)  # behind the robot's left shoulder, looking at the workspace
CAMERA_TARGET = (0.45, 0.0, 0.35)
SCENE_RGBA = (0.62, 0.5, 0.38, 1.0)
OBSTACLE_RGBA = (0.75, 0.25, 0.2, 1.0)
GOAL_RGBA = (0.2, 0.9, 0.3, 0.35)


@dataclass
class FrankaEnvConfig(TaskEnvConfig):
    """Settings every Franka task has (docs/tasks.md, Franka Panda).

    Attributes:
        action_scale: offset (rad) of a joint's target from its measured position for an
            action of 1.
        init_joint_noise: half-width (rad) of the uniform noise added to each arm joint of the
            `home` keyframe at reset; 0 gives a deterministic start.
        gripper_opening: per-finger opening in metres (0 closed .. 0.04 open), held fixed.
        success_reward: reward for reaching a goal (the episode then terminates).
    """

    num_envs: int = 64
    episode_length: int = 100
    frame_skip: int = 25
    action_scale: float = 0.05
    init_joint_noise: float = 0.0
    gripper_opening: float = 0.04
    success_reward: float = 10.0


def look_at(pos: Sequence[float], target: Sequence[float]) -> list[float]:
    """MuJoCo camera `xyaxes` for a camera at `pos` looking at `target` with the world z up."""
    forward = torch.tensor(target, dtype=torch.float64) - torch.tensor(pos, dtype=torch.float64)
    right = torch.linalg.cross(forward, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    up = torch.linalg.cross(right, forward)
    return [*(right / right.norm()).tolist(), *(up / up.norm()).tolist()]


def add_box(
    body: mujoco.MjsBody,
    name: str,
    pos: Sequence[float],
    half: Sequence[float],
    rgba: Sequence[float] = SCENE_RGBA,
    collide: bool = True,
) -> mujoco.MjsGeom:
    """Add a box geom to `body`: a scene object touching the robot, or a visual-only marker."""
    bit = 1 if collide else 0
    return body.add_geom(
        name=name,
        type=mujoco.mjtGeom.mjGEOM_BOX,
        pos=list(pos),
        size=list(half),
        rgba=list(rgba),
        contype=bit,
        conaffinity=bit,
    )


def add_goal_marker(spec: mujoco.MjSpec, name: str, pos: Sequence[float], radius: float) -> None:
    """A visual-only sphere showing a success region."""
    spec.worldbody.add_geom(
        name=name,
        type=mujoco.mjtGeom.mjGEOM_SPHERE,
        pos=list(pos),
        size=[radius, 0, 0],
        rgba=list(GOAL_RGBA),
        contype=0,
        conaffinity=0,
    )


ConfigT = TypeVar("ConfigT", bound=FrankaEnvConfig)


class FrankaTask(VecTask, Generic[ConfigT]):
    """The Panda arm with joint-position-delta control; subclasses add their scene and goals.

    Action (7,) in [-1, 1]: each arm joint's position target is its measured position plus
    `action * action_scale` rad (clamped to the joint range), and the position actuators track
    it over the step; the fingers hold `gripper_opening`. The target is a function of the
    observation and the action alone, so pushing against an obstacle stores nothing: the next
    action starts again from where the arm is. Observation: end-effector position (3), its mean
    velocity over the last step (3), the 7 arm joint positions (`ROBOT_OBS_DIM` = 13 in all),
    then the task observations. The first three dims (the end-effector path) are the mode
    features. Reward: `success_reward` on the step a goal is reached, which ends the episode; 0
    otherwise.

    Subclasses set `obs_dim`, implement `add_scene` and `goal_id`, and may override
    `bind_scene`, `task_observations`, `reset_scene` and `ee_site` (the site whose position is the
    end effector).
    """

    Config = FrankaEnvConfig
    cfg: ConfigT
    version = 2  # 2: targets offset the measured joints, stiff contacts (1: accumulated targets)
    act_dim = NUM_ARM_JOINTS
    mode_feature_dim = 3
    coverage_cell = 0.05  # m: state coverage counts 5 cm cells of the end effector's space
    ee_site = "ee_site"

    # ----------------------------------------------------------------- subclass hooks
    def add_scene(self, spec: mujoco.MjSpec) -> None:
        """Add this task's objects, obstacles and goal markers to the robot's spec."""
        raise NotImplementedError

    def bind_scene(self) -> None:
        """Cache addresses and views of the scene's objects and the task's constants."""

    def task_observations(self, out: Tensor) -> None:
        """Write the task observations into `out`, the (N, obs_dim - 13) tail of `obs_buf`."""

    def goal_id(self) -> Tensor:
        """The goal each env is in, (N,) long: 0 = none, k = goal k (lowest id if several)."""
        raise NotImplementedError

    def reset_scene(self, env_mask: Tensor) -> None:
        """Extra reset of the scene in `env_mask` (N,) bool, after the robot was placed."""

    def coverage_grid(self) -> CoverageGrid:
        """5 cm cells of the space above the table that the end effector reaches with some
        joint configuration (sampled once per task)."""
        if self._coverage is None:
            self._coverage = workspace_grid(self.model, self.ee_site, NUM_ARM_JOINTS)
        return self._coverage

    # ----------------------------------------------------------------- VecTask hooks
    def build_model(self) -> mujoco.MjModel:
        spec = mujoco.MjSpec.from_file(str(asset_path("panda.xml")))
        spec.worldbody.add_camera(
            name="overview", pos=CAMERA_POS, xyaxes=look_at(CAMERA_POS, CAMERA_TARGET)
        )
        add_box(spec.worldbody, "table", TABLE_POS, TABLE_HALF)
        self.add_scene(spec)
        return spec.compile()

    def bind(self) -> None:
        sim, model = self.sim, self.model
        home = model.key("home")
        self.init_qpos = torch.as_tensor(home.qpos).to(sim.qpos)
        self.init_ctrl = torch.as_tensor(home.ctrl).to(sim.ctrl)
        self.init_ctrl[NUM_ARM_JOINTS] = self.cfg.gripper_opening
        limits = torch.as_tensor(model.jnt_range[:NUM_ARM_JOINTS]).to(sim.qpos)
        self.joint_low, self.joint_high = limits[:, 0], limits[:, 1]
        self.ee_pos = sim.site_xpos(self.ee_site)
        self.prev_ee_pos = torch.zeros(self.num_envs, 3, device=self.device)
        self._kinematics_stale = False
        self._coverage: CoverageGrid | None = None
        self.bind_scene()

    def pre_physics_step(self, actions: Tensor) -> None:
        joints = self.sim.qpos[:, :NUM_ARM_JOINTS]
        target = joints + actions.to(joints) * self.cfg.action_scale
        self.sim.ctrl[:, :NUM_ARM_JOINTS] = torch.clamp(target, self.joint_low, self.joint_high)
        self.prev_ee_pos.copy_(self.obs_buf[:, :3])
        self._kinematics_stale = True

    def compute_observations(self) -> None:
        if self._kinematics_stale:  # after `step`, positions lag one substep behind the state
            self.sim.forward()
            self._kinematics_stale = False
        obs = self.obs_buf
        obs[:, :3] = self.ee_pos
        torch.sub(obs[:, :3], self.prev_ee_pos, out=obs[:, 3:6]).div_(self.dt)
        obs[:, 6:ROBOT_OBS_DIM] = self.sim.qpos[:, :NUM_ARM_JOINTS]
        if self.obs_dim > ROBOT_OBS_DIM:
            self.task_observations(obs[:, ROBOT_OBS_DIM:])

    def compute_reward(self) -> None:
        self.success_buf.copy_(self.goal_id())
        torch.ne(self.success_buf, 0, out=self.terminated_buf)
        torch.mul(self.terminated_buf, self.cfg.success_reward, out=self.rew_buf)

    def reset_state(self, env_mask: Tensor) -> None:
        sim = self.sim
        # Called every step and most steps reset nothing: on the CPU that is cheap to find out
        # and skip; on a GPU finding out is a host sync, so the masked writes below always run.
        if sim.qpos.device.type == "cpu" and not bool(env_mask.any()):
            return
        sim.reset(env_mask)
        noise = torch.rand(
            (self.num_envs, NUM_ARM_JOINTS), generator=self.generator, device=self.device
        )
        noise = noise.to(sim.qpos).mul_(2 * self.cfg.init_joint_noise)
        noise.sub_(self.cfg.init_joint_noise)
        arm = torch.clamp(self.init_qpos[:NUM_ARM_JOINTS] + noise, self.joint_low, self.joint_high)
        mask = env_mask.to(sim.qpos.device)
        rows = mask[:, None]
        qpos = self.init_qpos.expand_as(sim.qpos).clone()
        qpos[:, :NUM_ARM_JOINTS] = arm
        sim.qpos.copy_(torch.where(rows, qpos, sim.qpos))
        ctrl = self.init_ctrl.expand_as(sim.ctrl).clone()
        ctrl[:, :NUM_ARM_JOINTS] = arm
        sim.ctrl.copy_(torch.where(rows, ctrl, sim.ctrl))
        self.reset_scene(mask)
        sim.forward(mask)
        ee_rows = env_mask.to(self.device)[:, None]
        ee_pos = self.ee_pos.to(self.prev_ee_pos)
        self.prev_ee_pos.copy_(torch.where(ee_rows, ee_pos, self.prev_ee_pos))
