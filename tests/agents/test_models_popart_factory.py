"""The PopArt value head and the model factory."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.models import (
    PATTERNS,
    AsymmetricActorCritic,
    GTrXLActorCritic,
    LSTMActorCritic,
    PopArtValueHead,
    build,
)
from agents.losses import popart_update
from model_helpers import IMAZE_SPACES, METAFETCH_SPACES, TINY_GTRXL

torch.set_num_threads(1)


def test_popart_update_preserves_unnormalised_outputs():
    torch.manual_seed(0)
    head = PopArtValueHead(8)
    features = torch.randn(5, 4, 8)
    before = head.denormalize(head(features))
    for scale in (10.0, 100.0, 0.01):
        stats = popart_update(head.mu, head.nu, torch.randn(64) * scale + scale, 0.3)
        head.set_stats(stats)
        torch.testing.assert_close(head.denormalize(head(features)), before, rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(head.sigma, stats.sigma)
    assert head.mu.item() != 0 and head.sigma.item() != 1


def test_popart_initial_statistics_and_state_dict():
    head = PopArtValueHead(4)
    assert (head.mu.item(), head.nu.item(), head.sigma.item()) == (0.0, 1.0, 1.0)
    assert {"mu", "nu", "sigma", "linear.weight", "linear.bias"} <= set(head.state_dict())


def test_popart_update_keeps_shared_memory_parameters_shared():
    head = PopArtValueHead(4).share_memory()
    weight, ptr = head.linear.weight, head.linear.weight.data_ptr()
    head.set_stats(popart_update(head.mu, head.nu, torch.full((16,), 5.0), 0.5))
    assert head.linear.weight is weight and weight.data_ptr() == ptr and weight.is_shared()
    assert head.mu.is_shared()


@pytest.mark.parametrize(
    "name,cls", [("lstm-32", LSTMActorCritic), ("gtrxl-2", GTrXLActorCritic), ("asymm-32-2", AsymmetricActorCritic)]
)
def test_build_names(name, cls):
    model = build(name, *IMAZE_SPACES, **({} if name.startswith("lstm") else TINY_GTRXL))
    assert type(model) is cls and model.num_actions == 4
    assert isinstance(model.value_head, PopArtValueHead)


def test_build_parses_sizes_and_routes_overrides():
    lstm = build("lstm-128", *METAFETCH_SPACES, encoder_sizes=(16,))
    assert lstm.config.hidden_size == 128 and lstm.config.encoder_sizes == (16,)
    gtrxl = build("gtrxl-4", *METAFETCH_SPACES, **TINY_GTRXL)
    assert gtrxl.config.num_layers == 4 and gtrxl.config.d_model == 32 and len(gtrxl.transformer.layers) == 4
    asymm = build("asymm-16-3", *IMAZE_SPACES, forget_bias=0.5, **TINY_GTRXL)
    assert asymm.policy.config.hidden_size == 16 and asymm.value_net.config.num_layers == 3
    assert asymm.policy.config.forget_bias == 0.5 and asymm.value_net.config.d_model == 32
    assert asymm.value_head is asymm.value_net.value_head


def test_paper_defaults():
    model = build("gtrxl-2", *IMAZE_SPACES)
    c = model.config
    assert (c.d_model, c.num_heads, c.head_dim, c.memory_length, c.gate_bias) == (256, 8, 32, 64, 2.0)
    assert model.transformer.layers[0].gate_attn.gate_bias.detach().eq(2.0).all()


@pytest.mark.parametrize("name", ["lstm", "lstm-x", "transformer-2", "gtrxl-2-2", "asymm-32", ""])
def test_unknown_name_lists_valid_patterns(name):
    with pytest.raises(ValueError) as info:
        build(name, *IMAZE_SPACES)
    for pattern in PATTERNS:
        assert pattern in str(info.value)


@pytest.mark.parametrize("name,overrides", [("gtrxl-0", {}), ("lstm-0", {}), ("gtrxl-2", {"d_model": 33})])
def test_invalid_sizes_are_rejected(name, overrides):
    with pytest.raises(ValueError):
        build(name, *IMAZE_SPACES, **overrides)


def test_unknown_override_is_rejected():
    with pytest.raises(ValueError, match="d_model"):
        build("lstm-32", *IMAZE_SPACES, d_model=8)


def test_unsupported_spaces_are_rejected():
    with pytest.raises(ValueError, match="Discrete"):
        build("lstm-32", IMAZE_SPACES[0], gym.spaces.Box(0, 1, (2,), np.float32))
    with pytest.raises(ValueError, match="Box"):
        build("lstm-32", gym.spaces.Discrete(3), IMAZE_SPACES[1])


def test_asymmetric_policy_runs_alone():
    """Actors of the Asymm. AC baseline need only the LSTM policy."""
    model = build("asymm-32-2", *IMAZE_SPACES, **TINY_GTRXL)
    obs = torch.zeros(3, 9, 1, 3, dtype=torch.uint8)
    logits, _, policy_state = model.policy.step(obs, model.policy.initial_state(3))
    full_logits, _, state = model.step(obs, model.initial_state(3))
    torch.testing.assert_close(logits, full_logits)
    assert set(state) == {"policy", "value"} and set(policy_state) == {"h", "c"}
