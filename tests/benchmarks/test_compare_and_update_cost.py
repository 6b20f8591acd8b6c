"""benchmarks/compare.py and benchmarks/update_cost.py: the table's aggregation and the mode
set-up of the cost benchmark (the benchmarks themselves are not timed tests)."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from isaacgymenvs_ddiffpg.learning.config import DDiffPGConfig
from isaacgymenvs_ddiffpg.learning.ddiffpg import DDiffPG

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def tiny_config() -> DDiffPGConfig:
    """DDiffPG with tiny networks and 2 ascent steps: the benchmark's set-up, quickly."""
    return DDiffPGConfig(
        actor_hidden=[16],
        time_dim=8,
        critic_hidden=[16],
        num_atoms=11,
        novelty_hidden=[8],
        novelty_out_dim=4,
        batch_size=60,
        action_steps=2,
    )


def test_compare_aggregates_seeds_into_one_row() -> None:
    compare = load("compare")
    assert compare.section_of("DDiffPGSmall") == "ddiffpg"
    assert compare.section_of("TD3") == "td3" and compare.section_of("DIPOSmall") == "dipo"
    with pytest.raises(SystemExit, match="unknown algorithm"):
        compare.section_of("PPO")
    runs = [
        {"task": "T", "algo": "A", "seed": s, "success_rate": rate, "num_modes": modes,
         "success_per_mode": shares, "episode_length": 50.0, "env_steps": 100,
         "wall_clock_s": 10.0}
        for s, (rate, modes, shares) in enumerate([(1.0, 2, [0.6, 0.4]), (0.5, 1, [0.5])])
    ]  # fmt: skip
    row = compare.aggregate(runs)
    assert row["success_rate"] == pytest.approx(0.75)
    assert row["success_rate_std"] == pytest.approx(0.25)
    assert row["num_modes"] == pytest.approx(1.5) and row["num_modes_per_seed"] == [2, 1]
    assert row["success_per_mode"] == pytest.approx([0.55, 0.2])
    table = compare.markdown([row])
    assert "| T | A | 0.75 ± 0.25 | 1.5 (2, 1) | 0.55 / 0.20 | 0/2, 0/1 | 50 | 100 | 10 |" in table


def test_update_cost_gives_ddiffpg_the_asked_number_of_modes() -> None:
    update_cost = load("update_cost")
    cfg = tiny_config()
    agent = update_cost.filled(cfg, "cpu")
    assert isinstance(agent, DDiffPG)
    update_cost.give_modes(agent, 4)
    assert agent.num_groups == 5 and agent.mode_ids == [1, 2, 3, 4]
    assert agent.critic.num_groups == 5
    batch = agent.replay.sample(12, 5, torch.Generator().manual_seed(0))
    assert bool(batch["has_data"].all()), "every mode should have trajectories to train on"
    assert torch.isfinite(agent.update()["loss/critic"])


def test_update_cost_splits_an_update_into_its_named_phases() -> None:
    update_cost = load("update_cost")
    cfg = tiny_config()
    agent = update_cost.filled(cfg, "cpu")
    phases = update_cost.phase_seconds(agent.update, "cpu")
    expected = {"batch", "critic", "target_actions", "actor", "novelty", "stats"}
    assert set(phases) == expected
    assert all(seconds > 0 for seconds in phases.values())
