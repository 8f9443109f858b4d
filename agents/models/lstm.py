"""The LSTM actor-critic: the small, fast actor model of ALD (and the LSTM baseline)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import gymnasium as gym
import torch
from torch import nn

from agents.models.base import RecurrentActorCritic, check_spaces, done_mask
from agents.models.encoders import BeamEncoder
from agents.models.nest import autograd_ready
from agents.models.popart_head import PopArtValueHead

LSTMState = Dict[str, torch.Tensor]


@dataclass(frozen=True)
class LSTMConfig:
    """Hyperparameters of :class:`LSTMActorCritic` (paper A.1/A.2)."""

    hidden_size: int = 32
    """LSTM units: 32 for I-Maze, 128 for Meta-Fetch."""
    encoder_sizes: Tuple[int, ...] = (64,)
    """Widths of the beam encoder's Linear+ReLU layers."""
    forget_bias: float = 1.0
    """Added to the forget gate's bias at init (Jozefowicz et al. 2015): memory survives the
    first updates instead of halving each step."""

    def __post_init__(self):
        if self.hidden_size < 1 or not self.encoder_sizes or min(self.encoder_sizes) < 1:
            raise ValueError(f"LSTMConfig needs hidden_size >= 1 and encoder_sizes >= 1, got {self}")


class LSTMActorCritic(RecurrentActorCritic):
    """Beam encoder -> single-layer LSTM -> policy logits and PopArt value.

    State: ``{"h": [B, H], "c": [B, H]}``, zeros at episode start. The cell is an
    ``nn.LSTMCell`` (gate order i, f, g, o) run one timestep at a time in both modes, so the
    episode reset can happen at any step and both modes run the same kernels.
    :class:`~agents.models.numpy_lstm.NumpyLSTMActor` is the fast CPU acting path.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, config: LSTMConfig = LSTMConfig()):
        super().__init__()
        obs_shape, self.num_actions = check_spaces(observation_space, action_space)
        self.config = config
        self.encoder = BeamEncoder(obs_shape, config.encoder_sizes)
        self.cell = nn.LSTMCell(self.encoder.out_features, config.hidden_size)
        with torch.no_grad():
            self.cell.bias_ih[config.hidden_size : 2 * config.hidden_size] += config.forget_bias
        self.policy_head = nn.Linear(config.hidden_size, self.num_actions)
        self.value_head = PopArtValueHead(config.hidden_size)

    def initial_state(self, batch_size: int) -> LSTMState:
        zeros = torch.zeros(batch_size, self.config.hidden_size, device=self.device)
        return {"h": zeros, "c": zeros.clone()}

    def _cell(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, done: Optional[torch.Tensor]):
        if done is not None:
            keep = (~done).unsqueeze(-1).to(h.dtype)
            h, c = h * keep, c * keep
        return self.cell(x, (h, c))

    def _heads(self, h: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.policy_head(h), self.value_head(h)[..., 0]

    @torch.no_grad()
    def step(self, obs: torch.Tensor, state: LSTMState, done: Optional[torch.Tensor] = None):
        if done is not None:
            done = done_mask(done, (obs.shape[0],), self.device)
        h, c = self._cell(self.encoder(obs), state["h"], state["c"], done)
        logits, value = self._heads(h)
        return logits, value, {"h": h, "c": c}

    def forward_sequence(self, obs: torch.Tensor, state: LSTMState, done: Optional[torch.Tensor]):
        T, B = obs.shape[:2]
        done = done_mask(done, (T, B), self.device)
        x = self.encoder(obs)
        h, c = autograd_ready(state["h"]), autograd_ready(state["c"])
        hs = []
        for t in range(T):
            h, c = self._cell(x[t], h, c, done[t])
            hs.append(h)
        logits, values = self._heads(torch.stack(hs))
        return logits, values, {"h": h.detach(), "c": c.detach()}
