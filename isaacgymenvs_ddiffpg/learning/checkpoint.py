"""Checkpoint files: atomic writes, and loads that explain a missing, corrupt or foreign file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from isaacgymenvs_ddiffpg.utils.errors import CheckpointError

FORMAT = "isaacgymenvs_ddiffpg/ddiffpg-v1"


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write `state` to `path` atomically: a crash mid-write never leaves a truncated file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(
    path: str | Path,
    expect: dict[str, Any] | None = None,
    expect_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Load a DDiffPG checkpoint on the CPU and check it fits the run.

    Args:
        path: the .pth file.
        expect: top-level values the checkpoint must have (e.g. task, obs_dim); a falsy
            expected value is not checked.
        expect_config: `config` values that must match (sizes of the saved replay and nets).

    Raises:
        CheckpointError: missing, unreadable, not a DDiffPG checkpoint, or incompatible.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"Checkpoint {str(path)!r} does not exist. Pass the path of a .pth written by a "
            f"DDiffPG run, e.g. checkpoint=runs/<experiment>/nn/last.pth."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises several types for damaged files
        raise CheckpointError(
            f"Checkpoint {str(path)!r} could not be read ({type(err).__name__}: {err}); the file "
            f"is truncated or corrupt. Use another checkpoint of the run (nn/*.pth)."
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{str(path)!r} is not a DDiffPG checkpoint of this version (format {found!r}, "
            f"expected {FORMAT!r}); play or resume it with the algorithm that wrote it."
        )
    for key, want in (expect or {}).items():
        if want and state.get(key) != want:
            raise CheckpointError(_mismatch(path, key, state.get(key), want))
    saved_config = state.get("config", {})
    for key, want in (expect_config or {}).items():
        if saved_config.get(key) != want:
            raise CheckpointError(_mismatch(path, f"ddiffpg.{key}", saved_config.get(key), want))
    return state


def _mismatch(path: Path, key: str, saved: Any, want: Any) -> str:
    return (
        f"Checkpoint {str(path)!r} is incompatible with this run: it has {key}={saved!r}, this "
        f"run has {key}={want!r}. Resume with the same task and settings as the run that wrote "
        f"it (see its config.yaml), or start a new run without checkpoint=."
    )
