"""LSTM baseline: V-MPO on an LSTM actor-critic; actors run the learner model itself.

    python -m agents.lstm [--env-id MemoryEnvs/IMaze-9x9-v0] [--runner parallel|serial] [--help]
"""

import sys

from agents.runtime.cli import main

if __name__ == "__main__":
    sys.exit(main("lstm", __doc__))
