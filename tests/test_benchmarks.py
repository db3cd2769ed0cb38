"""The benchmark script runs end to end and produces a well-formed table.

Only the shape of the output is checked: timings are never asserted (the
machines are shared and timed tests are flaky).
"""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

RUN_PY = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"

#: column headers whose numbers must be positive (times, rates, ratios, sizes)
POSITIVE = ("(ms)", "(s)", "GFLOP/s", "ratio", " / ", "MiB", "GiB", "arrays")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmarks_run", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_run(bench):
    return bench.run_all(bench.CONFIGS["tiny"], verbose=False)


def _tables(section):
    yield section["columns"], section["rows"]
    yield from section.get("more", [])


def test_sections_and_numbers(tiny_run):
    env, sections = tiny_run
    titles = [s["title"].split(".")[0] for s in sections]
    assert titles == ["1", "2", "3", "4", "5", "6", "7", "8"]
    assert env["numpy"] == np.__version__ and env["cpu"] and env["blas"]
    n_checked = 0
    for section in sections:
        assert section["targets"]
        for columns, rows in _tables(section):
            assert rows
            for row in rows:
                assert len(row) == len(columns)
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, str | bool):
                        continue
                    value = float(value)
                    assert math.isfinite(value), (section["title"], column)
                    if any(key in column for key in POSITIVE):
                        assert value > 0, (section["title"], column, value)
                        n_checked += 1
    # sections 1, 2, 3 and 5 always measure (4 may be "not available")
    assert n_checked >= 30
    step = sections[0]["rows"]
    assert [r[0] for r in step] == ["float64", "float32"]
    assert {r[0] for r in sections[1]["rows"]} == {
        "MeanFieldRegressor (full batch)",
        "MLPRegressor sgd, batch_size=n",
        "MLPRegressor adam, batch_size=200",
    }
    assert [r[0] for r in sections[4]["rows"]] == ["base", "2n", "2m", "2d"]
    assert [r[0] for r in sections[5]["rows"]] == [
        "MeanFieldRegressor (defaults: adam, batches of 256)",
        "MLPRegressor adam (defaults)",
    ]
    assert [r[0] for r in sections[6]["rows"]] == [
        "MeanFieldClassifier (defaults)",
        "MLPClassifier (defaults)",
    ]
    assert [r[0] for r in sections[7]["rows"]] == [
        "path, warm starts",
        "path, every alpha from scratch",
    ]


def test_markdown_and_main(bench, tiny_run, tmp_path, monkeypatch):
    env, sections = tiny_run
    text = bench.to_markdown(env, sections, "tiny", 1.0, "python benchmarks/run.py")
    for heading in [
        "## Targets",
        "## 1. Step efficiency",
        "## 2. Time per epoch",
        "## 3. Time to held-out R^2",
        "## 4. Spikes against a grid Lasso",
        "## 5. Scaling",
    ]:
        assert heading in text
    assert "| dtype | step (ms) | step GFLOP/s |" in text
    # main() with the tiny sizes writes the same kind of file
    monkeypatch.setitem(bench.CONFIGS, "quick", bench.CONFIGS["tiny"])
    out = tmp_path / "RESULTS.md"
    assert bench.main(["--quick", "--threads", "1", "--output", str(out)]) == 0
    written = out.read_text()
    assert "--quick --threads 1" in written and "## 1. Step efficiency" in written


def test_lasso_spikes_merges_adjacent_coefficients(bench):
    grid = np.arange(10) / 10
    coef = np.zeros(10)
    coef[[9, 0]] = [1.0, 3.0]  # one spike across the wrap-around, at 0.975
    coef[[4, 5]] = [-1.0, -1.0]  # one negative spike at 0.45
    coef[7] = 1e-3  # too light: pruned
    positions, amplitudes = bench._lasso_spikes(None, grid, coef)
    order = np.argsort(positions[:, 0])
    np.testing.assert_allclose(positions[order, 0], [0.45, 0.975])
    np.testing.assert_allclose(amplitudes[order], [-2.0, 4.0])
