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
from scipy.optimize import least_squares, nnls
from sklearn import get_config

from ._flow import ParticleFlow, TrainingData
from ._losses import SquaredLoss, TVPenalty
from ._objective import MeanFieldObjective, Particles
from ._rules import ConicStep
from ._sliding import (
    CertificateGrid,
    certificate_search,
    connected_labels,
    refit,
    sliding_run,
)

__all__ = [
    "BlassoResult",
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
    pruning, merging and debiasing); ``particle_positions`` (m, n_dims) and
    ``particle_amplitudes`` (m,) the raw particles at the end of the flow
    (amplitudes ``a_i = c w_i / m``); ``trajectory`` the flow's record (or
    None) with amplitudes as weights.
    """

    positions: np.ndarray
    amplitudes: np.ndarray
    particle_positions: np.ndarray
    particle_amplitudes: np.ndarray
    alpha_max: float
    certificate_max: float
    dual_gap: float
    loss_curve: list
    n_iter: int
    trajectory: dict | None = None


def solve_blasso(
    unit,
    X,
    y,
    s,
    alpha,
    *,
    positive=False,
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

    Minimises ``J(mu) = (1/2) sum_j s_j |y_j - sum_i a_i phi(t_i)(x_j)|^2 +
    alpha sum_i |a_i|`` over amplitudes and positions (see
    :class:`~sklearn_meanfield.SparseSpikeDeconvolver` for the flow, its
    stopping rule on the duality gap and the read-out of the spikes).

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
    positive, n_particles, init_mass, max_iter, tol, weight_step, \
position_step, check_every, prune_tol, merge_radius, record_every, verbose
        As in :class:`~sklearn_meanfield.SparseSpikeDeconvolver`.
    warm : tuple (positions, amplitudes) or None
        Raw particles of a previous fit (units of ``y``) to start from;
        those lighter than an initial particle, or of the wrong sign, are
        restarted on the covering grid.
    debias_mode : {"joint", "amplitudes"} or None
        The ``debias`` of the estimator.
    random_state : RandomState
        For the random part of the initial positions.
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
    # Work in units where y has unit root mean square: the BLASSO solution
    # for (y / c, alpha / c) is mu / c.
    c = _weighted_rms(y, s)
    yn = y / c
    lam = alpha / c

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
        particles = _warm_particles(particles, *warm, c, init_mass)
    objective = MeanFieldObjective(unit, SquaredLoss(), TVPenalty(lam))
    candidates = unit.certificate_points()
    # alpha_max = max_t |sum_j s_j phi(t)(x_j) y_j|: the zero measure is a
    # solution iff alpha >= alpha_max (its certificate is then <= 1).
    if polish:
        grid = CertificateGrid(unit, Xp)
        # (no spike to resolve from: where the grid is costly, one of
        # spacing l and Newton's method from its largest local maxima)
        coarse = grid if grid.cheap else CertificateGrid(unit, Xp, spacing=1.0)
        lam_max = certificate_search(unit, Xp, s * yn, coarse, n_starts=4)[0]
    else:
        lam_max = certificate_max(
            unit, Xp, s * yn, 1.0, np.vstack([candidates, unit.input_points(Xp)])
        )
    if lam >= lam_max:
        return _zero_solution(
            objective, Xp, yn, s, lam, c, lam_max, particles, known=polish
        )
    target = tol * 0.5 * float(s @ np.square(yn))
    history = {}

    def check(n_iter, particles, value):
        if n_iter % check_every:
            return False
        # max|eta| over the particles alone underestimates max|eta|, hence
        # the gap (the dual objective decreases with max|eta| near a
        # solution): the grid is only needed once this lower bound is below
        # the target.
        gap, eta_max = duality_gap(objective, Xp, yn, s, lam, particles, candidates[:0])
        if gap <= target:
            gap, eta_max = duality_gap(objective, Xp, yn, s, lam, particles, candidates)
        history.update(gap=gap, eta_max=eta_max, n_iter=n_iter)
        if verbose:
            print(
                f"Iteration {n_iter}, J = {_times_square(value, c):.6g}, "
                f"duality gap = {_times_square(gap, c):.3g}, "
                f"max|eta| = {eta_max:.6f}"
            )
        return gap <= target

    flow = ParticleFlow(
        ConicStep(position_step / weight_step),
        learning_rate_init=weight_step,
        max_iter=max_iter,
        tol=0.0,
        n_iter_no_change=None,
        metric=unit.metric(),
        project=unit.project,
        record_every=record_every,
    )
    if polish:
        run = sliding_run(
            unit,
            Xp,
            yn,
            s,
            lam,
            particles,
            grid,
            max_iter=max_iter,
            tol=tol,
            weight_step=weight_step,
            position_step=position_step,
            merge_radius=merge_radius,
            record_every=record_every,
            verbose=verbose,
            units=_times_square(1.0, c),
        )
        history.update(gap=run.gap, eta_max=run.eta_max, n_iter=run.n_iter)
    else:
        run = flow.run(
            objective, TrainingData(Xp, yn[:, None], s), particles, callback=check
        )
    particles = run.particles
    if history.get("n_iter") == run.n_iter:
        gap, eta_max = history["gap"], history["eta_max"]
    else:
        gap, eta_max = duality_gap(objective, Xp, yn, s, lam, particles, candidates)

    m = particles.n_particles
    particle_amplitudes = particles.weights[:, 0] * (c / m)  # units of y
    trajectory = None
    if record_every:
        record = run.trajectory
        trajectory = {
            "iterations": record["iterations"],
            "positions": record["positions"],
            # amplitudes, in the units of y, as the particle amplitudes
            "weights": record["weights"] * (c / m),
        }
    spike_positions, spike_amplitudes = extract_spikes(
        unit, particles.positions, particle_amplitudes / c, prune_tol, merge_radius
    )
    if debias_mode is not None and spike_amplitudes.shape[0] > 0:
        spike_positions, spike_amplitudes = debias(
            unit,
            Xp,
            yn,
            s,
            spike_positions,
            spike_amplitudes,
            debias_mode,
            positive,
            newton=polish,
        )
        # A joint refit may bring two spikes together or empty one (an
        # ill-conditioned operator): read the spikes off again, and refit
        # the amplitudes on what is left.
        merged = extract_spikes(
            unit, spike_positions, spike_amplitudes, prune_tol, merge_radius
        )
        if merged[0].shape[0] < spike_positions.shape[0]:
            spike_positions, spike_amplitudes = debias(
                unit, Xp, yn, s, *merged, "amplitudes", positive
            )
    return BlassoResult(
        positions=spike_positions,
        amplitudes=spike_amplitudes * c,
        particle_positions=particles.positions.copy(),
        particle_amplitudes=particle_amplitudes,
        alpha_max=lam_max * c,
        certificate_max=float(eta_max),
        dual_gap=_times_square(gap, c),
        loss_curve=[_times_square(v, c) for v in run.loss_curve],
        n_iter=run.n_iter,
        trajectory=trajectory,
    )


def _zero_solution(objective, Xp, y, s, lam, c, lam_max, particles, known=False):
    """The zero measure, optimal when ``alpha >= alpha_max`` (normalised
    units in, units of ``y`` out); with ``known``, ``max|eta| =
    lam_max / lam`` (at most 1: the duality gap is 0)."""
    zero = Particles(np.zeros_like(particles.weights), particles.positions)
    if known:
        gap, eta_max = 0.0, lam_max / lam
    else:
        gap, eta_max = duality_gap(objective, Xp, y, s, lam, zero, zero.positions)
    return BlassoResult(
        positions=zero.positions[:0].copy(),
        amplitudes=np.zeros(0),
        particle_positions=zero.positions.copy(),
        particle_amplitudes=zero.weights[:, 0].copy(),
        alpha_max=lam_max * c,
        certificate_max=float(eta_max),
        dual_gap=_times_square(gap, c),
        loss_curve=[],
        n_iter=0,
    )


def _warm_particles(initial, old_positions, old_amplitudes, c, init_mass):
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
    # amplitudes a_i (units of y) -> mean-field weights w_i = a_i m / c
    weights = np.asarray(old_amplitudes)[:, None] * (initial.n_particles / c)
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


def certificate_max(unit, Xp, sr, lam, candidates):
    """``max_t |eta(t)|``: the largest of ``|eta|`` on the candidates,
    after local ascent from the 32 best of them."""
    values, _ = certificate_and_gradient(unit, Xp, sr, candidates)
    best = np.abs(values).max(initial=0.0)
    T = candidates[np.argsort(-np.abs(values))[:32]].copy()
    ell2 = unit.length_scale**2
    for _ in range(10):
        v, g = certificate_and_gradient(unit, Xp, sr, T)
        best = max(best, np.abs(v).max(initial=0.0))
        # Newton-like step for |eta| ~ |v| (1 - |t - t*|^2 / (2 l^2)).
        scale = ell2 / np.maximum(np.abs(v), 1e-300)
        T += 0.7 * (np.sign(v) * scale)[:, None] * g
        unit.project(T)
    v, _ = certificate_and_gradient(unit, Xp, sr, T)
    best = max(best, np.abs(v).max(initial=0.0))
    return best / lam


def duality_gap(objective, Xp, y, s, lam, particles, candidates):
    """``(gap, max|eta|)`` of the BLASSO at ``particles`` (normalised units)."""
    residual = y - objective.predict(Xp, particles)[:, 0]
    sr = s * residual
    candidates = np.vstack([candidates, particles.positions])
    eta_max = certificate_max(objective.unit, Xp, sr, lam, candidates)
    primal = 0.5 * float(sr @ residual) + objective.penalty.value(particles)
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
        dist = np.sqrt(np.einsum("ijk,ijk->ij", D, D))
        dist[np.sign(amplitudes)[:, None] != np.sign(amplitudes)[None, :]] = np.inf
        # single linkage at `radius`: connected components of `dist <= radius`
        labels = connected_labels(dist <= radius)
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
    keep = np.abs(merged_amp) >= prune_tol * np.abs(merged_amp).max()
    order = np.lexsort(merged_pos[keep].T[::-1])
    return merged_pos[keep][order], merged_amp[keep][order]


def debias(
    unit, Xp, y, s, positions, amplitudes, mode="joint", positive=False, newton=False
):
    """Least-squares refit of ``sum_j s_j (y_j - sum_i a_i K(x_j - t_i))^2``
    on the support found (normalised units); the joint refit by
    ``scipy.optimize.least_squares``, or with ``newton`` by
    :func:`~sklearn_meanfield._sliding.refit` (Newton's method)."""
    w = np.sqrt(s)
    k, d = positions.shape

    def amplitudes_only(T):
        A = w[:, None] * unit.forward(Xp, T)[0]
        if positive:
            return nnls(A, w * y)[0]
        return np.linalg.lstsq(A, w * y, rcond=None)[0]

    if mode == "amplitudes" or k * (d + 1) > Xp.shape[0]:
        # (a joint refit with more unknowns than samples is ill-posed)
        return positions, amplitudes_only(positions)

    if newton:
        # (stopped as soon as a spike moves by more than a length scale)
        fit = refit(
            unit, Xp, y, s, positions, amplitudes, positive, max_move=unit.length_scale
        )
        if fit is None or not (
            np.all(np.isfinite(fit[0])) and np.all(np.isfinite(fit[1]))
        ):
            return positions, amplitudes_only(positions)
        return fit[0], fit[1]

    def residual(z):
        a, T = z[:k], z[k:].reshape(k, d)
        Phi, _ = unit.forward(Xp, T)
        return w * (Phi @ a - y)

    def jacobian(z):
        a, T = z[:k], z[k:].reshape(k, d)
        Phi, dPhi = unit.forward(Xp, T)
        JT = (dPhi * a[None, :, None]).reshape(Xp.shape[0], k * d)
        return w[:, None] * np.hstack([Phi, JT])

    z0 = np.concatenate([amplitudes, positions.ravel()])
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
    T = unit.project(fit.x[k:].reshape(k, d).copy())
    moved = unit.differences(T, positions)[np.arange(k), np.arange(k)]
    if not np.all(np.isfinite(fit.x)) or np.any(
        np.linalg.norm(moved, axis=1) > unit.length_scale
    ):
        return positions, amplitudes_only(positions)
    return T, fit.x[:k]
