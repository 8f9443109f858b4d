"""Distill: trains the actor toward the learner on replayed data (ALD, paper eqs. 1-3).

N_D distill processes update the same actor parameters in shared memory without locks
(HOGWILD!, Recht et al. 2011). Each process has its own Adam (moments and step count are
per process, deliberately: sharing them would need locks or accept torn updates of the
moments as well as of the parameters). After each step the parameter store's version is
bumped; actors reload every K_A versions.
"""

from __future__ import annotations

import torch

from agents.losses import ald_actor_loss
from agents.runtime.learner import to_torch
from agents.runtime.param_store import ParameterStore
from agents.runtime.trajectory import Batch


class Distiller:
    """Runs on the CPU: the actor parameters live in shared CPU memory."""

    def __init__(self, config, model: torch.nn.Module, store: ParameterStore):
        self.config = config
        self.store = store
        self.model = store.bind(model).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.steps = 0

    def step(self, batch: Batch) -> dict[str, float]:
        c = self.config
        T = batch.action.shape[0]
        obs = torch.from_numpy(batch.obs[:T])
        first = torch.from_numpy(batch.first[:T])
        logits, values_norm, _ = self.model.forward_sequence(obs, to_torch(batch.actor_state, "cpu"), first)
        values = self.model.value_head.denormalize(values_norm)
        loss = ald_actor_loss(logits, torch.from_numpy(batch.target_logits), values,
                              torch.from_numpy(batch.learner_values[:T]), c.alpha_pi, c.alpha_v, c.kl_direction)
        if not torch.isfinite(loss.total):
            return {"distill_nan": 1.0}
        self.optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        self.optimizer.step()
        self.steps += 1
        self.store.bump()
        return {"distill_loss": float(loss.total.detach()), "distill_kl": float(loss.policy_kl.detach()),
                "distill_value": float(loss.value.detach())}


def distill_process(shared, distill_id: int) -> None:
    """Process entry: HOGWILD! distillation steps, at most ``distill_ratio`` per learner step."""
    import time

    from agents.runtime.channels import Counters, get, run_role
    from agents.runtime.system import build_actor_model

    config = shared.config

    def body():
        distiller = Distiller(config, build_actor_model(config), shared.actor_store)
        counters = shared.counters
        while not shared.stop.is_set():
            if counters.distill_steps.value >= config.distill_ratio * counters.learner_steps.value:
                time.sleep(0.005)
                continue
            shared.replay_requests.put(distill_id)
            batch = get(shared.replay_responses[distill_id], shared.stop)
            if batch is None:
                continue
            metrics = distiller.step(batch)
            Counters.add(counters.distill_steps, 1)
            shared.emit("distill", 1, metrics)

    run_role(shared, f"distill {distill_id}", 1, body)
