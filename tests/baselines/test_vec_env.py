"""The SB3 adapter over our batched vector env equals SB3's DummyVecEnv over gymnasium.make envs."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.preprocessing import is_image_space, preprocess_obs
from stable_baselines3.common.vec_env import DummyVecEnv

import memory_envs
from baselines.vec_env import SB3VecEnv, flat_float_env, make_sb3_vec_env


def assert_step_infos_equal(infos_a, infos_b):
    assert len(infos_a) == len(infos_b)
    for a, b in zip(infos_a, infos_b):
        assert a.keys() == b.keys()
        for key in a:
            if key == "terminal_observation":
                np.testing.assert_array_equal(a[key], b[key])
                assert a[key].dtype == b[key].dtype
            else:
                assert a[key] == b[key], key


def adapter_and_reference(env_id, num_envs, flatten, **kwargs):
    vector_env = gym.make_vec(env_id, num_envs=num_envs, autoreset_mode="same_step", **kwargs)
    adapter = SB3VecEnv(vector_env, flatten=flatten)
    if flatten:
        make_one = lambda: flat_float_env(env_id, **kwargs)  # noqa: E731
    else:
        make_one = lambda: gym.make(env_id, **kwargs)  # noqa: E731
    return adapter, DummyVecEnv([make_one for _ in range(num_envs)])


@pytest.mark.parametrize("flatten", [True, False])
@pytest.mark.parametrize("env_id", memory_envs.ENV_IDS)
def test_adapter_equals_dummy_vec_env_step_for_step(env_id, flatten):
    num_envs = 6
    # A short time limit on I-Maze so that a few hundred steps hold both truncations and terminations.
    kwargs = {"max_episode_steps": 40} if "IMaze" in env_id else {}
    adapter, reference = adapter_and_reference(env_id, num_envs, flatten, **kwargs)
    assert adapter.observation_space == reference.observation_space
    assert adapter.action_space == reference.action_space
    assert adapter.seed(5) == reference.seed(5)
    obs_a, obs_b = adapter.reset(), reference.reset()
    np.testing.assert_array_equal(obs_a, obs_b)
    assert obs_a.dtype == obs_b.dtype
    rng = np.random.default_rng(0)
    terminations = truncations = 0
    for _ in range(400):
        # Mostly forward, so that I-Maze episodes reach a goal now and then.
        actions = np.where(rng.random(num_envs) < 0.6, 0, rng.integers(adapter.action_space.n, size=num_envs))
        obs_a, rewards_a, dones_a, infos_a = adapter.step(actions)
        obs_b, rewards_b, dones_b, infos_b = reference.step(actions)
        for x, y in [(obs_a, obs_b), (rewards_a, rewards_b), (dones_a, dones_b)]:
            np.testing.assert_array_equal(x, y)
            assert x.dtype == y.dtype
        assert_step_infos_equal(infos_a, infos_b)
        truncations += sum(info["TimeLimit.truncated"] for info in infos_a)
        terminations += sum(done and not info["TimeLimit.truncated"] for done, info in zip(dones_a, infos_a))
    assert truncations > 0
    if env_id == "MemoryEnvs/IMaze-9x9-v0":  # the others rarely (15x15) or never (Meta-Fetch) terminate here
        assert terminations > 0


def test_adapter_needs_same_step_autoreset():
    with pytest.raises(ValueError, match="same_step"):
        SB3VecEnv(gym.make_vec("MemoryEnvs/IMaze-9x9-v0", num_envs=2))


def test_policy_sees_the_beam_as_zero_one_floats():
    raw_space = gym.make("MemoryEnvs/IMaze-9x9-v0").observation_space
    assert not is_image_space(raw_space)  # Box(0, 1, uint8) is not divided by 255 by SB3
    venv = make_sb3_vec_env("MemoryEnvs/IMaze-9x9-v0", n_envs=3, frame_stack=4)
    assert venv.observation_space.shape == (4 * 27,)
    venv.seed(0)
    obs = venv.reset()
    for _ in range(5):
        obs, *_ = venv.step(np.zeros(3, dtype=np.int64))
    features = preprocess_obs(torch.as_tensor(obs), venv.observation_space)
    assert features.dtype == torch.float32
    assert set(np.unique(features.numpy())) <= {0.0, 1.0} and features.sum() > 0
    np.testing.assert_array_equal(features.numpy(), obs)
