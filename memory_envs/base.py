"""The shared base of the memory envs: packed-state bookkeeping, action checks and rendering."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from memory_envs import rendering
from memory_envs.grid import unpack_state
from memory_envs.validation import check_action, check_render_mode


class MemoryEnv(gym.Env):
    """Base class: subclasses keep the agent in ``self._state`` (a packed state index, see
    :mod:`memory_envs.grid`), fill ``self._beam`` (per-state beam indices, sentinel = walls)
    and implement ``_observe`` and ``grid``."""

    metadata = {"render_modes": ["human", "rgb_array", "ansi"], "render_fps": 8}
    #: uint8 ``[C, 3]`` colour of each observation channel, and of an all-zero cell.
    channel_colors: np.ndarray
    empty_color: np.ndarray
    #: pixels per grid cell in rgb frames.
    tile_size = 24

    def __init__(self, render_mode: str | None = None):
        self.render_mode = check_render_mode(render_mode)
        self._window: rendering.PygameWindow | None = None
        self._state = 0

    # -- public attributes -------------------------------------------------------------
    @property
    def agent_pos(self) -> tuple[int, int]:
        """The agent's ``(row, col)``."""
        return unpack_state(self._state, self.size)[0]

    @agent_pos.setter
    def agent_pos(self, pos: tuple[int, int]) -> None:
        row, col = (int(v) for v in pos)
        if not (0 <= row < self.size and 0 <= col < self.size) or self._walls[row, col]:
            raise ValueError(f"agent_pos {pos!r} is not a free cell of the {self.size}x{self.size} grid")
        self._state = (row * self.size + col) * 4 + self._state % 4

    @property
    def agent_dir(self) -> int:
        """The agent's direction: 0 east, 1 south, 2 west, 3 north."""
        return self._state % 4

    @agent_dir.setter
    def agent_dir(self, direction: int) -> None:
        if int(direction) not in range(4):
            raise ValueError(f"agent_dir must be 0, 1, 2 or 3, got {direction!r}")
        self._state = self._state - self._state % 4 + int(direction)

    # -- helpers for subclasses --------------------------------------------------------
    def _action(self, action) -> int:
        return check_action(action, self._num_actions, self.action_space)

    def _visible_cells(self) -> np.ndarray:
        cells = self._beam[self._state]
        return cells[cells < self.size * self.size]

    # -- rendering ---------------------------------------------------------------------
    def render(self):
        """An RGB frame (``rgb_array``), a string (``ansi``), or draw in a window (``human``)."""
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; pass render_mode='rgb_array', 'ansi' "
                "or 'human' to gymnasium.make"
            )
            return None
        if self.render_mode == "ansi":
            return rendering.ansi_frame(self.grid, self.agent_pos, self.agent_dir)
        frame = rendering.draw_frame(
            self.grid, self.agent_pos, self.agent_dir, self._visible_cells(),
            self._observe(), self.channel_colors, self.empty_color, tile=self.tile_size,
        )
        if self.render_mode == "rgb_array":
            return frame
        if self._window is None:
            self._window = rendering.PygameWindow(type(self).__name__, self.metadata["render_fps"])
        self._window.show(frame)
        return None

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_window"] = None  # a pygame window is tied to this process
        return state
