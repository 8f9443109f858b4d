"""Grid conventions shared by every memory env: cell types, directions, movement tables.

Coordinates are ``(row, col)`` with row 0 at the top. Directions: 0 east (+col),
1 south (+row), 2 west (-col), 3 north (-row). Cells outside the grid are walls.
A *state* packs position and direction into one int, ``state = (row * width + col) * 4 + dir``,
so that one table lookup moves an agent (and a batch of agents with numpy indexing).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Cell(IntEnum):
    """Cell types stored in an env's ``grid`` array."""

    FREE = 0
    WALL = 1
    GREEN = 2
    RED = 3
    GOAL = 4
    OBJECT = 5
    COLLECTED = 6


DIRECTION_VECTORS = np.array([(0, 1), (1, 0), (0, -1), (-1, 0)], dtype=np.int64)
DIRECTION_NAMES = ("east", "south", "west", "north")
TURN_LEFT = {d: (d - 1) % 4 for d in range(4)}
TURN_RIGHT = {d: (d + 1) % 4 for d in range(4)}


def pack_state(row: int, col: int, direction: int, width: int) -> int:
    """The packed state index of an agent at ``(row, col)`` facing ``direction``."""
    return (row * width + col) * 4 + direction


def unpack_state(state: int, width: int) -> tuple[tuple[int, int], int]:
    """``((row, col), direction)`` of a packed state index."""
    cell, direction = divmod(int(state), 4)
    return divmod(cell, width), direction


def transition_table(
    walls: np.ndarray, turn_actions: tuple[int, int, int], num_actions: int
) -> np.ndarray:
    """``next_state[state, action]`` for every packed state of a grid.

    Args:
        walls: bool array ``[H, W]``, True where a cell is a wall.
        turn_actions: the action ids of (forward, turn left, turn right).
        num_actions: size of the action space; every other action id is a no-op.

    Returns:
        int64 array ``[H * W * 4, num_actions]``. Moving forward into a wall or off the
        grid leaves the state unchanged.
    """
    height, width = walls.shape
    forward, left, right = turn_actions
    table = np.empty((height * width * 4, num_actions), dtype=np.int64)
    for row in range(height):
        for col in range(width):
            for direction in range(4):
                state = pack_state(row, col, direction, width)
                table[state, :] = state
                dr, dc = DIRECTION_VECTORS[direction]
                r, c = row + dr, col + dc
                if 0 <= r < height and 0 <= c < width and not walls[r, c]:
                    table[state, forward] = pack_state(r, c, direction, width)
                table[state, left] = pack_state(row, col, TURN_LEFT[direction], width)
                table[state, right] = pack_state(row, col, TURN_RIGHT[direction], width)
    return table
