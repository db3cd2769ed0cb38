"""How particles move: discretised gradient flows of ``J`` over measures.

A flow takes a :class:`~sklearn_meanfield._objective.MeanFieldObjective`, the
prepared data and initial particles, and moves every particle along the
mean-field gradient (``m`` times its partial derivative, i.e. the gradient of
the first variation ``J'(mu)`` at the particle). The step size is therefore a
time step of the continuous flow and does not depend on the number of
particles.

Three flows share one driver (epochs, full batch or minibatches, step-size
schedule, stopping, early stopping, trajectory record, interruption):

- :class:`WassersteinGradientDescent`: plain gradient descent on weights and
  positions (the Wasserstein-2 flow of Chizat & Bach, 2018);
- :class:`ConicParticleGradientDescent`: multiplicative (mirror) updates of
  the weights and mass-normalised position steps (the Wasserstein-Fisher-Rao
  flow of Chizat, 2022);
- :class:`LangevinGradientDescent`: gradient descent plus Gaussian noise
  (mean-field Langevin dynamics, minimising ``J + tau * entropy``).
"""

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

__all__ = [
    "ConicParticleGradientDescent",
    "DivergenceError",
    "FlowResult",
    "LangevinGradientDescent",
    "WassersteinGradientDescent",
]


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
    samples_seen: int = 0
    validation_scores: list = field(default_factory=list)
    best_validation_score: float | None = None
    trajectory: dict | None = None


class _Trajectory:
    """Snapshots of the particles every ``every`` epochs, at most ``limit``.

    When the record is full, every other snapshot is dropped and the stride
    doubles, so memory stays bounded by ``limit`` snapshots for any run length.
    """

    def __init__(self, every, limit):
        self.every = every
        self.limit = max(2, limit)
        self.iterations, self.weights, self.positions = [], [], []

    def add(self, iteration, particles):
        if iteration % self.every:
            return
        self.iterations.append(iteration)
        self.weights.append(particles.weights.copy())
        self.positions.append(particles.positions.copy())
        if len(self.iterations) > self.limit:
            for seq in (self.iterations, self.weights, self.positions):
                del seq[1::2]
            self.every *= 2

    def as_dict(self):
        return {
            "iterations": np.asarray(self.iterations, dtype=int),
            "weights": np.stack(self.weights) if self.weights else None,
            "positions": np.stack(self.positions) if self.positions else None,
        }


class WassersteinGradientDescent:
    """Gradient descent on all particles (Wasserstein-2 flow).

    One step, with step ``eta`` and the mean-field gradients of
    :meth:`MeanFieldObjective.backward` on the whole data (full batch) or on a
    minibatch ``B`` (the loss restricted to ``B`` with the weights ``s_j``
    renormalised over ``B``)::

        w_i     <- w_i     - eta * gW[i]
        theta_i <- theta_i - eta * P gTheta[i]
        b       <- b       - eta * gb

    ``P = M^(-1)`` for the unit's constant metric ``M`` on positions (identity
    for the paper's Euclidean flow, see
    :class:`~sklearn_meanfield._units.InputMetric`).

    Step control. Full batch: a step is accepted only if ``J`` is finite and
    does not increase (for the noisy Langevin flow: does not exceed
    ``100 J_0``, ``J_0`` its value at the initial particles); otherwise
    ``eta`` is halved and the step retried from the same particles, so a
    divergence is caught before it reaches the particles. After an accepted
    step ``eta`` grows back by 1.1, up to the schedule's value (after a
    reduction, only once 20 steps have been accepted at the reduced size).
    Minibatches: an epoch whose loss becomes non-finite or exceeds
    ``100 J_0 / s(B)`` is restarted from its initial particles with half the
    step. Schedule: ``"constant"``, ``eta_k = learning_rate_init``;
    ``"invscaling"``, ``eta_k = learning_rate_init / (1 + k)^power_t`` at
    epoch ``k``.

    Stopping: ``max_iter`` epochs (a full-batch epoch is one step), or
    ``n_iter_no_change`` consecutive epochs that each fail to lower the best
    ``J`` by ``tol * |J_best|`` (relative, so independent of the units of
    ``y``); with a ``validation`` scorer, epochs that fail to raise the best
    validation score by ``tol`` instead, and the best particles are restored.
    A ``callback`` may also stop the flow.

    Parameters
    ----------
    learning_rate_init : float
        The time step ``eta`` of the flow (its largest value).
    max_iter : int
        Maximum number of epochs.
    tol : float
        Tolerance of the stopping rule.
    n_iter_no_change : int or None
        Patience of the stopping rule; None disables it.
    verbose : bool or int
        Print one line every ``verbose`` epochs (every one if True).
    batch_size : int or None, default=None
        Minibatch size; None for full batch.
    shuffle : bool, default=True
        Shuffle the samples at every epoch (minibatches only).
    learning_rate : {"constant", "invscaling"}, default="constant"
    power_t : float, default=0.5
    random_state : RandomState or None
        For shuffling and noise.
    record_every : int or None, default=None
        Record the particles every ``record_every`` epochs.
    max_records : int, default=200
        Bound on the number of recorded snapshots.
    warn_on_max_iter : bool, default=True
        Warn with ``ConvergenceWarning`` when ``max_iter`` is reached.
    momentum : float, default=0.0
        Heavy-ball momentum ``v <- momentum * v - eta * P grad``,
        ``z <- z + v`` (0: the plain discretised flow). Full-batch steps drop
        the velocity when it would increase ``J`` (adaptive restart).
    """

    #: step growth after an accepted step, and the smallest step tried,
    #: relative to the schedule, before giving up.
    growth = 1.1
    min_step_ratio = 1e-12
    #: accepted steps without growth after a reduction
    hold_after_reduction = 20
    #: whether a full-batch step must not increase J (False for noisy flows)
    monotone = True

    def __init__(
        self,
        learning_rate_init,
        max_iter,
        tol,
        n_iter_no_change,
        verbose=False,
        *,
        batch_size=None,
        shuffle=True,
        learning_rate="constant",
        power_t=0.5,
        random_state=None,
        record_every=None,
        max_records=200,
        warn_on_max_iter=True,
        momentum=0.0,
    ):
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.verbose = verbose
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.learning_rate = learning_rate
        self.power_t = power_t
        self.random_state = random_state
        self.record_every = record_every
        self.max_records = max_records
        self.warn_on_max_iter = warn_on_max_iter
        self.momentum = momentum

    # --- the step rule: what subclasses change ------------------------------

    def _gradients(self, objective, state):
        """The gradients ``_move`` uses, from a forward state."""
        return objective.backward(state)

    #: position step relative to the weights' step, and an optional in-place
    #: map applied to new positions (e.g. wrapping onto a torus)
    position_ratio = 1.0
    project = None

    def _step_weights(self, new, particles, gW, eta):
        """Additive step ``w <- w - eta gW`` (in place on ``new``)."""
        new.weights -= eta * gW

    def _move(self, particles, grads, eta, metric):
        gW, gTheta, gb = grads
        new = particles.copy()
        self._step_weights(new, particles, gW, eta)
        if metric is not None:
            gTheta = metric.precondition(gTheta)
        new.positions -= (eta * self.position_ratio) * gTheta
        if self.project is not None:
            self.project(new.positions)
        if gb is not None:
            new.intercept -= eta * gb
        return new

    def _epoch_started(self, epoch):
        """Hook called at the start of every epoch (e.g. annealing)."""

    # --- the driver ---------------------------------------------------------

    def _schedule(self, epoch):
        if self.learning_rate == "invscaling":
            return self.learning_rate_init / (1.0 + epoch) ** self.power_t
        return float(self.learning_rate_init)

    def run(
        self,
        objective,
        Xp,
        Y,
        s,
        particles,
        metric=None,
        callback=None,
        validation=None,
        start_epoch=0,
    ):
        """Run the flow from ``particles``; return a :class:`FlowResult`.

        Parameters
        ----------
        objective : MeanFieldObjective
        Xp, Y, s : ndarray
            Prepared inputs, encoded targets (n_samples, n_outputs) and sample
            weights summing to one.
        particles : Particles
        metric : object with ``precondition`` or None
        callback : callable or None
            ``callback(n_iter, particles, value)`` after every epoch; the flow
            stops (converged) when it returns True.
        validation : callable or None
            ``validation(particles) -> score`` (higher is better): early
            stopping on it, and the best particles are returned.
        start_epoch : int
            Epochs already done (for the schedule, with warm starts).

        Raises
        ------
        DivergenceError
            If ``J`` is not finite at the initial particles, or no step down
            to ``min_step_ratio`` times the schedule gives a finite ``J``.
        """
        self._rng = check_random_state(self.random_state)
        n = Xp.shape[0]
        minibatch = self.batch_size is not None and self.batch_size < n
        result = FlowResult(particles=particles)
        record = (
            _Trajectory(self.record_every, self.max_records)
            if self.record_every
            else None
        )
        if record is not None:
            record.add(0, particles)
        verbose_every = int(self.verbose) if self.verbose else 0
        start = time.perf_counter()
        best, best_score, best_particles = np.inf, -np.inf, None
        no_improvement = 0
        if not minibatch:
            value, state = objective.forward(Xp, Y, s, particles)
            if not np.isfinite(value):
                raise DivergenceError(
                    "The objective is not finite at the initial particles; the "
                    "input values are too large for this dtype. Rescale X and "
                    "y (e.g. with StandardScaler)."
                )
            grads = self._gradients(objective, state)
            self._J_start = value
        self._scale = 1.0  # step multiplier, halved on divergence
        self._eta = np.inf  # current full-batch step, capped by the schedule
        self._hold = 0
        self._velocity = None  # heavy-ball velocity (momentum > 0)
        try:
            for epoch in range(self.max_iter):
                self._epoch_started(start_epoch + epoch)
                eta_max = self._schedule(start_epoch + epoch)
                if minibatch:
                    particles, value = self._minibatch_epoch(
                        objective, Xp, Y, s, particles, metric, eta_max, result
                    )
                else:
                    stepped = self._full_batch_step(
                        objective,
                        Xp,
                        Y,
                        s,
                        particles,
                        metric,
                        eta_max,
                        value,
                        grads,
                        result,
                    )
                    if stepped is None:  # no descent step left: stationary
                        result.converged = True
                        break
                    particles, value, grads = stepped
                result.samples_seen += n
                result.loss_curve.append(value)
                if record is not None:
                    record.add(epoch + 1, particles)
                line = f"Iteration {epoch + 1}, loss = {value:.8f}"
                if validation is not None:
                    score = validation(particles)
                    result.validation_scores.append(score)
                    line += f", validation score = {score:.6f}"
                    improved = score > best_score + self.tol
                    if score > best_score:
                        best_score, best_particles = score, particles.copy()
                else:
                    improved = value <= best - self.tol * abs(best)
                    best = min(best, value)
                no_improvement = 0 if improved else no_improvement + 1
                if verbose_every and (epoch + 1) % verbose_every == 0:
                    elapsed = time.perf_counter() - start
                    print(f"{line}, time = {elapsed:.2f}s")
                # a noisy flow's loss fluctuates: only validation stops it early
                patience = self.n_iter_no_change
                if not self.monotone and validation is None:
                    patience = None
                if (patience is not None and no_improvement >= patience) or (
                    callback is not None and callback(epoch + 1, particles, value)
                ):
                    result.converged = True
                    break
            else:
                if self.warn_on_max_iter:
                    warnings.warn(
                        f"The particle flow reached max_iter={self.max_iter} "
                        "iterations and the optimization hasn't converged yet.",
                        ConvergenceWarning,
                        stacklevel=2,
                    )
        except KeyboardInterrupt:
            warnings.warn(
                "Training interrupted by the user; the particles of the last "
                "completed step are kept.",
                UserWarning,
                stacklevel=2,
            )
        if best_particles is not None:
            particles = best_particles
            result.best_validation_score = best_score
        result.particles = particles
        result.n_iter = len(result.loss_curve)
        result.step_size = getattr(self, "_last_eta", 0.0)
        if record is not None:
            result.trajectory = record.as_dict()
        return result

    def _full_batch_step(
        self, objective, Xp, Y, s, particles, metric, eta_max, value, grads, result
    ):
        """One accepted step with backtracking; None when no step descends.

        With ``momentum > 0`` the step is the heavy-ball step
        ``z <- z + v``, ``v <- momentum * v - eta * P grad``; a step that
        would increase ``J`` first drops the velocity (an adaptive restart,
        O'Donoghue & Candes 2015) and only then halves ``eta``.
        """
        eta_cap = eta_max * self._scale
        eta = min(self._eta, eta_cap)
        velocity = self._velocity if self.momentum > 0 else None
        while True:
            candidate = self._move(particles, grads, eta, metric)
            if velocity is not None:
                candidate.add_scaled(velocity, self.momentum)
            new_value, new_state = objective.forward(Xp, Y, s, candidate)
            finite = np.isfinite(new_value)
            # a noisy flow may go up, but not blow up past 100 J_0 (a bound
            # relative to the current J would compound step after step)
            bound = value if self.monotone else 100 * self._J_start
            if finite and new_value <= bound:
                break
            if velocity is not None:
                velocity = None  # restart: retry without momentum first
                continue
            eta *= 0.5
            self._hold = self.hold_after_reduction
            result.n_step_reductions += 1
            if eta < self.min_step_ratio * eta_max:
                if finite:
                    self._eta = self._last_eta = eta
                    return None
                raise DivergenceError(
                    "The particle flow diverged: no step size gives a finite "
                    "objective. Rescale X and y."
                )
        if self.momentum > 0:
            self._velocity = candidate.difference(particles)
        self._last_eta = eta
        if eta < eta_cap and self._hold > 0:
            # just reduced: hold the step a while rather than climbing back
            # to the rejected size every few iterations (a sawtooth)
            self._hold -= 1
            self._eta = eta
        else:
            self._eta = min(eta * self.growth, eta_cap)
        return candidate, new_value, self._gradients(objective, new_state)

    def _initial_value(self, objective, Xp, Y, s):
        """``J_0``, the objective at the run's initial particles (finite)."""
        J0 = objective.value(Xp, Y, s, self._initial)
        if not np.isfinite(J0):
            raise DivergenceError(
                "The objective is not finite at the initial particles; the "
                "input values are too large for this dtype. Rescale X and "
                "y (e.g. with StandardScaler)."
            )
        return J0

    def _minibatch_epoch(self, objective, Xp, Y, s, particles, metric, eta_max, result):
        """One pass of minibatch steps.

        Divergence is detected per batch: a loss that is not finite, or that
        exceeds ``100 J_0 / s(B)`` (``J_0`` the objective at the initial
        particles, ``s(B)`` the batch's share of the sample weight: at the
        initial particles the batch loss is at most ``J_0 / s(B)``). ``J_0``
        costs a pass over the data (once per ``partial_fit`` call), so it is
        computed only when a batch is above ``100 L / s(B)``, with ``L <=
        J_0`` the largest ``s(B) J(B)`` seen at the initial particles (all
        loss and penalty terms are non-negative): the test is the same. The
        epoch is then restarted with half the step from its initial particles, or
        from those of the previous epoch if its very first batch failed (the
        previous epoch ended in a blow-up that no batch had evaluated), or
        from the initial particles of the run if that fails at once too.
        """
        n = Xp.shape[0]
        if not hasattr(self, "_initial"):
            self._previous_start = self._initial = particles
            self._J0, self._J0_lower = None, 0.0
        while True:
            order = self._rng.permutation(n) if self.shuffle else np.arange(n)
            eta = eta_max * self._scale
            current, total, failed_at = particles, 0.0, None
            for b, begin in enumerate(range(0, n, self.batch_size)):
                idx = order[begin : begin + self.batch_size]
                sb = s[idx]
                mass = sb.sum()
                if not mass > 0:
                    continue
                value, state = objective.forward(Xp[idx], Y[idx], sb / mass, current)
                if current is self._initial and np.isfinite(value):
                    self._J0_lower = max(self._J0_lower, mass * value)
                if not (np.isfinite(value) and mass * value <= 100 * self._J0_lower):
                    if self._J0 is None:
                        self._J0 = self._initial_value(objective, Xp, Y, s)
                        # that pass reused the work arrays of the batch's state
                        value, state = objective.forward(
                            Xp[idx], Y[idx], sb / mass, current
                        )
                    if not (np.isfinite(value) and value <= 100 * self._J0 / mass):
                        failed_at = b
                        break
                total += mass * value
                moved = self._move(
                    current, self._gradients(objective, state), eta, metric
                )
                if self.momentum > 0:
                    if self._velocity is not None:
                        moved.add_scaled(self._velocity, self.momentum)
                    self._velocity = moved.difference(current)
                current = moved
            if failed_at is None and current.all_finite():
                self._last_eta = eta
                self._previous_start = particles
                return current, total / max(s.sum(), 1e-300)
            if failed_at == 0:
                # the epoch's start is already bad: go back one epoch, and if
                # that start fails too (on another first batch), to the
                # initial particles, where no batch can fail
                particles = (
                    self._initial
                    if particles is self._previous_start
                    else self._previous_start
                )
            self._velocity = None
            self._scale *= 0.5
            result.n_step_reductions += 1
            if self._scale < self.min_step_ratio:
                raise DivergenceError(
                    "The particle flow diverged: no step size gives a finite "
                    "objective. Rescale X and y."
                )


class ConicParticleGradientDescent(WassersteinGradientDescent):
    """Conic particle gradient descent (Wasserstein-Fisher-Rao flow).

    Chizat, "Sparse optimization on measures with over-parameterized gradient
    descent", Math. Programming 2022. Each weight is written
    ``w_ic = sign_ic * r_ic^2`` with a sign fixed at initialisation (two
    families of particles for a signed measure). With ``gW`` the mean-field
    weight gradient (the first variation ``J'(mu)`` at the particle) and
    ``gV`` the position gradient per unit mass (the gradient of the first
    variation with the weights replaced by ``w_i / |w_i|``, see
    :meth:`MeanFieldObjective.first_variation`), one step is::

        r_ic    <- r_ic exp(-2 eta sign_ic gW_ic)     (mirror retraction)
                   i.e.  w_ic <- w_ic exp(-4 eta sign_ic gW_ic)
        theta_i <- theta_i - eta * ratio * P gV_i

    ``eta`` the weights' time step and ``ratio = position_step /
    weight_step``; the position step carries no mass factor, so a particle
    of vanishing mass still moves at O(1) speed, while mass flows to the
    particles where ``J'`` is most negative. The multiplicative update never
    changes a sign and never creates mass from zero: initial weights must be
    non-zero. Step control, stopping and warnings are those of
    :class:`WassersteinGradientDescent`; both steps are reduced together.

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
    **kwargs
        The driver options of :class:`WassersteinGradientDescent`.
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
        **kwargs,
    ):
        super().__init__(
            weight_step, max_iter, tol, n_iter_no_change, verbose, **kwargs
        )
        self.weight_step = weight_step
        self.position_step = position_step
        self.project = project

    def _gradients(self, objective, state):
        return objective.first_variation(state)

    @property
    def position_ratio(self):
        return self.position_step / self.weight_step

    def _step_weights(self, new, particles, gW, eta):
        """Mirror retraction ``w <- w exp(-4 eta sign(w) gW)`` (in place)."""
        with np.errstate(over="ignore"):
            new.weights *= np.exp((-4 * eta) * (np.sign(particles.weights) * gW))


class LangevinGradientDescent(WassersteinGradientDescent):
    """Mean-field Langevin dynamics: gradient descent plus Gaussian noise.

    Mei, Montanari & Nguyen (2018); Chizat (2022); Nitanda, Wu & Suzuki
    (2022). Every particle ``(w_i, theta_i)`` moves by the Euler-Maruyama step
    of ``d z = -grad J'(mu)(z) dt + sqrt(2 tau) dB``::

        w_i     <- w_i     - eta gW[i]       + sqrt(2 eta tau) xi
        theta_i <- theta_i - eta P gTheta[i] + sqrt(2 eta tau) P^(1/2) xi'

    (``xi, xi'`` standard Gaussian, ``P^(1/2)`` the metric's square root), a
    discretisation of the Wasserstein gradient flow of ``J + tau * H``, ``H``
    the negative entropy of the particle distribution. It converges
    exponentially under a log-Sobolev condition (a weight decay ``alpha > 0``
    provides the confinement) without special initialisation, to a diffuse
    solution with an ``O(tau)`` bias unless ``tau`` is annealed. Steps are
    accepted whenever ``J`` stays finite, and since the noise makes ``J``
    fluctuate the flow runs ``max_iter`` epochs unless early stopping on a
    validation score is on.

    Parameters
    ----------
    temperature : float
        ``tau`` at the first epoch.
    annealing : {"constant", "linear"}, default="constant"
        ``"linear"``: ``tau_k = tau (1 - k / max_iter)``, ending at 0 so that
        the last epochs are plain gradient descent.
    **kwargs
        As in :class:`WassersteinGradientDescent`.
    """

    monotone = False

    def __init__(
        self,
        learning_rate_init,
        max_iter,
        tol,
        n_iter_no_change,
        verbose=False,
        *,
        temperature,
        annealing="constant",
        **kwargs,
    ):
        super().__init__(
            learning_rate_init, max_iter, tol, n_iter_no_change, verbose, **kwargs
        )
        self.temperature = temperature
        self.annealing = annealing
        self._tau = temperature

    def _epoch_started(self, epoch):
        if self.annealing == "linear":
            self._tau = self.temperature * max(0.0, 1.0 - epoch / self.max_iter)
        else:
            self._tau = self.temperature

    def _move(self, particles, grads, eta, metric):
        new = super()._move(particles, grads, eta, metric)
        if self._tau > 0:
            sigma = np.sqrt(2.0 * eta * self._tau)
            dtype = new.weights.dtype
            xi = self._rng.standard_normal(new.weights.shape).astype(dtype)
            new.weights += sigma * xi
            xi = self._rng.standard_normal(new.positions.shape).astype(dtype)
            if metric is not None:
                xi = metric.inverse_sqrt(xi)
            new.positions += sigma * xi
        return new
