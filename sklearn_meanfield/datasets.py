"""Synthetic problems from the mean-field literature."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ._units import ACTIVATIONS

__all__ = ["make_teacher_student"]


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
