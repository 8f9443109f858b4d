"""Named experiments: agents x seeds x env x budget, run one after another (or K at once), resumable.

    python -m agents.experiment imaze9 [--seeds 0 1 2] [--only ald lstm] [--jobs 1] [--runs-dir runs]
    python -m agents.experiment --list
    python -m agents.experiment imaze9 --dry-run        # print the commands, run nothing
    python -m agents.experiment imaze9 --archive assets/runs   # also keep the finished runs' curves

Every run is a separate ``python -m agents.<agent>`` process writing ``runs/<experiment>/<label>-s<seed>``
(its own ``config.json``, metrics and checkpoints); ``runs/<experiment>/experiment.json`` records the
spec the runs came from. Re-running the same command skips runs that reached their budget and
resumes (``--resume``) runs that were stopped, so an interrupted experiment loses at most the
minutes since the last checkpoint. Plot the results with ``python -m agents.plot runs/<experiment> --out <experiment>.png``.

``--archive DIR`` copies what a plot needs of every finished run (``config.json``, ``metrics.jsonl``)
and the spec to ``DIR/<experiment>/``: kilobytes per run, small enough to commit, so a figure can be
drawn again (``python -m agents.plot DIR/<experiment>``) after ``runs/`` (checkpoints, TensorBoard) is
gone.

The budgets are env steps per variant, chosen so that every run fits a 2-core CPU in well under an
hour (see the README's Results section for what they took); ``--budget-scale`` shrinks or grows them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from agents.bench.system import SINGLE_ENV_ACTORS
from agents.gala.files import GALA_FILE, ROWS_FILE, is_gala_run, read_gala_rows, replica_dirs
from agents.runtime.config import AGENTS
from agents.runtime.metrics import read_rows, stopped_solved


@dataclass(frozen=True)
class Variant:
    """One curve of an experiment: an agent with its command-line options."""

    label: str
    agent: str
    total_env_steps: int  # (GALA: over all its replicas, each trains its share)
    args: tuple[str, ...] = ()
    replicas: int = 0  # K >= 1: a GALA run of K replicas (python -m agents.gala); 0: one learner

    def command(self) -> tuple[str, ...]:
        if self.replicas:
            return (sys.executable, "-m", "agents.gala", "--agent", self.agent, "--replicas", str(self.replicas))
        return (sys.executable, "-m", f"agents.{self.agent}")


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    env_id: str
    variants: tuple[Variant, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    args: tuple[str, ...] = field(default=())  # options shared by every run of the experiment

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _four_agents(steps: dict[str, int], args: dict[str, tuple[str, ...]] | None = None) -> tuple[Variant, ...]:
    args = args or {}
    return tuple(Variant(agent, agent, steps[agent], args.get(agent, ())) for agent in AGENTS)


def _gala(agent: str, steps: int) -> tuple[Variant, ...]:
    """One learner with 4 actors x 8 envs against GALA with 2 and 4 replicas sharing as many actors
    (a learner batch: one trajectory of each of its replica's envs)."""
    single = Variant(agent, agent, steps, ("--num-actors", "4", "--envs-per-actor", "8", "--batch-size", "32"))
    return single, *(Variant(f"{agent}-gala-k{k}", agent, steps, ("--num-actors", str(4 // k), "--envs-per-actor", "8",
                                                                    "--batch-size", str(32 // k), "--replica-cpus",
                                                                    str(2 / k), "--topology", "exponential"), k)
                     for k in (2, 4))


UNTUNED = (("beam3", "beam width 3", '{"beam_width": 3}', 8_000_000), ("11x11", "size 11", '{"size": 11}', 8_000_000),
           ("13x13", "size 13", '{"size": 13}', 12_000_000))
"""The I-Maze variants nobody tuned for: name, what it is, ``--env-kwargs`` on the 9x9 id, env-step budget."""

SOLVED = ("--stop-success-rate", "0.95")  # I-Maze 9x9 runs end once solved: the steps after tell nothing new
LATENCY_BOUND = ("--num-actors", str(SINGLE_ENV_ACTORS), "--envs-per-actor", "1", "--batch-size", "32")
"""The paper's regime on this machine: single-env actors (as ``python -m agents.bench system
--single-env-actors``), each acting one env at a time, so their latency binds."""

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    Experiment(
        "imaze9", "Fig. 1 and 4: all four agents on I-Maze 9x9 (success vs env steps and wall-clock)",
        "MemoryEnvs/IMaze-9x9-v0",
        _four_agents({"ald": 8_000_000, "lstm": 12_000_000, "gtrxl": 8_000_000, "asymm_ac": 8_000_000}),
        args=SOLVED),
    Experiment(
        "imaze9-latency", f"The paper's regime: {SINGLE_ENV_ACTORS} single-env actors (latency binds), ALD against "
        "GTrXL and LSTM on I-Maze 9x9", "MemoryEnvs/IMaze-9x9-v0",
        tuple(Variant(agent, agent, steps, LATENCY_BOUND)
              for agent, steps in (("ald", 8_000_000), ("gtrxl", 8_000_000), ("lstm", 12_000_000))),
        args=SOLVED),
    Experiment(
        "imaze15", "Fig. 6 centre/right: all four agents on I-Maze 15x15 (per-seed curves, 0.5 plateau)",
        "MemoryEnvs/IMaze-15x15-v0",
        _four_agents({"ald": 4_000_000, "lstm": 10_000_000, "gtrxl": 2_000_000, "asymm_ac": 4_000_000})),
    Experiment(
        "metafetch", "Fig. 5: all four agents on Meta-Fetch (4 objects), return and success",
        "MemoryEnvs/MetaFetch-v0",
        _four_agents({"ald": 4_000_000, "lstm": 10_000_000, "gtrxl": 2_000_000, "asymm_ac": 4_000_000})),
    Experiment(
        "dprl", "Fig. 3 left (the paper's is on Meta-Fetch): ALD on I-Maze 9x9 with distill steps per RL step 1, 2, "
        "5, 10",
        "MemoryEnvs/IMaze-9x9-v0",
        tuple(Variant(f"ald-dprl{r}", "ald", 8_000_000, ("--distill-ratio", str(r))) for r in (1, 2, 5, 10)),
        args=SOLVED),
    Experiment(
        "value-distill", "Fig. 6 left: ALD on I-Maze 9x9 with value distillation (alpha_V 0.1) and without (0)",
        "MemoryEnvs/IMaze-9x9-v0",
        tuple(Variant(f"ald-alphav{a}", "ald", 8_000_000, ("--alpha-v", str(a))) for a in ("0.1", "0")),
        args=SOLVED),
    Experiment(
        "lag", "Why ALD needed more env steps than its learner: the age of the distillation targets (replay "
        "capacity 256, 64 (the default), 16: targets about half of it learner steps old) and the actor refreshed "
        "every distill step (K_A 1), I-Maze 9x9", "MemoryEnvs/IMaze-9x9-v0",
        tuple(Variant(f"ald-replay{n}", "ald", 8_000_000, ("--replay-capacity", str(n))) for n in (256, 64, 16))
        + (Variant("ald-ka1", "ald", 8_000_000, ("--replay-capacity", "256", "--actor-refresh", "1")),),
        args=SOLVED),
    *(Experiment(
        f"imaze-{name}", f"Defaults on a maze nobody tuned them for ({what}, one seed): all four agents on I-Maze 9x9's "
        "id with --env-kwargs", "MemoryEnvs/IMaze-9x9-v0",
        _four_agents({"ald": steps, "lstm": steps, "gtrxl": steps, "asymm_ac": steps}), seeds=(0,),
        args=("--env-kwargs", kwargs, *SOLVED))
      for name, what, kwargs, steps in UNTUNED),
    Experiment(
        "entropy-floor", "Exploration on untuned mazes: the GTrXL with --entropy-floor 0.5 (an entropy bonus that acts "
        "only while the learner policy's entropy is under 0.5 nats) on I-Maze 9x9 at beam width 3, on a 13x13 and on "
        "the tuned 9x9", "MemoryEnvs/IMaze-9x9-v0",
        tuple(Variant(f"gtrxl-{name}-floor0.5", "gtrxl", steps, (*kwargs, "--entropy-floor", "0.5"))
              for name, kwargs, steps in (("beam3", ("--env-kwargs", '{"beam_width": 3}'), 3_000_000),
                                          ("13x13", ("--env-kwargs", '{"size": 13}'), 5_000_000),
                                          ("9x9", (), 3_000_000))),
        seeds=(0,), args=SOLVED),
    Experiment(
        "lstm-floor", "Runs that never find a goal: the LSTM baseline on the tuned I-Maze 9x9 without an entropy floor "
        "(the default) and with --entropy-floor 0.5 and 1.0, on seeds the other experiments did not use",
        "MemoryEnvs/IMaze-9x9-v0",
        (Variant("lstm", "lstm", 12_000_000),
         *(Variant(f"lstm-floor{h}", "lstm", 12_000_000, ("--entropy-floor", h)) for h in ("0.5", "1.0"))),
        seeds=(3, 4, 5, 6, 7, 8), args=SOLVED),
    Experiment(
        "lstm-variants-floor", "The LSTM baseline on the untuned variants (beam width 3, 11x11, 13x13; the imaze-* "
        "budgets) without an entropy floor (the default) and with --entropy-floor 0.5, three seeds",
        "MemoryEnvs/IMaze-9x9-v0",
        tuple(Variant(f"lstm-{name}{suffix}", "lstm", steps, ("--env-kwargs", kwargs, *floor))
              for name, _, kwargs, steps in UNTUNED
              for suffix, floor in (("", ()), ("-floor0.5", ("--entropy-floor", "0.5")))),
        args=SOLVED),
    Experiment(
        "popart", "The PopArt step size (the value statistics' decay) re-tuned after the PopArt fix: the LSTM baseline "
        "on I-Maze 9x9 at 3e-4 (the paper's), 1e-3, 3e-3 (the default) and 1e-2", "MemoryEnvs/IMaze-9x9-v0",
        tuple(Variant(f"lstm-popart{d}", "lstm", 12_000_000, ("--popart-decay", d)) for d in ("3e-4", "1e-3", "3e-3", "1e-2")),
        args=SOLVED),
    Experiment(
        "gala-imaze9", "GALA: 2 and 4 gossiping replicas against one learner with as many actors (LSTM, ALD), "
        "I-Maze 9x9", "MemoryEnvs/IMaze-9x9-v0", (*_gala("lstm", 12_000_000), *_gala("ald", 8_000_000)),
        args=SOLVED),
)}


@dataclass(frozen=True)
class Run:
    """One process of an experiment."""

    experiment: str
    variant: Variant
    seed: int
    run_dir: str
    total_env_steps: int
    command: tuple[str, ...]


def plan(experiment: Experiment, runs_dir: str, seeds=None, only=None, budget_scale: float = 1.0,
         extra: tuple[str, ...] = ()) -> list[Run]:
    """The runs of ``experiment`` (filtered by ``seeds`` and variant labels/agents ``only``), in order:
    seed-major, so a partly finished experiment already has one complete seed of every agent."""
    root = os.path.join(runs_dir, experiment.name)
    labels = {v.label for v in experiment.variants} | {v.agent for v in experiment.variants}
    unknown = sorted(set(only or ()) - labels)
    if unknown:
        raise ValueError(f"--only {unknown}: not in {experiment.name!r} (variants: "
                         f"{[v.label for v in experiment.variants]})")
    runs = []
    for seed in (experiment.seeds if seeds is None else seeds):
        for v in experiment.variants:
            if only and v.label not in only and v.agent not in only:
                continue
            name = f"{v.label}-s{seed}"
            run_dir = os.path.join(root, name)
            steps = max(1, int(round(v.total_env_steps * budget_scale)))
            if v.replicas:
                steps = -(-steps // v.replicas)
            command = (*v.command(), "--env-id", experiment.env_id,
                       *experiment.args, *v.args, "--seed", str(seed), "--total-env-steps", str(steps),
                       "--runs-dir", root, "--name", name, *extra)
            runs.append(Run(experiment.name, v, seed, run_dir, steps, command))
    return runs


def gala_state(run_dir: str, total_env_steps: int) -> str:
    """:func:`run_state` of a GALA run (``total_env_steps``: each replica's)."""
    states = {run_state(d, total_env_steps) for d in replica_dirs(run_dir)}
    if states <= {"new"}:
        return "new"
    rows = read_gala_rows(run_dir)
    return "done" if states == {"done"} and rows and rows[-1].get("final") else "resume"


def last_row(run_dir: str) -> dict:
    """The newest row of a run (a GALA run's own, summed over its replicas)."""
    if is_gala_run(run_dir):
        return (read_gala_rows(run_dir) or [{}])[-1]
    return (read_rows(run_dir) or [{}])[-1]


def run_state(run_dir: str, total_env_steps: int) -> str:
    """``new`` (nothing there), ``done`` (ended at its budget or its ``--stop-success-rate``) or
    ``resume`` (stopped early)."""
    if is_gala_run(run_dir):
        return gala_state(run_dir, total_env_steps)
    if not os.path.exists(os.path.join(run_dir, "config.json")):
        return "new"
    from agents.runtime import checkpoint

    if not checkpoint.list_checkpoints(run_dir):
        return "new"  # stopped before its first checkpoint: start again from scratch
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    rows = read_rows(run_dir)
    last = rows[-1] if rows else {}
    if last.get("final") and (last["env_steps"] >= total_env_steps or stopped_solved(config, rows)):
        return "done"
    return "resume"


def command_for(run: Run) -> list[str]:
    """The command to start or continue ``run`` now (``--resume`` if it has a checkpoint)."""
    if run_state(run.run_dir, run.total_env_steps) == "resume":
        # the run's own options again: given options win over the saved config.json
        return [*run.command, "--resume", run.run_dir]
    from agents.runtime.run_directory import holds_run

    if holds_run(run.run_dir) or is_gala_run(run.run_dir):
        # stopped before its first checkpoint: moved aside, started anew
        return [*run.command, "--overwrite"]
    return list(run.command)


def execute(runs: list[Run], jobs: int = 1, log=print) -> int:
    """Run ``runs`` with at most ``jobs`` at a time; the number of failed runs. Ctrl-C stops the
    running ones (each writes a final checkpoint) and returns; the next invocation resumes them."""
    pending = []
    for run in runs:
        if run_state(run.run_dir, run.total_env_steps) == "done":
            log(f"[done]    {run.run_dir}")
        else:
            pending.append(run)
    active: list[tuple[Run, subprocess.Popen, float, object]] = []
    failed = 0
    total = len(pending)
    started = 0
    try:
        while pending or active:
            while pending and len(active) < jobs:
                run = pending.pop(0)
                command = command_for(run)
                started += 1
                os.makedirs(run.run_dir, exist_ok=True)
                logfile = open(os.path.join(os.path.dirname(run.run_dir), f"{os.path.basename(run.run_dir)}.log"), "a")
                verb = "resume" if "--resume" in command else "start"
                log(f"[{started}/{total}] {verb} {run.run_dir}: {' '.join(command[1:])}")
                # the children write their own progress to the log; our stdout stays one line per run
                proc = subprocess.Popen([*command, "--no-progress"], stdout=logfile, stderr=subprocess.STDOUT)
                active.append((run, proc, time.monotonic(), logfile))
            time.sleep(0.5)
            for item in list(active):
                run, proc, t0, logfile = item
                if proc.poll() is None:
                    continue
                active.remove(item)
                logfile.close()
                last = last_row(run.run_dir)
                success = last.get("success_rate")
                status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode}, see {logfile.name})"
                failed += proc.returncode != 0
                log(f"[{status}] {run.run_dir}: {last.get('env_steps', 0):,} env steps in "
                    f"{time.monotonic() - t0:.0f} s, success {'-' if success is None else f'{success:.2f}'}")
    except KeyboardInterrupt:
        log("interrupted: stopping the running runs (they checkpoint; run the same command to resume)")
        for _, proc, _, _ in active:
            proc.send_signal(signal.SIGINT)
        for run, proc, _, logfile in active:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            logfile.close()
        return max(1, failed)
    return failed


def write_spec(experiment: Experiment, runs_dir: str, budget_scale: float, extra: tuple[str, ...]) -> str:
    root = os.path.join(runs_dir, experiment.name)
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, "experiment.json")
    with open(path, "w") as f:
        json.dump({**experiment.to_dict(), "budget_scale": budget_scale, "extra_args": list(extra)}, f, indent=2)
    return path


ARCHIVED_FILES = ("config.json", "metrics.jsonl")
"""What :func:`archive` keeps of a run (of a GALA run: of each replica, and ``gala.json`` and
``gala.jsonl``): all that ``agents.plot`` reads."""


def _copy(src_dir: str, dst_dir: str, names) -> None:
    os.makedirs(dst_dir, exist_ok=True)
    for name in names:  # via a temporary name, so an interrupted copy leaves no half file
        tmp = os.path.join(dst_dir, f".{name}.part")
        shutil.copy2(os.path.join(src_dir, name), tmp)
        os.replace(tmp, os.path.join(dst_dir, name))


def _own_budget(run_dir: str, planned: int) -> int:
    """The env-step budget a run was last started with (its ``config.json``), or ``planned``
    where none is saved and for a GALA run (whose replicas each save their share)."""
    path = os.path.join(run_dir, "config.json")
    if is_gala_run(run_dir) or not os.path.exists(path):
        return planned
    with open(path) as f:
        return int(json.load(f).get("total_env_steps", planned))


def archive(experiment: Experiment, runs: list[Run], runs_dir: str, archive_dir: str, log=print) -> list[str]:
    """Copy what a plot needs of every finished run of ``runs`` (planned from ``experiment``) to
    ``archive_dir`` with the layout under ``runs_dir`` (``archive_dir/<experiment>/<run>/``), and
    the experiment's definition as ``experiment.json``; the run directories copied.

    A run counts as finished when it is done against both the planned budget and the one it was
    last started with, so a run stopped short of a larger ``--budget-scale`` is left out. An
    archived copy with more env steps than the run (a longer run, replaced by a smoke run in a
    fresh ``runs/``) is kept, and said so; each run's ``config.json`` holds the settings it ran
    with, so the archive needs no record of the command lines that made it."""
    copied = []
    for run in runs:
        budget = max(run.total_env_steps, _own_budget(run.run_dir, run.total_env_steps))
        if run_state(run.run_dir, budget) != "done":
            log(f"[not archived] {run.run_dir}: not finished")
            continue
        dst = os.path.join(archive_dir, os.path.relpath(run.run_dir, runs_dir))
        if os.path.exists(dst):
            archived, now = last_row(dst).get("env_steps", 0), last_row(run.run_dir).get("env_steps", 0)
            if archived > now:
                log(f"[kept] {dst}: the archived copy has {archived:,} env steps, {run.run_dir} {now:,}")
                continue
            log(f"[replaced] {dst}")
        if is_gala_run(run.run_dir):
            _copy(run.run_dir, dst, (GALA_FILE, ROWS_FILE))
            for replica in replica_dirs(run.run_dir):
                _copy(replica, os.path.join(dst, os.path.basename(replica)), ARCHIVED_FILES)
        else:
            _copy(run.run_dir, dst, ARCHIVED_FILES)
        copied.append(run.run_dir)
    if copied:
        root = os.path.join(archive_dir, experiment.name)
        with open(os.path.join(root, "experiment.json"), "w") as f:
            json.dump(experiment.to_dict(), f, indent=2)
        log(f"archived {len(copied)} finished run(s) of {experiment.name} in {root}")
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.experiment", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="experiments:\n" + "\n".join(
                                         f"  {e.name:14s} {e.description}" for e in EXPERIMENTS.values()))
    parser.add_argument("name", nargs="?", help="experiment name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the experiments and their runs, then exit")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to run (default: the experiment's)")
    parser.add_argument("--only", nargs="+", help="variant labels or agents to run (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (each is a full multi-process run)")
    parser.add_argument("--runs-dir", default="runs", help="parent of the experiment's directory")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply every env-step budget")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and exit (with --archive: "
                        "archive the finished runs, and run nothing)")
    parser.add_argument("--archive", metavar="DIR", help="afterwards, copy the finished runs' config.json and "
                        "metrics.jsonl to DIR/<experiment>/ (what agents.plot reads; small enough to commit)")
    args, extra = parser.parse_known_args(argv)
    if args.list or not args.name:
        for e in EXPERIMENTS.values():
            print(f"{e.name}: {e.description}\n  env {e.env_id}, seeds {list(e.seeds)}")
            for v in e.variants:
                options = " ".join(v.args)
                print(f"    {v.label:14s} python {' '.join(v.command()[1:])} {options} ({v.total_env_steps:,} env steps)")
        return 0 if args.list else 2
    if args.name not in EXPERIMENTS:
        parser.error(f"unknown experiment {args.name!r}; choose from {sorted(EXPERIMENTS)}")
    if args.jobs < 1 or args.budget_scale <= 0:
        parser.error("--jobs must be >= 1 and --budget-scale > 0")
    experiment = EXPERIMENTS[args.name]
    try:
        runs = plan(experiment, args.runs_dir, args.seeds, args.only, args.budget_scale, tuple(extra))
    except ValueError as exc:
        parser.error(str(exc))
    if extra:  # unknown options go to every run: check them once, before hours of runs start
        from agents.runtime.cli import resolve

        single = [r for r in runs if not r.variant.replicas]
        if single:
            resolve(single[0].variant.agent, "", list(single[0].command[3:]))
    if args.dry_run:
        for run in runs:
            done = run_state(run.run_dir, run.total_env_steps) == "done"
            print(f"[done]    {run.run_dir}" if done else " ".join(command_for(run)[1:]))
        if args.archive:
            archive(experiment, runs, args.runs_dir, args.archive)
        return 0
    spec = write_spec(experiment, args.runs_dir, args.budget_scale, tuple(extra))
    print(f"{experiment.name}: {len(runs)} runs -> {os.path.dirname(spec)} (spec in {spec})")
    failed = execute(runs, args.jobs)
    if args.archive:
        archive(experiment, runs, args.runs_dir, args.archive)
    print(f"{experiment.name}: {'all runs finished' if not failed else f'{failed} run(s) failed or stopped'}; "
          f"plot with: python -m agents.plot {os.path.dirname(spec)} --out {experiment.name}.png "
          f"--summary {experiment.name}.json")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
