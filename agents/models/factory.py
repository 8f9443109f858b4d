"""Build any model by name: the one entry point shared by the CLI, the runtime and the tests.

Names (paper A.1/A.2 sizes):

==================  ==========================================================
``lstm-<H>``        :class:`LSTMActorCritic` with H units (32 I-Maze, 128 Meta-Fetch)
``gtrxl-<L>``       :class:`GTrXLActorCritic` with L layers (2 I-Maze 9x9, 4 otherwise)
``asymm-<H>-<L>``   :class:`AsymmetricActorCritic`: LSTM-H policy, GTrXL-L value
==================  ==========================================================

Keyword overrides set config fields (:class:`LSTMConfig`, :class:`GTrXLConfig`), e.g.
``build("gtrxl-2", obs_space, act_space, d_model=32, num_heads=2, head_dim=16)``. For
``asymm-*`` each override goes to the config(s) that have the field. The size in a name is
only a default: ``build("lstm-32", ..., hidden_size=16)`` has 16 units.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Dict

import gymnasium as gym

from agents.models.asymmetric import AsymmetricActorCritic
from agents.models.base import RecurrentActorCritic
from agents.models.gtrxl import GTrXLActorCritic, GTrXLConfig
from agents.models.lstm import LSTMActorCritic, LSTMConfig

PATTERNS = ("lstm-<hidden>", "gtrxl-<layers>", "asymm-<hidden>-<layers>")
"""The name patterns :func:`build` accepts."""


def _fields(config_cls) -> set:
    return {f.name for f in dataclasses.fields(config_cls)}


def _config(config_cls, overrides: Dict[str, Any], **from_name):
    return config_cls(**{**from_name, **{k: v for k, v in overrides.items() if k in _fields(config_cls)}})


def _check_overrides(name: str, overrides: Dict[str, Any], *config_classes) -> None:
    known = set().union(*(_fields(c) for c in config_classes))
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown override(s) {unknown} for model {name!r}; valid: {sorted(known)}")


def build(name: str, observation_space: gym.Space, action_space: gym.Space, **overrides: Any) -> RecurrentActorCritic:
    """The model called ``name`` for these spaces. ValueError for unknown names or overrides."""
    if m := re.fullmatch(r"lstm-(\d+)", name):
        _check_overrides(name, overrides, LSTMConfig)
        return LSTMActorCritic(observation_space, action_space, _config(LSTMConfig, overrides, hidden_size=int(m[1])))
    if m := re.fullmatch(r"gtrxl-(\d+)", name):
        _check_overrides(name, overrides, GTrXLConfig)
        return GTrXLActorCritic(observation_space, action_space, _config(GTrXLConfig, overrides, num_layers=int(m[1])))
    if m := re.fullmatch(r"asymm-(\d+)-(\d+)", name):
        _check_overrides(name, overrides, LSTMConfig, GTrXLConfig)
        return AsymmetricActorCritic(
            observation_space,
            action_space,
            _config(LSTMConfig, overrides, hidden_size=int(m[1])),
            _config(GTrXLConfig, overrides, num_layers=int(m[2])),
        )
    raise ValueError(
        f"unknown model name {name!r}; valid patterns: {', '.join(PATTERNS)} (e.g. lstm-32, gtrxl-2, asymm-32-2)"
    )
