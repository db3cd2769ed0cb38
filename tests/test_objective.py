"""The mean-field gradients are m times the true partial derivatives of J."""

import numpy as np
import pytest

from sklearn_meanfield._losses import L2Penalty, SquaredLoss
from sklearn_meanfield._objective import MeanFieldObjective, Particles
from sklearn_meanfield._units import InputMetric, NeuronUnit


def _problem(activation, n=40, d=3, m=7, k=2, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, k))
    s = rng.uniform(0.5, 1.5, n)
    s /= s.sum()
    unit = NeuronUnit(activation)
    objective = MeanFieldObjective(unit, SquaredLoss(), L2Penalty(0.3))
    particles = Particles(
        rng.standard_normal((m, k)),
        rng.standard_normal((m, d + 1)),
        rng.standard_normal(k),
    )
    return objective, unit.prepare(X), Y, s, particles


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_mean_field_gradient_matches_finite_differences(activation):
    objective, Xp, Y, s, particles = _problem(activation)
    m = particles.n_particles
    _, (gW, gTheta, gb) = objective.value_and_gradient(Xp, Y, s, particles)
    eps = 1e-6
    for name, grad, scale in [
        ("weights", gW, m),
        ("positions", gTheta, m),
        ("intercept", gb, 1),
    ]:
        numeric = np.zeros_like(grad)
        for idx in np.ndindex(grad.shape):
            plus, minus = particles.copy(), particles.copy()
            getattr(plus, name)[idx] += eps
            getattr(minus, name)[idx] -= eps
            numeric[idx] = (
                objective.value(Xp, Y, s, plus) - objective.value(Xp, Y, s, minus)
            ) / (2 * eps)
        # particles carry the factor m (mean-field scaling), the intercept not
        np.testing.assert_allclose(grad, scale * numeric, rtol=1e-5, atol=1e-7)


def test_prediction_carries_one_over_m():
    objective, Xp, _, _, particles = _problem("relu")
    doubled = Particles(
        np.vstack([particles.weights] * 2),
        np.vstack([particles.positions] * 2),
        particles.intercept,
    )
    # duplicating every particle leaves the measure, hence f, unchanged
    np.testing.assert_allclose(
        objective.predict(Xp, particles), objective.predict(Xp, doubled)
    )


@pytest.mark.parametrize("kind", ["standardize", "diagonal"])
def test_metric_makes_preactivations_unit_scale(kind):
    rng = np.random.RandomState(0)
    X = rng.normal(100, 1, size=(2000, 4))
    unit = NeuronUnit("relu", init_scale=1.0, metric=kind)
    Xp = unit.prepare(X)
    s = np.full(2000, 1 / 2000)
    theta = unit.init_positions(500, Xp, s, rng)
    mean_square = np.mean(np.square(Xp @ theta.T))
    assert 0.5 < mean_square < 2.0


def test_standardize_metric_is_the_flow_on_standardised_inputs():
    rng = np.random.RandomState(0)
    X = rng.normal(3, 2, size=(300, 3)) * [1, 10, 100]
    unit = NeuronUnit("relu")
    Xp = unit.prepare(X)
    s = np.full(300, 1 / 300)
    B = InputMetric("standardize").fit(Xp, s).inverse_sqrt(np.eye(4))
    Z = (X - X.mean(0)) / X.std(0)
    np.testing.assert_allclose(Xp @ B.T, unit.prepare(Z), atol=1e-10)
    # on standardised inputs the metric is the identity (the paper's flow)
    metric = InputMetric("standardize").fit(unit.prepare(Z), s)
    np.testing.assert_allclose(metric.precondition(np.eye(4)), np.eye(4), atol=1e-10)


@pytest.mark.parametrize("kind", ["standardize", "diagonal"])
def test_metric_of_sparse_inputs_equals_dense(kind):
    # Moments of a sparse X without densifying it: the same metric as the
    # dense X, including a constant column (variance exactly 0, left
    # unscaled), an all-zero column and a column with a large offset.
    import scipy.sparse as sp

    rng = np.random.RandomState(0)
    X = rng.standard_normal((200, 5))
    X[rng.uniform(size=X.shape) < 0.6] = 0.0
    X[:, 1] = 5.0
    X[:, 2] = 0.0
    X[:, 3] += 1e6
    s = rng.uniform(size=200)
    s /= s.sum()
    unit = NeuronUnit("relu", metric=kind)
    dense = unit.metric(unit.prepare(X), s)
    sparse = unit.metric(unit.prepare(sp.csr_array(X)), s)
    G = rng.standard_normal((7, 6))
    np.testing.assert_allclose(
        sparse.precondition(G), dense.precondition(G), rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(
        sparse.inverse_sqrt(G), dense.inverse_sqrt(G), rtol=1e-9, atol=1e-12
    )
    if kind == "standardize":
        assert sparse.scale_[1] == 1.0 and sparse.scale_[2] == 1.0


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cache_blocked_passes_match_one_block(monkeypatch, activation, k, dtype):
    # The forward and backward passes run over row blocks of _BLOCK_BYTES;
    # many small blocks (here 64 rows, the minimum) must give the value and
    # gradients of one block up to rounding, in the input's dtype.
    import sklearn_meanfield._objective as objective_module

    objective, Xp, Y, s, particles = _problem(activation, n=1000, m=50, k=k)
    Xp, Y, s = Xp.astype(dtype), Y.astype(dtype), s.astype(dtype)
    particles = Particles(*(a.astype(dtype) for a in particles._fields()))
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    monkeypatch.setattr(objective_module, "_BLOCK_BYTES", 2**40)
    one_value, one_grads = objective.value_and_gradient(Xp, Y, s, particles)
    monkeypatch.setattr(objective_module, "_BLOCK_BYTES", 1)
    value, state = objective.forward(Xp, Y, s, particles)
    assert len(state[2]) == 16  # ceil(1000 / 64) blocks
    grads = objective.backward(state)
    np.testing.assert_allclose(value, one_value, rtol=rtol)
    for got, expected in zip(grads, one_grads, strict=True):
        assert got.dtype == dtype
        scale = np.abs(expected).max()
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale)
