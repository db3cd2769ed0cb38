"""The solver layer: update rules, the flow loop, L-BFGS and solver='auto'."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from sklearn_meanfield import MeanFieldClassifier, MeanFieldRegressor
from sklearn_meanfield._objective import Particles
from sklearn_meanfield._rules import Adam, GradientStep, HeavyBall
from sklearn_meanfield.datasets import make_teacher_student


def _quiet_fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


def _particles(seed=0):
    rng = np.random.RandomState(seed)
    return Particles(
        rng.standard_normal((4, 1)), rng.standard_normal((4, 3)), np.zeros(1)
    )


def test_particles_ravel_round_trip():
    p = _particles()
    v = p.ravel()
    assert v.shape == (4 + 12 + 1,)
    q = p.unravel(v * 2)
    for a, b in zip(q._fields(), p._fields(), strict=True):
        np.testing.assert_array_equal(a, 2 * b)
    with pytest.raises(ValueError, match="17 values"):
        p.unravel(v[:-1])


def test_rules_propose_without_changing_state():
    p = _particles()
    grads = (np.ones((4, 1)), np.ones((4, 3)), np.ones(1))
    step = GradientStep().propose(p, grads, 0.1)
    np.testing.assert_allclose(step.weights, p.weights - 0.1)
    ball = HeavyBall(0.9)
    first = ball.propose(p, grads, 0.1)
    assert ball.velocity is None  # nothing kept before accept
    ball.accept(p, first)
    second = ball.propose(first, grads, 0.1)
    # z2 = z1 - eta g + 0.9 (z1 - z0)
    np.testing.assert_allclose(second.weights, first.weights - 0.1 - 0.9 * 0.1)
    assert ball.restart() and ball.velocity is None and not ball.restart()
    adam = Adam()
    a1 = adam.propose(p, grads, 0.1)
    assert adam.t == 0
    adam.accept(p, a1)
    # the first Adam step moves every coordinate by eta (bias-corrected)
    np.testing.assert_allclose(a1.positions, p.positions - 0.1, atol=1e-6)
    assert adam.t == 1


def test_auto_solver_choice():
    X, y = make_teacher_student(200, 3, n_teacher=2, random_state=0)
    reg = _quiet_fit(MeanFieldRegressor(10, max_iter=5, random_state=0), X, y)
    assert reg.solver_ == "lbfgs"
    for params, expected in [
        ({"flow": "conic"}, "flow"),
        ({"momentum": 0.9}, "flow"),
        ({"batch_size": 50}, "adam"),
        ({"solver": "flow"}, "flow"),
    ]:
        est = MeanFieldRegressor(10, max_iter=5, random_state=0, **params)
        assert _quiet_fit(est, X, y).solver_ == expected
    big = MeanFieldRegressor(4, max_iter=1, random_state=0)
    big._auto_minibatch_samples = 100  # the rule, not the size, under test
    assert _quiet_fit(big, X, y).solver_ == "adam"
    with pytest.raises(ValueError, match="partial_fit is not available"):
        MeanFieldRegressor(solver="lbfgs").partial_fit(X, y)
    with pytest.raises(ValueError, match="needs solver='flow'"):
        MeanFieldRegressor(solver="lbfgs", flow="conic").fit(X, y)


def test_lbfgs_fits_and_stops_on_the_relative_rule():
    X, y = make_teacher_student(1000, 5, n_teacher=3, random_state=0)
    reg = MeanFieldRegressor(30, alpha=1e-4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        reg.fit(X[:500], y[:500])
    assert reg.solver_ == "lbfgs" and reg.n_iter_ < reg.max_iter
    assert reg.score(X[500:], y[500:]) > 0.999
    curve = np.array(reg.loss_curve_)
    assert np.all(np.diff(curve) <= 1e-12 * curve[0])  # line search: monotone


def test_lbfgs_sample_weight_is_repetition_to_a_loose_tolerance():
    # L-BFGS follows a path that rounding changes (tests/test_common.py),
    # but on a well-posed problem weighting and repeating agree closely
    X, y = make_teacher_student(200, 4, n_teacher=2, noise=0.05, random_state=0)
    sw = np.random.RandomState(0).randint(1, 3, len(y))
    reg = MeanFieldRegressor(20, random_state=0)
    a = _quiet_fit(clone(reg), X, y, sample_weight=sw)
    b = _quiet_fit(clone(reg), np.repeat(X, sw, axis=0), np.repeat(y, sw))
    np.testing.assert_allclose(a.predict(X), b.predict(X), atol=1e-3 * y.std())


def test_momentum_persists_across_partial_fit_calls():
    # the update rule (its velocity) is kept between partial_fit calls
    X, y = make_teacher_student(300, 3, n_teacher=2, random_state=0)
    preds = {}
    for momentum in (0.0, 0.9):
        reg = MeanFieldRegressor(10, momentum=momentum, random_state=0)
        for _ in range(20):
            reg.partial_fit(X, y)
        preds[momentum] = reg.predict(X)
    assert np.abs(preds[0.9] - preds[0.0]).max() > 1e-3


def test_adam_minibatch_default_learns():
    X, y = make_teacher_student(3000, 5, n_teacher=3, random_state=0)
    reg = MeanFieldRegressor(50, batch_size=128, max_iter=20, random_state=0)
    _quiet_fit(reg, X[:2000], y[:2000])
    assert reg.solver_ == "adam" and reg.step_size_ == pytest.approx(1e-2)
    assert reg.score(X[2000:], y[2000:]) > 0.99
    clf = MeanFieldClassifier(20, batch_size=64, max_iter=20, random_state=0)
    Xc, yc = make_teacher_student(
        1000, 5, n_teacher=3, task="classification", random_state=0
    )
    assert _quiet_fit(clf, Xc, yc).score(Xc, yc) > 0.9


def test_lbfgs_without_a_step_warns_unless_already_optimal(monkeypatch):
    import sklearn_meanfield._lbfgs as lbfgs_module

    X, y = make_teacher_student(200, 3, n_teacher=2, random_state=0)
    # a constant y: the initial intercept is optimal (only the weight decay
    # moves the positions), no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        flat = MeanFieldRegressor(10, activation="sigmoid", random_state=0).fit(
            X, np.full(200, 3.0)
        )
    np.testing.assert_allclose(flat.predict(X), 3.0)
    # a line search that fails at once with a non-zero gradient is not
    # convergence: the model is the initialisation, and it warns
    real_minimize = lbfgs_module.minimize

    def failing(fun, x0, **kwargs):
        out = real_minimize(fun, x0, **{**kwargs, "callback": None})
        out.x, out.nit, out.message = x0, 0, "ABNORMAL: LINE SEARCH FAILED"
        return out

    monkeypatch.setattr(lbfgs_module, "minimize", failing)
    with pytest.warns(ConvergenceWarning, match="L-BFGS took no step"):
        reg = MeanFieldRegressor(10, max_iter=3, random_state=0).fit(X, y)
    assert reg.n_iter_ == 0


@pytest.mark.parametrize("solver", ["lbfgs", "flow", "adam"])
def test_a_constant_target_is_fitted_without_nan(solver):
    # J is then the weight decay alone and falls geometrically: L-BFGS once
    # stepped into overflow (NaN predictions) as J reached denormal numbers.
    # Every solver now stops once J is 1e-12 of its initial value.
    X, _ = make_teacher_student(200, 3, n_teacher=2, random_state=0)
    for activation in ("relu", "sigmoid"):
        reg = MeanFieldRegressor(10, activation=activation, solver=solver)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reg.set_params(random_state=0).fit(X, np.full(200, 3.0))
        np.testing.assert_allclose(reg.predict(X), 3.0, rtol=1e-8)
        assert np.isfinite(reg.loss_curve_).all()
        assert reg.n_iter_ < reg.max_iter


def test_momentum_with_lbfgs_is_an_error():
    X, y = make_teacher_student(50, 3, random_state=0)
    with pytest.raises(ValueError, match="momentum=0.9 is a parameter of"):
        MeanFieldRegressor(solver="lbfgs", momentum=0.9).fit(X, y)
