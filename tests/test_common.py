"""The whole scikit-learn estimator contract, for every public estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_meanfield import MeanFieldClassifier, MeanFieldRegressor


def _estimators():
    # The default parameters, with a smaller max_iter to keep the suite fast.
    return [MeanFieldRegressor(), MeanFieldClassifier()]


@parametrize_with_checks(_estimators())
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
