"""PopArt statistics, output preservation and the value loss against numpy references."""

import math

import numpy as np
import pytest
import torch

from agents.losses import (
    PopArtStats,
    denormalize,
    initial_popart_stats,
    normalize,
    popart_preserve,
    popart_update,
    value_loss,
)

torch.set_num_threads(1)


def ref_update(mu, nu, targets, decay, min_sigma=1e-4):
    """van Hasselt et al.: mu <- (1-b) mu + b E[G], nu <- (1-b) nu + b E[G^2], one step per batch."""
    flat = np.asarray(targets, dtype=np.float64).ravel()
    mean = sum(flat) / len(flat)
    sq = sum(g * g for g in flat) / len(flat)
    new_mu = (1 - decay) * mu + decay * mean
    new_nu = (1 - decay) * nu + decay * sq
    sigma = math.sqrt(max(new_nu - new_mu**2, min_sigma**2))
    return new_mu, new_nu, sigma


def head_outputs(weight, bias, stats, features):
    """Unnormalised outputs sigma * (W h + b) + mu, [N, K]."""
    return denormalize(features @ weight.T + bias, stats.mu, stats.sigma)


def test_initial_stats():
    stats = initial_popart_stats()
    assert stats.mu.tolist() == [0.0] and stats.nu.tolist() == [1.0] and stats.sigma.tolist() == [1.0]


@pytest.mark.parametrize("decay", [3e-4, 0.1, 1.0])
def test_update_matches_reference(decay):
    rng = np.random.default_rng(0)
    stats = initial_popart_stats(dtype=torch.float64)
    mu, nu = 0.0, 1.0
    for _ in range(5):
        targets = rng.normal(5.0, 3.0, size=(6, 4))
        stats = popart_update(stats.mu, stats.nu, torch.as_tensor(targets), decay=decay)
        mu, nu, sigma = ref_update(mu, nu, targets, decay)
        np.testing.assert_allclose([stats.mu.item(), stats.nu.item(), stats.sigma.item()], [mu, nu, sigma], rtol=1e-12)
    assert stats.mu.shape == (1,)


def test_decay_one_gives_empirical_moments():
    targets = torch.tensor([[1.0, 2.0], [4.0, 9.0]], dtype=torch.float64)
    stats = popart_update(torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64), targets, decay=1.0)
    assert stats.mu.item() == pytest.approx(targets.mean().item())
    assert stats.nu.item() == pytest.approx(targets.square().mean().item())
    assert stats.sigma.item() == pytest.approx(targets.std(unbiased=False).item())


def test_repeated_updates_converge_to_empirical_moments():
    targets = torch.as_tensor(np.random.default_rng(1).normal(-20.0, 7.0, size=50))
    stats = initial_popart_stats(dtype=torch.float64)
    for _ in range(400):
        stats = popart_update(stats.mu, stats.nu, targets, decay=0.1)
    assert stats.mu.item() == pytest.approx(targets.mean().item(), rel=1e-6)
    assert stats.sigma.item() == pytest.approx(targets.std(unbiased=False).item(), rel=1e-6)


def test_sigma_is_clamped_for_constant_targets():
    stats = popart_update(torch.zeros(1), torch.ones(1), torch.full((8,), 3.0), decay=1.0, min_sigma=1e-3)
    assert stats.sigma.item() == pytest.approx(1e-3)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
def test_preserve_keeps_unnormalised_outputs(dtype, tol):
    gen = torch.Generator().manual_seed(0)
    H = 16
    weight = torch.randn(1, H, generator=gen, dtype=dtype)
    bias = torch.randn(1, generator=gen, dtype=dtype)
    features = torch.randn(32, H, generator=gen, dtype=dtype)
    stats = initial_popart_stats(dtype=dtype)
    for step in range(6):
        before = head_outputs(weight, bias, stats, features)
        targets = 100.0 * step + 50.0 * torch.randn(64, generator=gen, dtype=dtype)
        new = popart_update(stats.mu, stats.nu, targets, decay=0.3)
        weight, bias = popart_preserve(weight, bias, stats, new)
        after = head_outputs(weight, bias, new, features)
        torch.testing.assert_close(after, before, atol=tol * max(1.0, before.abs().max().item()), rtol=0)
        stats = new
    assert stats.sigma.item() > 10.0  # the statistics really moved


def test_preserve_accepts_mu_sigma_pairs_and_several_outputs():
    gen = torch.Generator().manual_seed(1)
    K, H = 3, 5
    weight = torch.randn(K, H, generator=gen, dtype=torch.float64)
    bias = torch.randn(K, generator=gen, dtype=torch.float64)
    features = torch.randn(7, H, generator=gen, dtype=torch.float64)
    old = initial_popart_stats(K, dtype=torch.float64)
    scales = torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64)
    targets = torch.randn(10, K, generator=gen, dtype=torch.float64) * scales
    new = popart_update(old.mu, old.nu, targets, decay=1.0)
    np.testing.assert_allclose(new.mu.numpy(), targets.mean(0).numpy(), rtol=1e-12)
    w2, b2 = popart_preserve(weight, bias, (old.mu, old.sigma), (new.mu, new.sigma))
    torch.testing.assert_close(
        denormalize(features @ w2.T + b2, new.mu, new.sigma), denormalize(features @ weight.T + bias, old.mu, old.sigma)
    )


def test_normalize_denormalize_are_inverse():
    x = torch.randn(4, 3, dtype=torch.float64)
    mu, sigma = torch.tensor([2.0], dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64)
    torch.testing.assert_close(denormalize(normalize(x, mu, sigma), mu, sigma), x)
    torch.testing.assert_close(normalize(x, mu, sigma), (x - 2.0) / 0.5)


@pytest.mark.parametrize("use_mask", [False, True])
def test_value_loss_matches_reference(use_mask):
    rng = np.random.default_rng(2)
    T, B = 5, 4
    v_norm, targets = rng.normal(size=(T, B)), rng.normal(10.0, 5.0, size=(T, B))
    mask = rng.random((T, B)) < 0.6 if use_mask else np.ones((T, B), bool)
    mu, sigma = 9.0, 4.0
    terms = [0.5 * (v_norm[i, j] - (targets[i, j] - mu) / sigma) ** 2 for i in range(T) for j in range(B) if mask[i, j]]
    values = torch.as_tensor(v_norm).requires_grad_()
    out = value_loss(values, torch.as_tensor(targets), torch.tensor([mu], dtype=torch.float64),
                     torch.tensor([sigma], dtype=torch.float64), mask=torch.as_tensor(mask) if use_mask else None)
    assert out.total.item() == pytest.approx(sum(terms) / len(terms), rel=1e-12)
    np.testing.assert_allclose(out.normalized_targets.numpy(), (targets - mu) / sigma)
    out.total.backward()
    assert np.all(values.grad.numpy()[~mask] == 0.0)


def test_documented_order_keeps_a_perfect_head_perfect():
    """Update stats, preserve the head, then normalise targets with the NEW stats (rlax #111).

    A head that already predicts the targets exactly must still have zero value loss; normalising
    with the stale statistics would give a spurious loss and a gradient.
    """
    gen = torch.Generator().manual_seed(3)
    features = torch.randn(12, 4, generator=gen, dtype=torch.float64)
    weight = torch.randn(1, 4, generator=gen, dtype=torch.float64)
    bias = torch.randn(1, generator=gen, dtype=torch.float64)
    old = PopArtStats(torch.tensor([2.0], dtype=torch.float64), torch.tensor([13.0], dtype=torch.float64),
                      torch.tensor([3.0], dtype=torch.float64))
    targets = head_outputs(weight, bias, old, features).squeeze(-1)

    new = popart_update(old.mu, old.nu, targets, decay=0.5)
    weight, bias = popart_preserve(weight, bias, old, new)
    v_norm = (features @ weight.T + bias).squeeze(-1)
    assert value_loss(v_norm, targets, new.mu, new.sigma).total.item() == pytest.approx(0.0, abs=1e-20)
    assert value_loss(v_norm, targets, old.mu, old.sigma).total.item() > 1e-3


def test_update_and_preserve_carry_no_gradient():
    weight = torch.randn(1, 3, requires_grad=True)
    bias = torch.randn(1, requires_grad=True)
    old = initial_popart_stats()
    new = popart_update(old.mu, old.nu, torch.randn(5, requires_grad=True))
    preserved = popart_preserve(weight, bias, old, new)
    assert not any(x.requires_grad for x in (*new, *preserved))
