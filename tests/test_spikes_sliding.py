"""The default spikes solver (issue 16): flow, sliding by Newton's method,
certificate, insertion (sklearn_meanfield._sliding)."""

import warnings

import numpy as np
import pytest
from scipy.optimize import least_squares, minimize
from sklearn.exceptions import ConvergenceWarning

from sklearn_meanfield import (
    DirichletKernel,
    FourierOperator,
    GaussianKernel,
    IntegratedGaussianKernel,
    SparseSpikeDeconvolver,
)
from sklearn_meanfield._operators import make_spike_unit
from sklearn_meanfield._sliding import (
    ANALYTIC,
    CertificateGrid,
    _gather,
    _growing,
    _merge,
    _newton_where_concave,
    _sample_tensor,
    _subset_objective,
    certificate_search,
    flow_and_slide,
    refit,
    slide,
)
from sklearn_meanfield._sliding import _objective as sliding_objective
from sklearn_meanfield.datasets import make_spikes
from sklearn_meanfield.metrics import spike_recovery_scores


def _problem(kernel, X, y, alpha):
    """Unit, prepared rows, normalised y, weights and lam, as solve_blasso."""
    s = np.full(X.shape[0], 1 / X.shape[0])
    unit = make_spike_unit(kernel, X, s)
    Xp, yr, sr = unit.prepare(X), unit.stack(y), unit.stack_weights(s)
    c = float(np.sqrt(sr @ yr**2))
    return unit, Xp, yr / c, sr, alpha / c


def _objective(unit, Xp, y, s, lam, T, a):
    r = y - unit.forward(Xp, T)[0] @ a
    return 0.5 * float((s * r) @ r) + lam * float(np.abs(a).sum())


def _J(est, X, y):
    """The BLASSO objective at the estimator's raw particles."""
    kernel = est._operator(X)
    s = np.full(X.shape[0], 1 / X.shape[0])
    unit = make_spike_unit(kernel, X, s)
    Xp = unit.prepare(X)
    r = unit.stack(y) - unit.forward(Xp, est.particle_positions_)[0] @ (
        est.particle_weights_
    )
    sr = unit.stack_weights(s) * r
    return 0.5 * float(sr @ r) + est.alpha * float(np.abs(est.particle_weights_).sum())


# ------------------------------------------------------ iteration budget
def test_iterations_bounded_on_an_easy_case():
    # 5 signed spikes 2/fc apart, 101 samples, noise 1e-3: the flow takes 3
    # steps and Newton's method 3 (measured: 6; the flow alone takes 250
    # steps to its duality gap). A count, not a time: a regression in the
    # flow's steps, the sliding or the certificate shows here.
    X, y, T, a = make_spikes(
        5, 101, cutoff=10, min_separation=2.0, noise=1e-3, random_state=0
    )
    est = SparseSpikeDeconvolver(cutoff=10, alpha=1e-3).fit(X, y)
    assert est.n_iter_ <= 10
    assert len(est.loss_curve_) == est.n_iter_
    flow = SparseSpikeDeconvolver(cutoff=10, alpha=1e-3, polish=False).fit(X, y)
    assert est.n_iter_ < flow.n_iter_ / 10
    sc = spike_recovery_scores(T, a, est.positions_, est.weights_, periodic=True)
    assert sc["n_missed"] == 0 and sc["n_spurious"] == 0
    assert sc["max_position_error"] < 1e-4


# ------------------------------------------- certified and at least as good
@pytest.mark.parametrize(
    "kernel, make, alpha",
    [
        (
            DirichletKernel(10),
            lambda: make_spikes(5, 101, cutoff=10, noise=1e-2, random_state=1),
            1e-3,
        ),
        (
            GaussianKernel(0.1),
            lambda: make_spikes(
                3, 225, 2, kernel="gaussian", bandwidth=0.1, noise=1e-3, random_state=2
            ),
            1e-3,
        ),
    ],
)
def test_polished_solution_is_certified_and_no_worse_than_the_flow(kernel, make, alpha):
    X, y, _, _ = make()
    est = SparseSpikeDeconvolver(kernel, alpha=alpha).fit(X, y)
    flow = SparseSpikeDeconvolver(kernel, alpha=alpha, polish=False, tol=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        flow.fit(X, y)
    # certified: max|eta| <= 1 + tol, on the solver's grid and, independently,
    # on a grid 4 times finer than it
    assert est.certificate_max_ <= 1 + 1e-6
    assert est.dual_gap_ <= 1e-6 * est.loss_curve_[-1]
    d = X.shape[1]
    lo, hi = (0.0, 1.0) if kernel.periodic else (X.min() - 0.2, X.max() + 0.2)
    q = int(np.ceil((hi - lo) / (kernel.length_scale / 8))) if d == 1 else 120
    axes = [np.linspace(lo, hi, q, endpoint=not kernel.periodic)] * d
    fine = np.column_stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")])
    assert np.abs(est.certificate(fine, X, y)).max() <= 1 + 1e-6
    # at least as good as the flow run to a tighter gap
    assert _J(est, X, y) <= _J(flow, X, y) * (1 + 1e-12)


def test_fourier_measurements_polished():
    # Fourier coefficients |k| <= 8 of 4 signed spikes: certified, and the
    # positions of the noiseless data within 1e-6.
    T = np.array([[0.1], [0.35], [0.6], [0.82]])
    a = np.array([1.0, -0.8, 1.3, 0.7])
    k = np.arange(-8, 9)[:, None].astype(float)
    y = np.exp(-2j * np.pi * k @ T.T) @ a
    est = SparseSpikeDeconvolver("fourier", alpha=1e-6).fit(k, y)
    assert est.certificate_max_ <= 1 + 1e-6
    sc = spike_recovery_scores(T, a, est.positions_, est.weights_, periodic=True)
    assert sc["n_missed"] == 0 and sc["n_spurious"] == 0
    assert sc["max_position_error"] < 1e-6


# --------------------------------------------------------------- pieces
def test_slide_reaches_a_stationary_point():
    # From the true spikes perturbed by a tenth of a length scale, Newton's
    # method ends where eta = sign(a_i) and grad eta = 0 at every spike.
    X, y, T, a = make_spikes(4, 81, cutoff=8, noise=1e-2, random_state=3)
    unit, Xp, yn, s, lam = _problem(DirichletKernel(8), X, y, 1e-3)
    rng = np.random.RandomState(0)
    T0 = unit.project(T + 0.1 * unit.length_scale * rng.standard_normal(T.shape))
    J0 = _objective(unit, Xp, yn, s, lam, T0, a / np.sqrt(np.mean(y**2)))
    Ts, As, info = slide(unit, Xp, yn, s, lam, T0, a / np.sqrt(np.mean(y**2)))
    assert As.size == 4 and info["n_iter"] <= 10
    Phi, dPhi = unit.forward(Xp, Ts)
    sr = s * (yn - Phi @ As)
    eta, grad = sr @ Phi / lam, np.einsum("j,jik->ik", sr, dPhi) / lam
    np.testing.assert_allclose(eta, np.sign(As), atol=1e-8)
    assert np.abs(grad).max() * unit.length_scale < 1e-8
    assert info["objective"] < J0
    # (the residual at the spikes returned, for the certificate)
    np.testing.assert_allclose(info["residual"], yn - Phi @ As, atol=1e-13)


@pytest.mark.parametrize(
    "kernel, X",
    [
        (DirichletKernel(4), np.random.RandomState(0).uniform(size=(40, 2))),
        (GaussianKernel(0.2), np.random.RandomState(1).uniform(size=(50, 3))),
        (FourierOperator(), np.arange(-6, 7)[:, None].astype(float)),
    ],
)
def test_certificate_grid_contraction_equals_the_operator(kernel, X):
    s = np.full(X.shape[0], 1 / X.shape[0])
    unit = make_spike_unit(kernel, X, s)
    Xp = unit.prepare(X)
    grid = CertificateGrid(unit, Xp)
    assert grid.factors is not None and grid.shape is not None
    # (distinct sample coordinates: the contraction is over the samples)
    assert grid.tensor is None
    v = np.random.RandomState(2).standard_normal(Xp.shape[0])
    np.testing.assert_allclose(
        grid.values(v), v @ unit.pairwise(Xp, grid.points)[0], atol=1e-12
    )


def _mesh(*axes):
    return np.column_stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")])


@pytest.mark.parametrize(
    "kernel, X",
    [
        (GaussianKernel(0.1), _mesh(*[np.linspace(0, 1, 9)] * 3)),
        (DirichletKernel(3), _mesh(np.arange(12) / 12, np.arange(10) / 10)),
        # an image, one pixel missing and one measured twice
        (
            IntegratedGaussianKernel(1.2, 1.0),
            np.vstack([_mesh(np.arange(16.0), np.arange(12.0))[1:], [[3.0, 4.0]]]),
        ),
        (FourierOperator(), _mesh(np.arange(-4, 5), np.arange(-4, 5)).astype(float)),
    ],
)
def test_certificate_grid_over_distinct_sample_coordinates(kernel, X):
    # samples on a grid: the contraction runs over the distinct coordinates
    s = np.full(X.shape[0], 1 / X.shape[0])
    unit = make_spike_unit(kernel, X, s)
    Xp = unit.prepare(X)
    grid = CertificateGrid(unit, Xp)
    assert grid.tensor is not None
    assert grid.tensor[3] < X.shape[0] * grid.points.shape[0]
    v = np.random.RandomState(3).standard_normal(Xp.shape[0])
    np.testing.assert_allclose(
        grid.values(v), v @ unit.pairwise(Xp, grid.points)[0], atol=1e-12
    )


def test_sample_tensor_needs_factors_of_one_coordinate():
    X = _mesh(np.linspace(0, 1, 8), np.linspace(0, 1, 8))
    axes = [np.linspace(0, 1, 5)] * 2

    def factors(X, axes):
        return [np.exp(-np.square(X[:, k, None] - axes[k])) for k in range(2)]

    def with_gain(X, axes):
        # a factor that also depends on the other coordinate
        F = factors(X, axes)
        return [F[0] * (1 + X[:, 1, None]), F[1]]

    F = factors(X, axes)
    for by_coordinate in (False, True):
        tensor, G = _sample_tensor(X, factors, axes, by_coordinate)
        index, p, Gt, _ = tensor
        assert p == (8, 8)
        np.testing.assert_array_equal(Gt[0][index // 8], F[0])
        np.testing.assert_array_equal(Gt[1][index % 8], F[1])
    tensor, G = _sample_tensor(X, with_gain, axes)
    assert tensor is None
    np.testing.assert_array_equal(G[0], with_gain(X, axes)[0])


def test_certificate_search_finds_the_maximum():
    # max_t |c(t)| against a grid 50 times finer than the certificate grid
    X, y, _, _ = make_spikes(
        4, 61, cutoff=6, min_separation=1.0, noise=0.05, random_state=4
    )
    unit, Xp, yn, s, _ = _problem(DirichletKernel(6), X, y, 1e-3)
    v = s * yn
    best, t, c = certificate_search(unit, Xp, v, CertificateGrid(unit, Xp))
    fine = np.linspace(0, 1, 20_001)[:-1, None]
    values = np.abs(v @ unit.pairwise(Xp, fine)[0])
    # then a grid of step 1e-9 around the best point of the fine grid
    t0 = fine[np.argmax(values), 0]
    local = (t0 + np.linspace(-5e-5, 5e-5, 100_001))[:, None] % 1
    brute = max(values.max(), np.abs(v @ unit.pairwise(Xp, local)[0]).max())
    # (Newton's method stops within 1e-4 length scales of the maximum: the
    # value within 1e-8 of it)
    assert brute * (1 - 1e-8) <= best <= brute * (1 + 1e-12)
    assert abs(c) == best
    assert abs(v @ unit.pairwise(Xp, t[None])[0][:, 0]) == pytest.approx(
        best, rel=1e-14
    )


def test_refit_equals_least_squares():
    X, y, T, a = make_spikes(
        3, 144, 2, kernel="gaussian", bandwidth=0.1, noise=1e-2, random_state=5
    )
    unit, Xp, yn, s, _ = _problem(GaussianKernel(0.1), X, y, 1e-3)
    an = a / np.sqrt(np.mean(y**2))
    T0 = T + 0.05 * unit.length_scale
    Tr, ar, index = refit(unit, Xp, yn, s, T0, an)
    np.testing.assert_array_equal(index, np.arange(3))
    w = np.sqrt(s)

    def residual(z):
        return w * (unit.forward(Xp, z[3:].reshape(3, 2))[0] @ z[:3] - yn)

    ref = least_squares(
        residual, np.concatenate([an, T0.ravel()]), xtol=1e-15, ftol=1e-15, gtol=1e-15
    )
    np.testing.assert_allclose(Tr.ravel(), ref.x[3:], atol=1e-9)
    np.testing.assert_allclose(ar, ref.x[:3], rtol=1e-8)


def test_missing_spikes_are_inserted():
    # Particles at 2 positions only (4 of each sign), far from most of the 4
    # spikes: the flow cannot gather at spikes it does not see, the
    # certificate does and the spikes are inserted, the result certified.
    X, y, T, a = make_spikes(4, 101, cutoff=10, noise=1e-3, random_state=6)
    unit, Xp, yn, s, lam = _problem(DirichletKernel(10), X, y, 1e-3)
    grid = CertificateGrid(unit, Xp)
    P = np.repeat([[0.0], [0.5]], 4, axis=0)
    A = np.tile([1e-4, 1e-4, -1e-4, -1e-4], 2)
    out = flow_and_slide(
        unit,
        Xp,
        yn,
        s,
        lam,
        P,
        A,
        grid=grid,
        max_iter=200,
        tol=1e-6,
        weight_step=10.0,
        position_step=30.0,
        merge_radius=None,
    )
    assert out.certified and out.n_inserted >= 1 and out.eta_max <= 1 + 1e-6
    nz = out.amplitudes != 0
    sc = spike_recovery_scores(
        T, a, out.positions[nz], out.amplitudes[nz], periodic=True
    )
    assert nz.sum() == 4 and sc["n_missed"] == 0
    assert sc["max_position_error"] < 1e-3


def test_record_and_warm_start_with_polish():
    X, y, _, _ = make_spikes(5, 101, cutoff=10, noise=1e-3, random_state=7)
    est = SparseSpikeDeconvolver(cutoff=10, record_every=1, warm_start=True)
    est.fit(X, y)
    traj = est.trajectory_
    m = est.particle_positions_.shape[0]
    assert traj["positions"].shape[1:] == (m, 1)
    assert traj["iterations"][-1] == est.n_iter_
    np.testing.assert_array_equal(traj["positions"][-1], est.particle_positions_)
    np.testing.assert_allclose(traj["weights"][-1, :, 0], est.particle_weights_)
    # the polished spikes sit on particles, the others carry no mass
    assert np.count_nonzero(est.particle_weights_) == est.n_spikes_
    # a warm start from the solution is certified at once, with Newton steps
    # only
    first = est.n_iter_
    est.fit(X, y)
    assert est.n_iter_ <= first and est.certificate_max_ <= 1 + 1e-6
    # a fit without a record leaves none (the last one described other
    # particles)
    est.set_params(record_every=None, warm_start=False).fit(X[:60], y[:60])
    assert not hasattr(est, "trajectory_")


def test_uncertified_end_warns():
    X, y, _, _ = make_spikes(5, 101, cutoff=10, noise=1e-3, random_state=0)
    with pytest.warns(ConvergenceWarning, match="duality gap"):
        SparseSpikeDeconvolver(cutoff=10, max_iter=2).fit(X, y)


# ------------------------------------------------- robustness of the polish
@pytest.mark.parametrize("seed", [0, 1])
def test_uncertified_run_returns_its_best_measure(seed):
    # 7 spikes and 3 particles per sign (6 slots): the polish cannot insert
    # enough spikes and the flow resumes from its own (worse) particles. The
    # fit
    # warns, and what it returns is the lowest J it reached (the polished
    # spikes), the loss curve ending there.
    X, y, _, _ = make_spikes(7, 101, cutoff=10, min_separation=1.2, random_state=seed)
    est = SparseSpikeDeconvolver(cutoff=10, n_particles=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match="may not be the BLASSO solution"):
        est.fit(X, y)
    J = _J(est, X, y)
    assert J == pytest.approx(min(est.loss_curve_), rel=1e-10)
    assert est.loss_curve_[-1] == pytest.approx(J, rel=1e-10)
    # (the flow's own particles are far worse)
    assert J < 0.5 * max(est.loss_curve_[3:])


def _pixels(n):
    g = np.arange(n, dtype=float)
    return np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)


def test_positions_held_at_the_box_bound():
    # A pixel image covers the box [-0.5, 11.5]^2; a source just outside it
    # (and one inside): the BLASSO spike of the outer source sits on the
    # bound, where the gradient pushes it out. Newton's method must hold
    # that coordinate (projected step) and still converge: certified,
    # no warning, the spike exactly on the bound.
    X = _pixels(12)
    kernel = IntegratedGaussianKernel(1.0, 1.0)
    T = np.array([[-1.2, 5.3], [7.4, 6.1]])
    y = kernel.value(X[:, None] - T[None]) @ np.array([300.0, 200.0]) + 2.0
    est = SparseSpikeDeconvolver(kernel=kernel, alpha=1e-3, positive=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.set_params(fit_intercept=True).fit(X, y)
    assert est.certificate_max_ <= 1 + 1e-6
    on_bound = np.isclose(est.positions_[:, 0], -0.5, atol=1e-9)
    assert on_bound.sum() == 1
    inner = est.positions_[~on_bound]
    assert np.min(np.abs(inner - T[1]).max(axis=1)) <= 1e-3


@pytest.mark.parametrize("seed", [0, 1])
def test_noisy_image_at_small_alpha_is_certified(seed):
    # Poisson counts at alpha a few hundred times below alpha_max (the end
    # of a cross-validation path): the solution has tens of spikes, several
    # on the image's border. The polish must still certify it (it used to
    # stall on a border spike and fall back to the flow, 2000 iterations).
    rng = np.random.RandomState(seed)
    X = _pixels(20)
    kernel = IntegratedGaussianKernel(1.2, 1.0)
    T = rng.uniform(2, 17, (3, 2))
    y = rng.poisson(kernel.value(X[:, None] - T[None]) @ np.full(3, 800.0) + 10)
    est = SparseSpikeDeconvolver(
        kernel=kernel, alpha=1e-3, positive=True, fit_intercept=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X, y.astype(float))
    assert est.certificate_max_ <= 1 + 1e-6
    assert est.n_spikes_ >= 6  # noise spikes: the regime of the test
    assert est.n_iter_ < 1000


@pytest.mark.parametrize("case", ["many spikes", "ridge"])
def test_certificate_max_is_the_maximum_on_a_fine_grid(case):
    # max|eta| reported for a certified fit is the maximum of |eta| on a
    # grid 20 times finer than the pixels. "many spikes": tens of spikes of noise
    # at alpha = alpha_max / 100, and a violation of 1.03 between them that
    # the search missed when its 16 starts were all next to spikes;
    # "ridge": eta above 1 (1.0014) on a ridge 0.6 length scales from a
    # spike, once taken for that spike's peak. Both fits reported max|eta|
    # = 1 and a gap of 1e-9, where a spike added at the violation lowers J.
    g = np.arange(12) + 0.5
    X = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    if case == "many spikes":
        rng = np.random.default_rng(29)
        n = int(rng.integers(1, 6))
        rng.random(2), rng.choice(3)  # (the draws of the sweep that found it)
        A = rng.uniform(20, 100, n) * rng.choice([-1, 1], n)
        kernel, params, fraction = GaussianKernel(1.0), {}, 0.01
    else:
        rng = np.random.default_rng(693)
        n, A = 5, None
        kernel, params = IntegratedGaussianKernel(1.0, 1.0), {"positive": True}
        fraction = 0.5
    T = rng.uniform(1, 11, (n, 2))
    if A is None:
        A = rng.uniform(20, 100, n)
    y = kernel.value(X[:, None] - T[None]) @ A + 3 * rng.standard_normal(144)
    alpha_max = SparseSpikeDeconvolver(kernel, alpha=1e9, **params).fit(X, y)
    est = SparseSpikeDeconvolver(
        kernel, alpha=fraction * alpha_max.alpha_max_, **params
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X, y)
    assert est.certificate_max_ <= 1 + 1e-6
    axis = np.linspace(0, 12, 241)
    fine = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    eta = est.certificate(fine, X, y)
    top = eta.max() if params else np.abs(eta).max()
    assert top <= est.certificate_max_ + 1e-6


@pytest.mark.parametrize("centred", [False, True])
def test_gaussian_contracted_derivatives_equal_the_operator(centred):
    # c, grad c and Hess c of c(t) = sum_j v_j K(x_j - t) through the
    # (centred, rescaled) unit: against the operator's values and gradients,
    # and central differences of its exact gradient
    rng = np.random.RandomState(7)
    X = rng.uniform(size=(60, 3))
    s = np.full(60, 1 / 60)
    unit = make_spike_unit(GaussianKernel(0.2), X, s).rescaled(3.0)
    if centred:
        unit = unit.centred(s)
    assert unit.contracts_derivatives
    Xp, v, T = unit.prepare(X), rng.standard_normal(60), rng.uniform(size=(4, 3))
    c, g, H = unit.contract_derivatives(Xp, T, v)
    A, dA = unit.pairwise(Xp, T)
    np.testing.assert_allclose(c, v @ A, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g, np.einsum("j,jik->ik", v, dA), rtol=1e-10, atol=1e-10)
    h = 1e-5
    for e in range(3):
        step = np.zeros(3)
        step[e] = h
        g_plus = np.einsum("j,jik->ik", v, unit.pairwise(Xp, T + step)[1])
        g_minus = np.einsum("j,jik->ik", v, unit.pairwise(Xp, T - step)[1])
        np.testing.assert_allclose(
            H[:, :, e], (g_plus - g_minus) / (2 * h), rtol=1e-6, atol=1e-6
        )
    np.testing.assert_array_equal(H, H.transpose(0, 2, 1))


@pytest.mark.parametrize("n_dims", [1, 2])
def test_fourier_contracted_derivatives_equal_the_operator(n_dims):
    # the same for Fourier coefficients (stacked real and imaginary rows,
    # rescaled unit): analytic, against the operator and central differences
    rng = np.random.RandomState(3)
    F = rng.randint(-5, 6, size=(25, n_dims)).astype(float)
    s = np.full(25, 1 / 25)
    unit = make_spike_unit(FourierOperator(), F, s).rescaled(2.0)
    assert unit.contracts_derivatives
    Xp, T = unit.prepare(F), rng.uniform(size=(3, n_dims))
    v = rng.standard_normal(Xp.shape[0])
    c, g, H = unit.contract_derivatives(Xp, T, v)
    A, dA = unit.pairwise(Xp, T)
    np.testing.assert_allclose(c, v @ A, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g, np.einsum("j,jik->ik", v, dA), rtol=1e-10, atol=1e-10)
    h = 1e-6
    for e in range(n_dims):
        step = np.zeros(n_dims)
        step[e] = h
        g_plus = np.einsum("j,jik->ik", v, unit.pairwise(Xp, T + step)[1])
        g_minus = np.einsum("j,jik->ik", v, unit.pairwise(Xp, T - step)[1])
        np.testing.assert_allclose(
            H[:, :, e], (g_plus - g_minus) / (2 * h), rtol=1e-6, atol=1e-5
        )
    np.testing.assert_allclose(H, H.transpose(0, 2, 1), rtol=1e-13, atol=1e-13)
    # rows in another order (not [Re; Im] halves): the same sums
    perm = rng.permutation(Xp.shape[0])
    shuffled = FourierOperator().stacked_contract_derivatives(
        Xp[perm, :-1], Xp[perm, -1] > 0, T, v[perm]
    )
    for got, want in zip(shuffled, (c, g, H), strict=True):
        np.testing.assert_allclose(2.0 * got, want, rtol=1e-10, atol=1e-10)


# certificate grids on a torus (2-D Dirichlet) and a box (3-D Gaussian)
_GRID_CASES = pytest.mark.parametrize(
    "kernel, X",
    [
        (DirichletKernel(3), _mesh(np.arange(9) / 9, np.arange(8) / 8)),
        (GaussianKernel(0.15), _mesh(*[np.linspace(0, 1, 6)] * 3)),
    ],
)


@_GRID_CASES
def test_grid_starts_are_the_local_maxima_above_the_floor(kernel, X):
    # against scipy's maximum filter (wrapped on the torus, the border
    # repeated on a box), on values with many local maxima and ties
    from scipy.ndimage import maximum_filter

    s = np.full(X.shape[0], 1 / X.shape[0])
    unit = make_spike_unit(kernel, X, s)
    grid = CertificateGrid(unit, unit.prepare(X))
    rng = np.random.RandomState(8)
    values = np.round(rng.standard_normal(grid.points.shape[0]), 1)
    absval = np.abs(values).reshape(grid.shape)
    mode = "wrap" if unit.periodic else "nearest"
    local = np.flatnonzero(absval == maximum_filter(absval, size=3, mode=mode))
    for floor in (0.0, 1.0):
        expected = local[np.abs(values[local]) >= floor]
        expected = expected[np.argsort(-np.abs(values[expected]), kind="stable")]
        np.testing.assert_array_equal(grid.starts(values, 10, floor), expected[:10])


@_GRID_CASES
def test_refined_starts_are_the_maxima_of_quadratics(kernel, X):
    # values of two concave quadratics (one negative), with cross terms:
    # the refined starts are their maxima (within the cell of the grid
    # maximum), exactly; a start at the border of a box is left there
    s = np.full(X.shape[0], 1 / X.shape[0])
    unit = make_spike_unit(kernel, X, s)
    grid = CertificateGrid(unit, unit.prepare(X))
    P, d = grid.points, X.shape[1]
    rng = np.random.RandomState(d)
    centres = P[[P.shape[0] // 3, 2 * P.shape[0] // 3]] + 0.3 * grid._spacing * (
        rng.uniform(-1, 1, size=(2, d))
    )
    M = rng.standard_normal((d, d))
    B = M @ M.T + 0.5 * np.eye(d)
    B /= np.linalg.eigvalsh(B)[-1]
    # (in cells: q <= |u|^2, below 20 on the 3^d neighbourhood of a peak)
    D = [unit.differences(P, c[None])[:, 0] / grid._spacing for c in centres]
    q = [np.einsum("ik,kl,il->i", Dk, B, Dk) for Dk in D]
    near = np.argmin([np.einsum("ik,ik->i", Dk, Dk) for Dk in D], axis=0)
    values = np.where(
        near == 0, np.maximum(20.0 - q[0], 0.0), -np.maximum(16.0 - q[1], 0.0)
    )
    idx = grid.starts(values, 2, 10.0)
    T = grid.refined(values, idx)
    assert idx.size == 2
    found = T[np.argsort(np.abs(values[idx]))[::-1]]
    np.testing.assert_allclose(found, centres, atol=1e-10)
    if not unit.periodic:
        corner = np.zeros(P.shape[0])
        corner[0] = 1.0
        np.testing.assert_array_equal(grid.refined(corner, np.array([0])), P[[0]])


def test_gaussian_kept_sample_quantities_follow_the_array():
    # the samples' part of the exponent is kept for a read-only array only:
    # two read-only arrays of the same shape, and a writeable one changed in
    # place, each give the values of their own samples
    rng = np.random.RandomState(3)
    kernel = GaussianKernel(0.2)
    T, v = rng.uniform(size=(4, 2)), rng.standard_normal(30)

    def direct(X):
        D = X[:, None, :] - T[None]
        return np.exp(-np.einsum("jik,jik->ji", D, D) / (2 * 0.2**2))

    for _ in range(2):
        X = rng.uniform(size=(30, 2))
        X.flags.writeable = False
        for _ in range(2):  # (the second call uses what was kept)
            np.testing.assert_allclose(kernel.matrix(X, T), direct(X), rtol=1e-12)
            np.testing.assert_allclose(
                kernel.contract_derivatives(X, T, v)[0], v @ direct(X), rtol=1e-12
            )
    X = rng.uniform(size=(30, 2))
    kernel.matrix(X, T)
    X += 0.1
    np.testing.assert_allclose(kernel.matrix(X, T), direct(X), rtol=1e-12)
    # the prepared measurements of a unit are read-only
    unit = make_spike_unit(kernel, X, np.full(30, 1 / 30))
    assert not unit.prepare(X).flags.writeable


def test_dirichlet_kept_sample_sines_follow_the_array():
    # the samples' sines and cosines are kept for a read-only array only:
    # values and gradients as those of a writeable copy, for two read-only
    # arrays of the same shape and a writeable one changed in place
    rng = np.random.RandomState(4)
    kernel = DirichletKernel(5)
    T = rng.uniform(size=(4, 2))
    for _ in range(2):
        X = rng.uniform(size=(30, 2))
        X.flags.writeable = False
        for _ in range(2):  # (the second call uses what was kept)
            for got, want in zip(
                kernel.pairwise_value_and_gradient(X, T),
                kernel.pairwise_value_and_gradient(X.copy(), T),
                strict=True,
            ):
                np.testing.assert_array_equal(got, want)
    X = rng.uniform(size=(30, 2))
    before = kernel.pairwise_value_and_gradient(X, T)[0]
    X += 0.1
    after = kernel.pairwise_value_and_gradient(X, T)[0]
    D = X[:, None, :] - T[None]
    np.testing.assert_allclose(after, kernel.value(D), atol=1e-12)
    assert not np.allclose(after, before)


@pytest.mark.parametrize(
    "kernel, d",
    [(DirichletKernel(4), 1), (DirichletKernel(3), 2), (GaussianKernel(0.1), 2)],
)
def test_subset_objective_equals_the_objective_of_the_spikes_kept(kernel, d):
    # the cache of the spikes kept, from the columns of the cache of all
    # spikes (values, gradients and the finite-difference stencil), equals
    # the one evaluated at those spikes
    rng = np.random.RandomState(5)
    X, y = rng.uniform(size=(70, d)), rng.standard_normal(70)
    s = np.full(70, 1 / 70)
    unit = make_spike_unit(kernel, X, s)
    Xp = unit.prepare(X)
    T, a = rng.uniform(size=(5, d)), rng.standard_normal(5)
    keep = np.array([True, False, True, True, False])
    h = 1e-6 * unit.length_scale
    J_all, cache = sliding_objective(unit, Xp, y, s, 0.1, T, a, h)
    J, got = _subset_objective(y, s, 0.1, a[keep], cache, keep)
    J_ref, want = sliding_objective(unit, Xp, y, s, 0.1, T[keep], a[keep], h)
    assert J == pytest.approx(J_ref, rel=1e-14) and J != pytest.approx(J_all)
    for x, x_ref in zip(got[:3], want[:3], strict=True):
        np.testing.assert_allclose(x, x_ref, rtol=1e-13, atol=1e-13)
    if want[3] is ANALYTIC:
        assert got[3] is ANALYTIC
    else:
        for x, x_ref in zip(got[3], want[3], strict=True):
            np.testing.assert_allclose(x, x_ref, rtol=1e-13, atol=1e-13)


def test_merge_gap_is_the_smallest_distance_of_one_sign_less_the_radius():
    unit = make_spike_unit(
        GaussianKernel(0.1), np.linspace(0, 1, 20)[:, None], np.full(20, 0.05)
    )
    T = np.array([[0.1], [0.2], [0.45], [0.5]])
    a = np.array([1.0, 2.0, 1.0, -1.0])  # the closest pair has two signs
    T_out, a_out, gap = _merge(unit, T, a, 0.05, with_gap=True)
    np.testing.assert_array_equal(a_out, a)
    assert gap == pytest.approx(0.1 - 0.05)
    T_out, a_out, gap = _merge(unit, T, a, 0.15, with_gap=True)
    assert gap == -1.0
    np.testing.assert_allclose(a_out, [3.0, 1.0, -1.0])
    np.testing.assert_allclose(T_out[0], [(0.1 + 2 * 0.2) / 3])


def test_gather_does_not_chain():
    # Two heavy particles 3 radii apart with a chain of light ones between
    # them, 0.6 radius apart: single linkage (_merge) makes one spike of
    # all. Gathering keeps the heavy ones apart: each takes the particles
    # within one radius, the light ones left gather among themselves; every
    # group is one spike of its total amplitude at its mean by mass; a
    # particle of the other sign is its own spike.
    unit = make_spike_unit(
        GaussianKernel(0.1), np.linspace(0, 1, 11)[:, None], np.ones(11)
    )
    radius = 0.1
    T = np.array([0.2, 0.26, 0.32, 0.38, 0.44, 0.5, 0.35])[:, None]
    a = np.array([1.0, 0.01, 0.02, 0.01, 0.02, 0.8, -0.5])
    assert _merge(unit, T[:6], a[:6], radius)[1].size == 1
    P, A = _gather(unit, T, a, radius)
    groups = [[0, 1], [2, 3], [4, 5], [6]]
    assert A.size == len(groups)
    order = np.argsort(P[:, 0] + 10 * (A < 0))
    for g, i in zip(groups, order, strict=True):
        assert A[i] == pytest.approx(a[g].sum())
        assert P[i, 0] == pytest.approx(np.abs(a[g]) @ T[g, 0] / np.abs(a[g]).sum())


@pytest.mark.parametrize("d", [1, 2, 3])
def test_newton_steps_where_concave(d):
    # the closed forms (d <= 2) against the eigenvalues and a linear solve:
    # Newton steps where Hs is positive definite, the given step elsewhere
    rng = np.random.RandomState(d)
    M = rng.standard_normal((40, d, d))
    Hs = M @ M.transpose(0, 2, 1) + 0.1 * np.eye(d)
    Hs[::3] -= 5.0 * np.eye(d)  # indefinite or negative definite
    Hs[1::4] *= -1
    gs = rng.standard_normal((40, d))
    step = np.full((40, d), 7.0)
    _newton_where_concave(Hs, gs, step)
    pd = np.linalg.eigvalsh(Hs)[:, 0] > 0
    assert 0 < pd.sum() < 40
    np.testing.assert_allclose(
        step[pd], np.linalg.solve(Hs[pd], gs[pd][..., None])[..., 0], rtol=1e-9
    )
    np.testing.assert_array_equal(step[~pd], 7.0)


@pytest.mark.parametrize("case", ["gaussian", "fourier"])
def test_alpha_max_is_the_maximum_to_rounding(case):
    # alpha_max_ = max_t |sum_j s_j y_j phi(t)(x_j)|: at least the largest
    # value on a fine grid of the domain, and not below the largest value
    # on a much finer grid around where it is reached (Newton's method
    # converged, its last step taken)
    rng = np.random.RandomState(11)
    if case == "gaussian":
        axis = np.linspace(0, 1, 24)
        X = np.array([[u, w] for u in axis for w in axis])
        T0 = rng.uniform(0.15, 0.85, size=(3, 2))
        kernel = GaussianKernel(0.06)
        y = kernel.matrix(X, T0) @ np.array([1.0, -0.7, 0.5])
        est = SparseSpikeDeconvolver("gaussian", bandwidth=0.06, alpha=1e-3)
    else:
        X = np.arange(-10, 11)[:, None].astype(float)
        T0 = rng.uniform(size=(3, 1))
        y = np.exp(-2j * np.pi * X @ T0.T) @ np.array([1.0, -0.6, 0.8])
        kernel = FourierOperator()
        est = SparseSpikeDeconvolver("fourier", alpha=1e-3)
    y = y + 1e-3 * rng.standard_normal(y.shape)
    est.fit(X, y)
    s = np.full(X.shape[0], 1 / X.shape[0])
    unit = make_spike_unit(kernel, X, s)
    Xp, v = unit.prepare(X), unit.stack_weights(s) * unit.stack(y)
    d = X.shape[1] if case == "gaussian" else 1
    fine = np.stack(
        np.meshgrid(*[np.linspace(0, 1, 400 if d == 1 else 200)] * d, indexing="ij"),
        axis=-1,
    ).reshape(-1, d)
    c_fine = np.abs(v @ unit.values(Xp, fine))
    assert est.alpha_max_ >= c_fine.max()
    # the maximum near the fine grid's, by L-BFGS-B on -|c| to gtol 1e-15

    def f(t):
        A, dA = unit.pairwise(Xp, unit.project(t[None].copy()))
        c, g = float(v @ A[:, 0]), np.einsum("j,jk->k", v, dA[:, 0])
        return -abs(c), -np.sign(c) * g

    t0 = fine[np.argmax(c_fine)]
    ref = -minimize(f, t0, jac=True, method="L-BFGS-B", options={"gtol": 1e-15}).fun
    assert ref >= c_fine.max()
    assert est.alpha_max_ == pytest.approx(ref, rel=1e-12)


def test_alpha_max_read_late_pickled_or_near_alpha():
    # alpha_max_ is searched when first read: the same value read at once,
    # read late, after a pickle or a deep copy (which carry the value, not
    # the data); a fit with alpha between the grid's maximum and alpha_max
    # is not mistaken for the zero measure
    import copy
    import pickle

    X, y = make_spikes(3, 101, random_state=0, noise=1e-3)[:2]
    assert not hasattr(SparseSpikeDeconvolver(), "alpha_max_")
    first = SparseSpikeDeconvolver(random_state=0).fit(X, y)
    value = first.alpha_max_
    late = SparseSpikeDeconvolver(random_state=0).fit(X, y)
    pickled = pickle.loads(pickle.dumps(late))
    copied = copy.deepcopy(SparseSpikeDeconvolver(random_state=0).fit(X, y))
    assert pickled._alpha_max._data is None and copied._alpha_max._data is None
    assert pickled.alpha_max_ == late.alpha_max_ == copied.alpha_max_ == value > 0
    # the grid's maximum is below the maximum: alpha between them leaves
    # one spike (certified: its mass grows too slowly for the flow to see,
    # the sliding solves for it), alpha_max itself the zero measure
    lower = late._alpha_max.lower * late._alpha_max.scale
    assert lower < value * (1 - 1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        near = SparseSpikeDeconvolver(alpha=(lower + value) / 2, random_state=0)
        near.fit(X, y)
    assert near.n_iter_ > 0 and near.n_spikes_ == 1
    assert near.certificate_max_ == pytest.approx(1.0, abs=1e-9)
    assert near.alpha_max_ == value
    top = SparseSpikeDeconvolver(alpha=value, random_state=0).fit(X, y)
    assert top.n_iter_ == 0 and top.n_spikes_ == 0
    assert top.certificate_max_ == pytest.approx(1.0, abs=1e-12)


def test_first_step_support_from_the_grid_correlations():
    # Gaussian kernel on its covering grid (both signs): the particles that
    # grow at the first step are those with sigma c(t) > lam for the data's
    # correlation c, from the per-axis factors; not decided (None) off the
    # covering grid or for an operator whose grid values come from factors
    rng = np.random.RandomState(5)
    X = rng.uniform(size=(300, 2))
    s = np.full(300, 1 / 300)
    y = GaussianKernel(0.07).matrix(X, np.array([[0.3, 0.4], [0.7, 0.6]])) @ [1.0, -0.8]
    unit = make_spike_unit(GaussianKernel(0.07), X, s)
    Xp, grid = unit.prepare(X), unit.covering_grid(None, 0)
    T = np.vstack([grid, grid])
    sigma = np.repeat([1.0, -1.0], grid.shape[0])
    c = (s * y) @ unit.values(Xp, grid)
    lam = 0.3 * np.abs(c).max()
    grow = _growing(unit, Xp, y, s, lam, T, sigma)
    np.testing.assert_array_equal(grow, np.concatenate([c, -c]) > lam)
    assert 0 < grow.sum() < 0.2 * T.shape[0]
    np.testing.assert_array_equal(
        _growing(unit, Xp, y, s, lam, grid, sigma[: grid.shape[0]]), c > lam
    )
    assert _growing(unit, Xp, y, s, lam, T + 1e-3, sigma) is None
    # a covering grid completed at random: the grid's part from the factors,
    # the random points' from the values
    mixed = unit.covering_grid(40, 0)
    assert unit.covering_axes(mixed)[1] == 36
    c = (s * y) @ unit.values(Xp, mixed)
    np.testing.assert_array_equal(
        _growing(unit, Xp, y, s, lam, mixed, np.ones(40)), c > lam
    )
    dirichlet = make_spike_unit(DirichletKernel(4), X, s)
    grid = dirichlet.covering_grid(None, 0)
    assert _growing(dirichlet, Xp, y, s, lam, grid, sigma[: grid.shape[0]]) is None


def test_kept_sample_quantities_go_with_the_array():
    # an entry of the per-sample cache is removed with its array (nothing
    # kept for arrays that are gone)
    import gc

    from sklearn_meanfield._operators import _SAMPLE_ENTRIES, _per_samples

    X = np.random.RandomState(0).uniform(size=(50, 2))
    X.flags.writeable = False
    assert _per_samples(X, ("test",), lambda X: float(X.sum())) == float(X.sum())
    slot = (id(X), ("test",))
    assert slot in _SAMPLE_ENTRIES
    del X
    gc.collect()
    assert slot not in _SAMPLE_ENTRIES
