"""Learner runner: the learner's target network in inference on every batch.

It keeps each stream's learner-side recurrent state (the transformer memory), so that the
learner trains every segment from the memory the stream really had. Where the topology's runner
runs the whole learner model (ALD) it also gives the target network's logits (pi_old, the
distillation target) and values; for Asymm. AC it runs only the GTrXL value network. Batched
over time: one ``forward_sequence`` per batch (per wave, when a batch holds consecutive segments
of the same streams; see :mod:`agents.runtime.roles.batcher`). Its parameters come from the
target store, which the learner refreshes every K_L steps; each output says which refresh made it.
Under the parallel driver, where there are target outputs (ALD), a batch still waiting for the
learner when a refresh comes is re-staged (:meth:`restaged`): its streams' memory goes back to
before it and it is processed again with the new parameters, so the learner never has to
recompute its pi_old.
"""

from __future__ import annotations

import numpy as np
import torch

from agents.models import map_nest, select_streams
from agents.runtime.topology import Topology
from agents.runtime.transport.param_store import ParameterStore
from agents.runtime.transport.trajectory import Batch, LearnerBatch, TargetOutputs


class LearnerRunner:
    def __init__(self, topology: Topology, model: torch.nn.Module, num_streams: int, device: torch.device,
                 store: ParameterStore | None = None, restage: bool = False):
        """``restage``: keep each batch's memory before it, so that :meth:`restaged` can redo it
        (the parallel driver, whose runner works ahead of the learner)."""
        self.topology = topology
        self.restage = restage and topology.runner_gives_targets
        self.model = model.to(device).eval()
        self.device = device
        self.store = store
        self.states = self.model.initial_state(num_streams)
        self.version = -1 if store is not None else 0
        self.before: tuple[Batch, torch.Tensor, object] | None = None
        """With ``restage``: the last batch, its streams, and their states before it."""

    def refresh(self) -> None:
        """Load the target store's parameters if they changed since the last batch."""
        if self.store is not None and self.store.version != self.version:
            self.version, tensors = self.store.read()
            self.model.load_state_dict(tensors)

    @torch.inference_mode()
    def process(self, batch: Batch) -> LearnerBatch:
        """The learner batch of ``batch``: the runner's memory before it, and target outputs."""
        self.refresh()
        if self.restage:
            streams = torch.as_tensor(np.unique(batch.streams), device=self.device)
            self.before = (batch, streams, map_nest(lambda t: t.index_select(0, streams), self.states))
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
            map_nest(lambda full, part: full.index_copy_(0, index, part), self.states, final)
            if initial is None:
                logits_out = torch.empty(T, B, logits.shape[-1], device=self.device)
                values_out = torch.empty(T, B, device=self.device)
                initial = map_nest(lambda t: t.new_empty((B, *t.shape[1:])), state)
            logits_out[:, cols] = logits.float()
            values_out[:, cols] = head.denormalize(values).float()
            map_nest(lambda full, part: full.index_copy_(0, cols, part), initial, state)
        runner_state = map_nest(lambda t: t.cpu().numpy(), self.model.compact_state(initial))
        target = None
        if self.topology.runner_gives_targets:
            target = TargetOutputs(logits_out.cpu().numpy(), values_out.cpu().numpy(), self.version)
        return LearnerBatch(batch, self.topology.learner_state(batch.actor_state, runner_state), target)

    def stale(self, lb: LearnerBatch) -> bool:
        """Whether ``lb``'s target outputs come from an older refresh than the target store's."""
        return lb.target is not None and self.store is not None and self.store.version != lb.target.version

    @torch.inference_mode()
    def restaged(self, lb: LearnerBatch) -> LearnerBatch:
        """``lb`` (the last batch :meth:`process` returned) processed again from the same memory
        with the target store's current parameters, if they changed since; else ``lb`` itself."""
        if not self.stale(lb):
            return lb
        if self.before is None or lb.data is not self.before[0]:
            raise ValueError("only the last batch a runner made with restage=True can be re-staged")
        _, streams, states = self.before
        map_nest(lambda full, part: full.index_copy_(0, streams, part), self.states, states)
        return self.process(lb.data)
