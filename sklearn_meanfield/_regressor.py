"""MeanFieldRegressor: a two-layer network trained as a particle gradient flow."""

import warnings
from numbers import Real

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import BaseMeanFieldNetwork, atomic_fit
from ._losses import HuberLoss, PoissonLoss, SquaredLoss

__all__ = ["MeanFieldRegressor"]


class MeanFieldRegressor(RegressorMixin, BaseMeanFieldNetwork):
    """Two-layer neural network in the mean-field regime, for regression.

    The model is a measure over hidden neurons, discretised into
    ``n_particles`` particles ``(w_i, theta_i)``:

        f(x) = (1/m) sum_i w_i sigma(theta_i . [x, 1]) + b.

    It is fitted in unit-free coordinates: with ``x~ = (x - mean) / std``
    per feature and ``y~ = (y - mean_y) / std_y`` per output (weighted
    means and standard deviations of the training data), the particles
    ``(w~_i, theta~_i)`` of ``f~(x~) = (1/m) sum_i w~_i sigma(theta~_i .
    [x~, 1]) + b~`` minimise

        J = (1/2) sum_j s_j |y~_j - f~(x~_j)|^2
            + (alpha/2) (1/m) sum_i (|w~_i|^2 + |theta~_i|^2)

    (with ``loss="squared_error"``; see ``loss`` for the others),

    ``s_j`` the sample weights normalised to sum to one. ``alpha`` is
    therefore a number without units, and the fitted model, mapped back to
    the units of ``X`` and ``y`` (``weights_``, ``positions_``,
    ``intercept_``), does not change when a feature or ``y`` is shifted or
    rescaled. Gradients carry the mean-field scaling of Chizat & Bach
    (2018): each particle moves along ``m`` times its gradient, so a step
    means the same for 10 or 10,000 particles.

    Parameters
    ----------
    n_particles : int, default=100
        Number of particles (hidden neurons) ``m``.
    loss : {"squared_error", "poisson", "huber"}, default="squared_error"
        The data loss ``l``. ``"squared_error"``: ``|y - f|^2 / 2`` on the
        standardised targets. ``"poisson"``: the half Poisson deviance with
        the log link, ``exp(f) - y f + y log y - y``, for counts or rates
        ``y >= 0``: ``f`` models ``log E[y | x]`` and :meth:`predict`
        returns ``exp(f)``; the targets are divided by their mean (a shift
        of ``f``). ``"huber"``: ``r^2 / 2`` for ``|r| <= epsilon``,
        ``epsilon |r| - epsilon^2 / 2`` beyond, on targets standardised by
        their median and ``1.4826`` times their median absolute deviation
        (robust statistics, not inflated by outliers).
    epsilon : float, default=1.35
        Where the Huber loss turns linear, in robust standard deviations of
        ``y`` (the default of :class:`~sklearn.linear_model.HuberRegressor`).
    activation : {"relu", "sigmoid", "logistic", "tanh", "identity"}, \
            default="relu"
        The activation ``sigma``. ReLU makes every neuron 2-homogeneous, the
        case of the global convergence theorem with weight decay;
        ``"logistic"`` is ``"sigmoid"`` (MLP's name); ``"identity"`` makes
        the network linear in ``x`` (with the certificates of ReLU).
    alpha : float or "auto", default="auto"
        Strength of the weight decay ``(alpha/2) (1/m) sum_i (|w~_i|^2 +
        |theta~_i|^2)`` in the unit-free coordinates (no units: the same
        value means the same for any units of ``X`` and ``y``). For ReLU it
        equals ``alpha`` times the path norm at the optimum, as the l1
        penalty of a Lasso on the standardised target; ``alpha_max_`` is the
        smallest value at which the fit is the constant model. ``"auto"``:
        ``0.1 / sqrt(n)``, ``n`` the number of training samples (the sum of
        the sample weights), the ``1 / sqrt(n)`` rate at which the
        statistical error of a fit decreases, so that small noisy data sets
        are regularised more than large ones; the constant was chosen by
        measurement on noise-free teachers (held-out R^2 above 0.999) and on
        the data sets scikit-learn ships (``benchmarks/NOTES.md``); times
        ``sqrt(k)`` for ``k`` outputs (the loss sums one term per output:
        for ReLU, ``k`` copies of one target then have the minimisers of
        that target alone, the output weights ``sqrt(k)^(-1/2)`` times
        theirs and the positions ``sqrt(k)^(1/2)`` times).
        The value used is ``alpha_``. To tune it, use
        :class:`MeanFieldRegressorCV`.
    solver : {"auto", "lbfgs", "adam", "flow"}, default="auto"
        How the particles are moved. ``"lbfgs"``: full-batch L-BFGS on all
        particles (the quasi-Newton method, with a Wolfe line search, in the
        coordinates where the Euclidean metric is the Wasserstein one).
        ``"adam"``: Adam on minibatches of ``batch_size`` samples.
        ``"flow"``: the discretised gradient flow chosen by ``flow`` (the
        dynamics the global convergence theorem covers), full batch with
        step control or on minibatches, with optional ``momentum``.
        ``"auto"``: ``"flow"`` when ``flow`` is not ``"wasserstein"`` or
        ``momentum > 0`` (and for ``partial_fit``); otherwise ``"lbfgs"`` up to
        20,000 training samples and ``"adam"`` on minibatches of 256 (or
        ``batch_size``) above, or when ``batch_size`` is set: when data are
        plentiful an epoch of minibatch steps is worth many full-batch steps.
        The solver used is ``solver_``.
    learning_rate_init : float or None, default=None
        Largest time step of ``"flow"`` (None: 0.5) or step of ``"adam"``
        (None: 0.01); unused by ``"lbfgs"``. A full-batch flow step that
        would increase ``J`` or make it non-finite is halved and retried.
        Unlike MLP's, a flow step is a time step of the mean-field flow:
        each particle moves by ``m`` times its gradient, so the same value
        suits any ``n_particles``.
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
        the unit-free coordinates (so pre-activations are
        ``O(init_scale)``); for ReLU, output weights ``+-init_scale`` with
        balanced signs; for sigmoid and tanh, output weights zero.
    position_metric : {"standardize", "diagonal", "euclidean"}, \
            default="standardize"
        The coordinates of the inputs in which positions move and are
        penalised. ``"standardize"``: ``(x - mean) / std`` per feature,
        invariant to any per-feature affine change of ``X`` (on
        standardised data, the paper's Euclidean flow). ``"diagonal"``:
        ``x / rms`` per feature, invariant to rescaling only.
        ``"euclidean"``: ``X`` as given, the paper's raw flow, which depends
        on the units of ``X``.
    fit_intercept : bool, default=True
        Whether to fit an intercept ``b`` (not penalised), initialised at the
        weighted mean of ``y``. Without one, ``y`` is only rescaled (by its
        root mean square), not centred, so the model has no constant term.
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
        Hold out ``validation_fraction`` of the training data,
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
        Continue from the particles of the previous fit: ``t_``, ``loss_curve_``,
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
    alpha_ : float
        The ``alpha`` of the fit (``"auto"`` resolved).
    alpha_max_ : float or None
        ReLU: the smallest ``alpha`` at which the zero network (intercept
        only) is optimal, ``sup_u |g(u)|`` at the zero measure (see
        ``certificate_max_``); None for sigmoid and tanh, whose penalty is not
        a norm of the measure (they are not homogeneous) and have no convex
        formulation. Estimated from below.
    certificate_max_ : float or None
        ReLU: ``sup_u |g(u)| / alpha`` over unit directions ``u`` of the
        unit-free coordinates, ``g(u) = -sum_j s_j dl/df(x_j)
        relu(u . [x~_j, 1])``: at most 1 certifies the fit as a global
        minimiser of the convex problem over measures (Chizat & Bach, 2018),
        above 1 it says where mass is missing (a ``ConvergenceWarning`` above
        5 suggests more particles or iterations). The sup is estimated from
        below by multi-start ascent on the sphere. None for ``partial_fit``,
        sigmoid and tanh.
    dual_gap_ : float or None
        ReLU: convex objective of the fit minus the Fenchel dual objective at
        the residual rescaled to feasibility by the certificate, in the
        unit-free units of ``J``; small when the fit is optimal.
    weights_ : ndarray of shape (n_particles,) or (n_particles, n_outputs)
        Output weights ``w_i`` in the units of ``y`` (1-D when ``y`` was
        1-D).
    positions_ : ndarray of shape (n_particles, n_features + 1)
        Positions ``theta_i`` in the units of ``X``: neuron ``i`` computes
        ``sigma(positions_[i] . [x, 1])`` (the last column multiplies the
        constant input).
    intercept_ : float or ndarray of shape (n_outputs,)
        The intercept ``b`` (0 when ``fit_intercept=False``).
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

    _parameter_constraints: dict = {
        **BaseMeanFieldNetwork._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson", "huber"})],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        n_particles=100,
        *,
        loss="squared_error",
        epsilon=1.35,
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
        self.loss = loss
        self.epsilon = epsilon
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

    _standardize_targets = True
    _default_learning_rates = {"flow": 0.5, "adam": 1e-2}

    def _auto_alpha_terms(self, targets_info):
        """``sqrt(k)`` for ``k`` outputs: with ``k`` copies of one target the
        objective is ``k L(w, theta) + (alpha_k / 2) (k |w|^2 + |theta|^2)``
        (``w`` one output's weights), which the change ``w -> w / c``,
        ``theta -> c theta``, ``c^2 = sqrt(k)`` (the same network for ReLU)
        turns into ``k`` times the single target's objective at ``alpha =
        alpha_k / sqrt(k)``."""
        return float(np.sqrt(targets_info.get("n_outputs_", 1)))

    def _make_loss(self, targets_info=None):
        if self.loss == "poisson":
            return PoissonLoss()
        if self.loss == "huber":
            return HuberLoss(self.epsilon)
        return SquaredLoss()

    def _squeeze_output(self, targets_info=None):
        info = self.__dict__ if targets_info is None else targets_info
        return info["_y_1d"]

    def _validate_Xy(self, X, y, reset):
        """Validated ``X``, ``Y`` (n_samples, n_outputs) in ``X``'s dtype, and
        whether ``y`` is 1-D (a column vector counts as 1-D, with a
        ``DataConversionWarning``, as in MLPRegressor)."""
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            multi_output=True,
            y_numeric=True,
            dtype=[np.float64, np.float32],
            accept_sparse="csr",
        )
        if y.dtype.kind not in "biuf":
            raise ValueError(
                f"MeanFieldRegressor needs numeric targets y; got dtype {y.dtype}."
            )
        y_1d = self._check_y_shape(y, reset)
        Y = np.asarray(y, dtype=X.dtype).reshape(X.shape[0], -1)
        if Y.dtype != y.dtype and Y.size:
            _check_cast(np.reshape(y, Y.shape), Y)
        if self.loss == "poisson" and np.any(Y < 0):
            raise ValueError(
                "loss='poisson' needs non-negative targets y (counts or rates); "
                f"the smallest is {float(Y.min())!r}."
            )
        return X, Y, y_1d

    def _check_y_shape(self, y, reset):
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. "
                "Please change the shape of y to (n_samples, ), for example "
                "using ravel().",
                DataConversionWarning,
                stacklevel=6,
            )
        y_1d = y.ndim == 1 or y.shape[1] == 1
        if not reset and y_1d != self._y_1d:
            raise ValueError(
                "partial_fit needs y with the same number of outputs as the "
                f"first call ({'1-D' if self._y_1d else 'several outputs'}); got "
                f"{'1-D' if y_1d else f'{y.shape[1]} outputs'}."
            )
        return y_1d

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
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Numeric targets (non-negative for ``loss="poisson"``).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the mean loss (not all zero).
        X_val : {array-like, sparse matrix} of shape (n_val, n_features), \
                default=None
            Validation inputs: the score of every epoch is recorded in
            ``validation_scores_`` and, with ``early_stopping=True``, used
            to stop and to keep the best particles instead of a split of
            ``X`` (``validation_fraction`` is then unused). In a
            :class:`~sklearn.pipeline.Pipeline`, request it with
            ``set_fit_request(X_val=True, y_val=True)`` (metadata routing)
            and have it transformed like ``X`` with
            ``Pipeline(..., transform_input=["X_val"])``.
        y_val : array-like of shape (n_val,) or (n_val, n_outputs), \
                default=None
            Validation targets, with ``X_val``.
        sample_weight_val : array-like of shape (n_val,), default=None
            Weights of the validation score.

        Returns
        -------
        self : MeanFieldRegressor
        """
        X, Y, y_1d = self._validate_Xy(X, y, reset=True)
        validation_set = self._validate_validation_set(X_val, y_val, sample_weight_val)
        if validation_set is not None:
            validation_set = self._encode_validation(X, Y, *validation_set)
        return self._fit_particles(
            X,
            Y,
            sample_weight,
            targets_info={"_y_1d": y_1d, "n_outputs_": Y.shape[1]},
            validation_set=validation_set,
        )

    def _encode_validation(self, X, Y, X_val, y_val, sample_weight_val):
        X_val, y_val = validate_data(
            self,
            X_val,
            y_val,
            reset=False,
            multi_output=True,
            y_numeric=True,
            dtype=X.dtype,
            accept_sparse="csr",
        )
        Y_val = np.asarray(y_val, dtype=X.dtype).reshape(X_val.shape[0], -1)
        if Y_val.shape[1] != Y.shape[1]:
            raise ValueError(f"y_val has {Y_val.shape[1]} outputs; y has {Y.shape[1]}.")
        return X_val, Y_val, sample_weight_val

    @_fit_context(prefer_skip_nested_validation=True)
    @atomic_fit
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch of the flow on ``(X, y)``, from the current particles.

        The first call initialises the particles (and the position metric)
        from this data; later calls continue, with the feature count checked.
        With ``batch_size=None`` the epoch is one full-batch step; set
        ``batch_size`` for stochastic steps over the chunk.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : MeanFieldRegressor
        """
        first = not hasattr(self, "positions_")
        X, Y, y_1d = self._validate_Xy(X, y, reset=first)
        return self._fit_particles(
            X,
            Y,
            sample_weight,
            targets_info={"_y_1d": y_1d, "n_outputs_": Y.shape[1]},
            incremental=True,
        )

    def _score_output(self, F, Y, s, objective):
        """R^2 of the predictions of the outputs ``F`` (the validation
        score; R^2 is the same in the unit-free coordinates)."""
        return r2_score(Y, objective.loss.inverse_link(F), sample_weight=s)

    def predict(self, X):
        """The prediction ``f(x) = (1/m) sum_i w_i sigma(theta_i . [x, 1]) +
        b``, or ``exp(f(x))`` for ``loss="poisson"`` (``f`` is the log of the
        mean).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, dtype=[np.float64, np.float32], accept_sparse="csr"
        )
        F = self._objective.loss.inverse_link(self._raw_output(X))
        return F[:, 0] if self._y_1d else F

    def score(self, X, y, sample_weight=None):
        """R^2 of ``predict(X)`` against ``y``, as ``RegressorMixin.score``.

        R^2 does not change when each output and its predictions are divided
        by a common scale: both are divided by the largest magnitude of the
        output first, so that targets beyond 1e154 (whose squares overflow)
        get their R^2 rather than NaN.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        y_pred = self.predict(X)
        y = np.asarray(y)
        if y.dtype.kind in "biuf" and y.size and y.shape[0] == y_pred.shape[0]:
            with np.errstate(invalid="ignore"):
                top = np.maximum(np.abs(y).max(axis=0), np.abs(y_pred).max(axis=0))
            top = np.where(np.isfinite(top) & (top > 0), top, 1.0)
            y, y_pred = y / top, y_pred / top
        return float(r2_score(y, y_pred, sample_weight=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _check_cast(y, Y):
    """Raise a ValueError when the cast of ``y`` to ``X``'s dtype flattens a
    varying output to one value (values below its resolution or its smallest
    number: e.g. 1e-50 in float32 is 0), which would fit a constant."""
    with np.errstate(over="ignore", invalid="ignore"):
        lost = (np.ptp(y, axis=0) > 0) & (np.ptp(Y, axis=0) == 0)
    if np.any(lost):
        raise ValueError(
            f"The outputs {np.flatnonzero(lost)[:5].tolist()} of y vary, but not "
            f"once cast to {Y.dtype} (the dtype of X): their variations are "
            f"below the resolution of {Y.dtype}. Rescale y, or pass X as "
            "float64."
        )
