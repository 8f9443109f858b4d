"""The command line shared by every agent entry module (``python -m agents.ald`` and the baselines).

Bad input of any kind exits with status 2 and one line on stderr, before anything is created or
started; see :func:`resolve` for what ``--resume`` accepts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

from agents.runtime.config import (RunConfig, build_parser, changes, config_from_args, describe_changes,
                                   fixed_changes, given_options, validate)
from agents.runtime.signals import StopRequest


def read_json_object(path: str) -> dict:
    """A saved config file's JSON object; ValueError naming the problem otherwise."""
    try:
        with open(path) as f:
            saved = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"--resume: {path} is not valid JSON ({exc})") from None
    except OSError as exc:
        raise ValueError(f"--resume: cannot read {path}: {exc.strerror}") from None
    if not isinstance(saved, dict):
        raise ValueError(f"--resume: {path} must hold a JSON object, not a {type(saved).__name__}")
    return saved


def load_saved_config(run_dir: str) -> dict:
    """A run directory's ``config.json``; ValueError naming the problem if it is not a valid one."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise ValueError(f"--resume {run_dir!r}: no config.json there (not a run directory)")
    saved = read_json_object(path)
    unknown = sorted(set(saved) - {f.name for f in dataclasses.fields(RunConfig)})
    if unknown:
        raise ValueError(f"--resume: {path} has unknown setting(s) {', '.join(unknown)}")
    return saved


def merged_on_resume(saved: dict, given: dict, resume: str, preset: str | None) -> dict:
    """A resumed run's settings: ``saved`` with the options ``given`` now. Budgets, logging,
    resources and optimisation settings may change; the models and the env may not, and
    ``--name``/``--runs-dir`` may only name the resumed directory. What changes is printed."""
    if preset:  # (agents.experiment passes a run's own options again, --preset among them)
        print(f"note: --preset {preset} is ignored on --resume: a resumed run keeps its own settings",
              file=sys.stderr)
    merged = {**saved, **given}
    if "name" in given or "runs_dir" in given:
        named = RunConfig(**{**merged, "resume": ""}).run_dir
        if os.path.realpath(named) != os.path.realpath(resume):
            raise ValueError(f"--resume {resume!r} continues that run in place; --name/--runs-dir name "
                             f"{named!r}, another directory")
    refused = fixed_changes(saved, merged)
    if refused:
        raise ValueError(f"--resume {resume!r}: the models and the env of a run cannot change "
                         f"({describe_changes(refused)}); start a new run (another --name) instead")
    other = changes(saved, merged)
    if other:
        print(f"resuming with changed settings: {describe_changes(other)}", file=sys.stderr)
    return merged


def resumed_config(agent: str, args) -> RunConfig:
    """The saved config of ``args.resume`` with the options given now. Budgets, logging, resources
    and optimisation settings may change; the models and the env may not."""
    if args.overwrite:
        raise ValueError("--overwrite starts a run anew and --resume continues one: give only one")
    saved = load_saved_config(args.resume)
    if saved.get("agent") != agent:
        raise ValueError(f"--resume {args.resume!r} is a {saved.get('agent')!r} run, not {agent!r}")
    merged = merged_on_resume(saved, given_options(args), args.resume, args.preset)
    return RunConfig(**merged)


def parse(agent: str, description: str, argv: list[str] | None):
    """Parse and validate: the config and the parsed options; exit 2 with a message on bad input."""
    parser = build_parser(agent, description)
    args = parser.parse_args(argv)
    try:
        config = resumed_config(agent, args) if args.resume else config_from_args(agent, args)
        validate(config)
    except ValueError as exc:
        parser.error(str(exc))
    return config, args


def resolve(agent: str, description: str, argv: list[str] | None) -> RunConfig:
    """The validated config of a command line (exit 2 on bad input)."""
    return parse(agent, description, argv)[0]


def main(agent: str, description: str, argv: list[str] | None = None) -> int:
    """The entry modules' ``main``: 0 done, 1 failed, 2 refused before starting, 130 interrupted."""
    with StopRequest() as signalled:  # a Ctrl-C in the middle of importing torch could hang its exit
        config, args = parse(agent, description, argv)
        if args.print_config:
            print(json.dumps(config.to_dict(), indent=2))
            return 0
        if signalled():
            print("interrupted before the run started", file=sys.stderr)
            return 130
        from agents.runtime.launcher import launch  # torch and friends load only after validation
        from agents.runtime.run_directory import RunError

        try:
            return launch(config, overwrite=args.overwrite, signalled=signalled)
        except RunError as exc:
            print(f"python -m agents.{agent}: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # raised by a lock wait that a signal cancelled
            print("interrupted before the run started", file=sys.stderr)
            return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1], ""))
