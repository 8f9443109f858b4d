"""Runs as a user starts them (subprocesses), and what their processes and files show."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from agents.runtime.metrics import read_jsonl
from runtime_helpers import tiny_cli_args


def start(agent, tmp_path, name="p", extra=(), env=None, **overrides):
    """A tiny parallel run of ``agent`` in its own session (process group), as a user starts it."""
    args = tiny_cli_args(tmp_path, name, runner="parallel", total_env_steps=10**9, log_seconds=1, **overrides)
    return subprocess.Popen([sys.executable, "-m", f"agents.{agent}", *args, *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=None if env is None else {**os.environ, **env})


def wait_for(predicate, timeout, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if process is not None and process.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def rows(tmp_path, name="p"):
    return read_jsonl(str(tmp_path / name / "metrics.jsonl"))  # (a line a kill cut short is skipped)


def pids(tmp_path, name="p"):
    path = tmp_path / name / "pids.json"
    try:
        return json.load(open(path))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def stop(process, sig=signal.SIGINT, timeout=90):
    """Wait for the run to end (after sending ``sig`` if it is still running and none was sent)."""
    if process.poll() is None and sig is not None:
        process.send_signal(sig)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate(timeout=10)
        pytest.fail(f"the run did not stop within {timeout}s:\n{err[-3000:]}")
    return process.returncode, out, err


def resume(tmp_path, agent, name, env_steps, *extra):
    """``--resume`` the run ``name`` to ``env_steps``; (exit status, stderr)."""
    process = subprocess.Popen([sys.executable, "-m", f"agents.{agent}", "--resume", str(tmp_path / name),
                                "--total-env-steps", str(env_steps), "--no-progress", *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate(timeout=10)
    return process.returncode, err


def descendants(pid):
    """The pids of every live process below ``pid`` (children, their children, ...)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return {p for p in found if alive(p)}


def kill_all(pids_):
    for pid in pids_:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
