"""Forward operators: what one spike contributes to each measurement.

The BLASSO recovers a sparse measure ``mu = sum_i a_i delta_{t_i}`` from
measurements ``y_j ~ sum_i a_i phi(t_i)(x_j)``: ``x_j`` is what describes
measurement ``j`` (a sample location, a frequency, a time), ``t_i`` a spike
position. A *forward operator* gives the columns ``phi(t)`` for a set of
measurements. Contract (duck-typed; :class:`ForwardOperator` documents it and
holds the defaults, the built-in operators derive from it):

``matrix_and_gradient(X, T) -> (A, dA)`` (required)
    ``X`` (n_samples, n_features) the measurements, ``T`` (m, n_dims) spike
    positions; ``A[j, i] = phi(t_i)(x_j)``, shape (n_samples, m), and its
    gradient with respect to the positions ``dA[j, i, k] = d A[j, i] / d
    t_ik``, shape (n_samples, m, n_dims). Real, or complex when
    ``complex_valued``.
``domain(X) -> Torus, Box or (lower, upper)``
    Where the positions live, given the (prepared) measurements of positive
    weight: the torus ``[0, 1)^n_dims`` (:class:`Torus`: positions wrapped,
    distances periodic) or a box (:class:`Box`; a pair ``(lower, upper)`` is
    a bounded box: positions are kept in it). Default: the bounding box of
    ``X``, positions free outside it (as for a kernel ``K(x - t)`` on
    ``R^n_dims``).
``complex_valued : bool`` (default False)
    The measurements are complex (Fourier coefficients); the data term is
    then ``(1/2) sum_j s_j |y_j - sum_i a_i phi(t_i)(x_j)|^2`` with real
    amplitudes ``a_i``.
``length_scale : float`` (optional)
    The resolution of the measurements in position units: it sets the
    spacing of the initial particles, the unit of the position step, the
    merging radius and the spacing of the certificate grid. Missing or None:
    estimated from the operator (see :func:`estimate_length_scale`).
``prepare(X) -> X`` (optional)
    Checks and transforms the measurements once per fit and predict (e.g.
    reads locations modulo 1, or checks that frequencies are integers).
``stacked_matrix_and_gradient(X, imag, T) -> (A, dA)`` (optional, complex)
    The real part of the rows where ``imag`` (n_samples,) is False and the
    imaginary part where it is True, when cheaper than the complex matrix.
``matrix(X, T) -> A`` (optional, real operators)
    ``A`` alone, when cheaper than with its gradient (the default solver's
    line searches and certificate grids need values only).
``contract_derivatives(X, T, v) -> (c, grad, hess)`` (optional, real operators)
    ``c_i = sum_j v_j phi(t_i)(x_j)``, its gradient (m, n_dims) and Hessian
    (m, n_dims, n_dims) in ``t_i``: the default solver's Newton steps then
    take second derivatives from the operator instead of finite differences
    of the gradient. ``stacked_contract_derivatives(X, imag, T, v)``: the
    same for a complex operator on its stacked real rows.
``contract_gradient(X, T, values, v) -> grad`` (optional, real operators)
    ``grad c(t_i) = sum_j v_j d phi(t_i)(x_j) / d t_i`` (m, n_dims) from the
    values ``values[j, i] = phi(t_i)(x_j)`` alone (linear in them): the
    default solver's flow steps then evaluate values only.
    ``stacked_contract_gradient(X, imag, T, values, v)``: the same for a
    complex operator on its stacked real rows.
``grid_factors(X, axes) -> [F_1, ..., F_d]`` (optional)
    For a separable operator, ``phi(t)(x_j) = prod_k F_k[j, i_k]`` at the
    points ``t = (axes[0][i_1], ..., axes[d-1][i_d])`` of the tensor grid of
    the 1-D arrays ``axes``, ``F_k`` of shape (n_samples, len(axes[k])),
    real or complex (then ``A`` is that product, its real and imaginary
    parts the stacked rows): the certificate on a fine grid becomes a
    tensor contraction (:class:`~sklearn_meanfield._sliding.CertificateGrid`;
    over the distinct coordinates of the samples when ``F_k[j]`` depends on
    ``x_jk`` alone and they are few, as on an image).
``tensor_values : bool`` (default True)
    With ``grid_factors``: values on a tensor grid (the covering grid of the
    initial particles) are computed from the factors, ``n sum_k q_k``
    factor evaluations and ``n prod_k q_k`` products instead of ``n prod_k
    q_k`` evaluations of the operator. False for an operator whose matrix
    costs about as little (the Gaussian kernel: one exponential of a matrix
    product per entry); the flow's first step then takes the correlations
    on the covering grid from the factors, and the values of the particles
    that grow alone.
``grid_factors_by_coordinate : bool`` (default False)
    ``F_k[j]`` of ``grid_factors`` depends on ``x_jk`` alone: the factors
    are then computed at the distinct coordinates only (without it, at
    every sample and compared).

Operators that are not built in have their outputs checked at every call
(shapes, finite values, real unless ``complex_valued``); errors name the
operator. :class:`SpikeUnit` turns an operator into a *unit* of
:mod:`sklearn_meanfield._units`, so that spikes reuse the objective and the
flows of the networks: complex measurements become two real rows each (real
and imaginary parts), so that ``|r|^2 = Re(r)^2 + Im(r)^2`` is an ordinary
squared loss.
"""

import weakref
from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state

from ._units import IsotropicMetric

__all__ = [
    "Box",
    "ForwardOperator",
    "FourierOperator",
    "SpikeUnit",
    "Torus",
    "as_operator",
    "estimate_length_scale",
    "make_spike_unit",
]


def _wrap_difference(D):
    """``D`` modulo 1, in ``[-1/2, 1/2)``."""
    return D - np.floor(D + 0.5)


# -------------------------------------------------------------------- domains
class Torus:
    """The torus ``[0, 1)^n_dims``: positions are wrapped into ``[0, 1)``
    and differences taken modulo 1.

    Parameters
    ----------
    n_dims : int
    """

    periodic = True
    bounded = True

    def __init__(self, n_dims):
        self.n_dims = int(n_dims)
        self.lower = np.zeros(self.n_dims)
        self.upper = np.ones(self.n_dims)

    def __repr__(self):
        return f"Torus(n_dims={self.n_dims})"

    def project(self, T):
        """Positions wrapped into ``[0, 1)`` (in place)."""
        T -= np.floor(T)
        # floor can leave exactly 1.0 for tiny negative inputs
        T[T >= 1.0] = 0.0
        return T

    def differences(self, A, B):
        """``D[i, k] = a_i - b_k`` modulo 1, in ``[-1/2, 1/2)^n_dims``."""
        return _wrap_difference(A[:, None, :] - B[None, :, :])

    def points_per_axis(self, spacing):
        # (capped: the callers compare the grid's size with their budgets
        # in floats, and an uncapped count may not fit an int)
        return np.full(self.n_dims, int(np.clip(np.ceil(1.0 / spacing), 1, 2**31)))

    def axes(self, per_axis):
        """The axes of :meth:`grid`: ``(i + 1/2) / q``, ``i < q``."""
        return [(np.arange(q) + 0.5) / q for q in per_axis]

    def grid(self, per_axis):
        """``q`` points ``(i + 1/2) / q`` per axis."""
        return _mesh(self.axes(per_axis))

    def widened(self, margin):
        return self


class Box:
    """The box ``[lower, upper]`` of ``R^n_dims``.

    Parameters
    ----------
    lower, upper : array-like of shape (n_dims,)
    bounded : bool, default=True
        Positions are kept in the box (clipped). False: the box only says
        where to look for spikes (initial particles, certificate), positions
        are free, as for a kernel ``K(x - t)`` on ``R^n_dims`` whose spikes
        may lie a little outside the samples.
    """

    periodic = False

    def __init__(self, lower, upper, bounded=True):
        self.lower = np.atleast_1d(np.asarray(lower, dtype=float)).copy()
        self.upper = np.atleast_1d(np.asarray(upper, dtype=float)).copy()
        if self.lower.ndim != 1 or self.lower.shape != self.upper.shape:
            raise ValueError(
                "A Box needs lower and upper bounds of the same shape (n_dims,); "
                f"got {self.lower.shape} and {self.upper.shape}."
            )
        if not (np.all(np.isfinite(self.lower)) and np.all(np.isfinite(self.upper))):
            raise ValueError("The bounds of a Box must be finite.")
        if np.any(self.upper < self.lower):
            raise ValueError(
                f"A Box needs lower <= upper; got {self.lower} and {self.upper}."
            )
        self.bounded = bool(bounded)
        self.n_dims = self.lower.shape[0]

    def __repr__(self):
        return (
            f"Box(lower={self.lower.tolist()}, upper={self.upper.tolist()}, "
            f"bounded={self.bounded})"
        )

    def project(self, T):
        """Positions clipped to the box when it is bounded (in place)."""
        if self.bounded:
            np.clip(T, self.lower, self.upper, out=T)
        return T

    def differences(self, A, B):
        return A[:, None, :] - B[None, :, :]

    def points_per_axis(self, spacing):
        q = np.ceil((self.upper - self.lower) / spacing)
        if not self.bounded:
            q += 1
        # capped, as the torus's: a count that may not fit an int (fmax
        # takes 1 for a NaN)
        return np.fmin(np.fmax(q, 1.0), 2.0**31).astype(np.int64)

    def axes(self, per_axis):
        """The axes of :meth:`grid`, one 1-D array per axis."""
        axes = []
        for lo, hi, q in zip(self.lower, self.upper, per_axis, strict=True):
            if self.bounded:
                axes.append(lo + (hi - lo) * (np.arange(q) + 0.5) / q)
            elif q == 1 or hi <= lo:
                axes.append(np.array([(lo + hi) / 2]))
            else:
                axes.append(np.linspace(lo, hi, q))
        return axes

    def grid(self, per_axis):
        """``q`` points per axis: the centres of ``q`` equal cells of a
        bounded box, or ``q`` points spanning ``[lower_k, upper_k]``."""
        return _mesh(self.axes(per_axis))

    def widened(self, margin):
        """The box grown by ``margin`` on every side (itself when bounded:
        no position can be outside)."""
        if self.bounded:
            return self
        return Box(self.lower - margin, self.upper + margin, bounded=False)


def _mesh(axes):
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.column_stack([g.ravel() for g in mesh])


#: most sample arrays whose per-sample quantities are kept
_MAX_SAMPLE_ENTRIES = 32
_SAMPLE_ENTRIES = {}


def _per_samples(X, key, build):
    """``build(X)``, kept between calls for the same read-only ``X``.

    A kernel's quantities that depend on the samples alone (their
    coordinates, products of them) are the same at every call with the
    prepared measurements of a fit, which the solver holds read-only. They
    are kept for an ``X`` that owns its data and is not writeable (its
    values cannot change while it lives), keyed by the object and ``key``
    (a weak reference: the entry is removed once ``X`` is gone); any other
    ``X`` gets ``build(X)`` afresh. At most ``_MAX_SAMPLE_ENTRIES`` entries
    are kept."""
    if X.flags.writeable or not X.flags.owndata:
        return build(X)
    slot = (id(X), key)
    entry = _SAMPLE_ENTRIES.get(slot)
    if entry is not None and entry[0]() is X:
        return entry[1]
    value = build(X)
    if len(_SAMPLE_ENTRIES) >= _MAX_SAMPLE_ENTRIES:
        _SAMPLE_ENTRIES.clear()
    # (the entry goes with X: nothing is kept for an array that is gone)
    _SAMPLE_ENTRIES[slot] = (
        weakref.ref(X, lambda _, s=slot, e=_SAMPLE_ENTRIES: e.pop(s, None)),
        value,
    )
    return value


def tensor_axes(P):
    """The 1-D arrays ``axes`` of which the rows of ``P`` (n, d) are the
    tensor grid ``_mesh(axes)`` (the last axis varying fastest), or None
    when they are not one."""
    n, d = P.shape
    # (a grid starts at its smallest point and ends at its largest)
    if n == 0 or not (
        np.array_equal(P[0], P.min(axis=0)) and np.array_equal(P[-1], P.max(axis=0))
    ):
        return None
    axes = [np.unique(P[:, a]) for a in range(d)]
    size = 1
    for g in axes:
        size *= g.size
    if size == n and np.array_equal(P, _mesh(axes)):
        return axes
    return None


def khatri_rao(factors):
    """The row-wise Kronecker product of the (n, q_k) ``factors``, shape
    (n, q_1 ... q_K), the last factor's column varying fastest: row ``j``
    is ``F_1[j] (x) ... (x) F_K[j]``."""
    out = factors[0]
    for F in factors[1:]:
        out = (out[:, :, None] * F[:, None, :]).reshape(out.shape[0], -1)
    return out


def grid_and_random(domain, n, random_state):
    """A grid of ``floor(n ** (1/d))`` points per axis of ``domain``
    completed by ``n - floor(n ** (1/d))**d`` uniform random points
    (``random_state``: an int, a ``RandomState`` or None, see
    :func:`_random_points`; only used when there are random points)."""
    d = domain.n_dims
    per_axis = int(np.floor(n ** (1 / d) + 1e-9))
    grid = domain.grid([per_axis] * d)
    if grid.shape[0] >= n:
        return grid
    return np.vstack([grid, _random_points(domain, n - grid.shape[0], random_state)])


def _random_points(domain, n, random_state):
    """``n`` uniform random points of ``domain``'s box: from
    ``np.random.default_rng(random_state)`` for an int (seeding numpy's
    legacy ``RandomState`` costs about ten times as much: a sizeable part
    of a small fit), else from ``check_random_state(random_state)`` (None:
    numpy's global generator; a ``RandomState``: drawn from it)."""
    size = (n, domain.n_dims)
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        u = np.random.default_rng(random_state).random(size)
    else:
        u = check_random_state(random_state).uniform(size=size)
    return domain.lower + (domain.upper - domain.lower) * u


def _as_domain(domain, name):
    if isinstance(domain, (Torus, Box)):
        return domain
    try:
        lower, upper = domain
    except (TypeError, ValueError):
        raise TypeError(
            f"{name}.domain(X) must return a Torus, a Box or a pair (lower, "
            f"upper); got {domain!r}."
        ) from None
    return Box(lower, upper, bounded=True)


# ------------------------------------------------------------------ operators
class ForwardOperator:
    """Base class of forward operators (see the module docstring).

    Subclasses implement ``matrix_and_gradient(X, T)``; the defaults here
    are a real operator, no preparation of ``X``, the bounding box of ``X``
    as the (unbounded) domain and a length scale estimated from the
    operator.
    """

    complex_valued = False
    length_scale = None

    def prepare(self, X):
        return X

    def domain(self, X):
        return Box(X.min(axis=0), X.max(axis=0), bounded=False)

    def matrix_and_gradient(self, X, T):  # pragma: no cover - abstract
        raise NotImplementedError


class FourierOperator(ForwardOperator):
    """Fourier coefficients of spikes on the torus ``[0, 1)^n_dims``.

    A spike at ``t`` contributes ``phi(t)(k) = exp(-2 i pi <k, t>)`` to the
    coefficient of the integer frequency vector ``k`` (a row of ``X``,
    shape (n_samples, n_dims)), so that

        y_k = sum_i a_i exp(-2 i pi <k, t_i>),

    and ``d phi / d t = -2 i pi k phi``. For ``|k|_inf <= fc`` this is the
    Dirichlet kernel's measurement in the Fourier domain (Candes &
    Fernandez-Granda, 2014).
    """

    complex_valued = True
    grid_factors_by_coordinate = True
    _trusted = True

    def __repr__(self):
        return "FourierOperator()"

    def prepare(self, X):
        """``X`` rounded to integers; ``ValueError`` if it is not integer."""
        X = np.asarray(X, dtype=float)
        K = np.round(X)
        bad = np.abs(X - K) > 1e-9 * np.maximum(1.0, np.abs(X))
        if np.any(bad):
            j, k = np.argwhere(bad)[0]
            raise ValueError(
                "kernel='fourier' reads X as integer frequency vectors; "
                f"X[{j}, {k}] = {X[j, k]!r} is not an integer."
            )
        return K

    def domain(self, X):
        return Torus(X.shape[1])

    def correlation_curvature(self, X, s):
        """The curvature of the correlation of two columns, the same at every
        position (the length scale's estimate reads it instead of probing
        the operator).

        With ``|phi(t)(k)| = 1`` and ``d phi / d t = -2 i pi k phi``, the
        correlation of the columns at ``t`` and ``t'`` is ``sum_j s_j
        cos(2 pi <k_j, t - t'>) / sum_j s_j = 1 - (1/2) h^T M h + o(h^2)``
        (``h = t' - t``), with::

            M = 4 pi^2 sum_j s_j k_j k_j^T / sum_j s_j.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_dims)
            The frequency vectors (as :meth:`prepare` returns them).
        s : ndarray of shape (n_samples,)
            Their weights.

        Returns
        -------
        M : ndarray of shape (n_dims, n_dims)
        """
        X = np.asarray(X, dtype=float)
        return (4 * np.pi**2 / float(np.sum(s))) * ((X.T * s) @ X)

    def _exponentials(self, X, T, h=None):
        """``E[j, i] = exp(-2 i pi <k_j, t_i>)`` for the first ``h`` rows of
        ``X`` (all of them: None) as a product over the axes of rows of the
        tables ``exp(-2 i pi k t_ia)`` over the frequencies ``k`` of each
        axis (all integers from the smallest to the largest when that range
        is at most ``4 n``, else the distinct ones): no trigonometric
        function of an (n, m) array."""
        E = None
        for a, (k, rows) in enumerate(self._axis_tables(X, h)):
            table = np.exp((-2j * np.pi) * np.outer(k, T[:, a]))
            E = table[rows] if E is None else np.multiply(E, table[rows], out=E)
        return E

    @staticmethod
    def _axis_tables(X, h):
        """Per axis, the frequencies ``k`` of the tables of
        :meth:`_exponentials` and the table row of each measurement (kept
        for a read-only ``X``)."""

        def build(X):
            Xh = X if h is None else X[:h]
            n = Xh.shape[0]
            tables = []
            for a in range(Xh.shape[1]):
                x = Xh[:, a]
                lo, hi = (x.min(), x.max()) if n else (0.0, 0.0)
                if hi - lo < 4 * n:
                    k = np.arange(lo, hi + 1)
                    rows = (x - lo).astype(np.intp)
                else:
                    k, rows = np.unique(x, return_inverse=True)
                    rows = rows.ravel()
                tables.append((k, rows))
            return tables

        return _per_samples(X, ("fourier-tables", h), build)

    @staticmethod
    def _halves(X, imag):
        """``n`` if the stacked rows are ``[X0, X0]`` with the imaginary
        flags ``[0, ..., 1, ...]`` (as :meth:`SpikeUnit.prepare` makes
        them), else None (kept for a read-only ``X`` and the same
        ``imag``)."""
        memo = _per_samples(X, ("fourier-halves",), lambda X: {})
        if memo.get("imag") is imag:
            return memo["h"]
        h = X.shape[0] // 2
        if not (
            2 * h == X.shape[0]
            and not imag[:h].any()
            and imag[h:].all()
            and np.array_equal(X[:h], X[h:])
        ):
            h = None
        if not imag.flags.writeable:
            # (the memo holds imag: its identity cannot be reused)
            memo.update(imag=imag, h=h)
        return h

    def stacked_matrix(self, X, imag, T):
        """The rows ``Re E`` (``imag`` False) and ``Im E`` alone, the
        exponentials computed once per measurement."""
        h = self._halves(X, imag)
        if h is None:
            F = self._exponentials(X, T)
            return np.where(imag[:, None], F.imag, F.real)
        E = self._exponentials(X, T, h)
        return np.concatenate([E.real, E.imag])

    def grid_factors(self, X, axes):
        """Per-axis factors of ``exp(-2 i pi <k_j, t>)`` on the tensor grid
        of ``axes``: ``F_a[j, i] = exp(-2 i pi k_ja axes[a][i])``."""
        return [
            np.exp((-2j * np.pi) * np.outer(X[:, a], np.asarray(g, dtype=float)))
            for a, g in enumerate(axes)
        ]

    def matrix_and_gradient(self, X, T):
        E = self._exponentials(X, T)
        dE = np.empty((*E.shape, X.shape[1]), dtype=complex)
        for a in range(X.shape[1]):
            np.multiply(E, (-2j * np.pi) * X[:, a : a + 1], out=dE[:, :, a])
        return E, dE

    def stacked_contract_gradient(self, X, imag, T, values, v):
        """``sum_j v_j d A_j(t_i) / d t_i`` (m, n_dims) from the rows ``A``
        of :meth:`stacked_matrix` at ``T`` (``values``, (2 h, m) when the
        rows are ``[Re E; Im E]`` of the same ``h`` frequencies): their
        gradients are ``2 pi k Im E`` and ``-2 pi k Re E``, so the sum is
        ``sum_{j < h} 2 pi k_j (v_j Im E_j - v_{h+j} Re E_j)``. (Other row
        orders: from :meth:`stacked_matrix_and_gradient`.)"""
        h = self._halves(X, imag)
        if h is None:
            return np.einsum(
                "j,jik->ik", v, self.stacked_matrix_and_gradient(X, imag, T)[1]
            )
        k = (2 * np.pi) * X[:h]
        return ((k * v[:h, None]).T @ values[h:] - (k * v[h:, None]).T @ values[:h]).T

    def stacked_contract_derivatives(self, X, imag, T, v):
        """``c_i = sum_j v_j A_j(t_i)`` over the stacked rows ``A`` of
        :meth:`stacked_matrix_and_gradient`, its gradient (m, n_dims) and
        Hessian (m, n_dims, n_dims): with ``F_j = c_j E_j`` (``c_j = 1`` on
        real rows, ``-i`` on imaginary rows), ``A_j = Re F_j``, ``grad A_j =
        2 pi k_j Im F_j`` and ``Hess A_j = -4 pi^2 k_j k_j^T Re F_j``, so

            grad c = 2 pi sum_j v_j k_j Im F_j,
            Hess c = -4 pi^2 sum_j v_j k_j k_j^T A_j,

        one matrix product each (the exponentials once per measurement when
        the rows are ``[Re E; Im E]``)."""
        h = self._halves(X, imag)
        if h is not None:
            E = self._exponentials(X, T, h)
            A = np.concatenate([E.real, E.imag])
            B = np.concatenate([E.imag, -E.real])  # Im F
        else:
            F = self._exponentials(X, T)
            F[imag] *= -1j
            A, B = np.ascontiguousarray(F.real), np.ascontiguousarray(F.imag)
        n, d = X.shape
        kv = X * v[:, None]
        g = (2 * np.pi) * (kv.T @ B).T
        kkv = (X[:, :, None] * kv[:, None, :]).reshape(n, d * d)
        H = (-4 * np.pi**2) * (kkv.T @ A)
        return v @ A, g, H.T.reshape(-1, d, d)

    def stacked_matrix_and_gradient(self, X, imag, T):
        """Rows ``Re E`` and ``Im E = Re(-i E)``: with ``F = c_j E``, ``c_j
        = 1`` on real rows and ``-i`` on imaginary rows, the matrix is ``Re
        F`` and its gradient ``Re(-2 i pi k F) = 2 pi k Im F``."""
        h = self._halves(X, imag)
        if h is not None:
            # the measurements once: Re E, Im E and their gradients 2 pi k
            # Im E, -2 pi k Re E
            E = self._exponentials(X, T, h)
            A = np.concatenate([E.real, E.imag])
            dA = np.empty((*A.shape, X.shape[1]))
            for a in range(X.shape[1]):
                k = (2 * np.pi) * X[:h, a : a + 1]
                np.multiply(E.imag, k, out=dA[:h, :, a])
                np.multiply(E.real, -k, out=dA[h:, :, a])
            return A, dA
        F = self._exponentials(X, T)
        F[imag] *= -1j
        A = np.ascontiguousarray(F.real)
        Fi = F.imag
        dA = np.empty((*A.shape, X.shape[1]))
        for a in range(X.shape[1]):
            np.multiply(Fi, (2 * np.pi) * X[:, a : a + 1], out=dA[:, :, a])
        return A, dA


class _CheckedOperator:
    """A user's operator whose outputs are checked at every call.

    The optional members of the contract (see the module docstring) that
    the operator has are forwarded, their outputs checked as well (shapes,
    finite values, real where the contract says so)."""

    #: the optional methods forwarded, and the wrapper of each
    _HOOKS = {
        "stacked_matrix_and_gradient": "_stacked",
        "matrix": "_matrix",
        "stacked_matrix": "_stacked_matrix",
        "contract_gradient": "_contract_gradient",
        "stacked_contract_gradient": "_stacked_contract_gradient",
        "contract_derivatives": "_contract_derivatives",
        "stacked_contract_derivatives": "_stacked_contract_derivatives",
        "grid_factors": "_grid_factors",
    }

    def __init__(self, operator):
        self.operator = operator
        self.name = type(operator).__name__
        self.complex_valued = bool(getattr(operator, "complex_valued", False))
        self.length_scale = getattr(operator, "length_scale", None)
        for hook, wrapper in self._HOOKS.items():
            if callable(getattr(operator, hook, None)):
                setattr(self, hook, getattr(self, wrapper))
        for flag in ("tensor_values", "grid_factors_by_coordinate"):
            if hasattr(operator, flag):
                setattr(self, flag, bool(getattr(operator, flag)))

    def __repr__(self):
        return repr(self.operator)

    def prepare(self, X):
        prepare = getattr(self.operator, "prepare", None)
        return X if prepare is None else np.asarray(prepare(X), dtype=float)

    def domain(self, X):
        domain = getattr(self.operator, "domain", None)
        if domain is None:
            return ForwardOperator.domain(self, X)
        return _as_domain(domain(X), self.name)

    def matrix_and_gradient(self, X, T):
        A, dA = self.operator.matrix_and_gradient(X, T)
        return self._check(A, dA, X, T, "matrix_and_gradient", self.complex_valued)

    def _stacked(self, X, imag, T):
        A, dA = self.operator.stacked_matrix_and_gradient(X, imag, T)
        return self._check(A, dA, X, T, "stacked_matrix_and_gradient", False)

    def _matrix(self, X, T):
        A = self.operator.matrix(X, T)
        return self._array(A, (X.shape[0], T.shape[0]), "matrix", "matrix", T)

    def _stacked_matrix(self, X, imag, T):
        A = self.operator.stacked_matrix(X, imag, T)
        return self._array(A, (X.shape[0], T.shape[0]), "stacked_matrix", "matrix", T)

    def _contract_gradient(self, X, T, values, v):
        g = self.operator.contract_gradient(X, T, values, v)
        return self._array(g, T.shape, "contract_gradient", "gradient", T)

    def _stacked_contract_gradient(self, X, imag, T, values, v):
        g = self.operator.stacked_contract_gradient(X, imag, T, values, v)
        return self._array(g, T.shape, "stacked_contract_gradient", "gradient", T)

    def _contract_derivatives(self, X, T, v):
        out = self.operator.contract_derivatives(X, T, v)
        return self._derivatives(out, T, "contract_derivatives")

    def _stacked_contract_derivatives(self, X, imag, T, v):
        out = self.operator.stacked_contract_derivatives(X, imag, T, v)
        return self._derivatives(out, T, "stacked_contract_derivatives")

    def _derivatives(self, out, T, method):
        m, d = T.shape
        try:
            c, g, H = out
        except (TypeError, ValueError):
            raise ValueError(
                f"{self.name}.{method} must return (values, gradients, "
                f"hessians); got {type(out).__name__}."
            ) from None
        return (
            self._array(c, (m,), method, "values array", T),
            self._array(g, (m, d), method, "gradient array", T),
            self._array(H, (m, d, d), method, "Hessian array", T),
        )

    def _grid_factors(self, X, axes):
        F = list(self.operator.grid_factors(X, axes))
        if len(F) != len(axes):
            raise ValueError(
                f"{self.name}.grid_factors(X, axes) returned {len(F)} factors "
                f"for {len(axes)} axes; expected one per axis."
            )
        return [
            self._array(
                f,
                (X.shape[0], len(axis)),
                "grid_factors",
                f"factor (axis {k})",
                None,
                self.complex_valued,
            )
            for k, (f, axis) in enumerate(zip(F, axes, strict=True))
        ]

    def _array(self, a, shape, method, what, T, complex_ok=False, hint=None):
        """``a`` as an array of ``shape``, finite (real unless
        ``complex_ok``), or a ValueError naming the operator's ``method``
        and ``what`` it returned (``hint``: what to do about complex
        values)."""
        a = np.asarray(a)
        where = f"{self.name}.{method}"
        if a.shape != tuple(shape):
            raise ValueError(
                f"{where} returned a {what} of shape {a.shape}; expected "
                f"{tuple(shape)}."
            )
        if np.iscomplexobj(a) and not complex_ok:
            raise ValueError(
                f"{where} returned a complex {what}; {hint or 'it must be real'}."
            )
        if not (np.issubdtype(a.dtype, np.number) and np.isfinite(a).all()):
            at = (
                ""
                if T is None
                else f" (positions in [{T.min(initial=0):.3g}, {T.max(initial=0):.3g}])"
            )
            raise ValueError(
                f"{where} returned a {what} with NaN, infinite or non-numeric "
                f"values{at}; check the operator and its domain."
            )
        return a if np.iscomplexobj(a) else a.astype(float, copy=False)

    def _check(self, A, dA, X, T, method, complex_ok):
        where = f"{self.name}.{method}(X, T)"
        A, dA = np.asarray(A), np.asarray(dA)
        n, (m, d) = X.shape[0], T.shape
        if A.shape != (n, m) or dA.shape != (n, m, d):
            raise ValueError(
                f"{where} returned a matrix of shape {A.shape} and a gradient of "
                f"shape {dA.shape} for {n} samples and {m} positions in {d} "
                f"dimensions; expected {(n, m)} and {(n, m, d)}."
            )
        hint = "set complex_valued = True on the operator for complex measurements"
        for name, a in (("matrix", A), ("gradient", dA)):
            self._array(a, a.shape, f"{method}(X, T)", name, T, complex_ok, hint)
        dtype = complex if complex_ok and np.iscomplexobj(A) else float
        return A.astype(dtype, copy=False), dA.astype(dtype, copy=False)


def as_operator(kernel):
    """A forward operator from a built-in operator, a user's operator (its
    outputs then checked) or a kernel object of differences ``K(x - t)``."""
    from ._kernels import ConvolutionKernel, KernelAdapter

    if isinstance(kernel, ConvolutionKernel) or getattr(kernel, "_trusted", False):
        return kernel
    if callable(getattr(kernel, "matrix_and_gradient", None)):
        return _CheckedOperator(kernel)
    return KernelAdapter(kernel)


# ------------------------------------------------------------------------ unit
def _stacked_inputs(Xp):
    """The measurements ``X`` and the imaginary-row flags ``imag`` of the
    prepared rows ``Xp = [X, imag]`` of a complex operator (kept for a
    read-only ``Xp``: the same two read-only arrays at every call of a fit,
    on which an operator may keep its own per-sample quantities)."""
    return _per_samples(Xp, ("stacked",), _split_stacked)


def _split_stacked(Xp):
    X = np.array(Xp[:, :-1])
    imag = Xp[:, -1] > 0
    if not Xp.flags.writeable:
        X.flags.writeable = False
        imag.flags.writeable = False
    return X, imag


class SpikeUnit:
    """A spike seen through a forward operator: ``phi(t)(x)``.

    Follows the unit contract of :mod:`sklearn_meanfield._units`, the
    particle positions being spike positions ``t`` in the operator's domain.
    For a complex operator the prepared inputs hold every measurement twice,
    ``[X, 0]`` (real part) then ``[X, 1]`` (imaginary part); :meth:`stack`
    puts targets and weights in the same order.

    Parameters
    ----------
    operator : forward operator
    length_scale : float
        The resolution ``l``; the position metric is ``l**2``.
    domain : Torus or Box
    """

    homogeneous = False

    def __init__(self, operator, length_scale, domain, scale=1.0):
        self.operator = operator
        self.length_scale = float(length_scale)
        self.domain = domain
        self.periodic = domain.periodic
        self.complex_valued = bool(getattr(operator, "complex_valued", False))
        self.scale = float(scale)
        # the last covering grid and its axes (None: not a tensor grid), see
        # covering_grid and grid_values
        self._covering = None
        # (X, a copy of X, prepare(X)) of a preparation to serve the next
        # call of prepare (once) if X is unchanged
        self._prepared = None

    def rescaled(self, scale):
        """The same unit with ``phi`` multiplied by ``scale``."""
        return SpikeUnit(self.operator, self.length_scale, self.domain, scale)

    def probe_points(self):
        """Where the operator is probed (length scale, column norm): a grid
        of 5 points per axis of the domain up to 3 dimensions, beyond that
        125 points of a coarse grid and at random (fixed seed)."""
        d = self.n_dims
        if d <= 3:
            return self.project(self.domain.grid([5] * d))
        return self.project(grid_and_random(self.domain, 125, 0))

    def column_norm(self, Xp, s):
        """The largest weighted norm ``(sum_j s_j phi(t)(x_j)^2)^(1/2)`` of a
        column over the probe points (values only, no gradients; from the
        operator's per-axis factors on the probe grid when it has
        ``grid_factors``, see :meth:`grid_values`)."""
        d = self.n_dims
        if 2 <= d <= 3 and callable(getattr(self.operator, "grid_factors", None)):
            # (the probe points are the grid of these axes: no projection
            # moves a grid point, no need to recognise the grid)
            axes = self.domain.axes([5] * d)
            if type(self)._tensor_values is not SpikeUnit._tensor_values:
                At = np.empty((5**d, Xp.shape[0]))
                self._tensor_values(Xp, axes, At)
                return float(np.sqrt(np.max(np.square(At) @ s)))
            # |phi(t)(x_j)|^2 = prod_k |F_k[j, i_k]|^2: the squared norms on
            # the whole grid are (s G_1)^T (G_2 * ... * G_d), G_k = |F_k|^2
            # and * the row-wise Kronecker product, as CertificateGrid.values
            # (a complex operator's real and imaginary rows together: |phi|^2)
            n = Xp.shape[0] // 2 if self.complex_valued else Xp.shape[0]
            X = Xp[:n, :-1] if self.complex_valued else Xp
            G = [
                np.square(np.abs(f) if np.iscomplexobj(f) else f)
                for f in self.operator.grid_factors(X, axes)
            ]
            norms2 = (s[:n] * G[0].T) @ khatri_rao(G[1:])
            return float(abs(self.scale) * np.sqrt(norms2.max()))
        A = self.values(Xp, self.probe_points())
        return float(np.sqrt(np.max(s @ np.square(A))))

    @property
    def n_dims(self):
        return self.domain.n_dims

    # ----------------------------------------------------------- measurements
    def prepare(self, X):
        """The operator's prepared measurements (a float64 copy), twice for a
        complex operator (real rows, then imaginary rows), read-only: the
        same array at every call of a fit, whose per-sample quantities an
        operator may keep (see :func:`~sklearn_meanfield._operators._per_samples`)."""
        kept, self._prepared = self._prepared, None
        if kept is not None and kept[0] is X and np.array_equal(kept[1], X):
            return kept[2]
        prepare = getattr(self.operator, "prepare", None)
        X = np.array(X if prepare is None else prepare(X), dtype=np.float64)
        if self.complex_valued:
            n = X.shape[0]
            part = np.repeat([0.0, 1.0], n)[:, None]
            X = np.hstack([np.vstack([X, X]), part])
        X.flags.writeable = False
        return X

    def stack(self, v):
        """Targets or weights in the row order of :meth:`prepare`: ``[Re v,
        Im v]`` for a complex operator (weights: ``[s, s]``)."""
        if self.complex_valued:
            return np.concatenate([np.real(v), np.imag(v)]).astype(float)
        return np.asarray(v, dtype=float)

    def stack_weights(self, s):
        return np.concatenate([s, s]) if self.complex_valued else s

    def unstack(self, f):
        """Predictions of the rows of :meth:`prepare` as measurements
        (complex for a complex operator)."""
        if self.complex_valued:
            n = f.shape[0] // 2
            return f[:n] + 1j * f[n:]
        return f

    # -------------------------------------------------------------- the unit
    def forward(self, Xp, positions, out=None):
        """``Phi[j, i] = phi(t_i)(x_j)``; the cache holds its gradient in
        ``t_i`` (``out``, a work array offered by the objective, is not
        used)."""
        return self.pairwise(Xp, positions)

    def pairwise(self, Xp, positions):
        """``phi(t_i)(x_j)`` (n, m) and its gradient in ``t_i`` (n, m,
        n_dims), real (rows of real or imaginary parts), times ``scale``."""
        if not self.complex_valued:
            A, dA = self.operator.matrix_and_gradient(Xp, positions)
        else:
            X, imag = _stacked_inputs(Xp)
            stacked = getattr(self.operator, "stacked_matrix_and_gradient", None)
            if callable(stacked):
                A, dA = stacked(X, imag, positions)
            else:
                A, dA = self.operator.matrix_and_gradient(X, positions)
                A = np.where(imag[:, None], A.imag, A.real)
                dA = np.where(imag[:, None, None], dA.imag, dA.real)
        if self.scale != 1.0:
            A *= self.scale
            dA *= self.scale
        return A, dA

    def values(self, Xp, positions):
        """``phi(t_i)(x_j)`` alone (n, m), times ``scale``: by the
        operator's optional ``matrix(X, T)`` when it has one (real
        operators; complex ones: ``stacked_matrix(X, imag, T)``, the real
        and imaginary rows), else the first output of :meth:`pairwise`."""
        A = None
        if not self.complex_valued:
            matrix = getattr(self.operator, "matrix", None)
            if callable(matrix):
                A = np.asarray(matrix(Xp, positions), dtype=float)
        else:
            stacked = getattr(self.operator, "stacked_matrix", None)
            if callable(stacked):
                A = np.asarray(stacked(*_stacked_inputs(Xp), positions))
        if A is None:
            return self.pairwise(Xp, positions)[0]
        if self.scale == 1.0:
            return A
        if type(self.operator) in _fresh_matrix_types():
            # (a new array: scaled in place, no second (n, m) array)
            A *= self.scale
            return A
        return A * self.scale

    def grid_values(self, Xp, positions):
        """:meth:`values`; when ``positions`` are a tensor grid
        (:func:`tensor_axes`) and the operator has ``grid_factors`` (and
        ``n_dims >= 2``), from the per-axis factors: at the grid point ``t =
        (g_1[i_1], ..., g_d[i_d])``

            phi(t)(x_j) = prod_k F_k[j, i_k],

        a row-wise Kronecker product of the factors ``F_k`` (n_samples,
        q_k): ``n sum_k q_k`` factor evaluations and ``n prod_k q_k``
        products instead of ``n prod_k q_k`` kernel evaluations. (The result
        is then the transpose of a C-ordered (n_points, n_rows) array: the
        products run along the samples.)"""
        factors = getattr(self.operator, "grid_factors", None)
        axes = None
        if (
            callable(factors)
            and self.n_dims >= 2
            and getattr(self.operator, "tensor_values", True)
        ):
            known = self.covering_axes(positions)
            if known is None:
                axes = tensor_axes(positions)
            elif known[1] == positions.shape[0]:
                # (the covering grid, a tensor grid of known axes)
                axes = known[0]
        if axes is None:
            return self.values(Xp, positions)
        At = np.empty((positions.shape[0], Xp.shape[0]))
        self._tensor_values(Xp, axes, At)
        return At.T

    def covering_axes(self, positions):
        """``(axes, n_grid)`` if ``positions`` are the last
        :meth:`covering_grid`, its first ``n_grid`` points the tensor grid
        of ``axes`` (the others random), for an operator with
        ``grid_factors``; else None."""
        known = self._covering
        if (
            known is None
            or known[1] is None
            or not callable(getattr(self.operator, "grid_factors", None))
            or known[0].shape != positions.shape
            or not np.array_equal(known[0], positions)
        ):
            return None
        return known[1], known[2]

    def grid_correlations(self, Xp, axes, v):
        """``c(t) = sum_j v_j phi(t)(x_j)`` at the points of the tensor grid
        of ``axes`` (in the order of :func:`_mesh`), times ``scale``, from the
        operator's per-axis factors ``F_k``:

            c[i_1, ..., i_d] = sum_j v_j F_1[j, i_1] ... F_d[j, i_d],

        the row-wise Kronecker product of ``v F_1, F_2, ..., F_{d-1}``
        times ``F_d``: no (n_samples, n_points) array."""
        X = Xp[: Xp.shape[0] // 2, :-1] if self.complex_valued else Xp
        F = [np.asarray(f) for f in self.operator.grid_factors(X, axes)]
        if self.complex_valued:
            # rows [Re E; Im E]: sum_j v_j A_j = Re sum_j (v_re - i v_im) E_j
            h = Xp.shape[0] // 2
            v = v[:h] - 1j * v[h:]
        n = X.shape[0]
        M = v[:, None] * F[0]
        for f in F[1:-1]:
            M = (M[:, :, None] * f[:, None, :]).reshape(n, -1)
        c = M.T @ F[-1] if len(F) > 1 else M.sum(axis=0)
        return np.ascontiguousarray(c.real).ravel() * self.scale

    def _tensor_values(self, Xp, axes, out):
        """``out[i, j] = phi(t_i)(x_j)`` times ``scale`` at the points
        ``t_i`` of the tensor grid of ``axes`` (the last axis varying
        fastest, as :func:`_mesh`), ``out`` C-ordered (prod_k q_k, n_rows),
        from the operator's ``grid_factors`` (real and imaginary parts of
        the samples side by side for a complex operator)."""
        X = Xp[: Xp.shape[0] // 2, :-1] if self.complex_valued else Xp
        # the factors transposed, (q_k, n): the products along the samples
        F = [np.asarray(f).T for f in self.operator.grid_factors(X, axes)]
        real = not any(np.iscomplexobj(f) for f in F)
        n = F[0].shape[1]
        K = np.array(F[0], order="C")
        if self.scale != 1.0:
            K *= self.scale
        for i, f in enumerate(F[1:], start=2):
            shape = (K.shape[0], f.shape[0], n)
            f = np.ascontiguousarray(f)
            if real and i == len(F):
                # (the last product straight into ``out``)
                np.multiply(K[:, None, :], f[None, :, :], out=out.reshape(shape))
                return
            K = (K[:, None, :] * f[None, :, :]).reshape(-1, n)
        if self.complex_valued:
            out[:, :n], out[:, n:] = K.real, K.imag
        else:
            out[...] = K.real

    @property
    def gradients_from_values(self):
        """Whether :meth:`gradient_from_values` is available: the operator
        has ``contract_gradient(X, T, values, v)`` (a real operator) or
        ``stacked_contract_gradient(X, imag, T, values, v)`` (a complex one,
        on its real rows)."""
        name = (
            "stacked_contract_gradient" if self.complex_valued else "contract_gradient"
        )
        return callable(getattr(self.operator, name, None))

    def gradient_from_values(self, Xp, positions, values, v):
        """``grad c(t_i) = sum_j v_j d phi(t_i)(x_j) / d t_i`` (m, n_dims)
        from the values ``phi(t_i)(x_j)`` (n, m) at ``positions``, without
        the gradients of the columns (see :attr:`gradients_from_values`).
        The result is linear in ``values``: values times ``scale`` give the
        gradient times ``scale``."""
        if self.complex_valued:
            return self.operator.stacked_contract_gradient(
                *_stacked_inputs(Xp), positions, values, v
            )
        return self.operator.contract_gradient(Xp, positions, values, v)

    @property
    def contracts_derivatives(self):
        """Whether :meth:`contract_derivatives` is available (a real
        operator with a method ``contract_derivatives(X, T, v)``, a complex
        one with ``stacked_contract_derivatives(X, imag, T, v)``)."""
        name = (
            "stacked_contract_derivatives"
            if self.complex_valued
            else "contract_derivatives"
        )
        return callable(getattr(self.operator, name, None))

    def contract_derivatives(self, Xp, positions, v):
        """``c(t_i) = sum_j v_j phi(t_i)(x_j)``, its gradient (m, n_dims)
        and Hessian (m, n_dims, n_dims), times ``scale``, by the operator's
        ``contract_derivatives`` (see :attr:`contracts_derivatives`)."""
        if self.complex_valued:
            c, g, H = self.operator.stacked_contract_derivatives(
                *_stacked_inputs(Xp), positions, v
            )
        else:
            c, g, H = self.operator.contract_derivatives(Xp, positions, v)
        c, g, H = (np.asarray(x, dtype=float) for x in (c, g, H))
        if self.scale != 1.0:
            return c * self.scale, g * self.scale, H * self.scale
        return c, g, H

    def centred(self, s):
        """The unit of ``phi(t)(x_j) - sum_k s_k phi(t)(x_k)`` (``s`` sums
        to 1): the BLASSO with an unpenalised background ``b`` is, with
        ``b`` eliminated, the BLASSO of the centred ``y`` and this unit."""
        return CentredSpikeUnit(self, s)

    def backward(self, Xp, positions, cache, C):
        """``grad[i] = sum_j C[j, i] d phi(t_i)(x_j) / d t_i``."""
        return np.einsum("ji,jik->ik", C, cache)

    def metric(self, Xp=None, sample_weight=None):
        """The position step is in units of ``length_scale**2``."""
        return IsotropicMetric(self.length_scale**2)

    # ------------------------------------------------------------ the domain
    def project(self, positions):
        """Positions kept in the domain (in place)."""
        return self.domain.project(positions)

    def differences(self, A, B):
        """``D[i, k] = a_i - b_k`` (periodic on the torus), (n_a, n_b, n_dims)."""
        return self.domain.differences(A, B)

    def covering_grid(self, n_particles, random_state):
        """Initial spike positions: a uniform grid covering the domain,
        completed at random.

        With ``n_particles=None``, one point per length scale along each
        axis; if that is more than ``MAX_AUTO_PARTICLES`` (256) points (high
        dimension, or a resolution fine for the domain), 256 points. ``n``
        points are a grid of ``floor(n ** (1/d))`` points per axis and
        ``n - floor(n ** (1/d))**d`` uniform random points.
        """
        n = n_particles
        axes = None
        if n is None:
            q = self.domain.points_per_axis(self.length_scale)
            if np.prod(q.astype(float)) <= MAX_AUTO_PARTICLES:
                axes = self.domain.axes(q)
            else:
                n = MAX_AUTO_PARTICLES
        if axes is None:
            # grid_and_random: a grid of these axes, then random points
            d = self.n_dims
            per_axis = int(np.floor(n ** (1 / d) + 1e-9))
            axes = self.domain.axes([per_axis] * d)
            mesh = _mesh(axes)
            n_random = n - mesh.shape[0]
            if n_random > 0:
                extra = _random_points(self.domain, n_random, random_state)
                points = np.vstack([mesh, extra])
            else:
                points = mesh.copy()
        else:
            mesh = _mesh(axes)
            points = mesh.copy()
        points = self.project(points)
        n_grid = mesh.shape[0]
        if not np.array_equal(points[:n_grid], mesh):
            axes = None
        # (remembered with the axes of its first n_grid points when they are
        # a tensor grid: grid_values and covering_axes then know it)
        known = points.copy()
        known.flags.writeable = False
        self._covering = (known, axes, n_grid)
        return points

    def covers(self, n_particles):
        """Whether :meth:`covering_grid` gives at least one particle per
        length scale along each axis (the covering condition of the
        initialisation)."""
        q = self.domain.points_per_axis(self.length_scale)
        needed = np.prod(q.astype(float))
        if n_particles is None:
            return needed <= MAX_AUTO_PARTICLES
        return n_particles >= needed

    def certificate_points(self):
        """The points where ``|eta|`` is first evaluated: a grid of spacing
        ``length_scale / 2`` (2 length scales beyond an unbounded box) if
        that is at most ``MAX_CERTIFICATE_POINTS`` (4096) points, else 512
        points of a coarse grid and at random."""
        domain = self.domain.widened(2 * self.length_scale)
        q = domain.points_per_axis(self.length_scale / 2)
        if np.prod(q.astype(float)) <= MAX_CERTIFICATE_POINTS:
            return domain.grid(q)
        # In high dimension a fine grid is out of reach, and a few random
        # points are as good as many: a coarse grid and random points, 512 in
        # all (fixed seed: the same candidates at every check); the particles
        # and local ascent do the rest.
        return self.project(grid_and_random(domain, 512, 0))

    def input_points(self, Xp):
        """The sample locations as candidate positions when the
        measurements live in the position space (a kernel ``K(x - t)``),
        else none."""
        if self.complex_valued or Xp.shape[1] != self.n_dims:
            return Xp[:0, : self.n_dims]
        return self.project(Xp.copy())


class CentredSpikeUnit(SpikeUnit):
    """A :class:`SpikeUnit` whose columns have their weighted mean removed,
    ``phi_c(t)(x_j) = phi(t)(x_j) - sum_k s_k phi(t)(x_k)``, gradients
    likewise (see :meth:`SpikeUnit.centred`). Certificates of a residual
    that sums to zero against ``s`` are the same for both units, so the
    operator's grid factors still serve."""

    def __init__(self, unit, s):
        super().__init__(unit.operator, unit.length_scale, unit.domain, unit.scale)
        self.s = np.asarray(s, dtype=float)
        self._covering = unit._covering

    def rescaled(self, scale):
        return CentredSpikeUnit(SpikeUnit.rescaled(self, scale), self.s)

    def pairwise(self, Xp, positions):
        A, dA = super().pairwise(Xp, positions)
        return A - self.s @ A, dA - np.einsum("j,jik->ik", self.s, dA)

    def values(self, Xp, positions):
        A = super().values(Xp, positions)
        return A - self.s @ A

    def _tensor_values(self, Xp, axes, out):
        super()._tensor_values(Xp, axes, out)
        out -= (out @ self.s)[:, None]

    def grid_correlations(self, Xp, axes, v):
        return super().grid_correlations(Xp, axes, v - self.s * v.sum())

    @property
    def gradients_from_values(self):
        # (the centred values lose the columns' means, which the gradient
        # of a kernel's moments needs)
        return False

    def contract_derivatives(self, Xp, positions, v):
        # sum_j v_j (phi(x_j) - sum_k s_k phi(x_k)) = sum_j (v_j - s_j
        # sum_k v_k) phi(x_j)
        return super().contract_derivatives(Xp, positions, v - self.s * v.sum())


def _fresh_matrix_types():
    """The built-in operators, whose ``matrix`` and ``stacked_matrix``
    return a new array at every call (which may then be scaled in place)."""
    global _FRESH
    if _FRESH is None:
        from ._kernels import DirichletKernel, GaussianKernel, IntegratedGaussianKernel

        _FRESH = (
            DirichletKernel,
            GaussianKernel,
            IntegratedGaussianKernel,
            FourierOperator,
        )
    return _FRESH


_FRESH = None


#: most particles (per sign) an automatic covering grid may have
MAX_AUTO_PARTICLES = 256
#: most points where |eta| is first evaluated
MAX_CERTIFICATE_POINTS = 4096


def estimate_length_scale(unit, Xp, s):
    """The resolution of an operator, from the curvature of the normalised
    correlation of its columns.

    With ``a(t) = (sqrt(s_j) phi(t)(x_j))_j`` (real rows), the correlation
    ``<a(t), a(t')> / (|a(t)| |a(t')|)`` is ``1 - (1/2) h^T M(t) h + o(h^2)``
    at ``t' = t + h``, with

        M = (da^T da) / |a|^2 - (da^T a)(a^T da) / |a|^4;

    the length scale at ``t`` is ``1 / sqrt(largest eigenvalue of M)``, and
    the estimate the smallest over the probe points (a grid of 5 points per
    axis up to 3 dimensions, see :meth:`SpikeUnit.probe_points`), leaving
    out the points where ``|a|^2`` is below ``1e-6`` of its largest (barely
    measured): the finest resolution is the safe choice for the grids. An
    operator whose resolution varies a lot over the domain is best
    parametrised so that it does not (e.g. log-rates for decays ``exp(-x
    t)``, whose resolution is about ``2 t``). For a kernel ``K(x - t)``
    sampled densely this is the width of the autocorrelation of ``K``
    (``sqrt(2) sigma`` for a Gaussian of standard deviation ``sigma``;
    ``sqrt(3) / (2 pi sqrt(fc (fc + 1)))`` for the Dirichlet kernel and
    Fourier coefficients ``|k|_inf <= fc``).

    An operator whose ``M`` is the same at every position and known in
    closed form gives it as ``correlation_curvature(X, s)`` (``X`` the
    measurements as the operator prepares them, ``s`` their weights; for a
    complex operator one weight per complex measurement), used instead of
    the probes: :meth:`FourierOperator.correlation_curvature`.
    """
    curvature = getattr(unit.operator, "correlation_curvature", None)
    if callable(curvature):
        n = Xp.shape[0] // 2 if unit.complex_valued else Xp.shape[0]
        M = np.asarray(
            curvature(Xp[:n, :-1] if unit.complex_valued else Xp, s[:n]), dtype=float
        )
        top = np.linalg.eigvalsh(M)[-1] if np.isfinite(M).all() else np.nan
        if not top > 0:
            raise ValueError(
                f"Could not estimate the length scale of {unit.operator!r} (its "
                "columns do not vary with the position); give the operator a "
                "positive length_scale attribute."
            )
        return float(1.0 / np.sqrt(top))
    P = unit.probe_points()
    A, dA = unit.pairwise(Xp, P)
    w = np.sqrt(s)
    a = A * w[:, None]
    da = dA * w[:, None, None]
    aa = np.einsum("jp,jp->p", a, a)
    # (batched matrix products over the probes: einsum does not use BLAS
    # for these)
    dat = da.transpose(1, 2, 0)  # (p, k, j)
    G = dat @ dat.transpose(0, 2, 1)
    b = (dat @ a.T[:, :, None])[:, :, 0]
    ok = aa > 1e-6 * aa.max(initial=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        M = (
            G / aa[:, None, None]
            - b[:, :, None] * b[:, None, :] / aa[:, None, None] ** 2
        )
    ok &= np.isfinite(M).all(axis=(1, 2))
    top = np.full(P.shape[0], np.nan)
    if ok.any():
        top[ok] = np.linalg.eigvalsh(M[ok])[:, -1]
    ok &= top > 0
    if not ok.any():
        raise ValueError(
            f"Could not estimate the length scale of {unit.operator!r} (its "
            "columns do not vary with the position on the domain's grid); "
            "give the operator a positive length_scale attribute."
        )
    return float(np.min(1.0 / np.sqrt(top[ok])))


def make_spike_unit(kernel, X, s):
    """The unit of a fit: the operator of ``kernel`` (see
    :func:`as_operator`), its domain given the measurements of positive
    weight, and its length scale."""
    operator = as_operator(kernel)
    prepare = getattr(operator, "prepare", None)
    Xo = np.asarray(X if prepare is None else prepare(X), dtype=float)
    domain = getattr(operator, "domain", None)
    active = Xo[s > 0]
    if domain is None:
        domain = ForwardOperator.domain(operator, active)
    else:
        domain = _as_domain(domain(active), type(operator).__name__)
    length_scale = getattr(operator, "length_scale", None)
    if callable(length_scale):
        length_scale = length_scale(active)
    prepared = None
    if length_scale is None:
        unit = SpikeUnit(operator, 1.0, domain)
        Xp = unit.prepare(X)
        length_scale = estimate_length_scale(unit, Xp, unit.stack_weights(s))
        # (the fit prepares the same X: the same array, and the operator's
        # per-sample quantities kept for it, serve again)
        prepared = (X, np.array(X, copy=True), Xp)
    length_scale = float(np.max(length_scale))
    if not (np.isfinite(length_scale) and length_scale > 0):
        raise ValueError(
            f"The length_scale of {operator!r} must be positive and finite; got "
            f"{length_scale}."
        )
    unit = SpikeUnit(operator, length_scale, domain)
    unit._prepared = prepared
    return unit
