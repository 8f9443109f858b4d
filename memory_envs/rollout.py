"""Random-agent rollouts of every registered env, with a summary table.

    python -m memory_envs.rollout [--episodes 200] [--seed 0]

A quick check that the suite works on a machine, and the baseline every agent must beat
(a random agent solves I-Maze only by luck). Uses the batched vector env.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import memory_envs


def random_rollout(env_id: str, episodes: int, seed: int, num_envs: int = 64) -> dict:
    """A uniform random policy for exactly ``episodes`` episodes; summary statistics.

    Env ``i`` runs a quota of episodes fixed before it starts (the episodes spread evenly), so
    short episodes are not over-represented as they would be by keeping the first N to end."""
    num_envs = min(num_envs, episodes)
    quota = np.full(num_envs, episodes // num_envs) + (np.arange(num_envs) < episodes % num_envs)
    done = np.zeros(num_envs, dtype=np.int64)
    envs = gym.make_vec(env_id, num_envs=num_envs, autoreset_mode="same_step")
    rng = np.random.default_rng(seed)
    envs.reset(seed=seed)
    returns, lengths, successes = [], [], []
    running_return = np.zeros(num_envs)
    running_length = np.zeros(num_envs, dtype=np.int64)
    steps, start = 0, time.perf_counter()
    while (done < quota).any():
        _, reward, terminated, truncated, info = envs.step(rng.integers(envs.single_action_space.n, size=num_envs))
        steps += num_envs
        running_return += reward
        running_length += 1
        for i in np.flatnonzero(terminated | truncated):
            if done[i] < quota[i]:
                returns.append(running_return[i])
                lengths.append(running_length[i])
                successes.append(bool(info["final_info"]["is_success"][i]))
                done[i] += 1
            running_return[i], running_length[i] = 0.0, 0
    elapsed = time.perf_counter() - start
    envs.close()
    return {"env_id": env_id, "episodes": len(returns), "mean_return": float(np.mean(returns)),
            "success_rate": float(np.mean(successes)), "mean_length": float(np.mean(lengths)),
            "steps_per_s": steps / elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m memory_envs.rollout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=200, help="episodes per env")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    print(f"{'env id':<30} {'episodes':>8} {'return':>8} {'success':>8} {'length':>7} {'steps/s':>11}")
    for env_id in memory_envs.ENV_IDS:
        s = random_rollout(env_id, args.episodes, args.seed)
        print(f"{env_id:<30} {s['episodes']:>8} {s['mean_return']:>8.3f} {s['success_rate']:>8.2f} "
              f"{s['mean_length']:>7.1f} {s['steps_per_s']:>11,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
