"""Property-based tests of the estimators with hypothesis (issue 14).

Over shapes, dtypes (float32, float64, int64), scales of X, y and sample
weights from 1e-320 to the largest float, raw arbitrary floats, targets
(1-D and 2-D, multiclass, multilabel, string labels), losses and the key
hyperparameters:

- every fit ends in finite predictions (finite probabilities summing to one
  for the classifier), or raises a ValueError or TypeError;
- a fit that raises leaves the estimator as it was: unfitted
  (``NotFittedError`` from ``predict``) after a first fit, or the previous
  model intact (the same predictions, ``n_features_in_`` and ``classes_``)
  after a refit or ``partial_fit``.

The suite runs a fixed, derandomised set of examples within its time
budget (``HYPOTHESIS_PROFILE=suite``, the default). For a longer random
search, run with ``HYPOTHESIS_PROFILE=fuzz``.
"""

import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra.numpy import arrays
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from sklearn_meanfield import (
    MeanFieldClassifier,
    MeanFieldClassifierCV,
    MeanFieldRegressor,
    MeanFieldRegressorCV,
    SparseSpikeDeconvolver,
)

settings.register_profile(
    "suite",
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "fuzz",
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

BIG = np.finfo(np.float64).max

# ------------------------------------------------------------------ strategies
#: powers of ten spanning float64 (308: the largest float), unit scale most
#: often
EXPONENTS = st.sampled_from(
    [0] * 8
    + [-320, -310, -308, -300, -200, -150, -100, -20, -8]
    + [8, 20, 100, 150, 200, 300, 306, 307, 308]
)


def _scale(X, exponent):
    """``X * 10**exponent`` (or times the largest float for 308), silently
    overflowing to inf (the estimators must reject it)."""
    factor = BIG if exponent >= 308 else 10.0**exponent
    with np.errstate(over="ignore", under="ignore"):
        return X * factor


@st.composite
def matrices(draw, n, d):
    """(n, d) inputs: scaled and shifted normal columns (with constant
    columns at times), or arbitrary finite floats, in a drawn dtype."""
    if draw(st.booleans()):
        rng = np.random.RandomState(draw(st.integers(0, 2**16)))
        X = rng.standard_normal((n, d)) + draw(st.sampled_from([0.0, 1.0, 1e3]))
        if draw(st.booleans()):
            for j in range(d):
                X[:, j] = _scale(X[:, j], draw(EXPONENTS))
        else:
            X = _scale(X, draw(EXPONENTS))
        if d > 1 and draw(st.booleans()):
            X[:, draw(st.integers(0, d - 1))] = draw(
                st.sampled_from([0.0, 7.0, -BIG, 1e-310])
            )
    else:
        X = draw(
            arrays(
                np.float64,
                (n, d),
                elements=st.floats(allow_nan=False, allow_infinity=False),
            )
        )
    dtype = draw(st.sampled_from(["float64", "float64", "float32", "int64"]))
    with np.errstate(over="ignore", invalid="ignore"):
        if dtype == "int64":
            X = np.clip(np.nan_to_num(np.round(X)), -(2**62), 2**62).astype(np.int64)
        else:
            X = X.astype(dtype)
    return X


@st.composite
def sample_weights(draw, n):
    kind = draw(st.sampled_from(["none", "none", "uniform", "zeros", "int", "zero"]))
    if kind == "none":
        return None
    rng = np.random.RandomState(draw(st.integers(0, 2**16)))
    if kind == "int":
        return rng.randint(0, 4, n)
    if kind == "zero":
        return np.zeros(n)
    w = _scale(rng.uniform(0.1, 1, n), draw(EXPONENTS))
    if kind == "zeros":
        w[rng.uniform(size=n) < 0.5] = 0.0
    return w


def targets(draw, n, X):
    """Regression targets: a function of X, noise, constants or arbitrary
    floats; 1-D or 2-D; scaled over the whole float range."""
    kind = draw(st.sampled_from(["signal", "noise", "constant", "raw", "int"]))
    rng = np.random.RandomState(draw(st.integers(0, 2**16)))
    if kind == "signal":
        with np.errstate(all="ignore"):
            Z = np.nan_to_num(np.asarray(X, dtype=np.float64))
            Z = Z / np.maximum(np.abs(Z).max(axis=0), 1e-300)
        y = np.sin(3 * Z[:, 0]) + Z[:, -1] ** 2
    elif kind == "noise":
        y = rng.standard_normal(n)
    elif kind == "constant":
        y = np.full(n, draw(st.sampled_from([0.0, 3.0, -BIG])))
    elif kind == "int":
        y = rng.randint(-5, 5, n)
    else:
        y = draw(
            arrays(
                np.float64, n, elements=st.floats(allow_nan=False, allow_infinity=False)
            )
        )
    if kind != "int":
        y = _scale(y, draw(EXPONENTS))
    if draw(st.integers(0, 3)) == 0:
        y = np.column_stack([y, rng.standard_normal(n)])
    return y


def labels(draw, n):
    kind = draw(st.sampled_from(["int", "int", "str", "one", "float", "multilabel"]))
    rng = np.random.RandomState(draw(st.integers(0, 2**16)))
    k = draw(st.integers(2, 4))
    if kind == "multilabel":
        return rng.randint(0, 2, (n, k))
    y = rng.randint(0, k, n)
    if kind == "str":
        return np.array(["a", "b", "c", "d"])[y]
    if kind == "one":
        return np.zeros(n, dtype=int)
    if kind == "float":
        return y + 0.5
    return y


@st.composite
def network_params(draw):
    """Hyperparameters; the flows that need solver="flow" get it (or "auto")
    most of the time, so that most examples reach a fit."""
    params = draw(
        st.fixed_dictionaries(
            {
                "n_particles": st.integers(1, 12),
                "activation": st.sampled_from(
                    ["relu", "relu", "tanh", "logistic", "identity"]
                ),
                "alpha": st.sampled_from([0.0, 1e-4, "auto", 1.0, 1e3]),
                "fit_intercept": st.booleans(),
                "max_iter": st.integers(1, 12),
                "learning_rate_init": st.sampled_from([None, 1e-3, 0.5, 10.0]),
                "learning_rate": st.sampled_from(
                    ["constant", "invscaling", "adaptive"]
                ),
                "early_stopping": st.sampled_from([False] * 4 + [True]),
                "batch_size": st.sampled_from([None, None, "auto", 1, 8]),
                "position_metric": st.sampled_from(
                    ["standardize", "standardize", "diagonal", "euclidean"]
                ),
                "flow": st.sampled_from(["wasserstein"] * 3 + ["conic", "langevin"]),
                "momentum": st.sampled_from([0.0] * 4 + [0.9]),
                "init_scale": st.sampled_from([0.5, 1.0, 1e-3, 10.0]),
                "random_state": st.integers(0, 3),
            }
        )
    )
    flow_only = params["flow"] != "wasserstein" or params["momentum"] > 0
    solvers = ["auto", "flow"] if flow_only else ["auto", "lbfgs", "adam", "flow"]
    params["solver"] = draw(st.sampled_from(solvers * 4 + ["lbfgs", "adam"]))
    return params


def _euclidean_inputs(X, params):
    """With position_metric="euclidean" the flow runs on X as given: inputs
    beyond 1e15 are a known failure (test_euclidean_metric_on_huge_inputs)
    and are scaled down to 1e15 here."""
    top = np.max(np.abs(X), initial=0.0)
    if params["position_metric"] == "euclidean" and top > 1e15:
        X = X * (1e15 / top) if X.dtype.kind == "f" else X // int(top / 1e15)
    return X


@st.composite
def regression_problems(draw, max_n=25, max_d=4):
    n, d = draw(st.integers(1, max_n)), draw(st.integers(1, max_d))
    X = _euclidean_inputs(draw(matrices(n, d)), params := draw(network_params()))
    params["loss"] = draw(st.sampled_from(["squared_error"] * 3 + ["huber", "poisson"]))
    y = targets(draw, n, X)
    if params["loss"] == "poisson" and draw(st.booleans()):
        y = np.abs(y)
    return X, y, draw(sample_weights(n)), params


@st.composite
def classification_problems(draw, max_n=25, max_d=4):
    n, d = draw(st.integers(1, max_n)), draw(st.integers(1, max_d))
    X = _euclidean_inputs(draw(matrices(n, d)), params := draw(network_params()))
    params["class_weight"] = draw(st.sampled_from([None, None, "balanced"]))
    return X, labels(draw, n), draw(sample_weights(n)), params


# ------------------------------------------------------------------- helpers
def _fit(est, X, y, sample_weight, method="fit"):
    """``est.<method>(X, y)``; returns the exception raised (ValueError or
    TypeError, the documented ones) or None. Any other exception fails."""
    kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
    if method == "partial_fit" and isinstance(est, MeanFieldClassifier):
        kwargs["classes"] = np.unique(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            getattr(est, method)(X, y, **kwargs)
        except (ValueError, TypeError) as error:
            # --hypothesis-show-statistics: which errors the examples reach
            _event(f"{type(error).__name__}: {str(error)[:40]}")
            _assert_raised_by_a_check(error)
            return error
    _event("fitted")
    return None


def _event(text):
    """``hypothesis.event`` (statistics), also callable outside a test."""
    try:
        event(text)
    except InvalidArgument:
        pass


def _assert_raised_by_a_check(error):
    """The error comes from a check that names the problem (in the package or
    in scikit-learn's validation), not from inside numpy or scipy (e.g.
    "All-NaN slice encountered", a matmul shape mismatch)."""
    tb = error.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename.replace(os.sep, "/")
    assert "/numpy/" not in where and "/scipy/" not in where, (
        f"{type(error).__name__} raised inside {where}: {error}"
    )


def _outputs(est, X):
    """Everything the fitted estimator predicts on X."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if isinstance(est, MeanFieldClassifier):
            return {
                "predict": est.predict(X),
                "proba": est.predict_proba(X),
                "decision": est.decision_function(X),
            }
        return {"predict": est.predict(X)}


def _assert_finite_outputs(est, X, sample_weight=None):
    """Finite outputs at the training samples of positive weight (the data
    the model fits); elsewhere (zero weight: an extrapolation, possibly
    1e300 standard deviations away) no NaN, an overflow being inf."""
    out = _outputs(est, X)
    fitted = slice(None) if sample_weight is None else np.asarray(sample_weight) > 0
    for key, value in out.items():
        if value.dtype.kind == "f":
            assert not np.any(np.isnan(value)), (key, value)
        out[key] = value[fitted]
    X = X[fitted]
    if isinstance(est, MeanFieldClassifier):
        proba = out["proba"]
        assert np.all(np.isfinite(proba))
        assert np.all((proba >= 0) & (proba <= 1))
        assert np.all(np.isfinite(out["decision"]))
        if est._multilabel:
            # one probability per label, each label 0 or 1
            assert proba.shape == (X.shape[0], len(est.classes_))
            assert np.all(np.isin(out["predict"], [0, 1]))
        else:
            assert np.all(np.isin(out["predict"], est.classes_))
            np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    else:
        assert np.all(np.isfinite(out["predict"])), out["predict"]
        assert out["predict"].shape[0] == X.shape[0]


def _state(est, X):
    """What a failed fit must leave unchanged."""
    state = dict(_outputs(est, X))
    state["n_features_in_"] = est.n_features_in_
    for name in ("classes_", "weights_", "positions_", "intercept_"):
        if hasattr(est, name):
            state[name] = np.copy(getattr(est, name))
    return state


def _assert_same_state(before, after):
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


# --------------------------------------------------------------------- tests
@given(regression_problems())
def test_regressor_fit_is_finite_or_raises(problem):
    X, y, sw, params = problem
    est = MeanFieldRegressor(**params)
    if _fit(est, X, y, sw) is None:
        _assert_finite_outputs(est, X, sw)


@given(classification_problems())
def test_classifier_fit_is_finite_or_raises(problem):
    X, y, sw, params = problem
    est = MeanFieldClassifier(**params)
    if _fit(est, X, y, sw) is None:
        _assert_finite_outputs(est, X, sw)


#: the CV estimators fit about 2 folds x 2 alphas + 2 times per example
CV_SETTINGS = settings(max_examples=max(10, settings.default.max_examples // 3))


@st.composite
def cv_problems(draw):
    """A regression or classification problem for a CV estimator, with 2 or
    3 folds and 2 alphas (a grid from alpha_max, or given)."""
    problem = draw(st.one_of(regression_problems(), classification_problems()))
    X, y, sw, params = problem
    params = {k: v for k, v in params.items() if k != "alpha"}
    params["cv"] = draw(st.integers(2, 3))
    if draw(st.booleans()):
        params["n_alphas"] = 2
    else:
        params["alphas"] = draw(st.sampled_from([[1e-3, 1.0], [0.0, 1e-2], [1e3]]))
    return X, y, sw, params


def _cv_estimator(params):
    if "class_weight" in params:
        return MeanFieldClassifierCV(**params)
    return MeanFieldRegressorCV(**params)


@CV_SETTINGS
@given(cv_problems())
def test_cv_fit_is_finite_or_raises(problem):
    X, y, sw, params = problem
    est = _cv_estimator(params)
    if _fit(est, X, y, sw) is None:
        _assert_finite_outputs(est, X, sw)
        assert est.alpha_ in est.alphas_
    else:
        with pytest.raises(NotFittedError):
            est.predict(np.zeros((2, X.shape[1])))


@CV_SETTINGS
@given(cv_problems(), st.integers(1, 3))
def test_cv_failed_refit_keeps_the_previous_model(problem, d):
    X, y, sw, params = problem
    Estimator = type(_cv_estimator(params))
    plain, X0 = _fitted(Estimator._plain_class, d=d)
    est = Estimator(n_particles=8, n_alphas=2, cv=2, max_iter=10, random_state=0)
    assert _fit(est, X0, plain.predict(X0), None) is None
    est.set_params(**params)
    before = _state(est, X0)
    before["alpha_"] = est.alpha_
    if _fit(est, X, y, sw) is not None:
        after = _state(est, X0)
        after["alpha_"] = est.alpha_
        _assert_same_state(before, after)


@given(st.one_of(regression_problems(), classification_problems()))
def test_failed_first_fit_leaves_the_estimator_unfitted(problem):
    X, y, sw, params = problem
    Estimator = MeanFieldClassifier if "class_weight" in params else MeanFieldRegressor
    est = Estimator(**params)
    if _fit(est, X, y, sw) is not None:
        with pytest.raises(NotFittedError):
            est.predict(np.zeros((2, X.shape[1])))


def _fitted(Estimator, d=3, k=2, n_outputs=1):
    """A well-posed fitted model to refit."""
    rng = np.random.RandomState(0)
    X = rng.standard_normal((40, d))
    if Estimator is MeanFieldClassifier:
        y = np.digitize(X[:, 0], np.linspace(-1, 1, k - 1))
    else:
        y = X[:, 0] - np.abs(X[:, 1 % d])
        if n_outputs > 1:
            y = np.column_stack([y] * n_outputs)
    est = Estimator(n_particles=8, max_iter=10, random_state=0)
    _fit(est, X, y, None)
    return est, X


@given(
    st.one_of(regression_problems(), classification_problems()),
    st.sampled_from(["fit", "partial_fit"]),
    st.integers(2, 3),
    st.integers(1, 3),
    st.booleans(),
)
def test_failed_refit_keeps_the_previous_model(problem, method, k, d, warm):
    X, y, sw, params = problem
    Estimator = MeanFieldClassifier if "class_weight" in params else MeanFieldRegressor
    est, X0 = _fitted(Estimator, d=d, k=k)
    if method == "partial_fit":
        # partial_fit continues the fitted model with its own parameters
        params = {"solver": "flow", "max_iter": params["max_iter"]}
    est.set_params(warm_start=warm, **params)
    before = _state(est, X0)
    if _fit(est, X, y, sw, method) is not None:
        _assert_same_state(before, _state(est, X0))


# the deconvolver: 1-D locations, small n
@st.composite
def spike_problems(draw):
    n = draw(st.integers(1, 30))
    rng = np.random.RandomState(draw(st.integers(0, 2**16)))
    X = rng.uniform(size=(n, 1))
    kernel = draw(st.sampled_from(["dirichlet", "gaussian"]))
    if draw(st.booleans()):
        exponent = draw(EXPONENTS)
        X = _scale(X, exponent)
    t = rng.uniform(size=3)
    y = np.cos(2 * np.pi * (X[:, 0:1] - t) * 3).sum(axis=1)
    if draw(st.booleans()):
        y = _scale(y, draw(EXPONENTS))
    if draw(st.integers(0, 4)) == 0:
        y[draw(st.integers(0, n - 1))] = draw(st.sampled_from([1e300, -1e300, 0.0]))
    params = draw(
        st.fixed_dictionaries(
            {
                "kernel": st.just(kernel),
                "cutoff": st.integers(1, 6),
                "alpha": st.sampled_from([1e-6, 1e-3, 0.1, 10.0]),
                "max_iter": st.integers(1, 30),
                "positive": st.booleans(),
                "debias": st.sampled_from(["joint", "amplitudes", None]),
                "weight_step": st.sampled_from([10.0, 1e3]),
            }
        )
    )
    return X, y, draw(sample_weights(n)), params


@given(spike_problems())
def test_deconvolver_fit_is_finite_or_raises(problem):
    X, y, sw, params = problem
    est = SparseSpikeDeconvolver(**params)
    if _fit(est, X, y, sw) is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            prediction = est.predict(X)
        assert np.all(np.isfinite(prediction))
        assert np.all(np.isfinite(est.weights_))
        assert np.all(np.isfinite(est.positions_))


def test_deconvolver_gaussian_grid_of_a_huge_domain():
    # locations spread over 1e20 bandwidths: one grid point per bandwidth is
    # capped at 256 points; the count used to overflow int64 first and
    # numpy's linspace raised "Number of samples, -9223372036854775808,
    # must be non-negative"
    X = np.array([[5.5e19], [7.2e19]])
    est = SparseSpikeDeconvolver(kernel="gaussian", max_iter=1)
    error = _fit(est, X, np.array([1.8, 0.1]), None)
    if error is None:
        assert np.all(np.isfinite(est.predict(X)))


def test_euclidean_metric_on_huge_inputs():
    # position_metric="euclidean" runs the flow on X as given: with one
    # sample at 1.8e20 the loss after one L-BFGS iteration is 9e36 (the
    # constant model's is 0.5, in unit-free units), the outputs are 5e18
    # standard deviations of y off, and with y's spread at 1e300 predict
    # returns -inf (a RuntimeWarning from the inverse transform). 50
    # iterations still end at 3e21. Only a ConvergenceWarning (max_iter) is
    # given. Now: a ConvergenceWarning (worse than the constant model), and
    # a ValueError as its outputs overflow.
    X = np.array([[1.76405235e20]])
    y = np.array([[1.14112001e300, 1.76405235]])
    est = MeanFieldRegressor(
        n_particles=2,
        alpha=0.0,
        fit_intercept=False,
        max_iter=1,
        position_metric="euclidean",
        random_state=0,
    )
    error = _fit(est, X, y, None)
    assert isinstance(error, ValueError) and "overflow" in str(error)
    with pytest.raises(NotFittedError):
        est.predict(X)


def test_deconvolver_sample_weights_summing_to_inf():
    # two weights near the largest float summed to inf: normalised, every
    # weight was 0, and the domain of the samples of positive weight was
    # empty ("zero-size array to reduction operation minimum")
    X = np.array([[0.55], [0.72]])
    est = SparseSpikeDeconvolver(kernel="gaussian", max_iter=1)
    assert _fit(est, X, np.array([1.0, -0.8]), np.array([1.1e308, 1.3e308])) is None
    assert np.all(np.isfinite(est.predict(X)))


def test_network_sample_weights_summing_to_inf_are_normalised():
    # weights near the largest float summed to inf and normalised to 0: the
    # regressor returned its initialisation (R^2 -0.2, n_iter_ 0) silently;
    # weights are divided by the largest first now, so any common scale of
    # the weights gives the same model
    rng = np.random.RandomState(0)
    X = rng.standard_normal((60, 2))
    y = X[:, 0] - np.abs(X[:, 1])
    w = rng.uniform(0.5, 1, 60)
    models = [
        MeanFieldRegressor(n_particles=20, alpha=1e-3, random_state=0).fit(
            X, y, sample_weight=w * factor
        )
        for factor in (1.0, 1e-300, 1e308)
    ]
    # the same model up to the rounding of the normalised weights, which the
    # stopping rule may amplify to a different last iteration
    reference = models[0].score(X, y)
    assert reference > 0.9
    for est in models[1:]:
        assert est.score(X, y) == pytest.approx(reference, abs=0.01)
        np.testing.assert_allclose(
            est.predict(X), models[0].predict(X), atol=0.02 * y.std()
        )
