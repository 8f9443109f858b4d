"""Registration (docs/architecture.md "Environments")."""

import subprocess
import sys

import gymnasium as gym

import memory_envs


def test_ids_registered_from_the_table_with_vector_entry_points():
    assert memory_envs.ENV_IDS == (
        "MemoryEnvs/IMaze-9x9-v0", "MemoryEnvs/IMaze-15x15-v0", "MemoryEnvs/MetaFetch-v0", "MemoryEnvs/MetaFetch-3obj-v0",
    )
    for entry in memory_envs.ENV_TABLE:
        spec = gym.spec(entry.id)
        assert spec.max_episode_steps == entry.max_episode_steps
        assert spec.vector_entry_point == entry.vector_entry_point
    assert gym.spec("MemoryEnvs/MetaFetch-3obj-v0").kwargs["num_objects"] == 3


def test_register_envs_is_idempotent():
    memory_envs.register_envs()
    gym.register_envs(memory_envs)


def test_module_prefix_form_works_without_import():
    code = (
        "import gymnasium, sys\n"
        "env = gymnasium.make('memory_envs:MemoryEnvs/IMaze-9x9-v0')\n"
        "obs, _ = env.reset(seed=0)\n"
        "print(obs.shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(9, 1, 3)"


def test_memory_envs_does_not_import_torch():
    code = "import sys, memory_envs, memory_envs.vector, memory_envs.rendering; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
