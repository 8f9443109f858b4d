"""One GALA replica: a single-learner system of its agent (the serial driver's roles, in one
process) whose learner gossips after every update; run as a Ray actor by :mod:`.driver`.

A replica's run directory is an ordinary run directory (``<gala run>/replica-<i>``: config,
metrics, TensorBoard, checkpoints), so a restarted replica resumes from its last checkpoint
the way ``--resume`` does. Replicas start from the same parameters (the models of the base
seed) and differ in their seeds (``seed + i``: envs, sampling, replay).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time

import numpy as np
import torch

from agents.gala import graph
from agents.gala.mixing import mix
from agents.losses import popart_preserve, popart_sigma
from agents.models.popart_head import PopArtValueHead
from agents.runtime import checkpoint
from agents.runtime.faults import injected_delay


def replica_config(config, replica: int, resume: bool):
    """Replica ``replica``'s single-learner config: the GALA run's options, its own run
    directory and seed, the serial driver on the CPU, no progress bar."""
    config = dataclasses.replace(config, runs_dir=config.run_dir, name=f"replica-{replica}",
                                 seed=config.seed + replica, runner="serial", progress=False, resume="", device="cpu")
    return dataclasses.replace(config, resume=config.run_dir) if resume else config


def initial_payload(config) -> dict:
    """A checkpoint payload of the models of ``config``'s seed, at step 0: every replica's start."""
    from agents.runtime.assembly import make_learner, make_stores
    from agents.runtime.metrics import RunStats

    stores = make_stores(config, None)
    learner = make_learner(config, stores, None)
    return checkpoint.payload(config, learner.state(), stores.actor.tensors, RunStats(config).counters())


def gossiped(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The tensors gossip mixes: the learner model's floating-point parameters and buffers. The
    optimizer's moments and V-MPO's multipliers stay each replica's."""
    return {k: v for k, v in model.state_dict().items() if v.is_floating_point()}


def popart_heads(model: torch.nn.Module) -> dict[str, PopArtValueHead]:
    """The model's PopArt value heads by state-dict prefix (``"value_head."``)."""
    return {f"{name}.": module for name, module in model.named_modules() if isinstance(module, PopArtValueHead)}


def message_of(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """What a replica posts: :func:`gossiped` as numpy, each PopArt head in reward units
    (``sigma W``, ``sigma b + mu``) and without its sigma (a function of ``mu`` and ``nu``).

    Averaging normalised weights of replicas whose sigmas differ averages nothing meaningful:
    with no reward yet, sigma shrinks toward its floor and the normalised weights grow as
    ``1 / sigma``, so one replica's first returns moved its weights by orders of magnitude. In
    reward units the mix averages the moments exactly, and the heads' last layers: on the same
    features the mixed head predicts the mean of the heads' values."""
    message = {k: v.detach().cpu().numpy().copy() for k, v in gossiped(model).items()}  # (not views: install writes)
    for prefix, head in popart_heads(model).items():
        unit = (torch.zeros_like(head.mu), torch.ones_like(head.sigma))
        weight, bias = popart_preserve(head.linear.weight.detach(), head.linear.bias.detach(), head.stats, unit)
        message[f"{prefix}linear.weight"], message[f"{prefix}linear.bias"] = weight.cpu().numpy(), bias.cpu().numpy()
        del message[f"{prefix}sigma"]
    return message


@torch.no_grad()
def install(model: torch.nn.Module, mixed: dict[str, np.ndarray]) -> None:
    """Write a mixed :func:`message_of` into ``model`` in place (back to normalised units, with
    sigma re-derived from the mixed moments)."""
    values = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in mixed.items()}
    for prefix, head in popart_heads(model).items():
        mu, nu = values[f"{prefix}mu"], values[f"{prefix}nu"]
        sigma = popart_sigma(mu, nu, head.min_sigma)
        unit = (torch.zeros_like(mu), torch.ones_like(sigma))
        weight, bias = popart_preserve(values[f"{prefix}linear.weight"], values[f"{prefix}linear.bias"], unit,
                                       (mu, sigma))
        values.update({f"{prefix}linear.weight": weight, f"{prefix}linear.bias": bias, f"{prefix}sigma": sigma})
    for name, tensor in gossiped(model).items():
        tensor.copy_(values[name])


class Gossip:
    """The learner's ``after_update`` hook: post this replica's parameters to its round's peers,
    wait only while a neighbour is more than ``max_stale`` rounds behind, and mix with the
    messages of this round's senders that have arrived (the others wait for their rounds)."""

    def __init__(self, board, replica: int, gala, round_: int, stopped):
        import ray

        self.ray, self.board, self.replica, self.gala, self.stopped = ray, board, replica, gala, stopped
        self.round = round_
        self.peers = gala.resolved_peers
        self.neighbours = graph.neighbourhood(gala.topology, gala.replicas, self.peers, replica)
        self.delay = injected_delay(f"replica-{replica}")
        self.skipped = self.mixed = 0
        self.wait_s = 0.0

    def __call__(self, model: torch.nn.Module) -> dict:
        if self.delay:
            time.sleep(self.delay)
        self.round += 1
        ray, g = self.ray, self.gala
        own = message_of(model)
        ref = ray.put(own)
        self.board.post.remote(self.replica, self.round,
                               graph.out_peers(g.topology, g.replicas, self.peers, self.replica, self.round), [ref])
        if not self.peers:  # (posted all the same: the consensus distance is measured without gossip too)
            return {}
        self.wait_for_neighbours()
        senders = graph.in_peers(g.topology, g.replicas, self.peers, self.replica, self.round)
        messages = ray.get(self.board.take.remote(self.replica, senders))
        arrived = []
        for _, message in sorted(messages.items()):
            try:
                arrived.append(ray.get(message[0]))
            except ray.exceptions.RayError:  # its sender died after posting (the object died with it)
                pass
        self.skipped += len(arrived) < self.peers
        self.mixed += len(arrived)
        if arrived:
            install(model, mix(own, arrived))
        return {}

    def wait_for_neighbours(self) -> None:
        """Bounded staleness: block while a present neighbour is more than ``max_stale`` rounds behind."""
        start, pause, warned = time.monotonic(), 0.005, False
        while not self.stopped():
            rounds, away = self.ray.get(self.board.progress.remote())
            behind = [j for j in self.neighbours if j not in away and rounds[j] < self.round - self.gala.max_stale]
            if not behind:
                break
            if not warned and time.monotonic() - start > 60:
                print(f"warning: replica {self.replica} has waited 60 s for replica(s) {behind}, more than "
                      f"{self.gala.max_stale} rounds behind (alive, not progressing?)", file=sys.stderr)
                warned = True
            time.sleep(pause)
            pause = min(2 * pause, 0.1)
        self.wait_s += time.monotonic() - start

    def metrics(self) -> dict:
        return {"gossip_rounds": self.round, "gossip_skipped": self.skipped, "gossip_messages": self.mixed,
                "gossip_wait_s": round(self.wait_s, 3)}


class Replica:
    """A Ray actor (``max_concurrency`` > 1: :meth:`stop` and :meth:`progress` answer while
    :meth:`train` runs)."""

    def __init__(self, config, gala, replica: int, board):
        self.config, self.gala, self.replica, self.board = config, gala, replica, board
        self.stop_event = threading.Event()
        self.latest: dict | None = None

    def pid(self) -> int:
        return os.getpid()

    def stop(self) -> None:
        self.stop_event.set()

    def progress(self) -> dict | None:
        """The newest metrics row (with the gossip counters), None before the first."""
        return self.latest

    def train(self) -> dict:
        """Train to the budget (or until :meth:`stop`); the final row. Resumes from the run
        directory's checkpoint when it has one."""
        import ray

        from agents.runtime.drivers.serial import SerialDriver
        from agents.runtime.launcher import Progress, RowLog
        from agents.runtime.metrics import MetricsWriter
        from agents.runtime.run_directory import open_run

        fresh = replica_config(self.config, self.replica, resume=False)
        resume = bool(checkpoint.list_checkpoints(fresh.run_dir))
        config = replica_config(self.config, self.replica, resume=resume)
        failures: list[str] = []
        with open_run(config) as run:
            payload = run.take_payload()
            driver = SerialDriver(config, run.run_dir, payload if resume else initial_payload(self.config))
            if not resume:
                driver.save()  # a replica restarted before its first periodic checkpoint resumes from here
            neighbours = graph.neighbourhood(self.gala.topology, self.gala.replicas, self.gala.resolved_peers,
                                             self.replica)
            gossip = Gossip(self.board, self.replica, self.gala,
                            ray.get(self.board.join.remote(self.replica, neighbours)), self.stop_event.is_set)
            driver.learner.after_update = gossip
            log = RowLog(MetricsWriter(run.run_dir, config=config), Progress(config, False), failures)

            def logged(row: dict) -> None:
                row.update(replica=self.replica, **gossip.metrics())
                self.latest = row
                log(row)

            try:
                driver.run(logged, stop=lambda: self.stop_event.is_set() or bool(failures))
            finally:
                log.close()
                self.board.leave.remote(self.replica)
        if failures:
            raise RuntimeError(failures[0])
        return self.latest
