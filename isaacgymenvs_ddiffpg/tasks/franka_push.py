"""FrankaPush: push a cube on the table around an obstacle (left or right) into a goal region."""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.tasks.franka_base import (
    OBSTACLE_RGBA,
    ROBOT_OBS_DIM,
    FrankaEnvConfig,
    FrankaTask,
    add_box,
)

CUBE_RGBA = (0.2, 0.4, 0.85, 1.0)


@dataclass
class FrankaPushConfig(FrankaEnvConfig):
    """FrankaPush settings (positions in the robot base frame, table top at z = 0).

    Attributes:
        cube_start: initial cube centre (x, y) on the table.
        cube_half: half edge of the cube (m).
        cube_mass: cube mass (kg).
        cube_friction: sliding friction of the cube (against the table and the fingers).
        obstacle_pos: obstacle centre (x, y) on the table.
        obstacle_half: obstacle half-extents (x, y, z); lower than the hand so the hand passes
            over it, taller than the cube so the cube cannot.
        goal: centre (x, y) of the goal region.
        goal_radius: success when the cube centre's xy is within this distance of `goal`.
    """

    gripper_opening: float = 0.0
    cube_start: list[float] = field(default_factory=lambda: [0.4, 0.0])
    cube_half: float = 0.025
    cube_mass: float = 0.1
    cube_friction: float = 0.5
    obstacle_pos: list[float] = field(default_factory=lambda: [0.52, 0.0])
    obstacle_half: list[float] = field(default_factory=lambda: [0.02, 0.08, 0.03])
    goal: list[float] = field(default_factory=lambda: [0.65, 0.0])
    goal_radius: float = 0.05


class FrankaPush(FrankaTask[FrankaPushConfig]):
    """Push the cube into the goal region; a wall between cube and goal makes the robot push it
    around on the left or on the right. The gripper stays closed.

    Observation (23): end-effector position and velocity, arm joint positions, then the cube's
    position (3), orientation quaternion (4, w first) and linear velocity (3). One goal (id 1).
    """

    Config = FrankaPushConfig
    obs_dim = ROBOT_OBS_DIM + 10

    def add_scene(self, spec: mujoco.MjSpec) -> None:
        cfg = self.cfg
        ox, oy = cfg.obstacle_pos
        add_box(
            spec.worldbody,
            "obstacle",
            (ox, oy, cfg.obstacle_half[2]),
            cfg.obstacle_half,
            OBSTACLE_RGBA,
        )
        half = cfg.cube_half
        cube = spec.worldbody.add_body(name="cube", pos=[*cfg.cube_start, half])
        cube.add_freejoint(name="cube")
        geom = add_box(cube, "cube", (0, 0, 0), (half, half, half), CUBE_RGBA)
        geom.mass = cfg.cube_mass
        geom.friction = [cfg.cube_friction, 0.005, 0.0001]
        spec.worldbody.add_geom(
            name="goal",
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            pos=[*cfg.goal, 0.001],
            size=[cfg.goal_radius, 0.001, 0],
            rgba=[0.2, 0.9, 0.3, 0.5],
            contype=0,
            conaffinity=0,
        )

    def bind_scene(self) -> None:
        self.goal = torch.tensor(self.cfg.goal, dtype=torch.float32, device=self.device)
        cube = self.model.joint("cube")
        qpos_adr, dof_adr = int(cube.qposadr[0]), int(cube.dofadr[0])
        self.cube_pose = self.sim.qpos[:, qpos_adr : qpos_adr + 7]
        self.cube_lin_vel = self.sim.qvel[:, dof_adr : dof_adr + 3]

    def task_observations(self, out: Tensor) -> None:
        out[:, :7] = self.cube_pose
        out[:, 7:] = self.cube_lin_vel

    def goal_id(self) -> Tensor:
        cube_xy = self.obs_buf[:, ROBOT_OBS_DIM : ROBOT_OBS_DIM + 2]
        dist = torch.linalg.vector_norm(cube_xy - self.goal, dim=1)
        return (dist < self.cfg.goal_radius).long()
