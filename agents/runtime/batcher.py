"""Queue side: group incoming trajectories into learner batches, in arrival order.

The transport is bounded (back-pressure); this batcher only decides which trajectories go
together: the oldest ``trajectories_per_batch``. A batch may hold consecutive segments of the
same streams (the paper's 64-stream batches from 30 single-env actors); each column's
``Batch.wave`` says which segment of its stream it is, and the learner runner processes the
waves in order so that every segment starts from the memory its stream really had.
"""

from __future__ import annotations

from collections import deque

from agents.runtime.trajectory import Batch, Trajectory


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
