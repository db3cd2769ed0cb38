"""The Quick start demo prints a table with both models and their scores."""

from sklearn_meanfield.__main__ import main


def test_demo_table(capsys):
    main(["--n-samples", "600", "--n-features", "4", "--n-teacher", "2"])
    out = capsys.readouterr().out
    rows = {
        line.split("(")[0]: line.split()
        for line in out.splitlines()
        if line.startswith(("MeanFieldRegressor", "MLPRegressor"))
    }
    assert set(rows) == {"MeanFieldRegressor", "MLPRegressor"}
    r2_meanfield = float(rows["MeanFieldRegressor"][-3])
    r2_mlp = float(rows["MLPRegressor"][-3])
    assert r2_meanfield > 0.99
    assert -1 < r2_mlp <= 1
    assert int(rows["MeanFieldRegressor"][-1]) > 0
