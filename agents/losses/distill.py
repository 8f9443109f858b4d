"""Actor-Learner Distillation losses (Parisotto & Salakhutdinov 2021, eqs. 1-3).

The actor is distilled toward the learner (policy KL plus value regression, gradient to the
actor only), and the learner is regularised toward the actor with the same policy KL (gradient
to the learner only): the bidirectional scheme of the paper's section 3.
"""

from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F

DIRECTIONS = ("actor_learner", "learner_actor")
"""``"actor_learner"``: KL(pi_A || pi_L), the paper's eq. 1; ``"learner_actor"``: KL(pi_L || pi_A)."""


class DistillLoss(NamedTuple):
    total: torch.Tensor
    """Scalar ``alpha_pi * policy_kl + alpha_v * value``."""
    policy_kl: torch.Tensor
    """Scalar mean policy KL over valid steps (eq. 1)."""
    value: torch.Tensor
    """Scalar ``0.5 * mean((V_L - V_A)^2)`` over valid steps (eq. 2)."""


class KLRegulariser(NamedTuple):
    total: torch.Tensor
    """Scalar mean policy KL over valid steps, gradient to the learner only."""
    kl_per_step: torch.Tensor
    """``[T, B]`` the KL at each step (no gradient; for logging)."""


def policy_entropy(logits: torch.Tensor) -> torch.Tensor:
    """``H(p) = -sum p log p`` of categorical distributions given by logits, over the last axis
    (``[..., A]`` -> ``[...]``). Logged to see a policy collapse before the first rewards."""
    log_p = F.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


def entropy_floor_multiplier(beta: float, entropy: float, floor: float, rate: float) -> float:
    """Dual ascent on the constraint ``H(pi) >= floor``: the entropy bonus weight after a step
    whose mean policy entropy was ``entropy``, ``max(0, beta + rate * (floor - entropy))``.
    It grows while the entropy is below the floor and falls back to exactly 0 above it, so a
    policy that keeps its entropy never feels it (``floor`` 0: always 0)."""
    return max(0.0, beta + rate * (floor - entropy))


def policy_kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """``KL(p || q)`` between categorical distributions given by logits, over the last axis.

    Args:
        p_logits: ``[..., A]``.
        q_logits: ``[..., A]``.

    Returns:
        ``[...]``.
    """
    log_p = F.log_softmax(p_logits, dim=-1)
    log_q = F.log_softmax(q_logits, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")


def _directed_kl(actor_logits: torch.Tensor, learner_logits: torch.Tensor, direction: str) -> torch.Tensor:
    _check_direction(direction)
    if direction == "actor_learner":
        return policy_kl(actor_logits, learner_logits)
    return policy_kl(learner_logits, actor_logits)


def _masked_mean(x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    return x.mean() if mask is None else x[mask.bool()].mean()


def ald_actor_loss(
    actor_logits: torch.Tensor,
    learner_logits: torch.Tensor,
    actor_values: torch.Tensor,
    learner_values: torch.Tensor,
    alpha_pi: float = 1.0,
    alpha_v: float = 0.1,
    direction: str = "actor_learner",
    mask: Optional[torch.Tensor] = None,
) -> DistillLoss:
    """Distillation loss of the actor on replayed data (eq. 3); the learner side is detached.

    Args:
        actor_logits: ``[T, B, A]`` actor policy logits (with gradient).
        learner_logits: ``[T, B, A]`` learner policy logits (targets).
        actor_values: ``[T, B]`` actor value predictions (with gradient).
        learner_values: ``[T, B]`` learner values (targets), in the same units as the actor's.
        alpha_pi: weight of the policy KL (paper: 1).
        alpha_v: weight of the value distillation (paper sweeps {0, 0.1, 1}).
        direction: one of :data:`DIRECTIONS`.
        mask: optional ``[T, B]`` bool of valid steps; means run over them only.
    """
    kl = _masked_mean(_directed_kl(actor_logits, learner_logits.detach(), direction), mask)
    value = _masked_mean(0.5 * (learner_values.detach() - actor_values).square(), mask)
    return DistillLoss(alpha_pi * kl + alpha_v * value, kl, value)


def learner_kl_regulariser(
    learner_logits: torch.Tensor,
    actor_logits: torch.Tensor,
    direction: str = "actor_learner",
    mask: Optional[torch.Tensor] = None,
) -> KLRegulariser:
    """The same policy KL as :func:`ald_actor_loss`, with the actor detached.

    Added (with a coefficient) to the learner's RL loss, it pulls the learner toward the actor,
    which the paper found smooths optimisation.

    Args:
        learner_logits: ``[T, B, A]`` learner policy logits (with gradient).
        actor_logits: ``[T, B, A]`` behaviour (actor) logits (targets).
        direction: one of :data:`DIRECTIONS`; KL(pi_A || pi_L) by default, as for the actor.
        mask: optional ``[T, B]`` bool of valid steps.
    """
    kl = _directed_kl(actor_logits.detach(), learner_logits, direction)
    return KLRegulariser(_masked_mean(kl, mask), kl.detach())
