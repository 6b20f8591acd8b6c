"""Shared logic of the maze tasks: layout, walls, goals, sparse reward, start states."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

import mujoco
import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.assets import asset_path
from isaacgymenvs_ddiffpg.tasks.base.vec_task import TaskEnvConfig, VecTask
from isaacgymenvs_ddiffpg.tasks.coverage import CoverageGrid, maze_grid
from isaacgymenvs_ddiffpg.tasks.maze_layout import MazeLayout, add_maze_to_spec, parse_layout
from isaacgymenvs_ddiffpg.utils.errors import ConfigError


@dataclass
class MazeEnvConfig(TaskEnvConfig):
    """Maze settings (docs/tasks.md, Mazes).

    Attributes:
        layout: rows separated by "/", with "1" wall, "0" free, "R" start, "G" goal.
        maze_size_scaling: cell size in metres.
        goal_radius: success when the robot's xy is within this distance of a goal centre.
        goal_rewards: success reward per goal id (ordered as `MazeLayout.goals`), or one value
            for every goal.
        start_noise: half-width of the uniform box of start positions around the start cell.
        extra_walls: (x, y) centres of free cells turned into walls (replanning variants).
        wall_height: height of the wall boxes in metres; None: half the cell size, as in the
            D4RL mazes (2 m at 4 m cells).
    """

    layout: str = "11111/10001/1G1R1/10001/11111"
    maze_size_scaling: float = 4.0
    goal_radius: float = 0.5
    goal_rewards: list[float] = field(default_factory=lambda: [10.0])
    start_noise: float = 0.0
    extra_walls: list[list[float]] = field(default_factory=list)
    wall_height: float | None = None


MazeConfigT = TypeVar("MazeConfigT", bound=MazeEnvConfig)


class MazeTask(VecTask, Generic[MazeConfigT]):
    """A robot that must reach one of the maze's goals; sparse reward, terminal at a goal.

    Subclasses name the robot's model file (`robot_xml`) and fill the observation; the first two
    observation dims are always the robot's world xy (the mode features).
    """

    Config = MazeEnvConfig
    cfg: MazeConfigT
    robot_xml: str
    mode_feature_dim = 2

    def build_model(self) -> mujoco.MjModel:
        cfg = self.cfg
        self.maze: MazeLayout = parse_layout(cfg.layout, cfg.maze_size_scaling, cfg.extra_walls)
        self.wall_height = (
            cfg.wall_height if cfg.wall_height is not None else cfg.maze_size_scaling / 2
        )
        spec = mujoco.MjSpec.from_file(str(asset_path(self.robot_xml)))
        add_maze_to_spec(spec, self.maze, self.wall_height, cfg.goal_radius)
        return spec.compile()

    def bind(self) -> None:
        cfg = self.cfg
        self.num_goals = len(self.maze.goals)
        rewards = list(cfg.goal_rewards)
        if len(rewards) == 1:
            rewards = rewards * self.num_goals
        if len(rewards) != self.num_goals:
            raise ConfigError(
                f"task.env.goal_rewards has {len(rewards)} values but the layout has "
                f"{self.num_goals} goals {self.maze.goals}; give one reward per goal (ordered by "
                f"decreasing y, then increasing x) or a single value for all goals."
            )
        self.goals = torch.tensor(self.maze.goals, dtype=torch.float32, device=self.device)
        self.goal_rewards = torch.tensor([0.0, *rewards], dtype=torch.float32, device=self.device)
        self.max_reward = max(rewards)
        self.coverage_cell = cfg.maze_size_scaling / 4

    def coverage_grid(self) -> CoverageGrid:
        """Cells of `coverage_cell` (a quarter maze cell) over the map; those in free maze cells
        are reachable."""
        maze = self.maze
        return maze_grid(
            maze.bounds, self.coverage_cell, lambda x, y: maze.is_free(*maze.cell_of(x, y))
        )

    def pre_physics_step(self, actions: Tensor) -> None:
        self.sim.ctrl.copy_(actions)

    def compute_reward(self) -> None:
        xy = self.obs_buf[:, :2]
        reached = torch.cdist(xy, self.goals) < self.cfg.goal_radius  # (N, num_goals)
        first = torch.argmax(reached.to(torch.uint8), dim=1) + 1
        torch.mul(first, reached.any(dim=1), out=self.success_buf)
        torch.index_select(self.goal_rewards, 0, self.success_buf, out=self.rew_buf)
        torch.ne(self.success_buf, 0, out=self.terminated_buf)

    def reset_state(self, env_mask: Tensor) -> None:
        self.sim.reset(env_mask)
        if self.cfg.start_noise > 0:
            noise = (
                torch.rand((self.num_envs, 2), generator=self.generator, device=self.device)
                .mul_(2 * self.cfg.start_noise)
                .sub_(self.cfg.start_noise)
            )
            qpos_xy = self.sim.qpos[:, :2]
            mask = env_mask.to(qpos_xy.device)[:, None]
            qpos_xy.copy_(torch.where(mask, noise.to(qpos_xy), qpos_xy))
