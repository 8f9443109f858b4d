"""V-MPO losses against a slow numpy reference, plus the directions eta and alpha move in."""

import math

import numpy as np
import pytest
import torch

from agents.losses import VMPOParams, vmpo_loss

torch.set_num_threads(1)
EPS_ETA, EPS_ALPHA = 0.1, 0.004


def log_softmax_np(x):
    m = max(x)
    return [xi - m - math.log(sum(math.exp(xj - m) for xj in x)) for xi in x]


def ref_vmpo(logits, actions, adv, target_logits, eta, alpha, mask):
    """The V-MPO equations written out step by step; returns (pieces, d total / d logits)."""
    T, B, A = logits.shape
    valid = [(i, j) for i in range(T) for j in range(B) if mask[i, j]]
    n = len(valid)
    k = math.ceil(n / 2)
    top = sorted(valid, key=lambda ij: -adv[ij])[:k]  # Python's sort is stable: earlier step wins ties
    m = max(adv[ij] / eta for ij in top)
    exps = {ij: math.exp(adv[ij] / eta - m) for ij in top}
    z = sum(exps.values())
    psi = {ij: e / z for ij, e in exps.items()}
    logp = {(i, j): log_softmax_np(list(logits[i, j])) for i in range(T) for j in range(B)}
    policy = -sum(psi[ij] * logp[ij][actions[ij]] for ij in top)
    temperature = eta * EPS_ETA + eta * (m + math.log(z / k))
    kls = {}
    for ij in valid:
        lq = log_softmax_np(list(target_logits[ij]))
        kls[ij] = sum(math.exp(lq[a]) * (lq[a] - logp[ij][a]) for a in range(A))
    kl = sum(kls.values()) / n
    kl_penalty = sum(alpha * (EPS_ALPHA - kls[ij]) + alpha * kls[ij] for ij in valid) / n
    psi_kl = sum(p * math.log(p * k) for p in psi.values())
    grad = np.zeros_like(logits)
    for ij in valid:
        pi = np.exp(logp[ij])
        p_old = np.exp(log_softmax_np(list(target_logits[ij])))
        grad[ij] += alpha / n * (pi - p_old)
        if ij in psi:
            grad[ij] -= psi[ij] * (np.eye(A)[actions[ij]] - pi)
    pieces = dict(policy=policy, temperature=temperature, kl_penalty=kl_penalty, kl=kl,
                  total=policy + temperature + kl_penalty, psi_kl=psi_kl)
    return pieces, grad, psi, k / n


def random_batch(seed, T=6, B=5, A=4, adv_scale=1.0, masked=False):
    rng = np.random.default_rng(seed)
    batch = dict(
        logits=rng.normal(size=(T, B, A)) * 2,
        actions=rng.integers(0, A, size=(T, B)),
        adv=rng.normal(size=(T, B)) * adv_scale,
        target_logits=rng.normal(size=(T, B, A)),
        mask=(rng.random((T, B)) < 0.7) if masked else np.ones((T, B), bool),
    )
    if masked:
        batch["mask"][0, 0] = True
    return batch


def run(batch, eta, alpha, masked=True):
    logits = torch.as_tensor(batch["logits"]).requires_grad_()
    eta_t = torch.tensor(eta, dtype=torch.float64, requires_grad=True)
    alpha_t = torch.tensor(alpha, dtype=torch.float64, requires_grad=True)
    out = vmpo_loss(
        logits, torch.as_tensor(batch["actions"]), torch.as_tensor(batch["adv"]),
        torch.as_tensor(batch["target_logits"]), eta_t, alpha_t, EPS_ETA, EPS_ALPHA,
        mask=torch.as_tensor(batch["mask"]) if masked else None,
    )
    out.total.backward()
    return out, logits.grad, eta_t.grad, alpha_t.grad


@pytest.mark.parametrize("seed,masked,eta,alpha", [(0, False, 1.0, 0.1), (1, True, 0.3, 5.0), (2, True, 2.0, 0.5)])
def test_vmpo_matches_reference(seed, masked, eta, alpha):
    batch = random_batch(seed, masked=masked)
    out, logits_grad, eta_grad, alpha_grad = run(batch, eta, alpha, masked)
    ref, ref_grad, ref_psi, ref_fraction = ref_vmpo(
        batch["logits"], batch["actions"], batch["adv"], batch["target_logits"], eta, alpha, batch["mask"]
    )
    for name in ("policy", "temperature", "kl_penalty", "kl", "total", "psi_kl"):
        assert getattr(out, name).item() == pytest.approx(ref[name], rel=1e-9, abs=1e-12), name
    np.testing.assert_allclose(logits_grad.numpy(), ref_grad, atol=1e-10)
    psi = np.zeros(batch["adv"].shape)
    for ij, p in ref_psi.items():
        psi[ij] = p
    np.testing.assert_allclose(out.psi.numpy(), psi, atol=1e-12)
    np.testing.assert_array_equal(out.top_mask.numpy(), psi > 0)
    assert out.top_fraction.item() == pytest.approx(ref_fraction)
    assert eta_grad.item() == pytest.approx(EPS_ETA - ref["psi_kl"], rel=1e-8, abs=1e-12)
    assert alpha_grad.item() == pytest.approx(EPS_ALPHA - ref["kl"], rel=1e-8, abs=1e-12)
    assert out.eta.item() == eta and out.alpha.item() == alpha and not out.eta.requires_grad


def test_psi_lives_on_the_top_half_only():
    batch = random_batch(3, T=7, B=3, masked=True)
    out, *_ = run(batch, 1.0, 0.1)
    mask = batch["mask"]
    n = mask.sum()
    top = out.top_mask.numpy()
    assert top.sum() == math.ceil(n / 2) and not (top & ~mask).any()
    assert batch["adv"][top].min() >= batch["adv"][mask & ~top].max()
    assert (out.psi.numpy()[~top] == 0).all() and (out.psi.numpy()[top] > 0).all()
    assert out.psi.sum().item() == pytest.approx(1.0)


def test_ties_prefer_earlier_steps():
    T, B, A = 3, 2, 3
    out = vmpo_loss(torch.zeros(T, B, A), torch.zeros(T, B, dtype=torch.long), torch.zeros(T, B),
                    torch.zeros(T, B, A), torch.tensor(1.0), torch.tensor(0.1))
    assert out.top_mask.tolist() == [[True, True], [True, False], [False, False]]


def sgd_step(params, batch, lr=0.1):
    """One plain gradient-descent step on (eta, alpha); returns (loss, before, after)."""
    loss = vmpo_loss(
        torch.as_tensor(batch["logits"], dtype=torch.float32), torch.as_tensor(batch["actions"]),
        torch.as_tensor(batch["adv"], dtype=torch.float32),
        torch.as_tensor(batch["target_logits"], dtype=torch.float32),
        params.eta, params.alpha,
    )
    before = (params.eta.item(), params.alpha.item())
    loss.total.backward()
    torch.optim.SGD(params.parameters(), lr=lr).step()
    return loss, before, (params.eta.item(), params.alpha.item())


def test_eta_grows_when_psi_is_too_peaked_and_shrinks_otherwise():
    peaked = random_batch(4, adv_scale=10.0)  # A / eta spread widely: KL(psi || uniform) >> eps_eta
    loss, (eta0, _), (eta1, _) = sgd_step(VMPOParams(), peaked)
    assert loss.psi_kl.item() > EPS_ETA and eta1 > eta0

    flat = random_batch(4, adv_scale=0.01)  # nearly uniform psi: KL ~ 0 < eps_eta
    loss, (eta0, _), (eta1, _) = sgd_step(VMPOParams(), flat)
    assert loss.psi_kl.item() < EPS_ETA and eta1 < eta0


def test_alpha_grows_when_kl_exceeds_eps_alpha_and_shrinks_otherwise():
    far = random_batch(5)  # unrelated target logits: KL(pi_old || pi) >> eps_alpha
    loss, (_, alpha0), (_, alpha1) = sgd_step(VMPOParams(alpha_init=0.5), far)
    assert loss.kl.item() > EPS_ALPHA and alpha1 > alpha0

    near = dict(far, target_logits=far["logits"])  # pi_old == pi: KL = 0
    loss, (_, alpha0), (_, alpha1) = sgd_step(VMPOParams(alpha_init=0.5), near)
    assert loss.kl.item() == pytest.approx(0.0, abs=1e-6) and alpha1 < alpha0


@pytest.mark.parametrize("eta", [1.0, 1e-6])
def test_large_advantages_stay_finite(eta):
    batch = random_batch(6, adv_scale=1e4)
    logits = torch.as_tensor(batch["logits"], dtype=torch.float32).requires_grad_()
    eta_t = torch.tensor(eta, requires_grad=True)
    out = vmpo_loss(logits, torch.as_tensor(batch["actions"]), torch.as_tensor(batch["adv"], dtype=torch.float32),
                    torch.as_tensor(batch["target_logits"], dtype=torch.float32), eta_t, torch.tensor(0.1))
    out.total.backward()
    assert torch.isfinite(torch.stack([out.total, out.policy, out.temperature, out.psi_kl])).all()
    assert torch.isfinite(logits.grad).all() and torch.isfinite(eta_t.grad)


def test_no_gradient_reaches_advantages_or_target_network():
    batch = random_batch(7)
    adv = torch.as_tensor(batch["adv"]).requires_grad_()
    target_logits = torch.as_tensor(batch["target_logits"]).requires_grad_()
    logits = torch.as_tensor(batch["logits"]).requires_grad_()
    out = vmpo_loss(logits, torch.as_tensor(batch["actions"]), adv, target_logits,
                    torch.tensor(1.0, dtype=torch.float64), torch.tensor(0.1, dtype=torch.float64))
    out.total.backward()
    assert adv.grad is None and target_logits.grad is None and logits.grad is not None


def test_empty_mask_is_rejected():
    with pytest.raises(ValueError, match="valid step"):
        vmpo_loss(torch.zeros(2, 2, 3), torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 2), torch.zeros(2, 2, 3),
                  torch.tensor(1.0), torch.tensor(0.1), mask=torch.zeros(2, 2, dtype=torch.bool))


def test_vmpo_params_start_at_their_initial_values_and_stay_positive():
    params = VMPOParams(eta_init=1.0, alpha_init=5.0)
    assert params.eta.item() == pytest.approx(1.0, rel=1e-6)
    assert params.alpha.item() == pytest.approx(5.0, rel=1e-6)
    assert VMPOParams(alpha_init=0.1).alpha.item() == pytest.approx(0.1, rel=1e-6)
    with torch.no_grad():
        params.eta_raw.fill_(-1e4)
        params.alpha_raw.fill_(-1e4)
    assert params.eta.item() > 0 and params.alpha.item() > 0
    with pytest.raises(ValueError, match="eta_init"):
        VMPOParams(eta_init=0.0)
