"""The README's examples run as written."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_usage_snippet_runs_and_prints_a_finished_episode():
    text = README.read_text()
    marker = text.index("usage-snippet")
    snippet = re.search(r"```python\n(.*?)```", text[marker:], flags=re.S).group(1)
    assert len(snippet.strip().splitlines()) <= 12
    out = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("(9, 1, 3)")


def test_vector_snippet_runs():
    usage, vector = python_blocks()[:2]
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
