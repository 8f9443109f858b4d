"""Fault injection, for the fault tests: make a role raise where a real bug would, so the
recovery path that a user's crash takes is the one under test.

``AGENTS_FAULTS`` holds comma-separated ``<role>:<n>`` entries; role ``actor-<i>``'s first
process (not its restarts) raises a RuntimeError before its ``n``-th rollout (``n`` counts from
0). Unset in normal runs, where :func:`injected_fault` is always None.
"""

from __future__ import annotations

import os

FAULTS_VARIABLE = "AGENTS_FAULTS"


def injected_fault(role: str, restarts: int) -> int | None:
    """The rollout before which ``role`` raises, or None."""
    if restarts:
        return None
    for entry in filter(None, os.environ.get(FAULTS_VARIABLE, "").split(",")):
        name, _, when = entry.partition(":")
        if name.strip() == role:
            return int(when)
    return None
