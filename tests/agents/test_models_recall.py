"""Tiny supervised sanity runs: 1-bit recall needs gradients through the model's memory.

The bit is shown at t = 0 (one-hot in beam cell 0), the following observations hold only noise
elsewhere in the beam, and the model must output the bit at the last step (2 actions).
"""

import gymnasium as gym
import numpy as np
import torch
from torch.nn import functional as F

from agents.models import build

torch.set_num_threads(1)
SPACES = (gym.spaces.Box(0, 1, (4, 1, 2), np.uint8), gym.spaces.Discrete(2))
STEPS = 12


def recall_batch(B, generator):
    """``obs [STEPS, B, 4, 1, 2]`` uint8 and the bits ``[B]``."""
    bits = torch.randint(0, 2, (B,), generator=generator)
    obs = torch.zeros(STEPS, B, 4, 1, 2, dtype=torch.uint8)
    obs[1:, :, 1:] = torch.randint(0, 2, (STEPS - 1, B, 3, 1, 2), generator=generator, dtype=torch.uint8)
    obs[0, torch.arange(B), 0, 0, bits] = 1
    return obs, bits


def last_logits(model, obs, split):
    """Logits at the last step, running the sequence as segments ``[0:split]`` and ``[split:]``."""
    state = model.initial_state(obs.shape[1])
    if split:
        _, _, state = model.forward_sequence(obs[:split], state, None)
        obs = obs[split:]
    logits, _, _ = model.forward_sequence(obs, state, None)
    return logits[-1]


def train_recall(model, lr, iterations, split=0, batch=64):
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(iterations):
        obs, bits = recall_batch(batch, g)
        loss = F.cross_entropy(last_logits(model, obs, split), bits)
        opt.zero_grad()
        loss.backward()
        opt.step()
    obs, bits = recall_batch(512, g)
    with torch.no_grad():
        return (last_logits(model, obs, split).argmax(-1) == bits).float().mean().item()


def test_lstm_learns_recall():
    torch.manual_seed(0)
    model = build("lstm-32", *SPACES, encoder_sizes=(16,))
    assert train_recall(model, lr=1e-2, iterations=100) > 0.95


def test_gtrxl_learns_recall_within_a_segment():
    torch.manual_seed(0)
    model = build("gtrxl-1", *SPACES, d_model=32, num_heads=2, head_dim=16, mlp_hidden=32, memory_length=16)
    assert train_recall(model, lr=3e-3, iterations=120) > 0.95


def test_gtrxl_learns_recall_through_memory_across_segments():
    """The bit is in the previous segment: only the (detached) memory carries it."""
    torch.manual_seed(0)
    model = build("gtrxl-1", *SPACES, d_model=32, num_heads=2, head_dim=16, mlp_hidden=32, memory_length=16)
    assert train_recall(model, lr=3e-3, iterations=120, split=4) > 0.95
