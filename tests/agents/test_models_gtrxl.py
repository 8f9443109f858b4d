"""GTrXL specifics: episode isolation, the attention window, gates at init, detached memory and
a key/value cache that can never be served stale."""

import pytest
import torch

from agents.models import build
from agents.models.gtrxl import STALE, GTrXLConfig, GTrXLLayer, relative_sinusoid
from agents.models.nest import leaves
from model_helpers import IMAZE_SPACES, TINY_GTRXL, assert_states_close, random_obs, warm_state

torch.set_num_threads(1)
OBS_SPACE, ACT_SPACE = IMAZE_SPACES
M = TINY_GTRXL["memory_length"]


def tiny(layers=2, **overrides):
    torch.manual_seed(0)
    return build(f"gtrxl-{layers}", OBS_SPACE, ACT_SPACE, **{**TINY_GTRXL, **overrides})


def run_steps(model, obs, state, done):
    outs = []
    for t in range(obs.shape[0]):
        logits, value, state = model.step(obs[t], state, done[t])
        outs.append(torch.cat([logits, value[:, None]], -1))
    return torch.stack(outs), state


def run_sequence(model, obs, state, done):
    with torch.no_grad():
        logits, values, state = model.forward_sequence(obs, state, done)
    return torch.cat([logits, values[..., None]], -1), state


@pytest.mark.parametrize("run", [run_steps, run_sequence], ids=["step", "sequence"])
def test_no_attention_across_an_episode_start(run):
    model, g = tiny(), torch.Generator().manual_seed(0)
    T, B, start = 20, 2, 9
    obs = random_obs(OBS_SPACE, T, B, generator=g)
    done = torch.zeros(T, B, dtype=torch.bool)
    done[start, 0] = True
    state = warm_state(model, OBS_SPACE, B, 10, g)
    out, _ = run(model, obs, state, done)
    # change stream 0 before its episode start: its observations and its memory
    other_obs = obs.clone()
    other_obs[:start, 0] = 1 - other_obs[:start, 0]
    other_state = {**state, "memory": state["memory"].clone()}
    other_state["memory"][0] += 3.0
    other_state["cache_version"] = torch.full_like(state["cache_version"], STALE)
    other_out, _ = run(model, other_obs, other_state, done)
    assert not torch.allclose(out[:start, 0], other_out[:start, 0], atol=1e-3)
    torch.testing.assert_close(out[start:, 0], other_out[start:, 0], atol=1e-6, rtol=0)
    torch.testing.assert_close(out[:, 1], other_out[:, 1], atol=1e-6, rtol=0)


@pytest.mark.parametrize("run", [run_steps, run_sequence], ids=["step", "sequence"])
def test_invalid_memory_slots_are_ignored(run):
    """Slots still empty at an episode start (valid False) never matter, whatever they hold."""
    model, g = tiny(), torch.Generator().manual_seed(1)
    obs = random_obs(OBS_SPACE, 6, 2, generator=g)
    done = torch.zeros(6, 2, dtype=torch.bool)
    fresh = model.initial_state(2)
    garbage = {**fresh, "memory": torch.randn_like(fresh["memory"]) * 5}
    torch.testing.assert_close(run(model, obs, fresh, done)[0], run(model, obs, garbage, done)[0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("run", [run_steps, run_sequence], ids=["step", "sequence"])
def test_attention_window_is_memory_length(run):
    """One layer: a step's observation reaches exactly the next M steps, no further."""
    model, g = tiny(layers=1), torch.Generator().manual_seed(2)
    T, t0 = 20, 3
    obs = random_obs(OBS_SPACE, T, 1, generator=g)
    done = torch.zeros(T, 1, dtype=torch.bool)
    changed = obs.clone()
    changed[t0] = 1 - changed[t0]
    a, _ = run(model, obs, model.initial_state(1), done)
    b, _ = run(model, changed, model.initial_state(1), done)
    differs = (a - b).abs().amax(dim=(1, 2)) > 1e-6
    assert differs.tolist() == [t0 <= t <= t0 + M for t in range(T)]


def test_memory_holds_layer_inputs_of_the_last_m_steps():
    model, g = tiny(), torch.Generator().manual_seed(3)
    T = 12
    obs = random_obs(OBS_SPACE, T, 2, generator=g)
    _, _, state = model.forward_sequence(obs, model.initial_state(2), None)
    with torch.no_grad():
        embeddings = model.encoder(obs)  # the first layer's inputs
    torch.testing.assert_close(state["memory"][:, 0], embeddings[-M:].transpose(0, 1))
    assert state["valid"].all()


def test_returned_memory_is_detached():
    model, g = tiny(), torch.Generator().manual_seed(4)
    obs = random_obs(OBS_SPACE, 10, 2, generator=g)
    logits, values, state = model.forward_sequence(obs, model.initial_state(2), None)
    assert logits.requires_grad and values.requires_grad
    for leaf in leaves(state):
        assert not leaf.requires_grad and leaf.grad_fn is None
    # the second segment's loss still trains the projections that read the (detached) memory
    logits2, _, _ = model.forward_sequence(random_obs(OBS_SPACE, 3, 2, generator=g), state, None)
    logits2.sum().backward()
    assert model.transformer.layers[0].attn.qkv.weight.grad.abs().sum() > 0
    assert model.encoder.layers[0].weight.grad.abs().sum() > 0  # via the second segment itself


def test_fresh_layer_is_close_to_identity():
    """b_g = 2 makes the gates start near the identity map (GTrXL's key init)."""
    torch.manual_seed(5)
    x, memory = torch.randn(4, 10, 256), torch.randn(4, 64, 256)
    bias = torch.zeros(4, 1, 10, 74)
    changes = {}
    for gate_bias in (2.0, 0.0):
        layer = GTrXLLayer(GTrXLConfig(gate_bias=gate_bias))
        with torch.no_grad():
            out, _, _ = layer.forward_sequence(x, memory, layer.attn.relative_keys(relative_sinusoid(64, 256)), bias)
        changes[gate_bias] = ((out - x).norm() / x.norm()).item()
    assert changes[2.0] < 0.35
    assert changes[2.0] < 0.5 * changes[0.0]


def _cached_and_fresh(model, state, obs):
    """The step's output with the state's cache, and with the cache rebuilt from memory."""
    return model.step(obs, state), model.step(obs, model.compact_state(state))


def _assert_same(a, b):
    torch.testing.assert_close(a[0], b[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(a[1], b[1], atol=1e-5, rtol=0)


def adam_step(model):
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    obs = random_obs(OBS_SPACE, 4, 2, generator=torch.Generator())
    logits, values, _ = model.forward_sequence(obs, model.initial_state(2), None)
    (logits.square().sum() + values.sum()).backward()
    opt.step()


def copy_under_no_grad(model):
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.1)


def load_other_weights(model):
    model.load_state_dict(_other().state_dict())


def load_other_weights_assign(model):
    model.load_state_dict(_other().state_dict(), assign=True)


def data_copy_then_invalidate(model):
    for p in model.parameters():
        p.data.copy_(p.data * 1.1)
    model.invalidate_cache()


def _other():
    torch.manual_seed(123)
    return build("gtrxl-2", OBS_SPACE, ACT_SPACE, **TINY_GTRXL)


@pytest.mark.parametrize(
    "update", [adam_step, copy_under_no_grad, load_other_weights, load_other_weights_assign, data_copy_then_invalidate]
)
def test_cache_is_never_stale_after_a_parameter_update(update):
    model, g = tiny(), torch.Generator().manual_seed(6)
    state = warm_state(model, OBS_SPACE, 2, 12, g)
    obs = random_obs(OBS_SPACE, 2, generator=g)
    cached, fresh = _cached_and_fresh(model, state, obs)
    _assert_same(cached, fresh)
    version = model.transformer.cache_version()
    update(model)
    assert model.transformer.cache_version() != version
    cached, fresh = _cached_and_fresh(model, state, obs)
    _assert_same(cached, fresh)
    # the check is sensitive: serving the old cache under the new version gives other outputs
    forged = {**state, "cache_version": torch.full_like(state["cache_version"], model.transformer.cache_version())}
    stale = model.step(obs, forged)
    assert not torch.allclose(stale[0], fresh[0], atol=1e-4)


def test_cache_versions_differ_between_models():
    a, b = tiny(), _other()
    assert a.transformer.cache_version() != b.transformer.cache_version()


def test_to_device_invalidates_the_plan():
    model = tiny()
    model.step(random_obs(OBS_SPACE, 1, generator=torch.Generator()), model.initial_state(1))
    plan = model.transformer.acting_plan()
    model.to("cpu")
    assert model.transformer.acting_plan() is not plan
