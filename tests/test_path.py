"""Regularisation paths and the cross-validated network estimators."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegressionCV, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_meanfield import (
    MeanFieldClassifier,
    MeanFieldClassifierCV,
    MeanFieldRegressor,
    MeanFieldRegressorCV,
    alpha_grid,
    regularization_path,
)
from sklearn_meanfield.datasets import make_teacher_student


@pytest.fixture(scope="module")
def noisy():
    return make_teacher_student(400, 5, n_teacher=3, noise=0.3, random_state=0)


def test_alpha_grid_starts_at_alpha_max(noisy):
    X, y = noisy
    est = MeanFieldRegressor(20, random_state=0)
    alphas = alpha_grid(est, X, y, n_alphas=5, eps=1e-2)
    fitted = clone(est).fit(X, y)
    assert alphas[0] == pytest.approx(fitted.alpha_max_, rel=1e-6)
    np.testing.assert_allclose(alphas[-1] / alphas[0], 1e-2)
    assert np.all(np.diff(alphas) < 0)


def test_warm_path_is_cheaper_and_scores_as_well(noisy):
    X, y = noisy
    est = MeanFieldRegressor(30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        alphas, warm = regularization_path(est, X[:300], y[:300], n_alphas=6)
        _, cold = regularization_path(
            est, X[:300], y[:300], alphas=alphas, warm_start=False
        )
    assert len(warm) == len(cold) == 6
    # the first fit, at alpha_max, is the zero network
    assert np.std(warm[0].predict(X)) < 1e-2 * np.std(y)
    assert [e.alpha for e in warm] == list(alphas)
    # continuation needs fewer iterations in all
    assert sum(e.n_iter_ for e in warm) < sum(e.n_iter_ for e in cold)
    best_warm = max(e.score(X[300:], y[300:]) for e in warm)
    best_cold = max(e.score(X[300:], y[300:]) for e in cold)
    assert best_warm > best_cold - 0.02
    # independent copies: refitting one leaves the others alone
    before = warm[2].predict(X)
    warm[3].fit(X, y)
    np.testing.assert_array_equal(warm[2].predict(X), before)
    with pytest.raises(ValueError, match="non-negative"):
        regularization_path(est, X, y, alphas=[0.1, -1.0])


def test_regressor_cv_attributes_and_refit(noisy):
    X, y = noisy
    cv = MeanFieldRegressorCV(20, n_alphas=4, cv=3, random_state=0).fit(X, y)
    assert cv.alphas_.shape == (4,) and cv.alpha_ in cv.alphas_
    scores = cv.cv_results_["mean_test_score"]
    assert scores.shape == (4,) and cv.best_score_ == scores.max()
    assert cv.cv_results_["split2_test_score"].shape == (4,)
    # the refit is the plain estimator at alpha_
    plain = MeanFieldRegressor(20, alpha=cv.alpha_, random_state=0).fit(X, y)
    np.testing.assert_allclose(cv.predict(X), plain.predict(X), rtol=1e-12)
    assert not hasattr(cv, "partial_fit")
    assert "alpha" not in cv.get_params()


def test_regressor_cv_matches_ridge_cv_on_diabetes():
    X, y = load_diabetes(return_X_y=True)
    folds = KFold(5, shuffle=True, random_state=0)
    ours = cross_val_score(
        make_pipeline(StandardScaler(), MeanFieldRegressorCV(random_state=0)),
        X,
        y,
        cv=folds,
    ).mean()
    ridge = cross_val_score(make_pipeline(StandardScaler(), RidgeCV()), X, y, cv=folds)
    # measured: 0.491 against 0.488
    assert ours >= ridge.mean()


def test_classifier_cv_on_a_teacher():
    X, y = make_teacher_student(
        400, 4, n_teacher=3, task="classification", random_state=0
    )
    cv = MeanFieldClassifierCV(20, n_alphas=4, cv=3, random_state=0)
    cv.fit(X[:300], y[:300])
    assert cv.alpha_ in cv.alphas_
    plain = MeanFieldClassifier(20, alpha=cv.alpha_, random_state=0)
    plain.fit(X[:300], y[:300])
    np.testing.assert_allclose(cv.predict_proba(X), plain.predict_proba(X))
    assert cv.score(X[300:], y[300:]) > 0.85


@pytest.mark.parametrize("load", [load_breast_cancer, load_wine, load_digits])
def test_classifier_cv_matches_the_best_tuned_baseline(load):
    # 5-fold CV in a StandardScaler pipeline: at least the better of
    # LogisticRegressionCV and MLPClassifier minus 0.005 (measured: breast
    # cancer 0.9824 vs 0.9824 / 0.9754, wine 0.9887 vs 0.9776 / 0.9776,
    # digits 0.9811 vs 0.9655 / 0.9772)
    X, y = load(return_X_y=True)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)

    def score(est):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipe = make_pipeline(StandardScaler(), est)
            return cross_val_score(pipe, X, y, cv=folds).mean()

    ours = score(MeanFieldClassifierCV(random_state=0))
    best = max(score(LogisticRegressionCV()), score(MLPClassifier(random_state=0)))
    assert ours >= best - 0.005


def test_cv_estimator_in_a_pipeline_under_grid_search(noisy):
    from sklearn.model_selection import GridSearchCV

    X, y = noisy
    search = GridSearchCV(
        make_pipeline(
            StandardScaler(), MeanFieldRegressorCV(n_alphas=3, cv=2, random_state=0)
        ),
        {"meanfieldregressorcv__n_particles": [5, 20]},
        cv=2,
    ).fit(X, y)
    assert search.best_params_["meanfieldregressorcv__n_particles"] in (5, 20)
    inner = search.best_estimator_[-1]
    assert inner.alpha_ in inner.alphas_
    assert search.score(X, y) > 0.5
