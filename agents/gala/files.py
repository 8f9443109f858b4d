"""What a GALA run directory holds, readable without Ray or torch (by ``agents.plot`` and
``agents.experiment``): ``gala.json`` (both configs), ``gala.jsonl`` (the supervisor's rows),
``pids.json``, and one ordinary run directory per replica, ``replica-<i>``."""

from __future__ import annotations

import json
import os

GALA_FILE = "gala.json"
ROWS_FILE = "gala.jsonl"


def is_gala_run(run_dir: str) -> bool:
    return os.path.exists(os.path.join(run_dir, GALA_FILE))


def read_gala_rows(run_dir: str) -> list[dict]:
    """The supervisor's rows; a line cut short by a kill is skipped."""
    rows = []
    path = os.path.join(run_dir, ROWS_FILE)
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return rows


def replica_dirs(run_dir: str) -> list[str]:
    return sorted((os.path.join(run_dir, d) for d in os.listdir(run_dir) if d.startswith("replica-")),
                  key=lambda d: int(d.rsplit("-", 1)[1]))


def saved(run_dir: str) -> dict:
    """A GALA run directory's ``gala.json``: ``{"run": RunConfig fields, "gala": GalaConfig fields}``."""
    path = os.path.join(run_dir, GALA_FILE)
    if not os.path.isfile(path):
        raise ValueError(f"--resume {run_dir!r}: no {GALA_FILE} there (not a GALA run directory)")
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"--resume: cannot read {path} ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("run"), dict) or not isinstance(data.get("gala"), dict):
        raise ValueError(f"--resume: {path} is not a GALA config (it needs 'run' and 'gala' objects)")
    return data
