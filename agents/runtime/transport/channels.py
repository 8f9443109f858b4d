"""Channels between processes on one machine: bounded queues, shared counters, the trajectory transport.

Every data queue is bounded (back-pressure) and every blocking get and put here has a timeout
and re-checks a stop event, so no process can block forever on a peer that died.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass
from typing import Any

POLL_S = 0.2


@dataclass
class Counters:
    """Shared run counters (``multiprocessing.Value`` with a lock each)."""

    env_steps: Any
    episodes: Any
    learner_steps: Any
    distill_steps: Any

    @classmethod
    def create(cls, context, start: dict | None = None) -> "Counters":
        start = start or {}
        return cls(*(context.Value("q", int(start.get(name, 0))) for name in
                     ("env_steps", "episodes", "learner_steps", "distill_steps")))

    @staticmethod
    def add(value, n: int) -> int:
        with value.get_lock():
            value.value += n
            return value.value

    def snapshot(self) -> dict[str, int]:
        """The counters, distill steps read before learner steps: the distill steps a snapshot shows
        were due by the learner steps it shows, up to one in flight per other distill process
        (so the DpRL bound holds in every metrics row)."""
        distill_steps = self.distill_steps.value
        return {"env_steps": self.env_steps.value, "episodes": self.episodes.value,
                "learner_steps": self.learner_steps.value, "distill_steps": distill_steps}


class TrajectoryTransport:
    """Actors -> learner side: ``put(item, stop)`` (or ``try_put``) from actors or the Ray driver's
    forwarding loop, ``get(stop)`` and ``depth()`` on the learner side."""

    def __init__(self, context, maxsize: int):
        self._queue = context.Queue(maxsize=maxsize)

    def put(self, item, stop) -> bool:
        return put(self._queue, item, stop)

    def try_put(self, item) -> bool:
        """Put without waiting; False if the transport is full."""
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            return False

    def get(self, stop):
        return get(self._queue, stop)

    def depth(self) -> int:
        try:
            return self._queue.qsize()
        except NotImplementedError:  # macOS
            return -1

    def release(self) -> None:
        """Let this process exit without flushing what it put for a reader that may be gone."""
        self._queue.cancel_join_thread()

    def close(self) -> None:
        close_queue(self._queue)


def put(q, item, stop) -> bool:
    """Put with back-pressure; False if the run stopped first."""
    while not stop.is_set():
        try:
            q.put(item, timeout=POLL_S)
            return True
        except queue.Full:
            continue
    return False


def get(q, stop):
    """The next item, or None when the run stopped."""
    while not stop.is_set():
        try:
            return q.get(timeout=POLL_S)
        except queue.Empty:
            continue
    return None


def close_queue(q) -> None:
    """Let the process exit even if items are still buffered for a reader that is gone."""
    q.cancel_join_thread()
    q.close()
