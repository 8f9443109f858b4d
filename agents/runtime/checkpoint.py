"""Atomic checkpoints that a crash mid-save can never make unreadable for ``--resume``.

Files are ``checkpoints/checkpoint-<learner steps>.pt``. A save writes ``.tmp-<random>``
(a name the loader's pattern never matches), fsyncs it, renames it into place with
``os.replace`` and fsyncs the directory. Loading uses ``torch.load(weights_only=True)``, so a
file with a pickled payload that would run code is refused, and falls back from the newest
file to older ones when a file is damaged or of another format. A save keeps the newest
``keep`` files at or below its own step; files with higher steps are never deleted.
"""

from __future__ import annotations

import glob
import json
import os
import re
import tempfile
import warnings

import torch

PATTERN = "checkpoint-*.pt"
FORMAT = 2
_NUMBER = re.compile(r"checkpoint-(\d+)\.pt$")


def checkpoint_dir(run_dir: str) -> str:
    return os.path.join(run_dir, "checkpoints")


def write_file(path: str, payload: dict) -> None:
    """Write ``payload`` to ``path`` atomically: a reader sees the old file or the whole new one."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=".tmp-", suffix=".partial", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save(run_dir: str, payload: dict, step: int, keep: int = 3) -> str:
    """Write ``payload`` (tensors, numbers, strings, nested dicts/lists) as checkpoint ``step``."""
    directory = checkpoint_dir(run_dir)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"checkpoint-{step:010d}.pt")
    write_file(path, payload)
    own = [p for p in list_checkpoints(run_dir) if step_of(p) <= step]
    for old in own[keep:]:
        os.unlink(old)
    return path


def step_of(path: str) -> int:
    return int(_NUMBER.search(path).group(1))


def list_checkpoints(run_dir: str) -> list[str]:
    """Checkpoint files, newest (highest step) first."""
    paths = [p for p in glob.glob(os.path.join(checkpoint_dir(run_dir), PATTERN)) if _NUMBER.search(p)]
    return sorted(paths, key=step_of, reverse=True)


def load(path: str) -> dict:
    """One checkpoint file; ValueError if it is damaged, unsafe or of another format (OSError and
    MemoryError pass through: they say nothing about the file's contents)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, MemoryError):  # not damage: the file cannot be read now
        raise
    except Exception as exc:  # damaged file or a refused (unsafe) payload
        raise ValueError(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"checkpoint format {found!r}, this version reads format {FORMAT}")
    return payload


def load_newest(run_dir: str) -> tuple[dict | None, str | None, list[tuple[str, str]]]:
    """The newest checkpoint that loads, its path, and ``(path, reason)`` for each newer one that
    did not (``None, None, [...]`` when none loads)."""
    damaged = []
    for path in list_checkpoints(run_dir):
        try:
            return load(path), path, damaged
        except ValueError as exc:
            damaged.append((path, str(exc)))
    return None, None, damaged


def load_latest(run_dir: str) -> tuple[dict, str] | tuple[None, None]:
    """The newest checkpoint that loads, and its path, warning about each skipped one; ``(None,
    None)`` if there is none."""
    payload, path, damaged = load_newest(run_dir)
    for skipped, reason in damaged:
        warnings.warn(f"skipping checkpoint {skipped}: {reason}", stacklevel=2)
    return payload, path


def move_damaged(run_dir: str, paths: list[str]) -> list[str]:
    """Move damaged checkpoint files to ``checkpoints/damaged/`` (kept for inspection, out of the
    kept slots); their new paths."""
    directory = os.path.join(checkpoint_dir(run_dir), "damaged")
    moved = []
    for path in paths:
        os.makedirs(directory, exist_ok=True)
        target, n = os.path.join(directory, os.path.basename(path)), 1
        while os.path.exists(target):
            n += 1
            target = os.path.join(directory, f"{os.path.basename(path)}.{n}")
        os.replace(path, target)
        moved.append(target)
    return moved


def payload(config, learner_state: dict, actor_tensors: dict, counters: dict) -> dict:
    """What a checkpoint holds: the learner (model, target network and its version, V-MPO
    parameters, optimizer, steps), the actor parameters, and the run counters. The learner
    runner's parameters are the target network's. Distill processes' Adam moments are not kept:
    they restart from zero on resume."""
    return {
        "format": FORMAT,
        "config": json.dumps(config.to_dict()),
        "learner": learner_state,
        "actor": {name: t.detach().clone() for name, t in actor_tensors.items()},
        "counters": {k: (float(v) if k == "wall_clock_s" else int(v)) for k, v in counters.items()},
    }
