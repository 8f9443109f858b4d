"""Does the data flow where the process graph says, for every agent? (serial driver, in process)

The topology per agent, the learner's update against a hand-written reference, masks, PopArt's
step size, pi_old's age, Asymm. AC's policy state, and the actors' parameters following learning.
"""

import copy
import dataclasses

import numpy as np
import pytest
import torch

from agents.losses import learner_kl_regulariser, vmpo_loss
from agents.runtime.assembly import make_actor, make_feed, make_learner, make_stores
from agents.runtime.drivers.serial import SerialDriver
from agents.runtime.roles.distill import Distiller, distill_steps_due
from agents.runtime.roles.learner import to_torch
from agents.runtime.roles.policies import TorchPolicy
from agents.runtime.topology import build_actor_model, topology_of
from agents.runtime.transport.trajectory import LearnerBatch, TargetOutputs
from runtime_helpers import tiny_config

AGENTS = ["ald", "lstm", "gtrxl", "asymm_ac"]
torch.set_num_threads(1)


def test_topology_table():
    rows = {}
    for agent in AGENTS:
        t = topology_of(tiny_config(agent=agent, env_kwargs="", learner_overrides="", actor_overrides=""))
        rows[agent] = (t.actor_model, t.learner_model, t.returns, t.actor_publisher, t.has_runner, t.distills,
                       t.learner_kl_to_actor)
    assert rows == {
        "ald": ("lstm-32", "gtrxl-2", "vtrace", "distill", True, True, True),
        "lstm": ("lstm-32", "lstm-32", "nstep", "learner", False, False, False),
        "gtrxl": ("gtrxl-2", "gtrxl-2", "nstep", "learner", False, False, False),
        "asymm_ac": ("lstm-32", "asymm-32-2", "nstep", "learner", True, False, False),
    }
    roles = topology_of(tiny_config(agent="asymm_ac")).roles(2, 3)
    assert roles == ["learner", "runner", "actor-0", "actor-1"]


def learner_batch(config, rollouts=1):
    """A learner batch staged exactly as the drivers stage it, with the stores it came from."""
    stores = make_stores(config, None)
    feed = make_feed(config, stores)
    actors = [make_actor(config, i, 0, stores) for i in range(config.num_actors)]
    for _ in range(rollouts):
        for actor in actors:
            feed.add(actor.rollout())
    return feed.pop(), stores, feed


# -- the learner update against a hand-written reference ----------------------------------

def np_nstep(r, v, v_next, disc, end):
    T, B = r.shape
    g = np.zeros((T, B))
    for b in range(B):
        carry = v_next[-1, b]
        for t in reversed(range(T)):
            carry = r[t, b] + disc[t, b] * (v_next[t, b] if end[t, b] or t == T - 1 else carry)
            g[t, b] = carry
    return g, g - v


def np_vtrace(mu_logp, pi_logp, r, v, v_next, disc, end):
    T, B = r.shape
    rho = np.minimum(1.0, np.exp(pi_logp - mu_logp))
    vs = np.zeros((T, B))
    adv = np.zeros((T, B))
    for b in range(B):
        for t in reversed(range(T)):
            delta = rho[t, b] * (r[t, b] + disc[t, b] * v_next[t, b] - v[t, b])
            cut = end[t, b] or t == T - 1
            vs[t, b] = v[t, b] + delta + (0.0 if cut else disc[t, b] * rho[t, b] * (vs[t + 1, b] - v[t + 1, b]))
        for t in range(T):
            nxt = v_next[t, b] if end[t, b] or t == T - 1 else vs[t + 1, b]
            adv[t, b] = rho[t, b] * (r[t, b] + disc[t, b] * nxt - v[t, b])
    return vs, adv


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def reference_update(config, topology, model, target, lb):
    """The loss of one learner step and the PopArt statistics it must leave, written out by hand."""
    d = lb.data
    T = d.action.shape[0]
    state = to_torch(lb.learner_state, "cpu")
    logits, v_norm, _ = model.forward_sequence(torch.from_numpy(d.obs), state, torch.from_numpy(d.first))
    with torch.no_grad():
        pi_old = target.forward_sequence(torch.from_numpy(d.obs[:T]), to_torch(lb.learner_state, "cpu"),
                                         torch.from_numpy(d.first[:T]))[0]
    head = model.value_head
    mu, nu, sigma = float(head.mu), float(head.nu), float(head.sigma)
    v = v_norm.detach().double().numpy() * sigma + mu
    valid, term = d.valid, d.terminated
    end = term | d.truncated | ~valid
    disc = config.gamma * (valid & ~term)
    r = d.reward.astype(np.float64)
    lp = log_softmax(logits[:T].detach().double().numpy())
    pi_logp = np.take_along_axis(lp, d.action[..., None], -1)[..., 0]
    mu_logp = np.take_along_axis(log_softmax(d.behaviour_logits.astype(np.float64)), d.action[..., None], -1)[..., 0]
    if topology.returns == "vtrace":
        g, adv = np_vtrace(mu_logp, pi_logp, r, v[:T], v[1:], disc, end)
    else:
        g, adv = np_nstep(r, v[:T], v[1:], disc, end)
    beta = config.popart_decay
    new_mu = (1 - beta) * mu + beta * g[valid].mean()
    new_nu = (1 - beta) * nu + beta * (g[valid] ** 2).mean()
    new_sigma = np.sqrt(max(new_nu - new_mu**2, 1e-8))
    prediction = (v_norm[:T].double() * sigma + mu - new_mu) / new_sigma
    value = 0.5 * ((prediction - torch.from_numpy((g - new_mu) / new_sigma))[torch.from_numpy(valid)] ** 2).mean()
    eta, alpha = torch.tensor(config.eta_init), torch.tensor(config.alpha_init)
    pieces = vmpo_loss(logits[:T].double(), torch.from_numpy(d.action), torch.from_numpy(adv / new_sigma),
                       pi_old.double(), eta, alpha, config.eps_eta, config.eps_alpha, mask=torch.from_numpy(valid))
    total = float(pieces.total) + float(value)
    if topology.learner_kl_to_actor:
        reg = learner_kl_regulariser(logits[:T], torch.from_numpy(d.behaviour_logits), config.kl_direction,
                                     mask=torch.from_numpy(valid))
        total += config.learner_kl_coef * float(reg.total)
    return total, (new_mu, new_nu, new_sigma), g


def config_with_boundaries(agent, **overrides):
    # horizon 4 inside 10-step segments: truncations, autoreset (invalid) steps and terminations
    return tiny_config(agent=agent, env_kwargs="", max_episode_steps=4, popart_decay=0.3, **overrides)


@pytest.mark.parametrize("agent", AGENTS)
def test_learner_step_matches_a_hand_written_reference(agent):
    config = config_with_boundaries(agent)
    topology = topology_of(config)
    lb, stores, _ = learner_batch(config)
    assert (~lb.data.valid).any() and lb.data.truncated.any()
    learner = make_learner(config, stores, None)
    model, target = copy.deepcopy(learner.model), copy.deepcopy(learner.target)
    total, (mu, nu, sigma), _ = reference_update(config, topology, model, target, lb)
    metrics = learner.step(lb)
    assert metrics["loss"] == pytest.approx(total, rel=1e-4, abs=1e-5)
    head = learner.model.value_head
    # --popart-decay is the rate the head's statistics move at (one owner)
    assert (float(head.mu), float(head.nu), float(head.sigma)) == pytest.approx((mu, nu, sigma), rel=1e-4)
    assert ("learner_kl_reg" in metrics) == (agent == "ald")


def test_vtrace_and_nstep_differ_on_this_batch():
    """The reference would not tell the estimators apart if the behaviour policy were the learner's."""
    config = config_with_boundaries("ald")
    lb, stores, _ = learner_batch(config)
    learner = make_learner(config, stores, None)
    vt = reference_update(config, topology_of(config), learner.model, learner.target, lb)
    ns = reference_update(config, dataclasses.replace(topology_of(config), returns="nstep"), learner.model,
                          learner.target, lb)
    assert not np.allclose(vt[2], ns[2])


@pytest.mark.parametrize("agent", AGENTS)
def test_learner_ignores_invalid_steps(agent):
    config = config_with_boundaries(agent)
    lb, stores, _ = learner_batch(config)
    invalid = ~lb.data.valid
    changed = copy.deepcopy(lb)
    changed.data.action[invalid] = (changed.data.action[invalid] + 1) % 4
    changed.data.reward[invalid] = 5.0
    changed.data.behaviour_logits[invalid] = 3.0 * np.random.default_rng(0).normal(size=(invalid.sum(), 4))
    losses = []
    for batch in (lb, changed):
        learner = make_learner(config, make_stores(config, None), None)
        losses.append(learner.step(batch)["loss"])
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


def test_popart_lr_zero_step_preserves_outputs_and_moves_statistics():
    config = config_with_boundaries("gtrxl", learning_rate=1e-30)
    lb, stores, _ = learner_batch(config)
    learner = make_learner(config, stores, None)
    obs, first = torch.from_numpy(lb.data.obs), torch.from_numpy(lb.data.first)

    def outputs():
        with torch.no_grad():
            _, v, _ = learner.model.forward_sequence(obs, to_torch(lb.learner_state, "cpu"), first)
            return learner.model.value_head.denormalize(v)

    before, sigma = outputs(), float(learner.model.value_head.sigma)
    learner.step(lb)
    assert float(learner.model.value_head.sigma) != sigma
    torch.testing.assert_close(outputs(), before, rtol=1e-4, atol=1e-4)


# -- distillation ------------------------------------------------------------------------

def test_distill_loss_ignores_invalid_steps():
    config = config_with_boundaries("ald")
    lb, _, _ = learner_batch(config)
    db = lb.for_distill()
    invalid = ~db.data.valid
    assert invalid.any()
    logits = db.target.logits.copy()
    logits[invalid] += 10.0 * np.random.default_rng(1).normal(size=logits[invalid].shape)
    values = db.target.values.copy()
    values[invalid] = 100.0
    changed = type(db)(db.data, TargetOutputs(logits, values, db.target.version))
    losses = [Distiller(config, build_actor_model(config), make_stores(config, None).actor).step(b)["distill_loss"]
              for b in (db, changed)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


def test_distill_pacing_allows_the_ratio_over_the_run():
    assert [distill_steps_due(2.0, n, 2 * n) for n in range(4)] == [0, 0, 0, 0]
    assert distill_steps_due(2.0, 3, 0) == 6 and distill_steps_due(1.5, 3, 4) == 0 and distill_steps_due(1.5, 4, 4) == 2


# -- the learner-side state and pi_old -----------------------------------------------------

def test_asymm_ac_policy_state_is_the_actors_and_value_state_the_runners():
    config = tiny_config(agent="asymm_ac", env_kwargs="", max_episode_steps=7)
    lb, stores, feed = learner_batch(config, rollouts=1)
    for _ in range(2):  # later segments: the runner's memory is no longer the initial state
        for i in range(config.num_actors):
            feed.add(make_actor(config, i, 1, stores).rollout())
        lb = feed.pop()
    for key, value in lb.data.actor_state.items():
        np.testing.assert_array_equal(lb.learner_state["policy"][key], value)
    memory = lb.learner_state["value"]
    assert set(memory) == {"memory", "valid"} and memory["valid"].any()
    assert lb.target is None  # the runner runs only the value network: pi_old is the learner's own


def test_pi_old_is_the_latest_target_refresh_whatever_the_runner_lags():
    config = tiny_config(agent="ald", target_period=2)
    lb, stores, _ = learner_batch(config)
    assert lb.target.version == 0
    learner = make_learner(config, stores, None)
    d = lb.data
    T = d.action.shape[0]
    obs, state, first = torch.from_numpy(d.obs), to_torch(lb.learner_state, "cpu"), torch.from_numpy(d.first)

    def target_logits():
        with torch.no_grad():
            return learner.target.forward_sequence(obs[:T], state, first[:T])[0]

    def model_logits():
        with torch.no_grad():
            return learner.model.forward_sequence(obs, state, first)[0][:T]

    for _ in range(2):
        learner.step(lb)
    assert learner.target_version == 2 and stores.target.version == 2
    # a batch the runner made before that refresh, right after it: the target is the model, so
    # pi_old is the model's own logits (no recomputation)
    own = model_logits()
    torch.testing.assert_close(learner.pi_old(lb, obs, state, first, own), target_logits(), atol=1e-5, rtol=1e-5)
    assert learner.recomputed_targets == 0
    # one update later the model has moved on: pi_old must be recomputed with the target network
    learner.step(lb)
    assert learner.steps == 3 and learner.target_version == 2
    stale_pi = learner.pi_old(lb, obs, state, first, model_logits())
    torch.testing.assert_close(stale_pi, target_logits())
    assert not torch.allclose(stale_pi, model_logits(), atol=1e-4)
    assert learner.recomputed_targets == 1
    current = LearnerBatch(lb.data, lb.learner_state, TargetOutputs(np.zeros_like(lb.target.logits),
                                                                   lb.target.values, 2))
    assert learner.pi_old(current, None, None, None, None).abs().sum() == 0  # taken from the batch
    assert learner.recomputed_targets == 1


# -- the actors' parameters follow learning ------------------------------------------------

@pytest.mark.parametrize("agent", AGENTS)
def test_actor_parameters_follow_the_learner_or_the_distillers(tmp_path, agent):
    config = tiny_config(agent=agent, actor_refresh=1, runs_dir=str(tmp_path), name="flow")
    driver = SerialDriver(config, str(tmp_path))
    store = driver.stores.actor
    initial = {k: v.clone() for k, v in store.tensors.items()}
    obs = np.random.default_rng(0).integers(0, 2, size=(4, *driver.actors[0].obs.shape[1:])).astype(np.uint8)

    def acting_logits(policy):
        return policy.step(obs, policy.initial_state(4), np.ones(4, dtype=bool))[0]

    def store_policy():
        model = build_actor_model(config)
        model.load_state_dict(store.tensors)
        return TorchPolicy(model)

    versions = []
    for _ in range(4):
        driver.round()
        for actor in driver.actors:
            trajectory = actor.rollout()  # refreshes: K_A = 1 and the store moved in this round
            assert actor.version == store.version == trajectory.param_version
            np.testing.assert_allclose(acting_logits(actor.policy), acting_logits(store_policy()), atol=1e-5)
        versions.append(driver.actors[0].version)
    assert versions == sorted(versions) and versions[0] > 0 and versions[-1] > versions[0]
    publisher_steps = driver.stats.distill_steps if agent == "ald" else driver.stats.learner_steps
    assert store.version == publisher_steps
    assert driver.stats.param_checks >= 4 and driver.stats.param_mismatches == 0
    assert any(not torch.equal(initial[k], store.tensors[k]) for k in initial)
    untrained = build_actor_model(config)
    untrained.load_state_dict(initial)
    assert not np.allclose(acting_logits(driver.actors[0].policy), acting_logits(TorchPolicy(untrained)), atol=1e-6)
    driver.close()
