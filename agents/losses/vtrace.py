"""V-trace off-policy value targets and policy-gradient advantages (Espeholt et al., 2018).

In ALD the behaviour policy is the actor (which collected the data) and the target policy is the
learner, so the learner's V-MPO uses V-trace targets instead of plain n-step returns.
"""

from typing import NamedTuple

import torch


class VTrace(NamedTuple):
    vs: torch.Tensor
    """``[T, B]`` V-trace value targets ``v_s``."""
    pg_advantages: torch.Tensor
    """``[T, B]`` ``min(rho_bar, rho_t) * (r_t + discounts_t * v_{t+1} - V(x_t))``."""
    rhos: torch.Tensor
    """``[T, B]`` unclipped importance ratios ``pi(a_t|x_t) / mu(a_t|x_t)`` (for logging)."""


def vtrace(
    behaviour_logp: torch.Tensor,
    target_logp: torch.Tensor,
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    discounts: torch.Tensor,
    episode_end: torch.Tensor,
    rho_bar: float = 1.0,
    c_bar: float = 1.0,
) -> VTrace:
    """V-trace targets with the trace cut at episode ends and at the segment end.

    With ``delta_t = min(rho_bar, rho_t) * (r_t + discounts_t * next_values_t - V(x_t))`` and
    ``c_t = min(c_bar, rho_t)``:
    ``v_t - V(x_t) = delta_t + discounts_t * c_t * (v_{t+1} - V(x_{t+1}))``, where the second
    term is dropped at the last step and where ``episode_end_t``. The policy-gradient advantage
    uses ``v_{t+1}`` inside an episode and ``next_values_t`` after its end or the segment's.
    With equal behaviour and target policies ``vs`` equals :func:`nstep_returns`.
    Computed without gradient (these are targets). See the package docstring for the boundary
    convention.

    Args:
        behaviour_logp: ``[T, B]`` ``log mu(a_t|x_t)`` of the policy that acted.
        target_logp: ``[T, B]`` ``log pi(a_t|x_t)`` of the policy being evaluated.
        rewards: ``[T, B]``.
        values: ``[T, B]`` ``V(x_t)``.
        next_values: ``[T, B]`` ``V(x_{t+1})`` of the same episode.
        discounts: ``[T, B]`` ``gamma * (1 - terminated)``.
        episode_end: ``[T, B]`` bool, terminated or truncated.
        rho_bar: clip of the importance weights in ``delta_t`` and the advantages.
        c_bar: clip of the trace coefficients ``c_t``.
    """
    with torch.no_grad():
        rhos = torch.exp(target_logp - behaviour_logp)
        clipped_rhos = rhos.clamp(max=rho_bar)
        cs = rhos.clamp(max=c_bar)
        cut = episode_end.bool().clone()
        cut[-1] = True
        deltas = clipped_rhos * (rewards + discounts * next_values - values)

        vs_minus_v = torch.empty_like(values)
        carry = torch.zeros_like(values[-1])
        for t in range(values.shape[0] - 1, -1, -1):
            carry = deltas[t] + discounts[t] * cs[t] * carry.masked_fill(cut[t], 0.0)
            vs_minus_v[t] = carry
        vs = vs_minus_v + values

        vs_next = torch.cat([vs[1:], next_values[-1:]], dim=0)
        vs_next = torch.where(cut, next_values, vs_next)
        pg_advantages = clipped_rhos * (rewards + discounts * vs_next - values)
    return VTrace(vs, pg_advantages, rhos)
