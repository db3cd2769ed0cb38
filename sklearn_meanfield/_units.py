"""What one particle contributes: the feature map ``phi(theta)(x)``.

A *unit* maps a cloud of particle positions ``Theta`` (n_particles, n_params)
and inputs ``X`` (n_samples, n_features) to the matrix of contributions

    Phi[j, i] = phi(theta_i)(x_j),

and back-propagates a sensitivity matrix ``C`` (n_samples, n_particles),
``C[j, i] = dLoss / dPhi[j, i]`` (already multiplied by the particle count, see
:mod:`sklearn_meanfield._flow`), into the position gradient

    grad[i] = sum_j C[j, i] * grad_theta phi(theta_i)(x_j).

Contract (duck-typed; :class:`NeuronUnit` and
:class:`~sklearn_meanfield._kernels.KernelUnit` implement it):

``prepare(X) -> Xp``
    Whatever the unit wants to precompute once per fit (e.g. ``[X, 1]``).
``forward(Xp, positions, out=None) -> (Phi, cache)``
    ``Phi`` of shape (n_samples, n_particles) and a cache for ``backward``;
    ``out`` is a reusable (n_samples, n_particles) work array the unit may
    write ``Phi`` into.
``backward(Xp, positions, cache, C) -> grad``
    The position gradient, shape (n_particles, n_params). ``C`` and the
    cache may be overwritten.
``backward_rank1(Xp, positions, cache, g, w) -> grad`` (optional)
    The same for ``C = g w^T`` (one output), without forming ``C``.
``metric(...)`` (kernel units) or ``fit_inputs(X, sample_weight)`` (neurons)
    The constant metric of the position space (:class:`IsotropicMetric`),
    or the unit-free input coordinates the positions live in
    (:class:`InputStandardizer`).
``init_positions(n_particles, Xp, sample_weight, random_state) -> positions``
    Positions that cover the parameter space (the covering condition of
    Chizat & Bach, 2018); used by the network estimators.
``homogeneous : bool``
    True when ``phi`` is positively 1-homogeneous in ``theta`` (ReLU), which
    makes the neuron ``w * phi(theta)`` 2-homogeneous.
"""

import numpy as np
import scipy.sparse as sp

__all__ = ["ACTIVATIONS", "InputStandardizer", "IsotropicMetric", "NeuronUnit"]


def _relu(Z):
    np.maximum(Z, 0, out=Z)
    return Z


def _relu_derivative(A):
    # sigma'(z) = 1{z > 0}, read off the activation (A > 0 iff z > 0); the
    # comparison written into A is an order of magnitude faster than np.sign
    np.greater(A, 0, out=A, casting="unsafe")
    return A


def _sigmoid(Z):
    # 1 / (1 + exp(-z)), written with tanh to stay finite for any z.
    Z *= 0.5
    np.tanh(Z, out=Z)
    Z += 1
    Z *= 0.5
    return Z


def _sigmoid_derivative(A):
    # sigma'(z) = sigma (1 - sigma) = 1/4 - (sigma - 1/2)^2, in place
    A -= 0.5
    np.square(A, out=A)
    np.subtract(0.25, A, out=A)
    return A


def _tanh(Z):
    np.tanh(Z, out=Z)
    return Z


def _tanh_derivative(A):
    # sigma'(z) = 1 - tanh(z)^2, in place
    np.square(A, out=A)
    np.subtract(1, A, out=A)
    return A


def _identity(Z):
    return Z


def _identity_derivative(A):
    A.fill(1)
    return A


#: name -> (activation in place of the pre-activation, derivative in place of
#: the activation, positively 1-homogeneous). "logistic" is MLP's name of the
#: sigmoid; "identity" makes the network linear in x (a low-rank-penalised
#: linear model), 1-homogeneous like ReLU.
ACTIVATIONS = {
    "relu": (_relu, _relu_derivative, True),
    "sigmoid": (_sigmoid, _sigmoid_derivative, False),
    "logistic": (_sigmoid, _sigmoid_derivative, False),
    "tanh": (_tanh, _tanh_derivative, False),
    "identity": (_identity, _identity_derivative, True),
}


class NeuronUnit:
    """A hidden neuron: ``phi(theta)(x) = sigma(theta . [B x, 1])``.

    ``B x`` are the inputs in the unit-free coordinates of an
    :class:`InputStandardizer` (``(x - mean) / std`` by default), fitted on
    the training data by :meth:`fit_inputs`: positions ``theta`` live in
    those coordinates, so the flow, its step sizes and the weight decay on
    ``theta`` do not depend on the units of ``X``. :meth:`to_raw_positions`
    gives the same neurons on ``[x, 1]``.

    Parameters
    ----------
    activation : {"relu", "sigmoid", "logistic", "tanh", "identity"}
        The activation ``sigma`` (``"logistic"`` is ``"sigmoid"``).
    init_scale : float, default=1.0
        Radius of the initial positions (see ``init_positions``).
    metric : {"standardize", "diagonal", "euclidean"}, default="standardize"
        The input coordinates (:class:`InputStandardizer`).

    Notes
    -----
    The forward pass is one matrix product ``Z = Xp @ Theta.T`` (n_samples,
    n_particles) followed by an in-place activation; the backward pass is
    ``grad = (C * sigma'(Z)).T @ Xp``: two BLAS calls per step.
    """

    def __init__(self, activation="relu", init_scale=1.0, metric="standardize"):
        self.activation = activation
        self.init_scale = init_scale
        self.metric_kind = metric
        self._act, self._dact, self.homogeneous = ACTIVATIONS[activation]
        self.inputs = None

    def fit_inputs(self, X, sample_weight):
        """Fit the input coordinates on ``X`` (weighted by ``sample_weight``)."""
        self.inputs = InputStandardizer(self.metric_kind).fit(X, sample_weight)
        return self

    def prepare(self, X):
        """``[B x, 1]`` (n_samples, n_features + 1) in ``X``'s dtype. For a
        sparse ``X`` the centring is not applied to the matrix (it would
        densify it) but to the positions in ``forward`` and ``backward``."""
        return self.inputs.transform(X)

    def _effective(self, Xp, positions):
        """Positions acting on a sparse ``Xp`` whose centring was deferred:
        ``theta_eff = [theta_x, theta_1 - theta_x . c]``, ``c = mean / std``."""
        center = self.inputs.center_ if sp.issparse(Xp) else None
        if center is None:
            return positions
        eff = positions.copy()
        eff[:, -1] -= positions[:, :-1] @ center.astype(positions.dtype)
        return eff

    def _uncenter_gradient(self, Xp, grad):
        center = self.inputs.center_ if sp.issparse(Xp) else None
        if center is not None:
            grad[:, :-1] -= np.outer(grad[:, -1], center.astype(grad.dtype))
        return grad

    def forward(self, Xp, positions, out=None):
        """``Phi = sigma(Xp @ Theta.T)`` (n_samples, n_particles), written into
        ``out`` when given (a reused buffer saves the page faults of a fresh
        n x m array at every step). Returns ``(Phi, cache)``, the cache being
        ``Phi`` itself: the derivatives are recovered from the activation."""
        if sp.issparse(Xp):
            Z = np.asarray(Xp @ self._effective(Xp, positions).T)
        else:
            Z = np.matmul(Xp, positions.T, out=out)
        A = self._act(Z)
        return A, A

    def backward(self, Xp, positions, cache, C):
        """``grad = (C * sigma'(Z)).T @ Xp``; overwrites ``cache`` (with the
        derivative) and ``C``."""
        C *= self._dact(cache)
        # (Xp.T @ C).T runs faster than C.T @ Xp in OpenBLAS for tall C
        return self._uncenter_gradient(Xp, np.array(Xp.T @ C).T)

    def backward_rank1(self, Xp, positions, cache, g, w):
        """``backward`` for ``C = g w^T`` (one output), without forming C:
        ``grad_i = w_i sum_j sigma'(Z_ji) g_j Xp_j``, i.e.
        ``((g * Xp).T @ sigma'(Z)).T * w``. Overwrites ``cache``."""
        D = self._dact(cache)
        gX = Xp.multiply(g[:, None]) if sp.issparse(Xp) else g[:, None] * Xp
        grad = np.array(gX.T @ D).T
        grad *= w[:, None]
        return self._uncenter_gradient(Xp, grad)

    def to_raw_positions(self, positions):
        """The positions acting on ``[x, 1]``: ``theta_raw = B^T theta``."""
        return self.inputs.to_raw(positions)

    def from_raw_positions(self, positions):
        """Inverse of :meth:`to_raw_positions`."""
        return self.inputs.from_raw(positions)

    def init_positions(self, n_particles, Xp, sample_weight, random_state):
        """Positions covering all directions of the parameter space.

        For ReLU, directions ``u_i`` uniform on the unit sphere of
        R^(n_features + 1); for sigmoid and tanh, ``u_i ~ N(0, I / p)`` (full
        support, ``E|u_i|^2 = 1``, ``p = n_features + 1``). The positions are
        ``theta_i = init_scale * u_i`` in the unit-free coordinates, so the
        pre-activations have mean square about ``init_scale**2`` whatever
        the units of ``X``.
        """
        p = Xp.shape[1]
        U = random_state.standard_normal((n_particles, p))
        if self.homogeneous:
            # 2-homogeneous neurons: only directions matter, cover the sphere.
            U /= np.linalg.norm(U, axis=1, keepdims=True)
        else:
            # sigmoid / tanh: cover the whole space (a Gaussian has full
            # support), with the same mean square radius.
            U /= np.sqrt(p)
        U *= self.init_scale
        return U.astype(Xp.dtype, copy=False)


class IsotropicMetric:
    """The constant metric ``M = I / scale`` on positions: the flow moves them
    by ``-eta * scale * grad`` (``scale`` the squared length scale of the
    position space, e.g. a kernel's)."""

    def __init__(self, scale):
        self.scale = float(scale)

    def precondition(self, G):
        """``G M^(-1) = scale * G``."""
        return G * self.scale

    def inverse_sqrt(self, U):
        """``U M^(-1/2) = sqrt(scale) * U``."""
        return U * np.sqrt(self.scale)


class InputStandardizer:
    """Unit-free coordinates of the inputs, ``B x = (x - offset) / scale``.

    The network estimators train their neurons on ``[B x, 1]``: the
    flow is the paper's Euclidean flow in these coordinates and the weight
    decay penalises the positions there, so a per-feature affine change of
    ``X`` leaves the fitted model unchanged.

    Parameters
    ----------
    kind : {"standardize", "diagonal", "euclidean"}
        ``"standardize"``: ``offset`` and ``scale`` the weighted mean and
        standard deviation of each feature (a feature that takes one value
        on the samples of positive weight gets ``scale = 1``, as in
        ``StandardScaler``); invariant to any
        per-feature affine change of ``X``. ``"diagonal"``: ``offset = 0``,
        ``scale`` the root mean square of each feature; invariant to
        per-feature scaling only. ``"euclidean"``: ``B = I``, the paper's flow
        on ``X`` as given (not invariant).

    Attributes
    ----------
    offset_, scale_ : ndarray of shape (n_features,), float64
    center_ : ndarray of shape (n_features,) or None
        ``offset_ / scale_`` when centring is on (applied to the positions
        for sparse inputs), else None.
    """

    def __init__(self, kind="standardize"):
        self.kind = kind

    def fit(self, X, sample_weight):
        """Fit ``offset_`` and ``scale_`` on ``X`` (weights summing to one).

        Raises
        ------
        ValueError
            If a feature that varies has a spread below the smallest normal
            number of ``X``'s dtype (see :func:`check_spread`).
        """
        p = X.shape[1]
        self.offset_, self.scale_ = np.zeros(p), np.ones(p)
        if self.kind in ("diagonal", "standardize"):
            center = self.kind == "standardize"
            offset, scale, varying = column_spread(X, sample_weight, center=center)
            check_spread(scale, varying, X.dtype, "X", "features")
            # a feature that does not vary gets scale 1, as in StandardScaler
            scale[~varying] = 1.0
            self.scale_ = scale
            if center:
                self.offset_ = offset
        self.center_ = self.offset_ / self.scale_ if np.any(self.offset_ != 0) else None
        return self

    def transform(self, X):
        """``[B x, 1]`` in ``X``'s dtype; for sparse ``X``, ``[x / scale, 1]``
        (CSR; the centring is left to the positions, see ``center_``)."""
        if sp.issparse(X):
            X = sp.csr_array(X) @ sp.diags_array((1.0 / self.scale_).astype(X.dtype))
            ones = sp.csr_array(np.ones((X.shape[0], 1), dtype=X.dtype))
            return sp.hstack([X, ones], format="csr").astype(X.dtype)
        Xp = np.empty((X.shape[0], X.shape[1] + 1), dtype=X.dtype)
        affine_transform(X, self.offset_, self.scale_, out=Xp[:, :-1])
        Xp[:, -1] = 1
        return Xp

    def to_raw(self, positions):
        """``theta_raw = B^T theta``: ``theta_raw . [x, 1] = theta . [B x, 1]``."""
        raw = np.array(positions, dtype=positions.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            raw[:, :-1] /= self.scale_.astype(positions.dtype)
            if self.center_ is not None:
                raw[:, -1] -= positions[:, :-1] @ self.center_.astype(positions.dtype)
        if not np.all(np.isfinite(raw)):
            # only where the spread of a feature is extreme
            bad = np.flatnonzero(~np.all(np.isfinite(raw[:, :-1]), axis=0))
            raise ValueError(
                "The fitted positions overflow in the units of X "
                f"({positions.dtype}): theta_raw = theta / scale with the "
                f"spreads {self.scale_[bad[:5]].tolist()} of features "
                f"{bad[:5].tolist()} (or the intercept column, theta . "
                "mean / scale). Rescale X."
            )
        return raw

    def from_raw(self, positions):
        """Inverse of :meth:`to_raw`."""
        theta = np.array(positions, dtype=positions.dtype)
        theta[:, :-1] *= self.scale_.astype(positions.dtype)
        if self.center_ is not None:
            theta[:, -1] += positions[:, :-1] @ self.offset_.astype(positions.dtype)
        return theta


def affine_transform(X, offset, scale, out):
    """``out = (X - offset) / scale`` without spurious overflow.

    Computed as ``(X/2 - offset/2) / (scale/2)``: halving is exact for
    normal numbers, so the result rounds as ``(X - offset) / scale`` does,
    while ``X - offset`` itself, for values of opposite signs near the
    largest float, would overflow. ``out`` may be of a narrower dtype than
    ``X`` and ``offset`` (the arithmetic runs in the wider one).
    """
    np.multiply(X, 0.5, out=out, casting="unsafe")
    out -= 0.5 * np.asarray(offset)
    out /= 0.5 * np.asarray(scale)
    return out


def column_spread(X, sample_weight, center=True):
    """Weighted spread of each column of ``X``, in float64, with no overflow or
    underflow on the way.

    With ``sum_j s_j = 1``: for ``center=True`` the mean ``mu_k = sum_j s_j
    x_jk`` and the standard deviation ``sqrt(sum_j s_j (x_jk - mu_k)^2)``;
    for ``center=False``, offset 0 and the root mean square
    ``sqrt(sum_j s_j x_jk^2)``. Each column is divided by its largest
    magnitude ``t_k`` before any square and multiplied back after the root,
    so features anywhere in the range of float64 (up to its largest number,
    down to subnormals) get their spread without overflow or underflow. The
    centred moments take two passes (no ``E[x^2] - E[x]^2``
    cancellation). For a sparse ``X`` the implicit zeros are counted
    without a dense copy.

    Returns
    -------
    offset, scale : ndarray of shape (n_features,)
    varying : ndarray of bool, shape (n_features,)
        Exactly whether the column takes two different values (is not all
        zero, for ``center=False``) on the samples of positive weight:
        decided on the values, not on a rounded spread. The offset of a
        column that does not vary is its value, exactly.
    """
    s = np.asarray(sample_weight, dtype=np.float64)
    if sp.issparse(X):
        return _sparse_column_spread(X, s, center)
    X = np.asarray(X)
    p = X.shape[1]
    positive = s > 0
    if not positive.all():
        # the samples of zero weight take no part (nor in the extremes)
        X, s = X[positive], s[positive]
    if X.shape[0] == 0:
        return np.zeros(p), np.ones(p), np.zeros(p, dtype=bool)
    lo = X.min(axis=0).astype(np.float64)
    hi = X.max(axis=0).astype(np.float64)
    top = np.maximum(np.abs(lo), np.abs(hi))
    varying = hi > lo if center else top > 0
    top[~(top > 0)] = 1.0
    Xn = np.divide(X, top, dtype=np.float64)
    if center:
        mean = s @ Xn
        Xn -= mean
    else:
        mean = np.zeros(p)
    np.square(Xn, out=Xn)
    offset = _offset(mean * top, lo, varying) if center else mean
    return offset, np.sqrt(s @ Xn) * top, varying


def _offset(mean, value, varying):
    """The offset of each column: its mean, or for a column that takes one
    value, that value exactly (a rounded mean would leave a constant as
    large as ``eps * value`` after centring: 2e292 at the largest float)."""
    return np.where(varying, mean, value)


def _sparse_column_spread(X, s, center):
    """:func:`column_spread` for a sparse ``X``: moments over the stored
    entries, plus ``(sum of the implicit zeros' weights) mean^2``."""
    X = sp.coo_array(X)
    X.sum_duplicates()
    p = X.shape[1]
    rows, cols = X.coords
    keep = s[rows] > 0
    rows, cols, data = rows[keep], cols[keep], X.data[keep].astype(np.float64)
    positive = np.count_nonzero(s > 0)
    stored = np.bincount(cols, minlength=p)
    lo, hi = np.full(p, np.inf), np.full(p, -np.inf)
    np.minimum.at(lo, cols, data)
    np.maximum.at(hi, cols, data)
    zeros = stored < positive  # a column with implicit zeros takes the value 0
    lo[zeros], hi[zeros] = np.minimum(lo[zeros], 0), np.maximum(hi[zeros], 0)
    top = np.maximum(np.abs(lo), np.abs(hi))
    varying = hi > lo if center else top > 0
    top[~(top > 0) | ~np.isfinite(top)] = 1.0
    dn = data / top[cols]
    sr = s[rows]
    # weight of the implicit zeros: exactly 0 for a column stored whole
    zero_weight = np.where(
        zeros, np.maximum(s.sum() - np.bincount(cols, weights=sr, minlength=p), 0), 0
    )
    if center:
        mean = np.bincount(cols, weights=sr * dn, minlength=p)
        var = np.bincount(cols, weights=sr * np.square(dn - mean[cols]), minlength=p)
        var += zero_weight * np.square(mean)
    else:
        mean = np.zeros(p)
        var = np.bincount(cols, weights=sr * np.square(dn), minlength=p)
    offset = _offset(mean * top, lo, varying) if center else mean
    return offset, np.sqrt(var) * top, varying


def check_spread(scale, varying, dtype, name, what):
    """Raise a ValueError when a varying column's spread is not a normal
    number of ``dtype``.

    Below the smallest normal number (``np.finfo(dtype).tiny``, 2.2e-308
    in float64, 1.2e-38 in float32) the values of the column are subnormal:
    they carry fewer significant bits than the dtype (down to one), and
    ``1 / scale``, by which the model maps its parameters back to the units
    of the data, overflows. The spread computed by :func:`column_spread` is
    never above the largest number (no overflow), so this is the only bound.
    """
    info = np.finfo(dtype)
    overflow = np.flatnonzero(~np.isfinite(scale))
    if overflow.size:
        # only from infinite values: e.g. y cast to the float32 of X
        raise ValueError(
            f"{name} has values beyond the largest {info.dtype.name} number "
            f"({info.max:.3g}) in {what} {overflow[:5].tolist()}. Rescale "
            f"{name}, or pass float64 data."
        )
    tiny = info.tiny
    bad = np.flatnonzero(varying & ~(scale >= tiny))
    if bad.size:
        raise ValueError(
            f"The spread of {what} {bad[:5].tolist()} of {name} "
            f"({np.asarray(scale)[bad[:5]].tolist()}) is below the smallest "
            f"normal {np.dtype(dtype).name} number ({tiny:.3g}): their values "
            f"are subnormal and lose precision. Rescale {name}."
        )
