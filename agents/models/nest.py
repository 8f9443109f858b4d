"""Helpers for recurrent states: nests (dicts, tuples, lists) of tensors with the batch in dim 0.

Every model's state follows one rule: each tensor leaf has the stream (batch) index in
dimension 0, so a runtime can pick, stack or store streams without knowing the model.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

Nest = Any


def map_nest(fn: Callable[..., Any], *nests: Nest) -> Nest:
    """Apply ``fn`` leaf-wise to one or more nests of identical structure."""
    first = nests[0]
    if isinstance(first, dict):
        return {key: map_nest(fn, *(n[key] for n in nests)) for key in first}
    if isinstance(first, (tuple, list)):
        return type(first)(map_nest(fn, *items) for items in zip(*nests))
    return fn(*nests)


def leaves(nest: Nest) -> list:
    """The tensors of a nest, in a fixed order."""
    if isinstance(nest, dict):
        return [t for key in nest for t in leaves(nest[key])]
    if isinstance(nest, (tuple, list)):
        return [t for item in nest for t in leaves(item)]
    return [nest]


def select_streams(state: Nest, index) -> Nest:
    """The state of the streams ``index`` (int list, slice or bool mask over dim 0)."""
    return map_nest(lambda t: t[index], state)


def cat_streams(states: Sequence[Nest]) -> Nest:
    """Concatenate the states of several stream groups along the batch dimension."""
    return map_nest(lambda *ts: torch.cat(ts, dim=0), *states)


def detach(state: Nest) -> Nest:
    """The state without autograd history."""
    return map_nest(lambda t: t.detach(), state)


def autograd_ready(t: torch.Tensor) -> torch.Tensor:
    """``t``, cloned if it was made under ``torch.inference_mode`` and autograd is on.

    Inference tensors cannot be saved for backward, so a state produced by an actor running in
    inference mode would otherwise break a training ``forward_sequence``.
    """
    if torch.is_grad_enabled() and t.is_inference():
        return t.clone()
    return t
