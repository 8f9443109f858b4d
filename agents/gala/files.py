"""What a GALA run directory holds, readable without Ray or torch (by ``agents.plot`` and
``agents.experiment``): ``gala.json`` (both configs), ``gala.jsonl`` (the supervisor's rows),
``pids.json``, and one ordinary run directory per replica, ``replica-<i>``."""

from __future__ import annotations

import os

from agents.runtime.cli import read_json_object
from agents.runtime.metrics import read_jsonl

GALA_FILE = "gala.json"
ROWS_FILE = "gala.jsonl"


def is_gala_run(run_dir: str) -> bool:
    return os.path.exists(os.path.join(run_dir, GALA_FILE))


def read_gala_rows(run_dir: str) -> list[dict]:
    """The supervisor's rows, all of them (a replica restarted from its checkpoint lowers the
    total for a while; the other replicas' rows stand); a line cut short by a kill is skipped."""
    return read_jsonl(os.path.join(run_dir, ROWS_FILE))


def replica_dirs(run_dir: str) -> list[str]:
    return sorted((os.path.join(run_dir, d) for d in os.listdir(run_dir) if d.startswith("replica-")),
                  key=lambda d: int(d.rsplit("-", 1)[1]))


def saved(run_dir: str) -> dict:
    """A GALA run directory's ``gala.json``: ``{"run": RunConfig fields, "gala": GalaConfig fields}``."""
    path = os.path.join(run_dir, GALA_FILE)
    if not os.path.isfile(path):
        raise ValueError(f"--resume {run_dir!r}: no {GALA_FILE} there (not a GALA run directory)")
    data = read_json_object(path)
    if not isinstance(data.get("run"), dict) or not isinstance(data.get("gala"), dict):
        raise ValueError(f"--resume: {path} is not a GALA config (it needs 'run' and 'gala' objects)")
    return data
