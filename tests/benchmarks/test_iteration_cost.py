"""benchmarks/iteration_cost.py: the preset settings its workers train with, and one whole
measurement of a tiny run (the timings themselves are not tested)."""

import json
import subprocess
import sys

import pytest

from isaacgymenvs_ddiffpg.learning.baselines import TD3Config
from isaacgymenvs_ddiffpg.learning.config import DDiffPGConfig
from tests.benchmarks.test_compare_and_update_cost import BENCHMARKS, load


def test_workers_train_the_presets_settings_with_the_option() -> None:
    iteration_cost = load("iteration_cost")
    small = iteration_cost.preset_config("DDiffPGSmall", False, [])
    assert isinstance(small, DDiffPGConfig) and not small.compile
    assert small.actor_hidden == [128, 128] and small.action_steps == 5  # cfg/train's preset
    assert small.eval_interval > 10**6  # no evaluation inside the timed iterations
    option = iteration_cost.preset_config(
        "DDiffPGSmall", True, ["action_steps=2", "action_lr=0.25"]
    )
    assert option.compile and option.action_steps == 2 and option.action_lr == 0.25
    paper = iteration_cost.preset_config("DDiffPG", True, [])
    assert paper.actor_hidden == [1024, 512, 256] and paper.batch_size == 4096
    assert isinstance(iteration_cost.preset_config("TD3Small", False, []), TD3Config)


@pytest.mark.slow
def test_a_whole_measurement_of_eager_and_eager_before(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "iteration_cost.py"), "--tasks", "PointMazeV1:4",
         "--variants", "eager_before", "eager", "--iterations", "2", "--rounds", "2",
         "--reference", "HEAD"],  # a clone's own commit: its history may be shallow
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    (result,) = report["results"]
    assert set(result["variants"]) == {"eager_before", "eager"}
    for variant in result["variants"].values():
        assert variant["groups"] == 3 and variant["iteration_s"] > 0
    assert result["speedup"]["eager_vs_eager_before"]["update_s"] > 0
