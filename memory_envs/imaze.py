"""I-Maze: remember the indicator's colour at the top of the I, pick the matching bottom goal."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

import numpy as np
from gymnasium import spaces

from memory_envs.base import MemoryEnv
from memory_envs.beam import beam_index_table, channel_lookup
from memory_envs.grid import Cell, pack_state, transition_table
from memory_envs.validation import check_float, check_int

INDICATORS = ("green", "red")
NOT_SPECIAL, GOAL_CELL = -1, -2  # cell kinds; a kind >= 0 is a central-column row


class IMazeAction(IntEnum):
    FORWARD = 0
    LEFT = 1
    RIGHT = 2
    NOOP = 3


@dataclass(frozen=True)
class IMazeTables:
    """Everything about an I-Maze of one size and beam width that does not change per episode.

    Shared by the single and the batched env (which is how they stay step-for-step equal).
    """

    size: int
    walls: np.ndarray  # bool [W, W]
    codes: np.ndarray  # int8 [2, W*W + 1]: cell codes per indicator, last entry the wall sentinel
    next_state: np.ndarray  # int64 [W*W*4, 4]
    beam: np.ndarray  # int64 [W*W*4, L*Wb]
    obs: np.ndarray  # uint8 [2, W*W*4, L, Wb, 3]: observation per indicator and state
    cell_kind: np.ndarray  # int64 [W*W]: NOT_SPECIAL, GOAL_CELL or the row of a central-column cell
    left_goal: int  # flat cell of (W-1, 0)
    right_goal: int  # flat cell of (W-1, W-1)
    start_state: int


@lru_cache(maxsize=32)
def imaze_tables(size: int, beam_width: int) -> IMazeTables:
    """Build (once per process) the tables of an I-Maze of ``size`` with a ``beam_width`` beam."""
    mid = size // 2
    walls = np.ones((size, size), dtype=bool)
    walls[0, :] = walls[size - 1, :] = walls[:, mid] = False
    left_goal, right_goal = (size - 1) * size, (size - 1) * size + size - 1
    codes = np.full((2, size * size + 1), Cell.WALL, dtype=np.int8)
    codes[:, :-1][:, ~walls.reshape(-1)] = Cell.FREE
    codes[:, [left_goal, right_goal]] = Cell.GOAL
    codes[0, size - 1] = Cell.GREEN
    codes[1, size - 1] = Cell.RED
    next_state = transition_table(
        walls, (IMazeAction.FORWARD, IMazeAction.LEFT, IMazeAction.RIGHT), len(IMazeAction)
    )
    beam = beam_index_table(walls, length=size, width=beam_width, start=0)
    channels = channel_lookup(
        {Cell.WALL: (1, 0, 0), Cell.GREEN: (0, 1, 0), Cell.RED: (0, 0, 1), Cell.FREE: (0, 0, 0)}, len(Cell)
    )
    obs = channels[codes[:, beam]].reshape(2, len(beam), size, beam_width, 3)
    cell_kind = np.full(size * size, NOT_SPECIAL, dtype=np.int64)
    cell_kind[np.arange(size) * size + mid] = np.arange(size)
    cell_kind[[left_goal, right_goal]] = GOAL_CELL
    for array in (walls, codes, next_state, beam, obs, cell_kind):
        array.flags.writeable = False
    return IMazeTables(
        size, walls, codes, next_state, beam, obs, cell_kind, left_goal, right_goal,
        start_state=pack_state(0, 0, 0, size),
    )


class IMazeEnv(MemoryEnv):
    """I-Maze (Parisotto & Salakhutdinov 2021, sec. 5.1; after Oh et al. 2016).

    ## Description
    An I-shaped maze: the free cells are the top row, the central column and the bottom row
    of a ``size`` x ``size`` grid. The agent starts in the top-left corner ``(0, 0)`` facing
    east. The top-right cell ``(0, size-1)`` is an indicator, green or red at random each
    episode. The two bottom corners are goals that look like free space: green means the
    bottom-left goal ``(size-1, 0)`` is correct, red the bottom-right ``(size-1, size-1)``.
    The indicator is out of view at the bottom junction, so the agent must remember it: a
    memoryless policy cannot beat 50% success.

    ## Action Space
    ``Discrete(4)``

    | action | meaning |
    |---|---|
    | 0 | move forward (into a wall: no move) |
    | 1 | turn left |
    | 2 | turn right |
    | 3 | do nothing |

    ## Observation Space
    ``Box(0, 1, (size, beam_width, 3), uint8)``: an egocentric beam starting at the agent's own
    cell (``[0]`` shows what the agent stands on, e.g. the indicator) and reaching ``size`` cells
    ahead; ``beam_width`` lateral rays from left to right (1 by default, the paper's figure
    shows 3). Channels ``(wall, green, red)``; free cells and goals are all zeros. Each ray
    stops at the first wall; cells behind it read as wall.

    ## Rewards
    +1 for entering the correct goal, 0 for the wrong one. With ``shaping_reward`` r > 0,
    +r the first time in an episode the agent enters each cell of the central column (both
    junctions included).

    ## Starting State
    ``(0, 0)`` facing east; indicator colour uniformly random.

    ## Episode End
    Terminates on entering either goal. Truncated at ``max_episode_steps`` by the registered
    ``TimeLimit`` (150 for 9x9, 350 for 15x15). ``info["is_success"]`` is present on every
    step: True once the correct goal is entered.

    ## Arguments
    ``size`` (odd int >= 5), ``shaping_reward`` (float >= 0), ``beam_width`` (odd int >= 1),
    ``render_mode`` (None, "rgb_array", "ansi", "human").

    ## Registered Configurations
    | id | settings | max_episode_steps |
    |---|---|---|
    | ``MemoryEnvs/IMaze-9x9-v0`` | size=9 | 150 |
    | ``MemoryEnvs/IMaze-15x15-v0`` | size=15, shaping_reward=0.01 | 350 |

    Example:
        >>> import gymnasium, memory_envs
        >>> env = gymnasium.make("MemoryEnvs/IMaze-9x9-v0")
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape
        (9, 1, 3)
    """

    channel_colors = np.array([(46, 46, 54), (46, 170, 72), (206, 48, 48)], dtype=np.uint8)
    empty_color = np.array((232, 232, 226), dtype=np.uint8)
    Actions = IMazeAction

    def __init__(
        self,
        size: int = 9,
        shaping_reward: float = 0.0,
        beam_width: int = 1,
        render_mode: str | None = None,
    ):
        super().__init__(render_mode)
        self.size = check_int("size", size, minimum=5, odd=True)
        self.shaping_reward = check_float("shaping_reward", shaping_reward)
        self.beam_width = check_int("beam_width", beam_width, minimum=1, odd=True)
        tables = imaze_tables(self.size, self.beam_width)
        self._tables = tables
        self._walls = tables.walls
        self._beam = tables.beam
        self._next = tables.next_state.tolist()  # Python lists: the fastest scalar lookups
        self._cell_kind = tables.cell_kind.tolist()
        self._num_actions = len(IMazeAction)
        self.observation_space = spaces.Box(0, 1, (self.size, self.beam_width, 3), np.uint8)
        self.action_space = spaces.Discrete(self._num_actions)
        self._indicator = 0
        self._visited = [False] * self.size
        self._success = False
        self._state = tables.start_state

    @property
    def indicator(self) -> str:
        """This episode's indicator colour, ``"green"`` or ``"red"``."""
        return INDICATORS[self._indicator]

    @property
    def goal_pos(self) -> tuple[int, int]:
        """The correct goal for this episode."""
        return (self.size - 1, 0) if self._indicator == 0 else (self.size - 1, self.size - 1)

    @property
    def grid(self) -> np.ndarray:
        """int8 ``[size, size]`` :class:`~memory_envs.grid.Cell` codes (read-only)."""
        return self._tables.codes[self._indicator, :-1].reshape(self.size, self.size)

    def _observe(self) -> np.ndarray:
        return self._tables.obs[self._indicator, self._state].copy()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._indicator = int(self.np_random.integers(2))
        self._state = self._tables.start_state
        self._visited = [False] * self.size
        self._success = False
        if self.render_mode == "human":
            self.render()
        return self._observe(), {}

    def step(self, action):
        action = self._action(action)
        state = self._next[self._state][action]
        reward, terminated = 0.0, False
        if state >> 2 != self._state >> 2:
            cell = state >> 2
            kind = self._cell_kind[cell]
            if kind == GOAL_CELL:
                terminated = True
                correct = self._tables.left_goal if self._indicator == 0 else self._tables.right_goal
                self._success = cell == correct
                reward = 1.0 if self._success else 0.0
            elif kind >= 0 and self.shaping_reward and not self._visited[kind]:
                self._visited[kind] = True
                reward = self.shaping_reward
        self._state = state
        if self.render_mode == "human":
            self.render()
        return self._observe(), reward, terminated, False, {"is_success": self._success}
