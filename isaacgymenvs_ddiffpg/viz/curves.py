"""Learning curves of a run: success under z = 0 and each mode, and modes found, vs env steps."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from isaacgymenvs_ddiffpg.viz.atlas import PAD_INCHES, mode_color


@dataclass
class EvalRecord:
    """One evaluation of a run.

    Attributes:
        env_steps: env steps taken when it ran (all envs, all ranks).
        success_z0: success rate under z = 0 (the policy picks the mode).
        success_per_mode: mode id -> success rate under that mode's embedding.
        num_modes: modes found by then.
    """

    env_steps: int
    success_z0: float
    success_per_mode: dict[int, float] = field(default_factory=dict)
    num_modes: int = 0

    @classmethod
    def from_table(cls, table: Mapping[str, float], env_steps: int, num_modes: int) -> EvalRecord:
        """The record of an evaluation's table (`success_z0`, `success_mode_<k>`)."""
        per_mode = {
            int(key.removeprefix("success_mode_")): float(value)
            for key, value in table.items()
            if key.startswith("success_mode_")
        }
        return cls(int(env_steps), float(table.get("success_z0", 0.0)), per_mode, int(num_modes))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, line: str) -> EvalRecord:
        raw = json.loads(line)
        per_mode = {int(k): float(v) for k, v in raw.get("success_per_mode", {}).items()}
        return cls(int(raw["env_steps"]), float(raw["success_z0"]), per_mode, raw["num_modes"])


def mode_series(history: Sequence[EvalRecord], mode: int) -> tuple[np.ndarray, np.ndarray]:
    """(S,) env steps and (S,) success of a mode, from the first record that has it to the last;
    NaN (a gap in the line) where a record in between lacks it."""
    present = [k for k, record in enumerate(history) if mode in record.success_per_mode]
    if not present:
        return np.zeros(0), np.zeros(0)
    span = history[present[0] : present[-1] + 1]
    steps = np.array([record.env_steps for record in span], dtype=float)
    rates = np.array([record.success_per_mode.get(mode, np.nan) for record in span], dtype=float)
    return steps, rates


def env_steps_label(steps: float, _position: object = None) -> str:
    """An env-step tick: 0, 800, 40k, 2.5M."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(steps) >= size:
            return f"{steps / size:g}{suffix}"
    return f"{steps:g}"


def curves_figure(history: Sequence[EvalRecord], title: str) -> Figure:
    """Two panels sharing the env-step axis: success (z = 0 and each mode, in the atlas's mode
    colours) and the number of modes found."""
    figure = Figure(figsize=(9.0, 6.0), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    success, found = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    steps = np.array([record.env_steps for record in history], dtype=float)
    success.plot(steps, [r.success_z0 for r in history], color="black", lw=2.0, marker="o",
                 markersize=3, label="z = 0 (the policy picks)")  # fmt: skip
    modes = sorted({mode for record in history for mode in record.success_per_mode})
    for mode in modes:
        xs, ys = mode_series(history, mode)
        success.plot(xs, ys, color=mode_color(mode), lw=1.4, marker="o", markersize=3,
                     label=f"mode {mode}")  # fmt: skip
    success.set_ylim(-0.03, 1.03)
    success.set_ylabel("success rate")
    success.grid(alpha=0.3)
    handles, labels = success.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside right upper", fontsize=9, frameon=False)
    found.plot(steps, [r.num_modes for r in history], drawstyle="steps-post", color="#444444",
               marker="o", markersize=3)  # fmt: skip
    found.set_ylabel("modes found")
    found.set_xlabel("env steps")
    found.xaxis.set_major_formatter(FuncFormatter(env_steps_label))  # 2.5M, not "2.5 1e6"
    found.set_ylim(bottom=0)
    found.yaxis.get_major_locator().set_params(integer=True)
    found.grid(alpha=0.3)
    if not history:
        success.text(0.5, 0.5, "no evaluation yet", ha="center", va="center",
                     transform=success.transAxes)  # fmt: skip
    figure.suptitle(title, fontsize=11)
    return figure


def write_curves(history: Sequence[EvalRecord], path: Path, title: str) -> Path:
    """Draw the learning curves of `history` into a PNG at `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    curves_figure(history, title).savefig(path, bbox_inches="tight", pad_inches=PAD_INCHES)
    return path


class LearningCurves:
    """A run's evaluation history, kept as JSON lines next to its PNG, which `append` redraws.

    A run resumed in the same folder continues the history; records at or past the env steps
    of a new one (evaluations the resumed checkpoint never saw) are dropped.

    Args:
        path: the PNG (the history goes to the same name with suffix `.jsonl`).
        title: the figure's title.
    """

    def __init__(self, path: Path, title: str) -> None:
        self.path, self.title = Path(path), title
        self.log = self.path.with_suffix(".jsonl")
        self.history: list[EvalRecord] = []
        if self.log.is_file():
            lines = self.log.read_text().splitlines()
            self.history = [EvalRecord.from_json(line) for line in lines if line.strip()]

    def append(self, record: EvalRecord) -> Path:
        """Add one evaluation, rewrite the history and the PNG; returns the PNG's path."""
        self.history = [r for r in self.history if r.env_steps < record.env_steps] + [record]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.write_text("".join(r.to_json() + "\n" for r in self.history))
        return write_curves(self.history, self.path, self.title)
