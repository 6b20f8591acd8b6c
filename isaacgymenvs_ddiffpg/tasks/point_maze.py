"""PointMaze: a force-driven point mass in a maze (observation 4-d, action 2-d), for fast runs."""

from __future__ import annotations

import torch

from isaacgymenvs_ddiffpg.tasks.maze_task import MazeTask


class PointMaze(MazeTask):
    """Point mass on the same layouts. Observation: xy and xy velocity. Action: xy force in
    [-1, 1] (gear 20, damping 5: top speed 4 m/s)."""

    robot_xml = "point.xml"
    obs_dim = 4
    act_dim = 2

    def compute_observations(self) -> None:
        self.obs_buf.copy_(torch.cat((self.sim.qpos, self.sim.qvel), dim=1))
