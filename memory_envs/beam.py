"""Egocentric beam observations, as pure numpy functions of (walls, position, direction, beam shape).

A beam is ``length`` cells deep along the facing direction and ``width`` rays wide. Index
``[i, j]``: ``i`` is the distance along the facing direction counted from ``start`` (0 = the
agent's own cell, 1 = the cell in front), ``j`` the lateral ray from the agent's left to its
right, the centre ray being ``j = width // 2``. Each ray is occluded on its own: cells beyond
the first wall of a ray read as wall. Cells off the grid are walls.

Walls are static in every memory env, so visibility depends only on the packed agent state.
:func:`beam_index_table` precomputes, for each state, which grid cells the beam reads; an
observation is then two gathers (cell codes, then channels), for one env or a batch.
"""

from __future__ import annotations

import numpy as np

from memory_envs.grid import DIRECTION_VECTORS


def cast_beam(
    walls: np.ndarray, pos: tuple[int, int], direction: int, length: int, width: int, start: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells seen by a beam.

    Args:
        walls: bool ``[H, W]``, True on wall cells.
        pos: the agent's ``(row, col)``.
        direction: 0 east, 1 south, 2 west, 3 north.
        length: cells along the facing direction.
        width: number of lateral rays (odd).
        start: distance of the first beam cell from the agent (0 = its own cell).

    Returns:
        ``(rows, cols, visible)``, each ``[length, width]``: the coordinates the beam covers
        (possibly off the grid) and whether each is visible, i.e. on the grid and not behind
        a wall on its ray. A ray's first wall is itself visible.
    """
    height, grid_width = walls.shape
    forward = DIRECTION_VECTORS[direction]
    right = DIRECTION_VECTORS[(direction + 1) % 4]
    depth = np.arange(start, start + length)[:, None]
    lateral = np.arange(width)[None, :] - width // 2
    rows = pos[0] + depth * forward[0] + lateral * right[0]
    cols = pos[1] + depth * forward[1] + lateral * right[1]
    on_grid = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < grid_width)
    is_wall = np.ones(rows.shape, dtype=bool)
    is_wall[on_grid] = walls[rows[on_grid], cols[on_grid]]
    # A cell is visible if no wall stands strictly before it on its ray (and it is on the grid).
    walls_before = np.cumsum(is_wall, axis=0) - is_wall
    visible = on_grid & (walls_before == 0)
    return rows, cols, visible


def beam_index_table(walls: np.ndarray, length: int, width: int, start: int = 0) -> np.ndarray:
    """For every packed state, the flat grid index each beam cell reads.

    Returns:
        int64 ``[H * W * 4, length * width]``; invisible or off-grid cells point at the
        sentinel index ``H * W``, which callers keep as a wall in their flat code array.
    """
    height, grid_width = walls.shape
    sentinel = height * grid_width
    table = np.full((height * grid_width * 4, length * width), sentinel, dtype=np.int64)
    for row in range(height):
        for col in range(grid_width):
            for direction in range(4):
                rows, cols, visible = cast_beam(walls, (row, col), direction, length, width, start)
                flat = np.where(visible, rows * grid_width + cols, sentinel)
                table[(row * grid_width + col) * 4 + direction] = flat.reshape(-1)
    return table


def channel_lookup(cell_channels: dict[int, tuple[int, ...]], num_codes: int) -> np.ndarray:
    """uint8 ``[num_codes, C]`` mapping each cell code to its observation channels (zeros if absent)."""
    num_channels = len(next(iter(cell_channels.values())))
    lookup = np.zeros((num_codes, num_channels), dtype=np.uint8)
    for code, channels in cell_channels.items():
        lookup[int(code)] = channels
    return lookup
