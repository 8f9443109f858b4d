"""An SB3 ``VecEnv`` over one Gymnasium ``VectorEnv`` (our batched numpy envs), and env builders.

Stable-Baselines3 only steps its own ``VecEnv`` type. Wrapping N single envs in
``DummyVecEnv`` works but loops over them in Python; :class:`SB3VecEnv` instead forwards
each step to one batched ``gymnasium.vector.VectorEnv`` and translates the result into SB3's
conventions, exactly as ``DummyVecEnv`` would produce them over N ``gymnasium.make`` envs:

- ``dones = terminated | truncated``; rewards as float32;
- one info dict per env; where an episode ended, ``info["terminal_observation"]`` holds its
  last observation and the returned observation is the next episode's first one (so the
  vector env must autoreset in the ``"same_step"`` mode, which puts the last observation in
  ``info["final_obs"]``);
- ``info["TimeLimit.truncated"] = truncated and not terminated`` on every step, which SB3's
  PPO/RecurrentPPO use to bootstrap from the value of ``terminal_observation`` at a time limit
  (and never at a termination).

With ``flatten=True`` observations are flattened and cast to float32 (the beam's 0/1 values
unchanged), for an ``MlpPolicy``. Without it SB3 keeps the 3-D uint8 ``Box(0, 1)``: that is
not an image to SB3 (its bounds are not 0..255, so ``is_image_space`` is False and nothing is
divided by 255) and ``preprocess_obs`` would only cast it to float; flattening here keeps the
rollout buffer and frame stacking simple.

Example:
    >>> venv = make_sb3_vec_env("MemoryEnvs/IMaze-9x9-v0", n_envs=4)
    >>> venv.seed(0)
    [0, 1, 2, 3]
    >>> venv.reset().shape, venv.observation_space.dtype
    ((4, 27), dtype('float32'))
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecFrameStack, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

import memory_envs

gym.register_envs(memory_envs)

VecEnvKind = Literal["batched", "dummy", "subproc"]

# Keys of a same-step VectorEnv's info that describe the finished episode, not a step.
_FINAL_KEYS = frozenset({"final_obs", "_final_obs", "final_info", "_final_info"})


class SB3VecEnv(VecEnv):
    """SB3 ``VecEnv`` view of a Gymnasium ``VectorEnv`` that autoresets in ``"same_step"`` mode.

    ``seed(s)`` then ``reset()`` seeds env ``i`` with ``s + i``, like ``DummyVecEnv``.
    """

    def __init__(self, vector_env: VectorEnv, flatten: bool = True):
        mode = vector_env.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                f"SB3VecEnv needs a VectorEnv with autoreset_mode='same_step' (SB3's convention), "
                f"got {mode!r}; create it with gymnasium.make_vec(..., autoreset_mode='same_step')"
            )
        self.vector_env = vector_env
        self.flatten = flatten
        space = vector_env.single_observation_space
        if flatten:
            space = spaces.Box(space.low.reshape(-1).astype(np.float32),
                               space.high.reshape(-1).astype(np.float32), dtype=np.float32)
        self.actions = np.zeros(vector_env.num_envs, dtype=np.int64)
        super().__init__(vector_env.num_envs, space, vector_env.single_action_space)

    # -- stepping ------------------------------------------------------------------
    def reset(self):
        if any(self._options):
            raise ValueError("SB3VecEnv does not support per-env reset options")
        obs, info = self.vector_env.reset(seed=list(self._seeds))
        self.reset_infos = self._split_infos(info)
        self._reset_seeds()
        self._reset_options()
        return self._convert(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self.actions = np.asarray(actions).reshape(self.num_envs).astype(np.int64, copy=False)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, info = self.vector_env.step(self.actions)
        dones = terminated | truncated
        infos = self._split_infos(info)
        if dones.any():
            final_infos = self._split_infos(info["final_info"])
            for i in np.flatnonzero(dones):
                infos[i] = final_infos[i]
                infos[i]["terminal_observation"] = self._convert(info["final_obs"][i])
        time_limit = truncated & ~terminated
        for i, env_info in enumerate(infos):
            env_info["TimeLimit.truncated"] = bool(time_limit[i])
        return self._convert(obs), rewards.astype(np.float32), dones.astype(bool), infos

    def _convert(self, obs: np.ndarray) -> np.ndarray:
        """Observation(s) as the policy sees them: flat float32, or as the env gives them."""
        if not self.flatten:
            return np.array(obs)
        batch_shape = obs.shape[: obs.ndim - len(self.vector_env.single_observation_space.shape)]
        return obs.reshape(*batch_shape, -1).astype(np.float32)

    def _split_infos(self, info: dict[str, Any]) -> list[dict[str, Any]]:
        """A ``VectorEnv`` info dict (arrays plus ``_key`` masks) as one dict per env."""
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for key, values in info.items():
            if key.startswith("_") or key in _FINAL_KEYS:
                continue
            mask = info.get("_" + key, np.ones(self.num_envs, dtype=bool))
            for i in np.flatnonzero(mask):
                infos[i][key] = values[i]
        return infos

    # -- the rest of SB3's VecEnv interface -------------------------------------------
    def close(self) -> None:
        self.vector_env.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """An attribute of the vector env, once per requested env (they share one object)."""
        value = getattr(self.vector_env, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise NotImplementedError("the envs of a batched VectorEnv have no separate attributes to set")

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        raise NotImplementedError("the envs of a batched VectorEnv are not separate objects")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.vector_env.render()
        return list(frames) if frames is not None else [None] * self.num_envs


def flat_float_env(env_id: str, **env_kwargs) -> gym.Env:
    """``gymnasium.make(env_id)`` with flattened float32 observations (what ``flatten=True`` gives)."""
    env = gym.wrappers.FlattenObservation(gym.make(env_id, **env_kwargs))
    return gym.wrappers.DtypeObservation(env, np.float32)


def make_sb3_vec_env(env_id: str, n_envs: int, kind: VecEnvKind = "batched", frame_stack: int = 1,
                     monitor: bool = False, **env_kwargs) -> VecEnv:
    """The SB3 env the baselines train and evaluate on: flat float32 observations.

    ``kind``: ``"batched"`` (:class:`SB3VecEnv` over ``gymnasium.make_vec``, fastest),
    ``"dummy"`` or ``"subproc"`` (SB3's own, over ``n_envs`` ``gymnasium.make`` envs).
    ``monitor`` adds ``VecMonitor`` (episode return/length/``is_success`` in SB3's logs);
    ``frame_stack`` > 1 stacks that many consecutive observations (``VecFrameStack``).
    """
    if kind == "batched":
        vector_env = gym.make_vec(env_id, num_envs=n_envs, vectorization_mode="vector_entry_point",
                                  autoreset_mode="same_step", **env_kwargs)
        venv: VecEnv = SB3VecEnv(vector_env, flatten=True)
    elif kind in ("dummy", "subproc"):
        env_fns = [functools.partial(flat_float_env, env_id, **env_kwargs) for _ in range(n_envs)]
        venv = DummyVecEnv(env_fns) if kind == "dummy" else SubprocVecEnv(env_fns, start_method="spawn")
    else:
        raise ValueError(f"kind must be 'batched', 'dummy' or 'subproc', got {kind!r}")
    if monitor:
        venv = VecMonitor(venv, info_keywords=("is_success",))
    if frame_stack > 1:
        venv = VecFrameStack(venv, n_stack=frame_stack)
    return venv
