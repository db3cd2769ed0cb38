"""MeanFieldClassifier: a two-layer network trained as a particle gradient flow
with a logistic (binary) or softmax cross-entropy (multiclass) loss."""

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, log_expit
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._base import BaseMeanFieldNetwork, atomic_fit
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
    ``P(y = c | x) = softmax(f(x))_c``), or for a multilabel indicator
    ``y`` (n_samples, n_labels) one logistic loss per label, summed, and
    ``s_j`` are the sample weights
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
    activation : {"relu", "sigmoid", "logistic", "tanh", "identity"}, \
            default="relu"
        The activation ``sigma``. ReLU makes every neuron 2-homogeneous, the
        case of the global convergence theorem with weight decay;
        ``"logistic"`` is ``"sigmoid"`` (MLP's name); ``"identity"`` makes
        the network linear in ``x`` (with the certificates of ReLU).
    alpha : float or "auto", default="auto"
        Strength of the weight decay ``(alpha/2) (1/m) sum_i (|w_i|^2 +
        |theta~_i|^2)`` in the unit-free coordinates (a number without
        units). ``"auto"``: ``0.05 / sqrt(n)``, ``n`` the number of training
        samples (the sum of the sample weights): the ``1 / sqrt(n)`` rule of
        :class:`MeanFieldRegressor` with the constant measured best on
        classification data (``benchmarks/NOTES.md``), times the number of
        labels for multilabel ``y`` (whose loss sums one logistic loss per
        label); the value used is ``alpha_``. To tune it, use
        :class:`MeanFieldClassifierCV`.
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
        ``tol * J_best`` for ``n_iter_no_change`` consecutive iterations
        (the first compared with ``J`` at the initial particles). Unlike
        MLP's absolute ``tol``, it does not depend on the scale of ``J``.
        With ``early_stopping``: the validation score has not increased by
        ``tol``.
    n_iter_no_change : int or np.inf, default=10
        Patience of the stopping rule; ``np.inf`` switches it off (the fit
        then runs ``max_iter`` iterations unless ``J`` reaches ``1e-12``
        times its initial value).
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
    batch_size : int, "auto" or None, default=None
        Minibatch size of the ``"adam"`` and ``"flow"`` solvers (each
        minibatch's loss is its weighted mean, so the mean-field scaling and
        the meaning of the step are unchanged); None: full batch for
        ``"flow"``, 256 for ``"adam"`` chosen by ``"auto"``; ``"auto"``:
        ``min(200, n_samples)``, as in MLP. Setting an int makes ``"auto"``
        choose ``"adam"``; ``"lbfgs"`` ignores it.
    shuffle : bool, default=True
        Whether to shuffle the samples at every epoch (minibatches only).
    learning_rate : {"constant", "invscaling", "adaptive"}, \
            default="constant"
        Schedule of the largest step of ``"flow"`` and ``"adam"``: constant;
        ``learning_rate_init / (1 + k)^power_t`` at epoch ``k`` (counted over
        ``warm_start`` fits and ``partial_fit`` calls); or, as MLP's
        ``"adaptive"``, constant until the stopping rule's patience runs out,
        then divided by 5 instead of stopping, five times at most.
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
        Print ``Iteration k, loss = J`` every ``verbose`` iterations (every
        one if True), ``k`` counted as ``n_iter_`` is (over ``partial_fit``
        calls too).
    warm_start : bool, default=False
        Continue from the particles of the previous fit (which must have had
        the same classes): ``t_``, ``loss_curve_``,
        ``validation_scores_`` and the ``learning_rate`` schedule continue,
        ``n_iter_`` counts the new fit's iterations, as in MLP.
    callback : callable or None, default=None
        Called after every epoch (every iteration of L-BFGS) with a
        :class:`~sklearn_meanfield.TrainingRecord` (``iteration``, ``loss``,
        ``validation_score``, ``step_size`` and the particles ``weights``,
        ``positions``, ``intercept`` in the units of ``X`` and ``y``,
        read-only); the fit stops (as converged) when it returns True.

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
        ``J`` after each iteration (continued by ``warm_start`` and
        ``partial_fit``).
    loss_ : float
        ``J`` at the end of the fit (``loss_curve_[-1]``), penalty
        included, in the unit-free coordinates.
    n_outputs_ : int
        Number of outputs of the network.
    out_activation_ : str
        The output's inverse link, as MLP's: ``"identity"`` (squared and
        Huber losses), ``"exp"`` (Poisson), ``"logistic"`` (binary,
        multilabel) or ``"softmax"`` (multiclass).
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
        Validation score after each epoch, with ``early_stopping=True`` or a
        validation set ``X_val``.
    best_validation_score_ : float or None
        The best validation score of the fit, with validation data.
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
        callback=None,
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
        self.callback = callback

    _default_learning_rates = {"flow": 2.0, "adam": 1e-2}
    #: alpha="auto" is 0.05 / sqrt(n): half the regressor's constant, measured
    #: best on the classification sets scikit-learn ships and still above
    #: accuracy 0.95 on noise-free teachers (benchmarks/NOTES.md)
    _auto_alpha_scale = 0.05

    def _auto_alpha_terms(self, targets_info):
        # multilabel: one logistic loss per label, summed (k labels: k, not
        # the sqrt(k) of MeanFieldRegressor's outputs, which held-out subset
        # accuracy on noisy multilabel data did not favour; NOTES.md)
        if targets_info.get("_multilabel"):
            return len(targets_info["classes_"])
        return 1

    def _make_loss(self, targets_info=None):
        info = self.__dict__ if targets_info is None else targets_info
        if info["_multilabel"] or len(info["classes_"]) == 2:
            return BinaryLogisticLoss()
        return SoftmaxCrossEntropyLoss()

    def _squeeze_output(self, targets_info=None):
        info = self.__dict__ if targets_info is None else targets_info
        return not info["_multilabel"] and len(info["classes_"]) == 2

    def _validate_Xy(self, X, y, reset):
        """Validated ``X`` and ``y``, and whether ``y`` is a multilabel
        indicator matrix."""
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            multi_output=True,
            dtype=[np.float64, np.float32],
            accept_sparse="csr",
        )
        multilabel = type_of_target(y) == "multilabel-indicator"
        if not multilabel:
            if y.ndim == 2 and y.shape[1] == 1:
                y = column_or_1d(y, warn=True)
            if y.ndim != 1:
                raise ValueError(
                    "MeanFieldClassifier needs y of shape (n_samples,) or a "
                    "multilabel indicator matrix of 0 and 1 of shape "
                    f"(n_samples, n_labels); got a {type_of_target(y)!r} "
                    f"target of shape {y.shape}."
                )
            check_classification_targets(y)
        elif sp.issparse(y):
            y = y.toarray()
        return X, np.asarray(y), multilabel

    @_fit_context(prefer_skip_nested_validation=True)
    @atomic_fit
    def fit(
        self,
        X,
        y,
        sample_weight=None,
        *,
        X_val=None,
        y_val=None,
        sample_weight_val=None,
    ):
        """Fit the particles to ``(X, y)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training inputs; float32 stays float32.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels (integers, strings, ...), at least two classes; or a
            multilabel indicator matrix of 0 and 1 (one logistic output per
            label).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the mean loss; multiplied by the class
            weights. At least two classes need a positive total weight.
        X_val : {array-like, sparse matrix} of shape (n_val, n_features), \
                default=None
            Validation inputs: the accuracy of every epoch is recorded in
            ``validation_scores_`` and, with ``early_stopping=True``, used to
            stop and keep the best particles instead of a split of ``X``. In
            a :class:`~sklearn.pipeline.Pipeline`, request it with
            ``set_fit_request(X_val=True, y_val=True)`` (metadata routing)
            and transform it like ``X`` with ``Pipeline(...,
            transform_input=["X_val"])``.
        y_val : array-like of shape (n_val,) or (n_val, n_labels), default=None
            Validation labels (of the training classes), with ``X_val``.
        sample_weight_val : array-like of shape (n_val,), default=None
            Weights of the validation accuracy.

        Returns
        -------
        self : MeanFieldClassifier

        Raises
        ------
        ValueError
            If ``y`` is not a classification target, or fewer than two
            classes have a positive weight.
        """
        X, y, multilabel = self._validate_Xy(X, y, reset=True)
        classes = np.arange(y.shape[1]) if multilabel else np.unique(y)
        if (
            self.warm_start
            and hasattr(self, "classes_")
            and (
                multilabel != self._multilabel
                or not np.array_equal(classes, self.classes_)
            )
        ):
            raise ValueError(
                "warm_start=True needs the same classes as the previous fit: "
                f"the previous fit had {self.classes_.tolist()}"
                f"{' (multilabel)' if self._multilabel else ''}, this one has "
                f"{classes.tolist()}{' (multilabel)' if multilabel else ''}."
            )
        X, Y, sw, code = self._encode(X, y, classes, multilabel, sample_weight)
        validation_set = self._validate_validation_set(X_val, y_val, sample_weight_val)
        if validation_set is not None:
            X_v, y_v, sw_v = validation_set
            X_v, y_v = validate_data(
                self,
                X_v,
                y_v,
                reset=False,
                multi_output=True,
                dtype=X.dtype,
                accept_sparse="csr",
            )
            Y_v = self._encode_labels(np.asarray(y_v), classes, multilabel, "y_val")
            validation_set = (X_v, Y_v.astype(X.dtype), sw_v)
        return self._fit_particles(
            X,
            Y,
            sw,
            targets_info={"classes_": classes, "_multilabel": multilabel},
            stratify=None if multilabel else code,
            validation_set=validation_set,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    @atomic_fit
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
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Labels, or a multilabel indicator matrix.
        classes : array-like of shape (n_classes,), default=None
            All the classes, required on the first call (``y`` of one chunk
            may miss some), ignored or checked afterwards. For multilabel
            ``y``: the label indices ``0, ..., n_labels - 1``.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : MeanFieldClassifier
        """
        # fitted particles, not classes_, mark a finished first call
        first = not hasattr(self, "positions_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        X, y, multilabel = self._validate_Xy(X, y, reset=first)
        if classes is not None:
            classes = np.unique(np.asarray(classes))
            if not first and not np.array_equal(classes, self.classes_):
                raise ValueError(
                    f"classes={classes.tolist()} is not the same as on the first "
                    f"call to partial_fit: {self.classes_.tolist()}."
                )
        else:
            classes = self.classes_
        if not first and multilabel != self._multilabel:
            raise ValueError(
                "partial_fit needs y of the same kind as on the first call "
                f"({'multilabel' if self._multilabel else 'labels'}); got "
                f"{'multilabel' if multilabel else 'labels'}."
            )
        if multilabel:
            if not np.array_equal(classes, np.arange(y.shape[1])):
                raise ValueError(
                    f"For multilabel y with {y.shape[1]} labels, classes must be "
                    f"the label indices 0, ..., {y.shape[1] - 1}; got "
                    f"{classes.tolist()}."
                )
        else:
            unseen = np.setdiff1d(np.unique(y), classes)
            if unseen.size:
                raise ValueError(
                    f"y contains labels {unseen.tolist()} that are not in classes="
                    f"{classes.tolist()}."
                )
        X, Y, sw, _ = self._encode(
            X, y, classes, multilabel, sample_weight, partial=True
        )
        return self._fit_particles(
            X,
            Y,
            sw,
            targets_info={"classes_": classes, "_multilabel": multilabel},
            incremental=True,
        )

    def _encode_labels(self, y, classes, multilabel, name="y"):
        """Targets (n, 1) in {0, 1} (binary), one-hot (n, k) (multiclass) or
        the indicator matrix (multilabel), as floats."""
        if multilabel:
            if y.ndim != 2 or y.shape[1] != len(classes):
                raise ValueError(
                    f"{name} must be an indicator matrix with {len(classes)} "
                    f"columns; got shape {y.shape}."
                )
            return np.asarray(y, dtype=np.float64)
        y = y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y
        unseen = np.setdiff1d(np.unique(y), classes)
        if unseen.size:
            raise ValueError(
                f"{name} contains labels {unseen.tolist()} that are not among the "
                f"classes {classes.tolist()}."
            )
        code = np.searchsorted(classes, y)
        if len(classes) == 2:
            return code.astype(np.float64)[:, None]
        Y = np.zeros((y.shape[0], len(classes)))
        Y[np.arange(y.shape[0]), code] = 1
        return Y

    def _encode(self, X, y, classes, multilabel, sample_weight, partial=False):
        """Encoded targets, sample weights times class weights, and the class
        codes (None for multilabel)."""
        if len(classes) < 2 and not multilabel:
            raise ValueError(
                "MeanFieldClassifier needs samples of at least 2 classes; "
                f"y contains only one class: {classes[0]!r}."
            )
        sw = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        if self.class_weight is not None:
            if partial and self.class_weight == "balanced":
                raise ValueError(
                    "class_weight='balanced' is not supported by partial_fit: "
                    "the class frequencies of one chunk are not those of the "
                    "data. Pass a dict, e.g. from sklearn.utils.class_weight."
                    "compute_class_weight on the whole data."
                )
            if multilabel:
                raise ValueError(
                    "class_weight is not supported for multilabel y; pass "
                    "sample_weight instead."
                )
            sw = sw * compute_sample_weight(self.class_weight, y)
        Y = self._encode_labels(y, classes, multilabel).astype(X.dtype)
        if multilabel:
            return X, Y, sw, None
        code = np.searchsorted(classes, y)
        class_totals = np.bincount(code, weights=sw, minlength=len(classes))
        if not partial and np.count_nonzero(class_totals > 0) < 2:
            raise ValueError(
                "MeanFieldClassifier needs at least 2 classes with a positive "
                "total weight (sample_weight times class_weight); the classes "
                f"with positive weight are "
                f"{classes[class_totals > 0].tolist()}."
            )
        return X, Y, sw, code

    def _score_output(self, F, Y, s, objective):
        """Weighted accuracy of the outputs ``F`` (the validation score;
        multilabel: the subset accuracy, every label right)."""
        if isinstance(objective.loss, BinaryLogisticLoss):
            correct = np.all((F > 0) == (Y > 0.5), axis=1)
        else:
            correct = F.argmax(axis=1) == Y.argmax(axis=1)
        return float(np.average(correct, weights=s)) if s.sum() > 0 else 0.0

    def decision_function(self, X):
        """The network output ``f(x)``: the logit of ``classes_[1]`` (binary),
        one score per class (``log P(y = c | x)`` up to a per-sample
        constant), or one logit per label (multilabel).

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
        return F[:, 0] if self._squeeze_output() else F

    def predict_log_proba(self, X):
        """``log P(y = c | x)``: ``log sigmoid(+-f)`` (binary),
        ``f_c - logsumexp(f)`` (multiclass) or ``log sigmoid(f_c)`` per label
        (multilabel), finite for every finite ``f``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        scores = self.decision_function(X)
        if self._multilabel:
            return log_expit(scores)
        F = scores[:, None] if scores.ndim == 1 else scores
        return self._objective.loss.log_proba(F)

    def predict_proba(self, X):
        """``P(y = c | x)``: ``[1 - sigmoid(f), sigmoid(f)]`` (binary),
        ``softmax(f)`` (multiclass; rows sum to one) or ``sigmoid(f_c)``
        per label (multilabel, as MLPClassifier).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        if self._multilabel:
            return expit(self.decision_function(X))
        P = np.exp(self.predict_log_proba(X))
        # exp of the stable log-probabilities sums to 1 up to rounding;
        # renormalise so that rows sum to 1 to machine precision.
        P /= P.sum(axis=1, keepdims=True)
        return P

    def predict(self, X):
        """The most probable class, ``classes_[argmax_c f_c(x)]`` (binary:
        ``classes_[1]`` when ``f(x) > 0``); multilabel: the indicator matrix
        of the labels with ``f_c(x) > 0``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_labels)
        """
        check_is_fitted(self)
        scores = self.decision_function(X)
        if self._multilabel:
            return (scores > 0).astype(int)
        if scores.ndim == 1:
            indices = (scores > 0).astype(int)
        else:
            indices = scores.argmax(axis=1)
        return self.classes_[indices]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
