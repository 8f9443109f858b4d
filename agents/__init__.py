"""The agents: ALD and the LSTM, GTrXL and Asymm. AC baselines on one runtime.

From code: ``from agents import ALD`` (see :mod:`agents.api`); from a shell: ``python -m agents.ald``.
"""

__all__ = ["ALD", "LSTM", "GTrXL", "AsymmAC", "Agent", "ActorPolicy", "load_actor"]


def __getattr__(name):  # the API loads on first use: `python -m agents.ald --help` stays fast
    if name in __all__:
        from agents import api

        return getattr(api, name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")
