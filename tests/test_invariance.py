"""The fitted network does not depend on the units of X and y.

The objective is unit-free: inputs are standardised per feature (weighted
mean and standard deviation), the regressor's targets too, and the weight
decay acts on positions and weights in those coordinates. A per-feature
affine change of X, and an affine change of y for the regressor, must
therefore give the same model mapped back, with default parameters, for
every solver.
"""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from sklearn_meanfield import MeanFieldClassifier, MeanFieldRegressor
from sklearn_meanfield.datasets import make_teacher_student

N, D = 300, 4
RNG = np.random.RandomState(42)
SHIFTS = RNG.uniform(-5, 5, D)

#: per-feature scales; every case also shifts each feature by shift * scale
SCALES = {
    "1e-8": np.full(D, 1e-8),
    "1e-3": np.full(D, 1e-3),
    "1e3": np.full(D, 1e3),
    "1e8": np.full(D, 1e8),
    "mixed": np.array([1e-8, 1e-3, 1e3, 1e8]),
}


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clone(est).fit(X, y)


@pytest.fixture(scope="module")
def regression():
    X, y = make_teacher_student(N, D, n_teacher=3, noise=0.1, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def classification():
    X, y = make_teacher_student(
        N, D, n_teacher=3, task="classification", random_state=0
    )
    return X, y


SOLVERS = {
    "default": {},
    "flow": {"solver": "flow", "max_iter": 300},
    "adam": {"solver": "adam", "batch_size": 50, "max_iter": 30},
}


@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("scale", list(SCALES))
def test_regressor_invariant_to_affine_change_of_x(regression, scale, solver):
    X, y = regression
    est = MeanFieldRegressor(random_state=0, **SOLVERS[solver])
    reference = _fit(est, X, y).predict(X)
    a = SCALES[scale]
    X2 = X * a + SHIFTS * a
    np.testing.assert_allclose(
        _fit(est, X2, y).predict(X2), reference, atol=1e-6 * y.std(), rtol=0
    )


@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("factor", [1e-8, 1e8])
def test_regressor_invariant_to_affine_change_of_y(regression, factor, solver):
    X, y = regression
    est = MeanFieldRegressor(random_state=0, **SOLVERS[solver])
    reference = _fit(est, X, y).predict(X)
    shift = 3.0 * factor
    scaled = _fit(est, X, y * factor + shift)
    np.testing.assert_allclose(
        (scaled.predict(X) - shift) / factor, reference, atol=1e-6 * y.std(), rtol=0
    )
    # the fitted attributes are in the units of y
    np.testing.assert_allclose(
        scaled.weights_ / factor, _fit(est, X, y).weights_, rtol=1e-5, atol=1e-8
    )


@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("scale", list(SCALES))
def test_classifier_invariant_to_affine_change_of_x(classification, scale, solver):
    X, y = classification
    est = MeanFieldClassifier(random_state=0, **SOLVERS[solver])
    reference = _fit(est, X, y).predict_proba(X)
    a = SCALES[scale]
    X2 = X * a + SHIFTS * a
    np.testing.assert_allclose(
        _fit(est, X2, y).predict_proba(X2), reference, atol=1e-6, rtol=0
    )


def test_positions_are_in_the_units_of_x(regression):
    # positions_ act on [x, 1] in X's own units: sigma(positions_ . [x, 1])
    # recomputed by hand gives predict
    X, y = regression
    a = SCALES["mixed"]
    X2 = X * a + SHIFTS * a
    reg = _fit(MeanFieldRegressor(n_particles=20, random_state=0), X2, y)
    Z = np.column_stack([X2, np.ones(N)]) @ reg.positions_.T
    manual = np.maximum(Z, 0) @ reg.weights_ / 20 + reg.intercept_
    np.testing.assert_allclose(manual, reg.predict(X2), atol=1e-6 * y.std())


def test_partial_fit_and_warm_start_keep_the_invariance(regression):
    # continuing a fit keeps the first fit's unit-free coordinates, so a
    # stream of chunks in other units gives the same model
    X, y = regression
    a = SCALES["mixed"]
    X2 = X * a + SHIFTS * a
    models = []
    for data in (X, X2):
        reg = MeanFieldRegressor(20, solver="adam", batch_size=50, random_state=0)
        for start in range(0, N, 100):
            reg.partial_fit(data[start : start + 100], y[start : start + 100])
        reg.set_params(warm_start=True, solver="flow", max_iter=20)
        n_seen = reg.t_
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            models.append(reg.fit(data, y))
        assert n_seen == N  # one pass of partial_fit before the warm fit
    np.testing.assert_allclose(
        models[1].predict(X2), models[0].predict(X), atol=1e-6 * y.std(), rtol=0
    )
