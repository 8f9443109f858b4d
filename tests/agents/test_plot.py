"""``python -m agents.plot`` on fixture run directories with known curves: time to 0.95, plateau
steps, resumed rows, the table and the summary file."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agents import plot

ROOT = Path(__file__).resolve().parents[2]


def write_run(root: Path, name: str, agent: str, seed: int, rows: list[dict]) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"agent": agent, "seed": seed, "name": name, "total_env_steps": 1000,
                                                 "env_id": "MemoryEnvs/IMaze-9x9-v0"}))
    with open(run / "metrics.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return run


def row(steps, wall, success, episodes=500, waiting=10.0, final=False):
    return {"env_steps": steps, "wall_clock_s": wall, "success_rate": success, "episode_return": success,
            "episodes": episodes, "learner_waiting_pct": waiting, "actor_sps": 1000.0, "env_sps": 100.0,
            "final": final}


@pytest.fixture
def experiment(tmp_path) -> Path:
    root = tmp_path / "exp"
    write_run(root, "ald-s0", "ald", 0, [row(0, 0, None, 0), row(100, 10, 0.5, 50), row(200, 20, 0.96, 90),
                                         row(300, 30, 0.5), row(400, 40, 0.97), row(500, 50, 0.99, final=True)])
    # resumed after a kill at 300: the rows at 300 and 400 written before the kill are superseded
    write_run(root, "ald-s1", "ald", 1, [row(100, 10, 0.1), row(200, 20, 0.45), row(300, 30, 0.7),
                                         row(400, 40, 0.9), row(300, 31, 0.55), row(400, 41, 0.95),
                                         row(500, 51, 1.0, final=True)])
    write_run(root, "lstm-s0", "lstm", 0, [row(100, 1, 0.0), row(200, 2, 0.5), row(300, 3, 0.5, final=True)])
    (root / "not-a-run").mkdir()
    return root


def test_metrics_of_fixture_runs(experiment):
    runs = {(r.label, r.seed): r for r in map(plot.load_run, plot.find_runs([str(experiment)]))}
    assert set(runs) == {("ald", 0), ("ald", 1), ("lstm", 0)}
    # 0.96 at 200 steps came from 90 episodes only: the first row over 100 episodes counts
    assert plot.time_to(runs["ald", 0]) == (400.0, 40.0)
    assert list(runs["ald", 1].env_steps) == [100, 200, 300, 400, 500]
    assert plot.time_to(runs["ald", 1]) == (400.0, 41.0)
    assert plot.time_to(runs["lstm", 0]) == (None, None)
    assert plot.plateau_steps(runs["ald", 1]) == 200.0  # intervals starting at 0.45 and 0.55
    assert plot.plateau_steps(runs["lstm", 0]) == 100.0
    assert plot.mean_rate(runs["ald", 0], "learner_waiting_pct") == 10.0


def test_cli_writes_plot_table_and_summary(experiment, tmp_path):
    out = tmp_path / "assets" / "exp.png"
    summary = tmp_path / "results" / "exp.json"
    result = subprocess.run([sys.executable, "-m", "agents.plot", str(experiment), "--out", str(out),
                             "--summary", str(summary)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    table = out.with_suffix(".md").read_text()
    assert table.splitlines()[0].startswith("| agent |") and "| ald | 2 |" in table and "| lstm | 1 |" in table
    doc = json.loads(summary.read_text())
    assert doc["experiment"] == "exp"
    ald = {s["seed"]: s for s in doc["agents"]["ald"]["seeds"]}
    assert ald[0]["env_steps_to_095"] == 400.0 and ald[0]["wall_clock_to_095_s"] == 40.0
    assert doc["agents"]["lstm"]["seeds"][0]["env_steps_to_095"] is None


def test_without_summary_only_the_plot_and_its_table_are_written(experiment, tmp_path, monkeypatch):
    work = tmp_path / "clean"
    work.mkdir()
    monkeypatch.chdir(work)
    before = sorted(p.relative_to(experiment) for p in experiment.rglob("*"))
    assert plot.main([str(experiment), "--out", "x.png"]) == 0
    assert sorted(os.listdir(work)) == ["x.md", "x.png"]
    assert sorted(p.relative_to(experiment) for p in experiment.rglob("*")) == before


def test_errors(tmp_path):
    result = subprocess.run([sys.executable, "-m", "agents.plot", str(tmp_path / "missing"), "--out", "x.png"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "does not exist" in result.stderr
    (tmp_path / "empty").mkdir()
    result = subprocess.run([sys.executable, "-m", "agents.plot", str(tmp_path / "empty"), "--out", "x.png"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "no run directories" in result.stderr


def test_mean_curve_holds_solved_runs_and_never_extrapolates_open_ones():
    import numpy as np

    xs = [np.array([0.0, 1, 2]), np.array([0.0, 1, 2, 3, 4])]
    ys = [np.array([0.0, 0.5, 1.0]), np.zeros(5)]
    grid, mean = plot._mean_curve(xs, ys, held=[True, False], points=5)
    assert list(grid) == [0, 1, 2, 3, 4] and list(mean) == [0, 0.25, 0.5, 0.5, 0.5]
    grid, mean = plot._mean_curve(xs, ys, held=[False, False], points=3)
    assert list(grid) == [0, 1, 2] and list(mean) == [0, 0.25, 0.5]


def test_the_mean_is_drawn_only_where_every_seed_has_data_and_solved_runs_are_held():
    xs = [np.array([0.0, 100.0]), np.array([50.0, 100.0]), np.array([0.0, 40.0])]
    ys = [np.array([0.0, 1.0]), np.array([0.5, 0.5]), np.array([0.2, 0.96])]
    grid, mean = plot._mean_curve(xs, ys, held=[False, False, True], points=11)
    assert list(grid) == [float(x) for x in range(0, 101, 10)]
    assert np.isnan(mean[:5]).all()  # the second seed starts at 50: no mean over two seeds before it
    assert mean[5] == pytest.approx((0.5 + 0.5 + 0.96) / 3)  # the solved seed is held at 0.96
    assert mean[10] == pytest.approx((1.0 + 0.5 + 0.96) / 3)


def test_a_band_never_reached_is_a_dash_and_default_names_are_labelled_by_agent(tmp_path):
    run = write_run(tmp_path, "gtrxl-IMaze-9x9-v0-s3", "gtrxl", 3, [row(100, 1, 0.1), row(200, 2, 0.3, final=True)])
    curve = plot.load_run(str(run))
    assert curve.label == "gtrxl" and plot.plateau_steps(curve) is None
    doc = plot.summary(plot.group([curve]))
    assert doc["agents"]["gtrxl"]["seeds"][0]["plateau_env_steps"] is None
    assert plot.table(doc).splitlines()[2].rstrip("| ").endswith("—")


def test_runs_of_two_envs_are_two_curves_and_a_seed_without_episodes_leaves_the_mean_to_the_others(tmp_path):
    a = write_run(tmp_path, "ald-IMaze-9x9-v0-s0", "ald", 0, [row(100, 1, 0.1), row(200, 2, 0.3, final=True)])
    config = json.loads((a / "config.json").read_text())
    b = write_run(tmp_path, "ald-IMaze-15x15-v0-s0", "ald", 0, [row(100, 1, 0.2), row(200, 2, 0.4, final=True)])
    (b / "config.json").write_text(json.dumps({**config, "name": b.name, "env_id": "MemoryEnvs/IMaze-15x15-v0"}))
    assert sorted(plot.group([plot.load_run(str(a)), plot.load_run(str(b))])) == ["ald IMaze-15x15-v0",
                                                                                    "ald IMaze-9x9-v0"]
    # the 9x9 id at beam width 3 is another env; labels on one env each stay plain
    c = write_run(tmp_path / "beam3", "ald-s0", "ald", 0, [row(100, 1, 0.1)])
    (c / "config.json").write_text(json.dumps({**config, "name": c.name, "env_kwargs": '{"beam_width": 3}'}))
    beam3 = plot.load_run(str(c))
    assert beam3.env == 'MemoryEnvs/IMaze-9x9-v0 {"beam_width": 3}'
    (c / "config.json").write_text(json.dumps({**config, "name": c.name, "env_kwargs": '{"beam_width":3}'}))
    assert plot.load_run(str(c)).env == beam3.env  # another spelling of the same env
    assert sorted(plot.group([plot.load_run(str(a)), beam3])) == ['ald IMaze-9x9-v0', 'ald IMaze-9x9-v0 {"beam_width": 3}']
    d = write_run(tmp_path / "beam3", "gtrxl-s0", "gtrxl", 0, [row(100, 1, 0.1)])
    assert sorted(plot.group([beam3, plot.load_run(str(d))])) == ["ald", "gtrxl"]
    assert plot.summary(plot.group([beam3]))["agents"]["ald"]["env_kwargs"] == '{"beam_width": 3}'
    xs = [np.array([0.0, 100.0]), np.array([0.0, 100.0])]
    grid, mean = plot._mean_curve(xs, [np.array([0.0, 1.0]), np.array([np.nan, np.nan])], [False, False], points=3)
    assert list(mean) == [0.0, 0.5, 1.0]


def test_the_lag_is_averaged_up_to_the_solved_row_after_start_up_and_drawn(tmp_path):
    rows = [{**row(100 * i, i, 0.96 if i >= 15 else 0.1), "kl_actor_learner": 0.01 * i,
             "distill_target_age": None if i < 3 else 10.0 * i} for i in range(20)]
    run = write_run(tmp_path / "exp", "ald-s0", "ald", 0, rows)
    curve = plot.load_run(str(run))
    kl, age = plot.lag(curve)
    # rows 0..15 (solved at row 15); the first 10% (row 0) left out; ages logged from row 3
    assert kl == pytest.approx(np.mean([0.01 * i for i in range(1, 16)]))
    assert age == pytest.approx(np.mean([10.0 * i for i in range(3, 16)]))
    assert plot.main([str(tmp_path / "exp"), "--out", str(tmp_path / "x.png")]) == 0
    assert (tmp_path / "x-lag.png").read_bytes()[:4] == b"\x89PNG"
    assert "| ald | 0 |" in (tmp_path / "x.md").read_text() and "| 0.0800 | 90 |" in (tmp_path / "x.md").read_text()
    lstm = write_run(tmp_path / "other", "lstm-s0", "lstm", 0, [row(100, 1, 0.1)])
    assert plot.lag(plot.load_run(str(lstm))) == (None, None)


def test_the_row_that_reached_the_stop_rate_survives_a_final_row_at_the_same_env_steps(tmp_path):
    # a run stopped by --stop-success-rate writes its final row without stepping further
    run = write_run(tmp_path, "ald-s0", "ald", 0, [row(100, 10, 0.5), row(200, 20, 0.95), row(200, 21, 0.94, final=True)])
    curve = plot.load_run(str(run))
    assert plot.time_to(curve) == (200, 20)
    # ... and a resume at those env steps still supersedes both
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps(row(200, 25, 0.9)) + "\n")
    assert [(r["wall_clock_s"], r["final"]) for r in plot.read_rows(str(run))] == [(10, False), (25, False)]


def test_rows_a_killed_segment_wrote_after_its_checkpoint_are_superseded_by_the_resumed_ones(tmp_path):
    # checkpoint at 200, killed at 320; the resumed run's first row (at 340) says where it continued
    run = write_run(tmp_path, "ald-s0", "ald", 0, [row(100, 10, 0.1), row(200, 20, 0.2), row(260, 26, 0.3),
                                                    row(320, 32, 0.4), {**row(340, 35, 0.25), "resumed_from": 200},
                                                    row(400, 41, 0.5)])
    assert [r["env_steps"] for r in plot.read_rows(str(run))] == [100, 200, 340, 400]


def test_a_gala_curve_leaves_out_the_dip_of_a_restarted_replica():
    steps = [100, 200, 300, 250, 280, 310, 400]
    assert [r["env_steps"] for r in plot.rising_rows([{"env_steps": s} for s in steps])] == [100, 200, 300, 310, 400]
    assert plot.rising_rows([]) == []


def test_first_goals_and_the_lowest_entropy_before_them(tmp_path):
    success = [0.0, 0.0, 0.01, 0.05, 0.3, 0.9]
    entropy = [1.3, 1.0, None, 0.6, 0.9, 0.2]  # 0.6 at the first goals' row already answers to their rewards
    run = write_run(tmp_path / "exp", "gtrxl-s0", "gtrxl", 0,
                    [{**row(100 * i, i, s), "policy_entropy": e} for i, (s, e) in enumerate(zip(success, entropy))])
    assert plot.first_goals(plot.load_run(str(run))) == (300.0, 1.0)
    never = write_run(tmp_path / "exp", "lstm-s0", "lstm", 0,
                      [{**row(100 * i, i, 0.0), "policy_entropy": e} for i, e in enumerate([1.3, 0.4, 0.1])])
    assert plot.first_goals(plot.load_run(str(never))) == (None, pytest.approx(0.1))
    unlogged = write_run(tmp_path / "exp", "ald-s0", "ald", 0, [row(100, 1, 0.0), row(200, 2, 0.5)])  # no entropy
    assert plot.first_goals(plot.load_run(str(unlogged))) == (200.0, None)
    summary = tmp_path / "exp.json"
    assert plot.main([str(tmp_path / "exp"), "--out", str(tmp_path / "x.png"), "--summary", str(summary)]) == 0
    doc = json.loads(summary.read_text())
    assert doc["first_goals_threshold"] == plot.FIRST_GOALS
    assert doc["agents"]["gtrxl"]["seeds"][0]["first_goals_env_steps"] == 300.0
    assert doc["agents"]["lstm"]["seeds"][0]["lowest_entropy_before_first_goals"] == pytest.approx(0.1)
    lines = (tmp_path / "x.md").read_text().splitlines()
    assert [line.rsplit("|", 2)[1].strip() for line in lines if line.startswith(("| ald | 0", "| gtrxl | 0",
                                                                                   "| lstm | 0"))] == \
        ["200", "300 (1.00)", "never (0.10)"]


def test_a_gala_curve_reaches_095_only_once_every_replica_has_100_episodes(tmp_path):
    run = tmp_path / "lstm-gala-k2-s0"
    run.mkdir()
    (run / "gala.json").write_text(json.dumps({"run": {"agent": "lstm", "seed": 0, "total_env_steps": 500,
                                                       "env_id": "MemoryEnvs/IMaze-9x9-v0"},
                                               "gala": {"replicas": 2}}))

    def gala_row(steps, episodes, success):
        per = [{"replica": i, "env_steps": steps // 2, "episodes": e, "success_rate": success} for i, e in
               enumerate(episodes)]
        return {"env_steps": steps, "wall_clock_s": steps / 10, "episodes": sum(episodes), "success_rate": success,
                "episode_return": success, "replicas": per, "final": False}

    # 160 episodes in sum at 200 env steps, but replica 1 has 40 of them: its rate is not yet over 100
    rows = [gala_row(100, (50, 20), 0.5), gala_row(200, (120, 40), 0.97), gala_row(300, (180, 110), 0.96)]
    (run / "gala.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert plot.time_to(plot.load_run(str(run))) == (300.0, 30.0)
