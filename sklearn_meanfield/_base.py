"""The fit path shared by the mean-field network estimators.

An estimator here only chooses a loss and how to encode ``y``; validation of
the hyperparameters, the covering initialisation, warm starts, the flow and
the fitted attributes live in :class:`BaseMeanFieldNetwork`.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight

from ._flow import WassersteinGradientDescent
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
        output weights.
        """
        unit = objective.unit
        m = self.n_particles
        positions = unit.init_positions(m, Xp, s, random_state)
        if unit.homogeneous:
            signs = np.where(np.arange(m) % 2 == 0, 1.0, -1.0)
            weights = np.repeat((self.init_scale * signs)[:, None], n_outputs, axis=1)
        else:
            weights = np.zeros((m, n_outputs))
        intercept = (
            objective.loss.init_intercept(Y, s).astype(Xp.dtype)
            if self.fit_intercept
            else None
        )
        return Particles(weights.astype(Xp.dtype), positions, intercept)

    def _warm_particles(self, n_features, n_outputs, dtype):
        """The particles of the previous fit, when ``warm_start`` can use them."""
        if not (self.warm_start and hasattr(self, "positions_")):
            return None
        old = self._fitted_particles()
        expected = (self.n_particles, n_features + 1, n_outputs)
        found = (old.n_particles, old.positions.shape[1], old.weights.shape[1])
        if expected != found:
            raise ValueError(
                "warm_start=True needs the same n_particles, number of features "
                f"and of outputs as the previous fit: the previous fit had "
                f"{found[0]} particles, {found[1] - 1} features and {found[2]} "
                f"outputs, this one has {expected[0]}, {expected[1] - 1} and "
                f"{expected[2]}."
            )
        if (old.intercept is not None) != self.fit_intercept:
            raise ValueError("warm_start=True cannot change fit_intercept.")
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

    def _fit_particles(self, X, Y, sample_weight):
        """Shared fit: ``X`` validated (n, d), ``Y`` encoded (n, k) float."""
        s = normalized_sample_weight(sample_weight, X, X.dtype)
        objective = self._make_objective()
        Xp = objective.unit.prepare(X)
        particles = self._warm_particles(X.shape[1], Y.shape[1], X.dtype)
        if particles is None:
            random_state = check_random_state(self.random_state)
            particles = self._init_particles(
                objective, Xp, Y, s, Y.shape[1], random_state
            )
        flow = WassersteinGradientDescent(
            learning_rate_init=self.learning_rate_init,
            max_iter=self.max_iter,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            verbose=self.verbose,
        )
        result = flow.run(objective, Xp, Y, s, particles, objective.unit.metric(Xp, s))
        self._objective = objective
        self._fit_intercept = self.fit_intercept
        self.loss_curve_ = list(result.loss_curve)
        self.n_iter_ = result.n_iter
        self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else np.nan
        self.step_size_ = result.step_size
        self.n_step_reductions_ = result.n_step_reductions
        self._set_particle_attributes(result.particles)
        return self

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
