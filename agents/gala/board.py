"""The gossip board: one small Ray actor holding, per replica, the references to the messages
sent to it and not yet taken, its round, and its newest message.

It holds object references only (a few bytes each); the parameters themselves travel from the
sender's object store to the receiver's, peer to peer. A newer message from the same sender
replaces an untaken older one, so the board holds at most K * P + K references whatever the
speeds. Replicas not started yet, finished, or dead and not back yet are "away": their rounds
bind nobody's staleness.
"""

from __future__ import annotations


class GossipBoard:
    def __init__(self, replicas: int):
        self.inbox: list[dict] = [{} for _ in range(replicas)]  # receiver -> {sender: [ref]}
        self.rounds = [0] * replicas
        self.latest: list = [None] * replicas  # each replica's newest message ([ref]), for the consensus distance
        self.away: set[int] = set(range(replicas))  # until each joins (a replica Ray has not placed binds nobody)

    def post(self, sender: int, round_: int, receivers: list[int], message: list) -> None:
        """``message`` is ``[ref]`` (a reference inside a list reaches the board unresolved)."""
        self.rounds[sender] = round_
        self.latest[sender] = message
        for receiver in receivers:
            self.inbox[receiver][sender] = message

    def take(self, receiver: int) -> dict:
        messages, self.inbox[receiver] = self.inbox[receiver], {}
        return messages

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

    def join(self, replica: int) -> int:
        """A replica (re)joins; its round: its own, or the slowest present one's if that is ahead
        (a restarted replica rejoins the current round instead of holding the others back)."""
        present = [r for j, r in enumerate(self.rounds) if j != replica and j not in self.away]
        self.rounds[replica] = max([self.rounds[replica], *([min(present)] if present else [])])
        self.away.discard(replica)
        return self.rounds[replica]

    def snapshot(self) -> list:
        """Each replica's newest message (``[ref]``, or None before its first round)."""
        return list(self.latest)
