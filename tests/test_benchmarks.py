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
    assert titles == ["1", "2", "3", "4", "5", "6", "7", "8", "9"]
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
    # section 9: every case, the three methods; SFW certified and lowest J
    spikes = sections[8]
    columns = spikes["columns"]
    cases = {r[0] for r in spikes["rows"]}
    assert len(cases) == 4 and len(spikes["rows"]) == 12
    for row in spikes["rows"]:
        values = dict(zip(columns, row, strict=True))
        if values["method"] == "Sliding Frank-Wolfe":
            assert values["max abs(eta) - 1"] <= 1e-6
            assert values["J excess over SFW's (relative)"] == 0
            assert values["missed"] == values["spurious"] == 0
        else:
            assert values["J excess over SFW's (relative)"] >= -1e-9


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


# ------------------------------------------- Sliding Frank-Wolfe (issue 16)
@pytest.fixture(scope="module")
def sfw(bench):
    return bench._load_sfw()


@pytest.mark.parametrize(
    "kernel, n_dims",
    [("dirichlet", 1), ("dirichlet", 2), ("gaussian", 1), ("gaussian", 3)],
)
def test_sfw_certificate_grid_matches_direct_sum(sfw, kernel, n_dims):
    # The FFT (Dirichlet) and tensor-contraction (Gaussian) grids of
    # Phi^* v, and the generic block path, equal the direct sum.
    from sklearn_meanfield import DirichletKernel, GaussianKernel

    rng = np.random.RandomState(0)
    X = rng.uniform(size=(40, n_dims))
    v = rng.standard_normal(40)
    K = DirichletKernel(5) if kernel == "dirichlet" else GaussianKernel(0.2)
    op = sfw.KernelOperator(K, X)
    points, values, shape = op.adjoint_on_grid(v)
    assert values.shape == (np.prod(shape),) == (points.shape[0],)
    idx = rng.choice(points.shape[0], min(30, points.shape[0]), replace=False)
    direct = v @ op.values(points[idx])
    np.testing.assert_allclose(values[idx], direct, atol=1e-12)

    class Plain:  # the same kernel without a fast grid path
        periodic, length_scale = K.periodic, K.length_scale
        value, gradient = K.value, K.gradient

    generic = sfw.KernelOperator(Plain(), X)
    p2, v2, _ = generic.adjoint_on_grid(v)
    np.testing.assert_allclose(v2, v @ generic.values(p2), atol=1e-12)


def test_sfw_certificate_max_finds_the_global_maximum(sfw):
    # Newton from the grid's local maxima reaches the maximum of |eta| found
    # by brute force on a grid 50x finer, and is a stationary point.
    from sklearn_meanfield import DirichletKernel
    from sklearn_meanfield.datasets import make_spikes

    X, y, _, _ = make_spikes(4, 61, cutoff=8, noise=0.05, random_state=1)
    problem = sfw.Blasso(sfw.KernelOperator(DirichletKernel(8), X), y, 1e-2)
    T, a = np.zeros((0, 1)), np.zeros(0)
    eta_max, t_star, eta = problem.certificate_max(T, a)
    fine = np.linspace(0, 1, 200_001)[:-1, None]
    v = problem.s * y / problem.alpha
    brute = np.abs(v @ problem.operator.values(fine))
    assert abs(eta) == eta_max
    assert brute.max() <= eta_max <= brute.max() * (1 + 1e-9)
    _, dPhi = problem.operator.forward(t_star[None, :])
    assert abs(v @ dPhi[:, 0, 0]) < 1e-6 * eta_max / problem.operator.length_scale


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sfw_exact_recovery_noiseless(sfw, seed):
    # Noiseless 1-D Dirichlet, spikes 2/fc apart, small alpha: SFW returns
    # the true support (positions to 1e-6, no extra spike), certified optimal
    # (max|eta| <= 1 + 1e-6, small duality gap), below the grid Lasso's J.
    from sklearn_meanfield import DirichletKernel
    from sklearn_meanfield.datasets import make_spikes
    from sklearn_meanfield.metrics import spike_recovery_scores

    X, y, T, a = make_spikes(5, 101, cutoff=10, min_separation=2.0, random_state=seed)
    problem = sfw.Blasso(sfw.KernelOperator(DirichletKernel(10), X), y, 1e-6)
    res = sfw.sliding_frank_wolfe(problem)
    assert res.amplitudes.shape == (5,) and res.n_iter == 5
    scores = spike_recovery_scores(T, a, res.positions, res.amplitudes, periodic=True)
    assert scores["n_missed"] == scores["n_spurious"] == 0
    assert scores["max_position_error"] < 1e-6
    assert scores["max_amplitude_error"] < 1e-4
    assert res.eta_max <= 1 + 1e-6
    gap, eta_max = problem.duality_gap(res.positions, res.amplitudes)
    assert eta_max <= 1 + 1e-6 and 0 <= gap <= 1e-5 * res.objective
    grid, coef, _ = sfw.grid_lasso(problem, 1 / 500)
    assert res.objective <= problem.objective(grid, coef)
    assert res.objective == problem.objective(res.positions, res.amplitudes)


def test_sfw_exact_recovery_gaussian_2d(sfw):
    from sklearn_meanfield import GaussianKernel
    from sklearn_meanfield.datasets import make_spikes
    from sklearn_meanfield.metrics import spike_recovery_scores

    X, y, T, a = make_spikes(
        3, 441, 2, kernel="gaussian", bandwidth=0.1, min_separation=3, random_state=0
    )
    problem = sfw.Blasso(sfw.KernelOperator(GaussianKernel(0.1), X), y, 1e-7)
    res = sfw.sliding_frank_wolfe(problem)
    scores = spike_recovery_scores(T, a, res.positions, res.amplitudes)
    assert res.amplitudes.shape == (3,)
    assert scores["max_position_error"] < 1e-6
    assert res.eta_max <= 1 + 1e-6
    grid, coef, _ = sfw.grid_lasso(problem, 0.05)
    assert res.objective < problem.objective(grid, coef)


def test_sfw_objective_is_the_deconvolvers(sfw):
    # Blasso.objective at the deconvolver's raw particles is the J it
    # reports (its last loss_curve_ entry) with sample weights and a scaled
    # y, and SFW on that weighted problem ends at most 1e-9 (relative) above
    # the deconvolver run to a tight duality gap.
    from sklearn_meanfield import DirichletKernel, SparseSpikeDeconvolver
    from sklearn_meanfield.datasets import make_spikes

    X, y, _, _ = make_spikes(4, 81, cutoff=8, noise=1e-2, random_state=0)
    y = 7.0 * y
    w = np.random.RandomState(0).uniform(0.5, 2.0, size=y.shape[0])
    alpha = 2e-2
    est = SparseSpikeDeconvolver(cutoff=8, alpha=alpha, tol=1e-10, max_iter=20_000)
    est.fit(X, y, sample_weight=w)
    problem = sfw.Blasso(sfw.KernelOperator(DirichletKernel(8), X), y, alpha, w)
    J_ours = problem.objective(est.particle_positions_, est.particle_weights_)
    assert J_ours == pytest.approx(est.loss_curve_[-1], rel=1e-12)
    # the certificate is the deconvolver's
    T = np.linspace(0, 1, 7)[:, None]
    v = problem.s * problem.residual(est.particle_positions_, est.particle_weights_)
    np.testing.assert_allclose(
        v @ problem.operator.values(T) / alpha,
        est.certificate(T, X, y, sample_weight=w),
        atol=1e-10,
    )
    res = sfw.sliding_frank_wolfe(problem)
    assert res.objective <= J_ours * (1 + 1e-9)
    # ... and the tightly converged deconvolver gets within 1e-7 of it
    assert J_ours <= res.objective * (1 + 1e-7)


@pytest.mark.parametrize("n_dims", [1, 2])
def test_sfw_fourier_operator(sfw, n_dims):
    # Rows Re then Im of exp(-2 i pi <k, t>), gradients by central
    # differences, the FFT grid of Phi^* v equal to the direct sum.
    rng = np.random.RandomState(0)
    fc = 5 if n_dims == 1 else 3
    axis = np.arange(-fc, fc + 1)
    K = np.stack(np.meshgrid(*[axis] * n_dims, indexing="ij"), -1).reshape(-1, n_dims)
    op = sfw.FourierOperator(K)
    T = rng.uniform(size=(4, n_dims))
    E = np.exp(-2j * np.pi * K @ T.T)
    Phi, dPhi = op.forward(T)
    np.testing.assert_allclose(Phi, np.vstack([E.real, E.imag]), atol=1e-13)
    h = 1e-6
    for k in range(n_dims):
        step = np.zeros(n_dims)
        step[k] = h
        fd = (op.values(T + step) - op.values(T - step)) / (2 * h)
        np.testing.assert_allclose(dPhi[:, :, k], fd, atol=1e-6 * np.abs(dPhi).max())
    v = rng.standard_normal(2 * K.shape[0])
    points, values, shape = op.adjoint_on_grid(v)
    assert values.shape == (np.prod(shape),) == (points.shape[0],)
    idx = rng.choice(points.shape[0], 30, replace=False)
    np.testing.assert_allclose(values[idx], v @ op.values(points[idx]), atol=1e-12)
    # the length scale is the deconvolver's for |k|_inf <= fc
    expected = np.sqrt(3) / (2 * np.pi * np.sqrt(fc * (fc + 1)))
    assert op.length_scale == pytest.approx(expected, rel=1e-12)


def test_sfw_fourier_exact_recovery_noiseless(sfw):
    from sklearn_meanfield.metrics import spike_recovery_scores

    case = sfw.fourier_case(10, 1, 5, 0.0, min_separation=2.0)
    X, y, T, a = case.make(0)
    problem = sfw.Blasso(sfw.FourierOperator(X), y, 1e-6)
    res = sfw.sliding_frank_wolfe(problem)
    scores = spike_recovery_scores(T, a, res.positions, res.amplitudes, periodic=True)
    assert res.amplitudes.shape == (5,)
    assert scores["max_position_error"] < 1e-6
    assert res.eta_max <= 1 + 1e-6


@pytest.mark.parametrize("model", ["fourier", "image"])
def test_sfw_objective_is_the_deconvolvers_new_models(sfw, model):
    # Blasso.objective at the deconvolver's raw particles is its last
    # loss_curve_ entry: complex measurements with sample weights (J = (1/2)
    # sum s_j |r_j|^2, s summing to one over the coefficients), and an image
    # with positive amplitudes and an eliminated background. SFW ends within
    # 1e-9 of it, certified for its constraint (eta <= 1 when positive),
    # with the best background for its spikes.
    from sklearn_meanfield import SparseSpikeDeconvolver

    if model == "fourier":
        case = sfw.fourier_case(6, 1, 3, 0.05, min_separation=2.0)
        X, y, _, _ = case.make(1)
        y = 5.0 * y
        w = np.random.RandomState(0).uniform(0.5, 2.0, size=y.shape[0])
        alpha = 5.0 * case.alpha
    else:
        case = sfw.image_case(16, 2, 1.2, 1000.0, 10.0)
        X, y, _, _ = case.make(1)
        w, alpha = None, case.alpha
    est = SparseSpikeDeconvolver(alpha=alpha, tol=1e-10, **case.estimator_params)
    est.fit(X, y, sample_weight=w)
    problem = sfw.Blasso(
        case.operator(X),
        y,
        alpha,
        w,
        positive=case.positive,
        fit_intercept=case.fit_intercept,
    )
    J_ours = problem.objective(est.particle_positions_, est.particle_weights_)
    assert J_ours == pytest.approx(est.loss_curve_[-1], rel=1e-12)
    res = sfw.sliding_frank_wolfe(problem)
    assert res.eta_max <= 1 + 1e-6
    assert abs(res.objective - J_ours) <= 1e-9 * J_ours
    if model == "image":
        # the background is the mean residual of the spikes (the deconvolver's
        # intercept_ comes after its refit: compare at its raw particles)
        assert np.all(res.amplitudes > 0)
        kernel = problem.operator.base.kernel
        for T, a, b in [
            (res.positions, res.amplitudes, res.intercept),
            (
                est.particle_positions_,
                est.particle_weights_,
                problem.background(est.particle_positions_, est.particle_weights_),
            ),
        ]:
            residual = y - kernel.value(X[:, None, :] - T[None, :, :]) @ a
            assert b == pytest.approx(residual.mean(), rel=1e-12)
        assert res.intercept == pytest.approx(
            problem.background(est.particle_positions_, est.particle_weights_),
            rel=1e-6,
        )


def test_spikes_class_cases_and_checks():
    # benchmarks/spikes_class.py: every problem family makes its data (the
    # spikes fit in the domain at their separation), 1-D families have the
    # 1-D target, the others the 2-D/3-D one; one problem runs through the
    # timing and the checks of section 9 (untimed assertions: a ratio is
    # measured, and the deconvolver passes the checks there).
    path = RUN_PY.with_name("spikes_class.py")
    spec = importlib.util.spec_from_file_location("benchmarks_spikes_class", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cases = module.class_cases()
    assert len(cases) >= 20
    for target, case in cases:
        T = case.make(0)[2]
        assert T.shape[1] == case.n_dims
        assert target == (0.5 if case.n_dims == 1 else 0.25)
    ratios, failed = module.run(cases[0][1], n_seeds=1, repeats=1)
    assert len(ratios) == 1 and ratios[0] > 0
    assert failed == 0
