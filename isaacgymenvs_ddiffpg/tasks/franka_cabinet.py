"""FrankaCabinet: open a cabinet door by pulling its handle or pushing its edge from behind."""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
from torch import Tensor

from isaacgymenvs_ddiffpg.tasks.franka_base import (
    ROBOT_OBS_DIM,
    SCENE_RGBA,
    FrankaEnvConfig,
    FrankaTask,
    add_box,
)
from isaacgymenvs_ddiffpg.utils.errors import ConfigError

DOOR_RGBA = (0.35, 0.55, 0.75, 1.0)
HANDLE_RGBA = (0.2, 0.2, 0.2, 1.0)


@dataclass
class FrankaCabinetConfig(FrankaEnvConfig):
    """FrankaCabinet settings (positions in the robot base frame, table top at z = 0).

    The door faces the robot (its front face in the plane x = `door_front`) and turns about a
    vertical hinge on its right-hand edge (seen from the robot); opening swings its free edge
    towards the robot. The carcass behind it is narrower than the door, so the door's free edge
    overhangs the carcass and can be pushed open from behind.

    Attributes:
        door_front: x of the closed door's front face.
        hinge_y: y of the hinge axis.
        door_width: door width along y from the hinge.
        door_height: height range (z_min, z_max) of the door.
        door_thickness: door thickness along x.
        carcass_width: width of the carcass behind the door, from the hinge (< door_width).
        carcass_depth: depth of the carcass along x.
        handle_span: handle bar ends, as distances from the hinge along the door.
        handle_height: handle height above the door's centre.
        handle_standoff: distance of the handle bar from the door's front face.
        hinge_damping: hinge damping (N m s / rad).
        open_angle: success when the door is open by at least this angle (rad).
    """

    gripper_opening: float = 0.0
    door_front: float = 0.55
    hinge_y: float = -0.2
    door_width: float = 0.45
    door_height: list[float] = field(default_factory=lambda: [0.2, 0.6])
    door_thickness: float = 0.02
    carcass_width: float = 0.25
    carcass_depth: float = 0.3
    handle_span: list[float] = field(default_factory=lambda: [0.28, 0.4])
    handle_height: float = 0.12
    handle_standoff: float = 0.06
    hinge_damping: float = 0.5
    open_angle: float = 0.4


class FrankaCabinet(FrankaTask[FrankaCabinetConfig]):
    """Open the cabinet door by at least `open_angle`: either hook the handle and pull, or reach
    round the door's free edge and push the overhang from behind (the end-effector path tells the
    two apart). Deterministic start.

    Observation (15): end-effector position and velocity, arm joint positions, the door angle
    (rad, 0 closed) and its angular velocity. One goal (id 1).
    """

    Config = FrankaCabinetConfig
    obs_dim = ROBOT_OBS_DIM + 2

    def add_scene(self, spec: mujoco.MjSpec) -> None:
        cfg = self.cfg
        if not 0 < cfg.carcass_width < cfg.door_width:
            raise ConfigError(
                f"task.env.carcass_width={cfg.carcass_width} must be positive and below "
                f"door_width={cfg.door_width}: the door's free edge overhangs the carcass so that "
                f"it can be pushed open from behind."
            )
        z_lo, z_hi = cfg.door_height
        z_mid, z_half = (z_lo + z_hi) / 2, (z_hi - z_lo) / 2
        thick = cfg.door_thickness
        door = spec.worldbody.add_body(name="door", pos=[cfg.door_front, cfg.hinge_y, z_mid])
        door.add_joint(
            name="door_hinge",
            type=mujoco.mjtJoint.mjJNT_HINGE,
            axis=[0, 0, 1],
            range=[0, 1.6],
            damping=cfg.hinge_damping,
        )
        panel = add_box(
            door,
            "door_panel",
            (thick / 2, cfg.door_width / 2, 0),
            (thick / 2, cfg.door_width / 2, z_half),
            DOOR_RGBA,
        )
        panel.mass = 2.0
        y0, y1 = cfg.handle_span
        standoff, zh = cfg.handle_standoff, cfg.handle_height
        door.add_geom(
            name="handle_bar",
            type=mujoco.mjtGeom.mjGEOM_CAPSULE,
            fromto=[-standoff, y0, zh, -standoff, y1, zh],
            size=[0.01, 0, 0],
            rgba=list(HANDLE_RGBA),
            mass=0.1,
        )
        for k, y in enumerate((y0, y1)):
            add_box(
                door,
                f"handle_post_{k}",
                (-standoff / 2, y, zh),
                (standoff / 2, 0.008, 0.008),
                HANDLE_RGBA,
            ).mass = 0.02
        carcass_x = cfg.door_front + thick + 0.003 + cfg.carcass_depth / 2
        carcass_y = cfg.hinge_y + cfg.carcass_width / 2
        add_box(
            spec.worldbody,
            "carcass",
            (carcass_x, carcass_y, z_hi / 2),
            (cfg.carcass_depth / 2, cfg.carcass_width / 2, z_hi / 2),
            SCENE_RGBA,
        )

    def bind_scene(self) -> None:
        hinge = self.model.joint("door_hinge")
        self.door_angle = self.sim.qpos[:, int(hinge.qposadr[0])]
        self.door_speed = self.sim.qvel[:, int(hinge.dofadr[0])]

    def task_observations(self, out: Tensor) -> None:
        out[:, 0] = self.door_angle
        out[:, 1] = self.door_speed

    def goal_id(self) -> Tensor:
        return (self.obs_buf[:, ROBOT_OBS_DIM] >= self.cfg.open_angle).long()
