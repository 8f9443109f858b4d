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
from process_helpers import alive, descendants, kill_all, pids, resume, rows, start, stop, wait_for
from runtime_helpers import tiny_config

REQUIRED = ("env_steps", "learner_steps", "distill_steps", "wall_clock_s", "episodes", "episode_return",
            "success_rate", "actor_sps", "env_sps", "learner_sps", "distill_sps", "dprl", "learner_waiting_pct",
            "queue_depth", "actor_restarts", "nan_updates", "loss", "kl_actor_learner", "policy_entropy", "actor_entropy",
            "eta", "alpha")


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
    assert last["wall_clock_s"] == pytest.approx(payload["counters"]["wall_clock_s"], abs=1e-3)  # one clock
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
        # the runner re-stages the batch it holds when the target is refreshed, and the batch the
        # learner takes right after a refresh has the model itself as its target: no recomputation
        assert last["learner_steps"] >= 3 * tiny_config().target_period and last["recomputed_targets"] == 0
        # DpRL is a bound over the whole run, not per window (distill catches up after it fell behind):
        # at most ratio x learner steps at every row, plus one step for each other process that
        # saw the same step due (HOGWILD!: they check the shared counters without a lock)
        config = json.loads((tmp_path / "p" / "config.json").read_text())
        slack = config["num_distill"] - 1
        assert all(r["distill_steps"] <= config["distill_ratio"] * r["learner_steps"] + slack for r in all_rows)
    code, err = resume(tmp_path, agent, "p", last["env_steps"] + 800)
    assert code == 0, err[-3000:]
    assert "resuming from" in err
    resumed = rows(tmp_path)[len(all_rows):]
    assert resumed and resumed[0]["env_steps"] >= last["env_steps"] and resumed[-1]["final"]
    assert resumed[0]["wall_clock_s"] >= last["wall_clock_s"]
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
    below = set()
    try:
        assert wait_for(lambda: any(r["learner_steps"] >= 3 for r in rows(tmp_path)), 120, process)
        children = {k: v for k, v in pids(tmp_path).items() if k != "supervisor"}
        assert set(children) == set(topology_of(tiny_config(agent="ald")).roles(2, 2))
        below = descendants(process.pid)  # the roles and multiprocessing's resource tracker
        assert set(children.values()) < below
        os.kill(process.pid, signal.SIGKILL)
        killed = time.monotonic()
        assert wait_for(lambda: not descendants(process.pid) and not any(alive(p) for p in below), 30)
        gone_after = time.monotonic() - killed
    finally:
        stop(process, None)
        kill_all(below)
    assert gone_after < 15, gone_after
    payload, _ = checkpoint.load_latest(str(tmp_path / "p"))
    assert payload is not None and payload["learner"]["steps"] >= 3
    # the orphaned learner saved at its last step, under the run directory's lock
    assert payload["counters"]["learner_steps"] == payload["learner"]["steps"] >= rows(tmp_path)[-1]["learner_steps"]
    holder = json.load(open(tmp_path / "p" / "run.lock"))
    assert holder["role"] == "final checkpoint" and holder["pid"] == children["learner"]
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


@pytest.mark.parametrize("agent", ["ald", "lstm", "gtrxl", "asymm_ac"])
def test_help(agent):
    out = subprocess.run([sys.executable, "-m", f"agents.{agent}", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--total-env-steps" in out.stdout and "--preset" in out.stdout



class _NoTransport:
    def release(self) -> None:
        pass


def _raising_role(shared) -> None:
    from agents.runtime.drivers.processes import run_role

    def body():
        raise RuntimeError("the role's own error " + "x" * 2000)

    run_role(shared, "actor-0", 1, body)


def test_a_role_that_raises_gets_its_traceback_to_the_supervisor():
    """The error is the role's last message before its exit; the exit cancels the queues' feeder
    joins, which without a flush dropped the message (39 of 40 times in a bare spawned child)."""
    import dataclasses
    import multiprocessing

    from agents.runtime.drivers.processes import Shared

    ctx = multiprocessing.get_context("spawn")
    fields = {f.name: None for f in dataclasses.fields(Shared)}
    for _ in range(3):
        shared = Shared(**{**fields, "supervisor_pid": os.getpid(), "events": ctx.Queue(), "replay_responses": [],
                           "stop_actors": ctx.Event(), "stop_distill": ctx.Event(), "stop": ctx.Event(),
                           "transport": _NoTransport()})
        child = ctx.Process(target=_raising_role, args=(shared,))
        child.start()
        child.join(60)
        assert child.exitcode == 1
        kind, role, text = shared.events.get(timeout=10)
        assert (kind, role) == ("error", "actor-0") and "RuntimeError: the role's own error" in text


def test_a_run_that_reaches_its_target_says_so_in_its_rows(tmp_path):
    """The parallel driver's actors end episodes while it stops, so the final row's rate can fall
    below the target it stopped at: a row at the moment of the decision shows the crossing, and
    the final row says why the run ended (``agents.experiment`` then counts it as done)."""
    from agents.experiment import run_state

    process = start("lstm", tmp_path, stop_success_rate=0.01)  # (a random policy finds a goal now and then)
    code, _, err = stop(process, sig=None, timeout=180)
    assert code == 0, err[-2000:]
    written = rows(tmp_path)
    decision, final = written[-2], written[-1]
    assert not decision["final"] and decision["solved"] and decision["success_rate"] >= 0.01
    assert final["final"] and final["solved"] and final["env_steps"] >= decision["env_steps"]
    assert run_state(str(tmp_path / "p"), 10**9) == "done"
