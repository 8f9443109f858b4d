"""Conformance tests run on every registered MemoryEnvs id (new ids get them for free)."""

import copy
import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

from env_helpers import REGISTERED_IDS, assert_same_records, rollout

pytestmark = pytest.mark.parametrize("env_id", REGISTERED_IDS)


def test_gymnasium_check_env(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    gym_check_env(env.unwrapped, skip_render_check=False)


def test_stable_baselines3_check_env(env_id):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    sb3_check_env(gym.make(env_id).unwrapped, warn=True)


def test_spaces_and_observation_dtype(env_id):
    env = gym.make(env_id)
    obs, info = env.reset(seed=0)
    assert isinstance(env.action_space, gym.spaces.Discrete)
    assert obs.dtype == np.uint8 and obs.shape == env.observation_space.shape
    assert env.observation_space.contains(obs)
    assert env.unwrapped.observation_space.low.min() == 0 and env.unwrapped.observation_space.high.max() == 1


def test_seeded_determinism_over_whole_episodes(env_id):
    actions = np.random.default_rng(1).integers(gym.make(env_id).action_space.n, size=700).tolist()
    a = rollout(gym.make(env_id), seed=123, actions=actions)
    b = rollout(gym.make(env_id), seed=123, actions=actions)
    assert_same_records(a, b)
    assert sum(r[2] or r[3] for r in a) >= 1, "the run should cover at least one whole episode"
    c = rollout(gym.make(env_id), seed=124, actions=actions)
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a, c)) or len(a) != len(c)


@pytest.mark.parametrize("clone", [pickle.loads.__name__, copy.deepcopy.__name__])
def test_pickle_and_deepcopy_mid_episode(env_id, clone):
    env = gym.make(env_id)
    env.reset(seed=7)
    rng = np.random.default_rng(0)
    for action in rng.integers(env.action_space.n, size=25).tolist():
        env.step(action)
    twin = pickle.loads(pickle.dumps(env)) if clone == "loads" else copy.deepcopy(env)
    actions = rng.integers(env.action_space.n, size=400).tolist()
    for action in actions:
        ra, rb = env.step(action), twin.step(action)
        np.testing.assert_array_equal(ra[0], rb[0])
        assert ra[1:] == rb[1:]
        if ra[2] or ra[3]:
            np.testing.assert_array_equal(env.reset()[0], twin.reset()[0])


@pytest.mark.parametrize("mode", ["rgb_array", "ansi", "human"])
def test_render_modes_headless(env_id, mode):
    if mode == "human":
        pytest.importorskip("pygame")
    env = gym.make(env_id, render_mode=mode)
    env.reset(seed=0)
    out = env.render()
    if mode == "rgb_array":
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
        assert len(np.unique(out.reshape(-1, 3), axis=0)) > 4
    elif mode == "ansi":
        assert isinstance(out, str) and out.count("\n") == env.unwrapped.size
        assert sum(out.count(c) for c in "><v^") == 1
    else:
        assert out is None
        env.step(0)
    env.close()


def test_render_without_mode_warns_and_returns_none(env_id):
    env = gym.make(env_id)
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.unwrapped.render() is None


def test_unknown_render_mode_is_rejected(env_id):
    with pytest.raises(ValueError, match="render_mode"):
        gym.make(env_id, render_mode="video")


def test_truncation_at_max_episode_steps(env_id):
    env = gym.make(env_id)
    limit = env.spec.max_episode_steps
    assert limit == {"IMaze-9x9": 150, "IMaze-15x15": 350}.get(env_id.split("/")[1][:-3], 300)
    env.reset(seed=0)
    noop = 3 if env.action_space.n == 4 else 1  # turning in place never ends an episode
    for t in range(1, limit + 1):
        obs, reward, terminated, truncated, info = env.step(noop)
        assert not terminated
        assert truncated == (t == limit)
        assert "is_success" in info
    assert info["is_success"] is False


@pytest.mark.parametrize("bad", [-1, 99, 1.0, 2.5, "1", None, True, np.array([0]), np.float32(0), [0]])
def test_invalid_actions_raise_and_leave_state_unchanged(env_id, bad):
    env = gym.make(env_id)
    env.reset(seed=3)
    env.step(0)
    before = pickle.dumps(env.unwrapped.__getstate__())
    with pytest.raises(ValueError, match="action"):
        env.step(bad)
    assert pickle.dumps(env.unwrapped.__getstate__()) == before


@pytest.mark.parametrize("good", [0, np.int64(1), np.int32(2), np.array(1), np.uint8(0)])
def test_integer_like_actions_are_accepted(env_id, good):
    env = gym.make(env_id)
    env.reset(seed=3)
    env.step(good)


def test_out_of_range_message_names_action_and_space(env_id):
    env = gym.make(env_id)
    env.reset(seed=0)
    with pytest.raises(ValueError) as excinfo:
        env.step(7)
    assert "7" in str(excinfo.value) and "Discrete" in str(excinfo.value)


def test_is_success_on_final_step_and_public_attributes(env_id):
    env = gym.make(env_id)
    env.reset(seed=0)
    unwrapped = env.unwrapped
    assert isinstance(unwrapped.agent_pos, tuple) and len(unwrapped.agent_pos) == 2
    assert unwrapped.agent_dir in range(4)
    assert unwrapped.grid.shape == (unwrapped.size, unwrapped.size)
    done = False
    rng = np.random.default_rng(0)
    while not done:
        _, _, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        done = terminated or truncated
    assert isinstance(info["is_success"], bool)
