"""Update rules: how one step moves the particles, given their gradients.

A rule turns the mean-field gradients ``(gW, gTheta, gb)`` of
:class:`~sklearn_meanfield._objective.MeanFieldObjective` (``m`` times the
partial derivatives: the gradient of the first variation ``J'(mu)`` at each
particle, so a time step means the same for 10 or 10,000 particles) into a
candidate measure. The loop that calls it (:class:`~sklearn_meanfield._flow.
ParticleFlow`) owns everything else: step sizes and their control,
minibatches, stopping, records. Rules follow scikit-learn's
``neural_network/_stochastic_optimizers.py``: small classes, one job each.

Contract:

``gradient``: ``"backward"`` or ``"first_variation"``
    Which gradients of the objective the rule consumes.
``monotone``: bool
    Whether a full-batch step may be rejected for increasing ``J`` (False
    for noisy rules).
``propose(particles, grads, eta, rng) -> Particles``
    The candidate after a step of size ``eta`` (a new object; ``particles``
    unchanged). ``grads[1]`` is already multiplied by the position metric's
    inverse. No state changes.
``accept(particles, candidate)``
    Called when the loop keeps ``candidate``: update the rule's state
    (velocity, moments).
``restart() -> bool``
    Drop the state that made a rejected step (e.g. a velocity) and say
    whether there was any; the loop then retries the same step size before
    halving it.
``epoch_started(epoch, n_epochs)``
    Hook at the start of every epoch (temperature schedules).

The rule's state lives on the rule object, which the estimator keeps between
``partial_fit`` calls, so a velocity or Adam's moments carry over as
``MLPRegressor``'s optimizer state does.
"""

import numpy as np

__all__ = ["Adam", "ConicStep", "GradientStep", "HeavyBall", "LangevinStep"]


class GradientStep:
    """Plain gradient step, the explicit Euler step of the Wasserstein flow::

        w_i     <- w_i     - eta gW[i]
        theta_i <- theta_i - eta * position_ratio * P gTheta[i]
        b       <- b       - eta gb

    ``P`` the inverse of the position metric (applied by the loop).
    """

    gradient = "backward"
    monotone = True
    position_ratio = 1.0

    def _step_weights(self, new, particles, gW, eta):
        new.weights -= eta * gW

    def propose(self, particles, grads, eta, rng=None):
        gW, gTheta, gb = grads
        new = particles.copy()
        self._step_weights(new, particles, gW, eta)
        new.positions -= (eta * self.position_ratio) * gTheta
        if gb is not None:
            new.intercept -= eta * gb
        return new

    def accept(self, particles, candidate):
        pass

    def restart(self):
        return False

    def epoch_started(self, epoch, n_epochs):
        pass


class HeavyBall(GradientStep):
    """Heavy-ball momentum (Polyak) with adaptive restart::

        z <- z - eta P grad + momentum * v,      v <- (new z) - (old z)

    A full-batch step that would increase ``J`` first drops ``v`` (the
    adaptive restart of O'Donoghue & Candes, 2015) and retries a plain step.
    """

    def __init__(self, momentum):
        self.momentum = momentum
        self.velocity = None

    def propose(self, particles, grads, eta, rng=None):
        new = super().propose(particles, grads, eta, rng)
        if self.velocity is not None:
            new.add_scaled(self.velocity, self.momentum)
        return new

    def accept(self, particles, candidate):
        self.velocity = candidate.difference(particles)

    def restart(self):
        had = self.velocity is not None
        self.velocity = None
        return had


class Adam(GradientStep):
    """Adam (Kingma & Ba, 2015) on the mean-field gradients.

    With ``g`` the gradient of one coordinate (weights, positions and
    intercept alike) and ``k`` the number of accepted steps::

        m <- beta_1 m + (1 - beta_1) g,    v <- beta_2 v + (1 - beta_2) g^2
        z <- z - eta sqrt(1 - beta_2^k) / (1 - beta_1^k) m / (sqrt(v) + eps)

    The step of every coordinate is at most about ``eta`` whatever the
    scale of its gradient, and the gradients are the mean-field ones, so
    ``eta`` keeps its meaning for any number of particles.
    """

    def __init__(self, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.moments = None
        self.t = 0

    def propose(self, particles, grads, eta, rng=None):
        b1, b2 = self.beta_1, self.beta_2
        if self.moments is None:
            self.moments = [
                (None, None) if g is None else (np.zeros_like(g), np.zeros_like(g))
                for g in grads
            ]
        t = self.t + 1
        rate = eta * np.sqrt(1 - b2**t) / (1 - b1**t)
        new = particles.copy()
        self._pending = []
        for field, g, (m, v) in zip(new._fields(), grads, self.moments, strict=True):
            if g is None:
                self._pending.append((None, None))
                continue
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * np.square(g)
            field -= rate * m / (np.sqrt(v) + self.epsilon)
            self._pending.append((m, v))
        return new

    def accept(self, particles, candidate):
        self.moments = self._pending
        self.t += 1

    def restart(self):
        had = self.t > 0
        self.moments, self.t = None, 0
        return had


class ConicStep(GradientStep):
    """Conic particle gradient descent (Wasserstein-Fisher-Rao flow).

    Chizat, "Sparse optimization on measures with over-parameterized gradient
    descent", Math. Programming 2022. Each weight is written
    ``w_ic = sign_ic * r_ic^2`` with a sign fixed at initialisation. With
    ``gW`` the first variation ``J'(mu)`` at the particle and ``gV`` the
    position gradient per unit mass
    (:meth:`MeanFieldObjective.first_variation`)::

        r_ic    <- r_ic exp(-2 eta sign_ic gW_ic)     (mirror retraction)
                   i.e.  w_ic <- w_ic exp(-4 eta sign_ic gW_ic)
        theta_i <- theta_i - eta * position_ratio * P gV_i

    The position step carries no mass factor, so a particle of vanishing mass
    still moves at O(1) speed, while mass flows to the particles where
    ``J'`` is most negative. The update never changes a sign and never
    creates mass from zero: initial weights must be non-zero.

    Parameters
    ----------
    position_ratio : float, default=1.0
        Position time step over the weights' time step.
    """

    gradient = "first_variation"

    def __init__(self, position_ratio=1.0):
        self.position_ratio = position_ratio

    def _step_weights(self, new, particles, gW, eta):
        with np.errstate(over="ignore"):
            new.weights *= np.exp((-4 * eta) * (np.sign(particles.weights) * gW))


class LangevinStep(GradientStep):
    """Mean-field Langevin dynamics: a gradient step plus Gaussian noise.

    Mei, Montanari & Nguyen (2018); Chizat (2022); Nitanda, Wu & Suzuki
    (2022). The Euler-Maruyama step of ``dz = -grad J'(mu)(z) dt +
    sqrt(2 tau) dB``::

        w_i     <- w_i     - eta gW[i]       + sqrt(2 eta tau) xi
        theta_i <- theta_i - eta P gTheta[i] + sqrt(2 eta tau) P^(1/2) xi'

    a discretisation of the Wasserstein gradient flow of ``J + tau H``, ``H``
    the negative entropy. Not monotone: the loop accepts a step unless ``J``
    exceeds 100 times its initial value.

    Parameters
    ----------
    temperature : float
        ``tau`` at the first epoch.
    annealing : {"constant", "linear"}, default="constant"
        ``"linear"``: ``tau_k = tau (1 - k / n_epochs)``.
    metric : object with ``inverse_sqrt`` or None
        ``P^(1/2)`` for the position noise (None: identity).
    """

    monotone = False

    def __init__(self, temperature, annealing="constant", metric=None):
        self.temperature = temperature
        self.annealing = annealing
        self.metric = metric
        self.tau = temperature

    def epoch_started(self, epoch, n_epochs):
        if self.annealing == "linear":
            self.tau = self.temperature * max(0.0, 1.0 - epoch / n_epochs)
        else:
            self.tau = self.temperature

    def propose(self, particles, grads, eta, rng=None):
        new = super().propose(particles, grads, eta, rng)
        if self.tau > 0:
            sigma = np.sqrt(2.0 * eta * self.tau)
            dtype = new.weights.dtype
            xi = rng.standard_normal(new.weights.shape).astype(dtype)
            new.weights += sigma * xi
            xi = rng.standard_normal(new.positions.shape).astype(dtype)
            if self.metric is not None:
                xi = self.metric.inverse_sqrt(xi)
            new.positions += sigma * xi
        return new
