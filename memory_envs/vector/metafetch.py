"""Batched Meta-Fetch: object bookkeeping in ``[N, num_objects]`` arrays."""

from __future__ import annotations

import numpy as np

from memory_envs.grid import Cell, unpack_state
from memory_envs.metafetch import MetaFetchEnv, metafetch_tables, sample_layout
from memory_envs.vector.base import BatchedVectorEnv


class MetaFetchVectorEnv(BatchedVectorEnv):
    """``num_envs`` Meta-Fetch rooms in numpy arrays; same arguments as :class:`~memory_envs.MetaFetchEnv`.

    Example:
        >>> import gymnasium, memory_envs
        >>> envs = gymnasium.make_vec("MemoryEnvs/MetaFetch-v0", num_envs=8)
        >>> obs, info = envs.reset(seed=0)
        >>> obs.shape
        (8, 15, 3, 4)
    """

    single_env_class = MetaFetchEnv

    def __init__(self, num_envs: int = 1, size: int = 7, num_objects: int = 4,
                 beam_length: int = 15, beam_width: int = 3, max_episode_steps: int | None = None,
                 autoreset_mode="next_step", render_mode: str | None = None):
        template = MetaFetchEnv(size=size, num_objects=num_objects, beam_length=beam_length,
                                beam_width=beam_width)
        super().__init__(num_envs, template.observation_space, template.action_space,
                         max_episode_steps, autoreset_mode, render_mode)
        self.size, self.num_objects = template.size, template.num_objects
        self.beam_length, self.beam_width = template.beam_length, template.beam_width
        self._tables = metafetch_tables(self.size, self.beam_length, self.beam_width)
        cells = self.size * self.size
        n, k = self.num_envs, self.num_objects
        # Observations are built as one uint32 per beam cell (its 4 one-hot channel bytes):
        # the empty-room beam of each state, then the objects written where the beam sees them.
        packed = np.ascontiguousarray(self._tables.channels).view(np.uint32).reshape(-1)
        empty_room = np.full(cells + 1, Cell.FREE, dtype=np.int64)
        empty_room[-1] = Cell.WALL
        self._empty_beam = packed[empty_room[self._tables.beam]]
        self._packed_object = packed[[Cell.OBJECT, Cell.COLLECTED]]
        beam = self._tables.beam
        self._beam_position = np.full((len(beam), cells + 1), -1, dtype=np.int64)
        rows, positions = np.nonzero(beam < cells)
        self._beam_position[rows, beam[rows, positions]] = positions
        self._state = np.zeros(n, dtype=np.int64)
        self._objects = np.zeros((n, k), dtype=np.int64)
        self._object_at = np.full((n, cells), -1, dtype=np.int64)
        self._progress = np.zeros(n, dtype=np.int64)
        self._rewarded = np.zeros((n, k), dtype=bool)
        self._rounds = np.zeros(n, dtype=np.int64)
        self._codes = np.full((n, cells + 1), Cell.WALL, dtype=np.int8)
        self._order = np.arange(k)
        self._cell_offset = np.arange(n) * cells

    def _reset_envs(self, indices: np.ndarray) -> None:
        if len(indices) == 0:
            return
        layouts = [sample_layout(self._rngs[i], self.size, self.num_objects) for i in indices]
        objects = np.stack([objects for objects, _ in layouts])
        self._state[indices] = [state for _, state in layouts]
        self._objects[indices] = objects
        self._object_at[indices] = -1
        self._object_at[indices[:, None], objects] = self._order
        self._progress[indices] = 0
        self._rewarded[indices] = False
        self._rounds[indices] = 0
        self._codes[indices, :-1] = Cell.FREE
        self._codes[indices[:, None], objects] = Cell.OBJECT

    def _advance(self, actions):
        n_range = self._arange
        state = np.take(self._tables.next_state, self._state * self._num_actions + actions)
        cell = state >> 2
        moved = cell != self._state >> 2
        k = np.where(moved, np.take(self._object_at, self._cell_offset + cell), -1)
        progress = self._progress
        hit = k == progress
        rewarded = hit & ~self._rewarded[n_range, np.maximum(k, 0)]
        self._rewarded[n_range[rewarded], k[rewarded]] = True
        new_progress = np.where(hit, progress + 1, np.where(k > progress, 0, progress))
        complete = new_progress == self.num_objects
        if complete.any():
            self._rounds += complete
            self._rewarded[complete] = False
            new_progress[complete] = 0
        changed = np.flatnonzero(new_progress != progress)
        if len(changed):
            collected = self._order < new_progress[changed, None]
            self._codes[changed[:, None], self._objects[changed]] = np.where(
                collected, Cell.COLLECTED, Cell.OBJECT)
        self._progress = new_progress
        self._state = state
        all_envs = np.ones(self.num_envs, dtype=bool)
        infos = {"is_success": self._rounds > 0, "_is_success": all_envs,
                 "rounds_completed": self._rounds.copy(), "_rounds_completed": all_envs.copy()}
        return rewarded.astype(np.float64), np.zeros(self.num_envs, dtype=bool), infos

    def _observe(self) -> np.ndarray:
        packed = np.take(self._empty_beam, self._state, axis=0)
        position = np.take(self._beam_position, self._state[:, None] * self._beam_position.shape[1] + self._objects)
        env, k = np.nonzero(position >= 0)
        collected = k < self._progress[env]
        packed[env, position[env, k]] = self._packed_object[collected.astype(np.int64)]
        return packed.view(np.uint8).reshape(self.num_envs, self.beam_length, self.beam_width, 4)

    def _render_parts(self, index: int):
        state = int(self._state[index])
        pos, direction = unpack_state(state, self.size)
        cells = self._tables.beam[state]
        grid = self._codes[index, :-1].reshape(self.size, self.size)
        return grid, pos, direction, cells[cells < self.size**2], self._observe()[index]
