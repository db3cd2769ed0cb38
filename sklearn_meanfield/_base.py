"""The fit path shared by the mean-field network estimators.

An estimator here only chooses a loss and how to encode ``y``; validation of
the hyperparameters, the covering initialisation, warm starts, the flow and
the fitted attributes live in :class:`BaseMeanFieldNetwork`.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight

from ._flow import (
    ConicParticleGradientDescent,
    LangevinGradientDescent,
    WassersteinGradientDescent,
)
from ._losses import L2Penalty
from ._objective import MeanFieldObjective, Particles
from ._units import ACTIVATIONS, NeuronUnit

__all__ = ["BaseMeanFieldNetwork"]


def normalized_sample_weight(sample_weight, X, dtype):
    """Sample weights ``s`` with ``sum_j s_j = 1``, validated.

    Raises
    ------
    ValueError
        If a weight is negative or not finite, or all weights are zero.
    """
    sw = _check_sample_weight(sample_weight, X, dtype=dtype, ensure_non_negative=True)
    total = float(sw.sum())
    if not total > 0:
        raise ValueError(
            "sample_weight must have a positive sum; all the sample weights are zero."
        )
    return sw / total


class BaseMeanFieldNetwork(BaseEstimator):
    """Two-layer network ``f(x) = (1/m) sum_i w_i sigma(theta_i . [x, 1]) + b``
    trained as a particle gradient flow. Not for direct use."""

    _parameter_constraints: dict = {
        "n_particles": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "init_scale": [Interval(Real, 0, None, closed="neither")],
        "position_metric": [StrOptions({"standardize", "diagonal", "euclidean"})],
        "fit_intercept": ["boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "shuffle": ["boolean"],
        "learning_rate": [StrOptions({"constant", "invscaling"})],
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
    }

    def _make_objective(self):
        unit = NeuronUnit(self.activation, self.init_scale, self.position_metric)
        return MeanFieldObjective(unit, self._make_loss(), L2Penalty(self.alpha))

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

    def _fitted_particles(self):
        """The fitted measure rebuilt from the public attributes, so that
        ``weights_``, ``positions_`` and ``intercept_`` are what predicts."""
        W = np.asarray(self.weights_)
        W = W[:, None] if W.ndim == 1 else W
        b = np.atleast_1d(np.asarray(self.intercept_, dtype=W.dtype))
        return Particles(W, self.positions_, b if self._fit_intercept else None)

    def _make_flow(self, max_iter, incremental, random_state):
        """The flow chosen by ``flow``, with the driver options."""
        options = dict(
            verbose=self.verbose,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            learning_rate=self.learning_rate,
            power_t=self.power_t,
            random_state=random_state,
            record_every=self.record_every,
            warn_on_max_iter=not incremental,
        )
        patience = None if incremental else self.n_iter_no_change
        if self.momentum > 0 and self.flow != "wasserstein":
            raise ValueError(
                f"momentum={self.momentum} is only supported with "
                f"flow='wasserstein', not flow={self.flow!r}."
            )
        if self.flow == "conic":
            return ConicParticleGradientDescent(
                self.learning_rate_init,
                self.learning_rate_init,
                max_iter,
                self.tol,
                patience,
                **options,
            )
        if self.flow == "langevin":
            return LangevinGradientDescent(
                self.learning_rate_init,
                max_iter,
                self.tol,
                patience,
                temperature=self.temperature,
                annealing=self.annealing,
                **options,
            )
        return WassersteinGradientDescent(
            self.learning_rate_init,
            max_iter,
            self.tol,
            patience,
            momentum=self.momentum,
            **options,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # X may be a scipy sparse matrix (CSR used): the products with the
        # positions are sparse @ dense
        tags.input_tags.sparse = True
        return tags

    def _fit_particles(self, X, Y, sample_weight, stratify=None, incremental=False):
        """The shared fit path.

        ``X`` validated (n, d), ``Y`` encoded (n, k) float, ``stratify`` the
        labels to stratify the validation split on (classifiers).
        ``incremental=True`` (``partial_fit``): one epoch from the current
        particles (initialised on the first call), no early stopping.
        """
        sw = _check_sample_weight(
            sample_weight, X, dtype=X.dtype, ensure_non_negative=True
        )
        random_state = check_random_state(self.random_state)
        validation = None
        if self.early_stopping and not incremental:
            X, Y, sw, validation = self._validation_split(
                X, Y, sw, stratify, random_state
            )
        s = normalized_sample_weight(sw, X, X.dtype)
        objective = self._make_objective()
        Xp = objective.unit.prepare(X)
        fitted = hasattr(self, "positions_")
        particles = self._warm_particles(
            X.shape[1], Y.shape[1], X.dtype, force=incremental
        )
        if particles is None:
            particles = self._init_particles(
                objective, Xp, Y, s, Y.shape[1], random_state
            )
            self._metric = objective.unit.metric(Xp, s)
            previous_epochs, previous_samples = 0, 0
        elif incremental:
            previous_epochs, previous_samples = self.n_iter_, self.t_
        else:
            # warm_start: a new fit (n_iter_, t_, loss_curve_, schedule)
            # from the previous particles
            self._metric = objective.unit.metric(Xp, s)
            previous_epochs, previous_samples = 0, 0
        if validation is not None:
            X_val, Y_val, s_val = validation
            Xp_val = objective.unit.prepare(X_val)

            def validation(particles):
                return self._score_output(
                    objective.predict(Xp_val, particles), Y_val, s_val
                )

        flow = self._make_flow(
            1 if incremental else self.max_iter, incremental, random_state
        )
        result = flow.run(
            objective,
            Xp,
            Y,
            s,
            particles,
            self._metric,
            validation=validation,
            start_epoch=previous_epochs,
        )
        objective.release()
        self._objective = objective
        self._fit_intercept = self.fit_intercept
        if incremental and fitted:
            self.loss_curve_ = [*self.loss_curve_, *result.loss_curve]
        else:
            self.loss_curve_ = list(result.loss_curve)
        self.n_iter_ = previous_epochs + result.n_iter
        self.t_ = previous_samples + result.samples_seen
        if validation is not None:
            self.validation_scores_ = list(result.validation_scores)
            self.best_validation_score_ = result.best_validation_score
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else np.nan
        self.step_size_ = result.step_size
        self.n_step_reductions_ = result.n_step_reductions
        if self.record_every:
            self.trajectory_ = result.trajectory
        self._set_particle_attributes(result.particles)
        return self

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
        squeeze = self._squeeze_output()
        self.weights_ = p.weights[:, 0].copy() if squeeze else p.weights
        self.positions_ = p.positions
        if p.intercept is None:
            self.intercept_ = 0.0 if squeeze else np.zeros(p.weights.shape[1])
        else:
            self.intercept_ = float(p.intercept[0]) if squeeze else p.intercept

    def _squeeze_output(self):
        """Whether the fitted arrays drop the output axis (1-D ``y``)."""
        return False

    def _raw_output(self, X):
        """``F(X)`` (n_samples, n_outputs) from the fitted particles."""
        objective = self._objective
        return objective.predict(objective.unit.prepare(X), self._fitted_particles())
