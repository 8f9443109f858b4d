"""The run output format shared by the baselines and the ALD agents (``agents.evaluate``).

A run lives in ``runs/<name>/``::

    runs/<name>/config.json     the resolved configuration (every option, defaults included)
    runs/<name>/metrics.jsonl   one JSON object per line, one line per evaluation point

Each line of ``metrics.jsonl`` holds at least these keys (:data:`REQUIRED_KEYS`):

==================  =======  ===================================================================
key                 type     meaning
==================  =======  ===================================================================
``agent``           str      which agent wrote it (``"ppo"``, ``"ppo-fs4"``, ``"recurrent_ppo"``,
                             ``"ald"``, ...)
``env_id``          str      the Gymnasium id, e.g. ``"MemoryEnvs/IMaze-9x9-v0"``
``seed``            int      the run's seed
``env_steps``       int      training env steps so far, summed over all envs (``0`` = before training)
``wall_clock_s``    float    seconds since training started, evaluation time included
``success_rate``    float    fraction of the evaluation episodes whose last step had
                             ``info["is_success"]`` True
``episode_return``  float    mean undiscounted return of the evaluation episodes
``episodes``        int      number of evaluation episodes behind the point
==================  =======  ===================================================================

Optional keys a writer may add: ``episode_length`` (mean steps per evaluation episode),
``deterministic`` (greedy or sampled evaluation actions), ``eval_time_s`` (evaluation time
included in ``wall_clock_s`` so far), ``train_steps_per_s`` (``env_steps`` per second of
training time, evaluation excluded). Readers must ignore keys they do not know.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "metrics.jsonl"
    >>> with MetricsWriter(path, agent="ppo", env_id="MemoryEnvs/IMaze-9x9-v0", seed=0) as log:
    ...     _ = log.write(env_steps=0, wall_clock_s=0.0, success_rate=0.5,
    ...                   episode_return=0.5, episodes=10)
    >>> read_metrics(path)[0]["success_rate"]
    0.5
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

REQUIRED_KEYS: tuple[str, ...] = (
    "agent", "env_id", "seed", "env_steps", "wall_clock_s", "success_rate", "episode_return", "episodes",
)


class MetricsWriter:
    """Appends metrics lines to ``path``; ``agent``, ``env_id`` and ``seed`` go on every line."""

    def __init__(self, path: str | os.PathLike, *, agent: str, env_id: str, seed: int):
        self.path = Path(path)
        self._fixed = {"agent": agent, "env_id": env_id, "seed": int(seed)}
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, **values: Any) -> dict[str, Any]:
        """Write one line (flushed at once, so a crashed run keeps its points) and return it."""
        record = {**self._fixed, **values}
        missing = [key for key in REQUIRED_KEYS if key not in record]
        if missing:
            raise ValueError(f"metrics record lacks required keys {missing}")
        record = {key: _plain(value) for key, value in record.items()}
        self._file.write(json.dumps(record, allow_nan=False) + "\n")
        self._file.flush()
        return record

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every line of a ``metrics.jsonl`` as a dict, in file order."""
    with open(path, encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]


def first_reaching(records: list[dict[str, Any]], threshold: float = 0.95,
                   key: str = "success_rate") -> dict[str, Any] | None:
    """The first record whose ``key`` is at least ``threshold`` (None if no record reaches it)."""
    return next((record for record in records if record[key] >= threshold), None)


def write_config(path: str | os.PathLike, config: Any, **extra: Any) -> None:
    """Write a dataclass config (plus ``extra`` keys) as indented JSON, atomically."""
    values = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    values.update(extra)
    path = Path(path)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(values, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(temp, path)


def _plain(value: Any) -> Any:
    """numpy scalars to Python numbers; NaN/inf are refused (they are not JSON)."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"metrics values must be finite, got {value}")
    return value
