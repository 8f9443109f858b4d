"""A run directory belongs to one run: an exclusive lock for the run's whole life, no silent
reuse, and the checkpoint a ``--resume`` starts from.

A run directory holds ``config.json``, ``metrics.jsonl``/``.csv``, ``tensorboard/``,
``checkpoints/``, ``pids.json`` and ``run.lock``. The lock is a ``flock`` on ``run.lock``
that the main process holds until it exits, however it exits (the kernel drops it with the
process); ``run.lock`` names the holder. ``flock`` needs a filesystem that supports it (local
disks, NFSv4; Lustre only when mounted with ``-o flock``); elsewhere every run is refused with a
clear error rather than run unlocked. Everything here runs before any process starts; a refusal
is a :class:`RunError` (the CLI exits 2 with its message).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from dataclasses import dataclass

from agents.runtime import checkpoint
from agents.runtime.config import describe_changes, fixed_changes
from agents.runtime.metrics import read_rows

LOCK = "run.lock"
FINAL_SAVE = "final checkpoint"  # the role of a learner that lost its supervisor and saves before exiting
FINAL_SAVE_GRACE_S = 120.0  # such a learner exits hard after this; a new run waits a little longer
FINAL_SAVE_WAIT_S = FINAL_SAVE_GRACE_S + 10.0


class RunError(Exception):
    """A run refused before anything started (the CLI exits with status 2)."""


def holds_run(run_dir: str) -> bool:
    """Whether ``run_dir`` holds a run's results: a checkpoint or a metrics row with progress (a
    directory with only a ``config.json``, from a run stopped during start-up, holds nothing to lose)."""
    return bool(checkpoint.list_checkpoints(run_dir)) or any(
        row.get("env_steps") or row.get("learner_steps") for row in read_rows(run_dir))


class RunLock:
    """The exclusive lock of one run directory (``flock`` on ``run.lock``)."""

    def __init__(self, run_dir: str):
        self.run_dir = run_dir
        self.path = os.path.join(run_dir, LOCK)
        self.fd: int | None = None

    def try_acquire(self, role: str = "run") -> bool:
        """Take the lock if it is free (and write who holds it); never waits."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except OSError:
                os.close(fd)
                raise
            try:  # the directory may have been moved aside (--overwrite) between open and flock
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.fd = fd
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "role": role,
                  "since": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        return True

    def holder(self) -> dict:
        """Who holds the lock, as they wrote it (``{}`` if unreadable)."""
        for _ in range(3):  # a new holder writes its name right after taking the lock
            try:
                with open(self.path) as f:
                    return json.load(f)
            except (OSError, json.JSONDecodeError):
                time.sleep(0.1)
        return {}

    def acquire(self, wait_s: float = FINAL_SAVE_WAIT_S, cancelled=lambda: False, hint: str = "") -> None:
        """Take the lock, or raise :class:`RunError` naming the live run that holds it. A learner
        writing the final checkpoint of a run whose main process was killed is waited for (up to
        ``wait_s``; KeyboardInterrupt if ``cancelled()`` meanwhile)."""
        deadline = time.monotonic() + wait_s
        announced = False
        while not self._try():
            holder = self.holder()
            if holder.get("role") == FINAL_SAVE and time.monotonic() < deadline:
                if cancelled():
                    raise KeyboardInterrupt
                if not announced:
                    print(f"waiting for pid {holder.get('pid')} to write the final checkpoint of the run that "
                          f"was in {self.run_dir}", file=sys.stderr)
                    announced = True
                time.sleep(0.2)
                continue
            raise RunError(f"{self.run_dir} is in use by another run (pid {holder.get('pid', '?')} on "
                           f"{holder.get('host', '?')} since {holder.get('since', '?')}: "
                           f"`{holder.get('command', '?')}`); wait for it to end{hint}")

    def _try(self) -> bool:
        try:
            return self.try_acquire()
        except OSError as exc:
            raise RunError(f"cannot lock {self.path}: {exc.strerror or exc} (the filesystem of --runs-dir must "
                           f"support flock; use a local disk)") from None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


def move_aside(run_dir: str, lock: RunLock, hint: str = "") -> RunLock:
    """``--overwrite``: move the run in ``run_dir``, whose ``lock`` the caller holds, to
    :func:`replaced_path`; the new, empty ``run_dir``'s lock, held (the old one is released only
    once the new one is ours, so no other run can slip in between)."""
    target = replaced_path(run_dir)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.rename(run_dir, target)  # the old lock moves with it
    os.makedirs(run_dir)
    new = RunLock(run_dir)
    try:
        new.acquire(wait_s=0.0, hint=hint)
    finally:
        lock.release()
    print(f"moved the old run in {run_dir} to {target}", file=sys.stderr)
    return new


def replaced_path(run_dir: str) -> str:
    """Where ``--overwrite`` moves an old run: ``<runs dir>/.replaced/<name>-<time>[-n]``."""
    parent = os.path.join(os.path.dirname(os.path.abspath(run_dir)), ".replaced")
    base = os.path.join(parent, f"{os.path.basename(os.path.abspath(run_dir))}-{time.strftime('%Y%m%d-%H%M%S')}")
    target, n = base, 1
    while os.path.exists(target):
        n += 1
        target = f"{base}-{n}"
    return target


@dataclass
class Run:
    """An opened run directory: locked, its config written, and (``--resume``) the checkpoint
    to start from. A context manager: leaving it releases the lock."""

    run_dir: str
    lock: RunLock
    payload: dict | None = None
    checkpoint_path: str | None = None

    def take_payload(self) -> dict | None:
        """The resume checkpoint's contents, handed over once (the caller keeps what it needs)."""
        payload, self.payload = self.payload, None
        return payload

    def close(self) -> None:
        self.lock.release()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_shapes(config, payload: dict, path: str) -> None:
    """RunError if the checkpoint's learner does not fit the model ``config`` builds (a run saved
    before an override won over the size in a model name, for example)."""
    from agents.runtime.topology import build_learner_model  # noqa: PLC0415 (torch)

    saved = payload["learner"]["model"]
    for name, tensor in build_learner_model(config).state_dict().items():
        if name not in saved or tuple(saved[name].shape) != tuple(tensor.shape):
            found = tuple(saved[name].shape) if name in saved else "nothing"
            raise RunError(f"--resume: {os.path.basename(path)} holds another learner model than the config "
                           f"builds ({name}: {found} saved, {tuple(tensor.shape)} now); it was written by an "
                           f"earlier version where the size in a model name won over an override")


def resume_checkpoint(config, run_dir: str) -> tuple[dict, str]:
    """The newest checkpoint of ``run_dir`` that loads, after moving newer damaged ones aside;
    :class:`RunError` (files left in place) if none loads or it holds other models or env."""
    try:
        payload, path, damaged = checkpoint.load_newest(run_dir)
    except (OSError, MemoryError) as exc:  # not damage: a file that cannot be read now
        raise RunError(f"--resume {run_dir}: cannot read a checkpoint: {exc}") from None
    if payload is None:
        if damaged:
            names = "; ".join(f"{os.path.basename(p)}: {reason}" for p, reason in damaged)
            raise RunError(f"--resume {run_dir}: no checkpoint loads ({names}); they are left in place, "
                           f"nothing was changed")
        raise RunError(f"--resume {run_dir}: the run has no checkpoint (it stopped before its first one); "
                       f"start it again with --overwrite")
    try:
        saved = json.loads(payload["config"])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise RunError(f"--resume {run_dir}: {path} holds no readable config") from None
    refused = fixed_changes(saved, config.to_dict())
    if refused:
        raise RunError(f"--resume {run_dir}: {os.path.basename(path)} was written for other models or env than "
                       f"config.json says ({describe_changes(refused)})")
    check_shapes(config, payload, path)
    for moved, (_, reason) in zip(checkpoint.move_damaged(run_dir, [p for p, _ in damaged]), damaged):
        print(f"warning: damaged checkpoint moved to {moved}: {reason}", file=sys.stderr)
    counters = payload["counters"]
    print(f"resuming from {path}: {int(counters['env_steps']):,} env steps, "
          f"{int(counters['learner_steps']):,} learner steps", file=sys.stderr)
    return payload, path


def write_json(path: str, doc) -> None:
    """Write ``doc`` as JSON to ``path`` atomically: a reader sees the old file or the whole new one."""
    temp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.partial")
    with open(temp, "w") as f:
        json.dump(doc, f, indent=2)
    os.replace(temp, path)


def write_config(run_dir: str, config) -> None:
    write_json(os.path.join(run_dir, "config.json"), config.to_dict())


def open_run(config, overwrite: bool = False, cancelled=lambda: False) -> Run:
    """Open ``config``'s run directory for one run (see the module docstring); RunError if refused.

    Every decision is taken under the directory's lock: a new run needs a directory that holds
    no run (``overwrite`` moves an old one aside first); a resumed one needs a checkpoint that
    loads and holds the same models and env."""
    run_dir = config.run_dir
    if overwrite and config.resume:
        raise RunError("--overwrite starts a run anew and --resume continues one: give only one")
    hint = "" if config.resume else " or choose another --name"
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot use {run_dir!r} as a run directory (--runs-dir/--name): "
                       f"{exc.strerror or exc}") from None
    lock = RunLock(run_dir)
    lock.acquire(cancelled=cancelled, hint=hint)
    try:
        payload = path = None
        if config.resume:
            payload, path = resume_checkpoint(config, run_dir)
        elif holds_run(run_dir) and overwrite:
            lock = move_aside(run_dir, lock, hint)
        elif holds_run(run_dir):
            raise RunError(f"{run_dir} already holds a run; continue it with --resume {run_dir}, choose another "
                           f"--name, or start anew with --overwrite (the old run is moved aside, not deleted)")
        write_config(run_dir, config)
    except OSError as exc:
        lock.release()
        raise RunError(f"cannot write to the run directory {run_dir}: {exc.strerror or exc}") from None
    except BaseException:
        lock.release()
        raise
    return Run(run_dir, lock, payload, path)
