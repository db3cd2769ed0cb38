"""Quasi-Newton solver beside the particle flows: L-BFGS on all particles.

:class:`LBFGS` minimises the same objective as
:class:`~sklearn_meanfield._flow.ParticleFlow`, with scipy's L-BFGS-B on the
vector of all weights, positions and the intercept, and follows the same
``run(objective, data, particles, *, validation, callback, on_epoch) ->
FlowResult``
contract (module docstring of :mod:`sklearn_meanfield._flow`).

The variables are the particles scaled by ``1/sqrt(m)``: ``x_i = z_i /
sqrt(m)`` for every particle ``z_i = (w_i, theta_i)``, and the intercept as
is. The Euclidean metric on ``x`` is then ``(1/m) sum_i |dz_i|^2``, the
Wasserstein metric of the measure ``(1/m) sum_i delta_{z_i}``, and the
gradient in ``x`` is the mean-field gradient over ``sqrt(m)``: the
quasi-Newton steps, their line search and its first trial step mean the
same for 10 or 10,000 particles, as the flows' time steps do.
"""

import warnings

import numpy as np
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

from ._flow import (
    FlowResult,
    _Monitor,
    _not_finite_at_start,
    _warn_interrupted,
    _warn_max_iter,
)
from ._objective import Particles

__all__ = ["LBFGS"]


class LBFGS:
    """Full-batch L-BFGS on the particles (scipy's L-BFGS-B, no bounds).

    One iteration is a quasi-Newton direction from the last ``n_corrections``
    gradient pairs and a line search satisfying the strong Wolfe conditions
    (about one evaluation of ``J`` and its gradient per iteration near a
    solution). Stopping: ``max_iter`` iterations, or the relative rule of the
    flows (``n_iter_no_change`` iterations each failing to lower the best
    ``J`` by ``tol * J_best``; with a validation scorer, to raise the best
    score by ``tol``), or a line search that finds no decrease (the iterate
    is stationary to the precision of ``J``).

    Parameters
    ----------
    max_iter : int, default=1000
    tol : float, default=1e-4
    n_iter_no_change : int or None, default=10
    n_corrections : int, default=20
        Number of gradient pairs of the inverse Hessian approximation.
    max_fun : int or None, default=None
        Maximum number of evaluations of ``J`` (None: ``2 max_iter + 20``).
    record_every, max_records, verbose, warn_on_max_iter, first_iteration, \
early_stopping
        As in :class:`~sklearn_meanfield._flow.ParticleFlow`.
    """

    def __init__(
        self,
        *,
        max_iter=1000,
        tol=1e-4,
        n_iter_no_change=10,
        n_corrections=20,
        max_fun=None,
        record_every=None,
        max_records=200,
        verbose=False,
        warn_on_max_iter=True,
        first_iteration=0,
        early_stopping=True,
    ):
        self.max_iter = max_iter
        self.first_iteration = first_iteration
        self.early_stopping = early_stopping
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.n_corrections = n_corrections
        self.max_fun = max_fun
        self.record_every = record_every
        self.max_records = max_records
        self.verbose = verbose
        self.warn_on_max_iter = warn_on_max_iter

    def run(
        self,
        objective,
        data,
        particles,
        *,
        validation=None,
        callback=None,
        on_epoch=None,
    ):
        """Minimise ``J`` from ``particles``; return a :class:`FlowResult`."""
        # x = D z with D = 1/sqrt(m) on particles, 1 on the intercept; the
        # mean-field gradients are m dJ/dz on particles and dJ/db on the
        # intercept, so dJ/dx = D * (mean-field gradient)
        n_particle_values = particles.weights.size + particles.positions.size
        D = np.ones(particles.ravel().size)
        D[:n_particle_values] = 1.0 / np.sqrt(particles.n_particles)

        def evaluate(x):
            z = particles.unravel(x / D)
            value, state = objective.forward(data.Xp, data.Y, data.s, z)
            if not np.isfinite(value):
                return np.inf, np.zeros_like(x)
            return float(value), Particles(*objective.backward(state)).ravel() * D

        x0 = particles.ravel() * D
        J0, g0 = evaluate(x0)
        if not np.isfinite(J0):
            raise _not_finite_at_start()
        result = FlowResult(particles=particles)
        monitor = _Monitor(self, result, validation, callback, particles, J0, on_epoch)
        stop = {"converged": False, "last": particles, "iter": 0}

        def on_iteration(intermediate_result):
            z = particles.unravel(intermediate_result.x / D)
            if not (np.isfinite(intermediate_result.fun) and z.all_finite()):
                # a quasi-Newton step from vanishing gradient differences
                # can overflow: keep the last finite particles
                stop["converged"] = True
                raise StopIteration
            stop["last"] = z
            stop["iter"] += 1
            result.samples_seen += data.n_samples
            if monitor.epoch_done(
                stop["iter"] - 1,
                z,
                float(intermediate_result.fun),
                self.n_iter_no_change,
            ):
                stop["converged"] = True
                raise StopIteration

        max_fun = self.max_fun or 2 * self.max_iter + 20
        try:
            out = minimize(
                evaluate,
                x0,
                jac=True,
                method="L-BFGS-B",
                callback=on_iteration,
                options={
                    "maxiter": self.max_iter,
                    "maxfun": max_fun,
                    "maxcor": self.n_corrections,
                    "ftol": 0.0,
                    "gtol": 0.0,
                },
            )
            if not stop["converged"]:
                if stop["iter"] >= self.max_iter or out.nfev >= max_fun:
                    _warn_max_iter(self)
                elif stop["iter"] == 0 and np.any(g0 != 0):
                    # no step taken although the gradient is not zero: the
                    # fit is the initial particles, say so
                    warnings.warn(
                        "L-BFGS took no step: its line search found no "
                        f"decrease from the initial particles ({out.message}). "
                        "The model is the initialisation; try solver='flow'.",
                        ConvergenceWarning,
                        stacklevel=3,
                    )
                else:
                    # the line search found no decrease: stationary to the
                    # precision of J (or a zero gradient: already optimal)
                    stop["converged"] = True
        except KeyboardInterrupt:
            _warn_interrupted()
        result.converged = stop["converged"]
        return monitor.finish(stop["last"])
