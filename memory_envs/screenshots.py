"""Write a PNG of every registered env, drawn by ``render()``, for the README.

    python -m memory_envs.screenshots [--out assets] [--seed 3]

Needs pygame (``pip install "memory-envs-ald[human]"``) to encode the PNGs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np

import memory_envs
from memory_envs.grid import Cell
from memory_envs.rendering import AGENT_COLOR, BEAM_COLOR, CELL_COLORS, import_pygame

LEGEND_W = 280


def legend_entries(env_id: str) -> list[tuple[tuple[int, int, int], str]]:
    """``(colour, label)`` of what a frame of ``env_id`` shows."""
    common = [(tuple(AGENT_COLOR), "agent (points its way)"), (tuple(BEAM_COLOR.astype(int)), "beam: cells it sees"),
              (tuple(CELL_COLORS[Cell.WALL]), "wall")]
    if "IMaze" in env_id:
        return common + [(tuple(CELL_COLORS[Cell.GREEN]), "indicator green: goal bottom-left"),
                         (tuple(CELL_COLORS[Cell.RED]), "indicator red: goal bottom-right"),
                         (tuple(CELL_COLORS[Cell.GOAL]), "goals (look free to the agent)")]
    return common + [(tuple(CELL_COLORS[Cell.OBJECT]), "object to fetch"),
                     (tuple(CELL_COLORS[Cell.COLLECTED]), "object fetched")]


def with_legend(frame: np.ndarray, env_id: str) -> np.ndarray:
    """The frame with a legend panel on its right (colour swatches, and the observation strip)."""
    pygame = import_pygame()
    pygame.font.init()
    font = pygame.font.Font(None, 20)
    height = max(frame.shape[0], 30 + 24 * 8)
    panel = pygame.Surface((frame.shape[1] + LEGEND_W, height))
    panel.fill((255, 255, 255))
    panel.blit(pygame.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2))), (0, 0))
    x, y = frame.shape[1] + 12, 12
    for colour, label in legend_entries(env_id):
        pygame.draw.rect(panel, [int(c) for c in colour], (x, y, 16, 16))
        pygame.draw.rect(panel, (90, 90, 90), (x, y, 16, 16), 1)
        panel.blit(font.render(label, True, (30, 30, 30)), (x + 24, y + 1))
        y += 24
    for line in ("strip below the map: the beam's", "observation, one row per ray,", "near to far, left to right"):
        panel.blit(font.render(line, True, (30, 30, 30)), (x, y + 6))
        y += 18
    return pygame.surfarray.array3d(panel).transpose(1, 0, 2)

def screenshot(env_id: str, seed: int) -> np.ndarray:
    """A frame a few steps into an episode: I-Maze with the indicator in view, Meta-Fetch with
    two objects in the beam (turning until they are)."""
    env = gym.make(env_id, render_mode="rgb_array")
    obs, _ = env.reset(seed=seed)
    if "IMaze" in env_id:
        for _ in range(5):
            env.step(0)
        return env.render()
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        if obs[..., 2:].any(axis=-1).sum() >= 2:
            break
        obs = env.step(int(rng.integers(3)))[0]
    return env.render()


def save_png(frame: np.ndarray, path: Path) -> None:
    pygame = import_pygame()
    pygame.image.save(pygame.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2))), str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m memory_envs.screenshots", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("assets"))
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for env_id in memory_envs.ENV_IDS:
        path = args.out / (env_id.split("/")[1].lower() + ".png")
        save_png(with_legend(screenshot(env_id, args.seed), env_id), path)
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
