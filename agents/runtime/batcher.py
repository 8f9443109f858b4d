"""Queue side: group incoming trajectories into learner batches, each stream at most once.

The transport is bounded (back-pressure); this batcher only decides which trajectories go
together. A trajectory whose actor already has one in the forming batch waits for the next
batch, so the learner runner never sees two consecutive segments of a stream in one batch.
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
        """A batch if enough trajectories of distinct actors are pending, in arrival order."""
        chosen, actors = [], set()
        for trajectory in self.pending:
            if trajectory.actor_id not in actors:
                chosen.append(trajectory)
                actors.add(trajectory.actor_id)
                if len(chosen) == self.size:
                    break
        if len(chosen) < self.size:
            return None
        for trajectory in chosen:
            self.pending.remove(trajectory)
        return Batch.from_trajectories(chosen)

    def drop_actor(self, actor_id: int) -> None:
        """Forget pending trajectories of an actor that was restarted (its streams restart)."""
        self.pending = deque(t for t in self.pending if t.actor_id != actor_id)
