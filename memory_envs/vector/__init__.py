"""Batched numpy vector envs, reached through ``gymnasium.make_vec(id, num_envs=N)``."""

from memory_envs.vector.base import BatchedVectorEnv
from memory_envs.vector.imaze import IMazeVectorEnv
from memory_envs.vector.metafetch import MetaFetchVectorEnv

__all__ = ["BatchedVectorEnv", "IMazeVectorEnv", "MetaFetchVectorEnv"]
