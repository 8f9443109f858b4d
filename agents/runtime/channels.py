"""Everything the processes of a parallel run share: queues, counters, events.

Made by the supervisor from the ``spawn`` context and passed to every child. Every queue is
bounded (back-pressure) and every blocking call has a timeout and re-checks the stop event,
so no process can block forever on a peer that died.
"""

from __future__ import annotations

import queue
import traceback
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
        return {name: getattr(self, name).value for name in ("env_steps", "episodes", "learner_steps", "distill_steps")}


class TrajectoryTransport:
    """Actors -> learner side. The one interface a remote transport (Ray) must also provide:
    ``put(item, stop)`` from actors, ``get(stop)`` and ``depth()`` on the learner side."""

    def __init__(self, context, maxsize: int):
        self._queue = context.Queue(maxsize=maxsize)

    def put(self, item, stop) -> bool:
        return put(self._queue, item, stop)

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


def report_error(events, role: str) -> None:
    """Send the current exception's traceback to the supervisor."""
    try:
        events.put(("error", role, traceback.format_exc()), timeout=1.0)
    except Exception:  # noqa: BLE001 - the supervisor also sees the exit code
        pass


@dataclass
class Shared:
    """What the supervisor hands to every child process."""

    config: Any
    stop: Any  # Event: set by the supervisor to end the run
    events: Any  # Queue of (kind, ...) messages to the supervisor
    counters: Counters
    transport: TrajectoryTransport
    learner_queue: Any  # runner -> learner batches (None without a runner)
    replay_queue: Any  # runner -> replay batches (ald)
    replay_requests: Any  # distill -> replay: distill ids
    replay_responses: list  # replay -> distill j: batches
    actor_store: Any
    runner_store: Any
    run_dir: str
    resume_path: str | None
    wall_clock_before: float

    def emit(self, *message) -> None:
        """Best-effort report to the supervisor (never blocks a worker)."""
        try:
            self.events.put_nowait(message)
        except queue.Full:
            pass


def run_role(shared: Shared, role: str, threads: int, body) -> None:
    """Run a child process's ``body()`` the way every role must run.

    SIGINT is ignored (a terminal's Ctrl-C reaches the whole process group; the supervisor
    alone decides how to stop, so the learner can still write its final checkpoint); torch
    gets ``threads`` intra-op threads; an exception is reported to the supervisor with its
    traceback and exits with status 1; and on the way out no queue feeder thread may block
    the exit waiting for a reader that is gone.
    """
    import signal
    import sys

    from agents.runtime.state import torch_threads

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch_threads(threads)
    code = 0
    try:
        body()
    except Exception:  # noqa: BLE001
        report_error(shared.events, role)
        code = 1
    finally:
        for q in (shared.events, shared.learner_queue, shared.replay_queue, shared.replay_requests,
                  *shared.replay_responses):
            if q is not None:
                q.cancel_join_thread()
        shared.transport.release()
    sys.exit(code)
