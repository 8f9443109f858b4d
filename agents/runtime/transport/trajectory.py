"""The one trajectory schema of the runtime, from actor to learner, replay and distill.

Time-major ``[T, B]`` numpy arrays (``T`` = unroll length T_U, ``B`` = streams). Actors step
their envs with Gymnasium's ``next_step`` autoreset, so the observation after the last step
of an episode is part of the stream (the learner bootstraps a truncated episode from its
value, exactly), and the step after it, whose action the env ignores while resetting, is
marked ``valid = False`` and left out of every loss.

A :class:`Batch` is several trajectories side by side (streams concatenated). Batches are staged,
never mutated: the learner's input stage turns a batch into a :class:`LearnerBatch` (the batch,
plus the learner's state at ``obs[0]`` and, where the runner runs the learner's policy, its
target-network outputs), and replay keeps a :class:`DistillBatch` (the batch and those outputs).
See ``docs/architecture.md`` ("What each arrow carries").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Episode:
    """A finished episode, reported by the actor that ran it."""

    ret: float
    length: int
    success: bool


@dataclass
class Trajectory:
    """One actor's T steps of its E streams."""

    actor_id: int
    streams: np.ndarray  # int64 [E]: global stream ids
    obs: np.ndarray  # uint8 [T+1, E, *obs_shape]; obs[T] starts the next trajectory
    first: np.ndarray  # bool [T+1, E]: obs[t] is the first observation of an episode
    action: np.ndarray  # int64 [T, E]
    reward: np.ndarray  # float32 [T, E]
    terminated: np.ndarray  # bool [T, E]: step t ended its episode in a terminal state
    truncated: np.ndarray  # bool [T, E]: step t ended its episode by the time limit
    valid: np.ndarray  # bool [T, E]: step t was a real env step (not the autoreset step)
    behaviour_logits: np.ndarray  # float32 [T, E, A]: the actor policy's logits at obs[t]
    actor_state: dict[str, np.ndarray]  # actor model state before obs[0], leaves [E, ...]
    param_version: int  # actor parameter version that produced it
    param_digest: str  # digest of those parameters (see agents.runtime.transport.param_store)
    episodes: list[Episode] = field(default_factory=list)

    @property
    def env_steps(self) -> int:
        return int(self.action.size)


STREAM_AXIS_1 = ("obs", "first", "action", "reward", "terminated", "truncated", "valid", "behaviour_logits")


@dataclass(frozen=True)
class Batch:
    """Trajectories concatenated along the stream axis."""

    streams: np.ndarray
    obs: np.ndarray
    first: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    valid: np.ndarray
    behaviour_logits: np.ndarray
    actor_state: Any  # nest of [B, ...] arrays
    episodes: list[Episode]
    env_steps: int
    wave: np.ndarray  # int64 [B]: 0 for a stream's first segment in this batch, 1 for its next, ...

    @classmethod
    def from_trajectories(cls, trajectories: list[Trajectory]) -> "Batch":
        arrays = {name: np.concatenate([getattr(t, name) for t in trajectories], axis=1) for name in STREAM_AXIS_1}
        state = _concat_nests([t.actor_state for t in trajectories])
        seen: dict[int, int] = {}
        waves = []
        for t in trajectories:
            waves.append(np.full(len(t.streams), seen.get(t.actor_id, 0), dtype=np.int64))
            seen[t.actor_id] = seen.get(t.actor_id, 0) + 1
        return cls(streams=np.concatenate([t.streams for t in trajectories]), actor_state=state,
                   episodes=[e for t in trajectories for e in t.episodes],
                   env_steps=sum(t.env_steps for t in trajectories), wave=np.concatenate(waves), **arrays)


@dataclass(frozen=True)
class TargetOutputs:
    """The learner runner's target-network outputs on a batch (ALD)."""

    logits: np.ndarray  # float32 [T, B, A]: pi_old for V-MPO, the distillation target
    values: np.ndarray  # float32 [T, B]: values in reward units (the value distillation target)
    version: int  # learner step of the target parameters that produced them


@dataclass(frozen=True)
class LearnerBatch:
    """What the learner trains on: a batch and the learner's state before ``obs[0]``."""

    data: Batch
    learner_state: Any  # nest of [B, ...] arrays, assembled as the topology says
    target: TargetOutputs | None  # None: the learner computes pi_old with its own target network

    def for_distill(self) -> "DistillBatch":
        if self.target is None:
            raise ValueError("distillation needs the runner's target outputs")
        return DistillBatch(self.data, self.target)


@dataclass(frozen=True)
class DistillBatch:
    """What replay keeps and the distill processes train the actor on."""

    data: Batch
    target: TargetOutputs


def _concat_nests(nests: list[Any]) -> Any:
    first = nests[0]
    if isinstance(first, dict):
        return {key: _concat_nests([n[key] for n in nests]) for key in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_concat_nests(list(items)) for items in zip(*nests))
    return np.concatenate(nests, axis=0)
