"""Replay: a FIFO of batches with uniform sampling (the distill processes' data)."""

from __future__ import annotations

from collections import deque

import numpy as np

from agents.runtime.trajectory import Batch


class Replay:
    def __init__(self, capacity: int, seed: int):
        self.buffer: deque[Batch] = deque(maxlen=capacity)
        self.rng = np.random.default_rng(seed)
        self.added = 0

    def __len__(self) -> int:
        return len(self.buffer)

    def add(self, batch: Batch) -> None:
        self.buffer.append(batch.for_replay())
        self.added += 1

    def sample(self) -> Batch | None:
        if not self.buffer:
            return None
        return self.buffer[int(self.rng.integers(len(self.buffer)))]


def replay_process(shared) -> None:
    """Process entry: archive batches from the runner, serve uniform samples to distill processes."""
    import queue

    from agents.runtime.channels import run_role

    def body():
        replay = Replay(shared.config.replay_capacity, shared.config.seed)
        waiting: list[int] = []
        while not shared.stop.is_set():
            while True:
                try:
                    replay.add(shared.replay_queue.get_nowait())
                except queue.Empty:
                    break
            try:
                waiting.append(shared.replay_requests.get(timeout=0.05))
            except queue.Empty:
                pass
            while waiting and len(replay):
                shared.replay_responses[waiting.pop(0)].put(replay.sample())

    run_role(shared, "replay", 1, body)
