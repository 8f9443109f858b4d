"""Test-wide settings: pygame never opens a real window; fixtures of the process tests."""

import os

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


@pytest.fixture
def shm_before():
    return set(os.listdir("/dev/shm"))
