"""GALA's graphs and mixing step against a numpy reference: every graph is regular, a
synchronous round keeps the replicas' mean and contracts their spread, bad graphs are refused;
the gossip hook's place in the learner update, for every agent; replicas start alike."""

import itertools

import numpy as np
import pytest

from agents.gala import graph
from agents.gala.config import GalaConfig
from agents.gala.mixing import consensus_distances, mix

GRAPHS = [(t, k, p) for t in ("ring", "exponential", "full") for k in range(2, 9)
          for p in range(1, k) if t != "full" or p == k - 1
          if t != "exponential" or p <= len(graph.exponential_offsets(k))]


@pytest.mark.parametrize("topology,replicas,peers", GRAPHS)
def test_every_graph_is_regular_and_its_in_peers_are_the_senders(topology, replicas, peers):
    for round_ in range(6):
        outs = [graph.out_peers(topology, replicas, peers, i, round_) for i in range(replicas)]
        ins = [graph.in_peers(topology, replicas, peers, i, round_) for i in range(replicas)]
        for i in range(replicas):
            assert len(set(outs[i])) == peers and i not in outs[i]
            assert sorted(ins[i]) == sorted(j for j in range(replicas) if i in outs[j])
        assert set(graph.neighbourhood(topology, replicas, peers, 0)) >= set(ins[0])


def test_exponential_peers_rotate_through_every_offset():
    seen = {tuple(graph.out_peers("exponential", 8, 1, 0, r)) for r in range(3)}
    assert seen == {(1,), (2,), (4,)}


def params(rng, replicas):
    return [{"w": rng.normal(size=(3, 4)).astype(np.float32), "b": rng.normal(size=5).astype(np.float32)}
            for _ in range(replicas)]


def stack(replicas, name):
    return np.stack([r[name].reshape(-1) for r in replicas]).astype(np.float64)


@pytest.mark.parametrize("topology,replicas,peers", [("ring", 3, 2), ("ring", 5, 2), ("exponential", 8, 1),
                                                     ("exponential", 6, 2), ("full", 4, 3), ("ring", 2, 1)])
def test_a_synchronous_round_is_the_doubly_stochastic_matrix_and_keeps_the_mean(topology, replicas, peers):
    rng = np.random.default_rng(0)
    x = params(rng, replicas)
    spread = [sum(d ** 2 for d in consensus_distances(x))]
    for round_ in range(12):
        w = np.zeros((replicas, replicas))
        for i in range(replicas):
            w[i, i] = 1.0 / (peers + 1)
            for j in graph.in_peers(topology, replicas, peers, i, round_):
                w[i, j] += 1.0 / (peers + 1)
        assert np.allclose(w.sum(axis=0), 1) and np.allclose(w.sum(axis=1), 1)
        new = [mix(x[i], [x[j] for j in graph.in_peers(topology, replicas, peers, i, round_)]) for i in range(replicas)]
        for name in ("w", "b"):
            assert np.allclose(stack(new, name), w @ stack(x, name), atol=1e-6)
            assert np.allclose(stack(new, name).mean(axis=0), stack(x, name).mean(axis=0), atol=1e-6)
        x = new
        spread.append(sum(d ** 2 for d in consensus_distances(x)))
        assert spread[-1] <= spread[-2] + 1e-9
    assert spread[-1] < 1e-2 * spread[0]


def test_mixing_with_no_message_changes_nothing_and_weights_are_uniform_over_what_arrived():
    a, b, c = ({"w": np.full(2, v, dtype=np.float32)} for v in (0.0, 3.0, 6.0))
    assert mix(a, []) is a
    assert np.allclose(mix(a, [b])["w"], 1.5) and np.allclose(mix(a, [b, c])["w"], 3.0)
    assert mix(a, [b])["w"].dtype == np.float32


def test_consensus_distances_are_each_replicas_distance_to_the_mean():
    rng = np.random.default_rng(1)
    x = params(rng, 4)
    flat = np.concatenate([stack(x, "w"), stack(x, "b")], axis=1)
    expected = np.linalg.norm(flat - flat.mean(axis=0), axis=1)
    assert np.allclose(consensus_distances(x), expected)


@pytest.mark.parametrize("options,message", [
    (dict(replicas=0), "--replicas must be >= 1"),
    (dict(replicas=3, peers=3), "--peers must be between 0 and"),
    (dict(topology="star"), "--topology must be one of"),
    (dict(replicas=4, topology="full", peers=1), "--peers must be 3"),
    (dict(replicas=4, topology="exponential", peers=3), "at most that"),
    (dict(topology="none", peers=1), "--peers must be 0"),
    (dict(max_stale=-1), "--max-stale"),
    (dict(replica_cpus=0), "--replica-cpus"),
])
def test_bad_graphs_are_refused_naming_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        GalaConfig(**options).validate()


def test_default_peers_follow_the_topology():
    assert [GalaConfig(replicas=5, topology=t).resolved_peers for t in ("ring", "exponential", "full", "none")] == \
        [2, 1, 4, 0]
    assert all(GalaConfig(replicas=1, topology=t).resolved_peers == 0 for t, in itertools.product(graph.TOPOLOGIES))


@pytest.mark.parametrize("agent", ["ald", "lstm", "gtrxl", "asymm_ac"])
def test_the_mixed_model_is_what_the_learner_publishes(agent, tmp_path):
    """The hook runs after the optimizer step and before the publications: the actors (where the
    learner feeds them) and the target network (the learner runner's copy) get the mixed model."""
    import torch

    from agents.gala.replica import gossiped
    from agents.runtime.drivers.serial import SerialDriver
    from agents.runtime.topology import topology_of
    from runtime_helpers import tiny_config

    config = tiny_config(agent=agent, target_period=1, num_distill=1)
    driver = SerialDriver(config, str(tmp_path), None)

    def hook(model):
        for tensor in gossiped(model).values():
            tensor.fill_(0.25)
        return {}

    driver.learner.after_update = hook
    while driver.learner.steps < 1:
        driver.round()
    assert all(torch.all(t == 0.25) for t in gossiped(driver.learner.model).values())
    topology = topology_of(config)
    stores = [driver.stores.target] if topology.has_runner else []
    if agent != "ald":  # (ALD's actor is the distillers')
        stores.append(driver.stores.actor)
    assert stores
    for store in stores:
        floats = [t for t in store.tensors.values() if t.is_floating_point()]
        assert floats and all(torch.all(t == 0.25) for t in floats), agent


def test_replicas_start_from_the_same_parameters_with_their_own_seeds(tmp_path):
    from agents.gala.replica import initial_payload, replica_config
    from runtime_helpers import tiny_config

    import torch

    config = tiny_config(agent="ald", runs_dir=str(tmp_path), name="g", seed=5)
    a, b = (replica_config(config, i, resume=False) for i in (0, 1))
    assert (a.seed, b.seed) == (5, 6) and a.run_dir != b.run_dir and a.runner == "serial" and a.device == "cpu"
    one, two = initial_payload(config), initial_payload(config)
    for part in ("model", "target"):
        assert all(torch.equal(one["learner"][part][k], two["learner"][part][k]) for k in one["learner"][part])
    assert all(torch.equal(one["actor"][k], two["actor"][k]) for k in one["actor"])


def _learner_model(seed: int, mu: float, nu: float, agent: str = "lstm"):
    import torch

    from agents.losses import PopArtStats, popart_sigma
    from agents.runtime.assembly import make_learner, make_stores
    from runtime_helpers import tiny_config

    config = tiny_config(agent=agent, seed=seed)
    model = make_learner(config, make_stores(config, None), None).model
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.value_head.linear.parameters():
            p.normal_()
    mu_t, nu_t = torch.tensor([mu]), torch.tensor([nu])
    model.value_head.set_stats(PopArtStats(mu_t, nu_t, popart_sigma(mu_t, nu_t, model.value_head.min_sigma)))
    return model


def test_popart_heads_are_mixed_in_reward_units():
    """Replicas whose sigmas differ by orders of magnitude (one has seen its first returns, one
    has not): the mixed head's value in reward units is the mean of theirs, its moments are the
    mean moments and its sigma is sqrt(nu - mu^2) of them."""
    import torch

    from agents.gala.replica import install, message_of

    a, b = _learner_model(0, mu=0.0, nu=1e-7), _learner_model(1, mu=0.3, nu=0.25)
    features = torch.randn(5, a.value_head.linear.in_features)
    with torch.no_grad():
        value_a, value_b = (m.value_head.denormalize(m.value_head(features)) for m in (a, b))
    message_a, message_b = message_of(a), message_of(b)
    assert "value_head.sigma" not in message_a
    np.testing.assert_allclose(message_a["value_head.linear.weight"],
                               (a.value_head.linear.weight * a.value_head.sigma).detach().numpy(), rtol=1e-6)
    install(a, mix(message_a, [message_b]))
    head = a.value_head
    with torch.no_grad():
        mixed_value = head.denormalize(head(features))
    np.testing.assert_allclose(mixed_value.numpy(), ((value_a + value_b) / 2).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose([head.mu.item(), head.nu.item()], [0.15, (1e-7 + 0.25) / 2], rtol=1e-5)
    np.testing.assert_allclose(head.sigma.item(), np.sqrt((1e-7 + 0.25) / 2 - 0.15 ** 2), rtol=1e-5)
    # every other tensor is the plain mean
    after = message_of(a)
    name = next(k for k in after if not k.startswith("value_head."))
    assert np.allclose(after[name], (message_a[name] + message_b[name]) / 2, atol=1e-6)


@pytest.mark.parametrize("agent", ["ald", "lstm", "gtrxl", "asymm_ac"])
def test_a_message_installed_back_leaves_the_model_unchanged(agent):
    import torch

    from agents.gala.replica import gossiped, install, message_of, popart_heads

    model = _learner_model(2, mu=-0.2, nu=0.5, agent=agent)
    assert popart_heads(model)  # (asymm_ac: the critic's and the unused one of its policy)
    before = {k: v.clone() for k, v in gossiped(model).items()}
    install(model, message_of(model))
    for name, value in gossiped(model).items():
        assert torch.allclose(value, before[name], rtol=1e-5, atol=1e-6), name
