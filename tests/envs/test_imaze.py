"""I-Maze rules (docs/architecture.md "I-Maze"): layout, observation, rewards, shaping, memory requirement."""

import gymnasium as gym
import numpy as np
import pytest

import memory_envs  # noqa: F401
from memory_envs import IMazeEnv
from memory_envs.imaze import imaze_tables

FORWARD, LEFT, RIGHT, NOOP = 0, 1, 2, 3


def remember_indicator_policy(env, obs):
    """Walk east to the indicator, read its colour from the observation alone, go to the matching goal."""
    size = env.unwrapped.size
    total, colour = 0.0, None
    plan = [FORWARD] * (size - 1)  # (0,0) -> the indicator at (0, size-1)
    for action in plan:
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
    # standing on the indicator: beam cell 0 shows its colour (channels wall, green, red)
    colour = "green" if obs[0, 0, 1] else "red" if obs[0, 0, 2] else None
    assert colour is not None
    plan = [LEFT, LEFT] + [FORWARD] * (size // 2) + [LEFT] + [FORWARD] * (size - 1)
    plan += [RIGHT] + [FORWARD] * (size // 2) if colour == "green" else [LEFT] + [FORWARD] * (size // 2)
    for action in plan:
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        if terminated or truncated:
            break
    return total, terminated, info, colour


@pytest.mark.parametrize("env_id", ["MemoryEnvs/IMaze-9x9-v0", "MemoryEnvs/IMaze-15x15-v0"])
def test_scripted_memory_policy_solves_both_colours(env_id):
    seen = set()
    for seed in range(12):
        env = gym.make(env_id)
        obs, _ = env.reset(seed=seed)
        total, terminated, info, colour = remember_indicator_policy(env, obs)
        assert colour == env.unwrapped.indicator
        assert terminated and info["is_success"] is True
        shaping = env.unwrapped.shaping_reward * env.unwrapped.size
        assert total == pytest.approx(1.0 + shaping, abs=1e-12)
        seen.add(colour)
    assert seen == {"green", "red"}


def test_exact_return_one_without_shaping_and_wrong_goal_zero():
    for seed in range(6):
        env = gym.make("MemoryEnvs/IMaze-9x9-v0")
        env.reset(seed=seed)
        unwrapped = env.unwrapped
        correct = unwrapped.goal_pos
        wrong = (8, 8) if correct == (8, 0) else (8, 0)
        # stand next to the wrong goal, facing it
        unwrapped.agent_pos = (8, 1) if wrong == (8, 0) else (8, 7)
        unwrapped.agent_dir = 2 if wrong == (8, 0) else 0
        _, reward, terminated, _, info = env.step(FORWARD)
        assert (reward, terminated, info["is_success"]) == (0.0, True, False)
        env.reset(seed=seed)
        unwrapped.agent_pos = (8, 1) if correct == (8, 0) else (8, 7)
        unwrapped.agent_dir = 2 if correct == (8, 0) else 0
        _, reward, terminated, _, info = env.step(FORWARD)
        assert (reward, terminated, info["is_success"]) == (1.0, True, True)


def test_layout_and_start():
    env = IMazeEnv(size=9)
    env.reset(seed=0)
    grid = env.grid
    free = grid != 1
    expected = np.zeros((9, 9), dtype=bool)
    expected[0, :] = expected[8, :] = expected[:, 4] = True
    np.testing.assert_array_equal(free, expected)
    assert env.agent_pos == (0, 0) and env.agent_dir == 0
    assert env.goal_pos == ((8, 0) if env.indicator == "green" else (8, 8))


def test_green_means_bottom_left_and_indicator_is_random():
    colours = {}
    for seed in range(40):
        env = IMazeEnv()
        env.reset(seed=seed)
        colours[seed] = env.indicator
        assert env.goal_pos == {"green": (8, 0), "red": (8, 8)}[env.indicator]
    assert 10 < sum(c == "green" for c in colours.values()) < 30


def test_observation_beam_from_start_sees_the_indicator():
    env = IMazeEnv(size=9)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (9, 1, 3)
    channel = 1 if env.indicator == "green" else 2
    assert obs[8, 0, channel] == 1 and obs[:8].sum() == 0  # row 0 is free up to the indicator


def test_occlusion_and_walls_beyond_read_as_wall():
    env = IMazeEnv(size=9)
    env.reset(seed=0)
    env.agent_pos, env.agent_dir = (0, 0), 1  # facing south into the wall below
    obs = env.step(NOOP)[0]
    assert obs[0].sum() == 0  # own cell is free
    assert (obs[1:, 0, 0] == 1).all() and obs[1:, 0, 1:].sum() == 0
    env.agent_pos, env.agent_dir = (4, 4), 3  # in the column facing north: sees up to row 0, then wall
    obs = env.step(NOOP)[0]
    assert obs[:5, 0].sum() == 0 and (obs[5:, 0, 0] == 1).all()


def test_beam_width_three_and_lateral_occlusion():
    env = IMazeEnv(size=9, beam_width=3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (9, 3, 3)
    # facing east at (0,0): the left ray is off the grid (wall), the right ray runs along row 1
    assert (obs[:, 0, 0] == 1).all()
    assert obs[0, 2, 0] == 1 and (obs[:, 2, 0] == 1).all()  # (1,0) is a wall: its whole ray reads wall
    assert obs[:, 1, 0].sum() == 0


def test_indicator_out_of_view_below_the_top_row_so_memoryless_policies_cannot_beat_half():
    """Below the top of the I, observations are identical for both colours (MiniGrid #134).

    With one ray that is every row but the first; a 3-ray beam's side rays still reach
    along the top row from row 1 of the column, so from row 2 on.
    """
    for size in (9, 15):
        for beam_width, first_blind_row in ((1, 1), (3, 2)):
            tables = imaze_tables(size, beam_width)
            for state in range(tables.obs.shape[1]):
                if (state >> 2) // size >= first_blind_row:
                    np.testing.assert_array_equal(tables.obs[0, state], tables.obs[1, state])
    # and a concrete memoryless policy: reaching a goal succeeds about half the time
    successes = []
    for seed in range(200):
        env = gym.make("MemoryEnvs/IMaze-9x9-v0")
        env.reset(seed=seed)
        plan = [FORWARD] * 4 + [RIGHT] + [FORWARD] * 8 + [RIGHT] + [FORWARD] * 4
        for action in plan:
            _, _, terminated, _, info = env.step(action)
        assert terminated
        successes.append(info["is_success"])
    assert 0.35 < np.mean(successes) < 0.65


def test_shaping_paid_once_per_central_column_cell_per_episode():
    env = gym.make("MemoryEnvs/IMaze-15x15-v0")
    env.reset(seed=0)
    rewards = []
    # walk to the column top, then down and back up and down again
    plan = [FORWARD] * 7 + [RIGHT] + [FORWARD] * 14 + [LEFT, LEFT] + [FORWARD] * 14 + [LEFT, LEFT] + [FORWARD] * 14
    for action in plan:
        rewards.append(env.step(action)[1])
    rewards = np.array(rewards)
    assert rewards.sum() == pytest.approx(0.01 * 15)
    assert set(np.round(rewards, 6)) == {0.0, 0.01}
    # a new episode pays again
    env.reset()
    total = sum(env.step(a)[1] for a in [FORWARD] * 7 + [RIGHT] + [FORWARD] * 3)
    assert total == pytest.approx(0.04)


def test_no_shaping_on_9x9():
    env = gym.make("MemoryEnvs/IMaze-9x9-v0")
    env.reset(seed=0)
    assert sum(env.step(a)[1] for a in [FORWARD] * 4 + [RIGHT] + [FORWARD] * 7) == 0.0


@pytest.mark.parametrize(
    "kwargs, name",
    [({"size": 8}, "size"), ({"size": 3}, "size"), ({"size": 9.0}, "size"), ({"size": True}, "size"),
     ({"beam_width": 2}, "beam_width"), ({"beam_width": 0}, "beam_width"),
     ({"shaping_reward": -1.0}, "shaping_reward"), ({"shaping_reward": float("nan")}, "shaping_reward"),
     ({"render_mode": "window"}, "render_mode")],
)
def test_bad_constructor_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        IMazeEnv(**kwargs)
    with pytest.raises(ValueError, match=name):
        gym.make("MemoryEnvs/IMaze-9x9-v0", **kwargs).reset()


def test_kwargs_override_registered_settings():
    env = gym.make("MemoryEnvs/IMaze-9x9-v0", size=11)
    obs, _ = env.reset(seed=0)
    assert env.unwrapped.size == 11 and obs.shape == (11, 1, 3)
    assert gym.make("MemoryEnvs/IMaze-15x15-v0").unwrapped.shaping_reward == 0.01


def test_setting_agent_pos_into_a_wall_is_rejected():
    env = IMazeEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="agent_pos"):
        env.agent_pos = (3, 3)
    with pytest.raises(ValueError, match="agent_dir"):
        env.agent_dir = 4
