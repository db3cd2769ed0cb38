"""The default BLASSO solver: a conic particle flow that finds the support,
then a joint second-order polish of the spikes it found, certified by the
dual certificate.

Everything here works in the normalised units of
:func:`~sklearn_meanfield._blasso.solve_blasso` (``y`` of unit root mean
square), on the real rows of a unit (``unit.prepare``), with amplitudes
``a_i`` (not mean-field weights) and

    J(a, T) = (1/2) sum_j s_j r_j^2 + lam sum_i |a_i|,    r = y - Phi(T) a,
    c(t) = sum_j s_j r_j phi(t)(x_j) = lam eta(t).

**Flow** (:func:`flow_and_slide`). The conic (Wasserstein-Fisher-Rao) step
of :class:`~sklearn_meanfield._rules.ConicStep` on the particles, with signs
``sigma_i`` fixed::

    a_i <- a_i exp(h rate_i),   rate_i = 4 (sigma_i c(t_i) - lam),
    t_i <- t_i + h_t l^2 sigma_i grad c(t_i),

with the mass step ``h`` chosen by a line search on ``J`` at fixed
positions (doubling or halving from the last step, then golden-section
refinement in ``log h``; products with the current ``Phi`` only, no
operator evaluation). The first step starts at ``log(|c_i| / (|a_i| sum_j
s_j phi_ij^2)) / rate_i`` for the fastest growing particle, where it alone
would fit its correlation: the growth of the masses from their small
initial values, during which ``J`` barely moves, takes one step. The
position step ``h_t = ratio min(h, h_max)`` (``ratio = position_step /
weight_step``, ``h_max = weight_step``), each move at most half a length
scale, is halved until ``J`` does not increase (the masses' step alone is
kept otherwise). ``grad c`` comes from the values alone where the operator
allows it (``SpikeUnit.gradient_from_values``: the Gaussian kernel, Fourier
measurements), so a step evaluates values only; otherwise from the
operator's gradients, and then, when the particles lighter than
``MOVE_RELATIVE_MASS`` of the heaviest outnumber the others by more than
``MOVE_LIGHT_RATIO`` to 1, only the heavier ones take the position step (a
light particle's move hardly changes ``J``, and a step costs the moving
particles' values and gradients; the light ones keep their columns and
move once they have grown). Particles lighter than ``DROP_RELATIVE_MASS`` of
the heaviest leave the flow (amplitude zero: the multiplicative flow would
need many steps to revive them; a spike they would have found is inserted
from the certificate instead). The first evaluation is of values only, once
per distinct position (the particles of both signs share the covering
grid).

**Sliding** (:func:`slide`). After ``MIN_FLOW_STEPS`` steps the particles are
gathered into spikes around the heaviest particles of each sign within
``GATHER_RADIUS`` length scales (:func:`_gather`: local maxima of the mass,
no chaining), and ``J(a, T)``
is minimised jointly over amplitudes and positions with the signs fixed
(the "sliding" step of Sliding Frank-Wolfe, Denoyelle et al. 2019) by damped
Newton, the amplitudes first (an active-set solve of the quadratic at fixed
positions). With the signs fixed ``J`` is smooth: its gradient is

    dJ/da_i = lam sigma_i - c(t_i),      dJ/dt_i = -a_i grad c(t_i),

and its Hessian the Gauss-Newton term ``G^T S G`` (``G = [Phi, dPhi a]``,
which needs only the operator's first derivatives) plus a block per spike
from the residual, ``-grad c(t_i)`` between ``a_i`` and ``t_i`` and ``-a_i
Hess c(t_i)`` on ``t_i``, ``Hess c`` from the operator's
``contract_derivatives`` where it has one (the Gaussian kernel), else by
forward differences of the exact ``grad c`` (one operator call with the
spikes).

**Certificate** (:class:`CertificateGrid`, :func:`certificate_search`).
``max_t |eta(t)|`` on a grid of spacing ``l / 2`` (a tensor contraction of
per-axis factors for separable operators), refined by Newton's method from
the grid's largest local maxima. The polished spikes are a solution when
the duality gap is at most ``tol J``; otherwise spikes are inserted at the
largest violations and slid again; if that does not end certified (the
number of particles reached, a violation at a spike that did not
converge), the flow resumes from its particles and the sliding is tried
again after twice as many steps. The least-squares refit of the estimator
(:func:`refit`) is the same Newton's method with ``lam = 0``.
"""

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg.lapack import dposv, dpotrf, dpotrs
from sklearn.exceptions import ConvergenceWarning

from ._objective import Particles
from ._operators import khatri_rao

__all__ = [
    "CertificateGrid",
    "SlideResult",
    "certificate_search",
    "connected_labels",
    "flow_and_slide",
    "slide",
    "sliding_run",
]

#: step of the finite differences of gradients, in length scales
FD_STEP = 1e-6
#: marks a cache whose Hessians come from ``unit.contract_derivatives``
ANALYTIC = "analytic"
#: grid local maxima below this fraction of the largest grid value are not
#: refined by the certificate search
START_FLOOR = 0.7
#: a grid local maximum of the certificate next to a spike of its sign
#: (within half a length scale, below it) is that spike's peak when the
#: grid's quadratic model puts its maximum within this many length scales
#: of the spike (on the benchmark families 99.9% of them are within 0.1);
#: farther, |c| has a ridge or a second peak there, which is searched
AT_SPIKE_RADIUS = 0.1
#: particles lighter than this fraction of the heaviest are left out of the
#: spikes the sliding starts from
EXTRACT_PRUNE = 1e-3
#: max|eta| - 1 below which a polished measure has no violation to insert
NO_VIOLATION = 1e-9
#: spikes of one sign closer than this (in length scales) are merged while
#: sliding after an insertion (half a length scale before; the estimator's
#: merge_radius applies to the spikes it returns)
SLIDE_MERGE = 0.1
#: peaks at least this fraction as far above 1 as the largest violation are
#: inserted with it
INSERT_FRACTION = 0.5
#: particles of one sign gather around the heaviest within this many length
#: scales into the spikes the first sliding starts from
GATHER_RADIUS = 1.5
#: flow steps before the first attempt at sliding
MIN_FLOW_STEPS = 3
#: a predicted decrease of J (Newton's model) below this fraction of J is
#: none: J is computed to about that (the residual cancels the data)
DECREASE_FLOOR = 1e-13
#: the stationarity at which the least-squares refit stops (:func:`refit`;
#: the sliding's is 1e-11, for the BLASSO objective to 1e-9 relative)
REFIT_GTOL = 1e-8
#: growth of the wait between two attempts at sliding (flow steps)
WAIT_GROWTH = 2
#: particles lighter than this fraction of the heaviest take mass steps only,
#: when they outnumber the heavier ones by more than MOVE_LIGHT_RATIO to 1
MOVE_RELATIVE_MASS = 1e-2
MOVE_LIGHT_RATIO = 3
#: particles lighter than this fraction of the heaviest leave the flow
DROP_RELATIVE_MASS = 1e-4
#: largest mass step tried by the line search, in units of the weight step
MAX_MASS_STEP_RATIO = 2.0**12
#: most points of a certificate grid evaluated by a tensor contraction
MAX_SEPARABLE_GRID_POINTS = 2**19
#: samples times points of a grid evaluation considered cheap
CHEAP_GRID_WORK = 2**20
#: most points of a certificate grid evaluated by the operator
MAX_GENERIC_GRID_POINTS = 2**16
#: most entries of the precomputed row-wise Kronecker product of a grid's
#: factors (beyond it, the contraction forms it for every vector)
MAX_KHATRI_RAO = 2**22
#: most entries of a block of operator values when the grid is evaluated
#: point by point
_BLOCK = 2**21


# ------------------------------------------------------------ certificate
class CertificateGrid:
    """Where ``|c(t)| = |sum_j v_j phi(t)(x_j)|`` is first evaluated.

    A tensor grid of spacing ``l / 2`` over the unit's domain (2 length
    scales beyond an unbounded box) when the operator is separable, i.e. has
    a method ``grid_factors(X, axes)`` returning per-axis factors ``F_k``
    (n_samples, q_k), real or complex, with ``phi(t)(x_j) = prod_k F_k[j,
    i_k]`` at the grid point ``t = (axes[0][i_0], ...)``: the values on the
    whole grid are then ``(v F_1)^T (F_2 * ... * F_d)`` with ``*`` the
    row-wise Kronecker product (kept between evaluations up to
    ``MAX_KHATRI_RAO`` entries): ``n q_1 ... q_d`` multiply-adds in one
    matrix product, no operator evaluation; the grid may have up to
    ``MAX_SEPARABLE_GRID_POINTS`` points. When the samples take few distinct
    coordinates along each axis (samples on a grid, pixels), with ``F_k[j]``
    the same for samples of the same ``k``-th coordinate, the sum is over
    those coordinates instead: ``V[u_1, ..., u_d] = sum_{j : x_j = (u_1,
    ..., u_d)} v_j`` (``p_1 ... p_d`` entries, ``p_k`` distinct coordinates
    along axis ``k``), then ``c = V x_1 G_1 x_2 ... x_d G_d`` (``G_k`` the
    rows of ``F_k`` at the distinct coordinates, ``x_k`` the product along
    axis ``k``): ``sum_k q_1 ... q_k p_k ... p_d`` multiply-adds, used when
    fewer than ``n q_1 ... q_d``. Otherwise the same grid evaluated
    by the operator in blocks if it has at most ``MAX_GENERIC_GRID_POINTS``
    points, else the unit's ``certificate_points()`` (a coarse grid and
    random points: the certificate is then a heuristic).

    Parameters
    ----------
    unit : SpikeUnit
    Xp : ndarray
        The prepared measurements (``unit.prepare``).
    spacing : float, default=0.5
        The spacing of a separable operator's grid, in length scales.
    """

    def __init__(self, unit, Xp, spacing=0.5):
        self.unit = unit
        self.Xp = Xp
        self.spacing = spacing
        self.shape = None
        self.factors = None
        # with factors: the row-wise Kronecker product of those of axes
        # 1..d-1, formed at the first evaluation and kept (it does not depend
        # on v): the values are then (v F_0)^T KR, one matrix product
        self.kr = None
        self._points = None
        # (the axes of the grid, when the points are one, and their spacings)
        self._axes = None
        self._spacing = None
        # (with factors: the samples' distinct coordinates, see
        # _sample_tensor)
        self.tensor = None
        factors = getattr(unit.operator, "grid_factors", None)
        if callable(factors):
            domain = unit.domain.widened(2 * unit.length_scale)
            q = domain.points_per_axis(spacing * unit.length_scale)
            if np.prod(q.astype(float)) <= MAX_SEPARABLE_GRID_POINTS:
                axes = domain.axes(q)
                X = Xp[: Xp.shape[0] // 2, :-1] if unit.complex_valued else Xp
                self.tensor, self.factors = _sample_tensor(
                    X,
                    factors,
                    axes,
                    getattr(unit.operator, "grid_factors_by_coordinate", False),
                )
                self.shape = tuple(len(a) for a in axes)
                # (the points are formed when first asked for: the starts
                # of the searches need a few, see point_at)
                self._axes = axes
                self._points = None
        if self.factors is None:
            domain = unit.domain.widened(2 * unit.length_scale)
            q = domain.points_per_axis(spacing * unit.length_scale)
            if np.prod(q.astype(float)) <= MAX_GENERIC_GRID_POINTS:
                self._axes = domain.axes(q)
                self._points = unit.project(domain.grid(q))
                self.shape = tuple(int(v) for v in q)
            else:
                self._points = unit.certificate_points()
                # (a grid when it is small enough)
                self.shape = _grid_shape(unit)
        if self._axes is not None:
            steps = np.array([a[1] - a[0] if a.size > 1 else 0.0 for a in self._axes])
            if np.all(steps > 0):
                self._spacing = steps

    @property
    def points(self):
        """The grid points (n_points, n_dims), the last axis varying
        fastest."""
        if self._points is None:
            mesh = np.meshgrid(*self._axes, indexing="ij")
            self._points = self.unit.project(np.column_stack([g.ravel() for g in mesh]))
        return self._points

    def point_at(self, idx):
        """The grid points of the (raveled) indices ``idx``, a new array."""
        if self._points is not None:
            return self._points[idx]
        coords = np.unravel_index(idx, self.shape)
        T = np.empty((np.size(idx), len(self.shape)))
        for k, (axis, i) in enumerate(zip(self._axes, coords, strict=True)):
            T[:, k] = axis[i]
        return self.unit.project(T)

    @property
    def cheap(self):
        """Whether an evaluation costs less than about a million
        multiply-adds (of a contraction; an eighth of that in operator
        values)."""
        if self.tensor is not None:
            return self.tensor[3] <= CHEAP_GRID_WORK
        work = self.Xp.shape[0] * self.points.shape[0]
        return work <= CHEAP_GRID_WORK / (1 if self.factors is not None else 8)

    def values(self, v):
        """``c`` at every grid point for the row vector ``v`` (n_rows,)."""
        if self.factors is None:
            out = np.empty(self.points.shape[0])
            n = self.Xp.shape[0]
            step = max(1, _BLOCK // (n * (self.unit.n_dims + 1)))
            for i in range(0, out.shape[0], step):
                out[i : i + step] = v @ _values(
                    self.unit, self.Xp, self.points[i : i + step]
                )
            return out
        if self.unit.complex_valued:
            # rows [Re E; Im E]: sum_j v_j A_j = Re sum_j (v_re - i v_im) E
            n = v.shape[0] // 2
            v = v[:n] - 1j * v[n:]
        if self.tensor is not None:
            index, p, G, _ = self.tensor
            size = int(np.prod(p))
            V = np.bincount(index, weights=v.real, minlength=size)
            if np.iscomplexobj(v):
                V = V + 1j * np.bincount(index, weights=v.imag, minlength=size)
            M = V.reshape(p)
            for Gk in G:
                # contract the first remaining sample axis; the grid axis
                # goes last
                M = np.tensordot(M, Gk, axes=(0, 0))
        elif len(self.factors) == 1:
            M = v @ self.factors[0]
        else:
            kr = self.kr
            if kr is None:
                kr = khatri_rao(self.factors[1:])
                if kr.size <= MAX_KHATRI_RAO:
                    self.kr = kr
            M = (v[:, None] * self.factors[0]).T @ kr
        # (the factors are the operator's: times the unit's scale)
        return np.ascontiguousarray(M.real).ravel() * getattr(self.unit, "scale", 1.0)

    def starts(self, values, n_starts, floor=0.0):
        """Indices of the largest local maxima of ``|values|`` on the grid
        that are at least ``floor`` (of the largest values when the points
        are not a grid). A local maximum is at least each of its ``3^d - 1``
        neighbours (periodic on the torus, the border repeated on a box);
        only the points at least ``floor`` are compared."""
        absval = np.abs(values)
        idx = np.flatnonzero(absval >= floor)
        if self.shape is not None and idx.size:
            nb, _ = self._neighbours(idx)
            idx = idx[np.all(absval[idx][:, None] >= absval[nb], axis=1)]
        return idx[np.argsort(-absval[idx], kind="stable")[:n_starts]]

    def _neighbours(self, idx):
        """The raveled indices of the ``3^d - 1`` neighbours of the grid
        points ``idx`` (k, 3^d - 1), periodic on the torus, the border
        repeated on a box, and whether all of them are in the box (None on
        the torus)."""
        shape = np.array(self.shape)
        offsets = _neighbour_offsets(shape.size)
        coords = np.stack(np.unravel_index(idx, self.shape))  # (d, k)
        nb = coords[:, :, None] + offsets.T[:, None, :]  # (d, k, 3^d - 1)
        inside = None
        if self.unit.domain.periodic:
            nb %= shape[:, None, None]
        else:
            inside = np.all((nb >= 0) & (nb < shape[:, None, None]), axis=(0, 2))
            np.clip(nb, 0, (shape - 1)[:, None, None], out=nb)
        return np.ravel_multi_index(tuple(nb), self.shape), inside

    def refined(self, values, idx):
        """The grid points ``idx`` (local maxima of ``|values|``) moved to
        the maximum of the quadratic through their ``3^d`` neighbourhood
        (central differences: gradient, and Hessian with its cross terms)
        where that quadratic is concave, clipped to the cell: where Newton's
        method should start. Left where they are at the border of a box, or
        when the points are not a grid."""
        T = self.point_at(idx)
        if self.shape is None or self._spacing is None or idx.size == 0:
            return T
        nb, inside = self._neighbours(idx)
        rows = slice(None) if inside is None else inside
        f0 = values[idx[rows]]
        if f0.size == 0:
            return T
        sign = np.where(f0 < 0, -1.0, 1.0)
        f = sign[:, None] * values[nb[rows]]
        f0 = np.abs(f0)
        d = len(self.shape)
        at = _offset_columns(d)
        g = np.empty((f0.size, d))
        H = np.empty((f0.size, d, d))
        for k in range(d):
            plus, minus = f[:, at[(k, 1)]], f[:, at[(k, -1)]]
            g[:, k] = 0.5 * (plus - minus)
            H[:, k, k] = plus - 2 * f0 + minus
            for m in range(k):
                H[:, k, m] = H[:, m, k] = 0.25 * (
                    f[:, at[(k, 1, m, 1)]]
                    - f[:, at[(k, 1, m, -1)]]
                    - f[:, at[(k, -1, m, 1)]]
                    + f[:, at[(k, -1, m, -1)]]
                )
        # the maximum of f0 + g u + u^T H u / 2 (u in cells): -H u = g
        u = np.zeros((f0.size, d))
        _newton_where_concave(-H, g, u)
        np.clip(u, -0.5, 0.5, out=u)
        T[rows] = self.unit.project(T[rows] + u * self._spacing)
        return T


_OFFSETS = {}
_COLUMNS = {}


def _offset_columns(d):
    """For the offsets of :func:`_neighbour_offsets`, the column of
    ``(k, sk)`` (the offset ``sk e_k``) and of ``(k, sk, m, sm)`` (``sk e_k
    + sm e_m``, ``m < k``), kept per ``d``."""
    if d not in _COLUMNS:
        at = {}
        for i, o in enumerate(_neighbour_offsets(d)):
            nz = np.flatnonzero(o)
            if nz.size == 1:
                at[(int(nz[0]), int(o[nz[0]]))] = i
            elif nz.size == 2:
                k, m = int(nz[1]), int(nz[0])
                at[(k, int(o[k]), m, int(o[m]))] = i
        _COLUMNS[d] = at
    return _COLUMNS[d]


def _neighbour_offsets(d):
    """The ``3^d - 1`` offsets ``{-1, 0, 1}^d`` but zero (kept per ``d``)."""
    if d not in _OFFSETS:
        offsets = np.stack(
            np.meshgrid(*[[-1, 0, 1]] * d, indexing="ij"), axis=-1
        ).reshape(-1, d)
        offsets = offsets[np.any(offsets != 0, axis=1)]
        offsets.flags.writeable = False
        _OFFSETS[d] = offsets
    return _OFFSETS[d]


def _sample_tensor(X, grid_factors, axes, by_coordinate=False, rtol=1e-12):
    """The factors of a separable operator on the grid of ``axes``, and the
    samples as a tensor of their distinct coordinates when that makes the
    grid values cheaper (see :class:`CertificateGrid`).

    Returns ``(tensor, factors)``. ``tensor`` is None when the contraction
    over the samples is cheaper, or when a factor differs (by more than
    ``rtol`` of its largest entry) between samples of the same coordinate
    (it then depends on more than that coordinate); else ``(index, p, G,
    work)``: ``index[j]`` the position of sample ``j`` in the (raveled)
    tensor of shape ``p = (p_1, ..., p_d)`` of distinct coordinates, ``G_k``
    the rows of ``F_k`` at them (p_k, q_k), ``work`` the multiply-adds of an
    evaluation. With ``by_coordinate`` (the operator declares that ``F_k[j]``
    depends on ``x_jk`` alone) the factors are computed at the distinct
    coordinates only (and ``factors`` is ``G``), else at every sample and
    compared."""
    n, d = X.shape
    if d != len(axes) or n == 0:
        return None, [np.asarray(F) for F in grid_factors(X, axes)]
    q = [len(g) for g in axes]
    distinct = [
        np.unique(X[:, k], return_index=True, return_inverse=True) for k in range(d)
    ]
    p = [u.size for u, _, _ in distinct]
    # multiply-adds: the contraction of axis k with q_1..q_{k-1} done
    work = n + sum(
        float(np.prod(q[:k])) * p[k] * q[k] * float(np.prod(p[k + 1 :]))
        for k in range(d)
    )
    if not work < n * float(np.prod(q)):
        return None, [np.asarray(F) for F in grid_factors(X, axes)]
    inverse = [inv.ravel() for _, _, inv in distinct]
    index = np.ravel_multi_index(inverse, p)
    if by_coordinate:
        # the distinct coordinates as the columns of one array (padded by
        # repeating the last)
        U = np.empty((max(p), d))
        for k, (u, _, _) in enumerate(distinct):
            U[: u.size, k] = u
            U[u.size :, k] = u[-1]
        G = [np.asarray(F)[:pk] for F, pk in zip(grid_factors(U, axes), p, strict=True)]
        return (index, tuple(p), G, work), G
    factors = [np.asarray(F) for F in grid_factors(X, axes)]
    G = [F[first] for F, (_, first, _) in zip(factors, distinct, strict=True)]
    for F, Gk, inv in zip(factors, G, inverse, strict=True):
        scale = float(np.abs(F).max(initial=0.0))
        if not np.all(np.abs(F - Gk[inv]) <= rtol * scale):
            return None, factors
    return (index, tuple(p), G, work), factors


def _grid_shape(unit):
    """The shape of ``unit.certificate_points()`` when it is a full grid."""
    domain = unit.domain.widened(2 * unit.length_scale)
    q = domain.points_per_axis(unit.length_scale / 2)
    if np.prod(q.astype(float)) == unit.certificate_points().shape[0]:
        return tuple(int(v) for v in q)
    return None


def certificate_search(
    unit,
    Xp,
    v,
    grid,
    extra=None,
    floor=0.0,
    exclude=None,
    n_starts=16,
    n_iter=10,
    step_tol=1e-4,
    return_peaks=False,
    positive=False,
):
    """``(max_t |c(t)|, t*, c(t*))`` for ``c(t) = sum_j v_j phi(t)(x_j)``;
    with ``positive``, ``max_t c(t)`` (at least 0) instead: the certificate
    of amplitudes constrained to be non-negative is bounded above only.

    ``|c|`` on the grid and at the points ``extra`` (e.g. the spikes), then
    Newton's method on ``|c|`` from the grid's ``n_starts`` largest local
    maxima above ``floor`` and ``START_FLOOR`` times the largest value,
    vectorised over the starts; a local maximum within half a length scale
    of a point of ``exclude`` where ``c`` has the same sign and a larger
    modulus (spikes of a polished measure: local maxima of ``|c|``) is left
    out when the grid's quadratic model (:meth:`CertificateGrid.refined`)
    puts its maximum within ``AT_SPIKE_RADIUS`` length scales of that point,
    and taken after all the others otherwise: Hessian as in
    :func:`_values_gradients_hessians`; where ``-sign(c) Hess c`` is not
    positive definite, a gradient step ``l^2 grad / |c|``; steps capped at
    half a length scale; a start stops once its step is below ``step_tol``
    length scales (the value is then within about ``step_tol^2`` of the
    local maximum, relative: Newton's method converges quadratically). With
    ``return_peaks``, also ``(T, c)``: where the starts ended and ``c``
    there.
    """
    score = _positive_part if positive else np.abs
    values = grid.values(v)
    absval = score(values)
    top = float(absval.max(initial=0.0))
    # the maximum from the refined points (the largest grid local maximum
    # is one of them) and the points given
    best, best_t, best_v = 0.0, None, 0.0
    exclude_values = None
    ce = None
    if extra is not None and extra.shape[0]:
        ce = v @ _values(unit, Xp, extra)
    if exclude is not None and exclude.shape[0]:
        exclude_values = v @ _values(unit, Xp, exclude)
        extra = exclude if ce is None else np.vstack([extra, exclude])
        ce = exclude_values if ce is None else np.concatenate([ce, exclude_values])
    if ce is not None:
        sc = score(ce)
        i = int(np.argmax(sc))
        if sc[i] > best:
            best, best_t, best_v = float(sc[i]), extra[i].copy(), float(ce[i])
    # a grid local maximum far below the largest cannot be the maximum (a
    # peak is at most a few percent above the grid at spacing l / 2)
    start_floor = max(floor, START_FLOOR * max(top, best))
    start_values = values
    if positive:
        # the local maxima of c itself (its positive part is flat where c
        # <= 0), within (1 - START_FLOOR) of the spread of |c| below the
        # largest value or the floor: a peak's height above the grid is a
        # fraction of the variation of c, not of c itself (c barely above 0
        # on a large negative background is missed on the grid)
        spread = float(np.abs(values).max(initial=0.0))
        lo = min(float(values.min(initial=0.0)), 0.0)
        start_values = values - lo
        start_floor = max(max(floor, top, best) - (1 - START_FLOOR) * spread - lo, 0.0)
    ell = unit.length_scale
    idx = grid.starts(start_values, None, start_floor)
    # (where Newton's method starts: the grid's quadratic model's maxima)
    T = grid.refined(start_values, idx)
    if exclude is not None and exclude.shape[0] and idx.size:
        # a local maximum within half a length scale of a spike of its sign
        # and below it on the grid is that spike's peak (the spike is
        # evaluated already) when the grid's quadratic model puts its
        # maximum at the spike (AT_SPIKE_RADIUS); else |c| has a ridge or
        # another peak next to the spike, where a violation can hide: a
        # start, after the others. (Left out before the n_starts largest
        # are taken: with many spikes, the starts go to the peaks between
        # them.)
        D = unit.differences(grid.point_at(idx), exclude)
        same = np.sign(values[idx])[:, None] == np.sign(exclude_values)[None, :]
        below = absval[idx][:, None] <= np.abs(exclude_values)[None, :]
        beside = (np.einsum("ijk,ijk->ij", D, D) < (0.5 * ell) ** 2) & same & below
        at_spike = beside.any(axis=1)
        if at_spike.any():
            D = unit.differences(T[at_spike], exclude)
            d2 = np.where(beside[at_spike], np.einsum("ijk,ijk->ij", D, D), np.inf)
            ridge = d2.min(axis=1) > (AT_SPIKE_RADIUS * ell) ** 2
            order = np.concatenate(
                [np.flatnonzero(~at_spike), np.flatnonzero(at_spike)[ridge]]
            )
            idx, T = idx[order], T[order]
    idx, T = idx[:n_starts], T[:n_starts]
    h = FD_STEP * ell
    peaks_c = np.zeros(T.shape[0])
    moving = np.arange(T.shape[0])
    done = []
    for it in range(n_iter + 1):
        if moving.size == 0:
            break
        Tm = T[moving]
        if it == n_iter:
            c = v @ _values(unit, Xp, Tm)
        else:
            c, g, H = _values_gradients_hessians(unit, Xp, v, Tm, h)
        peaks_c[moving] = c
        sc = score(c)
        i = int(np.argmax(sc))
        if sc[i] > best:
            best, best_t, best_v = float(sc[i]), Tm[i].copy(), float(c[i])
        if it == n_iter:
            break
        # ascent of |c| = sign c (of c with positive): Newton where sign c
        # is concave
        sign = np.ones_like(c) if positive else np.where(c < 0, -1.0, 1.0)
        Hs = -sign[:, None, None] * H
        gs = sign[:, None] * g
        step = (ell**2 / np.maximum(np.abs(c), 1e-300))[:, None] * gs
        _newton_where_concave(Hs, gs, step)
        norm = np.sqrt(np.einsum("ik,ik->i", step, step))
        step *= np.minimum(1.0, 0.5 * ell / np.maximum(norm, 1e-300))[:, None]
        still = norm > step_tol * ell
        if not still.all():
            # the starts that stop take their last (short) step too, and
            # are valued there at the end (values alone): within about
            # step^2 of the maximum instead of step
            done.append((moving[~still], unit.project(Tm[~still] + step[~still])))
        moving = moving[still]
        T[moving] = unit.project(Tm[still] + step[still])
    if done:
        idx = np.concatenate([i for i, _ in done])
        T_done = np.vstack([t for _, t in done])
        c = v @ _values(unit, Xp, T_done)
        sc = score(c)
        better = sc > score(peaks_c[idx])
        T[idx[better]], peaks_c[idx[better]] = T_done[better], c[better]
        i = int(np.argmax(sc))
        if sc[i] > best:
            best, best_t, best_v = float(sc[i]), T_done[i].copy(), float(c[i])
    if best_t is None and values.size:
        i = int(np.argmax(absval))
        best, best_t, best_v = float(absval[i]), grid.point_at([i])[0], float(values[i])
    if return_peaks:
        return best, best_t, best_v, (T, peaks_c)
    return best, best_t, best_v


def _positive_part(c):
    return np.maximum(c, 0.0)


def _newton_where_concave(Hs, gs, step):
    """``step[i] = Hs[i]^-1 gs[i]`` where the symmetric ``Hs[i]`` (k, d, d)
    is positive definite (in place; the other rows are left): in closed
    form for ``d <= 2``."""
    d = Hs.shape[1]
    if d == 1:
        h = Hs[:, 0, 0]
        ok = h > 0
        step[ok] = gs[ok] / h[ok, None]
    elif d == 2:
        a, b, e = Hs[:, 0, 0], Hs[:, 0, 1], Hs[:, 1, 1]
        det = a * e - b * b
        # (positive definite: both eigenvalues positive)
        ok = (a > 0) & (det > 0)
        if ok.any():
            a, b, e, det, g = a[ok], b[ok], e[ok], det[ok], gs[ok]
            step[ok] = (
                np.stack([e * g[:, 0] - b * g[:, 1], a * g[:, 1] - b * g[:, 0]], axis=1)
                / det[:, None]
            )
    else:
        ok = np.linalg.eigvalsh(Hs)[:, 0] > 0
        if ok.any():
            step[ok] = np.linalg.solve(Hs[ok], gs[ok][..., None])[..., 0]


def _stencil(unit, T, h):
    """The points ``T + h e_l`` for every axis ``l`` (projected on the
    domain), stacked (n_dims k, n_dims), and their separations from ``T``
    along their axis (``h``, less where a bounded domain clipped), shape
    (n_dims, k)."""
    d = T.shape[1]
    E = h * np.eye(d)
    plus = [unit.project(T + E[e]) for e in range(d)]
    sep = np.stack([(plus[e] - T)[:, e] for e in range(d)])
    if unit.periodic:
        sep -= np.floor(sep + 0.5)
    return np.concatenate(plus), sep


def _values_gradients_hessians(unit, Xp, v, T, h):
    """``c(t)``, ``grad c(t)`` and ``Hess c(t)`` for ``c(t) = sum_j v_j
    phi(t)(x_j)`` at the rows of ``T``:
    all three contracted by the operator where it can
    (``unit.contracts_derivatives``), else from one operator call at ``T``
    and the stencil of :func:`_stencil` (Hessian by forward differences of
    the exact gradient)."""
    if unit.contracts_derivatives:
        return unit.contract_derivatives(Xp, T, v)
    P, sep = _stencil(unit, T, h)
    k = T.shape[0]
    A, dA = unit.pairwise(Xp, np.concatenate([T, P]))
    g = np.einsum("j,jik->ik", v, dA[:, :k])
    return v @ A[:, :k], g, _fd_hessian(v, g, dA[:, k:], sep)


def _contract(v, dA):
    """``sum_j v_j dA[j]`` (m, n_dims) for gradients ``dA`` (n, m, n_dims):
    one matrix product when ``dA`` is a view of axis-major blocks (n_dims,
    n, m), as the Gaussian kernel returns them."""
    blocks = dA.transpose(2, 0, 1)
    if blocks.flags.c_contiguous:
        return (v @ blocks).T
    return np.einsum("j,jik->ik", v, dA)


def _fd_hessian(v, g, dA_shifted, sep):
    """``Hess c`` (k, d, d) from the gradient ``g`` (k, d) at the points and
    the gradients at the shifted points of :func:`_stencil` (forward
    differences, symmetrised); zero where a separation vanished."""
    d, k = sep.shape
    gs = np.einsum("j,jik->ik", v, dA_shifted).reshape(d, k, d)
    safe = np.where(sep != 0, sep, np.inf)
    H = ((gs - g[None]) / safe[:, :, None]).transpose(1, 2, 0)  # H[i, l, e]
    return 0.5 * (H + H.transpose(0, 2, 1))


# ---------------------------------------------------------------- sliding
def _objective(unit, Xp, y, s, lam, T, a, h=None):
    """``J`` and ``(Phi, dPhi, r, extra)`` at the spikes ``(T, a)``: with
    ``h``, ``extra`` holds the gradients at the stencil of :func:`_stencil`
    and its separations (one operator call), for :func:`_fd_hessian`, or
    ``ANALYTIC`` when the unit contracts its Hessian itself
    (``unit.contracts_derivatives``: no stencil);
    ``h="values"``: ``J`` and ``(Phi, None, r, None)`` from the values
    alone."""
    if a.size == 0:
        return 0.5 * float(s @ np.square(y)), None
    k = a.size
    extra = None
    if h is None:
        Phi, dPhi = unit.forward(Xp, T)
    elif isinstance(h, str):
        Phi, dPhi = _values(unit, Xp, T), None
    elif unit.contracts_derivatives:
        (Phi, dPhi), extra = unit.forward(Xp, T), ANALYTIC
    else:
        P, sep = _stencil(unit, T, h)
        A, dA = unit.pairwise(Xp, np.concatenate([T, P]))
        Phi, dPhi, extra = A[:, :k], dA[:, :k], (dA[:, k:], sep)
    r = y - Phi @ a
    J = 0.5 * float((s * r) @ r) + lam * float(np.abs(a).sum())
    return J, (Phi, dPhi, r, extra)


def _subset_objective(y, s, lam, a, cache, keep):
    """``J`` and the cache of :func:`_objective` for the spikes ``keep``
    (boolean, of the spikes of ``cache``) with the amplitudes ``a`` (of the
    spikes kept): the columns of the values, gradients and stencil
    gradients selected, no operator call."""
    Phi, dPhi, _, extra = cache
    Phi = Phi[:, keep]
    dPhi = None if dPhi is None else dPhi[:, keep]
    if extra is not None and extra is not ANALYTIC:
        dA_shifted, sep = extra
        d, k = sep.shape
        columns = (np.arange(d)[:, None] * k + np.flatnonzero(keep)).ravel()
        extra = (dA_shifted[:, columns], sep[:, keep])
    r = y - Phi @ a
    J = 0.5 * float((s * r) @ r) + lam * float(np.abs(a).sum())
    return J, (Phi, dPhi, r, extra)


def slide(
    unit,
    Xp,
    y,
    s,
    lam,
    T,
    a,
    *,
    merge_radius=None,
    fixed_signs=True,
    max_move=None,
    residual_hessian=True,
    max_iter=50,
    gtol=1e-11,
    callback=None,
):
    """Minimise ``J(a, T)`` jointly with the signs of ``a`` fixed, by
    damped Newton (Levenberg-Marquardt).

    The step solves ``(H + mu D) dz = -grad J``, ``D`` the diagonal of the
    Gauss-Newton term, ``mu`` updated from the ratio of the actual to the
    predicted decrease (Nielsen's rule) and increased until the step
    decreases ``J``; no spike moves by more than half a length scale in one
    step; amplitudes that would change sign are set to zero and their spikes
    dropped; spikes of one sign closer than ``merge_radius`` are merged
    (amplitudes summed, positions averaged by mass). In a bounded box a
    position coordinate at a bound whose gradient points out of the box is
    held there (projected Newton: its row and column of ``H`` and its
    gradient are left out of the step). Stops when ``|sigma_i -
    eta(t_i)|`` and ``l |grad eta(t_i)|`` (the free coordinates) are at
    most ``gtol`` for every spike, when ``J`` no longer decreases (Newton's
    predicted decrease ``grad^T H^-1 grad / 2`` at most ``DECREASE_FLOOR J``,
    after an undamped step from the last step's factorisation, no new
    Hessian), or after ``max_iter`` steps.

    Parameters
    ----------
    unit : SpikeUnit
    Xp, y, s : ndarray
        Prepared measurements, targets and weights (normalised units).
    lam : float
    T : ndarray of shape (k, n_dims)
    a : ndarray of shape (k,)
    merge_radius : float or None
        None: half the length scale; 0: no merging.
    fixed_signs : bool, default=True
        False (with ``lam = 0``, a least-squares refit): amplitudes free to
        change sign, no spike dropped.
    max_move : float or None
        Without merging: stop (``info["moved_away"]`` True) as soon as a
        spike is farther than this from where it started.
    residual_hessian : bool or "auto", default=True
        False: the Gauss-Newton term alone (no finite differences; for a
        least-squares refit, whose residual is small); ``"auto"``: the
        Gauss-Newton term until an iteration reduces the stationarity by
        less than 4, the full Hessian then.
    max_iter : int
    gtol : float
    callback : callable or None
        ``callback(J)`` after every accepted step.

    Returns
    -------
    T, a : ndarray
        The polished spikes (non-zero amplitudes).
    info : dict
        ``n_iter`` (accepted steps), ``objective``, ``stationarity``,
        ``residual`` (``y - Phi(T) a`` at the spikes returned) and, without
        merging, ``index``: the rows of the input spikes that are left.
    """
    ell = unit.length_scale
    radius = 0.5 * ell if merge_radius is None else merge_radius
    keep = (a != 0) | (not fixed_signs)
    index = np.flatnonzero(keep)
    T, a = np.array(T[keep], dtype=float), a[keep].astype(float)
    start = T.copy()
    keep_rows = index.copy()  # the input rows of start
    moved_away = False
    # how far spikes may still move before two of one sign can come within
    # the merge radius (each step moves every spike by at most the largest
    # move: the merge test is skipped while this stays positive), and how
    # far any spike can have gone from its start (the sum of the largest
    # moves: the test of max_move is skipped while within it)
    slack, travelled = -1.0, 0.0
    if radius > 0:
        T, a, slack = _merge(unit, T, a, radius, with_gap=True)
    sigma = np.sign(a)
    d = T.shape[1]
    h = FD_STEP * ell
    h_full = h
    if residual_hessian is not True:  # "auto" or False: Gauss-Newton first
        h = None
    w = np.sqrt(s)
    # the start is usually good: the first trial evaluates the gradients too
    mu, nu, rho = 0.0, 2.0, 1.0
    n_iter = 0
    stat = np.inf
    J, cache = _objective(unit, Xp, y, s, lam, T, a, h)
    if a.size:
        # the amplitudes first (positions fixed: a quadratic problem), from
        # the values at the start
        a = _amplitudes_on_support(cache[0], y, s, lam, a, fixed_signs)
        nz = (a != 0) | (not fixed_signs)
        if nz.all():
            Phi = cache[0]
            r = y - Phi @ a
            J = 0.5 * float((s * r) @ r) + lam * float(np.abs(a).sum())
            cache = (Phi, cache[1], r, cache[3])
        else:
            T, a, sigma = T[nz], a[nz], sigma[nz]
            index = index[nz] if radius <= 0 else index
            J, cache = _subset_objective(y, s, lam, a, cache, nz)
    stat_prev = np.inf
    # the scale of the amplitudes' gradient: lam, or the correlation of the
    # data with the spikes for a least-squares refit
    scale = (
        lam
        if lam > 0
        else max(float(np.abs((s * y) @ cache[0]).max(initial=0)), 1e-300)
        if a.size
        else 1.0
    )
    k_index = -1  # the number of spikes of the index arrays below
    # (k, Cholesky factor of H) of the last accepted step when it was
    # Newton's own (no damping): near convergence H hardly changes, so the
    # decrease left is estimated from it without a new Hessian
    newton_factor = None
    while a.size and n_iter < max_iter:
        k = a.size
        Phi, dPhi, r, stencil = cache
        sr = s * r
        c = sr @ Phi
        gc = _contract(sr, dPhi)
        g_a = lam * sigma - c
        g_T = -a[:, None] * gc
        # coordinates held at a bound of a bounded box by their gradient
        # (the projected Newton step leaves them out)
        pinned = _pinned(unit, T, g_T)
        if pinned is not None:
            gc = np.where(pinned, 0.0, gc)
            g_T = np.where(pinned, 0.0, g_T)
        stat = (
            max(float(np.abs(g_a).max()), float(np.abs(gc).max(initial=0.0)) * ell)
            / scale
        )
        if stat <= gtol:
            break
        if (
            newton_factor is not None
            and newton_factor[0] == k
            and pinned is None
            and stat <= 1e-6
        ):
            # Newton's decrease from here, grad^T H^-1 grad / 2, with the
            # last H: at J's rounding, no step can decrease J
            grad = np.concatenate([g_a, g_T.T.ravel()])
            if 0.5 * float(grad @ dpotrs(newton_factor[1], grad, lower=1)[0]) <= (
                DECREASE_FLOOR * abs(J)
            ):
                break
        newton_factor = None
        if residual_hessian == "auto" and h is None and stat > 0.25 * stat_prev:
            # Gauss-Newton converges slowly (a large residual): the full
            # Hessian from here on
            h = h_full
            J, cache = _objective(unit, Xp, y, s, lam, T, a, h)
            continue
        stat_prev = stat
        # G = sqrt(s) [Phi, dPhi a], unknowns ordered [a (k), T (k, d)
        # axis-major: t_1 of every spike, then t_2, ...], one block of
        # columns per axis
        n_unknowns = k * (d + 1)
        G = np.empty((Phi.shape[0], n_unknowns))
        np.multiply(Phi, w[:, None], out=G[:, :k])
        wa = w[:, None] * a
        for e in range(d):
            np.multiply(dPhi[:, :, e], wa, out=G[:, (e + 1) * k : (e + 2) * k])
        H = G.T @ G
        diag = H.diagonal().copy()
        diag = np.maximum(diag, 1e-12 * diag.max(initial=0.0) + 1e-300)
        # residual blocks
        if stencil is not None:
            if k != k_index:
                ia = np.arange(k)[:, None]
                iT = k + ia + k * np.arange(d)[None, :]
                k_index = k
            if stencil is ANALYTIC:
                Hc = unit.contract_derivatives(Xp, T, sr)[2]
            else:
                Hc = _fd_hessian(sr, gc, *stencil)
            H[ia, iT] -= gc
            H[iT, ia] -= gc
            H[iT[:, :, None], iT[:, None, :]] -= a[:, None, None] * Hc
        grad = np.empty(n_unknowns)
        grad[:k] = g_a
        grad[k:] = g_T.T.ravel()
        if pinned is not None:
            f = k + np.flatnonzero(pinned.T.ravel())
            H[f, :] = 0.0
            H[:, f] = 0.0
            H[f, f] = diag[f]
        accepted = False
        # the model was good: try Newton's step itself first, then go back
        # to the damping that worked
        mu_next = mu
        if rho > 0.75:
            mu = 0.0
        for _ in range(40):
            damped = H.copy()
            damped.flat[:: n_unknowns + 1] += mu * diag
            # (LAPACK's Cholesky factorisation and solve: the problems are
            # small, numpy's wrappers would cost more than the work)
            L, info = dpotrf(damped, lower=1, clean=0)
            if info != 0:
                mu, nu = _more_damping(mu, nu, mu_next)
                continue
            dz = dpotrs(L, grad, lower=1)[0]
            np.negative(dz, out=dz)
            dT = dz[k:].reshape(d, k).T
            move = np.sqrt(np.einsum("ik,ik->i", dT, dT).max())
            if move > 0.5 * ell:
                dz *= 0.5 * ell / move
                move = 0.5 * ell
            predicted = -float(grad @ dz + 0.5 * dz @ (H @ dz))
            if 0 <= predicted <= DECREASE_FLOOR * abs(J) and stat <= 1e-6:
                break  # converged: no decrease left above rounding
            a_new = a + dz[:k]
            if fixed_signs:
                a_new[sigma * a_new <= 0] = 0.0
            T_new = unit.project(T + dT)
            nz = (a_new != 0) | (not fixed_signs)
            if not nz.all():
                T_new, a_new = T_new[nz], a_new[nz]
            # where the last model was good, the gradients (and stencil) at
            # once; else values only, the gradients once the step is accepted
            J_new, cache_new = _objective(
                unit, Xp, y, s, lam, T_new, a_new, h if rho > 0.75 else "values"
            )
            if J_new < J:
                accepted = True
                break
            if stat <= 1e-6:
                break  # in Newton's basin: a step that fails is rounding
            mu, nu = _more_damping(mu, nu, mu_next)
        if not accepted:
            break
        if mu == 0.0 and pinned is None:
            newton_factor = (k, L)
        n_iter += 1
        decrease = J - J_new
        rho = decrease / predicted if predicted > 0 else 0.0
        mu *= max(1 / 10, 1 - (2 * rho - 1) ** 3)
        nu = 2.0
        if mu < 1e-12:
            mu = 0.0
        T, a = T_new, a_new
        if a.size < k:
            sigma = sigma[nz]
            index = index[nz] if radius <= 0 else index
        slack -= 2 * move
        travelled += move
        if radius > 0 and slack <= 0:
            n_left = a.size
            T, a, slack = _merge(unit, T, a, radius, with_gap=True)
            if a.size < n_left:
                sigma = np.sign(a)
                cache_new = None
        if (
            cache_new is not None
            and cache_new[1] is not None
            and (h is None or cache_new[3] is not None)
        ):
            J, cache = J_new, cache_new
        else:
            J, cache = _objective(unit, Xp, y, s, lam, T, a, h)
        if max_move is not None and radius <= 0 and travelled > max_move:
            D = unit.differences(T, start[np.searchsorted(keep_rows, index)])
            D = D[np.arange(a.size), np.arange(a.size)]
            if np.any(np.einsum("ik,ik->i", D, D) > max_move**2):
                moved_away = True
                break
        if callback is not None:
            callback(J)
        if decrease <= 1e-15 * abs(J) and stat <= 1e-6:
            break
    info = {
        "n_iter": n_iter,
        "objective": J,
        "stationarity": stat,
        "moved_away": moved_away,
        "residual": y if cache is None else cache[2],
    }
    if radius <= 0:
        info["index"] = index
    return T, a, info


def _pinned(unit, T, grad_T):
    """``(k, n_dims)`` mask of the position coordinates at a bound of the
    unit's domain, when it is a bounded box, whose gradient ``grad_T`` of
    ``J`` points out of the box (a descent step would leave it): the
    active set of the bound constraints. None when nothing is pinned."""
    domain = unit.domain
    if domain.periodic or not getattr(domain, "bounded", False) or not T.size:
        return None
    tol = 1e-9 * unit.length_scale
    pinned = ((T <= domain.lower + tol) & (grad_T > 0)) | (
        (T >= domain.upper - tol) & (grad_T < 0)
    )
    return pinned if pinned.any() else None


def _more_damping(mu, nu, mu_next):
    """The damping after a rejected step: back to ``mu_next`` (the damping
    before an undamped try) if above, else ``mu nu`` (at least ``1e-6``)
    with ``nu`` doubled (at most 16)."""
    if mu < mu_next:
        return mu_next, nu
    return max(mu * nu, 1e-6), min(2 * nu, 16.0)


def refit(unit, Xp, y, s, T, a, positive=False, max_iter=50, max_move=None):
    """The least-squares refit ``min_{a, T} (1/2) sum_j s_j (y_j - sum_i a_i
    phi(t_i)(x_j))^2`` from ``(T, a)`` by :func:`slide` with ``lam = 0``
    (no merging; amplitudes kept non-negative with ``positive``, a spike
    whose amplitude reaches zero dropped). Returns ``(T, a, index)``,
    ``index`` the rows of the input spikes that are left, or None if a
    spike moved farther than ``max_move``. The Hessian is the Gauss-Newton
    term while it converges fast (the residual of a refit is usually
    small), the full one then; it stops at the stationarity
    ``REFIT_GTOL`` (the positions are then within about that many length
    scales of the least-squares ones, far below the noise's effect)."""
    T, a, info = slide(
        unit,
        Xp,
        y,
        s,
        0.0,
        T,
        a,
        merge_radius=0.0,
        fixed_signs=positive,
        max_move=max_move,
        residual_hessian="auto",
        max_iter=max_iter,
        gtol=REFIT_GTOL,
    )
    if info["moved_away"]:
        return None
    return T, a, info["index"]


def _amplitudes_on_support(Phi, y, s, lam, a, fixed_signs=True):
    """``argmin_a J(a, T)`` at fixed positions with the signs of ``a``
    fixed (``sigma_i a_i >= 0``): Newton's step on the free amplitudes (the
    exact minimiser of the quadratic), cut where an amplitude reaches zero,
    that amplitude fixed at zero, repeated (an active-set method that only
    drops spikes). ``fixed_signs=False``: the unconstrained minimiser."""
    a = a.copy()
    sigma = np.sign(a)
    k = a.size
    Q = Phi.T @ (s[:, None] * Phi)
    b = (s * y) @ Phi - lam * sigma
    Q.flat[:: k + 1] += 1e-12 * max(float(Q.trace()) / max(k, 1), 1e-300)
    if not fixed_signs:
        target, info = dposv(Q, b)[1:]
        if info != 0:  # (not positive definite to rounding)
            target = np.linalg.lstsq(Q, b, rcond=None)[0]
        return target
    idx = np.flatnonzero(a)
    while idx.size:
        Qf = Q[idx][:, idx]
        target, info = dposv(Qf, b[idx])[1:]
        if info != 0:  # (not positive definite to rounding)
            target = np.linalg.lstsq(Qf, b[idx], rcond=None)[0]
        af = a[idx]
        step = target - af
        # largest fraction of the step keeping every sign
        crossing = np.flatnonzero(sigma[idx] * step < 0)
        if crossing.size == 0:
            a[idx] = target
            break
        ratios = -af[crossing] / step[crossing]
        j = int(np.argmin(ratios))
        if ratios[j] >= 1:
            a[idx] = target
            break
        a[idx] = af + ratios[j] * step
        a[idx[crossing[j]]] = 0.0
        idx = idx[idx != idx[crossing[j]]]
    return a


def _clusters(unit, T, a, prune_tol, merge_radius):
    """The spikes the sliding starts from, read off the particles ``(T,
    a)``: particles below ``prune_tol / 10`` of the heaviest dropped, the
    others gathered around the heaviest particles of their sign within
    ``merge_radius`` (None: ``GATHER_RADIUS`` length scales) by
    :func:`_gather`, gathered spikes below ``prune_tol`` of the heaviest
    dropped (the rule of
    :func:`~sklearn_meanfield._blasso.extract_spikes`)."""
    radius = GATHER_RADIUS * unit.length_scale if merge_radius is None else merge_radius
    heaviest = np.abs(a).max(initial=0.0)
    keep = np.abs(a) > 0.1 * prune_tol * heaviest
    T, a = _gather(unit, T[keep], a[keep], radius)
    keep = np.abs(a) >= prune_tol * np.abs(a).max(initial=0.0)
    return T[keep], a[keep]


def _gather(unit, T, a, radius):
    """Particles gathered around the local maxima of their mass: a particle
    at least as heavy as every particle of its sign within ``radius`` is a
    seed; every other particle joins the nearest seed of its sign within
    ``radius``; those left (their heavier neighbours joined other seeds) are
    gathered the same way among themselves. Each group is one spike, of the
    group's total amplitude, at its mean position weighted by mass.

    Unlike single linkage (:func:`_merge`) this does not chain: a group is
    at most ``2 radius`` across, however many light particles lie between
    two heavy ones."""
    k = a.size
    if k < 2:
        return T, a
    D = unit.differences(T, T)
    dist2 = np.einsum("ijk,ijk->ij", D, D)
    near = (dist2 < radius**2) & (np.sign(a)[:, None] == np.sign(a)[None, :])
    mass = np.abs(a)
    labels = np.full(k, -1)
    free = np.ones(k, dtype=bool)
    n = 0
    while free.any():
        linked = near & free[None, :]
        heaviest = np.where(linked, mass[None, :], -np.inf).max(axis=1)
        seeds = np.flatnonzero(free & (mass >= heaviest))
        to_seed = np.where(linked[:, seeds], dist2[:, seeds], np.inf)
        nearest = np.argmin(to_seed, axis=1)
        joins = free & np.isfinite(to_seed[np.arange(k), nearest])
        labels[joins] = n + nearest[joins]
        labels[seeds] = n + np.arange(seeds.size)
        free[joins] = False
        free[seeds] = False
        n += seeds.size
    return _mean_by_mass(unit, T, a, labels, D)


def _mean_by_mass(unit, T, a, labels, D):
    """One spike per label: the amplitudes summed, the positions averaged by
    mass (offsets ``D[i, j] = t_i - t_j`` from the heaviest of the group,
    which fixes the periodic image)."""
    k, n = a.size, labels.max() + 1
    mass = np.abs(a)
    order = np.argsort(-mass, kind="stable")
    # the heaviest member of each label: its first in order of mass
    rep = order[np.unique(labels[order], return_index=True)[1]]
    offsets = D[np.arange(k), rep[labels]]  # t_i - t_rep(i)
    total = np.bincount(labels, weights=mass)
    shift = (
        np.column_stack(
            [
                np.bincount(labels, weights=mass * offsets[:, e], minlength=n)
                for e in range(T.shape[1])
            ]
        )
        / total[:, None]
    )
    return unit.project(T[rep] + shift), np.bincount(labels, weights=a)


def connected_labels(adjacent):
    """Labels ``0, 1, ...`` of the connected components of the graph of the
    symmetric boolean matrix ``adjacent`` (n, n), by propagating the
    smallest label along the edges: with a threshold on distances, the
    clusters of single linkage. The components are numbered in the order
    of their smallest index."""
    n = adjacent.shape[0]
    index = np.arange(n)
    labels = index
    while True:
        new = np.where(adjacent, labels[None, :], n).min(axis=1, initial=n)
        new = np.minimum(new, labels)
        if np.array_equal(new, labels):
            break
        labels = new
    # each node is labelled by the smallest index of its component, whose
    # own label is itself: number those roots in order
    roots = labels == index
    return (np.cumsum(roots) - 1)[labels]


def _merge(unit, T, a, radius, with_gap=False):
    """Spikes of one sign closer than ``radius`` (single linkage) merged:
    amplitudes summed, positions averaged by mass (the heaviest spike's
    periodic image). With ``with_gap``, also the smallest distance between
    two spikes of one sign less ``radius`` when none were merged (``inf``
    without such a pair), ``-1`` when some were."""
    k = a.size
    if k < 2:
        return (T, a, np.inf) if with_gap else (T, a)
    D = unit.differences(T, T)
    dist = np.sqrt(np.einsum("ijk,ijk->ij", D, D))
    same = np.sign(a)[:, None] == np.sign(a)[None, :]
    np.fill_diagonal(same, False)
    close = (dist < radius) & same
    if not close.any():
        if with_gap:
            return T, a, float(np.where(same, dist, np.inf).min()) - radius
        return T, a
    labels = connected_labels(close)
    merged = _mean_by_mass(unit, T, a, labels, D)
    return (*merged, -1.0) if with_gap else merged


# ------------------------------------------------------------ the solver
@dataclass
class SlideResult:
    """What :func:`flow_and_slide` returns (normalised units).

    ``positions``/``amplitudes``: the particles (same shape as given), the
    polished spikes in the slots of particles of their sign, the other
    slots at zero amplitude; ``loss_curve``: ``J`` after each flow step and
    each accepted sliding step; ``n_flow``: flow steps; ``certified``:
    whether the duality gap reached ``tol J``.
    """

    positions: np.ndarray
    amplitudes: np.ndarray
    gap: float
    eta_max: float
    loss_curve: list = field(default_factory=list)
    n_flow: int = 0
    n_slide: int = 0
    n_inserted: int = 0
    certified: bool = False
    records: list = field(default_factory=list)
    objective: float = np.nan
    #: the uncertified polished spikes of lowest J, ``(T, a, J)``
    best: tuple = None


def flow_and_slide(
    unit,
    Xp,
    y,
    s,
    lam,
    positions,
    amplitudes,
    *,
    grid,
    max_iter,
    tol,
    weight_step,
    position_step,
    merge_radius,
    record_every=None,
    max_insertions=None,
    verbose=False,
    units=1.0,
    positive=False,
):
    """Conic flow until the masses have gathered, then sliding, certificate,
    insertion at the largest violation until the duality gap is at most
    ``tol J`` (see the module docstring).

    Parameters
    ----------
    unit, Xp, y, s, lam
        The problem (normalised units).
    positions : ndarray of shape (m, n_dims)
    amplitudes : ndarray of shape (m,)
        The initial particles (non-zero amplitudes: their signs are fixed).
    grid : CertificateGrid
    max_iter : int
        Most flow steps plus sliding steps.
    tol : float
    weight_step, position_step : float
        The flow's largest mass step and position step (units of
        ``length_scale**2`` times the mass step's).
    merge_radius : float
        Particles of one sign closer than this form one spike.
    record_every : int or None
        Record ``(step, positions, amplitudes)`` every so many flow steps.
    max_insertions : int or None
        Most insertions per attempt (None: the number of measurements).
    verbose : bool
        Print ``J`` after each flow step and each sliding.
    units : float, default=1.0
        ``J`` is printed times ``units`` (``c^2`` for the units of ``y^2``).
    positive : bool, default=False
        The amplitudes are constrained to be non-negative (the particles
        given are): the certificate is bounded above only, spikes are
        inserted where it exceeds 1, never where it is below -1.

    Returns
    -------
    SlideResult
    """
    T = np.array(positions, dtype=float)
    a = np.array(amplitudes, dtype=float)
    sigma = np.sign(a)
    d = T.shape[1]
    n_rows = Xp.shape[0]
    ell2 = unit.length_scale**2
    ratio = position_step / weight_step
    result = SlideResult(T, a, np.inf, np.inf)
    curve = result.loss_curve
    if max_insertions is None:
        max_insertions = n_rows
    active = np.flatnonzero(a != 0)
    grow = _growing(unit, Xp, y, s, lam, T[active], sigma[active])
    if grow is not None and grow.any():
        # only the particles whose mass grows at the first step take part
        # (the others would lose theirs: the flow drops them)
        a[active[~grow]] = 0.0
        active = active[grow]
        Phi = _values(unit, Xp, T[active])
    else:
        # values only (the gradients are needed for the particles that
        # keep their mass after the first mass step), once per distinct
        # position
        Phi = _SharedColumns.of(unit, Xp, T[active])
    # the last moving particles (indices) and their gradients, at their
    # current positions; none needed when the operator gives grad c from the
    # values (the Gaussian kernel, Fourier measurements)
    moved = None
    from_values = unit.gradients_from_values
    r = y - Phi @ a[active]
    J = 0.5 * float((s * r) @ r) + lam * float(np.abs(a[active]).sum())
    h = weight_step
    next_try = MIN_FLOW_STEPS  # flow steps before the next attempt at sliding
    wait = 1
    spikes = None
    if record_every:
        result.records.append((0, T.copy(), a.copy()))

    def budget():
        return max_iter - len(curve)

    def attempt():
        # the particles gathered into spikes, slid and certified: (spikes or
        # None, whether there were spikes to slide)
        P, A = _clusters(unit, T[active], a[active], EXTRACT_PRUNE, merge_radius)
        k = A.shape[0]
        if k == 0 or k * (d + 1) > n_rows:
            return None, False
        spikes = _slide_and_certify(
            unit,
            Xp,
            y,
            s,
            lam,
            P,
            A,
            grid,
            tol,
            max_insertions,
            T.shape[0],
            budget,
            curve,
            result,
            verbose,
            units,
            positive,
        )
        return spikes, True

    while budget() > 0:
        # ---------------------------------------------- one step of the flow
        sr = s * r
        c = sr @ Phi
        aa, sg = a[active], sigma[active]
        rate = 4.0 * (sg * c - lam)

        def J_mass(step, aa=aa, rate=rate, Phi=Phi):
            # a step too long overflows: J is then inf and the line search
            # shortens it
            with np.errstate(over="ignore", invalid="ignore"):
                an = aa * np.exp(np.minimum(step * rate, 700.0))
                rn = y - Phi @ an
                value = 0.5 * float((s * rn) @ rn) + lam * float(np.abs(an).sum())
            return (value if np.isfinite(value) else np.inf), an

        if result.n_flow == 0:
            # the first step from small masses: the step at which the most
            # growing particle alone would fit its correlation (the masses
            # grow as exp(h rate))
            i = int(np.argmax(rate))
            column = Phi.column(i) if isinstance(Phi, _SharedColumns) else Phi[:, i]
            norm2 = float(s @ np.square(column))
            if rate[i] > 0 and norm2 > 0 and aa[i] != 0:
                growth = abs(c[i]) / (abs(aa[i]) * norm2)
                if growth > 1:
                    h = min(
                        max(h, np.log(growth) / rate[i]),
                        MAX_MASS_STEP_RATIO * weight_step,
                    )
        h, J_h, a_h = _mass_line_search(J_mass, J, h, MAX_MASS_STEP_RATIO * weight_step)
        if not J_h < J:
            # stationary for the masses, or their change below the rounding
            # of J (alpha just below alpha_max: the one growing particle's
            # rate is tiny): the sliding from the particles as they are
            # (its amplitudes are solved for, not grown), then stop
            if result.n_flow > 0:
                spikes = attempt()[0]
            break
        # drop the particles that have lost their mass
        alive = np.abs(a_h) >= DROP_RELATIVE_MASS * np.abs(a_h).max()
        if not alive.all():
            a[active[~alive]] = 0.0
            active, a_h, sg = active[alive], a_h[alive], sg[alive]
            Phi = (
                Phi.subset(alive) if isinstance(Phi, _SharedColumns) else Phi[:, alive]
            )
            r_h = y - Phi @ a_h
            J_h = 0.5 * float((s * r_h) @ r_h) + lam * float(np.abs(a_h).sum())
        # positions: the flow's step, at most half a length scale; where the
        # gradients come from the operator (not from the values), for the
        # particles of at least MOVE_RELATIVE_MASS of the heaviest when the
        # lighter ones outnumber them by more than MOVE_LIGHT_RATIO to 1 (a
        # light particle's move hardly changes J, and the cost of a step is
        # that of the moving particles' values and gradients: it takes mass
        # steps only, and moves once it has grown)
        moving = np.abs(a_h) >= MOVE_RELATIVE_MASS * np.abs(a_h).max()
        if from_values or moving.size <= (MOVE_LIGHT_RATIO + 1) * np.count_nonzero(
            moving
        ):
            moving[:] = True
        idx = active[moving]
        if not from_values:
            gc = _moving_gradients(unit, Xp, T, idx, moved, sr)
        elif isinstance(Phi, _SharedColumns):
            gc = Phi.gradient(unit, Xp, sr)[moving]
        else:
            gc = unit.gradient_from_values(Xp, T[active], Phi, sr)[moving]
        every = moving.all()
        if not every:
            # (the moving particles' columns are replaced in place)
            if isinstance(Phi, _SharedColumns):
                Phi = Phi.dense()
            elif not Phi.flags.writeable:
                Phi = Phi.copy()
        move = (ratio * min(h, weight_step) * ell2) * (sg[moving, None] * gc)
        norm = np.sqrt(np.einsum("ik,ik->i", move, move)).max(initial=0.0)
        if norm > 0.5 * unit.length_scale:
            move *= 0.5 * unit.length_scale / norm
        T_mov, a_mov = T[idx], a_h[moving]
        # the residual without the moving particles
        r_still = y if every else y - Phi @ np.where(moving, 0.0, a_h)
        accepted = False
        for _ in range(4):
            T_new = unit.project(T_mov + move)
            if from_values:
                Phi_n = _values(unit, Xp, T_new)
            else:
                Phi_n, dPhi_n = unit.forward(Xp, T_new)
            r_n = r_still - Phi_n @ a_mov
            J_n = 0.5 * float((s * r_n) @ r_n) + lam * float(np.abs(a_h).sum())
            if J_n <= J_h:
                accepted = True
                break
            move *= 0.5
        if accepted:
            T[idx], r, J = T_new, r_n, J_n
            if every:
                Phi = Phi_n
            else:
                Phi[:, moving] = Phi_n
            if not from_values:
                moved = (idx, dPhi_n)
        else:
            # masses only (their step was accepted on the current Phi; the
            # gradients kept are still those at the positions)
            r, J = y - Phi @ a_h, J_h
        a[active] = a_h
        curve.append(J)
        result.n_flow += 1
        if record_every and result.n_flow % record_every == 0:
            result.records.append((result.n_flow, T.copy(), a.copy()))
        if verbose:
            print(
                f"Flow step {result.n_flow}, J = {J * units:.6g}, "
                f"{active.size} particles"
            )
        # --------------------------------------------- gathered? then slide
        next_try -= 1
        if next_try > 0:
            continue
        spikes, tried = attempt()
        if not tried:
            next_try = 1
            continue
        if spikes is not None:
            break
        wait *= WAIT_GROWTH
        next_try = wait
    if spikes is None:
        # the flow stopped (budget or stationary) before a certified polish:
        # the flow's particles, or the polished spikes if they are better
        keep = a != 0
        J_flow = _objective(unit, Xp, y, s, lam, T[keep], a[keep], "values")[0]
        if result.best is not None and result.best[2] < J_flow:
            Tb, ab, _ = result.best
            gap, eta_max, J = _gap(unit, Xp, y, s, lam, Tb, ab, grid, positive)
            T, a = _into_slots(T, sigma, Tb, ab)
            curve.append(J)  # (the loss curve ends at the measure returned)
        else:
            gap, eta_max, J = _gap(
                unit, Xp, y, s, lam, T[keep], a[keep], grid, positive
            )
        result.positions, result.amplitudes = T, a
        result.gap, result.eta_max, result.objective = gap, eta_max, J
        return result
    Ts, As, gap, eta_max, J = spikes
    result.positions, result.amplitudes = _into_slots(T, sigma, Ts, As)
    result.gap, result.eta_max, result.objective = gap, eta_max, J
    result.certified = True
    if record_every:
        result.records.append((len(curve), result.positions, result.amplitudes))
    return result


def _growing(unit, Xp, y, s, lam, T, sigma):
    """Which particles ``(T, sigma)`` (small masses of signs ``sigma``)
    grow at the first step of the flow: ``sigma c(t) > lam`` for the data's
    correlation ``c(t) = sum_j s_j y_j phi(t)(x_j)`` (the initial masses are
    negligible). Decided when the particles sit on the unit's covering grid
    (once, or once per sign) and the operator's values on a grid do not
    come from its per-axis factors (``tensor_values`` False, see
    :meth:`SpikeUnit.grid_values`; otherwise the first values cost about
    what the correlations do): ``c`` on the tensor grid from the factors
    (:meth:`SpikeUnit.grid_correlations`, no (n_samples, n_points) array),
    at the covering grid's random points from their values. None when not
    decided."""
    axes_of = getattr(unit, "covering_axes", None)
    if (
        not callable(axes_of)
        or T.shape[0] == 0
        or getattr(unit.operator, "tensor_values", True)
    ):
        return None
    half = T.shape[0] // 2
    twice = half > 0 and 2 * half == T.shape[0] and np.array_equal(T[:half], T[half:])
    P = T[:half] if twice else T
    known = axes_of(P)
    if known is None:
        return None
    axes, n_grid = known
    v = s * y
    c = unit.grid_correlations(Xp, axes, v)
    if n_grid < P.shape[0]:
        # (the random points of the covering grid)
        c = np.concatenate([c, v @ _values(unit, Xp, P[n_grid:])])
    if twice:
        c = np.concatenate([c, c])
    return sigma * c > lam


def _moving_gradients(unit, Xp, T, idx, moved, v):
    """``grad c(t_i) = sum_j v_j grad phi(t_i)(x_j)`` (k, n_dims) for the
    particles ``idx`` (sorted indices) at their positions ``T[idx]``: from
    the gradients held in ``moved = (indices, gradients)`` (the last
    computed, sorted indices, (n, k', n_dims)) for those it holds, from the
    operator for the others."""
    if moved is None:
        return _contract(v, unit.forward(Xp, T[idx])[1])
    kept, dPhi = moved
    g = _contract(v, dPhi)
    if np.array_equal(kept, idx):
        return g
    pos = np.minimum(np.searchsorted(kept, idx), kept.size - 1)
    held = kept[pos] == idx
    if held.all():
        return g[pos]
    out = np.empty((idx.size, g.shape[1]))
    out[held] = g[pos[held]]
    out[~held] = _contract(v, unit.forward(Xp, T[idx[~held]])[1])
    return out


def _mass_line_search(J_mass, J, h, h_max, n_refine=3):
    """A mass step ``h`` that decreases ``J_mass(h)`` below ``J``: from the
    last step, doubled while ``J`` decreases (up to ``h_max``) or halved
    until it decreases, then refined by golden-section search on ``log h``
    within the bracket. Returns ``(h, J_mass(h), amplitudes)``."""
    J_h, a_h = J_mass(h)
    if not J_h < J:
        while not J_h < J and h > 1e-12 * h_max:
            h *= 0.5
            J_h, a_h = J_mass(h)
        return h, J_h, a_h
    lo, hi = h / 2, None
    while h < h_max:
        J_2, a_2 = J_mass(2 * h)
        if not J_2 < J_h:
            hi = 2 * h
            break
        lo, h, J_h, a_h = h, 2 * h, J_2, a_2
    if hi is None:
        return h, J_h, a_h
    # golden-section search on log h in [lo, hi], h inside
    g = (np.sqrt(5) - 1) / 2
    x_lo, x_hi, x = np.log(lo), np.log(hi), np.log(h)
    for _ in range(n_refine):
        # probe the larger side
        if x_hi - x > x - x_lo:
            x_new = x + (1 - g) * (x_hi - x)
        else:
            x_new = x - (1 - g) * (x - x_lo)
        J_new, a_new = J_mass(np.exp(x_new))
        if J_new < J_h:
            if x_new > x:
                x_lo = x
            else:
                x_hi = x
            x, J_h, a_h = x_new, J_new, a_new
        elif x_new > x:
            x_hi = x_new
        else:
            x_lo = x_new
    return float(np.exp(x)), J_h, a_h


class _SharedColumns:
    """``Phi[:, i] = U[:, col[i]]``: the columns of particles at the same
    position (the initial particles of both signs) computed once, ``U``'s
    columns the values at the rows of ``points``. Supports ``Phi @ a``, ``v
    @ Phi``, :meth:`column`, :meth:`subset`, :meth:`dense` and
    :meth:`gradient`; a plain array when the positions are distinct
    (:meth:`of`)."""

    __array_ufunc__ = None  # ndarray @ self defers to __rmatmul__

    def __init__(self, U, col, points):
        self.U, self.col, self.points = U, col, points

    @classmethod
    def of(cls, unit, Xp, T):
        """The values at ``T`` (rows), shared between equal rows; on a tensor
        grid (the covering grid) from the operator's per-axis factors where
        it has them (:meth:`SpikeUnit.grid_values`)."""
        half = T.shape[0] // 2
        if half and np.array_equal(T[:half], T[half:]):
            # (the covering grid twice, one copy per sign: no sort needed)
            points = T[:half].copy()
            return cls(
                _grid_values(unit, Xp, points), np.tile(np.arange(half), 2), points
            )
        U, first, col = np.unique(T, axis=0, return_index=True, return_inverse=True)
        if U.shape[0] == T.shape[0]:
            return _grid_values(unit, Xp, T)
        return cls(_grid_values(unit, Xp, T[first]), col.ravel(), T[first])

    def __matmul__(self, a):
        return self.U @ np.bincount(self.col, weights=a, minlength=self.U.shape[1])

    def __rmatmul__(self, v):
        return (v @ self.U)[self.col]

    def column(self, i):
        return self.U[:, self.col[i]]

    def subset(self, keep):
        return _SharedColumns(self.U, self.col[keep], self.points)

    def dense(self):
        """The columns as one array (n, m)."""
        return self.U[:, self.col]

    def gradient(self, unit, Xp, v):
        """``grad c`` (m, n_dims) of ``c(t) = sum_j v_j phi(t)(x_j)`` at
        every column's position, by ``unit.gradient_from_values`` once per
        distinct position."""
        return unit.gradient_from_values(Xp, self.points, self.U, v)[self.col]


def _values(unit, Xp, T):
    """``Phi[j, i] = phi(t_i)(x_j)`` alone (:meth:`SpikeUnit.values`; a
    unit without it: the first output of ``pairwise``)."""
    values = getattr(unit, "values", None)
    if callable(values):
        return values(Xp, T)
    return unit.pairwise(Xp, T)[0]


def _grid_values(unit, Xp, T):
    """:func:`_values` by :meth:`SpikeUnit.grid_values` (a tensor grid from
    the operator's per-axis factors) when the unit has it."""
    grid_values = getattr(unit, "grid_values", None)
    if callable(grid_values):
        return grid_values(Xp, T)
    return _values(unit, Xp, T)


def _gap(unit, Xp, y, s, lam, T, a, grid, positive=False):
    """``(gap, max|eta|, J)`` of the measure ``(T, a)`` (``max eta`` with
    ``positive``)."""
    J, cache = _objective(unit, Xp, y, s, lam, T, a)
    r = y if cache is None else cache[2]
    sr = s * r
    extra = T if T.shape[0] else None
    cmax, _, _ = certificate_search(unit, Xp, sr, grid, extra, positive=positive)
    eta_max = cmax / lam
    M = max(1.0, eta_max)
    dual = float(sr @ y) / M - 0.5 * float(sr @ r) / M / M
    return J - dual, eta_max, J


def _slide_and_certify(
    unit,
    Xp,
    y,
    s,
    lam,
    P,
    A,
    grid,
    tol,
    max_insertions,
    max_spikes,
    budget,
    curve,
    result,
    verbose,
    units=1.0,
    positive=False,
):
    """Slide the spikes ``(P, A)``; while the duality gap exceeds ``tol J``,
    insert spikes at the largest violations of the certificate (at most
    ``max_spikes`` spikes in all; with ``positive``, only where it exceeds
    1) and slide again. Returns ``(T, a, gap, max|eta|, J)``, or None when
    this does not end certified within the budget."""
    T, a = P, A
    n_inserted = 0
    while True:
        if budget() <= 0:
            return None
        T, a, info = slide(
            unit,
            Xp,
            y,
            s,
            lam,
            T,
            a,
            # (the first sliding merges at the usual radius; after an
            # insertion, spikes may be closer)
            merge_radius=SLIDE_MERGE * unit.length_scale if n_inserted else None,
            max_iter=budget(),
            callback=curve.append,
        )
        result.n_slide += info["n_iter"]
        J, r = info["objective"], info["residual"]
        sr = s * r
        cmax, t_star, c_star, peaks = certificate_search(
            unit,
            Xp,
            sr,
            grid,
            floor=0.5 * lam,
            exclude=T,
            return_peaks=True,
            positive=positive,
        )
        if positive:
            # (the peaks of c below zero are no violation)
            up = peaks[1] > 0
            peaks = (peaks[0][up], peaks[1][up])
        eta_max = cmax / lam
        M = max(1.0, eta_max)
        gap = J - (float(sr @ y) / M - 0.5 * float(sr @ r) / M / M)
        if verbose:
            print(
                f"Sliding: {a.size} spikes, J = {J * units:.6g}, max|eta| = "
                f"{eta_max:.9f}, duality gap = {gap * units:.3g} "
                f"({info['n_iter']} Newton steps)"
            )
        if gap <= tol * J or eta_max <= 1 + NO_VIOLATION:
            # certified, or nothing to insert: the gap is at its floor
            return T, a, gap, eta_max, J
        if result.best is None or J < result.best[2]:
            result.best = (T, a, J)
        if n_inserted >= max_insertions or t_star is None:
            return None
        new_T = _violations(unit, T, a, lam, cmax, t_star, c_star, *peaks)
        if new_T is None or a.size >= max_spikes:
            # the largest violation is at a spike of its sign (the sliding
            # did not converge, inserting would duplicate it), or there are
            # as many spikes as particles
            return None
        new_T = new_T[: max_spikes - a.size]
        # amplitudes minimising J along each new spike alone
        Phi_new = _values(unit, Xp, new_T)
        c_new = sr @ Phi_new
        norm2 = s @ np.square(Phi_new)
        amp = np.sign(c_new) * (np.abs(c_new) - lam) / np.maximum(norm2, 1e-300)
        T = np.vstack([T, new_T])
        a = np.append(a, amp)
        result.n_inserted += new_T.shape[0]
        n_inserted += new_T.shape[0]
    return None


def _violations(unit, T, a, lam, cmax, t_star, c_star, peaks_T, peaks_c):
    """Where to insert spikes: the largest violation ``t_star`` and every
    refined peak of ``|c|`` at least half as far above ``lam`` as it, at
    least a length scale from each other, none within ``SLIDE_MERGE``
    length scales of a spike of its sign (None if ``t_star`` is: a spike
    that has not converged)."""
    ell = unit.length_scale
    radius = SLIDE_MERGE * ell
    cand_T = np.vstack([t_star[None], peaks_T])
    cand_c = np.concatenate([[c_star], peaks_c])
    keep = np.abs(cand_c) - lam >= INSERT_FRACTION * (cmax - lam)
    cand_T, cand_c = cand_T[keep], cand_c[keep]
    order = np.argsort(-np.abs(cand_c), kind="stable")
    chosen = []
    for i in order:
        t, sign = cand_T[i], np.sign(cand_c[i])
        if T.shape[0]:
            D = unit.differences(t[None], T)[0]
            near = np.einsum("ik,ik->i", D, D) < radius**2
            if np.any(near & (np.sign(a) == sign)):
                if i == 0:
                    return None
                continue
        if chosen:
            D = unit.differences(t[None], np.array(chosen))[0]
            if np.any(np.einsum("ik,ik->i", D, D) < ell**2):
                continue
        chosen.append(t)
    return np.array(chosen)


def _into_slots(T, sigma, Ts, As):
    """The spikes ``(Ts, As)`` in the slots of particles of their sign (the
    nearest free slot), every other slot at zero amplitude."""
    positions = T.copy()
    amplitudes = np.zeros(T.shape[0])
    free = np.ones(T.shape[0], dtype=bool)
    order = np.argsort(-np.abs(As), kind="stable")
    for i in order:
        candidates = np.flatnonzero(free & (sigma == np.sign(As[i])))
        if candidates.size == 0:
            candidates = np.flatnonzero(free)
        D = positions[candidates] - Ts[i]
        j = candidates[int(np.argmin(np.einsum("ik,ik->i", D, D)))]
        positions[j], amplitudes[j] = Ts[i], As[i]
        free[j] = False
    return positions, amplitudes


@dataclass
class SlidingRun:
    """:func:`sliding_run`'s result in the form of the flow's
    (:class:`~sklearn_meanfield._flow.FlowResult`): mean-field weights
    ``w_i = m a_i``; ``n_iter`` flow steps plus sliding steps, one ``J`` per
    step in ``loss_curve``."""

    particles: Particles
    n_iter: int
    loss_curve: list
    trajectory: dict | None
    gap: float
    eta_max: float
    certified: bool
    n_flow: int
    n_slide: int
    n_inserted: int


def sliding_run(
    unit,
    Xp,
    y,
    s,
    lam,
    particles,
    grid,
    *,
    max_iter,
    tol,
    weight_step,
    position_step,
    merge_radius,
    record_every=None,
    verbose=False,
    units=1.0,
    positive=False,
):
    """:func:`flow_and_slide` on mean-field particles (``a_i = w_i / m``)."""
    m = particles.n_particles
    out = flow_and_slide(
        unit,
        Xp,
        y,
        s,
        lam,
        particles.positions,
        particles.weights[:, 0] / m,
        grid=grid,
        max_iter=max_iter,
        tol=tol,
        weight_step=weight_step,
        position_step=position_step,
        merge_radius=merge_radius,
        record_every=record_every,
        verbose=verbose,
        units=units,
        positive=positive,
    )
    if not out.certified:
        reason = (
            f"reached max_iter={max_iter} iterations"
            if len(out.loss_curve) >= max_iter
            else "stopped (no step of the flow decreases J)"
        )
        warnings.warn(
            f"The particle flow and sliding {reason} before the duality gap "
            f"reached tol * J (gap / J = {out.gap / max(out.objective, 1e-300):.3g}, "
            f"max|eta| = {out.eta_max:.4g}): the spikes may not be the BLASSO "
            "solution. Use more particles (n_particles) or iterations.",
            ConvergenceWarning,
            stacklevel=4,
        )
    trajectory = None
    if record_every:
        trajectory = _thin_records(out.records)
        trajectory["weights"] = trajectory["weights"] * m
    return SlidingRun(
        particles=Particles((out.amplitudes * m)[:, None], out.positions),
        n_iter=len(out.loss_curve),
        loss_curve=list(out.loss_curve),
        trajectory=trajectory,
        gap=out.gap,
        eta_max=out.eta_max,
        certified=out.certified,
        n_flow=out.n_flow,
        n_slide=out.n_slide,
        n_inserted=out.n_inserted,
    )


def _thin_records(records, limit=200):
    """The records as the flow's trajectory dict (``iterations``,
    ``positions``, ``weights`` (n_records, m, 1)), every other one dropped
    until at most ``limit`` remain (the last one kept)."""
    while len(records) > limit:
        records = [*records[:-1:2], records[-1]]
    return {
        "iterations": np.array([r[0] for r in records], dtype=int),
        "positions": np.stack([r[1] for r in records]),
        "weights": np.stack([r[2] for r in records])[:, :, None],
    }
