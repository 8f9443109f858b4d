"""Value head with PopArt output normalisation (van Hasselt et al. 2016; Hessel et al. 2019)."""

from __future__ import annotations

import torch
from torch import nn

from agents.losses.popart import PopArtStats, popart_preserve


class PopArtValueHead(nn.Module):
    """A linear layer that predicts the value in normalised units, plus the target statistics.

    ``forward`` returns the normalised value ``V_norm = W h + b`` of shape ``[..., K]``; the
    value in reward units is ``sigma * V_norm + mu`` (:meth:`denormalize`). :meth:`set_stats`
    installs new statistics and rescales ``W, b`` so that unnormalised outputs are preserved.
    The head computes no statistics itself: their step size belongs to the run config (the
    learner calls :func:`~agents.losses.popart_update` with ``--popart-decay``), so it has one
    owner. Statistics are buffers (saved in the state dict, moved by ``.to``).
    """

    mu: torch.Tensor
    nu: torch.Tensor
    sigma: torch.Tensor

    def __init__(self, in_features: int, num_outputs: int = 1, min_sigma: float = 1e-4):
        super().__init__()
        self.linear = nn.Linear(in_features, num_outputs)
        self.min_sigma = min_sigma
        self.register_buffer("mu", torch.zeros(num_outputs))
        self.register_buffer("nu", torch.ones(num_outputs))
        self.register_buffer("sigma", torch.ones(num_outputs))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``[..., H]`` -> normalised values ``[..., K]``."""
        return self.linear(features)

    @property
    def stats(self) -> PopArtStats:
        """The current statistics (views of the buffers)."""
        return PopArtStats(self.mu, self.nu, self.sigma)

    def denormalize(self, values: torch.Tensor) -> torch.Tensor:
        """Normalised values to reward units (for K = 1 any shape, else last dim K)."""
        return values * self.sigma + self.mu

    def normalize(self, values: torch.Tensor) -> torch.Tensor:
        """Reward units to normalised units."""
        return (values - self.mu) / self.sigma

    @torch.no_grad()
    def set_stats(self, new: PopArtStats) -> None:
        """Install the statistics ``new`` and rescale ``W, b`` so unnormalised outputs are preserved.

        Writes in place with ``copy_`` so parameters in shared memory stay shared.
        """
        old = PopArtStats(self.mu.clone(), self.nu.clone(), self.sigma.clone())
        weight, bias = popart_preserve(self.linear.weight, self.linear.bias, old, new)
        self.linear.weight.copy_(weight)
        self.linear.bias.copy_(bias)
        self.mu.copy_(new.mu)
        self.nu.copy_(new.nu)
        self.sigma.copy_(new.sigma)
