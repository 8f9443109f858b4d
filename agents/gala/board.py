"""The gossip board: one small Ray actor holding, per replica, the references to the messages
sent to it and not yet taken, its round, and its newest message.

It holds object references only (a few bytes each); the parameters themselves travel from the
sender's object store to the receiver's, peer to peer. A newer message from the same sender
replaces an untaken older one, so the board holds at most K * L + K references whatever the
speeds (L: the number of replicas that ever send to one: P, or log2 K for the exponential
graph). Replicas finished, or dead and not back yet, are "away": their rounds bind nobody's
staleness. One not started yet is not away: it counts at round 0 (its neighbours wait for it).
"""

from __future__ import annotations


class GossipBoard:
    def __init__(self, replicas: int):
        self.inbox: list[dict] = [{} for _ in range(replicas)]  # receiver -> {sender: [ref]}
        self.rounds = [0] * replicas
        self.latest: list = [None] * replicas  # each replica's newest message ([ref]), for the consensus distance
        # Not away at the start: a replica not started yet counts at round 0, so its neighbours wait
        # for it after max_stale rounds and the bound holds from the first round for every pair.
        self.away: set[int] = set()

    def post(self, sender: int, round_: int, receivers: list[int], message: list) -> None:
        """``message`` is ``[ref]`` (a reference inside a list reaches the board unresolved)."""
        self.rounds[sender] = round_
        self.latest[sender] = message
        for receiver in receivers:
            self.inbox[receiver][sender] = message

    def take(self, receiver: int, senders: list[int]) -> dict:
        """The untaken messages from ``senders`` (the others stay for the rounds they are peers in)."""
        return {j: self.inbox[receiver].pop(j) for j in senders if j in self.inbox[receiver]}

    def progress(self) -> tuple[list[int], list[int]]:
        """Every replica's round, and the replicas away."""
        return list(self.rounds), sorted(self.away)

    def leave(self, replica: int, lost: bool = False) -> None:
        """``lost``: its process died, and the objects it put died with it: its messages go too."""
        self.away.add(replica)
        if lost:
            self.latest[replica] = None
            for inbox in self.inbox:
                inbox.pop(replica, None)

    def join(self, replica: int, neighbours: list[int]) -> int:
        """A replica (re)joins; its round: its own, or its slowest present neighbour's if that is
        ahead (a restarted replica rejoins the current round instead of holding the others back)."""
        present = [self.rounds[j] for j in neighbours if j != replica and j not in self.away]
        self.rounds[replica] = max([self.rounds[replica], *([min(present)] if present else [])])
        self.away.discard(replica)
        return self.rounds[replica]

    def snapshot(self) -> list:
        """Each replica's newest message (``[ref]``, or None before its first round)."""
        return list(self.latest)
