"""The whole scikit-learn estimator contract, for every public estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_meanfield import MeanFieldRegressor, SparseSpikeDeconvolver


def _estimators():
    # The default parameters, with a smaller max_iter to keep the suite fast.
    return [
        MeanFieldRegressor(),
        # The checks fit 10-dimensional data, where the default covering grid
        # has 256 particles per sign and the duality gap of a fit to random
        # data does not reach tol: fewer particles and steps keep each fit
        # under a second. SparseSpikeDeconvolver sets regressor_tags.poor_score
        # (see its __sklearn_tags__), its only relaxation of the checks.
        SparseSpikeDeconvolver(n_particles=32, max_iter=50),
    ]


@parametrize_with_checks(_estimators())
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
