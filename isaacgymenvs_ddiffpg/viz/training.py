"""What a training run shows: eval videos every `capture_video_freq` iterations, the mode atlas
and the learning curves at every evaluation, and (with `headless=False`) the viewer on one
training env."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from isaacgymenvs_ddiffpg.viz.config import VizConfig
from isaacgymenvs_ddiffpg.viz.video import EpisodeRecorder, VideoConfig, mode_label

if TYPE_CHECKING:  # the atlas pulls in matplotlib: imported when an atlas is drawn
    from isaacgymenvs_ddiffpg.viz.atlas import ModeLearner


class TrainingViz:
    """Hooks the Trainer calls: `show` every iteration, `recorder` before an evaluation and
    `publish` after it.

    Args:
        run_dir: the run folder (`videos/` and `modes/` are written there; the learning curves
            are `modes/<task>_curves.png`, their history `modes/<task>_curves.jsonl`).
        task_name: names the files.
        video: video settings (`capture` off: no videos).
        mode_atlas: draw the atlas at each re-clustering.
        headless: False opens MuJoCo's viewer on the first `show` (where there is a display).
        viewer_env: the training env the viewer shows.
    """

    def __init__(
        self,
        run_dir: Path,
        task_name: str,
        video: VideoConfig,
        mode_atlas: bool = True,
        headless: bool = True,
        viewer_env: int = 0,
    ) -> None:
        self.run_dir, self.task_name = Path(run_dir), task_name or "task"
        self.video, self.mode_atlas = video, mode_atlas
        self.want_viewer, self.viewer_env = not headless, viewer_env
        self.viewer: Any = None
        self.next_video_iteration = 0
        self.pending: EpisodeRecorder | None = None
        self.curves: Any = None  # the run's `LearningCurves`, made at the first evaluation

    @classmethod
    def from_config(cls, viz: VizConfig, run_dir: Path, task_name: str) -> TrainingViz:
        """The hooks `viz` asks for (videos, atlas, viewer) of a run in `run_dir`."""
        video = VideoConfig(
            capture=viz.capture_video, freq=viz.capture_video_freq, camera=viz.camera
        )
        return cls(
            run_dir,
            task_name,
            video,
            mode_atlas=viz.mode_atlas,
            headless=viz.headless,
            viewer_env=viz.viewer_env,
        )

    def show(self, env: Any) -> None:
        """Show the viewer's env after an iteration (opens the viewer the first time)."""
        if not self.want_viewer:
            return
        if self.viewer is None:
            from isaacgymenvs_ddiffpg.viz.viewer import EnvViewer

            self.want_viewer = False  # asked once; reset below if a window opened
            task = getattr(env, "task", None)
            label = f"training, env {self.viewer_env}"
            if task is not None:
                self.viewer = EnvViewer.open(task, self.viewer_env, label=label)
            self.want_viewer = self.viewer is not None
        if self.viewer is not None and not self.viewer.sync():
            self.viewer, self.want_viewer = None, False  # window closed: go on headless

    def recorder(self, eval_env: Any, iteration: int) -> EpisodeRecorder | None:
        """A recorder of eval env 0 (playing z = 0) when a video is due at `iteration`."""
        task = getattr(eval_env, "task", None)
        if not self.video.capture or task is None or iteration < self.next_video_iteration:
            return None
        self.next_video_iteration = (iteration // self.video.freq + 1) * self.video.freq
        label = f"{mode_label(0)}, iteration {iteration}"
        self.pending = EpisodeRecorder(task, 0, self.video, label=label)
        return self.pending

    def publish(
        self,
        algo: ModeLearner,
        eval_env: Any,
        table: Mapping[str, float],
        iteration: int,
        writer: Any,
        step: int,
    ) -> None:
        """After an evaluation: write the pending video, the learning curves and the mode atlas.

        Args:
            algo: the agent (its replay and modes are drawn).
            eval_env: the evaluation vecenv (its task gives the atlas's map).
            table: the evaluation's table (`success_z0`, `success_mode_<k>`).
            iteration: the training iteration.
            writer: tensorboard `SummaryWriter` (None: no atlas).
            step: env steps so far.
        """
        if self.pending is not None and self.pending.frames:
            name = f"{self.task_name}_mode0_iter{iteration}"
            self.pending.write(self.run_dir / "videos" / f"{name}.mp4")
            if writer is not None:
                self.pending.add_to_tensorboard(writer, "videos/eval_mode0", step)
        self.pending = None
        from isaacgymenvs_ddiffpg.viz.curves import EvalRecord, LearningCurves

        if self.curves is None:
            png = self.run_dir / "modes" / f"{self.task_name}_curves.png"
            self.curves = LearningCurves(png, f"{self.task_name}: learning curves")
        self.curves.append(EvalRecord.from_table(table, step, len(algo.mode_ids)))
        if self.mode_atlas and writer is not None and algo.learns_modes:
            from isaacgymenvs_ddiffpg.viz.atlas import replay_trajectories, task_map, write_atlas

            rates = {
                int(key.removeprefix("success_mode_")): value
                for key, value in table.items()
                if key.startswith("success_mode_")
            }
            rates[0] = table.get("success_z0", 0.0)
            write_atlas(
                replay_trajectories(algo, rates),
                task_map(getattr(eval_env, "task", None)),
                self.run_dir / "modes" / f"{self.task_name}_iter{iteration}.png",
                f"{self.task_name}: modes at iteration {iteration} ({step} env steps)",
                writer,
                step,
            )
