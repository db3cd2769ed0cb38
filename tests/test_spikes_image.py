"""SparseSpikeDeconvolver(kernel="integrated_gaussian") and fit_intercept:
point sources in a pixelated image with background and Poisson noise
(issue 15)."""

import numpy as np
import pytest
from scipy.integrate import quad

from sklearn_meanfield import IntegratedGaussianKernel, SparseSpikeDeconvolver
from sklearn_meanfield.datasets import make_spikes
from sklearn_meanfield.metrics import match_spikes, spike_recovery_scores


def _pixel_centres(size):
    g = np.arange(size, dtype=float)
    return np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)


def _poisson_image(size, n_sources, sigma, photons, background, seed):
    """Sources at least 4 sigma apart, 2 pixels from the edges, with
    ``photons * U[0.7, 1.3]`` photons each, seen through a Gaussian PSF
    integrated over unit pixels, plus ``background`` photons per pixel;
    Poisson counts."""
    rng = np.random.RandomState(seed)
    X = _pixel_centres(size)
    while True:
        T = rng.uniform(1.5, size - 2.5, (n_sources, 2))
        D = np.sqrt(((T[:, None] - T[None]) ** 2).sum(-1))
        np.fill_diagonal(D, np.inf)
        if D.min() >= 4 * sigma:
            break
    N = photons * rng.uniform(0.7, 1.3, n_sources)
    kernel = IntegratedGaussianKernel(sigma, 1.0)
    mean = kernel.value(X[:, None, :] - T[None, :, :]) @ N + background
    return X, rng.poisson(mean).astype(float), T, N


def _cramer_rao(sigma, N, b, s=1.0):
    """Mortensen et al. (2010), Nature Methods 7: the standard deviation of
    one coordinate of a source of ``N`` photons under a Gaussian PSF of
    standard deviation ``sigma`` on pixels of side ``s`` with ``b``
    background photons per pixel (Poisson noise),
    ``sqrt(sigma_a^2 / N (1 + 4 tau + sqrt(2 tau / (1 + 4 tau))))``,
    ``sigma_a^2 = sigma^2 + s^2 / 12``, ``tau = 2 pi sigma_a^2 b / (N s^2)``."""
    sa2 = sigma**2 + s**2 / 12
    tau = 2 * np.pi * sa2 * b / (N * s**2)
    return np.sqrt(sa2 / N * (1 + 4 * tau + np.sqrt(2 * tau / (1 + 4 * tau))))


# ------------------------------------------------------------------ kernel
def test_integrated_gaussian_kernel():
    sigma, s = 1.2, 1.0
    k = IntegratedGaussianKernel(sigma, s)
    # a 1-D factor is the Gaussian density integrated over the pixel
    for u in [0.0, 0.7, -2.3, 9.0]:
        expected = quad(
            lambda v: np.exp(-(v**2) / (2 * sigma**2)) / np.sqrt(2 * np.pi * sigma**2),
            u - s / 2,
            u + s / 2,
            epsabs=1e-300,
            epsrel=1e-12,
        )[0]
        assert k.value(np.array([[u]]))[0] == pytest.approx(expected, rel=1e-9)
    # far in a tail the value is tiny and accurate, not 0 by cancellation
    assert k.value(np.array([[12.0]]))[0] > 0
    assert k.value(np.array([[12.0]]))[0] == k.value(np.array([[-12.0]]))[0]
    # amplitudes are total intensities: the pixels sum to 1
    X = _pixel_centres(41) - 20
    assert k.value(X - [0.3, -0.6]).sum() == pytest.approx(1.0, abs=1e-12)
    # all pairs from the per-axis tables, and the gradient
    T = np.random.RandomState(0).uniform(-3, 3, (9, 2))
    K, dK = k.pairwise_value_and_gradient(X, T)
    D = X[:, None, :] - T[None, :, :]
    np.testing.assert_allclose(K, k.value(D), rtol=0, atol=1e-15)
    h = 1e-6
    for a in range(2):
        e = np.zeros(2)
        e[a] = h
        fd = (k.value(D + e) - k.value(D - e)) / (2 * h)
        np.testing.assert_allclose(dK[..., a], fd, atol=1e-9)
    # the length scale tends to sigma for small pixels
    assert IntegratedGaussianKernel(1.0, 1e-3).length_scale == pytest.approx(1.0)
    assert k.length_scale > sigma
    box = k.domain(_pixel_centres(4))
    np.testing.assert_array_equal(box.lower, [-0.5, -0.5])
    np.testing.assert_array_equal(box.upper, [3.5, 3.5])
    assert box.bounded


# ------------------------------------------------------------------ images
@pytest.mark.parametrize("seed", [0, 1])
def test_poisson_image_with_background(seed):
    # 32 x 32 pixels, PSF sigma = 1 pixel, 6 sources of 700 to 1300 photons
    # on 10 background photons per pixel, Poisson counts. alpha: 4 times
    # the background noise's correlation with a PSF, sqrt(b) |K| / n, times
    # sqrt(2 log n) for the maximum over the image.
    sigma, background = 1.0, 10.0
    X, y, T, N = _poisson_image(32, 6, sigma, 1000.0, background, seed)
    n = X.shape[0]
    norm = np.sqrt(np.sum(IntegratedGaussianKernel(sigma, 1.0).value(X - 16) ** 2))
    alpha = 4 * np.sqrt(background) * norm / n * np.sqrt(2 * np.log(n))
    est = SparseSpikeDeconvolver(
        "integrated_gaussian",
        bandwidth=sigma,
        alpha=alpha,
        positive=True,
        fit_intercept=True,
    ).fit(X, y)
    sc = spike_recovery_scores(T, N, est.positions_, est.weights_, max_distance=1.0)
    assert est.n_spikes_ == 6 and sc["n_missed"] == 0 and sc["n_spurious"] == 0
    # Within a fraction of a pixel: measured 0.12 and 0.09 pixel at worst.
    rows, cols, error = match_spikes(T, est.positions_)
    assert error.max() <= 0.3
    # Against the Cramer-Rao bound (per coordinate, 0.040 to 0.048 pixel
    # here): the radial error has RMS sqrt(2) CRB for an efficient
    # estimator; least squares on Poisson counts measured 1.3 times it.
    crb = _cramer_rao(sigma, N[rows], background)
    assert np.sqrt(np.mean((error / (np.sqrt(2) * crb)) ** 2)) <= 2.5
    # intensities (Poisson: relative standard deviation ~ 1 / sqrt(N))
    np.testing.assert_allclose(est.weights_[cols], N[rows], rtol=0.15)
    assert est.intercept_ == pytest.approx(background, abs=0.5)
    assert np.all((est.positions_ >= -0.5) & (est.positions_ <= 31.5))
    assert est.certificate_max_ <= 1 + 1e-3


def test_pixel_size_read_off_the_pixel_centres():
    X, y, _, _ = _poisson_image(16, 2, 1.0, 1000.0, 5.0, 0)
    X = 0.1 * X  # pixels of 0.1 (e.g. micrometres)
    kw = dict(bandwidth=0.1, alpha=0.05, positive=True, fit_intercept=True)
    est = SparseSpikeDeconvolver("integrated_gaussian", **kw).fit(X, y)
    ref = SparseSpikeDeconvolver("integrated_gaussian", pixel_size=0.1, **kw)
    ref.fit(X, y)
    assert est._unit.operator.pixel_size == pytest.approx(0.1, rel=1e-12)
    assert est.n_spikes_ == ref.n_spikes_ == 2
    np.testing.assert_allclose(est.positions_, ref.positions_, rtol=1e-6)
    with pytest.raises(ValueError, match="pixel_size"):
        SparseSpikeDeconvolver("integrated_gaussian").fit(np.ones((4, 2)), y[:4])


# --------------------------------------------------------------- intercept
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_intercept_recovers_spikes_on_a_constant_background():
    X, y, T, a = make_spikes(
        4, 101, kernel="gaussian", bandwidth=0.05, min_separation=4, random_state=0
    )
    est = SparseSpikeDeconvolver("gaussian", fit_intercept=True).fit(X, y + 3.0)
    sc = spike_recovery_scores(T, a, est.positions_, est.weights_)
    assert sc["n_missed"] == 0 and sc["n_spurious"] == 0
    assert sc["max_position_error"] <= 1e-6
    assert est.intercept_ == pytest.approx(3.0, abs=1e-6)
    np.testing.assert_allclose(est.predict(X), y + 3.0, atol=1e-6)
    # without the intercept the background is fitted by spikes
    plain = SparseSpikeDeconvolver("gaussian").fit(X, y + 3.0)
    assert plain.intercept_ == 0.0 and plain.n_spikes_ > 4


def test_fit_intercept_certificate_and_zero_measure():
    X, y, _, _ = make_spikes(
        3, 101, kernel="gaussian", bandwidth=0.05, min_separation=4,
        positive=True, random_state=1,
    )  # fmt: skip
    y = y + 1.0
    est = SparseSpikeDeconvolver(
        "gaussian", alpha=1e-3, positive=True, fit_intercept=True, debias=None
    ).fit(X, y)
    assert est.n_spikes_ == 3
    eta = est.certificate(est.positions_, X, y)
    np.testing.assert_allclose(eta, 1.0, atol=1e-3)
    # alpha_max: the correlation of the centred signal; above it, no spike
    # and the mean as background
    zero = SparseSpikeDeconvolver("gaussian", fit_intercept=True)
    zero.set_params(alpha=1.01 * est.alpha_max_).fit(X, y)
    assert zero.n_spikes_ == 0 and zero.n_iter_ == 0
    assert zero.intercept_ == pytest.approx(np.mean(y))
    np.testing.assert_allclose(zero.predict(X), np.mean(y))
    with pytest.raises(ValueError, match="complex"):
        SparseSpikeDeconvolver("fourier", fit_intercept=True).fit(
            np.arange(-3, 4.0)[:, None], np.ones(7, dtype=complex)
        )


@pytest.mark.parametrize("seed", [0, 3])
def test_fit_intercept_polish_solves_the_same_problem_as_the_flow(seed):
    # With a background the polished solver works on the centred problem
    # (the background eliminated): it must end at the flow's BLASSO
    # solution, raw (debias=None) and certified, with the same background.
    X, y, _, _ = make_spikes(
        4, 121, kernel="gaussian", bandwidth=0.04, min_separation=3,
        noise=0.01, random_state=seed,
    )  # fmt: skip
    y = y + 2.0 + 0.5 * seed
    kw = dict(kernel="gaussian", bandwidth=0.04, alpha=2e-3, fit_intercept=True)
    kw.update(debias=None, tol=1e-9, max_iter=20000)
    polished = SparseSpikeDeconvolver(**kw).fit(X, y)
    flow = SparseSpikeDeconvolver(polish=False, **kw).fit(X, y)
    assert polished.certificate_max_ <= 1 + 1e-6
    assert polished.intercept_ == pytest.approx(flow.intercept_, abs=1e-4)
    assert polished.n_spikes_ == flow.n_spikes_
    # J with the background: polish at most the flow's, to the flow's gap
    assert polished.loss_curve_[-1] <= flow.loss_curve_[-1] + 1e-9
    np.testing.assert_allclose(polished.positions_, flow.positions_, atol=1e-3)
    # the background the residual's weighted mean, as the elimination says
    residual = y - polished.predict(X)
    assert abs(np.mean(residual)) <= 1e-10
