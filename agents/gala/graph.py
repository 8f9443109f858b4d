"""The gossip graphs: who a replica sends to and hears from in each round.

Every graph is regular (each replica sends to P peers and hears from P), so uniform mixing
weights ``1 / (P + 1)`` make a doubly stochastic mixing matrix: a synchronous round keeps the
replicas' mean and contracts their spread.

- ``ring``: the P nearest replicas on a ring, alternating sides (offsets +1, -1, +2, -2, ...).
- ``exponential``: offsets 1, 2, 4, ... (below K); each round uses the next P of them, so the
  peers rotate through the whole graph every ``ceil(L / P)`` rounds (Assran et al.).
- ``full``: every other replica (P = K - 1).
- ``none``: no gossip (P = 0); the replicas train independently (the baseline of the epsilon-ball).
"""

from __future__ import annotations

TOPOLOGIES = ("ring", "exponential", "full", "none")


def exponential_offsets(replicas: int) -> list[int]:
    offsets, step = [], 1
    while step < replicas:
        offsets.append(step)
        step *= 2
    return offsets


def ring_offsets(replicas: int, peers: int) -> list[int]:
    offsets, k = [], 1
    while len(offsets) < peers:
        for offset in (k, -k):
            if len(offsets) < peers and offset % replicas not in {o % replicas for o in offsets}:
                offsets.append(offset)
        k += 1
    return offsets


def default_peers(topology: str, replicas: int) -> int:
    """P when ``--peers`` is not given."""
    return max(0, {"ring": min(2, replicas - 1), "exponential": min(1, replicas - 1),
                   "full": replicas - 1}.get(topology, 0))


def check(topology: str, replicas: int, peers: int) -> None:
    """ValueError, naming the option, for a graph that cannot be built."""
    if topology not in TOPOLOGIES:
        raise ValueError(f"--topology must be one of {', '.join(TOPOLOGIES)}, got {topology!r}")
    if replicas < 1:
        raise ValueError(f"--replicas must be >= 1, got {replicas}")
    if peers < 0 or peers > replicas - 1:
        raise ValueError(f"--peers must be between 0 and --replicas - 1 = {replicas - 1}, got {peers}")
    if topology == "none" and peers:
        raise ValueError(f"--topology none gossips with nobody: --peers must be 0, got {peers}")
    if topology == "full" and peers != replicas - 1:
        raise ValueError(f"--topology full sends to every other replica: --peers must be {replicas - 1}, got {peers}")
    if topology == "exponential" and peers > len(exponential_offsets(replicas)):
        raise ValueError(f"--topology exponential with {replicas} replicas has {len(exponential_offsets(replicas))} "
                         f"offsets (powers of 2 below K): --peers must be at most that, got {peers}")


def offsets(topology: str, replicas: int, peers: int, round_: int) -> list[int]:
    """The P offsets of round ``round_`` (the same for every replica: i sends to i + offset)."""
    if peers == 0 or topology == "none":
        return []
    if topology == "full":
        return list(range(1, replicas))
    if topology == "ring":
        return ring_offsets(replicas, peers)
    pool = exponential_offsets(replicas)
    start = (round_ * peers) % len(pool)
    return [pool[(start + t) % len(pool)] for t in range(peers)]


def out_peers(topology: str, replicas: int, peers: int, replica: int, round_: int) -> list[int]:
    return [(replica + o) % replicas for o in offsets(topology, replicas, peers, round_)]


def in_peers(topology: str, replicas: int, peers: int, replica: int, round_: int) -> list[int]:
    return [(replica - o) % replicas for o in offsets(topology, replicas, peers, round_)]


def neighbourhood(topology: str, replicas: int, peers: int, replica: int) -> list[int]:
    """Every replica that sends to ``replica`` in some round (whose staleness binds it)."""
    rounds = max(1, len(exponential_offsets(replicas))) if topology == "exponential" else 1
    return sorted({j for r in range(rounds) for j in in_peers(topology, replicas, peers, replica, r)})
