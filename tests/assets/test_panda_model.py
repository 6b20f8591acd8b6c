"""Checks of the Franka Panda MJCF against published kinematics, limits and control needs."""

from __future__ import annotations

import pathlib

import mujoco
import numpy as np
import pytest

import isaacgymenvs_ddiffpg

PANDA_XML = pathlib.Path(isaacgymenvs_ddiffpg.__file__).parent / "assets" / "panda.xml"

# Franka's modified (Craig) DH table, one row per joint plus the flange: (a, d, alpha).
DH_TABLE = np.array(
    [
        [0.0, 0.333, 0.0],
        [0.0, 0.0, -np.pi / 2],
        [0.0, 0.316, np.pi / 2],
        [0.0825, 0.0, np.pi / 2],
        [-0.0825, 0.384, -np.pi / 2],
        [0.0, 0.0, np.pi / 2],
        [0.088, 0.0, np.pi / 2],
        [0.0, 0.107, 0.0],
    ]
)
JOINT_LIMITS = {
    "joint1": (-2.8973, 2.8973),
    "joint2": (-1.7628, 1.7628),
    "joint3": (-2.8973, 2.8973),
    "joint4": (-3.0718, -0.0698),
    "joint5": (-2.8973, 2.8973),
    "joint6": (-0.0175, 3.7525),
    "joint7": (-2.8973, 2.8973),
}
HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
TCP_OFFSET = 0.1034
ARM_JOINTS = [f"joint{i}" for i in range(1, 8)]
HAND_BODIES = ("hand", "left_finger", "right_finger")
SCENE_WORDS = ("table", "goal", "obstacle", "cube", "drawer", "cabinet", "door")


def dh_flange_pose(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flange pose from the modified DH table: T_i = Rx(alpha) Tx(a) Rz(theta) Tz(d).

    Args:
        q: (7,) arm joint angles.

    Returns:
        The flange position (3,) and rotation matrix (3, 3) in the base frame.
    """
    transform = np.eye(4)
    for (a, d, alpha), theta in zip(DH_TABLE, [*q, 0.0], strict=True):
        ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
        link = np.array(
            [
                [ct, -st, 0.0, a],
                [st * ca, ct * ca, -sa, -d * sa],
                [st * sa, ct * sa, ca, d * ca],
                [0.0, 0.0, 0.0, 1.0],
            ]
        )
        transform = transform @ link
    return transform[:3, 3], transform[:3, :3]


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_path(str(PANDA_XML))


def _home_data(model: mujoco.MjModel) -> mujoco.MjData:
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    mujoco.mj_forward(model, data)
    return data


def _arm_qpos(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    return np.array([data.qpos[model.joint(name).qposadr[0]] for name in ARM_JOINTS])


def _kinematic_configurations() -> list[np.ndarray]:
    low, high = np.array(list(JOINT_LIMITS.values())).T
    random = np.random.default_rng(7).uniform(low, high, size=(8, 7))
    return [HOME, np.zeros(7), *random]


@pytest.mark.parametrize("q", _kinematic_configurations())
def test_flange_and_tcp_match_dh_forward_kinematics(model: mujoco.MjModel, q: np.ndarray) -> None:
    data = mujoco.MjData(model)
    for name, angle in zip(ARM_JOINTS, q, strict=True):
        data.qpos[model.joint(name).qposadr[0]] = angle
    mujoco.mj_kinematics(model, data)
    position, rotation = dh_flange_pose(q)

    flange = data.site("flange_site")
    np.testing.assert_allclose(flange.xpos, position, atol=1e-3)
    np.testing.assert_allclose(flange.xmat.reshape(3, 3), rotation, atol=1e-6)
    tcp = position + TCP_OFFSET * rotation[:, 2]
    np.testing.assert_allclose(data.site("ee_site").xpos, tcp, atol=1e-6)


def test_home_pose_matches_known_flange_position(model: mujoco.MjModel) -> None:
    position, rotation = dh_flange_pose(HOME)
    np.testing.assert_allclose(position, [0.307, 0.0, 0.590], atol=2e-3)
    assert rotation[:, 2] @ np.array([0.0, 0.0, -1.0]) > 0.999  # flange points down


def test_joint_ranges_and_actuators_follow_published_limits(model: mujoco.MjModel) -> None:
    for index, (name, limits) in enumerate(JOINT_LIMITS.items(), start=1):
        joint = model.joint(name)
        assert joint.type[0] == mujoco.mjtJoint.mjJNT_HINGE
        np.testing.assert_allclose(joint.range, limits, atol=1e-4)
        actuator = model.actuator(f"actuator{index}")
        assert actuator.trnid[0] == joint.id
        np.testing.assert_allclose(actuator.ctrlrange, limits, atol=1e-4)
    for name in ("finger_joint1", "finger_joint2"):
        assert model.joint(name).type[0] == mujoco.mjtJoint.mjJNT_SLIDE
        np.testing.assert_allclose(model.joint(name).range, (0.0, 0.04), atol=1e-9)
    np.testing.assert_allclose(model.actuator("actuator8").ctrlrange, (0.0, 0.04), atol=1e-9)
    assert model.nu == 8


def test_home_keyframe(model: mujoco.MjModel) -> None:
    data = _home_data(model)
    np.testing.assert_allclose(_arm_qpos(model, data), HOME, atol=1e-9)
    for name in ("finger_joint1", "finger_joint2"):
        assert data.qpos[model.joint(name).qposadr[0]] == pytest.approx(0.04)
    np.testing.assert_allclose(data.ctrl[:7], HOME, atol=1e-9)
    assert data.ctrl[model.actuator("actuator8").id] == pytest.approx(0.04)


@pytest.mark.parametrize("joint_index", [*range(7), None], ids=[*ARM_JOINTS, "all"])
def test_position_actuators_track_a_step(model: mujoco.MjModel, joint_index: int | None) -> None:
    data = _home_data(model)
    target = HOME.copy()
    if joint_index is None:
        target += 0.3
    else:
        target[joint_index] += 0.3
    data.ctrl[:7] = target
    mujoco.mj_step(model, data, nstep=round(0.5 / model.opt.timestep))

    assert np.isfinite(data.qpos).all() and np.isfinite(data.qvel).all()
    assert np.abs(_arm_qpos(model, data) - target).max() < 5e-3


@pytest.mark.parametrize("direction", [1.0, -1.0], ids=["up", "down"])
def test_joint_targets_tracked_at_the_policy_rate(model: mujoco.MjModel, direction: float) -> None:
    """Full-scale joint-delta actions (0.05 rad per 0.05 s step) on every joint, then a hold."""
    data = _home_data(model)
    frame_skip = round(0.05 / model.opt.timestep)
    target = HOME.copy()
    for _ in range(10):
        target += direction * 0.05
        data.ctrl[:7] = target
        mujoco.mj_step(model, data, nstep=frame_skip)
        assert np.abs(_arm_qpos(model, data) - target).max() < 0.01
    mujoco.mj_step(model, data, nstep=frame_skip)
    assert np.abs(_arm_qpos(model, data) - target).max() < 2e-3


@pytest.mark.parametrize("gravity_compensation", [True, False], ids=["gravcomp", "no_gravcomp"])
def test_arm_holds_home_under_gravity(gravity_compensation: bool) -> None:
    spec = mujoco.MjSpec.from_file(str(PANDA_XML))
    if not gravity_compensation:
        for body in spec.bodies:
            body.gravcomp = 0.0
    model = spec.compile()
    assert model.opt.gravity[2] == pytest.approx(-9.81)
    data = _home_data(model)
    mujoco.mj_step(model, data, nstep=round(1.0 / model.opt.timestep))

    assert np.isfinite(data.qpos).all()
    assert np.abs(_arm_qpos(model, data) - HOME).max() < 5e-3


@pytest.mark.parametrize("opening", [0.0, 0.02, 0.04])
def test_one_actuator_moves_both_fingers(model: mujoco.MjModel, opening: float) -> None:
    data = _home_data(model)
    data.ctrl[model.actuator("actuator8").id] = opening
    mujoco.mj_step(model, data, nstep=250)

    fingers = [data.qpos[model.joint(f"finger_joint{i}").qposadr[0]] for i in (1, 2)]
    np.testing.assert_allclose(fingers, [opening, opening], atol=1e-3)
    assert np.abs(_arm_qpos(model, data) - HOME).max() < 5e-3


def test_no_self_contact_at_home(model: mujoco.MjModel) -> None:
    assert _home_data(model).ncon == 0


def test_adjacent_links_never_collide(model: mujoco.MjModel) -> None:
    data = mujoco.MjData(model)
    low, high = np.array(list(JOINT_LIMITS.values())).T
    for q in np.random.default_rng(3).uniform(low, high, size=(300, 7)):
        data.qpos[:7] = q
        mujoco.mj_forward(model, data)
        for contact in data.contact[: data.ncon]:
            body1, body2 = model.geom_bodyid[contact.geom1], model.geom_bodyid[contact.geom2]
            assert model.body_parentid[body1] != body2 and model.body_parentid[body2] != body1


def test_arm_geoms_use_the_documented_contact_bits(model: mujoco.MjModel) -> None:
    assert model.ngeom > 10
    assert (model.geom_contype == 1).all() and (model.geom_conaffinity == 1).all()
    assert 15.0 < model.body_mass.sum() < 21.0  # the Panda arm and hand weigh about 18 kg


def test_names_leave_room_for_scene_objects(model: mujoco.MjModel) -> None:
    names = [
        model.names[address:].split(b"\0", 1)[0].decode()
        for address in model.name_bodyadr.tolist()
        + model.name_geomadr.tolist()
        + model.name_siteadr.tolist()
        + model.name_jntadr.tolist()
    ]
    assert not [name for name in names if any(word in name for word in SCENE_WORDS)]


@pytest.mark.parametrize("gap", [-0.003, 0.05], ids=["touching", "clear"])
def test_box_added_with_mjspec_collides_with_the_hand(model: mujoco.MjModel, gap: float) -> None:
    home = _home_data(model)
    hand_z = home.site("ee_site").xmat.reshape(3, 3)[:, 2]
    assert hand_z @ np.array([0.0, 0.0, -1.0]) > 0.999
    fingertip = home.site("ee_site").xpos + 0.009 * hand_z
    half_height = 0.02

    spec = mujoco.MjSpec.from_file(str(PANDA_XML))
    box = spec.worldbody.add_body(name="test_box", pos=fingertip + (gap + half_height) * hand_z)
    box.add_geom(
        name="test_box_geom",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[0.05, 0.08, half_height],
        contype=1,
        conaffinity=1,
    )
    scene = spec.compile()
    data = _home_data(scene)

    box_id = scene.geom("test_box_geom").id
    hand_ids = {scene.body(name).id for name in HAND_BODIES}
    touching = [
        contact
        for contact in data.contact[: data.ncon]
        if box_id in (contact.geom1, contact.geom2)
        and {scene.geom_bodyid[contact.geom1], scene.geom_bodyid[contact.geom2]} & hand_ids
    ]
    assert bool(touching) == (gap < 0)
