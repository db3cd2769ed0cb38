"""Extreme scales of X and y: a right answer or a clear ValueError (issue 14).

The rule (see ``column_spread`` and ``check_spread`` in
``sklearn_meanfield._units``): the spread of every feature, and of y for the
regressor, is computed without overflow or underflow whatever the scale
(each column divided by its largest magnitude before squaring), a feature
that takes one value is constant (decided on the values, not on a rounded
spread), and a varying feature or target whose spread is below the smallest
normal number of its dtype (2.2e-308 in float64, 1.2e-38 in float32) is a
ValueError: its values are subnormal, and ``1 / spread`` overflows. Fitted
parameters that overflow in the units of the data (weights_ for a spread of
y near the largest float, positions_ for a spread of X just above the
smallest normal) are a ValueError too. Everything between fits as at unit
scale.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from sklearn_meanfield import MeanFieldClassifier, MeanFieldRegressor
from sklearn_meanfield._units import InputStandardizer, column_spread
from sklearn_meanfield.datasets import make_teacher_student

BIG = np.finfo(np.float64).max


@pytest.fixture(scope="module")
def regression():
    return make_teacher_student(200, 3, n_teacher=3, noise=0.1, random_state=0)


def _fit(est, X, y, **kwargs):
    """Fit with our own floating-point warnings turned into errors (numpy's
    overflow warnings are attributed to the calling module)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings(
            "error", category=RuntimeWarning, module="sklearn_meanfield"
        )
        return est.fit(X, y, **kwargs)


@pytest.mark.parametrize("factor", [1e-300, 1e-150, 1e150, 1e300])
def test_regressor_extreme_x_scales_fit_as_unit_scale(regression, factor):
    X, y = regression
    reference = _fit(MeanFieldRegressor(random_state=0), X, y).predict(X)
    est = _fit(MeanFieldRegressor(random_state=0), X * factor, y)
    np.testing.assert_allclose(est.predict(X * factor), reference, atol=1e-6)


@pytest.mark.parametrize("factor", [1e-300, 1e-150, 1e150, 1e300])
def test_regressor_extreme_y_scales_fit_as_unit_scale(regression, factor):
    X, y = regression
    reference = _fit(MeanFieldRegressor(random_state=0), X, y).predict(X)
    est = _fit(MeanFieldRegressor(random_state=0), X, y * factor)
    np.testing.assert_allclose(est.predict(X) / factor, reference, atol=1e-6)
    assert np.all(np.isfinite(est.weights_))


def test_largest_float_features_fit_as_unit_scale():
    # issue 13: X = finfo.max * uniform fitted a constant model with
    # overflow warnings; the spread is computed without squaring the values
    # now, so it is the model of uniform X. (MLPRegressor raises a
    # ValueError here: "Solver produced non-finite parameter weights".)
    rng = np.random.RandomState(0)
    U = rng.uniform(size=(200, 3))
    y = np.sin(3 * U[:, 0]) + U[:, 1]
    reference = _fit(MeanFieldRegressor(random_state=0), U, y)
    est = _fit(MeanFieldRegressor(random_state=0), BIG * U, y)
    np.testing.assert_allclose(est.predict(BIG * U), reference.predict(U), atol=1e-6)
    assert est.score(BIG * U, y) > 0.95
    clf_ref = _fit(MeanFieldClassifier(random_state=0), U, y > 1)
    clf = _fit(MeanFieldClassifier(random_state=0), BIG * U, y > 1)
    np.testing.assert_allclose(
        clf.predict_proba(BIG * U), clf_ref.predict_proba(U), atol=1e-6
    )


def test_features_spanning_the_float_range_do_not_overflow_when_centred():
    # x - mean overflows for x near -max with a positive mean: the
    # standardisation halves both first, and the model is that of U
    rng = np.random.RandomState(1)
    U = rng.uniform(-1, 1, size=(200, 2))
    U[rng.uniform(size=200) < 0.3, 0] = 1.0
    assert np.any(np.abs(U[:, 0] - U[:, 0].mean()) > 1.2)
    y = U[:, 0] - np.abs(U[:, 1])
    reference = _fit(MeanFieldRegressor(random_state=0), U, y)
    est = _fit(MeanFieldRegressor(random_state=0), BIG * U, y)
    prediction = est.predict(BIG * U)
    assert np.all(np.isfinite(prediction))
    np.testing.assert_allclose(prediction, reference.predict(U), atol=1e-6)


@pytest.mark.parametrize(
    "Estimator", [MeanFieldRegressor, MeanFieldClassifier], ids=lambda e: e.__name__
)
@pytest.mark.parametrize("factor", [1e-310, 1e-320, 5e-324])
def test_subnormal_feature_spread_raises(regression, Estimator, factor):
    X, y = regression
    y = y if Estimator is MeanFieldRegressor else y > np.median(y)
    X = X.copy()
    X[:, 1] *= factor
    est = Estimator(random_state=0)
    with pytest.raises(ValueError, match=r"spread of features \[1\] of X .* below"):
        est.fit(X, y)
    assert not hasattr(est, "positions_")


@pytest.mark.parametrize("factor", [1e-310, 1e-320])
def test_subnormal_target_spread_raises(regression, factor):
    X, y = regression
    est = MeanFieldRegressor(random_state=0)
    with pytest.raises(ValueError, match=r"spread of outputs \[0\] of y .* below"):
        est.fit(X, y * factor)
    assert not hasattr(est, "positions_")


def test_float32_thresholds_are_those_of_float32(regression):
    X, y = regression
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    # 1e-37 is a normal float32: fits as at unit scale (up to the float32
    # rounding of the standardised inputs, which a fit amplifies)
    reference = _fit(MeanFieldRegressor(random_state=0), X32, y32).predict(X32)
    est = _fit(MeanFieldRegressor(random_state=0), X32 * np.float32(1e-37), y32)
    prediction = est.predict(X32 * np.float32(1e-37))
    assert prediction.dtype == np.float32
    np.testing.assert_allclose(prediction, reference, atol=1e-2 * y.std())
    with pytest.raises(ValueError, match="smallest normal float32"):
        MeanFieldRegressor().fit(X32 * np.float32(1e-39), y32)
    with pytest.raises(ValueError, match="smallest normal float32"):
        MeanFieldRegressor().fit(X32, y32 * np.float32(1e-39))


def test_targets_at_the_largest_float_raise(regression):
    # the spread of y is 0.29 * max: the weights in the units of y overflow
    X, _ = regression
    y = BIG * np.random.RandomState(0).uniform(size=len(X))
    est = MeanFieldRegressor(random_state=0)
    with pytest.raises(ValueError, match="weights overflow in the units of y"):
        _fit(est, X, y)


def test_positions_overflowing_in_the_units_of_x_raise(regression):
    # a spread of 3e-308 is normal, but theta / 3e-308 overflows for
    # |theta| > 6: a ValueError naming the features, not inf positions
    X, y = regression
    est = MeanFieldClassifier(random_state=0)
    with pytest.raises(ValueError, match="positions overflow in the units of X"):
        _fit(est, X * 3e-308, y > np.median(y))


def test_small_relative_spread_is_a_feature_not_a_constant(regression):
    # a feature varying by 1e-13 of its mean still has ~450 distinct levels;
    # it was taken for a constant (threshold 1e-12 * |mean|) and the model
    # was constant
    X, y = regression
    reference = _fit(MeanFieldRegressor(random_state=0), X, y)
    est = _fit(MeanFieldRegressor(random_state=0), 1.0 + 1e-13 * X, y)
    r2_ref = reference.score(X, y)
    assert est.score(1.0 + 1e-13 * X, y) > r2_ref - 0.02


def test_constant_features_are_decided_on_the_values():
    rng = np.random.RandomState(0)
    X = rng.standard_normal((100, 4))
    X[:, 1] = 1e17 + X[:, 1]  # rounds to the single value 1e17
    X[:, 2] = 0.1  # its weighted mean is not exactly 0.1 in float64
    X[:, 3] = -BIG
    s = rng.uniform(size=100)
    s /= s.sum()
    offset, _, varying = column_spread(X, s)
    np.testing.assert_array_equal(varying, [True, False, False, False])
    # the offset of a constant column is its value, exactly
    np.testing.assert_array_equal(offset[1:], [1e17, 0.1, -BIG])
    inputs = InputStandardizer().fit(X, s)
    np.testing.assert_array_equal(inputs.scale_[1:], 1.0)
    Xp = inputs.transform(X)
    np.testing.assert_array_equal(Xp[:, 1:-1], 0.0)
    assert np.all(np.isfinite(Xp))


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("scale", [1.0, 1e-250, 1e250])
def test_column_spread_dense_and_sparse(center, scale):
    rng = np.random.RandomState(0)
    X = rng.standard_normal((300, 4)) + np.array([0, 3, -2, 0])
    X[rng.uniform(size=X.shape) < 0.5] = 0.0
    X[:, 3] = 0.0
    s = rng.uniform(size=300)
    s[:20] = 0
    s /= s.sum()
    mean = s @ X
    if center:
        expected = np.sqrt(s @ np.square(X - mean))
    else:
        mean = np.zeros(4)
        expected = np.sqrt(s @ np.square(X))
    for data in (X * scale, sp.csr_array(X * scale)):
        offset, spread, varying = column_spread(data, s, center=center)
        np.testing.assert_allclose(offset / scale, mean, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(spread / scale, expected, rtol=1e-12)
        np.testing.assert_array_equal(varying, [True, True, True, False])


def test_zero_weight_samples_take_no_part_in_the_spread():
    # a huge value on a sample of weight zero changes nothing, and a column
    # varying only on such samples is constant
    rng = np.random.RandomState(0)
    X = rng.standard_normal((50, 3))
    X[:, 2] = 4.0
    s = np.full(50, 1 / 45)
    s[:5] = 0
    X2 = X.copy()
    X2[:5] = [BIG, -BIG, 7.0]
    for data in (X2, sp.csr_array(X2)):
        offset, spread, varying = column_spread(data, s)
        expected = column_spread(X[5:], s[5:])
        np.testing.assert_allclose(offset, expected[0], rtol=1e-12)
        np.testing.assert_allclose(spread, expected[1], rtol=1e-12)
        np.testing.assert_array_equal(varying, [True, True, False])


@pytest.mark.parametrize("factor", [1e-200, 1e200])
def test_sparse_extreme_scales_fit_as_dense(regression, factor):
    # the sparse moments squared the raw values: 1e-200 underflowed to a
    # constant feature (a constant model), 1e200 overflowed
    X, y = regression
    X = X.copy()
    X[np.abs(X) < 0.5] = 0.0
    dense = _fit(MeanFieldRegressor(random_state=0), X, y).predict(X)
    est = _fit(MeanFieldRegressor(random_state=0), sp.csr_array(X * factor), y)
    np.testing.assert_allclose(est.predict(sp.csr_array(X * factor)), dense, atol=1e-6)
    with pytest.raises(ValueError, match="below the smallest normal"):
        MeanFieldRegressor().fit(sp.csr_array(X * 1e-310), y)


def test_targets_lost_in_the_cast_to_float32_raise(regression):
    # y is cast to X's dtype: 1e-50 becomes 0 in float32 (a constant model
    # of 2e-9 was fitted silently), 1e100 becomes inf, 1 + 1e-10 z becomes 1
    X, y = regression
    X32 = X.astype(np.float32)
    with pytest.raises(ValueError, match="vary, but not once cast to float32"):
        MeanFieldRegressor().fit(X32, y * 1e-50)
    with pytest.raises(ValueError, match="vary, but not once cast to float32"):
        MeanFieldRegressor().fit(X32, 1 + 1e-10 * y)
    with pytest.raises(ValueError, match="beyond the largest float32"):
        MeanFieldRegressor().fit(X32, y * 1e100)
    # a constant y is no loss: the constant model
    est = _fit(MeanFieldRegressor(random_state=0), X32, np.full(len(y), 2.5))
    np.testing.assert_allclose(est.predict(X32), 2.5, rtol=1e-6)


def test_cv_without_any_finite_score_raises():
    # R^2 on test folds of one sample is NaN for every alpha: numpy's
    # "All-NaN slice encountered" came out of nanargmax
    from sklearn_meanfield import MeanFieldRegressorCV

    rng = np.random.RandomState(0)
    X, y = rng.standard_normal((3, 2)), rng.standard_normal(3)
    est = MeanFieldRegressorCV(n_particles=5, n_alphas=2, cv=2, max_iter=3)
    with pytest.raises(ValueError, match="No alpha has a finite cross-validation"):
        est.fit(X, y)
    assert not hasattr(est, "alpha_")


@pytest.mark.parametrize("factor", [1e-300, 1e160, 1e300])
def test_score_of_extreme_targets_is_their_r2(regression, factor):
    # r2_score squares y: NaN beyond 1e154 (overflow), and 1.0 at 1e-300
    # (every square underflows to 0); score divides each output and its
    # predictions by their largest magnitude first
    X, y = regression
    reference = _fit(MeanFieldRegressor(random_state=0), X, y).score(X, y)
    assert reference > 0.9
    est = _fit(MeanFieldRegressor(random_state=0), X, y * factor)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert est.score(X, y * factor) == pytest.approx(reference, rel=1e-9)
    Y = np.column_stack([y, -y]) * [1.0, factor]
    est = _fit(MeanFieldRegressor(random_state=0), X, Y)
    from sklearn.metrics import r2_score

    unit = r2_score(Y / [1.0, factor], est.predict(X) / [1.0, factor])
    assert est.score(X, Y) == pytest.approx(unit, rel=1e-9)
