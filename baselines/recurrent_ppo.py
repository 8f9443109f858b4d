"""RecurrentPPO (sb3-contrib) on a memory env: PPO with an LSTM policy, able to remember.

The LSTM reads the flattened beam (0/1 floats) each step and carries the I-Maze indicator
from the start of the corridor to the junction, so it can in principle solve I-Maze
(success -> 1), where memoryless PPO plateaus near 0.5. Needs the optional extra
``pip install 'memory-envs-ald[recurrent]'`` (sb3-contrib).

Usage::

    python -m baselines.recurrent_ppo MemoryEnvs/IMaze-9x9-v0 --time-budget-s 1200

Writes ``runs/<name>/`` like :mod:`baselines.ppo`; the metrics format is in
:mod:`baselines.metrics`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, ClassVar

from stable_baselines3.common.vec_env import VecEnv

from baselines import ppo
from baselines.common import parse_config, train

INSTALL_HINT = "pip install 'memory-envs-ald[recurrent]'"


@dataclass(frozen=True)
class Config(ppo.Config):
    """RecurrentPPO options: PPO's plus the LSTM's."""

    lstm_hidden_size: int = 64
    """LSTM hidden units."""
    n_lstm_layers: int = 1
    """Stacked LSTM layers."""
    critic_lstm: bool = False
    """Give the value function its own LSTM (off: it sees the current observation; ~1.7x faster)."""

    algorithm: ClassVar[str] = "recurrent_ppo"

    def __post_init__(self):
        super().__post_init__()
        self._check_positive("lstm_hidden_size", "n_lstm_layers")


def build_model(config: Config, env: VecEnv, common: dict[str, Any]):
    from sb3_contrib import RecurrentPPO

    layers = [config.hidden_size, config.hidden_size]
    policy_kwargs = {"net_arch": {"pi": layers, "vf": layers}, "lstm_hidden_size": config.lstm_hidden_size,
                     "n_lstm_layers": config.n_lstm_layers, "enable_critic_lstm": config.critic_lstm}
    return RecurrentPPO("MlpLstmPolicy", env, policy_kwargs=policy_kwargs, **config.ppo_kwargs(), **common)


def main(argv: list[str] | None = None) -> int:
    config = parse_config(Config, argv, "python -m baselines.recurrent_ppo", __doc__.split("\n\n")[0])
    try:
        import sb3_contrib  # noqa: F401
    except ImportError:
        print(f"error: RecurrentPPO needs sb3-contrib, which is not installed; {INSTALL_HINT}", file=sys.stderr)
        return 2
    train(config, build_model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
