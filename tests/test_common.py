"""The whole scikit-learn estimator contract, for every public estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_meanfield import (
    MeanFieldClassifier,
    MeanFieldClassifierCV,
    MeanFieldRegressor,
    MeanFieldRegressorCV,
    SparseSpikeDeconvolver,
    SparseSpikeDeconvolverCV,
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


def _expected_failures(estimator):
    if getattr(estimator, "batch_size", None) is not None:
        return MINIBATCH_SAMPLE_WEIGHT
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
        # a path of 10 alphas over 5 folds per check takes minutes over the
        # whole suite; 3 alphas over 3 folds check the same code. eps=0.1:
        # the checks' data are 15-30 samples, on which fits at 1e-3 alpha_max
        # (the default eps) are over-parameterised interpolations whose
        # L-BFGS path, hence alpha_, depends on rounding (weighted against
        # repeated samples differ by 3e-4; at eps=0.1 they agree to 1e-7)
        MeanFieldRegressorCV(n_particles=10, n_alphas=3, cv=3, eps=0.1),
        MeanFieldClassifierCV(n_particles=10, n_alphas=3, cv=3, eps=0.1),
        # The deconvolver's cheap configuration on a grid of 2 alphas over 3
        # folds. Not the automatic grid: it starts at alpha_max, where the
        # solution is the zero measure and the flow is not run (n_iter_ = 0),
        # and on check_non_transformer_estimators_n_iter's iris data (4-D,
        # read modulo 1: no spikes to find) the zero measure has the best
        # held-out R^2 (-1.5 against -10.6 at 0.1 alpha_max), so that check,
        # which wants n_iter_ >= 1, would fail. 1e-3 is the plain
        # deconvolver's default; tests/test_spikes_cv.py tests the grid.
        SparseSpikeDeconvolverCV(
            n_particles=32, max_iter=50, alphas=(1e-3, 1e-4), cv=3
        ),
    ]


@parametrize_with_checks(_estimators(), expected_failed_checks=_expected_failures)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
