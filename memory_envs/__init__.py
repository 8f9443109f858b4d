"""Memory environments for Gymnasium: I-Maze and Meta-Fetch with egocentric beam observations.

Importing the package registers its ids::

    import gymnasium
    import memory_envs

    gymnasium.register_envs(memory_envs)  # keeps linters from flagging the import as unused
    env = gymnasium.make("MemoryEnvs/IMaze-9x9-v0")

``gymnasium.make("memory_envs:MemoryEnvs/IMaze-9x9-v0")`` works without the import, and
``gymnasium.make_vec(id, num_envs=N)`` gives the batched numpy implementation of any id.
"""

from memory_envs.imaze import IMazeEnv
from memory_envs.metafetch import MetaFetchEnv
from memory_envs.registration import ENV_IDS, ENV_TABLE, register_envs

register_envs()

__all__ = ["ENV_IDS", "ENV_TABLE", "IMazeEnv", "MetaFetchEnv", "register_envs"]
__version__ = "0.1.0"
