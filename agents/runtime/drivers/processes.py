"""The parallel driver's process bodies: each runs one role's component in a loop, moving data
between the role and its channels, and nothing else (the roles come from
:mod:`agents.runtime.assembly`, exactly as in the serial driver).

Every body runs under :func:`run_role`: SIGINT and SIGTERM are left to the supervisor (a
terminal's Ctrl-C, ``timeout``, ``scancel`` and ``kill -TERM -PGID`` signal the whole process
group, and the learner must still write its final checkpoint), and a watchdog stops the run if
the supervisor itself disappears (SIGKILL, the OOM killer), so no role trains on unsupervised:
every role stops within a second; the learner then writes a final checkpoint if it can take the
run directory's lock (no new run has), and a role still alive after its grace period exits hard.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

import torch

from agents.runtime import checkpoint
from agents.runtime.assembly import (Stores, learner_threads, make_actor, make_distiller, make_feed, make_learner,
                                     make_replay, torch_threads)
from agents.runtime.faults import RolloutFaults, injected_delay
from agents.runtime.roles.distill import distill_steps_due
from agents.runtime.run_directory import FINAL_SAVE, FINAL_SAVE_GRACE_S, RunLock
from agents.runtime.topology import topology_of
from agents.runtime.transport.channels import Counters, TrajectoryTransport, get, put

WATCHDOG_S = 0.5
HAND_OVER_POLL_S = 0.002  # the runner's check for room on the learner queue (a learner step: ~0.1 s)
ORPHAN_GRACE_S = 15.0  # a role that lost its supervisor exits hard after this (the learner: FINAL_SAVE_GRACE_S)
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@dataclass
class Shared:
    """What the supervisor hands to every child process."""

    config: Any
    supervisor_pid: int
    stop_actors: Any  # Event: actors stop first, then the distillers: the counters and the actor
    stop_distill: Any  # parameters are final before the learner writes its last checkpoint
    stop: Any  # Event: everything else stops
    events: Any  # Queue of (kind, ...) messages to the supervisor
    counters: Counters
    transport: TrajectoryTransport
    learner_queue: Any  # runner -> learner batches (None without a runner)
    replay_queue: Any  # runner -> replay distill batches (when the topology distills)
    replay_requests: Any  # distill -> replay: distill ids
    replay_responses: list  # replay -> distill j: distill batches
    stores: Stores
    run_dir: str
    resume_path: str | None
    run_dir_inode: int  # the run directory's identity (a path can be reused by an --overwrite)
    wall_clock_before: float  # the run's wall clock at the start: wall_clock_before + now - clock_start
    clock_start: float  # the supervisor's time.monotonic() at the start (one clock for rows and checkpoints)

    def emit(self, *message) -> None:
        """Best-effort report to the supervisor (never blocks a worker)."""
        try:
            self.events.put_nowait(message)
        except queue.Full:
            pass

    def emit_last(self, *message, timeout_s: float = 5.0, flush_s: float = 5.0) -> None:
        """This process's last report, sent before it exits: wait (at most ``flush_s``) until the
        queue's feeder thread has written it to the pipe. The exit cancels the feeder threads'
        joins (a reader may be gone), which would otherwise drop a message put just before it."""
        self.events.put(message, timeout=timeout_s)
        self.events.close()  # flush it, but never wait on a queue lock a killed actor may hold
        flush = threading.Thread(target=self.events.join_thread, daemon=True)
        flush.start()
        flush.join(flush_s)

    def orphaned(self) -> bool:
        """Whether the supervisor is gone (this process was re-parented)."""
        return os.getppid() != self.supervisor_pid

    def may_save_orphaned(self) -> bool:
        """Whether a learner without its supervisor may still write the final checkpoint: only if
        the run directory is still this run's and no new run holds its lock (which it then keeps)."""
        try:
            if os.stat(self.run_dir).st_ino != self.run_dir_inode:
                return False
            return RunLock(self.run_dir).try_acquire(FINAL_SAVE)
        except OSError:
            return False

    def wall_clock(self) -> float:
        return self.wall_clock_before + time.monotonic() - self.clock_start

    def queues(self) -> list:
        return [q for q in (self.events, self.learner_queue, self.replay_queue, self.replay_requests,
                            *self.replay_responses) if q is not None]


def _watch_supervisor(shared: Shared, grace_s: float) -> None:
    while not shared.orphaned():
        time.sleep(WATCHDOG_S)
    for event in (shared.stop_actors, shared.stop_distill, shared.stop):
        event.set()
    time.sleep(grace_s)
    os._exit(1)


def run_role(shared: Shared, role: str, threads: int, body, grace_s: float = ORPHAN_GRACE_S) -> None:
    """Run a child process's ``body()`` the way every role must run (see the module docstring).

    The supervisor starts children with SIGINT and SIGTERM blocked (the mask survives ``spawn``'s
    exec), so a signal during start-up cannot kill them; they are ignored here, then unblocked.
    torch gets ``threads`` intra-op threads; an exception is reported to the supervisor with its
    traceback and exits with status 1; and on the way out no queue feeder thread may block the
    exit waiting for a reader that is gone.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    threading.Thread(target=_watch_supervisor, args=(shared, grace_s), daemon=True).start()
    torch_threads(threads)
    code = 0
    try:
        body()
    except Exception:  # noqa: BLE001
        try:
            if not shared.orphaned():  # (nobody reads the queue of a supervisor that is gone)
                shared.emit_last("error", role, traceback.format_exc(), timeout_s=1.0)
        except Exception:  # noqa: BLE001 - the supervisor also sees the exit code
            pass
        code = 1
    finally:
        for q in shared.queues():
            q.cancel_join_thread()
        shared.transport.release()
    sys.exit(code)


def staged_batches(feed, shared: Shared):
    """Learner batches staged by ``feed`` from the trajectory transport, until the run stops."""
    while not shared.stop.is_set():
        trajectory = shared.transport.get(shared.stop)
        if trajectory is None:
            continue
        feed.add(trajectory)
        while (lb := feed.pop()) is not None:
            yield lb


def actor_main(shared: Shared, actor_id: int, restarts: int) -> None:
    """Produce trajectories until the actors are stopped."""

    def body():
        actor = make_actor(shared.config, actor_id, restarts, shared.stores)
        faults = RolloutFaults(f"actor-{actor_id}", restarts)
        while not shared.stop_actors.is_set():
            faults.before_rollout()
            trajectory = actor.rollout()
            if not shared.transport.put(trajectory, shared.stop_actors):
                break
            Counters.add(shared.counters.env_steps, trajectory.env_steps)
            Counters.add(shared.counters.episodes, len(trajectory.episodes))
            shared.emit("actor", actor_id, trajectory.episodes, actor.steps_per_s, trajectory.param_version,
                        trajectory.param_digest)
        actor.close()

    run_role(shared, f"actor {actor_id}", 1, body)


def hand_over(learner_queue, lb, runner, stop):
    """Put ``lb`` on the learner queue (one slot) once it has room, re-staged first if the target
    network was refreshed while it waited (:meth:`LearnerRunner.restaged`); the batch that went,
    or None if the run stopped. The runner is the queue's only producer: room, once seen, stays."""
    while not stop.is_set():
        if learner_queue.full():
            time.sleep(HAND_OVER_POLL_S)
            continue
        lb = runner.restaged(lb)
        return lb if put(learner_queue, lb, stop) else None
    return None


def runner_main(shared: Shared) -> None:
    """Stage trajectories as learner batches through the learner runner; feed learner and replay."""

    def body():
        distills = topology_of(shared.config).distills
        feed = make_feed(shared.config, shared.stores, restage=True)
        for lb in staged_batches(feed, shared):
            lb = hand_over(shared.learner_queue, lb, feed.runner, shared.stop)
            if lb is None:
                break
            if distills:
                put(shared.replay_queue, lb.for_distill(), shared.stop)

    run_role(shared, "learner runner", learner_threads(shared.config), body)


def learner_main(shared: Shared) -> None:
    """Learner steps on incoming learner batches, parameter publishing, checkpoints."""
    config = shared.config

    def body():
        payload = torch.load(shared.resume_path, map_location="cpu", weights_only=True) if shared.resume_path else None
        learner = make_learner(config, shared.stores, payload)
        # without a runner the learner stages its own batches
        if topology_of(config).has_runner:
            batches = iter(lambda: get(shared.learner_queue, shared.stop), None)
        else:
            batches = staged_batches(make_feed(config, shared.stores), shared)

        def save(final: bool = False) -> None:
            if shared.orphaned() and not (final and shared.may_save_orphaned()):
                if final:
                    print(f"learner: the supervisor is gone and another run holds {shared.run_dir}; "
                          f"no final checkpoint", file=sys.stderr)
                return
            counters = {**shared.counters.snapshot(), "learner_steps": learner.steps,
                        "wall_clock_s": shared.wall_clock()}
            _, actor = shared.stores.actor.read(timeout=10.0)  # never half of a distill step
            path = checkpoint.save(shared.run_dir, checkpoint.payload(config, learner.state(), actor, counters),
                                   learner.steps)
            if final and not shared.orphaned():  # the supervisor must get this one: wait until it is sent
                shared.emit_last("checkpoint", path, counters, timeout_s=10.0)

        last_checkpoint = time.monotonic()
        delay = injected_delay("learner")
        while not shared.stop.is_set():
            waiting = time.perf_counter()
            lb = next(batches, None)
            if lb is None:
                break
            busy = time.perf_counter()
            if delay:
                time.sleep(delay)
            stepped = learner.steps
            metrics = learner.step(lb)
            learner.check_finite()
            if learner.steps > stepped:
                Counters.add(shared.counters.learner_steps, 1)
                shared.emit("learner", metrics, busy - waiting, time.perf_counter() - busy)
            else:  # a skipped non-finite update: not a learner step
                shared.emit("skipped", metrics)
            if not shared.stop.is_set() and time.monotonic() - last_checkpoint >= 60 * config.checkpoint_minutes:
                save()
                last_checkpoint = time.monotonic()
        save(final=True)

    run_role(shared, "learner", learner_threads(config), body, FINAL_SAVE_GRACE_S)


def replay_main(shared: Shared) -> None:
    """Archive distill batches from the runner; serve uniform samples to the distill processes."""

    def body():
        replay = make_replay(shared.config)
        waiting: list[int] = []
        while not shared.stop_distill.is_set():
            while True:
                try:
                    replay.add(shared.replay_queue.get_nowait())
                except queue.Empty:
                    break
            try:
                waiting.append(shared.replay_requests.get(timeout=0.05))
            except queue.Empty:
                pass
            while waiting and len(replay):
                shared.replay_responses[waiting.pop(0)].put(replay.sample())

    run_role(shared, "replay", 1, body)


def distill_main(shared: Shared, distill_id: int) -> None:
    """HOGWILD! distill steps, at most ``distill_ratio`` per learner step."""
    config = shared.config

    def body():
        distiller = make_distiller(config, shared.stores)
        counters = shared.counters
        while not shared.stop_distill.is_set():
            if not distill_steps_due(config.distill_ratio, counters.learner_steps.value, counters.distill_steps.value):
                time.sleep(0.005)
                continue
            shared.replay_requests.put(distill_id)
            batch = get(shared.replay_responses[distill_id], shared.stop_distill)
            if batch is None:
                continue
            metrics = distiller.step(batch, counters.learner_steps.value)
            Counters.add(counters.distill_steps, 1)
            shared.emit("distill", metrics)

    run_role(shared, f"distill {distill_id}", 1, body)
