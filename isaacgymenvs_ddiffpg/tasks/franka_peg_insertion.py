"""FrankaPegInsertion: insert a peg held in the hand into either of two holes of a block."""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.tasks.franka_base import (
    ROBOT_OBS_DIM,
    SCENE_RGBA,
    FrankaEnvConfig,
    FrankaTask,
    add_box,
)
from isaacgymenvs_ddiffpg.utils.errors import ConfigError

PEG_RGBA = (0.85, 0.65, 0.15, 1.0)
HAND_TCP_OFFSET = 0.1034  # ee_site's distance from the hand frame along its z axis (panda.xml)


@dataclass
class FrankaPegInsertionConfig(FrankaEnvConfig):
    """FrankaPegInsertion settings (positions in the robot base frame, table top at z = 0).

    Attributes:
        holes: target point (x, y, z) inside each hole, in goal-id order; all holes share x.
        hole_half: half width of the square hole openings (m).
        block_top: height of the block's top face; the holes go down to the table.
        block_half_x: half depth of the block along x.
        block_margin: block length beyond the outer holes along y.
        peg_radius: radius of the peg held between the fingers.
        peg_length: how far the peg sticks out beyond the fingertip point (ee_site).
        success_radius: success when the peg tip is within this distance of a hole's point.
    """

    init_joint_noise: float = 0.1
    gripper_opening: float = 0.008
    holes: list[list[float]] = field(
        default_factory=lambda: [[0.5, 0.15, 0.03], [0.5, -0.15, 0.03]]
    )
    hole_half: float = 0.02
    block_top: float = 0.06
    block_half_x: float = 0.08
    block_margin: float = 0.08
    peg_radius: float = 0.008
    peg_length: float = 0.05
    success_radius: float = 0.03


class FrankaPegInsertion(FrankaTask[FrankaPegInsertionConfig]):
    """Insert the peg into one of the block's holes; the hole is the mode. The peg is rigidly
    held in the hand, so the end effector here is the peg tip. Random initial arm pose.

    The holes lie at y = +-0.15, z = 0.03, in a block at x = 0.5 in front of the Panda.

    Observation (13): peg-tip position and velocity, arm joint positions. Goal k: hole k.
    """

    Config = FrankaPegInsertionConfig
    obs_dim = ROBOT_OBS_DIM
    ee_site = "peg_tip"

    def add_scene(self, spec: mujoco.MjSpec) -> None:
        cfg = self.cfg
        if len({hole[0] for hole in cfg.holes}) != 1:
            raise ConfigError(
                f"task.env.holes {cfg.holes} must share one x: the holes are cut in a row along y "
                f"through one block."
            )
        hand = spec.body("hand")
        tip = HAND_TCP_OFFSET + cfg.peg_length
        base = HAND_TCP_OFFSET - 0.045  # the peg's top end sits inside the hand
        hand.add_geom(
            name="peg",
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            fromto=[0, 0, base, 0, 0, tip],
            size=[cfg.peg_radius, 0, 0],
            rgba=list(PEG_RGBA),
            mass=0.02,
            contype=1,
            conaffinity=1,
        )
        hand.add_site(name="peg_tip", pos=[0, 0, tip], size=[0.005, 0, 0])
        self._add_block(spec)
        for k, (x, y, z) in enumerate(cfg.holes, start=1):
            spec.worldbody.add_site(
                name=f"hole_{k}", pos=[x, y, z], size=[0.006, 0, 0], rgba=[0.2, 0.9, 0.3, 1]
            )

    def _add_block(self, spec: mujoco.MjSpec) -> None:
        """The block: full-width slabs in front of and behind the holes, pieces between them."""
        cfg, half = self.cfg, self.cfg.hole_half
        x = cfg.holes[0][0]
        ys = sorted(hole[1] for hole in cfg.holes)
        y_lo, y_hi = ys[0] - half - cfg.block_margin, ys[-1] + half + cfg.block_margin
        z_half = cfg.block_top / 2
        slab_x = (cfg.block_half_x - half) / 2
        for name, sign in (("block_front", -1), ("block_back", 1)):
            add_box(
                spec.worldbody,
                name,
                (x + sign * (half + slab_x), (y_lo + y_hi) / 2, z_half),
                (slab_x, (y_hi - y_lo) / 2, z_half),
                SCENE_RGBA,
            )
        edges = [y_lo, *[e for y in ys for e in (y - half, y + half)], y_hi]
        for k in range(0, len(edges), 2):
            left, right = edges[k], edges[k + 1]
            add_box(
                spec.worldbody,
                f"block_between_{k // 2}",
                (x, (left + right) / 2, z_half),
                (half, (right - left) / 2, z_half),
                SCENE_RGBA,
            )

    def bind_scene(self) -> None:
        self.holes = torch.tensor(self.cfg.holes, dtype=torch.float32, device=self.device)
        self.num_goals = len(self.cfg.holes)

    def goal_id(self) -> Tensor:
        dist = torch.cdist(self.obs_buf[:, :3], self.holes)  # (N, num_holes)
        inside = dist < self.cfg.success_radius
        first = torch.argmax(inside.to(torch.uint8), dim=1) + 1
        return first * inside.any(dim=1)
