"""``python -m agents.bench roles``: each role's unit of work timed on the real components."""

import pytest

from agents.bench.roles import bench_roles, format_roles_table
from runtime_helpers import tiny_cli_args


@pytest.mark.parametrize("agent", ["ald", "lstm"])
def test_roles_of_a_tiny_run_are_timed(tmp_path, agent):
    result = bench_roles(agent, 4, 1, tiny_cli_args(tmp_path, "roles"))
    assert result.learner_steps == 3 and result.rollout_ms > 0 and result.learner_ms > 0
    assert (result.envs_per_actor, result.batch_size, result.unroll_length) == (4, 8, 10)
    if agent == "ald":  # runner, distill: the roles ALD has and the LSTM baseline has not
        assert result.runner_ms > 0 and result.distill_ms > 0
        expected = 2 * result.rollout_ms + result.runner_ms + result.learner_ms + 2 * result.distill_ms
    else:
        assert result.runner_ms is None and result.distill_ms is None
        expected = 2 * result.rollout_ms + result.learner_ms
    assert result.per_learner_step_ms == pytest.approx(expected)
    assert result.agent in format_roles_table([result])
    assert not list(tmp_path.iterdir())  # it writes no run
