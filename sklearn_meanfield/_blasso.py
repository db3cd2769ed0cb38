"""The BLASSO's optimality certificate and duality gap, and the spikes read
off a particle measure.

For ``J(mu) = (1/2) sum_j s_j (y_j - sum_i a_i K(x_j - t_i))^2 + lam |mu|``,
with the residual ``r_j = y_j - prediction_j``, the dual certificate is

    eta(t) = (1/lam) sum_j s_j K(x_j - t) r_j;

``mu`` is a solution iff ``max_t |eta(t)| <= 1`` and ``eta(t_i) = sign(a_i)``
at every spike. The functions here work in any dimension through a
:class:`~sklearn_meanfield._kernels.KernelUnit`; ``sr`` always denotes the
vector ``s * r``.
"""

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import least_squares, nnls

__all__ = [
    "certificate_and_gradient",
    "certificate_max",
    "certificate_points",
    "debias",
    "duality_gap",
    "extract_spikes",
    "grid_and_random",
    "grid_points_per_axis",
]

#: most points where |eta| is first evaluated
MAX_CERTIFICATE_POINTS = 4096


def grid_points_per_axis(unit, lower, upper, spacing):
    """Grid points per axis for a spacing."""
    if unit.periodic:
        q = np.full(lower.shape[0], np.ceil(1.0 / spacing))
    else:
        q = np.ceil((upper - lower) / spacing) + 1
    return np.maximum(q, 1).astype(int)


def grid_and_random(unit, lower, upper, n, random_state):
    """A grid of ``floor(n ** (1/d))`` points per axis completed by
    ``n - floor(n ** (1/d))**d`` uniform random points of the box."""
    d = lower.shape[0]
    per_axis = int(np.floor(n ** (1 / d) + 1e-9))
    grid = unit.grid(lower, upper, [per_axis] * d)
    extra = lower + (upper - lower) * random_state.uniform(size=(n - grid.shape[0], d))
    return np.vstack([grid, extra])


def certificate_points(unit, lower, upper):
    """The points where ``|eta|`` is first evaluated: a grid of spacing
    ``length_scale / 2`` (2 length scales beyond the data off the torus) if
    that is at most 4096 points, else 512 points of a coarse grid and at
    random."""
    margin = 0 if unit.periodic else 2 * unit.length_scale
    lo, hi = lower - margin, upper + margin
    q = grid_points_per_axis(unit, lo, hi, unit.length_scale / 2)
    if np.prod(q.astype(float)) <= MAX_CERTIFICATE_POINTS:
        return unit.grid(lo, hi, q)
    # In high dimension a fine grid is out of reach, and a few random points
    # are as good as many: a coarse grid and random points, 512 in all
    # (fixed seed: the same candidates at every check); the particles and
    # local ascent do the rest.
    return grid_and_random(unit, lo, hi, 512, np.random.RandomState(0))


def certificate_and_gradient(unit, Xp, sr, T):
    """``eta(t)`` up to the factor ``1/alpha`` and its gradient in ``t``,
    ``sr = s * residual``."""
    K, dK = unit.pairwise(Xp, T)
    return sr @ K, -np.einsum("j,jik->ik", sr, dK)


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
    dual = float(sr @ y) / M - 0.5 * float(sr @ residual) / M**2
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
        iu = np.triu_indices(n, 1)
        condensed = np.minimum(dist[iu], 1e300)
        labels = fcluster(linkage(condensed, "single"), radius, "distance") - 1
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


def debias(unit, Xp, y, s, positions, amplitudes, mode="joint", positive=False):
    """Least-squares refit of ``sum_j s_j (y_j - sum_i a_i K(x_j - t_i))^2``
    on the support found (normalised units)."""
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

    def residual(z):
        a, T = z[:k], z[k:].reshape(k, d)
        Phi, _ = unit.forward(Xp, T)
        return w * (Phi @ a - y)

    def jacobian(z):
        a, T = z[:k], z[k:].reshape(k, d)
        Phi, dK = unit.forward(Xp, T)
        # d/dt_i K(x_j - t_i) = -grad K(x_j - t_i)
        JT = -(dK * a[None, :, None]).reshape(Xp.shape[0], k * d)
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
