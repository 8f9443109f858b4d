"""Shared machinery of the batched (numpy) vector envs: seeding, autoreset, time limit, infos.

Subclasses hold every env's state in arrays and implement three array-level hooks:
``_reset_envs(indices)`` (draws each env's new episode from that env's own generator),
``_advance(actions) -> (rewards, terminated, infos)`` (one step of every env, no Python loop
over envs) and ``_observe() -> obs[N, ...]``. Each env ``i`` has its own ``np.random.Generator``
seeded like a single env (``seed + i`` for an int seed, as ``SyncVectorEnv`` does), so a batched
env matches N single envs observation for observation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from memory_envs import rendering
from memory_envs.validation import check_int, check_render_mode


def parse_autoreset_mode(mode) -> AutoresetMode:
    """An ``AutoresetMode`` from itself, its value (``"NextStep"``) or its name (``"next_step"``)."""
    if isinstance(mode, AutoresetMode):
        return mode
    for member in AutoresetMode:
        if mode in (member.value, member.name, member.name.lower()):
            return member
    raise ValueError(
        f"autoreset_mode must be one of {[m.name.lower() for m in AutoresetMode]} "
        f"(or a gymnasium.vector.AutoresetMode), got {mode!r}"
    )


class BatchedVectorEnv(VectorEnv):
    """A Gymnasium ``VectorEnv`` stepping all its envs with numpy array operations.

    Autoreset: ``next_step`` by default (Gymnasium's default, so this is a drop-in for
    ``SyncVectorEnv``: the step after an episode ends resets that env, ignoring its action,
    and returns reward 0). ``autoreset_mode="same_step"`` resets in the step that ends the
    episode, returning the new episode's first observation and the last one in
    ``info["final_obs"]`` (with ``info["final_info"]``); the ALD actors use it.
    ``"disabled"`` leaves resets to the caller (``reset(options={"reset_mask": mask})``).
    Truncation at ``max_episode_steps`` counts steps per env like ``TimeLimit``
    (``None``: never truncate).
    """

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 8}
    single_env_class: type  # the single env, for its colours

    def __init__(self, num_envs: int, single_observation_space, single_action_space,
                 max_episode_steps: int | None, autoreset_mode, render_mode: str | None):
        self.num_envs = check_int("num_envs", num_envs, minimum=1)
        if max_episode_steps is not None:
            max_episode_steps = check_int("max_episode_steps", max_episode_steps, minimum=1)
        self.max_episode_steps = max_episode_steps
        self.autoreset_mode = parse_autoreset_mode(autoreset_mode)
        self.render_mode = check_render_mode(render_mode)
        if self.render_mode == "human":
            raise ValueError("render_mode='human' is not supported by the batched env; use 'rgb_array'")
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.single_observation_space = single_observation_space
        self.single_action_space = single_action_space
        self.observation_space = batch_space(single_observation_space, self.num_envs)
        self.action_space = batch_space(single_action_space, self.num_envs)
        self._num_actions = int(single_action_space.n)
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._elapsed = np.zeros(self.num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)
        self._arange = np.arange(self.num_envs)

    # -- hooks ---------------------------------------------------------------------
    def _reset_envs(self, indices: np.ndarray) -> None:
        raise NotImplementedError

    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        raise NotImplementedError

    def _observe(self) -> np.ndarray:
        raise NotImplementedError

    def _render_parts(self, index: int):
        """``(grid, agent_pos, agent_dir, beam_cells, obs)`` of env ``index``."""
        raise NotImplementedError

    # -- Gymnasium API -------------------------------------------------------------
    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        """Reset all envs, or those in ``options["reset_mask"]``.

        ``seed``: an int (env i gets ``seed + i``), a list of per-env seeds, or None.
        """
        mask = np.ones(self.num_envs, dtype=bool)
        if options is not None and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},)")
        if seed is None:
            seeds = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed must be an int or a list of {self.num_envs} seeds, got {len(seeds)}")
        indices = np.flatnonzero(mask)
        for i in indices:
            if seeds[i] is not None or self._rngs[i] is None:
                self._rngs[i], _ = seeding.np_random(seeds[i])
        self._reset_envs(indices)
        self._elapsed[indices] = 0
        self._needs_reset[indices] = False
        return self._observe(), {}

    def step(self, actions):
        actions = self._check_actions(actions)
        if self._rngs[0] is None:
            raise RuntimeError("call reset() before step()")
        if self.autoreset_mode == AutoresetMode.DISABLED and self._needs_reset.any():
            raise ValueError(
                f"envs {np.flatnonzero(self._needs_reset).tolist()} ended their episode; with "
                "autoreset_mode='disabled' reset them with reset(options={'reset_mask': ...}) first"
            )
        rewards, terminated, infos = self._advance(actions)
        self._elapsed += 1
        truncated = (self._elapsed >= self.max_episode_steps) if self.max_episode_steps else np.zeros_like(terminated)
        done = terminated | truncated

        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            resetting = self._needs_reset
            if resetting.any():
                indices = np.flatnonzero(resetting)
                self._reset_envs(indices)
                self._elapsed[indices] = 0
                rewards[indices] = 0.0
                terminated[indices] = truncated[indices] = done[indices] = False
                infos = self._mask_infos(infos, ~resetting)
            self._needs_reset = done
            return self._observe(), rewards, terminated, truncated, infos

        if self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            indices = np.flatnonzero(done)
            final_obs = np.full(self.num_envs, None, dtype=object)
            last = self._observe()
            for i in indices:
                final_obs[i] = last[i]
            final_info = self._mask_infos(infos, done)
            infos = self._mask_infos(infos, ~done)
            infos.update(final_obs=final_obs, _final_obs=done.copy(),
                         final_info=final_info, _final_info=done.copy())
            self._reset_envs(indices)
            self._elapsed[indices] = 0
        else:
            self._needs_reset = done
        return self._observe(), rewards, terminated, truncated, infos

    def render(self):
        """A tuple with every env's frame (``rgb_array``) or text (``ansi``), like ``SyncVectorEnv``."""
        if self.render_mode is None:
            return None
        cls = self.single_env_class
        frames = []
        for i in range(self.num_envs):
            grid, pos, direction, beam_cells, obs = self._render_parts(i)
            if self.render_mode == "ansi":
                frames.append(rendering.ansi_frame(grid, pos, direction))
            else:
                frames.append(rendering.draw_frame(
                    grid, pos, direction, beam_cells, obs, cls.channel_colors, cls.empty_color,
                    tile=cls.tile_size))
        return tuple(frames)

    # -- helpers -------------------------------------------------------------------
    def _check_actions(self, actions) -> np.ndarray:
        array = np.asarray(actions)
        if array.shape != (self.num_envs,) or array.dtype.kind not in "iu":
            raise ValueError(
                f"invalid actions {actions!r}: expected {self.num_envs} integers in {self.action_space}"
            )
        if self.num_envs and (array.min() < 0 or array.max() >= self._num_actions):
            raise ValueError(
                f"invalid actions {array.tolist()!r}: each must be in 0..{self._num_actions - 1} "
                f"({self.action_space})"
            )
        return array.astype(np.int64, copy=False)

    @staticmethod
    def _mask_infos(infos: dict[str, Any], mask: np.ndarray) -> dict[str, Any]:
        """``infos`` restricted to the envs in ``mask`` (others zeroed), as ``SyncVectorEnv`` builds them."""
        if not mask.any():
            return {}
        masked = {}
        for key, value in infos.items():
            if not key.startswith("_"):
                masked[key] = np.where(mask, value, np.zeros_like(value))
                masked["_" + key] = infos["_" + key] & mask
        return masked
