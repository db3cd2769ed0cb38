"""Synthetic problems from the mean-field literature."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ._kernels import DirichletKernel, GaussianKernel
from ._units import ACTIVATIONS

__all__ = ["make_spikes", "make_teacher_student"]


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "n_teacher": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "noise": [Interval(Real, 0, None, closed="left")],
        "bias": ["boolean"],
        "task": [StrOptions({"regression", "classification"})],
        "n_classes": [Interval(Integral, 2, None, closed="left")],
        "return_teacher": ["boolean"],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_teacher_student(
    n_samples=1000,
    n_features=10,
    *,
    n_teacher=5,
    activation="relu",
    noise=0.0,
    bias=False,
    task="regression",
    n_classes=2,
    return_teacher=False,
    random_state=None,
):
    """Inputs and targets from a random two-layer teacher network.

    As in the experiments of Chizat & Bach (2018): ``x ~ N(0, I_d)`` and

        y = sum_{k=1}^{n_teacher} a_k sigma(u_k . x + c_k) + noise * eps,

    with unit-norm teacher neurons ``u_k`` (uniform on the sphere), output
    weights ``a_k = +-1`` (alternating signs: ``+1, -1, +1, ...``), biases
    ``c_k = 0`` unless ``bias=True`` (then ``c_k ~ U[-1, 1]``) and
    ``eps ~ N(0, 1)``.

    With ``task="classification"`` the targets are class labels read off
    the (noisy) teacher output: ``y = 1{f(x) > 0}`` for ``n_classes=2``,
    with ``f`` the teacher above; for ``n_classes > 2`` the teacher has
    ``n_classes`` outputs ``f_c(x) = sum_k a_kc sigma(u_k . x + c_k) + noise *
    eps_c``, with ``a_kc ~ N(0, 1)`` (no ties between classes) centred
    so that ``sum_k a_kc = 0`` for every class (when ``n_teacher > 1``), and
    ``y = argmax_c f_c(x)`` in ``{0, ..., n_classes - 1}``. ``noise`` then flips the
    labels of the points near the teacher's decision boundary.

    Parameters
    ----------
    n_samples : int, default=1000
    n_features : int, default=10
        The input dimension ``d``.
    n_teacher : int, default=5
        Number of teacher neurons ``m0``.
    activation : {"relu", "sigmoid", "tanh"}, default="relu"
    noise : float, default=0.0
        Standard deviation of the Gaussian noise added to ``y``.
    bias : bool, default=False
        Whether the teacher neurons have a bias.
    task : {"regression", "classification"}, default="regression"
        Real targets, or class labels from the sign (two classes) or the
        argmax (more classes) of the teacher.
    n_classes : int, default=2
        Number of classes when ``task="classification"``; ignored otherwise.
    return_teacher : bool, default=False
        Also return the teacher's output weights and positions.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Float targets (regression) or integer labels (classification).
    teacher_weights : ndarray of shape (n_teacher,) or (n_teacher, n_classes)
        The ``a_k`` (``a_kc`` for more than two classes); only with
        ``return_teacher=True``.
    teacher_positions : ndarray of shape (n_teacher, n_features + 1)
        The ``[u_k, c_k]``, in the layout of ``MeanFieldRegressor.positions_``;
        only with ``return_teacher=True``.
    """
    rng = check_random_state(random_state)
    U = rng.standard_normal((n_teacher, n_features))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    c = rng.uniform(-1, 1, size=n_teacher) if bias else np.zeros(n_teacher)
    a = np.where(np.arange(n_teacher) % 2 == 0, 1.0, -1.0)
    X = rng.standard_normal((n_samples, n_features))
    act = ACTIVATIONS[activation][0]
    if task == "classification" and n_classes > 2:
        # Drawn after X so that the regression stream is unchanged.
        a = rng.standard_normal((n_teacher, n_classes))
        if n_teacher > 1:
            # Zero column sums: every f_c has the same mean when the u_k . x
            # are identically distributed (no bias), so that no class is
            # favoured by the positive mean of ReLU / sigmoid outputs.
            a -= a.mean(axis=0)
    y = act(X @ U.T + c) @ a
    if noise > 0:
        y += noise * rng.standard_normal(y.shape)
    if task == "classification":
        y = (y > 0).astype(int) if y.ndim == 1 else y.argmax(axis=1)
    if return_teacher:
        return X, y, a, np.column_stack([U, c])
    return X, y


@validate_params(
    {
        "n_spikes": [Interval(Integral, 1, None, closed="left")],
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_dims": [Interval(Integral, 1, None, closed="left")],
        "kernel": [StrOptions({"dirichlet", "gaussian"})],
        "cutoff": [Interval(Integral, 1, None, closed="left")],
        "bandwidth": [Interval(Real, 0, None, closed="neither")],
        "min_separation": [Interval(Real, 0, None, closed="left")],
        "amplitude_range": [tuple],
        "positive": ["boolean"],
        "sampling": [StrOptions({"grid", "random"})],
        "noise": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_spikes(
    n_spikes=5,
    n_samples=101,
    n_dims=1,
    *,
    kernel="dirichlet",
    cutoff=10,
    bandwidth=0.05,
    min_separation=2.0,
    amplitude_range=(0.5, 1.5),
    positive=False,
    sampling="grid",
    noise=0.0,
    random_state=None,
):
    """Blurred, noisy samples of a sparse sum of spikes.

        y_j = sum_{i=1}^{n_spikes} a_i K(x_j - t_i) + noise * eps_j,

    ``eps_j ~ N(0, 1)``, ``K`` the Dirichlet kernel of cutoff ``cutoff`` on the
    torus ``[0, 1)^n_dims`` (:class:`~sklearn_meanfield.DirichletKernel`) or
    the Gaussian kernel of standard deviation ``bandwidth`` on ``R^n_dims``.
    Positions ``t_i`` are uniform in ``[0, 1)^n_dims`` (in
    ``[bandwidth, 1 - bandwidth]^n_dims`` for the Gaussian kernel), drawn
    again until every pair is at least ``min_separation / cutoff`` apart
    for the Dirichlet kernel, ``min_separation * bandwidth`` for the Gaussian
    (distance on the torus for the Dirichlet kernel; in several dimensions the
    largest coordinate difference, the l-infinity distance used by Candes &
    Fernandez-Granda). ``|a_i| ~ U[amplitude_range]`` with random signs
    (positive with ``positive=True``).

    Parameters
    ----------
    n_spikes : int, default=5
    n_samples : int, default=101
        Number of sample locations. With ``sampling="grid"``, a regular grid
        of ``q = round(n_samples ** (1/n_dims))`` points per axis (``q^n_dims``
        points): ``i / q`` on the torus, ``q`` points spanning ``[0, 1]`` for
        the Gaussian kernel. With ``"random"``, uniform in ``[0, 1)^n_dims``.
    n_dims : int, default=1
    kernel : {"dirichlet", "gaussian"}, default="dirichlet"
    cutoff : int, default=10
        Fourier cutoff ``fc`` of the Dirichlet kernel.
    bandwidth : float, default=0.05
        ``sigma`` of the Gaussian kernel.
    min_separation : float, default=2.0
        Minimum distance between spikes, in units of ``1/cutoff`` (Dirichlet)
        or of ``bandwidth`` (Gaussian). Candes & Fernandez-Granda (2014)
        guarantee exact recovery from ``2 / fc`` on.
    amplitude_range : tuple of two floats, default=(0.5, 1.5)
    positive : bool, default=False
    sampling : {"grid", "random"}, default="grid"
    noise : float, default=0.0
        Standard deviation of the Gaussian noise.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    X : ndarray of shape (n_samples, n_dims)
        Sample locations.
    y : ndarray of shape (n_samples,)
        Observed signal.
    positions : ndarray of shape (n_spikes, n_dims)
        True spike positions (sorted along the first axis).
    amplitudes : ndarray of shape (n_spikes,)
        True amplitudes ``a_i``.

    Raises
    ------
    ValueError
        If ``amplitude_range`` is not ``(low, high)`` with ``0 < low <=
        high``, or ``n_spikes`` spikes with that separation do not fit.
    """
    low, high = amplitude_range if len(amplitude_range) == 2 else (None, None)
    if low is None or not (0 < low <= high):
        raise ValueError(
            "amplitude_range must be a tuple (low, high) with 0 < low <= high; "
            f"got {amplitude_range!r}."
        )
    rng = check_random_state(random_state)
    periodic = kernel == "dirichlet"
    if periodic:
        K = DirichletKernel(cutoff)
        separation = min_separation / cutoff
        lo, hi = 0.0, 1.0
    else:
        K = GaussianKernel(bandwidth)
        separation = min_separation * bandwidth
        lo, hi = bandwidth, 1 - bandwidth
        if hi <= lo:
            lo, hi = 0.0, 1.0
    if n_dims == 1:
        T = _separated_1d(n_spikes, lo, hi, separation, periodic, rng)[:, None]
    else:
        # Rejection sampling, 100 configurations at a time.
        for _ in range(100):
            T = rng.uniform(lo, hi, size=(100, n_spikes, n_dims))
            D = np.abs(T[:, :, None, :] - T[:, None, :, :])
            if periodic:
                D = np.minimum(D, 1 - D)
            dist = D.max(axis=-1)
            dist[:, np.arange(n_spikes), np.arange(n_spikes)] = np.inf
            ok = np.flatnonzero(dist.min(axis=(1, 2)) >= separation)
            if ok.size:
                T = T[ok[0]]
                break
        else:
            raise ValueError(
                f"Could not place {n_spikes} spikes at least {separation:.3g} "
                f"apart in {n_dims} dimensions in 10000 draws; lower n_spikes "
                "or min_separation."
            )
    T = T[np.lexsort(T.T[::-1])]
    a = rng.uniform(low, high, size=n_spikes)
    if not positive:
        a *= rng.choice([-1.0, 1.0], size=n_spikes)
    if sampling == "grid":
        q = max(1, round(n_samples ** (1 / n_dims)))
        axis = np.arange(q) / q if periodic else np.linspace(0, 1, q)
        mesh = np.meshgrid(*([axis] * n_dims), indexing="ij")
        X = np.column_stack([g.ravel() for g in mesh])
    else:
        X = rng.uniform(size=(n_samples, n_dims))
    y = K.value(X[:, None, :] - T[None, :, :]) @ a
    if noise > 0:
        y += noise * rng.standard_normal(y.shape[0])
    return X, y, T, a


def _separated_1d(n, lo, hi, separation, periodic, rng):
    """``n`` points of ``[lo, hi)`` at least ``separation`` apart, uniform
    among such configurations: the gaps are ``separation`` plus a uniform
    (flat Dirichlet) split of the free length, the whole rotated at random on
    the torus."""
    length = hi - lo
    n_gaps = n if periodic else n + 1
    n_forced = n if periodic else n - 1
    free = length - n_forced * separation
    if free < -1e-12 * length:
        raise ValueError(
            f"Could not place {n} spikes at least {separation:.3g} apart in an "
            f"interval of length {length:.3g}; lower n_spikes or min_separation."
        )
    gaps = max(free, 0.0) * rng.dirichlet(np.ones(n_gaps))
    if periodic:
        T = lo + np.cumsum(gaps + separation) + rng.uniform(0, length)
        return np.sort(lo + np.mod(T - lo, length))
    steps = gaps[:n].copy()
    steps[1:] += separation
    return lo + np.cumsum(steps)
