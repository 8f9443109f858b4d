"""The serial driver: every role of the process graph in one process, in a fixed order.

Deterministic for a given seed (used by the tests and for debugging). Each round, every actor
produces a trajectory; each learner batch the feed stages goes to the learner, then (ALD) to
replay, followed by the distill steps that ``distill_ratio`` allows, round-robin over the N_D
distillers, which share the actor parameters exactly as the HOGWILD! processes do. The roles
are the same objects the parallel driver runs in separate processes (:mod:`agents.runtime.assembly`).
"""

from __future__ import annotations

import time

from agents.runtime import checkpoint
from agents.runtime.assembly import (learner_threads, make_actor, make_distiller, make_feed, make_learner,
                                     make_replay, make_stores, torch_threads)
from agents.runtime.metrics import RunStats
from agents.runtime.roles.distill import distill_steps_due
from agents.runtime.topology import topology_of


class SerialDriver:
    """All roles of one run; :meth:`round` moves one trajectory per actor through the graph."""

    def __init__(self, config, run_dir: str, payload: dict | None = None):
        torch_threads(learner_threads(config))
        self.config, self.run_dir = config, run_dir
        self.topology = topology_of(config)
        self.stores = make_stores(config, payload)
        self.stats = RunStats(config)
        self.stats.add_publication(self.stores.actor.current())
        if payload is not None:
            self.stats.restore(payload["counters"])
        self.learner = make_learner(config, self.stores, payload)
        self.feed = make_feed(config, self.stores)
        self.distillers = [make_distiller(config, self.stores) for _ in range(config.num_distill)] \
            if self.topology.distills else []
        self.replay = make_replay(config)
        self.actors = [make_actor(config, i, 0, self.stores) for i in range(config.num_actors)]

    def round(self) -> None:
        stats = self.stats
        for actor in self.actors:
            trajectory = actor.rollout()
            stats.add_env_steps(trajectory.env_steps)
            stats.add_actor_report(actor.actor_id, trajectory.episodes, actor.steps_per_s,
                                   trajectory.param_version, trajectory.param_digest)
            self.feed.add(trajectory)
        while (lb := self.feed.pop()) is not None:
            if self.distillers:  # the runner feeds replay and the learner alike
                self.replay.add(lb.for_distill())
            start, before = time.perf_counter(), self.learner.steps
            metrics = self.learner.step(lb)
            self.learner.check_finite()
            if self.learner.steps == before:  # a skipped non-finite update
                stats.latest.update(metrics)
                continue
            stats.add_learner_step(metrics, 0.0, time.perf_counter() - start)
            if not self.distillers:
                continue
            for _ in range(distill_steps_due(self.config.distill_ratio, stats.learner_steps, stats.distill_steps)):
                distiller = self.distillers[stats.distill_steps % len(self.distillers)]
                stats.add_distill_steps(1, distiller.step(self.replay.sample(), self.learner.steps))

    def save(self) -> str:
        payload = checkpoint.payload(self.config, self.learner.state(), self.stores.actor.tensors,
                                     self.stats.counters())
        return checkpoint.save(self.run_dir, payload, self.learner.steps)

    def close(self) -> None:
        for actor in self.actors:
            actor.close()

    def run(self, log, stop=lambda: False) -> RunStats:
        """Train until ``total_env_steps`` or ``stop_success_rate`` (or ``stop()``), passing each
        metrics row to ``log``; a final row and checkpoint at the end."""
        config, stats = self.config, self.stats
        last_log = last_checkpoint = time.monotonic()
        try:
            while not stats.finished() and not stop():
                self.round()
                now = time.monotonic()
                if now - last_log >= config.log_seconds:
                    log(stats.row())
                    last_log = now
                if now - last_checkpoint >= 60 * config.checkpoint_minutes:
                    self.save()
                    last_checkpoint = now
            stats.freeze_clock(stats.wall_clock())  # the final row and checkpoint read one moment
            log(stats.row(final=True))
            self.save()
        finally:
            self.close()
        return stats


def run_serial(config, run, log, stop=lambda: False) -> RunStats:
    """Run ``config`` in the opened run directory ``run`` (:class:`agents.runtime.run_directory.Run`)."""
    return SerialDriver(config, run.run_dir, run.take_payload()).run(log, stop)
