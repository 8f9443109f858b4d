"""The README's examples run as written."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_usage_snippet_runs_and_prints_a_finished_episode():
    text = README.read_text()
    marker = text.index("usage-snippet")
    snippet = re.search(r"```python\n(.*?)```", text[marker:], flags=re.S).group(1)
    assert len(snippet.strip().splitlines()) <= 12
    out = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("(9, 1, 3)")


def test_vector_snippet_runs():
    text = README.read_text()
    usage, vector = re.findall(r"```python\n(.*?)```", text[text.index("usage-snippet"):], flags=re.S)[:2]
    code = usage + "\n" + vector + "\nassert obs.shape == (1024, 15, 3, 4) and rewards.shape == (1024,)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_readme_names_the_two_quick_start_commands_and_they_exist_in_the_makefile():
    text = README.read_text()
    makefile = (README.parent / "Makefile").read_text()
    for target in ("run", "test"):
        assert f"make {target}\n" in text
        assert re.search(rf"^{target}:", makefile, flags=re.M)
    assert "make test" in (README.parent / ".ci" / "run").read_text()


def test_pictures_exist():
    for name in re.findall(r"\((assets/[^)]+\.png)\)", README.read_text()):
        assert (README.parent / name).stat().st_size > 500


def test_the_pretrained_actor_snippet_solves_an_episode():
    """The quick start's pretrained actor, in a user's own Gymnasium loop (greedy: it solved 100 of 100)."""
    text = README.read_text()
    snippet = re.search(r"```python\n(from agents import load_actor\n.*?)```", text, flags=re.S).group(1)
    loop = (
        "import gymnasium as gym, memory_envs\n"
        "env = gym.make('MemoryEnvs/IMaze-9x9-v0')\n"
        "wins = 0\n"
        "for seed in range(5):\n"
        "    obs, info = env.reset(seed=1000 + seed)\n"
        "    state, done, start = None, False, True\n"
        "    while not done:\n"
        "        action, state = policy.predict(obs, state, episode_start=start, deterministic=True)\n"
        "        obs, reward, terminated, truncated, info = env.step(action)\n"
        "        done, start = terminated or truncated, False\n"
        "    wins += bool(info.get('is_success'))\n"
        "assert wins >= 4, wins\n"
    )
    out = subprocess.run([sys.executable, "-c", snippet + loop], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
