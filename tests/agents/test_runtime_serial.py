"""The serial runner: every agent end to end in one process, deterministic; resume; learning."""

import json

import numpy as np
import pytest
import torch

from agents.runtime import checkpoint
from agents.runtime.launcher import launch
from agents.runtime.metrics import read_jsonl, read_rows
from runtime_helpers import tiny_config

TIMING = {"wall_clock_s", "actor_sps", "env_sps", "learner_sps", "distill_sps", "dprl", "learner_waiting_pct"}


def run(tmp_path, name, **overrides):
    config = tiny_config(runs_dir=str(tmp_path), name=name, **overrides)
    assert launch(config) == 0
    rows = [json.loads(line) for line in open(tmp_path / name / "metrics.jsonl")]
    return config, rows


@pytest.mark.parametrize("agent", ["ald", "lstm", "gtrxl", "asymm_ac"])
def test_each_agent_trains_and_is_deterministic(tmp_path, agent):
    # 2 actors x 4 envs x 10 steps = 80 env steps per learner step: 200 learner steps
    config, rows = run(tmp_path, "a", agent=agent, total_env_steps=16_000)
    _, again = run(tmp_path, "b", agent=agent, total_env_steps=16_000)
    last, last_again = rows[-1], again[-1]
    assert last["learner_steps"] == 200 and last["env_steps"] == 16_000
    assert last["episodes"] > 0 and 0.0 <= last["success_rate"] <= 1.0
    for key in ("loss", "policy_loss", "value_loss", "eta", "alpha", "kl_target", "popart_sigma"):
        assert key in last
    assert 0.0 <= last["policy_entropy"] <= np.log(4) + 1e-6 and 0.0 <= last["actor_entropy"] <= np.log(4) + 1e-6
    if agent == "ald":
        assert last["distill_steps"] == 400 and "distill_kl" in last
        # replay holds the runner's batches of the last 256 learner steps, from targets at most K_L older
        assert 0 <= last["distill_target_age"] <= 200
    assert {k: v for k, v in last.items() if k not in TIMING} == {k: v for k, v in last_again.items() if k not in TIMING}
    a, _ = checkpoint.load_latest(str(tmp_path / "a"))
    b, _ = checkpoint.load_latest(str(tmp_path / "b"))
    for key in a["learner"]["model"]:
        assert torch.equal(a["learner"]["model"][key], b["learner"]["model"][key])
    saved = json.load(open(tmp_path / "a" / "config.json"))
    assert saved["agent"] == agent and saved["total_env_steps"] == 16_000


def test_resume_continues_counters_and_supersedes_the_rows_after_the_checkpoint(tmp_path):
    config, rows = run(tmp_path, "r", total_env_steps=3200)
    assert rows[-1]["env_steps"] == 3200 and all("resumed_from" not in r for r in rows)
    # what a supervisor killed after its last checkpoint leaves: rows beyond the checkpoint, which
    # the resumed run's first row (at 3200 + 80 or later) would not otherwise supersede
    stale = [{**rows[-1], "env_steps": 3200 + 40 * i, "final": False, "success_rate": -1.0} for i in (1, 2)]
    with open(tmp_path / "r" / "metrics.jsonl", "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in stale)
        f.write('{"env_steps": 33')  # and the line the kill cut short
    resumed = tiny_config(runs_dir=str(tmp_path), name="r", resume=str(tmp_path / "r"), total_env_steps=6400)
    assert launch(resumed) == 0
    rows = read_jsonl(str(tmp_path / "r" / "metrics.jsonl"))  # (the cut line skipped, the next row intact)
    assert rows[-1]["env_steps"] == 6400 and rows[-1]["learner_steps"] == 80
    marked = [r for r in rows if "resumed_from" in r]
    assert len(marked) == 1 and marked[0]["resumed_from"] == 3200 and marked[0]["env_steps"] > 3200
    kept = read_rows(str(tmp_path / "r"))
    assert all(r["success_rate"] != -1.0 for r in kept) and kept[-1]["env_steps"] == 6400
    assert [r["env_steps"] for r in kept] == sorted(r["env_steps"] for r in kept)
    payload, _ = checkpoint.load_latest(str(tmp_path / "r"))
    assert payload["counters"]["env_steps"] == 6400 and payload["learner"]["steps"] == 80


def test_repeated_non_finite_losses_stop_the_run(tmp_path, monkeypatch):
    from agents.runtime.roles import learner as learner_module

    original = learner_module.Learner.step

    def poisoned(self, lb):
        lb.data.reward[:] = float("nan")
        return original(self, lb)

    monkeypatch.setattr(learner_module.Learner, "step", poisoned)
    with pytest.raises(FloatingPointError, match="non-finite"):
        launch(tiny_config(runs_dir=str(tmp_path), name="nan", max_nan_updates=3))
    assert checkpoint.load_latest(str(tmp_path / "nan")) == (None, None)


# The budgets (runtime_helpers.LEARNING_BUDGETS) and the bar come from the spread measured over
# 3-5 seeds per agent (serial, this config): the last seed to leave the 0.5 plateau did so at about
# 530k env steps (ALD), 540k (Asymm. AC), 470k (LSTM) and 120k (GTrXL), and every measured run was
# at 0.95 or above by those budgets. A memoryless agent gets at most 0.5. The runs start in the
# background when the tests are collected, and these tests run last (conftest.py).
LEARNING_BAR = 0.75
LEARNING_TIMEOUT_S = 840  # the four runs take about 160 s of two free cores


@pytest.mark.timeout(LEARNING_TIMEOUT_S + 60)
@pytest.mark.parametrize("agent", ["ald", "lstm", "gtrxl", "asymm_ac"])
def test_each_agent_learns_a_small_imaze_beyond_memoryless(learning_result, agent):
    """I-Maze 5x5 (horizon 100, shaping): success well above the 0.5 a memoryless agent gets."""
    successes = learning_result(agent, LEARNING_TIMEOUT_S)
    assert successes[-1] >= LEARNING_BAR, successes


def test_the_progress_bar_shows_a_counters_only_row():
    from agents.runtime.launcher import Progress
    from agents.runtime.metrics import RunStats

    config = tiny_config(total_env_steps=100)
    progress = Progress(config, True)
    try:
        progress(RunStats(config).row(rates=False))  # the parallel drivers' "solved" row: no rates
        assert "sps=-" in progress.bar.postfix and "learner=0" in progress.bar.postfix
    finally:
        progress.close()
