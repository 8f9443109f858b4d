"""``python -m agents.bench system``: row selection and settings (fast), and one real short lstm run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents import bench

ROOT = Path(__file__).resolve().parents[2]
TABLE_KEYS = {"agent", "learner_waiting_pct", "actor_sps", "env_sps", "learner_sps", "distill_sps", "dprl"}


def row(t: float, env_steps: int, sps: float) -> dict:
    return {"wall_clock_s": t, "env_steps": env_steps, "learner_steps": env_steps // 100, "actor_sps": sps,
            "env_sps": sps, "learner_sps": sps / 2, "distill_sps": sps, "dprl": 2.0, "learner_waiting_pct": 10.0}


def test_measured_rows_skip_startup_warmup_and_shutdown():
    rows = [row(1, 0, 0), row(2, 0, 0), row(3, 50, 1), row(4, 100, 10), row(5, 200, 20), row(6, 300, 30),
            row(7, 400, 40), row(8, 500, 50), row(9, 500, 0)]
    kept = bench.measured_rows(rows)
    # start-up rows, the first row with steps (t=3), the first 20% after it (t <= 4) and the shutdown row go
    assert [r["wall_clock_s"] for r in kept] == [5, 6, 7, 8]
    summary = bench.summarise_rows("ald", rows, {"num_actors": 2, "envs_per_actor": 16, "batch_size": 32}, 130, 1.0)
    assert summary.env_sps == pytest.approx(35.0) and summary.dprl == pytest.approx(2.0) and summary.rows == 4
    assert summary.runner == "parallel" and summary.trajectory_fetch_s is None
    baseline = bench.summarise_rows("lstm", rows, {"num_actors": 2, "envs_per_actor": 16, "batch_size": 32}, 0, 1.0)
    assert baseline.distill_sps is None and baseline.dprl is None and baseline.learner_sps == pytest.approx(17.5)
    assert bench.measured_rows([row(1, 0, 0), row(2, 0, 0)]) == []
    empty = bench.summarise_rows("gtrxl", [], {"num_actors": 1, "envs_per_actor": 1, "batch_size": 1}, 1, 0.0)
    assert empty.env_sps is None and empty.rows == 0


def test_system_options():
    assert bench.system_options("default", False, None) == {"num_actors": 2, "envs_per_actor": 16, "batch_size": 32}
    assert bench.system_options("default", True, None) == {"num_actors": bench.SINGLE_ENV_ACTORS,
                                                           "envs_per_actor": 1, "batch_size": 32}
    # the paper's batch of 64 from its 30 single-env actors (a batch may hold several segments of a stream)
    assert bench.system_options("paper", False, None) == {"num_actors": 30, "envs_per_actor": 1, "batch_size": 64}
    assert bench.system_options("default", False, 3) == {"num_actors": 3, "envs_per_actor": 16, "batch_size": 32}


@pytest.mark.parametrize("argv", [["system", "--seconds", "0"], ["system", "--agents", "ppo"],
                                  ["system", "--preset", "huge"]])
def test_bad_arguments_exit(argv):
    with pytest.raises(SystemExit):
        bench.main(argv)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_short_lstm_run(tmp_path):
    cmd = [sys.executable, "-m", "agents.bench", "system", "--seconds", "4", "--agents", "lstm", "--json",
           "--log-seconds", "1", "--num-actors", "1", "--runs-dir", str(tmp_path), "--stop-timeout", "30",
           "--extra-args=--envs-per-actor 4 --batch-size 4"]
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=150)
    finally:  # whatever happened, no process of the run survives the test
        pids_path = tmp_path / "lstm-parallel" / "pids.json"
        pids = json.loads(pids_path.read_text()) if pids_path.exists() else {}
        leftovers = [name for name, pid in pids.items() if alive(pid)]
        for name in leftovers:
            os.kill(pids[name], 9)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not leftovers
    [result] = json.loads(done.stdout)
    assert TABLE_KEYS <= set(result)
    assert result["agent"] == "lstm" and result["rows"] >= 1 and result["exit_code"] in (0, 130)
    assert (result["num_actors"], result["envs_per_actor"], result["batch_size"]) == (1, 4, 4)
    assert result["env_sps"] > 0 and result["actor_sps"] > 0 and result["learner_sps"] > 0
    assert result["distill_sps"] is None and result["dprl"] is None
    assert 0 <= result["learner_waiting_pct"] <= 100
    assert result["runner"] == "parallel" and result["trajectory_fetch_s"] is None
    assert os.listdir(tmp_path / "lstm-parallel" / "checkpoints")  # SIGINT -> clean shutdown with a final checkpoint
    if sys.platform.startswith("linux"):  # each role's share of the cores, from /proc
        shares = result["cpu_pct"]
        assert {"supervisor", "learner", "actor-0"} <= set(shares) and all(v >= 0 for v in shares.values())
        assert shares["learner"] > 0 and sum(shares.values()) <= 100 * os.cpu_count() + 10


def test_cpu_share_of_each_role_from_its_pid(tmp_path):
    (tmp_path / "pids.json").write_text(json.dumps({"me": os.getpid(), "gone": 2**22 + 12345}))
    before = (0.0, bench.system.role_cpu_seconds(str(tmp_path)))
    if before[1] is None:
        pytest.skip("no /proc on this system")
    assert set(before[1]) == {"me"}  # a process that is gone is left out
    sum(i * i for i in range(3_000_000))  # busy
    after = (before[0] + 2.0, bench.system.role_cpu_seconds(str(tmp_path)))
    used = after[1]["me"] - before[1]["me"]
    assert used > 0 and bench.system.cpu_percent(before, after) == {"me": round(100 * used / 2.0, 1)}
    assert bench.system.cpu_percent(before, None) is None and bench.system.role_cpu_seconds(str(tmp_path / "x")) is None
