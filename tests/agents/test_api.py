"""The Python API (``from agents import ALD``): learn, callback, save, load, predict, errors, and
the README's example, on tiny serial runs."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import memory_envs  # noqa: F401
from agents import ALD, LSTM, GTrXL, load_actor
from agents.runtime import checkpoint
from runtime_helpers import SMALL_MAZE, TINY_GTRXL

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(env_kwargs=SMALL_MAZE, max_episode_steps=30, num_actors=2, envs_per_actor=4, batch_size=8,
            unroll_length=10, learner_overrides=TINY_GTRXL, actor_overrides=json.dumps({"hidden_size": 16}),
            runner="serial", progress=False)


@pytest.fixture
def env():
    e = gym.make("MemoryEnvs/IMaze-9x9-v0", max_episode_steps=30, **json.loads(SMALL_MAZE))
    yield e
    e.close()


def test_learn_save_load_predict_round_trip(tmp_path, env):
    rows = []
    model = ALD("MemoryEnvs/IMaze-9x9-v0", runs_dir=str(tmp_path / "runs"), name="a", log_seconds=0.2, **TINY)
    assert model.learn(800, callback=rows.append) is model
    assert model.env_steps >= 800 and rows and rows[-1]["final"] and rows[-1]["env_steps"] == model.env_steps
    first = model.env_steps
    model.learn(400)  # more steps, in the same run directory
    assert model.env_steps >= first + 400
    assert json.loads(open(tmp_path / "runs" / "a" / "config.json").read())["learning_rate"] == 1e-3  # CLI default

    path = model.save(str(tmp_path / "ald.pt"))
    policy = load_actor(path, seed=0)
    for name, tensor in model.actor.model.state_dict().items():
        assert torch.equal(tensor, policy.model.state_dict()[name]), name
    obs, _ = env.reset(seed=0)
    action, state = policy.predict(obs)
    assert isinstance(action, int) and env.action_space.contains(action)
    batch = np.stack([obs, obs, obs])
    actions, batch_state = policy.predict(batch, deterministic=True)
    assert actions.shape == (3,) and actions.dtype == np.int64 and len(set(actions.tolist())) == 1
    assert policy.predict(obs, deterministic=True)[0] == actions[0]  # single and batched agree
    # a user's own loop: the state carries over, episode_start resets it
    done, steps = False, 0
    while not done:
        obs, _, terminated, truncated, _ = env.step(action)
        action, state = policy.predict(obs, state)
        done, steps = terminated or truncated, steps + 1
    assert steps <= 30
    actions, batch_state = policy.predict(batch, batch_state, episode_start=[True, False, True])
    assert actions.shape == (3,)
    with pytest.raises(ValueError, match="expected"):
        policy.predict(np.zeros((2, 2)))

    loaded = ALD.load(path, runs_dir=str(tmp_path / "runs"), name="b")
    assert loaded.env_steps == model.env_steps
    loaded.learn(400)
    assert loaded.env_steps >= model.env_steps + 400 and checkpoint.list_checkpoints(str(tmp_path / "runs" / "b"))
    in_place = ALD.load(str(tmp_path / "runs" / "a"))
    assert in_place.run_dir.endswith(os.path.join("runs", "a")) and in_place.env_steps == model.env_steps


def test_a_callback_returning_false_stops_the_run_with_a_final_checkpoint(tmp_path):
    model = LSTM("MemoryEnvs/IMaze-9x9-v0", runs_dir=str(tmp_path), name="s", log_seconds=0.05, **TINY)
    seen = []
    model.learn(10**7, callback=lambda row: seen.append(row["env_steps"]) or len(seen) < 2)
    assert len(seen) == 3 and model.env_steps < 10**6  # two rows, then the final one
    payload, _ = checkpoint.load_latest(str(tmp_path / "s"))
    assert payload["counters"]["env_steps"] == model.env_steps == seen[-1]


def test_a_raising_callback_is_re_raised_after_the_run_is_saved(tmp_path):
    model = LSTM("MemoryEnvs/IMaze-9x9-v0", runs_dir=str(tmp_path), name="r", log_seconds=0.05, **TINY)

    def callback(row):
        raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        model.learn(10**7, callback=callback)
    assert checkpoint.list_checkpoints(str(tmp_path / "r")) and model.env_steps < 10**6


def test_bad_options_and_loads_are_refused_with_the_reason(tmp_path):
    with pytest.raises(TypeError, match="did you mean 'learning_rate'"):
        ALD("MemoryEnvs/IMaze-9x9-v0", learning_rat=1e-3)
    with pytest.raises(ValueError, match="batch_size") as refused:
        ALD("MemoryEnvs/IMaze-9x9-v0", batch_size=0)
    assert "--" not in str(refused.value)  # named as this API's keyword, not as the command line's flag
    with pytest.raises(ValueError, match="unknown env id"):
        GTrXL("MemoryEnvs/Nope-v0")
    model = ALD("MemoryEnvs/IMaze-9x9-v0", runs_dir=str(tmp_path), name="x", **TINY)
    with pytest.raises(ValueError, match="before the first learn"):
        model.save(str(tmp_path / "x.pt"))
    with pytest.raises(ValueError, match="total_env_steps"):
        model.learn(0)
    model.learn(400)
    path = model.save(str(tmp_path / "x.pt"))
    with pytest.raises(ValueError, match="use ALD.load"):
        LSTM.load(path)
    with pytest.raises(ValueError, match="cannot change"):
        ALD.load(path, actor_overrides=json.dumps({"hidden_size": 32}))
    with pytest.raises(FileNotFoundError):
        load_actor(str(tmp_path / "missing.pt"))
    from agents.runtime.run_directory import RunError

    with pytest.raises(RunError, match="holds a run"):
        ALD.load(path, runs_dir=str(tmp_path)).learn(400)  # its own run directory, x, holds the run
    with pytest.raises(RunError, match=r"choose another name, or start anew with overwrite=True") as refused:
        ALD("MemoryEnvs/IMaze-9x9-v0", runs_dir=str(tmp_path), name="x", **TINY).learn(400)
    assert "--" not in str(refused.value) and f"load({str(tmp_path / 'x')!r})" in str(refused.value)
    with pytest.raises(ValueError, match="in place"):
        ALD.load(str(tmp_path / "x"), name="y")


def test_readme_python_example_runs(tmp_path):
    """The README's example as a user copies it, on a tiny setting (the options it shows are kept)."""
    text = (ROOT / "README.md").read_text()
    marker = text.index("api-example")
    snippet = re.search(r"```python\n(.*?)```", text[marker:], flags=re.S).group(1)
    tiny = ", ".join(f"{k}={v!r}" for k, v in TINY.items())
    call = 'ALD("MemoryEnvs/IMaze-9x9-v0"'
    assert call in snippet and "model.learn(" in snippet
    snippet = snippet.replace(call, f"{call}, {tiny}", 1)
    snippet = re.sub(r"model\.learn\([\d_]+", "model.learn(400", snippet)
    snippet = snippet.replace('gym.make("MemoryEnvs/IMaze-9x9-v0"', f'gym.make("MemoryEnvs/IMaze-9x9-v0", **{SMALL_MAZE}')
    out = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "SDL_VIDEODRIVER": "dummy"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "success:" in out.stdout and (tmp_path / "ald-imaze9.pt").is_file()


def test_the_docstring_example_runs(monkeypatch, tmp_path):
    import doctest

    import agents.api

    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(agents.api, optionflags=doctest.ELLIPSIS, raise_on_error=False)
    assert result.attempted >= 10 and result.failed == 0, result
    assert not list(tmp_path.iterdir())


def test_the_api_reference_is_current_and_the_packages_are_typed():
    from importlib.resources import files

    from agents import api_reference

    assert api_reference.main(["--check"]) == 0, "docs/api.md is stale: run python -m agents.api_reference"
    text = (ROOT / "docs" / "api.md").read_text()
    for name in ("Agent.learn", "ActorPolicy.predict", "agents.load_actor", "`--learning-rate`", "MemoryEnvs/IMaze-9x9-v0"):
        assert name in text, name
    assert files("agents").joinpath("py.typed").is_file() and files("memory_envs").joinpath("py.typed").is_file()


@pytest.mark.parametrize("cli,api", [
    ("--num-actors 3 x --actor-cpus 1 needs 3 CPUs", "num_actors=3 x actor_cpus=1 needs 3 CPUs"),
    ("--batch-size must be >= 1, got 0", "batch_size must be >= 1, got 0"),
    ("continue it with --resume runs/x, choose another --name, or start anew with --overwrite",
     "continue it with load('runs/x'), choose another name, or start anew with overwrite=True"),
    ("--resume '/tmp/x' is not a run", "load('/tmp/x') is not a run"),
    ("(--resume runs/x); go", "(load('runs/x')); go"),
    ("cannot use 'x' (--runs-dir/--name)", "cannot use 'x' (runs_dir/name)"),
    ("'/tmp/exp--seed/run' is bad", "'/tmp/exp--seed/run' is bad"),  # a path is not a flag
    ("--no-such-flag 3", "--no-such-flag 3"),
    ("in use (pid 3: `python -m agents.ald --num-actors 4`); wait", "in use (pid 3: `python -m agents.ald --num-actors 4`); wait"),
])
def test_refusals_name_options_as_keywords(cli, api):
    from agents.api import _as_keywords

    assert _as_keywords(cli) == api
