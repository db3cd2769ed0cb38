"""Optimality certificates of ReLU networks from the convex formulation.

For ReLU (positively 1-homogeneous) neurons the weight decay
``(alpha/2) (1/m) sum_i (|w_i|^2 + |theta_i|^2)`` equals, at its optimum
over the rescalings ``(w, theta) -> (c w, theta / c)``, ``alpha`` times the
total variation of the measure of directions ``nu = (1/m) sum_i w_i |theta_i|
delta_{theta_i / |theta_i|}``. The network then solves the convex problem
(Chizat & Bach, 2018, section 2; Bach, 2017)

    min over (vector) measures nu on the unit sphere, and b:
        R( integral relu(u . [x, 1]) dnu(u) + b ) + alpha |nu|,

all in the unit-free coordinates of the estimators (``[x, 1]`` standardised,
``R(F) = sum_j s_j l(y_j, F_j)``). With ``G_j = s_j dl/df(y_j, F_j)`` the loss
gradient at the fitted predictions, the measure is optimal iff

    |g(u)| <= alpha on the whole sphere,   g(u) = -sum_j G_j relu(u . [x_j, 1]),

with equality on its support. ``sup |g| / alpha`` is the *certificate*:
at most 1 certifies a global minimiser, above 1 it says that mass is
missing where ``|g|`` is largest. At the zero network with the best
intercept, ``sup |g|`` is ``alpha_max``: the smallest ``alpha`` for which the
zero network is optimal. The duality gap comes from the Fenchel dual

    max over p with sum_j p_j = 0 and sup_u |sum_j p_j relu(u . [x_j, 1])| <= alpha:
        -R*(p),

evaluated at ``p = G / max(1, certificate)`` (feasible), so that
``gap = J_convex - (-R*(p)) >= 0`` bounds the distance of the fit's convex
objective to the optimum (up to the estimate of the sup).

The sup over the sphere is estimated from below by multi-start ascent
(:func:`sphere_sup`): the exact sup of a piecewise-linear function over a
sphere is NP-hard in general, so every quantity here is a lower bound on
the certificate and ``alpha_max``, and the gap is accordingly optimistic.
"""

import numpy as np
from sklearn import get_config

__all__ = ["network_certificate", "sphere_sup"]


def sphere_sup(unit, Xp, G, starts, max_iter=30, rtol=1e-4, min_step=1e-2):
    """Estimate ``sup_{|u|=1} |g(u)|``, ``g(u) = -G^T relu(Xp u)``, from below.

    Multi-start ascent, vectorised over the starts (rows of ``starts``).
    ``g`` is positively 1-homogeneous, so with ``e = g(u) / |g(u)|`` the
    gradient ``v = grad_u (e . g)(u) = -sum_j (G_j . e) 1{u . x_j > 0} x_j``
    satisfies ``v . u = e . g(u) = |g(u)|``: ``u <- v / |v|`` maximises the
    local linear model of ``e . g`` on the sphere. A move is kept only if it
    increases ``|g|`` by more than ``rtol`` relatively, so every start
    ascends monotonically; a rejected move (into a worse activation pattern)
    is retried a quarter as long, down to ``min_step`` of the full move, after
    which the start is dropped, as is a start below half the best value:
    only the climbing starts are evaluated again.

    Parameters
    ----------
    unit : NeuronUnit
        Computes ``relu(Xp u)`` and its back-propagation (handles sparse
        inputs).
    Xp : ndarray or sparse matrix of shape (n_samples, n_params)
    G : ndarray of shape (n_samples, n_outputs)
    starts : ndarray of shape (n_starts, n_params)
    max_iter : int, default=30
    rtol : float, default=1e-4
    min_step : float, default=1e-2

    Returns
    -------
    value : float
        The largest ``|g(u)|`` found.
    u : ndarray of shape (n_params,)
        Where it was found.
    """
    U = starts / np.maximum(np.linalg.norm(starts, axis=1, keepdims=True), 1e-300)
    U = U.astype(G.dtype, copy=False)
    values, V = _values_and_ascent(unit, Xp, G, U)
    active = np.arange(len(U))
    step = np.ones(len(U))
    for _ in range(max_iter):
        if not active.size:
            break
        norms = np.linalg.norm(V[active], axis=1, keepdims=True)
        target = V[active] / np.where(norms > 0, norms, 1)
        # move towards the maximiser of the local linear model; a move that
        # crosses into a worse activation pattern is retried shorter
        candidates = U[active] + step[active, None] * (target - U[active])
        candidates /= np.maximum(
            np.linalg.norm(candidates, axis=1, keepdims=True), 1e-300
        )
        new_values, new_V = _values_and_ascent(unit, Xp, G, candidates)
        better = new_values > values[active] * (1 + rtol)
        moved, failed = active[better], active[~better]
        U[moved], V[moved], values[moved] = (
            candidates[better],
            new_V[better],
            new_values[better],
        )
        step[moved] = 1.0
        step[failed] *= 0.25
        active = np.concatenate([moved, failed[step[failed] >= min_step]])
        # a start far below the best is very unlikely to overtake it
        active = active[values[active] >= 0.5 * values.max()]
    best = int(np.argmax(values))
    return float(values[best]), U[best].copy()


def _values_and_ascent(unit, Xp, G, U):
    """``|g(u_s)|`` for every start and the ascent directions ``v_s``.

    The (n_samples, n_starts) activations are formed whole when they fit in
    scikit-learn's ``working_memory``, else over chunks of samples in two
    passes (the values first, as the directions need ``g / |g|``).
    """
    n, n_starts = Xp.shape[0], U.shape[0]
    budget = get_config()["working_memory"] * 2**20
    # a chunk holds the activations and the sensitivities: half the budget
    rows = max(1, int(budget // (4 * n_starts * U.dtype.itemsize)))
    if rows >= n:
        Phi, cache = unit.forward(Xp, U)
        g = -(G.T @ Phi)  # (n_outputs, n_starts)
        values = np.linalg.norm(g, axis=0)
        e = g / np.where(values > 0, values, 1)
        V = unit.backward(Xp, U, cache, -(G @ e))
        return values.astype(np.float64), V
    chunks = [slice(i, min(i + rows, n)) for i in range(0, n, rows)]
    g = np.zeros((G.shape[1], n_starts), dtype=G.dtype)
    for c in chunks:
        Phi, _ = unit.forward(Xp[c], U)
        g -= G[c].T @ Phi
    values = np.linalg.norm(g, axis=0)
    e = g / np.where(values > 0, values, 1)
    V = np.zeros_like(U)
    for c in chunks:
        Phi, cache = unit.forward(Xp[c], U)
        V += unit.backward(Xp[c], U, cache, -(G[c] @ e))
    return values.astype(np.float64), V


def _conjugate(loss, Y, P, s):
    """``R*(P) = sum_j s_j l*(y_j, P_j / s_j)`` (``+inf`` outside the
    domain), from the loss's ``conjugate``."""
    keep = s > 0
    Q = P[keep] / s[keep, None]
    return float(s[keep] @ loss.conjugate(Y[keep], Q))


def network_certificate(
    objective, Xp, Y, s, particles, alpha, random_state, n_random=32
):
    """``alpha_max``, ``certificate`` and ``dual_gap`` of a ReLU network fit.

    Parameters
    ----------
    objective : MeanFieldObjective
        With a ReLU :class:`~sklearn_meanfield._units.NeuronUnit`.
    Xp, Y, s : the prepared training data (unit-free coordinates).
    particles : Particles
        The fitted measure (unit-free coordinates).
    alpha : float
        The penalty strength.
    random_state : RandomState
        For the random starts.
    n_random : int, default=32
        Random starts on the sphere, and the number of the heaviest
        particles whose directions are starts too.

    Returns
    -------
    alpha_max : float
        ``sup |g|`` at the zero network with the best intercept.
    certificate : float or None
        ``sup |g| / alpha`` at the fitted measure (None when ``alpha = 0``).
    dual_gap : float
        ``J_convex(fit) - D(p)`` (``inf`` when ``alpha = 0`` and the fit is not
        exact), in the unit-free units of ``J``.
    """
    unit, loss = objective.unit, objective.loss
    p = particles.positions.shape[1]
    intercept = particles.intercept is not None
    random_starts = random_state.standard_normal((n_random, p))

    # the dual asks sum_j p_j = 0 (the intercept is free); at the fitted
    # intercept it holds up to the optimisation error. The squared loss's
    # dual point is centred exactly; for the classification losses, whose
    # conjugates live on the simplex, the dual bound keeps the term
    # b . sum_j p_j instead (a bound at the fitted intercept).
    centre = intercept and loss.centred_dual

    def gradient(F):
        value, G = loss.value_and_gradient(Y, F.copy(), s)
        if centre:
            G = G - np.outer(s, G.sum(axis=0)) / s.sum()
        return value, G

    # zero network: the best constant
    b0 = loss.init_intercept(Y, s) if intercept else np.zeros(Y.shape[1])
    _, G0 = gradient(np.broadcast_to(b0, Y.shape).astype(Xp.dtype))
    # besides random directions, start from +-X^T G0 (per output): the
    # direction most correlated with the residual of the best constant
    correlated = unit.backward(Xp, None, np.ones_like(G0), G0.copy())
    alpha_max, _ = sphere_sup(
        unit, Xp, G0, np.vstack([random_starts, correlated, -correlated])
    )

    F = objective.predict(Xp, particles)
    loss_value, G = gradient(F)
    # the heaviest particles' directions (|g| = alpha on the support) and
    # random ones; at most n_random particles, so that the cost does not
    # grow with m
    m = particles.n_particles
    W = particles.weights
    radii = np.linalg.norm(particles.positions, axis=1)
    mass = np.linalg.norm(W, axis=1) * radii
    heaviest = np.argsort(mass)[::-1][:n_random]
    starts = np.vstack([particles.positions[heaviest], random_starts])
    sup, _ = sphere_sup(unit, Xp, G, starts)
    tv = float(np.sum(mass) / m)
    primal = loss_value + alpha * tv
    if alpha > 0:
        certificate = sup / alpha
        P = G / max(1.0, certificate)
    else:
        certificate = None
        P = G if sup == 0 else None
    dual = -np.inf if P is None else -_conjugate(loss, Y, P, s)
    if P is not None and intercept and not centre:
        dual += float(particles.intercept @ P.sum(axis=0))
    return float(alpha_max), certificate, float(max(primal - dual, 0.0))
