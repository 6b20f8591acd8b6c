"""FrankaReach: reach a goal behind a cross-shaped obstacle, around one of its four quadrants."""

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
    add_goal_marker,
)


@dataclass
class FrankaReachConfig(FrankaEnvConfig):
    """FrankaReach settings.

    Attributes:
        goal: goal position (x, y, z) in the robot base frame.
        goal_radius: success when the end effector is within this distance of the goal.
        cross_center: centre of the cross; its two slabs lie in the plane x = cross_center[0].
        vertical_half: half-extents of the vertical slab.
        horizontal_half: half-extents of the horizontal slab.
    """

    goal: list[float] = field(default_factory=lambda: [0.62, 0.0, 0.48])
    goal_radius: float = 0.1
    cross_center: list[float] = field(default_factory=lambda: [0.45, 0.0, 0.5])
    vertical_half: list[float] = field(default_factory=lambda: [0.02, 0.005, 0.2])
    horizontal_half: list[float] = field(default_factory=lambda: [0.02, 0.2, 0.005])


class FrankaReach(FrankaTask[FrankaReachConfig]):
    """Reach `goal` with the end effector; a cross of two thin slabs stands between the start
    pose and the goal, so the arm goes around it through one of the cross's four quadrants.

    The slabs are 0.4 m long and 1 cm thin, and the goal lies 0.17 m beyond the cross's plane,
    0.02 m below its centre; the cross stands in front of the Panda's `home` pose, where the
    arm can go over it (hand down) and under it (hand forward).

    Observation (13): end-effector position and velocity, arm joint positions. One goal (id 1).
    """

    Config = FrankaReachConfig
    obs_dim = ROBOT_OBS_DIM

    def add_scene(self, spec: mujoco.MjSpec) -> None:
        cfg = self.cfg
        add_box(
            spec.worldbody, "cross_vertical", cfg.cross_center, cfg.vertical_half, OBSTACLE_RGBA
        )
        add_box(
            spec.worldbody, "cross_horizontal", cfg.cross_center, cfg.horizontal_half, OBSTACLE_RGBA
        )
        add_goal_marker(spec, "goal", cfg.goal, cfg.goal_radius)

    def bind_scene(self) -> None:
        self.goal = torch.tensor(self.cfg.goal, dtype=torch.float32, device=self.device)

    def goal_id(self) -> Tensor:
        dist = torch.linalg.vector_norm(self.obs_buf[:, :3] - self.goal, dim=1)
        return (dist < self.cfg.goal_radius).long()
