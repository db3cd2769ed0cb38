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

__all__ = ["ConicParticleGradientDescent", "FlowResult", "WassersteinGradientDescent"]


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

    ``P`` is the unit's diagonal metric (identity on standardised data, see
    :meth:`NeuronUnit.metric`). The step is accepted only if ``J`` is finite
    and does not increase; otherwise ``eta`` is halved and the step retried
    from the same particles, so a divergence is caught before it reaches the
    particles. After an accepted step ``eta`` grows back by a factor 1.1, up
    to ``learning_rate_init``.

    Stopping: ``max_iter`` steps, or ``n_iter_no_change`` consecutive steps
    that each fail to lower the best ``J`` by ``tol * |J_best|`` (a relative
    tolerance, so that it does not depend on the units of ``y``), or, if
    ``run`` is given a ``callback``, when it returns True (e.g. a duality
    gap below a tolerance).

    Parameters
    ----------
    learning_rate_init : float
        The time step ``eta`` of the flow (its largest value).
    max_iter : int
        Maximum number of accepted steps.
    tol : float
        Relative tolerance of the stopping rule.
    n_iter_no_change : int or None
        Patience of the stopping rule; None disables it.
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
        if metric is None:
            new.positions -= eta * gTheta
        else:
            new.positions -= (eta * metric) * gTheta
        if gb is not None:
            new.intercept -= eta * gb
        return new

    def _gradients(self, objective, state):
        """The gradients ``_move`` uses, from a forward state."""
        return objective.backward(state)

    def run(self, objective, Xp, Y, s, particles, metric=None, callback=None):
        """Run the flow from ``particles``; return a :class:`FlowResult`.

        ``callback(n_iter, particles, value)``, if given, is called after every
        accepted step; the flow stops (converged) when it returns True.

        Raises
        ------
        FloatingPointError
            If ``J`` is not finite at the initial particles, or no step down
            to ``min_step_ratio * learning_rate_init`` gives a finite ``J``.
        """
        value, state = objective.forward(Xp, Y, s, particles)
        if not np.isfinite(value):
            raise FloatingPointError(
                "The objective is not finite at the initial particles; the "
                "input values are too large for this dtype. Rescale X and y "
                "(e.g. with StandardScaler)."
            )
        grads = self._gradients(objective, state)
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
                        raise FloatingPointError(
                            "The particle flow diverged: no step size gives a "
                            "finite objective. Rescale X and y."
                        )
                particles, value = candidate, new_value
                grads = self._gradients(objective, new_state)
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
                if (
                    self.n_iter_no_change is not None
                    and no_improvement >= self.n_iter_no_change
                ) or (callback is not None and callback(it + 1, particles, value)):
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


class ConicParticleGradientDescent(WassersteinGradientDescent):
    """Conic particle gradient descent (Wasserstein-Fisher-Rao flow).

    Chizat, "Sparse optimization on measures with over-parameterized gradient
    descent", Math. Programming 2022. The signed measure
    ``mu = (1/m) sum_i w_i delta_{theta_i}`` is written ``w_i = s_i r_i^2``
    with a fixed sign ``s_i = sign(w_i)`` per particle (two families of
    particles for a signed measure). With ``g_i = s_i J'(mu)(theta_i)`` (the
    first variation of the lifted positive measure, e.g. ``s_i V(theta_i) +
    alpha`` for a total-variation penalty) one iteration is::

        r_i     <- r_i exp(-2 eta g_i)         (mirror retraction)
                   i.e.  w_i <- w_i exp(-4 eta g_i)
        theta_i <- theta_i - eta * ratio * P s_i grad V(theta_i)

    ``eta`` the weights' time step, ``ratio = position_step /
    weight_step``, ``P`` the unit's metric; the position step carries no
    factor ``r_i``, so a particle of vanishing mass still moves at O(1) speed.
    The multiplicative update never changes a sign and never creates mass
    from zero: initial weights must be non-zero. Step acceptance
    (backtracking on ``J``), stopping and warnings are those of
    :class:`WassersteinGradientDescent`; ``eta`` and the position step are
    reduced together.

    The objective must have a single output and a penalty that does not
    depend on the positions (see :meth:`MeanFieldObjective.first_variation`).

    Parameters
    ----------
    weight_step : float
        The largest time step ``eta`` of the masses.
    position_step : float
        The largest time step of the positions, in the unit's metric.
    max_iter, tol, n_iter_no_change, verbose
        As in :class:`WassersteinGradientDescent`.
    project : callable or None
        Applied in place to the new positions after each step (e.g. wrapping
        onto the torus).
    """

    def __init__(
        self,
        weight_step,
        position_step,
        max_iter,
        tol=0.0,
        n_iter_no_change=None,
        verbose=False,
        project=None,
    ):
        super().__init__(weight_step, max_iter, tol, n_iter_no_change, verbose)
        self.weight_step = weight_step
        self.position_step = position_step
        self.project = project

    def _gradients(self, objective, state):
        return objective.first_variation(state)

    def _move(self, particles, grads, eta, metric):
        gW, dV, gb = grads
        new = particles.copy()
        sign = np.sign(particles.weights)
        with np.errstate(over="ignore"):
            new.weights *= np.exp((-4 * eta) * (sign * gW))
        step = eta * (self.position_step / self.weight_step)
        if metric is not None:
            step = step * metric
        new.positions -= step * (sign * dV)
        if self.project is not None:
            self.project(new.positions)
        if gb is not None:
            new.intercept -= eta * gb
        return new
