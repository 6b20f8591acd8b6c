"""Every registered task passes the checker, and the registry matches the packaged configs."""

import pytest

from isaacgymenvs_ddiffpg.tasks import TASK_CONFIG_DIR, load_task_config, make_task, task_names
from isaacgymenvs_ddiffpg.tasks.checker import check_vec_task
from isaacgymenvs_ddiffpg.utils.errors import ConfigError


def test_registry_and_configs_agree() -> None:
    assert sorted(p.stem for p in TASK_CONFIG_DIR.glob("*.yaml")) == task_names()
    for name in task_names():
        assert load_task_config(name).name == name


@pytest.mark.parametrize("name", task_names())
def test_checker_passes(name: str) -> None:
    env = load_task_config(name).env
    short = {**env, "episode_length": 15}

    counts = check_vec_task(lambda: make_task(name, num_envs=6, env=short), num_steps=40)
    assert counts["truncated"] == 6 * (40 // 15)


def test_unknown_task_lists_choices() -> None:
    with pytest.raises(ConfigError, match="Valid tasks: .*AntMazeV1"):
        make_task("AntMazeV9")


def test_wrong_env_key_and_type() -> None:
    env = dict(load_task_config("PointMazeV1").env)
    with pytest.raises(ConfigError, match="Valid keys for PointMaze"):
        make_task("PointMazeV1", env={**env, "episode_lenght": 10})
    with pytest.raises(ConfigError, match="episode_length"):
        make_task("PointMazeV1", env={**env, "episode_length": "long"})
    with pytest.raises(ConfigError, match="goal_rewards has 2 values"):
        make_task("PointMazeV1", env={**env, "goal_rewards": [1.0, 2.0]})


@pytest.mark.parametrize("name", task_names())
def test_every_task_has_a_fixed_clustering_threshold(name: str) -> None:
    # a null threshold falls back to 0.7 x the largest merge, which always splits the top merge
    threshold = load_task_config(name).cluster_threshold
    assert isinstance(threshold, float) and threshold > 0
