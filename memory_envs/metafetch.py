"""Meta-Fetch: discover a hidden fetch order by trial and error, then repeat it for reward."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

import numpy as np
from gymnasium import spaces

from memory_envs.base import MemoryEnv
from memory_envs.beam import beam_index_table, channel_lookup
from memory_envs.grid import Cell, transition_table
from memory_envs.validation import check_int

BEAM_LENGTH = 15
BEAM_WIDTH = 3


class MetaFetchAction(IntEnum):
    FORWARD = 0
    LEFT = 1
    RIGHT = 2


@dataclass(frozen=True)
class MetaFetchTables:
    """What does not change per episode for one grid size and beam shape (shared with the batched env)."""

    size: int
    walls: np.ndarray  # bool [S, S], all False: the walls are outside the grid
    next_state: np.ndarray  # int64 [S*S*4, 3]
    beam: np.ndarray  # int64 [S*S*4, L*Wb], sentinel S*S = wall
    channels: np.ndarray  # uint8 [len(Cell), 4]: (free, wall, object, collected) one-hot


@lru_cache(maxsize=32)
def metafetch_tables(size: int, beam_length: int, beam_width: int) -> MetaFetchTables:
    walls = np.zeros((size, size), dtype=bool)
    next_state = transition_table(
        walls, (MetaFetchAction.FORWARD, MetaFetchAction.LEFT, MetaFetchAction.RIGHT),
        len(MetaFetchAction),
    )
    beam = beam_index_table(walls, length=beam_length, width=beam_width, start=1)
    channels = channel_lookup(
        {
            Cell.FREE: (1, 0, 0, 0),
            Cell.WALL: (0, 1, 0, 0),
            Cell.OBJECT: (0, 0, 1, 0),
            Cell.COLLECTED: (0, 0, 0, 1),
        },
        len(Cell),
    )
    for array in (walls, next_state, beam, channels):
        array.flags.writeable = False
    return MetaFetchTables(size, walls, next_state, beam, channels)


def sample_layout(rng: np.random.Generator, size: int, num_objects: int) -> tuple[np.ndarray, int]:
    """Object cells in fetch order and the agent's packed state, drawn for a new episode.

    The cells are drawn without replacement in random order, so the fetch order is a
    uniformly random permutation of the objects. Single and batched envs both call this,
    consuming the generator identically.
    """
    cells = rng.permutation(size * size)[: num_objects + 1]
    direction = int(rng.integers(4))
    return cells[:num_objects].astype(np.int64), int(cells[num_objects]) * 4 + direction


class MetaFetchEnv(MemoryEnv):
    """Meta-Fetch (Parisotto & Salakhutdinov 2021, sec. 5.2 and A.2).

    ## Description
    An empty ``size`` x ``size`` room (walls outside) holds ``num_objects`` identical-looking
    objects. A hidden fetch order, a random permutation, is drawn each episode. Stepping onto
    an object fetches it: the next one in the order becomes *collected*; an already collected
    one does nothing; any other object resets all collected objects to uncollected, and the
    sequence starts over. Collecting the last object completes a round: objects reset, rewards
    re-arm, positions and order stay, the agent stays where it is. The agent must explore to
    find the order, remember it, and repeat it as many times as it can.

    ## Action Space
    ``Discrete(3)``: 0 forward, 1 turn left, 2 turn right.

    ## Observation Space
    ``Box(0, 1, (15, 3, 4), uint8)``: an egocentric beam starting one cell ahead of the agent,
    15 cells long, 3 rays wide (left to right), one-hot channels
    ``(free, wall, object, collected object)``. Only walls occlude; objects do not.

    ## Rewards
    +1 for each object collected in order, at most once per object per round (a reset by a
    wrong object does not re-arm rewards; completing a round does).

    ## Starting State
    Objects at distinct random cells, the agent on another random cell facing a random
    direction; everything is redrawn at every reset.

    ## Episode End
    Never terminates; truncated at ``max_episode_steps`` (300). ``info["is_success"]`` (at
    least one round completed) and ``info["rounds_completed"]`` are present on every step.

    ## Arguments
    ``size`` (int >= 2), ``num_objects`` (1 <= n <= size*size - 1), ``beam_length`` (int >= 1),
    ``beam_width`` (odd int >= 1), ``render_mode``.

    ## Registered Configurations
    | id | settings | max_episode_steps |
    |---|---|---|
    | ``MemoryEnvs/MetaFetch-v0`` | size=7, num_objects=4 | 300 |
    | ``MemoryEnvs/MetaFetch-3obj-v0`` | size=7, num_objects=3 | 300 |

    Example:
        >>> import gymnasium, memory_envs
        >>> env = gymnasium.make("MemoryEnvs/MetaFetch-v0")
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape
        (15, 3, 4)
    """

    channel_colors = np.array(
        [(232, 232, 226), (46, 46, 54), (138, 88, 40), (206, 186, 160)], dtype=np.uint8
    )
    empty_color = np.array((255, 255, 255), dtype=np.uint8)
    tile_size = 32
    Actions = MetaFetchAction

    def __init__(
        self,
        size: int = 7,
        num_objects: int = 4,
        beam_length: int = BEAM_LENGTH,
        beam_width: int = BEAM_WIDTH,
        render_mode: str | None = None,
    ):
        super().__init__(render_mode)
        self.size = check_int("size", size, minimum=2)
        self.num_objects = check_int("num_objects", num_objects, minimum=1)
        if self.num_objects > self.size * self.size - 1:
            raise ValueError(
                f"num_objects must leave a free cell for the agent: at most "
                f"{self.size * self.size - 1} on a {self.size}x{self.size} grid, got {self.num_objects}"
            )
        self.beam_length = check_int("beam_length", beam_length, minimum=1)
        self.beam_width = check_int("beam_width", beam_width, minimum=1, odd=True)
        tables = metafetch_tables(self.size, self.beam_length, self.beam_width)
        self._tables = tables
        self._walls = tables.walls
        self._beam = tables.beam
        self._next = tables.next_state.tolist()
        self._num_actions = len(MetaFetchAction)
        self.observation_space = spaces.Box(
            0, 1, (self.beam_length, self.beam_width, 4), np.uint8
        )
        self.action_space = spaces.Discrete(self._num_actions)
        self._obs_shape = self.observation_space.shape
        cells = self.size * self.size
        self._codes = np.full(cells + 1, Cell.WALL, dtype=np.int8)
        self._object_at = [-1] * cells  # object index (fetch order) on each cell, -1 if none
        self._objects = np.zeros(0, dtype=np.int64)
        self._progress = 0  # objects collected so far in this round, in order
        self._rewarded = [False] * self.num_objects
        self.rounds_completed = 0
        self._state = 0
        self._place(np.arange(self.num_objects, dtype=np.int64))

    # -- public attributes -------------------------------------------------------------
    @property
    def object_positions(self) -> list[tuple[int, int]]:
        """``(row, col)`` of each object, in fetch order."""
        return [divmod(int(cell), self.size) for cell in self._objects]

    @property
    def collected(self) -> list[bool]:
        """Whether each object (in fetch order) is currently collected."""
        return [k < self._progress for k in range(self.num_objects)]

    @property
    def grid(self) -> np.ndarray:
        """int8 ``[size, size]`` :class:`~memory_envs.grid.Cell` codes."""
        return self._codes[:-1].reshape(self.size, self.size).copy()

    # -- dynamics ----------------------------------------------------------------------
    def _place(self, objects: np.ndarray) -> None:
        for cell in self._objects.tolist():
            self._object_at[cell] = -1
        self._objects = objects
        for k, cell in enumerate(objects.tolist()):
            self._object_at[cell] = k
        self._codes[:-1] = Cell.FREE
        self._codes[objects] = Cell.OBJECT

    def _set_progress(self, progress: int) -> None:
        self._progress = progress
        self._codes[self._objects] = Cell.OBJECT
        self._codes[self._objects[:progress]] = Cell.COLLECTED

    def _observe(self) -> np.ndarray:
        return self._tables.channels[self._codes[self._beam[self._state]]].reshape(self._obs_shape)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        objects, self._state = sample_layout(self.np_random, self.size, self.num_objects)
        self._place(objects)
        self._progress = 0
        self._rewarded = [False] * self.num_objects
        self.rounds_completed = 0
        if self.render_mode == "human":
            self.render()
        return self._observe(), {}

    def step(self, action):
        action = self._action(action)
        state = self._next[self._state][action]
        reward = 0.0
        if state >> 2 != self._state >> 2:
            k = self._object_at[state >> 2]
            if k == self._progress:
                if not self._rewarded[k]:
                    self._rewarded[k] = True
                    reward = 1.0
                if k + 1 == self.num_objects:
                    self.rounds_completed += 1
                    self._rewarded = [False] * self.num_objects
                    self._set_progress(0)
                else:
                    self._set_progress(k + 1)
            elif k > self._progress:
                self._set_progress(0)
        self._state = state
        if self.render_mode == "human":
            self.render()
        info = {"is_success": self.rounds_completed > 0, "rounds_completed": self.rounds_completed}
        return self._observe(), reward, False, False, info
