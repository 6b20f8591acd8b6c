"""Playing a trained policy by mode (k, z = 0 or all), with replanning, videos, atlas, export."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.learning.agents import Agent, config_from_dict, make_agent
from isaacgymenvs_ddiffpg.learning.checkpoint import check_compatible, load_checkpoint
from isaacgymenvs_ddiffpg.learning.core import EnvSpec
from isaacgymenvs_ddiffpg.learning.episodes import EpisodeLog
from isaacgymenvs_ddiffpg.learning.evaluation import VecEnv, run_episodes, share, success_table
from isaacgymenvs_ddiffpg.learning.replan import ReplanConfig, Replanner
from isaacgymenvs_ddiffpg.utils.errors import ConfigError
from isaacgymenvs_ddiffpg.viz.config import VizConfig
from isaacgymenvs_ddiffpg.viz.video import EpisodeRecorder, VideoConfig, mode_label


@dataclass
class PlayOptions:
    """What a play run shows and writes besides the printed summary.

    Attributes:
        run_dir: run folder for `episodes.npz`, `videos/`, `modes/` and `summaries/` (None:
            write nothing).
        video: `video.capture` films env `viewer_env` in each mode played (`videos/*.mp4`).
        headless: False opens MuJoCo's viewer first (where there is a display).
        viewer_env: the env shown in the viewer and filmed.
        replan: compare each mode with and without online replanning.
        replan_config: when replanning gives up on a mode.
        mode_atlas: draw the played episodes coloured by mode (`modes/*.png`).
    """

    run_dir: Path | None = None
    video: VideoConfig = field(default_factory=VideoConfig)
    headless: bool = True
    viewer_env: int = 0
    replan: bool = False
    replan_config: ReplanConfig = field(default_factory=ReplanConfig)
    mode_atlas: bool = True

    @classmethod
    def from_config(cls, viz: VizConfig, run_dir: Path | None) -> PlayOptions:
        """The options `viz` asks for, writing into `run_dir`."""
        return cls(
            run_dir=run_dir,
            video=VideoConfig(capture=viz.capture_video, camera=viz.camera),
            headless=viz.headless,
            viewer_env=viz.viewer_env,
            replan=viz.replan,
            replan_config=ReplanConfig(viz.replan_window, viz.replan_min_progress),
            mode_atlas=viz.mode_atlas,
        )


class Player:
    """Loads a checkpoint and plays one episode per env for each requested mode.

    Args:
        env: the vecenv to play in (`env.task`, where present, is rendered and drawn).
        device: rl device.
        mode: "k" (a mode id; "0" = z = 0, the sampler chooses) or "all" (z = 0, then each mode).
        task_name: checked against the checkpoint's task when both are known.
        options: videos, viewer, replanning, atlas and export (default: none of the files).
    """

    def __init__(
        self,
        env: VecEnv,
        device: str | torch.device,
        mode: str,
        task_name: str = "",
        options: PlayOptions | None = None,
    ):
        self.env = env
        self.info = env.get_env_info()
        self.device = torch.device(device)
        self.mode = str(mode)
        self.task_name = task_name
        self.options = options or PlayOptions()
        self.task = getattr(env, "task", None)
        self.algo: Agent | None = None
        self.checkpoint = ""
        self.iteration = 0

    def restore(self, path: str | Path) -> None:
        """Load the policy and mode embeddings of a checkpoint (the replay is not needed)."""
        spec = EnvSpec.from_env_info(self.info, num_envs=self.env.reset().shape[0])
        state = load_checkpoint(path)
        expect: dict[str, Any] = {
            "task_version": int(self.info.get("task_version", 1)),
            "obs_dim": spec.obs_dim,
            "act_dim": spec.act_dim,
        }
        if self.task_name:
            expect["task"] = self.task_name
        check_compatible(path, state, expect, "play")
        cfg = dataclasses.replace(config_from_dict(state["config"]), memory_size=1)
        self.algo = make_agent(cfg, spec, self.device, seed=0)
        self.algo.load_state_dict(state["algo"], with_replay=False)
        self.iteration = int(state["iteration"])
        self.checkpoint = str(path)

    def modes_to_play(self) -> list[int]:
        """The mode ids `mode` asks for (validated against the checkpoint's modes)."""
        assert self.algo is not None
        known = sorted(self.algo.mode_ids)
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

    def replan_starts(self, modes: list[int]) -> list[int]:
        """Modes replanning starts from: the chosen mode, or every mode for mode=0 / all."""
        assert self.algo is not None
        known = sorted(self.algo.mode_ids)
        if len(known) < 2:
            raise ConfigError(
                f"replan=True switches to another mode when the chosen one stalls, but this "
                f"checkpoint has {len(known)} mode(s) ({known}). Play a checkpoint that found at "
                f"least two modes (train longer, or lower the clustering threshold), or drop "
                f"replan=True."
            )
        return [m for m in modes if m != 0] or list(known)

    # ------------------------------------------------------------------ playing
    def play(self, mode: int, replan: bool = False, film: bool = False) -> dict[str, Tensor]:
        """One episode per env from mode `mode` (replanning from it with `replan`)."""
        assert self.algo is not None
        algo, num_envs = self.algo, self.env.reset().shape[0]
        replanner = None
        if replan:
            cfg = self.options.replan_config
            known = sorted(algo.mode_ids)
            order = known[known.index(mode) :] + known[: known.index(mode)]
            replanner = Replanner(
                order,
                torch.stack([algo.mode_embedding(m) for m in order]),
                torch.full((num_envs,), mode, device=self.device),
                cfg.window,
                cfg.resolved_min_progress(float(self.info.get("coverage_cell", 1.0))),
            )
        recorder = self._recorder(mode_label(mode, replan)) if film else None
        result = run_episodes(
            algo,
            self.env,
            algo.mode_embedding(mode).expand(num_envs, -1),
            int(self.info["max_episode_length"]),
            feature_dim=algo.mode_feature_dim,
            replanner=replanner,
            on_step=recorder,
        )
        if recorder is not None:
            assert self.options.run_dir is not None
            suffix = "_replan" if replan else ""
            name = f"{self.task_name or 'task'}_mode{mode}{suffix}_iter{self.iteration}.mp4"
            result["video"] = recorder.write(self.options.run_dir / "videos" / name)  # type: ignore[assignment]
        return result

    def _recorder(self, label: str) -> EpisodeRecorder:
        if self.task is None or self.options.run_dir is None:
            raise ConfigError(
                "capture_video=True needs a task that can render (a VecTask behind the vecenv) "
                "and a run folder to write videos/ into."
            )
        return EpisodeRecorder(self.task, self.options.viewer_env, self.options.video, label)

    def _open_viewer(self, modes: list[int]) -> None:
        """With headless=False, play in MuJoCo's viewer until its window is closed."""
        from isaacgymenvs_ddiffpg.viz.viewer import EnvViewer, play_in_viewer

        assert self.algo is not None
        if self.task is None:
            print("headless=False: this vecenv has no MuJoCo task to show; continuing headless.")
            return
        viewer = EnvViewer.open(self.task, self.options.viewer_env)
        if viewer is None:
            return
        try:
            algo = self.algo
            modes_in_order = sorted(algo.mode_ids)
            play_in_viewer(viewer, algo, self.env, modes_in_order, algo.mode_embedding, modes[0])
        finally:
            viewer.close()

    def run(self) -> dict[str, Any]:
        """Play every requested mode; prints one line per mode and a JSON summary."""
        if self.algo is None:
            raise ConfigError("test=True needs checkpoint=<path to a .pth>.")
        options, num_goals = self.options, int(self.info["num_goals"])
        modes = self.modes_to_play()
        starts = self.replan_starts(modes) if options.replan else []
        if not options.headless:
            self._open_viewer(modes)
        log = EpisodeLog()
        summary: dict[str, Any] = {"checkpoint": self.checkpoint, "modes": {}}
        fixed: dict[int, dict[str, Tensor]] = {}
        for mode in modes:
            result = fixed[mode] = self.play(mode, film=options.video.capture)
            log.add(result, mode)
            table = self._table(result, mode, num_goals)
            summary["modes"][str(mode)] = table
            name = "mode 0 (z = 0, the policy picks)" if mode == 0 else f"mode {mode}"
            goals = " ".join(f"goal {k}: {table[f'goal_{k}']:.2f}" for k in range(1, num_goals + 1))
            print(
                f"{name}: success {table['success_rate']:.2f} | {goals} | "
                f"length {table['episode_length']:.1f} | {table['episodes']} episodes"
            )
        if starts:
            summary["replan"] = self._replan(starts, fixed, log, num_goals)
        if options.run_dir is not None:
            episodes = log.save(options.run_dir / "episodes.npz", self.task_name, self.iteration)
            summary["episodes_file"] = str(episodes)
            if options.mode_atlas:
                summary["atlas"] = str(self._atlas(log, summary))
        print(json.dumps(summary))
        return summary

    def _table(self, result: dict[str, Tensor], mode: int, num_goals: int) -> dict[str, Any]:
        num_envs = result["success"].shape[0]
        table: dict[str, Any] = success_table(
            result["success"], torch.full((num_envs,), mode), num_goals
        )
        table.pop(f"mode_{mode}")
        table["episode_length"] = float(result["length"].float().mean())
        table["episodes"] = num_envs
        if "video" in result:
            table["video"] = str(result["video"])
        return table

    def _replan(
        self,
        starts: list[int],
        fixed: dict[int, dict[str, Tensor]],
        log: EpisodeLog,
        num_goals: int,
    ) -> dict[str, Any]:
        """Success with and without replanning from each start mode (same number of episodes)."""
        cfg = self.options.replan_config
        report: dict[str, Any] = {
            "window": cfg.window,
            "min_progress": cfg.resolved_min_progress(float(self.info.get("coverage_cell", 1.0))),
            "start_modes": {},
        }
        totals = {"fixed": [], "replan": []}
        for mode in starts:
            if mode not in fixed:
                fixed[mode] = self.play(mode)
                log.add(fixed[mode], mode)
            replanned = self.play(mode, replan=True, film=self.options.video.capture)
            log.add(replanned, mode, replanned=True)
            without = share(fixed[mode]["success"] > 0)
            with_replan = share(replanned["success"] > 0)
            totals["fixed"].append(without)
            totals["replan"].append(with_replan)
            entry = {
                "success_fixed": without,
                "success_replan": with_replan,
                "switches_mean": float(replanned["switches"].float().mean()),
                "episodes": int(replanned["success"].shape[0]),
            }
            for goal in range(1, num_goals + 1):
                entry[f"replan_goal_{goal}"] = share(replanned["success"] == goal)
            report["start_modes"][str(mode)] = entry
            print(
                f"replan from mode {mode}: success {with_replan:.2f} with replanning, "
                f"{without:.2f} without | {entry['switches_mean']:.2f} switches per episode"
            )
        report["success_fixed"] = sum(totals["fixed"]) / len(starts)
        report["success_replan"] = sum(totals["replan"]) / len(starts)
        return report

    def _atlas(self, log: EpisodeLog, summary: dict[str, Any]) -> Path:
        """Played episodes coloured by the mode played, failed ones faint (replanned ones left
        out)."""
        from torch.utils.tensorboard import SummaryWriter

        from isaacgymenvs_ddiffpg.viz.atlas import ModeTrajectories, task_map, write_atlas

        assert self.options.run_dir is not None
        run_dir = self.options.run_dir
        episodes = log.columns()
        shown = ~episodes["replanned"]
        trajectories = ModeTrajectories(
            paths=episodes["path"][shown],
            lengths=episodes["length"][shown] + 1,
            modes=episodes["mode"][shown],
            success_rate={int(m): t["success_rate"] for m, t in summary["modes"].items()},
            success=episodes["goal"][shown] > 0,
        )
        name = f"{self.task_name or 'task'}_play_iter{self.iteration}"
        writer = SummaryWriter(str(run_dir / "summaries"))
        try:
            path = run_dir / "modes" / f"{name}.png"
            write_atlas(
                trajectories,
                task_map(self.task),
                path,
                f"{self.task_name}: played modes, checkpoint iteration {self.iteration}",
                writer,
                self.iteration,
            )
        finally:
            writer.close()
        return path
