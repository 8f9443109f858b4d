"""Learner: V-MPO on the learner model, with a target network refreshed every K_L steps.

ALD uses V-trace targets (behaviour = the actor policy, target = the learner) and adds the
learner's KL toward the actor (the bidirectional part of the distillation); the baselines use
n-step returns. Values are PopArt-normalised: each step computes the new statistics from this
batch's targets first, normalises targets, advantages and predictions with them (never with
stale ones), and after the optimizer step rescales the value head so unnormalised outputs are
preserved.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from agents.losses import (VMPOParams, learner_kl_regulariser, nstep_returns, policy_kl, popart_update, value_loss,
                           vmpo_loss, vtrace)
from agents.models import map_nest
from agents.runtime.trajectory import Batch


def to_torch(nest, device):
    return map_nest(lambda a: torch.as_tensor(a, device=device), nest)


class Learner:
    def __init__(self, config, model: torch.nn.Module, device: torch.device):
        self.config = config
        self.device = device
        self.model = model.to(device).train()
        self.vmpo = VMPOParams(config.eta_init, config.alpha_init).to(device)
        self.optimizer = torch.optim.Adam(list(self.model.parameters()) + list(self.vmpo.parameters()),
                                          lr=config.learning_rate)
        # Without a runner, the learner runs its own target network for pi_old.
        self.target = None if config.uses_runner else copy.deepcopy(self.model).eval()
        self.steps = 0
        self.nan_in_a_row = 0
        self.nan_total = 0

    def actor_state_dict(self):
        """The parameters actors run: the whole model, or the policy of the asymmetric pair."""
        return (self.model.policy if self.config.agent == "asymm_ac" else self.model).state_dict()

    def target_due(self) -> bool:
        """Whether the target network should be refreshed after this step (every K_L steps)."""
        return self.steps % self.config.target_period == 0

    def step(self, batch: Batch) -> dict[str, float]:
        """One update on ``batch``; returns metrics. A non-finite loss skips the update."""
        c, dev = self.config, self.device
        T = batch.action.shape[0]
        obs = torch.from_numpy(batch.obs).to(dev)
        first = torch.from_numpy(batch.first).to(dev)
        action = torch.from_numpy(batch.action).to(dev)
        reward = torch.from_numpy(batch.reward).to(dev)
        terminated = torch.from_numpy(batch.terminated).to(dev)
        truncated = torch.from_numpy(batch.truncated).to(dev)
        valid = torch.from_numpy(batch.valid).to(dev)
        behaviour_logits = torch.from_numpy(batch.behaviour_logits).to(dev)
        state = to_torch(batch.learner_state if batch.learner_state is not None else batch.actor_state, dev)

        logits_all, values_norm, _ = self.model.forward_sequence(obs, state, first)
        logits = logits_all[:T]
        head = self.model.value_head
        if batch.target_logits is not None:
            target_logits = torch.from_numpy(batch.target_logits).to(dev)
        else:
            with torch.no_grad():
                target_logits = self.target.forward_sequence(obs[:T], state, first[:T])[0]

        with torch.no_grad():
            values = head.denormalize(values_norm)
            episode_end = terminated | truncated | ~valid
            discounts = c.gamma * (valid & ~terminated).float()
            if c.agent == "ald":
                behaviour_logp = F.log_softmax(behaviour_logits, -1).gather(-1, action[..., None])[..., 0]
                target_logp = F.log_softmax(logits.detach(), -1).gather(-1, action[..., None])[..., 0]
                vt = vtrace(behaviour_logp, target_logp, reward, values[:T], values[1:], discounts, episode_end)
                targets, advantages = vt.vs, vt.pg_advantages
            else:
                returns = nstep_returns(reward, values[1:], discounts, episode_end, values=values[:T])
                targets, advantages = returns.returns, returns.advantages
            new = popart_update(head.mu, head.nu, targets[valid], c.popart_decay)
        # Predictions in the new normalised units (the head is rescaled to match after the step).
        prediction = (values_norm[:T] * head.sigma + head.mu - new.mu) / new.sigma
        pieces = vmpo_loss(logits, action, advantages / new.sigma, target_logits, self.vmpo.eta, self.vmpo.alpha,
                           c.eps_eta, c.eps_alpha, mask=valid)
        v_loss = value_loss(prediction, targets, new.mu, new.sigma, mask=valid)
        total = pieces.total + v_loss.total
        metrics = {}
        if c.agent == "ald":
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
        head.update(targets[valid])
        self.steps += 1
        if self.target is not None and self.target_due():
            self.target.load_state_dict(self.model.state_dict())
        with torch.no_grad():
            kl_actor = policy_kl(behaviour_logits, logits.detach())[valid].mean()
        metrics.update(
            loss=float(total.detach()), policy_loss=float(pieces.policy.detach()), temperature_loss=float(pieces.temperature.detach()),
            kl_penalty=float(pieces.kl_penalty.detach()), value_loss=float(v_loss.total.detach()), kl_target=float(pieces.kl),
            kl_actor_learner=float(kl_actor), eta=float(pieces.eta), alpha=float(pieces.alpha),
            popart_mu=float(new.mu.reshape(-1)[0]), popart_sigma=float(new.sigma.reshape(-1)[0]),
            value_target=float(targets[valid].mean()), nan_updates=self.nan_total,
        )
        return metrics

    def state(self) -> dict:
        """What a checkpoint keeps of the learner."""
        return {"model": self.model.state_dict(), "vmpo": self.vmpo.state_dict(),
                "optimizer": self.optimizer.state_dict(), "steps": self.steps}

    def load(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.vmpo.load_state_dict(state["vmpo"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps = int(state["steps"])
        if self.target is not None:
            self.target.load_state_dict(self.model.state_dict())


def learner_process(shared) -> None:
    """Process entry: learner steps on incoming batches, parameter publishing, checkpoints."""
    import os
    import time

    from agents.runtime import checkpoint
    from agents.runtime.batcher import Batcher
    from agents.runtime.channels import Counters, get, run_role
    from agents.runtime.state import checkpoint_payload
    from agents.runtime.system import build_learner_model, select_device

    config = shared.config
    start = time.monotonic()

    def body():
        learner = Learner(config, build_learner_model(config), select_device(config.device))
        if shared.resume_path:
            learner.load(torch.load(shared.resume_path, map_location="cpu", weights_only=True)["learner"])
        batcher = None if config.uses_runner else Batcher(config.batch_size // config.envs_per_actor)

        def save() -> None:
            counters = {**shared.counters.snapshot(), "learner_steps": learner.steps,
                        "wall_clock_s": shared.wall_clock_before + time.monotonic() - start}
            runner_tensors = shared.runner_store.tensors if shared.runner_store is not None else {}
            payload = checkpoint_payload(config, learner.state(), shared.actor_store.tensors, runner_tensors, counters)
            path = checkpoint.save(shared.run_dir, payload, learner.steps)
            shared.emit("checkpoint", path)

        def next_batch():
            if batcher is None:
                return get(shared.learner_queue, shared.stop)
            while not shared.stop.is_set():
                if (batch := batcher.pop_batch()) is not None:
                    return batch
                trajectory = shared.transport.get(shared.stop)
                if trajectory is not None:
                    batcher.add(trajectory)
            return None

        last_checkpoint = time.monotonic()
        while not shared.stop.is_set():
            waiting = time.perf_counter()
            batch = next_batch()
            if batch is None:
                break
            busy = time.perf_counter()
            stepped = learner.steps
            metrics = learner.step(batch)
            if learner.nan_in_a_row >= config.max_nan_updates:
                raise FloatingPointError(f"{learner.nan_in_a_row} consecutive non-finite losses: stopping "
                                         "(the last checkpoint is from before them)")
            if learner.steps > stepped:
                if not config.uses_runner:
                    shared.actor_store.publish(learner.actor_state_dict())
                elif learner.target_due():
                    shared.runner_store.publish(learner.model.state_dict())
                Counters.add(shared.counters.learner_steps, 1)
            shared.emit("learner", metrics, busy - waiting, time.perf_counter() - busy)
            if time.monotonic() - last_checkpoint >= 60 * config.checkpoint_minutes:
                save()
                last_checkpoint = time.monotonic()
        save()

    run_role(shared, "learner", config.learner_threads or os.cpu_count() or 1, body)
