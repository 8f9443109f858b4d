"""Pretrained actors: the shipped one solves its maze, an export keeps only the actor, and every
entry point takes a pretrained actor's name."""

import json
import os

import numpy as np
import pytest

from agents import ALD, load_actor, pretrained
from agents.evaluate import evaluate
from agents.runtime import checkpoint
from runtime_helpers import SMALL_MAZE, TINY_GTRXL


@pytest.fixture
def run_dir(tmp_path) -> str:
    model = ALD("MemoryEnvs/IMaze-9x9-v0", runs_dir=str(tmp_path), name="tiny", env_kwargs=SMALL_MAZE,
                max_episode_steps=30, num_actors=1, envs_per_actor=4, batch_size=4, unroll_length=10,
                learner_overrides=TINY_GTRXL, actor_overrides=json.dumps({"hidden_size": 16}), runner="serial",
                progress=False)
    return model.learn(200).run_dir


@pytest.mark.parametrize("name", pretrained.names())
def test_a_shipped_actor_solves_its_env(name):
    """Greedy, on seeds it never trained on (the bar leaves room: ald-imaze9 measured 1.00 greedy over 100)."""
    result = evaluate(name, episodes=50, seed=12345, greedy=True, num_envs=10)
    info = pretrained.describe(checkpoint.load(pretrained.path_of(name)))
    assert result["agent"] == info["agent"] and result["env_id"] == info["env_id"]
    assert result["success_rate"] >= 0.9, result
    assert os.path.getsize(pretrained.path_of(name)) < 1_000_000  # an actor, not a learner


def test_the_project_ships_an_ald_actor_for_the_9x9_maze():
    assert "ald-imaze9" in pretrained.names()


def test_export_keeps_the_actor_and_every_entry_point_takes_the_name(run_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pretrained, "DIRECTORY", str(tmp_path / "pretrained"))
    path = pretrained.export(run_dir, "tiny-ald", note="a test")
    payload = checkpoint.load(path)
    assert "learner" not in payload and set(payload["actor"]) == set(checkpoint.load_latest(run_dir)[0]["actor"])
    assert pretrained.names() == ["tiny-ald"] and pretrained.describe(payload)["note"] == "a test"
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"

    policy = load_actor("tiny-ald")
    obs = np.zeros(policy.observation_space.shape, dtype=policy.observation_space.dtype)
    action, state = policy.predict(obs)
    assert 0 <= action < policy.action_space.n
    assert evaluate("tiny-ald", episodes=4, seed=0, greedy=True, num_envs=2)["checkpoint"] == "tiny-ald"
    with pytest.raises(ValueError, match="holds only an actor"):
        ALD.load("tiny-ald")
    with pytest.raises(FileNotFoundError, match=r"nor a pretrained actor \(tiny-ald\)"):
        load_actor("no-such-actor")
    with pytest.raises(ValueError, match="--name"):
        pretrained.export(run_dir, "Bad Name")

    assert pretrained.main([]) == 0
    assert "tiny-ald: ald on MemoryEnvs/IMaze-9x9-v0" in capsys.readouterr().out
    assert json.loads(payload["config"])["agent"] == "ald"


def test_odd_files_do_not_break_the_listing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pretrained, "DIRECTORY", str(tmp_path))
    (tmp_path / "Bad Name.pt").write_bytes(b"x")
    (tmp_path / "damaged.pt").write_bytes(b"not a checkpoint")
    assert pretrained.names() == ["damaged"]
    assert pretrained.main(["list"]) == 0
    assert "damaged: unreadable" in capsys.readouterr().out


def test_a_local_path_wins_over_a_pretrained_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ald-imaze9").mkdir()  # not a run directory: the name means this path now
    with pytest.raises(FileNotFoundError, match="no readable checkpoint"):
        load_actor("ald-imaze9")
