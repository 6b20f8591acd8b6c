"""AntMaze: the ant quadruped in a maze (observation 29-d, action 8-d)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.tasks.maze_task import MazeEnvConfig, MazeTask


@dataclass
class AntMazeConfig(MazeEnvConfig):
    """AntMaze settings: the maze's, and the ant's reset noise.

    Attributes:
        reset_noise_scale: episodes start from the model's standing `home` pose at the start
            cell (plus `start_noise` on xy); then every qpos gets uniform noise in
            [-scale, scale] (the torso quaternion is renormalised) and every qvel Gaussian
            noise of std `scale`, as D4RL's ant does.
    """

    frame_skip: int = 5
    episode_length: int = 500
    reset_noise_scale: float = 0.1


class AntMaze(MazeTask[AntMazeConfig]):
    """Ant in a maze, with the physics of the D4RL ant maze (see `assets/ant.xml`).

    Observation: qpos[:15] (torso xyz first, then quaternion and joint angles) and qvel[:14];
    no goal in the observation. Action: 8 hip/ankle torques in [-1, 1] (gear 30). Falling over
    does not end the episode.
    """

    Config = AntMazeConfig
    version = 2  # 2: the D4RL ant maze's physics (1: stiff contacts, 0.05 s steps, 1 m walls)
    robot_xml = "ant.xml"
    obs_dim = 29
    act_dim = 8

    def bind(self) -> None:
        super().bind()
        home = torch.as_tensor(self.model.key("home").qpos)
        self.home_qpos = home.to(self.sim.qpos)

    def compute_observations(self) -> None:
        self.obs_buf.copy_(torch.cat((self.sim.qpos[:, :15], self.sim.qvel[:, :14]), dim=1))

    def reset_state(self, env_mask: Tensor) -> None:
        super().reset_state(env_mask)  # the model's defaults, then the start cell's xy noise
        qpos, qvel = self.sim.qpos, self.sim.qvel
        standing = torch.cat((qpos[:, :2], self.home_qpos[2:].expand(self.num_envs, -1)), dim=1)
        scale = self.cfg.reset_noise_scale
        gen, dev = self.generator, self.device
        uniform = torch.rand(qpos.shape, generator=gen, device=dev).mul_(2 * scale).sub_(scale)
        normal = torch.randn(qvel.shape, generator=gen, device=dev).mul_(scale)
        standing += uniform.to(qpos)
        quat = standing[:, 3:7]
        standing[:, 3:7] = quat / torch.linalg.vector_norm(quat, dim=1, keepdim=True)
        rows = env_mask.to(qpos.device)[:, None]
        qpos.copy_(torch.where(rows, standing, qpos))
        qvel.copy_(torch.where(rows, qvel + normal.to(qvel), qvel))
