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
import torch

ray = pytest.importorskip("ray")  # the [ray] extra (installed by the README's set-up and CI)
from ray.cluster_utils import Cluster  # noqa: E402

from agents.runtime import checkpoint  # noqa: E402
from agents.runtime.assembly import make_stores  # noqa: E402
from process_helpers import alive, descendants, kill_all, pids, rows, stop, wait_for  # noqa: E402
from runtime_helpers import tiny_cli_args, tiny_config  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    """A head and two worker nodes of one CPU each, all on this machine."""
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    workers = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    handler = signal.getsignal(signal.SIGTERM)
    ray.init(address=c.address)
    signal.signal(signal.SIGTERM, handler)  # ray.init installs sys.exit for SIGTERM in this process
    yield c, workers
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def lingering():
    """Ray's per-node agents of a local instance whose driver was SIGKILLed: they exit on their own,
    but only after trying to report to the dead GCS for about a minute, so the module checks them
    at its end instead of waiting in the test."""
    pids_ = set()
    yield pids_
    gone = wait_for(lambda: not any(alive(p) for p in pids_), 150)
    kill_all(pids_)
    assert gone, "Ray's agents outlived their SIGKILLed driver by more than 150 s"


def ray_agent(pid) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read().startswith(("ray::DashboardAgent", "ray::RuntimeEnvAgent"))
    except OSError:
        return False


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


def test_a_local_instance_stops_cleanly_on_sigterm_and_sigkill(tmp_path, lingering):
    """Without ``--ray-address`` the run starts (and owns) a Ray instance of this machine. SIGTERM
    to the whole process group (``timeout``, Slurm; Ray's own processes get it too, and Ray's
    handler in the main process is replaced by the run's) ends with exit 130, a final checkpoint
    and the instance shut down; after a ``--resume``, SIGKILL of the main process leaves no process
    behind either: the learner side's watchdogs and Ray's fate-sharing end everything within
    seconds but Ray's two per-node agents, which take about a minute (see ``lingering``)."""
    args = tiny_cli_args(tmp_path, "local", runner="ray", total_env_steps=10**9, log_seconds=1, num_actors=1)
    commands = {"sigterm": [sys.executable, "-m", "agents.lstm", *args],
                "sigkill": [sys.executable, "-m", "agents.lstm", "--resume", str(tmp_path / "local"), "--no-progress"]}
    steps = 0
    for how, command in commands.items():
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        below = set()
        try:
            assert wait_for(lambda: rows(tmp_path, "local") and rows(tmp_path, "local")[-1]["env_steps"] > steps,
                            120, process), how
            below = descendants(process.pid)
            assert len(below) >= 3, below  # the learner side and Ray's processes
            if how == "sigterm":
                os.killpg(process.pid, signal.SIGTERM)
            else:
                process.send_signal(signal.SIGKILL)
            code, _, err = stop(process, None, timeout=90)
            if how == "sigkill":
                lingering.update(p for p in below if ray_agent(p))
            ours = below - lingering
            assert wait_for(lambda: not any(alive(p) for p in ours), 30), (how, [p for p in ours if alive(p)])
        finally:
            stop(process, None)
            kill_all((descendants(process.pid) | below) - lingering)
        if how == "sigkill":
            assert code == -signal.SIGKILL
            continue
        assert code == 130 and "Traceback" not in err, err[-3000:]
        assert "the local instance this run started is shut down" in err
        last = rows(tmp_path, "local")[-1]
        payload, _ = checkpoint.load_latest(str(tmp_path / "local"))
        assert last["final"] and payload["counters"]["env_steps"] == last["env_steps"]
        steps = last["env_steps"]


def test_every_agent_trains_on_ray_and_its_actors_follow_the_learner(cluster, tmp_path):
    """All four at once (a quarter CPU per actor). Asymm. AC's first workers raise before their
    second rollout (``AGENTS_FAULTS``, passed on to the workers): the run cannot reach its budget
    without at least one of them raising and being replaced (on the shared cores one worker may
    start so late that the run ends first; a replacement may not deliver before the end). ALD's
    budget is four times the others': its actors follow the distillers, which start on their own
    and may begin well after the learner (2400 env steps are about 7 s of a loaded run, and once
    ended with no distilled version an actor had acted with)."""
    c, _ = cluster
    budgets = {"ald": 9600, "lstm": 2400, "gtrxl": 2400, "asymm_ac": 2400}
    runs = {a: subprocess.Popen([sys.executable, "-m", f"agents.{a}",
                                 *tiny_cli_args(tmp_path, a, runner="ray", total_env_steps=budget, actor_refresh=2,
                                                actor_cpus=0.25), "--ray-address", c.address],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                                env={**os.environ, "AGENTS_FAULTS": "actor-0:1,actor-1:1" if a == "asymm_ac" else ""})
            for a, budget in budgets.items()}
    for agent, process in runs.items():
        code, _, err = stop(process, None, timeout=240)
        assert code == 0, f"{agent}: {err[-3000:]}"
        last = rows(tmp_path, agent)[-1]
        seen = (agent, {k: last.get(k) for k in ("env_steps", "learner_steps", "distill_steps", "actor_param_version",
                                                  "actor_param_checks", "actor_param_mismatches", "actor_restarts",
                                                  "actors_per_node", "trajectory_in_flight_s", "trajectory_fetch_s")})
        assert last["final"] and last["env_steps"] >= budgets[agent] and last["learner_steps"] > 0, seen
        assert last["actor_param_version"] > 0 and last["actor_param_checks"] > 0, seen
        assert last["actor_param_mismatches"] == 0, seen
        # (an actor counts on its node once it delivered: on a tiny budget one of two may not have)
        assert 1 <= sum(last["actors_per_node"].values()) <= 2 and last["trajectory_in_flight_s"] is not None, seen
        assert last["trajectory_fetch_s"] >= 0 and last["trajectory_in_flight_s"] >= 0, seen
        payload, _ = checkpoint.load_latest(str(tmp_path / agent))
        assert payload["counters"]["env_steps"] == last["env_steps"], seen
        initial = make_stores(tiny_config(agent=agent), None).actor.tensors
        assert any(not torch.equal(initial[k], payload["actor"][k]) for k in initial), seen
        if agent == "ald":
            assert last["distill_steps"] > 0, seen
        if agent == "asymm_ac":
            assert 1 <= last["actor_restarts"] <= 2 and "fault injected by AGENTS_FAULTS after 1 rollouts" in err, err
        else:
            assert last["actor_restarts"] == 0, (seen, err[-3000:])
    assert wait_for(lambda: not alive_actors(), 30)


class RecordingTransport:
    """The learner side's end of the transport, recording what arrives."""

    def __init__(self):
        self.items = []

    def try_put(self, item) -> bool:
        self.items.append(item)
        return True


def test_a_replaced_worker_starts_new_episodes_and_its_predecessor_delivers_nothing(cluster):
    """The fleet itself, on the cluster: a worker killed with calls in flight is reported lost
    once; what it still had in flight never arrives; its replacement's first trajectory starts
    new episodes on every stream, while each earlier trajectory continued the one before."""
    from types import SimpleNamespace

    import numpy as np
    import torch.multiprocessing as mp

    from agents.runtime.assembly import make_stores
    from agents.runtime.drivers.ray_driver import RayFleet
    from agents.runtime.metrics import RunStats
    from agents.runtime.transport.channels import Counters

    config = tiny_config(agent="lstm", runner="ray", num_actors=1, max_in_flight=2, max_episode_steps=100)
    ctx = mp.get_context("spawn")
    transport = RecordingTransport()
    fleet = RayFleet(config, SimpleNamespace(stores=make_stores(config, None, ctx), transport=transport,
                                             counters=Counters.create(ctx)), RunStats(config))
    lost = []
    try:
        fleet.start(0, restarts=0)
        assert wait_for(lambda: lost.extend(fleet.poll()) or len(transport.items) >= 3, 60)
        ray.kill(fleet.workers[0], no_restart=True)
        assert wait_for(lambda: lost.extend(fleet.poll()) or lost, 30)
        delivered = len(transport.items)
        fleet.start(0, restarts=1)
        assert wait_for(lambda: lost.extend(fleet.poll()) or len(transport.items) >= delivered + 2, 60)
    finally:
        fleet.stop()
    assert [actor for actor, _ in lost] == [0] and "was lost" in lost[0][1]
    first_life, second_life = transport.items[:delivered], transport.items[delivered:]
    for before, after in zip(first_life, first_life[1:]):  # one continuous stream per env
        np.testing.assert_array_equal(before.obs[-1], after.obs[0])
        np.testing.assert_array_equal(before.first[-1], after.first[0])
    assert second_life[0].first[0].all()  # the replacement starts every episode afresh
    np.testing.assert_array_equal(second_life[0].obs[-1], second_life[1].obs[0])
    assert all(t.actor_id == 0 for t in transport.items)


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
    (["--num-actors", "1", "--actor-cpus", "2"], "no node of the Ray cluster has that many CPUs"),
    (["--ray-address", "ray://127.0.0.1:10001"], "Ray Client addresses (ray://) are not supported"),
])
def test_bad_ray_input_exits_2_before_training(cluster, tmp_path, args, message):
    c, _ = cluster
    base = tiny_cli_args(tmp_path, "bad", runner="ray")
    out = subprocess.run([sys.executable, "-m", "agents.lstm", *base, "--ray-address", c.address, *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and message in out.stderr, out.stderr[-2000:]
    assert not (tmp_path / "bad").exists()  # refused before the run directory is opened
