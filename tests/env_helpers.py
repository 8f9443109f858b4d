"""Small helpers shared by the env tests."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import memory_envs

REGISTERED_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("MemoryEnvs/"))
assert set(memory_envs.ENV_IDS) <= set(REGISTERED_IDS)


def rollout(env, seed: int, actions: list[int]):
    """Every (obs, reward, terminated, truncated, info) of a run, resetting when an episode ends."""
    obs, info = env.reset(seed=seed)
    records = [(obs.copy(), 0.0, False, False, dict(info))]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        records.append((obs.copy(), reward, terminated, truncated, dict(info)))
        if terminated or truncated:
            obs, info = env.reset()
            records.append((obs.copy(), 0.0, False, False, dict(info)))
    return records


def assert_same_records(a, b):
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        np.testing.assert_array_equal(ra[0], rb[0])
        assert ra[1:] == rb[1:]
