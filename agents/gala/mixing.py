"""Gossip's arithmetic on parameter dicts (name -> numpy array): the mixing step and the
consensus distance. Pure functions (numpy only), tested against a reference matrix product."""

from __future__ import annotations

import math

import numpy as np


def mix(own: dict, messages: list[dict]) -> dict:
    """``x_i <- (x_i + sum of the peers' messages) / (1 + number of messages)``: uniform weights
    over what arrived (``P + 1`` when every peer's message did)."""
    if not messages:
        return own
    scale = 1.0 / (1 + len(messages))
    mixed = {}
    for name, value in own.items():
        total = np.array(value, dtype=np.float64)
        for message in messages:
            total += message[name]
        mixed[name] = (total * scale).astype(value.dtype)
    return mixed


def mean(replicas: list[dict]) -> dict:
    return {name: np.mean([np.asarray(r[name], dtype=np.float64) for r in replicas], axis=0) for name in replicas[0]}


def distance(a: dict, b: dict) -> float:
    """The L2 distance between two parameter dicts (all their entries as one vector)."""
    return math.sqrt(sum(float(np.sum((np.asarray(a[k], dtype=np.float64) - b[k]) ** 2)) for k in a))


def consensus_distances(replicas: list[dict]) -> list[float]:
    """Each replica's distance to the replicas' mean: the radius of the epsilon-ball they share."""
    centre = mean(replicas)
    return [distance(r, centre) for r in replicas]
