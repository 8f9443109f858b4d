"""Env throughput: steps/s per id for the single env, SyncVectorEnv(16) and the batched env.

    python -m memory_envs.bench [--ids ID ...] [--seconds 1.0] [--num-envs 1 64 1024] [--json]

Random actions are drawn before timing. The single env is made with ``gymnasium.make`` (its
default wrappers included) and reset when an episode ends; vector envs autoreset. When
``minigrid`` is installed (``pip install minigrid --no-deps``: its pygame-ce would replace
pygame), ``MiniGrid-MemoryS7-v0`` is measured in the same run as the yardstick.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import gymnasium as gym
import numpy as np

import memory_envs

MINIGRID_ID = "MiniGrid-MemoryS7-v0"
ACTION_BLOCK = 4096


def time_single(env_id: str, seconds: float) -> float:
    env = gym.make(env_id)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(env.action_space.n, size=ACTION_BLOCK).tolist()
    step, reset = env.step, env.reset
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for action in actions:
            _, _, terminated, truncated, _ = step(action)
            if terminated or truncated:
                reset()
        steps += len(actions)
    return steps / (time.perf_counter() - start)


def time_vector(envs: gym.vector.VectorEnv, seconds: float) -> float:
    envs.reset(seed=0)
    blocks = max(1, ACTION_BLOCK // envs.num_envs)
    actions = np.random.default_rng(0).integers(envs.single_action_space.n, size=(blocks, envs.num_envs))
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for batch in actions:
            envs.step(batch)
        steps += actions.size
    rate = steps / (time.perf_counter() - start)
    envs.close()
    return rate


def minigrid_rate(seconds: float) -> float | None:
    try:
        import minigrid  # noqa: F401
    except ImportError:
        return None
    return time_single(MINIGRID_ID, seconds)


def run(ids: list[str], seconds: float, sizes: list[int]) -> dict:
    """Measure every configuration; returns the JSON-ready report."""
    results = []
    reference = minigrid_rate(seconds)
    for env_id in ids:
        rows = [("single", 1, time_single(env_id, seconds)),
                ("sync", 16, time_vector(gym.make_vec(env_id, 16, vectorization_mode="sync"), seconds))]
        for n in sizes:
            envs = gym.make_vec(env_id, n, vectorization_mode="vector_entry_point")
            rows.append(("batched", n, time_vector(envs, seconds)))
        for mode, n, rate in rows:
            results.append({
                "env_id": env_id, "mode": mode, "num_envs": n, "steps_per_s": rate,
                "x_minigrid": rate / reference if reference else None,
            })
    return {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "numpy": np.__version__, "gymnasium": gym.__version__},
        "minigrid": {"env_id": MINIGRID_ID, "steps_per_s": reference},
        "results": results,
    }


def format_table(report: dict) -> str:
    reference = report["minigrid"]["steps_per_s"]
    lines = [f"{'env id':<30} {'mode':<8} {'envs':>5} {'steps/s':>13} {'x MiniGrid':>11}"]
    if reference:
        lines.append(f"{MINIGRID_ID:<30} {'single':<8} {1:>5} {reference:>13,.0f} {1.0:>11.1f}")
    else:
        lines.append(f"({MINIGRID_ID} not installed: pip install minigrid --no-deps)")
    for row in report["results"]:
        ratio = f"{row['x_minigrid']:.1f}" if row["x_minigrid"] else "-"
        lines.append(f"{row['env_id']:<30} {row['mode']:<8} {row['num_envs']:>5} {row['steps_per_s']:>13,.0f} {ratio:>11}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m memory_envs.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ids", nargs="+", default=list(memory_envs.ENV_IDS), help="env ids to measure")
    parser.add_argument("--seconds", type=float, default=1.0, help="wall-clock per measurement")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 64, 1024], help="batched env sizes")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    unknown = [env_id for env_id in args.ids if env_id not in gym.registry]
    if unknown:
        parser.error(f"unknown env ids: {unknown}; registered: {list(memory_envs.ENV_IDS)}")
    if args.seconds <= 0 or min(args.num_envs) < 1:
        parser.error("--seconds must be > 0 and --num-envs >= 1")
    report = run(args.ids, args.seconds, args.num_envs)
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
