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


def is_learning_check(item) -> bool:
    return getattr(item, "originalname", None) == LEARNING_TEST


@pytest.hookimpl(trylast=True)  # after -k, -m, --lf and --deselect have removed what will not run
def pytest_collection_modifyitems(session, config, items):
    items[:] = [item for item in items if not is_learning_check(item)] + [item for item in items
                                                                         if is_learning_check(item)]


def pytest_collection_finish(session):
    learning = [item for item in session.items if is_learning_check(item)]
    if learning and not session.config.option.collectonly:
        from learning_pool import LearningPool

        session.config.learning_pool = LearningPool([item.callspec.params["agent"] for item in learning])


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
