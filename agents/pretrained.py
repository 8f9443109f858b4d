"""Pretrained actors shipped with the project: a trained agent's actor model, its config and where
it came from, in ``assets/pretrained/<name>.pt`` (tens of kilobytes: the learner is left out).

    python -m agents.pretrained                                   # list them
    python -m agents.evaluate ald-imaze9 --video ald.gif          # watch one (any name listed)
    python -m agents.pretrained export runs/<run> --name NAME     # add one (from a run or a saved agent)

From code, ``agents.load_actor("ald-imaze9")`` gives the policy (:class:`agents.api.ActorPolicy`);
a file or directory of that name in the current directory wins over the pretrained actor. A file
of this kind holds no learner, so it cannot train on (``ALD.load`` refuses it). The actors come
with the repository (``pip install -e .``): a wheel of the packages alone ships none.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Optional, Sequence

DIRECTORY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "pretrained")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def names() -> list[str]:
    """The pretrained actors' names, sorted."""
    if not os.path.isdir(DIRECTORY):
        return []
    return sorted(f[:-3] for f in os.listdir(DIRECTORY) if f.endswith(".pt") and _NAME.match(f[:-3]))


def path_of(name: str) -> Optional[str]:
    """The file of the pretrained actor ``name``; None if there is none of that name."""
    if not _NAME.match(name):
        return None
    path = os.path.join(DIRECTORY, f"{name}.pt")
    return path if os.path.isfile(path) else None


def describe(payload: dict) -> dict:
    """What a pretrained actor's file says of it: agent, env, training, and its source."""
    config = json.loads(payload["config"])
    counters = payload.get("counters", {})
    return {"agent": config["agent"], "env_id": config["env_id"], "seed": config["seed"],
            "env_steps": int(counters.get("env_steps", 0)), "wall_clock_s": float(counters.get("wall_clock_s", 0.0)),
            **payload.get("pretrained", {})}


def export(source: str, name: str, note: str = "") -> str:
    """Write the actor of ``source`` (a run directory's newest checkpoint or a file of
    :meth:`agents.api.Agent.save`) as the pretrained actor ``name``; returns its path."""
    from agents.api import _read
    from agents.runtime import checkpoint

    if not _NAME.match(name):
        raise ValueError(f"--name {name!r}: use lower-case letters, digits, '.', '_' and '-'")
    payload = _read(source)
    actor_only = {
        "format": payload["format"], "config": payload["config"], "actor": payload["actor"],
        "counters": payload.get("counters", {}),
        "pretrained": {"name": name, "source": os.path.basename(os.path.normpath(source)), "note": note},
    }
    os.makedirs(DIRECTORY, exist_ok=True)
    path = os.path.join(DIRECTORY, f"{name}.pt")
    checkpoint.write_file(path, actor_only)
    os.chmod(path, 0o644)  # (a shipped file: readable by all, unlike a run's checkpoints)
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.pretrained", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("list", help="list the pretrained actors (the default)")
    add = sub.add_parser("export", help="add a pretrained actor from a run directory or a saved agent")
    add.add_argument("source", help="a run directory (runs/<name>) or a file of Agent.save")
    add.add_argument("--name", required=True, help="its name (lower-case letters, digits, '.', '_', '-')")
    add.add_argument("--note", default="", help="a line on where it came from (experiment, seed, evaluation)")
    args = parser.parse_args(argv)
    if args.command == "export":
        try:
            path = export(args.source, args.name, args.note)
        except (ValueError, FileNotFoundError) as exc:
            parser.error(str(exc))
        print(f"wrote {path} ({os.path.getsize(path):,} bytes)")
        return 0
    from agents.runtime import checkpoint

    found = names()
    if not found:
        print(f"no pretrained actors in {DIRECTORY}")
    for name in found:
        try:
            info = describe(checkpoint.load(path_of(name)))
        except (OSError, ValueError, KeyError) as exc:
            print(f"{name}: unreadable ({type(exc).__name__}: {str(exc).split('. ')[0][:120]})")
            continue
        note = f"  {info['note']}" if info.get("note") else ""
        print(f"{name}: {info['agent']} on {info['env_id']}, {info['env_steps']:,} env steps of training{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
