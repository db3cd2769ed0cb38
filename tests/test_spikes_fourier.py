"""SparseSpikeDeconvolver(kernel="fourier"): spikes on the torus from
low-pass Fourier coefficients (issue 15)."""

import numpy as np
import pytest

from sklearn_meanfield import SparseSpikeDeconvolver
from sklearn_meanfield._operators import FourierOperator
from sklearn_meanfield.datasets import make_spikes
from sklearn_meanfield.metrics import spike_recovery_scores


def _frequencies(cutoff, n_dims):
    """All integer vectors with ``|k|_inf <= cutoff``, (n, n_dims)."""
    axis = np.arange(-cutoff, cutoff + 1)
    mesh = np.meshgrid(*([axis] * n_dims), indexing="ij")
    return np.column_stack([g.ravel() for g in mesh]).astype(float)


def _fourier_data(cutoff, n_dims, n_spikes, separation, noise=0.0, seed=0):
    """``y_k = sum_i a_i exp(-2 i pi <k, t_i>) + noise``, complex Gaussian
    noise of standard deviation ``noise`` per coefficient."""
    _, _, T, a = make_spikes(
        n_spikes,
        11,
        n_dims=n_dims,
        cutoff=cutoff,
        min_separation=separation,
        random_state=seed,
    )
    X = _frequencies(cutoff, n_dims)
    y = np.exp(-2j * np.pi * X @ T.T) @ a
    rng = np.random.RandomState(seed + 100)
    y += noise * (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape))
    return X, y, T, a


def _scores(est, T, a, cutoff):
    return spike_recovery_scores(
        T, a, est.positions_, est.weights_, periodic=True, max_distance=0.5 / cutoff
    )


def test_fourier_operator_gradient_and_real_rows():
    rng = np.random.RandomState(0)
    X = _frequencies(3, 2)
    T = rng.uniform(size=(6, 2))
    op = FourierOperator()
    E, dE = op.matrix_and_gradient(X, T)
    np.testing.assert_allclose(E, np.exp(-2j * np.pi * X @ T.T), atol=1e-14)
    h = 1e-6
    for k in range(2):
        e = np.zeros(2)
        e[k] = h
        fd = op.matrix_and_gradient(X, T + e)[0] - op.matrix_and_gradient(X, T - e)[0]
        np.testing.assert_allclose(dE[:, :, k], fd / (2 * h), atol=1e-7)
    imag = rng.uniform(size=X.shape[0]) > 0.5
    A, dA = op.stacked_matrix_and_gradient(X, imag, T)
    np.testing.assert_allclose(A, np.where(imag[:, None], E.imag, E.real), atol=1e-14)
    expected = np.where(imag[:, None, None], dE.imag, dE.real)
    np.testing.assert_allclose(dA, expected, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_fourier_1d_noiseless_exact(seed):
    # fc = 10, 5 signed spikes at least 2 / fc apart: the BLASSO recovers
    # them exactly (Candes & Fernandez-Granda), the debiased fit to 1e-6.
    X, y, T, a = _fourier_data(10, 1, 5, 2.0, seed=seed)
    assert X.shape == (21, 1) and np.iscomplexobj(y)
    est = SparseSpikeDeconvolver("fourier", alpha=1e-3).fit(X, y)
    sc = _scores(est, T, a, 10)
    assert est.n_spikes_ == 5 and sc["n_missed"] == 0 and sc["n_spurious"] == 0
    assert sc["max_position_error"] <= 1e-6
    assert sc["max_amplitude_error"] <= 1e-6
    assert np.all((est.positions_ >= 0) & (est.positions_ < 1))
    # the flow reached a BLASSO solution
    assert 1 - 1e-3 <= est.certificate_max_ <= 1 + 1e-3
    assert 0 <= est.dual_gap_ <= 1e-6 * 0.5 * np.mean(np.abs(y) ** 2)
    # alpha_max = max_t |Re sum_k s_k conj(phi_t(k)) y_k|, on a fine grid
    t = np.linspace(0, 1, 20001, endpoint=False)[:, None]
    eta0 = np.real(np.exp(2j * np.pi * t @ X.T) @ y) / X.shape[0]
    assert est.alpha_max_ == pytest.approx(np.abs(eta0).max(), rel=1e-6)
    # predictions are complex coefficients
    pred = est.predict(X)
    assert np.iscomplexobj(pred) and pred.shape == (21,)
    np.testing.assert_allclose(pred, y, atol=1e-8)
    assert est.score(X, y) == pytest.approx(1.0, abs=1e-12)
    # real and imaginary parts as two columns: the same fit
    est2 = SparseSpikeDeconvolver("fourier", alpha=1e-3).fit(
        X, np.column_stack([y.real, y.imag])
    )
    np.testing.assert_array_equal(est2.positions_, est.positions_)
    np.testing.assert_array_equal(est2.weights_, est.weights_)
    assert est2.score(X, np.column_stack([y.real, y.imag])) == est.score(X, y)


def test_fourier_certificate_and_raw_blasso_solution():
    # Without debiasing: the BLASSO minimiser, eta = sign(a_i) at the
    # spikes, |eta| <= 1 elsewhere.
    X, y, T, a = _fourier_data(8, 1, 4, 2.0, seed=3)
    est = SparseSpikeDeconvolver("fourier", alpha=2e-3, debias=None).fit(X, y)
    sc = _scores(est, T, a, 8)
    assert sc["n_missed"] == 0 and sc["n_spurious"] == 0
    assert sc["max_position_error"] <= 1e-4
    eta = est.certificate(est.positions_, X, y)
    np.testing.assert_allclose(eta, np.sign(est.weights_), atol=1e-3)
    grid = np.linspace(0, 1, 2000, endpoint=False)[:, None]
    assert np.abs(est.certificate(grid, X, y)).max() <= 1 + 1e-3


def test_fourier_spike_across_the_seam_and_positive():
    # Spikes at 0.999 and 0.4: particles on both sides of 0 = 1 must merge
    # into one spike (periodic distance), and positive amplitudes stay
    # positive.
    X = _frequencies(6, 1)
    T = np.array([[0.4], [0.999]])
    a = np.array([1.0, 0.7])
    y = np.exp(-2j * np.pi * X @ T.T) @ a
    est = SparseSpikeDeconvolver("fourier", alpha=1e-3, positive=True).fit(X, y)
    assert est.n_spikes_ == 2 and np.all(est.weights_ > 0)
    sc = _scores(est, T, a, 6)
    assert sc["max_position_error"] <= 1e-6


@pytest.mark.parametrize("seed", [0, 1])
def test_fourier_2d_noisy(seed):
    # fc = 5 per axis (121 coefficients), 4 signed spikes 1.5 / fc apart,
    # complex noise of standard deviation 0.05 per coefficient (|y| ~ 2).
    # The noise's correlation with a spike, sqrt(2) 0.05 / sqrt(121) = 6e-3,
    # sets alpha.
    X, y, T, a = _fourier_data(5, 2, 4, 1.5, noise=0.05, seed=seed)
    est = SparseSpikeDeconvolver("fourier", alpha=0.02, n_particles=100)
    est.fit(X, y)
    sc = _scores(est, T, a, 5)
    assert sc["n_missed"] == 0 and sc["n_spurious"] == 0
    # measured: 4e-4 and 7e-4 (the resolution 1 / fc is 0.2)
    assert sc["max_position_error"] <= 3e-3
    assert sc["max_amplitude_error"] <= 0.05
    assert est.score(X, y) > 0.99


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fourier_bad_input_leaves_the_estimator_unchanged():
    X, y, _, _ = _fourier_data(4, 1, 2, 2.0)
    est = SparseSpikeDeconvolver("fourier", max_iter=50).fit(X, y)
    before = dict(vars(est))
    with pytest.raises(ValueError, match="integer"):
        est.fit(X + 0.5, y)
    with pytest.raises(ValueError, match=r"complex of shape \(n_samples,\)"):
        est.fit(X, y.real)
    with pytest.raises(ValueError, match=r"real of shape \(n_samples, 2\)"):
        est.fit(X, np.column_stack([y.real, y.imag, y.real]))
    bad = y.copy()
    bad[2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(X, bad)
    with pytest.raises(ValueError, match="samples"):
        est.fit(X, y[:-1])
    assert vars(est).keys() == before.keys()
    assert all(vars(est)[k] is before[k] for k in before)
    with pytest.raises(ValueError, match="integer"):
        est.predict(X + 0.25)


@pytest.mark.parametrize("d", [1, 2])
def test_fourier_values_and_gradients_equal_the_formula(d):
    # the stacked rows [Re E; Im E] computed once per measurement, the
    # values-only path, and the tables over a frequency range or (sparse
    # frequencies) over the distinct ones: all equal exp(-2 i pi <k, t>)
    from sklearn_meanfield._operators import FourierOperator, make_spike_unit

    rng = np.random.RandomState(d)
    for X in (
        rng.randint(-6, 7, size=(40, d)).astype(float),
        rng.randint(-3, 4, size=(5, d)) * 1000.0,
    ):
        unit = make_spike_unit(FourierOperator(), X, np.full(len(X), 1 / len(X)))
        Xp, T = unit.prepare(X), rng.rand(6, d)
        E = np.exp(-2j * np.pi * X @ T.T)
        dE = E[:, :, None] * (-2j * np.pi * X[:, None, :])
        A, dA = unit.pairwise(Xp, T)
        np.testing.assert_allclose(A, np.vstack([E.real, E.imag]), atol=1e-9)
        np.testing.assert_allclose(dA, np.concatenate([dE.real, dE.imag]), atol=1e-6)
        np.testing.assert_allclose(unit.values(Xp, T), A, atol=1e-12)
        # rows in another order than the unit's stacking
        imag = rng.rand(len(X)) < 0.5
        A2, _ = FourierOperator().stacked_matrix_and_gradient(X, imag, T)
        np.testing.assert_allclose(
            A2, np.where(imag[:, None], E.imag, E.real), atol=1e-9
        )
        np.testing.assert_allclose(
            FourierOperator().stacked_matrix(X, imag, T), A2, atol=1e-12
        )
