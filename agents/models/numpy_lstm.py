"""Numpy inference of :class:`~agents.models.lstm.LSTMActorCritic`: the CPU actor's fast path.

A batch-1 LSTM-32 step costs tens of microseconds of arithmetic but ~100 us of PyTorch
dispatch; in numpy it is a handful of small matmuls (docs/architecture.md "Performance notes"). Observations, state and
outputs stay numpy arrays, so an actor never converts to tensors per step.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import torch

NumpyState = Dict[str, np.ndarray]


def _array(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu().numpy()
    return np.asarray(t, dtype=np.float32)


class NumpyLSTMActor:
    """Float32 numpy twin of an ``LSTMActorCritic`` (same state layout ``{"h", "c"}``).

    Weights are stored pre-transposed and fused: one ``[in + H, 4H]`` matrix for the LSTM
    (with the g-gate rows doubled so one sigmoid gives all gates, ``tanh(z) = 2 sigmoid(2z) - 1``)
    and one ``[H, A + 1]`` matrix for the policy and value heads. Values are PopArt-normalised,
    as from the torch model.
    """

    def __init__(self, state_dict: Mapping[str, object], obs_ndim: int):
        self.obs_ndim = obs_ndim
        self.load_state_dict(state_dict)

    @classmethod
    def from_torch(cls, model) -> "NumpyLSTMActor":
        """Build from an ``LSTMActorCritic`` (or a model whose ``.policy`` is one, e.g. Asymm. AC)."""
        model = getattr(model, "policy", model)
        return cls(model.state_dict(), model.encoder.obs_ndim)

    def load_state_dict(self, state_dict: Mapping[str, object]) -> None:
        """Copy weights from an ``LSTMActorCritic`` state dict (tensors or arrays)."""
        encoder = []
        i = 0
        while f"encoder.layers.{i}.weight" in state_dict:
            weight, bias = state_dict[f"encoder.layers.{i}.weight"], state_dict[f"encoder.layers.{i}.bias"]
            encoder.append((_array(weight).T.copy(), _array(bias)))
            i += 1
        if not encoder:
            raise KeyError("state dict has no encoder.layers.0.weight: not an LSTMActorCritic state dict")
        w_ih, w_hh = _array(state_dict["cell.weight_ih"]), _array(state_dict["cell.weight_hh"])
        bias = _array(state_dict["cell.bias_ih"]) + _array(state_dict["cell.bias_hh"])
        hidden = w_hh.shape[1]
        weight = np.concatenate([w_ih, w_hh], axis=1).T.copy()
        scale = np.ones(4 * hidden, dtype=np.float32)
        scale[2 * hidden : 3 * hidden] = 2.0
        self.encoder = encoder
        self.hidden_size = hidden
        self.lstm_weight = weight * scale
        self.lstm_bias = bias * scale
        self.head_weight = np.concatenate(
            [_array(state_dict["policy_head.weight"]), _array(state_dict["value_head.linear.weight"])]
        ).T.copy()
        self.head_bias = np.concatenate(
            [_array(state_dict["policy_head.bias"]), _array(state_dict["value_head.linear.bias"])]
        )
        self.num_actions = self.head_weight.shape[1] - 1

    def initial_state(self, batch_size: int) -> NumpyState:
        return {
            "h": np.zeros((batch_size, self.hidden_size), np.float32),
            "c": np.zeros((batch_size, self.hidden_size), np.float32),
        }

    def step(
        self, obs: np.ndarray, state: NumpyState, done: Optional[np.ndarray] = None
    ) -> Tuple[np.ndarray, np.ndarray, NumpyState]:
        """One timestep: ``obs [B, ...]`` uint8, ``done [B]`` bool -> ``(logits [B, A], value [B], state)``."""
        x = obs.reshape(obs.shape[0], -1).astype(np.float32)
        for weight, bias in self.encoder:
            x = x @ weight
            x += bias
            np.maximum(x, 0.0, out=x)
        h, c = state["h"], state["c"]
        if done is not None:
            keep = ~np.asarray(done, dtype=bool)[:, None]
            h, c = h * keep, c * keep
        gates = np.concatenate([x, h], axis=1) @ self.lstm_weight
        gates += self.lstm_bias
        np.negative(gates, out=gates)
        np.exp(gates, out=gates)
        gates += 1.0
        np.reciprocal(gates, out=gates)
        H = self.hidden_size
        g = gates[:, 2 * H : 3 * H] * 2.0 - 1.0
        c = gates[:, H : 2 * H] * c + gates[:, :H] * g
        h = gates[:, 3 * H :] * np.tanh(c)
        out = h @ self.head_weight
        out += self.head_bias
        return out[:, : self.num_actions], out[:, self.num_actions], {"h": h, "c": c}
