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
``inverse_link(F) -> predictions``
    The predictions in the space of ``y`` (the mean of the modelled
    distribution for the regression losses, the probabilities of the
    labels for the logistic losses).
``conjugate(Y, Q) -> (n_samples,)``
    ``l*(y_j, q_j) = sup_f q_j . f - l(y_j, f)`` row by row (``inf`` outside
    its domain): the Fenchel dual of the certificates
    (:mod:`sklearn_meanfield._certificates`).
``centred_dual : bool``
    Whether the dual point ``G`` may be centred (``sum_j G_j = 0`` enforced
    by subtracting the mean) and stay in the conjugate's domain.

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
from scipy.special import expit, log_expit, logsumexp, xlogy

__all__ = [
    "BinaryLogisticLoss",
    "HuberLoss",
    "L2Penalty",
    "PoissonLoss",
    "SoftmaxCrossEntropyLoss",
    "SquaredLoss",
    "TVPenalty",
]

#: Smallest class frequency used by ``init_intercept`` of the classification
#: losses: a class with zero weight gets a finite (very negative) log prior
#: instead of ``-inf``.
_MIN_PRIOR = 1e-8


def _simplex_entropy(T):
    """``sum_c t_c log t_c`` row by row for rows ``T`` that should lie in the
    simplex (``inf`` for a row outside it, up to rounding)."""
    outside = np.any(T < -1e-12, axis=1) | (np.abs(T.sum(axis=1) - 1) > 1e-8)
    T = np.clip(T, 0, 1)
    return np.where(outside, np.inf, np.sum(xlogy(T, T), axis=1))


def weighted_median(Y, s):
    """Per column, the smallest ``y`` whose cumulative weight reaches half the
    total (``s`` non-negative): a minimiser of ``sum_j s_j |y_j - c|``."""
    order = np.argsort(Y, axis=0, kind="stable")
    cum = np.cumsum(s[order], axis=0)
    k = np.argmax(cum >= 0.5 * cum[-1], axis=0)
    return np.take_along_axis(Y, order, axis=0)[k, np.arange(Y.shape[1])]


class SquaredLoss:
    """Half squared error, ``R(F) = (1/2) sum_j s_j |y_j - f_j|^2``.

    ``l*(y, q) = |q|^2 / 2 + q . y``.
    """

    name = "squared_error"
    out_activation = "identity"
    centred_dual = True

    def value_and_gradient(self, Y, F, s):
        F -= Y  # F is now the residual f_j - y_j
        value = 0.5 * float(s @ np.einsum("ij,ij->i", F, F))
        F *= s[:, None]
        return value, F

    def init_intercept(self, Y, s):
        return s @ Y

    @staticmethod
    def inverse_link(F):
        return F

    @staticmethod
    def conjugate(Y, Q):
        return 0.5 * np.sum(Q * Q, axis=1) + np.sum(Q * Y, axis=1)


class HuberLoss:
    """Huber loss of the residual ``r = f - y``, per output:

        l(y, f) = r^2 / 2                     if |r| <= epsilon,
                  epsilon |r| - epsilon^2 / 2  otherwise,

    quadratic near the fit and linear for outliers; ``dl/df =
    clip(r, -epsilon, epsilon)`` and ``l*(y, q) = q . y + |q|^2 / 2`` for
    ``|q|_inf <= epsilon`` (``inf`` otherwise).

    Parameters
    ----------
    epsilon : float
        Where the loss turns linear, in the units of ``F`` (the estimators
        fit robustly standardised targets, so there it is a number of
        robust standard deviations).
    """

    name = "huber"
    out_activation = "identity"
    centred_dual = False

    def __init__(self, epsilon=1.35):
        self.epsilon = epsilon

    def value_and_gradient(self, Y, F, s):
        eps = self.epsilon
        F -= Y
        A = np.abs(F)
        L = np.where(A <= eps, 0.5 * F * F, eps * A - 0.5 * eps * eps)
        value = float(s @ L.sum(axis=1))
        np.clip(F, -eps, eps, out=F)
        F *= s[:, None]
        return value, F

    def init_intercept(self, Y, s):
        """The weighted median of each output (the best constant for the
        linear part; a good start for the whole loss)."""
        return weighted_median(Y, s)

    @staticmethod
    def inverse_link(F):
        return F

    def conjugate(self, Y, Q):
        value = 0.5 * np.sum(Q * Q, axis=1) + np.sum(Q * Y, axis=1)
        outside = np.any(np.abs(Q) > self.epsilon * (1 + 1e-12), axis=1)
        return np.where(outside, np.inf, value)


class PoissonLoss:
    """Half Poisson deviance with the log link: ``f`` is ``log E[y | x]``,

        l(y, f) = exp(f) - y f + y log y - y   (>= 0, 0 when exp(f) = y),

    ``dl/df = exp(f) - y``; ``l*(y, q) = (q + y) log(q + y) - (q + y) - y log
    y + y`` for ``q + y >= 0`` (``inf`` otherwise). Targets ``y >= 0``.
    """

    name = "poisson"
    out_activation = "exp"
    centred_dual = False

    def value_and_gradient(self, Y, F, s):
        with np.errstate(over="ignore"):
            mu = np.exp(F)
        L = mu - Y * F + xlogy(Y, Y) - Y
        with np.errstate(invalid="ignore"):
            value = float(s @ L.sum(axis=1))
        mu -= Y
        mu *= s[:, None]
        return value, mu

    def init_intercept(self, Y, s):
        """``log sum_j s_j y_j``, the best constant (clipped below at
        1e-300)."""
        return np.log(np.maximum(s @ Y, 1e-300))

    @staticmethod
    def inverse_link(F):
        with np.errstate(over="ignore"):
            return np.exp(F)

    @staticmethod
    def conjugate(Y, Q):
        T = Q + Y
        value = np.sum(xlogy(T, np.maximum(T, 0)) - T - xlogy(Y, Y) + Y, axis=1)
        return np.where(np.any(T < -1e-12, axis=1), np.inf, value)


class BinaryLogisticLoss:
    """Binary logistic loss per output, labels ``y_jc`` in {0, 1} (one
    output: binary classification; several: multilabel).

    ``l(y, f) = log(1 + exp(f)) - y f = -log sigmoid((2 y - 1) f)``, so

        R(F) = sum_j s_j sum_c [log(1 + exp(f_jc)) - y_jc f_jc],
        dl/df = sigmoid(f) - y.

    Computed as ``-log_expit((2 y - 1) f)`` and ``expit(f) - y``, which are
    finite for every finite ``f`` (no ``exp`` overflow). ``l*(y, q) = sum_c
    t log t + (1 - t) log(1 - t)`` with ``t = q + y`` in ``[0, 1]``.
    """

    name = "log_loss"
    out_activation = "logistic"
    centred_dual = False

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

    @staticmethod
    def inverse_link(F):
        return expit(F)

    @staticmethod
    def conjugate(Y, Q):
        T = (Q + Y).ravel()
        pairs = np.column_stack([T, 1 - T])
        return _simplex_entropy(pairs).reshape(Q.shape).sum(axis=1)


class SoftmaxCrossEntropyLoss:
    """Softmax cross-entropy on ``k`` outputs, ``Y`` one-hot (n_samples, k).

    ``l(y, f) = logsumexp(f) - y . f = -log softmax(f)_c`` for ``y = e_c``, so

        R(F) = sum_j s_j [log sum_c exp(f_jc) - y_j . f_j],
        dl/df = softmax(f) - y.

    Both are computed after subtracting ``max_c f_c`` from each row (the
    log-sum-exp trick), which leaves them unchanged and keeps every ``exp``
    at most 1, so they are finite for every finite ``F``. ``l*(y, q) =
    sum_c t_c log t_c`` with ``t = q + y`` in the simplex.
    """

    name = "log_loss"
    out_activation = "softmax"
    centred_dual = False

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
        """``log softmax(F)`` row by row, shape (n_samples, k)."""
        return F - logsumexp(F, axis=1, keepdims=True)

    @classmethod
    def inverse_link(cls, F):
        return np.exp(cls.log_proba(F))

    @staticmethod
    def conjugate(Y, Q):
        return _simplex_entropy(Q + Y)


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
