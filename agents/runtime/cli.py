"""The command line shared by every agent entry module (``python -m agents.ald`` and the baselines)."""

from __future__ import annotations

import json
import os
import sys

from agents.runtime.config import RunConfig, build_parser, config_from_args, validate


def resolve(agent: str, description: str, argv: list[str] | None):
    """Parse and validate; exit 2 with a message on bad input, before anything starts."""
    parser = build_parser(agent, description)
    args = parser.parse_args(argv)
    if args.resume:
        path = os.path.join(args.resume, "config.json")
        if not os.path.exists(path):
            parser.error(f"--resume {args.resume!r}: no config.json there (not a run directory)")
        with open(path) as f:
            saved = json.load(f)
        if saved.get("agent") != agent:
            parser.error(f"--resume {args.resume!r} is a {saved.get('agent')!r} run, not {agent!r}")
        given = {k: v for k, v in vars(args).items() if v is not None and k != "preset"}
        saved.update(given)
        config = RunConfig(**saved)
    else:
        config = config_from_args(agent, args)
    try:
        validate(config)
    except ValueError as exc:
        parser.error(str(exc))
    return config


def main(agent: str, description: str, argv: list[str] | None = None) -> int:
    config = resolve(agent, description, argv)
    from agents.runtime.launcher import launch  # torch and friends load only after validation

    return launch(config)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1], ""))
