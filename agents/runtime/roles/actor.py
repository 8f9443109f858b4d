"""Actor: steps its envs with a local copy of the actor policy and emits trajectories of T_U steps.

One actor steps ``envs_per_actor`` envs with batched inference (the batched numpy vector env
and one policy call per step for all of them); with one env it is the paper's single-env
actor. It refreshes its parameters from the :class:`ParameterStore` once the store's version
is ``actor_refresh`` ahead of its own (K_A), and stamps each trajectory with the version and
digest of the parameters it acted with.
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

import memory_envs  # noqa: F401  (registers the ids)
from agents.runtime.roles.policies import make_policy, sample_actions
from agents.runtime.transport.param_store import ParameterStore, param_digest
from agents.runtime.transport.trajectory import Episode, Trajectory


def make_envs(config, num_envs: int) -> gym.vector.VectorEnv:
    """The batched env of ``config.env_id`` in ``next_step`` autoreset mode (see trajectory.py)."""
    kwargs = config.env_overrides()
    if config.max_episode_steps:
        kwargs["max_episode_steps"] = config.max_episode_steps
    return gym.make_vec(config.env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                        autoreset_mode="next_step", **kwargs)


class EpisodeTracker:
    """Per-env episode bookkeeping under ``next_step`` autoreset (see :mod:`agents.runtime.transport.trajectory`).

    ``first`` marks observations that start an episode, ``valid`` the steps that were real env
    steps (not the autoreset step after an episode ended, whose action the env ignores), and each
    finished episode's return, length and success are reported once.
    """

    def __init__(self, num_envs: int):
        self.first = np.ones(num_envs, dtype=bool)
        self.needs_reset = np.zeros(num_envs, dtype=bool)
        self.ret = np.zeros(num_envs)
        self.length = np.zeros(num_envs, dtype=np.int64)

    def step(self, reward, terminated, truncated, info) -> tuple[np.ndarray, list[tuple[int, Episode]]]:
        """Account for one env step; returns ``(valid [E], [(env index, finished episode), ...])``."""
        valid = ~self.needs_reset
        ended = terminated | truncated
        self.ret += reward
        self.length += valid
        finished = []
        for i in np.flatnonzero(ended):
            finished.append((int(i), Episode(float(self.ret[i]), int(self.length[i]), bool(info["is_success"][i]))))
            self.ret[i], self.length[i] = 0.0, 0
        self.first, self.needs_reset = self.needs_reset, ended
        return valid, finished


class Actor:
    """Produces :class:`Trajectory` objects; :meth:`rollout` is one trajectory."""

    def __init__(self, config, actor_id: int, model, store: ParameterStore, seed: int):
        self.config = config
        self.actor_id = actor_id
        self.store = store
        self.envs = make_envs(config, config.envs_per_actor)
        self.num_envs = config.envs_per_actor
        self.streams = actor_id * self.num_envs + np.arange(self.num_envs)
        self.rng = np.random.default_rng(seed)
        self.policy = make_policy(model)
        self.version = -config.actor_refresh  # forces a load on the first rollout
        self._refresh()
        self.obs, _ = self.envs.reset(seed=seed)
        self.episodes = EpisodeTracker(self.num_envs)
        self.state = self.policy.initial_state(self.num_envs)
        self.steps_per_s = 0.0

    def _refresh(self) -> None:
        if self.store.version - self.version >= self.config.actor_refresh:
            self.version, tensors = self.store.read()
            self.policy.load(tensors)
            self.digest = param_digest(tensors)

    def rollout(self) -> Trajectory:
        """Step every env T_U times and return the trajectory."""
        self._refresh()
        start = time.perf_counter()
        T, E = self.config.unroll_length, self.num_envs
        obs = np.empty((T + 1, *self.obs.shape), dtype=self.obs.dtype)
        first = np.empty((T + 1, E), dtype=bool)
        action = np.empty((T, E), dtype=np.int64)
        reward = np.empty((T, E), dtype=np.float32)
        terminated = np.empty((T, E), dtype=bool)
        truncated = np.empty((T, E), dtype=bool)
        valid = np.empty((T, E), dtype=bool)
        logits_out = np.empty((T, E, self.envs.single_action_space.n), dtype=np.float32)
        initial_state = self.state
        tracker = self.episodes
        episodes = []
        for t in range(T):
            obs[t], first[t] = self.obs, tracker.first
            logits, self.state = self.policy.step(self.obs, self.state, tracker.first)
            logits_out[t] = logits
            action[t] = sample_actions(logits, self.rng)
            self.obs, reward[t], terminated[t], truncated[t], info = self.envs.step(action[t])
            valid[t], finished = tracker.step(reward[t], terminated[t], truncated[t], info)
            episodes.extend(episode for _, episode in finished)
        obs[T], first[T] = self.obs, tracker.first
        elapsed = time.perf_counter() - start
        self.steps_per_s = T * E / elapsed if elapsed > 0 else 0.0
        return Trajectory(self.actor_id, self.streams.copy(), obs, first, action, reward, terminated, truncated,
                          valid, logits_out, self.policy.compact(initial_state), self.version, self.digest,
                          episodes)

    def close(self) -> None:
        self.envs.close()
