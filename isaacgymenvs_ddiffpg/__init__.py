"""isaacgymenvs_ddiffpg: batched MuJoCo robotics tasks and DDiffPG on rl-games."""

__version__ = "0.1.0"
