"""The learner's input stage: group trajectories into batches in arrival order, then stage them
as learner batches (through the learner runner where the topology has one).

The transport is bounded (back-pressure); this batcher only decides which trajectories go
together: the oldest ``trajectories_per_batch``. A batch may hold consecutive segments of the
same streams (the paper's 64-stream batches from 30 single-env actors); each column's
``Batch.wave`` says which segment of its stream it is, and the learner runner processes the
waves in order so that every segment starts from the memory its stream really had.
"""

from __future__ import annotations

from collections import deque

from agents.runtime.roles.learner_runner import LearnerRunner
from agents.runtime.topology import Topology
from agents.runtime.transport.trajectory import Batch, LearnerBatch, Trajectory


class Batcher:
    def __init__(self, trajectories_per_batch: int):
        self.size = trajectories_per_batch
        self.pending: deque[Trajectory] = deque()

    def add(self, trajectory: Trajectory) -> None:
        self.pending.append(trajectory)

    def pop_batch(self) -> Batch | None:
        """The oldest ``trajectories_per_batch`` trajectories as a batch, or None if too few."""
        if len(self.pending) < self.size:
            return None
        return Batch.from_trajectories([self.pending.popleft() for _ in range(self.size)])


class LearnerFeed:
    """Trajectories in, :class:`LearnerBatch` out: the batcher, then the runner if there is one.

    Without a runner the learner's state is the state the actors acted from (the actor ran the
    learner's model) and the learner computes pi_old itself.
    """

    def __init__(self, topology: Topology, trajectories_per_batch: int, runner: LearnerRunner | None):
        self.topology = topology
        self.batcher = Batcher(trajectories_per_batch)
        self.runner = runner

    def add(self, trajectory: Trajectory) -> None:
        self.batcher.add(trajectory)

    def pop(self) -> LearnerBatch | None:
        batch = self.batcher.pop_batch()
        if batch is None:
            return None
        if self.runner is not None:
            return self.runner.process(batch)
        return LearnerBatch(batch, self.topology.learner_state(batch.actor_state, None), None)
