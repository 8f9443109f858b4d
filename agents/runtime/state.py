"""What a checkpoint holds, and how a run is restored from it (shared by both runners)."""

from __future__ import annotations

import json

import torch


def checkpoint_payload(config, learner, actor_store, runner, stats) -> dict:
    """Learner (model, V-MPO parameters, optimizer), actor parameters, runner target net, counters.

    Distill processes' Adam moments are not kept: they restart from zero on resume.
    """
    return {
        "format": 1,
        "config": json.dumps(config.to_dict()),
        "learner": learner.state(),
        "actor": {name: t.clone() for name, t in actor_store.tensors.items()},
        "actor_version": actor_store.version,
        "runner": runner.model.state_dict() if runner is not None else {},
        "counters": stats.counters(),
    }


def restore(payload: dict, learner, actor_store, runner, stats) -> None:
    learner.load(payload["learner"])
    actor_store.publish(payload["actor"])
    if runner is not None and payload["runner"]:
        runner.load(payload["runner"], learner.steps)
    counters = payload["counters"]
    stats.env_steps = int(counters["env_steps"])
    stats.learner_steps = int(counters["learner_steps"])
    stats.distill_steps = int(counters["distill_steps"])
    stats.episodes = int(counters["episodes"])
    stats.elapsed_before = float(counters["wall_clock_s"])


def torch_threads(n: int) -> None:
    """Set the intra-op threads of this process (every child calls it: oversubscription on few
    cores is deadly)."""
    torch.set_num_threads(max(1, n))
