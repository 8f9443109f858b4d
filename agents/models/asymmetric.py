"""Asymmetric actor-critic: an LSTM policy network and a GTrXL value network in one module.

The paper's "Asymm. AC" baseline (Pinto et al. 2017 with privileged *compute*): actors need
only the policy, so they run ``model.policy`` (an :class:`LSTMActorCritic`, whose own value head
is unused) and never pay for transformer inference; the learner trains both networks.
"""

from __future__ import annotations

from typing import Dict, Optional

import gymnasium as gym
import torch

from agents.models.base import RecurrentActorCritic
from agents.models.gtrxl import GTrXLActorCritic, GTrXLConfig
from agents.models.lstm import LSTMActorCritic, LSTMConfig
from agents.models.nest import Nest


class AsymmetricActorCritic(RecurrentActorCritic):
    """Logits from ``policy`` (LSTM), value from ``value_net`` (GTrXL, its policy head unused).

    State: ``{"policy": LSTM state, "value": GTrXL state}``. ``value_head`` is the GTrXL's
    PopArt head.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        policy_config: LSTMConfig = LSTMConfig(),
        value_config: GTrXLConfig = GTrXLConfig(),
    ):
        super().__init__()
        self.policy = LSTMActorCritic(observation_space, action_space, policy_config)
        self.value_net = GTrXLActorCritic(observation_space, action_space, value_config)
        self.num_actions = self.policy.num_actions

    @property
    def value_head(self):
        return self.value_net.value_head

    def invalidate_cache(self) -> None:
        self.value_net.invalidate_cache()

    def compact_state(self, state: Dict[str, Nest]) -> Dict[str, Nest]:
        return {
            "policy": self.policy.compact_state(state["policy"]),
            "value": self.value_net.compact_state(state["value"]),
        }

    def initial_state(self, batch_size: int) -> Dict[str, Nest]:
        return {"policy": self.policy.initial_state(batch_size), "value": self.value_net.initial_state(batch_size)}

    @torch.no_grad()
    def step(self, obs: torch.Tensor, state: Dict[str, Nest], done: Optional[torch.Tensor] = None):
        logits, _, policy_state = self.policy.step(obs, state["policy"], done)
        _, value, value_state = self.value_net.step(obs, state["value"], done)
        return logits, value, {"policy": policy_state, "value": value_state}

    def forward_sequence(self, obs: torch.Tensor, state: Dict[str, Nest], done: Optional[torch.Tensor]):
        logits, _, policy_state = self.policy.forward_sequence(obs, state["policy"], done)
        _, values, value_state = self.value_net.forward_sequence(obs, state["value"], done)
        return logits, values, {"policy": policy_state, "value": value_state}

    def policy_sequence(self, obs: torch.Tensor, state: Dict[str, Nest], done: Optional[torch.Tensor]) -> torch.Tensor:
        return self.policy.forward_sequence(obs, state["policy"], done)[0]
