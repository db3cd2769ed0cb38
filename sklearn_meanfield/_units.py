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
        standard deviation of each feature (a constant feature gets
        ``scale = 1``, as in ``StandardScaler``); invariant to any
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
        p = X.shape[1]
        self.offset_, self.scale_ = np.zeros(p), np.ones(p)
        if self.kind == "diagonal":
            self.scale_ = feature_scale(X, sample_weight)
        elif self.kind == "standardize":
            mean, std = _weighted_mean_std(X, sample_weight)
            # a constant column has variance 0 up to the rounding of its mean
            constant = ~(std > 1e-12 * np.abs(mean))
            std[constant] = 1.0
            self.offset_, self.scale_ = mean, std
        bad = ~(np.isfinite(self.scale_) & (self.scale_ > 0))
        if np.any(bad):
            raise ValueError(
                "The spread of features "
                f"{np.flatnonzero(bad)[:5].tolist()} of X is not representable "
                "in float64; rescale X."
            )
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
        np.subtract(X, self.offset_, out=Xp[:, :-1], casting="unsafe")
        Xp[:, :-1] /= self.scale_.astype(X.dtype)
        Xp[:, -1] = 1
        return Xp

    def to_raw(self, positions):
        """``theta_raw = B^T theta``: ``theta_raw . [x, 1] = theta . [B x, 1]``."""
        raw = np.array(positions, dtype=positions.dtype)
        raw[:, :-1] /= self.scale_.astype(positions.dtype)
        if self.center_ is not None:
            raw[:, -1] -= positions[:, :-1] @ self.center_.astype(positions.dtype)
        return raw

    def from_raw(self, positions):
        """Inverse of :meth:`to_raw`."""
        theta = np.array(positions, dtype=positions.dtype)
        theta[:, :-1] *= self.scale_.astype(positions.dtype)
        if self.center_ is not None:
            theta[:, -1] += positions[:, :-1] @ self.offset_.astype(positions.dtype)
        return theta


def _weighted_mean_std(X, sample_weight):
    """Weighted mean and standard deviation of each column (``sum_j s_j = 1``), in
    float64, in two passes (no ``E[x^2] - E[x]^2`` cancellation: a constant
    column has variance exactly 0). For a sparse ``X`` the centred values are
    summed over the stored entries and the implicit zeros add
    ``(1 - sum_{stored j} s_j) mean^2``, so no dense copy is made."""
    s = np.asarray(sample_weight, dtype=np.float64)
    if sp.issparse(X):
        X = sp.coo_array(X)
        X.sum_duplicates()
        rows, cols = X.coords
        p = X.shape[1]
        mean = np.bincount(cols, weights=s[rows] * X.data, minlength=p)
        stored = np.bincount(cols, weights=s[rows], minlength=p)
        centred = np.square(X.data - mean[cols]) * s[rows]
        var = np.bincount(cols, weights=centred, minlength=p)
        # weight of the implicit zeros: exactly 0 for a column stored whole
        full = np.bincount(cols, minlength=p) == X.shape[0]
        zeros = np.where(full, 0.0, np.maximum(s.sum() - stored, 0.0))
        return mean, np.sqrt(var + zeros * np.square(mean))
    # divided by the largest magnitude of each column first, so that the
    # squares cannot overflow (features up to the largest float64)
    X = np.asarray(X, dtype=np.float64)
    top = np.max(np.abs(X), axis=0) if X.shape[0] else np.ones(X.shape[1])
    top[~(top > 0)] = 1.0
    Xn = X / top
    mean = s @ Xn
    return mean * top, np.sqrt(s @ np.square(Xn - mean)) * top


def feature_scale(Xp, sample_weight):
    """Root weighted mean square of each column of ``Xp``, floored away from 0.

    ``s_k = sqrt(sum_j s_j Xp[j, k]^2)`` with ``sum_j s_j = 1``. A column of
    zeros gets ``s_k = 1``.
    """
    if sp.issparse(Xp):
        Xp = sp.csr_array(Xp, dtype=np.float64)
        ms = Xp.multiply(Xp).T @ np.asarray(sample_weight, dtype=np.float64)
    else:
        ms = sample_weight @ np.square(Xp, dtype=np.float64)
    s = np.sqrt(ms)
    s[~(s > 0)] = 1.0
    return s
