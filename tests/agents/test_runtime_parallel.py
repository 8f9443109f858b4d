"""The parallel runner as a user runs it (subprocess): every agent, faults, signals, clean exit."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from agents.runtime import checkpoint
from agents.runtime.assembly import make_stores
from agents.runtime.topology import topology_of
from runtime_helpers import tiny_cli_args, tiny_config

REQUIRED = ("env_steps", "learner_steps", "distill_steps", "wall_clock_s", "episodes", "episode_return",
            "success_rate", "actor_sps", "env_sps", "learner_sps", "distill_sps", "dprl", "learner_waiting_pct",
            "queue_depth", "actor_restarts", "nan_updates", "loss", "kl_actor_learner", "eta", "alpha")


def start(agent, tmp_path, name="p", **overrides):
    args = tiny_cli_args(tmp_path, name, runner="parallel", total_env_steps=10**9, log_seconds=1, **overrides)
    return subprocess.Popen([sys.executable, "-m", f"agents.{agent}", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


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
    path = tmp_path / name / "metrics.jsonl"
    return [json.loads(line) for line in open(path)] if path.exists() else []


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


@pytest.fixture
def shm_before():
    return set(os.listdir("/dev/shm"))


def resume(tmp_path, agent, name, env_steps):
    process = subprocess.Popen([sys.executable, "-m", f"agents.{agent}", "--resume", str(tmp_path / name),
                                "--total-env-steps", str(env_steps), "--no-progress"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate(timeout=10)
    return process.returncode, err


# Every agent, and each of SIGINT and SIGTERM sent to the main process alone and to the whole
# process group (a terminal's Ctrl-C, `timeout`, `scancel`, `kill -TERM -PGID`).
@pytest.mark.parametrize("agent, sig, group", [("ald", signal.SIGTERM, True), ("lstm", signal.SIGTERM, False),
                                               ("gtrxl", signal.SIGINT, False), ("asymm_ac", signal.SIGINT, True)])
def test_each_agent_runs_in_parallel_stops_on_a_signal_and_resumes_from_its_final_checkpoint(
        tmp_path, agent, sig, group, shm_before):
    process = start(agent, tmp_path, actor_refresh=2)
    sent = None
    try:
        assert wait_for(lambda: any(r["learner_steps"] >= 5 for r in rows(tmp_path)), 120, process), \
            process.stderr.read() if process.poll() is not None else "no learner progress"
        time.sleep(2)
        if group:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
        sent = time.monotonic()
    finally:
        code, out, err = stop(process, sig if sent is None else None)
    assert code == 130, err[-3000:]
    assert time.monotonic() - sent < 30 and "Traceback" not in err
    children = {k: v for k, v in pids(tmp_path).items() if k != "supervisor"}
    expected = {"learner", "actor-0", "actor-1"} | ({"runner"} if agent in ("ald", "asymm_ac") else set())
    expected |= {"replay", "distill-0", "distill-1"} if agent == "ald" else set()
    assert set(children) == expected
    assert not any(alive(pid) for pid in children.values())
    assert set(os.listdir("/dev/shm")) <= shm_before
    payload, _ = checkpoint.load_latest(str(tmp_path / "p"))
    assert payload is not None and payload["learner"]["steps"] >= 5
    all_rows = rows(tmp_path)
    last = all_rows[-1]
    assert last["final"] is True
    # the final checkpoint is at the last learner step and its counters are the last row's
    assert last["learner_steps"] == payload["learner"]["steps"] == payload["counters"]["learner_steps"]
    for key in ("env_steps", "episodes", "distill_steps"):
        assert last[key] == payload["counters"][key], key
    for key in REQUIRED:
        assert key in last, key
    measured = [r for r in all_rows if r["learner_waiting_pct"] is not None]
    assert measured and all(0.0 <= r["learner_waiting_pct"] <= 100.0 for r in measured)
    assert max(r["actor_sps"] or 0 for r in all_rows) > 0 and max(r["learner_sps"] for r in all_rows) > 0
    # the actors act with the published parameters, which moved away from the initial ones
    assert last["actor_param_version"] > 0 and last["actor_param_checks"] > 0
    assert last["actor_param_mismatches"] == 0
    initial = make_stores(tiny_config(agent=agent), None).actor.tensors
    assert any(not torch.equal(initial[k], payload["actor"][k]) for k in initial)
    if agent == "ald":
        assert last["distill_steps"] > 0
        distill_rows = [r["dprl"] for r in rows(tmp_path) if r["dprl"] is not None]
        assert max(distill_rows) <= 2.0 + 1e-6 or sum(distill_rows) / len(distill_rows) <= 2.5  # --distill-ratio 2
    code, err = resume(tmp_path, agent, "p", last["env_steps"] + 800)
    assert code == 0, err[-3000:]
    assert "resuming from" in err
    resumed = rows(tmp_path)[len(all_rows):]
    assert resumed and resumed[0]["env_steps"] >= last["env_steps"] and resumed[-1]["final"]
    final, _ = checkpoint.load_latest(str(tmp_path / "p"))
    assert final["counters"]["env_steps"] >= last["env_steps"] + 800
    assert final["learner"]["steps"] > payload["learner"]["steps"]
    assert set(os.listdir("/dev/shm")) <= shm_before


def test_killed_actor_is_restarted_and_run_continues(tmp_path):
    process = start("lstm", tmp_path)
    try:
        assert wait_for(lambda: "actor-0" in pids(tmp_path) and rows(tmp_path), 120, process)
        victim = pids(tmp_path)["actor-0"]
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: pids(tmp_path).get("actor-0") not in (None, victim), 30, process)
        steps = rows(tmp_path)[-1]["env_steps"]
        assert wait_for(lambda: rows(tmp_path)[-1]["env_steps"] > steps + 1000
                        and rows(tmp_path)[-1]["actor_restarts"] == 1, 60, process)
    finally:
        code, out, err = stop(process)
    assert code == 130 and "restarting" in err


def test_repeated_actor_crashes_end_the_run_with_a_clear_error(tmp_path):
    process = start("lstm", tmp_path, max_actor_restarts=1)
    try:
        for _ in range(2):
            assert wait_for(lambda: "actor-0" in pids(tmp_path) and alive(pids(tmp_path)["actor-0"]), 60, process)
            os.kill(pids(tmp_path)["actor-0"], signal.SIGKILL)
            time.sleep(1.5)
        assert wait_for(lambda: process.poll() is not None, 60)
    finally:
        code, out, err = stop(process)
    assert code == 1 and "crashed 2 times" in err
    assert not any(alive(pid) for pid in pids(tmp_path).values())


def test_killed_supervisor_stops_every_child_and_the_learner_saves(tmp_path, shm_before):
    """SIGKILL of the main process (the OOM killer's usual pick): no role trains on unsupervised."""
    process = start("ald", tmp_path)
    try:
        assert wait_for(lambda: any(r["learner_steps"] >= 3 for r in rows(tmp_path)), 120, process)
        children = {k: v for k, v in pids(tmp_path).items() if k != "supervisor"}
        assert set(children) == set(topology_of(tiny_config(agent="ald")).roles(2, 2))
        os.kill(process.pid, signal.SIGKILL)
        assert wait_for(lambda: not any(alive(pid) for pid in children.values()), 30)
    finally:
        stop(process, None)
        for pid in pids(tmp_path).values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    payload, _ = checkpoint.load_latest(str(tmp_path / "p"))
    assert payload is not None and payload["learner"]["steps"] >= 3
    assert wait_for(lambda: set(os.listdir("/dev/shm")) <= shm_before, 10)


def test_dead_learner_stops_everything_within_seconds(tmp_path):
    process = start("lstm", tmp_path)
    try:
        assert wait_for(lambda: rows(tmp_path) and "learner" in pids(tmp_path), 120, process)
        os.kill(pids(tmp_path)["learner"], signal.SIGKILL)
        killed = time.monotonic()
        assert wait_for(lambda: process.poll() is not None, 30)
        assert time.monotonic() - killed < 30
    finally:
        code, out, err = stop(process)
    assert code == 1 and "learner process died" in err
    assert not any(alive(pid) for pid in pids(tmp_path).values())


@pytest.mark.parametrize("args, message", [
    (["--env-id", "MemoryEnvs/IMaze-9x9-v1"], "MemoryEnvs/IMaze-9x9-v0"),
    (["--num-actors", "0"], "num-actors"),
    (["--batch-size", "10", "--envs-per-actor", "4"], "multiple of"),
    (["--learner-overrides", "{not json"], "not valid JSON"),
    (["--learner-overrides", '{"d_modle": 8}'], "unknown override"),
    (["--learning-rate", "-1"], "learning-rate"),
])
def test_bad_cli_input_exits_2_before_any_process_starts(tmp_path, args, message):
    out = subprocess.run([sys.executable, "-m", "agents.ald", "--runs-dir", str(tmp_path), *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and message in out.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("agent", ["ald", "lstm", "gtrxl", "asymm_ac"])
def test_help(agent):
    out = subprocess.run([sys.executable, "-m", f"agents.{agent}", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--total-env-steps" in out.stdout and "--preset" in out.stdout

