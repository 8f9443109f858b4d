"""Building the parts of a run from its config (shared by the serial and parallel runners)."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import torch

import memory_envs  # noqa: F401
from agents.models import LSTMConfig, build


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def env_spaces(config) -> tuple[gym.Space, gym.Space]:
    env = gym.make(config.env_id, **config.env_overrides())
    return env.observation_space, env.action_space


def build_models(config, seed_offset: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """``(actor model, learner model)``; the same module for the LSTM and GTrXL baselines.

    For Asymm. AC the actor model is the learner's LSTM policy network.
    """
    torch.manual_seed(config.seed + seed_offset)
    obs_space, act_space = env_spaces(config)
    actor_name, learner_name = config.model_names()
    actor_overrides, learner_overrides = config.model_overrides()
    learner = build(learner_name, obs_space, act_space, **learner_overrides)
    if config.agent == "ald":
        actor = build(actor_name, obs_space, act_space, **actor_overrides)
    elif config.agent == "asymm_ac":
        actor = learner.policy
    else:
        actor = learner
    return actor, learner


def build_learner_model(config) -> torch.nn.Module:
    """Only the learner model, initialised exactly as :func:`build_models` initialises it."""
    torch.manual_seed(config.seed)
    obs_space, act_space = env_spaces(config)
    return build(config.model_names()[1], obs_space, act_space, **config.model_overrides()[1])


def build_actor_model(config) -> torch.nn.Module:
    """Only the model an actor runs (no transformer for ALD or Asymm. AC actors)."""
    obs_space, act_space = env_spaces(config)
    actor_name, learner_name = config.model_names()
    actor_overrides, learner_overrides = config.model_overrides()
    if config.agent == "gtrxl":
        return build(learner_name, obs_space, act_space, **learner_overrides)
    if config.agent == "asymm_ac":
        # the learner's policy network: the LSTM fields of the (merged) overrides, as the factory routes them
        actor_name = "lstm-" + actor_name.split("-")[1]
        lstm_fields = {f.name for f in dataclasses.fields(LSTMConfig)}
        actor_overrides = {k: v for k, v in actor_overrides.items() if k in lstm_fields}
    return build(actor_name, obs_space, act_space, **actor_overrides)


def actor_seed(config, actor_id: int, restarts: int) -> int:
    """A distinct, reproducible env/sampling seed per actor incarnation."""
    return int(np.random.SeedSequence([config.seed, actor_id, restarts]).generate_state(1)[0])
