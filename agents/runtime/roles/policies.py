"""Acting policies: what an actor runs each step, on numpy observations and states.

The LSTM actor uses the numpy twin of the model (the fast CPU path, docs/architecture.md "Performance notes"); any other
model (GTrXL for the GTrXL baseline) runs in torch under ``inference_mode``.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from agents.models import LSTMActorCritic, NumpyLSTMActor, map_nest


class NumpyLSTMPolicy:
    """An LSTM actor in numpy; ``load`` copies new weights from a state dict."""

    def __init__(self, model: LSTMActorCritic):
        self._numpy = NumpyLSTMActor.from_torch(model)

    def load(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        self._numpy.load_state_dict(state_dict)

    def initial_state(self, batch_size: int) -> dict[str, np.ndarray]:
        return self._numpy.initial_state(batch_size)

    def step(self, obs: np.ndarray, state: Any, first: np.ndarray):
        logits, _, state = self._numpy.step(obs, state, first)
        return logits, state

    def compact(self, state: Any) -> Any:
        """The state as the learner needs it (an LSTM state has nothing to drop)."""
        return state


class TorchPolicy:
    """Any :class:`~agents.models.base.RecurrentActorCritic` run step by step in torch."""

    def __init__(self, model: torch.nn.Module):
        self.model = model.eval()

    def load(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state_dict)

    def initial_state(self, batch_size: int) -> Any:
        return map_nest(lambda t: t.numpy(), self.model.initial_state(batch_size))

    def step(self, obs: np.ndarray, state: Any, first: np.ndarray):
        with torch.inference_mode():
            logits, _, new_state = self.model.step(
                torch.from_numpy(obs), map_nest(torch.from_numpy, state), torch.from_numpy(first))
        return logits.numpy(), map_nest(lambda t: t.numpy(), new_state)

    def compact(self, state: Any) -> Any:
        """The state without acting caches (half the bytes to ship for a GTrXL)."""
        return self.model.compact_state(state)


def make_policy(model: torch.nn.Module):
    """The fastest acting policy for ``model`` (numpy for LSTMs)."""
    return NumpyLSTMPolicy(model) if isinstance(model, LSTMActorCritic) else TorchPolicy(model)


def sample_actions(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row of ``logits [B, A]`` (Gumbel-max sampling)."""
    gumbel = -np.log(-np.log(rng.random(logits.shape)))
    return np.argmax(logits + gumbel, axis=1)
