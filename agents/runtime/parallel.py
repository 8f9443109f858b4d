"""The parallel runner: one process per role of the ALD graph, supervised.

    Actor x N_A --trajectories--> Queue --> Learner Runner --> Learner
                                                  |
                                                  +--> Replay --> Distill x N_D (HOGWILD!)
    actors <-- actor parameters (every K_A distill steps) -- shared-memory ParameterStore

Processes use the ``spawn`` start method. The supervisor (this process) collects metrics,
writes rows, restarts crashed actors (their partial trajectory is simply never sent; their
next trajectory starts new episodes), and stops everything within seconds when any other role
dies or a signal arrives. On a normal end or SIGINT/SIGTERM the learner writes a final
checkpoint before it exits; children still alive after a grace period are terminated.
``runs/<name>/pids.json`` names the process of each role (for debugging and fault tests).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import time

import torch.multiprocessing as mp

from agents.runtime import checkpoint
from agents.runtime.actor import actor_process
from agents.runtime.channels import Counters, Shared, TrajectoryTransport, close_queue
from agents.runtime.distill import distill_process
from agents.runtime.learner import learner_process
from agents.runtime.learner_runner import runner_process
from agents.runtime.metrics import RunStats
from agents.runtime.param_store import ParameterStore
from agents.runtime.replay import replay_process
from agents.runtime.system import build_models

JOIN_LEARNER_S = 120.0
JOIN_OTHERS_S = 10.0


class Supervisor:
    def __init__(self, config, run_dir: str, writer, progress):
        self.config, self.run_dir, self.writer, self.progress = config, run_dir, writer, progress
        self.ctx = mp.get_context("spawn")
        self.stats = RunStats(config)
        self.processes: dict[str, mp.Process] = {}
        self.actor_restarts: dict[int, int] = {}
        self.failure: str | None = None
        self.interrupted = False

    # -- set-up ----------------------------------------------------------------------
    def make_shared(self) -> Shared:
        c, ctx = self.config, self.ctx
        actor_model, learner_model = build_models(c)
        actor_store = ParameterStore(actor_model, ctx)
        runner_store = ParameterStore(learner_model, ctx) if c.uses_runner else None
        payload, path = checkpoint.load_latest(self.run_dir) if c.resume else (None, None)
        counters_start, wall_clock = {}, 0.0
        if payload is not None:
            actor_store.publish(payload["actor"])
            if runner_store is not None:
                runner_store.publish(payload["runner"])
            counters_start = payload["counters"]
            wall_clock = float(counters_start["wall_clock_s"])
            self.stats.restore(counters_start)
            print(f"resuming from {path}: {self.stats.env_steps:,} env steps, "
                  f"{self.stats.learner_steps:,} learner steps", file=sys.stderr)
        per_batch = c.batch_size // c.envs_per_actor
        return Shared(
            config=c, stop=ctx.Event(), events=ctx.Queue(maxsize=10_000),
            counters=Counters.create(ctx, counters_start),
            transport=TrajectoryTransport(ctx, maxsize=4 * max(per_batch, c.num_actors)),
            learner_queue=ctx.Queue(maxsize=2) if c.uses_runner else None,
            replay_queue=ctx.Queue(maxsize=8) if c.distills else None,
            replay_requests=ctx.Queue() if c.distills else None,
            replay_responses=[ctx.Queue(maxsize=1) for _ in range(c.num_distill)] if c.distills else [],
            actor_store=actor_store, runner_store=runner_store, run_dir=self.run_dir, resume_path=path,
            wall_clock_before=wall_clock,
        )

    def start(self, name: str, target, *args) -> None:
        process = self.ctx.Process(target=target, args=(self.shared, *args), name=name, daemon=True)
        process.start()
        self.processes[name] = process
        self.write_pids()

    def write_pids(self) -> None:
        pids = {name: p.pid for name, p in self.processes.items()}
        with open(os.path.join(self.run_dir, "pids.json"), "w") as f:
            json.dump({"supervisor": os.getpid(), **pids}, f)

    # -- the loop --------------------------------------------------------------------
    def run(self) -> tuple[RunStats, int]:
        c = self.config
        self.shared = self.make_shared()
        previous = {sig: signal.signal(sig, self.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start("learner", learner_process)
            if c.uses_runner:
                self.start("runner", runner_process)
            if c.distills:
                self.start("replay", replay_process)
                for j in range(c.num_distill):
                    self.start(f"distill-{j}", distill_process, j)
            for i in range(c.num_actors):
                self.actor_restarts[i] = 0
                self.start(f"actor-{i}", actor_process, i, 0)
            last_log = time.monotonic()
            while not (self.failure or self.interrupted):
                self.drain_events()
                self.check_processes()
                if self.stats.finished():
                    break
                if time.monotonic() - last_log >= c.log_seconds:
                    self.log()
                    last_log = time.monotonic()
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.log(final=True)
        self.close_queues()
        if self.failure:
            print(f"error: {self.failure}", file=sys.stderr)
            return self.stats, 1
        return self.stats, 130 if self.interrupted else 0

    def on_signal(self, signum, frame) -> None:
        self.interrupted = True

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
                _, actor_id, episodes, sps = message
                stats.add_episodes(episodes)
                stats.actor_sps[actor_id] = sps
            elif kind == "learner":
                _, metrics, wait_s, busy_s = message
                stats.add_learner_step(metrics, wait_s, busy_s)
            elif kind == "distill":
                stats.latest.update(message[2])  # the step count comes from the shared counter
            elif kind == "error" and not self.shared.stop.is_set():
                self.failure = f"the {message[1]} process failed:\n{message[2]}"
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
                self.failure = self.failure or f"the {name} process died (exit code {process.exitcode})"
                continue
            actor_id = int(name.split("-")[1])
            self.actor_restarts[actor_id] += 1
            self.stats.actor_restarts += 1
            if self.stats.actor_restarts > self.config.max_actor_restarts:
                self.failure = (f"actors crashed {self.stats.actor_restarts} times (limit --max-actor-restarts "
                                f"{self.config.max_actor_restarts}); last: {name}, exit code {process.exitcode}")
                continue
            print(f"warning: {name} exited with code {process.exitcode}; restarting it "
                  f"(restart {self.stats.actor_restarts} of at most {self.config.max_actor_restarts})", file=sys.stderr)
            self.start(name, actor_process, actor_id, self.actor_restarts[actor_id])

    def log(self, final: bool = False) -> None:
        row = self.stats.row(final)
        self.writer.write(row)
        self.progress(row)

    def shutdown(self) -> None:
        """Stop every child: learner first (final checkpoint), then the rest; no process survives."""
        if not hasattr(self, "shared"):
            return
        self.shared.stop.set()
        learner = self.processes.get("learner")
        if learner is not None:
            self._join([learner], JOIN_LEARNER_S)
        self._join(list(self.processes.values()), JOIN_OTHERS_S)
        self.drain_events(0.0)

    def close_queues(self) -> None:
        for q in [self.shared.events, self.shared.learner_queue, self.shared.replay_queue,
                  self.shared.replay_requests, *self.shared.replay_responses]:
            if q is not None:
                close_queue(q)
        self.shared.transport.close()

    def _join(self, processes: list, timeout: float) -> None:
        """Wait up to ``timeout`` for all of ``processes``, then terminate, then kill the rest."""
        deadline = time.monotonic() + timeout
        while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
            self.drain_events(0.05)  # keep the events queue flowing so children can exit
        for method in ("terminate", "kill"):
            alive = [p for p in processes if p.is_alive()]
            for p in alive:
                getattr(p, method)()
            for p in alive:
                p.join(2.0)


def run_parallel(config, run_dir: str, writer, progress) -> tuple[RunStats, int]:
    return Supervisor(config, run_dir, writer, progress).run()
