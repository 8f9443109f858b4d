"""What one unit of work of each role costs: ``python -m agents.bench roles [--agents ald gtrxl]``.

The roles are built exactly as the drivers build them (the serial driver's, from
:mod:`agents.runtime.assembly`) and fed real trajectories of the agent's env; each role's unit of
work is then timed on its own, in this one process, with ``--threads`` torch threads (1 is what
each role's process uses by default): an actor's rollout (``envs_per_actor`` envs x
``unroll_length`` steps), a learner runner pass over one batch, a learner step, a distill step.
The median after a warm-up is reported, and the CPU time all roles need per learner step (the
rollouts of one batch, one runner pass, one learner step, DpRL distill steps). The parallel driver
overlaps the roles on the cores; ``python -m agents.bench system`` gives each one's share of them.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import torch

from agents.bench.table import cell

WARMUP_FRACTION = 0.25


@dataclass
class RoleBench:
    """Median milliseconds of one unit of work per role (None: the agent has no such role)."""

    agent: str
    rollout_ms: float
    """One actor's rollout: ``envs_per_actor`` envs x ``unroll_length`` steps."""
    runner_ms: Optional[float]
    learner_ms: float
    distill_ms: Optional[float]
    per_learner_step_ms: float
    """CPU time of all roles per learner step: the batch's rollouts, a runner pass, the learner
    step and ``distill_ratio`` distill steps (paced as the drivers pace them)."""
    learner_steps: int
    """Learner steps timed (the first WARMUP_FRACTION of them left out)."""
    threads: int
    envs_per_actor: int
    batch_size: int
    unroll_length: int


def after_warmup(times: Sequence[float]) -> list:
    return list(times[int(WARMUP_FRACTION * len(times)):])


def median_ms(times: Sequence[float]) -> Optional[float]:
    kept = after_warmup(times)
    return 1000 * statistics.median(kept) if kept else None


def bench_roles(agent: str, steps: int, threads: int, options: Sequence[str] = ()) -> RoleBench:
    """Time at least ``steps`` learner steps of ``agent`` (its default preset plus command-line
    ``options``) and the work of the other roles around them: the serial driver's rounds, with
    each role's unit of work timed where the driver calls it."""
    from agents.runtime.cli import resolve
    from agents.runtime.drivers.serial import SerialDriver

    config = resolve(agent, agent, ["--learner-threads", str(threads), "--no-progress", *options])
    times: dict[str, list] = {"rollout": [], "runner": [], "learner": [], "distill": []}

    def timing(role: str, work: Callable) -> Callable:
        def timed(*args):
            start = time.perf_counter()
            out = work(*args)
            times[role].append(time.perf_counter() - start)
            return out
        return timed

    with tempfile.TemporaryDirectory() as run_dir:
        driver = SerialDriver(config, run_dir)
        torch.set_num_threads(threads)
        for actor in driver.actors:
            actor.rollout = timing("rollout", actor.rollout)
        if driver.feed.runner is not None:
            driver.feed.runner.process = timing("runner", driver.feed.runner.process)
        driver.learner.step = timing("learner", driver.learner.step)
        for distiller in driver.distillers:
            distiller.step = timing("distill", distiller.step)
        try:
            while driver.learner.steps < steps:
                driver.round()
        finally:
            driver.close()
    ms = {role: median_ms(t) for role, t in times.items()}
    per_step = config.batch_size // config.envs_per_actor * ms["rollout"] + (ms["runner"] or 0) + ms["learner"]
    if ms["distill"] is not None:
        per_step += config.distill_ratio * ms["distill"]
    return RoleBench(agent, ms["rollout"], ms["runner"], ms["learner"], ms["distill"], per_step,
                     len(after_warmup(times["learner"])), threads, config.envs_per_actor, config.batch_size,
                     config.unroll_length)


def format_roles_table(rows: Sequence[RoleBench]) -> str:
    def ms(value: Optional[float]) -> str:
        return cell(value, ".1f")

    header = (f"{'agent':<9} {'rollout ms':>10} {'runner ms':>9} {'learner ms':>10} {'distill ms':>10} "
              f"{'all roles ms / learner step':>27} {'steps':>5}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.agent:<9} {ms(r.rollout_ms):>10} {ms(r.runner_ms):>9} {ms(r.learner_ms):>10} "
                     f"{ms(r.distill_ms):>10} {ms(r.per_learner_step_ms):>27} {r.learner_steps:>5}")
    if rows:
        r = rows[0]
        lines.append(f"medians, {r.threads} torch thread(s), one process; rollout: one actor's {r.envs_per_actor} "
                     f"envs x {r.unroll_length} steps; batch {r.batch_size} x {r.unroll_length}")
    return "\n".join(lines)


def cmd_roles(args: argparse.Namespace) -> int:
    import json
    import shlex
    from dataclasses import asdict

    rows: List[RoleBench] = []
    for agent in args.agents:
        if not args.json:
            print(f"  timing {agent}'s roles over {args.steps} learner steps", flush=True)
        rows.append(bench_roles(agent, args.steps, args.threads, shlex.split(args.extra_args)))
    print(json.dumps([asdict(r) for r in rows], indent=2) if args.json else format_roles_table(rows))
    return 0
