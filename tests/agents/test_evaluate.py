"""``python -m agents.evaluate`` on a tiny serial ALD run: result keys, episode count, the GIF, errors (exit 2)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from agents import evaluate

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--runner", "serial", "--total-env-steps", "2000", "--num-actors", "2", "--envs-per-actor", "4",
        "--batch-size", "8", "--env-kwargs", '{"size": 5}', "--max-episode-steps", "30",
        "--learner-overrides", '{"d_model": 32, "num_heads": 2, "head_dim": 16, "memory_length": 8}',
        "--no-progress"]
KEYS = {"agent", "env_id", "seed", "checkpoint", "env_steps", "wall_clock_s", "success_rate", "episode_return",
        "episode_length", "episodes", "greedy"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> str:
    runs = tmp_path_factory.mktemp("runs")
    subprocess.run([sys.executable, "-m", "agents.ald", *TINY, "--runs-dir", str(runs), "--name", "t"],
                   cwd=ROOT, check=True, timeout=120, capture_output=True)
    return str(runs / "t")


@pytest.fixture(autouse=True)
def keep_torch_threads():
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_json_result_and_file(run_dir, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = set(os.listdir(run_dir))
    assert evaluate.main([run_dir, "--episodes", "12", "--num-envs", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(os.listdir(run_dir)) == before and os.listdir(tmp_path) == []  # nothing written unasked
    assert evaluate.main([run_dir, "--episodes", "12", "--num-envs", "5", "--out", "results/r.json"]) == 0
    assert KEYS <= set(result)
    assert result["episodes"] == 12 and 0.0 <= result["success_rate"] <= 1.0
    assert result["agent"] == "ald" and result["env_id"] == "MemoryEnvs/IMaze-9x9-v0" and result["seed"] == 0
    assert result["env_steps"] >= 2000 and result["checkpoint"].startswith("checkpoints/checkpoint-")
    assert 1 <= result["episode_length"] <= 30
    assert os.listdir(tmp_path) == ["results"] and os.listdir(tmp_path / "results") == ["r.json"]  # (made for it)
    assert set(os.listdir(run_dir)) == before
    with open(tmp_path / "results" / "r.json") as f:
        assert json.load(f) == result


def test_same_seed_same_result(run_dir):
    for greedy in (False, True):
        a, b = (evaluate.evaluate(run_dir, 6, seed=3, greedy=greedy, num_envs=4) for _ in range(2))
        assert a == b and a["greedy"] is greedy and a["seed"] == 3


@pytest.mark.parametrize("ext", [".gif", ".mp4"])
def test_video_with_step_reward_and_return_drawn(run_dir, tmp_path, capsys, ext):
    path = tmp_path / f"episode{ext}"
    assert evaluate.main([run_dir, "--episodes", "1", "--video", str(path)]) == 0
    assert "video:" in capsys.readouterr().out
    frames = iio.imread(path, **({"plugin": "FFMPEG"} if ext == ".mp4" else {}))  # all frames, stacked
    assert frames.ndim == 4 and frames.shape[0] >= 5 and frames.shape[-1] == 3
    assert frames.shape[1] % 2 == 0 and frames.shape[2] % 2 == 0
    strip = frames[:, -evaluate.STRIP_PX:, :, :].astype(int)
    assert strip.max() > 150 and strip.min() < 60  # light text on the dark strip
    assert np.abs(strip[0] - strip[-1]).sum() > 0  # the step count changed


def test_annotate_pads_to_even_sizes_and_keeps_the_frame():
    frame = np.full((15, 21, 3), 200, dtype=np.uint8)
    out = evaluate.annotate(frame, 3, 1.0, 1.0, " success")
    assert out.shape == (32, 22, 3) and (out[:15, :21] == 200).all()


def bad_argvs(run_dir: str, tmp: Path) -> dict:
    (tmp / "not-a-run").mkdir()
    (tmp / "notes.txt").write_text("not a checkpoint")
    (tmp / "no-checkpoint").mkdir()
    shutil.copy(os.path.join(run_dir, "config.json"), tmp / "no-checkpoint")
    return {
        "missing run dir": [str(tmp / "missing")],
        "not a checkpoint": [str(tmp / "notes.txt")],
        "no config.json": [str(tmp / "not-a-run")],
        "no checkpoint": [str(tmp / "no-checkpoint")],
        "zero episodes": [run_dir, "--episodes", "0"],
        "not a number": [run_dir, "--episodes", "many"],
        "video format": [run_dir, "--video", str(tmp / "x.avi")],
    }


def test_errors_exit_2(run_dir, tmp_path, capsys):
    for name, argv in bad_argvs(run_dir, tmp_path).items():
        with pytest.raises(SystemExit) as info:
            evaluate.main(argv)
        assert info.value.code == 2, name
        assert "error:" in capsys.readouterr().err, name


def test_cli_exit_code(tmp_path):
    done = subprocess.run([sys.executable, "-m", "agents.evaluate", str(tmp_path / "missing")], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no such file or run directory" in done.stderr
