"""Benchmark of whole agents: ``python -m agents.bench system`` (the paper's Fig. 1 right).

Each agent runs under each ``--runner`` (parallel by default; ray: a local Ray instance) for a
fixed wall-clock on I-Maze 9x9 as a subprocess; its metrics rows give learner waiting %, actor
SPS, learner SPS, distill SPS and DpRL, and under Ray the per-trajectory fetch and in-flight times.
On Linux it also reads each role's CPU time (``/proc``, the processes of ``pids.json``) at the
start and the end of the measured window: the share of the cores each role used.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from typing import List, Optional, Sequence

from agents.bench.table import cell
from agents.runtime.config import AGENTS

SYSTEM_ENV = "MemoryEnvs/IMaze-9x9-v0"
SYSTEM_AGENTS = AGENTS
SYSTEM_KEYS = ("learner_waiting_pct", "actor_sps", "env_sps", "learner_sps", "distill_sps", "dprl",
               "trajectory_fetch_s", "trajectory_in_flight_s")
SINGLE_ENV_ACTORS = 8
"""Actor processes of ``--single-env-actors`` when the preset steps several envs per actor."""
WARMUP_FRACTION = 0.2


@dataclass
class SystemBench:
    """One agent's row of the system table (paper Fig. 1 right); rates averaged after warm-up."""

    agent: str
    runner: str
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
    trajectory_fetch_s: Optional[float]
    """Ray only: the driver's fetch and deserialisation of one trajectory."""
    trajectory_in_flight_s: Optional[float]
    """Ray only: from the end of a rollout on its worker to the learner side's transport."""
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
    cpu_pct: Optional[dict] = None
    """Per role process (``pids.json``'s names): % of one core it used over the measured window
    (Linux only; under Ray the actors are not listed)."""


def system_options(preset: str, single_env_actors: bool, num_actors: Optional[int]) -> dict:
    """Actors, envs per actor and batch size for a run of ``preset``. ``single_env_actors`` is the
    paper's latency-constrained setting: one env per actor, the preset's actors if it already has
    single-env actors (paper: 30) or else SINGLE_ENV_ACTORS. The batch keeps the preset's size
    (rounded to whole trajectories); it may hold several segments of a stream."""
    from agents.runtime.config import PRESETS

    base = PRESETS[preset]()
    envs = 1 if single_env_actors else base.get("envs_per_actor", 16)
    actors = num_actors or base.get("num_actors", 2)
    if single_env_actors and num_actors is None and base.get("envs_per_actor", 16) != 1:
        actors = SINGLE_ENV_ACTORS
    batch = max(envs, base.get("batch_size", 32) // envs * envs)
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


def role_cpu_seconds(run_dir: str) -> Optional[dict]:
    """CPU seconds (user + system) each role's process of the run has used so far, by its name in
    ``pids.json``; None without ``/proc`` or before the run wrote ``pids.json``."""
    path = os.path.join(run_dir, "pids.json")
    if not os.path.isdir("/proc") or not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            pids = json.load(f)
    except (OSError, ValueError):  # (being written)
        return None
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for role, pid in pids.items():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[role] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except (OSError, IndexError, ValueError, TypeError):  # gone, or not a pid
            continue
    return out


def cpu_percent(before: Optional[tuple], after: Optional[tuple]) -> Optional[dict]:
    """% of one core per role between two ``(time, role_cpu_seconds)`` samples."""
    if not before or not after or before[1] is None or after[1] is None or after[0] <= before[0]:
        return None
    elapsed = after[0] - before[0]
    return {role: round(100 * (after[1][role] - used) / elapsed, 1) for role, used in before[1].items()
            if role in after[1]}


def run_system_agent(agent: str, runner: str, args: argparse.Namespace, runs_dir: str) -> tuple:
    """Run ``agent`` under ``runner`` until ``args.seconds`` after its first env steps
    (process start-up is not measured; at most ``args.startup_timeout`` s for it);
    ``(metric rows, {num_actors, envs_per_actor, batch_size}, exit code, log path, cpu %)``; the
    CPU shares (:func:`cpu_percent`) are over the window after the warm-up."""
    import shlex
    import subprocess
    import sys

    options = system_options(args.preset, args.single_env_actors, args.num_actors)
    name = f"{agent}-{runner}"
    cmd = [sys.executable, "-m", f"agents.{agent}", "--preset", args.preset, "--runner", runner,
           "--env-id", SYSTEM_ENV, "--total-env-steps", str(10**12), "--runs-dir", runs_dir, "--name", name,
           "--log-seconds", str(args.log_seconds), "--no-progress", "--device", args.device,
           "--overwrite"]  # a fresh run each time (an earlier one is moved aside, never mixed in)
    for key, value in options.items():
        cmd += ["--" + key.replace("_", "-"), str(value)]
    cmd += shlex.split(args.extra_args)  # last: argparse lets a later option win
    log_path = os.path.join(runs_dir, f"{name}.log")
    metrics = os.path.join(runs_dir, name, "metrics.jsonl")
    with open(log_path, "w") as log:
        # A new session: the run's processes get no Ctrl-C from our terminal; we signal them ourselves.
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        run_dir = os.path.join(runs_dir, name)
        cpu_from = cpu_to = warm = None
        try:
            deadline = time.monotonic() + args.startup_timeout
            started = False
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.25)
                if not started and any(r["env_steps"] > 0 for r in read_rows(metrics)):
                    started, deadline = True, time.monotonic() + args.seconds
                    warm = time.monotonic() + WARMUP_FRACTION * args.seconds
                if started and cpu_from is None and time.monotonic() >= warm:
                    cpu_from = (time.monotonic(), role_cpu_seconds(run_dir))
            if not started:
                print(f"  {name}: no env steps within {args.startup_timeout:.0f} s of starting", flush=True)
            elif process.poll() is None:
                cpu_to = (time.monotonic(), role_cpu_seconds(run_dir))
        finally:
            stop_process_group(process, args.stop_timeout)
    config_path = os.path.join(runs_dir, name, "config.json")
    if os.path.exists(config_path):  # the settings the run really used (--extra-args may change them)
        with open(config_path) as f:
            config = json.load(f)
        options = {key: config[key] for key in options}
    return read_rows(metrics), options, process.returncode, log_path, cpu_percent(cpu_from, cpu_to)


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
                   load_avg: float, runner: str = "parallel", cpu_pct: Optional[dict] = None) -> SystemBench:
    """Rates averaged over :func:`measured_rows`; None where nothing was measured."""
    kept = measured_rows(rows)

    def mean(key: str) -> Optional[float]:
        values = [r[key] for r in kept if r.get(key) is not None]
        return sum(values) / len(values) if values else None

    averages = {key: mean(key) for key in SYSTEM_KEYS}
    from agents.runtime.config import RunConfig
    from agents.runtime.topology import topology_of

    if topology_of(RunConfig(agent=agent)).distills:
        learner, distill = averages["learner_sps"], averages["distill_sps"]
        averages["dprl"] = distill / learner if learner and distill is not None else None
    else:
        averages["distill_sps"] = averages["dprl"] = None
    last = rows[-1] if rows else {}
    return SystemBench(agent=agent, runner=runner, **averages, rows=len(kept),
                       env_steps=int(last.get("env_steps", 0)),
                       learner_steps=int(last.get("learner_steps", 0)), **options, exit_code=exit_code,
                       load_avg=load_avg, cpu_pct=cpu_pct)


def format_system_table(rows: Sequence[SystemBench], args: argparse.Namespace) -> str:
    def ms(value: Optional[float]) -> str:
        return cell(value, ".1f", scale=1000)

    header = (f"{'agent':<9} {'runner':<8} {'learner waiting %':>17} {'actor SPS':>10} {'env SPS':>9} "
              f"{'learner SPS':>11} {'distill SPS':>11} {'DpRL':>5} {'fetch ms':>8} {'in flight ms':>12} {'rows':>4}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.agent:<9} {r.runner:<8} {cell(r.learner_waiting_pct, '.1f'):>17} {cell(r.actor_sps, ',.0f'):>10} "
                     f"{cell(r.env_sps, ',.0f'):>9} {cell(r.learner_sps, ',.0f'):>11} {cell(r.distill_sps, ',.0f'):>11} "
                     f"{cell(r.dprl, '.2f'):>5} {ms(r.trajectory_fetch_s):>8} {ms(r.trajectory_in_flight_s):>12} "
                     f"{r.rows:>4}")
    for r in rows:
        if r.cpu_pct:
            shares = ", ".join(f"{role} {pct:.0f}" for role, pct in sorted(r.cpu_pct.items(), key=lambda kv: -kv[1]))
            lines.append(f"{r.agent} ({r.runner}) CPU, % of one core: {shares}; all {sum(r.cpu_pct.values()):.0f} "
                         f"of {100 * (os.cpu_count() or 1)}")
    ratios = runner_ratios(rows)
    if ratios:
        lines.append("ray / parallel env SPS: " + ", ".join(f"{agent} {ratio:.2f}x" for agent, ratio in ratios.items()))
    if rows:
        r = rows[0]
        loads = ", ".join(f"{x.load_avg:.1f}" for x in rows)
        lines.append(f"{SYSTEM_ENV}, preset {args.preset}: {r.num_actors} actors x "
                     f"{r.envs_per_actor} envs, batch {r.batch_size}, {args.seconds:.0f} s per run after "
                     f"start-up (first {WARMUP_FRACTION:.0%} skipped), {os.cpu_count()} cores, load at start {loads}"
                     + (f"; extra args: {args.extra_args}" if args.extra_args else ""))
        lines.append("SPS = agent (env) steps per second; DpRL = distill steps per learner step; fetch and in "
                     "flight: per trajectory, Ray only")
    return "\n".join(lines)


def runner_ratios(rows: Sequence[SystemBench]) -> dict:
    """Each agent's env SPS under Ray over its env SPS under the parallel driver (where both ran)."""
    sps = {(r.agent, r.runner): r.env_sps for r in rows}
    return {agent: sps[agent, "ray"] / sps[agent, "parallel"] for agent, runner in sps
            if runner == "ray" and sps.get((agent, "parallel")) and sps[agent, "ray"] is not None}


def cmd_system(args: argparse.Namespace) -> int:
    import sys
    import tempfile

    runs_dir = args.runs_dir or tempfile.mkdtemp(prefix="bench-system-")
    os.makedirs(runs_dir, exist_ok=True)
    results: List[SystemBench] = []
    failed = False
    try:
        for agent in args.agents:
            for runner in args.runners:
                load_avg = os.getloadavg()[0]
                if not args.json:
                    print(f"  running {agent} ({runner}) for {args.seconds:.0f} s (load {load_avg:.1f})", flush=True)
                rows, options, code, log_path, cpu_pct = run_system_agent(agent, runner, args, runs_dir)
                if code not in (0, 130) or not measured_rows(rows):
                    failed = True
                    with open(log_path) as f:
                        tail = f.read()[-3000:]
                    print(f"warning: {agent} ({runner}) exited with code {code} after writing {len(rows)} metric "
                          f"rows; its output:\n{tail}", file=sys.stderr)
                results.append(summarise_rows(agent, rows, options, code, load_avg, runner, cpu_pct))
    finally:
        if not args.runs_dir:
            import shutil

            shutil.rmtree(runs_dir, ignore_errors=True)
    print(json.dumps([asdict(r) for r in results], indent=2) if args.json else format_system_table(results, args))
    return 1 if failed else 0
