"""MeanFieldRegressor: a two-layer network trained as a particle gradient flow."""

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import BaseMeanFieldNetwork
from ._losses import SquaredLoss

__all__ = ["MeanFieldRegressor"]


class MeanFieldRegressor(RegressorMixin, BaseMeanFieldNetwork):
    """Two-layer neural network in the mean-field regime, for regression.

    The model is a measure over hidden neurons, discretised into
    ``n_particles`` particles ``(w_i, theta_i)``:

        f(x) = (1/m) sum_i w_i sigma(theta_i . [x, 1]) + b,

    trained by full-batch gradient descent on all weights and positions of

        J = (1/2) sum_j s_j |y_j - f(x_j)|^2
            + (alpha/2) (1/m) sum_i (|w_i|^2 + |theta_i|^2),

    ``s_j`` the sample weights normalised to sum to one (uniform by default),
    with the mean-field scaling of Chizat & Bach (2018): each particle moves
    along ``m`` times its gradient, so ``learning_rate_init`` is a time step of
    the Wasserstein gradient flow whatever ``n_particles``.

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
    learning_rate_init : float, default=0.5
        Largest time step of the flow. A step that would increase ``J`` or
        make it non-finite is halved and retried, so the default is safe on
        raw data.
    max_iter : int, default=5000
        Maximum number of gradient steps (full passes over the data).
    tol : float, default=1e-4
        Relative tolerance: the fit stops when ``J`` has not decreased by
        ``tol * J_best`` for ``n_iter_no_change`` consecutive steps.
    n_iter_no_change : int, default=10
        Patience of the stopping rule.
    init_scale : float, default=0.5
        Size of the initial particles: positions at radius ``init_scale`` in
        units where the features have unit mean square (so pre-activations
        are ``O(init_scale)``); for ReLU, output weights ``+-init_scale`` with
        balanced signs; for sigmoid and tanh, output weights zero.
    position_metric : {"standardize", "diagonal", "euclidean"}, \
            default="standardize"
        The constant metric on positions. ``"standardize"``: the flow on
        ``X`` is exactly the paper's Euclidean flow on standardised ``X``
        (weighted mean and standard deviation per feature), positions kept in
        the units of ``X``; on standardised data it *is* the Euclidean flow,
        and it makes the default step safe and effective on raw data such as
        ``X ~ N(100, 1)``. ``"diagonal"``: per-feature root mean square
        scaling only. ``"euclidean"``: the paper's flow on ``X`` as given.
    fit_intercept : bool, default=True
        Whether to fit an intercept ``b`` (not penalised), initialised at the
        weighted mean of ``y``.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation; with an int, fits are bit-for-bit
        reproducible.
    verbose : bool or int, default=False
        Print the objective every ``verbose`` steps (every step if True).
    warm_start : bool, default=False
        Continue from the particles of the previous fit.

    Attributes
    ----------
    weights_ : ndarray of shape (n_particles,) or (n_particles, n_outputs)
        Output weights ``w_i`` (1-D when ``y`` was 1-D).
    positions_ : ndarray of shape (n_particles, n_features + 1)
        Positions ``theta_i``; the last column multiplies the constant input.
    intercept_ : float or ndarray of shape (n_outputs,)
        The intercept ``b`` (0 when ``fit_intercept=False``).
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
    MeanFieldClassifier : The same flow with a logistic / softmax loss.
    sklearn.neural_network.MLPRegressor : The standard parametrisation.

    References
    ----------
    L. Chizat and F. Bach, "On the Global Convergence of Gradient Descent for
    Over-parameterized Models using Optimal Transport", NeurIPS 2018.

    Examples
    --------
    >>> from sklearn_meanfield import MeanFieldRegressor
    >>> from sklearn_meanfield.datasets import make_teacher_student
    >>> X, y = make_teacher_student(500, 5, n_teacher=3, random_state=0)
    >>> reg = MeanFieldRegressor(n_particles=30, random_state=0).fit(X, y)
    >>> bool(reg.score(X, y) > 0.99)
    True
    """

    def __init__(
        self,
        n_particles=100,
        *,
        activation="relu",
        alpha=1e-5,
        learning_rate_init=0.5,
        max_iter=5000,
        tol=1e-4,
        n_iter_no_change=10,
        init_scale=0.5,
        position_metric="standardize",
        fit_intercept=True,
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
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    def _make_loss(self):
        return SquaredLoss()

    def _squeeze_output(self):
        return self._y_1d

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the particles to ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs; float32 stays float32.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Numeric targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the mean loss (not all zero).

        Returns
        -------
        self : MeanFieldRegressor
        """
        X, y = validate_data(
            self,
            X,
            y,
            multi_output=True,
            y_numeric=True,
            dtype=[np.float64, np.float32],
        )
        if y.dtype.kind not in "biuf":
            raise ValueError(
                f"MeanFieldRegressor needs numeric targets y; got dtype {y.dtype}."
            )
        self._y_1d = y.ndim == 1
        Y = np.asarray(y, dtype=X.dtype).reshape(X.shape[0], -1)
        return self._fit_particles(X, Y, sample_weight)

    def predict(self, X):
        """``f(x) = (1/m) sum_i w_i sigma(theta_i . [x, 1]) + b``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        F = self._raw_output(X)
        return F[:, 0] if self._y_1d else F

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
