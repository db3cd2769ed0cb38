"""A fit that raises, or is interrupted outside the solvers, leaves the
estimator exactly as it was (issue 14): the previous model intact, or
unfitted with NotFittedError."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import sklearn_meanfield._base as base
from sklearn_meanfield import (
    MeanFieldClassifier,
    MeanFieldRegressor,
    MeanFieldRegressorCV,
)
from sklearn_meanfield.datasets import make_teacher_student


def _fitted_state(est):
    return pickle.dumps(est.__dict__)


def _quiet_fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


@pytest.fixture(scope="module")
def data():
    X, y = make_teacher_student(120, 3, n_teacher=2, random_state=0)
    return X, y


def test_failed_classifier_refit_keeps_classes_and_predictions(data):
    X, y = data
    clf = _quiet_fit(MeanFieldClassifier(n_particles=10, random_state=0), X, y > 0)
    clf.set_params(early_stopping=True)
    state, pred = _fitted_state(clf), clf.predict(X)
    with pytest.raises(ValueError, match="early_stopping"):
        clf.fit(X[:3], np.array([0, 1, 2]))
    assert clf.classes_.tolist() == [False, True]
    np.testing.assert_array_equal(clf.predict(X), pred)
    assert _fitted_state(clf) == state


def test_interrupted_refit_outside_the_flow_keeps_the_model(data, monkeypatch):
    X, y = data
    clf = _quiet_fit(MeanFieldClassifier(n_particles=10, random_state=0), X, y > 0)
    state, proba = _fitted_state(clf), clf.predict_proba(X)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(base, "network_certificate", interrupt)
    with pytest.raises(KeyboardInterrupt):
        _quiet_fit(clf, X, np.digitize(y, [-0.5, 0.5]))
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    assert _fitted_state(clf) == state


def test_failed_regressor_refit_keeps_output_shape_and_features(data):
    X, y = data
    reg = _quiet_fit(MeanFieldRegressor(n_particles=10, random_state=0), X, y)
    state, pred = _fitted_state(reg), reg.predict(X)
    # a 2-column y that fails (negative weights), then 5 features that fail
    with pytest.raises(ValueError, match="Negative"):
        reg.fit(X, np.column_stack([y, y]), sample_weight=-np.ones(len(y)))
    assert reg.predict(X).shape == (len(y),)
    X5 = np.column_stack([X, X[:, :2]])
    with pytest.raises(ValueError, match="non-zero"):
        reg.fit(X5, y, sample_weight=np.zeros(len(y)))
    assert reg.n_features_in_ == 3
    np.testing.assert_array_equal(reg.predict(X), pred)
    assert _fitted_state(reg) == state


@pytest.mark.parametrize("Estimator", [MeanFieldRegressor, MeanFieldClassifier])
def test_failed_first_fit_leaves_the_estimator_unfitted(data, Estimator):
    X, y = data
    y = y > 0 if Estimator is MeanFieldClassifier else y
    est = Estimator(n_particles=10)
    with pytest.raises(ValueError):
        est.fit(X, y, sample_weight=np.zeros(len(y)))
    assert est.__dict__.keys() == Estimator(n_particles=10).__dict__.keys()
    with pytest.raises(NotFittedError):
        est.predict(X)
    with pytest.raises(ValueError):
        est.partial_fit(X, np.full(len(y), np.nan), **_classes(Estimator))
    with pytest.raises(NotFittedError):
        est.predict(X)


def _classes(Estimator):
    return {"classes": [False, True]} if Estimator is MeanFieldClassifier else {}


def test_failed_partial_fit_keeps_the_model_and_counters(data):
    X, y = data
    reg = MeanFieldRegressor(n_particles=10, random_state=0).partial_fit(X, y)
    state = _fitted_state(reg)
    with pytest.raises(ValueError, match="features"):
        reg.partial_fit(X[:, :2], y)
    with pytest.raises(ValueError, match="outputs"):
        reg.partial_fit(X, np.column_stack([y, y]))
    assert _fitted_state(reg) == state and reg.n_iter_ == 1


def test_failed_cv_refit_keeps_the_cv_model(data, monkeypatch):
    X, y = data
    cv = _quiet_fit(
        MeanFieldRegressorCV(n_particles=10, alphas=[0.1, 0.01], cv=2, random_state=0),
        X,
        y,
    )
    state = _fitted_state(cv)

    def fail(*args, **kwargs):
        raise ValueError("simulated failure")

    monkeypatch.setattr(base, "network_certificate", fail)
    with pytest.raises(ValueError, match="simulated"):
        _quiet_fit(cv, X, y)
    assert _fitted_state(cv) == state


def test_deconvolver_failed_fits_are_atomic():
    from sklearn_meanfield import SparseSpikeDeconvolver
    from sklearn_meanfield.datasets import make_spikes

    X, y = make_spikes(3, 101, random_state=0)[:2]
    est = SparseSpikeDeconvolver(random_state=0)
    with pytest.raises(ValueError):
        est.fit(X, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(NotFittedError):
        est.predict(X)
    est.fit(X, y)
    state, pred = _fitted_state(est), est.predict(X)
    with pytest.raises(ValueError):
        est.fit(np.column_stack([X, X]), y, sample_weight=np.zeros(len(y)))
    assert _fitted_state(est) == state
    np.testing.assert_array_equal(est.predict(X), pred)
