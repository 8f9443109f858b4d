"""Meta-Fetch rules (docs/architecture.md "Meta-Fetch")."""

import gymnasium as gym
import numpy as np
import pytest

import memory_envs  # noqa: F401
from memory_envs import MetaFetchEnv

FORWARD, LEFT, RIGHT = 0, 1, 2
DELTAS = [(0, 1), (1, 0), (0, -1), (-1, 0)]


def fetch(env, target):
    """Put the agent next to ``target`` facing it and step onto it; returns the step result."""
    size = env.size
    for direction, (dr, dc) in enumerate(DELTAS):
        r, c = target[0] - dr, target[1] - dc
        if 0 <= r < size and 0 <= c < size:
            env.agent_pos, env.agent_dir = (r, c), direction
            result = env.step(FORWARD)
            assert env.agent_pos == tuple(target)
            return result
    raise AssertionError("no neighbour")


def make(seed=0, num_objects=4):
    env = MetaFetchEnv(num_objects=num_objects)
    env.reset(seed=seed)
    return env


def test_reset_layout():
    env = make()
    positions = env.object_positions
    assert len(positions) == 4 and len(set(positions)) == 4
    assert env.agent_pos not in positions
    assert env.collected == [False] * 4
    assert (env.grid == 5).sum() == 4  # Cell.OBJECT
    layouts = {tuple(make(seed).object_positions) for seed in range(20)}
    assert len(layouts) == 20


def test_correct_object_collects_and_rewards():
    env = make()
    order = env.object_positions
    _, reward, terminated, truncated, info = fetch(env, order[0])
    assert reward == 1.0 and not terminated and not truncated
    assert env.collected == [True, False, False, False]
    assert info == {"is_success": False, "rounds_completed": 0}


def test_wrong_object_resets_progress_and_no_reward_twice_in_a_round():
    env = make(1)
    order = env.object_positions
    assert fetch(env, order[0])[1] == 1.0
    assert fetch(env, order[1])[1] == 1.0
    assert env.collected == [True, True, False, False]
    assert fetch(env, order[3])[1] == 0.0  # wrong object: everything resets
    assert env.collected == [False] * 4
    assert fetch(env, order[0])[1] == 0.0  # collected again, but already rewarded this round
    assert fetch(env, order[1])[1] == 0.0
    assert env.collected == [True, True, False, False]
    assert fetch(env, order[2])[1] == 1.0  # not yet rewarded this round


def test_collected_object_is_inert():
    env = make(2)
    order = env.object_positions
    fetch(env, order[0])
    fetch(env, order[1])
    _, reward, *_ = fetch(env, order[0])
    assert reward == 0.0 and env.collected == [True, True, False, False]


def test_round_completion_rearms_rewards_same_layout_agent_stays():
    env = make(3)
    order = env.object_positions
    rewards = [fetch(env, cell)[1] for cell in order]
    assert rewards == [1.0] * 4
    assert env.collected == [False] * 4 and env.rounds_completed == 1
    assert env.object_positions == order
    assert env.agent_pos == order[-1]
    _, _, _, _, info = env.step(LEFT)
    assert info == {"is_success": True, "rounds_completed": 1}
    rewards = [fetch(env, cell)[1] for cell in order]
    assert rewards == [1.0] * 4 and env.rounds_completed == 2


def test_is_success_false_until_a_round_is_completed_and_episode_never_terminates():
    env = gym.make("MemoryEnvs/MetaFetch-v0")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for t in range(300):
        _, _, terminated, truncated, info = env.step(int(rng.integers(3)))
        assert not terminated
        assert info["is_success"] == (info["rounds_completed"] > 0)
    assert truncated


def test_observation_channels_and_objects_do_not_occlude():
    env = make(4, num_objects=1)
    env._place(np.array([2 * 7 + 3]))  # object at (2, 3)
    env.agent_pos, env.agent_dir = (5, 3), 3  # facing north, object two cells ahead
    obs = env.step(RIGHT)[0]
    obs = env.step(LEFT)[0]
    assert obs.shape == (15, 3, 4)
    assert (obs.sum(axis=-1) == 1).all()  # one-hot everywhere
    centre = obs[:, 1]
    # beam starts one step ahead: (4,3) free, (3,3) free, (2,3) object, (1,3), (0,3) free, then walls
    assert [int(c.argmax()) for c in centre[:7]] == [0, 0, 2, 0, 0, 1, 1]
    assert (centre[5:, 1] == 1).all()
    fetch(env, (2, 3))
    env.agent_pos, env.agent_dir = (5, 3), 3
    obs = env.step(RIGHT)[0]
    obs = env.step(LEFT)[0]
    # the single object was the whole order: the round completed and it is uncollected again
    assert env.rounds_completed == 1 and obs[2, 1].argmax() == 2


def test_collected_object_channel():
    env = make(5)
    order = env.object_positions
    fetch(env, order[0])
    for direction, (dr, dc) in enumerate(DELTAS):
        r, c = order[0][0] - 2 * dr, order[0][1] - 2 * dc
        if 0 <= r < 7 and 0 <= c < 7 and (r, c) not in order:
            env.agent_pos, env.agent_dir = (r, c), direction
            obs = env.step(LEFT)[0]
            obs = env.step(RIGHT)[0]
            assert obs[1, 1].tolist() == [0, 0, 0, 1]
            return
    pytest.skip("layout without a free cell two steps away")


def test_lateral_rays_read_walls_off_the_grid():
    env = make(6, num_objects=1)
    env._place(np.array([48]))
    env.agent_pos, env.agent_dir = (0, 0), 0  # top-left corner facing east: left ray is off the grid
    obs = env.step(LEFT)[0]
    obs = env.step(RIGHT)[0]
    assert (obs[:, 0, 1] == 1).all()
    assert (obs[:6, 1, 0] == 1).all() and (obs[6:, 1, 1] == 1).all()


@pytest.mark.parametrize(
    "kwargs, name",
    [({"num_objects": 0}, "num_objects"), ({"num_objects": 49}, "num_objects"), ({"size": 1}, "size"),
     ({"beam_width": 2}, "beam_width"), ({"beam_length": 0}, "beam_length"), ({"num_objects": 2.0}, "num_objects"),
     ({"render_mode": "rgb"}, "render_mode")],
)
def test_bad_constructor_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        MetaFetchEnv(**kwargs)


def test_three_object_variant():
    env = gym.make("MemoryEnvs/MetaFetch-3obj-v0")
    env.reset(seed=0)
    assert len(env.unwrapped.object_positions) == 3
