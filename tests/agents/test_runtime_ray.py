"""The Ray driver on a Ray cluster of this machine only (``ray.cluster_utils.Cluster``, one per
module): every agent trains, actors spread over nodes and come back when a node leaves, faults,
back-pressure, bad input. Runs are subprocesses started as a user starts them."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

ray = pytest.importorskip("ray")  # the [ray] extra (installed by the README's set-up and CI)
from ray.cluster_utils import Cluster  # noqa: E402

from agents.runtime import checkpoint  # noqa: E402
from process_helpers import alive, descendants, kill_all, pids, rows, stop, wait_for  # noqa: E402
from runtime_helpers import tiny_cli_args  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    """A head and two worker nodes of one CPU each, all on this machine."""
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    workers = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    ray.init(address=c.address)
    yield c, workers
    ray.shutdown()
    c.shutdown()


def alive_actors(name="RolloutWorker"):
    """The live Ray actors of that class on the cluster (the GCS's actor table; the state API
    would need the dashboard of ``ray[default]``)."""
    table = ray._private.state.actors(actor_state_name="ALIVE")
    return [a for a in table.values() if name in str(a.get("ActorClassName", ""))]


def start_ray(agent, tmp_path, address, name="p", env=None, **overrides):
    args = tiny_cli_args(tmp_path, name, runner="ray", total_env_steps=10**9, log_seconds=1, **overrides)
    return subprocess.Popen([sys.executable, "-m", f"agents.{agent}", *args, "--ray-address", address],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=None if env is None else {**os.environ, **env})


def test_every_agent_trains_on_ray_and_its_actors_follow_the_learner(cluster, tmp_path):
    c, _ = cluster
    agents = ("ald", "lstm", "gtrxl", "asymm_ac")
    runs = {a: subprocess.Popen([sys.executable, "-m", f"agents.{a}",
                                 *tiny_cli_args(tmp_path, a, runner="ray", total_env_steps=2400, actor_refresh=2,
                                                actor_cpus=0.25), "--ray-address", c.address],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
            for a in agents}
    for agent, process in runs.items():
        code, _, err = stop(process, None, timeout=240)
        assert code == 0, f"{agent}: {err[-3000:]}"
        last = rows(tmp_path, agent)[-1]
        assert last["final"] and last["env_steps"] >= 2400 and last["learner_steps"] > 0, agent
        assert last["actor_param_version"] > 0 and last["actor_param_checks"] > 0, agent
        assert last["actor_param_mismatches"] == 0, agent
        # (an actor counts on its node once it delivered: on a tiny budget one of two may not have)
        assert 1 <= sum(last["actors_per_node"].values()) <= 2 and last["trajectory_in_flight_s"] is not None
        payload, _ = checkpoint.load_latest(str(tmp_path / agent))
        assert payload["counters"]["env_steps"] == last["env_steps"]
        if agent == "ald":
            assert last["distill_steps"] > 0
    assert not alive_actors()


def test_actors_spread_over_nodes_come_back_when_a_node_leaves_and_ctrl_c_leaves_nothing(cluster, tmp_path):
    c, workers = cluster
    process = start_ray("lstm", tmp_path, c.address)
    try:
        assert wait_for(lambda: rows(tmp_path) and len(rows(tmp_path)[-1]["actors_per_node"]) == 2, 120, process), \
            rows(tmp_path)[-1:] or process.stderr.read()
        nodes = rows(tmp_path)[-1]["actors_per_node"]
        victim = next(w for w in workers if w.node_id[:12] in nodes)
        c.remove_node(victim)
        workers.remove(victim)
        workers.append(c.add_node(num_cpus=1))  # room for the replacement
        steps = rows(tmp_path)[-1]["env_steps"]
        assert wait_for(lambda: rows(tmp_path)[-1]["actor_restarts"] >= 1
                        and rows(tmp_path)[-1]["env_steps"] > steps + 800
                        and sum(rows(tmp_path)[-1]["actors_per_node"].values()) == 2, 120, process)
        assert victim.node_id[:12] not in rows(tmp_path)[-1]["actors_per_node"]
        local = descendants(process.pid)
        os.killpg(process.pid, signal.SIGINT)
        code, _, err = stop(process, None, timeout=90)
    finally:
        stop(process, None)
        kill_all(descendants(process.pid))
    assert code == 130 and "Traceback" not in err, err[-3000:]
    assert "was lost" in err and "restarting it" in err
    assert wait_for(lambda: not alive_actors() and not any(alive(p) for p in local), 30)
    last = rows(tmp_path)[-1]
    payload, _ = checkpoint.load_latest(str(tmp_path / "p"))
    assert last["final"] and payload["counters"]["env_steps"] == last["env_steps"]


def test_a_slow_learner_keeps_trajectories_in_flight_bounded_and_its_death_ends_the_run(cluster, tmp_path):
    c, _ = cluster
    process = start_ray("lstm", tmp_path, c.address, env={"AGENTS_FAULTS": "learner:sleep=0.5"}, max_in_flight=2)
    try:
        assert wait_for(lambda: len(rows(tmp_path)) >= 8, 120, process)
        seen = [r["trajectories_in_flight"] for r in rows(tmp_path)]
        assert max(seen) <= 2 * 2 and max(r["queue_depth"] for r in rows(tmp_path)) <= 8
        os.kill(pids(tmp_path)["learner"], signal.SIGKILL)
        code, _, err = stop(process, None, timeout=90)
    finally:
        stop(process, None)
    assert code == 1 and "learner process died" in err
    assert wait_for(lambda: not alive_actors(), 30)


@pytest.mark.parametrize("args, message", [
    (["--ray-address", "127.0.0.1:1"], "nothing listens there"),
    (["--num-actors", "40"], "the Ray cluster has"),
])
def test_bad_ray_input_exits_2_before_training(cluster, tmp_path, args, message):
    c, _ = cluster
    base = tiny_cli_args(tmp_path, "bad", runner="ray")
    out = subprocess.run([sys.executable, "-m", "agents.lstm", *base, "--ray-address", c.address, *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and message in out.stderr, out.stderr[-2000:]
    assert not (tmp_path / "bad" / "checkpoints").exists()
