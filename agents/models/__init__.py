"""Models: the LSTM actor, the GTrXL learner and the asymmetric pair, built by name.

>>> import gymnasium as gym, numpy as np, torch
>>> from agents.models import build
>>> obs_space = gym.spaces.Box(0, 1, (9, 1, 3), np.uint8)
>>> model = build("lstm-32", obs_space, gym.spaces.Discrete(4))
>>> logits, value, state = model.step(torch.zeros(1, 9, 1, 3, dtype=torch.uint8), model.initial_state(1))
>>> tuple(logits.shape), tuple(value.shape)
((1, 4), (1,))

Conventions (shapes, ``done``, normalised values) are in :mod:`agents.models.base`.
"""

from agents.models.asymmetric import AsymmetricActorCritic
from agents.models.base import RecurrentActorCritic
from agents.models.factory import PATTERNS, build
from agents.models.gtrxl import GTrXL, GTrXLActorCritic, GTrXLConfig
from agents.models.lstm import LSTMActorCritic, LSTMConfig
from agents.models.nest import cat_streams, map_nest, select_streams
from agents.models.numpy_lstm import NumpyLSTMActor
from agents.models.popart_head import PopArtValueHead

__all__ = [
    "PATTERNS",
    "AsymmetricActorCritic",
    "GTrXL",
    "GTrXLActorCritic",
    "GTrXLConfig",
    "LSTMActorCritic",
    "LSTMConfig",
    "NumpyLSTMActor",
    "PopArtValueHead",
    "RecurrentActorCritic",
    "build",
    "cat_streams",
    "map_nest",
    "select_streams",
]
