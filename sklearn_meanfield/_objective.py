"""The objective ``J(mu) = R(integral phi dmu) + G(mu)`` on a particle measure.

The measure is ``mu = (1/m) sum_i w_i delta_{theta_i}``: ``m`` particles, each
with a weight ``w_i`` (one per output) and a position ``theta_i``. Its
prediction is

    F(x) = (1/m) sum_i w_i phi(theta_i)(x) + b,

with ``b`` an optional intercept (an atom with constant ``phi``, not a
particle). :class:`MeanFieldObjective` composes a *unit* (``phi``, see
:mod:`sklearn_meanfield._units`), a *loss* ``R`` and a *penalty* ``G`` (see
:mod:`sklearn_meanfield._losses`) and returns ``J`` with its **mean-field
gradients**: for every particle, ``m`` times the partial derivative,

    gW[i]     = m dJ/dw_i     = sum_j phi(theta_i)(x_j) g_j + (penalty),
    gTheta[i] = m dJ/dtheta_i = sum_j (g_j . w_i) grad_theta phi(theta_i)(x_j)
                                + (penalty),

where ``g_j = s_j dl/df(y_j, F(x_j))``. These are the gradients of the first
variation ``J'(mu)`` evaluated at the particles: they stay O(1) whatever ``m``,
so a step size is a time step of the Wasserstein gradient flow and means the
same thing for ``m = 10`` and ``m = 10,000``.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["MeanFieldObjective", "Particles"]


@dataclass
class Particles:
    """A particle measure: weights (m, n_outputs), positions (m, n_params),
    intercept (n_outputs,) or None."""

    weights: np.ndarray
    positions: np.ndarray
    intercept: np.ndarray | None = None

    @property
    def n_particles(self):
        return self.positions.shape[0]

    def copy(self):
        return Particles(
            self.weights.copy(),
            self.positions.copy(),
            None if self.intercept is None else self.intercept.copy(),
        )

    def arrays(self):
        """The trainable arrays, in a fixed order."""
        if self.intercept is None:
            return [self.weights, self.positions]
        return [self.weights, self.positions, self.intercept]

    def all_finite(self):
        return all(np.isfinite(a).all() for a in self.arrays())


class MeanFieldObjective:
    """``J(mu) = R(F) + G(mu)`` with ``F = (1/m) Phi W + b``.

    Parameters
    ----------
    unit : unit object
        What one particle contributes (:mod:`sklearn_meanfield._units`).
    loss : loss object
        The data loss ``R`` (:mod:`sklearn_meanfield._losses`).
    penalty : penalty object or None
        The regulariser ``G``.
    """

    def __init__(self, unit, loss, penalty=None):
        self.unit = unit
        self.loss = loss
        self.penalty = penalty

    def predict(self, Xp, particles):
        """``F = (1/m) phi(Theta)(X) W + b``, shape (n_samples, n_outputs)."""
        Phi, _ = self.unit.forward(Xp, particles.positions)
        return self._readout(Phi, particles)

    def _readout(self, Phi, particles):
        F = Phi @ particles.weights
        F *= 1.0 / particles.n_particles
        if particles.intercept is not None:
            F += particles.intercept
        return F

    def value(self, Xp, Y, s, particles):
        """``J`` alone (one forward pass)."""
        return self.forward(Xp, Y, s, particles)[0]

    def forward(self, Xp, Y, s, particles):
        """``J`` and the state ``backward`` needs (one forward pass).

        Splitting the two lets a line search reject a step after the forward
        pass alone.
        """
        Phi, cache = self.unit.forward(Xp, particles.positions)
        F = self._readout(Phi, particles)
        value, G = self.loss.value_and_gradient(Y, F, s)
        if self.penalty is not None:
            value += self.penalty.value(particles)
        return value, (Xp, particles, Phi, cache, G)

    def backward(self, state):
        """Mean-field gradients ``(gW, gTheta, gb)`` from a ``forward`` state.

        ``gW = Phi.T G``, ``C = G W.T``, ``gTheta = unit.backward(C)`` (which
        multiplies ``C`` by ``dPhi`` and contracts with the inputs),
        ``gb = sum_j G_j`` (``None`` without intercept); ``G`` is the loss
        gradient with respect to ``F``.
        """
        Xp, particles, Phi, cache, G = state
        gW = Phi.T @ G
        C = G @ particles.weights.T
        gTheta = self.unit.backward(Xp, particles.positions, cache, C)
        gb = None if particles.intercept is None else G.sum(axis=0)
        if self.penalty is not None:
            self.penalty.add_gradient(particles, gW, gTheta)
        return gW, gTheta, gb

    def first_variation(self, state):
        """Gradients of the first variation ``J'(mu)`` at the particles.

        For a single output, ``J'(mu)(theta) = V(theta) + (penalty)`` with
        ``V(theta) = sum_j g_j phi(theta)(x_j)``; returns ``(gW, dV, gb)``
        where ``gW[i] = J'(mu)(theta_i)`` (the mean-field weight gradient,
        penalty included, shape (m, 1)) and ``dV[i] = grad_theta V(theta_i)``
        (m, n_params): the position gradient *without* the factor ``w_i``,
        which the conic (Wasserstein-Fisher-Rao) flow needs. The penalty must
        not depend on the positions (e.g. :class:`TVPenalty`).

        Raises
        ------
        ValueError
            With more than one output, where ``J'`` is vector-valued.
        """
        Xp, particles, Phi, cache, G = state
        if G.shape[1] != 1:
            raise ValueError(
                "The first variation is scalar only for a single output; got "
                f"{G.shape[1]} outputs."
            )
        gW = Phi.T @ G
        C = np.repeat(G, particles.n_particles, axis=1)
        dV = self.unit.backward(Xp, particles.positions, cache, C)
        gb = None if particles.intercept is None else G.sum(axis=0)
        if self.penalty is not None:
            self.penalty.add_gradient(particles, gW, np.zeros_like(dV))
        return gW, dV, gb

    def value_and_gradient(self, Xp, Y, s, particles):
        """``J`` and its mean-field gradients ``(gW, gTheta, gb)``."""
        value, state = self.forward(Xp, Y, s, particles)
        return value, self.backward(state)
