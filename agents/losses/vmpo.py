"""V-MPO policy, temperature and trust-region losses (Song et al., 2020) for discrete actions.

E-step: keep the top half ``D~`` of the batch's advantages and weight those samples by
``psi = softmax_{D~}(A / eta)``. M-step: weighted maximum likelihood toward ``psi``, with a KL
trust region to the target network ``pi_old`` enforced by the Lagrange multiplier ``alpha``. The
temperature ``eta`` and ``alpha`` are learned by gradient descent on their dual losses. The value
loss lives in :mod:`agents.losses.popart` (:func:`~agents.losses.popart.value_loss`).
"""

import math
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F

from agents.losses.distill import policy_kl


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class VMPOParams(torch.nn.Module):
    """The learnable temperature ``eta`` and KL multiplier ``alpha``, kept positive.

    Each is ``softplus(raw) + floor``: smooth, always above ``floor`` (1e-8), and its raw
    parameter is initialised so the value starts exactly at ``eta_init`` / ``alpha_init``.
    Optimise them with the policy (Adam over ``model.parameters()`` and these).
    """

    def __init__(self, eta_init: float = 1.0, alpha_init: float = 0.1, floor: float = 1e-8):
        super().__init__()
        for name, value in (("eta_init", eta_init), ("alpha_init", alpha_init)):
            if not value > floor:
                raise ValueError(f"{name} must be greater than floor={floor}, got {value}")
        self.floor = floor
        self.eta_raw = torch.nn.Parameter(torch.tensor(_inverse_softplus(eta_init - floor)))
        self.alpha_raw = torch.nn.Parameter(torch.tensor(_inverse_softplus(alpha_init - floor)))

    @property
    def eta(self) -> torch.Tensor:
        """Scalar temperature, ``> floor``, differentiable."""
        return F.softplus(self.eta_raw) + self.floor

    @property
    def alpha(self) -> torch.Tensor:
        """Scalar KL multiplier, ``> floor``, differentiable."""
        return F.softplus(self.alpha_raw) + self.floor


class VMPOLoss(NamedTuple):
    total: torch.Tensor
    """Scalar ``policy + temperature + kl_penalty``."""
    policy: torch.Tensor
    """Scalar ``L_pi = -sum_{D~} psi * log pi(a|s)``."""
    temperature: torch.Tensor
    """Scalar ``L_eta = eta * eps_eta + eta * log(mean_{D~} exp(A / eta))``."""
    kl_penalty: torch.Tensor
    """Scalar ``L_alpha = alpha * (eps_alpha - sg(KL)) + sg(alpha) * KL`` (KL averaged over states)."""
    kl: torch.Tensor
    """Scalar mean ``KL(pi_old || pi)`` over valid states (detached)."""
    eta: torch.Tensor
    """Scalar eta (detached)."""
    alpha: torch.Tensor
    """Scalar alpha (detached)."""
    psi: torch.Tensor
    """``[T, B]`` sample weights, zero outside ``D~``, summing to 1 (detached)."""
    top_mask: torch.Tensor
    """``[T, B]`` bool, membership of ``D~``."""
    top_fraction: torch.Tensor
    """Scalar ``|D~| / n_valid`` (0.5, or just above it for an odd count)."""
    psi_kl: torch.Tensor
    """Scalar ``KL(psi || uniform on D~)``, the quantity eta keeps near ``eps_eta`` (detached)."""


def vmpo_loss(
    logits: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    target_logits: torch.Tensor,
    eta: torch.Tensor,
    alpha: torch.Tensor,
    eps_eta: float = 0.1,
    eps_alpha: float = 0.004,
    mask: Optional[torch.Tensor] = None,
) -> VMPOLoss:
    """V-MPO loss on a batch of ``[T, B]`` steps (docs/architecture.md "Models and losses").

    ``D~`` holds the ``k = ceil(n / 2)`` largest advantages among the ``n`` valid steps; ties at
    the cut are broken in favour of the earlier step in time-major (``t`` then ``b``) order, so
    the choice is deterministic. ``L_eta`` uses a max-subtracted logsumexp, so large advantages
    or small ``eta`` stay finite without clamping. Its gradient,
    ``eps_eta - KL(psi || uniform on D~)``, makes eta grow when the weights are more peaked than
    ``eps_eta`` allows; likewise alpha grows when ``KL(pi_old || pi) > eps_alpha``.

    Args:
        logits: ``[T, B, A]`` current policy logits (with gradient).
        actions: ``[T, B]`` int64 actions taken.
        advantages: ``[T, B]`` advantages in PopArt-normalised units (detached here).
        target_logits: ``[T, B, A]`` logits of ``pi_old``, the target network (detached here).
        eta: scalar positive temperature with gradient (e.g. ``VMPOParams.eta``).
        alpha: scalar positive KL multiplier with gradient (e.g. ``VMPOParams.alpha``).
        eps_eta: temperature constraint (paper: 0.1).
        eps_alpha: trust-region bound on the mean KL (paper: 0.004).
        mask: optional ``[T, B]`` bool of valid steps; invalid steps are ignored everywhere.
    """
    valid = torch.ones_like(advantages, dtype=torch.bool) if mask is None else mask.bool()
    valid_idx = valid.reshape(-1).nonzero().squeeze(1)
    n = valid_idx.numel()
    if n == 0:
        raise ValueError("vmpo_loss needs at least one valid step; mask selects none")
    k = (n + 1) // 2

    flat_adv = advantages.detach().reshape(-1)
    order = torch.sort(flat_adv[valid_idx], descending=True, stable=True).indices[:k]
    top_idx = valid_idx[order]
    top_adv = flat_adv[top_idx]

    logp = F.log_softmax(logits, dim=-1).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
    log_psi = F.log_softmax(top_adv / eta.detach(), dim=0)
    psi_top = log_psi.exp()
    policy = -(psi_top * logp.reshape(-1)[top_idx]).sum()

    temperature = eta * eps_eta + eta * (torch.logsumexp(top_adv / eta, dim=0) - math.log(k))

    kl_states = policy_kl(target_logits.detach(), logits)
    kl_mean = kl_states.reshape(-1)[valid_idx].mean()
    kl_penalty = alpha * (eps_alpha - kl_mean.detach()) + alpha.detach() * kl_mean

    psi = torch.zeros_like(flat_adv).index_put((top_idx,), psi_top.detach()).reshape(advantages.shape)
    top_mask = torch.zeros_like(valid.reshape(-1)).index_fill(0, top_idx, True).reshape(valid.shape)
    return VMPOLoss(
        total=policy + temperature + kl_penalty,
        policy=policy,
        temperature=temperature,
        kl_penalty=kl_penalty,
        kl=kl_mean.detach(),
        eta=eta.detach(),
        alpha=alpha.detach(),
        psi=psi,
        top_mask=top_mask,
        top_fraction=torch.tensor(k / n, device=advantages.device),
        psi_kl=(psi_top * (log_psi + math.log(k))).sum().detach(),
    )
