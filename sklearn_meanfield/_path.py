"""Regularisation paths of the network estimators, with warm starts.

The convex formulation of ReLU networks (:mod:`sklearn_meanfield._certificates`)
gives ``alpha_max``, the smallest ``alpha`` at which the zero network is
optimal: as for the Lasso, the interesting ``alpha`` lie below it, on a
geometric grid from ``alpha_max`` down to ``eps * alpha_max``.
:func:`regularization_path` fits the grid from the largest ``alpha`` down,
each fit continuing from the previous one's particles (continuation), with
the particles that the penalty killed restarted on the sphere.
"""

import copy
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

__all__ = ["alpha_grid", "regularization_path"]


def alpha_grid(estimator, X, y, *, n_alphas=10, eps=1e-3, sample_weight=None):
    """A geometric grid of ``alpha`` from ``alpha_max`` down to ``eps *
    alpha_max`` (decreasing).

    ``alpha_max`` is computed on ``(X, y)`` in the unit-free coordinates of
    ``estimator`` (ReLU networks; for sigmoid and tanh, which have no
    ``alpha_max``, and when ``alpha_max = 0``, the grid starts at 1). For
    :class:`SparseSpikeDeconvolver`, ``alpha_max_`` is in the units of ``y``,
    as its ``alpha``.

    Parameters
    ----------
    estimator : MeanFieldRegressor, MeanFieldClassifier or SparseSpikeDeconvolver
    X, y : array-like
    n_alphas : int, default=10
    eps : float, default=1e-3
    sample_weight : array-like or None, default=None

    Returns
    -------
    alphas : ndarray of shape (n_alphas,)
    """
    probe = clone(estimator).set_params(max_iter=1, warm_start=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(X, y, sample_weight=sample_weight)
    # no alpha_max (sigmoid, tanh) or alpha_max = 0 (y fitted by a constant,
    # where every alpha gives the constant model): start at 1
    top = probe.alpha_max_ if probe.alpha_max_ else 1.0
    return np.geomspace(top, top * eps, n_alphas)


def regularization_path(
    estimator,
    X,
    y,
    *,
    alphas=None,
    n_alphas=10,
    eps=1e-3,
    sample_weight=None,
    warm_start=True,
):
    """Fit ``estimator`` at every ``alpha`` of a decreasing grid.

    With ``warm_start=True`` every fit starts from the particles of the fit
    at the previous (larger) ``alpha``, keeping its unit-free coordinates;
    particles whose mass fell to zero under the larger penalty are first
    restarted in pairs at random directions with output weights
    ``+init_scale`` and ``-init_scale``, which cancel (the covering condition
    of the initialisation, which continuation would lose). With
    ``warm_start=False`` every ``alpha`` is fitted from scratch. A
    :class:`SparseSpikeDeconvolver` restarts its dead particles itself (on
    its initial grid, see its ``warm_start``).

    Parameters
    ----------
    estimator : MeanFieldRegressor, MeanFieldClassifier or SparseSpikeDeconvolver
        The other parameters of the fits (``alpha`` is overridden).
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    alphas : array-like or None, default=None
        The grid; None for :func:`alpha_grid` with ``n_alphas`` and ``eps``.
        Fitted in decreasing order.
    n_alphas : int, default=10
    eps : float, default=1e-3
    sample_weight : array-like or None, default=None
    warm_start : bool, default=True

    Returns
    -------
    alphas : ndarray of shape (n_alphas,)
        Decreasing.
    estimators : list of fitted estimators
        One per ``alpha`` (independent copies), with their certificates
        (``alpha_max_``, ``certificate_max_``, ``dual_gap_``).
    """
    if alphas is None:
        alphas = alpha_grid(
            estimator, X, y, n_alphas=n_alphas, eps=eps, sample_weight=sample_weight
        )
    alphas = np.sort(np.asarray(alphas, dtype=float))[::-1]
    if alphas.size == 0 or not np.all(alphas >= 0):
        raise ValueError(f"alphas must be non-negative and not empty; got {alphas}.")
    rng = check_random_state(estimator.get_params().get("random_state"))
    current = clone(estimator).set_params(warm_start=False)
    fitted = []
    for alpha in alphas:
        current.set_params(alpha=float(alpha))
        if warm_start and fitted:
            current.set_params(warm_start=True)
            # (SparseSpikeDeconvolver restarts its dead particles in fit)
            recover = getattr(current, "_recover_dead_particles", None)
            if recover is not None:
                recover(rng)
        else:
            current = clone(current).set_params(warm_start=False)
        current.fit(X, y, sample_weight=sample_weight)
        fitted.append(copy.deepcopy(current))
    for est in fitted:
        est.set_params(warm_start=estimator.get_params()["warm_start"])
    return alphas, fitted
