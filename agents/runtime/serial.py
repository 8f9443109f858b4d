"""The serial runner: every role of the process graph in one process, in a fixed order.

Deterministic for a given seed (used by the tests and for debugging): each round, every actor
produces a trajectory; each full batch goes through the learner runner, the learner, replay
and ``distill_ratio`` distill steps (round-robin over the N_D distillers, which share the
actor parameters exactly as the HOGWILD! processes do).
"""

from __future__ import annotations

import os
import time

from agents.runtime import checkpoint
from agents.runtime.actor import Actor
from agents.runtime.batcher import Batcher
from agents.runtime.distill import Distiller
from agents.runtime.learner import Learner
from agents.runtime.learner_runner import LearnerRunner
from agents.runtime.metrics import RunStats
from agents.runtime.param_store import ParameterStore
from agents.runtime.replay import Replay
from agents.runtime.state import checkpoint_payload, torch_threads
from agents.runtime.system import actor_seed, build_actor_model, build_learner_model, build_models, select_device


def run_serial(config, run_dir: str, writer, progress=None, stop=lambda: False) -> RunStats:
    """Train until ``total_env_steps`` or ``stop_success_rate`` (or ``stop()``); returns the final statistics."""
    torch_threads(config.learner_threads or os.cpu_count() or 1)
    device = select_device(config.device)
    actor_model, learner_model = build_models(config)
    learner = Learner(config, learner_model, device)
    actor_store = ParameterStore(actor_model)
    runner = None
    if config.uses_runner:
        runner = LearnerRunner(build_learner_model(config), config.num_streams, device)
        runner.load(learner.model.state_dict(), 0)
    stats = RunStats(config)
    payload, _ = checkpoint.load_latest(run_dir) if config.resume else (None, None)
    if payload is not None:
        learner.load(payload["learner"])
        actor_store.publish(payload["actor"])
        if runner is not None:
            runner.load(payload["runner"], learner.steps)
        stats.restore(payload["counters"])
    distillers = []
    if config.distills:
        distillers = [Distiller(config, build_actor_model(config), actor_store) for _ in range(config.num_distill)]
    replay = Replay(config.replay_capacity, config.seed)
    actors = [Actor(config, i, build_actor_model(config), actor_store, actor_seed(config, i, 0))
              for i in range(config.num_actors)]
    batcher = Batcher(config.batch_size // config.envs_per_actor)
    distill_debt = 0.0
    last_log = last_checkpoint = time.monotonic()

    def save():
        runner_tensors = runner.model.state_dict() if runner is not None else {}
        payload = checkpoint_payload(config, learner.state(), actor_store.tensors, runner_tensors, stats.counters())
        checkpoint.save(run_dir, payload, stats.learner_steps)

    def log(final=False):
        row = stats.row(final)
        writer.write(row)
        if progress is not None:
            progress(row)

    while not stats.finished() and not stop():
        for actor in actors:
            trajectory = actor.rollout()
            stats.add_env_steps(trajectory.env_steps)
            stats.add_episodes(trajectory.episodes)
            stats.actor_sps[actor.actor_id] = actor.steps_per_s
            batcher.add(trajectory)
        while (batch := batcher.pop_batch()) is not None:
            if runner is not None:
                runner.process(batch)
            start = time.perf_counter()
            metrics = learner.step(batch)
            stats.add_learner_step(metrics, 0.0, time.perf_counter() - start)
            if learner.nan_in_a_row >= config.max_nan_updates:
                raise FloatingPointError(f"{learner.nan_in_a_row} consecutive non-finite losses; stopping")
            if runner is not None and learner.target_due():
                runner.load(learner.model.state_dict(), learner.steps)
            if not config.distills:
                actor_store.publish(learner.actor_state_dict())
                continue
            replay.add(batch)
            distill_debt += config.distill_ratio
            while distill_debt >= 1.0:
                distiller = distillers[stats.distill_steps % len(distillers)]
                stats.add_distill_steps(1, distiller.step(replay.sample()))
                distill_debt -= 1.0
        now = time.monotonic()
        if now - last_log >= config.log_seconds:
            log()
            last_log = now
        if now - last_checkpoint >= 60 * config.checkpoint_minutes:
            save()
            last_checkpoint = now
    log(final=True)
    save()
    for actor in actors:
        actor.close()
    return stats
