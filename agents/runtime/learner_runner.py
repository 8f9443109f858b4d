"""Learner runner: the learner's target network in inference on every batch.

It keeps each stream's learner-side recurrent state (the transformer memory), so that the
learner trains every segment from the memory the stream really had, and it provides the
target network's logits (pi_old for V-MPO, the distillation target) and values. Batched over
time: one ``forward_sequence`` per batch (per wave, when a batch holds consecutive segments of
the same streams; see :mod:`agents.runtime.batcher`).
"""

from __future__ import annotations

import numpy as np
import torch

from agents.models import map_nest, select_streams
from agents.runtime.trajectory import Batch


class LearnerRunner:
    def __init__(self, model: torch.nn.Module, num_streams: int, device: torch.device):
        self.model = model.to(device).eval()
        self.device = device
        self.states = model.initial_state(num_streams)
        self.version = 0

    def load(self, state_dict, version: int) -> None:
        self.model.load_state_dict(state_dict)
        self.version = version

    @torch.inference_mode()
    def process(self, batch: Batch) -> Batch:
        """Add ``learner_state``, ``target_logits`` and ``learner_values`` to ``batch``."""
        T, B = batch.action.shape
        obs = torch.from_numpy(batch.obs).to(self.device)
        first = torch.from_numpy(batch.first).to(self.device)
        head = self.model.value_head
        initial = logits_out = values_out = None
        for wave in range(int(batch.wave.max()) + 1):
            columns = np.flatnonzero(batch.wave == wave)
            cols = torch.as_tensor(columns, device=self.device)
            index = torch.as_tensor(batch.streams[columns], device=self.device)
            state = select_streams(self.states, index)
            logits, values, final = self.model.forward_sequence(obs[:T, cols], state, first[:T, cols])
            _, last_value, _ = self.model.step(obs[T, cols], final, first[T, cols])
            map_nest(lambda full, part: full.index_copy_(0, index, part), self.states, final)
            values = head.denormalize(torch.cat([values, last_value[None]]))
            if logits_out is None:
                logits_out = torch.empty(T, B, logits.shape[-1], device=self.device)
                values_out = torch.empty(T + 1, B, device=self.device)
                initial = map_nest(lambda t: t.new_empty((B, *t.shape[1:])), state)
            logits_out[:, cols] = logits.float()
            values_out[:, cols] = values.float()
            map_nest(lambda full, part: full.index_copy_(0, cols, part), initial, state)
        batch.learner_state = self.model.compact_state(initial)
        batch.target_logits = logits_out.cpu().numpy()
        batch.learner_values = values_out.cpu().numpy()
        return batch


def runner_process(shared) -> None:
    """Process entry: batch trajectories, run the target learner on them, feed learner and replay."""
    import os

    from agents.models import map_nest
    from agents.runtime.batcher import Batcher
    from agents.runtime.channels import put, run_role
    from agents.runtime.system import build_learner_model, select_device

    config = shared.config

    def body():
        runner = LearnerRunner(build_learner_model(config), config.num_streams, select_device(config.device))
        batcher = Batcher(config.batch_size // config.envs_per_actor)
        while not shared.stop.is_set():
            if shared.runner_store.version != runner.version:
                version = shared.runner_store.version
                runner.load(shared.runner_store.snapshot(), version)
            trajectory = shared.transport.get(shared.stop)
            if trajectory is None:
                continue
            batcher.add(trajectory)
            while (batch := batcher.pop_batch()) is not None:
                runner.process(batch)
                batch.learner_state = map_nest(lambda t: t.cpu().numpy(), batch.learner_state)
                if not put(shared.learner_queue, batch, shared.stop):
                    break
                if config.distills:
                    put(shared.replay_queue, batch.for_replay(), shared.stop)

    run_role(shared, "learner runner", config.learner_threads or os.cpu_count() or 1, body)
