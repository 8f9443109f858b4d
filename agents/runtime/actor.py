"""Actor: steps its envs with a local copy of the actor policy and emits trajectories of T_U steps.

One actor steps ``envs_per_actor`` envs with batched inference (the batched numpy vector env
and one policy call per step for all of them); with one env it is the paper's single-env
actor. It refreshes its parameters from the :class:`ParameterStore` once the store's version
is ``actor_refresh`` ahead of its own (K_A).
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

import memory_envs  # noqa: F401  (registers the ids)
from agents.runtime.param_store import ParameterStore
from agents.runtime.policies import make_policy, sample_actions
from agents.runtime.trajectory import Episode, Trajectory


def make_envs(config, num_envs: int) -> gym.vector.VectorEnv:
    """The batched env of ``config.env_id`` in ``next_step`` autoreset mode (see trajectory.py)."""
    kwargs = config.env_overrides()
    if config.max_episode_steps:
        kwargs["max_episode_steps"] = config.max_episode_steps
    return gym.make_vec(config.env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                        autoreset_mode="next_step", **kwargs)


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
        obs, _ = self.envs.reset(seed=seed)
        self.obs = obs
        self.first = np.ones(self.num_envs, dtype=bool)
        self.needs_reset = np.zeros(self.num_envs, dtype=bool)
        self.state = self.policy.initial_state(self.num_envs)
        self.episode_return = np.zeros(self.num_envs)
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)
        self.steps_per_s = 0.0

    def _refresh(self) -> None:
        version = self.store.version
        if version - self.version >= self.config.actor_refresh:
            self.policy.load(self.store.snapshot())
            self.version = version

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
        logits_out = None
        initial_state = self.state
        episodes = []
        for t in range(T):
            obs[t], first[t] = self.obs, self.first
            logits, self.state = self.policy.step(self.obs, self.state, self.first)
            if logits_out is None:
                logits_out = np.empty((T, E, logits.shape[1]), dtype=np.float32)
            logits_out[t] = logits
            action[t] = sample_actions(logits, self.rng)
            valid[t] = ~self.needs_reset
            self.obs, reward[t], terminated[t], truncated[t], info = self.envs.step(action[t])
            ended = terminated[t] | truncated[t]
            self.episode_return += reward[t]
            self.episode_length += valid[t]
            for i in np.flatnonzero(ended):
                episodes.append(Episode(float(self.episode_return[i]), int(self.episode_length[i]),
                                        bool(info["is_success"][i])))
                self.episode_return[i], self.episode_length[i] = 0.0, 0
            self.first = self.needs_reset  # the step after an ended one was the reset
            self.needs_reset = ended
        obs[T], first[T] = self.obs, self.first
        elapsed = time.perf_counter() - start
        self.steps_per_s = T * E / elapsed if elapsed > 0 else 0.0
        return Trajectory(self.actor_id, self.streams.copy(), obs, first, action, reward, terminated, truncated,
                          valid, logits_out, self.policy.compact(initial_state), self.version, episodes)

    def close(self) -> None:
        self.envs.close()


def actor_process(shared, actor_id: int, restarts: int) -> None:
    """Process entry: produce trajectories until the run stops."""
    from agents.runtime.channels import Counters, run_role
    from agents.runtime.system import actor_seed, build_actor_model

    def body():
        config = shared.config
        actor = Actor(config, actor_id, build_actor_model(config), shared.actor_store,
                      actor_seed(config, actor_id, restarts))
        while not shared.stop.is_set():
            trajectory = actor.rollout()
            if not shared.transport.put(trajectory, shared.stop):
                break
            Counters.add(shared.counters.env_steps, trajectory.env_steps)
            Counters.add(shared.counters.episodes, len(trajectory.episodes))
            shared.emit("actor", actor_id, trajectory.episodes, actor.steps_per_s)
        actor.close()

    run_role(shared, f"actor {actor_id}", 1, body)
