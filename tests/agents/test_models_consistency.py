"""Every model: per-step acting == whole-segment learning == split segments, across episode starts.

This is the first pitfall of docs/architecture.md "Pitfalls checked" (recurrent state handled differently when acting and learning).
"""

import pickle

import numpy as np
import pytest
import torch

from agents.models import NumpyLSTMActor, build
from agents.models.nest import cat_streams, leaves, select_streams
from model_helpers import MODEL_CASES, assert_states_close, case_id, random_dones, random_obs, warm_state

torch.set_num_threads(1)
T, B = 21, 3  # T > memory_length of the tiny GTrXL: the attention window slides


@pytest.fixture(params=MODEL_CASES, ids=[case_id(c) for c in MODEL_CASES], scope="module")
def case(request):
    name, (obs_space, act_space), overrides = request.param
    torch.manual_seed(0)
    model = build(name, obs_space, act_space, **overrides)
    g = torch.Generator().manual_seed(1)
    state = warm_state(model, obs_space, B, steps=11, generator=g)
    obs = random_obs(obs_space, T, B, generator=g)
    done = random_dones(T, B, 0.1, generator=g)
    return model, obs_space, state, obs, done


def test_initial_state_has_batch_first(case):
    model, _, state, _, _ = case
    for leaf in leaves(model.initial_state(5)):
        assert leaf.shape[0] == 5


def test_warm_state_is_not_initial(case):
    model, _, state, _, _ = case
    floats = [t for t in leaves(state) if t.is_floating_point()]
    assert any(t.abs().sum() > 0 for t in floats)


def test_step_loop_equals_forward_sequence(case):
    model, _, state, obs, done = case
    logits, values, final = model.forward_sequence(obs, state, done)
    assert logits.shape == (T, B, model.num_actions) and values.shape == (T, B)
    s = state
    for t in range(T):
        step_logits, step_value, s = model.step(obs[t], s, done[t])
        torch.testing.assert_close(step_logits, logits[t], atol=1e-5, rtol=0)
        torch.testing.assert_close(step_value, values[t], atol=1e-5, rtol=0)
    assert_states_close(s, final)


@pytest.mark.parametrize("split", [1, 5, 10, 20])
def test_split_segments_equal_one_call(case, split):
    model, _, state, obs, done = case
    with torch.no_grad():
        logits, values, final = model.forward_sequence(obs, state, done)
        l1, v1, s1 = model.forward_sequence(obs[:split], state, done[:split])
        l2, v2, s2 = model.forward_sequence(obs[split:], s1, done[split:])
    torch.testing.assert_close(torch.cat([l1, l2]), logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.cat([v1, v2]), values, atol=1e-5, rtol=0)
    assert_states_close(s2, final)


def test_stepping_on_from_a_sequence_state(case):
    """The cache a segment returns serves later steps exactly like the steps' own cache."""
    model, space, state, obs, done = case
    _, _, seq_state = model.forward_sequence(obs, state, done)
    s = state
    for t in range(T):
        _, _, s = model.step(obs[t], s, done[t])
    nxt = random_obs(space, 4, B, generator=torch.Generator().manual_seed(5))
    for t in range(4):
        la, va, seq_state = model.step(nxt[t], seq_state)
        lb, vb, s = model.step(nxt[t], s)
        torch.testing.assert_close(la, lb, atol=1e-5, rtol=0)
        torch.testing.assert_close(va, vb, atol=1e-5, rtol=0)


def test_done_resets_to_initial_state(case):
    model, space, state, obs, _ = case
    all_done = torch.ones(B, dtype=torch.bool)
    fresh = model.step(obs[0], model.initial_state(B))
    reset = model.step(obs[0], state, all_done)
    torch.testing.assert_close(reset[0], fresh[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(reset[1], fresh[1], atol=1e-5, rtol=0)
    assert_states_close(reset[2], fresh[2])


def test_state_from_inference_mode_trains(case):
    """An actor's inference-mode state can seed a training forward pass."""
    model, _, state, obs, done = case
    with torch.inference_mode():
        _, _, actor_state = model.step(obs[0], state)
    logits, values, _ = model.forward_sequence(obs[1:4], actor_state, done[1:4])
    (logits.sum() + values.sum()).backward()
    model.zero_grad()


@pytest.mark.parametrize("name,spaces", [(c[0], c[1]) for c in MODEL_CASES if not c[0].startswith("gtrxl")])
def test_numpy_actor_equals_torch_step(name, spaces):
    obs_space, act_space = spaces
    torch.manual_seed(3)
    overrides = {} if name.startswith("lstm") else {"memory_length": 4, "d_model": 16}
    model = build(name, obs_space, act_space, **overrides)
    policy = getattr(model, "policy", model)
    actor = NumpyLSTMActor.from_torch(model)
    g = torch.Generator().manual_seed(4)
    obs, done = random_obs(obs_space, 40, 5, generator=g), random_dones(40, 5, 0.15, generator=g)
    done[0] = False
    torch_state, np_state = policy.initial_state(5), actor.initial_state(5)
    for t in range(40):
        logits, value, torch_state = policy.step(obs[t], torch_state, done[t])
        np_logits, np_value, np_state = actor.step(obs[t].numpy(), np_state, done[t].numpy())
        assert np_logits.dtype == np.float32 and np_logits.shape == (5, act_space.n)
        np.testing.assert_allclose(np_logits, logits.numpy(), atol=1e-5)
        np.testing.assert_allclose(np_value, value.numpy(), atol=1e-5)
        np.testing.assert_allclose(np_state["h"], torch_state["h"].numpy(), atol=1e-5)
        np.testing.assert_allclose(np_state["c"], torch_state["c"].numpy(), atol=1e-5)
    assert np.abs(np_state["c"]).sum() > 0


def test_numpy_actor_reloads_new_parameters():
    obs_space, act_space = MODEL_CASES[0][1]
    model = build("lstm-32", obs_space, act_space)
    actor = NumpyLSTMActor.from_torch(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
    obs = random_obs(obs_space, 2, generator=torch.Generator().manual_seed(0))
    expected = model.step(obs, model.initial_state(2))[0].numpy()
    assert not np.allclose(actor.step(obs.numpy(), actor.initial_state(2))[0], expected, atol=1e-3)
    actor.load_state_dict(model.state_dict())
    np.testing.assert_allclose(actor.step(obs.numpy(), actor.initial_state(2))[0], expected, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("case_index", [0, 3, 5])
def test_cuda_step_equals_forward_sequence(case_index):
    name, (obs_space, act_space), overrides = MODEL_CASES[case_index]
    model = build(name, obs_space, act_space, **overrides).cuda()
    g = torch.Generator().manual_seed(0)
    obs, done = random_obs(obs_space, T, B, generator=g).cuda(), random_dones(T, B, 0.1, generator=g).cuda()
    state = model.initial_state(B)
    logits, values, _ = model.forward_sequence(obs, state, done)
    for t in range(T):
        step_logits, step_value, state = model.step(obs[t], state, done[t])
        torch.testing.assert_close(step_logits, logits[t], atol=1e-4, rtol=0)
        torch.testing.assert_close(step_value, values[t], atol=1e-4, rtol=0)


def test_streams_are_independent_and_states_can_be_regrouped(case):
    """Stepping streams in two groups equals stepping them together (runtimes regroup states)."""
    model, _, state, obs, done = case
    together = model.step(obs[0], state, done[0])
    first = model.step(obs[0, :1], select_streams(state, slice(0, 1)), done[0, :1])
    rest = model.step(obs[0, 1:], select_streams(state, slice(1, None)), done[0, 1:])
    torch.testing.assert_close(torch.cat([first[0], rest[0]]), together[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.cat([first[1], rest[1]]), together[1], atol=1e-5, rtol=0)
    assert_states_close(cat_streams([first[2], rest[2]]), together[2])


def test_pickled_copy_gives_the_same_outputs(case):
    model, _, state, obs, done = case
    clone = pickle.loads(pickle.dumps(model))
    expected = model.step(obs[0], state, done[0])
    got = clone.step(obs[0], state, done[0])
    torch.testing.assert_close(got[0], expected[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(got[1], expected[1], atol=1e-6, rtol=0)


def test_compact_state_gives_the_same_outputs(case):
    model, _, state, obs, done = case
    compact = model.compact_state(state)
    assert len(leaves(compact)) <= len(leaves(state))
    full_seq, compact_seq = model.forward_sequence(obs, state, done), model.forward_sequence(obs, compact, done)
    torch.testing.assert_close(compact_seq[0], full_seq[0], atol=1e-6, rtol=0)
    assert_states_close(model.compact_state(compact_seq[2]), model.compact_state(full_seq[2]))
    full_step, compact_step = model.step(obs[0], state, done[0]), model.step(obs[0], compact, done[0])
    torch.testing.assert_close(compact_step[0], full_step[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(compact_step[1], full_step[1], atol=1e-6, rtol=0)
