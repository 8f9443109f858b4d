"""What a checkpoint holds, and how counters come back from it (shared by both runners)."""

from __future__ import annotations

import json

import torch


def checkpoint_payload(config, learner_state: dict, actor_tensors: dict, runner_tensors: dict, counters: dict) -> dict:
    """Learner (model, V-MPO parameters, optimizer, steps), actor parameters, the runner's
    target network, and the run counters. Distill processes' Adam moments are not kept: they
    restart from zero on resume (documented in :mod:`agents.runtime.distill`)."""
    return {
        "format": 1,
        "config": json.dumps(config.to_dict()),
        "learner": learner_state,
        "actor": {name: t.detach().clone() for name, t in actor_tensors.items()},
        "runner": {name: t.detach().clone() for name, t in runner_tensors.items()},
        "counters": {k: (float(v) if k == "wall_clock_s" else int(v)) for k, v in counters.items()},
    }


def torch_threads(n: int) -> None:
    """Set this process's intra-op threads (every child calls it: oversubscription on few
    cores is deadly)."""
    torch.set_num_threads(max(1, n))
