"""Forward operators for SparseSpikeDeconvolver (issue 15): the protocol, the
built-in kernels as operators, checks of a user's operator, and spikes
recovered through an operator that is not a convolution."""

import collections

import numpy as np
import pytest

from sklearn_meanfield import (
    DirichletKernel,
    ForwardOperator,
    GaussianKernel,
    IntegratedGaussianKernel,
    SparseSpikeDeconvolver,
)
from sklearn_meanfield._operators import (
    FourierOperator,
    SpikeUnit,
    estimate_length_scale,
    make_spike_unit,
    tensor_axes,
)
from sklearn_meanfield.metrics import spike_recovery_scores


class DecayOperator:
    """Decays seen by sensors of different gains: measurement ``j`` at time
    ``x_j`` with gain ``g_j`` (``X = [x, g]``) sees

        y_j = g_j sum_i a_i exp(-x_j r_i),

    a Laplace-type operator ``exp(-x r)`` in the decay rates ``r_i``, with a
    position-dependent gain. Positions are the log-rates ``u_i = log r_i``
    (the resolution of ``exp(-x r)`` is about ``2 r``: uniform in ``u``)."""

    def __init__(self, lower=-5.0, upper=5.0):
        self.lower, self.upper = lower, upper

    def matrix_and_gradient(self, X, U):
        XR = X[:, :1] @ np.exp(U).T
        A = X[:, 1:2] * np.exp(-XR)
        # d/du exp(-x e^u) = -x e^u exp(-x e^u)
        return A, (-XR * A)[:, :, None]

    def domain(self, X):
        return [self.lower], [self.upper]


def _decay_data(rates, amplitudes, n=200, seed=0):
    rng = np.random.RandomState(seed)
    X = np.column_stack([np.linspace(0, 20, n), rng.uniform(0.5, 1.5, n)])
    U = np.log(np.asarray(rates, dtype=float))[:, None]
    A, _ = DecayOperator().matrix_and_gradient(X, U)
    return X, A @ np.asarray(amplitudes, dtype=float), U


# ------------------------------------------------------------- the protocol
@pytest.mark.parametrize("kernel", [DirichletKernel(4), GaussianKernel(0.1)])
@pytest.mark.parametrize("n_dims", [1, 2])
def test_builtin_kernels_are_forward_operators(kernel, n_dims):
    # A[j, i] = K(x_j - t_i) and dA[j, i] = d/dt_i K(x_j - t_i) = -grad K
    rng = np.random.RandomState(n_dims)
    X = rng.uniform(size=(30, n_dims))
    T = rng.uniform(size=(7, n_dims))
    assert isinstance(kernel, ForwardOperator)
    A, dA = kernel.matrix_and_gradient(kernel.prepare(X), T)
    D = X[:, None, :] - T[None, :, :]
    np.testing.assert_allclose(A, kernel.value(D), atol=1e-13)
    h = 1e-6
    for k in range(n_dims):
        e = np.zeros(n_dims)
        e[k] = h
        fd = (kernel.value(D - e) - kernel.value(D + e)) / (2 * h)
        np.testing.assert_allclose(dA[:, :, k], fd, atol=1e-7)
    domain = kernel.domain(X)
    assert domain.periodic == bool(getattr(kernel, "periodic", False))
    assert domain.n_dims == n_dims


#: the built-in operators with per-axis factors (grid_factors)
SEPARABLE_OPERATORS = [
    GaussianKernel(0.15),
    DirichletKernel(3),
    IntegratedGaussianKernel(1.2, 1.0),
    FourierOperator(),
]


def _samples_and_weights(operator, n_dims, rng):
    """Measurements for ``operator`` (integer frequencies, a pixel grid or
    random locations) and positive weights summing to one."""
    if isinstance(operator, FourierOperator):
        X = rng.randint(-4, 5, size=(40, n_dims)).astype(float)
    elif isinstance(operator, IntegratedGaussianKernel):
        pixels = np.meshgrid(*[np.arange(6.0)] * n_dims, indexing="ij")
        X = np.column_stack([g.ravel() for g in pixels])
    else:
        X = rng.uniform(size=(60, n_dims))
    s = rng.uniform(0.5, 1.5, size=X.shape[0])
    return X, s / s.sum()


@pytest.mark.parametrize("n_dims", [2, 3])
@pytest.mark.parametrize("operator", SEPARABLE_OPERATORS)
def test_grid_values_from_factors_match_the_operator(operator, n_dims):
    # on a tensor grid, phi(t)(x_j) = prod_k F_k[j, i_k] (row-wise Kronecker
    # product of the factors); scaled, centred and complex units alike
    rng = np.random.RandomState(n_dims)
    X, s = _samples_and_weights(operator, n_dims, rng)
    unit = make_spike_unit(operator, X, s).rescaled(0.7)
    Xp = unit.prepare(X)
    grid = unit.covering_grid(4**n_dims, np.random.RandomState(0))
    assert tensor_axes(grid) is not None
    shuffled = grid[rng.permutation(grid.shape[0])]
    assert tensor_axes(shuffled) is None
    # (the covering grid's axes are known to the unit)
    assert unit.covering_axes(grid)[1] == grid.shape[0]
    for known, detected in zip(unit._covering[1], tensor_axes(grid), strict=True):
        np.testing.assert_array_equal(known, detected)
    for u in (unit, unit.centred(unit.stack_weights(s))):
        expected = u.values(Xp, grid)
        np.testing.assert_allclose(
            u.grid_values(Xp, grid), expected, rtol=0, atol=1e-13
        )
        # (the products of the factors, also for the operators whose
        # grid_values do not use them)
        At = np.empty((grid.shape[0], Xp.shape[0]))
        u._tensor_values(Xp, tensor_axes(grid), At)
        np.testing.assert_allclose(At.T, expected, rtol=0, atol=1e-13)
        # correlations on the grid from the factors, no (n, m) array
        v = rng.standard_normal(Xp.shape[0])
        np.testing.assert_allclose(
            u.grid_correlations(Xp, u.covering_axes(grid)[0], v),
            v @ expected,
            rtol=1e-12,
            atol=1e-12,
        )
        # (not a grid: the operator's values)
        np.testing.assert_array_equal(
            u.grid_values(Xp, shuffled), u.values(Xp, shuffled)
        )
    assert unit.covering_axes(shuffled) is None


@pytest.mark.parametrize("n_dims", [2, 3])
@pytest.mark.parametrize("operator", SEPARABLE_OPERATORS)
def test_column_norm_from_squared_factors(operator, n_dims):
    # max over the probe points of (sum_j s_j |phi(t)(x_j)|^2)^(1/2), from
    # the squared per-axis factors, is the one from the operator's values
    # (a rescaled unit, complex measurements counted by their modulus)
    X, s = _samples_and_weights(operator, n_dims, np.random.RandomState(10 + n_dims))
    unit = make_spike_unit(operator, X, s).rescaled(-0.7)
    Xp, sp = unit.prepare(X), unit.stack_weights(s)
    A = unit.values(Xp, unit.probe_points())
    expected = np.sqrt(np.max(sp @ np.square(A)))
    assert expected > 0
    np.testing.assert_allclose(unit.column_norm(Xp, sp), expected, rtol=1e-13)
    # the centred unit (which has no such product) from its values
    centred = unit.centred(sp)
    A = centred.values(Xp, centred.probe_points())
    np.testing.assert_allclose(
        centred.column_norm(Xp, sp), np.sqrt(np.max(sp @ np.square(A))), rtol=1e-13
    )


def test_covering_grid_random_points_follow_random_state():
    # 3-D at one particle per length scale needs more than the 256 automatic
    # particles: 6^3 grid points and 40 at random, inside the domain
    X = np.random.RandomState(0).uniform(size=(200, 3))
    unit = make_spike_unit(GaussianKernel(0.05), X, np.full(200, 1 / 200))
    first = unit.covering_grid(None, 7)
    assert first.shape == (256, 3)
    lower, upper = unit.domain.lower, unit.domain.upper
    assert np.all((first >= lower) & (first <= upper))
    # an int seed: the same points; another seed: other random points, the
    # same grid
    np.testing.assert_array_equal(unit.covering_grid(None, 7), first)
    other = unit.covering_grid(None, 8)
    np.testing.assert_array_equal(other[:216], first[:216])
    assert not np.any(np.all(other[216:] == first[216:], axis=1))
    # a RandomState is drawn from: two calls differ, a fresh one repeats
    rng = np.random.RandomState(3)
    a, b = unit.covering_grid(None, rng), unit.covering_grid(None, rng)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(unit.covering_grid(None, np.random.RandomState(3)), a)


def test_length_scale_estimate():
    # The curvature of the normalised correlation of the columns: sqrt(2)
    # sigma for a densely sampled Gaussian (the width of its
    # autocorrelation), 2 for decays exp(-x e^u) in the log-rate u.
    sigma = 0.02

    class Gaussian:
        def matrix_and_gradient(self, X, T):
            D = X - T.T
            A = np.exp(-(D**2) / (2 * sigma**2))
            return A, (D / sigma**2 * A)[:, :, None]

    X = np.linspace(0, 1, 2001)[:, None]
    s = np.full(2001, 1 / 2001)
    unit = make_spike_unit(Gaussian(), X, s)
    assert unit.length_scale == pytest.approx(np.sqrt(2) * sigma, rel=1e-3)
    assert estimate_length_scale(unit, X, s) == unit.length_scale
    X, _, _ = _decay_data([1.0], [1.0], n=2000)
    unit = make_spike_unit(DecayOperator(), X, np.full(2000, 1 / 2000))
    assert unit.length_scale == pytest.approx(2.0, rel=0.02)
    assert not unit.periodic and unit.domain.bounded


@pytest.mark.parametrize("n_dims", [1, 2, 3])
def test_fourier_length_scale_in_closed_form(n_dims, monkeypatch):
    # M = 4 pi^2 sum_j s_j k_j k_j^T / sum_j s_j, the probes' estimate
    # without the closed form; weighted, on a random subset of frequencies;
    # sqrt(3) / (2 pi sqrt(fc (fc + 1))) on the full cube |k|_inf <= fc
    rng = np.random.RandomState(n_dims)
    fc = 4
    cube = np.meshgrid(*[np.arange(-fc, fc + 1.0)] * n_dims, indexing="ij")
    cube = np.column_stack([g.ravel() for g in cube])
    s = np.full(cube.shape[0], 1 / cube.shape[0])
    unit = make_spike_unit(FourierOperator(), cube, s)
    assert unit.length_scale == pytest.approx(
        np.sqrt(3) / (2 * np.pi * np.sqrt(fc * (fc + 1))), rel=1e-12
    )
    X = cube[rng.choice(cube.shape[0], 3 * 3**n_dims, replace=False)]
    s = rng.uniform(0.1, 2.0, size=X.shape[0])
    s /= s.sum()
    closed = make_spike_unit(FourierOperator(), X, s).length_scale
    monkeypatch.delattr(FourierOperator, "correlation_curvature")
    probed = make_spike_unit(FourierOperator(), X, s).length_scale
    assert closed == pytest.approx(probed, rel=1e-12)
    monkeypatch.undo()
    # the zero frequency alone: no resolution
    with pytest.raises(ValueError, match="length scale"):
        make_spike_unit(FourierOperator(), np.zeros((3, n_dims)), np.full(3, 1 / 3))


def test_unit_prepares_once_and_never_stale():
    # the length scale's preparation of X serves the fit's (the same
    # read-only array, once: the unit does not keep it), unless X changed
    # in place since: then it is prepared afresh
    X = np.arange(-8, 9, dtype=float)[:, None]
    s = np.full(17, 1 / 17)
    unit = make_spike_unit(FourierOperator(), X, s)
    first = unit._prepared[2]
    Xp = unit.prepare(X)
    assert Xp is first and not Xp.flags.writeable and unit._prepared is None
    again = unit.prepare(X)
    assert again is not Xp
    np.testing.assert_array_equal(again, Xp)
    unit = make_spike_unit(FourierOperator(), X, s)
    Xp = unit._prepared[2]
    assert Xp.shape == (34, 2)
    np.testing.assert_array_equal(
        Xp, SpikeUnit(FourierOperator(), 1.0, unit.domain).prepare(X)
    )
    assert unit.prepare(X.copy()) is not Xp
    unit = make_spike_unit(FourierOperator(), X, s)
    Xp = unit._prepared[2]
    X[0, 0] = 11.0
    fresh = unit.prepare(X)
    assert fresh is not Xp and fresh[0, 0] == 11.0 and Xp[0, 0] == -8.0


def test_users_operator_optional_members_are_used_and_checked():
    # a user's operator (not built in) with the contract's optional members:
    # forwarded through the output checks and used by the solver (the fit is
    # the built-in Gaussian kernel's, which has the same members); a bad
    # output of one is a ValueError naming the operator and the member
    kernel = GaussianKernel(0.06)
    calls = collections.Counter()

    class UserGaussian:
        length_scale = 0.06
        tensor_values = False
        grid_factors_by_coordinate = True

        def __init__(self, broken=None):
            self.broken = broken

        def domain(self, X):
            return kernel.domain(X)

        def _call(self, name, *args):
            calls[name] += 1
            out = getattr(kernel, name)(*args)
            if name == self.broken:
                out = out[:-1] if isinstance(out, list) else np.asarray(out)[..., :-1]
            return out

        def matrix_and_gradient(self, X, T):
            return self._call("matrix_and_gradient", X, T)

        def matrix(self, X, T):
            return self._call("matrix", X, T)

        def contract_gradient(self, X, T, values, v):
            return self._call("contract_gradient", X, T, values, v)

        def contract_derivatives(self, X, T, v):
            calls["contract_derivatives"] += 1
            return kernel.contract_derivatives(X, T, v)

        def grid_factors(self, X, axes):
            return self._call("grid_factors", X, axes)

    axis = np.linspace(0, 1, 20)
    X = np.array([[u, w] for u in axis for w in axis])
    T0 = np.array([[0.3, 0.35], [0.7, 0.6], [0.35, 0.75]])
    y = kernel.matrix(X, T0) @ np.array([1.0, -0.8, 0.6])
    y = y + 1e-3 * np.random.RandomState(0).standard_normal(y.shape)
    ref = SparseSpikeDeconvolver(kernel, alpha=1e-3, random_state=0).fit(X, y)
    est = SparseSpikeDeconvolver(UserGaussian(), alpha=1e-3, random_state=0)
    est.fit(X, y)
    for name in ("matrix", "contract_gradient", "contract_derivatives", "grid_factors"):
        assert calls[name] > 0, name
    assert est.n_spikes_ == ref.n_spikes_ == 3
    np.testing.assert_allclose(est.positions_, ref.positions_, atol=1e-9)
    np.testing.assert_allclose(est.weights_, ref.weights_, rtol=1e-7)
    for broken in ("matrix", "contract_gradient", "grid_factors"):
        bad = SparseSpikeDeconvolver(UserGaussian(broken), alpha=1e-3, random_state=0)
        with pytest.raises(ValueError, match=f"UserGaussian.{broken}"):
            bad.fit(X, y)


# --------------------------------------------- recovery through an operator
@pytest.mark.parametrize(
    "rates, amplitudes, positive",
    [
        ([0.05, 0.5, 5.0], [1.0, 0.7, 1.2], True),
        ([0.1, 1.0, 10.0], [1.0, -0.8, 1.2], False),
    ],
)
def test_decays_recovered_through_a_user_operator(rates, amplitudes, positive):
    # A decade between rates is about one resolution length (the
    # correlation of exp(-x r) and exp(-x 10 r) is 2 sqrt(10) / 11 = 0.57).
    X, y, U = _decay_data(rates, amplitudes)
    est = SparseSpikeDeconvolver(DecayOperator(), alpha=1e-5, positive=positive)
    est.fit(X, y)
    sc = spike_recovery_scores(U, amplitudes, est.positions_, est.weights_)
    assert est.n_spikes_ == 3 and sc["n_spurious"] == 0
    assert sc["max_position_error"] <= 1e-6
    assert sc["max_amplitude_error"] <= 1e-6
    assert est.positions_.shape == (3, 1) and est.n_features_in_ == 2
    assert np.all((est.positions_ >= -5) & (est.positions_ <= 5))
    np.testing.assert_allclose(est.predict(X), y, atol=1e-7)
    # the certificate at positions (1-D) from the 2-feature measurements
    eta = est.certificate(np.linspace(-5, 5, 11)[:, None], X, y)
    assert eta.shape == (11,) and np.all(np.isfinite(eta))
    with pytest.raises(ValueError, match="dimensions"):
        est.certificate(X, X, y)


# --------------------------------------------------- a user's bad operator
class _Broken(DecayOperator):
    def __init__(self, fault):
        super().__init__()
        self.fault = fault

    def matrix_and_gradient(self, X, U):
        A, dA = super().matrix_and_gradient(X, U)
        if self.fault == "shape":
            return A[:, :-1], dA
        if self.fault == "nan":
            A = A.copy()
            A[0, 0] = np.nan
        if self.fault == "complex":
            A = A + 1e-3j
        return A, dA


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "fault, match",
    [
        ("shape", r"_Broken\.matrix_and_gradient\(X, T\) returned a matrix of shape"),
        ("nan", r"_Broken\.matrix_and_gradient\(X, T\) returned a matrix with NaN"),
        ("complex", r"_Broken\.matrix_and_gradient\(X, T\) returned a complex"),
    ],
)
def test_user_operator_outputs_are_checked(fault, match):
    X, y, _ = _decay_data([0.1, 1.0], [1.0, 1.0])
    est = SparseSpikeDeconvolver(DecayOperator(), alpha=1e-3, max_iter=20)
    est.fit(X, y)
    before = {k: v for k, v in vars(est).items() if k.endswith("_")}
    est.set_params(kernel=_Broken(fault))
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)
    after = {k: v for k, v in vars(est).items() if k.endswith("_")}
    assert after.keys() == before.keys()
    for k in before:
        assert after[k] is before[k]


def test_operator_domain_must_be_a_box_or_torus():
    class NoDomain(DecayOperator):
        def domain(self, X):
            return "everywhere"

    X, y, _ = _decay_data([1.0], [1.0])
    with pytest.raises(TypeError, match=r"NoDomain\.domain\(X\) must return"):
        SparseSpikeDeconvolver(NoDomain()).fit(X, y)


def test_user_complex_operator_is_fitted_as_fourier():
    # A user's complex operator (no fast real-row path) gives the fit of
    # kernel="fourier": real and imaginary parts as rows, |r|^2 loss.
    from sklearn_meanfield import Torus

    class MyFourier:
        complex_valued = True

        def matrix_and_gradient(self, X, T):
            E = np.exp(-2j * np.pi * X @ T.T)
            return E, (-2j * np.pi) * X[:, None, :] * E[:, :, None]

        def domain(self, X):
            return Torus(X.shape[1])

    rng = np.random.RandomState(0)
    T = np.array([[0.1], [0.45], [0.8]])
    a = np.array([1.0, -0.7, 1.2])
    X = np.arange(-8, 9.0)[:, None]
    y = np.exp(-2j * np.pi * X @ T.T) @ a
    y += 0.01 * (rng.standard_normal(17) + 1j * rng.standard_normal(17))
    mine = SparseSpikeDeconvolver(MyFourier(), alpha=1e-2).fit(X, y)
    ref = SparseSpikeDeconvolver("fourier", alpha=1e-2).fit(X, y)
    assert mine.n_spikes_ == ref.n_spikes_ == 3
    np.testing.assert_allclose(mine.positions_, ref.positions_, atol=1e-10)
    np.testing.assert_allclose(mine.predict(X), ref.predict(X), atol=1e-10)
    assert np.iscomplexobj(mine.predict(X))


@pytest.mark.parametrize(
    "operator, n_dims",
    [
        (GaussianKernel(0.1), 1),
        (GaussianKernel(0.1), 2),
        (GaussianKernel(0.15), 3),
        (FourierOperator(), 1),
        (FourierOperator(), 2),
    ],
)
def test_gradient_from_values_equals_the_contracted_gradients(operator, n_dims):
    # The flow's grad c from the values alone (Gaussian: moments of the
    # values; Fourier: the other half of the rows) equals the contraction of
    # the operator's gradients, for a rescaled unit; a centred unit (whose
    # values lost the columns' means) does not offer it.
    rng = np.random.RandomState(n_dims)
    if isinstance(operator, FourierOperator):
        X = np.array(np.meshgrid(*[np.arange(-4, 5)] * n_dims, indexing="ij"))
        X = X.reshape(n_dims, -1).T
    else:
        X = rng.rand(150, n_dims)
    s = np.full(X.shape[0], 1 / X.shape[0])
    unit = make_spike_unit(operator, X, s).rescaled(2.5)
    Xp = unit.prepare(X)
    T = rng.rand(6, n_dims)
    v = rng.randn(Xp.shape[0])
    A, dA = unit.forward(Xp, T)
    assert unit.gradients_from_values
    g = unit.gradient_from_values(Xp, T, A, v)
    expected = np.einsum("j,jik->ik", v, dA)
    np.testing.assert_allclose(
        g, expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max()
    )
    if not unit.complex_valued:
        assert not unit.centred(s).gradients_from_values
