"""Runtime roles in isolation: trajectory schema, batching, learner-runner memory, HOGWILD!, checkpoints."""

import copy
import dataclasses
import json
import os
import time

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from agents.runtime import checkpoint
from agents.runtime.config import AGENTS
from agents.runtime.assembly import make_stores
from agents.runtime.drivers.processes import Shared, distill_main
from agents.runtime.roles.actor import Actor
from agents.runtime.roles.batcher import Batcher
from agents.runtime.roles.distill import Distiller
from agents.runtime.roles.learner import Learner
from agents.runtime.roles.learner_runner import LearnerRunner
from agents.runtime.roles.replay import Replay
from agents.runtime.topology import build_actor_model, build_learner_model, topology_of
from agents.runtime.transport.channels import Counters, TrajectoryTransport
from runtime_helpers import tiny_config


def make_actor(config, actor_id=0, seed=0, store=None):
    store = store or make_stores(config, None).actor
    return Actor(config, actor_id, build_actor_model(config), store, seed)


def make_runner(config, model=None, store=None, restage=False):
    topology = topology_of(config)
    if model is None:  # (the runner's part of the learner model: all of it for ALD, the value net for Asymm. AC)
        model = build_learner_model(config)
        model = topology.runner_module(model) if topology.has_runner else model
    return LearnerRunner(topology, model, config.num_streams, torch.device("cpu"), store, restage)


def test_trajectory_marks_final_observation_and_autoreset_step():
    config = tiny_config(max_episode_steps=4, unroll_length=12, envs_per_actor=3, env_kwargs="")
    trajectory = make_actor(config).rollout()
    T, E = trajectory.action.shape
    assert trajectory.obs.shape == (T + 1, E, 9, 1, 3) and trajectory.behaviour_logits.shape == (T, E, 4)
    assert trajectory.first[0].all()
    for e in range(E):
        for t in range(T):
            if trajectory.truncated[t, e] or trajectory.terminated[t, e]:
                assert trajectory.valid[t, e]
                if t + 1 < T:
                    assert not trajectory.valid[t + 1, e] and not trajectory.first[t + 1, e]
                    assert trajectory.first[t + 2, e]  # obs after the autoreset step starts the next episode
    # horizon 4: valid steps 0-3, step 3 truncates, step 4 is the autoreset step
    assert trajectory.truncated[3].all() and not trajectory.valid[4].any() and trajectory.first[5].all()
    assert len(trajectory.episodes) == 2 * E and all(ep.length == 4 for ep in trajectory.episodes)


def test_batcher_keeps_arrival_order_and_numbers_the_waves():
    batcher = Batcher(3)
    config = tiny_config()
    a0, a1 = make_actor(config, 0), make_actor(config, 1)
    first, second = a0.rollout(), a0.rollout()
    batcher.add(first)
    batcher.add(second)
    assert batcher.pop_batch() is None
    batcher.add(a1.rollout())
    batch = batcher.pop_batch()
    assert batch.streams.tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7]
    assert batch.wave.tolist() == [0] * 4 + [1] * 4 + [0] * 4
    np.testing.assert_array_equal(batch.obs[:, 4:8], second.obs)
    assert batcher.pop_batch() is None


def test_runner_memory_equals_one_long_forward_sequence():
    config = tiny_config(max_episode_steps=7, env_kwargs="")  # episodes end inside and across segments
    actors = [make_actor(config, i, seed=i) for i in range(2)]
    model = build_learner_model(config)
    runner = make_runner(config, model)
    batcher = Batcher(2)
    segments = []

    def segment(lb, columns=slice(None)):
        return type("Segment", (), dict(streams=lb.data.streams[columns], obs=lb.data.obs[:, columns],
                                        first=lb.data.first[:, columns], target_logits=lb.target.logits[:, columns]))

    for _ in range(4):
        for actor in actors:
            batcher.add(actor.rollout())
        segments.append(segment(runner.process(batcher.pop_batch())))
    # and a batch holding two consecutive segments of every stream (processed in two waves)
    batcher = Batcher(4)
    for _ in range(2):
        for actor in actors:
            batcher.add(actor.rollout())
    lb = runner.process(batcher.pop_batch())
    for wave in (0, 1):
        segments.append(segment(lb, lb.data.wave == wave))
    order = np.argsort(segments[0].streams)
    obs = np.concatenate([b.obs[:-1][:, np.argsort(b.streams)] for b in segments])
    first = np.concatenate([b.first[:-1][:, np.argsort(b.streams)] for b in segments])
    with torch.no_grad():
        logits, _, _ = model.forward_sequence(torch.from_numpy(obs), model.initial_state(8), torch.from_numpy(first))
    runner_logits = np.concatenate([b.target_logits[:, np.argsort(b.streams)] for b in segments])
    np.testing.assert_allclose(runner_logits, logits.numpy(), atol=1e-5)
    assert first[1:].any(), "the segments should cross episode boundaries"
    assert order.tolist() == list(range(8))


def staged_pair(config, rounds=((0, 1),), per_batch=2):
    """A runner on a target store, two batches it staged one after the other (each from the
    rollouts of ``rounds``: actor ids per round, grouped ``per_batch`` trajectories a batch), and a
    copy of its memory between them."""
    stores = make_stores(config, None)
    runner = make_runner(config, store=stores.target, restage=True)
    actors = [make_actor(config, i, seed=i) for i in range(config.num_actors)]
    batcher = Batcher(per_batch)
    lbs, between = [], None
    for _ in range(2):
        for ids in rounds:
            for i in ids:
                batcher.add(actors[i].rollout())
        lbs.append(runner.process(batcher.pop_batch()))
        between = between or copy.deepcopy(runner.states)
    return stores, runner, lbs, between


@pytest.mark.parametrize("layout", ["all streams", "two waves", "some streams"])
def test_runner_restages_a_batch_from_its_memory_with_the_refreshed_target(layout):
    config = tiny_config(max_episode_steps=7, env_kwargs="")
    rounds, per_batch = {"all streams": (((0, 1),), 2), "two waves": (((0, 1), (0, 1)), 4),
                         "some streams": (((1,),), 1)}[layout]  # (actor 1: streams 4-7 in columns 0-3)
    stores, runner, (first, held), between = staged_pair(config, rounds, per_batch)
    assert held.data.wave.max() == (1 if layout == "two waves" else 0)
    assert not runner.stale(held) and runner.restaged(held) is held
    model = build_learner_model(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    stores.target.publish(model.state_dict(), 10)
    assert runner.stale(held)
    again = runner.restaged(held)
    assert again.target.version == 10 and not runner.stale(again)
    # exactly what a runner with the memory from before `held` gives with the new parameters
    reference = make_runner(config, store=stores.target)
    reference.states = between
    fresh = reference.process(held.data)
    np.testing.assert_allclose(again.target.logits, fresh.target.logits, atol=1e-6)
    np.testing.assert_allclose(again.target.values, fresh.target.values, atol=1e-6)
    assert not np.allclose(again.target.logits, held.target.logits, atol=1e-4)
    first_wave = held.data.wave == 0
    for key in ("memory", "valid"):  # trained from the memory before `held`; the memory after it is the new one
        np.testing.assert_allclose(again.learner_state[key], fresh.learner_state[key], atol=1e-6)
        np.testing.assert_array_equal(again.learner_state[key][first_wave], held.learner_state[key][first_wave])
        torch.testing.assert_close(runner.states[key], reference.states[key])
    with pytest.raises(ValueError, match="last batch"):  # its memory before it is gone
        runner.restaged(first)
    with pytest.raises(ValueError, match="restage=True"):  # (a runner that keeps no memory before a batch)
        reference.restaged(first)
    assert reference.before is None


def test_hand_over_restages_a_batch_whose_target_was_refreshed_while_the_learner_queue_was_full():
    import queue
    import threading

    from agents.runtime.drivers.processes import hand_over

    config = tiny_config(max_episode_steps=7, env_kwargs="")
    stores, runner, (first, held), _ = staged_pair(config)
    learner_queue, stop, sent = queue.Queue(maxsize=1), threading.Event(), []
    learner_queue.put(first)
    thread = threading.Thread(target=lambda: sent.append(hand_over(learner_queue, held, runner, stop)))
    thread.start()
    time.sleep(0.1)
    assert thread.is_alive() and learner_queue.full()  # waiting for room
    stores.target.publish(build_learner_model(config).state_dict(), 10)  # the learner refreshes the target,
    assert learner_queue.get(timeout=1) is first  # then takes its next batch
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert sent[0].target.version == 10 and learner_queue.get(timeout=1) is sent[0]
    stop.set()
    assert hand_over(learner_queue, held, runner, stop) is None  # (a stopped run sends nothing)


def test_restarted_actor_never_splices_episodes():
    config = tiny_config(env_kwargs="", max_episode_steps=100)
    runner = make_runner(config)
    old = make_actor(config, 0, seed=1)
    other = make_actor(config, 1, seed=2)
    batcher = Batcher(2)
    for _ in range(2):
        batcher.add(old.rollout())
        batcher.add(other.rollout())
        runner.process(batcher.pop_batch())
    restarted = make_actor(config, 0, seed=3)  # same streams, fresh envs (its predecessor crashed)
    trajectory = restarted.rollout()
    assert trajectory.first[0].all()
    batcher.add(trajectory)
    batcher.add(other.rollout())
    batch = runner.process(batcher.pop_batch())
    fresh = make_runner(config)
    fresh.model.load_state_dict(runner.model.state_dict())
    batcher.add(trajectory)
    batcher.add(other.rollout())
    ref = fresh.process(batcher.pop_batch())
    np.testing.assert_allclose(batch.target.logits[:, :4], ref.target.logits[:, :4], atol=1e-5)


def make_batch(config):
    """A learner batch of ``config`` (ALD: through the learner runner)."""
    actors = [make_actor(config, i, seed=i) for i in range(2)]
    batcher = Batcher(2)
    for actor in actors:
        batcher.add(actor.rollout())
    return make_runner(config).process(batcher.pop_batch())


def test_distillers_share_parameters_and_actors_refresh_every_k_a():
    config = tiny_config(actor_refresh=2)
    batch = make_batch(config).for_distill()
    store = make_stores(config, None).actor
    d1 = Distiller(config, build_actor_model(config), store)
    d2 = Distiller(config, build_actor_model(config), store)
    actor = make_actor(config, store=store)
    loaded = actor.version
    before = {k: v.clone() for k, v in store.tensors.items()}
    metrics = d1.step(batch)
    published = metrics["published"]
    assert "distill_target_age" not in metrics  # (no learner count given)
    for (name, p1), (_, p2) in zip(d1.model.named_parameters(), d2.model.named_parameters()):
        assert p1.data_ptr() == p2.data_ptr() == store.tensors[name].data_ptr()
    assert any(not torch.equal(before[k], store.tensors[k]) for k in before)
    assert store.version == published.version == 1 and published == store.current()
    actor.rollout()
    assert actor.version == loaded  # one distill step < K_A = 2
    assert d2.step(batch, learner_steps=batch.target.version + 7)["distill_target_age"] == 7
    trajectory = actor.rollout()
    assert actor.version == trajectory.param_version == 2 and trajectory.param_digest == store.current().digest


def test_distill_process_update_is_visible_to_the_parent():
    config = tiny_config()
    batch = make_batch(config).for_distill()
    ctx = mp.get_context("spawn")
    stores = make_stores(config, None, ctx)
    store = stores.actor
    before = {k: v.clone() for k, v in store.tensors.items()}
    shared = Shared(config=config, supervisor_pid=os.getpid(), stop_actors=ctx.Event(), stop_distill=ctx.Event(),
                    stop=ctx.Event(),
                    events=ctx.Queue(), counters=Counters.create(ctx, {"learner_steps": 10}),
                    transport=TrajectoryTransport(ctx, 1), learner_queue=None, replay_queue=None,
                    replay_requests=ctx.Queue(), replay_responses=[ctx.Queue()], stores=stores,
                    run_dir="", resume_path=None, run_dir_inode=0,
                    wall_clock_before=0.0, clock_start=0.0)
    process = ctx.Process(target=distill_main, args=(shared, 0), daemon=True)
    process.start()
    try:
        assert shared.replay_requests.get(timeout=60) == 0
        shared.replay_responses[0].put(batch)
        deadline = 60
        while store.version == 0 and deadline > 0:
            process.join(0.1)
            deadline -= 0.1
        assert store.version >= 1
        assert any(not torch.equal(before[k], store.tensors[k]) for k in before)
        assert shared.counters.distill_steps.value >= 1
    finally:
        shared.stop_distill.set()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(5)
    assert process.exitcode == 0


def test_learner_skips_non_finite_updates_and_counts_them():
    config = tiny_config()
    batch = make_batch(config)
    learner = Learner(config, topology_of(config), build_learner_model(config), torch.device("cpu"))
    before = {k: v.clone() for k, v in learner.model.state_dict().items()}
    batch.data.reward[0, 0] = np.nan
    metrics = learner.step(batch)
    assert metrics == {"nan_updates": 1} and learner.nan_in_a_row == 1 and learner.steps == 0
    assert all(torch.equal(before[k], v) for k, v in learner.model.state_dict().items())
    batch.data.reward[0, 0] = 0.0
    assert "loss" in learner.step(batch) and learner.nan_in_a_row == 0 and learner.steps == 1


@pytest.mark.parametrize("agent", AGENTS)
def test_entropy_bonus_is_minus_coef_times_the_policy_entropy_and_raises_it(agent):
    """The same model and batch: the loss with ``entropy_coef`` c is the loss without it minus
    c H(pi); and with a large c, 30 updates end with a higher entropy than without the bonus."""
    base = tiny_config(agent=agent)
    batch = make_batch(base)
    torch.manual_seed(0)
    model = build_learner_model(base)
    losses, entropies = {}, {}
    for coef in (0.0, 0.3):
        config = dataclasses.replace(base, entropy_coef=coef)
        learner = Learner(config, topology_of(config), copy.deepcopy(model), torch.device("cpu"))
        first = learner.step(batch)
        losses[coef], entropies[coef] = first["loss"], [first["policy_entropy"]]
        entropies[coef] += [learner.step(batch)["policy_entropy"] for _ in range(30)]
    assert entropies[0.0][0] == pytest.approx(entropies[0.3][0])
    assert losses[0.3] == pytest.approx(losses[0.0] - 0.3 * entropies[0.0][0], abs=1e-5)
    assert entropies[0.3][-1] > entropies[0.0][-1]


def test_entropy_floor_adds_a_bonus_only_below_the_floor_and_its_weight_is_checkpointed():
    """A floor below the policy's entropy changes nothing (the same losses, step for step); one
    above it raises the bonus weight by rate x deficit after each step, the next step's loss is
    the plain loss minus that weight x H(pi), and the entropy ends higher than without it. A
    checkpoint keeps the weight for a resume with the floor on. (The learner's code is the same
    for every agent.)"""
    base = tiny_config(agent="ald")
    batch = make_batch(base)
    torch.manual_seed(0)
    model = build_learner_model(base)

    def learner_with(**overrides):
        config = dataclasses.replace(base, **overrides)
        return Learner(config, topology_of(config), copy.deepcopy(model), torch.device("cpu"))

    plain, low, high = learner_with(), learner_with(entropy_floor=0.01), learner_with(entropy_floor=1.386,
                                                                                      entropy_floor_rate=5.0)
    first = [learner.step(batch) for learner in (plain, low, high)]
    assert first[0]["loss"] == first[1]["loss"] == first[2]["loss"]  # the weight starts at 0
    h0 = first[0]["policy_entropy"]
    assert h0 < 1.386 and high.entropy_beta == pytest.approx(5.0 * (1.386 - h0)) and low.entropy_beta == 0.0
    # the second step: the same model and batch with the bonus weight as the only difference
    probe = learner_with()
    probe.load(copy.deepcopy(high.state()))  # (a state holds the live optimizer tensors)
    assert probe.entropy_beta == 0.0  # a resume without the floor drops the weight: nothing would update it
    kept = learner_with(entropy_floor=1.386, entropy_floor_rate=5.0)
    kept.load(copy.deepcopy(high.state()))
    assert kept.entropy_beta == high.entropy_beta > 0  # one with it keeps it
    beta = high.entropy_beta
    plain_loss, high_second = probe.step(batch), high.step(batch)
    assert high_second["loss"] == pytest.approx(plain_loss["loss"] - beta * plain_loss["policy_entropy"], abs=1e-5)
    for _ in range(20):
        assert plain.step(batch)["loss"] == low.step(batch)["loss"] and low.entropy_beta == 0.0
        last_high = high.step(batch)
    assert last_high["policy_entropy"] > plain.step(batch)["policy_entropy"] and last_high["entropy_beta"] > 0


def test_replay_is_fifo_and_samples_uniformly():
    config = tiny_config()
    replay = Replay(capacity=3, seed=0)
    assert replay.sample() is None
    batches = [make_batch(config).for_distill() for _ in range(2)]
    for i in range(5):
        replay.add(batches[i % 2])
    assert len(replay) == 3 and replay.added == 5
    assert not hasattr(replay.sample(), "learner_state")  # replay keeps only what distillation needs


# -- checkpoints ---------------------------------------------------------------------------

def test_checkpoint_roundtrip_pruning_and_temp_files_ignored(tmp_path):
    for step in (1, 2, 3, 4):
        checkpoint.save(str(tmp_path), {"format": checkpoint.FORMAT, "step": step, "w": torch.full((2,), float(step))},
                        step, keep=3)
    (tmp_path / "checkpoints" / ".tmp-abc.partial").write_bytes(b"half a file")
    assert len(checkpoint.list_checkpoints(str(tmp_path))) == 3
    payload, path = checkpoint.load_latest(str(tmp_path))
    assert payload["step"] == 4 and path.endswith("checkpoint-0000000004.pt")


def test_corrupted_latest_checkpoint_falls_back_to_previous(tmp_path):
    checkpoint.save(str(tmp_path), {"format": checkpoint.FORMAT, "step": 1}, 1)
    newest = checkpoint.save(str(tmp_path), {"format": checkpoint.FORMAT, "step": 2}, 2)
    with open(newest, "r+b") as f:
        f.truncate(10)
    with pytest.warns(UserWarning, match="skipping checkpoint"):
        payload, path = checkpoint.load_latest(str(tmp_path))
    assert payload["step"] == 1


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/ald-exploit",))


def test_malicious_pickle_checkpoint_is_refused(tmp_path):
    checkpoint.save(str(tmp_path), {"format": checkpoint.FORMAT, "step": 1}, 1)
    directory = tmp_path / "checkpoints"
    with open(directory / "checkpoint-0000000009.pt", "wb") as f:
        torch.save({"format": checkpoint.FORMAT, "step": 9, "evil": Exploit()}, f, pickle_protocol=2)
    if os.path.exists("/tmp/ald-exploit"):
        os.unlink("/tmp/ald-exploit")
    with pytest.warns(UserWarning, match="skipping checkpoint"):
        payload, _ = checkpoint.load_latest(str(tmp_path))
    assert payload["step"] == 1
    assert not os.path.exists("/tmp/ald-exploit")


def test_no_checkpoint(tmp_path):
    assert checkpoint.load_latest(str(tmp_path)) == (None, None)


def test_other_formats_are_refused_and_pruning_never_deletes_higher_steps(tmp_path):
    checkpoint.save(str(tmp_path), {"format": checkpoint.FORMAT, "step": 1}, 1)
    checkpoint.save(str(tmp_path), {"format": 1, "step": 50}, 50)
    payload, path, damaged = checkpoint.load_newest(str(tmp_path))
    assert payload["step"] == 1 and [p for p, _ in damaged] == [str(tmp_path / "checkpoints" / "checkpoint-0000000050.pt")]
    assert "format 1" in damaged[0][1]
    for step in (2, 3, 4):  # a lineage below step 50 prunes its own files only
        checkpoint.save(str(tmp_path), {"format": checkpoint.FORMAT, "step": step}, step, keep=2)
    steps = [checkpoint.step_of(p) for p in checkpoint.list_checkpoints(str(tmp_path))]
    assert steps == [50, 4, 3]


def test_run_finishes_at_budget_or_at_the_stop_success_rate():
    from types import SimpleNamespace

    from agents.runtime.metrics import RunStats

    def episodes(successes):
        return [SimpleNamespace(ret=float(s), success=bool(s)) for s in successes]

    stats = RunStats(tiny_config(total_env_steps=1000, stop_success_rate=0.9))
    stats.add_episodes(episodes([1] * 99))
    assert not stats.finished()  # 99 episodes are not yet a full window of 100
    assert not stats.solved and stats.row()["solved"] is False
    stats.add_episodes(episodes([0]))
    assert stats.finished()  # 99 of the last 100
    stats.add_episodes(episodes([0] * 10))
    assert not stats.finished()
    # episodes that end while the run stops do not undo why it stopped
    assert stats.solved and stats.row(final=True)["solved"] is True
    stats.add_env_steps(1000)
    assert stats.finished()
    never = RunStats(tiny_config(total_env_steps=1000))
    never.add_episodes(episodes([1] * 200))
    assert not never.finished() and not never.solved


def test_a_run_stopped_at_its_target_is_solved_whatever_its_final_rate():
    from agents.runtime.metrics import stopped_solved

    config = {"stop_success_rate": 0.95}
    assert stopped_solved(config, [{"success_rate": 0.96, "final": False}, {"success_rate": 0.91, "final": True,
                                                                             "solved": True}])
    assert not stopped_solved(config, [{"success_rate": 0.91, "final": True, "solved": False}])
    assert stopped_solved(config, [{"success_rate": 0.96, "final": True}])  # a row written before "solved"
    assert not stopped_solved(config, [{"success_rate": 0.96, "final": False}])  # stopped early, not solved
    assert not stopped_solved({"stop_success_rate": 0.0}, [{"success_rate": 1.0, "final": True, "solved": True}])


def test_default_preset_is_the_tuned_cpu_setting_and_paper_preset_the_paper():
    from agents.runtime.cli import resolve
    from agents.runtime.config import RunConfig

    default = resolve("ald", "", [])
    assert default == RunConfig() and resolve("lstm", "", []) == RunConfig(agent="lstm")  # one set of defaults
    assert (default.learning_rate, default.popart_decay) == (1e-3, 3e-3)
    assert json.loads(default.learner_overrides) == {"d_model": 128, "num_heads": 4}
    paper = resolve("ald", "", ["--preset", "paper"])
    assert (paper.learning_rate, paper.popart_decay, paper.learner_overrides) == (1e-4, 3e-4, "")
    assert (paper.num_actors, paper.num_distill, paper.batch_size) == (30, 8, 64)
    assert resolve("ald", "", ["--learning-rate", "5e-4"]).learning_rate == 5e-4


def test_metrics_csv_keeps_its_columns_on_resume_and_writes_objects_as_json(tmp_path):
    import csv

    from agents.runtime.metrics import COLUMNS, MetricsWriter

    old = ["env_steps", "success_rate", "final"]  # a file written before columns were added
    (tmp_path / "metrics.csv").write_text(",".join(old) + "\n1,0.5,False\n")
    writer = MetricsWriter(str(tmp_path), tensorboard=False)
    writer.write({"env_steps": 2, "success_rate": 0.75, "final": True, "actors_per_node": {"a": 2}})
    writer.close()
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert list(rows[-1]) == old and rows[-1]["env_steps"] == "2"

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    writer = MetricsWriter(str(fresh), tensorboard=False)
    writer.write({"env_steps": 3, "actors_per_node": {"node-a": 2, "node-b": 1}})
    writer.close()
    (row,) = csv.DictReader(open(fresh / "metrics.csv"))
    assert list(row) == list(COLUMNS) and json.loads(row["actors_per_node"]) == {"node-a": 2, "node-b": 1}


def test_supervisor_reads_the_final_checkpoint_from_its_file_when_the_message_is_lost(tmp_path):
    """The learner's final message can be lost (its flush is bounded); a clean learner exit with a
    newest checkpoint holding the run's final counters is still a final checkpoint, anything
    else is not."""
    from types import SimpleNamespace

    from agents.runtime.drivers.parallel import Supervisor

    final = {"env_steps": 800, "episodes": 9, "learner_steps": 10, "distill_steps": 20}
    checkpoint.save(str(tmp_path), {"format": checkpoint.FORMAT, "counters": {**final, "wall_clock_s": 3.5}}, 10)
    supervisor = Supervisor.__new__(Supervisor)
    supervisor.run_dir = str(tmp_path)
    supervisor.shared = SimpleNamespace(counters=SimpleNamespace(snapshot=lambda: dict(final)))
    assert supervisor.saved_final_checkpoint(SimpleNamespace(exitcode=0))["wall_clock_s"] == 3.5
    assert supervisor.saved_final_checkpoint(SimpleNamespace(exitcode=1)) is None  # the save may have failed
    final["env_steps"] = 840  # the newest checkpoint is an older, periodic one
    assert supervisor.saved_final_checkpoint(SimpleNamespace(exitcode=0)) is None


def test_help_shows_every_options_real_default_and_print_config_the_resolved_config(capsys):
    import dataclasses

    from agents.runtime.cli import main
    from agents.runtime.config import RunConfig, paper_preset

    with pytest.raises(SystemExit) as done:
        main("gtrxl", "", ["--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "default: None" not in text
    for f in dataclasses.fields(RunConfig):
        if f.name != "agent":
            shown = "''" if f.default == "" else str(f.default) if isinstance(f.default, bool) else repr(f.default)
            assert f"(default: {shown})" in text, f.name
    assert main("gtrxl", "", ["--print-config", "--preset", "paper", "--seed", "7"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == RunConfig(agent="gtrxl", **{**paper_preset(), "seed": 7}).to_dict()


def test_tensorboard_tags_are_grouped_constants_left_out_and_the_config_is_a_text(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from agents.runtime.metrics import MetricsWriter

    config = tiny_config(seed=7)
    writer = MetricsWriter(str(tmp_path), config=config)
    writer.write({"env_steps": 10, "success_rate": 0.5, "env_sps": 100.0, "loss": 1.5, "seed": 7, "agent": "ald",
                  "final": False})
    writer.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["charts/success_rate", "losses/loss", "system/env_sps"]
    (text,) = [t for t in events.Tags()["tensors"] if t.startswith("config")]
    shown = events.Tensors(text)[0].tensor_proto.string_val[0].decode()
    assert '"seed": 7' in shown and '"agent": "ald"' in shown

    # a resume adds its own config once, at the env step where it began
    resumed = MetricsWriter(str(tmp_path), config=dataclasses.replace(config, total_env_steps=999))
    for steps in (50, 60):
        resumed.write({"env_steps": steps, "success_rate": 0.6, "final": False})
    resumed.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    entries = events.Tensors(text)
    assert [e.step for e in entries] == [10, 50]
    assert '"total_env_steps": 999' in entries[1].tensor_proto.string_val[0].decode()
