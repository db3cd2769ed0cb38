"""The fit path shared by the mean-field network estimators.

An estimator here only chooses a loss and how to encode ``y``; validation of
the hyperparameters, the covering initialisation, warm starts, the flow and
the fitted attributes live in :class:`BaseMeanFieldNetwork`.
"""

import copy
import functools
import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight

from ._certificates import network_certificate
from ._flow import ParticleFlow, TrainingData
from ._lbfgs import LBFGS
from ._losses import L2Penalty, weighted_median
from ._memory import check_particle_memory
from ._objective import MeanFieldObjective, Particles
from ._rules import Adam, ConicStep, GradientStep, HeavyBall, LangevinStep
from ._units import (
    ACTIVATIONS,
    NeuronUnit,
    affine_transform,
    check_spread,
    column_spread,
)

__all__ = ["BaseMeanFieldNetwork", "TrainingRecord", "atomic_fit"]

#: a partial_fit call whose steps end with more than this many times the
#: objective it started with (on its data) warns: the step is too large,
#: and such calls compound (a noisy call ends only somewhat above its start)
INCREMENTAL_WORSE_FACTOR = 2.0


def atomic_fit(method):
    """Make a ``fit``-like method atomic: if it raises (or is interrupted
    outside the solvers, which catch ``KeyboardInterrupt`` themselves and
    keep the last completed step), the estimator's attributes are restored
    to what they were, so a fitted estimator keeps its model and an unfitted
    one stays unfitted."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        saved = dict(self.__dict__)
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    return wrapper


@dataclass(frozen=True)
class TrainingRecord:
    """What the ``callback`` of a network estimator receives after every
    epoch (every iteration of L-BFGS).

    Attributes
    ----------
    iteration : int
        The epoch (iteration) just completed, counted as ``n_iter_`` counts.
    loss : float
        The objective ``J`` after it, in the unit-free coordinates of the fit
        (as ``loss_curve_``).
    validation_score : float or None
        The score on the validation data (``early_stopping`` or ``X_val``),
        None without validation data.
    step_size : float or None
        The step of the epoch's last update (None for L-BFGS).
    weights, positions, intercept : ndarray
        The particles in the units of ``X`` and ``y``, as the attributes
        ``weights_``, ``positions_``, ``intercept_`` of a fit stopped here
        (read-only copies).

    Examples
    --------
    Record a custom metric, the path norm ``(1/m) sum_i |w_i| |theta_i|`` of
    the particles, at every epoch, and stop once the loss is small:

    >>> import numpy as np
    >>> from sklearn_meanfield import MeanFieldRegressor
    >>> from sklearn_meanfield.datasets import make_teacher_student
    >>> X, y = make_teacher_student(200, 3, n_teacher=2, random_state=0)
    >>> path_norms = []
    >>> def monitor(record):
    ...     norms = np.abs(record.weights) * np.linalg.norm(record.positions, axis=1)
    ...     path_norms.append(norms.mean())
    ...     return record.loss < 1e-3
    >>> reg = MeanFieldRegressor(n_particles=20, callback=monitor, random_state=0)
    >>> reg = reg.fit(X, y)
    >>> len(path_norms) == reg.n_iter_
    True
    """

    iteration: int
    loss: float
    validation_score: float | None
    step_size: float | None
    weights: np.ndarray
    positions: np.ndarray
    intercept: object


def normalized_sample_weight(sample_weight, X, dtype):
    """Sample weights ``s`` with ``sum_j s_j = 1``, validated.

    Raises
    ------
    ValueError
        If a weight is negative or not finite, or all weights are zero.
    """
    # validated and normalised in float64 (a weight of 1e-50 is not zero,
    # even for float32 X), then cast; divided by the largest weight first:
    # weights near the largest float would sum to inf (and normalise to 0)
    sw = _check_sample_weight(
        sample_weight, X, dtype=np.float64, ensure_non_negative=True
    )
    top = float(sw.max()) if sw.size else 0.0
    if not top > 0:
        raise ValueError(
            "sample_weight must have a positive sum; all the sample weights are zero."
        )
    s = sw / top
    return (s / s.sum()).astype(dtype, copy=False)


class BaseMeanFieldNetwork(BaseEstimator):
    """Two-layer network ``f(x) = (1/m) sum_i w_i sigma(theta_i . [x, 1]) + b``
    trained as a particle gradient flow. Not for direct use."""

    _parameter_constraints: dict = {
        "n_particles": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "solver": [StrOptions({"auto", "lbfgs", "adam", "flow"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither"), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "init_scale": [Interval(Real, 0, None, closed="neither")],
        "position_metric": [StrOptions({"standardize", "diagonal", "euclidean"})],
        "fit_intercept": ["boolean"],
        "batch_size": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
            None,
        ],
        "shuffle": ["boolean"],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "flow": [StrOptions({"wasserstein", "conic", "langevin"})],
        "temperature": [Interval(Real, 0, None, closed="left")],
        "annealing": [StrOptions({"constant", "linear"})],
        "record_every": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "callback": [callable, None],
    }

    #: samples above which solver="auto" takes minibatch steps (Adam) rather
    #: than full-batch L-BFGS; see the estimators' ``solver`` documentation
    _auto_minibatch_samples = 20_000
    #: minibatch size of solver="auto" above that size
    _auto_batch_size = 256
    #: whether the targets are standardised (regression) before the fit
    _standardize_targets = False

    def _resolve_solver(self, n_samples, incremental):
        """The solver ``"auto"`` stands for, and the minibatch size.

        ``"flow"`` when the dynamics asked for exist only as a flow (conic or
        Langevin flow, momentum) or for ``partial_fit`` without ``solver``;
        otherwise full-batch L-BFGS up to ``_auto_minibatch_samples``
        samples, and Adam on minibatches above (or when ``batch_size`` is
        set).
        """
        solver = self.solver
        explicit_batch = self.batch_size is not None and self.batch_size != "auto"
        if solver == "auto":
            if self.flow != "wasserstein" or self.momentum > 0 or incremental:
                solver = "flow"
            elif explicit_batch or n_samples > self._auto_minibatch_samples:
                solver = "adam"
            else:
                solver = "lbfgs"
        if solver == "lbfgs":
            if incremental:
                raise ValueError(
                    "partial_fit is not available with solver='lbfgs' (a "
                    "quasi-Newton method needs the whole data); use "
                    "solver='adam' or solver='flow'."
                )
            return solver, None
        batch_size = self.batch_size
        if batch_size == "auto":  # MLP's rule
            batch_size = min(200, n_samples)
        elif solver == "adam" and batch_size is None and self.solver == "auto":
            batch_size = self._auto_batch_size
        return solver, batch_size

    def _learning_rate(self, solver):
        if self.learning_rate_init is not None:
            return float(self.learning_rate_init)
        return self._default_learning_rates[solver]

    #: alpha="auto" is ``_auto_alpha_scale / sqrt(n)``
    _auto_alpha_scale = 0.1

    def _penalty_alpha(self, n_samples, targets_info=None):
        """The ``alpha`` of a fit on ``n_samples`` samples (the sum of the
        sample weights): ``alpha`` itself, or for ``"auto"``
        ``0.1 / sqrt(n_samples)`` times ``_auto_alpha_terms(targets_info)``
        (the cross-validated one for the CV estimators)."""
        if isinstance(self.alpha, str):
            terms = self._auto_alpha_terms(targets_info or {})
            return terms * self._auto_alpha_scale / np.sqrt(max(float(n_samples), 1.0))
        return float(self.alpha)

    def _auto_alpha_terms(self, targets_info):
        """How many loss terms of unit size a sample contributes (1)."""
        return 1

    def _make_objective(self, alpha, targets_info):
        unit = NeuronUnit(self.activation, self.init_scale, self.position_metric)
        return MeanFieldObjective(unit, self._make_loss(targets_info), L2Penalty(alpha))

    def _init_particles(self, objective, Xp, Y, s, n_outputs, random_state):
        """The covering initialisation of Chizat & Bach (2018).

        ReLU (2-homogeneous): positions on a sphere (see
        :meth:`NeuronUnit.init_positions`) and output weights ``+-init_scale``
        with balanced signs (even particles +, odd particles -), so that the
        initial network is small and every direction carries both signs.
        sigmoid / tanh (partially 1-homogeneous): Gaussian positions and zero
        output weights (``+-1e-3`` with the conic flow, whose multiplicative
        update cannot move a zero weight).
        """
        unit = objective.unit
        m = self.n_particles
        positions = unit.init_positions(m, Xp, s, random_state)
        signs = np.where(np.arange(m) % 2 == 0, 1.0, -1.0)
        if unit.homogeneous:
            weights = np.repeat((self.init_scale * signs)[:, None], n_outputs, axis=1)
        elif self.flow == "conic":
            # the multiplicative update cannot create mass from zero: tiny
            # balanced weights instead of zeros
            weights = np.repeat((1e-3 * signs)[:, None], n_outputs, axis=1)
        else:
            weights = np.zeros((m, n_outputs))
        intercept = (
            objective.loss.init_intercept(Y, s).astype(Xp.dtype)
            if self.fit_intercept
            else None
        )
        return Particles(weights.astype(Xp.dtype), positions, intercept)

    def _recover_dead_particles(self, random_state, threshold=1e-3):
        """Re-cover the sphere with the particles a strong penalty killed.

        A ReLU particle whose mass ``|w_i| |theta_i|`` fell below
        ``threshold`` times the largest (or than ``init_scale**2``, the mass
        of an initial particle) has (almost) no gradient left: it
        can never come back when a smaller ``alpha`` needs it. Along a
        regularisation path such particles are restarted in pairs at random
        directions of radius ``init_scale`` with output weights
        ``+init_scale`` and ``-init_scale``: the two cancel, so the predictions
        are unchanged, while both have gradients again (the balanced-sign
        covering of the initialisation). Returns the number restarted.
        """
        unit = self._objective.unit
        if not unit.homogeneous:
            return 0
        p = self._fitted_particles()
        mass = np.linalg.norm(p.weights, axis=1) * np.linalg.norm(p.positions, axis=1)
        # relative to the initial mass init_scale^2 too: at alpha_max every
        # particle collapses, the largest included
        scale = max(float(mass.max()), self.init_scale**2)
        dead = np.flatnonzero(mass <= threshold * scale)
        if not dead.size:
            return 0
        n_pairs = dead.size // 2
        U = random_state.standard_normal((max(n_pairs, 1), p.positions.shape[1]))
        U *= self.init_scale / np.linalg.norm(U, axis=1, keepdims=True)
        U = U.astype(p.positions.dtype)
        first, second = dead[:n_pairs], dead[n_pairs : 2 * n_pairs]
        p.positions[first] = p.positions[second] = U[:n_pairs]
        p.weights[first], p.weights[second] = self.init_scale, -self.init_scale
        if dead.size % 2:  # the odd one out: a direction with no weight
            p.positions[dead[-1]], p.weights[dead[-1]] = U[-1], 0
        self._set_particle_attributes(p)
        return int(dead.size)

    def _warm_particles(self, n_features, n_outputs, dtype, force=False):
        """The particles of the previous fit, when ``warm_start`` (or
        ``partial_fit``, ``force=True``) can use them."""
        if not ((self.warm_start or force) and hasattr(self, "positions_")):
            return None
        old = self._fitted_particles()
        expected = (self.n_particles, n_features + 1, n_outputs)
        found = (old.n_particles, old.positions.shape[1], old.weights.shape[1])
        if expected != found:
            raise ValueError(
                "Continuing a fit (warm_start=True or partial_fit) needs the same "
                "n_particles, number of features "
                f"and of outputs as the previous fit: the previous fit had "
                f"{found[0]} particles, {found[1] - 1} features and {found[2]} "
                f"outputs, this one has {expected[0]}, {expected[1] - 1} and "
                f"{expected[2]}."
            )
        if (old.intercept is not None) != self.fit_intercept:
            raise ValueError(
                "Continuing a fit (warm_start=True or partial_fit) cannot change "
                "fit_intercept."
            )
        return Particles(
            *(
                None if a is None else a.astype(dtype)
                for a in (old.weights, old.positions, old.intercept)
            )
        )

    def _make_rule(self, solver):
        """The update rule of a ``"flow"`` or ``"adam"`` run."""
        if self.momentum > 0 and (self.flow != "wasserstein" or solver != "flow"):
            raise ValueError(
                f"momentum={self.momentum} is only supported with "
                f"flow='wasserstein' and solver='flow' (or 'auto'), not "
                f"flow={self.flow!r} and solver={self.solver!r}."
            )
        if solver == "adam":
            if self.flow != "wasserstein":
                raise ValueError(
                    f"flow={self.flow!r} needs solver='flow' (or 'auto'); "
                    f"solver={self.solver!r} runs the Wasserstein flow's "
                    "gradients."
                )
            return Adam()
        if self.flow == "conic":
            return ConicStep()
        if self.flow == "langevin":
            return LangevinStep(self.temperature, self.annealing)
        if self.momentum > 0:
            return HeavyBall(self.momentum)
        return GradientStep()

    def _make_solver(
        self,
        solver,
        batch_size,
        rule,
        max_iter,
        start_epoch,
        first_iteration,
        incremental,
        random_state,
    ):
        """The solver object of one run (see :mod:`sklearn_meanfield._flow`)."""
        options = dict(
            max_iter=max_iter,
            tol=self.tol,
            n_iter_no_change=None if incremental else self.n_iter_no_change,
            record_every=self.record_every,
            verbose=self.verbose,
            warn_on_max_iter=not incremental,
            first_iteration=first_iteration,
            early_stopping=self.early_stopping,
        )
        if solver == "lbfgs":
            if self.momentum > 0:
                raise ValueError(
                    f"momentum={self.momentum} is a parameter of solver='flow'; "
                    "solver='lbfgs' has none."
                )
            if self.flow != "wasserstein":
                raise ValueError(
                    f"flow={self.flow!r} needs solver='flow' (or 'auto'), not "
                    "solver='lbfgs'."
                )
            return LBFGS(**options)
        return ParticleFlow(
            rule,
            # (partial_fit: no max_iter warning, but a call whose steps more
            # than double J is diverging, not noisy)
            warn_worse=INCREMENTAL_WORSE_FACTOR if incremental else None,
            learning_rate_init=self._learning_rate(solver),
            batch_size=batch_size,
            shuffle=self.shuffle,
            learning_rate=self.learning_rate,
            power_t=self.power_t,
            start_epoch=start_epoch,
            random_state=random_state,
            **options,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # X may be a scipy sparse matrix (CSR used): the products with the
        # positions are sparse @ dense
        tags.input_tags.sparse = True
        return tags

    def _fit_particles(
        self,
        X,
        Y,
        sample_weight,
        *,
        targets_info,
        stratify=None,
        incremental=False,
        validation_set=None,
    ):
        """The shared fit path: validate, build the objective and the solver,
        run, set the attributes.

        ``X`` validated (n, d), ``Y`` encoded (n, k) float, ``targets_info``
        the attributes describing the targets (``classes_``, ...), set with
        the others at the end and read by ``_make_loss``; ``stratify`` the
        labels to stratify the validation split on (classifiers);
        ``validation_set`` a user's ``(X_val, Y_val, sample_weight_val)``,
        encoded like ``X`` and ``Y``. ``incremental=True`` (``partial_fit``):
        one epoch from the current particles (initialised on the first
        call), no early stopping. Continuing a fit (``warm_start``,
        ``partial_fit``) keeps the input and target coordinates of the
        first fit, and the counters, loss curve and schedule of the run.
        Nothing is assigned to ``self`` before the run has succeeded.
        """
        if incremental and self.early_stopping:
            raise ValueError(
                "partial_fit does not support early_stopping=True (there is no "
                "held-out data in one call); set early_stopping=False."
            )
        sw = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        random_state = check_random_state(self.random_state)
        validation = validation_set
        if validation is None and self.early_stopping:
            X, Y, sw, validation = self._validation_split(
                X, Y, sw, stratify, random_state
            )
        s = normalized_sample_weight(sw, X, X.dtype)
        alpha = self._penalty_alpha(float(sw.sum()), targets_info)
        solver, batch_size = self._resolve_solver(X.shape[0], incremental)
        check_particle_memory(
            self.n_particles, X.shape[1] + 1, Y.shape[1], X.dtype.itemsize, solver
        )
        previous = self._warm_particles(
            X.shape[1], Y.shape[1], X.dtype, force=incremental
        )
        objective = self._make_objective(alpha, targets_info)
        if previous is None:
            objective.unit.fit_inputs(X, s)
            targets = self._fit_targets(Y, s, objective.loss)
        else:
            # the particles live in the previous fit's coordinates of X and y:
            # a new position_metric or loss would read them in other ones
            old_unit = self._objective.unit
            changed = [
                (name, old, new)
                for name, old, new in [
                    ("loss", self._targets.loss, objective.loss.name),
                    (
                        "position_metric",
                        old_unit.metric_kind,
                        objective.unit.metric_kind,
                    ),
                ]
                if old != new
            ]
            if changed:
                names = " or ".join(name for name, _, _ in changed)
                had = ", ".join(f"{n}={o!r} (now {w!r})" for n, o, w in changed)
                raise ValueError(
                    "Continuing a fit (warm_start=True or partial_fit) cannot change "
                    f"{names}: the previous fit had {had}. Fit from scratch instead "
                    "(fit with warm_start=False)."
                )
            objective.unit.inputs = old_unit.inputs
            targets = self._targets
        Xp = objective.unit.prepare(X)
        Ys = targets.transform(Y)
        if previous is None:
            particles = self._init_particles(
                objective, Xp, Ys, s, Y.shape[1], random_state
            )
            epochs_done, first_iteration, samples_seen = 0, 0, 0
            rule = self._make_rule(solver) if solver != "lbfgs" else None
        else:
            particles = previous
            # the schedule and t_ continue; n_iter_ counts on for partial_fit
            # and restarts for warm_start (as MLP's)
            epochs_done = self.__dict__.get("_epochs_done", self.n_iter_)
            samples_seen = self.t_
            first_iteration = self.n_iter_ if incremental else 0
            # the rule's state (velocity, moments) carries over; a copy, so
            # that a run that raises leaves the fitted rule as it was
            rule = copy.deepcopy(getattr(self, "_rule", None))
            if solver == "lbfgs" or type(rule) is not type(self._make_rule(solver)):
                rule = self._make_rule(solver) if solver != "lbfgs" else None
        validation_scorer = None
        if validation is not None:
            X_val, Y_val, sw_val = validation
            Xp_val = objective.unit.prepare(X_val)
            Ys_val = targets.transform(Y_val)
            s_val = normalized_sample_weight(sw_val, X_val, X_val.dtype)

            def validation_scorer(particles):
                return self._score_output(
                    objective.predict(Xp_val, particles), Ys_val, s_val, objective
                )

        on_epoch = None
        if self.callback is not None:
            user_callback = self.callback

            def on_epoch(record):
                return user_callback(
                    self._training_record(record, objective, targets, targets_info)
                )

        run = self._make_solver(
            solver,
            batch_size,
            rule,
            1 if incremental else self.max_iter,
            epochs_done,
            first_iteration,
            incremental,
            random_state,
        )
        result = run.run(
            objective,
            TrainingData(Xp, Ys, s),
            particles,
            validation=validation_scorer,
            on_epoch=on_epoch,
        )
        objective.release()
        F = objective.predict(Xp, result.particles)
        if not incremental and validation is None:
            self._check_beats_constant(objective, Ys, s, F)
        self._check_finite_outputs(targets, F)
        # everything that can fail runs before the first attribute is set:
        # a fit that raises (or is interrupted) leaves the estimator as it was
        certificate = self._certificate(
            objective, Xp, Ys, s, result.particles, incremental
        )
        continuing = previous is not None
        for name, value in targets_info.items():
            setattr(self, name, value)
        self._objective = objective
        self._targets = targets
        self._rule = rule
        self._fit_intercept = self.fit_intercept
        self._epochs_done = epochs_done + result.n_iter
        self.solver_ = solver
        self.n_outputs_ = Y.shape[1]
        self.out_activation_ = objective.loss.out_activation
        if continuing:
            self.loss_curve_ = [*self.loss_curve_, *result.loss_curve]
        else:
            self.loss_curve_ = list(result.loss_curve)
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else np.nan
        self.n_iter_ = first_iteration + result.n_iter
        self.t_ = samples_seen + result.samples_seen
        if validation is not None:
            earlier = (getattr(self, "validation_scores_", None) or []) * continuing
            self.validation_scores_ = [*earlier, *result.validation_scores]
            self.best_validation_score_ = result.best_validation_score
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
        if self.early_stopping and validation is not None:
            self.best_loss_ = None
        else:
            self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else np.nan
        self.step_size_ = result.step_size
        self.n_step_reductions_ = result.n_step_reductions
        if self.record_every:
            self.trajectory_ = self._raw_trajectory(result.trajectory)
        else:
            # (a previous fit's would describe other particles)
            self.__dict__.pop("trajectory_", None)
        self.alpha_ = alpha
        self.alpha_max_, self.certificate_max_, self.dual_gap_ = certificate
        self._set_particle_attributes(result.particles)
        return self

    def _training_record(self, record, objective, targets, targets_info):
        """The :class:`TrainingRecord` a user's callback receives."""
        p = record.particles
        weights, positions, intercept = _raw_particles(
            p, objective.unit, targets, self._squeeze_output(targets_info)
        )
        for a in (weights, positions, intercept):
            if isinstance(a, np.ndarray):
                a.flags.writeable = False
        return TrainingRecord(
            record.iteration,
            record.loss,
            record.validation_score,
            record.step_size,
            weights,
            positions,
            intercept,
        )

    def _validate_validation_set(self, X_val, y_val, sample_weight_val):
        """A user's validation set, validated like the training data (None
        without ``X_val``)."""
        if X_val is None and y_val is None:
            if sample_weight_val is not None:
                raise ValueError("sample_weight_val is given without X_val and y_val.")
            return None
        if X_val is None or y_val is None:
            raise ValueError("X_val and y_val must be given together.")
        return X_val, y_val, sample_weight_val

    def _check_beats_constant(self, objective, Y, s, F):
        """Warn when the fitted outputs ``F`` (unit-free) fit the training
        data worse than the constant model (no neuron, the best intercept):
        the particles are then worse than none, whatever the reason (a
        diverged start, too few iterations). The data terms are compared,
        with a margin of 1% (and 1e-12 absolute, in the unit-free units):
        near ``alpha_max`` a fit is the constant model up to its stopping
        tolerance, which is no failure."""
        loss = objective.loss
        b = loss.init_intercept(Y, s) if self.fit_intercept else np.zeros(Y.shape[1])
        constant = np.broadcast_to(b, Y.shape).astype(Y.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            J_constant, _ = loss.value_and_gradient(Y, constant.copy(), s)
            J_fit, _ = loss.value_and_gradient(Y, F.copy(), s)
        if np.isfinite(J_constant) and not J_fit <= J_constant * 1.01 + 1e-12:
            warnings.warn(
                f"The fit ends with a larger loss than the constant model "
                f"({J_fit:.6g} against {J_constant:.6g} without any neuron): "
                "the particles are worse than none. Give it more iterations "
                "(max_iter), or check the inputs' scales (position_metric) and "
                "learning_rate_init.",
                ConvergenceWarning,
                stacklevel=5,
            )

    def _check_finite_outputs(self, targets, F):
        """Raise a ValueError when the fitted model's outputs ``F`` on the
        training inputs overflow in the units of ``y`` (a fit whose
        predictions would be infinite, e.g. from inputs so large that one
        step sends the outputs billions of standard deviations away)."""
        with np.errstate(over="ignore", invalid="ignore"):
            F_raw = targets.inverse_transform(F)
        if not np.all(np.isfinite(F_raw)):
            raise ValueError(
                "The fitted model's outputs on the training data overflow in "
                "the units of y: the fit diverged (see the ConvergenceWarning). "
                "Rescale X and y, or use position_metric='standardize'."
            )

    #: certificate above which a fit warns that it is not a global minimiser:
    #: "well above 1". Default fits end between 1.0 and 1.8 on real data and
    #: up to 1.9 on noisy teachers, where more particles or iterations barely
    #: lower it (300 particles: 1.4-1.6), so a warning there would give
    #: advice that does not help; too few particles end far above (one
    #: particle on a teacher: above 100).
    _certificate_warn = 5.0

    def _certificate(self, objective, Xp, Y, s, particles, incremental):
        """``(alpha_max, certificate, dual_gap)`` of a ReLU ``fit`` (None
        otherwise; see :mod:`sklearn_meanfield._certificates`), with a
        warning when the certificate says mass is missing."""
        if incremental or not objective.unit.homogeneous:
            return None, None, None
        alpha_max, certificate, gap = network_certificate(
            objective,
            Xp,
            Y,
            s,
            particles,
            objective.penalty.alpha,
            check_random_state(0),
        )
        if certificate is not None and certificate > self._certificate_warn:
            warnings.warn(
                f"The fit is not a global minimiser of the convex problem: "
                f"certificate_max_ = {certificate:.3g} > 1 (a "
                "direction where adding a neuron lowers the objective). Use "
                "more particles (n_particles) or iterations (max_iter, a "
                "smaller tol).",
                ConvergenceWarning,
                stacklevel=6,
            )
        return alpha_max, certificate, gap

    def _fit_targets(self, Y, s, loss):
        """The map of the targets to unit-free coordinates (for ``loss``)."""
        return _TargetScaler(
            self._standardize_targets, self.fit_intercept, loss.name
        ).fit(Y, s)

    def _raw_trajectory(self, record):
        """A trajectory record in the units of the data."""
        unit, targets = self._objective.unit, self._targets
        weights = record["weights"]
        if weights is not None:
            weights = weights * targets.scale_.astype(weights.dtype)
        positions = record["positions"]
        if positions is not None:
            positions = np.stack([unit.to_raw_positions(p) for p in positions])
        return {**record, "weights": weights, "positions": positions}

    def _validation_split(self, X, Y, sw, stratify, random_state):
        """Hold out ``validation_fraction`` of the samples (stratified on
        ``stratify`` when given) for early stopping."""
        n_val = int(np.ceil(self.validation_fraction * X.shape[0]))
        if n_val < 2 or X.shape[0] - n_val < 2:
            raise ValueError(
                "early_stopping=True needs at least 2 training and 2 validation "
                f"samples; got {X.shape[0]} samples with validation_fraction="
                f"{self.validation_fraction}."
            )
        train, val = train_test_split(
            np.arange(X.shape[0]),
            test_size=self.validation_fraction,
            random_state=random_state,
            stratify=stratify,
        )
        return X[train], Y[train], sw[train], (X[val], Y[val], sw[val])

    def _set_particle_attributes(self, p):
        """Public attributes in the units of ``X`` and ``y`` from the particles
        in unit-free coordinates."""
        self.weights_, self.positions_, self.intercept_ = _raw_particles(
            p, self._objective.unit, self._targets, self._squeeze_output()
        )

    def _fitted_particles(self):
        """The fitted measure in unit-free coordinates, rebuilt from the public
        attributes, so that ``weights_``, ``positions_`` and ``intercept_`` are
        what predicts."""
        unit, targets = self._objective.unit, self._targets
        W = np.asarray(self.weights_)
        W = W[:, None] if W.ndim == 1 else W
        scale = targets.scale_.astype(W.dtype)
        b = np.atleast_1d(np.asarray(self.intercept_, dtype=W.dtype))
        b = (b - targets.offset_.astype(W.dtype)) / scale
        positions = unit.from_raw_positions(np.asarray(self.positions_))
        return Particles(W / scale, positions, b if self._fit_intercept else None)

    def _squeeze_output(self, targets_info=None):
        """Whether the fitted arrays drop the output axis (1-D ``y``), from
        ``targets_info`` (default: the fitted attributes)."""
        return False

    def _raw_output(self, X):
        """``F(X)`` (n_samples, n_outputs) from the fitted particles, in the
        units of ``y``."""
        F = self._objective.predict_inputs(X, self._fitted_particles())
        return self._targets.inverse_transform(F)


def _raw_particles(p, unit, targets, squeeze):
    """``(weights, positions, intercept)`` in the units of ``X`` and ``y``
    from particles in unit-free coordinates (1-D weights and a float
    intercept when ``squeeze``)."""
    W, b = targets.to_raw(p.weights, p.intercept)
    weights = W[:, 0].copy() if squeeze else W
    intercept = float(b[0]) if squeeze else b
    return weights, unit.to_raw_positions(p.positions), intercept


class _TargetScaler:
    """Unit-free targets for the regression losses.

    Without ``standardize``, the identity (classification: the outputs are
    logits, already without units). Otherwise, by loss:

    - ``"squared_error"``: ``y~ = (y - offset) / scale``, ``offset`` the
      weighted mean of each output (0 without an intercept, which keeps the
      model free of one) and ``scale`` the weighted standard deviation (root
      mean square without an intercept; 1 for a constant output);
    - ``"huber"``: the same with robust statistics, the weighted median and
      ``1.4826`` times the weighted median absolute deviation (the standard
      deviation for Gaussian data, not inflated by outliers; the standard
      deviation when more than half the values are equal);
    - ``"poisson"``: ``y~ = y / c``, ``c`` the weighted mean (the log link
      turns the scale into a shift of the output, ``f = f~ + log c``).

    ``scale_`` and ``offset_`` map the network's outputs back,
    ``f = f~ scale_ + offset_``.
    """

    def __init__(self, standardize, fit_intercept, loss="squared_error"):
        self.standardize = standardize
        self.fit_intercept = fit_intercept
        self.loss = loss

    def fit(self, Y, s):
        k = Y.shape[1]
        self.offset_, self.scale_ = np.zeros(k), np.ones(k)
        self.y_offset_, self.y_scale_ = np.zeros(k), np.ones(k)
        if not self.standardize:
            return self
        if self.loss == "poisson":
            if not self.fit_intercept:
                # a scale would be a constant log c in the model
                return self
            # the mean without overflow (column_spread), up to the largest float
            mean = column_spread(Y, s)[0]
            if np.any(mean <= 0):
                raise ValueError(
                    "loss='poisson' needs targets whose weighted mean is "
                    "positive; got a mean of 0."
                )
            self.y_scale_ = mean
            self.offset_ = np.log(mean)
            return self
        # the spread without overflow or underflow; without an intercept,
        # offset 0 and the root mean square
        offset, scale, varying = column_spread(Y, s, center=self.fit_intercept)
        check_spread(scale, varying, Y.dtype, "y", "outputs")
        scale[~varying] = 1.0
        if self.loss == "huber" and self.fit_intercept:
            median = weighted_median(Y, s)
            with np.errstate(over="ignore", invalid="ignore"):
                mad = 1.4826 * weighted_median(np.abs(Y - median), s)
            robust = (
                np.isfinite(mad)
                & (mad >= np.finfo(Y.dtype).tiny)
                & (mad > 1e-12 * np.abs(median))
            )
            offset = median
            scale = np.where(robust, mad, scale)
        self.offset_, self.scale_ = offset, scale
        self.y_offset_, self.y_scale_ = offset, scale
        return self

    def transform(self, Y):
        if not self.standardize:
            return Y
        return affine_transform(Y, self.y_offset_, self.y_scale_, np.empty_like(Y))

    def to_raw(self, W, b):
        """Weights and intercept in the units of ``y``: ``W scale`` and
        ``offset + b scale`` (``b`` may be None).

        Raises
        ------
        ValueError
            If they overflow (a spread of ``y`` near the largest float).
        """
        scale = self.scale_.astype(W.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            W = W * scale
            b0 = self.offset_.astype(W.dtype)
            b = b0 if b is None else b0 + b * scale
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
            raise ValueError(
                f"The fitted weights overflow in the units of y ({W.dtype}): "
                f"weights_ = w * scale with the spread {self.scale_.tolist()} "
                "of y. Rescale y."
            )
        return W, b

    def inverse_transform(self, F):
        """Network outputs (link scale) in the units of ``y``."""
        if not self.standardize:
            return F
        return (F * self.scale_ + self.offset_).astype(F.dtype)
