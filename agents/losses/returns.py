"""Bootstrapped n-step returns of a segment (the V-MPO baselines' value targets)."""

from typing import NamedTuple, Optional

import torch


class Returns(NamedTuple):
    returns: torch.Tensor
    """``[T, B]`` bootstrapped discounted returns ``G_t``."""
    advantages: Optional[torch.Tensor]
    """``[T, B]`` ``G_t - values[t]``, or None when no values were given."""


def segment_next_values(
    values: torch.Tensor,
    bootstrap_value: torch.Tensor,
    episode_end: torch.Tensor,
    final_values: torch.Tensor,
) -> torch.Tensor:
    """Build ``next_values`` (see the package docstring) from a segment's values.

    Args:
        values: ``[T, B]`` ``V(x_t)``.
        bootstrap_value: ``[B]`` value of the observation that follows the segment.
        episode_end: ``[T, B]`` bool, terminated or truncated at step t.
        final_values: ``[T, B]`` value of the episode's final observation where
            ``episode_end[t]`` (what a truncation bootstraps from); read nowhere else, and any
            number is fine at terminations since their discount is 0.

    Returns:
        ``[T, B]`` ``next_values``.
    """
    shifted = torch.cat([values[1:], bootstrap_value.unsqueeze(0)], dim=0)
    return torch.where(episode_end.bool(), final_values, shifted)


def nstep_returns(
    rewards: torch.Tensor,
    next_values: torch.Tensor,
    discounts: torch.Tensor,
    episode_end: torch.Tensor,
    values: Optional[torch.Tensor] = None,
) -> Returns:
    """Discounted return to the end of the episode or segment, bootstrapped there.

    ``G_t = r_t + discounts_t * (G_{t+1} if t < T-1 and not episode_end_t else next_values_t)``:
    a termination adds nothing after ``r_t``, a truncation or the segment end adds the
    discounted ``next_values_t``. Computed without gradient: these are regression targets.

    Args:
        rewards: ``[T, B]``.
        next_values: ``[T, B]`` see the package docstring.
        discounts: ``[T, B]`` ``gamma * (1 - terminated)``.
        episode_end: ``[T, B]`` bool, terminated or truncated.
        values: optional ``[T, B]`` ``V(x_t)``; when given, ``advantages = returns - values``.
    """
    with torch.no_grad():
        cut = episode_end.bool().clone()
        cut[-1] = True
        returns = torch.empty_like(rewards)
        carry = next_values[-1]
        for t in range(rewards.shape[0] - 1, -1, -1):
            carry = rewards[t] + discounts[t] * torch.where(cut[t], next_values[t], carry)
            returns[t] = carry
        advantages = None if values is None else returns - values.detach()
    return Returns(returns, advantages)
