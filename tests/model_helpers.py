"""Small helpers shared by the model tests: the envs' spaces, tiny configs, random segments."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

IMAZE_SPACES = (gym.spaces.Box(0, 1, (9, 1, 3), np.uint8), gym.spaces.Discrete(4))
METAFETCH_SPACES = (gym.spaces.Box(0, 1, (15, 3, 4), np.uint8), gym.spaces.Discrete(3))

TINY_GTRXL = dict(d_model=32, num_heads=2, head_dim=16, mlp_hidden=32, memory_length=8)
"""A GTrXL small enough for fast tests; memory 8 so that segments longer than M are cheap."""

MODEL_CASES = [
    ("lstm-32", IMAZE_SPACES, {}),
    ("lstm-128", METAFETCH_SPACES, {}),
    ("gtrxl-2", IMAZE_SPACES, {}),
    ("gtrxl-2", IMAZE_SPACES, TINY_GTRXL),
    ("gtrxl-4", METAFETCH_SPACES, TINY_GTRXL),
    ("asymm-32-2", IMAZE_SPACES, TINY_GTRXL),
    ("asymm-128-4", METAFETCH_SPACES, TINY_GTRXL),
]
"""(name, spaces, overrides) for every factory name; one full-size GTrXL (memory 64)."""


def case_id(case) -> str:
    name, spaces, overrides = case
    return name + ("-tiny" if overrides else "")


def random_obs(space: gym.spaces.Box, *lead: int, generator: torch.Generator) -> torch.Tensor:
    """Random 0/1 uint8 observations ``[*lead, *space.shape]``."""
    return torch.randint(0, 2, (*lead, *space.shape), dtype=torch.uint8, generator=generator)


def random_dones(T: int, B: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """``[T, B]`` episode starts with probability p, plus one forced start mid-segment."""
    done = torch.rand(T, B, generator=generator) < p
    done[T // 2, 0] = True
    return done


def warm_state(model, space, B: int, steps: int, generator: torch.Generator):
    """A non-trivial state: ``steps`` random steps (with an episode start) from the initial one."""
    state = model.initial_state(B)
    for t in range(steps):
        done = torch.zeros(B, dtype=torch.bool)
        done[t % B] = t == 2
        _, _, state = model.step(random_obs(space, B, generator=generator), state, done)
    return state


def assert_states_close(a, b, atol=1e-5, skip=("keys", "values", "cache_version")):
    """Recursively compare two states (dicts/tuples of tensors), ignoring the acting cache."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            if key not in skip:
                assert_states_close(a[key], b[key], atol, skip)
    elif isinstance(a, (tuple, list)):
        for x, y in zip(a, b, strict=True):
            assert_states_close(x, y, atol, skip)
    else:
        assert a.shape == b.shape and a.dtype == b.dtype
        if a.dtype == torch.bool:
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, atol=atol, rtol=0)
