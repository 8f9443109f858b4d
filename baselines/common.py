"""What every baseline script shares: run options, the CLI built from them, evaluation, training.

A script defines a frozen config dataclass (a subclass of :class:`RunConfig`, one docstring
line under each field) and a function building its SB3 model; :func:`parse_config` turns the
dataclass into an argparse CLI and :func:`train` does the rest: envs, periodic evaluation,
TensorBoard, progress bar, time budget, and the run folder ``runs/<name>/`` with
``config.json``, ``metrics.jsonl`` (format: :mod:`baselines.metrics`), ``model.zip`` and
``summary.json``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import inspect
import json
import platform
import shutil
import sys
import textwrap
import time
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger, make_output_format
from stable_baselines3.common.vec_env import VecEnv

import memory_envs
from baselines.metrics import MetricsWriter, first_reaching, write_config
from baselines.vec_env import VecEnvKind, make_sb3_vec_env

# Evaluation envs get seeds far from the training envs' (seed + i).
EVAL_SEED_OFFSET = 1_000_003
SUCCESS_THRESHOLD = 0.95
RUN_FILES = ("config.json", "metrics.jsonl", "model.zip", "summary.json", "tb")


# -- configuration ---------------------------------------------------------------------------

@dataclass(frozen=True)
class RunConfig:
    """Options every baseline shares (the script's subclass adds its algorithm's)."""

    env_id: str
    """Registered Gymnasium id to train on, e.g. MemoryEnvs/IMaze-9x9-v0."""
    seed: int = 0
    """Seed of the model, the training envs (seed + i) and the evaluation envs."""
    total_steps: int = 1_000_000
    """Training env steps, summed over envs (rounded up to whole rollouts)."""
    time_budget_s: float | None = None
    """Stop training once this many seconds of wall-clock have passed (None: no limit)."""
    n_envs: int = 16
    """Number of envs stepped in parallel."""
    vec_env: VecEnvKind = "batched"
    """batched: our numpy vector env through an SB3 adapter (fast); dummy/subproc: SB3's own."""
    frame_stack: int = 1
    """Stack this many consecutive observations (1: no stacking)."""
    eval_freq: int = 50_000
    """Evaluate every this many training env steps (and before and after training)."""
    eval_episodes: int = 100
    """Episodes per evaluation, on separately seeded envs."""
    eval_deterministic: bool = True
    """Evaluate with the most likely action instead of sampling."""
    runs_dir: str = "runs"
    """Folder holding one sub-folder per run."""
    name: str | None = None
    """Run folder name (None: <agent>-<env>-s<seed>)."""
    overwrite: bool = False
    """Replace the results of an existing run of the same name."""
    threads: int = 1
    """torch threads (keep 1 on small machines)."""
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    """torch device; small MLP/LSTM policies run fastest on the CPU."""
    progress_bar: bool = True
    """Show SB3's progress bar (needs tqdm and rich)."""
    tensorboard: bool = True
    """Write TensorBoard logs into the run folder."""

    algorithm: ClassVar[str] = "sb3"

    def __post_init__(self):
        check_env_id(self.env_id)
        if self.seed < 0:
            raise ValueError(f"--seed must be >= 0, got {self.seed}")
        self._check_positive("total_steps", "n_envs", "frame_stack", "eval_freq", "eval_episodes", "threads")
        if self.time_budget_s is not None:
            self._check_positive("time_budget_s")
        if self.name is not None and (Path(self.name).name != self.name or self.name in ("", ".", "..")):
            raise ValueError(f"--name must be a plain folder name, got {self.name!r}")

    def _check_positive(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")

    @property
    def agent(self) -> str:
        """The agent's name in metrics and run names, e.g. ``ppo-fs4``."""
        return self.algorithm + (f"-fs{self.frame_stack}" if self.frame_stack > 1 else "")

    @property
    def run_dir(self) -> Path:
        default = f"{self.agent}-{self.env_id.split('/')[-1]}-s{self.seed}"
        return Path(self.runs_dir) / (self.name or default)


def check_env_id(env_id: str) -> None:
    """Raise ``ValueError`` for an id this suite does not register, suggesting close matches."""
    if env_id in memory_envs.ENV_IDS:
        return
    close = difflib.get_close_matches(env_id, memory_envs.ENV_IDS, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ValueError(f"unknown env id {env_id!r}; {hint}known ids: {', '.join(memory_envs.ENV_IDS)}")


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each dataclass field (what ``--help`` shows), base classes included."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0].body
        for node, after in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def parse_config(cls: type[RunConfig], argv: list[str] | None, prog: str, description: str):
    """Parse ``argv`` into ``cls``; bad input exits with status 2 before any work starts."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))  # X | None
        flag = "--" + field.name.replace("_", "-")
        help_text = docs.get(field.name, "")
        if field.default is dataclasses.MISSING:
            parser.add_argument(field.name, type=kind, help=help_text)
        elif kind is bool:
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction,
                                default=field.default, help=help_text)
        elif typing.get_origin(kind) is Literal:
            parser.add_argument(flag, dest=field.name, choices=typing.get_args(kind),
                                default=field.default, help=help_text)
        else:
            parser.add_argument(flag, dest=field.name, type=kind, default=field.default, help=help_text)
    args = parser.parse_args(argv)
    try:
        config = cls(**vars(args))
    except ValueError as error:
        parser.error(str(error))
    existing = [name for name in RUN_FILES if (config.run_dir / name).exists()]
    if existing and not config.overwrite:
        parser.error(f"{config.run_dir} already holds a run ({', '.join(existing)}); "
                     "pass --name NAME or --overwrite")
    return config


# -- evaluation ------------------------------------------------------------------------------

class EvalResult(NamedTuple):
    success_rate: float
    episode_return: float
    episode_length: float
    episodes: int


def evaluate(model: BaseAlgorithm, venv: VecEnv, n_episodes: int, deterministic: bool = True) -> EvalResult:
    """Run ``n_episodes`` whole episodes (split evenly over ``venv``'s envs, so short episodes
    are not over-counted) and average success (``info["is_success"]`` on the last step),
    return and length. Recurrent policies get their state and episode starts."""
    n_envs = venv.num_envs
    targets = np.array([(n_episodes + i) // n_envs for i in range(n_envs)])
    counts = np.zeros(n_envs, dtype=np.int64)
    running_return = np.zeros(n_envs)
    running_length = np.zeros(n_envs, dtype=np.int64)
    successes, returns, lengths = [], [], []
    obs = venv.reset()
    state, episode_start = None, np.ones(n_envs, dtype=bool)
    while (counts < targets).any():
        actions, state = model.predict(obs, state=state, episode_start=episode_start, deterministic=deterministic)
        obs, rewards, dones, infos = venv.step(actions)
        running_return += rewards
        running_length += 1
        for i in np.flatnonzero(dones):
            if counts[i] < targets[i]:
                successes.append(bool(infos[i].get("is_success", False)))
                returns.append(running_return[i])
                lengths.append(running_length[i])
                counts[i] += 1
            running_return[i], running_length[i] = 0.0, 0
        episode_start = dones
    return EvalResult(float(np.mean(successes)), float(np.mean(returns)), float(np.mean(lengths)), len(successes))


class EvalCallback(BaseCallback):
    """Evaluates every ``eval_freq`` env steps into ``metrics.jsonl`` and TensorBoard, and stops
    training once ``time_budget_s`` of wall-clock have passed."""

    def __init__(self, eval_env: VecEnv, writer: MetricsWriter, config: RunConfig):
        super().__init__()
        self.eval_env, self.writer, self.config = eval_env, writer, config
        self.history: list[dict[str, Any]] = []
        self.stopped_by_budget = False
        self.start = self.eval_time = 0.0
        self.next_eval = 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def _on_training_start(self) -> None:
        self.start = time.perf_counter()
        self._evaluate()

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_eval:
            self._evaluate()
        budget = self.config.time_budget_s
        if budget is not None and self.elapsed() >= budget:
            self.stopped_by_budget = True
            return False
        return True

    def _on_training_end(self) -> None:
        if self.history[-1]["env_steps"] != self.num_timesteps:
            self._evaluate()

    def _evaluate(self) -> None:
        began = time.perf_counter()
        result = evaluate(self.model, self.eval_env, self.config.eval_episodes, self.config.eval_deterministic)
        self.eval_time += time.perf_counter() - began
        wall = self.elapsed()
        train_time = max(wall - self.eval_time, 1e-9)
        record = self.writer.write(
            env_steps=self.num_timesteps, wall_clock_s=round(wall, 3), success_rate=result.success_rate,
            episode_return=result.episode_return, episodes=result.episodes,
            episode_length=result.episode_length, deterministic=self.config.eval_deterministic,
            eval_time_s=round(self.eval_time, 3), train_steps_per_s=round(self.num_timesteps / train_time, 1))
        self.history.append(record)
        for key in ("success_rate", "episode_return", "episode_length"):
            self.logger.record(f"eval/{key}", record[key])
        while self.next_eval <= self.num_timesteps:
            self.next_eval += self.config.eval_freq


# -- training --------------------------------------------------------------------------------

ModelBuilder = Callable[[Any, VecEnv, dict[str, Any]], BaseAlgorithm]


def train(config: RunConfig, build_model: ModelBuilder) -> dict[str, Any]:
    """Train ``build_model(config, env, common_kwargs)`` and write the run folder; returns the summary.

    ``common_kwargs`` (seed, device, verbose) go to the SB3 model's constructor.
    """
    torch.set_num_threads(config.threads)
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(run_dir / "tb", ignore_errors=True)  # files are only there with --overwrite
    for name in RUN_FILES[:-1]:
        (run_dir / name).unlink(missing_ok=True)

    env = make_sb3_vec_env(config.env_id, config.n_envs, config.vec_env, config.frame_stack, monitor=True)
    eval_env = make_sb3_vec_env(config.env_id, min(config.n_envs, config.eval_episodes), config.vec_env,
                                config.frame_stack)
    eval_env.seed(config.seed + EVAL_SEED_OFFSET)
    model = build_model(config, env, {"seed": config.seed, "device": config.device, "verbose": 0})
    # Our own logger: TensorBoard in runs/<name>/tb, and no empty SB3 folders left in /tmp.
    formats = [make_output_format("tensorboard", str(run_dir / "tb"))] if config.tensorboard else []
    model.set_logger(Logger(folder=str(run_dir), output_formats=formats))
    write_config(run_dir / "config.json", config, agent=config.agent, run_dir=str(run_dir),
                 policy=type(model.policy).__name__,
                 policy_parameters=sum(p.numel() for p in model.policy.parameters()), versions=_versions())

    with MetricsWriter(run_dir / "metrics.jsonl", agent=config.agent, env_id=config.env_id,
                       seed=config.seed) as writer:
        callback = EvalCallback(eval_env, writer, config)
        try:
            model.learn(total_timesteps=config.total_steps, callback=callback, progress_bar=config.progress_bar)
            stopped_by = "time_budget" if callback.stopped_by_budget else "total_steps"
        except KeyboardInterrupt:  # Ctrl-C: keep what was learnt so far
            stopped_by = "interrupted"
    model.save(run_dir / "model.zip")
    env.close()
    eval_env.close()

    last = callback.history[-1]
    reached = first_reaching(callback.history, SUCCESS_THRESHOLD)
    summary = {
        "agent": config.agent, "env_id": config.env_id, "seed": config.seed,
        "env_steps": last["env_steps"], "wall_clock_s": last["wall_clock_s"],
        "train_steps_per_s": last["train_steps_per_s"],
        "stopped_by": stopped_by,
        "final_success_rate": last["success_rate"], "final_episodes": last["episodes"],
        "best_success_rate": max(record["success_rate"] for record in callback.history),
        f"reached_{SUCCESS_THRESHOLD}": None if reached is None else
        {"env_steps": reached["env_steps"], "wall_clock_s": reached["wall_clock_s"]},
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary))
    return summary


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "gymnasium": gym.__version__, "stable_baselines3": stable_baselines3.__version__,
                "memory_envs": memory_envs.__version__}
    if "sb3_contrib" in sys.modules:
        versions["sb3_contrib"] = sys.modules["sb3_contrib"].__version__
    return versions
