"""Batched I-Maze: every env stepped with one table lookup per array."""

from __future__ import annotations

import numpy as np

from memory_envs.grid import unpack_state
from memory_envs.imaze import GOAL_CELL, IMazeEnv, imaze_tables
from memory_envs.vector.base import BatchedVectorEnv


class IMazeVectorEnv(BatchedVectorEnv):
    """``num_envs`` I-Mazes in numpy arrays; same arguments as :class:`~memory_envs.IMazeEnv`.

    Example:
        >>> import gymnasium, memory_envs
        >>> envs = gymnasium.make_vec("MemoryEnvs/IMaze-9x9-v0", num_envs=64)
        >>> obs, info = envs.reset(seed=0)
        >>> obs.shape
        (64, 9, 1, 3)
    """

    single_env_class = IMazeEnv

    def __init__(self, num_envs: int = 1, size: int = 9, shaping_reward: float = 0.0,
                 beam_width: int = 1, max_episode_steps: int | None = None,
                 autoreset_mode="next_step", render_mode: str | None = None):
        # The single env validates the arguments and provides the spaces.
        template = IMazeEnv(size=size, shaping_reward=shaping_reward, beam_width=beam_width)
        super().__init__(num_envs, template.observation_space, template.action_space,
                         max_episode_steps, autoreset_mode, render_mode)
        self.size, self.shaping_reward, self.beam_width = template.size, template.shaping_reward, template.beam_width
        self._tables = imaze_tables(self.size, self.beam_width)
        self._correct_goal = np.array([self._tables.left_goal, self._tables.right_goal])
        self._state = np.full(self.num_envs, self._tables.start_state, dtype=np.int64)
        self._indicator = np.zeros(self.num_envs, dtype=np.int64)
        self._visited = np.zeros((self.num_envs, self.size), dtype=bool)

    def _reset_envs(self, indices: np.ndarray) -> None:
        self._indicator[indices] = [int(self._rngs[i].integers(2)) for i in indices]
        self._state[indices] = self._tables.start_state
        self._visited[indices] = False

    def _advance(self, actions):
        tables = self._tables
        state = np.take(tables.next_state, self._state * self._num_actions + actions)
        cell = state >> 2
        moved = cell != self._state >> 2
        kind = tables.cell_kind[cell]
        terminated = moved & (kind == GOAL_CELL)
        success = terminated & (cell == self._correct_goal[self._indicator])
        rewards = success.astype(np.float64)
        if self.shaping_reward:
            column = np.flatnonzero(moved & (kind >= 0))
            rows = kind[column]
            first = ~self._visited[column, rows]
            self._visited[column[first], rows[first]] = True
            rewards[column[first]] = self.shaping_reward
        self._state = state
        return rewards, terminated, {"is_success": success, "_is_success": np.ones(self.num_envs, dtype=bool)}

    def _observe(self) -> np.ndarray:
        return self._tables.obs[self._indicator, self._state]

    def _render_parts(self, index: int):
        state = int(self._state[index])
        pos, direction = unpack_state(state, self.size)
        cells = self._tables.beam[state]
        grid = self._tables.codes[self._indicator[index], :-1].reshape(self.size, self.size)
        return grid, pos, direction, cells[cells < self.size**2], self._observe()[index]
