"""Kernels of differences: spikes seen through a point-spread function
``phi(t)(x) = K(x - t)``.

A *kernel* is a function ``K`` of the difference ``x - t`` between a sample
location and a spike position. Kernel contract (duck-typed, checked by
:func:`check_kernel`):

``value(D) -> K``
    ``D`` of shape (..., n_dims) holds differences ``x - t``; returns ``K(D)``
    of shape (...).
``gradient(D) -> dK``
    The gradient of ``K`` at ``D``, shape (..., n_dims).
``value_and_gradient(D) -> (K, dK)`` (optional)
    Both at once, when they share work.
``pairwise_value_and_gradient(X, T) -> (K, dK)`` (optional)
    ``K(x_j - t_i)`` (n, m) and its gradient (n, m, n_dims) for all pairs of
    rows of ``X`` (n, n_dims) and ``T`` (m, n_dims), when the kernel can
    compute them faster than from the (n, m, n_dims) differences.
``periodic : bool`` (optional, default False)
    True when ``K`` is 1-periodic in every coordinate: the domain is then the
    torus ``[0, 1)^n_dims``; sample locations are read modulo 1 and spike
    positions kept in ``[0, 1)``.
``length_scale : float`` (optional)
    The width ``l`` of the main lobe, ``l**2 = -K(0) / d^2K/dx_k^2 (0)`` for
    the built-in kernels. It sets the spacing of the initial particles, the
    unit of the position step, the merging radius and the resolution of the
    certificate grid. If missing it is estimated by finite differences of
    ``gradient`` at 0.

Every kernel is a forward operator (:mod:`sklearn_meanfield._operators`),
``A[j, i] = K(x_j - t_i)`` with ``dA[j, i] = -grad K(x_j - t_i)``: the
built-in kernels derive from :class:`ConvolutionKernel`, and a user's kernel
object is wrapped in a :class:`KernelAdapter`.
"""

from numbers import Integral, Real

import numpy as np
from scipy.special import ndtr

from ._operators import (
    Box,
    ForwardOperator,
    SpikeUnit,
    Torus,
    _per_samples,
    _wrap_difference,
    as_operator,
)

__all__ = [
    "ConvolutionKernel",
    "DirichletKernel",
    "GaussianKernel",
    "IntegratedGaussianKernel",
    "KernelAdapter",
    "KernelUnit",
    "check_kernel",
]


class ConvolutionKernel(ForwardOperator):
    """Base class of the kernels of differences, as forward operators.

    ``A[j, i] = K(x_j - t_i)`` and ``dA[j, i] = -grad K(x_j - t_i)``, from
    the subclass's ``pairwise_value_and_gradient(X, T)`` if it has one,
    else from ``value_and_gradient`` at the differences (wrapped modulo 1
    when ``periodic``). The domain is the torus ``[0, 1)^n_dims`` when
    ``periodic`` (sample locations read modulo 1), else the bounding box of
    the samples with positions free outside it.
    """

    periodic = False

    def prepare(self, X):
        """Sample locations, read modulo 1 on the torus (a float64 copy)."""
        X = np.array(X, dtype=np.float64)
        if self.periodic:
            X -= np.floor(X)
        return X

    def domain(self, X):
        if self.periodic:
            return Torus(X.shape[1])
        return Box(X.min(axis=0), X.max(axis=0), bounded=False)

    def value_and_gradient(self, D):
        return self.value(D), self.gradient(D)

    def matrix(self, X, T):
        """``K(x_j - t_i)`` (n, m) alone, from ``value`` at the differences
        (wrapped modulo 1 when ``periodic``)."""
        D = X[:, None, :] - T[None, :, :]
        if self.periodic:
            D = _wrap_difference(D)
        K = np.asarray(self.value(D), dtype=float)
        if K.shape != D.shape[:-1]:
            raise ValueError(
                f"The kernel returned values of shape {K.shape} for differences "
                f"of shape {D.shape}; expected {D.shape[:-1]}."
            )
        return K

    def matrix_and_gradient(self, X, T):
        pairwise = getattr(self, "pairwise_value_and_gradient", None)
        if callable(pairwise):
            K, dK = pairwise(X, T)
        else:
            D = X[:, None, :] - T[None, :, :]
            if self.periodic:
                D = _wrap_difference(D)
            K, dK = kernel_value_and_gradient(self, D)
        # d/dt K(x - t) = -grad K(x - t)
        return K, np.negative(dK, out=dK)


class DirichletKernel(ConvolutionKernel):
    """Dirichlet kernel on the torus ``[0, 1)^n_dims``, normalised so ``K(0) = 1``.

    In 1-D, with Fourier cutoff ``fc`` and ``N = 2 fc + 1``,

        k(u) = (1/N) sum_{|f| <= fc} exp(2 i pi f u)
             = sin(N pi u) / (N sin(pi u)),

    the ideal low-pass filter: the observation keeps the ``N`` lowest Fourier
    coefficients of the spikes. In ``n_dims`` dimensions ``K`` is the product
    ``K(D) = prod_k k(D_k)`` of 1-D kernels.

    Parameters
    ----------
    cutoff : int
        The Fourier cutoff ``fc >= 1``.

    Notes
    -----
    The closed form is used where ``|N pi u| >= 0.1`` and the cosine sum
    ``(1 + 2 sum_{f=1}^{fc} cos(2 pi f u)) / N`` near ``u = 0 mod 1``, where the
    closed form is ``0/0`` and its derivative loses digits to cancellation.
    For all pairs of sample locations and spikes (``pairwise_value_and_gradient``)
    the sines and cosines of the differences come from those of the points
    (angle addition), which leaves no trigonometric function of an (n, m)
    array.
    ``length_scale = sqrt(3) / (2 pi sqrt(fc (fc + 1)))``, from
    ``k''(0) = -(2 pi)^2 fc (fc + 1) / 3``.
    """

    periodic = True
    #: ``grid_factors``' ``F_k[j]`` depends on ``x_jk`` alone
    grid_factors_by_coordinate = True

    def __init__(self, cutoff):
        if isinstance(cutoff, bool) or not isinstance(cutoff, Integral):
            raise TypeError(
                f"cutoff must be an int, got {type(cutoff).__name__} {cutoff!r}."
            )
        if cutoff < 1:
            raise ValueError(f"cutoff must be a positive int, got {cutoff}.")
        self.cutoff = int(cutoff)

    @property
    def length_scale(self):
        fc = self.cutoff
        return float(np.sqrt(3.0) / (2 * np.pi * np.sqrt(fc * (fc + 1))))

    def __repr__(self):
        return f"DirichletKernel(cutoff={self.cutoff})"

    def _profile(self, U):
        """``k(U)`` and ``k'(U)`` elementwise, ``U`` any shape."""
        U = _wrap_difference(U)
        N = 2 * self.cutoff + 1
        piU = np.pi * U
        s1, c1 = np.sin(piU), np.cos(piU)
        piU *= N
        sN, cN = np.sin(piU), np.cos(piU)
        # The closed form loses about 1 / (N pi u)^2 of relative accuracy to
        # cancellation in the derivative's numerator: the cosine sum takes
        # over where |N pi u| < 0.1 (at most 1e-13 of the derivative's scale
        # is lost outside).
        near = np.abs(piU) < 0.1
        # Closed form everywhere (with a harmless denominator where it is
        # inaccurate), then the cosine sum on the few entries near 0 mod 1.
        denom = np.where(near, 1.0, s1)
        denom *= N
        k = sN / denom
        dk = N * cN * s1
        dk -= sN * c1
        dk *= np.pi
        dk /= denom * np.where(near, 1.0, s1)
        idx = np.nonzero(near)
        if idx[0].size:
            f = np.arange(1, self.cutoff + 1, dtype=U.dtype)
            arg = (2 * np.pi) * U[idx][:, None] * f
            k[idx] = (1 + 2 * np.cos(arg).sum(axis=1)) / N
            dk[idx] = (-4 * np.pi / N) * (np.sin(arg) @ f)
        return k, dk

    def value(self, D):
        k, _ = self._profile(np.asarray(D, dtype=float))
        return np.prod(k, axis=-1)

    def gradient(self, D):
        return self.value_and_gradient(D)[1]

    def value_and_gradient(self, D):
        k, dk = self._profile(np.asarray(D, dtype=float))
        return _separable_product(k, dk)

    def pairwise_value_and_gradient(self, X, T):
        """``K(x_j - t_i)`` (n, m) and its gradient (n, m, n_dims) for all
        pairs, from the sines and cosines of the points alone (see
        ``_pairwise_profile``): no trigonometric function of an (n, m)
        array."""
        X = np.asarray(X, dtype=float)
        T = np.asarray(T, dtype=float)
        left = _per_samples(X, ("dirichlet", self.cutoff), self._sample_sines)
        if X.shape[1] == 1:
            k, dk = self._pairwise_profile(X[:, 0], T[:, 0], left[0])
            return k, dk[:, :, None]
        shape = (X.shape[0], T.shape[0], X.shape[1])
        k, dk = np.empty(shape), np.empty(shape)
        for axis in range(X.shape[1]):
            k[..., axis], dk[..., axis] = self._pairwise_profile(
                X[:, axis], T[:, axis], left[axis]
            )
        return _separable_product(k, dk)

    def _sample_sines(self, X):
        """Per axis, ``[sin(a x), cos(a x)]`` (n, 2) of the samples'
        coordinates for ``a = pi`` and ``a = N pi`` (see
        ``_pairwise_profile``; kept for a read-only ``X``)."""
        N = 2 * self.cutoff + 1
        return [
            tuple(
                np.column_stack([np.sin(a * X[:, axis]), np.cos(a * X[:, axis])])
                for a in (np.pi, N * np.pi)
            )
            for axis in range(X.shape[1])
        ]

    def matrix(self, X, T):
        """``K(x_j - t_i)`` (n, m) alone: the product over the axes of
        ``k(u) = sin(N pi u) / (N sin(pi u))``, the sines of the differences
        by angle addition (see ``_pairwise_profile``); where
        ``|sin(pi u)| < 1e-2`` (where the quotient would lose more than
        ``1e-14``) from the cosine sum."""
        X = np.asarray(X, dtype=float)
        T = np.asarray(T, dtype=float)
        N = 2 * self.cutoff + 1
        K = None
        for axis in range(X.shape[1]):
            x, t = X[:, axis], T[:, axis]
            s1 = np.outer(np.sin(np.pi * x), np.cos(np.pi * t))
            s1 -= np.outer(np.cos(np.pi * x), np.sin(np.pi * t))
            sN = np.outer(np.sin(N * np.pi * x), np.cos(N * np.pi * t))
            sN -= np.outer(np.cos(N * np.pi * x), np.sin(N * np.pi * t))
            near = np.abs(s1) < 1e-2
            s1[near] = 1.0
            k = np.divide(sN, s1, out=sN)
            k *= 1.0 / N
            idx = np.nonzero(near)
            if idx[0].size:
                k[idx] = self._profile(x[idx[0]] - t[idx[1]])[0]
            K = k if K is None else np.multiply(K, k, out=K)
        return K

    def grid_factors(self, X, axes):
        """Per-axis factors of ``K(x_j - t)`` on the tensor grid of
        ``axes``: ``F_k[j, i] = k(x_jk - axes[k][i])``, the 1-D kernel
        (``K`` is their product)."""
        X = np.asarray(X, dtype=float)
        return [
            self._pairwise_profile(X[:, k], np.asarray(g, dtype=float))[0]
            for k, g in enumerate(axes)
        ]

    def _pairwise_profile(self, x, t, left=None):
        """``k(x_j - t_i)`` and ``k'(x_j - t_i)``, shape (n, m), for 1-D ``x``
        (n,) and ``t`` (m,).

        With ``u = x - t``, the angle-addition formulas

            sin(a u) = sin(a x) cos(a t) - cos(a x) sin(a t),
            cos(a u) = cos(a x) cos(a t) + sin(a x) sin(a t),

        for ``a = pi`` and ``a = N pi`` give ``sin(pi u)``, ``cos(pi u)``,
        ``sin(N pi u)``, ``cos(N pi u)`` as four (n, 2) @ (2, m) products;
        then ``k = sin(N pi u) / (N sin(pi u))`` and
        ``k' = pi (N cos(N pi u) sin(pi u) - sin(N pi u) cos(pi u)) /
        (N sin(pi u)^2)``, both 1-periodic (``N`` is odd) so no wrapping is
        needed. The products carry an absolute error of about ``N 1e-16``,
        which the division by ``sin(pi u)^2`` amplifies near ``u = 0 mod 1``:
        where ``|sin(pi u)| < 0.05`` (about 3% of random pairs) the entries
        are recomputed from the wrapped difference ``u`` by ``_profile``.
        ``left``: the samples' ``[sin(a x), cos(a x)]`` for both ``a`` if
        known (:meth:`_sample_sines`).
        """
        N = 2 * self.cutoff + 1

        def sin_cos_of_differences(a, left):
            if left is None:
                left = np.column_stack([np.sin(a * x), np.cos(a * x)])
            sa, ca = np.sin(a * t), np.cos(a * t)
            return left @ np.vstack([ca, -sa]), left @ np.vstack([sa, ca])

        left_1, left_N = (None, None) if left is None else left
        s1, c1 = sin_cos_of_differences(np.pi, left_1)
        sN, cN = sin_cos_of_differences(N * np.pi, left_N)
        near = np.abs(s1) < 0.05
        denom = np.where(near, 1.0, s1)
        k = sN / denom
        k *= 1.0 / N
        # numerator N cos(N pi u) sin(pi u) - sin(N pi u) cos(pi u), in cN
        cN *= s1
        cN *= N
        c1 *= sN
        cN -= c1
        np.square(denom, out=denom)
        denom *= N / np.pi
        dk = np.divide(cN, denom, out=cN)
        idx = np.nonzero(near)
        if idx[0].size:
            k[idx], dk[idx] = self._profile(x[idx[0]] - t[idx[1]])
        return k, dk


def _separable_product(k, dk):
    """``prod_k k_k`` and its gradient ``dk_k prod_{l != k} k_l`` (last axis)."""
    d = k.shape[-1]
    if d == 1:
        return k[..., 0].copy(), dk
    # Products of all the other factors, without dividing by k (which
    # vanishes at the zeros of the Dirichlet kernel): prefix and suffix
    # products, a loop over the axes.
    left = [None] * d
    right = [None] * d
    left[1], right[d - 2] = k[..., 0], k[..., d - 1]
    for i in range(2, d):
        left[i] = left[i - 1] * k[..., i - 1]
        right[d - 1 - i] = right[d - i] * k[..., d - i]
    grad = dk.copy()
    grad[..., 0] *= right[0]
    grad[..., d - 1] *= left[d - 1]
    for i in range(1, d - 1):
        grad[..., i] *= left[i] * right[i]
    return left[d - 1] * k[..., d - 1], grad


class GaussianKernel(ConvolutionKernel):
    """Gaussian kernel on ``R^n_dims``: ``K(D) = exp(-|D|^2 / (2 sigma^2))``.

    Parameters
    ----------
    bandwidth : float
        The standard deviation ``sigma > 0``; also the ``length_scale``.
    """

    periodic = False
    grid_factors_by_coordinate = True
    #: (its matrix is one exponential of a matrix product: values on a grid
    #: from the factors do not pay)
    tensor_values = False

    def __init__(self, bandwidth):
        if isinstance(bandwidth, bool) or not isinstance(bandwidth, Real):
            raise TypeError(
                f"bandwidth must be a float, got {type(bandwidth).__name__} "
                f"{bandwidth!r}."
            )
        if not (np.isfinite(bandwidth) and bandwidth > 0):
            raise ValueError(f"bandwidth must be positive and finite, got {bandwidth}.")
        self.bandwidth = float(bandwidth)

    @property
    def length_scale(self):
        return self.bandwidth

    def __repr__(self):
        return f"GaussianKernel(bandwidth={self.bandwidth})"

    def value(self, D):
        D = np.asarray(D, dtype=float)
        return np.exp(np.einsum("...k,...k->...", D, D) / (-2 * self.bandwidth**2))

    def gradient(self, D):
        return self.value_and_gradient(D)[1]

    def value_and_gradient(self, D):
        D = np.asarray(D, dtype=float)
        K = self.value(D)
        # grad K(D) = -D / sigma^2 K(D)
        return K, D * (K / (-(self.bandwidth**2)))[..., None]

    def matrix(self, X, T):
        """``K(x_j - t_i)`` (n, m) alone (see
        :meth:`pairwise_value_and_gradient`)."""
        return self._pairwise_value(
            np.asarray(X, dtype=float), np.asarray(T, dtype=float)
        )[0]

    def _samples(self, X):
        """The samples' coordinates relative to the first sample, transposed
        (n_dims, n), and ``U = [u, -|u|^2 / 2, 1]^T`` (n_dims + 2, n), ``u =
        (x - x_0) / sigma`` (see :meth:`_pairwise_value`); kept for a
        read-only ``X`` by :func:`_per_samples`."""
        center = X[0] if X.shape[0] else np.zeros(X.shape[1])
        Xc = (X - center).T.copy()
        d = X.shape[1]
        U = np.empty((d + 2, X.shape[0]))
        np.divide(Xc, self.bandwidth, out=U[:d])
        U[d] = -0.5 * np.square(U[:d]).sum(axis=0)
        U[d + 1] = 1.0
        return center, Xc, U

    def _moment_rows(self, X):
        """``[1, x, x x^T]`` relative to the first sample, one row per
        coordinate product (1 + n_dims + n_dims^2, n), for
        :meth:`contract_derivatives`; kept for a read-only ``X``."""
        _, Xc, _ = _per_samples(X, ("gaussian", self.bandwidth), self._samples)
        d, n = Xc.shape
        P = np.empty((1 + d + d * d, n))
        P[0] = 1.0
        P[1 : 1 + d] = Xc
        np.multiply(Xc[:, None, :], Xc[None, :, :], out=P[1 + d :].reshape(d, d, n))
        return P

    def _pairwise_value(self, X, T):
        """``K`` (n, m) and the coordinates relative to the first sample,
        transposed (n_dims, n) and (n_dims, m): the exponent ``-|x - t|^2 /
        (2 sigma^2) = u.w - |u|^2 / 2 - |w|^2 / 2`` (``u = x / sigma``, ``w
        = t / sigma``) as one product ``[u, -|u|^2 / 2, 1] [w, 1, -|w|^2 /
        2]^T``, clipped at 0. (Coordinates are kept axis by axis, in
        contiguous rows: numpy is slow along an axis of length n_dims. The
        samples' part is kept between calls when ``X`` is read-only.)"""
        center, Xc, U = _per_samples(X, ("gaussian", self.bandwidth), self._samples)
        Tc = (T - center).T
        d = X.shape[1]
        W = np.empty((d + 2, T.shape[0]))
        np.divide(Tc, self.bandwidth, out=W[:d])
        W[d] = 1.0
        W[d + 1] = -0.5 * np.square(W[:d]).sum(axis=0)
        sq = U.T @ W
        np.minimum(sq, 0.0, out=sq)
        return np.exp(sq, out=sq), Xc, Tc

    def pairwise_value_and_gradient(self, X, T):
        """``K(x_j - t_i)`` (n, m) and its gradient (n, m, n_dims) for all
        pairs: ``|x - t|^2 = |x|^2 + |t|^2 - 2 x.t`` by one matrix product
        (coordinates relative to the first sample, which keeps the
        cancellation at the scale of the samples' spread), one exponential
        per pair, and ``grad K = -(x - t) K / sigma^2`` axis by axis."""
        return self._value_and_gradient(X, T, -1.0)

    def matrix_and_gradient(self, X, T):
        """``K(x_j - t_i)`` (n, m) and its gradient in ``t_i``, ``(x_j -
        t_i) K / sigma^2`` (n, m, n_dims), as
        :meth:`pairwise_value_and_gradient` with the sign of the gradient
        taken in the same pass."""
        return self._value_and_gradient(X, T, 1.0)

    def _value_and_gradient(self, X, T, sign):
        """``K`` (n, m) and ``sign (x_j - t_i) K / sigma^2`` (n, m, n_dims),
        axis by axis into contiguous (n, m) blocks, returned as a view."""
        X = np.asarray(X, dtype=float)
        T = np.asarray(T, dtype=float)
        K, Xc, Tc = self._pairwise_value(X, T)
        d = X.shape[1]
        dK = np.empty((d, *K.shape))
        K_scaled = K * (sign / self.bandwidth**2)
        for k in range(d):
            np.subtract.outer(Xc[k], Tc[k], out=dK[k])
            dK[k] *= K_scaled
        return K, dK.transpose(1, 2, 0)

    def contract_gradient(self, X, T, values, v):
        """``grad c(t_i)`` (m, n_dims) for ``c(t) = sum_j v_j K(x_j - t)``
        from the values ``values[j, i] = K(x_j - t_i)`` (n, m), without the
        gradients of the pairs: with ``grad_t K(x - t) = K (x - t) /
        sigma^2``, ``grad c(t_i) = (M_i - S_i t_i) / sigma^2``, ``S_i = sum_j
        v_j K_ji``, ``M_i = sum_j v_j x_j K_ji`` (one product ``[v, v x]^T
        K``; coordinates relative to the first sample). Linear in
        ``values``."""
        X = np.asarray(X, dtype=float)
        T = np.asarray(T, dtype=float)
        center, Xc, _ = _per_samples(X, ("gaussian", self.bandwidth), self._samples)
        d = X.shape[1]
        B = np.empty((d + 1, X.shape[0]))
        B[0] = v
        np.multiply(Xc, v, out=B[1:])
        moments = B @ values  # (1 + d, m)
        return ((moments[1:] - moments[0] * (T - center).T) / self.bandwidth**2).T

    def contract_derivatives(self, X, T, v):
        """``c_i = sum_j v_j K(x_j - t_i)``, its gradient (m, n_dims) and
        Hessian (m, n_dims, n_dims) in ``t_i``.

        With ``D = x_j - t_i``, ``grad_t K(x - t) = K D / sigma^2`` and
        ``Hess_t K(x - t) = K (D D^T / sigma^4 - I / sigma^2)``. The sums
        over ``j`` come from the moments ``S_i = sum_j w_ji``, ``M_i =
        sum_j w_ji x_j``, ``Q_i = sum_j w_ji x_j x_j^T`` of ``w_ji = v_j
        K(x_j - t_i)``, one product ``v [1, x, x x^T]^T K`` (coordinates
        relative to the first sample)::

            c_i = S_i,    grad c_i = (M_i - S_i t_i) / sigma^2,
            Hess c_i = (Q_i - M_i t_i^T - t_i M_i^T + S_i t_i t_i^T) / sigma^4
                       - S_i I / sigma^2."""
        X = np.asarray(X, dtype=float)
        T = np.asarray(T, dtype=float)
        v = np.asarray(v, dtype=float)
        K, _, Tc = self._pairwise_value(X, T)
        d = X.shape[1]
        P = _per_samples(X, ("gaussian moments", self.bandwidth), self._moment_rows)
        moments = (P * v) @ K  # (1 + d + d^2, m)
        S = moments[0]
        t = Tc.T  # (m, d)
        M = moments[1 : 1 + d].T  # (m, d)
        s2 = self.bandwidth**2
        # Q - (M t^T + t M^T) + S t t^T, in (m, d, d) arrays, each term
        # exactly symmetric
        Mt = M[:, :, None] * t[:, None, :]
        Mt += Mt.transpose(0, 2, 1).copy()
        H = moments[1 + d :].T.reshape(-1, d, d) - Mt
        H += S[:, None, None] * (t[:, :, None] * t[:, None, :])
        H /= s2 * s2
        diagonal = np.arange(d)
        H[:, diagonal, diagonal] -= (S / s2)[:, None]
        grad = (M - S[:, None] * t) / s2
        return S, grad, H

    def grid_factors(self, X, axes):
        """Per-axis factors of ``K(x_j - t)`` on the tensor grid of
        ``axes``: ``F_k[j, i] = exp(-(x_jk - axes[k][i])^2 / (2 sigma^2))``
        (``K`` is their product)."""
        X = np.asarray(X, dtype=float)
        return [
            np.exp(
                np.square(X[:, k, None] - np.asarray(g)[None, :])
                / (-2 * self.bandwidth**2)
            )
            for k, g in enumerate(axes)
        ]


class IntegratedGaussianKernel(ConvolutionKernel):
    """A Gaussian point-spread function integrated over square pixels.

    Pixel ``x`` (its centre) of side ``s`` collects the part of the light of
    a source at ``t`` that falls on it::

        K(x - t) = prod_k [Phi((x_k - t_k + s/2) / sigma)
                           - Phi((x_k - t_k - s/2) / sigma)],

    ``Phi`` the standard normal CDF: the Gaussian of standard deviation
    ``sigma`` integrated over the pixel, so a spike's amplitude is its total
    intensity (the sum of ``K`` over a large enough image is 1). Its
    gradient is ``dk/du = (phi((u + s/2)/sigma) - phi((u - s/2)/sigma)) /
    sigma`` along each axis (``phi`` the normal density) times the other
    factors. Spikes live in the box the pixels cover.

    Parameters
    ----------
    bandwidth : float
        The standard deviation ``sigma > 0`` of the PSF, in the units of the
        pixel centres.
    pixel_size : float
        The side ``s > 0`` of a pixel.

    Notes
    -----
    Each factor is computed on the side of the tail it lies in
    (``Phi(-a) - Phi(-b)`` when ``a > 0``), so pixels far from a source get
    accurate small values instead of a difference of two numbers near 1.
    For all pairs of pixels and spikes (``pairwise_value_and_gradient``)
    the factors are tabulated over the distinct pixel coordinates of each
    axis (the columns and rows of an image) and gathered: the normal CDF is
    evaluated on (n_distinct, m) arrays, not on (n, m).
    ``length_scale = sigma sqrt((2 Phi(c) - 1) / (2 c phi(c)))``, ``c = s /
    (2 sigma)``, from ``K''(0) / K(0)`` (``sigma`` for small pixels).
    """

    grid_factors_by_coordinate = True

    def __init__(self, bandwidth, pixel_size):
        for name, value in (("bandwidth", bandwidth), ("pixel_size", pixel_size)):
            if isinstance(value, bool) or not isinstance(value, Real):
                raise TypeError(
                    f"{name} must be a float, got {type(value).__name__} {value!r}."
                )
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive and finite, got {value}.")
        self.bandwidth = float(bandwidth)
        self.pixel_size = float(pixel_size)

    def __repr__(self):
        return (
            f"IntegratedGaussianKernel(bandwidth={self.bandwidth}, "
            f"pixel_size={self.pixel_size})"
        )

    @property
    def length_scale(self):
        c = self.pixel_size / (2 * self.bandwidth)
        ratio = (2 * ndtr(c) - 1) / (2 * c * _normal_pdf(c))
        return float(self.bandwidth * np.sqrt(ratio))

    def domain(self, X):
        half = self.pixel_size / 2
        return Box(X.min(axis=0) - half, X.max(axis=0) + half, bounded=True)

    def _profile(self, U, gradient=True):
        """``k(U)`` and ``k'(U)`` elementwise, ``U = x - t`` (``k'`` None
        without ``gradient``)."""
        U = np.asarray(U, dtype=float)
        sigma, half = self.bandwidth, self.pixel_size / 2
        a = (U - half) / sigma
        b = (U + half) / sigma
        # Phi(b) - Phi(a), or Phi(-a) - Phi(-b) in the upper tail (a > 0):
        # with sign = -1 there, sign (Phi(sign b) - Phi(sign a))
        sign = np.where(a > 0, -1.0, 1.0)
        k = ndtr(sign * b)
        k -= ndtr(sign * a)
        k *= sign
        if not gradient:
            return k, None
        dk = (_normal_pdf(b) - _normal_pdf(a)) / sigma
        return k, dk

    def grid_factors(self, X, axes):
        """Per-axis factors of ``K(x_j - t)`` on the tensor grid of
        ``axes``: ``F_k[j, i] = k(x_jk - axes[k][i])``, the pixel-integrated
        1-D Gaussian (``K`` is their product)."""
        X = np.asarray(X, dtype=float)
        return [
            self._profile(X[:, k, None] - np.asarray(g, dtype=float)[None, :], False)[0]
            for k, g in enumerate(axes)
        ]

    def matrix(self, X, T):
        """``K(x_j - t_i)`` (n, m) alone, from the per-axis factors
        tabulated over the distinct pixel coordinates of each axis."""
        X = np.asarray(X, dtype=float)
        T = np.asarray(T, dtype=float)
        K = None
        for axis in range(X.shape[1]):
            u, rows = np.unique(X[:, axis], return_inverse=True)
            table = self._profile(u[:, None] - T[None, :, axis], False)[0]
            factor = np.take(table, rows.ravel(), axis=0)
            K = factor if K is None else K * factor
        return K

    def value(self, D):
        k, _ = self._profile(D)
        return np.prod(k, axis=-1)

    def gradient(self, D):
        return self.value_and_gradient(D)[1]

    def value_and_gradient(self, D):
        return _separable_product(*self._profile(D))

    def pairwise_value_and_gradient(self, X, T):
        """``K(x_j - t_i)`` (n, m) and its gradient (n, m, n_dims) from the
        factors tabulated over the distinct coordinates of each axis."""
        X = np.asarray(X, dtype=float)
        T = np.asarray(T, dtype=float)
        k, dk = [], []
        for axis in range(X.shape[1]):
            u, rows = np.unique(X[:, axis], return_inverse=True)
            table, dtable = self._profile(u[:, None] - T[None, :, axis])
            k.append(np.take(table, rows, axis=0))
            dk.append(np.take(dtable, rows, axis=0))
        return _separable_product_of_factors(k, dk)


def _separable_product_of_factors(k, dk):
    """``prod_a k_a`` and its gradient ``dk_a prod_{b != a} k_b`` (n, m, d)
    from lists of ``d`` contiguous (n, m) factors (prefix and suffix
    products: no division by a factor that may vanish)."""
    d = len(k)
    grad = np.empty((*k[0].shape, d))
    if d == 1:
        grad[:, :, 0] = dk[0]
        return k[0], grad
    left, right = [None] * d, [None] * d
    left[1], right[d - 2] = k[0], k[d - 1]
    for i in range(2, d):
        left[i] = left[i - 1] * k[i - 1]
        right[d - 1 - i] = right[d - i] * k[d - i]
    np.multiply(dk[0], right[0], out=grad[:, :, 0])
    np.multiply(dk[d - 1], left[d - 1], out=grad[:, :, d - 1])
    for i in range(1, d - 1):
        np.multiply(dk[i], left[i] * right[i], out=grad[:, :, i])
    return left[d - 1] * k[d - 1], grad


def _normal_pdf(z):
    return np.exp(-0.5 * np.square(z)) * (1 / np.sqrt(2 * np.pi))


def check_kernel(kernel):
    """Raise ``TypeError`` unless ``kernel`` follows the kernel contract."""
    missing = [
        name
        for name in ("value", "gradient")
        if not callable(getattr(kernel, name, None))
    ]
    if missing:
        raise TypeError(
            f"A kernel object must have callable methods value(D) and "
            f"gradient(D); {kernel!r} lacks {', '.join(missing)}."
        )
    return kernel


def _real_finite(a, kernel, what):
    """``a`` as floats, or a ValueError naming ``kernel`` when its values are
    complex, not numbers, or not finite (NaN or infinite)."""
    a = np.asarray(a)
    name = type(kernel).__name__
    if np.iscomplexobj(a):
        raise ValueError(
            f"The kernel {name} returned complex {what}; a kernel of "
            "differences must be real (use an operator with complex_valued = "
            "True for complex measurements)."
        )
    if not np.issubdtype(a.dtype, np.number) and a.dtype != bool:
        raise ValueError(f"The kernel {name} returned non-numeric {what}.")
    a = a.astype(float, copy=False)
    if not np.isfinite(a).all():
        raise ValueError(
            f"The kernel {name} returned NaN or infinite {what}; check the "
            "kernel at the differences of the data's scale."
        )
    return a


def kernel_value_and_gradient(kernel, D):
    """``K(D)`` and ``grad K(D)`` through the kernel contract, checked
    (shapes, real and finite values)."""
    both = getattr(kernel, "value_and_gradient", None)
    if callable(both):
        K, dK = both(D)
    else:
        K, dK = kernel.value(D), kernel.gradient(D)
    K = _real_finite(K, kernel, "values")
    dK = _real_finite(dK, kernel, "gradients")
    if K.shape != D.shape[:-1] or dK.shape != D.shape:
        raise ValueError(
            f"The kernel returned values of shape {K.shape} and gradients of "
            f"shape {dK.shape} for differences of shape {D.shape}; expected "
            f"{D.shape[:-1]} and {D.shape}."
        )
    return K, dK


def kernel_length_scale(kernel, n_dims, extent=1.0):
    """The kernel's ``length_scale``, or ``1 / sqrt(-K''(0))`` estimated by
    central differences of the gradient along the first axis."""
    ls = getattr(kernel, "length_scale", None)
    if ls is not None:
        ls = float(np.max(ls))
        if not (np.isfinite(ls) and ls > 0):
            raise ValueError(f"The kernel's length_scale must be positive, got {ls}.")
        return ls
    h = 1e-5 * extent
    D = np.zeros((2, n_dims))
    D[0, 0], D[1, 0] = h, -h
    _, dK = kernel_value_and_gradient(kernel, D)
    curvature = -(dK[0, 0] - dK[1, 0]) / (2 * h)
    if not (np.isfinite(curvature) and curvature > 0):
        raise ValueError(
            "Could not estimate the kernel's length scale (K has no maximum "
            "at 0?); give the kernel a positive length_scale attribute."
        )
    return float(1.0 / np.sqrt(curvature))


class KernelAdapter(ConvolutionKernel):
    """A user's kernel object (the kernel contract) as a forward operator.

    Parameters
    ----------
    kernel : kernel object
        See the module docstring for the contract.
    """

    def __init__(self, kernel):
        self.kernel = check_kernel(kernel)
        self.periodic = bool(getattr(kernel, "periodic", False))
        if callable(getattr(kernel, "pairwise_value_and_gradient", None)):
            self.pairwise_value_and_gradient = self._pairwise

    def __repr__(self):
        return repr(self.kernel)

    def value(self, D):
        return _real_finite(self.kernel.value(D), self.kernel, "values")

    def gradient(self, D):
        return _real_finite(self.kernel.gradient(D), self.kernel, "gradients")

    def value_and_gradient(self, D):
        return kernel_value_and_gradient(self.kernel, D)

    def _pairwise(self, X, T):
        K, dK = self.kernel.pairwise_value_and_gradient(X, T)
        K = _real_finite(K, self.kernel, "values")
        return K, np.array(_real_finite(dK, self.kernel, "gradients"))

    def length_scale(self, X):
        """The kernel's ``length_scale``, or ``1 / sqrt(-K''(0))`` estimated
        by central differences at the scale of the samples ``X``."""
        extent = 1.0
        if not self.periodic:
            extent = float(np.ptp(X, axis=0).max(initial=0)) or 1.0
        return kernel_length_scale(self.kernel, X.shape[1], extent)


class KernelUnit(SpikeUnit):
    """A spike seen through a kernel: ``phi(t)(x) = K(x - t)``.

    The :class:`~sklearn_meanfield._operators.SpikeUnit` of a kernel, for
    the kernel-level API (prepare, forward, backward, project).

    Parameters
    ----------
    kernel : kernel object
        See the module docstring for the contract.
    length_scale : float
        The kernel's length scale ``l``; the position metric is ``l**2``.
    domain : Torus, Box or None, default=None
        None: the torus (a periodic kernel) or free positions; without a
        domain the unit cannot build grids.
    """

    def __init__(self, kernel, length_scale, domain=None):
        operator = as_operator(kernel)
        if domain is None:
            # projection and differences do not depend on the bounds
            dims = np.zeros(1)
            domain = Torus(1) if operator.periodic else Box(dims, dims, bounded=False)
        super().__init__(operator, length_scale, domain)
