"""Sliding Frank-Wolfe and a grid Lasso on the BLASSO of
``SparseSpikeDeconvolver``, and the spikes benchmark cases (issue 16).

The problem, for a measure ``mu = sum_i a_i delta_{t_i}``, sample locations
``x_j``, observations ``y_j`` and sample weights ``s_j`` normalised to sum to
one (``s_j = 1/n`` by default)::

    J(mu) = (1/2) sum_j s_j (y_j - sum_i a_i phi_{t_i}(x_j))^2 + alpha sum_i |a_i|,

``phi_t(x) = K(x - t)`` for a kernel object of :mod:`sklearn_meanfield`
(:class:`KernelOperator`). This is the objective ``SparseSpikeDeconvolver``
minimises (same ``s_j``, same ``alpha``, in the units of ``y``); every method
of the benchmark is scored by :meth:`Blasso.objective` and
:meth:`Blasso.duality_gap`, whatever its own internal units.

The dual certificate of ``mu`` is

    eta(t) = (1/alpha) sum_j s_j phi_t(x_j) r_j,    r = y - Phi mu,

``mu`` is optimal iff ``max_t |eta(t)| <= 1``, and the residual scaled by
``1 / max(1, max|eta|)`` is a feasible dual point, which gives the duality gap.

Sliding Frank-Wolfe (Denoyelle, Duval, Peyre and Soubies, "The sliding
Frank-Wolfe algorithm and its application to super-resolution microscopy",
Inverse Problems 36, 2019, Algorithm 2), from ``mu = 0``:

1. ``t* = argmax_t |eta(t)|``: ``|eta|`` on a grid (an FFT of the ``(2 fc +
   1)^d`` Fourier coefficients for the Dirichlet kernel, a trigonometric
   polynomial; a tensor contraction for product kernels; blocks of kernel
   values otherwise), then Newton's method from the grid's largest local
   maxima. Stop if ``|eta(t*)| <= 1 + tol``.
2. Add ``t*`` to the support; amplitudes on the support by the Lasso
   ``min_a J(sum_i a_i delta_{t_i})`` (bound-constrained L-BFGS-B on the
   positive and negative parts); drop zero amplitudes.
3. Sliding: ``min_{a, t} J(sum_i a_i delta_{t_i})`` jointly over amplitudes
   and positions from there, with the signs of the amplitudes fixed (so the
   penalty is linear and the problem smooth: L-BFGS-B with ``sign(a_i) a_i
   >= 0``); drop zero amplitudes.

Adding a measurement model to the benchmark: an operator class with the
methods and attributes of :class:`KernelOperator` (``forward``, ``values``,
``adjoint_on_grid``, ``project``, ``length_scale``, ``periodic``,
``n_dims``; complex data as stacked real and imaginary rows with
``rows_per_sample = 2``) and a :class:`SpikeCase` in :func:`spike_cases`
(a builder like :func:`dirichlet_case`). Fourier measurements ``y_k = sum_i
a_i exp(-2 i pi <k, t_i>)`` (:class:`FourierOperator`, :func:`fourier_case`)
have ``Phi^* v`` a trigonometric polynomial whose coefficients are ``v``
itself: one FFT. Positive amplitudes and an unpenalised background (images,
:func:`image_case`) are options of :class:`Blasso`, which every method and
the scoring share.
"""

import copy
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.optimize
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.ndimage import maximum_filter
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso

from sklearn_meanfield import (
    DirichletKernel,
    GaussianKernel,
    IntegratedGaussianKernel,
    SparseSpikeDeconvolver,
)
from sklearn_meanfield.metrics import spike_recovery_scores

#: most points of a certificate grid (FFT or kernel evaluations)
MAX_GRID_POINTS = 2**21
#: grid spacing of the certificate argmax, in kernel length scales (kernel
#: evaluations; the FFT grid is finer: at least 8 points per period of the
#: highest frequency)
GRID_SPACING = 0.5
#: kernel values evaluated at once by the generic grid path
_BLOCK = 2**22


def _next_pow2(n):
    return 1 << int(np.ceil(np.log2(max(n, 1))))


def _wrap(D):
    """``D`` modulo 1, in ``[-1/2, 1/2)``."""
    return D - np.floor(D + 0.5)


def _contract(v, E):
    """``sum_j v_j E_1[j, i_1] ... E_d[j, i_d]`` of shape (q_1 ... q_{d-1},
    q_d) (``(q_1,)`` in 1-D): outer products over the first ``d - 1`` axes,
    then one matrix product."""
    if len(E) == 1:
        return v @ E[0]
    M = v[:, None] * E[0]
    for Ek in E[1:-1]:
        M = (M[:, :, None] * Ek[:, None, :]).reshape(M.shape[0], -1)
    return M.T @ E[-1]


# ---------------------------------------------------------------- operators
class KernelOperator:
    """``phi_t(x_j) = K(x_j - t)`` for the sample locations ``X``.

    Parameters
    ----------
    kernel : kernel object
        ``value(D)``, ``gradient(D)`` (optionally ``value_and_gradient``,
        ``pairwise_value_and_gradient``, ``periodic``, ``length_scale``), as
        the kernels of :mod:`sklearn_meanfield._kernels`.
    X : ndarray of shape (n_samples, n_dims)
    """

    def __init__(self, kernel, X):
        self.kernel = kernel
        self.periodic = bool(getattr(kernel, "periodic", False))
        X = np.asarray(X, dtype=float)
        self.X = X - np.floor(X) if self.periodic else X.copy()
        # read-only, as the deconvolver's prepared measurements: the
        # kernels keep their per-sample quantities between calls for such
        # an array (sklearn_meanfield._operators._per_samples), and the
        # baseline gets that too (NOTES.md)
        self.X.flags.writeable = False
        self.n_samples, self.n_dims = X.shape
        ls = getattr(kernel, "length_scale", None)
        if ls is None:
            # 1 / sqrt(-K''(0)), central differences of the gradient
            h = 1e-5
            D = np.zeros((2, self.n_dims))
            D[0, 0], D[1, 0] = h, -h
            g = np.asarray(kernel.gradient(D))
            ls = 1.0 / np.sqrt(-(g[0, 0] - g[1, 0]) / (2 * h))
        self.length_scale = float(np.max(ls))
        # a bounded domain (the kernel's ``domain(X)``, e.g. the box the
        # pixels cover): positions are kept in it, as the deconvolver does
        self.bounded = False
        domain = getattr(kernel, "domain", None)
        if self.periodic:
            self.lower, self.upper = np.zeros(self.n_dims), np.ones(self.n_dims)
        elif callable(domain) and getattr(domain(self.X), "bounded", False):
            box = domain(self.X)
            self.lower, self.upper = box.lower.copy(), box.upper.copy()
            self.bounded = True
        else:
            margin = 2 * self.length_scale
            self.lower = self.X.min(axis=0) - margin
            self.upper = self.X.max(axis=0) + margin

    # -- values at given positions
    def _differences(self, T):
        D = self.X[:, None, :] - T[None, :, :]
        return _wrap(D) if self.periodic else D

    def forward(self, T):
        """``Phi[j, i] = phi_{t_i}(x_j)`` (n, k) and ``dPhi[j, i] = grad_t
        phi_{t_i}(x_j) = -grad K(x_j - t_i)`` (n, k, n_dims)."""
        T = np.asarray(T, dtype=float).reshape(-1, self.n_dims)
        pairwise = getattr(self.kernel, "pairwise_value_and_gradient", None)
        if callable(pairwise):
            K, dK = pairwise(self.X, T)
        else:
            D = self._differences(T)
            both = getattr(self.kernel, "value_and_gradient", None)
            if callable(both):
                K, dK = both(D)
            else:
                K, dK = self.kernel.value(D), self.kernel.gradient(D)
        return np.asarray(K, dtype=float), -np.asarray(dK, dtype=float)

    def values(self, T):
        """``Phi[j, i] = phi_{t_i}(x_j)`` (n, k)."""
        T = np.asarray(T, dtype=float).reshape(-1, self.n_dims)
        if getattr(self.kernel, "pairwise_value_and_gradient", None) is not None:
            return self.forward(T)[0]
        return np.asarray(self.kernel.value(self._differences(T)), dtype=float)

    def project(self, T):
        """Positions wrapped into ``[0, 1)`` on the torus, clipped to a
        bounded domain (a copy)."""
        T = np.array(T, dtype=float)
        if self.periodic:
            T -= np.floor(T)
            T[T >= 1.0] = 0.0
        elif self.bounded:
            np.clip(T, self.lower, self.upper, out=T)
        return T

    # -- the adjoint on a grid
    def _axes(self, spacing):
        """Grid axes of the given spacing covering the domain."""
        axes = []
        for lo, hi in zip(self.lower, self.upper, strict=True):
            if self.periodic:
                q = int(np.ceil(1.0 / spacing))
                axes.append(np.arange(q) / q)
            else:
                q = int(np.ceil((hi - lo) / spacing)) + 1
                axes.append(np.linspace(lo, hi, q))
        return axes

    def adjoint_on_grid(self, v):
        """``(Phi^* v)(t) = sum_j v_j phi_t(x_j)`` on a grid.

        Returns
        -------
        points : ndarray of shape (n_points, n_dims)
        values : ndarray of shape (n_points,)
        shape : tuple
            The grid's shape (points in C order).
        """
        if isinstance(self.kernel, DirichletKernel):
            return self._adjoint_fft(v)
        spacing = GRID_SPACING * self.length_scale
        while True:
            axes = self._axes(spacing)
            shape = tuple(a.size for a in axes)
            if np.prod(shape, dtype=float) <= MAX_GRID_POINTS:
                break
            spacing *= 1.25
        mesh = np.meshgrid(*axes, indexing="ij")
        points = np.column_stack([g.ravel() for g in mesh])
        if callable(getattr(self.kernel, "grid_factors", None)):
            values = _contract(v, self.kernel.grid_factors(self.X, axes)).ravel()
        elif isinstance(self.kernel, GaussianKernel):
            values = self._adjoint_separable(v, axes)
        else:
            values = np.empty(points.shape[0])
            step = max(1, _BLOCK // (self.n_samples * self.n_dims))
            for i in range(0, points.shape[0], step):
                values[i : i + step] = v @ self.values(points[i : i + step])
        return points, values, shape

    def _adjoint_separable(self, v, axes):
        """``sum_j v_j prod_k k(x_jk - g_k)`` on the tensor grid of the
        ``axes`` for a product kernel (1-D factor ``k`` = the kernel in one
        dimension): contractions of (n, q) factors, the last one a matrix
        product."""
        E = []
        for k, g in enumerate(axes):
            D = self.X[:, k, None] - g[None, :]
            E.append(np.asarray(self.kernel.value(D[..., None]), dtype=float))
        return _contract(v, E).ravel()

    def _adjoint_fft(self, v):
        """The Dirichlet kernel is the trigonometric polynomial
        ``K(u) = N^-d sum_{|f|_inf <= fc} exp(2 i pi f.u)``, ``N = 2 fc + 1``:

            (Phi^* v)(t) = N^-d sum_f c_f exp(-2 i pi f.t),
            c_f = sum_j v_j exp(2 i pi f.x_j),

        on the grid ``t = m / G`` by one FFT of the zero-padded ``c``
        (``G`` a power of two, at least ``8 N``, ``G^d <= 2^21``)."""
        fc = self.kernel.cutoff
        N, d = 2 * fc + 1, self.n_dims
        G = _next_pow2(max(8 * N, 64))
        while G**d > MAX_GRID_POINTS and G > 2 * N:
            G //= 2
        f = np.arange(-fc, fc + 1)
        E = []
        for k in range(d):
            # exp(2 i pi f x) for f = 1..fc by cumulative products, conjugates
            # for -fc..-1
            z = np.repeat(np.exp(2j * np.pi * self.X[:, k, None]), fc, axis=1)
            pos = np.cumprod(z, axis=1)
            ones = np.ones((self.n_samples, 1), dtype=complex)
            E.append(np.hstack([np.conj(pos[:, ::-1]), ones, pos]))
        M = _contract(v, E)
        C = np.zeros((G,) * d, dtype=complex)
        C[np.ix_(*[f % G] * d)] = M.reshape((N,) * d)
        values = np.fft.fftn(C).real.ravel() / N**d
        axis = np.arange(G) / G
        mesh = np.meshgrid(*[axis] * d, indexing="ij")
        points = np.column_stack([g.ravel() for g in mesh])
        return points, values, (G,) * d


class FourierOperator(KernelOperator):
    """Fourier coefficients ``phi_t(k_j) = exp(-2 i pi <k_j, t>)`` of spikes
    on the torus ``[0, 1)^d`` for the integer frequency vectors ``X`` (the
    deconvolver's ``kernel="fourier"``), as real rows: ``cos(2 pi <k_j,
    t>)`` (real parts, rows ``0..n-1``) then ``-sin(2 pi <k_j, t>)``
    (imaginary parts, rows ``n..2n-1``), ``rows_per_sample = 2``.

    The length scale is ``1 / (2 pi sqrt(lambda_max))``, ``lambda_max`` the
    largest eigenvalue of the covariance of the frequencies (the curvature
    of the normalised correlation of two columns; ``sqrt(3) / (2 pi sqrt(fc
    (fc + 1)))`` for ``|k| <= fc`` in 1-D).
    """

    rows_per_sample = 2

    def __init__(self, X):
        K = np.round(np.asarray(X, dtype=float))
        self.K = K
        self.X = K
        self.periodic, self.bounded = True, False
        n, self.n_dims = K.shape
        self.n_samples = 2 * n
        cov = np.atleast_2d(np.cov(K.T, bias=True))
        top = float(np.linalg.eigvalsh(cov)[-1])
        self.length_scale = 1.0 / (2 * np.pi * np.sqrt(top))
        self.lower, self.upper = np.zeros(self.n_dims), np.ones(self.n_dims)

    def _phases(self, T):
        T = np.asarray(T, dtype=float).reshape(-1, self.n_dims)
        return (2 * np.pi) * (self.K @ T.T)

    def forward(self, T):
        """``Phi`` (2n, k) and ``dPhi`` (2n, k, d): ``d cos(2 pi k t) / dt =
        -2 pi k sin``, ``d(-sin(2 pi k t)) / dt = -2 pi k cos``."""
        theta = self._phases(T)
        C, S = np.cos(theta), np.sin(theta)
        Phi = np.vstack([C, -S])
        k2 = (-2 * np.pi) * np.vstack([self.K, self.K])  # (2n, d)
        CS = np.vstack([S, C])
        dPhi = CS[:, :, None] * k2[:, None, :]
        return Phi, dPhi

    def values(self, T):
        theta = self._phases(T)
        return np.vstack([np.cos(theta), -np.sin(theta)])

    def adjoint_on_grid(self, v):
        """``(Phi^* v)(t) = Re sum_j c_j exp(2 i pi <k_j, t>)``, ``c_j =
        v_j + i v_{n+j}``, a trigonometric polynomial: on the grid ``t = m /
        G`` it is ``G^d`` times the inverse FFT of the ``c_j`` placed at
        ``k_j mod G`` (``G`` a power of two, at least 8 points per period
        of the highest frequency, ``G^d <= 2^21``)."""
        n, d = self.K.shape
        c = v[:n] + 1j * v[n:]
        top = int(np.abs(self.K).max(initial=0))
        N = 2 * top + 1
        G = _next_pow2(max(8 * N, 64))
        while G**d > MAX_GRID_POINTS and G > 2 * N:
            G //= 2
        C = np.zeros((G,) * d, dtype=complex)
        np.add.at(C, tuple((self.K.astype(np.int64) % G).T), c)
        values = (np.fft.ifftn(C).real * float(G) ** d).ravel()
        axis = np.arange(G) / G
        mesh = np.meshgrid(*[axis] * d, indexing="ij")
        points = np.column_stack([g.ravel() for g in mesh])
        return points, values, (G,) * d


class CentredOperator:
    """``phi_t(x_j) - sum_k s_k phi_t(x_k)`` (``s`` summing to one) for an
    operator: with an unpenalised background ``b``, the best ``b`` for any
    measure is the weighted mean of its residual, and the BLASSO with ``b``
    is the BLASSO of the centred ``y`` and this operator (as the
    deconvolver's ``fit_intercept``). ``(Phi_c^* v)(t) = (Phi^* (v - s sum_j
    v_j))(t)``."""

    def __init__(self, operator, s):
        self.base = operator
        self.s = np.asarray(s, dtype=float)

    def __getattr__(self, name):
        return getattr(self.base, name)

    def forward(self, T):
        Phi, dPhi = self.base.forward(T)
        return Phi - self.s @ Phi, dPhi - np.einsum("j,jik->ik", self.s, dPhi)

    def values(self, T):
        Phi = self.base.values(T)
        return Phi - self.s @ Phi

    def adjoint_on_grid(self, v):
        return self.base.adjoint_on_grid(v - self.s * v.sum())


# ------------------------------------------------------------------ problem
class Blasso:
    """``J(a, T) = (1/2) sum_j s_j (y_j - sum_i a_i phi_{t_i}(x_j) - b)^2 +
    alpha sum_i |a_i|``, its certificate and duality gap (``b = 0``, or with
    ``fit_intercept`` the best background for the measure, eliminated).

    Parameters
    ----------
    operator : KernelOperator or an object with its methods
    y : ndarray of shape (n_samples,)
        Real; complex for an operator of ``rows_per_sample = 2`` (stacked
        here as ``[Re y, Im y]``, the operator's row order).
    alpha : float
    sample_weight : ndarray of shape (n_samples,) or None
        Normalised to ``s = sample_weight / sum(sample_weight)`` over the
        samples; an operator of complex measurements stacks real and
        imaginary parts as two rows of one sample, both rows with the
        sample's weight, so that ``J`` is ``(1/2) sum_j s_j |r_j|^2`` with
        ``s`` summing to one over the samples (the deconvolver's
        normalisation).
    positive : bool, default=False
        Amplitudes ``a_i >= 0``: the certificate's constraint is ``eta <=
        1`` (not ``|eta| <= 1``), its largest value is ``max_t eta(t)``.
    fit_intercept : bool, default=False
        An unpenalised background ``b`` (real measurements): eliminated,
        ``y`` and the operator centred by their weighted means
        (:class:`CentredOperator`); ``b = sum_j s_j (y_j - (Phi a)_j)`` is
        :meth:`background`.
    """

    def __init__(
        self,
        operator,
        y,
        alpha,
        sample_weight=None,
        *,
        positive=False,
        fit_intercept=False,
    ):
        y = np.asarray(y)
        n = y.shape[0]
        s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
        s = s / s.sum()
        if np.iscomplexobj(y) or getattr(operator, "rows_per_sample", 1) == 2:
            y = np.concatenate([np.real(y), np.imag(y)])
            s = np.concatenate([s, s])
        self.y = np.asarray(y, dtype=float)
        self.s = s
        self.alpha = float(alpha)
        self.positive = bool(positive)
        self.fit_intercept = bool(fit_intercept)
        self.y_offset = 0.0
        self.operator = operator
        if fit_intercept:
            if getattr(operator, "rows_per_sample", 1) != 1:
                raise ValueError("fit_intercept needs real measurements.")
            self.y_offset = float(s @ self.y)
            self.y = self.y - self.y_offset
            self.operator = CentredOperator(operator, s)

    def scaled(self):
        """The same problem for ``y / c`` and ``alpha / c``, ``c`` the root
        mean square of ``y`` (its solution is ``mu / c``, its ``J`` is
        ``J / c^2``), and ``c``."""
        c = float(np.sqrt(self.s @ self.y**2)) or 1.0
        scaled = copy.copy(self)
        scaled.y, scaled.alpha, scaled.y_offset = self.y / c, self.alpha / c, 0.0
        return scaled, c

    def background(self, T, a):
        """The best background ``b = sum_j s_j (y_j - (Phi a)_j)`` for the
        measure (0 without ``fit_intercept``)."""
        if not self.fit_intercept:
            return 0.0
        a = np.asarray(a, dtype=float).ravel()
        if a.size == 0:
            return self.y_offset
        return self.y_offset - float(self.s @ (self.operator.base.values(T) @ a))

    def residual(self, T, a):
        a = np.asarray(a, dtype=float).ravel()
        if a.size == 0:
            return self.y.copy()
        return self.y - self.operator.values(T) @ a

    def objective(self, T, a):
        """``J`` at the measure ``sum_i a_i delta_{t_i}``."""
        r = self.residual(T, a)
        return 0.5 * float(self.s @ r**2) + self.alpha * float(np.abs(a).sum())

    def certificate_max(self, T, a, n_starts=16):
        """``(max_t |eta(t)|, argmax, eta at the argmax)`` (``max_t eta(t)``
        with ``positive``): the grid of ``operator.adjoint_on_grid``, then
        :func:`refine_maxima` from its local maxima within 25% of the
        largest (at most ``n_starts``)."""
        v = self.s * self.residual(T, a) / self.alpha
        points, values, shape = self.operator.adjoint_on_grid(v)
        score = values if self.positive else np.abs(values)
        grid = score.reshape(shape)
        mode = "wrap" if self.operator.periodic else "nearest"
        local = (grid == maximum_filter(grid, size=3, mode=mode)).ravel()
        best = score.max()
        if best <= 0:  # positive: eta < 0 everywhere, no spike to add
            i = int(np.argmax(score))
            return float(best), points[i], float(values[i])
        idx = np.flatnonzero(local & (score >= 0.75 * best))
        idx = idx[np.argsort(-score[idx])][:n_starts]
        Tc, eta = refine_maxima(self.operator, v, points[idx])
        i = int(np.argmax(eta if self.positive else np.abs(eta)))
        return float(eta[i] if self.positive else abs(eta[i])), Tc[i], float(eta[i])

    def duality_gap(self, T, a):
        """``(J - D(p), max|eta|)`` with the dual point ``p_j = s_j r_j /
        max(1, max|eta|)`` (``D(p) = sum_j p_j y_j - (1/2) sum_j p_j^2 /
        s_j``), in the units of ``J`` (``max eta`` with ``positive``: the
        dual constraint is then ``Phi^* p <= alpha``)."""
        r = self.residual(T, a)
        sr = self.s * r
        eta_max = self.certificate_max(T, a)[0]
        M = max(1.0, eta_max)
        primal = 0.5 * float(sr @ r) + self.alpha * float(np.abs(a).sum())
        dual = float(sr @ self.y) / M - 0.5 * float(sr @ r) / M**2
        return primal - dual, eta_max


def refine_maxima(operator, v, T0, n_iter=20):
    """Newton's method on ``|(Phi^* v)(t)|`` from every row of ``T0``
    (vectorised over the starts).

    The Hessian is a forward difference of the exact gradient (step
    ``1e-6`` length scales); where it is not negative definite the step is a
    gradient step ``l^2 grad / |f|``. Steps are capped at half a length
    scale and halved (at most 10 times) until ``|f|`` does not decrease by
    more than rounding; a start stops when its step is below ``1e-5``
    length scales.

    Returns
    -------
    T : ndarray of shape (n_starts, n_dims)
    values : ndarray of shape (n_starts,)
        ``(Phi^* v)(t)`` (signed) at the refined points.
    """
    T = np.array(T0, dtype=float)
    k, d = T.shape
    ell = operator.length_scale
    h = 1e-6 * ell

    def value_grad(T):
        Phi, dPhi = operator.forward(T)
        return v @ Phi, np.einsum("j,jik->ik", v, dPhi)

    f, g = value_grad(T)
    sign = np.where(f < 0, -1.0, 1.0)
    active = np.ones(k, dtype=bool)
    for _ in range(n_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        Ta, fa, ga, sa = T[idx], f[idx], g[idx], sign[idx]
        # Hessian of sign * f by forward differences of the gradient
        H = np.empty((idx.size, d, d))
        for axis in range(d):
            Th = Ta.copy()
            Th[:, axis] += h
            H[:, :, axis] = (value_grad(Th)[1] - ga) / h
        H = 0.5 * (H + H.transpose(0, 2, 1)) * sa[:, None, None]
        gs = ga * sa[:, None]
        newton = np.linalg.eigvalsh(H).max(axis=1) < 0
        step = gs * (ell**2 / np.maximum(np.abs(fa), 1e-300))[:, None]
        if newton.any():
            step[newton] = -np.linalg.solve(H[newton], gs[newton][..., None])[..., 0]
        norm = np.linalg.norm(step, axis=1)
        step *= np.minimum(1.0, 0.5 * ell / np.maximum(norm, 1e-300))[:, None]
        # (Newton's method converges quadratically: |f| is then within about
        # (1e-5)^2 of the local maximum, relative, far below the stopping
        # tolerance on max|eta|; a tighter stop only costs SFW time, for the
        # same iterates: NOTES.md)
        converged = norm < 1e-5 * ell
        pending = ~converged
        for _ in range(10):
            if not pending.any():
                break
            p = np.flatnonzero(pending)
            fn, gn = value_grad(Ta[p] + step[p])
            ok = sa[p] * fn >= sa[p] * fa[p] - 1e-15 * np.abs(fa[p])
            q = p[ok]
            Ta[q] += step[q]
            fa[q], ga[q] = fn[ok], gn[ok]
            pending[q] = False
            step[pending] *= 0.5
        T[idx], f[idx], g[idx] = Ta, fa, ga
        # a start stops once converged or when no step is accepted
        active[idx[converged | pending]] = False
    return operator.project(T), f


# ----------------------------------------------------- Sliding Frank-Wolfe
@dataclass
class SFWResult:
    """What :func:`sliding_frank_wolfe` returns (in the units of ``y``)."""

    positions: np.ndarray
    amplitudes: np.ndarray
    n_iter: int
    eta_max: float
    objective: float
    history: list = field(default_factory=list)
    intercept: float = 0.0


#: L-BFGS-B tolerances of the Lasso and sliding steps (on J / alpha)
FTOL, GTOL = 1e-12, 1e-7
_LBFGS = {"maxiter": 10_000, "maxfun": 20_000, "ftol": FTOL, "gtol": GTOL}


def lasso_on_support(problem, T, a0=None):
    """``argmin_a (1/2) sum_j s_j (y_j - (Phi a)_j)^2 + alpha |a|_1`` for the
    fixed positions ``T``: L-BFGS-B on ``a = p - q``, ``p, q >= 0``, with the
    Gram matrix ``Phi^T S Phi`` (``S = diag(s)``)."""
    Phi = problem.operator.values(T)
    k = Phi.shape[1]
    SPhi = problem.s[:, None] * Phi
    gram, b = Phi.T @ SPhi, SPhi.T @ problem.y
    lam = problem.alpha
    a0 = np.zeros(k) if a0 is None else np.asarray(a0, dtype=float)

    def fun(z):
        a = z[:k] - z[k:]
        Ga = gram @ a
        g = Ga - b
        # J / alpha: the gradient in a is sign(a) - eta, of order 1
        value = (0.5 * a @ Ga - b @ a) / lam + z.sum()
        return value, np.concatenate([g / lam + 1, 1 - g / lam])

    z0 = np.concatenate([np.maximum(a0, 0), np.maximum(-a0, 0)])
    # positive: the negative parts stay at 0
    bounds = [(0, None)] * k + [(0, 0) if problem.positive else (0, None)] * k
    if problem.positive:
        z0[k:] = 0.0
    res = scipy.optimize.minimize(
        fun, z0, jac=True, method="L-BFGS-B", bounds=bounds, options=_LBFGS
    )
    return res.x[:k] - res.x[k:]


def slide(problem, T, a):
    """``min_{a, T} J`` from ``(a, T)`` with the signs of ``a`` fixed:
    L-BFGS-B on ``(a, T / l)`` with ``sign(a_i) a_i >= 0``, ``l`` the length
    scale. With ``sigma = sign(a)``, ``r = y - Phi a``, ``S = diag(s)``::

        dJ/da_i = -(Phi^T S r)_i + alpha sigma_i,
        dJ/dt_i = -a_i sum_j s_j r_j grad_t phi_{t_i}(x_j).
    """
    op, y, s, lam = problem.operator, problem.y, problem.s, problem.alpha
    k, d = T.shape
    ell = op.length_scale
    sigma = np.sign(a)

    def fun(z):
        amp, pos = z[:k], z[k:].reshape(k, d) * ell
        Phi, dPhi = op.forward(pos)
        r = y - Phi @ amp
        sr = s * r
        # J / alpha: the gradient in a is sigma - eta(t), of order 1
        value = (0.5 * sr @ r) / lam + sigma @ amp
        ga = sigma - Phi.T @ sr / lam
        gt = (-ell / lam) * amp[:, None] * np.einsum("j,jik->ik", sr, dPhi)
        return value, np.concatenate([ga, gt.ravel()])

    bounds = [(0, None) if sg > 0 else (None, 0) for sg in sigma]
    if getattr(op, "bounded", False):  # positions in the domain
        box = np.column_stack([op.lower, op.upper]) / ell
        bounds += [tuple(b) for b in np.tile(box, (k, 1))]
    else:
        bounds += [(None, None)] * (k * d)
    z0 = np.concatenate([a, (T / ell).ravel()])
    res = scipy.optimize.minimize(
        fun, z0, jac=True, method="L-BFGS-B", bounds=bounds, options=_LBFGS
    )
    return res.x[k:].reshape(k, d) * ell, res.x[:k]


def polish(problem, T, a, n_iter=5, gtol=1e-12):
    """Newton's method on the stationarity equations of the sliding problem
    (signs of ``a`` fixed, every ``a_i != 0``), after L-BFGS-B.

    L-BFGS-B stops where the rounding of ``J`` hides further decrease: at
    small ``alpha`` its gradient in ``eta`` units can stay near ``1e-6``,
    enough to leave ``max|eta|`` above ``1 + 1e-6`` and make SFW add a
    spurious spike. Newton's step uses the gradient alone: with ``F = J /
    alpha``, the prediction ``p = Phi a`` and ``r = y - p``, the Hessian is
    the Gauss-Newton term ``(dp)^T S dp / alpha`` plus ``-sum_j s_j r_j
    d^2 p_j / alpha``, whose amplitude-position entries are ``grad_t
    phi_{t_i}(x_j)`` and position-position blocks ``a_i Hess_t phi_{t_i}
    (x_j)``, the latter by forward differences of the exact gradient. A step
    is kept if it lowers ``max |grad F|`` and keeps the signs of ``a``.
    """
    op, y, s, lam = problem.operator, problem.y, problem.s, problem.alpha
    k, d = T.shape
    ell = op.length_scale
    h = 1e-6 * ell
    sigma = np.sign(a)

    def gradient(T, a):
        Phi, dPhi = op.forward(T)
        sr = s * (y - Phi @ a)
        ga = sigma - Phi.T @ sr / lam
        gt = (-ell / lam) * a[:, None] * np.einsum("j,jik->ik", sr, dPhi)
        return np.concatenate([ga, gt.ravel()]), Phi, dPhi, sr

    g, Phi, dPhi, sr = gradient(T, a)
    for _ in range(n_iter):
        if np.abs(g).max() <= gtol:
            break
        Jp = np.hstack([Phi, (ell * dPhi * a[None, :, None]).reshape(-1, k * d)])
        H = Jp.T @ (s[:, None] * Jp)
        cross = -ell * np.einsum("j,jik->ik", sr, dPhi)  # (k, d)
        rows = np.arange(k)
        for axis in range(d):
            H[rows, k + rows * d + axis] += cross[:, axis]
            H[k + rows * d + axis, rows] += cross[:, axis]
            Th = T.copy()
            Th[:, axis] += h
            d2 = (op.forward(Th)[1] - dPhi) / h  # d/dt_axis of grad_t phi
            block = -(ell**2) * a[:, None] * np.einsum("j,jik->ik", sr, d2)
            for comp in range(d):
                H[k + rows * d + comp, k + rows * d + axis] += block[:, comp]
        H = 0.5 * (H + H.T) / lam
        try:
            step = -np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        an = a + step[:k]
        Tn = T + ell * step[k:].reshape(k, d)
        if np.any(np.sign(an) != sigma):
            break
        if getattr(op, "bounded", False) and not np.array_equal(op.project(Tn), Tn):
            break
        gn, Phin, dPhin, srn = gradient(Tn, an)
        if not np.abs(gn).max() < np.abs(g).max():
            break
        T, a, g, Phi, dPhi, sr = Tn, an, gn, Phin, dPhin, srn
    return T, a


def sliding_frank_wolfe(problem, tol=1e-6, max_iter=200):
    """Sliding Frank-Wolfe (Denoyelle et al. 2019, Algorithm 2) on ``problem``.

    Works on the scaled problem (``y`` of unit root mean square); stops when
    ``max_t |eta(t)| <= 1 + tol`` or after ``max_iter`` iterations.

    Returns
    -------
    SFWResult
        ``history`` holds ``(n_spikes, J, max|eta|)`` per iteration (scaled
        units).
    """
    P, c = problem.scaled()
    d = P.operator.n_dims
    T, a = np.zeros((0, d)), np.zeros(0)
    history = []
    n_iter = 0
    for n_iter in range(max_iter + 1):
        eta_max, t_new, _ = P.certificate_max(T, a)
        history.append((a.size, P.objective(T, a), eta_max))
        if eta_max <= 1 + tol or n_iter == max_iter:
            break
        T = np.vstack([T, t_new])
        a = lasso_on_support(P, T, np.append(a, 0.0))
        keep = a != 0
        T, a = T[keep], a[keep]
        if a.size:
            T, a = slide(P, T, a)
            keep = a != 0
            T, a = polish(P, T[keep], a[keep])
            T = P.operator.project(T)
    return SFWResult(
        positions=T,
        amplitudes=a * c,
        n_iter=n_iter,
        eta_max=eta_max,
        objective=problem.objective(T, a * c),
        history=history,
        intercept=problem.background(T, a * c),
    )


# ---------------------------------------------------------------- grid Lasso
def grid_lasso(problem, spacing, tol=1e-6, max_iter=10_000):
    """The BLASSO restricted to a grid of the given spacing over the
    operator's domain, by scikit-learn's ``Lasso``: rows scaled by
    ``sqrt(n s_j)`` (``n`` rows) so that its ``(1/(2n)) |y - A w|^2 + alpha
    |w|_1`` is ``J`` (``positive`` as the problem's; with a background, the
    centred operator and ``y`` of the problem). Returns the grid points,
    the coefficients (all of them) and the largest grid step."""
    op = problem.operator
    axes = op._axes(spacing) if op.periodic else _box_axes(op, spacing)
    mesh = np.meshgrid(*axes, indexing="ij")
    grid = np.column_stack([g.ravel() for g in mesh])
    w = np.sqrt(problem.s * problem.y.shape[0])
    A = op.values(grid) * w[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lasso = Lasso(
            alpha=problem.alpha,
            fit_intercept=False,
            positive=problem.positive,
            tol=tol,
            max_iter=max_iter,
        ).fit(A, problem.y * w)
    step = max(float(np.max(np.diff(a))) if a.size > 1 else 0.0 for a in axes)
    return grid, lasso.coef_, step


def _box_axes(op, spacing):
    """Axes of the given spacing over the samples' box (no margin)."""
    lo, hi = op.X.min(axis=0), op.X.max(axis=0)
    return [
        np.linspace(a, b, int(np.ceil((b - a) / spacing)) + 1)
        for a, b in zip(lo, hi, strict=True)
    ]


# ------------------------------------------------------------- spike tools
def distances(A, B, periodic):
    """Euclidean distances of the rows of ``A`` and ``B`` (on the torus if
    ``periodic``)."""
    D = A[:, None, :] - B[None, :, :]
    if periodic:
        D = _wrap(D)
    return np.sqrt(np.einsum("ijk,ijk->ij", D, D))


def merge_clusters(positions, amplitudes, radius, periodic):
    """Single-linkage clusters (radius ``radius``) of non-zero atoms of one
    sign, each one spike at its mass-weighted position with the summed
    amplitude (for grid solutions: adjacent grid atoms are one spike)."""
    nz = amplitudes != 0
    P, a = positions[nz], amplitudes[nz]
    n = a.size
    if n <= 1:
        return P, a
    dist = distances(P, P, periodic)
    dist[np.sign(a)[:, None] != np.sign(a)[None, :]] = 1e300
    labels = fcluster(
        linkage(dist[np.triu_indices(n, 1)], "single"), radius, "distance"
    )
    out_p, out_a = [], []
    for lab in np.unique(labels):
        m = labels == lab
        ref = P[m][np.argmax(np.abs(a[m]))]
        off = P[m] - ref
        if periodic:
            off = _wrap(off)
        w = np.abs(a[m])
        pos = ref + w @ off / w.sum()
        out_p.append(pos - np.floor(pos) if periodic else pos)
        out_a.append(a[m].sum())
    return np.array(out_p), np.array(out_a)


def prune(positions, amplitudes, rel=1e-2):
    """Drop spikes lighter than ``rel`` times the heaviest (the
    deconvolver's ``prune_tol``)."""
    if amplitudes.size == 0:
        return positions, amplitudes
    keep = np.abs(amplitudes) >= rel * np.abs(amplitudes).max()
    return positions[keep], amplitudes[keep]


def least_squares_refit(problem, T, a):
    """Joint least-squares refit of amplitudes and positions on the support,
    ``min_{a, T} sum_j s_j (y_j - sum_i a_i phi_{t_i}(x_j))^2`` from ``(a,
    T)`` (``scipy.optimize.least_squares``): the maths of the deconvolver's
    ``debias="joint"``, with its fallback to amplitudes only (positions
    fixed) when a position moves by more than a length scale or there are
    more unknowns than samples."""
    op = problem.operator
    k, d = T.shape
    if k == 0:
        return T, a
    w = np.sqrt(problem.s)
    y = problem.y

    def amplitudes_only():
        A = w[:, None] * op.values(T)
        return T, np.linalg.lstsq(A, w * y, rcond=None)[0]

    if k * (d + 1) > y.shape[0]:
        return amplitudes_only()

    def residual(z):
        return w * (op.values(z[k:].reshape(k, d)) @ z[:k] - y)

    def jacobian(z):
        amp, pos = z[:k], z[k:].reshape(k, d)
        Phi, dPhi = op.forward(pos)
        JT = (dPhi * amp[None, :, None]).reshape(y.shape[0], k * d)
        return w[:, None] * np.hstack([Phi, JT])

    fit = scipy.optimize.least_squares(
        residual,
        np.concatenate([a, T.ravel()]),
        jac=jacobian,
        xtol=1e-15,
        ftol=1e-15,
        gtol=1e-15,
        max_nfev=50,
    )
    Tn = op.project(fit.x[k:].reshape(k, d))
    moved = np.diag(distances(Tn, T, op.periodic))
    if not np.all(np.isfinite(fit.x)) or np.any(moved > op.length_scale):
        return amplitudes_only()
    return Tn, fit.x[:k]


# -------------------------------------------------------------------- cases
@dataclass
class SpikeCase:
    """One benchmark problem family.

    ``make(seed) -> (X, y, true_positions, true_amplitudes)``;
    ``estimator_params``: the ``SparseSpikeDeconvolver`` parameters for its
    forward model (its other parameters stay at their defaults);
    ``operator(X)``: the same forward model for SFW, the grid Lasso and the
    scoring; ``separation``: the smallest distance between true spikes (the
    matching radius is half of it); ``lasso_spacing``: the grid Lasso's
    spacing; ``positive``, ``fit_intercept``: amplitudes ``>= 0`` and an
    unpenalised background, for every method (also in
    ``estimator_params``).
    """

    name: str
    make: object
    estimator_params: dict
    operator: object
    separation: float
    lasso_spacing: float
    periodic: bool
    n_dims: int = 1
    alpha: float = 1e-3
    positive: bool = False
    fit_intercept: bool = False


def dirichlet_case(
    cutoff,
    n_spikes,
    n_samples,
    noise,
    *,
    sampling="grid",
    min_separation=1.5,
    n_dims=1,
    lasso_points=None,
):
    """Samples of the Dirichlet kernel of cutoff ``cutoff`` on the torus
    (``make_spikes``), spikes ``min_separation / cutoff`` apart."""
    from sklearn_meanfield.datasets import make_spikes

    kernel = DirichletKernel(cutoff)
    ell = kernel.length_scale
    lasso_points = lasso_points or int(np.ceil(10 / ell))

    def make(seed):
        return make_spikes(
            n_spikes,
            n_samples,
            n_dims,
            cutoff=cutoff,
            min_separation=min_separation,
            sampling=sampling,
            noise=noise,
            random_state=seed,
        )

    return SpikeCase(
        name=(
            f"{n_dims}-D Dirichlet fc={cutoff}, {n_spikes} spikes, {n_samples} "
            f"{'random' if sampling == 'random' else 'grid'} samples, noise {noise:g}"
        ),
        make=make,
        estimator_params={"kernel": "dirichlet", "cutoff": cutoff},
        operator=lambda X: KernelOperator(kernel, X),
        separation=min_separation / cutoff,
        lasso_spacing=1.0 / lasso_points,
        periodic=True,
        n_dims=n_dims,
    )


def gaussian_case(
    n_dims,
    bandwidth,
    n_spikes,
    n_samples,
    noise,
    *,
    min_separation=3.0,
    lasso_spacing=None,
):
    """Samples of the Gaussian kernel on a grid of ``[0, 1]^n_dims``
    (``make_spikes``), spikes ``min_separation * bandwidth`` apart (largest
    coordinate difference)."""
    from sklearn_meanfield.datasets import make_spikes

    kernel = GaussianKernel(bandwidth)

    def make(seed):
        return make_spikes(
            n_spikes,
            n_samples,
            n_dims,
            kernel="gaussian",
            bandwidth=bandwidth,
            min_separation=min_separation,
            noise=noise,
            random_state=seed,
        )

    q = round(n_samples ** (1 / n_dims))
    return SpikeCase(
        name=(
            f"{n_dims}-D Gaussian sigma={bandwidth:g}, {n_spikes} spikes, "
            f"{q}^{n_dims} grid samples, noise {noise:g}"
        ),
        make=make,
        estimator_params={"kernel": "gaussian", "bandwidth": bandwidth},
        operator=lambda X: KernelOperator(kernel, X),
        separation=min_separation * bandwidth,
        lasso_spacing=lasso_spacing or bandwidth / 2,
        periodic=False,
        n_dims=n_dims,
    )


def _spikes_models():
    """``benchmarks/spikes_models.py`` (its problem generators), loaded by
    path: ``benchmarks/`` is not a package."""
    name = "benchmarks_spikes_models"
    if name not in sys.modules:
        from importlib.util import module_from_spec, spec_from_file_location

        path = Path(__file__).with_name("spikes_models.py")
        spec = spec_from_file_location(name, path)
        module = module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def fourier_case(cutoff, n_dims, n_spikes, noise, *, min_separation=1.5):
    """Fourier coefficients ``|k|_inf <= cutoff`` of signed spikes on the
    torus ``[0, 1)^n_dims``, ``min_separation / cutoff`` apart, complex
    Gaussian noise of standard deviation ``noise`` per real and imaginary
    part (``spikes_models.fourier_problem``; the deconvolver's
    ``kernel="fourier"``).

    ``alpha`` scales with the noise (``spikes_models.fourier_problem``'s
    rule): three times ``sqrt(2) noise / sqrt(n)`` (the standard deviation
    of the noise's correlation with one spike, ``n`` coefficients) times
    ``sqrt(2 log n)`` (its maximum over about ``n`` resolution cells).
    Lasso grid: 10 points per length scale along each axis, at most 64.
    """
    models = _spikes_models()
    alpha = models.fourier_problem(cutoff, n_dims, n_spikes, min_separation, noise, 0)[
        4
    ]

    def make(seed):
        X, y, T, a, _ = models.fourier_problem(
            cutoff, n_dims, n_spikes, min_separation, noise, seed
        )
        return X, y, T, a

    X = models._frequencies(cutoff, n_dims)
    ell = FourierOperator(X).length_scale
    per_axis = min(int(np.ceil(10 / ell)), 64) if n_dims > 1 else int(np.ceil(10 / ell))
    return SpikeCase(
        name=(
            f"{n_dims}-D Fourier fc={cutoff}, {n_spikes} spikes, {X.shape[0]} "
            f"coefficients, complex noise {noise:g}"
        ),
        make=make,
        estimator_params={"kernel": "fourier"},
        operator=FourierOperator,
        separation=min_separation / cutoff,
        lasso_spacing=1.0 / per_axis,
        periodic=True,
        n_dims=n_dims,
        alpha=float(alpha),
    )


def image_case(size, n_sources, sigma, photons, background, *, lasso_spacing=1.0):
    """A ``size`` x ``size`` image of point sources (a Gaussian PSF of
    standard deviation ``sigma`` pixels integrated over the pixels, 0.7 to
    1.3 times ``photons`` photons each, at least ``3 sigma`` apart,
    ``background`` photons per pixel, Poisson counts;
    ``spikes_models.image_problem``), fitted with ``positive=True,
    fit_intercept=True`` by every method (the deconvolver's
    ``kernel="integrated_gaussian"``).

    ``alpha`` scales with the noise (``spikes_models.image_problem``'s
    rule): four times ``sqrt(background) |phi| / n`` (the standard
    deviation of the background's Poisson noise correlated with one source,
    ``|phi|`` the PSF's norm, ``n`` pixels) times ``sqrt(2 log n)``. Lasso
    grid: the pixel centres.
    """
    models = _spikes_models()
    alpha = models.image_problem(size, n_sources, sigma, photons, background, 0)[4]
    kernel = IntegratedGaussianKernel(sigma, 1.0)

    def make(seed):
        X, y, T, N, _ = models.image_problem(
            size, n_sources, sigma, photons, background, seed
        )
        return X, y, T, N

    return SpikeCase(
        name=(
            f"2-D image {size}x{size} px, {n_sources} sources of {photons:g} "
            f"photons, PSF sigma {sigma:g} px, background {background:g}, Poisson"
        ),
        make=make,
        estimator_params={
            "kernel": "integrated_gaussian",
            "bandwidth": sigma,
            "pixel_size": 1.0,
            "positive": True,
            "fit_intercept": True,
        },
        operator=lambda X: KernelOperator(kernel, X),
        separation=3 * sigma,
        lasso_spacing=lasso_spacing,
        periodic=False,
        n_dims=2,
        alpha=float(alpha),
        positive=True,
        fit_intercept=True,
    )


def spike_cases(size="full"):
    """The benchmark cases of issue 16 (``size="tiny"``: small versions for
    the tests). Add a case here: one line per problem family."""
    if size == "tiny":
        return [
            dirichlet_case(6, 3, 41, 1e-3, min_separation=2.0),
            gaussian_case(2, 0.15, 2, 81, 1e-3, lasso_spacing=0.1),
            fourier_case(6, 1, 3, 0.05, min_separation=2.0),
            image_case(16, 2, 1.2, 1000.0, 10.0),
        ]
    return [
        dirichlet_case(20, 10, 101, 1e-3),
        dirichlet_case(15, 7, 121, 5e-3, sampling="random"),
        dirichlet_case(40, 20, 401, 1e-3),
        gaussian_case(2, 0.05, 8, 625, 1e-3),
        gaussian_case(3, 0.1, 5, 1331, 1e-3, lasso_spacing=0.1),
        fourier_case(20, 1, 10, 0.05),
        fourier_case(8, 2, 8, 0.05),
        image_case(64, 20, 1.2, 1000.0, 10.0),
    ]


# --------------------------------------------------------------- comparison
#: the methods of :func:`run_case`, in table order
METHODS = ("SparseSpikeDeconvolver (defaults)", "Sliding Frank-Wolfe", "grid Lasso")


def run_case(case, seed, repeats=1, make_estimator=None):
    """Solve one problem of ``case`` by every method and score the results.

    The methods run interleaved (one run of each per round, ``repeats``
    rounds; the median time is kept). Then, untimed, each solution is scored
    on the same :class:`Blasso`:

    - ``objective``: ``J`` of the measure the method minimised over: the
      deconvolver's raw particles (before pruning and refit), SFW's spikes,
      the Lasso's grid coefficients; ``gap``, ``eta_max``: the duality gap
      and ``max|eta|`` there (:meth:`Blasso.duality_gap`);
    - spikes: pruned at 1% of the heaviest (the deconvolver's
      ``prune_tol``), the Lasso's adjacent grid atoms merged first; matched
      to the true spikes by ``metrics.spike_recovery_scores`` (Hungarian
      matching, pairs farther than half the case's minimum separation are
      not matches); ``error``: the largest distance of a matched pair,
      ``missed``/``spurious``: the unmatched true/found spikes;
      ``error_refit``: the same after the joint least-squares refit (the
      deconvolver's own ``debias="joint"`` output; for SFW and the Lasso
      :func:`least_squares_refit`), the deconvolver's unrefitted spikes
      coming from a second, untimed fit with ``debias=None``.

    Parameters
    ----------
    case : SpikeCase
    seed : int
    repeats : int
    make_estimator : callable or None
        ``make_estimator(case) -> estimator`` for the particle method;
        None: ``SparseSpikeDeconvolver(alpha=case.alpha, random_state=seed,
        **case.estimator_params)`` (defaults otherwise).

    Returns
    -------
    records : dict
        Method name -> dict of the numbers above, plus ``time`` (s),
        ``n_spikes``, ``n_iter``; ``grid``: the number of points of SFW's
        certificate grid and of the Lasso's grid.
    """
    X, y, T_true, a_true = case.make(seed)
    problem = Blasso(
        case.operator(X),
        y,
        case.alpha,
        positive=case.positive,
        fit_intercept=case.fit_intercept,
    )
    if make_estimator is None:
        # random_state: the random part of the initial particles (3-D), so
        # that the debias=None refit below repeats the timed fit's flow
        estimator = SparseSpikeDeconvolver(
            alpha=case.alpha, random_state=seed, **case.estimator_params
        )
    else:
        estimator = make_estimator(case)
    out = {}
    # (a fresh estimator per timed fit, made before the clock starts: the
    # time is the fit's, as SFW's leaves out building its problem)
    fresh = [clone(estimator) for _ in range(repeats)]

    def ours():
        out[METHODS[0]] = fresh.pop().fit(X, y)

    def frank_wolfe():
        out[METHODS[1]] = sliding_frank_wolfe(problem)

    def lasso():
        out[METHODS[2]] = grid_lasso(problem, case.lasso_spacing)

    times = {name: [] for name in METHODS}
    for _ in range(repeats):
        for name, method in zip(METHODS, (ours, frank_wolfe, lasso), strict=True):
            start = time.perf_counter()
            method()
            times[name].append(time.perf_counter() - start)

    est, res = out[METHODS[0]], out[METHODS[1]]
    raw = clone(est).set_params(debias=None).fit(X, y)
    grid, coef, step = out[METHODS[2]]
    radius = 1.01 * np.sqrt(problem.operator.n_dims) * step
    lasso_spikes = prune(*merge_clusters(grid, coef, radius, case.periodic))
    sfw_spikes = prune(res.positions, res.amplitudes)
    solutions = {
        # (measure minimised over, spikes, refitted spikes, iterations)
        METHODS[0]: (
            (est.particle_positions_, est.particle_weights_),
            (raw.positions_, raw.weights_),
            (est.positions_, est.weights_),
            est.n_iter_,
        ),
        METHODS[1]: (
            (res.positions, res.amplitudes),
            sfw_spikes,
            least_squares_refit(problem, *sfw_spikes),
            res.n_iter,
        ),
        METHODS[2]: (
            (grid, coef),
            lasso_spikes,
            least_squares_refit(problem, *lasso_spikes),
            0,
        ),
    }
    records = {}
    for name, (measure, spikes, refitted, n_iter) in solutions.items():
        J = problem.objective(*measure)
        gap, eta_max = problem.duality_gap(*measure)
        scores = [
            spike_recovery_scores(
                T_true,
                a_true,
                *found,
                periodic=case.periodic,
                max_distance=case.separation / 2,
            )
            for found in (spikes, refitted)
        ]
        records[name] = {
            "time": float(np.median(times[name])),
            "objective": J,
            "gap": gap,
            "eta_max": eta_max,
            "error": scores[0]["max_position_error"],
            "error_refit": scores[1]["max_position_error"],
            "missed": scores[1]["n_missed"],
            "spurious": scores[1]["n_spurious"],
            "n_spikes": int(spikes[1].size),
            "n_iter": int(n_iter),
        }
    records[METHODS[1]]["grid"] = int(
        np.prod(problem.operator.adjoint_on_grid(np.zeros(problem.y.shape[0]))[2])
    )
    records[METHODS[2]]["grid"] = int(grid.shape[0])
    # the unrefitted spikes come from the same flow (deterministic fits)
    records[METHODS[0]]["same_flow"] = bool(
        np.array_equal(raw.particle_weights_, est.particle_weights_)
    )
    return records
