"""The rl-games adapter in-process: every train config composes into its algorithm's typed
settings, a key the algorithm does not have fails with the list of those it has, and
`register_rlgames` registers every algorithm."""

import dataclasses
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from isaacgymenvs_ddiffpg.config import register_configs
from isaacgymenvs_ddiffpg.learning.agents import ALGORITHMS, config_from_dict, config_to_dict
from isaacgymenvs_ddiffpg.learning.baselines import DIPOConfig, SACConfig, TD3Config
from isaacgymenvs_ddiffpg.learning.config import DDiffPGConfig
from isaacgymenvs_ddiffpg.rlgames import Runner, agent_config, register_rlgames
from isaacgymenvs_ddiffpg.utils.errors import ConfigError

TRAIN_CONFIGS = Path(__file__).resolve().parents[1] / "isaacgymenvs_ddiffpg" / "cfg" / "train"
CONFIG_CLASSES = (DDiffPGConfig, TD3Config, SACConfig, DIPOConfig)
OURS = sorted(p.stem for p in TRAIN_CONFIGS.glob("*.yaml") if p.stem != "RLGamesSAC")


def train_params(*overrides: str) -> dict:
    """The `train.params` of the composed top-level config (`task=PointMazeV1`)."""
    register_configs()
    with initialize_config_module("isaacgymenvs_ddiffpg.cfg", version_base="1.3"):
        cfg = compose("config", overrides=["task=PointMazeV1", *overrides])
    return OmegaConf.to_container(cfg.train.params, resolve=True)  # type: ignore[return-value]


@pytest.mark.parametrize("train", OURS)
def test_every_train_config_gives_its_algorithms_settings(train: str) -> None:
    params = train_params(f"train={train}")
    name = params["algo"]["name"]
    cfg = agent_config(name, params["config"])
    assert type(cfg) is ALGORITHMS[name].config and cfg.algorithm == name
    if train == "DDiffPGReach":  # a FrankaReach preset with a budget of its own
        assert cfg.max_env_steps == 3_200_000 and cfg.route_bonus == 1.0
    else:
        assert cfg.max_env_steps == 160_000  # the task's budget reaches every section
    if train.endswith("Small"):
        assert cfg.batch_size == 256 and cfg.eval_interval == 100
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_each_algorithm_has_exactly_its_keys() -> None:
    names = {cls: {f.name for f in dataclasses.fields(cls)} for cls in CONFIG_CLASSES}
    modes = {"embedding_dim", "max_modes", "cluster_threshold", "exploration"}
    assert modes <= names[DDiffPGConfig] and not modes & (names[TD3Config] | names[DIPOConfig])
    diffusion = {"denoising_steps", "time_dim", "action_steps", "action_lr", "action_flat_grad"}
    assert diffusion <= names[DIPOConfig] and not diffusion & names[TD3Config]
    assert "target_noise_std" in names[TD3Config] and "target_noise_std" not in names[SACConfig]
    assert "use_intrinsic" in names[SACConfig] and "use_intrinsic" not in names[DDiffPGConfig]


def test_a_key_of_another_algorithm_fails_with_the_valid_keys() -> None:
    params = train_params("train=TD3Small", "+train.params.config.td3.embedding_dim=5")
    with pytest.raises(ConfigError) as failure:
        agent_config("td3", params["config"])
    message = str(failure.value)
    assert "Invalid train.params.config.td3: Key 'embedding_dim' not in 'TD3Config'" in message
    valid = message.split("Valid keys")[1]
    assert "policy_delay" in valid and "eval_interval" in valid
    assert "embedding_dim" not in valid and "algorithm" not in valid


def test_register_rlgames_registers_every_algorithm() -> None:
    runner = Runner()
    register_rlgames(runner, env_creator=lambda **_: None)
    for name in (*ALGORITHMS, "rlgames_sac"):
        assert name in runner.algo_factory._builders
        assert name in runner.player_factory._builders
