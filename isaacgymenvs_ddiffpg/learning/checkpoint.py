"""Checkpoint files: durable atomic writes, loads that never run code, and clear refusals of a
missing, corrupt, unsafe or incompatible file."""

from __future__ import annotations

import errno
import os
import pickle
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from isaacgymenvs_ddiffpg.utils.errors import CheckpointError

FORMAT = "isaacgymenvs_ddiffpg/ddiffpg-v1"
ITERATION = re.compile(r"_iter(\d+)\.pth$")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(state: dict[str, Any], path: str | Path, last_good: Path | None = None) -> None:
    """Write `state` to `path` atomically and durably.

    The state goes to a temporary file in the same folder, which is flushed to disk (fsync)
    and renamed over `path`; the folder is synced after the rename. A crash or a full disk
    mid-write never leaves a truncated `path`, and the previous file there stays intact.

    Raises:
        CheckpointError: the disk is full (or the write failed): one paragraph naming the file,
            the free space and `last_good`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        failure = _os_error(err)  # torch's writer may wrap the OSError of a full disk
        if failure is not None:
            raise CheckpointError(_write_failed(path, failure, last_good)) from None
        raise


def _os_error(err: BaseException | None) -> OSError | None:
    """The OSError behind `err` (itself, or one it was raised from or during), if any."""
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, OSError):
            return err
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


def link_checkpoint(source: str | Path, target: str | Path) -> None:
    """Make `target` the same file as `source` (e.g. `nn/last.pth` after a periodic save),
    atomically: a hard link renamed over `target`, or a copy where links are not possible."""
    source, target = Path(source), Path(target)
    tmp = target.with_name(f".{target.name}.link")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def _write_failed(path: Path, err: OSError, last_good: Path | None) -> str:
    free = shutil.disk_usage(path.parent).free
    reason = "the disk is full" if err.errno == errno.ENOSPC else f"it failed ({err.strerror})"
    good = (
        f"The last good checkpoint is {last_good}; resume from it with checkpoint={last_good}."
        if last_good is not None
        else "No checkpoint of this run was written before."
    )
    return (
        f"Could not write checkpoint {path}: {reason}; {free / 2**20:.1f} MiB are free on its "
        f"file system. The previous file at that path, if any, is intact. {good} Free some "
        f"space (or move the run with experiment=...) and resume."
    )


def newest_checkpoint(folder: str | Path) -> Path | None:
    """The checkpoint to resume a run from: `last.pth`, else the `*_iter<N>.pth` with the
    largest N (by number, not by name), else None."""
    folder = Path(folder)
    if (folder / "last.pth").is_file():
        return folder / "last.pth"
    numbered = [
        (int(match.group(1)), path)
        for path in folder.glob("*.pth")
        if (match := ITERATION.search(path.name))
    ]
    return max(numbered)[1] if numbered else None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU without running any code from the file.

    The file is unpickled with torch's `weights_only` loader, which only builds tensors and
    plain Python values; a file that would need anything else (e.g. a crafted pickle that runs a
    command) is refused.

    Raises:
        CheckpointError: missing, unreadable, unsafe, or not a checkpoint of this project.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"Checkpoint {str(path)!r} does not exist. Pass the path of a .pth written by a "
            f"run, e.g. checkpoint=runs/<experiment>/nn/last.pth."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"Checkpoint {str(path)!r} was refused: it holds objects other than tensors and plain "
            f"values ({str(err).splitlines()[0]}), which loading would have to run as code. Only "
            f"load checkpoints written by this project; if you trust the file, re-save its "
            f"tensors with torch.save."
        ) from None
    except Exception as err:  # torch raises several types for damaged files
        raise CheckpointError(
            f"Checkpoint {str(path)!r} could not be read ({type(err).__name__}: {err}); the file "
            f"is truncated or corrupt. Use another checkpoint of the run (nn/*.pth)."
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{str(path)!r} is not a checkpoint of this version of isaacgymenvs_ddiffpg (format "
            f"{found!r}, expected {FORMAT!r}); play or resume it with the version that wrote it."
        )
    state.setdefault("task_version", 1)  # written before tasks had versions: all were 1
    return state


def check_compatible(
    path: str | Path, state: Mapping[str, Any], expect: Mapping[str, Any], action: str
) -> None:
    """Refuse a checkpoint whose recorded dependencies differ from this run's.

    Args:
        path: the checkpoint file (named in the message).
        state: the loaded checkpoint.
        expect: dotted keys of what the run depends on (e.g. ``task``, ``task_version``,
            ``config.algorithm``, ``task_env.layout``) and this run's values.
        action: what the run wants to do with it ("resume" or "play").

    Raises:
        CheckpointError: one paragraph listing every difference and the fix.
    """
    differences = []
    for key, want in expect.items():
        have: Any = state
        for part in key.split("."):
            have = have.get(part) if isinstance(have, Mapping) else None
        if have != want:
            differences.append(f"{key}: checkpoint {have!r}, this run {want!r}")
    if not differences:
        return
    version = [d for d in differences if d.startswith("task_version")]
    hint = (
        " The task's physics or control changed since the checkpoint was written (see "
        "CHANGELOG.md): it cannot be continued or played on this version; train anew."
        if version
        else f" To {action} it, use the task, its settings and the algorithm of the run that "
        f"wrote it (see that run's config.yaml), or start a new run without checkpoint=."
    )
    raise CheckpointError(
        f"Checkpoint {str(path)!r} is incompatible with this run ({action}): "
        + "; ".join(differences)
        + "."
        + hint
    )
