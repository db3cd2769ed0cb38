"""Cross-validated estimators: ``alpha`` chosen along a warm-started
regularisation path (the networks' and the spikes' ``LassoCV``)."""

import warnings
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import _fit_context, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import check_scoring
from sklearn.model_selection import KFold, check_cv
from sklearn.utils import _safe_indexing
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import Interval
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import _num_samples, indexable

from ._classifier import MeanFieldClassifier
from ._path import alpha_grid, regularization_path
from ._regressor import MeanFieldRegressor
from ._spikes import SparseSpikeDeconvolver

__all__ = ["MeanFieldClassifierCV", "MeanFieldRegressorCV", "SparseSpikeDeconvolverCV"]


def _fold_scores(plain, X, y, sample_weight, score_weight, train, test, alphas, scorer):
    """Scores on ``test`` of the path fitted on ``train`` (weighted by
    ``score_weight`` when given)."""
    sw_train = None if sample_weight is None else sample_weight[train]
    # the folds' fits are internal: their convergence and certificate
    # warnings would repeat n_folds * n_alphas times; the refit warns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, fitted = regularization_path(
            plain,
            _safe_indexing(X, train),
            _safe_indexing(y, train),
            alphas=alphas,
            sample_weight=sw_train,
        )
    X_test, y_test = _safe_indexing(X, test), _safe_indexing(y, test)
    kwargs = {} if score_weight is None else {"sample_weight": score_weight[test]}
    return [scorer(est, X_test, y_test, **kwargs) for est in fitted]


def _never(self):
    return False


def _cv_docstring(plain, score, stratified=""):
    """The docstring of the CV estimator of ``plain``."""
    return f""":class:`{plain}` with ``alpha`` chosen by cross-validation along a
    regularisation path.

    ``alpha`` is searched on a geometric grid from ``alpha_max`` (the
    smallest ``alpha`` at which the zero network is optimal, computed on the
    whole training data in the unit-free coordinates) down to ``eps *
    alpha_max``, as ``LassoCV`` does. In every fold the grid is fitted from
    the largest ``alpha`` down, each fit continuing from the previous one's
    particles (:func:`~sklearn_meanfield.regularization_path`), and scored on
    the held-out part; ``alpha_`` maximises the mean score (the largest
    ``alpha`` among ties), and the model is then refitted at ``alpha_`` on all
    the data, so the estimator predicts as a plain :class:`{plain}`.

    Parameters
    ----------
    n_particles : int, default=100
        Number of particles (hidden neurons).
    alphas : array-like or None, default=None
        The grid of ``alpha`` (None: ``n_alphas`` values from ``alpha_max``
        down to ``eps * alpha_max``; for sigmoid and tanh, which have no
        ``alpha_max``, from 1).
    n_alphas : int, default=10
        Number of ``alpha`` on the automatic grid.
    eps : float, default=1e-3
        ``alpha_min / alpha_max`` of the automatic grid.
    cv : int, cross-validation generator or iterable, default=None
        As in scikit-learn (None: 5-fold{stratified}).
    scoring : str, callable or None, default=None
        The score to maximise (None: the estimator's ``score``, {score}).
    n_jobs : int or None, default=None
        Folds fitted in parallel (joblib).
    **other parameters
        Those of :class:`{plain}` except ``alpha``, with the same meaning
        and defaults.

    Attributes
    ----------
    alpha_ : float
        The chosen ``alpha``.
    alphas_ : ndarray of shape (n_alphas,)
        The grid, decreasing.
    cv_results_ : dict
        ``"alphas"``, ``"mean_test_score"``, ``"std_test_score"`` and
        ``"split<k>_test_score"``, one entry per ``alpha``.
    best_score_ : float
        The mean cross-validated score at ``alpha_``.
    weights_, positions_, certificate_max_, ...
        The fitted attributes of :class:`{plain}`, for the refit at
        ``alpha_``.

    See Also
    --------
    {plain} : The estimator at a fixed ``alpha``.
    sklearn_meanfield.regularization_path : The warm-started path.
    """


class _PathCV:
    """The cross-validation of ``alpha`` shared by the CV estimators."""

    _cv_constraints: dict = {
        "alphas": ["array-like", None],
        "n_alphas": [Interval(Integral, 1, None, closed="left")],
        "eps": [Interval(Real, 0, 1, closed="right")],
        "cv": ["cv_object"],
        "scoring": [str, callable, None],
        "n_jobs": [Integral, None],
    }

    def _penalty_alpha(self, n_samples=None, targets_info=None):
        return self._cv_alpha

    def _check_cv(self, y):
        return check_cv(self.cv, y, classifier=is_classifier(self))

    def _score_weight(self, y, sample_weight):
        """The weights of the held-out scores: the sample weights, times the
        class weights for a classifier (a model is chosen for the loss it
        was asked to fit)."""
        class_weight = getattr(self, "class_weight", None)
        if class_weight is None:
            return sample_weight
        weight = compute_sample_weight(class_weight, np.asarray(y))
        return weight if sample_weight is None else weight * sample_weight

    def _plain(self):
        """The plain estimator with this one's network parameters."""
        base = self._plain_class
        names = base._get_param_names()
        params = {k: v for k, v in self.get_params(deep=False).items() if k in names}
        return base(**params)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Cross-validate ``alpha`` along the path, then refit at ``alpha_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        if y is None:
            # (with alphas given, no fit on all the data precedes the folds)
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        X, y = indexable(X, y)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=float)
        plain = self._plain()
        if self.alphas is None:
            alphas = alpha_grid(
                plain,
                X,
                y,
                n_alphas=self.n_alphas,
                eps=self.eps,
                sample_weight=sample_weight,
            )
        else:
            alphas = np.sort(np.asarray(self.alphas, dtype=float))[::-1]
        cv = self._check_cv(y)
        scorer = check_scoring(plain, scoring=self.scoring)
        score_weight = self._score_weight(y, sample_weight)
        scores = Parallel(n_jobs=self.n_jobs)(
            delayed(_fold_scores)(
                plain, X, y, sample_weight, score_weight, train, test, alphas, scorer
            )
            for train, test in cv.split(X, y)
        )
        scores = np.asarray(scores, dtype=float)  # (n_folds, n_alphas)
        mean = scores.mean(axis=0)
        if not np.any(np.isfinite(mean)):
            raise ValueError(
                "No alpha has a finite cross-validation score (every fold's "
                f"score is NaN: e.g. R^2 on test folds of fewer than 2 samples, "
                f"{_num_samples(X)} samples in {scores.shape[0]} folds). Use more "
                "samples or fewer folds (cv)."
            )
        # alphas decrease: argmax takes the largest alpha among ties
        best = int(np.nanargmax(mean))
        results = {
            "alphas": alphas,
            "mean_test_score": mean,
            "std_test_score": scores.std(axis=0),
            **{f"split{k}_test_score": row for k, row in enumerate(scores)},
        }
        # the refit reads the chosen alpha; a refit that raises leaves the
        # estimator as it was (the CV attributes are set after it)
        previous = self.__dict__.get("_cv_alpha")
        self._cv_alpha = float(alphas[best])
        try:
            self._plain_class.fit.__wrapped__(self, X, y, sample_weight)
        except BaseException:
            if previous is None:
                del self._cv_alpha
            else:
                self._cv_alpha = previous
            raise
        self.alphas_ = alphas
        self.alpha_ = self._cv_alpha
        self.best_score_ = float(mean[best])
        self.cv_results_ = results
        return self

    @available_if(_never)
    def partial_fit(self, *args, **kwargs):
        """Not available: ``alpha`` is chosen on the whole data."""


class MeanFieldRegressorCV(_PathCV, MeanFieldRegressor):
    __doc__ = _cv_docstring("MeanFieldRegressor", "R^2")

    _plain_class = MeanFieldRegressor
    _parameter_constraints: dict = {
        **{
            k: v
            for k, v in MeanFieldRegressor._parameter_constraints.items()
            if k != "alpha"
        },
        **_PathCV._cv_constraints,
    }

    def __init__(
        self,
        n_particles=100,
        *,
        alphas=None,
        n_alphas=10,
        eps=0.001,
        cv=None,
        scoring=None,
        n_jobs=None,
        loss="squared_error",
        epsilon=1.35,
        activation="relu",
        solver="auto",
        learning_rate_init=None,
        max_iter=5000,
        tol=0.0001,
        n_iter_no_change=10,
        init_scale=0.5,
        position_metric="standardize",
        fit_intercept=True,
        batch_size=None,
        shuffle=True,
        learning_rate="constant",
        power_t=0.5,
        early_stopping=False,
        validation_fraction=0.1,
        momentum=0.0,
        flow="wasserstein",
        temperature=0.001,
        annealing="constant",
        record_every=None,
        random_state=None,
        verbose=False,
        warm_start=False,
        callback=None,
    ):
        self.n_particles = n_particles
        self.alphas = alphas
        self.n_alphas = n_alphas
        self.eps = eps
        self.cv = cv
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.loss = loss
        self.epsilon = epsilon
        self.activation = activation
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.init_scale = init_scale
        self.position_metric = position_metric
        self.fit_intercept = fit_intercept
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.learning_rate = learning_rate
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.momentum = momentum
        self.flow = flow
        self.temperature = temperature
        self.annealing = annealing
        self.record_every = record_every
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.callback = callback


class MeanFieldClassifierCV(_PathCV, MeanFieldClassifier):
    __doc__ = _cv_docstring("MeanFieldClassifier", "accuracy", ", stratified")

    _plain_class = MeanFieldClassifier
    _parameter_constraints: dict = {
        **{
            k: v
            for k, v in MeanFieldClassifier._parameter_constraints.items()
            if k != "alpha"
        },
        **_PathCV._cv_constraints,
    }

    def __init__(
        self,
        n_particles=100,
        *,
        alphas=None,
        n_alphas=10,
        eps=0.001,
        cv=None,
        scoring=None,
        n_jobs=None,
        activation="relu",
        solver="auto",
        learning_rate_init=None,
        max_iter=5000,
        tol=0.0001,
        n_iter_no_change=10,
        init_scale=0.5,
        position_metric="standardize",
        fit_intercept=True,
        class_weight=None,
        batch_size=None,
        shuffle=True,
        learning_rate="constant",
        power_t=0.5,
        early_stopping=False,
        validation_fraction=0.1,
        momentum=0.0,
        flow="wasserstein",
        temperature=0.001,
        annealing="constant",
        record_every=None,
        random_state=None,
        verbose=False,
        warm_start=False,
        callback=None,
    ):
        self.n_particles = n_particles
        self.alphas = alphas
        self.n_alphas = n_alphas
        self.eps = eps
        self.cv = cv
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.activation = activation
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.init_scale = init_scale
        self.position_metric = position_metric
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.learning_rate = learning_rate
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.momentum = momentum
        self.flow = flow
        self.temperature = temperature
        self.annealing = annealing
        self.record_every = record_every
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.callback = callback


class SparseSpikeDeconvolverCV(_PathCV, SparseSpikeDeconvolver):
    """:class:`SparseSpikeDeconvolver` with ``alpha`` chosen by cross-validation
    on held-out samples, along a warm-started regularisation path.

    For data of unknown noise level: ``alpha`` is searched on a geometric grid
    from ``alpha_max`` (the smallest ``alpha`` at which the zero measure is
    the solution, :attr:`SparseSpikeDeconvolver.alpha_max_`, computed on all
    the training data, in the units of ``y``) down to ``eps * alpha_max``. In
    every fold the grid is fitted on the training samples from the largest
    ``alpha`` down, each fit starting from the previous one's particles
    (``warm_start``, :func:`~sklearn_meanfield.regularization_path`), and
    scored on the held-out samples; ``alpha_`` maximises the mean score (the
    largest ``alpha`` among ties), and the spikes are then recovered at
    ``alpha_`` from all the data, so the estimator predicts as a plain
    :class:`SparseSpikeDeconvolver` with ``alpha=alpha_``.

    Parameters
    ----------
    kernel : str, forward operator or kernel object, default="dirichlet"
        The measurement model, as in :class:`SparseSpikeDeconvolver`.
    alphas : array-like or None, default=None
        The grid of ``alpha`` (None: ``n_alphas`` values from ``alpha_max``
        down to ``eps * alpha_max``; from 1 if ``y`` is zero).
    n_alphas : int, default=10
        Number of ``alpha`` on the automatic grid.
    eps : float, default=1e-3
        ``alpha_min / alpha_max`` of the automatic grid.
    cv : int, cross-validation generator or iterable, default=None
        The splits of the samples. None or an integer ``k``: ``k`` folds (5
        for None) of samples drawn at random (``KFold(k, shuffle=True,
        random_state=0)``): contiguous folds would hold out whole regions
        of the domain, where the spikes are seen by no training sample.
    scoring : str, callable or None, default=None
        The score to maximise (None: the estimator's ``score``, the R^2 of
        the predicted samples).
    n_jobs : int or None, default=None
        Folds fitted in parallel (joblib).
    **other parameters
        Those of :class:`SparseSpikeDeconvolver` except ``alpha``, with the
        same meaning and defaults.

    Attributes
    ----------
    alpha_ : float
        The chosen ``alpha``, in the units of ``y``.
    alphas_ : ndarray of shape (n_alphas,)
        The grid, decreasing.
    cv_results_ : dict
        ``"alphas"``, ``"mean_test_score"``, ``"std_test_score"`` and
        ``"split<k>_test_score"``, one entry per ``alpha``.
    best_score_ : float
        The mean cross-validated score at ``alpha_``.
    positions_, weights_, n_spikes_, alpha_max_, certificate_max_, ...
        The fitted attributes of :class:`SparseSpikeDeconvolver`, for the
        refit at ``alpha_``.

    See Also
    --------
    SparseSpikeDeconvolver : The deconvolution at a fixed ``alpha``.
    sklearn_meanfield.regularization_path : The warm-started path.

    Examples
    --------
    >>> from sklearn_meanfield import SparseSpikeDeconvolverCV
    >>> from sklearn_meanfield.datasets import make_spikes
    >>> X, y, t, a = make_spikes(n_spikes=3, n_samples=61, cutoff=6, noise=1e-2,
    ...                          random_state=0)
    >>> est = SparseSpikeDeconvolverCV(cutoff=6, n_alphas=5, cv=3).fit(X, y)
    >>> est.n_spikes_
    3
    """

    _plain_class = SparseSpikeDeconvolver
    _parameter_constraints: dict = {
        **{
            k: v
            for k, v in SparseSpikeDeconvolver._parameter_constraints.items()
            if k != "alpha"
        },
        **_PathCV._cv_constraints,
    }

    def __init__(
        self,
        kernel="dirichlet",
        *,
        alphas=None,
        n_alphas=10,
        eps=1e-3,
        cv=None,
        scoring=None,
        n_jobs=None,
        cutoff=10,
        bandwidth=0.05,
        pixel_size=None,
        n_particles=None,
        positive=False,
        fit_intercept=False,
        birth_death="auto",
        max_iter=2000,
        tol=1e-6,
        weight_step=10.0,
        position_step=30.0,
        init_mass=1e-2,
        prune_tol=1e-2,
        merge_radius=None,
        debias="joint",
        check_every=10,
        record_every=None,
        random_state=None,
        verbose=False,
        warm_start=False,
        polish=True,
    ):
        self.kernel = kernel
        self.alphas = alphas
        self.n_alphas = n_alphas
        self.eps = eps
        self.cv = cv
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.cutoff = cutoff
        self.bandwidth = bandwidth
        self.pixel_size = pixel_size
        self.n_particles = n_particles
        self.positive = positive
        self.fit_intercept = fit_intercept
        self.birth_death = birth_death
        self.max_iter = max_iter
        self.tol = tol
        self.weight_step = weight_step
        self.position_step = position_step
        self.init_mass = init_mass
        self.prune_tol = prune_tol
        self.merge_radius = merge_radius
        self.debias = debias
        self.check_every = check_every
        self.record_every = record_every
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.polish = polish

    def _check_cv(self, y):
        cv = 5 if self.cv is None else self.cv
        if isinstance(cv, Integral):
            return KFold(cv, shuffle=True, random_state=0)
        return check_cv(cv, y)
