"""Argument and action checks with messages that name the culprit (cheap on the step path)."""

from __future__ import annotations

import math
import numbers

import numpy as np

RENDER_MODES = ("human", "rgb_array", "ansi")


def check_int(name: str, value, *, minimum: int, odd: bool = False) -> int:
    """``value`` as an int, or ValueError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if odd and value % 2 == 0:
        raise ValueError(f"{name} must be odd, got {value}")
    return value


def check_float(name: str, value, *, minimum: float = 0.0) -> float:
    """``value`` as a finite float >= ``minimum``, or ValueError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum}, got {value}")
    return value


def check_render_mode(render_mode) -> str | None:
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode must be None or one of {RENDER_MODES}, got {render_mode!r}")
    return render_mode


def check_action(action, n: int, space) -> int:
    """The action as a Python int in ``[0, n)``; ValueError naming the action and the space.

    Accepts Python ints, numpy integer scalars and 0-d integer arrays, like
    ``Discrete.contains``; rejects bools, floats and anything else rather than guess.
    """
    if type(action) is int:
        value = action
    elif isinstance(action, np.integer) or (
        isinstance(action, np.ndarray) and action.shape == () and action.dtype.kind in "iu"
    ):
        value = int(action)
    else:
        raise ValueError(
            f"invalid action {action!r} of type {type(action).__name__}: expected an integer in {space}"
        )
    if not 0 <= value < n:
        raise ValueError(f"invalid action {value!r}: not in {space} (valid actions are 0..{n - 1})")
    return value
