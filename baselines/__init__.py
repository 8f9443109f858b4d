"""Stable-Baselines3 reference agents on the registered memory envs (an external yardstick).

One readable script per algorithm, using only ``gymnasium.make``/``gymnasium.make_vec``:

- ``python -m baselines.ppo ENV_ID [--frame-stack 4]``: PPO, memoryless (or a short window);
- ``python -m baselines.recurrent_ppo ENV_ID``: RecurrentPPO (LSTM), needs sb3-contrib.

:mod:`baselines.vec_env` adapts our batched vector envs to SB3's ``VecEnv``;
:mod:`baselines.metrics` defines the run output (``config.json``, ``metrics.jsonl``) that the
ALD agents share; :mod:`baselines.common` holds the CLI, evaluation and training loop.
"""
