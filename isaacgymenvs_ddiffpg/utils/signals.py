"""Stopping a run cleanly on Ctrl-C, SIGTERM (preemption) and SIGUSR2 (SLURM's time limit)."""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)


class StopRequest:
    """While active, the stop signals only set `signum`; the loop checks it between iterations,
    writes a final checkpoint and then calls `hand_over` (SIGUSR2: the handler that was there
    before, e.g. submitit's, which requeues the job) or stops.

    A second Ctrl-C while the checkpoint is written interrupts at once. Outside the main thread
    signals cannot be caught, so there the context does nothing.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: stop now
        self.signum = signum

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def hand_over(self) -> None:
        """Pass a SIGUSR2 on to the handler installed before this context (submitit's requeues
        the job and exits); a no-op for other signals or without such a handler."""
        previous = self._previous.get(signal.SIGUSR2)
        if self.signum == signal.SIGUSR2 and callable(previous):
            previous(signal.SIGUSR2, None)
