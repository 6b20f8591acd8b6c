"""PointMaze: a velocity-controlled point mass in a maze (observation 4-d, action 2-d)."""

from __future__ import annotations

import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.tasks.maze_task import MazeEnvConfig, MazeTask


class PointMaze(MazeTask[MazeEnvConfig]):
    """Point mass on the same layouts, for fast CPU runs and tests. Observation: xy and xy
    velocity. Action: commanded xy velocity in [-1, 1], scaled to the actuators' ctrlrange
    (top speed 4 m/s; at frame_skip 10 x 10 ms one step moves at most 0.4 m)."""

    robot_xml = "point.xml"
    obs_dim = 4
    act_dim = 2

    def bind(self) -> None:
        super().bind()
        top_speed = self.model.actuator_ctrlrange[:, 1]
        self.ctrl_scale = torch.tensor(top_speed, dtype=torch.float32, device=self.device)

    def pre_physics_step(self, actions: Tensor) -> None:
        self.sim.ctrl.copy_(actions * self.ctrl_scale)

    def compute_observations(self) -> None:
        self.obs_buf.copy_(torch.cat((self.sim.qpos, self.sim.qvel), dim=1))
