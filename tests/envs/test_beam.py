"""The pure beam-casting function."""

import numpy as np

from memory_envs.beam import beam_index_table, cast_beam


def test_forward_ray_stops_at_first_wall():
    walls = np.zeros((5, 5), dtype=bool)
    walls[2, 3] = True
    rows, cols, visible = cast_beam(walls, (2, 0), 0, length=5, width=1)
    assert cols[:, 0].tolist() == [0, 1, 2, 3, 4] and (rows == 2).all()
    assert visible[:, 0].tolist() == [True, True, True, True, False]


def test_lateral_rays_left_to_right_for_each_direction():
    walls = np.zeros((7, 7), dtype=bool)
    for direction, left_cell in [(0, (2, 3)), (1, (3, 4)), (2, (4, 3)), (3, (3, 2))]:
        rows, cols, _ = cast_beam(walls, (3, 3), direction, length=2, width=3, start=0)
        assert (rows[0, 0], cols[0, 0]) == left_cell  # j = 0 is the agent's left
        assert (rows[0, 1], cols[0, 1]) == (3, 3)


def test_each_ray_occluded_independently_and_off_grid_invisible():
    walls = np.zeros((4, 6), dtype=bool)
    walls[0, 2] = True  # blocks the left ray only
    rows, cols, visible = cast_beam(walls, (1, 0), 0, length=6, width=3, start=1)
    assert visible[:, 0].tolist() == [True, True, False, False, False, False]
    assert visible[:, 1].tolist() == [True] * 5 + [False]  # col 6 is off the grid
    assert visible[:, 2].tolist() == [True] * 5 + [False]


def test_index_table_uses_sentinel_for_invisible():
    walls = np.zeros((3, 3), dtype=bool)
    table = beam_index_table(walls, length=4, width=1, start=1)
    state = (1 * 3 + 0) * 4 + 0  # (1, 0) facing east
    assert table[state].tolist() == [4, 5, 9, 9]
