"""GALA's supervisor: joins (or starts) the Ray cluster, opens the GALA run directory, starts
the gossip board and the K replicas, writes a row per ``--log-seconds`` (per-replica progress,
gossip rounds, the consensus distance), restarts a crashed replica from its last checkpoint
while the others go on, and on Ctrl-C/SIGTERM stops every replica with a final checkpoint.

The GALA run directory holds ``gala.json`` (both configs), ``gala.jsonl`` (its rows),
``pids.json`` (each replica's process) and one ordinary run directory per replica.
"""

from __future__ import annotations

import json
import os
import sys
import time

from agents.gala.board import GossipBoard
from agents.gala.files import GALA_FILE, ROWS_FILE, read_gala_rows
from agents.gala.mixing import consensus_distances
from agents.gala.replica import Replica
from agents.runtime.faults import fault_environment
from agents.runtime.run_directory import RunError, RunLock, move_aside, write_json



def open_gala_dir(config, gala, overwrite: bool) -> tuple[str, RunLock]:
    """The run directory, locked for this supervisor; a new run refuses one that holds a run
    (``overwrite`` moves it aside, under its lock, as ``open_run`` does)."""
    run_dir = config.run_dir
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot use {run_dir!r} as a run directory (--runs-dir/--name): {exc.strerror}") from None
    lock = RunLock(run_dir)
    if not lock.try_acquire("gala"):
        raise RunError(f"{run_dir} is in use by another GALA run")
    if not config.resume and os.path.exists(os.path.join(run_dir, GALA_FILE)):
        if not overwrite:
            lock.release()
            raise RunError(f"{run_dir} already holds a GALA run; continue it with --resume {run_dir}, choose "
                           f"another --name, or --overwrite")
        lock = move_aside(run_dir, lock)
    write_json(os.path.join(run_dir, GALA_FILE), {"run": {**config.to_dict(), "resume": ""}, "gala": gala.to_dict()})
    return run_dir, lock


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


class GalaSupervisor:
    def __init__(self, config, gala, run_dir: str, stop):
        import ray

        self.ray, self.config, self.gala, self.run_dir, self.stop = ray, config, gala, run_dir, stop
        self.board = ray.remote(GossipBoard).options(num_cpus=0).remote(gala.replicas)
        self.replica_class = ray.remote(Replica)
        self.handles: dict[int, object] = {}
        self.running: dict[object, int] = {}  # train call -> replica
        self.final: dict[int, dict] = {}
        self.pids: dict[int, int] = {}
        self.pid_calls: dict[object, int] = {}
        self.created: dict[int, float] = {}  # replica -> when its actor was created (until it answers)
        self.restarts = 0
        self.failure: str | None = None
        self.lost_in_stop: list[str] = []
        self.stopping = False
        self.start_time = time.monotonic()
        self.wall_before = self.previous_wall_clock()

    def previous_wall_clock(self) -> float:
        rows = read_gala_rows(self.run_dir)
        return float(rows[-1]["wall_clock_s"]) if rows else 0.0

    def start(self, replica: int) -> None:
        options = dict(num_cpus=self.gala.replica_cpus, max_restarts=0, max_concurrency=4,
                       scheduling_strategy="SPREAD")
        faults = fault_environment()
        if faults:
            options["runtime_env"] = {"env_vars": faults}
        handle = self.replica_class.options(**options).remote(self.config, self.gala, replica, self.board)
        self.handles[replica] = handle
        self.running[handle.train.remote()] = replica
        self.pid_calls[handle.pid.remote()] = replica
        self.created[replica] = time.monotonic()

    def check_started(self) -> None:
        """Record the pids of replicas that started; warn of one Ray has not placed for a minute."""
        if self.pid_calls:
            done, _ = self.ray.wait(list(self.pid_calls), num_returns=len(self.pid_calls), timeout=0)
            for ref in done:
                replica = self.pid_calls.pop(ref)
                self.created.pop(replica, None)
                try:
                    self.pids[replica] = self.ray.get(ref)
                except self.ray.exceptions.RayError:
                    continue  # (its train call reports the loss)
                self.write_pids()
        for replica, since in list(self.created.items()):
            if time.monotonic() - since > 60:
                print(f"warning: replica {replica} has not started for 60 s: the cluster has no free "
                      f"{self.gala.replica_cpus:g} CPU(s) for it (another job?)", file=sys.stderr)
                del self.created[replica]

    def write_pids(self) -> None:
        write_json(os.path.join(self.run_dir, "pids.json"), {f"replica-{i}": pid for i, pid in sorted(self.pids.items())})

    def ended(self, ref) -> None:
        """A train call returned: the replica finished, or it crashed and is restarted."""
        replica = self.running.pop(ref)
        try:
            self.final[replica] = self.ray.get(ref)
            return
        except self.ray.exceptions.RayError as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        self.ray.get(self.board.leave.remote(replica, lost=True))
        try:
            self.ray.kill(self.handles[replica], no_restart=True)
        except self.ray.exceptions.RayError:
            pass
        if self.stopping:
            if replica in self.pids:  # (one never placed had nothing to save)
                self.lost_in_stop.append(f"replica {replica} failed while stopping ({reason}): it wrote no final "
                                         f"checkpoint; --resume continues it from its last periodic one")
            return
        self.restarts += 1
        if self.restarts > self.gala.max_replica_restarts:
            self.failure = (f"replica {replica} failed and the run had {self.gala.max_replica_restarts} replica "
                            f"restart(s) (--max-replica-restarts); last: {reason}")
            return
        print(f"warning: replica {replica} failed ({reason}); restarting it from its last checkpoint "
              f"({self.restarts}/{self.gala.max_replica_restarts})", file=sys.stderr)
        self.start(replica)

    def progress(self) -> dict[int, dict | None]:
        calls = {i: self.handles[i].progress.remote() for i in self.handles if i not in self.final}
        rows = dict(self.final)
        for i, call in calls.items():
            try:
                rows[i] = self.ray.get(call, timeout=2)
            except self.ray.exceptions.RayError:
                rows[i] = None
        return rows

    def row(self, final: bool = False) -> dict:
        ray = self.ray
        rows = self.progress()
        rounds, away = ray.get(self.board.progress.remote())
        params = []
        for message in ray.get(self.board.snapshot.remote()):
            try:
                params.append(None if message is None else ray.get(message[0], timeout=5))
            except ray.exceptions.RayError:  # (its replica died since)
                params.append(None)
        distances = [None] * self.gala.replicas
        have = [i for i, p in enumerate(params) if p is not None]
        training = [i for i in have if i not in away]
        if len(training) > 1 and not final:  # the ball of the replicas training now (a finished one is frozen)
            have = training
        if len(have) > 1:  # (over the replicas with a message: one restarting has none for a moment)
            for i, d in zip(have, consensus_distances([params[i] for i in have])):
                distances[i] = d
        per = []
        for i in range(self.gala.replicas):
            r = rows.get(i) or {}
            per.append({"replica": i, "env_steps": r.get("env_steps", 0), "learner_steps": r.get("learner_steps", 0),
                        "episodes": r.get("episodes", 0), "success_rate": r.get("success_rate"),
                        "episode_return": r.get("episode_return"),
                        "env_sps": None if r.get("final") and not final else r.get("env_sps"),  # (a finished one steps no env)
                        "gossip_rounds": rounds[i], "gossip_skipped": r.get("gossip_skipped", 0),
                        "gossip_messages": r.get("gossip_messages", 0),
                        "gossip_wait_s": r.get("gossip_wait_s", 0.0), "consensus_distance": distances[i]})
        present = [d for d in distances if d is not None]
        return {
            "wall_clock_s": round(self.wall_before + time.monotonic() - self.start_time, 3),
            "env_steps": sum(p["env_steps"] for p in per), "learner_steps": sum(p["learner_steps"] for p in per),
            "episodes": sum(p["episodes"] for p in per),
            "env_sps": sum(p["env_sps"] or 0.0 for p in per), "success_rate": _mean(p["success_rate"] for p in per),
            "episode_return": _mean(p["episode_return"] for p in per),
            "consensus_distance": _mean(present), "consensus_distance_max": max(present) if present else None,
            "gossip_rounds": rounds, "replicas_away": away, "replica_restarts": self.restarts,
            "replicas": per, "agent": self.config.agent, "env_id": self.config.env_id,
            "topology": self.gala.topology, "peers": self.gala.resolved_peers, "final": final,
        }

    def write(self, row: dict) -> None:
        with open(os.path.join(self.run_dir, ROWS_FILE), "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.config.progress:
            success = "-" if row["success_rate"] is None else f"{row['success_rate']:.2f}"
            distance = "-" if row["consensus_distance"] is None else f"{row['consensus_distance']:.4g}"
            print(f"gala {self.config.agent}: {row['env_steps']:,} env steps ({row['env_sps']:,.0f}/s), success "
                  f"{success}, consensus distance {distance}, rounds {row['gossip_rounds']}", file=sys.stderr)

    def run(self) -> int:
        print(f"gala: {self.gala.replicas} {self.config.agent} replicas, topology {self.gala.topology} "
              f"(P={self.gala.resolved_peers}), run directory {self.run_dir}", file=sys.stderr)
        for i in range(self.gala.replicas):
            self.start(i)
        last = time.monotonic()
        try:
            while self.running:
                done, _ = self.ray.wait(list(self.running), num_returns=1, timeout=0.2)
                for ref in done:
                    self.ended(ref)
                self.check_started()
                if not self.stopping and (self.stop() or self.failure):
                    self.stopping = True
                    for i, handle in self.handles.items():
                        if i in self.final:
                            continue
                        if i in self.pids:
                            handle.stop.remote()
                        else:  # never placed (no free CPUs): nothing to save, and it would never answer
                            self.ray.kill(handle, no_restart=True)
                if time.monotonic() - last >= self.config.log_seconds and self.running:
                    self.write(self.row())
                    last = time.monotonic()
            row = self.row(final=True)
            self.write(row)
        finally:
            for handle in self.handles.values():
                try:
                    self.ray.kill(handle, no_restart=True)
                except self.ray.exceptions.RayError:
                    pass
            try:
                self.ray.kill(self.board, no_restart=True)
            except self.ray.exceptions.RayError:
                pass
        success = "-" if row["success_rate"] is None else f"{row['success_rate']:.2f}"
        print(f"gala {self.config.agent}: {row['env_steps']:,} env steps over {self.gala.replicas} replicas, success "
              f"rate {success}, consensus distance {row['consensus_distance']}; run directory {self.run_dir}")
        for i, message in enumerate([self.failure, *self.lost_in_stop] if self.failure else self.lost_in_stop):
            print(f"{'error' if i == 0 else 'also'}: {message}", file=sys.stderr)
        if self.failure or self.lost_in_stop:
            return 1
        if self.stop():
            print(f"interrupted: --resume {self.run_dir} continues every replica from its final checkpoint",
                  file=sys.stderr)
            return 130
        return 0


def run_gala(config, gala, overwrite: bool, signalled) -> int:
    """Run to the end: 0 done, 1 failed, 130 interrupted; RunError before anything started."""
    import ray

    from agents.runtime.drivers.ray_driver import connect

    started = False
    try:
        started = connect(config, signalled)
        cpus = ray.cluster_resources().get("CPU", 0.0)
        needed = gala.replicas * gala.replica_cpus
        if needed > cpus + 1e-9:
            raise RunError(f"--replicas {gala.replicas} x --replica-cpus {gala.replica_cpus:g} needs {needed:g} CPUs; "
                           f"the Ray cluster has {cpus:g}")
        largest = max((n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n["Alive"]), default=0.0)
        if gala.replica_cpus > largest + 1e-9:
            raise RunError(f"--replica-cpus {gala.replica_cpus:g}: no node of the Ray cluster has that many CPUs "
                           f"(the largest has {largest:g})")
        if signalled():
            print("interrupted before the run started", file=sys.stderr)
            return 130
        run_dir, lock = open_gala_dir(config, gala, overwrite)
        try:
            return GalaSupervisor(config, gala, run_dir, signalled).run()
        finally:
            lock.release()
    finally:
        ray.shutdown()
        if started:
            print("ray: the local instance this run started is shut down", file=sys.stderr)
