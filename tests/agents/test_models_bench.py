"""``python -m agents.bench models``: output format only (timings belong to the bench itself)."""

import json

import pytest
import torch

from agents import bench


def test_models_json_output(capsys):
    threads = torch.get_num_threads()
    try:
        argv = ["models", "--json", "--seconds", "0.05", "--threads", "1", "--models", "lstm-32", "gtrxl-2"]
        assert bench.main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows] == ["lstm-32", "gtrxl-2"]
    for r in rows:
        assert r["acting_steps_per_s"] > 0 and r["learner_steps_per_s"] > 0 and r["acting_us_per_step"] > 0
        assert r["threads"] == 1 and r["env_id"] == "MemoryEnvs/IMaze-9x9-v0"
    assert rows[0]["acting_path"] == "numpy LSTM" and "KV cache" in rows[1]["acting_path"]


def test_table_formatting():
    row = bench.ModelBench("lstm-32", "MemoryEnvs/IMaze-9x9-v0", "numpy LSTM", 25.0, 40000.0, 1, 90000.0, 14.2, 2)
    gtrxl = bench.ModelBench(
        "gtrxl-2", "MemoryEnvs/IMaze-9x9-v0", "torch step, KV cache", 1000.0, 1000.0, 1, 5000.0, 256.0, 2
    )
    table = bench.format_table([row, gtrxl])
    assert "lstm-32" in table and "40,000" in table and "ratio lstm-32 / gtrxl-2: 40.0x" in table


BAD_ARGV = [[], ["models", "--seconds", "0"], ["models", "--threads", "0"], ["models", "--models", "mlp"]]


@pytest.mark.parametrize("argv", BAD_ARGV)
def test_bad_arguments_exit(argv):
    with pytest.raises(SystemExit):
        bench.main(argv)
