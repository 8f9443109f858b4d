"""Fault injection, for the fault tests: make a role raise where a real bug would, so the
recovery path that a user's crash takes is the one under test.

``AGENTS_FAULTS`` holds comma-separated entries: ``actor-<i>:<n>`` makes actor i's first
process (not its restarts) raise a RuntimeError before its ``n``-th rollout (``n`` counts from
0); ``learner:sleep=<s>`` makes every learner step take ``s`` seconds longer (a slow learner),
``replica-<i>:sleep=<s>`` every gossip round of GALA replica i (a slow replica).
Unset in normal runs, where :func:`injected_fault` and :func:`injected_delay` are always None.
The Ray driver passes the variable on to its workers on every node (:func:`fault_environment`).
"""

from __future__ import annotations

import os

FAULTS_VARIABLE = "AGENTS_FAULTS"


def injected_fault(role: str, restarts: int) -> int | None:
    """The rollout before which ``role`` raises, or None."""
    if restarts:
        return None
    for name, when in _entries():
        if name == role and when.isdigit():
            return int(when)
    return None


class RolloutFaults:
    """Raises where ``AGENTS_FAULTS`` says, counting the rollouts of one actor process."""

    def __init__(self, role: str, restarts: int):
        self.when, self.rollouts = injected_fault(role, restarts), 0

    def before_rollout(self) -> None:
        if self.rollouts == self.when:
            raise RuntimeError(f"fault injected by {FAULTS_VARIABLE} after {self.when} rollouts")
        self.rollouts += 1


def fault_environment() -> dict[str, str]:
    """The fault variable for a process on another node (empty when unset)."""
    value = os.environ.get(FAULTS_VARIABLE)
    return {FAULTS_VARIABLE: value} if value else {}


def injected_delay(role: str) -> float | None:
    """The seconds ``role`` sleeps per step, or None."""
    for name, when in _entries():
        if name == role and when.startswith("sleep="):
            return float(when[len("sleep="):])
    return None


def _entries():
    for entry in filter(None, os.environ.get(FAULTS_VARIABLE, "").split(",")):
        name, _, when = entry.partition(":")
        yield name.strip(), when.strip()
