"""One process per run folder.

Runs named by the clock (`<task>_<train>_<time>`, plays `play/<time>`) collide when several
start in the same second, as a shell loop or a job array starts them; two processes then write
each other's checkpoints or outputs. A process therefore holds an exclusive lock on
`<run folder>/.lock` for as long as it lives (an advisory `flock`, which the operating system
drops when the process ends, however it ends), and a run whose folder is held goes to the next
free `<name>_2`, `<name>_3`, ...
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

if sys.platform != "win32":
    import fcntl

LOCK_NAME = ".lock"
MAX_SUFFIX = 1000

_held: dict[str, tuple[Path, IO[str]]] = {}  # folder asked for -> (folder claimed, lock file)


def _try_lock(folder: Path) -> IO[str] | None:
    """The open lock file of `folder`, locked by this process; None if another holds it."""
    assert sys.platform != "win32"
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK_NAME, "a")  # noqa: SIM115 (held open while the process lives)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def claim_run_folder(folder: str | Path) -> Path:
    """Lock `folder` for this process, or the first of `<folder>_2`, `<folder>_3`, ... that no
    other live process holds, and return the folder locked. Asking again for the same folder
    returns the same answer; the lock lasts until the process ends.

    Raises:
        RuntimeError: if `MAX_SUFFIX` folders of that name are all held.
    """
    asked = str(folder)
    if asked in _held:
        return _held[asked][0]
    base = Path(folder)
    if sys.platform == "win32":  # no advisory locks there: folders are not claimed
        return base
    for n in range(1, MAX_SUFFIX + 1):
        candidate = base if n == 1 else base.with_name(f"{base.name}_{n}")
        handle = _try_lock(candidate)
        if handle is not None:
            if n > 1:
                print(f"{base} is in use by another process; this run writes to {candidate}.")
            _held[asked] = (candidate, handle)
            return candidate
    raise RuntimeError(f"{MAX_SUFFIX} run folders named {base}_<n> are all in use")
