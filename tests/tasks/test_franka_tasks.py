"""Franka task semantics: spaces, observations, control, goals, terminals, timeouts, seeding."""

import dataclasses

import mujoco
import numpy as np
import pytest
import torch

from isaacgymenvs_ddiffpg.assets import asset_path
from isaacgymenvs_ddiffpg.tasks import TASK_REGISTRY, load_task_config, make_task
from isaacgymenvs_ddiffpg.tasks.franka_base import ROBOT_OBS_DIM
from isaacgymenvs_ddiffpg.utils.errors import ConfigError
from tests.tasks.franka_scripts import place_ee

OBS_DIMS = {
    "FrankaReach": 13,
    "FrankaPush": 23,
    "FrankaPegInsertion": 13,
    "FrankaDrawerClose": 21,
    "FrankaCabinet": 15,
}
NOISY = ("FrankaPegInsertion", "FrankaDrawerClose")


def home_ee() -> tuple[np.ndarray, np.ndarray]:
    """End-effector position and arm joints of panda.xml's `home` keyframe."""
    model = mujoco.MjModel.from_xml_path(str(asset_path("panda.xml")))
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    mujoco.mj_forward(model, data)
    return data.site("ee_site").xpos.copy(), data.qpos[:7].copy()


def zeros(task) -> torch.Tensor:
    return torch.zeros(task.num_envs, task.act_dim)


@pytest.mark.parametrize("name", list(OBS_DIMS))
def test_spaces_and_packaged_config(name: str) -> None:
    task = make_task(name, num_envs=3)
    assert task.obs_dim == OBS_DIMS[name] and task.observation_space.shape == (OBS_DIMS[name],)
    assert task.act_dim == 7 and task.mode_feature_dim == 3
    assert (task.action_space.low == -1).all() and (task.action_space.high == 1).all()
    assert task.max_episode_length == 100 and task.frame_skip == 25
    assert task.dt == pytest.approx(0.05)
    cfg = task.cfg
    assert cfg.action_scale == 0.05 and cfg.success_reward == 10.0
    # the yaml states every setting, with the config class's defaults
    defaults = TASK_REGISTRY[name].Config()
    env = load_task_config(name).env
    for f in dataclasses.fields(defaults):
        assert f.name in env, f"{name}.yaml lacks {f.name}"
        if f.name != "num_envs":
            assert env[f.name] == getattr(defaults, f.name), f.name
    # mode features are the end-effector position
    obs = task.obs_buf
    assert torch.equal(task.mode_features(obs), obs[:, :3])
    assert torch.allclose(obs[:, :3], task.ee_pos.float())


@pytest.mark.parametrize("name", ["FrankaReach", "FrankaPush", "FrankaCabinet"])
def test_deterministic_start_at_home(name: str) -> None:
    ee, joints = home_ee()
    task = make_task(name, num_envs=2, seed=5)
    obs = task.obs_buf
    assert torch.allclose(obs[:, :3], torch.tensor(ee, dtype=torch.float32).expand(2, 3))
    assert (obs[:, 3:6] == 0).all()
    assert torch.allclose(obs[:, 6:13], torch.tensor(joints, dtype=torch.float32).expand(2, 7))


@pytest.mark.parametrize("name", NOISY)
def test_random_initial_pose_is_seeded_and_clear_of_the_scene(name: str) -> None:
    _, joints = home_ee()
    noise = load_task_config(name).env.init_joint_noise
    task = make_task(name, num_envs=64, seed=1)
    ncon = task.sim.batch.bind("ncon")  # type: ignore[attr-defined]
    offset = task.obs_buf[:, 6:13] - torch.tensor(joints, dtype=torch.float32)
    assert offset.abs().max() <= noise + 1e-6
    assert offset.abs().max() > 0.8 * noise and offset.std(dim=0).min() > 0.3 * noise
    assert (task.obs_buf[:, 3:6] == 0).all()
    same = make_task(name, num_envs=64, seed=1).obs_buf
    other = make_task(name, num_envs=64, seed=2).obs_buf
    assert torch.equal(task.obs_buf, same) and not torch.equal(task.obs_buf, other)
    # no start touches the scene
    task.reset()
    task.sim.forward()
    assert (ncon == 0).all()


def test_joint_delta_control_and_ee_velocity() -> None:
    task = make_task("FrankaReach", num_envs=2)
    start = task.sim.qpos[:, :7].clone()
    action = torch.zeros(2, 7)
    action[0, 0] = 1.0
    action[1, 3] = -0.5
    before = task.obs_buf.clone()
    obs = task.step(action)[0]
    expected = start.clone()
    expected[0, 0] += 0.05
    expected[1, 3] -= 0.025
    # the target is the measured position plus the scaled action
    assert torch.allclose(task.sim.ctrl[:, :7], expected)
    # the position actuators track the target within the 50 ms step
    assert torch.allclose(obs[:, 6:13].double(), expected, atol=0.01)
    # ee velocity is the mean over the step
    assert torch.allclose(obs[:, 3:6], (obs[:, :3] - before[:, :3]) / 0.05, atol=1e-4)
    # out-of-range actions are clamped to [-1, 1]; targets stop at the joint limits
    for _ in range(70):
        task.step(torch.tensor([[10.0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]]))
    assert task.sim.ctrl[0, 0] == pytest.approx(2.8973)
    assert task.obs_buf[0, 6] == pytest.approx(2.8973, abs=0.01)
    assert task.obs_buf[1, 6] == pytest.approx(0.0, abs=1e-3)  # zero actions hold the pose


def test_control_is_markov_after_pushing_into_an_obstacle() -> None:
    """Pushing the arm into FrankaReach's cross for 20 steps stores nothing: the first step of
    the opposite action moves it away at once, as from any resting pose."""
    task = make_task("FrankaReach", num_envs=1)
    push = torch.zeros(1, 7)
    push[0, 1] = 1.0  # shoulder forward: the wrist runs into the cross's vertical slab
    for _ in range(10):
        task.step(push)
    cross = {task.model.geom("cross_vertical").id, task.model.geom("cross_horizontal").id}
    data = task.sim.get_data(0)
    touching = {int(c.geom2) for c in data.contact[: data.ncon]} & cross
    assert touching, "the arm should be pressed against the cross"
    held = task.obs_buf[0].clone()
    for _ in range(20):  # keep pushing: the arm stays where the cross stops it
        obs = task.step(push)[0][0]
    assert torch.allclose(obs[:3], held[:3], atol=0.005)
    assert torch.allclose(obs[6:13], held[6:13], atol=0.01)
    back = task.step(-push)[0][0]
    assert float(torch.linalg.vector_norm(back[:3] - obs[:3])) > 0.01  # away in the first step
    assert float(back[5]) > 0.2  # the hand rises off the slab (m/s)


def check_goal_step(task, expected_ids: list[int]) -> tuple[torch.Tensor, dict]:
    """One zero-action step; checks ids, rewards, terminals and the same-step reset."""
    progress = task.progress_buf.clone()
    obs, rew, term, trunc, extras = task.step(zeros(task))
    ids = torch.tensor(expected_ids)
    assert extras["success"].tolist() == expected_ids
    assert torch.equal(term, ids > 0) and not trunc.any()
    assert torch.equal(rew, 10.0 * (ids > 0).float())
    assert torch.equal(task.progress_buf, torch.where(ids > 0, 0, progress + 1))
    return obs, extras


def test_reach_success_radius() -> None:
    ee, _ = home_ee()
    env = dict(load_task_config("FrankaReach").env)
    for offset, expected in ((0.09, 1), (0.11, 0)):
        goal = [float(ee[0] + offset), float(ee[1]), float(ee[2])]
        task = make_task("FrankaReach", num_envs=2, env={**env, "goal": goal})
        obs, extras = check_goal_step(task, [expected] * 2)
        assert torch.allclose(extras["final_obs"][:, :3], torch.tensor(ee, dtype=torch.float32))


def test_push_cube_in_goal_region() -> None:
    task = make_task("FrankaPush", num_envs=3)
    cfg, cube = task.cfg, task.cube_pose
    cube[1, :2] = torch.tensor(cfg.goal) + torch.tensor([0.0, 0.04])
    cube[2, :2] = torch.tensor(cfg.goal) + torch.tensor([0.06, 0.0])
    obs, extras = check_goal_step(task, [0, 1, 0])
    assert extras["final_obs"][1, 14] == pytest.approx(cfg.goal[1] + 0.04, abs=1e-3)
    # env 1 restarted with the cube back at its start
    start = torch.tensor([*cfg.cube_start, cfg.cube_half, 1.0, 0.0, 0.0, 0.0])
    assert torch.allclose(obs[1, ROBOT_OBS_DIM : ROBOT_OBS_DIM + 7], start, atol=1e-5)


def test_peg_in_each_hole() -> None:
    task = make_task("FrankaPegInsertion", num_envs=4)
    holes = torch.tensor(task.cfg.holes, dtype=torch.float64)
    above = holes[0] + torch.tensor([0.0, 0.0, 0.04])  # at the block's top face: not inside
    place_ee(task, [1, 2, 3], torch.stack((holes[0], holes[1], above)))
    obs, extras = check_goal_step(task, [0, 1, 2, 0])
    assert torch.allclose(extras["final_obs"][1:3, :3], holes.float(), atol=0.01)


def test_drawer_ids_and_thresholds() -> None:
    task = make_task("FrankaDrawerClose", num_envs=7)
    openings = task.drawer_pos
    for k in range(4):
        openings[k + 1, k] = 0.02
    openings[5, 0] = 0.04  # not closed enough
    openings[6, 1] = openings[6, 2] = 0.0  # two closed: the lower id counts
    obs, extras = check_goal_step(task, [0, 1, 2, 3, 4, 0, 2])
    assert extras["final_obs"][1, ROBOT_OBS_DIM] == pytest.approx(0.02, abs=2e-3)
    # finished envs restart with every drawer open
    assert torch.allclose(obs[1:5, ROBOT_OBS_DIM : ROBOT_OBS_DIM + 4], torch.tensor(0.17))


def test_cabinet_open_angle() -> None:
    task = make_task("FrankaCabinet", num_envs=3)
    task.door_angle[1] = 0.45
    task.door_angle[2] = 0.35
    obs, extras = check_goal_step(task, [0, 1, 0])
    assert extras["final_obs"][1, ROBOT_OBS_DIM] == pytest.approx(0.45, abs=0.01)
    assert obs[1, ROBOT_OBS_DIM] == 0.0


def test_timeout_is_truncation_after_100_steps() -> None:
    task = make_task("FrankaCabinet", num_envs=2)
    for _ in range(99):
        _, rew, term, trunc, _ = task.step(zeros(task))
        assert not (term | trunc).any() and (rew == 0).all()
    obs, rew, term, trunc, extras = task.step(zeros(task))
    assert trunc.all() and not term.any() and (rew == 0).all()
    assert extras["episode_length"].tolist() == [100, 100]
    assert (task.progress_buf == 0).all()


def test_env_state_round_trip_continues_bit_identically() -> None:
    task = make_task("FrankaDrawerClose", num_envs=3, seed=1)
    gen = torch.Generator().manual_seed(0)
    actions = [torch.rand(3, 7, generator=gen) * 2 - 1 for _ in range(12)]
    for a in actions[:6]:
        task.step(a)
    saved = task.get_env_state()
    expected = [task.step(a)[0].clone() for a in actions[6:]]
    other = make_task("FrankaDrawerClose", num_envs=3, seed=7)
    other.set_env_state(saved)
    for a, want in zip(actions[6:], expected, strict=True):
        assert torch.equal(other.step(a)[0], want)


def test_scene_settings_that_break_a_mode_fail_clearly() -> None:
    env = dict(load_task_config("FrankaPegInsertion").env)
    with pytest.raises(ConfigError, match="must share one x"):
        make_task(
            "FrankaPegInsertion", env={**env, "holes": [[0.5, 0.15, 0.03], [0.4, -0.15, 0.03]]}
        )
    env = dict(load_task_config("FrankaCabinet").env)
    with pytest.raises(ConfigError, match="overhangs the carcass"):
        make_task("FrankaCabinet", env={**env, "carcass_width": 0.5})
