"""Learner runner: the learner's target network in inference on every batch.

It keeps each stream's learner-side recurrent state (the transformer memory), so that the
learner trains every segment from the memory the stream really had, and it provides the
target network's logits (pi_old for V-MPO, the distillation target) and values. Batched over
time: one ``forward_sequence`` per batch.
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

    def reset_streams(self, streams: np.ndarray) -> None:
        """Forget the memory of restarted streams (their next trajectory starts an episode anyway)."""
        index = torch.as_tensor(streams, device=self.device)
        fresh = self.model.initial_state(len(streams))
        map_nest(lambda full, part: full.index_copy_(0, index, part), self.states, fresh)

    @torch.inference_mode()
    def process(self, batch: Batch) -> Batch:
        """Add ``learner_state``, ``target_logits`` and ``learner_values`` to ``batch``."""
        T = batch.action.shape[0]
        index = torch.as_tensor(batch.streams, device=self.device)
        state = select_streams(self.states, index)
        obs = torch.from_numpy(batch.obs).to(self.device)
        first = torch.from_numpy(batch.first).to(self.device)
        logits, values, final = self.model.forward_sequence(obs[:T], state, first[:T])
        _, last_value, _ = self.model.step(obs[T], final, first[T])
        map_nest(lambda full, part: full.index_copy_(0, index, part), self.states, final)
        head = self.model.value_head
        batch.learner_state = map_nest(lambda t: t.clone(), state)
        batch.target_logits = logits.float().cpu().numpy()
        batch.learner_values = head.denormalize(torch.cat([values, last_value[None]])).float().cpu().numpy()
        return batch


def runner_process(shared) -> None:
    """Process entry: batch trajectories, run the target learner on them, feed learner and replay."""
    import os

    from agents.models import map_nest
    from agents.runtime.batcher import Batcher
    from agents.runtime.channels import put, run_role
    from agents.runtime.system import build_models, select_device

    config = shared.config

    def body():
        runner = LearnerRunner(build_models(config)[1], config.num_streams, select_device(config.device))
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
