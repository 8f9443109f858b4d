"""GTrXL baseline: V-MPO on a Gated Transformer-XL; actors run the transformer itself (slow acting).

    python -m agents.gtrxl [--env-id MemoryEnvs/IMaze-9x9-v0] [--runner parallel|serial] [--help]
"""

import sys

from agents.runtime.cli import main

if __name__ == "__main__":
    sys.exit(main("gtrxl", __doc__))
