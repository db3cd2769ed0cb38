"""SparseSpikeDeconvolverCV: alpha by held-out samples along a warm-started
path, and the deconvolver's warm_start."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_meanfield import (
    SparseSpikeDeconvolver,
    SparseSpikeDeconvolverCV,
    regularization_path,
)
from sklearn_meanfield.datasets import make_spikes
from sklearn_meanfield.metrics import spike_recovery_scores

# A path of 7 alphas over 3 folds, at most 300 steps per fit: 3 s per CV fit
# (the defaults, 10 alphas over 5 folds and 2000 steps, take 9 to 58 s on
# these data, most of it in fits of the noise below the best alpha).
CHEAP = dict(cutoff=10, n_alphas=7, cv=3, max_iter=300)


def _data(noise):
    return make_spikes(5, 101, cutoff=10, noise=noise, random_state=0)


def _scores(est, T, a):
    return spike_recovery_scores(
        T, a, est.positions_, est.weights_, periodic=True, max_distance=0.05
    )


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


@pytest.fixture(scope="module")
def low_noise_cv():
    X, y, T, a = _data(1e-3)
    return X, y, T, a, _fit(SparseSpikeDeconvolverCV(**CHEAP), X, y)


def test_alpha_grows_with_the_noise():
    # Without debiasing the held-out score carries the shrinkage of the
    # penalty, so it trades bias against noise. Measured: alpha_ = 6.7e-5
    # (the end of the grid, 1e-3 alpha_max) at noise 1e-3, 6.6e-4 (1e-2
    # alpha_max) at 5e-2; alpha_max = 0.067 and 0.066.
    chosen = {}
    for noise in [1e-3, 5e-2]:
        X, y, T, a = _data(noise)
        est = _fit(SparseSpikeDeconvolverCV(debias=None, **CHEAP), X, y)
        assert est.alphas_[0] == pytest.approx(est.alpha_max_, rel=1e-12)
        sc = _scores(est, T, a)
        assert sc["n_missed"] == 0
        chosen[noise] = est.alpha_ / est.alphas_[0]
    assert chosen[1e-3] == pytest.approx(1e-3)
    assert chosen[5e-2] >= 5 * chosen[1e-3]


def test_low_noise_recovery(low_noise_cv):
    # Measured: 5 spikes, max position error 2.7e-5, amplitude 6.8e-4,
    # held-out R^2 0.999996.
    _, _, T, a, est = low_noise_cv
    sc = _scores(est, T, a)
    assert est.n_spikes_ == 5
    assert sc["n_missed"] == 0 and sc["n_spurious"] == 0
    assert sc["max_position_error"] < 1e-4
    assert sc["max_amplitude_error"] < 5e-3
    assert est.best_score_ > 0.9999
    # debiased fits on the right support all score the same: every alpha
    # below the first that finds the 5 spikes ties to 1e-6
    mean = est.cv_results_["mean_test_score"]
    assert mean[0] < 0.5
    np.testing.assert_allclose(mean[1:], est.best_score_, atol=1e-6)


def test_high_noise_recovery():
    # Measured: alpha_ = 0.32 alpha_max, 5 spikes, position error 1.3e-3.
    X, y, T, a = _data(5e-2)
    est = _fit(SparseSpikeDeconvolverCV(**CHEAP), X, y)
    sc = _scores(est, T, a)
    assert sc["n_missed"] == 0 and sc["n_spurious"] == 0
    assert sc["max_position_error"] < 3e-3


def test_refit_is_the_plain_deconvolver_at_alpha_(low_noise_cv):
    X, y, _, _, est = low_noise_cv
    params = {
        k: v
        for k, v in est.get_params().items()
        if k in SparseSpikeDeconvolver._get_param_names()
    }
    plain = _fit(SparseSpikeDeconvolver(alpha=est.alpha_, **params), X, y)
    np.testing.assert_array_equal(est.positions_, plain.positions_)
    np.testing.assert_array_equal(est.weights_, plain.weights_)
    np.testing.assert_array_equal(est.predict(X), plain.predict(X))
    assert est.score(X, y) == plain.score(X, y)
    np.testing.assert_array_equal(est.certificate(X, X, y), plain.certificate(X, X, y))


def test_cv_results_shapes(low_noise_cv):
    _, _, _, _, est = low_noise_cv
    n = CHEAP["n_alphas"]
    assert est.alphas_.shape == (n,)
    assert np.all(np.diff(est.alphas_) < 0)
    np.testing.assert_allclose(est.alphas_[-1] / est.alphas_[0], 1e-3)
    res = est.cv_results_
    assert set(res) == {
        "alphas",
        "mean_test_score",
        "std_test_score",
        "split0_test_score",
        "split1_test_score",
        "split2_test_score",
    }
    for key, value in res.items():
        assert np.shape(value) == (n,), key
    splits = np.array([res[f"split{k}_test_score"] for k in range(3)])
    np.testing.assert_allclose(res["mean_test_score"], splits.mean(axis=0))
    best = int(np.argmax(res["mean_test_score"]))
    assert est.alpha_ == est.alphas_[best]
    assert est.best_score_ == res["mean_test_score"][best]


def test_explicit_alphas_and_parameters():
    X, y, _, _ = _data(1e-3)
    est = _fit(
        SparseSpikeDeconvolverCV(cutoff=10, alphas=[1e-3, 1.0, 1e-2], cv=3), X, y
    )
    np.testing.assert_array_equal(est.alphas_, [1.0, 1e-2, 1e-3])
    # alpha = 1 is above alpha_max: the zero measure, R^2 near 0
    assert est.cv_results_["mean_test_score"][0] < 0.1
    assert est.alpha_ in (1e-2, 1e-3)
    assert "alpha" not in est.get_params()


# ------------------------------------------------------------- warm_start
def test_warm_start_from_the_zero_measure_is_a_cold_start():
    X, y, _, _ = _data(1e-3)
    cold = SparseSpikeDeconvolver(cutoff=10, alpha=1e-3).fit(X, y)
    warm = SparseSpikeDeconvolver(cutoff=10, alpha=1.0, warm_start=True).fit(X, y)
    assert warm.n_iter_ == 0 and np.all(warm.particle_weights_ == 0)
    warm.set_params(alpha=1e-3).fit(X, y)
    np.testing.assert_array_equal(warm.positions_, cold.positions_)
    np.testing.assert_array_equal(warm.weights_, cold.weights_)


def test_warm_start_continues_and_checks_the_particles():
    X, y, T, a = _data(1e-3)
    est = SparseSpikeDeconvolver(cutoff=10, alpha=1e-2, warm_start=True).fit(X, y)
    first = est.n_iter_
    est.set_params(alpha=1e-3).fit(X, y)
    cold = SparseSpikeDeconvolver(cutoff=10, alpha=1e-3).fit(X, y)
    # measured: 110 steps warm, 230 cold; the same spikes
    assert 0 < est.n_iter_ < cold.n_iter_ and len(est.loss_curve_) == est.n_iter_
    assert first > 0
    np.testing.assert_allclose(est.positions_, cold.positions_, atol=1e-8)
    assert _scores(est, T, a)["max_position_error"] < 1e-4
    with pytest.raises(ValueError, match="warm_start=True needs"):
        est.set_params(n_particles=20).fit(X, y)


def test_warm_path_is_cheaper_than_cold():
    # Measured on the full default path (10 alphas down to 1e-3 alpha_max):
    # 1.1 s and 1,190 steps warm against 2.2 s and 3,080 steps cold.
    X, y, _, _ = _data(1e-3)
    alphas = np.geomspace(0.03, 1e-4, 5)
    est = SparseSpikeDeconvolver(cutoff=10)
    _, warm = regularization_path(est, X, y, alphas=alphas)
    _, cold = regularization_path(est, X, y, alphas=alphas, warm_start=False)
    assert sum(e.n_iter_ for e in warm) < 0.8 * sum(e.n_iter_ for e in cold)
    for w, c in zip(warm, cold, strict=True):
        assert w.n_spikes_ == c.n_spikes_ == 5
        np.testing.assert_allclose(w.positions_, c.positions_, atol=1e-6)
        assert not w.warm_start
