"""The registered ids, as one table registered in a loop."""

from __future__ import annotations

from typing import NamedTuple

import gymnasium as gym


class EnvEntry(NamedTuple):
    id: str
    entry_point: str
    vector_entry_point: str
    kwargs: dict
    max_episode_steps: int


ENV_TABLE: tuple[EnvEntry, ...] = (
    EnvEntry("MemoryEnvs/IMaze-9x9-v0", "memory_envs.imaze:IMazeEnv",
             "memory_envs.vector.imaze:IMazeVectorEnv", {"size": 9}, 150),
    EnvEntry("MemoryEnvs/IMaze-15x15-v0", "memory_envs.imaze:IMazeEnv",
             "memory_envs.vector.imaze:IMazeVectorEnv", {"size": 15, "shaping_reward": 0.01}, 350),
    EnvEntry("MemoryEnvs/MetaFetch-v0", "memory_envs.metafetch:MetaFetchEnv",
             "memory_envs.vector.metafetch:MetaFetchVectorEnv", {"size": 7, "num_objects": 4}, 300),
    EnvEntry("MemoryEnvs/MetaFetch-3obj-v0", "memory_envs.metafetch:MetaFetchEnv",
             "memory_envs.vector.metafetch:MetaFetchVectorEnv", {"size": 7, "num_objects": 3}, 300),
)

ENV_IDS: tuple[str, ...] = tuple(entry.id for entry in ENV_TABLE)


def register_envs() -> None:
    """Register every id of :data:`ENV_TABLE` with Gymnasium (idempotent)."""
    for entry in ENV_TABLE:
        if entry.id in gym.registry:
            continue
        gym.register(
            id=entry.id,
            entry_point=entry.entry_point,
            vector_entry_point=entry.vector_entry_point,
            kwargs=dict(entry.kwargs),
            max_episode_steps=entry.max_episode_steps,
        )
