"""The run topology: every difference between the agents, derived from the run config in one place.

Which roles exist, which model the actors run, who publishes the actors' parameters, whether a
learner runner carries learner-side memory, which return estimator and extra losses the learner
uses: the drivers and roles read all of it from :class:`Topology`, so no agent-kind switch exists
outside this module and the model factory. The table is in ``docs/architecture.md``
("Topology per agent").
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Mapping

import gymnasium as gym
import torch

import memory_envs  # noqa: F401  (registers the ids)
from agents.models import LSTMConfig, build

@dataclass(frozen=True)
class Topology:
    """What a run of one agent is made of (see the module docstring)."""

    agent: str
    learner_model: str
    """Name of the learner's model for :func:`agents.models.build`."""
    learner_overrides: Mapping[str, Any]
    actor_model: str
    """Name of the model the actors run."""
    actor_overrides: Mapping[str, Any]
    actor_part: str | None
    """Attribute path of the learner model whose parameters the actors run (``""``: the whole
    model), published by the learner; ``None``: the actor is a separate model that the distill
    processes train and publish (ALD)."""
    runner_part: str | None
    """Attribute path of the learner model that the learner runner runs to carry each stream's
    learner-side memory (``""``: the whole model); ``None``: no runner."""
    learner_state_from: str | Mapping[str, str]
    """Where the learner's state at a segment start comes from: ``"actor"`` (the state the actor
    acted from), ``"runner"`` (the runner's memory), or a dict of state keys to either."""
    returns: str
    """``"vtrace"`` (off-policy correction, behaviour = the actor) or ``"nstep"``."""
    learner_kl_to_actor: bool
    """Whether the learner is regularised toward the actor (the bidirectional part of ALD)."""

    @property
    def actor_publisher(self) -> str:
        """``"learner"`` or ``"distill"``: the role that writes the actors' parameters."""
        return "distill" if self.actor_part is None else "learner"

    @property
    def has_runner(self) -> bool:
        return self.runner_part is not None

    @property
    def runner_gives_targets(self) -> bool:
        """Whether the runner's outputs are the learner policy's (pi_old and the distill targets):
        only when it runs the whole learner model."""
        return self.runner_part == ""

    @property
    def distills(self) -> bool:
        """Replay and distill processes exist (the actor is trained by distillation)."""
        return self.actor_part is None

    def roles(self, num_actors: int, num_distill: int) -> list[str]:
        """The process graph's roles, one name each (the parallel driver's process names)."""
        names = ["learner"] + (["runner"] if self.has_runner else [])
        if self.distills:
            names += ["replay"] + [f"distill-{j}" for j in range(num_distill)]
        return names + [f"actor-{i}" for i in range(num_actors)]

    def actor_module(self, learner_model: torch.nn.Module) -> torch.nn.Module:
        """The part of the learner model whose parameters the actors run (learner publisher)."""
        if self.actor_part is None:
            raise ValueError(f"{self.agent}: the actor is not part of the learner model")
        return _part(learner_model, self.actor_part)

    def runner_module(self, learner_model: torch.nn.Module) -> torch.nn.Module:
        if self.runner_part is None:
            raise ValueError(f"{self.agent} has no learner runner")
        return _part(learner_model, self.runner_part)

    def learner_state(self, actor_state: Any, runner_state: Any) -> Any:
        """The learner's state before a segment, assembled from its sources."""
        sources = {"actor": actor_state, "runner": runner_state}
        if isinstance(self.learner_state_from, str):
            return sources[self.learner_state_from]
        return {key: sources[source] for key, source in self.learner_state_from.items()}


def _part(module: torch.nn.Module, path: str) -> torch.nn.Module:
    return module.get_submodule(path) if path else module


def topology_of(config) -> Topology:
    """The topology of ``config.agent`` with the models named by the config (defaults by env)."""
    imaze = "IMaze" in config.env_id
    lstm = config.actor_model or ("lstm-32" if imaze else "lstm-128")
    gtrxl = config.learner_model or ("gtrxl-2" if "IMaze-9x9" in config.env_id else "gtrxl-4")
    actor = json.loads(config.actor_overrides) if config.actor_overrides else {}
    learner = json.loads(config.learner_overrides) if config.learner_overrides else {}
    common = dict(agent=config.agent, learner_kl_to_actor=False, returns="nstep")
    if config.agent == "ald":
        return Topology(learner_model=gtrxl, learner_overrides=learner, actor_model=lstm, actor_overrides=actor,
                        actor_part=None, runner_part="", learner_state_from="runner",
                        **{**common, "returns": "vtrace", "learner_kl_to_actor": True})
    if config.agent == "lstm":
        return Topology(learner_model=lstm, learner_overrides=actor, actor_model=lstm, actor_overrides=actor,
                        actor_part="", runner_part=None, learner_state_from="actor", **common)
    if config.agent == "gtrxl":
        return Topology(learner_model=gtrxl, learner_overrides=learner, actor_model=gtrxl, actor_overrides=learner,
                        actor_part="", runner_part=None, learner_state_from="actor", **common)
    if config.agent == "asymm_ac":
        hidden, layers = lstm.split("-")[-1], gtrxl.split("-")[-1]
        merged = {**actor, **learner}  # the factory routes each field to the net(s) that have it
        lstm_fields = {f.name for f in dataclasses.fields(LSTMConfig)}
        return Topology(learner_model=f"asymm-{hidden}-{layers}", learner_overrides=merged,
                        actor_model=f"lstm-{hidden}",
                        actor_overrides={k: v for k, v in merged.items() if k in lstm_fields},
                        actor_part="policy", runner_part="value_net",
                        learner_state_from={"policy": "actor", "value": "runner"}, **common)
    raise ValueError(f"unknown agent {config.agent!r}")


def env_spaces(config) -> tuple[gym.Space, gym.Space]:
    env = gym.make(config.env_id, **config.env_overrides())
    return env.observation_space, env.action_space


def build_learner_model(config) -> torch.nn.Module:
    """The learner's model, initialised from ``config.seed``."""
    topology = topology_of(config)
    torch.manual_seed(config.seed)
    return build(topology.learner_model, *env_spaces(config), **topology.learner_overrides)


def build_actor_model(config) -> torch.nn.Module:
    """A model of the kind the actors run (its parameters come from the actor parameter store)."""
    topology = topology_of(config)
    return build(topology.actor_model, *env_spaces(config), **topology.actor_overrides)


def initial_actor_module(config, learner_model: torch.nn.Module) -> torch.nn.Module:
    """The module holding the actors' initial parameters: the learner model's actor part, or for
    a distilled actor a new model initialised right after the learner (same seed stream)."""
    topology = topology_of(config)
    if topology.actor_part is not None:
        return topology.actor_module(learner_model)
    return build_actor_model(config)
