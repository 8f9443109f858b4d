"""Benchmarks of the agents' building blocks.

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
import os
import time
from dataclasses import asdict, dataclass
from typing import Callable, List, Optional, Sequence

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


# -- python -m agents.bench system ------------------------------------------------------------
SYSTEM_ENV = "MemoryEnvs/IMaze-9x9-v0"
SYSTEM_AGENTS = ("ald", "lstm", "gtrxl", "asymm_ac")
SYSTEM_KEYS = ("learner_waiting_pct", "actor_sps", "env_sps", "learner_sps", "distill_sps", "dprl")
SINGLE_ENV_ACTORS = 8
"""Actor processes of ``--single-env-actors`` when the preset steps several envs per actor."""
WARMUP_FRACTION = 0.2


@dataclass
class SystemBench:
    """One agent's row of the system table (paper Fig. 1 right); rates averaged after warm-up."""

    agent: str
    learner_waiting_pct: Optional[float]
    actor_sps: Optional[float]
    """Env steps/s of one actor."""
    env_sps: Optional[float]
    """Env steps/s of all actors."""
    learner_sps: Optional[float]
    distill_sps: Optional[float]
    """None for the baselines (no distillation)."""
    dprl: Optional[float]
    """Distill agent steps per learner agent step (mean distill SPS / mean learner SPS; ald only)."""
    rows: int
    """Metric rows averaged (after warm-up)."""
    env_steps: int
    learner_steps: int
    num_actors: int
    envs_per_actor: int
    batch_size: int
    exit_code: Optional[int]
    load_avg: float
    """1-minute load average when the agent started (the machine may be shared)."""


def system_options(preset: str, single_env_actors: bool, num_actors: Optional[int]) -> dict:
    """Actors, envs per actor and batch size for a run of ``preset``. ``single_env_actors`` is the
    paper's latency-constrained setting: one env per actor, the preset's actors if it already has
    single-env actors (paper: 30) or else SINGLE_ENV_ACTORS. The batch is clipped to the streams
    (a batch holds each stream once)."""
    from agents.runtime.config import PRESETS

    base = PRESETS[preset]()
    envs = 1 if single_env_actors else base.get("envs_per_actor", 16)
    actors = num_actors or base.get("num_actors", 2)
    if single_env_actors and num_actors is None and base.get("envs_per_actor", 16) != 1:
        actors = SINGLE_ENV_ACTORS
    batch = max(envs, min(base.get("batch_size", 32), actors * envs) // envs * envs)
    return {"num_actors": actors, "envs_per_actor": envs, "batch_size": batch}


def stop_process_group(process, timeout: float) -> None:
    """SIGINT the run's supervisor (a clean shutdown with a final checkpoint), wait up to
    ``timeout`` s, then SIGKILL its whole process group (children included)."""
    import signal
    import subprocess

    try:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"  the run did not stop {timeout:.0f} s after SIGINT: killing it", flush=True)
    finally:  # also after a second Ctrl-C of the bench itself
        try:
            os.killpg(process.pid, signal.SIGKILL)  # anything left in the group (nothing after a clean exit)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()


def read_rows(path: str) -> list:
    """The complete rows of a metrics.jsonl (a run may be writing its last line)."""
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.endswith("\n"):
                    rows.append(json.loads(line))
    return rows


def run_system_agent(agent: str, args: argparse.Namespace, runs_dir: str) -> tuple:
    """Run ``agent`` with the parallel runner until ``args.seconds`` after its first env steps
    (process start-up is not measured; at most ``args.startup_timeout`` s for it);
    ``(metric rows, {num_actors, envs_per_actor, batch_size}, exit code, log path)``."""
    import shlex
    import subprocess
    import sys

    options = system_options(args.preset, args.single_env_actors, args.num_actors)
    cmd = [sys.executable, "-m", f"agents.{agent}", "--preset", args.preset, "--runner", "parallel",
           "--env-id", SYSTEM_ENV, "--total-env-steps", str(10**12), "--runs-dir", runs_dir, "--name", agent,
           "--log-seconds", str(args.log_seconds), "--no-progress", "--device", args.device]
    for key, value in options.items():
        cmd += ["--" + key.replace("_", "-"), str(value)]
    cmd += shlex.split(args.extra_args)  # last: argparse lets a later option win
    log_path = os.path.join(runs_dir, f"{agent}.log")
    metrics = os.path.join(runs_dir, agent, "metrics.jsonl")
    with open(log_path, "w") as log:
        # A new session: the run's processes get no Ctrl-C from our terminal; we signal them ourselves.
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + args.startup_timeout
            started = False
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.25)
                if not started and any(r["env_steps"] > 0 for r in read_rows(metrics)):
                    started, deadline = True, time.monotonic() + args.seconds
            if not started:
                print(f"  {agent}: no env steps within {args.startup_timeout:.0f} s of starting", flush=True)
        finally:
            stop_process_group(process, args.stop_timeout)
    config_path = os.path.join(runs_dir, agent, "config.json")
    if os.path.exists(config_path):  # the settings the run really used (--extra-args may change them)
        with open(config_path) as f:
            config = json.load(f)
        options = {key: config[key] for key in options}
    return read_rows(metrics), options, process.returncode, log_path


def measured_rows(rows: Sequence[dict]) -> list:
    """The rows to average: not the last (written on shutdown, its window includes the shutdown),
    none before the first env steps nor the first with env steps (its window includes the
    start-up), and none in the first WARMUP_FRACTION of the remaining time; at least the last."""
    periodic = list(rows[:-1])
    first = next((i for i, r in enumerate(periodic) if r["env_steps"] > 0), None)
    if first is None or first + 1 >= len(periodic):
        return []
    t0, measured = periodic[first]["wall_clock_s"], periodic[first + 1:]
    warmup = t0 + WARMUP_FRACTION * (measured[-1]["wall_clock_s"] - t0)
    return [r for r in measured if r["wall_clock_s"] > warmup] or measured[-1:]


def summarise_rows(agent: str, rows: Sequence[dict], options: dict, exit_code: Optional[int],
                   load_avg: float) -> SystemBench:
    """Rates averaged over :func:`measured_rows`; None where nothing was measured."""
    kept = measured_rows(rows)

    def mean(key: str) -> Optional[float]:
        values = [r[key] for r in kept if r.get(key) is not None]
        return sum(values) / len(values) if values else None

    averages = {key: mean(key) for key in SYSTEM_KEYS}
    if agent == "ald":
        learner, distill = averages["learner_sps"], averages["distill_sps"]
        averages["dprl"] = distill / learner if learner and distill is not None else None
    else:
        averages["distill_sps"] = averages["dprl"] = None
    last = rows[-1] if rows else {}
    return SystemBench(agent=agent, **averages, rows=len(kept), env_steps=int(last.get("env_steps", 0)),
                       learner_steps=int(last.get("learner_steps", 0)), **options, exit_code=exit_code,
                       load_avg=load_avg)


def format_system_table(rows: Sequence[SystemBench], args: argparse.Namespace) -> str:
    def num(value: Optional[float], spec: str) -> str:
        return "-" if value is None else format(value, spec)

    header = (f"{'agent':<9} {'learner waiting %':>17} {'actor SPS':>10} {'env SPS':>9} {'learner SPS':>11} "
              f"{'distill SPS':>11} {'DpRL':>5} {'rows':>4}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.agent:<9} {num(r.learner_waiting_pct, '.1f'):>17} {num(r.actor_sps, ',.0f'):>10} "
                     f"{num(r.env_sps, ',.0f'):>9} {num(r.learner_sps, ',.0f'):>11} {num(r.distill_sps, ',.0f'):>11} "
                     f"{num(r.dprl, '.2f'):>5} {r.rows:>4}")
    if rows:
        r = rows[0]
        loads = ", ".join(f"{x.load_avg:.1f}" for x in rows)
        lines.append(f"{SYSTEM_ENV}, parallel runner, preset {args.preset}: {r.num_actors} actors x "
                     f"{r.envs_per_actor} envs, batch {r.batch_size}, {args.seconds:.0f} s per agent after "
                     f"start-up (first {WARMUP_FRACTION:.0%} skipped), {os.cpu_count()} cores, load at start {loads}"
                     + (f"; extra args: {args.extra_args}" if args.extra_args else ""))
        lines.append("SPS = agent (env) steps per second; DpRL = distill steps per learner step")
    return "\n".join(lines)


def cmd_system(args: argparse.Namespace) -> int:
    import sys
    import tempfile

    runs_dir = args.runs_dir or tempfile.mkdtemp(prefix="bench-system-")
    os.makedirs(runs_dir, exist_ok=True)
    results: List[SystemBench] = []
    failed = False
    try:
        for agent in args.agents:
            load_avg = os.getloadavg()[0]
            if not args.json:
                print(f"  running {agent} for {args.seconds:.0f} s (load {load_avg:.1f})", flush=True)
            rows, options, code, log_path = run_system_agent(agent, args, runs_dir)
            if code not in (0, 130) or not measured_rows(rows):
                failed = True
                with open(log_path) as f:
                    tail = f.read()[-3000:]
                print(f"warning: {agent} exited with code {code} after writing {len(rows)} metric rows; "
                      f"its output:\n{tail}", file=sys.stderr)
            results.append(summarise_rows(agent, rows, options, code, load_avg))
    finally:
        if not args.runs_dir:
            import shutil

            shutil.rmtree(runs_dir, ignore_errors=True)
    print(json.dumps([asdict(r) for r in results], indent=2) if args.json else format_system_table(results, args))
    return 1 if failed else 0


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m agents.bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    models = sub.add_parser("models", help="acting latency and learner throughput per model")
    models.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    models.add_argument(
        "--seconds", type=positive_float, default=4.0, help="time per model, split between acting and learner"
    )
    models.add_argument(
        "--threads", type=positive_int, default=os.cpu_count() or 1, help="learner threads (default: all cores)"
    )
    models.add_argument("--models", nargs="+", choices=[n for n, _ in BENCH_MODELS], help="only these models")
    models.set_defaults(func=cmd_models)
    system = sub.add_parser("system", help="throughput of whole agents (parallel runner) on I-Maze 9x9, "
                                           "like the paper's Fig. 1 right")
    system.add_argument("--seconds", type=positive_float, default=60.0,
                        help="wall-clock per agent, from its first env steps (start-up is not measured)")
    system.add_argument("--startup-timeout", type=positive_float, default=120.0,
                        help="seconds a run may take to make its first env steps")
    system.add_argument("--agents", nargs="+", choices=SYSTEM_AGENTS, default=list(SYSTEM_AGENTS), help="agents to run")
    system.add_argument("--preset", choices=("default", "paper"), default="default", help="the runs' preset")
    system.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="learner-side device")
    system.add_argument("--single-env-actors", action="store_true",
                        help=f"one env per actor (the paper's latency-constrained setting): the preset's actors if "
                             f"already single-env, else {SINGLE_ENV_ACTORS}; batch clipped to the actors")
    system.add_argument("--num-actors", type=positive_int, default=None, help="actor processes (default: by preset)")
    system.add_argument("--log-seconds", type=positive_float, default=5.0, help="seconds between metric rows")
    system.add_argument("--stop-timeout", type=positive_float, default=60.0,
                        help="seconds to wait for a clean shutdown after SIGINT before SIGKILL")
    system.add_argument("--extra-args", default="", help="more options for every run (after ours, so they win), e.g. "
                             "--extra-args=\"--envs-per-actor 4 --batch-size 8\"")
    system.add_argument("--runs-dir", default="", help="keep the runs here (default: a temp dir, removed)")
    system.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    system.set_defaults(func=cmd_system)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
