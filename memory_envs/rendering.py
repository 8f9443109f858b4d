"""Drawing the memory envs: numpy RGB frames, ANSI text and a lazily imported pygame window.

Everything here is a pure function of what an env exposes (grid codes, agent pose, beam cells,
observation), so single envs, batched envs and the human-play tool draw identical frames.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from memory_envs.grid import Cell

CELL_COLORS = np.zeros((len(Cell), 3), dtype=np.uint8)
CELL_COLORS[Cell.FREE] = (232, 232, 226)
CELL_COLORS[Cell.WALL] = (46, 46, 54)
CELL_COLORS[Cell.GREEN] = (46, 170, 72)
CELL_COLORS[Cell.RED] = (206, 48, 48)
CELL_COLORS[Cell.GOAL] = (92, 146, 222)  # blue: visible against free cells, unlike either indicator colour
CELL_COLORS[Cell.OBJECT] = (138, 88, 40)
CELL_COLORS[Cell.COLLECTED] = (206, 186, 160)
AGENT_COLOR = np.array((255, 140, 0), dtype=np.uint8)
BEAM_COLOR = np.array((255, 236, 110), dtype=np.float32)
GRID_LINE_COLOR = np.array((150, 150, 150), dtype=np.uint8)
BACKGROUND = np.array((255, 255, 255), dtype=np.uint8)
ANSI_CHARS = {
    Cell.FREE: ".", Cell.WALL: "#", Cell.GREEN: "G", Cell.RED: "R",
    Cell.GOAL: "_", Cell.OBJECT: "o", Cell.COLLECTED: "x",
}
AGENT_CHARS = (">", "v", "<", "^")


@lru_cache(maxsize=16)
def agent_triangle(tile: int, direction: int) -> np.ndarray:
    """bool ``[tile, tile]`` mask of a triangle pointing in ``direction`` (0 east ... 3 north)."""
    centres = (np.arange(tile) + 0.5) / tile
    y, x = np.meshgrid(centres, centres, indexing="ij")
    # Triangle pointing east: apex at (0.5, 0.88), base from (0.14, 0.16) to (0.86, 0.16).
    upper = y >= 0.14 + (x - 0.16) * (0.5 - 0.14) / 0.72
    lower = y <= 0.86 - (x - 0.16) * (0.86 - 0.5) / 0.72
    mask = upper & lower & (x >= 0.16)
    return np.rot90(mask, k=-direction).copy()


def tile_image(colors: np.ndarray, tile: int, line: bool = True) -> np.ndarray:
    """Upscale ``[H, W, 3]`` cell colours to ``[H*tile, W*tile, 3]`` pixels, with grid lines."""
    image = np.repeat(np.repeat(colors, tile, axis=0), tile, axis=1)
    if line:
        image[::tile, :] = GRID_LINE_COLOR
        image[:, ::tile] = GRID_LINE_COLOR
    return image


def observation_colors(obs: np.ndarray, channel_colors: np.ndarray, empty_color: np.ndarray) -> np.ndarray:
    """Colour ``[W, L, 3]`` of an observation ``[L, W, C]``: one row per lateral ray, depth left to right."""
    hot = obs.any(axis=-1)
    colors = np.where(hot[..., None], channel_colors[obs.argmax(axis=-1)], empty_color)
    return colors.transpose(1, 0, 2).astype(np.uint8)


def draw_frame(
    grid: np.ndarray,
    agent_pos: tuple[int, int],
    agent_dir: int,
    beam_cells: np.ndarray,
    obs: np.ndarray,
    channel_colors: np.ndarray,
    empty_color: np.ndarray,
    tile: int = 24,
    strip_tile: int = 16,
) -> np.ndarray:
    """Top-down RGB frame with the agent, its beam highlighted, and its observation below.

    Args:
        grid: int ``[H, W]`` of :class:`Cell` codes.
        agent_pos, agent_dir: the agent's pose.
        beam_cells: flat indices ``row * W + col`` of the grid cells the beam sees.
        obs: the agent's current observation ``[L, Wb, C]``.
        channel_colors: uint8 ``[C, 3]`` colour of each observation channel.
        empty_color: colour of an all-zero observation cell.

    Returns:
        uint8 ``[height, width, 3]``.
    """
    height, width = grid.shape
    colors = CELL_COLORS[grid].astype(np.float32)
    flat = colors.reshape(-1, 3)
    # Seen free cells get a yellow tint; every seen cell a yellow frame (colours stay readable).
    tint = beam_cells[np.isin(grid.reshape(-1)[beam_cells], (Cell.FREE, Cell.GOAL))]
    flat[tint] = 0.5 * flat[tint] + 0.5 * BEAM_COLOR
    board = tile_image(colors.astype(np.uint8), tile)
    border = max(2, tile // 10)
    for cell in beam_cells.tolist():
        r, c = divmod(cell, width)
        block = board[r * tile + 1:(r + 1) * tile, c * tile + 1:(c + 1) * tile]
        frame_mask = np.ones(block.shape[:2], dtype=bool)
        frame_mask[border:-border, border:-border] = False
        block[frame_mask] = BEAM_COLOR.astype(np.uint8)
    row, col = agent_pos
    block = board[row * tile:(row + 1) * tile, col * tile:(col + 1) * tile]
    block[agent_triangle(tile, agent_dir)] = AGENT_COLOR

    strip = tile_image(observation_colors(obs, channel_colors, empty_color), strip_tile)
    gap = strip_tile // 2
    frame_w = max(board.shape[1], strip.shape[1])
    frame = np.empty((board.shape[0] + gap + strip.shape[0], frame_w, 3), dtype=np.uint8)
    frame[:] = BACKGROUND
    left = (frame_w - board.shape[1]) // 2
    frame[: board.shape[0], left:left + board.shape[1]] = board
    left = (frame_w - strip.shape[1]) // 2
    frame[board.shape[0] + gap:, left:left + strip.shape[1]] = strip
    return frame


def ansi_frame(grid: np.ndarray, agent_pos: tuple[int, int], agent_dir: int) -> str:
    """The grid as text, one character a cell, the agent as an arrow."""
    rows = [[ANSI_CHARS[Cell(code)] for code in line] for line in grid.tolist()]
    rows[agent_pos[0]][agent_pos[1]] = AGENT_CHARS[agent_dir]
    return "\n".join("".join(line) for line in rows) + "\n"


def import_pygame():
    """Import pygame, or explain how to install it."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(
            'pygame is not installed; it is needed for render_mode="human" and keyboard play. '
            'Install it with: pip install "memory-envs-ald[human]" (or pip install pygame)'
        ) from exc
    return pygame


class PygameWindow:
    """A window that shows RGB frames at a fixed rate; opened on the first frame."""

    def __init__(self, title: str, fps: int):
        self.title = title
        self.fps = fps
        self._pygame = None
        self._screen = None
        self._clock = None

    def show(self, frame: np.ndarray, caption: str | None = None) -> None:
        """Draw ``frame`` (uint8 ``[H, W, 3]``) and wait to keep ``fps``."""
        pygame = self._pygame or import_pygame()
        if self._screen is None:
            self._pygame = pygame
            pygame.display.init()  # the display only: pygame.init() would open an audio device too
            self._screen = pygame.display.set_mode((frame.shape[1], frame.shape[0]))
            self._clock = pygame.time.Clock()
        pygame.display.set_caption(caption or self.title)
        surface = pygame.surfarray.make_surface(frame.transpose(1, 0, 2))
        if surface.get_size() != self._screen.get_size():
            self._screen = pygame.display.set_mode(surface.get_size())
        self._screen.blit(surface, (0, 0))
        pygame.event.pump()
        pygame.display.flip()
        self._clock.tick(self.fps)

    def close(self) -> None:
        if self._screen is not None:
            self._pygame.display.quit()
            self._screen = None
