"""Scripted ant controllers: a steerable trot gait, and a follower of routes through a maze."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.tasks.maze_layout import MazeLayout

# Legs 1..4 of assets/ant.xml point along these angles (front left, front right, back, back
# right); a positive ankle angle lowers the foot of legs 1 and 4, a negative one of legs 2 and 3.
LEG_ANGLES = torch.tensor([45.0, 135.0, 225.0, 315.0]).deg2rad()
ANKLE_DOWN = torch.tensor([1.0, -1.0, -1.0, 1.0])
TROT_PHASE = torch.tensor([0.0, math.pi, 0.0, math.pi])  # diagonal legs move together
# actuator k of assets/ant.xml drives joint ACTUATED_JOINT[k] of qpos[7:15] (hip_1, ankle_1, ...)
ACTUATED_JOINT = [6, 7, 0, 1, 2, 3, 4, 5]


def torso_yaw(quat: Tensor) -> Tensor:
    """Heading (rad) of torso quaternions (N, 4), w first."""
    w, x, y, z = quat.unbind(-1)
    return torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


class AntGait:
    """A trot that walks the ant in a commanded world direction, whatever its heading.

    Each hip swings sinusoidally with an amplitude proportional to how much turning that hip
    moves its foot against the commanded direction, and each ankle lowers its foot while the hip
    pushes (stance) and lifts it while the hip swings back; diagonal legs share a phase. Joint
    targets are tracked by PD torques clamped to the action range. The gait needs the ant's
    observation (AntMaze: qpos[:15], qvel[:14]) and nothing else.

    Args:
        period: steps per gait cycle (10: one second at 0.1 s per step).
        hip_amplitude: largest hip swing (rad).
        ankle_mid, ankle_lift: ankle angle (rad) around which the foot moves, and its swing.
        kp, kd: PD gains in action units per rad and per rad/s.
        settle_steps: steps of zero action at the start, while the dropped ant lands (walking
            or bracing its legs straight away flips it now and then).
    """

    def __init__(
        self,
        period: int = 10,
        hip_amplitude: float = 0.5,
        ankle_mid: float = 0.87,
        ankle_lift: float = 0.3,
        kp: float = 2.0,
        kd: float = 0.1,
        settle_steps: int = 10,
    ) -> None:
        self.omega = 2 * math.pi / period
        self.settle_steps = settle_steps
        self.hip_amplitude, self.ankle_mid, self.ankle_lift = hip_amplitude, ankle_mid, ankle_lift
        self.kp, self.kd = kp, kd
        self.step = 0

    def action(self, obs: Tensor, direction: Tensor) -> Tensor:
        """Actions of one step.

        Args:
            obs: (N, 29) AntMaze observations.
            direction: (N, 2) world unit vectors to walk along (zero rows: trot in place).

        Returns:
            (N, 8) actions in [-1, 1].
        """
        dev = obs.device
        yaw = torso_yaw(obs[:, 3:7])
        cos, sin = torch.cos(yaw), torch.sin(yaw)
        dx, dy = direction[:, 0], direction[:, 1]
        body = torch.stack((cos * dx + sin * dy, cos * dy - sin * dx), dim=1)  # torso frame
        angles = LEG_ANGLES.to(dev)
        tangent = torch.stack((-torch.sin(angles), torch.cos(angles)), dim=1)  # (4, 2)
        walking = float(self.step >= self.settle_steps)
        phase = self.omega * (self.step - self.settle_steps) + TROT_PHASE.to(dev)
        hip = -self.hip_amplitude * walking * (body @ tangent.T) * torch.sin(phase)
        lift = self.ankle_lift * walking * torch.cos(phase)
        ankle = ANKLE_DOWN.to(dev) * (self.ankle_mid + lift)
        target = torch.stack((hip, ankle.expand_as(hip)), dim=2).flatten(1)
        torque = self.kp * (target - obs[:, 7:15]) - self.kd * obs[:, 21:29]
        self.step += 1
        return walking * torque[:, ACTUATED_JOINT].clamp(-1.0, 1.0)


def maze_route(
    maze: MazeLayout, goal: tuple[float, float], via: Sequence[tuple[float, float]] = ()
) -> list[tuple[float, float]]:
    """Cell centres (x, y) of a shortest route from the start cell to `goal`, passing through
    the cells of the points in `via` in order (the start cell itself is left out)."""
    cells = [maze.start, *(maze.cell_of(*point) for point in (*via, goal))]
    route: list[tuple[int, int]] = []
    for begin, end in zip(cells[:-1], cells[1:], strict=True):
        leg = maze.cell_path(begin, end)
        if not leg:
            raise ValueError(f"no free path from cell {begin} to cell {end}")
        route += leg[1:]
    return [maze.cell_center(*cell) for cell in route]


class RouteFollower:
    """Walks each env's robot along its own route of waypoints.

    Args:
        routes: per env, the waypoints (x, y) to visit in order; the last one is held.
        reach: distance (m) at which a waypoint counts as reached.
        gait: the ant's gait for `action` (default settings if None).
    """

    def __init__(
        self,
        routes: Sequence[Sequence[tuple[float, float]]],
        reach: float = 1.0,
        gait: AntGait | None = None,
    ) -> None:
        longest = max(len(route) for route in routes)
        padded = [list(route) + [route[-1]] * (longest - len(route)) for route in routes]
        self.waypoints = torch.tensor(padded, dtype=torch.float32)  # (N, W, 2)
        self.index = torch.zeros(len(routes), dtype=torch.long)
        self.reach = reach
        self.gait = gait or AntGait()

    def direction(self, xy: Tensor) -> Tensor:
        """(N, 2) unit vectors from positions (N, 2) to each env's current waypoint (advancing
        the envs that reached theirs)."""
        xy = xy.float().cpu()
        rows = torch.arange(len(self.index))
        near = torch.linalg.vector_norm(self.waypoints[rows, self.index] - xy, dim=1) < self.reach
        self.index = torch.clamp(self.index + near.long(), max=self.waypoints.shape[1] - 1)
        offset = self.waypoints[rows, self.index] - xy
        return offset / torch.linalg.vector_norm(offset, dim=1, keepdim=True).clamp_min(1e-6)

    def action(self, obs: Tensor) -> Tensor:
        """(N, 8) ant actions towards each env's current waypoint, given (N, 29) observations."""
        return self.gait.action(obs, self.direction(obs[:, :2]).to(obs))
