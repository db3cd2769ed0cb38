"""MeanFieldClassifier: a two-layer network trained as a particle gradient flow
with a logistic (binary) or softmax cross-entropy (multiclass) loss."""

import numpy as np
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.preprocessing import LabelEncoder
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

    trained by full-batch gradient descent on all weights and positions of

        J = sum_j s_j l(y_j, f(x_j))
            + (alpha/2) (1/m) sum_i (|w_i|^2 + |theta_i|^2),

    where ``l`` is the logistic loss ``log(1 + exp(f)) - y f`` (two classes,
    ``y`` in {0, 1}, ``P(y = classes_[1] | x) = sigmoid(f(x))``) or the
    softmax cross-entropy ``logsumexp(f) - f_y`` (``k > 2`` classes,
    ``P(y = c | x) = softmax(f(x))_c``), and ``s_j`` are the sample weights
    times the class weights, normalised to sum to one. As in
    :class:`MeanFieldRegressor`, each particle moves along ``m`` times its
    gradient (the mean-field scaling of Chizat & Bach, 2018), so
    ``learning_rate_init`` is a time step of the Wasserstein gradient flow
    whatever ``n_particles``.

    Parameters
    ----------
    n_particles : int, default=100
        Number of particles (hidden neurons) ``m``.
    activation : {"relu", "sigmoid", "tanh"}, default="relu"
        The activation ``sigma``. ReLU makes every neuron 2-homogeneous, the
        case of the global convergence theorem with weight decay.
    alpha : float, default=1e-5
        Strength of the weight decay ``(alpha/2) (1/m) sum_i (|w_i|^2 +
        |theta_i|^2)``.
    learning_rate_init : float, default=2.0
        Largest time step of the flow. It is larger than the regressor's
        default (0.5) because the logistic and softmax losses have curvature
        at most 1/4 and 1/2 in ``f`` (the squared loss has 1), so the same
        stability margin allows a step two to four times larger; on
        standardised digits and breast-cancer data it halves the number of
        steps with few or no rejected steps. A step that would increase
        ``J`` or make it non-finite is halved and retried, so too large a
        value only costs a few rejected steps.
    max_iter : int, default=5000
        Maximum number of gradient steps (full passes over the data).
    tol : float, default=1e-4
        Relative tolerance: the fit stops when ``J`` has not decreased by
        ``tol * J_best`` for ``n_iter_no_change`` consecutive steps.
    n_iter_no_change : int, default=10
        Patience of the stopping rule.
    init_scale : float, default=0.5
        Size of the initial particles: positions at radius ``init_scale`` in
        units where the features have unit mean square; for ReLU, output
        weights ``+-init_scale`` with balanced signs; for sigmoid and tanh,
        output weights zero.
    position_metric : {"standardize", "diagonal", "euclidean"}, \
            default="standardize"
        The constant metric on positions (see :class:`MeanFieldRegressor`):
        ``"standardize"`` runs the paper's flow on standardised ``X`` while
        keeping positions in the units of ``X``; ``"euclidean"`` is the
        paper's flow on ``X`` as given.
    fit_intercept : bool, default=True
        Whether to fit an intercept ``b`` (not penalised), initialised at the
        best constant: the log-odds of the positive class (binary) or the
        centred log class frequencies (multiclass), weighted by ``s``.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, ``{label: weight}``; ``"balanced"`` uses
        ``n_samples / (n_classes * np.bincount(y))``. They multiply
        ``sample_weight``.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation; with an int, fits are bit-for-bit
        reproducible.
    verbose : bool or int, default=False
        Print the objective every ``verbose`` steps (every step if True).
    warm_start : bool, default=False
        Continue from the particles of the previous fit (which must have had
        the same classes).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    weights_ : ndarray of shape (n_particles,) or (n_particles, n_classes)
        Output weights ``w_i``: 1-D for two classes (one output, the logit of
        ``classes_[1]``), one column per class otherwise.
    positions_ : ndarray of shape (n_particles, n_features + 1)
        Positions ``theta_i``; the last column multiplies the constant input.
    intercept_ : float or ndarray of shape (n_classes,)
        The intercept ``b`` (0 when ``fit_intercept=False``); a float for two
        classes.
    loss_curve_ : list of float
        ``J`` after each step.
    best_loss_ : float
        The smallest ``J`` reached.
    n_iter_ : int
        Number of steps taken.
    step_size_ : float
        The time step in use when the fit stopped.
    n_step_reductions_ : int
        How many times a step was halved because it would have increased
        ``J``.
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
        alpha=1e-5,
        learning_rate_init=2.0,
        max_iter=5000,
        tol=1e-4,
        n_iter_no_change=10,
        init_scale=0.5,
        position_metric="standardize",
        fit_intercept=True,
        class_weight=None,
        random_state=None,
        verbose=False,
        warm_start=False,
    ):
        self.n_particles = n_particles
        self.activation = activation
        self.alpha = alpha
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.init_scale = init_scale
        self.position_metric = position_metric
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

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
        X : array-like of shape (n_samples, n_features)
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
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        classes = encoder.classes_
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
        if len(classes) < 2:
            raise ValueError(
                "MeanFieldClassifier needs samples of at least 2 classes; "
                f"y contains only one class: {classes[0]!r}."
            )
        code = encoder.transform(y)
        sw = _check_sample_weight(
            sample_weight, X, dtype=X.dtype, ensure_non_negative=True
        )
        if self.class_weight is not None:
            sw = sw * compute_sample_weight(self.class_weight, y).astype(X.dtype)
        class_totals = np.bincount(code, weights=sw, minlength=len(classes))
        if np.count_nonzero(class_totals > 0) < 2:
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
        return self._fit_particles(X, Y, sw)

    def decision_function(self, X):
        """The network output ``f(x)``: the logit of ``classes_[1]`` (binary)
        or one score per class (``log P(y = c | x)`` up to a per-sample
        constant).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            1-D for two classes, as in scikit-learn.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        F = self._raw_output(X)
        return F[:, 0] if len(self.classes_) == 2 else F

    def predict_log_proba(self, X):
        """``log P(y = c | x)``: ``log sigmoid(+-f)`` (binary) or
        ``f_c - logsumexp(f)`` (multiclass), finite for every finite ``f``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

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
        X : array-like of shape (n_samples, n_features)

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
        X : array-like of shape (n_samples, n_features)

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
