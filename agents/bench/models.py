"""Benchmark of the models: acting latency and learner throughput.

``python -m agents.bench models [--json] [--seconds S]``: per model, the batch-1 acting latency
of one single-threaded CPU actor, and the learner's throughput.

* Acting runs the model the way a CPU actor does: numpy observations in, the numpy fast path
  for LSTMs (:class:`~agents.models.NumpyLSTMActor`; for ``asymm-*`` the policy part only, as
  its actors never run the GTrXL), the key/value-cached ``step`` under ``inference_mode`` for
  the GTrXL (with the numpy -> tensor conversion), ``torch.set_num_threads(1)``.
* Learner: ``forward_sequence`` + loss + backward + Adam on a 64 x 20 batch with the memory
  carried between updates (so the GTrXL attends over its full memory of 64), using every core.

Models use the spaces of the env they are meant for: I-Maze 9x9 for ``lstm-32``, ``gtrxl-2``,
``asymm-32-2``; Meta-Fetch for ``lstm-128``, ``gtrxl-4``. Each measurement is split into 5
rounds and the fastest round is reported (other processes on a shared machine only slow
rounds down).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import asdict, dataclass
from typing import Callable, List, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch.nn import functional as F

from agents.models import GTrXLActorCritic, NumpyLSTMActor, build

IMAZE = "memory_envs:MemoryEnvs/IMaze-9x9-v0"
METAFETCH = "memory_envs:MemoryEnvs/MetaFetch-v0"
BENCH_MODELS = [
    ("lstm-32", IMAZE),
    ("lstm-128", METAFETCH),
    ("gtrxl-2", IMAZE),
    ("gtrxl-4", METAFETCH),
    ("asymm-32-2", IMAZE),
]
ROUNDS = 5
LEARNER_T, LEARNER_B = 20, 64


@dataclass
class ModelBench:
    model: str
    env_id: str
    acting_path: str
    acting_us_per_step: float
    acting_steps_per_s: float
    acting_threads: int
    learner_steps_per_s: float
    learner_ms_per_update: float
    threads: int
    """Threads of the learner measurement."""


def best_round(fn: Callable[[], None], seconds: float, warmup: int) -> float:
    """Seconds per call of ``fn``: the fastest of up to ROUNDS rounds of about ``seconds / ROUNDS``
    (fewer rounds when single calls are slow, so a loaded machine cannot stall the bench)."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    fn()
    best = time.perf_counter() - start
    calls = max(1, int(seconds / ROUNDS / max(best, 1e-9)))
    deadline = time.perf_counter() + seconds
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
        if time.perf_counter() > deadline:
            break
    return best


def spaces(env_id: str):
    env = gym.make(env_id)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def acting_step(model, obs_space: gym.Space):
    """``(path description, a zero-argument callable doing one batch-1 actor step)``."""
    rng = np.random.default_rng(0)
    pool = rng.integers(0, 2, (64, 1, *obs_space.shape), dtype=np.uint8)
    done = np.zeros(1, dtype=bool)
    counter = itertools.count()
    if isinstance(model, GTrXLActorCritic):
        state = model.initial_state(1)

        def step():
            nonlocal state
            obs = torch.from_numpy(pool[next(counter) % 64])
            _, _, state = model.step(obs, state, torch.from_numpy(done))

        return "torch step, KV cache", step
    actor = NumpyLSTMActor.from_torch(model)
    np_state = actor.initial_state(1)

    def numpy_step():
        nonlocal np_state
        _, _, np_state = actor.step(pool[next(counter) % 64], np_state, done)

    return "numpy LSTM" + (" (policy only)" if hasattr(model, "policy") else ""), numpy_step


def learner_update(model, obs_space: gym.Space, num_actions: int):
    """A zero-argument callable doing one learner update on a random 64 x 20 batch."""
    g = torch.Generator().manual_seed(0)
    obs = torch.randint(0, 2, (LEARNER_T, LEARNER_B, *obs_space.shape), dtype=torch.uint8, generator=g)
    done = torch.rand(LEARNER_T, LEARNER_B, generator=g) < 0.01
    actions = torch.randint(0, num_actions, (LEARNER_T, LEARNER_B), generator=g)
    targets = torch.randn(LEARNER_T, LEARNER_B, generator=g)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    state = model.initial_state(LEARNER_B)

    def update():
        nonlocal state
        logits, values, state = model.forward_sequence(obs, state, done)
        loss = F.cross_entropy(logits.flatten(0, 1), actions.flatten()) + 0.5 * (values - targets).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return update


def bench_model(name: str, env_id: str, seconds: float, threads: int) -> ModelBench:
    obs_space, act_space = spaces(env_id)
    torch.manual_seed(0)
    model = build(name, obs_space, act_space)
    torch.set_num_threads(1)
    path, step = acting_step(model, obs_space)
    with torch.inference_mode():
        acting = best_round(step, seconds / 2, warmup=200)
    torch.set_num_threads(threads)
    learner = best_round(learner_update(model, obs_space, act_space.n), seconds / 2, warmup=3)
    return ModelBench(
        model=name,
        env_id=env_id.split(":")[-1],
        acting_path=path,
        acting_us_per_step=acting * 1e6,
        acting_steps_per_s=1.0 / acting,
        acting_threads=1,
        learner_steps_per_s=LEARNER_T * LEARNER_B / learner,
        learner_ms_per_update=learner * 1e3,
        threads=threads,
    )


def format_table(rows: Sequence[ModelBench]) -> str:
    header = (
        f"{'model':<11} {'env':<24} {'acting path':<27} {'act us/step':>11} {'act steps/s':>11} "
        f"{'learner steps/s':>15} {'ms/update':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.model:<11} {r.env_id:<24} {r.acting_path:<27} {r.acting_us_per_step:>11.1f} "
            f"{r.acting_steps_per_s:>11,.0f} {r.learner_steps_per_s:>15,.0f} {r.learner_ms_per_update:>9.1f}"
        )
    by_name = {r.model: r for r in rows}
    if "lstm-32" in by_name and "gtrxl-2" in by_name:
        ratio = by_name["lstm-32"].acting_steps_per_s / by_name["gtrxl-2"].acting_steps_per_s
        lines.append(f"acting speed ratio lstm-32 / gtrxl-2: {ratio:.1f}x")
    lines.append(f"acting: batch 1, 1 thread; learner: {LEARNER_B} x {LEARNER_T}, Adam, {rows[0].threads} threads")
    return "\n".join(lines)


def cmd_models(args: argparse.Namespace) -> int:
    rows: List[ModelBench] = []
    for name, env_id in BENCH_MODELS:
        if args.models and name not in args.models:
            continue
        rows.append(bench_model(name, env_id, args.seconds, args.threads))
        if not args.json:
            print(f"  measured {name}", flush=True)
    print(json.dumps([asdict(r) for r in rows], indent=2) if args.json else format_table(rows))
    return 0
