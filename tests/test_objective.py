"""The mean-field gradients are m times the true partial derivatives of J."""

import numpy as np
import pytest

from sklearn_meanfield._losses import L2Penalty, SquaredLoss
from sklearn_meanfield._objective import MeanFieldObjective, Particles
from sklearn_meanfield._units import InputStandardizer, NeuronUnit


def _problem(activation, n=40, d=3, m=7, k=2, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, k))
    s = rng.uniform(0.5, 1.5, n)
    s /= s.sum()
    unit = NeuronUnit(activation).fit_inputs(X, s)
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
def test_input_coordinates_make_preactivations_unit_scale(kind):
    rng = np.random.RandomState(0)
    X = rng.normal(100, 1, size=(2000, 4)) * [1e-8, 1, 1e3, 1e8]
    s = np.full(2000, 1 / 2000)
    unit = NeuronUnit("relu", init_scale=1.0, metric=kind).fit_inputs(X, s)
    Xp = unit.prepare(X)
    theta = unit.init_positions(500, Xp, s, rng)
    mean_square = np.mean(np.square(Xp @ theta.T))
    assert 0.5 < mean_square < 2.0


def test_standardized_inputs_and_raw_positions():
    rng = np.random.RandomState(0)
    X = rng.normal(3, 2, size=(300, 3)) * [1, 10, 100]
    X = np.column_stack([X, np.full(300, 7.0)])  # a constant feature
    s = np.full(300, 1 / 300)
    unit = NeuronUnit("relu").fit_inputs(X, s)
    Xp = unit.prepare(X)
    Z = (X[:, :3] - X[:, :3].mean(0)) / X[:, :3].std(0)
    np.testing.assert_allclose(Xp[:, :3], Z, atol=1e-10)
    # the constant feature is centred, not scaled
    np.testing.assert_allclose(Xp[:, 3], 0.0, atol=1e-12)
    np.testing.assert_array_equal(Xp[:, -1], 1.0)
    theta = rng.standard_normal((6, 5))
    raw = unit.to_raw_positions(theta)
    X1 = np.column_stack([X, np.ones(300)])
    np.testing.assert_allclose(X1 @ raw.T, Xp @ theta.T, atol=1e-9)
    np.testing.assert_allclose(unit.from_raw_positions(raw), theta, atol=1e-12)
    assert InputStandardizer("euclidean").fit(X, s).center_ is None


@pytest.mark.parametrize("kind", ["standardize", "diagonal"])
@pytest.mark.parametrize("k", [1, 3])
def test_sparse_inputs_give_the_dense_objective_and_gradients(kind, k):
    # Sparse X is scaled but not centred (that would densify it): the
    # centring is applied to the positions in forward and backward, which
    # must give the dense values and gradients, including a constant column
    # (variance exactly 0), an all-zero column and a large offset.
    import scipy.sparse as sp

    rng = np.random.RandomState(0)
    X = rng.standard_normal((200, 5))
    X[rng.uniform(size=X.shape) < 0.6] = 0.0
    X[:, 1] = 5.0
    X[:, 2] = 0.0
    X[:, 3] += 1e3
    s = rng.uniform(size=200)
    s /= s.sum()
    Y = rng.standard_normal((200, k))
    particles = Particles(
        rng.standard_normal((7, k)), rng.standard_normal((7, 6)), np.zeros(k)
    )
    values, grads = [], []
    for data in (X, sp.csr_array(X)):
        unit = NeuronUnit("relu", metric=kind).fit_inputs(data, s)
        if kind == "standardize":
            assert unit.inputs.scale_[1] == 1.0 and unit.inputs.scale_[2] == 1.0
        objective = MeanFieldObjective(unit, SquaredLoss(), L2Penalty(0.1))
        value, grad = objective.value_and_gradient(unit.prepare(data), Y, s, particles)
        values.append(value)
        grads.append(grad)
    np.testing.assert_allclose(values[1], values[0], rtol=1e-9)
    for got, expected in zip(grads[1], grads[0], strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)


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
