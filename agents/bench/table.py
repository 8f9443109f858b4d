"""Cells of the benchmarks' text tables."""

from __future__ import annotations

from typing import Optional


def cell(value: Optional[float], spec: str, scale: float = 1.0) -> str:
    """``value * scale`` formatted with ``spec``, or ``-`` where nothing was measured."""
    return "-" if value is None else format(scale * value, spec)
