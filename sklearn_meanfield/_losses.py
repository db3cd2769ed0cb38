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

Classification losses also have ``log_proba(F) -> (n_samples, n_classes)``,
the log-probabilities of the classes that the loss models (the inverse link),
computed stably for any finite ``F``.

Penalty contract (with the mean-field scaling already applied, see
:mod:`sklearn_meanfield._objective`):

``value(particles) -> float`` and ``add_gradient(particles, gW, gTheta)``,
which adds in place the penalty's gradient multiplied by the number of
particles.
"""

import numpy as np
from scipy.special import expit, log_expit, logsumexp

from ._memory import row_chunks

__all__ = [
    "BinaryLogisticLoss",
    "L2Penalty",
    "SoftmaxCrossEntropyLoss",
    "SquaredLoss",
    "TVPenalty",
]

#: Smallest class frequency used by ``init_intercept`` of the classification
#: losses: a class with zero weight gets a finite (very negative) log prior
#: instead of ``-inf``.
_MIN_PRIOR = 1e-8


class SquaredLoss:
    """Half squared error, ``R(F) = (1/2) sum_j s_j |y_j - f_j|^2``."""

    def value_and_gradient(self, Y, F, s):
        F -= Y  # F is now the residual f_j - y_j
        value = 0.5 * float(s @ np.einsum("ij,ij->i", F, F))
        F *= s[:, None]
        return value, F

    def init_intercept(self, Y, s):
        return s @ Y


class BinaryLogisticLoss:
    """Binary logistic loss on one output, labels ``y_j`` in {0, 1}.

    ``l(y, f) = log(1 + exp(f)) - y f = -log sigmoid((2 y - 1) f)``, so

        R(F) = sum_j s_j [log(1 + exp(f_j)) - y_j f_j],
        dl/df = sigmoid(f) - y.

    Computed as ``-log_expit((2 y - 1) f)`` and ``expit(f) - y``, which are
    finite for every finite ``f`` (no ``exp`` overflow).
    """

    def value_and_gradient(self, Y, F, s):
        # margin (2y - 1) f: the loss is -log sigmoid(margin)
        margin = (2 * Y - 1) * F
        value = -float(s @ log_expit(margin).sum(axis=1))
        G = expit(F, out=F)
        G -= Y
        G *= s[:, None]
        return value, G

    def init_intercept(self, Y, s):
        """The log-odds ``log(p / (1 - p))`` of ``p = sum_j s_j y_j``, the
        minimiser of ``R`` over constants (``p`` clipped to
        ``[1e-8, 1 - 1e-8]``)."""
        p = np.clip(s @ Y, _MIN_PRIOR, 1 - _MIN_PRIOR)
        return np.log(p) - np.log1p(-p)

    @staticmethod
    def log_proba(F):
        """``[log(1 - sigmoid(f)), log sigmoid(f)]``, shape (n_samples, 2),
        from ``F`` of shape (n_samples, 1)."""
        f = F[:, 0]
        return np.column_stack([log_expit(-f), log_expit(f)])


class SoftmaxCrossEntropyLoss:
    """Softmax cross-entropy on ``k`` outputs, ``Y`` one-hot (n_samples, k).

    ``l(y, f) = logsumexp(f) - y . f = -log softmax(f)_c`` for ``y = e_c``, so

        R(F) = sum_j s_j [log sum_c exp(f_jc) - y_j . f_j],
        dl/df = softmax(f) - y.

    Both are computed after subtracting ``max_c f_c`` from each row (the
    log-sum-exp trick), which leaves them unchanged and keeps every ``exp``
    at most 1, so they are finite for every finite ``F``.
    """

    def value_and_gradient(self, Y, F, s):
        F -= F.max(axis=1, keepdims=True)
        lse = np.log(np.exp(F).sum(axis=1))
        value = float(s @ (lse - np.einsum("ij,ij->i", Y, F)))
        F -= lse[:, None]
        G = np.exp(F, out=F)  # softmax(f)
        G -= Y
        G *= s[:, None]
        return value, G

    def init_intercept(self, Y, s):
        """Centred log class priors ``log p_c - mean_c log p_c`` with
        ``p = sum_j s_j y_j`` (clipped below at 1e-8): the minimiser of ``R``
        over constants, which is defined up to a common shift."""
        logp = np.log(np.maximum(s @ Y, _MIN_PRIOR))
        return logp - logp.mean()

    @staticmethod
    def log_proba(F):
        """``log softmax(F)`` row by row, shape (n_samples, k); over chunks of
        rows within ``working_memory``, so that only the output is formed
        whole."""
        out = np.empty_like(F)
        # logsumexp holds about four (rows, k) temporaries
        for rows in row_chunks(F.shape[0], 4 * F.shape[1] * F.itemsize):
            out[rows] = F[rows] - logsumexp(F[rows], axis=1, keepdims=True)
        return out


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
