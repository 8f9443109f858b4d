"""Beam encoder: the uint8 beam observation to a feature vector."""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F


class BeamEncoder(nn.Module):
    """Flatten a beam ``[..., L, W, C]`` (uint8 0/1) to float and apply Linear+ReLU layers.

    The beams are tiny (27 values for I-Maze 9x9, 180 for Meta-Fetch), so an MLP is both the
    cheapest and an adequate encoder; the plain layer list also lets the numpy actor copy it.
    """

    def __init__(self, obs_shape: Tuple[int, ...], sizes: Sequence[int]):
        super().__init__()
        if not sizes:
            raise ValueError("BeamEncoder needs at least one layer size")
        self.obs_ndim = len(obs_shape)
        in_features = math.prod(obs_shape)
        layers = []
        for size in sizes:
            layers.append(nn.Linear(in_features, size))
            in_features = size
        self.layers = nn.ModuleList(layers)
        self.out_features = in_features

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``[*lead, L, W, C]`` uint8 -> ``[*lead, out_features]`` float."""
        weight = self.layers[0].weight
        x = obs.flatten(-self.obs_ndim).to(device=weight.device, dtype=weight.dtype)
        for layer in self.layers:
            x = torch.relu(F.linear(x, layer.weight, layer.bias))
        return x
