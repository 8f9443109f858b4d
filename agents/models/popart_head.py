"""Value head with PopArt output normalisation (van Hasselt et al. 2016; Hessel et al. 2019)."""

from __future__ import annotations

import torch
from torch import nn

from agents.losses.popart import PopArtStats, popart_preserve, popart_update


class PopArtValueHead(nn.Module):
    """A linear layer that predicts the value in normalised units, plus the target statistics.

    ``forward`` returns the normalised value ``V_norm = W h + b`` of shape ``[..., K]``; the
    value in reward units is ``sigma * V_norm + mu`` (:meth:`denormalize`). :meth:`update`
    moves the statistics toward a batch of targets and rescales ``W, b`` so that unnormalised
    outputs are preserved. Statistics are buffers (saved in the state dict, moved by ``.to``).
    """

    mu: torch.Tensor
    nu: torch.Tensor
    sigma: torch.Tensor

    def __init__(self, in_features: int, num_outputs: int = 1, decay: float = 3e-4, min_sigma: float = 1e-4):
        super().__init__()
        self.linear = nn.Linear(in_features, num_outputs)
        self.decay = decay
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
    def update(self, targets: torch.Tensor) -> PopArtStats:
        """Update the statistics with unnormalised ``targets`` and preserve the outputs.

        Writes in place with ``copy_`` so parameters in shared memory stay shared. Returns the
        new statistics (copies).
        """
        old = PopArtStats(self.mu.clone(), self.nu.clone(), self.sigma.clone())
        new = popart_update(old.mu, old.nu, targets.detach(), self.decay, self.min_sigma)
        weight, bias = popart_preserve(self.linear.weight, self.linear.bias, old, new)
        self.linear.weight.copy_(weight)
        self.linear.bias.copy_(bias)
        self.mu.copy_(new.mu)
        self.nu.copy_(new.nu)
        self.sigma.copy_(new.sigma)
        return PopArtStats(new.mu.clone(), new.nu.clone(), new.sigma.clone())
