"""Building a run's roles from its config: every driver gets them from here, so the serial and
the parallel driver run the same components wired the same way (``docs/architecture.md``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from agents.runtime.roles.actor import Actor
from agents.runtime.roles.batcher import LearnerFeed
from agents.runtime.roles.distill import Distiller
from agents.runtime.roles.learner import Learner
from agents.runtime.roles.learner_runner import LearnerRunner
from agents.runtime.roles.replay import Replay
from agents.runtime.topology import build_actor_model, build_learner_model, initial_actor_module, topology_of
from agents.runtime.transport.param_store import ParameterStore


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def torch_threads(n: int) -> None:
    """Set this process's intra-op threads (every role process calls it: oversubscription on few
    cores is deadly)."""
    torch.set_num_threads(max(1, n))


def learner_threads(config) -> int:
    """torch threads of the learner side (``--learner-threads``, 0 = all cores)."""
    return config.learner_threads or os.cpu_count() or 1


def actor_seed(config, actor_id: int, restarts: int) -> int:
    """A distinct, reproducible env/sampling seed per actor incarnation."""
    return int(np.random.SeedSequence([config.seed, actor_id, restarts]).generate_state(1)[0])


@dataclass
class Stores:
    """The run's parameter stores: the actors' parameters, and the target network's for the runner."""

    actor: ParameterStore
    target: ParameterStore | None


def make_stores(config, payload: dict | None, context=None) -> Stores:
    """Stores holding the initial parameters, or those of checkpoint ``payload``."""
    topology = topology_of(config)
    learner_model = build_learner_model(config)
    actor = ParameterStore(initial_actor_module(config, learner_model), context)
    if payload is not None:
        actor.publish(payload["actor"], version=0)
    target = None
    if topology.has_runner:
        version = 0
        if payload is not None:
            learner_model.load_state_dict(payload["learner"].get("target", payload["learner"]["model"]))
            version = int(payload["learner"].get("target_version", payload["learner"]["steps"]))
        target = ParameterStore(topology.runner_module(learner_model), context, version=version)
    return Stores(actor, target)


def make_learner(config, stores: Stores, payload: dict | None) -> Learner:
    learner = Learner(config, topology_of(config), build_learner_model(config), select_device(config.device),
                      stores.actor, stores.target)
    if payload is not None:
        learner.load(payload["learner"])
    return learner


def make_feed(config, stores: Stores, restage: bool = False) -> LearnerFeed:
    """The learner's input stage (with the learner runner where the topology has one; ``restage``:
    see :class:`LearnerRunner`)."""
    topology = topology_of(config)
    runner = None
    if topology.has_runner:
        runner = LearnerRunner(topology, topology.runner_module(build_learner_model(config)), config.num_streams,
                               select_device(config.device), stores.target, restage)
    return LearnerFeed(topology, config.batch_size // config.envs_per_actor, runner)


def make_actor(config, actor_id: int, restarts: int, stores: Stores) -> Actor:
    return Actor(config, actor_id, build_actor_model(config), stores.actor, actor_seed(config, actor_id, restarts))


def make_distiller(config, stores: Stores) -> Distiller:
    return Distiller(config, build_actor_model(config), stores.actor)


def make_replay(config) -> Replay:
    return Replay(config.replay_capacity, config.seed)
