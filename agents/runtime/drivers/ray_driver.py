"""The Ray driver: the actors are Ray actors anywhere on a cluster; the learner side runs here.

    RolloutWorker x N_A (any node, --actor-cpus each; Ray's SPREAD placement)
        --trajectories through Ray's object store, at most --max-in-flight per actor-->
    supervisor (this process) --> TrajectoryTransport --> learner-side processes on this machine
    actors <-- actor parameters: one ``ray.put`` per refresh (K_A versions apart), fetched by each actor

The learner-side roles (learner, runner, replay, distill) are the parallel driver's processes,
with their shared-memory stores and queues, so they see the same batches and trajectory schema;
:class:`RaySupervisor` replaces only the actor processes by :class:`RayFleet`. The learner side
is placed on the machine that runs the command: run it on the machine with the accelerator (the
head node in the README's "Scale out"); ``--learner-gpus`` reserves that machine's GPUs in Ray.

Faults: a worker that dies (its process, or its node) or raises is replaced by a new one with
fresh streams, counted as an actor restart, and anything its dead incarnation still had in
flight is dropped, so no trajectory is partial and no stream is spliced. The learner side stops
the run as under the parallel driver. At the end every worker is killed, and a Ray instance this
run started is shut down.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections import Counter, deque
from contextlib import contextmanager

from agents.runtime.drivers.parallel import Supervisor
from agents.runtime.faults import fault_environment
from agents.runtime.drivers.ray_worker import RolloutWorker
from agents.runtime.run_directory import RunError
from agents.runtime.transport.channels import Counters
from agents.runtime.transport.remote_params import publication_object


PLACEMENT_WARN_S = 60.0


class RayFleet:
    """The N_A actors as Ray actors: created, offered parameters, their trajectories forwarded
    into the learner side's transport in the order each actor produced them (bounded in
    flight), and replaced when lost."""

    def __init__(self, config, shared, stats):
        import ray

        self.ray, self.config, self.shared, self.stats = ray, config, shared, stats
        self.worker_class = ray.remote(RolloutWorker)
        self.workers: dict[int, object] = {}
        # Each live worker's calls, oldest first. Only the oldest is fetched, so one actor's
        # trajectories are never reordered (a result in the object store is "ready" only once its
        # copy is here, which need not follow call order).
        self.pending: dict[int, deque] = {}
        self.starting: dict[object, int] = {}  # a new worker's ready call -> its actor id (no rollout before it)
        self.ready: deque = deque()  # (actor id, result) waiting for room in the transport
        self.nodes: dict[int, str] = {}
        self.params_version: int | None = None
        self.params_ref = None
        self.created: dict[int, float] = {}  # actor id -> when its incarnation was created (until its first result)
        self.in_flight_s: deque[float] = deque(maxlen=200)
        self.fetch_s: deque[float] = deque(maxlen=200)
        self.metrics_at = 0.0

    def publication(self) -> tuple[int, list]:
        """The newest refresh: a new ``ray.put`` only once the store is K_A versions ahead."""
        store = self.shared.stores.actor
        if self.params_ref is None or store.version - self.params_version >= self.config.actor_refresh:
            version, tensors = store.read(timeout=10.0)  # a writer killed mid-write cannot hang the supervisor
            self.params_version, self.params_ref = version, self.ray.put(publication_object(version, tensors))
        return self.params_version, [self.params_ref]

    def start(self, actor_id: int, restarts: int) -> None:
        version, refs = self.publication()
        self.created[actor_id] = time.monotonic()
        options = dict(num_cpus=self.config.actor_cpus, scheduling_strategy="SPREAD", max_restarts=0)
        faults = fault_environment()
        if faults:
            options["runtime_env"] = {"env_vars": faults}
        self.workers[actor_id] = self.worker_class.options(**options).remote(
            self.config, actor_id, restarts, version, refs)
        self.pending[actor_id] = deque()
        self.starting[self.workers[actor_id].ready.remote()] = actor_id

    def submit(self, actor_id: int) -> None:
        version, refs = self.publication()
        self.pending[actor_id].append(self.workers[actor_id].rollout.remote(version, refs))

    def drop(self, actor_id: int) -> None:
        """Forget a lost worker: kill it, and drop whatever of it is still in flight."""
        handle = self.workers.pop(actor_id, None)
        if handle is not None:
            try:
                self.ray.kill(handle, no_restart=True)
            except self.ray.exceptions.RayError:  # already gone (its node, or the cluster)
                pass
        self.pending.pop(actor_id, None)
        self.starting = {ref: a for ref, a in self.starting.items() if a != actor_id}
        self.ready = deque(item for item in self.ready if item[0] != actor_id)
        self.nodes.pop(actor_id, None)
        self.created.pop(actor_id, None)

    def poll(self) -> list[tuple[int, str]]:
        """Forward the finished trajectories the transport has room for and keep every live
        worker's calls in flight; the workers lost since the last poll, ``(actor id, reason)``."""
        lost = []
        if self.starting:
            done, _ = self.ray.wait(list(self.starting), num_returns=len(self.starting), timeout=0)
            for ref in done:
                actor_id = self.starting.pop(ref)
                try:
                    self.ray.get(ref)
                except self.ray.exceptions.RayError as exc:
                    lost.append((actor_id, _reason(exc)))
                    self.drop(actor_id)
                    continue
                for _ in range(self.config.max_in_flight):
                    self.submit(actor_id)
        heads = {calls[0]: actor_id for actor_id, calls in self.pending.items() if calls}
        if heads:
            done, _ = self.ray.wait(list(heads), num_returns=len(heads), timeout=0)
            for ref in done:
                actor_id = heads[ref]
                seen = time.monotonic()
                try:
                    result = self.ray.get(ref)
                except self.ray.exceptions.RayError as exc:
                    lost.append((actor_id, _reason(exc)))
                    self.drop(actor_id)
                    continue
                self.pending[actor_id].popleft()
                self.fetch_s.append(time.monotonic() - seen)
                self.created.pop(actor_id, None)
                self.ready.append((actor_id, result))
        forwarded = 0
        while self.ready:
            actor_id, (trajectory, steps_per_s, finished_at, node) = self.ready[0]
            if not self.shared.transport.try_put(trajectory):
                break  # back-pressure: no new call until the learner side takes this one
            self.ready.popleft()
            forwarded += 1
            self.in_flight_s.append(max(0.0, time.time() - finished_at))
            self.nodes[actor_id] = node
            Counters.add(self.shared.counters.env_steps, trajectory.env_steps)
            Counters.add(self.shared.counters.episodes, len(trajectory.episodes))
            self.stats.add_actor_report(actor_id, trajectory.episodes, steps_per_s, trajectory.param_version,
                                        trajectory.param_digest)
            if actor_id in self.workers:
                self.submit(actor_id)
        self.warn_unplaced()
        if forwarded or lost or time.monotonic() - self.metrics_at >= 0.5:
            self.stats.latest.update(self.metrics())
            self.metrics_at = time.monotonic()
        return lost

    def warn_unplaced(self) -> None:
        """Warn once per incarnation that has returned nothing ``PLACEMENT_WARN_S`` after its
        creation: Ray keeps an actor pending while no node has its CPUs free (until one joins)."""
        now = time.monotonic()
        for actor_id, created in list(self.created.items()):
            if now - created >= PLACEMENT_WARN_S:
                del self.created[actor_id]
                print(f"warning: actor-{actor_id} has returned nothing {now - created:.0f} s after it was created: "
                      f"if no node of the cluster has --actor-cpus {self.config.actor_cpus:g} free, Ray keeps it "
                      f"waiting until one joins", file=sys.stderr)

    def in_flight(self) -> int:
        """Trajectories requested or finished but not yet in the transport (at most
        ``num_actors * max_in_flight``)."""
        return sum(len(calls) for calls in self.pending.values()) + len(self.ready)

    def metrics(self) -> dict:
        """The actors that delivered since their (re)creation per node (node ids cut to 12
        characters), and means over the last 200 trajectories: the time from the end of a rollout
        on its worker to its entry into the transport (result transfer, fetch and back-pressure:
        ``trajectory_in_flight_s``, wall clocks of two machines, so across machines it includes
        their offset, which NTP keeps to milliseconds), and the fetch and deserialisation alone on
        this process's clock (``trajectory_fetch_s``)."""
        return {"actors_per_node": dict(Counter(node[:12] for node in self.nodes.values())),
                "trajectory_in_flight_s": _mean(self.in_flight_s), "trajectory_fetch_s": _mean(self.fetch_s),
                "trajectories_in_flight": self.in_flight()}

    def stop(self) -> None:
        """Kill every worker; the final row keeps where the actors ran, with nothing in flight."""
        final = self.metrics()
        for actor_id in list(self.workers):
            self.drop(actor_id)
        self.stats.latest.update(final, trajectories_in_flight=self.in_flight())


def _mean(values) -> float | None:
    return sum(values) / len(values) if values else None


def _reason(exc: Exception) -> str:
    """The whole error (a RayTaskError's text holds the worker's traceback)."""
    return f"was lost ({type(exc).__name__}):\n{str(exc).strip()}\n"


class RaySupervisor(Supervisor):
    """The parallel driver's supervisor with the actors on Ray (see the module docstring)."""

    POLL_S = 0.01  # the loop also forwards trajectories: poll often

    def start_role(self, name: str, restarts: int = 0) -> None:
        if not name.startswith("actor-"):
            return super().start_role(name, restarts)
        if not hasattr(self, "fleet"):
            self.fleet = RayFleet(self.config, self.shared, self.stats)
        self.fleet.start(int(name.split("-")[1]), restarts)

    def check_processes(self) -> None:
        super().check_processes()
        if self.failure or not hasattr(self, "fleet"):
            return
        for actor_id, reason in self.fleet.poll():
            if self.stop():  # a signal reached the cluster's processes too: not a crash
                continue
            if self.actor_lost(f"actor-{actor_id}", reason):
                self.fleet.start(actor_id, self.actor_restarts[actor_id])

    def shutdown(self) -> None:
        try:
            if hasattr(self, "fleet"):
                self.fleet.stop()  # the counters stop moving; then the learner side stops as usual
        finally:
            super().shutdown()


def probe(address: str, timeout: float = 3.0) -> None:
    """RunError unless something listens at ``host:port`` (an IPv6 host in brackets)."""
    if address.startswith("ray://"):
        raise RunError(f"--ray-address {address}: Ray Client addresses (ray://) are not supported: the learner "
                       f"side runs on this machine, which must be a node of the cluster (use its host:port)")
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise RunError(f"--ray-address must be 'auto' or host:port, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise RunError(f"--ray-address {address}: nothing listens there ({exc.strerror or exc}); start the "
                       f"cluster with `ray start --head` first") from None


def connect(config, signals=None) -> bool:
    """Join ``--ray-address`` or start a local instance; whether this run started it. Ray installs
    its own SIGTERM handler (``sys.exit``) in the driver: ``signals`` takes the signals back, and a
    SIGTERM that reached Ray's handler before that becomes this run's stop request."""
    import ray

    started = not config.ray_address
    try:
        if config.ray_address:
            if config.ray_address != "auto":
                probe(config.ray_address)
            elif os.environ.get("RAY_ADDRESS", "").startswith("ray://"):
                probe(os.environ["RAY_ADDRESS"])  # (refuses Ray Client, which 'auto' would take from there)
            try:
                ray.init(address=config.ray_address, log_to_driver=True)
            except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
                raise RunError(f"--ray-address {config.ray_address}: cannot join the cluster "
                               f"({type(exc).__name__}: {exc})") from None
        else:  # "local": a new instance even if another one runs on this machine
            ray.init(address="local", num_cpus=len(os.sched_getaffinity(0)), include_dashboard=False,
                     _node_ip_address="127.0.0.1", log_to_driver=True)
    except SystemExit as exc:
        if signals is None or exc.code != signal.SIGTERM:
            raise
        signals.signalled = True
    finally:
        if signals is not None:
            signals.reinstall()
    return started


def check_resources(config, signals=None):
    """RunError if the cluster cannot hold the actors, or this machine lacks the learner's GPUs;
    those GPUs are then reserved for the run (the returned reservation holds them; None without,
    or if a signal came while waiting for them)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    cpus = ray.cluster_resources().get("CPU", 0.0)
    needed = config.num_actors * config.actor_cpus
    if needed > cpus:
        raise RunError(f"--num-actors {config.num_actors} x --actor-cpus {config.actor_cpus:g} needs {needed:g} CPUs; "
                       f"the Ray cluster has {cpus:g}")
    largest = max((n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n["Alive"]), default=0.0)
    if config.actor_cpus > largest:
        raise RunError(f"--actor-cpus {config.actor_cpus:g}: no node of the Ray cluster has that many CPUs "
                       f"(the largest has {largest:g})")
    if not config.learner_gpus:
        return None
    here = ray.get_runtime_context().get_node_id()
    gpus = next((n["Resources"].get("GPU", 0.0) for n in ray.nodes() if n["NodeID"] == here), 0.0)
    if gpus < config.learner_gpus:
        raise RunError(f"--learner-gpus {config.learner_gpus:g}: this machine has {gpus:g} GPU(s) in Ray; "
                       f"run the command on the machine with the GPU")
    reservation = ray.remote(_Reservation).options(
        num_cpus=0, num_gpus=config.learner_gpus,
        scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote()
    ready, deadline = reservation.ready.remote(), time.monotonic() + 60
    while not ray.wait([ready], timeout=0.5)[0]:
        if signals is not None and signals():
            return None
        if time.monotonic() > deadline:
            raise RunError(f"--learner-gpus {config.learner_gpus:g}: cannot reserve them on this machine within 60 s "
                           f"(another job holds them?)")
    try:
        ray.get(ready)
    except ray.exceptions.RayError as exc:
        raise RunError(f"--learner-gpus {config.learner_gpus:g}: cannot reserve them ({type(exc).__name__})") from None
    return reservation


class _Reservation:
    """Holds the learner side's GPUs in Ray's accounting for the run's length."""

    def ready(self) -> bool:
        return True


@contextmanager
def ray_cluster(config, signals=None):
    """Join or start the cluster and check that it can hold the run, before the run directory is
    opened (a :class:`RunError` there changes nothing on disk); at the end disconnect, or stop the
    local instance this run started."""
    import ray

    started = False
    try:
        started = connect(config, signals)
        reservation = None if signals is not None and signals() else check_resources(config, signals)
        yield
        del reservation
    finally:
        ray.shutdown()
        if started:
            print("ray: the local instance this run started is shut down", file=sys.stderr)


def run_ray(config, run, log, stop, failures: list[str]):
    """Run ``config`` with its actors on the cluster :func:`ray_cluster` joined (see the module docstring)."""
    import ray

    print(f"ray: {sum(n['Alive'] for n in ray.nodes())} node(s), {ray.cluster_resources().get('CPU', 0):g} CPUs; "
          f"the learner side on this machine, {config.num_actors} actors spread over the cluster", file=sys.stderr)
    return RaySupervisor(config, run, log, stop, failures).run()
