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
from memory_envs.rendering import import_pygame

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
        save_png(screenshot(env_id, args.seed), path)
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
