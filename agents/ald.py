"""Actor-Learner Distillation (Parisotto & Salakhutdinov 2021): a GTrXL learner trained with V-MPO + V-trace, distilled into a small LSTM actor that acts on the CPU.

    python -m agents.ald [--env-id MemoryEnvs/IMaze-9x9-v0] [--runner parallel|serial] [--help]
"""

import sys

from agents.runtime.cli import main

if __name__ == "__main__":
    sys.exit(main("ald", __doc__))
