"""The env command-line tools: bench, rollout, screenshots."""

import json
import subprocess
import sys

import numpy as np
import pytest

from memory_envs import bench, rollout


def test_bench_json_report_has_every_configuration():
    out = subprocess.run(
        [sys.executable, "-m", "memory_envs.bench", "--ids", "MemoryEnvs/IMaze-9x9-v0", "--seconds", "0.05",
         "--num-envs", "1", "8", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    rows = {(r["mode"], r["num_envs"]) for r in report["results"]}
    assert rows == {("single", 1), ("sync", 16), ("batched", 1), ("batched", 8)}
    assert all(r["steps_per_s"] > 0 for r in report["results"])
    assert report["minigrid"]["env_id"] == "MiniGrid-MemoryS7-v0"


def test_bench_table_and_bad_ids():
    report = {"minigrid": {"steps_per_s": None}, "results": [
        {"env_id": "MemoryEnvs/IMaze-9x9-v0", "mode": "single", "num_envs": 1, "steps_per_s": 1000.0, "x_minigrid": None}]}
    assert "not installed" in bench.format_table(report)
    with pytest.raises(SystemExit) as excinfo:
        bench.main(["--ids", "MemoryEnvs/Nope-v0"])
    assert excinfo.value.code == 2


def test_random_rollout_summary():
    summary = rollout.random_rollout("MemoryEnvs/IMaze-9x9-v0", episodes=20, seed=0, num_envs=8)
    assert summary["episodes"] == 20  # exactly: a fixed quota per env, not the first 20 to end
    assert rollout.random_rollout("MemoryEnvs/IMaze-9x9-v0", episodes=10, seed=0)["episodes"] == 10  # 64 envs
    assert rollout.random_rollout("MemoryEnvs/IMaze-9x9-v0", episodes=13, seed=0, num_envs=4)["episodes"] == 13
    assert 0.0 <= summary["success_rate"] <= 0.5
    assert 0 < summary["mean_length"] <= 150


def test_screenshots_written(tmp_path):
    pytest.importorskip("pygame")
    out = subprocess.run([sys.executable, "-m", "memory_envs.screenshots", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert len(list(tmp_path.glob("*.png"))) == 4


def test_rgb_frame_shows_agent_triangle_pointing_its_way():
    import gymnasium as gym

    from memory_envs.rendering import AGENT_COLOR

    env = gym.make("MemoryEnvs/IMaze-9x9-v0", render_mode="rgb_array")
    env.reset(seed=0)
    tile = env.unwrapped.tile_size
    for direction in range(4):
        env.unwrapped.agent_dir = direction
        frame = env.render()
        block = frame[:tile, :tile]
        mask = (block == AGENT_COLOR).all(axis=-1)
        # Pixel counts along the facing axis: many at the base, few at the apex ahead.
        profile = mask.sum(axis=0) if direction in (0, 2) else mask.sum(axis=1)
        profile = profile[profile > 0]
        if direction in (2, 3):  # facing west/north: the apex is at the low end
            profile = profile[::-1]
        assert profile[0] > 3 * profile[-1], (direction, profile)


def test_gymnasium_record_video_writes_an_mp4(tmp_path):
    """The ``video`` extra (moviepy) makes Gymnasium's RecordVideo work on our envs."""
    pytest.importorskip("moviepy")
    import gymnasium as gym
    from gymnasium.wrappers import RecordVideo

    env = RecordVideo(gym.make("MemoryEnvs/MetaFetch-3obj-v0", render_mode="rgb_array", max_episode_steps=12),
                      str(tmp_path), episode_trigger=lambda episode: True, disable_logger=True)
    env.reset(seed=0)
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        done = terminated or truncated
    env.close()
    (video,) = tmp_path.glob("*.mp4")
    assert video.stat().st_size > 1000


def test_screenshots_have_a_legend_with_each_colour_they_show():
    pytest.importorskip("pygame")
    from memory_envs import screenshots
    from memory_envs.grid import Cell
    from memory_envs.rendering import CELL_COLORS

    frame = screenshots.screenshot("MemoryEnvs/IMaze-9x9-v0", 3)
    picture = screenshots.with_legend(frame, "MemoryEnvs/IMaze-9x9-v0")
    assert picture.shape[1] == frame.shape[1] + screenshots.LEGEND_W
    assert (picture[:frame.shape[0], :frame.shape[1]] == frame).all()
    legend = picture[:, frame.shape[1]:].reshape(-1, 3)
    for cell in (Cell.GREEN, Cell.RED, Cell.GOAL, Cell.WALL):
        assert (legend == CELL_COLORS[cell]).all(axis=1).sum() >= 100, cell  # a 16x16 swatch, less its border
    assert (frame.reshape(-1, 3) == CELL_COLORS[Cell.GOAL]).all(axis=1).any()  # the goals are drawn, in blue
