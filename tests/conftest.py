"""Test-wide settings: pygame never opens a real window; fixtures of the process tests; the
learning checks' runs start in the background when collection ends, and their tests run last."""

import os

import pytest

LEARNING_TEST = "test_each_agent_learns_a_small_imaze_beyond_memoryless"

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


@pytest.fixture
def shm_before():
    return set(os.listdir("/dev/shm"))


def pytest_collection_modifyitems(session, config, items):
    learning = [item for item in items if getattr(item, "originalname", None) == LEARNING_TEST]
    if not learning or config.option.collectonly:
        return
    items[:] = [item for item in items if item not in learning] + learning
    from learning_pool import LearningPool

    config.learning_pool = LearningPool([item.callspec.params["agent"] for item in learning])


def pytest_unconfigure(config):
    pool = getattr(config, "learning_pool", None)
    if pool is not None:
        pool.close()


@pytest.fixture
def learning_result(request):
    """``learning_result(agent, timeout)``: that agent's background learning run (see learning_pool)."""
    pool = getattr(request.config, "learning_pool", None)
    assert pool is not None, "the learning pool starts at collection (conftest.pytest_collection_modifyitems)"
    return pool.result
