"""Distill: trains the actor toward the learner on replayed data (ALD, paper eqs. 1-3).

N_D distillers update the same actor parameters in shared memory (HOGWILD!, Recht et al.
2011): each computes its loss and gradients without locks, on parameters other distillers may
be changing; only the optimizer's write holds the store (so actors never copy out half of an
update) and counts as a new parameter version. Each distiller has its own Adam (moments and step
count per distiller, deliberately: sharing them would need locks or accept torn updates of the
moments as well). Actors reload every K_A versions. Invalid (autoreset) steps are left out of
the loss, as of every loss.
"""

from __future__ import annotations

import math

import torch

from agents.losses import ald_actor_loss
from agents.runtime.roles.learner import to_torch
from agents.runtime.transport.param_store import ParameterStore
from agents.runtime.transport.trajectory import DistillBatch


def distill_steps_due(ratio: float, learner_steps: int, distill_steps: int) -> int:
    """Distill steps allowed now: at most ``ratio`` per learner step, over the whole run."""
    return max(0, math.floor(ratio * learner_steps + 1e-9) - distill_steps)


class Distiller:
    """Runs on the CPU: the actor parameters live in shared CPU memory."""

    def __init__(self, config, model: torch.nn.Module, store: ParameterStore):
        self.config = config
        self.store = store
        self.model = store.bind(model).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.steps = 0

    def step(self, db: DistillBatch, learner_steps: int | None = None) -> dict:
        """One distill step on ``db``; with ``learner_steps`` (the learner's count now) its metrics
        also give the target's age, ``distill_target_age``: learner steps since the target network
        that produced ``db``'s targets (the replay's age plus up to ``K_L`` of target staleness)."""
        c, batch = self.config, db.data
        T = batch.action.shape[0]
        obs = torch.from_numpy(batch.obs[:T])
        first = torch.from_numpy(batch.first[:T])
        logits, values_norm, _ = self.model.forward_sequence(obs, to_torch(batch.actor_state, "cpu"), first)
        values = self.model.value_head.denormalize(values_norm)
        loss = ald_actor_loss(logits, torch.from_numpy(db.target.logits), values, torch.from_numpy(db.target.values),
                              c.alpha_pi, c.alpha_v, c.kl_direction, mask=torch.from_numpy(batch.valid))
        if not torch.isfinite(loss.total):
            return {"distill_nan": 1.0}
        self.optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        with self.store.writing() as published:
            self.optimizer.step()
        self.steps += 1
        metrics = {"distill_loss": float(loss.total.detach()), "distill_kl": float(loss.policy_kl.detach()),
                   "distill_value": float(loss.value.detach()), "published": published[0]}
        if learner_steps is not None:
            metrics["distill_target_age"] = learner_steps - db.target.version
        return metrics
