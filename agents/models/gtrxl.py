"""Gated Transformer-XL (Parisotto et al. 2019): the learner model of ALD.

Each layer: ``Y = RelMHA(LN([sg(mem); X]))``, ``X' = gate(X, ReLU(Y))``, then
``E = MLP(LN(X'))``, ``out = gate(X', ReLU(E))`` (identity-map reordering: LayerNorm only on
submodule inputs, GRU-type gates instead of residual connections). Attention uses
Transformer-XL relative positions: ``score(i, j) = (q_i + u) . k_j + (q_i + v) . W_R R_{i-j}``.

Attention window: every query sees exactly its ``M`` previous positions of the *same episode*
plus itself, both when acting (``step``: memory of M + current) and over a segment
(``forward_sequence``: keys ``[memory (M); segment (T)]``, query t sees keys t..M+t). That is
what makes per-step acting and segment learning agree exactly.

State (every tensor has the stream in dim 0; see :class:`GTrXLActorCritic`):

* ``memory [B, L, M, D]``: the inputs of each layer at the last M steps (oldest first),
  detached, zero where invalid. This is the Transformer-XL memory; the learner runner keeps it.
* ``valid [B, M]`` bool: the slot holds a step of the current episode.
* ``keys``, ``values``: tuples of L tensors ``[B, H, M, dh]``, and ``cache_version [B]``
  int64 (all optional): the attention keys/values of ``memory`` for acting, and the parameter
  fingerprint they were computed with. ``step`` recomputes them from ``memory`` whenever the
  fingerprint differs (:meth:`GTrXL.cache_version`), so a cache can never be served stale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple, Union

import gymnasium as gym
import torch
from torch import nn
from torch.nn import functional as F

from agents.models.base import RecurrentActorCritic, check_spaces, done_mask
from agents.models.encoders import BeamEncoder
from agents.models.gtrxl_acting import ActingPlan
from agents.models.nest import autograd_ready
from agents.models.popart_head import PopArtValueHead

GTrXLState = Dict[str, Union[torch.Tensor, Tuple[torch.Tensor, ...]]]
STALE = -1
"""``cache_version`` of a state whose key/value cache must be recomputed."""
MEMORY_KEYS = ("memory", "valid")
"""The state entries a learner needs; the others are the acting cache."""


@dataclass(frozen=True)
class GTrXLConfig:
    """Hyperparameters of :class:`GTrXLActorCritic` (paper A.1/A.2)."""

    num_layers: int = 2
    """2 for I-Maze 9x9, 4 for I-Maze 15x15 and Meta-Fetch."""
    d_model: int = 256
    """Embedding size."""
    num_heads: int = 8
    head_dim: int = 32
    memory_length: int = 64
    """M: previous steps each query attends to (per layer)."""
    mlp_hidden: int = 256
    """Hidden width of the position-wise MLP submodule (not given by the papers; d_model keeps
    the learner ~25% faster than 4 * d_model on a CPU)."""
    gate_bias: float = 2.0
    """Initial b_g: gates start close to the identity map."""

    def __post_init__(self):
        for name in ("num_layers", "d_model", "num_heads", "head_dim", "memory_length", "mlp_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"GTrXLConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % 2:
            raise ValueError(f"GTrXLConfig.d_model must be even (sinusoid embeddings), got {self.d_model}")


def relative_sinusoid(memory_length: int, d_model: int) -> torch.Tensor:
    """``[M + 1, D]`` sinusoid embeddings of distances ``M, M-1, ..., 0`` (oldest key first)."""
    distance = torch.arange(memory_length, -1, -1, dtype=torch.float32)
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, d_model, 2, dtype=torch.float32) / d_model))
    angles = distance[:, None] * inv_freq[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def skew(x: torch.Tensor) -> torch.Tensor:
    """``[..., T, M + 1] -> [..., T, M + T]`` with ``out[t, t + k] = x[t, k]``, zeros elsewhere.

    Places query t's relative scores (column k = distance M - k) on its key band t..t+M.
    """
    *lead, T, W = x.shape
    x = F.pad(x, (0, T)).reshape(*lead, T * (W + T))
    return x[..., : T * (W + T - 1)].reshape(*lead, T, W + T - 1)


class GRUGate(nn.Module):
    """``g = (1 - z) x + z h`` with ``r = s(W_r y + U_r x)``, ``z = s(W_z y + U_z x - b_g)``,
    ``h = tanh(W_g y + U_g (r * x))``; x is the stream (skip) input, y the submodule output."""

    def __init__(self, d_model: int, gate_bias: float):
        super().__init__()
        self.d_model = d_model
        self.w = nn.Linear(d_model, 3 * d_model, bias=False)
        self.u_rz = nn.Linear(d_model, 2 * d_model, bias=False)
        self.u_g = nn.Linear(d_model, d_model, bias=False)
        self.gate_bias = nn.Parameter(torch.full((d_model,), float(gate_bias)))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        wr, wz, wg = self.w(y).split(self.d_model, dim=-1)  # (split, not slices: one cat in backward)
        ur, uz = self.u_rz(x).split(self.d_model, dim=-1)
        r = torch.sigmoid(wr + ur)
        z = torch.sigmoid(wz + uz - self.gate_bias)
        h = torch.tanh(wg + self.u_g(r * x))
        return torch.lerp(x, h, z)


class RelativeAttention(nn.Module):
    """Multi-head attention with Transformer-XL relative positions and learned biases u, v."""

    def __init__(self, d_model: int, num_heads: int, head_dim: int):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, head_dim
        inner = num_heads * head_dim
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(d_model, 3 * inner, bias=False)
        self.r_proj = nn.Linear(d_model, inner, bias=False)
        self.u = nn.Parameter(torch.randn(num_heads, head_dim) * 0.02)
        self.v = nn.Parameter(torch.randn(num_heads, head_dim) * 0.02)
        self.out = nn.Linear(inner, d_model, bias=False)

    def relative_keys(self, sinusoid: torch.Tensor) -> torch.Tensor:
        """``[M + 1, D]`` -> ``[H, dh, M + 1]`` projected relative embeddings (oldest first)."""
        return self.r_proj(sinusoid).view(-1, self.num_heads, self.head_dim).permute(1, 2, 0)

    def project_kv(self, xn: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Normalised inputs ``[B, N, D]`` -> keys, values ``[B, H, N, dh]``."""
        inner = self.num_heads * self.head_dim
        # Two products, not one split in two: selecting from a [2, ...] tensor costs a zero-filled
        # copy of all of it in backward.
        heads = (*xn.shape[:2], self.num_heads, self.head_dim)
        keys = F.linear(xn, self.qkv.weight[inner : 2 * inner]).view(heads).transpose(1, 2)
        values = F.linear(xn, self.qkv.weight[2 * inner :]).view(heads).transpose(1, 2)
        return keys, values

    def project_q(self, xn: torch.Tensor) -> torch.Tensor:
        """``[B, N, D]`` -> queries ``[B, H, N, dh]``."""
        q = F.linear(xn, self.qkv.weight[: self.num_heads * self.head_dim])
        return q.view(*xn.shape[:2], self.num_heads, self.head_dim).transpose(1, 2)

    def attend(self, q, keys, values, rel, bias, skew_positions: bool) -> torch.Tensor:
        """``q [B, H, T, dh]`` over ``keys/values [B, H, N, dh]`` -> ``[B, T, D]``.

        ``rel [H, dh, M + 1]``; ``bias [B, 1, T, N]`` additive mask (0 or -inf).
        """
        content = torch.matmul(q + self.u[:, None], keys.transpose(-1, -2))
        position = torch.matmul(q + self.v[:, None], rel)
        if skew_positions:
            position = skew(position)
        scores = torch.add(bias, content + position, alpha=self.scale)
        attn = torch.matmul(torch.softmax(scores, dim=-1), values)
        return self.out(attn.transpose(1, 2).flatten(2))


class GTrXLLayer(nn.Module):
    """One gated layer: relative attention submodule and MLP submodule, each gated."""

    def __init__(self, config: GTrXLConfig):
        super().__init__()
        d = config.d_model
        self.ln_attn = nn.LayerNorm(d)
        self.attn = RelativeAttention(d, config.num_heads, config.head_dim)
        self.gate_attn = GRUGate(d, config.gate_bias)
        self.ln_mlp = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, config.mlp_hidden), nn.ReLU(), nn.Linear(config.mlp_hidden, d))
        self.gate_mlp = GRUGate(d, config.gate_bias)

    def _mlp_block(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate_mlp(x, torch.relu(self.mlp(self.ln_mlp(x))))

    def forward_sequence(self, x, memory, rel, bias):
        """``x [B, T, D]``, ``memory [B, M, D]`` -> ``(out [B, T, D], keys, values [B, H, M+T, dh])``."""
        M, T = memory.shape[1], x.shape[1]
        xn = self.ln_attn(torch.cat([memory, x], dim=1))
        keys, values = self.attn.project_kv(xn)
        q = self.attn.project_q(xn.split((M, T), dim=1)[1])
        y = self.attn.attend(q, keys, values, rel, bias, skew_positions=True)
        return self._mlp_block(self.gate_attn(x, torch.relu(y))), keys, values


def _invalidate_after_load(module: "GTrXL", incompatible_keys) -> None:
    module.invalidate_cache()


def _any(flags: torch.Tensor) -> bool:
    return any(flags.tolist())


class GTrXL(nn.Module):
    """The GTrXL torso: embeddings ``[*, D]`` in, features ``[*, D]`` out, with memory."""

    def __init__(self, config: GTrXLConfig):
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(GTrXLLayer(config) for _ in range(config.num_layers))
        self.register_buffer("sinusoid", relative_sinusoid(config.memory_length, config.d_model), persistent=False)
        self._epoch = 0
        self._plan: Optional[ActingPlan] = None
        self._fingerprinted = list(self.parameters())
        self.register_load_state_dict_post_hook(_invalidate_after_load)

    # -- cache validity ----------------------------------------------------------------------
    def invalidate_cache(self) -> None:
        """Mark every key/value cache and the acting plan stale. Needed only after writes that
        bypass tensor version counters: ``param.data.copy_(...)``, or another process writing
        parameters in shared memory."""
        self._epoch += 1
        self._plan = None
        self._fingerprinted = list(self.parameters())

    def _apply(self, fn, recurse=True):
        result = super()._apply(fn, recurse)
        self.invalidate_cache()
        return result

    def cache_version(self) -> int:
        """A fingerprint of the parameters (never equal to ``STALE``).

        It changes with every in-place update that autograd can see (optimizer steps, ``copy_``
        under ``no_grad``, ``load_state_dict``, including ``assign=True``), with storage
        replacement (``.to``, ``share_memory_``, ``param.data = ...``) and with
        :meth:`invalidate_cache`. Registering a new ``nn.Parameter`` object on a submodule
        also needs :meth:`invalidate_cache`.
        """
        return hash((self._epoch, *[(p.data_ptr(), p._version) for p in self._fingerprinted]))

    def acting_plan(self) -> ActingPlan:
        """The packed parameters for :meth:`step`, rebuilt when the parameters changed."""
        version = self.cache_version()
        if self._plan is None or self._plan.version != version:
            self._plan = ActingPlan(self, version)
        return self._plan

    def memory_keys_values(self, memory: torch.Tensor) -> Tuple[Tuple[torch.Tensor, ...], Tuple[torch.Tensor, ...]]:
        """Per layer keys and values ``[B, H, M, dh]`` of ``memory [B, L, M, D]``."""
        kvs = [layer.attn.project_kv(layer.ln_attn(memory[:, i])) for i, layer in enumerate(self.layers)]
        return tuple(k for k, _ in kvs), tuple(v for _, v in kvs)

    # -- state -----------------------------------------------------------------------------
    def initial_state(self, batch_size: int, device) -> GTrXLState:
        c = self.config
        cache_shape = (batch_size, c.num_heads, c.memory_length, c.head_dim)
        return {
            "memory": torch.zeros(batch_size, c.num_layers, c.memory_length, c.d_model, device=device),
            "valid": torch.zeros(batch_size, c.memory_length, dtype=torch.bool, device=device),
            "keys": tuple(torch.zeros(cache_shape, device=device) for _ in range(c.num_layers)),
            "values": tuple(torch.zeros(cache_shape, device=device) for _ in range(c.num_layers)),
            "cache_version": torch.full((batch_size,), STALE, dtype=torch.int64, device=device),
        }

    # -- the two modes ---------------------------------------------------------------------
    def step(self, x: torch.Tensor, state: GTrXLState, done: Optional[torch.Tensor]) -> Tuple[torch.Tensor, GTrXLState]:
        """``x [B, D]`` embeddings of one step -> ``(features [B, D], new_state)``.

        Uses the key/value cache of ``state`` when it was computed with the current parameters,
        else recomputes it from ``memory``.
        """
        memory, valid = state["memory"], state["valid"]
        if done is not None and _any(done):
            keep = ~done
            valid = valid & keep[:, None]
            memory = memory * keep.view(-1, 1, 1, 1).to(memory.dtype)
        plan = self.acting_plan()
        cached = state.get("cache_version")
        if cached is None or any(v != plan.version for v in cached.tolist()):
            keys, values = self.memory_keys_values(memory)
        else:
            keys, values = state["keys"], state["values"]
        visible = F.pad(valid, (0, 1), value=True)
        x, inputs, new_keys, new_values = plan.step(x, keys, values, visible)
        new_state = {
            "memory": torch.cat([memory[:, :, 1:], torch.stack(inputs, 1)[:, :, None]], dim=2),
            "valid": visible[:, 1:],
            "keys": tuple(new_keys),
            "values": tuple(new_values),
            "cache_version": torch.full((x.shape[0],), plan.version, dtype=torch.int64, device=x.device),
        }
        return x, new_state

    def forward_sequence(
        self, x: torch.Tensor, state: GTrXLState, done: torch.Tensor
    ) -> Tuple[torch.Tensor, GTrXLState]:
        """``x [T, B, D]`` embeddings, ``done [T, B]`` -> ``(features [T, B, D], final_state)``."""
        T, B = done.shape
        M = self.config.memory_length
        memory = autograd_ready(state["memory"]).detach()
        valid = state["valid"]
        episode = done.t().long().cumsum(1)  # [B, T]: 0 = the episode the memory belongs to
        key_episode = torch.cat([torch.where(valid, 0, -1), episode], dim=1)  # [B, M + T]
        same_episode = episode[:, :, None] == key_episode[:, None, :]
        offset = torch.arange(M + T, device=x.device)[None, :] - torch.arange(T, device=x.device)[:, None]
        visible = same_episode & (offset >= 0) & (offset <= M)
        bias = torch.zeros(visible.shape, dtype=x.dtype, device=x.device).masked_fill_(~visible, -math.inf)[:, None]
        x = x.transpose(0, 1)
        inputs, keys, values = [], [], []
        for i, layer in enumerate(self.layers):
            inputs.append(torch.cat([memory[:, i], x], dim=1)[:, -M:])
            x, k, v = layer.forward_sequence(x, memory[:, i], layer.attn.relative_keys(self.sinusoid), bias)
            keys.append(k[:, :, -M:].detach())
            values.append(v[:, :, -M:].detach())
        new_valid = key_episode[:, -M:] == episode[:, -1:]
        new_memory = torch.stack(inputs, 1) * new_valid[:, None, :, None].to(x.dtype)
        final_state = {
            "memory": new_memory.detach(),
            "valid": new_valid,
            "keys": tuple(keys),
            "values": tuple(values),
            "cache_version": torch.full((B,), self.cache_version(), dtype=torch.int64, device=x.device),
        }
        return x.transpose(0, 1), final_state


class GTrXLActorCritic(RecurrentActorCritic):
    """Beam encoder -> GTrXL -> policy logits and PopArt value.

    State: see the module docstring (``memory``, ``valid``, and the optional acting cache
    ``keys``, ``values``, ``cache_version``). :meth:`step` uses and refreshes the cache;
    :meth:`forward_sequence` only reads ``memory`` and ``valid`` (it recomputes keys with the
    current parameters, with gradient) and returns a fresh cache in its final state.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, config: GTrXLConfig = GTrXLConfig()):
        super().__init__()
        obs_shape, self.num_actions = check_spaces(observation_space, action_space)
        self.config = config
        self.encoder = BeamEncoder(obs_shape, (config.d_model,))
        self.transformer = GTrXL(config)
        self.policy_head = nn.Linear(config.d_model, self.num_actions)
        self.value_head = PopArtValueHead(config.d_model)

    def initial_state(self, batch_size: int) -> GTrXLState:
        return self.transformer.initial_state(batch_size, self.device)

    def invalidate_cache(self) -> None:
        """See :meth:`GTrXL.invalidate_cache`."""
        self.transformer.invalidate_cache()

    def compact_state(self, state: GTrXLState) -> GTrXLState:
        """Only ``memory`` and ``valid`` (the cache is twice the memory's size)."""
        return {key: state[key] for key in MEMORY_KEYS}

    @torch.no_grad()
    def step(self, obs: torch.Tensor, state: GTrXLState, done: Optional[torch.Tensor] = None):
        if done is not None:
            done = done_mask(done, (obs.shape[0],), self.device)
        features, new_state = self.transformer.step(self.encoder(obs), state, done)
        value = F.linear(features, self.value_head.linear.weight, self.value_head.linear.bias)
        return F.linear(features, self.policy_head.weight, self.policy_head.bias), value[:, 0], new_state

    def forward_sequence(self, obs: torch.Tensor, state: GTrXLState, done: Optional[torch.Tensor]):
        done = done_mask(done, tuple(obs.shape[:2]), self.device)
        features, final_state = self.transformer.forward_sequence(self.encoder(obs), state, done)
        return self.policy_head(features), self.value_head(features)[..., 0], final_state
