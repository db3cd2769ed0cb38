"""How particles move: the loop of the discretised gradient flows of ``J``.

:class:`ParticleFlow` runs epochs of steps of an update rule
(:mod:`sklearn_meanfield._rules`: plain gradient step, heavy ball, Adam,
conic, Langevin) on a :class:`~sklearn_meanfield._objective.
MeanFieldObjective`, full batch or over minibatches, with step control,
schedules, stopping, early stopping, a trajectory record and interruption.
:class:`~sklearn_meanfield._lbfgs.LBFGS` is the quasi-Newton solver beside
it, with the same ``run`` contract.

The solver contract::

    solver.run(objective, data, particles, *, validation=None,
               callback=None) -> FlowResult

``data`` is a :class:`TrainingData` (prepared inputs, encoded targets and
sample weights summing to one), ``particles`` the initial
:class:`~sklearn_meanfield._objective.Particles`. ``validation(particles) ->
score`` (higher is better) turns on early stopping and the best particles
are returned (with ``early_stopping=False`` the scores are only recorded);
``callback(n_iter, particles, value)`` is called after every epoch and stops
the run (converged) when it returns True; ``on_epoch(record)`` likewise, with
an :class:`EpochRecord`. Everything a run changes lives in the run (a local
state object) or in the update rule, which the caller may keep for the next
run (``partial_fit``).
"""

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from ._rules import GradientStep

__all__ = [
    "DivergenceError",
    "EpochRecord",
    "FlowResult",
    "ParticleFlow",
    "TrainingData",
]


class DivergenceError(ValueError, FloatingPointError):
    """The objective is not finite and no step size makes it finite.

    A ``ValueError`` (it is caused by the input: values too large for the
    dtype) and a ``FloatingPointError``.
    """


@dataclass
class TrainingData:
    """What a solver fits: prepared inputs ``Xp`` (n_samples, n_params), encoded
    targets ``Y`` (n_samples, n_outputs) and sample weights ``s`` summing to
    one."""

    Xp: object
    Y: np.ndarray
    s: np.ndarray

    @property
    def n_samples(self):
        return self.Xp.shape[0]

    def batch(self, idx):
        """The minibatch ``idx`` with its weights renormalised, and its share
        ``s(B)`` of the total weight."""
        sb = self.s[idx]
        mass = float(sb.sum())
        return TrainingData(self.Xp[idx], self.Y[idx], sb / mass), mass


@dataclass
class FlowResult:
    """What a solver returns besides the particles."""

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


@dataclass(frozen=True)
class EpochRecord:
    """What a solver reports after every epoch (iteration of L-BFGS).

    ``iteration`` counts from the start of the fit (``first_iteration + 1``
    for the run's first epoch), ``loss`` is ``J`` at the end of the epoch,
    ``validation_score`` the score on the validation data (None without),
    ``step_size`` the step of the epoch's last update (None for L-BFGS,
    whose line search sets it internally) and ``particles`` the particles
    (not to be modified).
    """

    iteration: int
    loss: float
    validation_score: float | None
    step_size: float | None
    particles: object


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


class _Monitor:
    """Per-epoch bookkeeping shared by the solvers: loss curve, record,
    verbose lines, the stopping rule and early stopping.

    Stopping: ``n_iter_no_change`` consecutive epochs that each fail to lower
    the best ``J`` by ``tol * |J_best|`` (relative, so independent of the
    units of ``y``); with a ``validation`` scorer and ``early_stopping``,
    epochs that fail to raise the best validation score by ``tol`` instead
    (the best particles are then restored). The first epoch is compared with
    ``J`` at the initial particles when known (otherwise it counts as an
    improvement), and without early stopping the run stops once ``J`` is
    below ``1e-12`` times that value. When the patience runs out and the
    solver's ``reduce_step()`` returns True (the ``"adaptive"`` schedule),
    the count restarts instead of stopping.
    """

    def __init__(
        self, solver, result, validation, callback, initial, J_initial, on_epoch=None
    ):
        self.solver = solver
        self.result = result
        self.validation = validation
        self.early_stopping = validation is not None and getattr(
            solver, "early_stopping", True
        )
        self.callback = callback
        self.on_epoch = on_epoch
        self.first_iteration = getattr(solver, "first_iteration", 0)
        self.record = (
            _Trajectory(solver.record_every, solver.max_records)
            if solver.record_every
            else None
        )
        if self.record is not None:
            self.record.add(0, initial)
        self.verbose_every = int(solver.verbose) if solver.verbose else 0
        self.start = time.perf_counter()
        self.best = np.inf if J_initial is None else J_initial
        # J down by 12 orders of magnitude from its initial value: exactly
        # fitted to the precision that matters (a relative rule alone would
        # follow J geometrically into denormal numbers)
        self.floor = 0.0 if J_initial is None else 1e-12 * J_initial
        self.best_score, self.best_particles = -np.inf, None
        self.no_improvement = 0
        #: set by a solver with the "adaptive" schedule: divides its step,
        #: False when the step is already at its smallest
        self.reduce_step = None

    def epoch_done(self, epoch, particles, value, patience, step_size=None):
        """Record the epoch; True when the run should stop (converged)."""
        result, solver = self.result, self.solver
        iteration = self.first_iteration + epoch + 1
        result.loss_curve.append(value)
        if self.record is not None:
            self.record.add(epoch + 1, particles)
        line = f"Iteration {iteration}, loss = {value:.8f}"
        score = None
        if self.validation is not None:
            score = self.validation(particles)
            result.validation_scores.append(score)
            line += f", validation score = {score:.6f}"
        if self.early_stopping:
            improved = score > self.best_score + solver.tol
            if score > self.best_score:
                self.best_score, self.best_particles = score, particles.copy()
        else:
            # the first comparison, with no J before it, is an improvement
            improved = not np.isfinite(self.best) or (
                value <= self.best - solver.tol * abs(self.best)
            )
            self.best = min(self.best, value)
        self.no_improvement = 0 if improved else self.no_improvement + 1
        if self.verbose_every and iteration % self.verbose_every == 0:
            elapsed = time.perf_counter() - self.start
            print(f"{line}, time = {elapsed:.2f}s")
        stop = not self.early_stopping and value <= self.floor
        if not stop and patience is not None and self.no_improvement >= patience:
            if self.reduce_step is None or not self.reduce_step():
                stop = True
            else:
                self.no_improvement = 0
        # the callbacks see every epoch, the last one included
        if self.callback is not None and self.callback(epoch + 1, particles, value):
            stop = True
        if self.on_epoch is not None and self.on_epoch(
            EpochRecord(iteration, value, score, step_size, particles)
        ):
            stop = True
        return stop

    def finish(self, particles):
        result = self.result
        if self.best_particles is not None:
            particles = self.best_particles
            result.best_validation_score = self.best_score
        elif result.validation_scores:
            result.best_validation_score = max(result.validation_scores)
        result.particles = particles
        result.n_iter = len(result.loss_curve)
        if self.record is not None:
            result.trajectory = self.record.as_dict()
        return result


def _negligible_move(particles, candidate):
    """True when ``candidate`` differs from ``particles`` in no coordinate by
    more than a few units in the last place: a step that changes nothing."""
    for a, b in zip(particles._fields(), candidate._fields(), strict=True):
        if a is None:
            continue
        info = np.finfo(a.dtype)
        if np.any(np.abs(b - a) > 4 * info.eps * np.maximum(np.abs(a), info.tiny)):
            return False
    return True


def _warn_no_step(solver):
    warnings.warn(
        "The particle flow took no step: no step size, down to rounding "
        "level, decreases the objective from the initial particles. The "
        "model is the initialisation.",
        ConvergenceWarning,
        stacklevel=3,
    )


def _looks_worse(run, loss_curve, factor):
    """Whether an incremental minibatch run may have ended with more than
    ``factor`` times its initial ``J``, from what the run computed anyway:
    its last epoch's mean batch loss above ``factor`` times the first
    batch's at the initial particles (an estimate of ``J`` there). The two
    passes over the data that decide it exactly are then worth making;
    a healthy call, one pass, makes none."""
    if run.first_batch is None or not loss_curve:
        return True
    return not loss_curve[-1] <= factor * run.first_batch


def _warn_worse(J_start, J_end):
    warnings.warn(
        f"The run ended with a larger objective than it started with "
        f"(J = {J_start:.6g} at the start, {J_end:.6g} at the end): its steps "
        "are too large for this problem. Lower learning_rate_init.",
        ConvergenceWarning,
        stacklevel=3,
    )


def _warn_max_iter(solver, step=None, schedule=None):
    """The ``max_iter`` warning; with the run's last ``step`` far below its
    ``schedule`` value, it names the likely cause: an initial step so large
    that the step control cut it by orders of magnitude (the rule's other
    steps, e.g. the positions' of a conic step, are cut with it)."""
    if not solver.warn_on_max_iter:
        return
    message = (
        f"The particle flow reached max_iter={solver.max_iter} "
        "iterations and the optimization hasn't converged yet."
    )
    if step is not None and schedule and 0 < step < 1e-3 * schedule:
        message += (
            f" Its steps were cut to {step:.3g}, {step / schedule:.1g} times "
            f"the initial step {schedule:.3g}: the initial step "
            "(learning_rate_init, or weight_step for the spikes) is too large "
            "for this problem; lower it."
        )
    warnings.warn(message, ConvergenceWarning, stacklevel=3)


def _warn_interrupted():
    warnings.warn(
        "Training interrupted by the user; the particles of the last "
        "completed step are kept.",
        UserWarning,
        stacklevel=3,
    )


def _not_finite_at_start():
    return DivergenceError(
        "The objective is not finite at the initial particles; the "
        "input values are too large for this dtype. Rescale X and "
        "y (e.g. with StandardScaler)."
    )


def _diverged():
    return DivergenceError(
        "The particle flow diverged: no step size gives a finite "
        "objective. Rescale X and y."
    )


@dataclass
class _RunState:
    """What one run of :class:`ParticleFlow` changes besides the particles."""

    scale: float = 1.0  # step multiplier, halved when a minibatch epoch fails
    eta: float = np.inf  # current full-batch step, capped by the schedule
    hold: int = 0  # accepted steps left before the step may grow again
    last_eta: float = 0.0
    J_start: float | None = None  # J at the initial particles (full batch)
    initial: object = None  # minibatches: the run's initial particles,
    previous_start: object = None  # the previous epoch's start,
    J0: float | None = None  # J at the initial particles (computed lazily)
    J0_lower: float = 0.0  # and a lower bound on it from the batches seen
    first_batch: float | None = None  # the first batch's loss there


class ParticleFlow:
    """Epochs of steps of an update rule: the discretised particle flows.

    One step, with step ``eta`` and the gradients the rule asks for, on the
    whole data (full batch) or on a minibatch ``B`` (the loss restricted to
    ``B`` with the weights ``s_j`` renormalised over ``B``)::

        z <- rule.propose(z, (gW, P gTheta, gb), eta)

    ``P = M^(-1)`` for a constant ``metric`` ``M`` on positions (None: the
    identity) and ``project`` applied in place to the new positions (e.g.
    wrapping onto a torus).

    Step control. Full batch: a step is accepted only if ``J`` is finite and
    does not increase (for a rule that is not monotone, the noisy Langevin
    step: does not exceed ``100 J_0``, ``J_0`` its value at the initial
    particles); otherwise the rule is restarted (a velocity dropped) and the
    step retried, then ``eta`` is halved and the step retried from the same
    particles, so a divergence never reaches the particles. After an accepted
    step ``eta`` grows back by 1.1, up to the schedule's value (after a
    reduction, only once 20 steps have been accepted at the reduced size).
    Minibatches: an epoch whose loss becomes non-finite or exceeds
    ``100 J_0 / s(B)`` is restarted from its initial particles with half the
    step. Schedule: ``"constant"``, ``eta_k = learning_rate_init``;
    ``"invscaling"``, ``eta_k = learning_rate_init / (1 + k)^power_t`` at
    epoch ``k`` (counted from ``start_epoch``); ``"adaptive"``, constant
    until the stopping rule's patience runs out, then divided by 5 (and the
    patience restarted) instead of stopping, until it is below ``1e-3``
    times ``learning_rate_init`` (MLP's rule with its default step:
    five divisions). Stopping: see ``_Monitor``; a rule that is
    not monotone stops early only on a validation score.

    Parameters
    ----------
    rule : update rule, default=None
        :mod:`sklearn_meanfield._rules` (None: :class:`GradientStep`).
    learning_rate_init : float, default=0.5
        The time step ``eta`` of the flow (its largest value).
    max_iter : int, default=1000
        Maximum number of epochs.
    tol : float, default=1e-4
        Tolerance of the stopping rule.
    n_iter_no_change : int or None, default=10
        Patience of the stopping rule; None disables it.
    batch_size : int or None, default=None
        Minibatch size; None for full batch.
    shuffle : bool, default=True
        Shuffle the samples at every epoch (minibatches only).
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
    power_t : float, default=0.5
    start_epoch : int, default=0
        Epochs already done (for the schedule, when continuing a fit).
    first_iteration : int, default=0
        Iterations already counted (verbose lines and :class:`EpochRecord`
        number the run's epochs from ``first_iteration + 1``).
    early_stopping : bool, default=True
        With a ``validation`` scorer: stop on it and restore the best
        particles; False records the scores only.
    metric : object with ``precondition`` or None, default=None
    project : callable or None, default=None
    random_state : RandomState or None
        For shuffling and noise.
    record_every : int or None, default=None
        Record the particles every ``record_every`` epochs.
    max_records : int, default=200
        Bound on the number of recorded snapshots.
    verbose : bool or int, default=False
        Print one line every ``verbose`` epochs (every one if True).
    warn_on_max_iter : bool, default=True
        Warn with ``ConvergenceWarning`` when ``max_iter`` is reached, and
        when a run of minibatch steps or of a noisy rule ends with a larger
        ``J`` than it started with (which costs a pass over the data).
    warn_worse : float or None, default=None
        With ``warn_on_max_iter=False`` (an incremental run, e.g. one
        ``partial_fit`` call), still warn when such a run ends with more than
        ``warn_worse`` times the ``J`` it started with (None: never): steps
        that make ``J`` grow call after call compound, where a noisy run's
        end is only somewhat above its start.
    """

    #: step growth after an accepted step, and the smallest step tried,
    #: relative to the schedule, before giving up.
    growth = 1.1
    min_step_ratio = 1e-12
    #: accepted steps without growth after a reduction
    hold_after_reduction = 20
    #: the "adaptive" schedule's division, and the step relative to
    #: learning_rate_init at or below which it stops instead
    adaptive_factor = 5.0
    adaptive_min_ratio = 1e-3

    def __init__(
        self,
        rule=None,
        *,
        learning_rate_init=0.5,
        max_iter=1000,
        tol=1e-4,
        n_iter_no_change=10,
        batch_size=None,
        shuffle=True,
        learning_rate="constant",
        power_t=0.5,
        start_epoch=0,
        first_iteration=0,
        early_stopping=True,
        metric=None,
        project=None,
        random_state=None,
        record_every=None,
        max_records=200,
        verbose=False,
        warn_on_max_iter=True,
        warn_worse=None,
    ):
        self.rule = GradientStep() if rule is None else rule
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.learning_rate = learning_rate
        self.power_t = power_t
        self.start_epoch = start_epoch
        self.first_iteration = first_iteration
        self.early_stopping = early_stopping
        self.metric = metric
        self.project = project
        self.random_state = random_state
        self.record_every = record_every
        self.max_records = max_records
        self.verbose = verbose
        self.warn_on_max_iter = warn_on_max_iter
        self.warn_worse = warn_worse

    def _schedule(self, epoch):
        if self.learning_rate == "invscaling":
            return self.learning_rate_init / (1.0 + epoch) ** self.power_t
        return float(self.learning_rate_init)

    def _gradients(self, objective, state):
        if self.rule.gradient == "first_variation":
            gW, gTheta, gb = objective.first_variation(state)
        else:
            gW, gTheta, gb = objective.backward(state)
        if self.metric is not None:
            gTheta = self.metric.precondition(gTheta)
        return gW, gTheta, gb

    def _propose(self, particles, grads, eta, rng):
        candidate = self.rule.propose(particles, grads, eta, rng)
        if self.project is not None:
            self.project(candidate.positions)
        return candidate

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
        """Run the flow from ``particles``; return a :class:`FlowResult`.

        See the module docstring for the contract.

        Raises
        ------
        DivergenceError
            If ``J`` is not finite at the initial particles, or no step down
            to ``min_step_ratio`` times the schedule gives a finite ``J``.
        """
        rng = check_random_state(self.random_state)
        n = data.n_samples
        minibatch = self.batch_size is not None and self.batch_size < n
        run = _RunState()
        result = FlowResult(particles=particles)
        grads = None
        if not minibatch:
            value, state = objective.forward(data.Xp, data.Y, data.s, particles)
            if not np.isfinite(value):
                raise _not_finite_at_start()
            grads = self._gradients(objective, state)
            run.J_start = value
        monitor = _Monitor(
            self, result, validation, callback, particles, run.J_start, on_epoch
        )
        if self.learning_rate == "adaptive":

            def reduce_step():
                if run.scale <= self.adaptive_min_ratio:
                    return False
                run.scale /= self.adaptive_factor
                return True

            monitor.reduce_step = reduce_step
        # a noisy flow's loss fluctuates: only validation stops it early
        patience = self.n_iter_no_change
        if not self.rule.monotone and not monitor.early_stopping:
            patience = None
        try:
            for epoch in range(self.max_iter):
                self.rule.epoch_started(
                    self.start_epoch + epoch, self.start_epoch + self.max_iter
                )
                eta_max = self._schedule(self.start_epoch + epoch)
                if minibatch:
                    particles, value = self._minibatch_epoch(
                        objective, data, particles, eta_max, run, result, rng
                    )
                else:
                    stepped = self._full_batch_step(
                        objective,
                        data,
                        particles,
                        eta_max,
                        value,
                        grads,
                        run,
                        result,
                        rng,
                    )
                    if stepped is None:  # no descent step left: stationary
                        moving = any(np.any(g) for g in grads if g is not None)
                        if epoch == 0 and moving:
                            _warn_no_step(self)
                        result.converged = True
                        break
                    particles, value, grads = stepped
                result.samples_seen += n
                if monitor.epoch_done(
                    epoch, particles, value, patience, step_size=run.last_eta
                ):
                    result.converged = True
                    break
            else:
                _warn_max_iter(
                    self, run.last_eta, self._schedule(self.start_epoch + epoch)
                )
        except KeyboardInterrupt:
            _warn_interrupted()
        result.step_size = run.last_eta
        start = run.initial if minibatch else result.particles
        factor = 1.0 if self.warn_on_max_iter else self.warn_worse
        if (
            factor is not None
            and (minibatch or not self.rule.monotone)
            and start is not None
            and (
                self.warn_on_max_iter
                or not minibatch
                or _looks_worse(run, result.loss_curve, factor)
            )
        ):
            J_start = run.J_start if run.J0 is None else run.J0
            if J_start is None:
                J_start = objective.value(data.Xp, data.Y, data.s, start)
            J_end = objective.value(data.Xp, data.Y, data.s, particles)
            if not J_end <= factor * J_start:
                _warn_worse(J_start, J_end)
        return monitor.finish(particles)

    def _full_batch_step(
        self, objective, data, particles, eta_max, value, grads, run, result, rng
    ):
        """One accepted step with backtracking; None when no step descends."""
        eta_cap = eta_max * run.scale
        eta = min(run.eta, eta_cap)
        while True:
            # a step too large may overflow: the candidate is then rejected
            with np.errstate(over="ignore", invalid="ignore"):
                candidate = self._propose(particles, grads, eta, rng)
                new_value, new_state = objective.forward(
                    data.Xp, data.Y, data.s, candidate
                )
            finite = np.isfinite(new_value)
            # a noisy flow may go up, but not blow up past 100 J_0 (a bound
            # relative to the current J would compound step after step)
            bound = value if self.rule.monotone else 100 * run.J_start
            if finite and new_value <= bound:
                break
            if self.rule.restart():
                continue  # retry without the rule's state first
            if 0 < run.last_eta < eta:
                # the step grew past what works: hold it once reduced (a
                # first step that is too large is only halved, not held)
                run.hold = self.hold_after_reduction
            eta *= 0.5
            result.n_step_reductions += 1
            if eta < self.min_step_ratio * eta_max:
                if finite and _negligible_move(particles, candidate):
                    # no step changes the particles: stationary to rounding
                    run.eta = run.last_eta = eta
                    return None
                if not eta > 0:
                    raise _diverged()
        self.rule.accept(particles, candidate)
        run.last_eta = eta
        if eta < eta_cap and run.hold > 0:
            # just reduced: hold the step a while rather than climbing back
            # to the rejected size every few iterations (a sawtooth)
            run.hold -= 1
            run.eta = eta
        else:
            run.eta = min(eta * self.growth, eta_cap)
        return candidate, new_value, self._gradients(objective, new_state)

    def _minibatch_epoch(self, objective, data, particles, eta_max, run, result, rng):
        """One pass of minibatch steps.

        Divergence is detected per batch: a loss that is not finite, or that
        exceeds ``100 J_0 / s(B)`` (``J_0`` the objective at the initial
        particles, ``s(B)`` the batch's share of the sample weight: at the
        initial particles the batch loss is at most ``J_0 / s(B)``). ``J_0``
        costs a pass over the data (once per run), so it is computed only
        when a batch is above ``100 L / s(B)``, with ``L <= J_0`` the largest
        ``s(B) J(B)`` seen at the initial particles (all loss and penalty
        terms are non-negative): the test is the same. The epoch is then
        restarted with half the step from its initial particles, or from
        those of the previous epoch if its very first batch failed (the
        previous epoch ended in a blow-up that no batch had evaluated), or
        from the initial particles of the run if that fails at once too.
        """
        n = data.n_samples
        if run.initial is None:
            run.previous_start = run.initial = particles
        while True:
            order = rng.permutation(n) if self.shuffle else np.arange(n)
            eta = eta_max * run.scale
            current, total, failed_at = particles, 0.0, None
            for b, begin in enumerate(range(0, n, self.batch_size)):
                idx = order[begin : begin + self.batch_size]
                if not data.s[idx].sum() > 0:
                    continue
                batch, mass = data.batch(idx)
                value, state = objective.forward(batch.Xp, batch.Y, batch.s, current)
                if current is run.initial and np.isfinite(value):
                    run.J0_lower = max(run.J0_lower, mass * value)
                    if run.first_batch is None:
                        run.first_batch = value
                if not (np.isfinite(value) and mass * value <= 100 * run.J0_lower):
                    if run.J0 is None:
                        run.J0 = objective.value(data.Xp, data.Y, data.s, run.initial)
                        if not np.isfinite(run.J0):
                            raise _not_finite_at_start()
                        # that pass reused the work arrays of the batch's state
                        value, state = objective.forward(
                            batch.Xp, batch.Y, batch.s, current
                        )
                    if not (np.isfinite(value) and value <= 100 * run.J0 / mass):
                        failed_at = b
                        break
                total += mass * value
                moved = self._propose(
                    current, self._gradients(objective, state), eta, rng
                )
                self.rule.accept(current, moved)
                current = moved
            if failed_at is None and current.all_finite():
                run.last_eta = eta
                run.previous_start = particles
                return current, total / max(float(data.s.sum()), 1e-300)
            if failed_at == 0:
                # the epoch's start is already bad: go back one epoch, and if
                # that start fails too (on another first batch), to the
                # initial particles, where no batch can fail
                particles = (
                    run.initial
                    if particles is run.previous_start
                    else run.previous_start
                )
            self.rule.restart()
            run.scale *= 0.5
            result.n_step_reductions += 1
            if run.scale < self.min_step_ratio:
                raise _diverged()
