"""Run configuration: one frozen dataclass, presets, and a CLI generated from its fields.

Every field has a one-line ``help``. The fields' defaults are the one default setting of the
CLI, ``RunConfig()`` and the Python API, tuned for a small machine (see :class:`RunConfig`); the
``paper`` preset is the paper's Table 1 and A.1/A.2. Values are never mutated after parsing;
derived values are properties.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import importlib.util
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

AGENTS = ("ald", "lstm", "gtrxl", "asymm_ac")
KL_DIRECTIONS = ("actor_learner", "learner_actor")


@dataclass(frozen=True)
class Range:
    """The allowed values of a numeric setting: finite, within ``[low, high]`` (``low_open``: ``(low, high]``)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def contains(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if isinstance(value, int) and not -(2**63) <= value < 2**63:  # counters are 64-bit
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low}"
        return f"in {'(' if self.low_open else '['}{self.low}, {self.high}]"


def at_least(low) -> Range:
    return Range(low)


POSITIVE = Range(0.0, low_open=True)

# A setting's ``kind``: "model" and "env" settings are fixed for a run's lifetime (``--resume``
# refuses to change them); every other setting (budgets, logging, resources, the optimisation)
# may change on resume.
FIXED_KINDS = ("model", "env")


def _f(default, help: str, **kw):
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs; saved as ``config.json`` in the run directory. Every numeric field
    has a ``range`` that :func:`validate` enforces.

    The defaults are tuned for a 2-core CPU (README "Results"): two actors stepping 16 envs each
    with batched inference, one distill process, and three changes from the paper (``--preset
    paper``) that made I-Maze 9x9 solvable in minutes rather than days there:

    - ``learning_rate`` 1e-3 (paper 1e-4): with 10x fewer updates per hour than the paper's
      machine, 1e-4 had not moved the policy after 1.4M env steps;
    - ``popart_decay`` 3e-3 (paper 3e-4): PopArt's sigma starts at 1 and only shrinks toward the
      small spread of sparse returns at this rate; until it has, a rare success's advantage is
      lost in the value noise (measured before the PopArt fix; to be re-tuned, README Results);
    - a GTrXL of width 128 (4 heads of 32; paper 256, 8 heads): the learner is the bottleneck
      of ALD on two cores and this is 3x cheaper per update (2.8k -> 8.4k agent steps/s).
    """

    agent: str = _f("ald", "ald | lstm | gtrxl | asymm_ac", choices=AGENTS, kind="model")
    env_id: str = _f("MemoryEnvs/IMaze-9x9-v0", "any registered MemoryEnvs/... id", kind="env")
    actor_model: str = _f("", "actor model name for agents.models.build ('' = by env: lstm-32 I-Maze, lstm-128 "
                              "Meta-Fetch)", kind="model")
    learner_model: str = _f("", "learner model name ('' = by env: gtrxl-2 for I-Maze 9x9, gtrxl-4 otherwise)",
                            kind="model")
    actor_overrides: str = _f("", "JSON dict of actor model config overrides, e.g. '{\"hidden_size\": 64}' (an "
                                  "override wins over the size in the model name)", kind="model")
    learner_overrides: str = _f('{"d_model": 128, "num_heads": 4}',
                                "JSON dict of learner model config overrides, e.g. '{\"d_model\": 64}' ('' = the "
                                "model's own size, the paper's)", kind="model")
    env_kwargs: str = _f("", "JSON dict of env keyword arguments, e.g. '{\"size\": 5}'", kind="env")
    max_episode_steps: int = _f(0, "episode horizon (0 = the env id's registered max_episode_steps)",
                                range=at_least(0), kind="env")

    runner: str = _f("parallel", "parallel (one process per role) | serial (all roles in one process, deterministic) "
                                 "| ray (actors as Ray actors over a cluster, the learner side on this machine)",
                     choices=("parallel", "serial", "ray"))
    ray_address: str = _f("", "--runner ray: '' = start a local Ray instance with this machine's cores; 'auto' or "
                              "host:port = join a running cluster (README \"Scale out\")")
    actor_cpus: float = _f(1.0, "--runner ray: CPUs each actor reserves", range=POSITIVE)
    learner_gpus: float = _f(0.0, "--runner ray: GPUs this machine reserves in Ray for the learner side (they "
                                  "must be on this machine)", range=at_least(0.0))
    max_in_flight: int = _f(2, "--runner ray: trajectories each actor may have on their way to the learner "
                               "(back-pressure)", range=at_least(1))
    num_actors: int = _f(2, "N_A: actor processes", range=at_least(1))
    envs_per_actor: int = _f(16, "envs each actor steps with batched inference (1 = the paper's single-env actor)",
                             range=at_least(1))
    num_distill: int = _f(1, "N_D: HOGWILD! distill processes (ald; up to one per spare core helps)", range=at_least(0))
    device: str = _f("auto", "device of the learner-side processes: auto | cpu | cuda[:N]")
    learner_threads: int = _f(1, "torch intra-op threads of the learner and runner (0 = all cores); more than 1 "
                                 "only helps when cores are free: busy-waiting threads slow a shared core 10-100x",
                              range=at_least(0))

    batch_size: int = _f(32, "streams per learner batch (paper: 64)", range=at_least(1))
    unroll_length: int = _f(20, "T_U: steps per trajectory", range=at_least(1))
    learning_rate: float = _f(1e-3, "Adam learning rate of learner and distill (paper: 1e-4)", range=POSITIVE)
    gamma: float = _f(0.99, "discount factor", range=Range(0.0, 1.0, low_open=True))
    eta_init: float = _f(1.0, "V-MPO initial temperature eta", range=POSITIVE)
    alpha_init: float = _f(0.1, "V-MPO initial KL multiplier alpha (paper sweeps 0.1, 0.5, 1, 5)", range=POSITIVE)
    eps_eta: float = _f(0.1, "V-MPO temperature constraint", range=POSITIVE)
    eps_alpha: float = _f(0.004, "V-MPO KL constraint", range=POSITIVE)
    entropy_coef: float = _f(0.0, "weight of an entropy bonus on the learner's policy (V-MPO has none; it slows the "
                                  "entropy's fall, e.g. on the 0.5 plateau of an I-Maze; README Results)", range=at_least(0.0))
    entropy_floor: float = _f(0.0, "keep the learner policy's mean entropy at or above this many nats (0 = off; "
                                   "uniform over 4 actions: 1.39): an entropy bonus whose weight rises while the "
                                   "entropy is below it and falls back to 0 above it", range=at_least(0.0))
    entropy_floor_rate: float = _f(0.01, "--entropy-floor: the bonus weight's change per learner step and nat "
                                         "below (or above) the floor", range=POSITIVE)
    target_period: int = _f(10, "K_L: learner steps between target-network refreshes (paper sweeps 1, 10, 100)",
                            range=at_least(1))
    actor_refresh: int = _f(10, "K_A: distill steps (ald) or learner steps (baselines) between actor parameter "
                                "refreshes", range=at_least(1))
    popart_decay: float = _f(3e-3, "PopArt step size of the value statistics (the learner's value head has no "
                                   "other; paper: 3e-4)",
                             range=Range(0.0, 1.0, low_open=True))
    alpha_pi: float = _f(1.0, "ALD policy distillation weight", range=at_least(0.0))
    alpha_v: float = _f(0.1, "ALD value distillation weight (paper sweeps 0, 0.1, 1)", range=at_least(0.0))
    learner_kl_coef: float = _f(0.1, "weight of the learner's KL toward the actor (the bidirectional part of ALD)",
                                range=at_least(0.0))
    kl_direction: str = _f("actor_learner", "distillation KL: actor_learner = KL(pi_A||pi_L) (paper) | learner_actor",
                           choices=KL_DIRECTIONS)
    replay_capacity: int = _f(64, "replay FIFO size in batches; the distill targets are about half of it learner "
                                  "steps old (256 needed 1.8x the env steps on I-Maze 9x9; README Results)",
                              range=at_least(1))
    distill_ratio: float = _f(2.0, "at most this many distill steps per learner step, counted over the whole run "
                                   "(the serial driver keeps it exactly; in parallel, N_D - 1 more may be in flight)",
                              range=POSITIVE)

    total_env_steps: int = _f(6_000_000, "stop after this many env steps (ALD's defaults solve I-Maze 9x9 in "
                                          "1-1.5M, README Results)", range=at_least(1))
    stop_success_rate: float = _f(0.0, "also stop once the success rate over the last 100 episodes reaches this "
                                       "(0 = never; experiments use it to skip steps after a task is solved)",
                                  range=Range(0.0, 1.0))
    seed: int = _f(0, "seed of envs, models and sampling", range=Range(0, 2**32 - 1))
    name: str = _f("", "run name ('' = <agent>-<env>-s<seed>)")
    runs_dir: str = _f("runs", "where run directories go")
    resume: str = _f("", "a run directory to continue (counters, models, optimizers)")
    checkpoint_minutes: float = _f(5.0, "minutes between checkpoints (one is always written at the end)",
                                   range=POSITIVE)
    log_seconds: float = _f(5.0, "seconds between metric rows", range=POSITIVE)
    max_actor_restarts: int = _f(5, "a run fails after this many actor crashes (0 = at the first)", range=at_least(0))
    max_nan_updates: int = _f(20, "a run stops after this many consecutive non-finite losses", range=at_least(1))
    progress: bool = _f(True, "show a progress bar")

    # -- derived -------------------------------------------------------------------------
    @property
    def num_streams(self) -> int:
        return self.num_actors * self.envs_per_actor

    @property
    def run_name(self) -> str:
        return self.name or f"{self.agent}-{self.env_id.split('/')[-1]}-s{self.seed}"

    @property
    def run_dir(self) -> str:
        return self.resume or os.path.join(self.runs_dir, self.run_name)

    def env_overrides(self) -> dict:
        return json.loads(self.env_kwargs) if self.env_kwargs else {}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def saved_config(saved: dict[str, Any]) -> RunConfig:
    """The :class:`RunConfig` of a saved config (a checkpoint's or ``config.json``), leaving out
    settings this version does not know (a file from another version of the project)."""
    known = {f.name for f in dataclasses.fields(RunConfig)}
    return RunConfig(**{k: v for k, v in saved.items() if k in known})


def paper_preset() -> dict[str, Any]:
    """Table 1 of the paper (N_A 30, N_D 8, batch 64, single-env actors, Adam 1e-4, a full-width
    GTrXL, ...)."""
    return dict(num_actors=30, envs_per_actor=1, num_distill=8, batch_size=64, unroll_length=20, learning_rate=1e-4,
                gamma=0.99, eta_init=1.0, alpha_init=0.1, eps_eta=0.1, eps_alpha=0.004, entropy_coef=0.0,
                entropy_floor=0.0, target_period=10, actor_refresh=10, popart_decay=3e-4, alpha_pi=1.0, alpha_v=0.1,
                learner_overrides="")


def default_preset() -> dict[str, Any]:
    """Nothing on top of :class:`RunConfig`'s defaults, which are the tuned ones."""
    return {}


PRESETS = {"default": default_preset, "paper": paper_preset}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


FIELD_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}


def check_values(config: RunConfig) -> None:
    """Each setting alone: its type, its choices, its range (finite numbers only)."""
    for f in dataclasses.fields(RunConfig):
        value = getattr(config, f.name)
        types = FIELD_TYPES[str(f.type)]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise ValueError(f"{flag(f.name)} must be {str(f.type)}, got {value!r}")
        if "choices" in f.metadata and value not in f.metadata["choices"]:
            raise ValueError(f"{flag(f.name)} must be one of {', '.join(f.metadata['choices'])}, got {value!r}")
        if "range" in f.metadata and not f.metadata["range"].contains(value):
            what = "a 64-bit integer" if str(f.type) == "int" else "a finite number"
            raise ValueError(f"{flag(f.name)} must be {what} {f.metadata['range']}, got {value!r}")
    for name in ("actor_overrides", "learner_overrides", "env_kwargs"):
        text = getattr(config, name)
        if text:
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{flag(name)} is not valid JSON: {exc}") from None
            if not isinstance(value, dict):
                raise ValueError(f"{flag(name)} must be a JSON object, got {text!r}")


def check_env(config: RunConfig) -> None:
    """The env id is one of this suite's, and the env builds with the given kwargs."""
    import gymnasium as gym

    import memory_envs  # noqa: F401  (registers the ids)

    ids = sorted(i for i in gym.registry if i.startswith("MemoryEnvs/"))
    if config.env_id not in ids:
        close = difflib.get_close_matches(config.env_id, ids, n=1, cutoff=0.3)
        what = "unknown env id" if config.env_id not in gym.registry else "not a memory env:"
        hint = f"did you mean {close[0]}?" if close else f"the agents run on {', '.join(ids)}"
        raise ValueError(f"--env-id: {what} {config.env_id!r}; {hint}")
    try:
        gym.make(config.env_id, **config.env_overrides()).close()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"--env-kwargs {config.env_kwargs!r} do not build {config.env_id}: {exc}") from None


def check_device(name: str) -> None:
    import torch

    if name in ("auto", "cpu"):
        return
    if name != "cuda" and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine (use --device cpu or auto)")
    index = int(name[5:]) if ":" in name else 0
    if index >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")


def validate(config: RunConfig) -> None:
    """Raise ValueError, with one line naming the option, for any setting that could not run.

    Nothing is created and no process starts: the checks build the env and the models once,
    in this process."""
    check_values(config)
    check_env(config)
    from agents.runtime.topology import build_actor_model, build_learner_model, topology_of  # noqa: PLC0415 (torch)

    if config.num_distill < 1 and topology_of(config).distills:
        raise ValueError(f"--num-distill must be >= 1 for {config.agent}")
    if config.batch_size % config.envs_per_actor:
        raise ValueError(f"--batch-size ({config.batch_size}) must be a multiple of --envs-per-actor "
                         f"({config.envs_per_actor}): a batch is made of whole trajectories")
    check_device(config.device)
    if config.runner == "ray" and importlib.util.find_spec("ray") is None:
        raise ValueError("--runner ray needs Ray: pip install -e '.[ray]'")
    if config.resume and not os.path.isdir(config.resume):
        raise ValueError(f"--resume {config.resume!r} is not a run directory")
    for build, which in ((build_learner_model, "learner"), (build_actor_model, "actor")):
        try:
            build(config)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"the {which} model: {exc}") from None


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: ``<prog>: error: <message> (see --help)``, status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(agent: str, description: str) -> argparse.ArgumentParser:
    """An argparse parser with one ``--option`` per field (the agent is fixed by the entry module)."""
    parser = Parser(prog=f"python -m agents.{agent}", description=description,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="base settings, explicit options override them (default: default; a resumed run "
                             "keeps its own)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start anew on a run directory that holds a run, after moving the old run aside to "
                             "<runs-dir>/.replaced/ (it is never deleted)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config (preset, options, or the resumed run's) as JSON and exit")
    for f in dataclasses.fields(RunConfig):
        if f.name == "agent":
            continue
        # default None: an option not given leaves the preset's value (its real default is shown)
        shown = "''" if f.default == "" else (str(f.default) if f.type in ("bool", bool) else repr(f.default))
        kwargs: dict[str, Any] = {"help": f"{f.metadata['help']} (default: {shown})".replace("%", "%%"),
                                  "default": None}
        if f.type in ("bool", bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = {"int": int, "float": float, "str": str}[str(f.type)]
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(flag(f.name), **kwargs)
    return parser


def config_from_args(agent: str, args: argparse.Namespace) -> RunConfig:
    """The preset, then every option given on the command line, for ``agent``."""
    values = PRESETS[args.preset or "default"]()
    values.update(given_options(args))
    return RunConfig(agent=agent, **values)


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (not the parser-only ``--preset``, ``--overwrite`` and
    ``--print-config``)."""
    return {k: v for k, v in vars(args).items() if k not in PARSER_ONLY and v is not None}


PARSER_ONLY = ("preset", "overwrite", "print_config")


def _normalised(name: str, value):
    """JSON settings as values ('' and '{}' alike)."""
    if name in ("actor_overrides", "learner_overrides", "env_kwargs") and isinstance(value, str):
        try:
            return json.loads(value) if value else {}
        except json.JSONDecodeError:
            return value
    return value


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(setting, old value, new value)`` for each setting that differs (JSON settings compared as
    values; a setting missing from ``old`` counts as its default)."""
    out = []
    for f in dataclasses.fields(RunConfig):
        if f.name == "resume":
            continue
        before, after = old.get(f.name, f.default), new.get(f.name, f.default)
        if _normalised(f.name, before) != _normalised(f.name, after):
            out.append((f.name, before, after))
    return out


def fixed_changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """The :func:`changes` that alter the models or the env (refused on resume)."""
    kinds = {f.name: f.metadata.get("kind") for f in dataclasses.fields(RunConfig)}
    return [c for c in changes(old, new) if kinds[c[0]] in FIXED_KINDS]


def describe_changes(items) -> str:
    return "; ".join(f"{flag(name)} {before!r} -> {after!r}" for name, before, after in items)
