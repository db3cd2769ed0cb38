"""The whole scikit-learn estimator contract, for every public estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_meanfield import (
    MeanFieldClassifier,
    MeanFieldRegressor,
    SparseSpikeDeconvolver,
)

# Minibatch steps visit repeated samples in other batches than one weighted
# sample, so weighting by k is not the same as repeating k times (it is in
# expectation only); full-batch instances pass this check exactly.
_REASON = (
    "minibatches see a repeated sample k times in different batches, a "
    "weighted one once: equal in expectation, not exactly"
)
MINIBATCH_SAMPLE_WEIGHT = {
    "check_sample_weight_equivalence_on_dense_data": _REASON,
    "check_sample_weight_equivalence_on_sparse_data": _REASON,
}


# Full-batch L-BFGS (the default solver of the regressor up to 20,000
# samples) follows a path that rounding differences change: on the checks'
# 15-30 samples and 100 particles the over-parameterised fit has many
# minimisers, and weighting instead of repeating a sample (a change of the
# sums at 1e-16) ends 1e-4 apart in prediction; a tighter tolerance makes
# it worse (measured: 4e-4 at tol=1e-4, 3e-2 at tol=0). scikit-learn
# checks MLPRegressor's sample weights with solver="sgd" for this reason;
# here the same estimator with solver="flow" passes both checks exactly,
# and tests/test_regressor.py checks weights = repetition for L-BFGS to a
# looser tolerance.
_LBFGS_REASON = (
    "L-BFGS amplifies rounding differences on over-parameterised fits; "
    "the solver='flow' instance passes"
)
LBFGS_SAMPLE_WEIGHT = {
    "check_sample_weight_equivalence_on_dense_data": _LBFGS_REASON,
    "check_sample_weight_equivalence_on_sparse_data": _LBFGS_REASON,
}


def _expected_failures(estimator):
    if getattr(estimator, "batch_size", None) is not None:
        return MINIBATCH_SAMPLE_WEIGHT
    if isinstance(estimator, MeanFieldRegressor) and estimator.solver == "auto":
        return LBFGS_SAMPLE_WEIGHT
    return {}


def _estimators():
    return [
        MeanFieldRegressor(),
        MeanFieldClassifier(),
        MeanFieldRegressor(solver="flow"),
        MeanFieldClassifier(solver="flow"),
        MeanFieldRegressor(batch_size=8, max_iter=200),
        MeanFieldClassifier(batch_size=8, max_iter=200),
        MeanFieldRegressor(solver="flow", batch_size=8, max_iter=200),
        # The checks fit random data in up to 10 dimensions, where the
        # default covering grid has 256 particles per sign and the duality
        # gap of a fit to noise does not reach tol, so every fit runs the
        # 2000 default steps: the defaults pass all checks but take 3 min on
        # one core (measured with the pairwise Dirichlet kernel; 16 min
        # before). Fewer particles and steps keep the checks under a minute.
        # SparseSpikeDeconvolver sets regressor_tags.poor_score (see its
        # __sklearn_tags__), its only relaxation of the checks.
        SparseSpikeDeconvolver(n_particles=32, max_iter=50),
    ]


@parametrize_with_checks(_estimators(), expected_failed_checks=_expected_failures)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
