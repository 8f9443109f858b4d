"""``python -m agents.gala`` on a Ray cluster of this machine (one per module), runs started as a
user starts them: gossip keeps the replicas together, a slow replica holds the others back by at
most --max-stale rounds, a killed replica resumes and rejoins, Ctrl-C stops every replica with a
final checkpoint and --resume continues them, bad input exits 2 before anything starts."""

import json
import os
import signal
import subprocess
import sys

import pytest

ray = pytest.importorskip("ray")  # the [ray] extra
from ray.cluster_utils import Cluster  # noqa: E402

from agents.runtime import checkpoint  # noqa: E402
from agents.runtime.metrics import read_jsonl  # noqa: E402
from process_helpers import alive, stop, wait_for  # noqa: E402
from runtime_helpers import SMALL_MAZE  # noqa: E402

TINY = ["--env-kwargs", SMALL_MAZE, "--max-episode-steps", "30", "--num-actors", "1", "--envs-per-actor", "4",
        "--batch-size", "8", "--unroll-length", "10", "--actor-overrides", json.dumps({"hidden_size": 16}),
        "--no-progress"]
"""80 env steps per learner step (one gossip round) of a replica."""


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    c.wait_for_nodes()
    handler = signal.getsignal(signal.SIGTERM)
    ray.init(address=c.address)
    signal.signal(signal.SIGTERM, handler)
    yield c
    ray.shutdown()
    c.shutdown()


def gala(tmp_path, cluster, name, *args, env=None):
    return subprocess.Popen([sys.executable, "-m", "agents.gala", "--runs-dir", str(tmp_path), "--name", name, *TINY,
                             "--replica-cpus", "0.3", "--ray-address", cluster.address, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, **(env or {})})


def gala_rows(tmp_path, name):
    return read_jsonl(str(tmp_path / name / "gala.jsonl"))


def replica_rows(tmp_path, name, replica):  # (a line a SIGKILL cut short is skipped)
    return read_jsonl(str(tmp_path / name / f"replica-{replica}" / "metrics.jsonl"))


def live_actors():
    table = ray._private.state.actors(actor_state_name="ALIVE")
    return [a for a in table.values() if str(a.get("ActorClassName", "")).split(".")[-1] in ("Replica", "GossipBoard")]


def test_gossip_keeps_the_replicas_in_a_ball_that_grows_without_it(cluster, tmp_path):
    """K = 3 on a ring (P = 2) against the same run without gossip (``--topology none``): the
    replicas start from the same parameters, so without gossip their seeds pull them apart."""
    runs = {t: gala(tmp_path, cluster, t, "--agent", "lstm", "--replicas", "3", "--topology", t,
                    "--total-env-steps", "8000", "--log-seconds", "1") for t in ("ring", "none")}
    final = {}
    for topology, process in runs.items():
        code, out, err = stop(process, None, timeout=240)
        assert code == 0, err[-3000:]
        rows = gala_rows(tmp_path, topology)
        final[topology] = rows[-1]
        assert rows[-1]["final"] and all(r["env_steps"] >= 8000 for r in rows[-1]["replicas"]), rows[-1]
        for i in range(3):
            payload, _ = checkpoint.load_latest(str(tmp_path / topology / f"replica-{i}"))
            assert payload["counters"]["env_steps"] == replica_rows(tmp_path, topology, i)[-1]["env_steps"]
    from agents.experiment import run_state
    from agents.plot import load_run

    curve = load_run(str(tmp_path / "ring"))  # one curve: the replicas' env steps summed
    assert curve.total_env_steps == 24000 and curve.env_steps[-1] >= 24000 and curve.label == "ring"
    assert run_state(str(tmp_path / "ring"), 8000) == "done" and run_state(str(tmp_path / "ring"), 9000) == "resume"
    ring, none = final["ring"], final["none"]
    spread = [r["consensus_distance"] for r in gala_rows(tmp_path, "none") if r["consensus_distance"] is not None]
    assert spread[-1] > spread[0], spread  # without gossip the replicas drift apart
    assert ring["peers"] == 2 and none["peers"] == 0
    assert all(r["gossip_rounds"] >= 100 and r["gossip_skipped"] <= r["gossip_rounds"] for r in ring["replicas"])
    # while all three train: about 0.02 with gossip; 0.67 at the end without (measured, see the README)
    together = [r["consensus_distance_max"] for r in gala_rows(tmp_path, "ring")
                if not r["replicas_away"] and r["consensus_distance_max"] is not None]
    assert together and max(together) < 0.25 * none["consensus_distance"], (together, none)
    assert wait_for(lambda: not live_actors(), 30)


def test_a_slow_replica_holds_the_others_back_by_at_most_max_stale_rounds(cluster, tmp_path):
    """Replica 2 sleeps 0.25 s per learner step: on a ring of 4 (P = 2, not a complete graph) its
    neighbours 1 and 3 run ahead of it up to --max-stale rounds and no further, while it is present."""
    max_stale = 3
    process = gala(tmp_path, cluster, "slow", "--agent", "lstm", "--replicas", "4", "--topology", "ring",
                   "--max-stale", str(max_stale), "--total-env-steps", "3200", "--log-seconds", "0.3",
                   env={"AGENTS_FAULTS": "replica-2:sleep=0.25"})
    code, _, err = stop(process, None, timeout=240)
    assert code == 0, err[-3000:]
    rows = gala_rows(tmp_path, "slow")
    gaps = [max(r["gossip_rounds"][1], r["gossip_rounds"][3]) - r["gossip_rounds"][2] for r in rows
            if not r["replicas_away"] and r["gossip_rounds"][2] > 0]
    assert gaps and max(gaps) <= max_stale + 1, gaps
    assert max(gaps) >= max_stale - 1, gaps  # they did run ahead (no lockstep)
    neighbours = [rows[-1]["replicas"][i] for i in (1, 3)]
    assert all(r["gossip_wait_s"] > 0 for r in neighbours), rows[-1]
    assert rows[-1]["replicas"][2]["gossip_wait_s"] < min(r["gossip_wait_s"] for r in neighbours), rows[-1]


def test_a_killed_replica_resumes_from_its_checkpoint_and_rejoins(cluster, tmp_path):
    process = gala(tmp_path, cluster, "kill", "--agent", "lstm", "--replicas", "2", "--topology", "ring",
                   "--total-env-steps", "48000", "--log-seconds", "0.5", "--checkpoint-minutes", "0.02")
    try:
        assert wait_for(lambda: len(checkpoint.list_checkpoints(str(tmp_path / "kill" / "replica-1"))) >= 2
                        and replica_rows(tmp_path, "kill", 1), 180, process), process.poll()
        pid = json.load(open(tmp_path / "kill" / "pids.json"))["replica-1"]
        os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: not alive(pid), 10)
        before = len(replica_rows(tmp_path, "kill", 1))  # (a dead process writes no more; its successor takes seconds)
        saved, _ = checkpoint.load_latest(str(tmp_path / "kill" / "replica-1"))
        killed_at = len(gala_rows(tmp_path, "kill"))
    finally:
        code, _, err = stop(process, None, timeout=240)
    assert code == 0, err[-3000:]
    assert "replica 1 failed" in err and "restarting it from its last checkpoint" in err, err[-3000:]
    last = gala_rows(tmp_path, "kill")[-1]
    assert last["final"] and last["replica_restarts"] == 1, last
    assert all(r["env_steps"] >= 48000 for r in last["replicas"]), last
    steps = [r["env_steps"] for r in replica_rows(tmp_path, "kill", 1)]
    resumed_at = saved["counters"]["env_steps"]  # a periodic checkpoint, not the start's
    assert resumed_at > 0 and len(steps) > before and min(steps[before:]) >= resumed_at, (resumed_at, before, steps)
    assert steps[-1] >= 48000, steps
    assert json.load(open(tmp_path / "kill" / "pids.json"))["replica-1"] != pid
    # it rejoined: present again and gossiping (its gossip counters are its new process's)
    later = gala_rows(tmp_path, "kill")[killed_at:]
    assert any(1 not in r["replicas_away"] and 0 not in r["replicas_away"] for r in later), later
    assert last["replicas"][1]["gossip_messages"] > 0 and last["consensus_distance"] is not None, last


def test_ctrl_c_stops_every_replica_with_a_final_checkpoint_and_resume_continues(cluster, tmp_path):
    process = gala(tmp_path, cluster, "sig", "--agent", "ald", "--replicas", "2", "--topology", "exponential",
                   "--num-distill", "1", "--learner-overrides",
                   json.dumps({"d_model": 32, "num_heads": 2, "head_dim": 16, "memory_length": 8}),
                   "--total-env-steps", str(10 ** 9), "--log-seconds", "0.5")
    try:
        assert wait_for(lambda: all(any(r["learner_steps"] > 0 for r in replica_rows(tmp_path, "sig", i))
                                    for i in range(2)), 180, process), process.poll()
        os.killpg(process.pid, signal.SIGINT)
    finally:
        code, _, err = stop(process, None, timeout=120)
    assert code == 130, err[-3000:]
    assert "--resume" in err
    ends = {}
    for i in range(2):
        last = replica_rows(tmp_path, "sig", i)[-1]
        payload, _ = checkpoint.load_latest(str(tmp_path / "sig" / f"replica-{i}"))
        assert last["final"] and payload["counters"]["env_steps"] == last["env_steps"], (i, last)
        ends[i] = last["env_steps"]
    assert wait_for(lambda: not live_actors(), 30)
    more = max(ends.values()) + 800
    # as agents.experiment resumes it: the run's own options again, --name/--runs-dir naming this directory
    resumed = subprocess.run([sys.executable, "-m", "agents.gala", "--resume", str(tmp_path / "sig"),
                              "--runs-dir", str(tmp_path), "--name", "sig", "--agent", "ald",
                              "--total-env-steps", str(more), "--ray-address", cluster.address, "--no-progress"],
                             capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for i in range(2):
        rows = replica_rows(tmp_path, "sig", i)
        assert rows[-1]["final"] and rows[-1]["env_steps"] >= more and rows[-1]["distill_steps"] > 0, rows[-1]
        first_end = next(k for k, r in enumerate(rows) if r["final"])
        assert len(rows) > first_end + 1 and all(r["env_steps"] >= ends[i] for r in rows[first_end + 1:]), rows
    assert wait_for(lambda: not live_actors(), 30)


@pytest.mark.parametrize("args,message", [
    (["--replicas", "0"], "--replicas must be >= 1"),
    (["--replicas", "3", "--peers", "3"], "--peers must be between 0 and"),
    (["--topology", "star"], "--topology must be one of"),
    (["--runner", "parallel"], "--runner"),
    (["--replicas", "3", "--replica-cpus", "1"], "needs 3 CPUs; the Ray cluster has 2"),
    (["--actor-cpus", "1"], "not for GALA replicas"),
    (["--device", "cuda"], "learn on the CPU"),
    (["--resume", "/"], "not a GALA run directory"),
])
def test_bad_input_exits_2_before_anything_starts(cluster, tmp_path, args, message):
    out = subprocess.run([sys.executable, "-m", "agents.gala", "--agent", "lstm", "--runs-dir", str(tmp_path / "r"),
                          "--ray-address", cluster.address, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and message in out.stderr, out.stderr[-2000:]
    assert not (tmp_path / "r").exists()
