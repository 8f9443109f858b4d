"""GALA (gossip-based actor-learners) for any agent of the project, on Ray.

K replicas of a single-learner system (each with its own actors, and for ALD its runner, replay
and distillers) train asynchronously; after every learner update a replica mixes its learner
parameters with the messages of that round's peers that arrived, x_i <- (x_i + sum of messages)
/ (1 + messages), waiting only while a neighbour is more than --max-stale rounds behind. Every
single-learner option applies to each replica (its budget, actors, seed + i), but those of the
other drivers (--runner, --actor-cpus, --learner-gpus, --max-in-flight, --max-actor-restarts),
which are refused; replicas learn on the CPU.

    python -m agents.gala --agent lstm --replicas 4 --topology exponential
    python -m agents.gala --agent ald --replicas 2 --num-actors 1 --total-env-steps 2000000
    python -m agents.gala --resume runs/gala-lstm-IMaze-9x9-v0-k4-s0

Exit status: 0 done, 1 failed (also: a replica that crashed while stopping), 2 refused before
starting, 130 interrupted (every replica wrote a final checkpoint; --resume continues them).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys

from agents.gala.config import GalaConfig
from agents.runtime.cli import merged_on_resume
from agents.runtime.config import AGENTS, PRESETS, RunConfig, build_parser, flag, validate
from agents.runtime.signals import StopRequest

NOT_FOR_REPLICAS = ("actor_cpus", "learner_gpus", "max_in_flight", "max_actor_restarts")
"""Options of the other drivers, refused: a replica runs the serial driver (its actors never restart;
a crashed replica does, ``--max-replica-restarts``)."""
GALA_FIELDS = tuple(f.name for f in dataclasses.fields(GalaConfig))
RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig))


def parser():
    p = build_parser("gala", __doc__)
    p.add_argument("--agent", choices=AGENTS, default=None, help="the agent every replica trains (required, but "
                                                                 "on --resume)")
    for f in dataclasses.fields(GalaConfig):
        p.add_argument(flag(f.name), type=f.metadata["type"], default=None,
                       help=f"{f.metadata['help']} (default: {f.default!r})".replace("%", "%%"))
    return p


def resolve(args) -> tuple[RunConfig, GalaConfig]:
    """The run's two configs: a preset and the options given, or a resumed run's with the options given."""
    given_run = {k: getattr(args, k) for k in RUN_FIELDS if k != "agent" and getattr(args, k, None) is not None}
    given_gala = {k: getattr(args, k) for k in GALA_FIELDS if getattr(args, k) is not None}
    if importlib.util.find_spec("ray") is None:
        raise ValueError("GALA runs on Ray, which is not installed: pip install -e '.[ray]'")
    if given_run.get("runner", "serial") != "serial":
        raise ValueError("--runner: a GALA replica runs all its roles in its own Ray actor (the serial driver); "
                         "the replicas are the parallelism, --replica-cpus sizes them")
    ignored = sorted(set(given_run) & set(NOT_FOR_REPLICAS))
    if ignored:
        raise ValueError(f"{', '.join(flag(k) for k in ignored)}: not for GALA replicas (they run the serial driver, "
                         f"whose actors live in the replica's process; --replica-cpus sizes a replica)")
    if given_run.get("device", "cpu") not in ("cpu", "auto"):
        raise ValueError("--device: GALA replicas learn on the CPU (no GPU is reserved for them)")
    if args.resume:
        from agents.gala.files import saved

        if args.overwrite:
            raise ValueError("--overwrite starts a run anew and --resume continues one: give only one")
        data = saved(args.resume)
        if args.agent and args.agent != data["run"].get("agent"):
            raise ValueError(f"--resume {args.resume!r} is a {data['run'].get('agent')!r} GALA run, not {args.agent!r}")
        merged = {**merged_on_resume(data["run"], given_run, args.resume, args.preset), "resume": args.resume}
        if given_gala.get("replicas", data["gala"].get("replicas")) != data["gala"].get("replicas"):
            raise ValueError(f"--resume {args.resume!r}: --replicas cannot change (each replica is a run directory)")
        return RunConfig(**merged), GalaConfig(**{**data["gala"], **given_gala})
    if args.agent is None:
        raise ValueError("--agent is required (one of " + ", ".join(AGENTS) + ")")
    gala = GalaConfig(**given_gala)
    values = {**PRESETS[args.preset or "default"](), **given_run, "runner": "serial"}
    config = RunConfig(agent=args.agent, **values)
    if not config.name:
        config = dataclasses.replace(config, name=f"gala-{config.agent}-{config.env_id.split('/')[-1]}-"
                                                  f"k{gala.replicas}-s{config.seed}")
    return config, gala


def main(argv: list[str] | None = None) -> int:
    with StopRequest() as signalled:
        p = parser()
        args = p.parse_args(argv)
        try:
            config, gala = resolve(args)
            gala.validate()
            validate(config)
        except (ValueError, TypeError) as exc:
            p.error(str(exc))
        if args.print_config:
            print(json.dumps({"run": config.to_dict(), "gala": gala.to_dict()}, indent=2))
            return 0
        if signalled():
            print("interrupted before the run started", file=sys.stderr)
            return 130
        from agents.gala.driver import run_gala
        from agents.runtime.run_directory import RunError

        try:
            return run_gala(config, gala, args.overwrite, signalled)
        except RunError as exc:
            print(f"python -m agents.gala: error: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
