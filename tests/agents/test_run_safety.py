"""Run safety: no run is lost, mixed up or left running, whatever kills it, reuses it or feeds
it bad input (README "Faults"). One test per case; the parallel cases run as a user runs them."""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from agents.runtime import checkpoint
from agents.runtime import launcher as launcher_module
from agents.runtime.cli import main
from agents.runtime.config import RunConfig
from agents.runtime.metrics import read_rows
from agents.runtime.topology import build_actor_model, build_learner_model
from process_helpers import alive, descendants, kill_all, pids, resume, rows, start, stop, wait_for
from runtime_helpers import tiny_cli_args, tiny_config


def cli(agent, tmp_path, name, *extra, timeout=180, **overrides):
    """A tiny serial run as a user types it; (exit status, stderr)."""
    args = tiny_cli_args(tmp_path, name, **overrides)
    out = subprocess.run([sys.executable, "-m", f"agents.{agent}", *args, *extra], capture_output=True, text=True,
                         timeout=timeout)
    return out.returncode, out.stderr


def snapshot(directory):
    """Every file under ``directory`` with its bytes."""
    return {os.path.relpath(os.path.join(d, f), directory): open(os.path.join(d, f), "rb").read()
            for d, _, files in os.walk(directory) for f in files if f != "run.lock"}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished tiny serial lstm run with three checkpoints (tests take a copy)."""
    root = tmp_path_factory.mktemp("finished")
    code, err = cli("lstm", root, "r", checkpoint_minutes=0.0001, log_seconds=0.01)
    assert code == 0, err
    assert len(checkpoint.list_checkpoints(str(root / "r"))) == 3
    return root / "r"


def copy_of(finished_run, tmp_path, name="r"):
    shutil.copytree(finished_run, tmp_path / name, ignore=shutil.ignore_patterns("run.lock"))
    saved = json.load(open(tmp_path / name / "config.json"))  # the copy is a run of its own directory
    json.dump({**saved, "runs_dir": str(tmp_path), "name": name}, open(tmp_path / name / "config.json", "w"))
    return tmp_path / name


# -- a run directory belongs to one run ------------------------------------------------------

def test_same_name_one_after_the_other_is_refused_and_overwrite_moves_the_old_run_aside(tmp_path, finished_run):
    copy_of(finished_run, tmp_path)
    before = snapshot(tmp_path / "r")
    code, err = cli("lstm", tmp_path, "r")
    assert code == 2 and "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert snapshot(tmp_path / "r") == before  # not a byte changed, no checkpoint pruned
    code, err = cli("lstm", tmp_path, "r", "--overwrite")
    assert code == 0, err
    (moved,) = (tmp_path / ".replaced").iterdir()
    assert snapshot(moved) == before and "moved the old run" in err
    assert len(rows(tmp_path, "r")) == 1  # the new run's final row only: nothing appended to the old run's


def test_same_name_twice_at_once_the_second_exits_2_and_names_the_first(tmp_path):
    process = start("lstm", tmp_path)
    try:
        assert wait_for(lambda: rows(tmp_path), 120, process)
        for extra in ((), ("--overwrite",)):
            code, err = cli("lstm", tmp_path, "p", *extra, runner="parallel")
            assert code == 2 and "in use by another run" in err and f"pid {process.pid}" in err, err
        out = subprocess.run([sys.executable, "-m", "agents.lstm", "--resume", str(tmp_path / "p")],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and f"pid {process.pid}" in out.stderr
        assert pids(tmp_path)["supervisor"] == process.pid  # the first run's files are its own
    finally:
        code, _, err = stop(process)
    assert code == 130, err
    payload, _ = checkpoint.load_latest(str(tmp_path / "p"))
    assert payload["counters"]["env_steps"] == rows(tmp_path)[-1]["env_steps"]


# -- --resume never silently restarts ---------------------------------------------------------

def test_resume_with_every_checkpoint_damaged_exits_2_and_changes_nothing(tmp_path, finished_run):
    copy_of(finished_run, tmp_path)
    paths = checkpoint.list_checkpoints(str(tmp_path / "r"))
    assert len(paths) == 3
    for i, path in enumerate(paths):
        with open(path, "r+b") as f:
            f.truncate(100 * i)  # empty, cut short, ...
    before = snapshot(tmp_path / "r")
    out = subprocess.run([sys.executable, "-m", "agents.lstm", "--resume", str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "no checkpoint loads" in out.stderr
    assert all(os.path.basename(p) in out.stderr for p in paths)
    assert snapshot(tmp_path / "r") == before


def test_a_damaged_newest_checkpoint_is_moved_aside_and_the_previous_one_resumes(tmp_path, finished_run):
    copy_of(finished_run, tmp_path)
    newest, previous = checkpoint.list_checkpoints(str(tmp_path / "r"))[:2]
    open(newest, "wb").write(b"not a checkpoint")
    out = subprocess.run([sys.executable, "-m", "agents.lstm", "--resume", str(tmp_path / "r"),
                          "--total-env-steps", "8000", "--no-progress"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert f"resuming from {previous}" in out.stderr and "damaged checkpoint moved" in out.stderr
    damaged = tmp_path / "r" / "checkpoints" / "damaged" / os.path.basename(newest)
    assert damaged.read_bytes() == b"not a checkpoint"
    kept = checkpoint.list_checkpoints(str(tmp_path / "r"))
    assert len(kept) == 3 and all(checkpoint.load(p) for p in kept)  # no slot held by the damaged file
    assert checkpoint.load(kept[0])["counters"]["env_steps"] == 8000


def test_resume_refuses_other_models_or_env_and_accepts_new_budgets(tmp_path, finished_run, capsys, monkeypatch):
    run_dir = str(copy_of(finished_run, tmp_path))
    before = snapshot(tmp_path / "r")
    for option, value in (("--actor-overrides", '{"hidden_size": 8}'), ("--env-kwargs", '{"size": 7}'),
                          ("--max-episode-steps", "31"), ("--actor-model", "lstm-64")):
        code, err = exit_code(["--resume", run_dir, option, value], capsys, monkeypatch, agent="lstm")
        assert code == 2 and "cannot change" in err and option in err, err
    assert snapshot(tmp_path / "r") == before
    out = subprocess.run([sys.executable, "-m", "agents.lstm", "--resume", run_dir, "--total-env-steps", "8000",
                          "--actor-overrides", '{"hidden_size":16}', "--no-progress"],  # the same value, respelled
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert "changed settings: --total-env-steps 4000 -> 8000" in out.stderr
    assert json.load(open(tmp_path / "r" / "config.json"))["total_env_steps"] == 8000
    # a checkpoint whose learner does not fit the config (an earlier version let a model name's size
    # win over an override): refused with the mismatch named, not a traceback in the learner
    saved = json.load(open(tmp_path / "r" / "config.json"))
    json.dump({**saved, "actor_overrides": '{"hidden_size": 8}'}, open(tmp_path / "r" / "config.json", "w"))
    newest = checkpoint.list_checkpoints(run_dir)[0]
    payload = checkpoint.load(newest)
    payload["config"] = json.dumps({**json.loads(payload["config"]), "actor_overrides": '{"hidden_size": 8}'})
    torch.save(payload, newest)
    monkeypatch.undo()
    code, err = exit_code(["--resume", run_dir, "--preset", "paper"], capsys, None, agent="lstm")
    assert "--preset paper is ignored on --resume" in err
    assert code == 2 and "holds another learner model" in err and "Traceback" not in err


# -- overrides mean what they say -------------------------------------------------------------

@pytest.mark.parametrize("agent", ["ald", "lstm", "asymm_ac"])
def test_actor_overrides_win_over_the_size_in_the_model_name(agent):
    config = tiny_config(agent=agent, actor_model="lstm-32", actor_overrides=json.dumps({"hidden_size": 16}))
    actor = build_actor_model(config)
    assert actor.config.hidden_size == 16
    learner = build_learner_model(config)
    if agent == "lstm":
        assert learner.config.hidden_size == 16
    if agent == "asymm_ac":
        assert learner.policy.config.hidden_size == 16


@pytest.mark.parametrize("agent", ["ald", "gtrxl"])
def test_learner_overrides_win_over_the_layers_in_the_model_name(agent):
    overrides = {**json.loads(tiny_config().learner_overrides), "num_layers": 3}
    config = tiny_config(agent=agent, learner_model="gtrxl-2", learner_overrides=json.dumps(overrides))
    assert len(build_learner_model(config).transformer.layers) == 3


# -- actors survive their own exceptions --------------------------------------------------------

def test_an_actor_that_raises_is_restarted_counted_and_logged(tmp_path):
    process = start("lstm", tmp_path, env={"AGENTS_FAULTS": "actor-0:2"})
    try:
        assert wait_for(lambda: rows(tmp_path) and rows(tmp_path)[-1]["actor_restarts"] == 1, 120, process)
        steps = rows(tmp_path)[-1]["env_steps"]
        assert wait_for(lambda: rows(tmp_path)[-1]["env_steps"] > steps + 1000, 60, process)
        assert alive(pids(tmp_path)["actor-0"])
    finally:
        code, _, err = stop(process)
    assert code == 130, err
    assert "fault injected by AGENTS_FAULTS after 2 rollouts" in err and "restarting it (restart 1 of" in err
    assert rows(tmp_path)[-1]["actor_restarts"] == 1


# -- bad input: exit 2, one line, nothing created -------------------------------------------------

BAD_VALUES = [
    (["--learning-rate", "inf"], "--learning-rate must be a finite number > 0.0"),
    (["--distill-ratio", "nan"], "--distill-ratio must be a finite number"),
    (["--seed", "-1"], "--seed must be a 64-bit integer in [0,"),
    (["--total-env-steps", "1" + "0" * 400], "--total-env-steps must be a 64-bit integer"),
    (["--max-episode-steps", "-1"], "--max-episode-steps"),
    (["--learner-threads", "-1"], "--learner-threads"),
    (["--num-actors", "0"], "--num-actors"),
    (["--gamma", "0"], "--gamma"),
    (["--env-id", "CartPole-v1"], "not a memory env"),
    (["--env-id", "MemoryEnvs/IMaze-9x9-v1"], "did you mean MemoryEnvs/IMaze-9x9-v0"),
    (["--env-kwargs", '{"bogus": 4}'], "--env-kwargs"),
    (["--env-kwargs", "[1, 2]"], "must be a JSON object"),
    (["--learner-overrides", "{not json"], "not valid JSON"),
    (["--learner-overrides", '{"d_modle": 8}'], "unknown override"),
    (["--batch-size", "10", "--envs-per-actor", "4"], "multiple of"),
    (["--device", "tpu"], "--device"),
    (["--overwrite", "--resume", "{run}"], "give only one"),
    (["--resume", "{run}", "--env-id", "MemoryEnvs/IMaze-15x15-v0"], "cannot change"),
    (["--resume", "{run}", "--name", "other"], "continues that run in place"),
    (["--resume", "{run}", "--runs-dir", "{tmp}/elsewhere"], "another directory"),
    (["--resume", "{tmp}/nowhere"], "no config.json"),
]
BAD_CONFIGS = [("{not json", "not valid JSON"), ("[1, 2]", "must hold a JSON object"),
               ('{"agent": "ald", "bogus_setting": 1}', "unknown setting(s) bogus_setting"),
               ('{"agent": "ald", "seed": "zero"}', "--seed must be int")]


def exit_code(argv, capsys, monkeypatch, agent="ald"):
    """The CLI's exit status and stderr for ``argv``, in this process; a run must never start
    (without ``monkeypatch``, refusals inside the launcher's run-directory checks are reached)."""
    if monkeypatch is not None:
        monkeypatch.setattr(launcher_module, "launch", lambda *a, **k: pytest.fail(f"{argv} started a run"))
    try:
        code = main(agent, "", argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("args, message", BAD_VALUES)
def test_bad_values_exit_2_with_one_line_and_create_nothing(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)  # runs/ would be created here
    run = tmp_path / "old"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"agent": "ald"}))
    before = snapshot(tmp_path)
    code, err = exit_code([a.replace("{run}", str(run)).replace("{tmp}", str(tmp_path)) for a in args], capsys,
                          monkeypatch)
    assert code == 2 and message in err, err
    assert len(err.splitlines()) == 1 and err.startswith("python -m agents.ald: error: ")
    assert snapshot(tmp_path) == before and not (tmp_path / "runs").exists()


def test_cuda_asked_but_absent_exits_2(tmp_path, capsys, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, err = exit_code(["--runs-dir", str(tmp_path), "--device", "cuda"], capsys, monkeypatch)
    assert code == 2 and "CUDA is not available" in err and not any(tmp_path.iterdir())


@pytest.mark.parametrize("text, message", BAD_CONFIGS)
def test_a_bad_saved_config_exits_2_on_resume(tmp_path, capsys, monkeypatch, text, message):
    (tmp_path / "config.json").write_text(text)
    code, err = exit_code(["--resume", str(tmp_path)], capsys, monkeypatch)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert sorted(os.listdir(tmp_path)) == ["config.json"]


@pytest.mark.parametrize("where", ["under a file", "in /proc"])
def test_an_unusable_runs_dir_exits_2_as_a_user_sees_it(tmp_path, where):
    (tmp_path / "file").write_text("x")
    runs_dir = str(tmp_path / "file" / "runs") if where == "under a file" else "/proc/ald-runs"
    out = subprocess.run([sys.executable, "-m", "agents.lstm", "--runs-dir", runs_dir, "--runner", "serial"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "cannot use" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert os.listdir(tmp_path) == ["file"] and not os.path.exists("/proc/ald-runs")


# -- smaller problems ------------------------------------------------------------------------

def test_a_full_disk_under_the_metrics_gives_the_real_error_and_a_final_checkpoint(tmp_path, finished_run):
    copy_of(finished_run, tmp_path, "p")
    metrics = tmp_path / "p" / "metrics.jsonl"
    metrics.unlink()
    metrics.symlink_to("/dev/full")  # every write: ENOSPC
    before = checkpoint.load_latest(str(tmp_path / "p"))[0]["counters"]
    process = subprocess.Popen([sys.executable, "-m", "agents.lstm", "--resume", str(tmp_path / "p"),
                                "--total-env-steps", str(10**9), "--log-seconds", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    code, _, err = stop(process, None)
    assert code == 1 and "Traceback" not in err, err
    first = next(line for line in err.splitlines() if line.startswith(("error", "also")))
    assert first.startswith("error: cannot write the metrics") and "No space left on device" in first
    after = checkpoint.load_latest(str(tmp_path / "p"))[0]["counters"]  # a new final checkpoint
    assert after["wall_clock_s"] > before["wall_clock_s"] and after["env_steps"] >= before["env_steps"]


@pytest.mark.parametrize("moment", ["imports", "validation", "children starting"])
def test_ctrl_c_during_start_up_is_quiet_and_leaves_nothing_running(tmp_path, moment):
    process = start("lstm", tmp_path)
    try:
        if moment == "children starting":  # the supervisor is starting the roles
            assert wait_for(lambda: pids(tmp_path), 120, process)
        else:
            time.sleep({"imports": 0.3, "validation": 2.0}[moment])
        os.killpg(process.pid, signal.SIGINT)
        code, _, err = stop(process, None, timeout=60)
        started = {k: v for k, v in pids(tmp_path).items() if k != "supervisor"}
        assert not any(alive(pid) for pid in started.values()), started
    finally:
        kill_all(descendants(process.pid) | set(pids(tmp_path).values()) - {process.pid})
    assert code == 130 and "Traceback" not in err, err
    assert "interrupted" in err
    if moment == "children starting":
        assert started


# -- the property: whatever stops a run, resuming never goes back -------------------------------

FAULTS = ("SIGKILL main", "SIGTERM main", "SIGINT group", "SIGKILL group", "SIGKILL learner")
COUNTERS = ("env_steps", "learner_steps", "episodes", "distill_steps")
# The draws change with FAULT_SEED (printed by each case; set it to replay one): the cases draw
# different faults, and each an agent and a moment. The resumed run is serial (resources may change
# on resume; the checkpoint is the same), which keeps the test short.
FAULT_SEED = int(os.environ.get("FAULT_SEED", time.time_ns() % 10**6))


def newest_counters(run_dir):
    payload, _ = checkpoint.load_latest(run_dir)
    return None if payload is None else payload["counters"]


@pytest.mark.parametrize("case", [0, 1])
def test_a_run_stopped_at_a_random_moment_by_a_random_fault_resumes_without_going_back(tmp_path, case):
    rng = random.Random(FAULT_SEED)
    faults = rng.sample(FAULTS, 2)
    rng = random.Random(FAULT_SEED * 10 + case)
    agent, fault, delay = rng.choice(["lstm", "ald"]), faults[case], rng.uniform(0.0, 5.0)
    print(f"FAULT_SEED={FAULT_SEED} case {case}: {agent}, {fault} {delay:.1f} s after the first checkpoint")
    run_dir = str(tmp_path / "p")
    process = start(agent, tmp_path, checkpoint_minutes=0.04)  # a periodic checkpoint every 2.4 s
    below = set()
    try:
        assert wait_for(lambda: checkpoint.list_checkpoints(run_dir), 120, process)
        time.sleep(delay)
        below = descendants(process.pid)
        periodic = newest_counters(run_dir)  # the last periodic checkpoint before the fault
        if fault == "SIGKILL learner":
            os.kill(pids(tmp_path)["learner"], signal.SIGKILL)
        elif fault.endswith("group"):
            os.killpg(process.pid, getattr(signal, fault.split()[0]))
        else:
            os.kill(process.pid, getattr(signal, fault.split()[0]))
        assert wait_for(lambda: process.poll() is not None and not any(alive(p) for p in below), 60)
    finally:
        stop(process, None)
        kill_all(below | descendants(process.pid))
    target = newest_counters(run_dir)["env_steps"] + 400
    rows_before = len(rows(tmp_path))  # the stopped run's rows
    code, err = resume(tmp_path, agent, "p", target, "--runner", "serial")
    assert code == 0, err
    found = re.search(r"resuming from \S+: ([\d,]+) env steps, ([\d,]+) learner steps", err)
    started = {"env_steps": int(found[1].replace(",", "")), "learner_steps": int(found[2].replace(",", ""))}
    # no older than the last periodic checkpoint: the counters never go back
    assert started["env_steps"] >= periodic["env_steps"] and started["learner_steps"] >= periodic["learner_steps"]
    final = newest_counters(run_dir)
    assert all(final[k] >= periodic[k] for k in COUNTERS) and final["env_steps"] >= target
    resumed_rows = rows(tmp_path)[rows_before:]
    steps = [r["env_steps"] for r in resumed_rows]
    assert steps and steps == sorted(steps) and steps[0] >= started["env_steps"] and resumed_rows[-1]["final"]
    # rows the stopped run wrote after the checkpoint it resumed from are superseded by the resumed ones
    assert resumed_rows[0]["resumed_from"] == started["env_steps"]
    kept = read_rows(run_dir)
    assert [r["env_steps"] for r in kept] == sorted(r["env_steps"] for r in kept)
    assert all(r in kept for r in resumed_rows)
    assert all(r in resumed_rows for r in kept if r["env_steps"] > started["env_steps"])


def test_every_numeric_setting_has_a_range_and_every_setting_a_kind_rule():
    import dataclasses

    for f in dataclasses.fields(RunConfig):
        if str(f.type) in ("int", "float"):
            assert "range" in f.metadata, f.name
        assert f.metadata.get("kind") in (None, "model", "env"), f.name
