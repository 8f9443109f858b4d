"""Start a run: its directory, saved config, metrics, progress bar, then the chosen runner."""

from __future__ import annotations

import json
import os
import signal

from agents.runtime.metrics import MetricsWriter


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
        self.bar.set_postfix(sps=f"{row['env_sps']:.0f}", success="-" if success is None else f"{success:.2f}",
                             learner=row["learner_steps"], refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def prepare_run_dir(config) -> str:
    run_dir = config.run_dir
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(config.to_dict(), f, indent=2)
    return run_dir


def launch(config) -> int:
    """Run ``config`` to the end; 0 on success, 1 on a failed run, 130 when interrupted."""
    run_dir = prepare_run_dir(config)
    writer = MetricsWriter(run_dir)
    progress = Progress(config, config.progress)
    try:
        if config.runner == "serial":
            from agents.runtime.drivers.serial import run_serial

            # Ctrl-C / SIGTERM end the run after the current round, with a final checkpoint.
            interrupted = []
            previous = {sig: signal.signal(sig, lambda *_: interrupted.append(True))
                        for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                stats = run_serial(config, run_dir, writer, progress, stop=lambda: bool(interrupted))
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            code = 130 if interrupted else 0
        else:
            from agents.runtime.drivers.parallel import run_parallel

            stats, code = run_parallel(config, run_dir, writer, progress)
    finally:
        progress.close()
        writer.close()
    row = stats.row()
    success = row["success_rate"]
    print(f"{config.agent}: {stats.env_steps:,} env steps, {stats.learner_steps:,} learner steps, "
          f"success rate (last 100 episodes) {'-' if success is None else f'{success:.2f}'}; run directory {run_dir}")
    return code
