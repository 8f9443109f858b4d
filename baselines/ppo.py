"""PPO (Stable-Baselines3) on a memory env: the memoryless reference, optionally with a short window.

An MLP policy sees the flattened beam as 0/1 floats. Without memory it cannot remember the
I-Maze indicator once it is out of view, so it should plateau near 0.5 success on
I-Maze 9x9; ``--frame-stack 4`` gives it the last 4 observations (a short window, still not
enough to carry the indicator down the corridor).

Usage::

    python -m baselines.ppo MemoryEnvs/IMaze-9x9-v0 --frame-stack 4 --time-budget-s 1200

Writes ``runs/<name>/`` (``config.json``, ``metrics.jsonl``, ``model.zip``, ``summary.json``,
TensorBoard logs); the metrics format is in :mod:`baselines.metrics`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, ClassVar

from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv

from baselines.common import RunConfig, parse_config, train


@dataclass(frozen=True)
class Config(RunConfig):
    """PPO options (plus the shared run options)."""

    n_steps: int = 128
    """Env steps per env per rollout (the rollout has n_steps * n_envs steps)."""
    batch_size: int = 512
    """Minibatch size in env steps."""
    n_epochs: int = 4
    """Passes over each rollout."""
    learning_rate: float = 3e-4
    """Adam learning rate."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_range: float = 0.2
    """PPO ratio clipping."""
    ent_coef: float = 0.03
    """Entropy bonus coefficient (I-Maze's goals are rarely found by chance: keep exploring)."""
    normalize_advantage: bool = True
    """Normalise advantages per minibatch (SB3's default)."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Gradient norm clipping."""
    hidden_size: int = 64
    """Width of the two hidden layers of the policy and of the value MLP."""

    algorithm: ClassVar[str] = "ppo"

    def __post_init__(self):
        super().__post_init__()
        self._check_positive("n_steps", "batch_size", "n_epochs", "learning_rate", "gamma",
                             "clip_range", "max_grad_norm", "hidden_size")
        if not (self.gamma <= 1 and 0 <= self.gae_lambda <= 1):
            raise ValueError(f"need 0 < gamma <= 1 and 0 <= gae_lambda <= 1, got {self.gamma}, {self.gae_lambda}")
        if self.n_steps * self.n_envs < 2:
            raise ValueError("a rollout needs at least 2 steps (--n-steps times --n-envs)")
        if self.ent_coef < 0 or self.vf_coef < 0:
            raise ValueError(f"--ent-coef and --vf-coef must be >= 0, got {self.ent_coef}, {self.vf_coef}")

    def ppo_kwargs(self) -> dict[str, Any]:
        """The PPO hyperparameters, as SB3 names them."""
        return {"n_steps": self.n_steps, "batch_size": self.batch_size, "n_epochs": self.n_epochs,
                "learning_rate": self.learning_rate, "gamma": self.gamma, "gae_lambda": self.gae_lambda,
                "clip_range": self.clip_range, "ent_coef": self.ent_coef, "vf_coef": self.vf_coef,
                "normalize_advantage": self.normalize_advantage,
                "max_grad_norm": self.max_grad_norm}


def build_model(config: Config, env: VecEnv, common: dict[str, Any]) -> PPO:
    layers = [config.hidden_size, config.hidden_size]
    return PPO("MlpPolicy", env, policy_kwargs={"net_arch": {"pi": layers, "vf": layers}},
               **config.ppo_kwargs(), **common)


def main(argv: list[str] | None = None) -> int:
    config = parse_config(Config, argv, "python -m baselines.ppo", __doc__.split("\n\n")[0])
    train(config, build_model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
