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
``metric(Xp, sample_weight) -> metric``
    The constant metric of the position space: an object with
    ``precondition(G)`` and ``inverse_sqrt(U)`` (:class:`InputMetric`,
    :class:`IsotropicMetric`).
``init_positions(n_particles, Xp, sample_weight, random_state) -> positions``
    Positions that cover the parameter space (the covering condition of
    Chizat & Bach, 2018); used by the network estimators.
``homogeneous : bool``
    True when ``phi`` is positively 1-homogeneous in ``theta`` (ReLU), which
    makes the neuron ``w * phi(theta)`` 2-homogeneous.
"""

import numpy as np
import scipy.sparse as sp

__all__ = ["ACTIVATIONS", "InputMetric", "IsotropicMetric", "NeuronUnit"]


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


#: name -> (activation in place of the pre-activation, derivative in place of
#: the activation, positively 1-homogeneous)
ACTIVATIONS = {
    "relu": (_relu, _relu_derivative, True),
    "sigmoid": (_sigmoid, _sigmoid_derivative, False),
    "tanh": (_tanh, _tanh_derivative, False),
}


class NeuronUnit:
    """A hidden neuron: ``phi(theta)(x) = sigma(theta . [x, 1])``.

    Parameters
    ----------
    activation : {"relu", "sigmoid", "tanh"}
        The activation ``sigma``.
    init_scale : float, default=1.0
        Radius of the initial positions, in units where the pre-activations
        ``theta . [x, 1]`` have unit mean square (see ``init_positions``).
    metric : {"standardize", "diagonal", "euclidean"}, default="standardize"
        The metric of the position space (:class:`InputMetric`).

    Notes
    -----
    The forward pass is one matrix product ``Z = Xp @ Theta.T`` (n_samples,
    n_particles) followed by an in-place activation; the backward pass is
    ``grad = (C * sigma'(Z)).T @ Xp``: two BLAS calls per step.
    """

    def __init__(self, activation="relu", init_scale=1.0, metric="standardize"):
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"Unknown activation {activation!r}; expected one of "
                f"{sorted(ACTIVATIONS)}."
            )
        self.activation = activation
        self.init_scale = init_scale
        self.metric_kind = metric
        self._act, self._dact, self.homogeneous = ACTIVATIONS[activation]

    def prepare(self, X):
        """Return ``[X, 1]`` (n_samples, n_features + 1) in ``X``'s dtype
        (CSR if ``X`` is sparse)."""
        if sp.issparse(X):
            ones = sp.csr_array(np.ones((X.shape[0], 1), dtype=X.dtype))
            return sp.hstack([sp.csr_array(X), ones], format="csr")
        Xp = np.empty((X.shape[0], X.shape[1] + 1), dtype=X.dtype)
        Xp[:, :-1] = X
        Xp[:, -1] = 1
        return Xp

    def forward(self, Xp, positions, out=None):
        """``Phi = sigma(Xp @ Theta.T)`` (n_samples, n_particles), written into
        ``out`` when given (a reused buffer saves the page faults of a fresh
        n x m array at every step). Returns ``(Phi, cache)``, the cache being
        ``Phi`` itself: the derivatives are recovered from the activation."""
        if sp.issparse(Xp):
            Z = np.asarray(Xp @ positions.T)  # sparse @ dense: a new array
        else:
            Z = np.matmul(Xp, positions.T, out=out)
        A = self._act(Z)
        return A, A

    def backward(self, Xp, positions, cache, C):
        """``grad = (C * sigma'(Z)).T @ Xp``; overwrites ``cache`` (with the
        derivative) and ``C``."""
        C *= self._dact(cache)
        # (Xp.T @ C).T runs faster than C.T @ Xp in OpenBLAS for tall C
        return np.asarray(Xp.T @ C).T

    def backward_rank1(self, Xp, positions, cache, g, w):
        """``backward`` for ``C = g w^T`` (one output), without forming C:
        ``grad_i = w_i sum_j sigma'(Z_ji) g_j Xp_j``, i.e.
        ``((g * Xp).T @ sigma'(Z)).T * w``. Overwrites ``cache``."""
        D = self._dact(cache)
        gX = Xp.multiply(g[:, None]) if sp.issparse(Xp) else g[:, None] * Xp
        grad = np.asarray(gX.T @ D).T
        grad *= w[:, None]
        return grad

    def metric(self, Xp, sample_weight):
        """The constant metric of the position space (see :class:`InputMetric`)."""
        return InputMetric(self.metric_kind).fit(Xp, sample_weight)

    def init_positions(self, n_particles, Xp, sample_weight, random_state):
        """Positions covering all directions of the parameter space.

        For ReLU, directions ``u_i`` are uniform on the unit sphere of
        R^(n_features + 1); for sigmoid and tanh, ``u_i ~ N(0, I / p)`` (full
        support, ``E|u_i|^2 = 1``, ``p = n_features + 1``). The positions are
        ``theta_i = init_scale * B^T u_i`` with ``B`` from the metric of
        :meth:`metric`: ``theta_i . [x, 1] = init_scale * u_i . B [x, 1]``,
        so the pre-activations have mean square about ``init_scale**2``
        whatever the units of ``X``, and on standardised data the positions
        lie on the sphere of radius ``init_scale``.
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
        U = self.metric(Xp, sample_weight).inverse_sqrt(U)
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


class InputMetric:
    """A constant metric ``M`` on the space of neuron positions.

    The flow moves positions by ``-eta M^(-1) grad`` (the gradient flow of
    ``J`` for the metric ``<a, b>_M = a^T M b``), which is the Euclidean flow
    of the paper after the linear change of variables ``theta = B^T theta'``
    with ``M^(-1) = B^T B``, that is on the inputs ``B [x, 1]``.

    Parameters
    ----------
    kind : {"standardize", "diagonal", "euclidean"}
        ``"standardize"``: ``B [x, 1] = [(x - mean) / std, 1]`` with the
        weighted mean and standard deviation of each feature (a constant
        feature gets ``std = 1``, as in ``StandardScaler``): the flow on raw
        ``X`` is exactly the paper's flow on standardised ``X``, and on
        standardised data ``B = I``. ``"diagonal"``: ``B = diag(1 / s)``, ``s``
        the root mean square of each column of ``[x, 1]``. ``"euclidean"``:
        ``B = I``, the paper's flow on ``X`` as given.
    """

    def __init__(self, kind="standardize"):
        if kind not in ("standardize", "diagonal", "euclidean"):
            raise ValueError(f"Unknown metric {kind!r}.")
        self.kind = kind

    def fit(self, Xp, sample_weight):
        self.scale_, self.offset_ = None, None
        if self.kind == "diagonal":
            self.scale_ = 1.0 / feature_scale(Xp, sample_weight)
        elif self.kind == "standardize":
            mean, var = _weighted_mean_var(Xp[:, :-1], sample_weight)
            std = np.sqrt(var)
            # constant features (std at rounding level) are left unscaled
            tiny = std <= 1e-10 * np.maximum(np.abs(mean), 1.0)
            std[tiny] = 1.0
            # B = [[diag(1 / std), -mean / std], [0, 1]], kept as its two
            # parts: applying it costs O(n_params), not O(n_params^2)
            self.scale_ = np.append(1.0 / std, 1.0)
            self.offset_ = -mean / std
        return self

    def _times_B(self, U):
        """``U B`` (rows ``u`` to positions ``theta = B^T u``)."""
        if self.scale_ is None:
            return U
        V = U * self.scale_.astype(U.dtype, copy=False)
        if self.offset_ is not None:
            V[:, -1] += U[:, :-1] @ self.offset_.astype(U.dtype, copy=False)
        return V

    def _times_BT(self, G):
        """``G B^T``."""
        if self.scale_ is None:
            return G
        H = G * self.scale_.astype(G.dtype, copy=False)
        if self.offset_ is not None:
            H[:, :-1] += np.outer(G[:, -1], self.offset_.astype(G.dtype, copy=False))
        return H

    def precondition(self, G):
        """``G M^(-1) = G B^T B`` for row vectors ``G`` (n_particles,
        n_params)."""
        return self._times_B(self._times_BT(G))

    def inverse_sqrt(self, U):
        """``U B`` for row vectors ``U`` (``theta = B^T u``)."""
        return self._times_B(U)


def _weighted_mean_var(X, sample_weight):
    """Weighted mean and variance of each column (``sum_j s_j = 1``), in
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
        return mean, var + zeros * np.square(mean)
    X = np.asarray(X, dtype=np.float64)
    mean = s @ X
    return mean, s @ np.square(X - mean)


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
    s[~(s > 1e-12)] = 1.0
    return s
