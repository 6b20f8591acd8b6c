"""The MuJoCo Warp backend (sim=warp) against the CPU backend, on Warp's CPU device.

Parity: both backends start from the same state (the CPU task's state copied into the Warp task
through `get_env_state`/`set_env_state`, which also checks that the two state layouts agree) and
get the same random actions. Warp runs in float32, MuJoCo C in float64, so trajectories agree to
float32 rounding where the dynamics are smooth. Contacts that switch on or off (the ant's feet)
make small differences grow, as they would between two float64 runs started 1e-7 apart; for
those tasks the bound is on the error of the mode features (positions) rather than of the whole
observation. Kernels compile once per scene type (about a minute each on a
CPU, then cached in Warp's kernel cache), so one task per robot and scene is run: the other maze
layouts use the same robots, wall boxes and task code as V1.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest
import torch

from isaacgymenvs_ddiffpg.sim import SimBufferOverflowError, make_backend
from isaacgymenvs_ddiffpg.tasks import TASK_CONFIG_DIR, load_task_config, make_task, task_names
from isaacgymenvs_ddiffpg.tasks.base.vec_task import SimConfig, VecTask
from isaacgymenvs_ddiffpg.utils.errors import ConfigError

CPU = SimConfig("mujoco", "cpu", 1)
WARP_CPU = SimConfig("warp", "cpu", 1)


@dataclass(frozen=True)
class Parity:
    """Tolerance of one task: over `horizon` env steps, the largest absolute observation error
    (None: not bounded), and the mean and largest absolute error of the mode features."""

    horizon: int
    obs_max: float | None
    feature_mean: float
    feature_max: float


PARITY = {  # measured on Warp's CPU device: point obs 3.5e-6 / ant features over 1 s 0.023 mean,
    # 0.20 max / Franka obs <= 8.7e-6 and end-effector positions <= 3e-7 m
    "PointMazeV1": Parity(horizon=10, obs_max=1e-4, feature_mean=1e-5, feature_max=1e-4),
    # 10 steps of 0.1 s; the feet land in the first steps, then contact switching (soft
    # contacts, RK4 at 20 ms) decorrelates single envs
    "AntMazeV1": Parity(horizon=10, obs_max=None, feature_mean=0.05, feature_max=0.5),
    "FrankaReach": Parity(horizon=4, obs_max=1e-4, feature_mean=1e-6, feature_max=1e-5),
    "FrankaPush": Parity(horizon=4, obs_max=1e-4, feature_mean=1e-6, feature_max=1e-5),
    "FrankaCabinet": Parity(horizon=4, obs_max=1e-4, feature_mean=1e-6, feature_max=1e-5),
    "FrankaDrawerClose": Parity(horizon=4, obs_max=1e-4, feature_mean=1e-6, feature_max=1e-5),
    "FrankaPegInsertion": Parity(horizon=4, obs_max=1e-4, feature_mean=1e-6, feature_max=1e-5),
}


def task_pair(name: str, num_envs: int) -> tuple[VecTask, VecTask]:
    """The same task on both backends, the Warp one put into the CPU one's state."""
    cpu = make_task(name, num_envs=num_envs, seed=0, sim=CPU)
    warp = make_task(name, num_envs=num_envs, seed=0, sim=WARP_CPU)
    warp.set_env_state(cpu.get_env_state())
    return cpu, warp


@pytest.mark.warp
@pytest.mark.parametrize("name", list(PARITY))
def test_parity_with_cpu_backend(name: str) -> None:
    tol = PARITY[name]
    num_envs = 16 if tol.obs_max is None else 4
    cpu, warp = task_pair(name, num_envs)
    assert warp.sim.qpos.dtype == torch.float32 and cpu.sim.qpos.dtype == torch.float64
    gen = torch.Generator().manual_seed(1)
    obs_err, feature_err = [], []
    for _ in range(tol.horizon):
        actions = torch.rand(num_envs, cpu.act_dim, generator=gen) * 2 - 1
        obs_cpu, rew_cpu, *_ = cpu.step(actions)
        obs_warp, rew_warp, *_ = warp.step(actions)
        assert obs_warp.dtype == torch.float32 and torch.isfinite(obs_warp).all()
        assert torch.equal(rew_cpu, rew_warp)
        obs_err.append((obs_cpu - obs_warp).abs())
        feature_err.append(cpu.mode_features(obs_err[-1]))
    obs_max = torch.stack(obs_err).max().item()
    features = torch.stack(feature_err)
    report = f"{name}: obs max {obs_max:.2e}, features mean {features.mean():.2e} max "
    report += f"{features.max():.2e} over {tol.horizon} steps"
    if tol.obs_max is not None:
        assert obs_max <= tol.obs_max, report
    assert features.mean() <= tol.feature_mean, report
    assert features.max() <= tol.feature_max, report


@pytest.fixture(scope="module")
def point_backends():
    """PointMazeV1's model on both backends, 4 envs."""
    task = make_task("PointMazeV1", num_envs=4, sim=CPU)
    return task.model, task.sim, make_backend("warp", task.model, 4, "cpu", 1)


@pytest.mark.warp
def test_views_are_zero_copy_float32(point_backends) -> None:
    _, _, warp = point_backends
    assert warp.qpos.data_ptr() == warp.data.qpos.ptr
    assert warp.ctrl.data_ptr() == warp.data.ctrl.ptr
    warp.qpos[2, 1] = 1.25
    assert warp.data.qpos.numpy()[2, 1] == 1.25
    assert warp.qvel.dtype == torch.float32 and warp.qpos.shape == (4, 2)


@pytest.mark.warp
def test_masked_reset_only_resets_masked_envs(point_backends) -> None:
    model, _, warp = point_backends
    warp.qpos.copy_(torch.arange(8.0).view(4, 2) + 0.5)
    warp.qvel.fill_(2.0)
    warp.ctrl.fill_(-0.5)
    before = (warp.qpos.clone(), warp.qvel.clone(), warp.ctrl.clone())
    mask = torch.tensor([True, False, True, False])
    warp.reset(mask)
    qpos0 = torch.as_tensor(model.qpos0, dtype=torch.float32)
    assert torch.equal(warp.qpos[mask], qpos0.expand(2, -1))
    assert not warp.qvel[mask].any() and not warp.ctrl[mask].any()
    for now, then in zip((warp.qpos, warp.qvel, warp.ctrl), before, strict=True):
        assert torch.equal(now[~mask], then[~mask])


@pytest.mark.warp
def test_state_moves_between_backends(point_backends) -> None:
    _, cpu, warp = point_backends
    cpu.qpos.copy_(torch.tensor([[0.1, 0.2], [0.3, -0.4], [-1.5, 2.5], [0.0, 1.0]]))
    cpu.qvel.fill_(0.75)
    cpu.step(3)
    state = cpu.get_state()
    warp.set_state(state)
    back = warp.get_state()
    assert back.shape == state.shape and back.dtype == torch.float64
    torch.testing.assert_close(back, state, rtol=1e-6, atol=1e-6)
    cpu.set_state(back)  # and the other way round
    torch.testing.assert_close(cpu.qvel.float(), warp.qvel)


@pytest.mark.warp
def test_get_data_copies_one_world(point_backends) -> None:
    _, _, warp = point_backends
    warp.qpos.copy_(torch.tensor([[0.5, -0.5], [1.0, 2.0], [-3.0, 0.25], [0.0, 0.0]]))
    warp.forward()
    data = warp.get_data(1)  # what `render` draws
    assert data.qpos.tolist() == [1.0, 2.0]


def push(num_envs: int, **buffers: int) -> VecTask:
    """FrankaPush on Warp with some buffer sizes overridden."""
    env = load_task_config("FrankaPush").env
    return make_task(
        "FrankaPush",
        num_envs=num_envs,
        sim=WARP_CPU,
        env={**env, "warp_buffers": {**env.warp_buffers, **buffers}},
    )


@pytest.mark.warp
@pytest.mark.parametrize("setting", ["nconmax", "njmax"])
def test_buffer_overflow_names_the_setting(setting: str) -> None:
    # the cube rests on the table: 4 contacts and 17 constraint rows per world
    task = push(2, **{setting: 8 if setting == "njmax" else 1})
    actions = torch.zeros(2, task.act_dim)
    with pytest.raises(
        SimBufferOverflowError, match=rf"task\.env\.warp_buffers\.{setting}=\d+ is too small"
    ):
        task.step(actions)


@pytest.mark.warp
def test_packaged_buffers_do_not_overflow() -> None:
    from isaacgymenvs_ddiffpg.sim.mujoco_warp import MujocoWarpBackend

    task = push(2)
    task.step(torch.zeros(2, task.act_dim))
    assert isinstance(task.sim, MujocoWarpBackend)
    task.sim.check_overflow()


@pytest.mark.gpu
@pytest.mark.warp
def test_cuda_graphs_match_cpu_device() -> None:
    from isaacgymenvs_ddiffpg.sim.mujoco_warp import MujocoWarpBackend

    name, num_envs = "AntMazeV1", 64
    cpu = make_task(name, num_envs=num_envs, seed=0, sim=WARP_CPU)
    cuda = make_task(
        name, num_envs=num_envs, seed=0, sim=SimConfig("warp", "cuda:0"), rl_device="cuda:0"
    )
    cuda.sim.set_state(cpu.sim.get_state())  # the start noise came from another generator
    gen = torch.Generator().manual_seed(1)
    for _ in range(2):  # before touchdown: float32 on both, same kernels
        actions = torch.rand(num_envs, cpu.act_dim, generator=gen) * 2 - 1
        obs_cpu, *_ = cpu.step(actions)
        obs_cuda, *_ = cuda.step(actions.cuda())
        assert obs_cuda.device.type == "cuda" and cuda.sim.qpos.device.type == "cuda"
        torch.testing.assert_close(obs_cuda.cpu(), obs_cpu, rtol=1e-3, atol=1e-3)
    assert isinstance(cuda.sim, MujocoWarpBackend)
    assert {"reset", ("step", cuda.frame_skip)} <= set(cuda.sim._graphs)


def test_missing_mujoco_warp_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    task = make_task("PointMazeV1", num_envs=1, sim=CPU)
    monkeypatch.setitem(sys.modules, "mujoco_warp", None)
    monkeypatch.delitem(sys.modules, "isaacgymenvs_ddiffpg.sim.mujoco_warp", raising=False)
    with pytest.raises(ImportError, match=r"gpu"):
        make_backend("warp", task.model, 1, "cpu", 1)


def test_every_task_sizes_its_warp_buffers() -> None:
    for name in task_names():
        buffers = load_task_config(name).env.warp_buffers
        assert buffers.nconmax >= 1 and buffers.njmax >= 1, name
    assert len(list(TASK_CONFIG_DIR.glob("*.yaml"))) == len(task_names())
    env = load_task_config("PointMazeV1").env
    with pytest.raises(ConfigError, match="warp_buffers"):
        make_task("PointMazeV1", num_envs=1, env={**env, "warp_buffers": {"nconmx": 8}})
