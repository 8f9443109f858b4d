"""The learning checks' runs, started in the background when the session's test loop starts
(``conftest.py``), two at a time at low priority: they soak up the cores that the
process tests leave idle while waiting on their runs, and their tests, ordered last, collect
them. A serial run is deterministic for its seed, so the priority changes only when it ends."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import threading
import time

from runtime_helpers import LEARNING_BUDGETS, learning_run

NICENESS = 19


def _init_worker(parent: int) -> None:
    """Low priority, and gone within a second of the test session (a killed pytest included).

    With the kernel's autogroup scheduling (one group per session, equal shares between groups),
    a niced process still gets a whole group's share against the runs the tests start in their
    own sessions; so each worker gets a session of its own and lowers that group's priority."""
    os.setsid()
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(NICENESS))
    except OSError:  # no autogroup scheduling: the plain niceness is what counts
        pass
    os.nice(NICENESS)

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


class LearningPool:
    def __init__(self, agents):
        self.runs_dir = tempfile.mkdtemp(prefix="learning-runs-")
        self.pool = multiprocessing.get_context("spawn").Pool(2, initializer=_init_worker, initargs=(os.getpid(),))
        self.jobs = {agent: self.pool.apply_async(learning_run, (agent, LEARNING_BUDGETS[agent], self.runs_dir))
                     for agent in sorted(agents, key=lambda a: -LEARNING_BUDGETS[a])}

    def result(self, agent: str, timeout: float) -> list:
        """The run's success rates, one per metrics row (raises the run's error, or TimeoutError)."""
        return self.jobs[agent].get(timeout=timeout)

    def close(self) -> None:
        self.pool.terminate()  # the workers install no signal handlers: SIGTERM ends them
        self.pool.join()
        shutil.rmtree(self.runs_dir, ignore_errors=True)
