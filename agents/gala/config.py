"""GALA's own settings (the single-learner options are :class:`agents.runtime.config.RunConfig`'s
and apply to every replica: its actors, batch, budget and seed, plus ``i``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from agents.gala import graph


def _f(default, help: str, type_=None):
    return field(default=default, metadata={"help": help, "type": type_})


@dataclass(frozen=True)
class GalaConfig:
    """Saved as ``gala.json`` in the GALA run directory, beside the replicas' own configs."""

    replicas: int = _f(2, "K: the number of actor-learner replicas", int)
    topology: str = _f("exponential", "gossip graph: ring | exponential (peers rotate) | full | none (no gossip)", str)
    peers: int = _f(-1, "P: peers each replica sends to per round (-1 = the topology's default: ring 2, "
                        "exponential 1, full K-1, none 0)", int)
    max_stale: int = _f(4, "a replica waits while a neighbour is more than this many gossip rounds behind (bounded staleness)",
                        int)
    replica_cpus: float = _f(1.0, "Ray CPUs per replica (its actors and learner run in its process)", float)
    max_replica_restarts: int = _f(3, "replica crashes the run survives (each replica resumes from its last "
                                      "checkpoint); one more ends the run with an error", int)

    @property
    def resolved_peers(self) -> int:
        return graph.default_peers(self.topology, self.replicas) if self.peers == -1 else self.peers

    def validate(self) -> None:
        """ValueError naming the option, before anything starts."""
        if self.peers < -1:
            raise ValueError(f"--peers must be >= 0 (or -1 for the topology's default), got {self.peers}")
        graph.check(self.topology, self.replicas, self.resolved_peers)
        if self.max_stale < 0:
            raise ValueError(f"--max-stale must be >= 0, got {self.max_stale}")
        if not self.replica_cpus > 0:
            raise ValueError(f"--replica-cpus must be > 0, got {self.replica_cpus}")
        if self.max_replica_restarts < 0:
            raise ValueError(f"--max-replica-restarts must be >= 0, got {self.max_replica_restarts}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
