"""The baseline scripts: tiny training runs as subprocesses, and CLI validation in-process."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from baselines import ppo, recurrent_ppo
from baselines.common import field_docs
from baselines.metrics import REQUIRED_KEYS, read_metrics

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--n-envs", "2", "--n-steps", "32", "--batch-size", "32", "--n-epochs", "1",
        "--eval-freq", "64", "--eval-episodes", "3", "--no-progress-bar"]


def run_script(module, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def check_run_folder(run_dir: Path, agent: str, config_keys=()):
    assert (run_dir / "model.zip").is_file()
    assert any(run_dir.glob("tb/events.out.tfevents.*"))
    config = json.loads((run_dir / "config.json").read_text())
    assert config["agent"] == agent and config["env_id"] == "MemoryEnvs/IMaze-9x9-v0"
    for key in config_keys:
        assert key in config
    records = read_metrics(run_dir / "metrics.jsonl")
    assert len(records) >= 2 and records[0]["env_steps"] == 0
    for record in records:
        assert set(REQUIRED_KEYS) <= record.keys()
        assert record["agent"] == agent and record["seed"] == 3 and record["episodes"] == 3
        assert 0.0 <= record["success_rate"] <= 1.0
    assert [r["env_steps"] for r in records] == sorted(r["env_steps"] for r in records)
    return records, json.loads((run_dir / "summary.json").read_text())


def test_ppo_frame_stack_smoke_stops_at_time_budget(tmp_path):
    result = run_script("baselines.ppo", "MemoryEnvs/IMaze-9x9-v0", "--frame-stack", "4", "--seed", "3",
                        "--total-steps", "100000000", "--time-budget-s", "2", "--runs-dir", str(tmp_path),
                        "--name", "fs4", *TINY)
    assert result.returncode == 0, result.stderr
    records, summary = check_run_folder(tmp_path / "fs4", "ppo-fs4", ["frame_stack", "n_steps", "clip_range"])
    assert summary["stopped_by"] == "time_budget"
    assert records[-1]["env_steps"] < 100000000 and records[-1]["wall_clock_s"] < 60

    # The same run name again is refused before any work, unless --overwrite.
    with pytest.raises(SystemExit) as exit_info:
        ppo.main(["MemoryEnvs/IMaze-9x9-v0", "--runs-dir", str(tmp_path), "--name", "fs4"])
    assert exit_info.value.code == 2


def test_recurrent_ppo_smoke(tmp_path):
    pytest.importorskip("sb3_contrib")
    result = run_script("baselines.recurrent_ppo", "MemoryEnvs/IMaze-9x9-v0", "--seed", "3",
                        "--total-steps", "128", "--lstm-hidden-size", "8", "--runs-dir", str(tmp_path), *TINY)
    assert result.returncode == 0, result.stderr
    records, summary = check_run_folder(tmp_path / "recurrent_ppo-IMaze-9x9-v0-s3", "recurrent_ppo",
                                        ["lstm_hidden_size", "critic_lstm"])
    assert summary["stopped_by"] == "total_steps" and records[-1]["env_steps"] == 128


def test_recurrent_ppo_without_sb3_contrib_exits_2_with_install_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sb3_contrib", None)  # makes `import sb3_contrib` fail
    assert recurrent_ppo.main(["MemoryEnvs/IMaze-9x9-v0", "--runs-dir", str(tmp_path)]) == 2
    assert "pip install 'memory-envs-ald[recurrent]'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("script", [ppo, recurrent_ppo])
def test_help_exits_0(script, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--time-budget-s" in out and "--runs-dir" in out and "Minibatch size" in out


@pytest.mark.parametrize("args, message", [
    (["MemoryEnvs/IMaze-9x9-v1"], "did you mean 'MemoryEnvs/IMaze-9x9-v0'"),
    (["MemoryEnvs/IMaze9x9"], "did you mean 'MemoryEnvs/IMaze-9x9-v0'"),
    (["MemoryEnvs/IMaze-9x9-v0", "--total-steps", "0"], "--total-steps must be positive"),
    (["MemoryEnvs/IMaze-9x9-v0", "--n-envs", "-2"], "--n-envs must be positive"),
    (["MemoryEnvs/IMaze-9x9-v0", "--learning-rate", "0"], "--learning-rate must be positive"),
    (["MemoryEnvs/IMaze-9x9-v0", "--time-budget-s", "-1"], "--time-budget-s must be positive"),
    (["MemoryEnvs/IMaze-9x9-v0", "--n-steps", "many"], "invalid int value"),
])
@pytest.mark.parametrize("script", [ppo, recurrent_ppo])
def test_bad_input_exits_2_before_any_work(script, args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.main([*args, "--runs-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("config_class", [ppo.Config, recurrent_ppo.Config])
def test_every_option_has_a_one_line_doc(config_class):
    docs = field_docs(config_class)
    assert set(docs) == {field.name for field in dataclasses.fields(config_class)}
    assert all(docs.values())
