"""Replay: a FIFO of distill batches with uniform sampling (the distill processes' data)."""

from __future__ import annotations

from collections import deque

import numpy as np

from agents.runtime.transport.trajectory import DistillBatch


class Replay:
    def __init__(self, capacity: int, seed: int):
        self.buffer: deque[DistillBatch] = deque(maxlen=capacity)
        self.rng = np.random.default_rng(seed)
        self.added = 0

    def __len__(self) -> int:
        return len(self.buffer)

    def add(self, batch: DistillBatch) -> None:
        self.buffer.append(batch)
        self.added += 1

    def sample(self) -> DistillBatch | None:
        if not self.buffer:
            return None
        return self.buffer[int(self.rng.integers(len(self.buffer)))]
