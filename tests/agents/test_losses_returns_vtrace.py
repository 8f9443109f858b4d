"""n-step returns and V-trace against slow numpy references written like the papers' equations."""

import numpy as np
import pytest
import torch

from agents.losses import nstep_returns, segment_next_values, vtrace

torch.set_num_threads(1)
GAMMA = 0.9


def random_segment(seed, T=9, B=6):
    """A segment with random terminations and truncations, as float64 numpy arrays."""
    rng = np.random.default_rng(seed)
    u = rng.random((T, B))
    terminated = u < 0.15
    truncated = (u >= 0.15) & (u < 0.3)
    seg = dict(
        rewards=rng.normal(size=(T, B)),
        values=rng.normal(size=(T, B)),
        final_values=rng.normal(size=(T, B)) * 3,
        bootstrap=rng.normal(size=B),
        discounts=GAMMA * (1.0 - terminated),
        episode_end=terminated | truncated,
        behaviour_logp=np.log(rng.uniform(0.05, 1.0, size=(T, B))),
        target_logp=np.log(rng.uniform(0.05, 1.0, size=(T, B))),
    )
    seg["next_values"] = ref_next_values(seg["values"], seg["bootstrap"], seg["episode_end"], seg["final_values"])
    return seg


def t(x):
    return torch.as_tensor(x)


def ref_next_values(values, bootstrap, episode_end, final_values):
    T, B = values.shape
    out = np.zeros((T, B))
    for b in range(B):
        for s in range(T):
            if episode_end[s, b]:
                out[s, b] = final_values[s, b]
            elif s == T - 1:
                out[s, b] = bootstrap[b]
            else:
                out[s, b] = values[s + 1, b]
    return out


def ref_nstep(rewards, next_values, discounts, episode_end):
    """G_s = sum_{t=s}^{e} (prod_{i=s}^{t-1} d_i) r_t + (prod_{i=s}^{e} d_i) V(x_{e+1}), e = first cut."""
    T, B = rewards.shape
    out = np.zeros((T, B))
    for b in range(B):
        for s in range(T):
            total, scale, u = 0.0, 1.0, s
            while True:
                total += scale * rewards[u, b]
                scale *= discounts[u, b]
                if episode_end[u, b] or u == T - 1:
                    total += scale * next_values[u, b]
                    break
                u += 1
            out[s, b] = total
    return out


def ref_vtrace(seg, rho_bar, c_bar):
    """Espeholt et al. eq. (1): v_s = V(x_s) + sum_t (prod_{i<t} d_i c_i) delta_t, within the episode."""
    r, v, nv, d, end = seg["rewards"], seg["values"], seg["next_values"], seg["discounts"], seg["episode_end"]
    T, B = r.shape
    rho = np.exp(seg["target_logp"] - seg["behaviour_logp"])
    vs = np.zeros((T, B))
    adv = np.zeros((T, B))
    for b in range(B):
        for s in range(T):
            total, scale, u = v[s, b], 1.0, s
            while True:
                delta = min(rho_bar, rho[u, b]) * (r[u, b] + d[u, b] * nv[u, b] - v[u, b])
                total += scale * delta
                if end[u, b] or u == T - 1:
                    break
                scale *= d[u, b] * min(c_bar, rho[u, b])
                u += 1
            vs[s, b] = total
    for b in range(B):
        for s in range(T):
            cut = end[s, b] or s == T - 1
            v_next = nv[s, b] if cut else vs[s + 1, b]
            adv[s, b] = min(rho_bar, rho[s, b]) * (r[s, b] + d[s, b] * v_next - v[s, b])
    return vs, adv, rho


@pytest.mark.parametrize("seed", range(3))
def test_segment_next_values_matches_reference(seed):
    seg = random_segment(seed)
    got = segment_next_values(t(seg["values"]), t(seg["bootstrap"]), t(seg["episode_end"]), t(seg["final_values"]))
    np.testing.assert_allclose(got.numpy(), seg["next_values"], atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_nstep_returns_match_reference(seed):
    seg = random_segment(seed)
    out = nstep_returns(t(seg["rewards"]), t(seg["next_values"]), t(seg["discounts"]), t(seg["episode_end"]))
    expected = ref_nstep(seg["rewards"], seg["next_values"], seg["discounts"], seg["episode_end"])
    np.testing.assert_allclose(out.returns.numpy(), expected, atol=1e-10)
    assert out.advantages is None

    with_values = nstep_returns(
        t(seg["rewards"]), t(seg["next_values"]), t(seg["discounts"]), t(seg["episode_end"]), values=t(seg["values"])
    )
    np.testing.assert_allclose(with_values.advantages.numpy(), expected - seg["values"], atol=1e-10)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("rho_bar,c_bar", [(1.0, 1.0), (0.7, 1.3), (2.0, 0.5)])
def test_vtrace_matches_reference(seed, rho_bar, c_bar):
    seg = random_segment(seed)
    out = vtrace(
        t(seg["behaviour_logp"]), t(seg["target_logp"]), t(seg["rewards"]), t(seg["values"]),
        t(seg["next_values"]), t(seg["discounts"]), t(seg["episode_end"]), rho_bar=rho_bar, c_bar=c_bar,
    )
    vs, adv, rho = ref_vtrace(seg, rho_bar, c_bar)
    np.testing.assert_allclose(out.vs.numpy(), vs, atol=1e-10)
    np.testing.assert_allclose(out.pg_advantages.numpy(), adv, atol=1e-10)
    np.testing.assert_allclose(out.rhos.numpy(), rho, atol=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_on_policy_vtrace_equals_nstep_returns(seed):
    seg = random_segment(seed)
    logp = t(seg["target_logp"])
    out = vtrace(logp, logp, t(seg["rewards"]), t(seg["values"]), t(seg["next_values"]),
                 t(seg["discounts"]), t(seg["episode_end"]))
    returns = nstep_returns(t(seg["rewards"]), t(seg["next_values"]), t(seg["discounts"]), t(seg["episode_end"]),
                            values=t(seg["values"]))
    torch.testing.assert_close(out.vs, returns.returns, atol=1e-10, rtol=0)
    torch.testing.assert_close(out.pg_advantages, returns.advantages, atol=1e-10, rtol=0)


def boundary_case(kind):
    """One stream, T=4, episode ends at t=1 (terminated or truncated); rewards 1, values 0."""
    gamma = 0.5
    end = torch.tensor([[False], [True], [False], [False]])
    terminated = end if kind == "terminated" else torch.zeros_like(end)
    discounts = gamma * (1.0 - terminated.double())
    values = torch.zeros(4, 1, dtype=torch.float64)
    final_values = torch.full((4, 1), 10.0, dtype=torch.float64)
    next_values = segment_next_values(values, torch.tensor([4.0], dtype=torch.float64), end, final_values)
    rewards = torch.ones(4, 1, dtype=torch.float64)
    return rewards, values, next_values, discounts, end


@pytest.mark.parametrize(
    "kind,expected",
    [
        ("terminated", [1.5, 1.0, 2.5, 3.0]),  # nothing after the terminal reward
        ("truncated", [4.0, 6.0, 2.5, 3.0]),  # G_1 = 1 + 0.5 * V(final obs) = 6
    ],
)
def test_truncation_bootstraps_termination_does_not(kind, expected):
    rewards, values, next_values, discounts, end = boundary_case(kind)
    returns = nstep_returns(rewards, next_values, discounts, end).returns
    logp = torch.zeros_like(rewards)
    vs = vtrace(logp, logp, rewards, values, next_values, discounts, end).vs
    assert returns[:, 0].tolist() == pytest.approx(expected)
    assert vs[:, 0].tolist() == pytest.approx(expected)


def test_vtrace_targets_carry_no_gradient():
    seg = random_segment(0)
    values = t(seg["values"]).requires_grad_()
    target_logp = t(seg["target_logp"]).requires_grad_()
    out = vtrace(t(seg["behaviour_logp"]), target_logp, t(seg["rewards"]), values,
                 t(seg["next_values"]), t(seg["discounts"]), t(seg["episode_end"]))
    assert not out.vs.requires_grad and not out.pg_advantages.requires_grad
    returns = nstep_returns(t(seg["rewards"]), t(seg["next_values"]), t(seg["discounts"]), t(seg["episode_end"]),
                            values=values)
    assert not returns.returns.requires_grad and not returns.advantages.requires_grad
