"""``python -m agents.experiment``: the plans of the named experiments, and a tiny two-agent experiment
run for real, skipped when finished, resumed when its budget grows, then plotted."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents import experiment as ex
from agents.bench import SINGLE_ENV_ACTORS
from agents.runtime.config import AGENTS
from agents import plot
from runtime_helpers import tiny_cli_args

ROOT = Path(__file__).resolve().parents[2]


def test_every_experiment_plans_valid_commands(tmp_path):
    from agents.runtime.cli import resolve

    for e in ex.EXPERIMENTS.values():
        runs = ex.plan(e, str(tmp_path))
        assert len(runs) == len(e.variants) * len(e.seeds)
        assert len({r.run_dir for r in runs}) == len(runs)
        for r in runs[: len(e.variants)]:
            if r.variant.replicas:  # a GALA run: python -m agents.gala --agent ... (its budget is per replica)
                from agents.gala.__main__ import parser, resolve as resolve_gala
                from agents.runtime.config import validate

                assert r.command[1:3] == ("-m", "agents.gala")
                config, gala = resolve_gala(parser().parse_args(list(r.command[3:])))
                gala.validate()
                validate(config)
                assert gala.replicas == r.variant.replicas and config.agent == r.variant.agent
                assert config.total_env_steps * gala.replicas == r.variant.total_env_steps
            else:
                config = resolve(r.variant.agent, "", list(r.command[3:]))  # exits 2 on a bad option
                assert config.total_env_steps == r.variant.total_env_steps
            assert config.env_id == e.env_id and config.run_dir == r.run_dir


def test_required_experiments_exist():
    assert {"imaze9", "imaze9-latency", "imaze15", "metafetch", "dprl", "value-distill", "lag",
            "gala-imaze9"} <= set(ex.EXPERIMENTS)
    latency = ex.EXPERIMENTS["imaze9-latency"]
    assert {v.agent for v in latency.variants} == {"ald", "gtrxl", "lstm"}
    for run in ex.plan(latency, "runs", seeds=[0]):  # single-env actors, as the bench's latency-bound setting
        command = list(run.command)
        assert command[command.index("--envs-per-actor") + 1] == "1"
        assert command[command.index("--num-actors") + 1] == str(SINGLE_ENV_ACTORS)
    gala = ex.EXPERIMENTS["gala-imaze9"].variants
    assert {(v.agent, v.replicas) for v in gala} == {(a, k) for a in ("lstm", "ald") for k in (0, 2, 4)}
    assert {v.agent for v in ex.EXPERIMENTS["imaze9"].variants} == {"ald", "lstm", "gtrxl", "asymm_ac"}
    from agents.runtime.cli import resolve

    def configs(name):
        return [resolve(r.variant.agent, "", list(r.command[3:])) for r in ex.plan(ex.EXPERIMENTS[name], "runs", [0])]

    assert [c.distill_ratio for c in configs("dprl")] == [1, 2, 5, 10]
    assert [(c.replay_capacity, c.actor_refresh) for c in configs("lag")] == [(256, 10), (64, 10), (16, 10), (256, 1)]
    assert [c.alpha_v for c in configs("value-distill")] == [0.1, 0.0]
    assert [c.popart_decay for c in configs("popart")] == [3e-4, 1e-3, 3e-3, 1e-2]
    for name, kwargs in (("imaze-beam3", {"beam_width": 3}), ("imaze-11x11", {"size": 11}), ("imaze-13x13", {"size": 13})):
        assert ex.EXPERIMENTS[name].seeds == (0,)
        assert [(c.agent, json.loads(c.env_kwargs)) for c in configs(name)] == [(a, kwargs) for a in AGENTS]
    assert [(c.agent, c.entropy_floor, json.loads(c.env_kwargs or "{}")) for c in configs("entropy-floor")] == [
        ("gtrxl", 0.5, {"beam_width": 3}), ("gtrxl", 0.5, {"size": 13}), ("gtrxl", 0.5, {})]
    assert ex.EXPERIMENTS["lstm-floor"].seeds == (3, 4, 5, 6, 7, 8)
    assert [(c.agent, c.entropy_floor, c.total_env_steps) for c in configs("lstm-floor")] == [
        ("lstm", 0.0, 12_000_000), ("lstm", 0.5, 12_000_000), ("lstm", 1.0, 12_000_000)]
    assert [(c.agent, c.entropy_floor, json.loads(c.env_kwargs), c.total_env_steps, c.stop_success_rate)
            for c in configs("lstm-variants-floor")] == [
        ("lstm", floor, kwargs, steps, 0.95) for kwargs, steps in (({"beam_width": 3}, 8_000_000),
                                                                   ({"size": 11}, 8_000_000), ({"size": 13}, 12_000_000))
        for floor in (0.0, 0.5)]


def test_plan_filters_and_scales(tmp_path):
    e = ex.EXPERIMENTS["imaze9"]
    runs = ex.plan(e, str(tmp_path), seeds=[5], only=["lstm"], budget_scale=0.5)
    assert [(r.variant.agent, r.seed) for r in runs] == [("lstm", 5)]
    assert runs[0].command[runs[0].command.index("--total-env-steps") + 1] == str(e.variants[1].total_env_steps // 2)
    with pytest.raises(ValueError, match="nope"):
        ex.plan(e, str(tmp_path), only=["nope"])


def test_cli_errors_and_dry_run(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "agents.experiment", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)

    bad = cli("nope")
    assert bad.returncode == 2 and "unknown experiment" in bad.stderr
    dry = cli("imaze9", "--dry-run", "--runs-dir", str(tmp_path), "--seeds", "0")
    assert dry.returncode == 0, dry.stderr
    assert len(dry.stdout.strip().splitlines()) == 4 and "agents.gtrxl" in dry.stdout
    assert not os.listdir(tmp_path)
    wrong_option = cli("imaze9", "--dry-run", "--runs-dir", str(tmp_path), "--learning-rate", "-1")
    assert wrong_option.returncode == 2 and "learning-rate" in wrong_option.stderr


def test_tiny_experiment_runs_skips_resumes_and_plots(tmp_path, monkeypatch):
    common = tuple(a for a in tiny_cli_args(tmp_path, "unused", total_env_steps=1600)
                   if a not in ("--runs-dir", str(tmp_path), "--name", "unused", "--no-progress"))
    steps_at = common.index("--total-env-steps")
    common = common[:steps_at] + common[steps_at + 2:]
    tiny = ex.Experiment("tiny", "smoke test", "MemoryEnvs/IMaze-9x9-v0",
                         (ex.Variant("ald", "ald", 1600), ex.Variant("lstm", "lstm", 1600)), seeds=(0,), args=common)
    lines = []
    assert ex.execute(ex.plan(tiny, str(tmp_path)), jobs=2, log=lines.append) == 0
    for label in ("ald", "lstm"):
        run_dir = tmp_path / "tiny" / f"{label}-s0"
        assert ex.run_state(str(run_dir), 1600) == "done"
        assert json.loads((run_dir / "config.json").read_text())["total_env_steps"] == 1600
    assert sum("[ok]" in line for line in lines) == 2

    lines.clear()
    assert ex.execute(ex.plan(tiny, str(tmp_path)), log=lines.append) == 0
    assert sum("[done]" in line for line in lines) == 2 and not any("start" in line for line in lines)

    lines.clear()
    longer = ex.plan(tiny, str(tmp_path), only=["lstm"], budget_scale=2)
    assert "--resume" in ex.command_for(longer[0])
    assert ex.execute(longer, log=lines.append) == 0
    assert any(" resume " in line for line in lines)
    rows = plot.read_rows(str(tmp_path / "tiny" / "lstm-s0"))
    assert rows[-1]["env_steps"] >= 3200 and rows[-1]["learner_steps"] > 0
    assert [r["env_steps"] for r in rows] == sorted(r["env_steps"] for r in rows)

    out = tmp_path / "tiny.png"
    summary = tmp_path / "tiny.json"
    assert plot.main([str(tmp_path / "tiny"), "--out", str(out), "--summary", str(summary)]) == 0
    assert out.stat().st_size > 10_000
    doc = json.loads(summary.read_text())
    assert set(doc["agents"]) == {"ald", "lstm"}
    assert doc["agents"]["lstm"]["seeds"][0]["env_steps"] >= 3200

    # the archive: only what a plot reads, of finished runs only, and it plots the same
    archived = tmp_path / "archive"
    lines.clear()
    assert ex.archive(tiny, ex.plan(tiny, str(tmp_path), budget_scale=4), str(tmp_path), str(archived),
                      lines.append) == []
    assert not archived.exists() and sum("[not archived]" in line for line in lines) == 2
    # a run last started with a larger budget and stopped short of it is not finished either
    config = tmp_path / "tiny" / "ald-s0" / "config.json"
    saved = config.read_text()
    config.write_text(json.dumps({**json.loads(saved), "total_env_steps": 10 ** 9}))
    assert ex.archive(tiny, ex.plan(tiny, str(tmp_path), only=["ald"]), str(tmp_path), str(archived),
                      lines.append) == []
    config.write_text(saved)
    # --dry-run --archive archives what is finished and runs nothing
    monkeypatch.setitem(ex.EXPERIMENTS, "tiny", tiny)
    assert ex.main(["tiny", "--runs-dir", str(tmp_path), "--dry-run", "--archive", str(archived)]) == 0
    assert sorted(str(p.relative_to(archived)) for p in archived.rglob("*") if p.is_file()) == [
        "tiny/ald-s0/config.json", "tiny/ald-s0/metrics.jsonl", "tiny/experiment.json",
        "tiny/lstm-s0/config.json", "tiny/lstm-s0/metrics.jsonl"]
    assert json.loads((archived / "tiny" / "experiment.json").read_text()) == json.loads(json.dumps(tiny.to_dict()))
    # an archived copy with more env steps than the run is kept; one with fewer is replaced
    copy = archived / "tiny" / "lstm-s0" / "metrics.jsonl"
    longer_row = {**json.loads(copy.read_text().splitlines()[-1]), "env_steps": 10 ** 9}
    kept = copy.read_text() + json.dumps(longer_row) + "\n"
    copy.write_text(kept)
    lines.clear()
    assert ex.archive(tiny, ex.plan(tiny, str(tmp_path)), str(tmp_path), str(archived), lines.append) == [
        str(tmp_path / "tiny" / "ald-s0")]
    assert copy.read_text() == kept and any("[kept]" in line for line in lines)
    assert any("[replaced]" in line for line in lines)
    copy.write_text(kept[:-len(json.dumps(longer_row)) - 1])
    again = tmp_path / "again.json"
    assert plot.main([str(archived / "tiny"), "--out", str(tmp_path / "again.png"), "--summary", str(again)]) == 0

    def without_paths(agents):
        return json.dumps({label: [{k: v for k, v in seed.items() if k != "run_dir"} for seed in entry["seeds"]]
                           for label, entry in agents.items()}, sort_keys=True)

    assert without_paths(json.loads(again.read_text())["agents"]) == without_paths(doc["agents"])
