"""How predictions are scored: the data loss ``R`` and the regulariser ``G``.

Losses are functions of the prediction matrix ``F`` (n_samples, n_outputs).
Sample weights ``s`` are normalised to sum to one, so every loss is a weighted
*mean* over samples.

Loss contract:

``value_and_gradient(Y, F, s) -> (value, G)``
    ``value = sum_j s_j l(y_j, f_j)`` and ``G[j] = s_j * dl/df (y_j, f_j)``,
    shape (n_samples, n_outputs). ``F`` may be overwritten.
``init_intercept(Y, s) -> (n_outputs,)``
    The best constant prediction, used as the initial intercept.

Penalty contract (with the mean-field scaling already applied, see
:mod:`sklearn_meanfield._objective`):

``value(particles) -> float`` and ``gradient(particles) -> (gW, gTheta)``,
the gradient multiplied by the number of particles.
"""

import numpy as np

__all__ = ["LOSSES", "L2Penalty", "SquaredLoss", "TVPenalty"]


class SquaredLoss:
    """Half squared error, ``R(F) = (1/2) sum_j s_j |y_j - f_j|^2``."""

    def value_and_gradient(self, Y, F, s):
        F -= Y  # F is now the residual f_j - y_j
        value = 0.5 * float(s @ np.einsum("ij,ij->i", F, F))
        F *= s[:, None]
        return value, F

    def init_intercept(self, Y, s):
        return s @ Y


class L2Penalty:
    """Weight decay ``G(mu) = (alpha/2) (1/m) sum_i (|w_i|^2 + |theta_i|^2)``.

    For ReLU neurons this is the 2-homogeneous regulariser of Chizat & Bach
    (2018); at a balanced point ``|w_i| = |theta_i|`` it equals ``alpha``
    times the path norm ``(1/m) sum_i |w_i| |theta_i|``.

    The gradient returned is the mean-field one, ``m`` times the partial
    derivative: ``(alpha * w_i, alpha * theta_i)``.
    """

    def __init__(self, alpha):
        self.alpha = alpha

    def value(self, particles):
        if self.alpha == 0:
            return 0.0
        m = particles.n_particles
        sq = np.vdot(particles.weights, particles.weights) + np.vdot(
            particles.positions, particles.positions
        )
        return 0.5 * self.alpha * float(sq) / m

    def add_gradient(self, particles, gW, gTheta):
        """Add the mean-field gradient in place to ``gW`` and ``gTheta``."""
        if self.alpha != 0:
            gW += self.alpha * particles.weights
            gTheta += self.alpha * particles.positions


class TVPenalty:
    """Total variation ``G(mu) = alpha |mu| = alpha (1/m) sum_i |w_i|``.

    The penalty of the BLASSO (sparse spikes) and of the Lasso; it does not
    depend on the positions. ``|w_i|`` is the l1 norm over outputs.

    The gradient returned is the mean-field one, ``m`` times the partial
    (sub)derivative: ``alpha * sign(w_i)`` (0 at ``w_i = 0``), and 0 for the
    positions. Together with the first variation of the data loss it gives
    ``J'(mu)(theta_i) * sign(w_i) = sign(w_i) V(theta_i) + alpha``, the
    quantity the conic flow of :mod:`sklearn_meanfield._flow` multiplies the
    masses by.
    """

    def __init__(self, alpha):
        self.alpha = alpha

    def value(self, particles):
        if self.alpha == 0:
            return 0.0
        return (
            self.alpha * float(np.abs(particles.weights).sum()) / particles.n_particles
        )

    def add_gradient(self, particles, gW, gTheta):
        """Add the mean-field gradient in place to ``gW`` (``gTheta``: none)."""
        if self.alpha != 0:
            gW += self.alpha * np.sign(particles.weights)


LOSSES = {"squared_error": SquaredLoss}
