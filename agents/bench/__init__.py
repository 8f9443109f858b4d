"""Benchmarks: ``python -m agents.bench models`` (:mod:`agents.bench.models`),
``python -m agents.bench system`` (:mod:`agents.bench.system`) and ``python -m agents.bench roles``
(:mod:`agents.bench.roles`)."""

from __future__ import annotations

import argparse
import os
from typing import Optional, Sequence

from agents.bench.models import BENCH_MODELS, ModelBench, cmd_models, format_table
from agents.bench.roles import RoleBench, cmd_roles
from agents.bench.system import (SINGLE_ENV_ACTORS, SYSTEM_AGENTS, SystemBench, cmd_system, measured_rows,
                                 summarise_rows, system_options)

__all__ = ["ModelBench", "RoleBench", "SystemBench", "SINGLE_ENV_ACTORS", "build_parser", "format_table", "main",
           "measured_rows", "summarise_rows", "system_options"]


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
    system = sub.add_parser("system", help="throughput of whole agents (parallel runner, or --runner ray) on I-Maze 9x9, "
                                           "like the paper's Fig. 1 right")
    system.add_argument("--seconds", type=positive_float, default=60.0,
                        help="wall-clock per agent, from its first env steps (start-up is not measured)")
    system.add_argument("--startup-timeout", type=positive_float, default=120.0,
                        help="seconds a run may take to make its first env steps")
    system.add_argument("--agents", nargs="+", choices=SYSTEM_AGENTS, default=list(SYSTEM_AGENTS), help="agents to run")
    system.add_argument("--runner", nargs="+", choices=("parallel", "ray"), default=["parallel"], dest="runners",
                        help="drivers to run each agent under, one after the other (e.g. --runner parallel ray: "
                             "the table adds each agent's ray/parallel env SPS ratio)")
    system.add_argument("--preset", choices=("default", "paper"), default="default", help="the runs' preset")
    system.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="learner-side device")
    system.add_argument("--single-env-actors", action="store_true",
                        help=f"one env per actor (the paper's latency-constrained setting): the preset's actors if "
                             f"already single-env, else {SINGLE_ENV_ACTORS}")
    system.add_argument("--num-actors", type=positive_int, default=None, help="actor processes (default: by preset)")
    system.add_argument("--log-seconds", type=positive_float, default=5.0, help="seconds between metric rows")
    system.add_argument("--stop-timeout", type=positive_float, default=60.0,
                        help="seconds to wait for a clean shutdown after SIGINT before SIGKILL")
    system.add_argument("--extra-args", default="", help="more options for every run (after ours, so they win), e.g. "
                             "--extra-args=\"--envs-per-actor 4 --batch-size 8\"")
    system.add_argument("--runs-dir", default="", help="keep the runs here (default: a temp dir, removed)")
    system.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    system.set_defaults(func=cmd_system)
    roles = sub.add_parser("roles", help="what a rollout, a learner runner pass, a learner step and a distill step "
                                         "cost, each on its own in one process")
    roles.add_argument("--agents", nargs="+", choices=SYSTEM_AGENTS, default=["ald", "gtrxl"], help="agents to time")
    roles.add_argument("--steps", type=positive_int, default=40, help="learner steps to time per agent")
    roles.add_argument("--threads", type=positive_int, default=1,
                       help="torch threads (default 1: what each role's process uses by default)")
    roles.add_argument("--extra-args", default="", help="options for the agents' configs, e.g. "
                       "--extra-args=\"--batch-size 64\"")
    roles.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    roles.set_defaults(func=cmd_roles)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
