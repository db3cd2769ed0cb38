"""No silent bad model (issue 14): a fit that takes no step, or whose steps
make it worse, says so; absurd step sizes still train the full-batch flow."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_meanfield import MeanFieldClassifier, MeanFieldRegressor
from sklearn_meanfield.datasets import make_teacher_student


@pytest.fixture(scope="module")
def data():
    return make_teacher_student(300, 3, n_teacher=2, random_state=0)


@pytest.mark.parametrize(
    "Estimator, lr", [(MeanFieldRegressor, 1e13), (MeanFieldClassifier, 1e100)]
)
def test_huge_learning_rate_still_trains_the_full_batch_flow(data, Estimator, lr):
    # step halving used to stop at 1e-12 * learning_rate_init and return the
    # untrained particles as "converged"; it now halves until a step
    # descends (or no step changes the particles)
    X, y = data
    y = y > np.median(y) if Estimator is MeanFieldClassifier else y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = Estimator(
            n_particles=20,
            solver="flow",
            learning_rate_init=lr,
            max_iter=200,
            random_state=0,
        ).fit(X, y)
    assert est.n_iter_ > 50
    assert est.score(X, y) > 0.9


def test_minibatch_run_that_ends_worse_warns(data):
    X, y = data
    with pytest.warns(ConvergenceWarning, match="larger objective"):
        MeanFieldRegressor(
            n_particles=20,
            solver="flow",
            batch_size=32,
            learning_rate_init=10.0,
            max_iter=30,
            random_state=0,
        ).fit(X, y)


def test_langevin_run_that_ends_worse_warns(data):
    X, y = data
    with pytest.warns(ConvergenceWarning, match="larger objective"):
        MeanFieldRegressor(
            flow="langevin",
            learning_rate_init=1e7,
            max_iter=50,
            random_state=0,
        ).fit(X, y)


def test_partial_fit_calls_that_diverge_warn():
    # each partial_fit call restarts its divergence guard (up to 100 times
    # the J it started with): on digits, minibatches of 32 with the
    # classifier's default step took J from 87 to 1e46 in 20 calls, to 0.36
    # accuracy, silently. A call that more than doubles J on its data warns
    # (decided from its batch losses first: a healthy call costs one pass)
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    clf = MeanFieldClassifier(batch_size=32, random_state=0)
    with pytest.warns(ConvergenceWarning, match="larger objective"):
        for _ in range(3):
            clf.partial_fit(X, y, classes=np.arange(10))
    assert clf.loss_curve_[-1] > 2 * clf.loss_curve_[0]  # (it did diverge)
    # a healthy stream of calls, a few chunks at a time, does not warn
    X, y = make_teacher_student(1000, 5, n_teacher=3, random_state=0)
    reg = MeanFieldRegressor(20, batch_size=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        for _ in range(3):
            for start in range(0, 1000, 200):
                reg.partial_fit(X[start : start + 200], y[start : start + 200])
    assert reg.score(X, y) > 0.95


def test_a_good_run_does_not_warn(data):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        reg = MeanFieldRegressor(
            n_particles=20, solver="adam", batch_size=32, random_state=0
        ).fit(X, y)
    assert reg.score(X, y) > 0.99


def test_a_stationary_start_is_not_reported_as_no_step(data):
    # alpha=0 and y constant: the initial measure with the best intercept
    # has a zero gradient, so not stepping is correct, with no warning
    X, _ = data
    y = np.full(X.shape[0], 3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        reg = MeanFieldRegressor(
            n_particles=4, solver="flow", alpha=0.0, init_scale=1e-200, random_state=0
        ).fit(X, y)
    np.testing.assert_allclose(reg.predict(X), 3.0)


def test_tiny_sample_weights_with_float32_X_are_not_zero(data):
    # validated in float64: 1e-50 is not zero, even though float32 cannot
    # hold it (it used to be "must contain at least one non-zero number")
    X, y = data
    X = X.astype(np.float32)
    w = np.full(len(y), 1e-50)
    reg = MeanFieldRegressor(n_particles=10, alpha=1e-3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y, sample_weight=w)
        ref = MeanFieldRegressor(n_particles=10, alpha=1e-3, random_state=0)
        ref.fit(X, y)
    assert reg.predict(X).dtype == np.float32
    np.testing.assert_allclose(reg.predict(X), ref.predict(X), rtol=1e-4, atol=1e-4)


def test_spikes_weight_step_too_large_is_right_or_names_the_cause():
    from sklearn_meanfield import SparseSpikeDeconvolver
    from sklearn_meanfield.datasets import make_spikes

    X, y = make_spikes(3, 101, random_state=0, noise=1e-3)[:2]
    ref = SparseSpikeDeconvolver(random_state=0).fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        big = SparseSpikeDeconvolver(weight_step=1e6, max_iter=300, random_state=0)
        big.fit(X, y)
    messages = [str(w.message) for w in caught]
    right = big.n_spikes_ == ref.n_spikes_ and np.allclose(
        big.positions_, ref.positions_, atol=1e-6
    )
    assert right or any("weight_step" in m and "too large" in m for m in messages)
    # the overflow of rejected steps is handled, not reported
    assert not any("invalid value" in m or "overflow" in m for m in messages)


def test_a_fit_worse_than_the_constant_model_warns():
    # the paper's raw Euclidean flow on inputs of 1e20: one L-BFGS step from
    # pre-activations of 1e20 leaves J at 1e37, the constant model's is 1
    X = np.array([[1.76405235e20], [-3.1e19]])
    y = np.array([1.0, -1.0])
    with pytest.warns(ConvergenceWarning, match="worse than none"):
        MeanFieldRegressor(
            n_particles=2,
            alpha=0.0,
            fit_intercept=False,
            max_iter=1,
            position_metric="euclidean",
            random_state=0,
        ).fit(X, y)


class _GaussianLike:
    """A user's kernel of differences (value and gradient), with outputs
    spoiled by ``spoil``."""

    length_scale = 0.05
    periodic = False

    def __init__(self, spoil):
        self.spoil = spoil

    def value(self, D):
        return self.spoil(np.exp(-0.5 * np.sum(D * D, axis=-1) / 0.05**2))

    def gradient(self, D):
        K = np.exp(-0.5 * np.sum(D * D, axis=-1) / 0.05**2)
        return -D / 0.05**2 * K[..., None]


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda K: K * np.nan, "NaN or infinite values"),
        (lambda K: np.where(K > 0.5, np.inf, K), "NaN or infinite values"),
        (lambda K: K + 1j, "complex values"),
        (lambda K: K.ravel()[:3], "shape"),
    ],
)
def test_user_kernel_outputs_are_checked_and_named(spoil, message):
    from sklearn_meanfield import SparseSpikeDeconvolver
    from sklearn_meanfield.datasets import make_spikes

    X, y = make_spikes(3, 101, random_state=0)[:2]
    est = SparseSpikeDeconvolver(kernel=_GaussianLike(spoil))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match=message):
            est.fit(X, y)


@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_spikes_fit_is_invariant_to_extreme_scales_of_y(scale):
    from sklearn_meanfield import SparseSpikeDeconvolver
    from sklearn_meanfield.datasets import make_spikes

    X, y = make_spikes(3, 101, random_state=0, noise=1e-3)[:2]
    ref = SparseSpikeDeconvolver(random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        est = SparseSpikeDeconvolver(alpha=1e-3 * scale, random_state=0)
        est.fit(X, y * scale)
    assert est.n_spikes_ == ref.n_spikes_ == 3
    np.testing.assert_allclose(est.positions_, ref.positions_, atol=1e-9)
    np.testing.assert_allclose(est.weights_ / scale, ref.weights_, rtol=1e-9)
    assert est.alpha_max_ / scale == pytest.approx(ref.alpha_max_, rel=1e-12)
    np.testing.assert_allclose(est.predict(X) / scale, ref.predict(X), rtol=1e-9)


def test_spikes_interrupt_before_the_flow_leaves_the_fit(monkeypatch):
    import sklearn_meanfield._spikes as spikes
    from sklearn_meanfield import SparseSpikeDeconvolver
    from sklearn_meanfield.datasets import make_spikes

    X, y = make_spikes(3, 101, random_state=0)[:2]
    est = SparseSpikeDeconvolver(random_state=0).fit(X, y)
    before = (est.positions_.copy(), est.weights_.copy(), est.n_features_in_)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    # (the certificate of alpha_max runs first in the solve)
    monkeypatch.setattr(spikes, "solve_blasso", interrupt)
    with pytest.raises(KeyboardInterrupt):
        est.fit(np.column_stack([X, X]), y)
    np.testing.assert_array_equal(est.positions_, before[0])
    np.testing.assert_array_equal(est.weights_, before[1])
    assert est.n_features_in_ == before[2]
