"""AntMaze: the ant quadruped in a maze (observation 29-d, action 8-d)."""

from __future__ import annotations

import torch

from isaacgymenvs_ddiffpg.tasks.maze_task import MazeTask


class AntMaze(MazeTask):
    """Ant in a maze. Observation: qpos[:15] (torso xyz first, then quaternion and joint angles)
    and qvel[:14]; no goal in the observation. Action: 8 hip/ankle torques in [-1, 1] (gear 30).
    Falling over does not end the episode."""

    robot_xml = "ant.xml"
    obs_dim = 29
    act_dim = 8

    def compute_observations(self) -> None:
        self.obs_buf.copy_(torch.cat((self.sim.qpos[:, :15], self.sim.qvel[:, :14]), dim=1))
