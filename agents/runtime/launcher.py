"""Start a run: stop signals first, then (``--runner ray``) the cluster, then its directory
(locked), metrics and progress bar, then the chosen driver; report how it ended."""

from __future__ import annotations

import contextlib
import sys

from agents.runtime.metrics import MetricsWriter
from agents.runtime.run_directory import open_run
from agents.runtime.signals import StopRequest


class Progress:
    """A tqdm bar over env steps showing SPS and success rate."""

    def __init__(self, config, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=config.total_env_steps, unit="step", unit_scale=True, dynamic_ncols=True,
                            desc=f"{config.agent} {config.env_id.split('/')[-1]}")

    def __call__(self, row: dict) -> None:
        if self.bar is None:
            return
        self.bar.n = min(row["env_steps"], self.bar.total)
        success = row.get("success_rate")
        sps = row.get("env_sps")  # (None on a counters-only row)
        self.bar.set_postfix(sps="-" if sps is None else f"{sps:.0f}",
                             success="-" if success is None else f"{success:.2f}",
                             learner=row["learner_steps"], refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class RowLog:
    """Each metrics row to the metrics files and the progress bar. A write error (a full disk) is
    recorded as the run's failure, stops the run and is not retried."""

    def __init__(self, writer: MetricsWriter, progress: Progress, failures: list[str], on_row=None):
        self.writer, self.progress, self.failures, self.on_row = writer, progress, failures, on_row
        self.broken = self.stop_requested = False

    def __call__(self, row: dict) -> None:
        if not self.broken:
            try:
                self.writer.write(row)
            except OSError as exc:
                self.broken = True
                self.failures.append(f"cannot write the metrics of {self.writer.run_dir}: {exc}")
        self.progress(row)
        if self.on_row is not None and self.on_row(dict(row)) is False:
            self.stop_requested = True

    def close(self) -> None:
        self.progress.close()
        try:
            self.writer.close()
        except OSError as exc:
            if not self.broken:
                self.failures.append(f"cannot write the metrics of {self.writer.run_dir}: {exc}")


def cluster(config, signalled):
    """The Ray cluster of a ``--runner ray`` run, joined (and checked) before the run directory
    is opened; nothing for the other drivers."""
    if config.runner != "ray":
        return contextlib.nullcontext()
    from agents.runtime.drivers.ray_driver import ray_cluster

    return ray_cluster(config, signalled)


def launch(config, overwrite: bool = False, signalled: StopRequest | None = None, on_row=None) -> int:
    """Run ``config`` to the end: 0 done, 1 failed, 130 interrupted (a refusal before the start
    raises :class:`agents.runtime.run_directory.RunError`). ``signalled``: a stop request the
    caller installed earlier (the CLI does, before its imports). ``on_row``: called with each
    metrics row once it is written; returning False ends the run as its budget would (a final
    checkpoint, exit 0)."""
    failures: list[str] = []
    with (signalled or StopRequest()) as signalled, cluster(config, signalled), \
            (contextlib.nullcontext() if signalled() else open_run(config, overwrite, cancelled=signalled)) as run:
        if run is None or signalled():  # (a signal while joining the cluster: no run directory is made)
            print("interrupted before the run started", file=sys.stderr)
            return 130
        try:
            writer = MetricsWriter(run.run_dir, config=config)
        except OSError as exc:
            print(f"error: cannot write the metrics of {run.run_dir}: {exc}", file=sys.stderr)
            return 1
        progress = Progress(config, config.progress)
        log = RowLog(writer, progress, failures, on_row)
        stop = lambda: signalled() or bool(failures) or log.stop_requested  # noqa: E731
        stats = None
        try:
            if config.runner == "serial":
                from agents.runtime.drivers.serial import run_serial

                stats = run_serial(config, run, log, stop)
            elif config.runner == "ray":
                from agents.runtime.drivers.ray_driver import run_ray

                stats = run_ray(config, run, log, stop, failures)
            else:
                from agents.runtime.drivers.parallel import run_parallel

                stats = run_parallel(config, run, log, stop, failures)
        except OSError as exc:  # a full disk under a checkpoint or pids.json: the error, not a traceback
            failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            log.close()
    for i, failure in enumerate(failures):
        print(f"{'error' if i == 0 else 'also'}: {failure}", file=sys.stderr)
    if stats is not None:
        row = stats.row()
        success = row["success_rate"]
        print(f"{config.agent}: {stats.env_steps:,} env steps, {stats.learner_steps:,} learner steps, success rate "
              f"(last 100 episodes) {'-' if success is None else f'{success:.2f}'}; run directory {run.run_dir}")
    if failures:
        return 1
    if signalled():
        from agents.runtime import checkpoint

        saved = checkpoint.list_checkpoints(run.run_dir)
        print(f"interrupted: --resume {run.run_dir} continues from {saved[0]}" if saved else
              "interrupted before the first checkpoint", file=sys.stderr)
        return 130
    return 0
