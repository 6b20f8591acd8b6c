"""What a run tells its user: a progress bar to the end of its budget with an ETA and the latest
evaluation, one-line messages on the console and in train.log, and tensorboard scalars."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm


def eval_summary(table: Mapping[str, float]) -> str:
    """'z0 0.55 | m1 1.00 m2 0.90' from an evaluation table (`success_z0`,
    `success_mode_<k>`)."""
    text = f"z0 {table.get('success_z0', 0.0):.2f}"
    modes = sorted(int(k.removeprefix("success_mode_")) for k in table if "success_mode_" in k)
    if modes:
        text += " | " + " ".join(f"m{k} {table[f'success_mode_{k}']:.2f}" for k in modes)
    return text


def duration(seconds: float) -> str:
    """'45 s', '12 min', '3.4 h' or '2.1 days'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


class RunLog:
    """The outputs of a run that a user reads: only the main rank writes them.

    Args:
        run_dir: the run folder (`summaries/` and `train.log` are written there).
        enabled: whether this process writes (rank 0).
        total: the iteration the run ends at, for the bar and its ETA.
        initial: the iteration it starts from (a resumed run).
    """

    def __init__(self, run_dir: Path, enabled: bool, total: int, initial: int) -> None:
        self.enabled = enabled
        self.writer = SummaryWriter(str(run_dir / "summaries")) if enabled else None
        self.file: TextIO | None = open(run_dir / "train.log", "a") if enabled else None  # noqa: SIM115
        self.bar = tqdm(
            total=total, initial=initial, unit="it", dynamic_ncols=True, disable=not enabled
        )
        self.postfix = ""

    def say(self, message: str) -> None:
        """A line for the user: on the console (above the bar) and in train.log."""
        if not self.enabled:
            return
        self.bar.write(message)
        self.note(message)

    def note(self, message: str) -> None:
        """A line for train.log only (the periodic progress lines)."""
        if self.file is not None:
            self.file.write(message + "\n")
            self.file.flush()

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def progress(self, env_steps: int, budget: int, modes: int, latest: str) -> None:
        """Set the bar's text: env steps of the budget (with thousands separators), modes found
        and the latest evaluation."""
        self.postfix = f"{env_steps:,}/{budget:,} env steps | {modes} modes"
        if latest:
            self.postfix += f" | eval {latest}"
        self.bar.set_postfix_str(self.postfix, refresh=False)

    def status(self, text: str) -> None:
        """What the run is doing besides stepping (e.g. "evaluating"), or "" when stepping."""
        self.bar.set_description_str(text)

    def advance(self) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()
        if self.file is not None:
            self.file.close()
            self.file = None
