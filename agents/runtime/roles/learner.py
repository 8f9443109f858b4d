"""Learner: V-MPO on the learner model, with a target network refreshed every K_L steps.

What differs by agent comes from the :class:`~agents.runtime.topology.Topology`: V-trace targets
(behaviour = the actor policy, target = the learner) or n-step returns, the KL toward the actor
(ALD's bidirectional part), and which parameters the learner publishes after each update (the
actors' for the baselines, the target network's for the learner runner every K_L steps).

pi_old is the target network: the parameters of the latest refresh, exactly as in a serial run.
Right after a refresh the target *is* the model, so pi_old is the model's own logits of this
step (detached), free. Otherwise a batch whose runner outputs come from an older refresh (the
runner works ahead of the learner) gets its pi_old recomputed here with the learner's own copy
of the target network; the parallel driver's runner re-stages a batch it still holds when the
target changes, so that in a steady run this never happens (``recomputed_targets`` counts it).

``entropy_coef`` > 0 adds an entropy bonus to the V-MPO loss (the paper has none; see
``docs/architecture.md``, "Models and losses"). ``entropy_floor`` > 0 adds one whose weight
``entropy_beta`` is a multiplier of the constraint ``H(pi) >= entropy_floor``, updated after each
step from that step's entropy (:func:`~agents.losses.entropy_floor_multiplier`).

PopArt: each step computes the new statistics from this batch's targets with the run's
``popart_decay`` first, normalises targets, advantages and predictions with them (never with
stale ones), and after the optimizer step installs them in the value head, rescaled so that
unnormalised outputs are preserved. See ``docs/architecture.md`` ("Invariants").
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn.functional as F

from agents.losses import (VMPOParams, entropy_floor_multiplier, learner_kl_regulariser, nstep_returns, policy_entropy,
                           policy_kl, popart_update, value_loss, vmpo_loss, vtrace)
from agents.models import map_nest
from agents.runtime.topology import Topology
from agents.runtime.transport.param_store import ParameterStore
from agents.runtime.transport.trajectory import LearnerBatch


def to_torch(nest, device):
    return map_nest(lambda a: torch.as_tensor(a, device=device), nest)


class Learner:
    """One V-MPO update per :meth:`step`; publishes into the stores it is given."""

    def __init__(self, config, topology: Topology, model: torch.nn.Module, device: torch.device,
                 actor_store: ParameterStore | None = None, target_store: ParameterStore | None = None):
        self.config = config
        self.topology = topology
        self.device = device
        self.model = model.to(device).train()
        self.target = copy.deepcopy(self.model).eval()
        self.target_version = 0
        self.vmpo = VMPOParams(config.eta_init, config.alpha_init).to(device)
        self.optimizer = torch.optim.Adam(list(self.model.parameters()) + list(self.vmpo.parameters()),
                                          lr=config.learning_rate)
        self.actor_store = actor_store if topology.actor_publisher == "learner" else None
        self.target_store = target_store if topology.has_runner else None
        self.steps = 0
        self.nan_in_a_row = 0
        self.nan_total = 0
        self.recomputed_targets = 0
        self.entropy_beta = 0.0
        self.after_update: Callable[[torch.nn.Module], dict] | None = None  # GALA's gossip (agents.gala)

    def pi_old(self, lb: LearnerBatch, obs, state, first, logits: torch.Tensor) -> torch.Tensor:
        """Target-network logits ``[T, B, A]`` from the latest refresh (see the module docstring);
        ``logits``: the model's own on this batch."""
        T = lb.data.action.shape[0]
        if lb.target is not None and lb.target.version == self.target_version:
            return torch.from_numpy(lb.target.logits).to(self.device)
        if self.target_version == self.steps:  # no update since the refresh: the target is the model
            return logits.detach()
        if lb.target is not None:
            self.recomputed_targets += 1
        with torch.no_grad():
            return self.target.policy_sequence(obs[:T], state, first[:T])

    def step(self, lb: LearnerBatch) -> dict:
        """One update on ``lb``; returns metrics. A non-finite loss skips the update."""
        c, dev, batch = self.config, self.device, lb.data
        T = batch.action.shape[0]
        obs = torch.from_numpy(batch.obs).to(dev)
        first = torch.from_numpy(batch.first).to(dev)
        action = torch.from_numpy(batch.action).to(dev)
        reward = torch.from_numpy(batch.reward).to(dev)
        terminated = torch.from_numpy(batch.terminated).to(dev)
        truncated = torch.from_numpy(batch.truncated).to(dev)
        valid = torch.from_numpy(batch.valid).to(dev)
        behaviour_logits = torch.from_numpy(batch.behaviour_logits).to(dev)
        state = to_torch(lb.learner_state, dev)

        logits_all, values_norm, _ = self.model.forward_sequence(obs, state, first)
        logits = logits_all[:T]
        head = self.model.value_head
        target_logits = self.pi_old(lb, obs, state, first, logits)

        with torch.no_grad():
            values = head.denormalize(values_norm)
            episode_end = terminated | truncated | ~valid
            discounts = c.gamma * (valid & ~terminated).float()
            if self.topology.returns == "vtrace":
                behaviour_logp = F.log_softmax(behaviour_logits, -1).gather(-1, action[..., None])[..., 0]
                target_logp = F.log_softmax(logits.detach(), -1).gather(-1, action[..., None])[..., 0]
                vt = vtrace(behaviour_logp, target_logp, reward, values[:T], values[1:], discounts, episode_end)
                targets, advantages = vt.vs, vt.pg_advantages
            else:
                returns = nstep_returns(reward, values[1:], discounts, episode_end, values=values[:T])
                targets, advantages = returns.returns, returns.advantages
            new = popart_update(head.mu, head.nu, targets[valid], c.popart_decay, head.min_sigma)
        # Predictions in the new normalised units (the head is rescaled to match after the step).
        prediction = (values_norm[:T] * head.sigma + head.mu - new.mu) / new.sigma
        pieces = vmpo_loss(logits, action, advantages / new.sigma, target_logits, self.vmpo.eta, self.vmpo.alpha,
                           c.eps_eta, c.eps_alpha, mask=valid)
        v_loss = value_loss(prediction, targets, new.mu, new.sigma, mask=valid)
        total = pieces.total + v_loss.total
        entropy = policy_entropy(logits)[valid].mean()
        bonus = c.entropy_coef + self.entropy_beta
        if bonus:
            total = total - bonus * entropy
        metrics: dict = {}
        if self.topology.learner_kl_to_actor:
            reg = learner_kl_regulariser(logits, behaviour_logits, c.kl_direction, mask=valid)
            total = total + c.learner_kl_coef * reg.total
            metrics["learner_kl_reg"] = float(reg.total.detach())
        if not torch.isfinite(total):
            self.nan_in_a_row += 1
            self.nan_total += 1
            return {"nan_updates": self.nan_total}
        self.nan_in_a_row = 0
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        head.set_stats(new)
        self.steps += 1
        if c.entropy_floor:
            self.entropy_beta = entropy_floor_multiplier(self.entropy_beta, float(entropy.detach()), c.entropy_floor,
                                                         c.entropy_floor_rate)
        if self.after_update is not None:  # (before publishing: actors and the target see the mixed model)
            metrics.update(self.after_update(self.model))
        metrics.update(self._publish())
        with torch.no_grad():
            kl_actor = policy_kl(behaviour_logits, logits.detach())[valid].mean()
            behaviour_entropy = policy_entropy(behaviour_logits)[valid].mean()
        metrics.update(
            loss=float(total.detach()), policy_loss=float(pieces.policy.detach()), temperature_loss=float(pieces.temperature.detach()),
            kl_penalty=float(pieces.kl_penalty.detach()), value_loss=float(v_loss.total.detach()), kl_target=float(pieces.kl),
            kl_actor_learner=float(kl_actor), policy_entropy=float(entropy.detach()), actor_entropy=float(behaviour_entropy),
            eta=float(pieces.eta), alpha=float(pieces.alpha),
            popart_mu=float(head.mu.reshape(-1)[0]), popart_sigma=float(head.sigma.reshape(-1)[0]),  # (after gossip)
            value_target=float(targets[valid].mean()), nan_updates=self.nan_total,
            recomputed_targets=self.recomputed_targets, entropy_beta=self.entropy_beta,
        )
        return metrics

    def _publish(self) -> dict:
        """After an update: refresh the target every K_L steps (and the runner's copy of it), and
        publish the actors' parameters when the learner owns them."""
        out = {}
        if self.steps % self.config.target_period == 0:
            self.target.load_state_dict(self.model.state_dict())
            self.target_version = self.steps
            if self.target_store is not None:
                self.target_store.publish(self.topology.runner_module(self.target).state_dict(), self.steps)
        if self.actor_store is not None:
            out["published"] = self.actor_store.publish(self.topology.actor_module(self.model).state_dict())
        return out

    def check_finite(self) -> None:
        """Raise once ``max_nan_updates`` consecutive losses were non-finite."""
        if self.nan_in_a_row >= self.config.max_nan_updates:
            raise FloatingPointError(f"{self.nan_in_a_row} consecutive non-finite losses: stopping "
                                     "(the last checkpoint is from before them)")

    def state(self) -> dict:
        """What a checkpoint keeps of the learner."""
        return {"model": self.model.state_dict(), "target": self.target.state_dict(),
                "target_version": self.target_version, "vmpo": self.vmpo.state_dict(),
                "optimizer": self.optimizer.state_dict(), "steps": self.steps, "entropy_beta": self.entropy_beta}

    def load(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        # format 1 checkpoints kept no target network: start it at the loaded model
        self.target.load_state_dict(state.get("target", state["model"]))
        self.target_version = int(state.get("target_version", state["steps"]))
        self.vmpo.load_state_dict(state["vmpo"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps = int(state["steps"])
        # (0 for checkpoints from before --entropy-floor, and for a resume that turns the floor off:
        # a weight nobody updates any more would be a fixed bonus)
        self.entropy_beta = float(state.get("entropy_beta", 0.0)) if self.config.entropy_floor else 0.0
