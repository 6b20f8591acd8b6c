"""Playing a trained DDiffPG policy: a chosen mode, z = 0 (the sampler chooses), or every mode."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from isaacgymenvs_ddiffpg.learning.checkpoint import load_checkpoint
from isaacgymenvs_ddiffpg.learning.config import DDiffPGConfig
from isaacgymenvs_ddiffpg.learning.ddiffpg import DDiffPG
from isaacgymenvs_ddiffpg.learning.evaluation import VecEnv, run_episodes, success_table
from isaacgymenvs_ddiffpg.utils.errors import ConfigError


class Player:
    """Loads a checkpoint and plays one episode per env for each requested mode.

    Args:
        env: the vecenv to play in.
        device: rl device.
        mode: "k" (a mode id; "0" = z = 0, the sampler chooses) or "all" (z = 0, then each mode).
        task_name: checked against the checkpoint's task when both are known.
    """

    def __init__(self, env: VecEnv, device: str | torch.device, mode: str, task_name: str = ""):
        self.env = env
        self.info = env.get_env_info()
        self.device = torch.device(device)
        self.mode = str(mode)
        self.task_name = task_name
        self.algo: DDiffPG | None = None
        self.checkpoint = ""

    def restore(self, path: str | Path) -> None:
        """Load the policy and mode embeddings of a checkpoint (the replay is not needed)."""
        obs_dim = self.info["observation_space"].shape[0]
        act_dim = self.info["action_space"].shape[0]
        state = load_checkpoint(
            path, expect={"task": self.task_name, "obs_dim": obs_dim, "act_dim": act_dim}
        )
        cfg = dataclasses.replace(DDiffPGConfig(**state["config"]), memory_size=1)
        num_envs = self.env.reset().shape[0]
        self.algo = DDiffPG(
            cfg,
            obs_dim,
            act_dim,
            int(self.info["mode_feature_dim"]),
            int(self.info["max_episode_length"]),
            num_envs,
            float(self.info["max_reward"]),
            self.device,
            seed=0,
        )
        self.algo.load_state_dict(state["algo"], with_replay=False)
        self.iteration = int(state["iteration"])
        self.checkpoint = str(path)

    def modes_to_play(self) -> list[int]:
        """The mode ids `mode` asks for (validated against the checkpoint's modes)."""
        assert self.algo is not None
        known = self.algo.mode_ids
        if self.mode == "all":
            return [0, *known]
        try:
            mode = int(self.mode)
        except ValueError:
            mode = -1
        if mode != 0 and mode not in known:
            raise ConfigError(
                f"mode={self.mode} is not a mode of this checkpoint: it has modes "
                f"{known or 'none (no successful trajectories were clustered)'}. Use mode=0 "
                f"(the policy picks), one of those ids, or mode=all."
            )
        return [mode]

    def run(self) -> dict[str, Any]:
        """Play every requested mode; prints one line per mode and a JSON summary."""
        if self.algo is None:
            raise ConfigError("test=True needs checkpoint=<path to a .pth>.")
        num_goals = int(self.info["num_goals"])
        summary: dict[str, Any] = {"checkpoint": self.checkpoint, "modes": {}}
        for mode in self.modes_to_play():
            num_envs = self.env.reset().shape[0]
            z = self.algo.mode_embedding(mode).expand(num_envs, -1)
            result = run_episodes(self.algo, self.env, z, int(self.info["max_episode_length"]))
            table = success_table(result["success"], torch.full((num_envs,), mode), num_goals)
            table.pop(f"mode_{mode}")
            table["episode_length"] = float(result["length"].float().mean())
            table["episodes"] = num_envs
            summary["modes"][str(mode)] = table
            name = "mode 0 (z = 0, the policy picks)" if mode == 0 else f"mode {mode}"
            goals = " ".join(f"goal {k}: {table[f'goal_{k}']:.2f}" for k in range(1, num_goals + 1))
            print(
                f"{name}: success {table['success_rate']:.2f} | {goals} | "
                f"length {table['episode_length']:.1f} | {num_envs} episodes"
            )
        print(json.dumps(summary))
        return summary
