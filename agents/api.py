"""The Python API: train, save, load and run the agents from code, in the style of Stable-Baselines3.

A tiny run (a serial driver, a small learner; the defaults are the CLI's), then its actor in
a Gymnasium loop, on one observation and on a batch:

>>> import tempfile
>>> import gymnasium as gym
>>> import numpy as np
>>> from agents import ALD, load_actor
>>> runs = tempfile.mkdtemp()
>>> model = ALD("MemoryEnvs/IMaze-9x9-v0", runs_dir=runs, name="doc", runner="serial", num_actors=1,
...             envs_per_actor=4, batch_size=4, unroll_length=10, progress=False,
...             learner_overrides='{"d_model": 32, "num_heads": 2, "head_dim": 16, "memory_length": 8}')
>>> keep_going = lambda row: (row["success_rate"] or 0) < 0.9     # returning False stops the run
>>> model.learn(200, callback=keep_going).env_steps >= 200        # it ends with a summary line
ald: ... env steps, ... learner steps, success rate (last 100 episodes) ...; run directory .../doc
True
>>> policy = load_actor(model.save(f"{runs}/ald-imaze9.pt"))     # or ALD.load(path).actor
>>> env = gym.make("MemoryEnvs/IMaze-9x9-v0")
>>> obs, _ = env.reset(seed=0)
>>> action, state = policy.predict(obs)                          # then predict(obs, state), ...
>>> obs, reward, terminated, truncated, _ = env.step(action)
>>> actions, states = policy.predict(np.stack([obs, obs]))       # a batch of observations
>>> actions.shape
(2,)
>>> env.close()
>>> import shutil; shutil.rmtree(runs)

(a test runs this example, and the README's "Python API" one: whole episodes on I-Maze 9x9).

An agent takes the command line's options as keywords, with the same defaults (``--preset
paper`` is ``ALD(env_id, **paper_preset())``); ``learn`` runs the same drivers as ``python -m
agents.ald`` in a run directory (``<runs_dir>/<name>``: metrics, TensorBoard, checkpoints), and
a second ``learn`` continues it. Ctrl-C during ``learn`` (in the main thread, where signal
handlers can be installed) writes a final checkpoint and raises KeyboardInterrupt; a run refused
before it starts (its directory holds another run, a Ray cluster is unreachable) raises
:class:`agents.runtime.run_directory.RunError`, a failed run RuntimeError once its processes
are stopped. Refusals name options as this API's keywords (``batch_size``, ``num_actors=3``),
not as the command line's flags. The callback also receives the final row, after a stop it asked for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import os
import re
from typing import Any, Callable, ClassVar, Optional

import numpy as np

from agents.runtime.config import RunConfig, fixed_changes, saved_config, validate

OPTIONS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in ("agent", "env_id", "resume"))
"""The keyword options of an agent: the command line's, but ``--resume`` (use :meth:`Agent.load`)."""


QUOTES = "'\""
_FLAG = re.compile(r"(?<![\w.'\"-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")
_NUMBER = re.compile(r" (-?\d+(?:\.\d+)?(?:e-?\d+)?)(?![\w./])")
_PATH = re.compile(r" ('[^']*'|\"[^\"]*\"|[^\s'\"]+?)(?=[:,;)]*(?:\s|$))")


def _as_keywords(text: str) -> str:
    """An error text of the shared code in this API's terms: ``--num-actors 3`` -> ``num_actors=3``,
    ``--batch-size`` -> ``batch_size``, ``--resume <dir>`` -> ``load('<dir>')``, ``--overwrite`` ->
    ``overwrite=True``. Text in backticks (a quoted command line) is left as it is."""

    def rewrite(segment: str) -> str:
        out, at = [], 0
        for match in _FLAG.finditer(segment):
            name = match.group(1).replace("-", "_")
            if name not in OPTIONS and name not in ("env_id", "resume", "overwrite"):
                continue
            out.append(segment[at:match.start()])
            at = match.end()
            if name == "resume":
                path = _PATH.match(segment, at)
                if path:
                    value = path.group(1)
                    quoted = value[0] in QUOTES
                    out.append(f"load({value if quoted else repr(value)})")
                    at = path.end()
                else:
                    out.append("load()")
            elif name == "overwrite":
                out.append("overwrite=True")
            elif number := _NUMBER.match(segment, at):
                out.append(f"{name}={number.group(1)}")
                at = number.end()
            else:
                out.append(name)
        return "".join(out) + segment[at:]

    parts = text.split("`")
    return "`".join(rewrite(part) if i % 2 == 0 else part for i, part in enumerate(parts))


@contextlib.contextmanager
def _in_api_terms(*kinds: type):
    """Re-raise a refusal of one of ``kinds`` (exactly those types) with its options named as keywords."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - re-raised unchanged unless it is a refusal of those kinds
        text = _as_keywords(str(exc))
        if type(exc) not in kinds or text == str(exc):
            raise
        raise type(exc)(text) from None


def _config(agent: str, env_id: str, options: dict[str, Any], base: Optional[dict] = None) -> RunConfig:
    for name in options:
        if name not in OPTIONS:
            close = difflib.get_close_matches(name, OPTIONS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else " (the options are RunConfig's fields)"
            raise TypeError(f"{agent}: unknown option {name!r}{hint}")
    with _in_api_terms(ValueError):
        config = RunConfig(**{**(base or {}), "agent": agent, "env_id": env_id, **options})
        validate(config)
    return config


def _read(path: str) -> dict:
    """A checkpoint payload from a saved file, a run directory's newest checkpoint, or the name of
    a pretrained actor (:mod:`agents.pretrained`)."""
    from agents import pretrained
    from agents.runtime import checkpoint

    if not os.path.exists(path) and pretrained.path_of(path):
        return checkpoint.load(pretrained.path_of(path))
    if os.path.isdir(path):
        payload, _ = checkpoint.load_latest(path)
        if payload is None:
            raise FileNotFoundError(f"{path!r} has no readable checkpoint in {checkpoint.checkpoint_dir(path)}")
        return payload
    if not os.path.isfile(path):
        known = ", ".join(pretrained.names()) or "none"
        raise FileNotFoundError(f"{path!r}: no such file or run directory, nor a pretrained actor ({known})")
    return checkpoint.load(path)


class Agent:
    """One agent of the project; use a subclass (:class:`ALD`, :class:`LSTM`, :class:`GTrXL`, :class:`AsymmAC`)."""

    agent: ClassVar[str]

    def __init__(self, env_id: str = RunConfig.env_id, *, overwrite: bool = False, **options):
        """``options``: any of :data:`OPTIONS` (``python -m agents.<agent> --help``); bad values
        raise ValueError naming the option. ``overwrite``: the first ``learn`` may start anew on a
        run directory that holds a run (the old one is moved to ``<runs_dir>/.replaced/``)."""
        self.config = _config(self.agent, env_id, options)
        self.overwrite = overwrite
        self._payload: Optional[dict] = None
        self._in_run_dir = False  # whether the run directory holds this agent's newest state

    @property
    def run_dir(self) -> str:
        return self.config.run_dir

    @property
    def env_steps(self) -> int:
        """Env steps trained so far."""
        return int(self._payload["counters"]["env_steps"]) if self._payload else 0

    def learn(self, total_env_steps: int, callback: Optional[Callable[[dict], Any]] = None,
              progress_bar: Optional[bool] = None) -> Agent:
        """Train ``total_env_steps`` more env steps. ``callback`` gets each metrics row (a dict,
        the schema of ``metrics.jsonl``) and stops the run by returning False; ``progress_bar``
        (default: the ``progress`` option) shows a tqdm bar. Returns ``self``."""
        from agents.runtime import checkpoint
        from agents.runtime.launcher import launch
        from agents.runtime.run_directory import RunError, holds_run, write_config

        if isinstance(total_env_steps, bool) or not isinstance(total_env_steps, int) or total_env_steps < 1:
            raise ValueError(f"total_env_steps must be an int >= 1, got {total_env_steps!r}")
        changes: dict[str, Any] = {"total_env_steps": self.env_steps + total_env_steps}
        if progress_bar is not None:
            changes["progress"] = bool(progress_bar)
        overwrite = False
        if self._payload is not None:
            if not self._in_run_dir:  # loaded from a file: its run directory is made from it
                if holds_run(self.run_dir):
                    raise RunError(f"{self.run_dir!r} holds a run: load with another name=... (or runs_dir=...) "
                                   f"to train on")
                os.makedirs(self.run_dir, exist_ok=True)
                write_config(self.run_dir, self.config)
                checkpoint.save(self.run_dir, self._payload, int(self._payload["counters"]["learner_steps"]))
                self._in_run_dir = True
            changes["resume"] = self.run_dir
        else:
            overwrite = self.overwrite
        config = dataclasses.replace(self.config, **changes)
        error: list[BaseException] = []

        def on_row(row: dict):
            if callback is None or error:
                return not error
            try:
                return callback(row) is not False
            except BaseException as exc:  # re-raised once the run is stopped and saved
                error.append(exc)
                return False

        before = set(checkpoint.list_checkpoints(self.run_dir))
        with _in_api_terms(RunError):  # (refusals before the start; a training error goes out as raised)
            code = launch(config, overwrite=overwrite, on_row=on_row)
        payload, path = checkpoint.load_latest(self.run_dir)
        if payload is not None and (self._in_run_dir or path not in before):  # (never another run's)
            self._payload, self._in_run_dir = payload, True
            self.config = dataclasses.replace(self.config, total_env_steps=config.total_env_steps)
        if error:
            raise error[0]
        if code == 130:
            raise KeyboardInterrupt(f"{self.agent}: stopped by a signal; the final checkpoint is in {self.run_dir}")
        if code != 0:
            raise RuntimeError(f"{self.agent}: the run in {self.run_dir} failed (its errors are printed above)")
        return self

    def save(self, path: str) -> str:
        """Write the trained state (learner, actor, optimizer, counters and config) to one file
        (a checkpoint, read with ``torch.load(weights_only=True)``); returns ``path``."""
        from agents.runtime import checkpoint

        if self._payload is None:
            raise ValueError(f"{self.agent}: nothing to save before the first learn()")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        checkpoint.write_file(path, self._payload)
        return path

    @classmethod
    def load(cls, path: str, **options) -> Agent:
        """An agent from a file of :meth:`save` or a run directory (its newest checkpoint).
        ``options`` may change what ``--resume`` may (budgets, resources, optimisation, ``name``
        and ``runs_dir`` for where a loaded file trains on: by default ``runs/<its run name>``),
        never the models or the env. A run directory trains on in place."""
        payload = _read(path)
        if "learner" not in payload:
            raise ValueError(f"{path!r} holds only an actor (a pretrained one): act with load_actor({path!r}); "
                             f"it cannot train on")
        saved = json.loads(payload["config"])
        if saved.get("agent") != cls.agent:
            raise ValueError(f"{path!r} holds a {saved.get('agent')!r} agent, not {cls.agent!r}: use "
                             f"{AGENT_CLASSES[saved.get('agent')].__name__}.load" if saved.get("agent") in AGENT_CLASSES
                             else f"{path!r} holds no agent of this project")
        refused = fixed_changes(saved, {**saved, **options})
        if refused:
            raise ValueError(f"{cls.__name__}.load: the models and the env of a trained agent cannot change "
                             f"({', '.join(name for name, _, _ in refused)})")
        in_place = os.path.isdir(path)
        base = {k: v for k, v in saved.items() if k in OPTIONS}
        if in_place:
            if {"name", "runs_dir"} & set(options):
                raise ValueError(f"{cls.__name__}.load({path!r}): a run directory trains on in place; to train a copy "
                                 f"elsewhere, save() it and load the file with name=... / runs_dir=...")
            base.update(runs_dir=os.path.dirname(os.path.abspath(path)), name=os.path.basename(os.path.abspath(path)))
        else:  # a file may come from another machine: its run directory goes under this one's default runs_dir
            base["runs_dir"] = RunConfig.runs_dir
        agent = cls.__new__(cls)
        agent.config = _config(cls.agent, saved["env_id"], options, base)
        agent.overwrite = False
        agent._payload, agent._in_run_dir = payload, in_place
        return agent

    @property
    def actor(self) -> ActorPolicy:
        """The trained actor as a policy for your own loop (see :class:`ActorPolicy`)."""
        if self._payload is None:
            raise ValueError(f"{self.agent}: no trained actor before the first learn()")
        return ActorPolicy(self.config, self._payload["actor"])


class ALD(Agent):
    """Actor-Learner Distillation: a GTrXL learner (V-MPO) distilled into a small LSTM actor."""

    agent = "ald"


class LSTM(Agent):
    """The LSTM baseline: one LSTM acts and learns (V-MPO)."""

    agent = "lstm"


class GTrXL(Agent):
    """The GTrXL baseline: the transformer acts and learns (V-MPO)."""

    agent = "gtrxl"


class AsymmAC(Agent):
    """Asymmetric Actor-Critic: an LSTM policy with a GTrXL critic."""

    agent = "asymm_ac"


AGENT_CLASSES = {cls.agent: cls for cls in (ALD, LSTM, GTrXL, AsymmAC)}


class ActorPolicy:
    """The actor model of a trained agent, acting as in its run (batched, with recurrent state).

    :meth:`predict` takes one observation (the env's observation shape) or a batch (one more
    leading axis) and returns the action(s) and the new recurrent state, to pass back on the
    next call; ``episode_start`` (a bool or one per batch entry) resets the state where an
    episode begins, as after ``env.reset()``."""

    def __init__(self, config: RunConfig, actor_tensors: dict, seed: Optional[int] = None):
        import gymnasium as gym

        import memory_envs  # noqa: F401  (registers the ids)
        from agents.evaluate import load_actor as build
        from agents.runtime.roles.policies import make_policy

        self.config = config
        env = gym.make(config.env_id, **config.env_overrides())
        self.observation_space, self.action_space = env.observation_space, env.action_space
        env.close()
        self.model = build(config, {"actor": actor_tensors})
        self.policy = make_policy(self.model)
        self.rng = np.random.default_rng(config.seed if seed is None else seed)

    def predict(self, obs, state=None, episode_start=None, deterministic: bool = False):
        """``(action, state)``: an int for one observation, an int array ``[B]`` for a batch."""
        from agents.runtime.roles.policies import sample_actions

        obs = np.ascontiguousarray(obs, dtype=self.observation_space.dtype)
        shape = self.observation_space.shape
        single = obs.shape == shape
        if not single and obs.shape[1:] != shape:
            raise ValueError(f"obs of shape {obs.shape}: expected {shape} or (batch, {', '.join(map(str, shape))})")
        batch = obs[None] if single else obs
        if state is None:
            state, first = self.policy.initial_state(len(batch)), np.ones(len(batch), dtype=bool)
        else:
            first = np.zeros(len(batch), dtype=bool) if episode_start is None else \
                np.broadcast_to(np.asarray(episode_start, dtype=bool), (len(batch),)).copy()
        logits, state = self.policy.step(batch, state, first)
        actions = np.argmax(logits, axis=1) if deterministic else sample_actions(logits, self.rng)
        return (int(actions[0]) if single else actions.astype(np.int64)), state


def load_actor(path: str, seed: Optional[int] = None) -> ActorPolicy:
    """The actor of a file written by :meth:`Agent.save`, of a run directory's newest checkpoint,
    or a pretrained actor by name (``load_actor("ald-imaze9")``; ``python -m agents.pretrained``
    lists them; an existing path of that name wins)."""
    payload = _read(path)
    return ActorPolicy(saved_config(json.loads(payload["config"])), payload["actor"], seed)
