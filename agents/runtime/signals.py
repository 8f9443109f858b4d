"""SIGINT and SIGTERM as a stop request, never as an exception in the middle of an import."""

from __future__ import annotations

import signal
import threading


class StopRequest:
    """SIGINT and SIGTERM set a flag instead of raising or killing (installed from the CLI's start
    to the run's end, so a signal during start-up is as clean as one later); calling the object
    says whether one came. Re-entrant: the outermost ``with`` installs and restores the handlers."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signalled = False
        self.previous: dict = {}
        self.depth = 0

    def __call__(self) -> bool:
        return self.signalled

    def _handle(self, signum, frame) -> None:
        self.signalled = True

    def __enter__(self) -> StopRequest:
        if self.depth == 0 and threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        self.depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self.depth -= 1
        if self.depth == 0:
            for sig, handler in self.previous.items():
                signal.signal(sig, handler)
            self.previous = {}

    def reinstall(self) -> None:
        """Take the signals back after a library installed its own handlers (``ray.init`` does)."""
        if self.depth and threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                signal.signal(sig, self._handle)
