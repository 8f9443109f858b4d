"""ALD distillation losses (paper eqs. 1-3) against numpy, and where their gradients go."""

import math

import numpy as np
import pytest
import torch

from agents.losses import (DIRECTIONS, ald_actor_loss, entropy_floor_multiplier, learner_kl_regulariser, policy_entropy,
                           policy_kl)

torch.set_num_threads(1)


def ref_kl(p_logits, q_logits):
    """sum_a p(a) log(p(a) / q(a)) for one state, from softmax probabilities."""
    p = [math.exp(x - max(p_logits)) for x in p_logits]
    q = [math.exp(x - max(q_logits)) for x in q_logits]
    zp, zq = sum(p), sum(q)
    return sum(pa / zp * math.log((pa / zp) / (qa / zq)) for pa, qa in zip(p, q))


def ref_ald(actor_logits, learner_logits, actor_values, learner_values, alpha_pi, alpha_v, direction, mask):
    T, B, _ = actor_logits.shape
    steps = [(i, j) for i in range(T) for j in range(B) if mask[i, j]]
    kls = []
    for ij in steps:
        a, l = list(actor_logits[ij]), list(learner_logits[ij])
        kls.append(ref_kl(a, l) if direction == "actor_learner" else ref_kl(l, a))
    kl = sum(kls) / len(steps)
    value = sum(0.5 * (learner_values[ij] - actor_values[ij]) ** 2 for ij in steps) / len(steps)
    return alpha_pi * kl + alpha_v * value, kl, value


def random_batch(seed, T=5, B=4, A=3):
    rng = np.random.default_rng(seed)
    return dict(
        actor_logits=rng.normal(size=(T, B, A)) * 2,
        learner_logits=rng.normal(size=(T, B, A)) * 2,
        actor_values=rng.normal(size=(T, B)),
        learner_values=rng.normal(size=(T, B)),
        mask=rng.random((T, B)) < 0.6,
    )


def tensors(batch):
    return {k: torch.as_tensor(v).requires_grad_(v.dtype != bool) for k, v in batch.items()}


def test_policy_entropy_matches_reference_and_is_stable():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(4, 5, 6)) * 3
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(policy_entropy(torch.as_tensor(logits)).numpy(), -(p * np.log(p)).sum(-1), rtol=1e-10)
    np.testing.assert_allclose(policy_entropy(torch.zeros(2, 4, dtype=torch.float64)).numpy(), np.log(4), rtol=1e-12)
    peaked = torch.tensor([[1e4, 0.0, 0.0]])
    assert torch.isfinite(policy_entropy(peaked)).all() and policy_entropy(peaked).item() < 1e-6


def test_policy_kl_matches_reference_and_is_stable():
    rng = np.random.default_rng(0)
    p, q = rng.normal(size=(4, 6, 5)) * 3, rng.normal(size=(4, 6, 5)) * 3
    got = policy_kl(torch.as_tensor(p), torch.as_tensor(q)).numpy()
    expected = np.array([[ref_kl(list(p[i, j]), list(q[i, j])) for j in range(6)] for i in range(4)])
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert (got >= 0).all()
    assert policy_kl(torch.as_tensor(p), torch.as_tensor(p)).abs().max().item() < 1e-12

    huge = torch.tensor([[1e4, -1e4, 0.0]])
    assert torch.isfinite(policy_kl(huge, -huge)).all() and torch.isfinite(policy_kl(-huge, huge)).all()


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("use_mask", [False, True])
def test_ald_actor_loss_matches_reference(direction, use_mask):
    batch = random_batch(1)
    mask = batch["mask"] if use_mask else np.ones_like(batch["mask"])
    x = tensors(batch)
    out = ald_actor_loss(x["actor_logits"], x["learner_logits"], x["actor_values"], x["learner_values"],
                         alpha_pi=0.7, alpha_v=0.3, direction=direction, mask=x["mask"] if use_mask else None)
    total, kl, value = ref_ald(batch["actor_logits"], batch["learner_logits"], batch["actor_values"],
                               batch["learner_values"], 0.7, 0.3, direction, mask)
    assert out.total.item() == pytest.approx(total, rel=1e-10)
    assert out.policy_kl.item() == pytest.approx(kl, rel=1e-10)
    assert out.value.item() == pytest.approx(value, rel=1e-10)


def test_paper_default_direction_is_kl_actor_to_learner():
    batch = tensors(random_batch(2))
    default = ald_actor_loss(
        batch["actor_logits"], batch["learner_logits"], batch["actor_values"], batch["learner_values"]
    )
    expected = policy_kl(batch["actor_logits"], batch["learner_logits"]).mean()
    assert default.policy_kl.item() == pytest.approx(expected.item())


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_actor_loss_trains_only_the_actor(direction):
    x = tensors(random_batch(3))
    out = ald_actor_loss(x["actor_logits"], x["learner_logits"], x["actor_values"], x["learner_values"],
                         direction=direction)
    out.total.backward()
    assert x["learner_logits"].grad is None and x["learner_values"].grad is None
    assert x["actor_logits"].grad.abs().sum() > 0 and x["actor_values"].grad.abs().sum() > 0


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_learner_regulariser_trains_only_the_learner(direction):
    batch = random_batch(4)
    x = tensors(batch)
    out = learner_kl_regulariser(x["learner_logits"], x["actor_logits"], direction=direction, mask=x["mask"])
    _, kl, _ = ref_ald(batch["actor_logits"], batch["learner_logits"], batch["actor_values"],
                       batch["learner_values"], 1.0, 0.0, direction, batch["mask"])
    assert out.total.item() == pytest.approx(kl, rel=1e-10)
    assert out.kl_per_step.shape == batch["mask"].shape and not out.kl_per_step.requires_grad
    out.total.backward()
    assert x["actor_logits"].grad is None and x["learner_logits"].grad.abs().sum() > 0


def test_zero_value_weight_ignores_values():
    x = tensors(random_batch(5))
    out = ald_actor_loss(x["actor_logits"], x["learner_logits"], x["actor_values"], x["learner_values"], alpha_v=0.0)
    assert out.total.item() == pytest.approx(out.policy_kl.item())


@pytest.mark.parametrize("fn", ["actor", "learner"])
def test_unknown_direction_is_rejected_with_the_options(fn):
    logits = torch.zeros(2, 2, 3)
    with pytest.raises(ValueError, match="actor_learner.*learner_actor"):
        if fn == "actor":
            ald_actor_loss(logits, logits, torch.zeros(2, 2), torch.zeros(2, 2), direction="forward")
        else:
            learner_kl_regulariser(logits, logits, direction="forward")


def test_entropy_floor_multiplier_rises_below_the_floor_and_returns_to_exactly_zero_above():
    beta, history = 0.0, []
    for entropy in (1.0, 0.1, 0.1, 0.1, 0.5, 0.5, 0.5, 0.5):  # floor 0.3, rate 0.1
        beta = entropy_floor_multiplier(beta, entropy, 0.3, 0.1)
        history.append(beta)
    expected = [0.0, 0.02, 0.04, 0.06, 0.04, 0.02, 0.0, 0.0]
    np.testing.assert_allclose(history, expected, atol=1e-12)
    assert history[-1] == 0.0 and entropy_floor_multiplier(0.0, 0.0, 0.0, 1.0) == 0.0
