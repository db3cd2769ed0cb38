"""How particles move: discretised gradient flows of ``J`` over measures.

A flow takes a :class:`~sklearn_meanfield._objective.MeanFieldObjective`, the
prepared data and initial particles, and moves every particle along the
mean-field gradient (``m`` times its partial derivative, i.e. the gradient of
the first variation ``J'(mu)`` at the particle). The step size is therefore a
time step of the continuous flow and does not depend on the number of
particles.
"""

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning

__all__ = ["DivergenceError", "FlowResult", "WassersteinGradientDescent"]


class DivergenceError(ValueError, FloatingPointError):
    """The objective is not finite and no step size makes it finite.

    A ``ValueError`` (it is caused by the input: values too large for the
    dtype) and a ``FloatingPointError``.
    """


@dataclass
class FlowResult:
    """What a flow returns besides the particles."""

    particles: object
    loss_curve: list = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False
    step_size: float = 0.0
    n_step_reductions: int = 0


class WassersteinGradientDescent:
    """Full-batch gradient descent on all particles (Wasserstein-2 flow).

    One iteration, with step ``eta`` and the mean-field gradients of
    :meth:`MeanFieldObjective.backward`::

        w_i     <- w_i     - eta * gW[i]
        theta_i <- theta_i - eta * P gTheta[i]
        b       <- b       - eta * gb

    ``P = M^(-1)`` for the unit's constant metric ``M`` on positions (identity
    for the paper's Euclidean flow, see
    :class:`~sklearn_meanfield._units.InputMetric`). The step is accepted only
    if ``J`` is finite and does not increase; otherwise ``eta`` is halved and
    the step retried from the same particles, so a divergence is caught before
    it reaches the particles. After an accepted step ``eta`` grows back by a
    factor 1.1, up to ``learning_rate_init``.

    Stopping: ``max_iter`` steps, or ``n_iter_no_change`` consecutive steps
    that each fail to lower the best ``J`` by ``tol * |J_best|`` (a relative
    tolerance, so that it does not depend on the units of ``y``).

    Parameters
    ----------
    learning_rate_init : float
        The time step ``eta`` of the flow (its largest value).
    max_iter : int
        Maximum number of accepted steps.
    tol : float
        Relative tolerance of the stopping rule.
    n_iter_no_change : int
        Patience of the stopping rule.
    verbose : bool or int
        Print the objective every ``verbose`` iterations (every one if True).
    """

    #: step growth after an accepted step, and the smallest step tried,
    #: relative to learning_rate_init, before giving up.
    growth = 1.1
    min_step_ratio = 1e-12

    def __init__(
        self, learning_rate_init, max_iter, tol, n_iter_no_change, verbose=False
    ):
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.verbose = verbose

    def _move(self, particles, grads, eta, metric):
        gW, gTheta, gb = grads
        new = particles.copy()
        new.weights -= eta * gW
        if metric is not None:
            gTheta = metric.precondition(gTheta)
        new.positions -= eta * gTheta
        if gb is not None:
            new.intercept -= eta * gb
        return new

    def run(self, objective, Xp, Y, s, particles, metric=None):
        """Run the flow from ``particles``; return a :class:`FlowResult`.

        Raises
        ------
        DivergenceError
            If ``J`` is not finite at the initial particles, or no step down
            to ``min_step_ratio * learning_rate_init`` gives a finite ``J``.
        """
        value, state = objective.forward(Xp, Y, s, particles)
        if not np.isfinite(value):
            raise DivergenceError(
                "The objective is not finite at the initial particles; the "
                "input values are too large for this dtype. Rescale X and y "
                "(e.g. with StandardScaler)."
            )
        grads = objective.backward(state)
        eta_max = float(self.learning_rate_init)
        eta = eta_max
        result = FlowResult(particles=particles)
        best = value
        no_improvement = 0
        verbose_every = int(self.verbose) if self.verbose else 0
        start = time.perf_counter()
        try:
            for it in range(self.max_iter):
                while True:
                    candidate = self._move(particles, grads, eta, metric)
                    new_value, new_state = objective.forward(Xp, Y, s, candidate)
                    if np.isfinite(new_value) and new_value <= value:
                        break
                    eta *= 0.5
                    result.n_step_reductions += 1
                    if eta < self.min_step_ratio * eta_max:
                        if np.isfinite(new_value):
                            # No descent step left: a stationary point up to
                            # rounding. Keep the current particles.
                            result.converged = True
                            return self._finish(result, particles, eta, it)
                        raise DivergenceError(
                            "The particle flow diverged: no step size gives a "
                            "finite objective. Rescale X and y."
                        )
                particles, value = candidate, new_value
                grads = objective.backward(new_state)
                result.loss_curve.append(value)
                eta = min(eta * self.growth, eta_max)
                if verbose_every and (it + 1) % verbose_every == 0:
                    print(
                        f"Iteration {it + 1}, loss = {value:.8f}, step = {eta:.3g}, "
                        f"time = {time.perf_counter() - start:.2f}s"
                    )
                if value > best - self.tol * abs(best):
                    no_improvement += 1
                else:
                    no_improvement = 0
                best = min(best, value)
                if no_improvement >= self.n_iter_no_change:
                    result.converged = True
                    return self._finish(result, particles, eta, it + 1)
        except KeyboardInterrupt:
            warnings.warn(
                "Training interrupted by the user; the particles of the last "
                "accepted step are kept.",
                UserWarning,
                stacklevel=2,
            )
            return self._finish(result, particles, eta, len(result.loss_curve))
        warnings.warn(
            f"The particle flow reached max_iter={self.max_iter} steps and the "
            "optimization hasn't converged yet.",
            ConvergenceWarning,
            stacklevel=2,
        )
        return self._finish(result, particles, eta, self.max_iter)

    @staticmethod
    def _finish(result, particles, eta, n_iter):
        result.particles = particles
        result.step_size = eta
        result.n_iter = n_iter
        return result
