"""Run metrics: a rolling summary of what the processes report, written as JSONL, CSV and TensorBoard.

Row schema (``metrics.jsonl``, one JSON object per row; ``metrics.csv`` has the same columns):
``env_steps``, ``learner_steps``, ``distill_steps``, ``wall_clock_s``, ``episodes``,
``episode_return`` and ``success_rate`` (mean over the last 100 episodes), ``actor_sps`` (env
steps/s of one actor), ``env_sps`` (all actors), ``learner_sps`` and ``distill_sps`` (agent
steps/s), ``dprl`` (distill agent steps per learner agent step), ``learner_waiting_pct`` (share
of the learner's time spent waiting for data), ``queue_depth``, ``actor_restarts``,
``nan_updates``, ``actor_param_version`` (the oldest parameter version an actor acts with),
``actor_param_checks`` and ``actor_param_mismatches`` (actor refreshes whose received tensors
were compared, by digest, with what the publisher wrote at that version, and how many differed:
a lost, torn or misnumbered publication shows here; that a policy applies what it received is
tested separately), ``recomputed_targets`` (batches whose pi_old the learner recomputed because
the runner worked ahead of a target refresh; 0 in a steady parallel run), then the latest
learner/distill losses (``loss``, ``policy_loss``, ``value_loss``, ``kl_actor_learner``, ``policy_entropy`` and
``actor_entropy`` (nats: the learner's policy and the behaviour policy on the batch), ``eta``,
``alpha``, ``distill_loss``, ``distill_target_age`` (ALD: learner steps since the target network
that made the distilled batch's targets), ...),
under ``--runner ray`` ``actors_per_node`` (the actors that delivered since their last (re)creation,
per node; a JSON object in the CSV), ``trajectories_in_flight``,
``trajectory_in_flight_s`` and ``trajectory_fetch_s`` (see :class:`agents.runtime.drivers.ray_driver.RayFleet`), ``agent``,
``env_id``, ``seed``, ``final`` (True on the row written at the end of a run, whose rates
cover only the moments of shutdown: leave it out of averages) and ``solved`` (True once the run
reached its ``--stop-success-rate``; the parallel drivers also write a row at that moment, since
episodes that end during their shutdown still count in the final row); ``resumed_from`` (only on
the first row after the counters were restored from a checkpoint, by ``--resume`` or a GALA
replica's start: that checkpoint's env steps, so that :func:`read_rows` drops the rows a killed
run wrote after it).
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections import OrderedDict, deque

COLUMNS = (
    "env_steps", "learner_steps", "distill_steps", "wall_clock_s", "episodes", "episode_return", "success_rate",
    "actor_sps", "env_sps", "learner_sps", "distill_sps", "dprl", "learner_waiting_pct", "queue_depth",
    "actor_restarts", "nan_updates", "actor_param_version", "actor_param_checks", "actor_param_mismatches",
    "recomputed_targets", "loss", "policy_loss", "value_loss", "temperature_loss", "kl_penalty",
    "kl_target", "kl_actor_learner", "policy_entropy", "actor_entropy", "entropy_beta", "learner_kl_reg", "eta",
    "alpha", "popart_mu", "popart_sigma", "value_target", "distill_loss", "distill_kl", "distill_value",
    "distill_target_age", "actors_per_node", "trajectories_in_flight", "trajectory_in_flight_s", "trajectory_fetch_s",
    "agent", "env_id", "seed", "final", "solved", "resumed_from",
)


CHARTS = ("episode_return", "success_rate", "episodes")
SYSTEM = ("wall_clock_s", "learner_steps", "distill_steps", "actor_sps", "env_sps", "learner_sps", "distill_sps",
          "dprl", "learner_waiting_pct", "queue_depth", "actor_restarts", "nan_updates", "actor_param_version",
          "actor_param_checks", "actor_param_mismatches", "recomputed_targets", "trajectories_in_flight",
          "trajectory_in_flight_s", "trajectory_fetch_s")
CONSTANT = ("env_steps", "seed", "resumed_from")  # the x axis, a setting (in the config text), a marker


def tensorboard_tag(key: str) -> str:
    """A row key's TensorBoard tag, grouped: ``charts/`` (what the agent achieves), ``system/``
    (rates, counts, health) and ``losses/`` (the learner's and distillers' losses and statistics)."""
    return f"charts/{key}" if key in CHARTS else f"system/{key}" if key in SYSTEM else f"losses/{key}"


class RunStats:
    """Counters and rates of a run, fed by the drivers (in the supervising process)."""

    def __init__(self, config):
        self.config = config
        self.env_steps = self.learner_steps = self.distill_steps = self.episodes = 0
        self.returns: deque[float] = deque(maxlen=100)
        self.successes: deque[bool] = deque(maxlen=100)
        self.latest: dict[str, float] = {}
        self.actor_sps: dict[int, float] = {}
        self.actor_restarts = 0
        self.queue_depth = 0
        self.published: OrderedDict[int, str] = OrderedDict()  # parameter version -> digest
        self.unverified: dict[int, list[str]] = {}  # actor digests whose publication is not here yet
        self.actor_versions: dict[int, int] = {}
        self.param_checks = self.param_mismatches = 0
        self.start = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process of the machine
        self.elapsed_before = 0.0
        self.frozen_clock: float | None = None
        self.solved = False  # the run stopped because it reached its stop_success_rate
        self.resumed_from: int | None = None  # until the first row after restore()
        self._new_window()

    def _new_window(self) -> None:
        """Start the interval the next row's rates are measured over."""
        self._window_start = time.monotonic()
        self._window = {"env": 0, "learner": 0, "distill": 0, "wait": 0.0, "busy": 0.0}

    @property
    def agent_steps_per_batch(self) -> int:
        return self.config.batch_size * self.config.unroll_length

    def add_episodes(self, episodes) -> None:
        for e in episodes:
            self.returns.append(e.ret)
            self.successes.append(e.success)
        self.episodes += len(episodes)

    def add_publication(self, publication) -> None:
        """A parameter version the actors may load (from the learner or a distiller)."""
        self.published[publication.version] = publication.digest
        while len(self.published) > 10_000:
            self.published.popitem(last=False)
        for digest in self.unverified.pop(publication.version, []):
            self._check(publication.digest, digest)

    def _check(self, published: str, loaded: str) -> None:
        self.param_checks += 1
        self.param_mismatches += published != loaded

    def add_actor_report(self, actor_id: int, episodes, steps_per_s: float, version: int, digest: str) -> None:
        """What an actor reports with each trajectory; a new parameter version is checked against
        the digest of its publication."""
        self.add_episodes(episodes)
        self.actor_sps[actor_id] = steps_per_s
        if self.actor_versions.get(actor_id) == version:
            return
        self.actor_versions[actor_id] = version
        if version in self.published:
            self._check(self.published[version], digest)
        elif len(self.unverified) < 10_000:
            self.unverified.setdefault(version, []).append(digest)

    def forget_actor(self, actor_id: int) -> None:
        """A lost actor acts with no parameters and steps no envs (until its replacement reports)."""
        self.actor_versions.pop(actor_id, None)
        self.actor_sps.pop(actor_id, None)

    def _take_publication(self, metrics: dict) -> dict:
        publication = metrics.get("published")
        if publication is None:
            return metrics
        self.add_publication(publication)
        return {k: v for k, v in metrics.items() if k != "published"}

    def add_env_steps(self, n: int) -> None:
        self.env_steps += n
        self._window["env"] += n

    def add_learner_step(self, metrics: dict, wait_s: float, busy_s: float) -> None:
        self.learner_steps += 1
        self._window["learner"] += 1
        self._window["wait"] += wait_s
        self._window["busy"] += busy_s
        self.latest.update(self._take_publication(metrics))

    def add_distill_steps(self, n: int, metrics: dict | None = None) -> None:
        self.distill_steps += n
        self._window["distill"] += n
        if metrics:
            self.latest.update(self._take_publication(metrics))

    def finished(self) -> bool:
        """The run has reached its env-step budget or its ``stop_success_rate`` (over 100 full episodes)."""
        c = self.config
        if self.env_steps >= c.total_env_steps:
            return True
        reached = (c.stop_success_rate > 0 and len(self.successes) == self.successes.maxlen
                   and sum(self.successes) >= c.stop_success_rate * len(self.successes))
        self.solved = self.solved or reached  # (the drivers stop at the first True)
        return reached

    def wall_clock(self) -> float:
        if self.frozen_clock is not None:
            return self.frozen_clock
        return self.elapsed_before + time.monotonic() - self.start

    def freeze_clock(self, wall_clock_s: float) -> None:
        """Report ``wall_clock_s`` from now on (the final row takes the final checkpoint's clock, so a
        resumed run continues exactly where the last row ended)."""
        self.frozen_clock = float(wall_clock_s)

    def row(self, final: bool = False, rates: bool = True) -> dict:
        """A metrics row; rates are over the time since the previous row (``final``: the run's last).
        ``rates=False``: a row of counters only (rates None), between two rows' windows (the next
        row's rates still cover the whole time since the previous one)."""
        now = time.monotonic()
        span = max(now - self._window_start, 1e-9)
        w = self._window
        learner_sps = w["learner"] * self.agent_steps_per_batch / span
        distill_sps = w["distill"] * self.agent_steps_per_batch / span
        measured = {
            "actor_sps": sum(self.actor_sps.values()) / len(self.actor_sps) if self.actor_sps else None,
            "env_sps": w["env"] / span, "learner_sps": learner_sps, "distill_sps": distill_sps,
            "dprl": distill_sps / learner_sps if learner_sps else None,
            "learner_waiting_pct": 100.0 * w["wait"] / (w["wait"] + w["busy"]) if w["wait"] + w["busy"] else None,
        }
        row = {
            "env_steps": self.env_steps, "learner_steps": self.learner_steps, "distill_steps": self.distill_steps,
            "wall_clock_s": round(self.wall_clock(), 3), "episodes": self.episodes,
            "episode_return": sum(self.returns) / len(self.returns) if self.returns else None,
            "success_rate": sum(self.successes) / len(self.successes) if self.successes else None,
            **(measured if rates else dict.fromkeys(measured)),
            "queue_depth": self.queue_depth, "actor_restarts": self.actor_restarts,
            "actor_param_version": min(self.actor_versions.values()) if self.actor_versions else None,
            "actor_param_checks": self.param_checks, "actor_param_mismatches": self.param_mismatches,
            "agent": self.config.agent, "env_id": self.config.env_id, "seed": self.config.seed, "final": final,
            "solved": self.solved,
        }
        for key, value in self.latest.items():
            row.setdefault(key, value)
        if self.resumed_from is not None:
            row["resumed_from"], self.resumed_from = self.resumed_from, None
        if rates:
            self._new_window()
        return row

    def restore(self, counters: dict) -> None:
        """Continue the counters of a checkpoint (``--resume``, a GALA replica's start). The success
        and return windows start empty: their rates rest on the episodes since."""
        self.env_steps = self.resumed_from = int(counters["env_steps"])
        self.learner_steps = int(counters["learner_steps"])
        self.distill_steps = int(counters["distill_steps"])
        self.episodes = int(counters["episodes"])
        self.elapsed_before = float(counters["wall_clock_s"])

    def counters(self) -> dict[str, int | float]:
        return {"env_steps": self.env_steps, "learner_steps": self.learner_steps, "distill_steps": self.distill_steps,
                "episodes": self.episodes, "wall_clock_s": self.wall_clock()}


def read_jsonl(path: str) -> list[dict]:
    """The rows of a JSON-lines file (none if it does not exist); a line cut short by a kill is skipped."""
    rows: list[dict] = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def read_rows(run_dir: str) -> list[dict]:
    """A run's ``metrics.jsonl`` rows in env-step order. After a ``--resume`` the counters restart
    from the checkpoint, so rows written before the stop beyond that point (``resumed_from`` on the
    first resumed row; rows older than that key: at or beyond the first resumed row) are superseded
    by the newer ones; a line cut short by a kill is skipped. The ``final`` row written at the stop
    can have the env steps of the row before it (the row that saw the stop rate reached): both stay."""
    rows: list[dict] = []
    for row in read_jsonl(os.path.join(run_dir, "metrics.jsonl")):
        since = row.get("resumed_from", row["env_steps"])  # (at most the row's own env steps)
        while rows and (rows[-1]["env_steps"] > since
                        or (rows[-1]["env_steps"] == row["env_steps"] and not row.get("final"))):
            rows.pop()
        rows.append(row)
    return rows


def stopped_solved(config: dict, rows: list[dict]) -> bool:
    """Whether the run ended because it reached its ``stop_success_rate``."""
    target = config.get("stop_success_rate") or 0.0
    last = rows[-1] if rows else {}
    # (episodes that end while a parallel run shuts down can lower the final row's rate below the
    # target the run stopped at; rows older than the "solved" key only have the rate)
    return bool(target and last.get("final") and (last.get("solved") or (last.get("success_rate") or 0.0) >= target))


def _ends_torn(path: str) -> bool:
    """The file is not empty and its last line has no newline."""
    with open(path, "rb") as f:
        if f.seek(0, os.SEEK_END) == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def _csv_header(path: str) -> list[str] | None:
    try:
        with open(path, newline="") as f:
            return next(csv.reader(f), None)
    except FileNotFoundError:
        return None


class MetricsWriter:
    """Appends rows to ``metrics.jsonl`` and ``metrics.csv``, and to TensorBoard if installed (tags
    grouped by :func:`tensorboard_tag`). Each start and each resume adds its config as the text
    ``config`` at the env step of its first row, so TensorBoard lists one per segment where it
    began (a resume may change the budget and the other settings that are not the model's)."""

    def __init__(self, run_dir: str, tensorboard: bool = True, config=None):
        self.run_dir = run_dir
        jsonl_path = os.path.join(run_dir, "metrics.jsonl")
        self.jsonl = open(jsonl_path, "a", buffering=1)
        if _ends_torn(jsonl_path):  # a line a kill cut short: the next row must not join it
            self.jsonl.write("\n")
        csv_path = os.path.join(run_dir, "metrics.csv")
        header = _csv_header(csv_path)  # a resumed run keeps the columns its file has
        self.csv_file = open(csv_path, "a", newline="", buffering=1)
        self.csv = csv.DictWriter(self.csv_file, fieldnames=header or COLUMNS, extrasaction="ignore")
        if not header:
            self.csv.writeheader()
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(os.path.join(run_dir, "tensorboard"))
            except ImportError:
                self.tb = None
        self.config_text = None if config is None else "```json\n" + json.dumps(config.to_dict(), indent=2) + "\n```"

    def write(self, row: dict) -> None:
        self.jsonl.write(json.dumps(row) + "\n")
        self.csv.writerow({k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()})
        if self.tb is not None:
            if self.config_text is not None:
                self.tb.add_text("config", self.config_text, row["env_steps"])
                self.config_text = None
            for key, value in row.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in CONSTANT:
                    self.tb.add_scalar(tensorboard_tag(key), value, row["env_steps"])

    def close(self) -> None:
        """Close every file; the first OSError (a full disk flushing the last row) is raised after."""
        if self.tb is not None and self.config_text is not None:  # (a run that wrote no row)
            self.tb.add_text("config", self.config_text, 0)
            self.config_text = None
        error = None
        for f in (self.jsonl, self.csv_file, self.tb):
            try:
                if f is not None:
                    f.close()
            except OSError as exc:
                error = error or exc
        if error is not None:
            raise error
