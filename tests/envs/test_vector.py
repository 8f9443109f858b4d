"""Batched numpy vector envs (docs/architecture.md "Vector envs"): exactly N single envs, with autoreset."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from env_helpers import REGISTERED_IDS
from memory_envs.vector import BatchedVectorEnv


def assert_infos_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if key == "final_obs":
            for x, y in zip(a[key], b[key]):
                assert (x is None and y is None) or np.array_equal(x, y)
        elif isinstance(a[key], dict):
            assert_infos_equal(a[key], b[key])
        else:
            np.testing.assert_array_equal(a[key], b[key])
            assert a[key].dtype == b[key].dtype


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("env_id", REGISTERED_IDS)
def test_batched_equals_single_envs_with_autoreset(env_id, mode):
    num_envs = 6
    batched = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", autoreset_mode=mode)
    assert not isinstance(batched, gym.vector.SyncVectorEnv)
    assert batched.metadata["autoreset_mode"] == mode
    reference = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode})
    obs_a, info_a = batched.reset(seed=11)
    obs_b, info_b = reference.reset(seed=11)
    np.testing.assert_array_equal(obs_a, obs_b)
    rng = np.random.default_rng(0)
    episodes = 0
    # A few hundred steps with short episodes (a policy biased forward ends I-Mazes often),
    # and a long stretch so that Meta-Fetch truncates at 300.
    for t in range(700):
        actions = np.where(rng.random(num_envs) < 0.6, 0, rng.integers(batched.single_action_space.n, size=num_envs))
        step_a, step_b = batched.step(actions), reference.step(actions)
        for x, y in zip(step_a[:4], step_b[:4]):
            np.testing.assert_array_equal(x, y)
            assert x.dtype == y.dtype
        assert_infos_equal(step_a[4], step_b[4])
        episodes += int((step_a[2] | step_a[3]).sum())
    assert episodes >= num_envs


def test_obs_and_single_spaces():
    envs = gym.make_vec("MemoryEnvs/MetaFetch-v0", num_envs=5)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (5, 15, 3, 4) and obs.dtype == np.uint8
    assert envs.observation_space.contains(obs)
    assert envs.single_action_space == gym.spaces.Discrete(3)
    assert isinstance(envs.unwrapped, BatchedVectorEnv)


def test_make_vec_kwargs_apply_like_make():
    envs = gym.make_vec("MemoryEnvs/IMaze-9x9-v0", num_envs=3, size=11, beam_width=3)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, 11, 3, 3)
    assert envs.unwrapped.max_episode_steps == 150
    envs = gym.make_vec("MemoryEnvs/IMaze-9x9-v0", num_envs=2, max_episode_steps=5)
    envs.reset(seed=0)
    truncated = [envs.step(np.array([3, 3]))[3] for _ in range(5)]
    assert [t.tolist() for t in truncated] == [[False, False]] * 4 + [[True, True]]


@pytest.mark.parametrize("bad", [np.array([0, 1]), np.array([0, 1, 4]), np.array([0, -1, 1]),
                                  np.array([0.0, 1.0, 1.0]), [0, "a", 1], None])
def test_invalid_actions_raise_value_error_and_leave_state(bad):
    envs = gym.make_vec("MemoryEnvs/IMaze-9x9-v0", num_envs=3)
    envs.reset(seed=0)
    before = envs.unwrapped._state.copy()
    with pytest.raises(ValueError, match="actions"):
        envs.step(bad)
    np.testing.assert_array_equal(envs.unwrapped._state, before)


def test_step_before_reset_is_an_error():
    envs = gym.make_vec("MemoryEnvs/IMaze-9x9-v0", num_envs=2)
    with pytest.raises(RuntimeError, match="reset"):
        envs.step(np.array([0, 0]))


def test_reset_mask_and_disabled_autoreset():
    envs = gym.make_vec("MemoryEnvs/IMaze-9x9-v0", num_envs=2, autoreset_mode="disabled", max_episode_steps=3)
    envs.reset(seed=0)
    for _ in range(3):
        obs, _, _, truncated, _ = envs.step(np.array([0, 2]))
    assert truncated.all()
    with pytest.raises(ValueError, match="reset"):
        envs.step(np.array([0, 0]))
    obs, _ = envs.reset(options={"reset_mask": np.array([True, False])})
    assert envs.unwrapped._state[0] == 0 and envs.unwrapped._state[1] != 0
    with pytest.raises(ValueError, match="reset"):
        envs.step(np.array([0, 0]))  # env 1 still needs its reset
    envs.reset(options={"reset_mask": np.array([False, True])})
    envs.step(np.array([0, 0]))


@pytest.mark.parametrize("kwargs, name", [({"num_envs": 0}, "num_envs"), ({"size": 6}, "size"),
                                          ({"autoreset_mode": "sometimes"}, "autoreset_mode"),
                                          ({"max_episode_steps": 0}, "max_episode_steps"),
                                          ({"render_mode": "human"}, "render_mode")])
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        gym.make_vec("MemoryEnvs/IMaze-9x9-v0", **{"num_envs": 2, **kwargs})


@pytest.mark.parametrize("env_id", REGISTERED_IDS)
def test_render_matches_single_env_frames(env_id):
    envs = gym.make_vec(env_id, num_envs=2, render_mode="rgb_array")
    single = gym.make(env_id, render_mode="rgb_array")
    envs.reset(seed=5)
    single.reset(seed=5)
    actions = [0, 2, 0, 0, 1, 0]
    for action in actions:
        envs.step(np.array([action, 0]))
        single.step(action)
    frames = envs.render()
    assert len(frames) == 2
    np.testing.assert_array_equal(frames[0], single.render())
    envs_ansi = gym.make_vec(env_id, num_envs=2, render_mode="ansi")
    envs_ansi.reset(seed=0)
    assert all(isinstance(text, str) for text in envs_ansi.render())
