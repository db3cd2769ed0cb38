"""The BLASSO solved by conic particle gradient descent, its optimality
certificate and duality gap, and the spikes read off a particle measure.

For ``J(mu) = (1/2) sum_j s_j (y_j - sum_i a_i phi(t_i)(x_j))^2 + lam |mu|``,
with the residual ``r_j = y_j - prediction_j``, the dual certificate is

    eta(t) = (1/lam) sum_j s_j phi(t)(x_j) r_j;

``mu`` is a solution iff ``max_t |eta(t)| <= 1`` and ``eta(t_i) = sign(a_i)``
at every spike. ``phi(t)`` is a forward operator's column (a kernel ``K(x -
t)``, Fourier coefficients, ...). For complex measurements the rows are the
real and imaginary parts (:class:`~sklearn_meanfield._operators.SpikeUnit`),
so ``eta(t) = (1/lam) Re sum_j s_j conj(phi(t)(x_j)) r_j``. :func:`solve_blasso`
runs the whole algorithm; the functions after it work in any dimension
through a unit; ``sr`` always denotes the vector ``s * r``.
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares, lsq_linear, nnls
from sklearn import get_config

from ._flow import ParticleFlow, TrainingData
from ._losses import SquaredLoss, TVPenalty
from ._objective import MeanFieldObjective, Particles
from ._rules import ConicStep
from ._sliding import (
    CertificateGrid,
    _positive_part,
    certificate_search,
    connected_labels,
    refit,
    sliding_run,
)

__all__ = [
    "BirthDeath",
    "BlassoResult",
    "SpikeStep",
    "certificate_and_gradient",
    "certificate_max",
    "debias",
    "duality_gap",
    "extract_spikes",
    "solve_blasso",
]


@dataclass
class BlassoResult:
    """What :func:`solve_blasso` returns, in the units of ``y``.

    ``positions`` (k, n_dims) and ``amplitudes`` (k,) are the spikes (after
    pruning, merging and debiasing) and ``intercept`` the constant
    background (0 without one); ``particle_positions`` (m, n_dims) and
    ``particle_amplitudes`` (m,) the raw particles at the end of the flow
    (amplitudes ``a_i = amp w_i / m``, see :func:`solve_blasso`);
    ``trajectory`` the flow's record (or
    None) with amplitudes as weights.
    """

    positions: np.ndarray
    amplitudes: np.ndarray
    intercept: float
    particle_positions: np.ndarray
    particle_amplitudes: np.ndarray
    alpha_max: float
    certificate_max: float
    dual_gap: float
    loss_curve: list
    n_iter: int
    trajectory: dict | None = None


class AlphaMax:
    """``alpha_max = scale max_t |c(t)|``, ``c(t) = sum_j v_j phi(t)(x_j)``
    for ``v = s (y - mean)`` (normalised units; ``scale`` converts to those
    of ``y``), or ``scale max(max_t c(t), 0)`` for non-negative amplitudes
    (``positive``): the smallest ``alpha`` whose solution is the zero
    measure.

    The maximum on a grid (``lower``, normalised units) is known at once and
    is a lower bound, which is all a fit needs when ``alpha`` is below it:
    the exact maximum (:func:`~sklearn_meanfield._sliding.certificate_search`
    from that grid's local maxima) is computed at the first call, or at
    once by :meth:`exact`, and the data are then let go. A pickled or copied
    ``AlphaMax`` carries the value.

    Parameters
    ----------
    unit : SpikeUnit
    Xp, v : ndarray
        The prepared measurements and the row vector ``v``.
    grid : CertificateGrid
        Where ``|c|`` is first evaluated (kept only until :meth:`exact`; a
        grid of the same spacing is built again for a later call).
    scale : float
    positive : bool, default=False
    """

    def __init__(self, unit, Xp, v, grid, scale, positive=False):
        self.scale = float(scale)
        values = grid.values(v)
        self.lower = float((values if positive else np.abs(values)).max(initial=0.0))
        self._data = (unit, Xp, v, grid.spacing, positive)
        self._value = None

    @classmethod
    def known(cls, lam_max, scale):
        """The exact maximum ``lam_max`` (normalised units) already known."""
        self = cls.__new__(cls)
        self.scale, self.lower, self._data = float(scale), float(lam_max), None
        self._value = float(lam_max)
        return self

    def exact(self, grid=None):
        """The exact maximum in normalised units (``grid``: the one given at
        construction, to save building it again)."""
        if self._value is None:
            unit, Xp, v, spacing, positive = self._data
            if grid is None:
                grid = CertificateGrid(unit, Xp, spacing=spacing)
            self._value = certificate_search(
                unit, Xp, v, grid, n_starts=4, positive=positive
            )[0]
            self._data = None
        return self._value

    def __call__(self):
        """``alpha_max`` in the units of ``y``."""
        return self.exact() * self.scale

    def __getstate__(self):
        self.exact()
        return self.__dict__.copy()


class SpikeStep(ConicStep):
    """The conic step of the spikes, with an intercept step and birth-death.

    Intercept: the data term is ``(1/2) sum_j s_j (y_j - f_j - b)^2`` with
    ``sum_j s_j = 1``: its second derivative in the intercept ``b`` is 1, so
    ``b <- b - gb`` (``gb = sum_j s_j (f_j + b - y_j)``) is the exact
    minimisation in ``b``; the step is ``eta * intercept_ratio`` and
    ``intercept_ratio = 1 / weight_step`` makes the full step that Newton
    step, the conic step of the masses being ``weight_step``.

    Birth-death: every ``every`` accepted steps, the first proposal also
    applies ``births(particles, candidate)``, which moves free particles of
    the candidate in place and says whether it moved any. If the loop
    rejects that proposal, :meth:`restart` says so and the step is retried
    at the same size without births.

    Parameters
    ----------
    position_ratio : float, default=1.0
    intercept_ratio : float, default=1.0
    births : callable or None, default=None
    every : int, default=20
    """

    def __init__(self, position_ratio=1.0, intercept_ratio=1.0, births=None, every=20):
        super().__init__(position_ratio)
        self.intercept_ratio = intercept_ratio
        self.births = births
        self.every = every
        self.n_accepted = 0
        self._births_tried = False
        self._born = False

    def propose(self, particles, grads, eta, rng=None):
        gW, gTheta, gb = grads
        new = super().propose(particles, (gW, gTheta, None), eta, rng)
        if gb is not None:
            new.intercept -= (eta * self.intercept_ratio) * gb
        due = self.n_accepted > 0 and self.n_accepted % self.every == 0
        if self.births is not None and due and not self._births_tried:
            self._births_tried = True
            self._born = bool(self.births(particles, new))
        return new

    def accept(self, particles, candidate):
        self.n_accepted += 1
        self._births_tried = self._born = False

    def restart(self):
        born, self._born = self._born, False
        return born


class BirthDeath:
    """Birth-death of particles for the BLASSO (Rotskoff, Jelassi, Bruna &
    Vanden-Eijnden, ICML 2019): free particles are moved to where the
    certificate is most violated.

    At ``particles``, with the certificate ``eta`` of their residual
    (centred with an intercept):

    1. *violations*: the local maxima of ``|eta|`` on the certificate grid
       and at the particles (at most one within a length scale ``l``)
       refined by local ascent, those above ``1 + margin`` (at most one
       within ``l / 2``), largest first, except those within ``l / 4`` of a
       particle of their sign that carries mass (its own peak: its mass
       grows there);
    2. each violation takes the nearest *negligible* particle of its sign
       (mass below ``1e-3`` of the heaviest) within ``l``, moved to the
       peak; otherwise a *free* one: negligible and still losing mass, or a
       duplicate (closer than ``0.01 l`` to a heavier particle of its sign,
       which takes its mass: the measure does not change);
    3. the particle moved gets the amplitude ``a = lam (|eta(t)| - 1) / (2
       sum_j s_j phi(t)(x_j)^2)``, half the one that minimises ``J`` along
       that atom alone (``J`` decreases by ``(3/4) lam (|eta(t)| - 1) a``
       if it is alone), and at least the mass ``seed_mass`` of an initial
       particle.

    A particle at ``t`` then gains mass at rate ``4 lam (|eta(t)| - 1)``
    per unit time (the conic flow): the covering of the domain is restored
    where the certificate says mass is missing, which the flow alone cannot
    do once the particles there have lost their mass (it multiplies
    masses). The flow accepts the step only if ``J`` does not increase.

    Parameters
    ----------
    objective : MeanFieldObjective
        With the (rescaled) unit and the penalty ``lam``.
    Xp, y, s : ndarray
        Prepared rows, normalised targets and weights.
    candidates : ndarray of shape (n_candidates, n_dims)
        The certificate grid.
    seed_mass : float
        The mean-field weight ``|w|`` of a fresh particle.
    margin : float, default=0.02
    """

    dead_tol = 1e-3
    duplicate_radius = 1e-2

    def __init__(self, objective, Xp, y, s, candidates, seed_mass, margin=0.02):
        self.seed_mass = seed_mass
        self.objective = objective
        self.Xp, self.y, self.s = Xp, y, s
        self.candidates = candidates
        self.margin = margin
        self.n_births = 0

    def __call__(self, particles, candidate):
        unit, lam = self.objective.unit, self.objective.penalty.alpha
        residual = self.y - self.objective.predict(self.Xp, particles)[:, 0]
        if particles.intercept is not None:
            residual = residual - self.s @ residual
        sr = self.s * residual
        ell = unit.length_scale
        T, v = self._violations(unit, sr, lam, ell, candidate.positions)
        if T.shape[0] == 0:
            return False
        W = candidate.weights[:, 0]
        mass = np.abs(W)
        negligible = mass < self.dead_tol * mass.max(initial=0.0)
        duplicate, target = self._duplicates(unit, candidate, negligible, ell)
        # free to go anywhere: negligible and still losing mass, duplicates
        free = (negligible & (mass < np.abs(particles.weights[:, 0]))) | duplicate
        # a violation within l / 4 of a particle of its sign that carries
        # mass is that particle's peak
        D = _distances(unit, T, candidate.positions)
        same_sign = np.sign(v)[:, None] == np.sign(W)[None, :]
        carried = ~negligible & ~duplicate
        keep = ~np.any((D < ell / 4) & same_sign & carried[None, :], axis=1)
        T, v, D, same_sign = T[keep], v[keep], D[keep], same_sign[keep]
        if T.shape[0] == 0:
            return False
        # each violation (largest first) takes the nearest negligible
        # particle of its sign within l (moved to the peak), else a free one
        near = np.where(same_sign & negligible[None, :], D, np.inf)
        nearest = np.argmin(near, axis=1)
        chosen = np.where(near[np.arange(len(v)), nearest] < ell, nearest, -1)
        first = np.zeros(len(v), dtype=bool)
        taken, idx = np.unique(chosen, return_index=True)
        first[idx[taken >= 0]] = True
        chosen[~first] = -1
        for sign in (1.0, -1.0):
            # (two signs, not a loop over particles)
            open_sites = np.flatnonzero((chosen < 0) & (np.sign(v) == sign))
            spare = free & (np.sign(W) == sign)
            spare[chosen[chosen >= 0]] = False
            slots = np.flatnonzero(spare)[: open_sites.size]
            chosen[open_sites[: slots.size]] = slots
        sites = np.flatnonzero(chosen >= 0)
        if sites.size == 0:
            return False
        slots = chosen[sites]
        # a duplicate leaves its mass to its neighbour: the measure only
        # gains the births
        merged = slots[duplicate[slots]]
        np.add.at(candidate.weights[:, 0], target[merged], W[merged])
        candidate.positions[slots] = T[sites]
        # mass: half the amplitude that minimises J along the new atom alone,
        # a = lam (|eta| - 1) / sum_j s_j phi(t)(x_j)^2, at least a seed
        A, _ = unit.pairwise(self.Xp, T[sites])
        norm2 = np.maximum(self.s @ np.square(A), 1e-300)
        weight = np.maximum(
            0.5 * lam * (np.abs(v[sites]) - 1) / norm2 * candidate.n_particles,
            self.seed_mass,
        )
        candidate.weights[slots, 0] = np.sign(v[sites]) * np.maximum(
            np.where(duplicate[slots], 0.0, mass[slots]), weight
        )
        self.n_births += sites.size
        return True

    def _violations(self, unit, sr, lam, ell, positions):
        """Peaks of ``|eta| > 1 + margin`` (largest first) and ``eta``
        there, searched from the certificate grid and the particles (the
        light ones sit on peaks the grid may miss, as the coarse grid of
        high dimension does)."""
        points = np.vstack([self.candidates, positions])
        unit.project(points)
        eta = certificate_values(unit, self.Xp, sr, points) / lam
        top = np.argsort(-np.abs(eta))[:256]
        # (a peak between grid points is up to a few % above them)
        top = top[np.abs(eta[top]) > 0.9 * (1 + self.margin)]
        if top.size == 0:
            return points[:0], eta[:0]
        T, v = points[top], eta[top]
        higher = np.abs(v)[None, :] > np.abs(v)[:, None]
        peak = ~np.any(higher & (_distances(unit, T, T) < ell), axis=1)
        T, v = _ascend(unit, self.Xp, sr, T[peak], lam)
        # (ascents may end on one peak, or on one point of the boundary)
        order = np.argsort(-np.abs(v), kind="stable")
        T, v = T[order], v[order]
        earlier = np.tri(len(v), k=-1, dtype=bool)
        peak = ~np.any(earlier & (_distances(unit, T, T) < ell / 2), axis=1)
        peak &= np.abs(v) > 1 + self.margin
        return T[peak], v[peak]

    def _duplicates(self, unit, candidate, negligible, ell):
        """Particles closer than ``duplicate_radius * l`` to a heavier one of
        their sign, and ``target``: that neighbour (which takes the mass of
        the duplicate if it moves), -1 for the others."""
        W = candidate.weights[:, 0]
        mass = np.abs(W)
        dist = _distances(unit, candidate.positions, candidate.positions)
        order = np.argsort(-mass, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        # j may absorb i: same sign, heavier (earlier in the order), very close
        absorbs = (
            (dist < self.duplicate_radius * ell)
            & (np.sign(W)[:, None] == np.sign(W)[None, :])
            & (rank[None, :] < rank[:, None])
            & ~negligible[:, None]
            & ~negligible[None, :]
        )
        # only particles that stay may take mass (no chains)
        absorbs &= ~absorbs.any(axis=1)[None, :]
        duplicate = absorbs.any(axis=1)
        target = np.where(
            duplicate,
            np.argmin(np.where(absorbs, rank[None, :], order.size), axis=1),
            -1,
        )
        return duplicate, target


def _distances(unit, A, B):
    D = unit.differences(A, B)
    return np.sqrt(np.einsum("ijk,ijk->ij", D, D))


def _ascend(unit, Xp, sr, T, lam, n_steps=10):
    """Local ascent of ``|eta|`` from the points ``T`` (the Newton-like step
    of :func:`certificate_max`); returns the points and ``eta`` there."""
    T = T.copy()
    ell2 = unit.length_scale**2
    for _ in range(n_steps):
        v, g = certificate_and_gradient(unit, Xp, sr, T)
        scale = ell2 / np.maximum(np.abs(v), 1e-300)
        T += 0.7 * (np.sign(v) * scale)[:, None] * g
        unit.project(T)
    v, _ = certificate_and_gradient(unit, Xp, sr, T)
    return T, v / lam


def solve_blasso(
    unit,
    X,
    y,
    s,
    alpha,
    *,
    positive=False,
    fit_intercept=False,
    birth_death="auto",
    n_particles=None,
    init_mass=1e-2,
    warm=None,
    max_iter=2000,
    tol=1e-6,
    weight_step=10.0,
    position_step=30.0,
    check_every=10,
    prune_tol=1e-2,
    merge_radius=None,
    debias_mode="joint",
    record_every=None,
    random_state=None,
    verbose=False,
    polish=True,
):
    """Solve the BLASSO by conic particle gradient descent.

    Minimises ``J(mu, b) = (1/2) sum_j s_j |y_j - sum_i a_i phi(t_i)(x_j) -
    b|^2 + alpha sum_i |a_i|`` over amplitudes and positions (and the
    unpenalised background ``b`` with ``fit_intercept``, else ``b = 0``);
    see :class:`~sklearn_meanfield.SparseSpikeDeconvolver` for the flow, its
    stopping rule on the duality gap and the read-out of the spikes.

    Parameters
    ----------
    unit : SpikeUnit
        The spike's contribution ``phi(t)`` (a forward operator), its domain
        and length scale (:func:`~sklearn_meanfield._operators.make_spike_unit`).
    X : ndarray of shape (n_samples, n_features)
        The measurements (sample locations, frequencies, ...).
    y : ndarray of shape (n_samples,)
        Real, or complex for a complex operator.
    s : ndarray of shape (n_samples,)
        Sample weights summing to one.
    alpha : float
        The weight of the total variation, in the units of ``y``.
    positive, fit_intercept, birth_death, n_particles, init_mass, max_iter, \
tol, weight_step, position_step, check_every, prune_tol, merge_radius, \
record_every, verbose
        As in :class:`~sklearn_meanfield.SparseSpikeDeconvolver`.
    warm : tuple (positions, amplitudes) or None
        Raw particles of a previous fit (units of ``y``) to start from;
        those lighter than an initial particle, or of the wrong sign, are
        restarted on the covering grid.
    debias_mode : {"joint", "amplitudes"} or None
        The ``debias`` of the estimator.
    random_state : int, RandomState or None
        For the random part of the initial positions (a generator is made
        only when there is one: see
        :func:`~sklearn_meanfield._operators._random_points`).
    polish : bool, default=True
        The flow until the masses gather, then the spikes polished by
        Newton's method and certified (:mod:`~sklearn_meanfield._sliding`);
        False: the flow alone, stopped on the duality gap.

    Returns
    -------
    result : BlassoResult

    Raises
    ------
    ValueError
        If ``warm`` does not have the shape of the initial particles.
    """
    # Complex measurements are two real rows each (real, imaginary parts).
    Xp, y, s = unit.prepare(X), unit.stack(y), unit.stack_weights(s)
    # With an intercept the data term only sees y - mean(y) (the background
    # is re-optimised at every step), so the scale and the certificate of
    # the zero measure use the centred y.
    mean = float(s @ y) if fit_intercept else 0.0
    # Work in units where y has unit root mean square: the BLASSO solution
    # for (y / c, alpha / c) is mu / c.
    c = _weighted_rms(y - mean, s)
    yn = y / c
    # ... and phi has the column norm the steps are tuned for: with phi / k,
    # amplitudes k a and alpha / k the objective, the certificate and the
    # gap are the same, and the flow's clock (the masses and positions move
    # at rates proportional to |phi|^2) runs at the same speed whatever the
    # operator. Amplitudes are converted back at the end.
    kappa = unit.column_norm(Xp, s) / REFERENCE_COLUMN_NORM
    if not (np.isfinite(kappa) and kappa > 0):
        kappa = 1.0
    unit = unit.rescaled(unit.scale / kappa)
    lam = alpha / (c * kappa)
    amp = c / kappa  # amplitudes (units of y) = amp * normalised amplitudes

    grid = unit.covering_grid(n_particles, random_state)
    if positive:
        positions, signs = grid, np.ones(grid.shape[0])
    else:
        positions = np.vstack([grid, grid])
        signs = np.repeat([1.0, -1.0], grid.shape[0])
    # mean-field weights w_i = s_i r_i^2: total variation (1/m) sum |w_i|
    # equal to init_mass.
    particles = Particles((init_mass * signs)[:, None], positions.copy())
    if warm is not None:
        particles = _warm_particles(particles, *warm, amp, init_mass)
    if fit_intercept:
        particles.intercept = np.array([mean / c])
    objective = MeanFieldObjective(unit, SquaredLoss(), TVPenalty(lam))
    # (the polished solver certifies on its own grid)
    candidates = None if polish else unit.certificate_points()
    # alpha_max = max_t |sum_j s_j phi(t)(x_j) (y_j - mean)|: the zero
    # measure is a solution iff alpha >= alpha_max (its certificate is then
    # <= 1).
    yc = yn - mean / c
    if polish:
        # The background is not penalised: for every measure it is the
        # weighted mean of the residual, so the BLASSO with a background is
        # the BLASSO of the centred y and the centred operator.
        sliding_unit = unit.centred(s) if fit_intercept else unit
        grid = CertificateGrid(sliding_unit, Xp)
        # (no spike to resolve from: where the grid is costly, one of
        # spacing l and Newton's method from its largest local maxima)
        coarse = grid if grid.cheap else CertificateGrid(sliding_unit, Xp, spacing=1.0)
        alpha_max = AlphaMax(sliding_unit, Xp, s * yc, coarse, c * kappa, positive)
    else:
        points = np.vstack([candidates, unit.input_points(Xp)])
        alpha_max = AlphaMax.known(
            certificate_max(unit, Xp, s * yc, 1.0, points, positive), c * kappa
        )
    # (to rounding: alpha = alpha_max_ of a previous fit, as a
    # regularisation path starts, comes back as lam_max times 1 - 1e-16;
    # below the grid's maximum, the zero measure is not a solution)
    if lam >= alpha_max.lower * (1 - 1e-12):
        lam_max = alpha_max.exact(coarse if polish else None)
        if lam >= lam_max * (1 - 1e-12):
            return _zero_solution(
                objective,
                Xp,
                yn,
                s,
                lam,
                c,
                alpha_max,
                particles,
                known=polish,
                positive=positive,
            )
    target = tol * 0.5 * float(s @ np.square(yc))
    history = {}

    def check(n_iter, particles, value):
        if n_iter % check_every:
            return False
        # max|eta| over the particles alone underestimates max|eta|, hence
        # the gap (the dual objective decreases with max|eta| near a
        # solution): the grid is only needed once this lower bound is below
        # the target.
        gap, eta_max = duality_gap(
            objective, Xp, yn, s, lam, particles, candidates[:0], positive
        )
        if gap <= target:
            gap, eta_max = duality_gap(
                objective, Xp, yn, s, lam, particles, candidates, positive
            )
        history.update(gap=gap, eta_max=eta_max, n_iter=n_iter)
        if verbose:
            print(
                f"Iteration {n_iter}, J = {_times_square(value, c):.6g}, "
                f"duality gap = {_times_square(gap, c):.3g}, "
                f"max|eta| = {eta_max:.6f}"
            )
        return gap <= target

    if polish:
        # (spikes are inserted where the certificate is violated: the
        # sliding's own births; birth_death is the flow's)
        run = sliding_run(
            sliding_unit,
            Xp,
            yc if fit_intercept else yn,
            s,
            lam,
            Particles(particles.weights, particles.positions),
            grid,
            max_iter=max_iter,
            tol=tol,
            weight_step=weight_step,
            position_step=position_step,
            merge_radius=merge_radius,
            record_every=record_every,
            verbose=verbose,
            units=_times_square(1.0, c),
            positive=positive,
        )
        if fit_intercept:
            # (the spikes only: the other slots have zero amplitude)
            a = run.particles.weights[:, 0] / run.particles.n_particles
            on = a != 0
            b = background(unit, Xp, yn, s, run.particles.positions[on], a[on])
            run.particles.intercept = np.array([b])
        history.update(gap=run.gap, eta_max=run.eta_max, n_iter=run.n_iter)
    else:
        births = None
        if birth_death == "auto":
            birth_death = not unit.covers(n_particles)
        if birth_death:
            births = BirthDeath(objective, Xp, yn, s, candidates, init_mass)
        flow = ParticleFlow(
            SpikeStep(position_step / weight_step, 1.0 / weight_step, births),
            learning_rate_init=weight_step,
            max_iter=max_iter,
            tol=0.0,
            n_iter_no_change=None,
            metric=unit.metric(),
            project=unit.project,
            record_every=record_every,
        )
        run = flow.run(
            objective, TrainingData(Xp, yn[:, None], s), particles, callback=check
        )
    particles = run.particles
    if history.get("n_iter") == run.n_iter:
        gap, eta_max = history["gap"], history["eta_max"]
    else:
        if candidates is None:
            candidates = unit.certificate_points()
        gap, eta_max = duality_gap(
            objective, Xp, yn, s, lam, particles, candidates, positive
        )

    m = particles.n_particles
    particle_amplitudes = particles.weights[:, 0] * (amp / m)  # units of y
    intercept = None if particles.intercept is None else float(particles.intercept[0])
    trajectory = None
    if record_every:
        record = run.trajectory
        trajectory = {
            "iterations": record["iterations"],
            "positions": record["positions"],
            # amplitudes, in the units of y, as the particle amplitudes
            "weights": record["weights"] * (amp / m),
        }
    spike_positions, spike_amplitudes = extract_spikes(
        unit, particles.positions, particle_amplitudes / amp, prune_tol, merge_radius
    )
    if debias_mode is not None and spike_amplitudes.shape[0] > 0:
        spike_positions, spike_amplitudes, intercept = debias(
            unit,
            Xp,
            yn,
            s,
            spike_positions,
            spike_amplitudes,
            debias_mode,
            positive,
            intercept,
            newton=polish,
        )
        # A joint refit may bring two spikes together or empty one (an
        # ill-conditioned operator): read the spikes off again, and refit
        # the amplitudes on what is left.
        merged = extract_spikes(
            unit, spike_positions, spike_amplitudes, prune_tol, merge_radius
        )
        if merged[0].shape[0] < spike_positions.shape[0]:
            spike_positions, spike_amplitudes, intercept = debias(
                unit, Xp, yn, s, *merged, "amplitudes", positive, intercept
            )
    return BlassoResult(
        positions=spike_positions,
        amplitudes=spike_amplitudes * amp,
        intercept=0.0 if intercept is None else intercept * c,
        particle_positions=particles.positions.copy(),
        particle_amplitudes=particle_amplitudes,
        alpha_max=alpha_max,
        certificate_max=float(eta_max),
        dual_gap=_times_square(gap, c),
        loss_curve=[_times_square(v, c) for v in run.loss_curve],
        n_iter=run.n_iter,
        trajectory=trajectory,
    )


def _zero_solution(
    objective, Xp, y, s, lam, c, alpha_max, particles, known=False, positive=False
):
    """The zero measure (and the weighted mean of ``y`` as background),
    optimal when ``alpha >= alpha_max`` (normalised units in, units of ``y``
    out; ``alpha_max`` an :class:`AlphaMax` with its exact maximum
    ``lam_max``); with ``known``, ``max|eta| = lam_max / lam`` (at most 1:
    the duality gap is 0)."""
    lam_max = alpha_max.exact()
    zero = Particles(
        np.zeros_like(particles.weights), particles.positions, particles.intercept
    )
    if known:
        gap, eta_max = 0.0, lam_max / lam
    else:
        gap, eta_max = duality_gap(
            objective, Xp, y, s, lam, zero, zero.positions, positive
        )
    return BlassoResult(
        positions=zero.positions[:0].copy(),
        amplitudes=np.zeros(0),
        intercept=0.0 if zero.intercept is None else float(zero.intercept[0]) * c,
        particle_positions=zero.positions.copy(),
        particle_amplitudes=zero.weights[:, 0].copy(),
        alpha_max=alpha_max,
        certificate_max=float(eta_max),
        dual_gap=_times_square(gap, c),
        loss_curve=[],
        n_iter=0,
    )


def background(unit, Xp, y, s, positions, amplitudes):
    """The best background for the spikes: ``b = sum_j s_j (y_j - sum_i a_i
    phi(t_i)(x_j))`` (``s`` sums to 1)."""
    return float(s @ (y - unit.forward(Xp, positions)[0] @ amplitudes))


def _warm_particles(initial, old_positions, old_amplitudes, amp, init_mass):
    """The previous fit's raw particles (amplitudes in the units of ``y``),
    those lighter than an initial particle (or of the wrong sign) restarted
    as in ``initial``."""
    old = np.asarray(old_positions)
    if old.shape != initial.positions.shape:
        raise ValueError(
            "warm_start=True needs the number of particles and of dimensions "
            f"of the previous fit: it had {old.shape[0]} particles in "
            f"{old.shape[1]} dimensions, this fit starts {initial.n_particles} "
            f"in {initial.positions.shape[1]}."
        )
    # amplitudes a_i (units of y) -> mean-field weights w_i = a_i m / amp
    weights = np.asarray(old_amplitudes)[:, None] * (initial.n_particles / amp)
    alive = (weights * initial.weights > 0) & (np.abs(weights) >= init_mass)
    alive = alive[:, 0]
    weights = np.where(alive[:, None], weights, initial.weights)
    positions = np.where(alive[:, None], old, initial.positions)
    return Particles(weights, positions)


def _weighted_rms(y, s):
    """``sqrt(sum_j s_j y_j^2)`` without overflow or underflow (1 for a zero
    ``y``): the scale that makes the BLASSO unit-free."""
    top = float(np.max(np.abs(y), initial=0.0))
    if not np.isfinite(top):
        raise ValueError("y contains values too large for float64.")
    if top == 0:
        return 1.0
    c = top * float(np.sqrt(s @ np.square(y / top)))
    return c if c > 0 else top


def _times_square(value, c):
    """``value * c^2`` (an objective in the units of ``y^2``), ``inf`` when
    it is not representable in float64."""
    with np.errstate(over="ignore", under="ignore"):
        return float(value * c * c)


#: the column norm ``(sum_j s_j phi(t)(x_j)^2)^(1/2)`` the flow's default
#: steps are tuned for: the Dirichlet kernel of cutoff 10 (``1 / sqrt(21)``)
REFERENCE_COLUMN_NORM = 1 / np.sqrt(21)

#: entries of an (n_samples, n_points, n_dims + 1) block of values and
#: gradients when the certificate is evaluated on many points
_CERTIFICATE_BLOCK = 2**21


def certificate_and_gradient(unit, Xp, sr, T):
    """``eta(t)`` up to the factor ``1/alpha`` and its gradient in ``t``,
    ``sr = s * residual`` (rows of ``unit.prepare``).

    The (n_samples, n_points, n_dims) kernel gradients are computed over
    chunks of the points ``T`` that fit in a quarter of scikit-learn's
    ``working_memory`` (the rest is left to the fit's own arrays), so memory
    does not grow as ``n_samples * n_points``.
    """
    n, d = Xp.shape[0], T.shape[1]
    # A and dA: n (1 + d) floats per point, and as much again for the
    # temporaries of their computation
    per_point = 2 * 8 * n * (1 + d)
    budget = get_config()["working_memory"] * 2**20 / 4
    rows = max(1, int(budget // per_point))
    if rows >= T.shape[0]:
        A, dA = unit.pairwise(Xp, T)
        return sr @ A, np.einsum("j,jik->ik", sr, dA)
    values, grads = np.empty(T.shape[0]), np.empty(T.shape)
    for begin in range(0, T.shape[0], rows):
        chunk = slice(begin, begin + rows)
        A, dA = unit.pairwise(Xp, T[chunk])
        values[chunk] = sr @ A
        grads[chunk] = np.einsum("j,jik->ik", sr, dA)
    return values, grads


def certificate_values(unit, Xp, sr, T):
    """``eta(t)`` up to the factor ``1/alpha`` at many points, over blocks
    of points so that memory stays bounded."""
    per_point = Xp.shape[0] * (T.shape[1] + 1)
    rows = max(1, _CERTIFICATE_BLOCK // max(per_point, 1))
    if T.shape[0] <= rows:
        return sr @ unit.pairwise(Xp, T)[0]
    return np.concatenate(
        [sr @ unit.pairwise(Xp, T[i : i + rows])[0] for i in range(0, len(T), rows)]
    )


def certificate_max(unit, Xp, sr, lam, candidates, positive=False):
    """``max_t |eta(t)|``: the largest of ``|eta|`` on the candidates,
    after local ascent from the 32 best of them (``max(max_t eta(t), 0)``
    with ``positive``: non-negative amplitudes)."""
    score = _positive_part if positive else np.abs
    values = certificate_values(unit, Xp, sr, candidates)
    best = score(values).max(initial=0.0)
    T = candidates[np.argsort(-score(values))[:32]].copy()
    ell2 = unit.length_scale**2
    for _ in range(10):
        v, g = certificate_and_gradient(unit, Xp, sr, T)
        best = max(best, score(v).max(initial=0.0))
        # Newton-like step for |eta| ~ |v| (1 - |t - t*|^2 / (2 l^2)).
        scale = ell2 / np.maximum(np.abs(v), 1e-300)
        T += 0.7 * (np.sign(v) * scale)[:, None] * g
        unit.project(T)
    v, _ = certificate_and_gradient(unit, Xp, sr, T)
    best = max(best, score(v).max(initial=0.0))
    return best / lam


def duality_gap(objective, Xp, y, s, lam, particles, candidates, positive=False):
    """``(gap, max|eta|)`` of the BLASSO at ``particles`` (normalised units;
    ``max eta`` with ``positive``, whose dual constraint is ``eta <= 1``).

    With an intercept (``particles.intercept`` not None) the residual and
    ``y`` are centred: the dual point must have ``sum_j s_j p_j = 0``, and
    the background re-optimised for the measure can only lower the primal.
    """
    residual = y - objective.predict(Xp, particles)[:, 0]
    sr = s * residual
    primal = 0.5 * float(sr @ residual) + objective.penalty.value(particles)
    if particles.intercept is not None:
        residual = residual - float(s @ residual)
        y = y - float(s @ y)
        sr = s * residual
    candidates = np.vstack([candidates, particles.positions])
    eta_max = certificate_max(objective.unit, Xp, sr, lam, candidates, positive)
    # Dual point p_j = s_j r_j / (lam M), feasible: max|Phi* p| <= 1.
    M = max(1.0, eta_max)
    dual = float(sr @ y) / M - 0.5 * float(sr @ residual) / M / M
    return primal - dual, eta_max


def extract_spikes(unit, positions, amplitudes, prune_tol, merge_radius):
    """Prune light particles, merge close particles of the same sign."""
    radius = 0.5 * unit.length_scale if merge_radius is None else merge_radius
    heaviest = np.abs(amplitudes).max(initial=0.0)
    if not heaviest > 0:
        return positions[:0], amplitudes[:0]
    # Drop dust first, so that a chain of negligible particles cannot
    # link two spikes in the single-linkage merge.
    keep = np.abs(amplitudes) > 0.1 * prune_tol * heaviest
    positions, amplitudes = positions[keep], amplitudes[keep]
    order = np.argsort(-np.abs(amplitudes), kind="stable")
    positions, amplitudes = positions[order], amplitudes[order]
    n = amplitudes.shape[0]
    if n > 1:
        D = unit.differences(positions, positions)
        close = np.einsum("ijk,ijk->ij", D, D) <= radius**2
        close &= np.sign(amplitudes)[:, None] == np.sign(amplitudes)[None, :]
        if np.count_nonzero(close) == n:
            # (no two particles to merge: each its own spike)
            return _pruned_and_sorted(positions, amplitudes, prune_tol)
        # single linkage at `radius`: connected components of `dist <= radius`
        labels = connected_labels(close)
    else:
        labels = np.zeros(n, dtype=int)
    # Representative of each cluster: its heaviest member (first in order).
    first = np.unique(labels, return_index=True)[1]
    rep = np.empty(labels.max() + 1, dtype=int)
    rep[labels[first]] = first
    offsets = unit.differences(positions, positions[rep])  # (n, k, d)
    offsets = offsets[np.arange(n), labels]  # x_i - t_rep(i)
    mass = np.abs(amplitudes)
    total = np.bincount(labels, weights=mass)
    merged_amp = np.bincount(labels, weights=amplitudes)
    shift = (
        np.column_stack(
            [
                np.bincount(labels, weights=mass * offsets[:, k])
                for k in range(offsets.shape[1])
            ]
        )
        / total[:, None]
    )
    merged_pos = unit.project(positions[rep] + shift)
    return _pruned_and_sorted(merged_pos, merged_amp, prune_tol)


def _pruned_and_sorted(positions, amplitudes, prune_tol):
    """The spikes of at least ``prune_tol`` times the largest modulus, in
    lexicographic order of their positions."""
    keep = np.abs(amplitudes) >= prune_tol * np.abs(amplitudes).max()
    positions, amplitudes = positions[keep], amplitudes[keep]
    order = np.lexsort(positions.T[::-1])
    return positions[order], amplitudes[order]


def debias(
    unit,
    Xp,
    y,
    s,
    positions,
    amplitudes,
    mode="joint",
    positive=False,
    intercept=None,
    newton=False,
):
    """Least-squares refit of ``sum_j s_j (y_j - sum_i a_i phi(t_i)(x_j) -
    b)^2`` on the support found (normalised units): of the amplitudes (and
    the background ``b`` when ``intercept`` is not None) with ``mode=
    "amplitudes"``, and of the positions too with ``"joint"``: by
    ``scipy.optimize.least_squares``, or with ``newton`` by
    :func:`~sklearn_meanfield._sliding.refit` (Newton's method, on the
    centred problem with a background). The joint refit falls back to the
    amplitudes if a position moves by more than a length scale, or there
    are more unknowns than samples.

    Returns
    -------
    positions, amplitudes, intercept (None without one)
    """
    w = np.sqrt(s)
    k, d = positions.shape
    n_b = 0 if intercept is None else 1

    def linear(T):
        A = w[:, None] * unit.forward(Xp, T)[0]
        if n_b:
            A = np.hstack([A, w[:, None]])
        if A.shape[1] == 0:
            # (no spike and no background; scipy's nnls aborts the process
            # on a matrix without columns)
            return T, np.zeros(0), None
        if not positive:
            z = np.linalg.lstsq(A, w * y, rcond=None)[0]
        elif n_b:
            lower = np.r_[np.zeros(k), -np.inf]
            z = lsq_linear(A, w * y, bounds=(lower, np.inf), method="bvls").x
        else:
            z = nnls(A, w * y)[0]
        return T, z[:k], (z[k] if n_b else None)

    if mode == "amplitudes" or k * (d + 1) + n_b > Xp.shape[0]:
        # (a joint refit with more unknowns than samples is ill-posed)
        return linear(positions)

    if newton:
        # (stopped as soon as a spike moves by more than a length scale)
        centred = unit.centred(s) if n_b else unit
        yc = y - float(s @ y) if n_b else y
        fit = refit(
            centred,
            Xp,
            yc,
            s,
            positions,
            amplitudes,
            positive,
            max_move=unit.length_scale,
        )
        if fit is None or not (
            np.all(np.isfinite(fit[0])) and np.all(np.isfinite(fit[1]))
        ):
            return linear(positions)
        T, a = fit[0], fit[1]
        b = background(unit, Xp, y, s, T, a) if n_b else None
        return T, a, b

    def residual(z):
        a, T = z[:k], z[k : k * (d + 1)].reshape(k, d)
        Phi, _ = unit.forward(Xp, T)
        f = Phi @ a
        if n_b:
            f += z[-1]
        return w * (f - y)

    def jacobian(z):
        a, T = z[:k], z[k : k * (d + 1)].reshape(k, d)
        Phi, dPhi = unit.forward(Xp, T)
        JT = (dPhi * a[None, :, None]).reshape(Xp.shape[0], k * d)
        blocks = [Phi, JT] + ([np.ones((Xp.shape[0], 1))] if n_b else [])
        return w[:, None] * np.hstack(blocks)

    z0 = np.concatenate(
        [amplitudes, positions.ravel()] + ([[intercept]] if n_b else [])
    )
    lb = np.full(z0.shape, -np.inf)
    if positive:
        lb[:k] = 0.0
    fit = least_squares(
        residual,
        z0,
        jac=jacobian,
        bounds=(lb, np.inf),
        xtol=1e-15,
        ftol=1e-15,
        gtol=1e-15,
        max_nfev=50,
    )
    T = unit.project(fit.x[k : k * (d + 1)].reshape(k, d).copy())
    moved = unit.differences(T, positions)[np.arange(k), np.arange(k)]
    if not np.all(np.isfinite(fit.x)) or np.any(
        np.linalg.norm(moved, axis=1) > unit.length_scale
    ):
        return linear(positions)
    return T, fit.x[:k], (fit.x[-1] if n_b else None)
