"""The actor role as a Ray actor: the same :class:`~agents.runtime.roles.actor.Actor`, reading its
parameters from :class:`~agents.runtime.transport.remote_params.RemoteParameters`."""

from __future__ import annotations

import time

from agents.runtime.assembly import Stores, make_actor, torch_threads
from agents.runtime.faults import RolloutFaults
from agents.runtime.transport.remote_params import RemoteParameters


class RolloutWorker:
    """One actor (``ray.remote`` is applied by the driver, so this module imports without Ray).

    Each :meth:`rollout` call offers the newest publication (``refs``: a one-element list, so Ray
    passes the reference itself and the actor fetches it only when it refreshes) and returns one
    whole trajectory: a worker that dies mid-rollout returns nothing. The driver submits rollouts
    only once :meth:`ready` answered (a worker slow to start acts with what is newest then, not
    with what was newest at its creation); a call queued behind another (``--max-in-flight``
    above 1) acts with the publication offered when it was submitted, at most one rollout older
    than the newest."""

    def __init__(self, config, actor_id: int, restarts: int, version: int, refs: list):
        import ray

        torch_threads(1)
        self.params = RemoteParameters(version, refs[0])
        self.actor = make_actor(config, actor_id, restarts, Stores(self.params, None))
        self.faults = RolloutFaults(f"actor-{actor_id}", restarts)
        self.node = ray.get_runtime_context().get_node_id()

    def ready(self) -> str:
        """The node this worker runs on, once it is built."""
        return self.node

    def rollout(self, version: int, refs: list):
        """``(trajectory, actor env steps/s, time.time() at its end, node id)``."""
        self.faults.before_rollout()
        self.params.offer(version, refs[0])
        trajectory = self.actor.rollout()
        return trajectory, self.actor.steps_per_s, time.time(), self.node
