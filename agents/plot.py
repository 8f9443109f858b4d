"""Learning curves, a Fig. 1-style table and a time-to-0.95 summary from run directories.

    python -m agents.plot runs/imaze9 --out assets/results/imaze9.png --summary assets/results/imaze9.json
    python -m agents.plot runs/imaze9/ald-s0 runs/imaze9/lstm-s0 --out cmp.png

Arguments are run directories (``config.json`` + ``metrics.jsonl``) or directories holding them
(an experiment's ``runs/<experiment>``). Runs are grouped into curves by their name without the
``-s<seed>`` suffix (for ``agents.experiment`` runs, the variant label: ``ald``, ``lstm``, ...), and
by env too where one label has runs on several (an env is its id and its ``--env-kwargs``).

Writes
- ``--out`` (PNG): success rate and episode return against env steps and against wall-clock,
  the mean over seeds (thick; a seed stopped by ``--stop-success-rate`` counts at its last
  value after it stopped) and every seed (thin), plus bars of the env steps spent on the 0.5
  plateau (Fig. 6 right) and of env steps per second;
- ``<out>.md``: two markdown tables (also printed): per curve, learner waiting %, actor and env
  SPS, final success, mean time to 0.95 success in env steps and wall-clock, plateau steps; and
  per run, the time to 0.95 or how far the run got, the actor-learner lag up to then, and the
  first goals with the lowest policy entropy before them;
- ``<out>-lag.png``: the lag against env steps, every run: KL(pi_A || pi_L) on the learner's
  batches and (ALD) the age of the distillation targets;
- ``--summary`` (only if given): per curve and seed, the env steps
  and wall-clock seconds of the first metrics row with success >= 0.95 over the last 100 episodes
  (``null`` if the run never got there), the final success, the plateau steps and the lag
  (``kl_actor_learner``, ``distill_target_age``: see :func:`lag`), and exploration: the env steps
  of the first goals (the first row with success >= 0.05) and the learner policy's lowest entropy
  before them (a policy that drifts toward deterministic before any reward: see :func:`first_goals`).

Rows repeated after a ``--resume`` (written between the last checkpoint and the stop) are dropped.
Rates (waiting %, SPS) average the rows after the first 10% of the run's wall-clock (start-up)
and leave out the ``final`` row, whose rates cover only shutdown.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field

import numpy as np

from agents.gala.files import GALA_FILE, is_gala_run, read_gala_rows, replica_dirs
from agents.runtime.metrics import read_rows, stopped_solved

THRESHOLD = 0.95
PLATEAU = (0.4, 0.6)
FIRST_GOALS = 0.05  # the success rate (over the last 100 episodes, or all of them before the 100th) that
# counts as "the run has found its goals"
_SEED_SUFFIX = re.compile(r"-s\d+$")


@dataclass
class RunCurve:
    """One run's metrics as arrays (rows in env-step order, resumed duplicates removed)."""

    path: str
    label: str
    seed: int
    agent: str
    env_id: str
    total_env_steps: int
    env_steps: np.ndarray
    wall_clock: np.ndarray
    success: np.ndarray  # NaN before the first episode
    episode_return: np.ndarray
    episodes: np.ndarray  # (GALA: the fewest of any replica, whose rate must rest on 100 as well)
    rates: list[dict]  # rows used for rate averages
    stopped_solved: bool = False  # ended by its --stop-success-rate
    # the lag (NaN where a row has none): KL(pi_A || pi_L) on the learner's batches, and (ALD) the
    # learner steps since the targets of the latest distilled batch were made
    kl_actor_learner: np.ndarray = field(default_factory=lambda: np.zeros(0))
    distill_target_age: np.ndarray = field(default_factory=lambda: np.zeros(0))
    policy_entropy: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the learner's, nats
    env_kwargs: str = ""  # (``--env-kwargs``: the 9x9 id at another size or beam width is another env)

    @property
    def env(self) -> str:
        """The env id, with its keyword arguments when there are any."""
        return f"{self.env_id} {self.env_kwargs}" if self.env_kwargs else self.env_id


def is_run(path: str) -> bool:
    """A run directory (``config.json``) or a GALA run directory (``gala.json``: one curve, its
    replicas' env steps summed and their success rates averaged)."""
    return os.path.exists(os.path.join(path, "config.json")) or is_gala_run(path)


def find_runs(paths: list[str]) -> list[str]:
    """Run directories named by ``paths`` (themselves, or their children that are runs)."""
    found = []
    for path in paths:
        if is_run(path):
            found.append(path)
        elif os.path.isdir(path):
            found += sorted(os.path.join(path, d) for d in os.listdir(path) if is_run(os.path.join(path, d)))
        else:
            raise FileNotFoundError(f"{path!r} does not exist")
    if not found:
        raise FileNotFoundError(f"no run directories (with config.json) in {paths}")
    return found


def rising_rows(rows: list[dict]) -> list[dict]:
    """The rows whose env steps reach the running maximum: a GALA run's summed env steps dip
    while a restarted replica replays from its checkpoint, and a curve (``np.interp``, the
    plateau's widths) needs x that never goes back."""
    kept, top = [], -1.0
    for row in rows:
        if row.get("env_steps", 0) >= top:
            kept.append(row)
            top = row.get("env_steps", 0)
    return kept


def load_run(path: str) -> RunCurve:
    gala = is_gala_run(path)
    if gala:
        with open(os.path.join(path, GALA_FILE)) as f:
            spec = json.load(f)
        replicas = int(spec["gala"]["replicas"])
        config = {**spec["run"], "total_env_steps": int(spec["run"]["total_env_steps"]) * replicas}
        rows = [{**r, "episodes": min(p.get("episodes", 0) for p in r["replicas"])} if r.get("replicas") else r
                for r in rising_rows(read_gala_rows(path))]
    else:
        with open(os.path.join(path, "config.json")) as f:
            config = json.load(f)
        rows = read_rows(path)
    # the directory's own name: a run linked into another experiment (the same settings, run once)
    # is labelled as that experiment's variant
    name = os.path.basename(os.path.normpath(path)) or config.get("name", "")
    env_id = config.get("env_id", "?")
    label = _SEED_SUFFIX.sub("", name)
    env_suffix = "-" + env_id.split("/")[-1]
    if label.endswith(env_suffix) and len(label) > len(env_suffix):  # the default name <agent>-<env>-s<seed>
        label = label[:-len(env_suffix)]
    nan = float("nan")

    def col(key):
        return np.array([nan if r.get(key) is None else float(r[key]) for r in rows], dtype=np.float64)

    wall = col("wall_clock_s")
    start = 0.1 * (wall[-1] if len(wall) else 0.0)
    rates = [r for r in rows if not r.get("final") and r["wall_clock_s"] >= start]
    return RunCurve(path=path, label=label, seed=int(config.get("seed", 0)),
                    agent=config.get("agent", "?"), env_id=env_id, env_kwargs=_canonical(config.get("env_kwargs")),
                    total_env_steps=int(config.get("total_env_steps", 0)), env_steps=col("env_steps"),
                    wall_clock=wall, success=col("success_rate"), episode_return=col("episode_return"),
                    episodes=col("episodes"), rates=rates, kl_actor_learner=col("kl_actor_learner"),
                    distill_target_age=col("distill_target_age"), policy_entropy=col("policy_entropy"),
                    stopped_solved=all(stopped_solved(config, read_rows(d)) for d in replica_dirs(path))
                    if gala else stopped_solved(config, rows))


def _canonical(env_kwargs: str | None) -> str:
    """``--env-kwargs`` text with sorted keys and one spacing, so two spellings are one env."""
    kwargs = json.loads(env_kwargs) if env_kwargs else {}
    return json.dumps(kwargs, sort_keys=True) if kwargs else ""


def time_to(run: RunCurve, threshold: float = THRESHOLD) -> tuple[float | None, float | None]:
    """``(env steps, wall-clock s)`` of the first row whose success over the last 100 episodes
    (so at least 100 episodes in) is >= ``threshold``; ``(None, None)`` if never."""
    i = _first_row_at(run, threshold)
    if i is None:
        return None, None
    return float(run.env_steps[i]), float(run.wall_clock[i])


def _first_row_at(run: RunCurve, threshold: float = THRESHOLD, episodes: int = 100) -> int | None:
    hit = np.flatnonzero((run.success >= threshold) & (run.episodes >= episodes))
    return int(hit[0]) if len(hit) else None


def plateau_steps(run: RunCurve, band: tuple[float, float] = PLATEAU) -> float | None:
    """Env steps spent while the success rate was in ``band`` (Fig. 6 right): each interval
    between two rows counts when the earlier row's success is in the band. None for a run whose
    success never reached the band (0 would read as "passed through it at once")."""
    if not (run.success >= band[0]).any():
        return None
    if len(run.env_steps) < 2:
        return 0.0
    inside = (run.success[:-1] >= band[0]) & (run.success[:-1] <= band[1])
    return float(np.sum(np.diff(run.env_steps)[inside]))


def lag(run: RunCurve) -> tuple[float | None, float | None]:
    """``(mean KL(pi_A || pi_L), mean distillation target age)`` over the rows up to the first
    with success >= 0.95 (the whole run if it never got there), leaving out the first 10% of
    them (start-up: an empty replay has young targets). A row holds the latest value logged
    (one per ``--log-seconds``), so this is a mean over time. None where a value was never
    logged (GALA runs: their rows have neither; each replica's own run directory has both)."""
    hit = _first_row_at(run)
    end = len(run.env_steps) if hit is None else hit + 1
    out = []
    for values in (run.kl_actor_learner, run.distill_target_age):
        window = values[end // 10:end]
        window = window[~np.isnan(window)]
        out.append(float(window.mean()) if len(window) else None)
    return out[0], out[1]


def first_goals(run: RunCurve, threshold: float = FIRST_GOALS) -> tuple[float | None, float | None]:
    """``(env steps of the first row with success >= threshold, the learner policy's lowest entropy
    in the rows before it)``; a run that never got there: ``(None, lowest entropy of the whole
    run)``. V-MPO has no entropy term, so with all-zero returns a policy can drift toward
    deterministic before it ever sees a goal; this is the number that shows it (the row of the
    first goals is left out: its entropy already answers to the rewards found). The entropy is
    None where no row before logged one (GALA runs: each replica's own run directory has it)."""
    hit = _first_row_at(run, threshold, episodes=0)
    entropy = run.policy_entropy[:len(run.env_steps) if hit is None else hit]
    entropy = entropy[~np.isnan(entropy)]
    return (None if hit is None else float(run.env_steps[hit])), (float(entropy.min()) if len(entropy) else None)


def mean_rate(run: RunCurve, key: str) -> float | None:
    values = [r[key] for r in run.rates if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def group(runs: list[RunCurve]) -> dict[str, list[RunCurve]]:
    """Curves by label; when a label has runs on several envs (or on one env id with other
    ``--env-kwargs``), by label and env (never one curve over two envs)."""
    envs: dict[str, set[str]] = {}
    for run in runs:
        envs.setdefault(run.label, set()).add(run.env)
    several = any(len(e) > 1 for e in envs.values())
    groups: dict[str, list[RunCurve]] = {}
    for run in sorted(runs, key=lambda r: (r.label, r.env, r.seed)):
        key = f"{run.label} {' '.join((run.env_id.split('/')[-1], run.env_kwargs)).strip()}" if several else run.label
        groups.setdefault(key, []).append(run)
    return groups


def summary(groups: dict[str, list[RunCurve]]) -> dict:
    """The ``assets/results/<experiment>.json`` document."""
    agents = {}
    for label, runs in groups.items():
        seeds = []
        for run in runs:
            steps, wall = time_to(run)
            kl, age = lag(run)
            goals, entropy = first_goals(run)
            last = run.success[~np.isnan(run.success)]
            seeds.append({"seed": run.seed, "env_steps_to_095": steps, "wall_clock_to_095_s": wall,
                          "final_success_rate": float(last[-1]) if len(last) else None,
                          "env_steps": float(run.env_steps[-1]) if len(run.env_steps) else 0.0,
                          "wall_clock_s": float(run.wall_clock[-1]) if len(run.wall_clock) else 0.0,
                          "plateau_env_steps": plateau_steps(run),
                          "learner_waiting_pct": mean_rate(run, "learner_waiting_pct"),
                          "actor_sps": mean_rate(run, "actor_sps"), "env_sps": mean_rate(run, "env_sps"),
                          "kl_actor_learner": kl, "distill_target_age": age,
                          "first_goals_env_steps": goals, "lowest_entropy_before_first_goals": entropy,
                          "run_dir": run.path})
        agents[label] = {"agent": runs[0].agent, "env_id": runs[0].env_id, **(
            {"env_kwargs": runs[0].env_kwargs} if runs[0].env_kwargs else {}), "seeds": seeds}
    return {"threshold": THRESHOLD, "plateau_band": list(PLATEAU), "first_goals_threshold": FIRST_GOALS,
            "agents": agents}


def _fmt(value, digits=0, unit=""):
    if value is None:
        return "—"
    if isinstance(value, float) and digits == 0 and abs(value) >= 1e5:
        return f"{value / 1e6:.2f}M{unit}"
    return f"{value:,.{digits}f}{unit}"


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def table(doc: dict) -> str:
    """Markdown: one row per curve, means over seeds (and how many seeds reached 0.95)."""
    lines = ["| agent | seeds | learner waiting % | actor SPS | env SPS | final success | seeds at 0.95 | "
             "env steps to 0.95 | wall-clock to 0.95 | env steps at 0.4–0.6 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for label, entry in doc["agents"].items():
        s = entry["seeds"]
        reached = [x for x in s if x["env_steps_to_095"] is not None]
        wall = _mean([x["wall_clock_to_095_s"] for x in reached])
        lines.append(
            f"| {label} | {len(s)} | {_fmt(_mean([x['learner_waiting_pct'] for x in s]), 1)} | "
            f"{_fmt(_mean([x['actor_sps'] for x in s]))} | {_fmt(_mean([x['env_sps'] for x in s]))} | "
            f"{_fmt(_mean([x['final_success_rate'] for x in s]), 2)} | {len(reached)}/{len(s)} | "
            f"{_fmt(_mean([x['env_steps_to_095'] for x in reached]))} | "
            f"{'—' if wall is None else f'{wall / 60:.1f} min'} | "
            f"{_fmt(_mean([x['plateau_env_steps'] for x in s]))} |")
    return "\n".join(lines)


def seed_table(doc: dict) -> str:
    """Markdown: one row per run (time to 0.95 per seed, or how far the run got without it; the lag;
    the first goals and the lowest policy entropy before them)."""
    lines = ["| agent | seed | env steps to 0.95 | wall-clock to 0.95 | run length (env steps, wall-clock) | "
             "final success | KL(pi_A ‖ pi_L) | distill target age | first goals (lowest entropy before them) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, entry in doc["agents"].items():
        for x in entry["seeds"]:
            wall = x["wall_clock_to_095_s"]
            lines.append(f"| {label} | {x['seed']} | {_fmt(x['env_steps_to_095'])} | "
                         f"{'not reached' if wall is None else f'{wall / 60:.1f} min'} | "
                         f"{_fmt(x['env_steps'])}, {x['wall_clock_s'] / 60:.1f} min | "
                         f"{_fmt(x['final_success_rate'], 2)} | {_fmt(x.get('kl_actor_learner'), 4)} | "
                         f"{_fmt(x.get('distill_target_age'))} | {_goals(x)} |")
    return "\n".join(lines)


def _goals(x: dict) -> str:
    goals, entropy = x.get("first_goals_env_steps"), x.get("lowest_entropy_before_first_goals")
    where = "never" if goals is None else _fmt(goals)
    return where if entropy is None else f"{where} ({entropy:.2f})"


def _mean_curve(xs: list[np.ndarray], ys: list[np.ndarray], held: list[bool], points: int = 200):
    """Mean of per-seed curves on a common grid, only where every seed has data (a mean over a
    changing set of seeds draws steps no run had). A run that ended because it was solved
    (``--stop-success-rate``) is held at its last value; any other run counts up to its own end
    only, and the grid stops at the shortest such run (no extrapolation of unfinished runs)."""
    open_ends = [x[-1] for x, h in zip(xs, held) if not h]
    grid = np.linspace(0, min(open_ends) if open_ends else max(x[-1] for x in xs), points)
    stacked = []
    for x, y, h in zip(xs, ys, held):
        ok = ~np.isnan(y)
        if ok.sum() < 2:  # no curve yet (no episode ended): left out of the mean
            continue
        stacked.append(np.interp(grid, x[ok], y[ok], left=np.nan, right=y[ok][-1] if h else np.nan))
    if not stacked:
        return grid, np.full(points, np.nan)
    stacked = np.array(stacked)
    everyone = (~np.isnan(stacked)).all(axis=0)
    return grid, np.where(everyone, np.nan_to_num(stacked).mean(axis=0), np.nan)


def plot(groups: dict[str, list[RunCurve]], doc: dict, out: str, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, runs) in enumerate(groups.items()):
        colour = colours[i % len(colours)]
        for row, key, name in ((0, "success", "success rate (last 100 episodes)"),
                               (1, "episode_return", "episode return (last 100 episodes)")):
            for col, xkey, xname, scale in ((0, "env_steps", "env steps (millions)", 1e6),
                                            (1, "wall_clock", "wall-clock (minutes)", 60.0)):
                ax = axes[row, col]
                shown = [r for r in runs if len(r.env_steps)]
                xs = [getattr(r, xkey) / scale for r in shown]
                ys = [getattr(r, key) for r in shown]
                for run, x, y in zip(shown, xs, ys):
                    ax.plot(x, y, color=colour, alpha=0.35, linewidth=0.8)
                    if run.stopped_solved and (~np.isnan(y)).any():  # solved and stopped: marked where it ended
                        ax.plot(x[-1], y[~np.isnan(y)][-1], marker="*", color=colour, markersize=9,
                                markeredgecolor="black", markeredgewidth=0.5, linestyle="none")
                if xs:
                    gx, gy = _mean_curve(xs, ys, [r.stopped_solved for r in shown])
                    seeds = f"{len(runs)} seed" + ("s" if len(runs) > 1 else "")
                    ax.plot(gx, gy, color=colour, linewidth=2.2, label=f"{label} ({seeds}, mean)")
                ax.set_xlabel(xname)
                ax.set_ylabel(name)
                ax.grid(alpha=0.3)
    axes[0, 0].plot([], [], marker="*", color="grey", linestyle="none", label="solved, stopped (held after)")
    axes[0, 0].legend(loc="best", fontsize=8)
    labels = list(doc["agents"])
    for ax, key, name, scale in ((axes[0, 2], "plateau_env_steps", "env steps at success 0.4–0.6 (millions)", 1e6),
                                 (axes[1, 2], "env_sps", "env steps per second", 1.0)):
        for i, label in enumerate(labels):
            values = [s[key] / scale for s in doc["agents"][label]["seeds"] if s[key] is not None]
            if not values:  # no seed got there: a dash, not a zero bar
                ax.annotate("—", (i, 0), ha="center", va="bottom", fontsize=14)
                continue
            ax.bar(i, np.mean(values), color=colours[i % len(colours)], alpha=0.8)
            ax.scatter([i] * len(values), values, color="black", s=10, zorder=3)
        ax.set_xticks(range(len(labels)), labels, rotation=20)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3, axis="y")
    for ax in axes[0, :2]:
        ax.axhline(THRESHOLD, color="grey", linestyle=":", linewidth=1)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_lag(groups: dict[str, list[RunCurve]], out: str, title: str = "") -> bool:
    """The actor-learner lag against env steps, every run: KL(pi_A || pi_L) on the learner's
    batches and (ALD) the age of the distillation targets in learner steps. False (nothing
    written) when no run logged either."""
    if not any((~np.isnan(r.kl_actor_learner)).any() for runs in groups.values() for r in runs):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, runs) in enumerate(groups.items()):
        for j, run in enumerate(runs):
            for ax, values in zip(axes, (run.kl_actor_learner, run.distill_target_age)):
                ok = ~np.isnan(values)
                if ok.any():
                    ax.plot(run.env_steps[ok] / 1e6, values[ok], color=colours[i % len(colours)], linewidth=0.9,
                            alpha=0.8, label=label if j == 0 else None)
    for ax, name in zip(axes, ("KL(pi_A ‖ pi_L) on the learner's batches", "distill target age (learner steps)")):
        ax.set_xlabel("env steps (millions)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[0].legend(loc="best", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.plot", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("paths", nargs="+", help="run directories or experiment directories (runs/<experiment>)")
    parser.add_argument("--out", required=True, help="PNG file for the curves (the table goes next to it as .md)")
    parser.add_argument("--summary", default=None, help="also write the summary JSON to this file (the experiment "
                                                        "named by the first path's directory)")
    parser.add_argument("--title", default=None, help="figure title (default: the env id, and its --env-kwargs)")
    args = parser.parse_args(argv)
    try:
        runs = [load_run(p) for p in find_runs(args.paths)]
    except FileNotFoundError as exc:
        parser.error(str(exc))
    runs = [r for r in runs if len(r.env_steps)]
    if not runs:
        parser.error("the runs have no metrics rows yet")
    groups = group(runs)
    doc = summary(groups)
    first = os.path.normpath(args.paths[0])
    experiment = os.path.basename(first if not os.path.exists(os.path.join(first, "config.json"))
                                  else os.path.dirname(first)) or "results"
    doc["experiment"] = experiment
    envs = sorted({r.env for r in runs})
    plot(groups, doc, args.out, args.title if args.title is not None else ", ".join(envs))
    md = table(doc) + "\n\n" + seed_table(doc)
    md_path = os.path.splitext(args.out)[0] + ".md"
    with open(md_path, "w") as f:
        f.write(md + "\n")
    written = [args.out, md_path]
    lag_path = os.path.splitext(args.out)[0] + "-lag.png"
    if plot_lag(groups, lag_path, args.title if args.title is not None else ", ".join(envs)):
        written.append(lag_path)
    if args.summary:  # every file is written before anything is printed (a closed pipe stops prints)
        os.makedirs(os.path.dirname(os.path.abspath(args.summary)), exist_ok=True)
        with open(args.summary, "w") as f:
            json.dump(doc, f, indent=2)
        written.append(args.summary)
    print(md)
    print(f"wrote {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
