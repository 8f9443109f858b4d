"""The interface every model shares, and the conventions of its arguments.

Shapes: ``B`` streams (batch), ``T`` timesteps, ``A`` actions; observations are the env's
uint8 beams ``[..., L, W, C]`` as torch tensors (``[B, L, W, C]`` for :meth:`step`,
``[T, B, L, W, C]`` for :meth:`forward_sequence`).

``done`` follows TorchBeast: ``done[t, b]`` is True where ``obs[t, b]`` is the *first*
observation of a new episode; that stream's state is reset to the initial state before
``obs[t, b]`` is processed.

Values are returned in PopArt-*normalised* units; ``model.value_head.denormalize(v)`` gives
reward units (see :class:`~agents.models.popart_head.PopArtValueHead`).
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import gymnasium as gym
import torch
from torch import nn

from agents.models.nest import Nest


def check_spaces(observation_space: gym.Space, action_space: gym.Space) -> Tuple[Tuple[int, ...], int]:
    """``(observation shape, number of actions)``; ValueError for unsupported spaces."""
    if not isinstance(observation_space, gym.spaces.Box):
        raise ValueError(f"observation_space must be a gymnasium Box, got {observation_space!r}")
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(f"action_space must be a gymnasium Discrete, got {action_space!r}")
    if math.prod(observation_space.shape) == 0:
        raise ValueError(f"observation_space has no elements: {observation_space!r}")
    return tuple(observation_space.shape), int(action_space.n)


class RecurrentActorCritic(nn.Module):
    """A policy + value model with a recurrent state, run per step (acting) or per segment."""

    num_actions: int
    value_head: nn.Module

    @property
    def device(self) -> torch.device:
        return self.value_head.linear.weight.device

    def invalidate_cache(self) -> None:
        """Drop acting caches derived from the parameters (no-op for models without one).

        Only needed after parameter writes that bypass tensor version counters
        (``param.data.copy_``, another process writing shared memory); see
        :meth:`agents.models.gtrxl.GTrXL.cache_version`.
        """

    def initial_state(self, batch_size: int) -> Nest:
        """The state at the start of an episode for ``batch_size`` streams (on the model's device)."""
        raise NotImplementedError

    def compact_state(self, state: Nest) -> Nest:
        """``state`` without acting caches: what a learner needs, cheaper to ship and store.

        :meth:`step` and :meth:`forward_sequence` accept compact states (step rebuilds its cache).
        """
        return state

    def step(
        self, obs: torch.Tensor, state: Nest, done: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor, Nest]:
        """One timestep for B streams, without autograd (acting).

        Args:
            obs: ``[B, ...]`` uint8 observations.
            state: the state returned by the previous call or :meth:`initial_state`.
            done: optional ``[B]`` bool, True where ``obs`` starts a new episode.
        Returns:
            ``(logits [B, A], value [B] normalised, new_state)``.
        """
        raise NotImplementedError

    def forward_sequence(
        self, obs: torch.Tensor, state: Nest, done: Optional[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor, Nest]:
        """A segment of T timesteps for B streams, with autograd (learning and batched inference).

        Args:
            obs: ``[T, B, ...]`` uint8 observations.
            state: the state before ``obs[0]``.
            done: ``[T, B]`` bool (None: no episode starts inside the segment).
        Returns:
            ``(logits [T, B, A], values [T, B] normalised, final_state)``; the final state is
            detached and equals the state :meth:`step` reaches after the same T steps.
        """
        raise NotImplementedError


    def policy_sequence(self, obs: torch.Tensor, state: Nest, done: Optional[torch.Tensor]) -> torch.Tensor:
        """Only the logits of :meth:`forward_sequence` (a model whose value comes from a separate
        network, like the asymmetric pair, skips that network)."""
        return self.forward_sequence(obs, state, done)[0]


def done_mask(done: Optional[torch.Tensor], shape: Tuple[int, ...], device: torch.device) -> torch.Tensor:
    """``done`` as a bool tensor of ``shape`` on ``device`` (all False when None)."""
    if done is None:
        return torch.zeros(shape, dtype=torch.bool, device=device)
    if tuple(done.shape) != tuple(shape):
        raise ValueError(f"done must have shape {tuple(shape)}, got {tuple(done.shape)}")
    return done.to(device=device, dtype=torch.bool)
