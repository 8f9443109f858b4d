"""Test-wide settings: pygame never opens a real window; fixtures of the process tests; the
learning checks' runs start in the background when the test loop starts, and their tests run last."""

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
    """The learning checks last (unless --ff or --nf reorder the tests afterwards)."""
    items[:] = [item for item in items if not is_learning_check(item)] + [item for item in items
                                                                         if is_learning_check(item)]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtestloop(session):
    """Start the learning runs of the learning checks that will run; close them at the end."""
    learning = [item for item in session.items if is_learning_check(item)]
    collection_failed = session.testsfailed and not session.config.option.continue_on_collection_errors
    if learning and not (session.config.option.collectonly or collection_failed):
        from learning_pool import LearningPool

        session.config.learning_pool = LearningPool([item.callspec.params["agent"] for item in learning])
    try:
        yield
    finally:
        pool = getattr(session.config, "learning_pool", None)
        if pool is not None:
            pool.close()
            session.config.learning_pool = None


@pytest.fixture
def learning_result(request):
    """``learning_result(agent, timeout)``: that agent's background learning run (see learning_pool)."""
    pool = getattr(request.config, "learning_pool", None)
    assert pool is not None, "the learning pool starts with the test loop (conftest.pytest_runtestloop)"
    return pool.result
