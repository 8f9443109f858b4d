"""PopArt: adaptive target normalisation that preserves the value head's outputs.

van Hasselt et al. 2016 ("Learning values across many orders of magnitude"), as used for
multi-task IMPALA by Hessel et al. 2019. The value head predicts ``V_norm = W h + b`` in
normalised units; the value in reward units is ``sigma * V_norm + mu``. ``mu`` and ``nu`` are
exponential moving averages of the first and second moments of the unnormalised targets, and
``sigma = sqrt(nu - mu^2)``.

Order of one learner step (the order matters; normalising with stale statistics is the bug of
rlax issue #111):

1. Run the model; denormalise its value outputs with the current stats ``old`` and compute the
   targets ``G`` (n-step or V-trace) in reward units.
2. ``new = popart_update(old.mu, old.nu, G)``.
3. ``popart_preserve(W, b, old, new)`` and copy the result into the head (under ``no_grad``):
   unnormalised outputs are unchanged, normalised outputs are now in ``new`` units.
4. Recompute the normalised values with the preserved head (re-apply the last linear layer to
   the same features), then normalise targets and advantages with ``new``:
   ``value_loss(V_norm, G, new.mu, new.sigma)``. Never mix ``old`` and ``new`` in one loss.

Shapes: ``K`` value outputs (1 here). ``mu``, ``nu``, ``sigma`` have shape ``[K]`` (or are
scalars for K = 1); tensors they normalise broadcast against them, so for K = 1 any shape works
and for K > 1 the last dimension is K.
"""

from typing import NamedTuple, Optional, Tuple, Union

import torch


class PopArtStats(NamedTuple):
    mu: torch.Tensor
    """``[K]`` running first moment of the targets."""
    nu: torch.Tensor
    """``[K]`` running second moment of the targets."""
    sigma: torch.Tensor
    """``[K]`` ``sqrt(nu - mu^2)``, clamped to ``[min_sigma, max_sigma]``."""


class LinearParams(NamedTuple):
    weight: torch.Tensor
    """``[K, H]`` weight of the value head's last linear layer."""
    bias: torch.Tensor
    """``[K]`` its bias."""


class ValueLoss(NamedTuple):
    total: torch.Tensor
    """Scalar ``0.5 * mean((V_norm - (G - mu) / sigma)^2)`` over valid steps."""
    normalized_targets: torch.Tensor
    """``[T, B]`` ``(G - mu) / sigma`` (no gradient)."""


Stats = Union[PopArtStats, Tuple[torch.Tensor, torch.Tensor]]


def initial_popart_stats(
    num_outputs: int = 1, dtype: torch.dtype = torch.float32, device=None
) -> PopArtStats:
    """Statistics before any update: ``mu = 0``, ``nu = 1`` (``sigma = 1``), each ``[K]``."""
    zeros = torch.zeros(num_outputs, dtype=dtype, device=device)
    ones = torch.ones(num_outputs, dtype=dtype, device=device)
    return PopArtStats(zeros, ones, ones.clone())


def popart_update(
    mu: torch.Tensor,
    nu: torch.Tensor,
    targets: torch.Tensor,
    decay: float = 3e-4,
    min_sigma: float = 1e-4,
    max_sigma: float = 1e6,
) -> PopArtStats:
    """One moving-average step of the target moments with a batch of targets.

    ``mu' = (1 - decay) * mu + decay * mean(G)``, ``nu' = (1 - decay) * nu + decay * mean(G^2)``,
    the means taken over the batch (one step per learner update, as in Hessel et al. 2019).
    ``decay = 1`` gives the batch's own moments. Returns new tensors; nothing is modified. Pass
    only valid steps (e.g. ``targets[mask]``).

    Args:
        mu: ``[K]`` or scalar, current first moment.
        nu: ``[K]`` or scalar, current second moment.
        targets: unnormalised value targets: any shape when K = 1, ``[..., K]`` otherwise.
        decay: step size of the moving averages (the paper's 0.0003).
        min_sigma: lower clamp of sigma (keeps normalisation finite for constant targets).
        max_sigma: upper clamp of sigma.
    """
    with torch.no_grad():
        targets = targets.to(mu.dtype)
        if mu.numel() == 1:
            batch_mean = targets.mean().reshape(mu.shape)
            batch_sq = targets.square().mean().reshape(mu.shape)
        else:
            flat = targets.reshape(-1, mu.shape[-1])
            batch_mean, batch_sq = flat.mean(0), flat.square().mean(0)
        new_mu = (1.0 - decay) * mu + decay * batch_mean
        new_nu = (1.0 - decay) * nu + decay * batch_sq
    return PopArtStats(new_mu, new_nu, popart_sigma(new_mu, new_nu, min_sigma, max_sigma))


def popart_sigma(mu: torch.Tensor, nu: torch.Tensor, min_sigma: float = 1e-4, max_sigma: float = 1e6) -> torch.Tensor:
    """``sqrt(nu - mu^2)`` clamped to ``[min_sigma, max_sigma]``: sigma as a function of the moments."""
    with torch.no_grad():
        return (nu - mu.square()).clamp(min=min_sigma**2, max=max_sigma**2).sqrt()


def _mu_sigma(stats: Stats) -> Tuple[torch.Tensor, torch.Tensor]:
    if isinstance(stats, PopArtStats):
        return stats.mu, stats.sigma
    mu, sigma = stats
    return mu, sigma


def popart_preserve(weight: torch.Tensor, bias: torch.Tensor, old: Stats, new: Stats) -> LinearParams:
    """Rescale the last linear layer so that ``sigma * (W h + b) + mu`` is unchanged.

    ``W' = W * sigma_old / sigma_new`` and ``b' = (sigma_old * b + mu_old - mu_new) / sigma_new``.
    Returns new tensors; copy them into the layer under ``torch.no_grad()``.

    Args:
        weight: ``[K, H]`` (or ``[H]`` for a single output without a K dimension).
        bias: ``[K]``.
        old: statistics the layer's outputs are currently in: ``PopArtStats`` or ``(mu, sigma)``.
        new: statistics after :func:`popart_update`, same forms.
    """
    mu_old, sigma_old = _mu_sigma(old)
    mu_new, sigma_new = _mu_sigma(new)
    with torch.no_grad():
        scale = sigma_old / sigma_new
        row_scale = scale.reshape(-1, 1) if weight.dim() == 2 else scale
        new_weight = weight * row_scale
        new_bias = (sigma_old * bias + mu_old - mu_new) / sigma_new
    return LinearParams(new_weight, new_bias.reshape(bias.shape))


def normalize(x: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``(x - mu) / sigma``: reward units to normalised units."""
    return (x - mu) / sigma


def denormalize(x: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``sigma * x + mu``: normalised units to reward units."""
    return sigma * x + mu


def value_loss(
    normalized_values: torch.Tensor,
    targets: torch.Tensor,
    mu: torch.Tensor,
    sigma: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
) -> ValueLoss:
    """V-MPO's value loss in PopArt units: ``0.5 * mean((V_norm - (G - mu) / sigma)^2)``.

    Regressing in normalised units keeps the gradient scale independent of the reward scale. Use
    the statistics *after* this step's :func:`popart_update` (module docstring).

    Args:
        normalized_values: ``[T, B]`` value head outputs ``V_norm`` (with gradient).
        targets: ``[T, B]`` unnormalised targets ``G`` (detached here).
        mu: ``[K]`` or scalar.
        sigma: ``[K]`` or scalar.
        mask: optional ``[T, B]`` bool of valid steps; the mean runs over them only.
    """
    normalized_targets = normalize(targets.detach(), mu.detach(), sigma.detach())
    squared = 0.5 * (normalized_values - normalized_targets).square()
    if mask is not None:
        squared = squared[mask.bool()]
    return ValueLoss(squared.mean(), normalized_targets)
