"""The parallel driver: one process per role of the run's topology, supervised.

    Actor x N_A --trajectories--> Queue --> [Learner Runner] --> Learner
                                                  |
                                                  +--> [Replay --> Distill x N_D (HOGWILD!)]
    actors <-- actor parameters (every K_A versions) -- shared-memory ParameterStore
    ([...]: only where the topology has them)

Which of these roles exist, and who writes the actor parameters, comes from the topology
(``docs/architecture.md``). Processes use the ``spawn`` start method; their bodies are in
:mod:`agents.runtime.drivers.processes`. The supervisor (this process) collects metrics, writes
rows, restarts crashed actors (their partial trajectory is simply never sent; their next
trajectory starts new episodes), and stops everything within seconds when any other role dies
or a signal arrives. A stop ends the actors first, then replay and the distillers, then the
learner and the runner: the learner writes a final checkpoint whose counters and actor
parameters are final; children still alive after a grace period
are killed. ``runs/<name>/pids.json`` names the process of each role on this machine (for debugging
and fault tests; under the Ray driver the actors are Ray actors and not listed).
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import time

import torch.multiprocessing as mp

from agents.runtime import checkpoint
from agents.runtime.assembly import make_stores
from agents.runtime.drivers.processes import (STOP_SIGNALS, Shared, actor_main, distill_main, learner_main,
                                              replay_main, runner_main)
from agents.runtime.metrics import RunStats
from agents.runtime.run_directory import write_json
from agents.runtime.topology import topology_of
from agents.runtime.transport.channels import Counters, TrajectoryTransport, close_queue

JOIN_LEARNER_S = 120.0
JOIN_OTHERS_S = 10.0


class Supervisor:
    """Starts the roles of ``config``'s topology in the opened run directory ``run``, passes each
    metrics row to ``log``, and stops when the run is finished, ``stop()`` says so, or a role
    fails (appended to ``failures``, the first one first)."""

    POLL_S = 0.1  # the loop's wait for events

    def __init__(self, config, run, log, stop, failures: list[str]):
        self.config, self.run_dir = config, run.run_dir
        self.opened, self.resume_path = run, run.checkpoint_path
        self.log_row, self.stop, self.failures = log, stop, failures
        self.ctx = mp.get_context("spawn")
        self.topology = topology_of(config)
        self.stats = RunStats(config)
        self.processes: dict[str, mp.Process] = {}
        self.actor_restarts: dict[int, int] = {}
        self.final_checkpoint: dict | None = None

    @property
    def failure(self) -> str | None:
        return self.failures[0] if self.failures else None

    def fail(self, message: str) -> None:
        self.failures.append(message)

    # -- set-up ----------------------------------------------------------------------
    def make_shared(self) -> Shared:
        c, ctx, topology = self.config, self.ctx, self.topology
        payload = self.opened.take_payload()  # the learner process reads its own copy from the file
        stores = make_stores(c, payload, ctx)
        self.stats.add_publication(stores.actor.current())
        counters_start = {}
        if payload is not None:
            counters_start = payload["counters"]
            self.stats.restore(counters_start)
        per_batch = c.batch_size // c.envs_per_actor
        distills = topology.distills
        return Shared(
            config=c, supervisor_pid=os.getpid(), stop_actors=ctx.Event(), stop_distill=ctx.Event(), stop=ctx.Event(),
            events=ctx.Queue(maxsize=10_000), counters=Counters.create(ctx, counters_start),
            transport=TrajectoryTransport(ctx, maxsize=4 * max(per_batch, c.num_actors)),
            learner_queue=ctx.Queue(maxsize=1) if topology.has_runner else None,  # (see hand_over)
            replay_queue=ctx.Queue(maxsize=8) if distills else None,
            replay_requests=ctx.Queue() if distills else None,
            replay_responses=[ctx.Queue(maxsize=1) for _ in range(c.num_distill)] if distills else [],
            stores=stores, run_dir=self.run_dir, resume_path=self.resume_path,
            run_dir_inode=os.stat(self.run_dir).st_ino,
            wall_clock_before=self.stats.elapsed_before, clock_start=self.stats.start,
        )

    def start_role(self, name: str, restarts: int = 0) -> None:
        """Start the process of role ``name`` (a name of :meth:`Topology.roles`)."""
        kind, _, index = name.partition("-")
        target, args = {"learner": (learner_main, ()), "runner": (runner_main, ()), "replay": (replay_main, ()),
                        "distill": (distill_main, (int(index or 0),)),
                        "actor": (actor_main, (int(index or 0), restarts))}[kind]
        self.start(name, target, *args)

    def start(self, name: str, target, *args) -> None:
        process = self.ctx.Process(target=target, args=(self.shared, *args), name=name, daemon=True)
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # see processes.run_role
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        self.processes[name] = process
        self.write_pids()

    def write_pids(self) -> None:
        """``pids.json`` (for debugging and fault tests; a failed write only warns)."""
        pids = {name: p.pid for name, p in self.processes.items()}
        try:
            write_json(os.path.join(self.run_dir, "pids.json"), {"supervisor": os.getpid(), **pids})
        except OSError as exc:
            print(f"warning: cannot write pids.json: {exc}", file=sys.stderr)

    # -- the loop --------------------------------------------------------------------
    def run(self) -> RunStats:
        c = self.config
        try:
            self.shared = self.make_shared()
            self.actor_restarts = {i: 0 for i in range(c.num_actors)}
            for name in self.topology.roles(c.num_actors, c.num_distill):
                if self.stop():
                    break
                self.start_role(name)
            last_log = time.monotonic()
            while not (self.failure or self.stop()):
                self.drain_events(self.POLL_S)
                self.check_processes()
                if self.stats.finished():
                    if self.stats.solved:  # the moment of the decision (the actors still end episodes while stopping)
                        self.log_row(self.stats.row(rates=False))
                    break
                if time.monotonic() - last_log >= c.log_seconds:
                    self.log_row(self.stats.row())
                    last_log = time.monotonic()
        finally:
            self.shutdown()
        if self.final_checkpoint is not None:  # the final row is the final checkpoint's moment
            self.stats.freeze_clock(self.final_checkpoint["wall_clock_s"])
        if self.processes:  # (a run stopped before its first role started has nothing to report)
            self.log_row(self.stats.row(final=True))
        self.close_queues()
        return self.stats

    def drain_events(self, timeout: float = 0.1) -> None:
        stats = self.stats
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self.shared.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except (queue.Empty, InterruptedError):
                break
            kind = message[0]
            if kind == "actor":
                stats.add_actor_report(*message[1:])
            elif kind == "learner":
                _, metrics, wait_s, busy_s = message
                stats.add_learner_step(metrics, wait_s, busy_s)
            elif kind == "skipped":
                stats.latest.update(message[1])
            elif kind == "distill":
                stats.add_distill_steps(0, message[1])  # the step count comes from the shared counter
            elif kind == "checkpoint":  # the learner's final one (its counters end the run's rows)
                self.final_checkpoint = message[2]
            elif kind == "error" and message[1].startswith("actor"):
                print(f"warning: the {message[1]} process raised (it is restarted):\n{message[2]}", file=sys.stderr)
            elif kind == "error" and (message[1] == "learner" or not self.shared.stop.is_set()):
                self.fail(f"the {message[1]} process failed:\n{message[2]}")  # the learner: also its final save
        counters = self.shared.counters.snapshot()
        stats.add_env_steps(counters["env_steps"] - stats.env_steps)
        stats.add_distill_steps(counters["distill_steps"] - stats.distill_steps)
        stats.learner_steps = counters["learner_steps"]
        stats.episodes = counters["episodes"]
        stats.queue_depth = self.shared.transport.depth()

    def check_processes(self) -> None:
        for name, process in list(self.processes.items()):
            if process.is_alive() or self.failure:
                continue
            if not name.startswith("actor-"):
                self.fail(f"the {name} process died (exit code {process.exitcode})")
                continue
            if self.actor_lost(name, f"exited with code {process.exitcode}"):
                self.start_role(name, self.actor_restarts[int(name.split("-")[1])])

    def actor_lost(self, name: str, reason: str) -> bool:
        """Count a crashed actor (``actor-<i>``); whether it may be restarted (otherwise the run fails)."""
        actor_id = int(name.split("-")[1])
        self.stats.forget_actor(actor_id)
        self.actor_restarts[actor_id] += 1
        self.stats.actor_restarts += 1
        if self.stats.actor_restarts > self.config.max_actor_restarts:
            self.fail(f"actors crashed {self.stats.actor_restarts} times (limit --max-actor-restarts "
                      f"{self.config.max_actor_restarts}); last: {name}, {reason}")
            return False
        print(f"warning: {name} {reason}; restarting it (restart {self.stats.actor_restarts} of at most "
              f"{self.config.max_actor_restarts})", file=sys.stderr)
        return True

    def shutdown(self) -> None:
        """Stop every child: the actors first (the counters stop moving), then replay and the
        distillers (the actor parameters stop moving), then the learner with its final checkpoint
        and the runner; no process survives."""
        if not hasattr(self, "shared"):
            return
        self.shared.stop_actors.set()
        self._join([p for name, p in self.processes.items() if name.startswith("actor-")], JOIN_OTHERS_S)
        self.shared.stop_distill.set()
        self._join([p for name, p in self.processes.items() if name.startswith(("distill-", "replay"))],
                   JOIN_OTHERS_S)
        self.shared.stop.set()
        learner = self.processes.get("learner")
        if learner is not None:
            self._join([learner], JOIN_LEARNER_S)
        self._join(list(self.processes.values()), JOIN_OTHERS_S)
        self.drain_events(0.0)
        if learner is not None and self.final_checkpoint is None and not self.failure:
            self.final_checkpoint = self.saved_final_checkpoint(learner)
            if self.final_checkpoint is None:
                self.fail(f"the learner wrote no final checkpoint (exit code {learner.exitcode}); the newest "
                          f"checkpoint in {self.run_dir} is the last periodic one")

    def saved_final_checkpoint(self, learner) -> dict | None:
        """The counters of the learner's final checkpoint, read from the file, when the learner
        ended cleanly but its message did not arrive (its flush is bounded: a starved or killed
        peer can hold the events queue). The newest checkpoint is the final one only if its
        counters are the run's final counters; None otherwise."""
        if learner.exitcode != 0:
            return None
        saved = checkpoint.list_checkpoints(self.run_dir)
        try:
            counters = checkpoint.load(saved[0])["counters"] if saved else None
        except (ValueError, OSError, MemoryError, KeyError, TypeError):
            return None
        final = self.shared.counters.snapshot()
        if counters is None or any(counters.get(key) != final[key] for key in ("env_steps", "learner_steps")):
            return None
        return counters

    def close_queues(self) -> None:
        if not hasattr(self, "shared"):
            return
        for q in self.shared.queues():
            close_queue(q)
        self.shared.transport.close()

    def _join(self, processes: list, timeout: float) -> None:
        """Wait up to ``timeout`` for all of ``processes``, then terminate, then kill the rest."""
        deadline = time.monotonic() + timeout
        while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
            self.drain_events(0.05)  # keep the events queue flowing so children can exit
        alive = [p for p in processes if p.is_alive()]  # children ignore SIGTERM: kill
        for p in alive:
            p.kill()
        for p in alive:
            p.join(5.0)


def run_parallel(config, run, log, stop, failures: list[str]) -> RunStats:
    """Run ``config`` in the opened run directory ``run`` (see :class:`Supervisor`)."""
    return Supervisor(config, run, log, stop, failures).run()
