"""Tiny run configurations for the runtime tests."""

from __future__ import annotations

import json

from agents.runtime.config import RunConfig

TINY_GTRXL = json.dumps({"d_model": 32, "num_heads": 2, "head_dim": 16, "memory_length": 8})
SMALL_MAZE = json.dumps({"size": 5, "shaping_reward": 0.01})


def tiny_config(**overrides) -> RunConfig:
    values = dict(env_id="MemoryEnvs/IMaze-9x9-v0", env_kwargs=SMALL_MAZE, max_episode_steps=30, num_actors=2,
                  envs_per_actor=4, batch_size=8, num_distill=2, unroll_length=10, learner_overrides=TINY_GTRXL,
                  actor_overrides=json.dumps({"hidden_size": 16}), total_env_steps=4000, log_seconds=3600,
                  checkpoint_minutes=60, progress=False, runner="serial")
    values.update(overrides)
    return RunConfig(**values)


def tiny_cli_args(runs_dir, name, **overrides) -> list[str]:
    """Command-line options for :func:`tiny_config`'s settings."""
    config = tiny_config(**overrides)
    args = []
    keys = ("env_kwargs", "max_episode_steps", "num_actors", "envs_per_actor", "batch_size", "num_distill",
            "unroll_length", "learner_overrides", "actor_overrides", "total_env_steps", "log_seconds",
            "checkpoint_minutes", "runner", *overrides)
    for key in dict.fromkeys(keys):
        args += ["--" + key.replace("_", "-"), str(getattr(config, key))]
    return args + ["--runs-dir", str(runs_dir), "--name", name, "--no-progress"]


LEARNING_BUDGETS = {"ald": 700_000, "lstm": 700_000, "gtrxl": 200_000, "asymm_ac": 800_000}
"""Env steps of each agent's learning check (see tests/agents/test_runtime_serial.py)."""


def learning_run(agent: str, total_env_steps: int, runs_dir: str) -> list:
    """A serial learning run on I-Maze 5x5 (horizon 100, shaping); the success rate of each metrics row.

    Runs the serial driver directly (no signal handlers: a pool can always terminate it)."""
    import os

    from agents.runtime.drivers.serial import run_serial
    from agents.runtime.run_directory import open_run

    config = tiny_config(agent=agent, runs_dir=runs_dir, name=agent, total_env_steps=total_env_steps, num_actors=2,
                         envs_per_actor=8, batch_size=16, unroll_length=20, max_episode_steps=100, learning_rate=1e-3,
                         popart_decay=3e-4, replay_capacity=256,  # (the settings the bars were chosen with)
                         num_distill=1, actor_overrides="", log_seconds=5,
                         learner_overrides=json.dumps({"d_model": 64, "num_heads": 4, "head_dim": 16,
                                                       "memory_length": 32}))
    rows = []
    with open_run(config) as run:
        run_serial(config, run, rows.append)
    assert os.path.isdir(os.path.join(runs_dir, agent, "checkpoints"))
    return [row["success_rate"] for row in rows]
