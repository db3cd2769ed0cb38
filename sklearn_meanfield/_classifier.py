"""MeanFieldClassifier: a two-layer network trained as a particle gradient flow
with a logistic (binary) or softmax cross-entropy (multiclass) loss."""

import numpy as np
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from ._base import BaseMeanFieldNetwork
from ._losses import BinaryLogisticLoss, SoftmaxCrossEntropyLoss

__all__ = ["MeanFieldClassifier"]


class MeanFieldClassifier(ClassifierMixin, BaseMeanFieldNetwork):
    """Two-layer neural network in the mean-field regime, for classification.

    The model is a measure over hidden neurons, discretised into
    ``n_particles`` particles ``(w_i, theta_i)``, with one output per class
    (one output in total for two classes):

        f(x) = (1/m) sum_i w_i sigma(theta_i . [x, 1]) + b,

    fitted in unit-free coordinates: with ``x~ = (x - mean) / std`` per
    feature (weighted by the sample weights), the particles ``(w_i,
    theta~_i)`` of ``f(x) = (1/m) sum_i w_i sigma(theta~_i . [x~, 1]) + b``
    minimise

        J = sum_j s_j l(y_j, f(x_j))
            + (alpha/2) (1/m) sum_i (|w_i|^2 + |theta~_i|^2),

    where ``l`` is the logistic loss ``log(1 + exp(f)) - y f`` (two classes,
    ``y`` in {0, 1}, ``P(y = classes_[1] | x) = sigmoid(f(x))``) or the
    softmax cross-entropy ``logsumexp(f) - f_y`` (``k > 2`` classes,
    ``P(y = c | x) = softmax(f(x))_c``), and ``s_j`` are the sample weights
    times the class weights, normalised to sum to one. The outputs are
    logits, without units, so ``alpha`` has none either, and the fitted
    probabilities do not change when a feature is shifted or rescaled. As in
    :class:`MeanFieldRegressor`, each particle moves along ``m`` times its
    gradient (the mean-field scaling of Chizat & Bach, 2018), so a step
    means the same whatever ``n_particles``.

    Parameters
    ----------
    n_particles : int, default=100
        Number of particles (hidden neurons) ``m``.
    activation : {"relu", "sigmoid", "tanh"}, default="relu"
        The activation ``sigma``. ReLU makes every neuron 2-homogeneous, the
        case of the global convergence theorem with weight decay.
    alpha : float or "auto", default="auto"
        Strength of the weight decay ``(alpha/2) (1/m) sum_i (|w_i|^2 +
        |theta~_i|^2)`` in the unit-free coordinates (a number without
        units). ``"auto"``: ``0.05 / sqrt(n)``, ``n`` the number of training
        samples (the sum of the sample weights): the ``1 / sqrt(n)`` rule of
        :class:`MeanFieldRegressor` with the constant measured best on
        classification data (``benchmarks/NOTES.md``); the value used is
        ``alpha_``. To tune it, use :class:`MeanFieldClassifierCV`.
    solver : {"auto", "lbfgs", "adam", "flow"}, default="auto"
        How the particles are moved; ``"auto"`` as in
        :class:`MeanFieldRegressor` (L-BFGS up to 20,000 samples, Adam on
        minibatches above, the flow for the conic and Langevin flows,
        momentum and ``partial_fit``). The solver used is ``solver_``.
    learning_rate_init : float or None, default=None
        Largest time step of ``"flow"`` (None: 2.0, larger than the
        regressor's 0.5 because the logistic and softmax losses have
        curvature at most 1/4 and 1/2 in ``f`` where the squared loss has 1)
        or step of ``"adam"`` (None: 0.01); unused by ``"lbfgs"``.
    max_iter : int, default=5000
        Maximum number of iterations (L-BFGS) or epochs (``"flow"``,
        ``"adam"``).
    tol : float, default=1e-4
        Relative tolerance: the fit stops when ``J`` has not decreased by
        ``tol * J_best`` for ``n_iter_no_change`` consecutive steps.
    n_iter_no_change : int, default=10
        Patience of the stopping rule.
    init_scale : float, default=0.5
        Size of the initial particles: positions at radius ``init_scale`` in
        the unit-free coordinates; for ReLU, output
        weights ``+-init_scale`` with balanced signs; for sigmoid and tanh,
        output weights zero.
    position_metric : {"standardize", "diagonal", "euclidean"}, \
            default="standardize"
        The input coordinates in which positions move and are penalised
        (see :class:`MeanFieldRegressor`): ``"standardize"`` is invariant to
        per-feature affine changes of ``X``; ``"euclidean"`` is the paper's
        flow on ``X`` as given (not invariant). ``positions_`` are in the
        units of ``X`` either way.
    fit_intercept : bool, default=True
        Whether to fit an intercept ``b`` (not penalised), initialised at the
        best constant: the log-odds of the positive class (binary) or the
        centred log class frequencies (multiclass), weighted by ``s``.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, ``{label: weight}``; ``"balanced"`` uses
        ``n_samples / (n_classes * np.bincount(y))``. They multiply
        ``sample_weight``.
    batch_size : int or None, default=None
        Minibatch size of the ``"adam"`` and ``"flow"`` solvers (each
        minibatch's loss is its weighted mean, so the mean-field scaling and
        the meaning of the step are unchanged); None: full batch for
        ``"flow"``, 256 for ``"adam"`` chosen by ``"auto"``. Setting it makes
        ``"auto"`` choose ``"adam"``.
    shuffle : bool, default=True
        Whether to shuffle the samples at every epoch (minibatches only).
    learning_rate : {"constant", "invscaling"}, default="constant"
        Schedule of the largest step: constant, or
        ``learning_rate_init / (1 + k)^power_t`` at epoch ``k``.
    power_t : float, default=0.5
        Exponent of the ``"invscaling"`` schedule.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified),
        stop when the validation score (:meth:`score`) has not improved by
        ``tol`` for ``n_iter_no_change`` epochs, and restore the particles of
        the best epoch.
    validation_fraction : float, default=0.1
        Fraction of the training data held out for early stopping.
    momentum : float, default=0.0
        Heavy-ball momentum of the ``"flow"`` solver's steps,
        ``v <- momentum * v - eta * grad``, ``z <- z + v`` (0: the plain
        discretised gradient flow, whose global convergence the theory
        covers); ``solver="auto"`` then runs the flow. A full-batch step that
        would increase ``J`` first drops the velocity (adaptive restart) and
        retries a plain step of the same size, so use it with a
        ``learning_rate_init`` below the largest stable plain step (about
        0.75 of it); the velocity is kept between ``partial_fit`` calls.
        Measurements against the other solvers are in ``benchmarks/``.
    flow : {"wasserstein", "conic", "langevin"}, default="wasserstein"
        How the particles move. ``"wasserstein"``: gradient descent on weights
        and positions (Chizat & Bach, 2018). ``"conic"``: the
        Wasserstein-Fisher-Rao flow of conic particle gradient descent
        (Chizat, 2022): multiplicative updates ``w <- w exp(-4 eta sign(w)
        gW)`` that move mass to the best particles, and position steps per
        unit mass. ``"langevin"``: mean-field Langevin dynamics, gradient
        descent plus Gaussian noise ``sqrt(2 eta temperature)`` on weights and
        positions, which minimises ``J + temperature * entropy`` and escapes
        a bad initialisation (use ``alpha > 0`` for confinement).
    temperature : float, default=1e-3
        The temperature ``tau`` of the Langevin flow.
    annealing : {"constant", "linear"}, default="constant"
        Temperature schedule of the Langevin flow; ``"linear"`` decreases it
        to 0 at ``max_iter``.
    record_every : int or None, default=None
        Record the particles every ``record_every`` epochs in
        ``trajectory_`` (at most 200 snapshots: the stride doubles when full).
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, the shuffling, the validation split and
        the Langevin noise; with an int, fits are bit-for-bit reproducible.
    verbose : bool or int, default=False
        Print the objective every ``verbose`` steps (every step if True).
    warm_start : bool, default=False
        Continue from the particles of the previous fit (which must have had
        the same classes).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    alpha_ : float
        The ``alpha`` of the fit (``"auto"`` resolved).
    alpha_max_, certificate_max_, dual_gap_ : float or None
        The optimality certificates of the convex formulation (ReLU), as in
        :class:`MeanFieldRegressor`, with ``dl/df`` the gradient of the
        logistic or softmax loss (the duality gap at the fitted intercept).
    weights_ : ndarray of shape (n_particles,) or (n_particles, n_classes)
        Output weights ``w_i``: 1-D for two classes (one output, the logit of
        ``classes_[1]``), one column per class otherwise.
    positions_ : ndarray of shape (n_particles, n_features + 1)
        Positions ``theta_i`` in the units of ``X``: neuron ``i`` computes
        ``sigma(positions_[i] . [x, 1])`` (the last column multiplies the
        constant input).
    intercept_ : float or ndarray of shape (n_classes,)
        The intercept ``b`` (0 when ``fit_intercept=False``); a float for two
        classes.
    loss_curve_ : list of float
        ``J`` after each step.
    best_loss_ : float or None
        The smallest ``J`` reached (None with ``early_stopping=True``).
    n_iter_ : int
        Number of iterations (L-BFGS) or epochs taken.
    solver_ : str
        The solver used: ``"lbfgs"``, ``"adam"`` or ``"flow"`` (what
        ``solver="auto"`` chose).
    step_size_ : float
        The time step in use when the fit stopped.
    n_step_reductions_ : int
        How many times a step was halved because it would have increased
        ``J``.
    t_ : int
        Number of training samples seen by the flow (epochs times samples).
    validation_scores_ : list of float or None
        Validation score after each epoch, with ``early_stopping=True``.
    best_validation_score_ : float or None
        The best validation score, with ``early_stopping=True``.
    trajectory_ : dict
        With ``record_every``: ``"iterations"`` (n_records,), ``"weights"``
        (n_records, n_particles, n_outputs) and ``"positions"`` (n_records,
        n_particles, n_features + 1).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when ``X`` has string column names.

    See Also
    --------
    MeanFieldRegressor : The same flow with the squared loss.
    sklearn.neural_network.MLPClassifier : The standard parametrisation.

    References
    ----------
    L. Chizat and F. Bach, "On the Global Convergence of Gradient Descent for
    Over-parameterized Models using Optimal Transport", NeurIPS 2018.

    Examples
    --------
    >>> from sklearn_meanfield import MeanFieldClassifier
    >>> from sklearn_meanfield.datasets import make_teacher_student
    >>> X, y = make_teacher_student(
    ...     500, 5, n_teacher=3, task="classification", random_state=0
    ... )
    >>> clf = MeanFieldClassifier(n_particles=30, random_state=0).fit(X, y)
    >>> bool(clf.score(X, y) > 0.95)
    True
    """

    _parameter_constraints: dict = {
        **BaseMeanFieldNetwork._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        n_particles=100,
        *,
        activation="relu",
        alpha="auto",
        solver="auto",
        learning_rate_init=None,
        max_iter=5000,
        tol=1e-4,
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
        temperature=1e-3,
        annealing="constant",
        record_every=None,
        random_state=None,
        verbose=False,
        warm_start=False,
    ):
        self.n_particles = n_particles
        self.activation = activation
        self.alpha = alpha
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

    _default_learning_rates = {"flow": 2.0, "adam": 1e-2}
    #: alpha="auto" is 0.05 / sqrt(n): half the regressor's constant, measured
    #: best on the classification sets scikit-learn ships and still above
    #: accuracy 0.95 on noise-free teachers (benchmarks/NOTES.md)
    _auto_alpha_scale = 0.05

    def _make_loss(self):
        if len(self.classes_) == 2:
            return BinaryLogisticLoss()
        return SoftmaxCrossEntropyLoss()

    def _squeeze_output(self):
        return len(self.classes_) == 2

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the particles to ``(X, y)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training inputs; float32 stays float32.
        y : array-like of shape (n_samples,)
            Class labels (integers, strings, ...), at least two classes.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the mean loss; multiplied by the class
            weights. At least two classes need a positive total weight.

        Returns
        -------
        self : MeanFieldClassifier

        Raises
        ------
        ValueError
            If ``y`` is not a classification target, or fewer than two
            classes have a positive weight.
        """
        X, y = validate_data(
            self, X, y, dtype=[np.float64, np.float32], accept_sparse="csr"
        )
        check_classification_targets(y)
        classes = np.unique(y)
        if (
            self.warm_start
            and hasattr(self, "classes_")
            and not np.array_equal(classes, self.classes_)
        ):
            raise ValueError(
                "warm_start=True needs the same classes as the previous fit: "
                f"the previous fit had {self.classes_.tolist()}, this one has "
                f"{classes.tolist()}."
            )
        X, Y, sw, code = self._encode(X, y, classes, sample_weight)
        return self._fit_particles(X, Y, sw, stratify=code)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch of the flow on ``(X, y)``, from the current particles.

        The first call initialises the particles (and the position metric)
        from this data and needs ``classes``; later calls continue, with the
        feature count checked. With ``batch_size=None`` the epoch is one
        full-batch step; set ``batch_size`` for stochastic steps over the
        chunk.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            All the classes, required on the first call (``y`` of one chunk
            may miss some), ignored or checked afterwards.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : MeanFieldClassifier
        """
        # fitted particles, not classes_, mark a finished first call
        first = not hasattr(self, "positions_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is not None:
            classes = np.unique(np.asarray(classes))
            if not first and not np.array_equal(classes, self.classes_):
                raise ValueError(
                    f"classes={classes.tolist()} is not the same as on the first "
                    f"call to partial_fit: {self.classes_.tolist()}."
                )
        else:
            classes = self.classes_
        X, y = validate_data(
            self,
            X,
            y,
            reset=first,
            dtype=[np.float64, np.float32],
            accept_sparse="csr",
        )
        check_classification_targets(y)
        unseen = np.setdiff1d(np.unique(y), classes)
        if unseen.size:
            raise ValueError(
                f"y contains labels {unseen.tolist()} that are not in classes="
                f"{classes.tolist()}."
            )
        X, Y, sw, _ = self._encode(X, y, classes, sample_weight, partial=True)
        return self._fit_particles(X, Y, sw, incremental=True)

    def _encode(self, X, y, classes, sample_weight, partial=False):
        """Targets (n, 1) in {0, 1} or one-hot (n, k), sample weights times
        class weights, and the class codes; sets ``classes_``."""
        if len(classes) < 2:
            raise ValueError(
                "MeanFieldClassifier needs samples of at least 2 classes; "
                f"y contains only one class: {classes[0]!r}."
            )
        code = np.searchsorted(classes, y)
        sw = _check_sample_weight(
            sample_weight, X, dtype=X.dtype, ensure_non_negative=True
        )
        if self.class_weight is not None:
            if partial and self.class_weight == "balanced":
                raise ValueError(
                    "class_weight='balanced' is not supported by partial_fit: "
                    "the class frequencies of one chunk are not those of the "
                    "data. Pass a dict, e.g. from sklearn.utils.class_weight."
                    "compute_class_weight on the whole data."
                )
            sw = sw * compute_sample_weight(self.class_weight, y).astype(X.dtype)
        class_totals = np.bincount(code, weights=sw, minlength=len(classes))
        if not partial and np.count_nonzero(class_totals > 0) < 2:
            raise ValueError(
                "MeanFieldClassifier needs at least 2 classes with a positive "
                "total weight (sample_weight times class_weight); the classes "
                f"with positive weight are "
                f"{classes[class_totals > 0].tolist()}."
            )
        self.classes_ = classes
        if len(classes) == 2:
            Y = code.astype(X.dtype)[:, None]
        else:
            Y = np.zeros((X.shape[0], len(classes)), dtype=X.dtype)
            Y[np.arange(X.shape[0]), code] = 1
        return X, Y, sw, code

    def _score_output(self, F, Y, s):
        """Weighted accuracy of the outputs ``F`` (the validation score)."""
        if F.shape[1] == 1:
            correct = (F[:, 0] > 0) == (Y[:, 0] > 0.5)
        else:
            correct = F.argmax(axis=1) == Y.argmax(axis=1)
        return float(np.average(correct, weights=s)) if s.sum() > 0 else 0.0

    def decision_function(self, X):
        """The network output ``f(x)``: the logit of ``classes_[1]`` (binary)
        or one score per class (``log P(y = c | x)`` up to a per-sample
        constant).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            1-D for two classes, as in scikit-learn.
        """
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, dtype=[np.float64, np.float32], accept_sparse="csr"
        )
        F = self._raw_output(X)
        return F[:, 0] if len(self.classes_) == 2 else F

    def predict_log_proba(self, X):
        """``log P(y = c | x)``: ``log sigmoid(+-f)`` (binary) or
        ``f_c - logsumexp(f)`` (multiclass), finite for every finite ``f``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        scores = self.decision_function(X)
        F = scores[:, None] if scores.ndim == 1 else scores
        return self._objective.loss.log_proba(F)

    def predict_proba(self, X):
        """``P(y = c | x)``: ``[1 - sigmoid(f), sigmoid(f)]`` (binary) or
        ``softmax(f)`` (multiclass). Rows sum to one.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        P = np.exp(self.predict_log_proba(X))
        # exp of the stable log-probabilities sums to 1 up to rounding;
        # renormalise so that rows sum to 1 to machine precision.
        P /= P.sum(axis=1, keepdims=True)
        return P

    def predict(self, X):
        """The most probable class, ``classes_[argmax_c f_c(x)]`` (binary:
        ``classes_[1]`` when ``f(x) > 0``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            indices = (scores > 0).astype(int)
        else:
            indices = scores.argmax(axis=1)
        return self.classes_[indices]
