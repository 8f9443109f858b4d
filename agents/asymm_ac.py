"""Asymmetric actor-critic baseline: an LSTM policy acts; the learner trains it with a GTrXL value network.

    python -m agents.asymm_ac [--env-id MemoryEnvs/IMaze-9x9-v0] [--runner parallel|serial] [--help]
"""

import sys

from agents.runtime.cli import main

if __name__ == "__main__":
    sys.exit(main("asymm_ac", __doc__))
