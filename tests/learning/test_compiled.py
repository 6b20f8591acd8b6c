"""`compile`: every piece of every agent's update and rollout traces to one graph, recompiles
only for a new shape (mode discovery's group count), agrees with the eager code within float
tolerance, repeats itself bit for bit, and writes checkpoints that load either way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch._dynamo.utils import counters

from isaacgymenvs_ddiffpg.learning.agents import make_agent
from isaacgymenvs_ddiffpg.learning.baselines import DIPO, SAC, TD3
from isaacgymenvs_ddiffpg.learning.checkpoint import load_checkpoint
from isaacgymenvs_ddiffpg.learning.compiled import Compiler
from isaacgymenvs_ddiffpg.learning.core import EnvSpec
from isaacgymenvs_ddiffpg.learning.ddiffpg import DDiffPG
from tests.learning.test_baselines import bandit, tiny
from tests.learning.test_ddiffpg_update import agent as ddiffpg_agent
from tests.learning.test_ddiffpg_update import fill
from tests.learning.test_trainer import make_trainer


@pytest.fixture
def traced_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Compile with the aot_eager backend: the same tracing (Dynamo, AOTAutograd, one graph per
    piece, guards) without generating and building C++ code."""
    monkeypatch.setattr(Compiler, "backend", "eager")
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def graphs() -> int:
    """Graphs Dynamo has compiled in this process so far."""
    return counters["stats"]["unique_graphs"]


def act(agent, num_envs: int = 5) -> torch.Tensor:
    obs = torch.randn(num_envs, agent.obs_dim, generator=torch.Generator().manual_seed(5))
    z = agent.group_z[-1].expand(num_envs, -1)
    return agent.act(obs, z, torch.full((num_envs,), 0.1))


def two_modes(algo: DDiffPG) -> DDiffPG:
    fill(algo)
    algo.discover_modes()
    assert algo.num_groups == 2
    return algo


def test_ddiffpg_compiles_once_per_group_count(traced_only: None) -> None:
    algo = ddiffpg_agent(compile=True)
    fill(algo)
    start = graphs()
    algo.update()
    act(algo)
    one_group = graphs() - start
    assert one_group >= 7  # novelty pass, a', critic loss, optimiser, Polyak, ascent, actor, act
    for _ in range(3):
        algo.update()
        act(algo)
    assert graphs() - start == one_group, "an update or a step recompiled"
    algo.discover_modes()  # two groups: new batch shapes, one more graph per update piece
    assert algo.num_groups == 2
    algo.update()
    two_groups = graphs() - start
    assert one_group < two_groups <= 2 * one_group
    algo.discover_modes()  # the same group count: parameters replaced, shapes the same
    for _ in range(3):
        algo.update()
        act(algo)
    assert graphs() - start == two_groups, "re-clustering to the same group count recompiled"


@pytest.mark.parametrize("algorithm", ["td3", "sac", "dipo"])
def test_baselines_compile_once(traced_only: None, algorithm: str) -> None:
    extra = {"policy_delay": 1} if algorithm == "td3" else {}  # TD3's actor step every update
    agent = bandit(tiny(algorithm, use_intrinsic=True, compile=True, **extra))
    start = graphs()
    agent.update()
    act(agent)
    first = graphs() - start
    for _ in range(2):
        agent.update()
        act(agent)
    assert graphs() - start == first > 3


def test_compiling_keeps_the_modules_and_their_state_dict_keys() -> None:
    spec = EnvSpec(2, 1, 2, 4, 8, 10.0)
    plain = ddiffpg_agent()
    compiled = ddiffpg_agent(compile=True)  # nothing is compiled before its first call
    assert type(compiled.actor) is type(plain.actor)
    for name in ("actor", "critic", "critic_target", "novelty"):
        assert list(getattr(compiled, name).state_dict()) == list(getattr(plain, name).state_dict())
    assert list(compiled.state_dict()) == list(plain.state_dict())
    td3 = make_agent(tiny("td3", compile=True), spec, "cpu", seed=0)
    assert isinstance(td3, TD3) and "_orig_mod" not in str(list(td3.actor.state_dict()))


def assert_close_states(first: dict, second: dict, atol: float, rtol: float) -> None:
    for key, value in first.items():
        if isinstance(value, dict):
            assert_close_states(value, second[key], atol, rtol)
        elif isinstance(value, torch.Tensor) and value.is_floating_point():
            torch.testing.assert_close(second[key], value, atol=atol, rtol=rtol, msg=key)


@pytest.mark.slow
def test_compiled_updates_agree_with_eager_and_repeat_bit_for_bit() -> None:
    eager = two_modes(ddiffpg_agent())
    compiled = [two_modes(ddiffpg_agent(compile=True)) for _ in range(2)]
    stats, compiled_stats = {}, []
    for _ in range(3):
        stats = eager.update()
        compiled_stats = [algo.update() for algo in compiled]
        act(eager)
        for algo in compiled:
            act(algo)
    for key, value in stats.items():
        torch.testing.assert_close(compiled_stats[0][key], value, atol=1e-4, rtol=1e-4)
    for name in ("actor", "critic", "critic_target", "novelty"):
        assert_close_states(
            getattr(eager, name).state_dict(),
            getattr(compiled[0], name).state_dict(),
            atol=1e-5,
            rtol=1e-4,
        )
    torch.testing.assert_close(
        compiled[0].replay.target_action, eager.replay.target_action, atol=1e-4, rtol=0
    )
    for name in ("actor", "critic", "novelty"):  # the same compiled code and inputs
        ours, theirs = (getattr(algo, name).state_dict() for algo in compiled)
        assert all(torch.equal(ours[key], value) for key, value in theirs.items())


@pytest.mark.slow
@pytest.mark.parametrize("cls", [TD3, SAC, DIPO])
def test_compiled_baselines_agree_with_eager(cls: type) -> None:
    algorithm = cls.__name__.lower()
    agents = [
        bandit(tiny(algorithm, use_intrinsic=True, compile=compile_)) for compile_ in (False, True)
    ]
    stats = []
    for _ in range(4):
        stats = [agent.update() for agent in agents]
    for key, value in stats[0].items():
        torch.testing.assert_close(stats[1][key], value, atol=1e-4, rtol=1e-4)
    for name in ("actor", "critic", "novelty"):
        first, second = (getattr(agent, name).state_dict() for agent in agents)
        assert_close_states(first, second, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(act(agents[1]), act(agents[0]), atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_compiled_training_repeats_and_its_checkpoints_load_either_way(tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        trainer = make_trainer(tmp_path / name, max_iterations=80, compile=True)
        trainer.train()
        assert trainer.algo.num_groups >= 2, "modes should appear, and compile anew"
        runs.append(load_checkpoint(tmp_path / name / "nn" / "last.pth")["algo"])
    for name in ("actor", "critic", "critic_target", "novelty"):
        for key, value in runs[0][name].items():
            assert torch.equal(runs[1][name][key], value), f"{name}.{key} differs run to run"
    # a compiled run's checkpoint resumes eagerly, and an eager one compiled
    middle = tmp_path / "a" / "nn" / "PointMazeV1_iter60.pth"
    for compile_ in (False, True):
        resumed = make_trainer(
            tmp_path / f"resumed_{compile_}", max_iterations=70, compile=compile_
        )
        resumed.restore(middle)
        resumed.train()
        assert resumed.iteration == 70 and resumed.algo.mode_ids
