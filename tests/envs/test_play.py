"""Human play driven headless (SDL dummy video driver) with posted key events."""

import os
import subprocess
import sys

import pytest

pygame = pytest.importorskip("pygame")

from memory_envs.play import main, play  # noqa: E402


def post_keys(*keys):
    pygame.init()
    pygame.display.set_mode((10, 10))
    for key in keys:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))


def test_arrow_keys_solve_imaze_and_escape_quits():
    # Seed 0 of I-Maze 9x9: read the indicator colour first with a probe env.
    import gymnasium as gym

    probe = gym.make("MemoryEnvs/IMaze-9x9-v0")
    probe.reset(seed=0)
    green = probe.unwrapped.indicator == "green"
    keys = [pygame.K_UP] * 4 + [pygame.K_RIGHT] + [pygame.K_UP] * 8
    keys += [pygame.K_RIGHT] + [pygame.K_UP] * 4 if green else [pygame.K_LEFT] + [pygame.K_UP] * 4
    keys += [pygame.K_SPACE, pygame.K_a, pygame.K_ESCAPE, pygame.K_UP]  # keys after Esc are ignored
    post_keys(*keys)
    session = play("MemoryEnvs/IMaze-9x9-v0", seed=0)
    assert session.returns == [1.0] and session.successes == [True]
    assert session.steps == len(keys) - 3  # 'a' is unbound; Esc quits before the last key
    assert not pygame.display.get_init()


def test_window_close_quits_and_metafetch_has_no_noop():
    pygame.init()
    pygame.display.set_mode((10, 10))
    for key in (pygame.K_LEFT, pygame.K_SPACE, pygame.K_UP):
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    session = play("MemoryEnvs/MetaFetch-v0", seed=1)
    assert session.steps == 2


def test_cli_rejects_unknown_id_with_suggestion(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["MemoryEnvs/IMaze-9x9-v1"])
    assert excinfo.value.code == 2
    assert "MemoryEnvs/IMaze-9x9-v0" in capsys.readouterr().err


def test_cli_help():
    out = subprocess.run([sys.executable, "-m", "memory_envs.play", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--seed" in out.stdout


def test_headless_rendering_and_play_initialise_no_audio_and_print_nothing():
    """Only pygame's display (and font) are initialised: no ALSA/XDG noise on a machine without
    sound, as pygame.init() would print."""
    script = """
import os, gymnasium as gym, pygame, memory_envs
from memory_envs.play import play
env = gym.make("MemoryEnvs/IMaze-9x9-v0", render_mode="human")
env.reset(seed=0)
env.step(0)
env.close()
pygame.display.init()
pygame.display.set_mode((10, 10))
pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE, mod=0, unicode="", scancode=0))
play("MemoryEnvs/IMaze-9x9-v0", seed=0)
assert not pygame.mixer.get_init()
"""
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**env, "SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"})
    assert out.returncode == 0 and out.stderr == "" and out.stdout == "", (out.stdout, out.stderr)
