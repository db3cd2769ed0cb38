"""MLPRegressor / MLPClassifier users' expectations (issue 13): multilabel,
the stopping and warm-start semantics, schedules, verbose lines, losses,
callbacks and a user's validation set. Each test is written from the
behaviour a user of MLP relies on."""

import re
import warnings

import numpy as np
import pytest
from sklearn import config_context
from sklearn.datasets import make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.linear_model import PoissonRegressor
from sklearn.metrics import mean_poisson_deviance, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_meanfield import MeanFieldClassifier, MeanFieldRegressor
from sklearn_meanfield.datasets import make_teacher_student


def _quiet(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


@pytest.fixture(scope="module")
def teacher():
    return make_teacher_student(300, 3, n_teacher=2, random_state=0)


@pytest.fixture(scope="module")
def multilabel():
    X, Y = make_multilabel_classification(
        400, n_features=8, n_classes=4, random_state=0
    )
    return train_test_split(X, Y, random_state=0)


# ---------------------------------------------------------------- 1. multilabel


def test_multilabel_fit_predict_proba(multilabel):
    X, X_test, Y, Y_test = multilabel
    clf = _quiet(MeanFieldClassifier(n_particles=50, random_state=0), X, Y)
    assert clf.classes_.tolist() == [0, 1, 2, 3]
    assert clf.n_outputs_ == 4 and clf.out_activation_ == "logistic"
    pred = clf.predict(X_test)
    assert pred.shape == Y_test.shape and set(np.unique(pred)) <= {0, 1}
    P = clf.predict_proba(X_test)
    assert P.shape == Y_test.shape and np.all((P >= 0) & (P <= 1))
    # one sigmoid per label: rows do not sum to one
    assert np.abs(P.sum(axis=1) - 1).max() > 0.1
    np.testing.assert_array_equal(pred, (P > 0.5).astype(int))
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X_test)), P, rtol=1e-12)
    assert clf.decision_function(X_test).shape == Y_test.shape
    # per-label accuracy as good as MLP's on the same data
    mlp = _quiet(MLPClassifier(hidden_layer_sizes=(50,), random_state=0), X, Y)
    ours = np.mean(pred == Y_test)
    assert ours >= np.mean(mlp.predict(X_test) == Y_test) - 0.03
    assert ours > 0.75
    # score is the subset accuracy
    assert clf.score(X_test, Y_test) == pytest.approx(
        np.mean(np.all(pred == Y_test, axis=1))
    )


def test_multilabel_partial_fit_and_early_stopping(multilabel):
    X, _, Y, _ = multilabel
    clf = MeanFieldClassifier(n_particles=20, random_state=0)
    with pytest.raises(ValueError, match="label indices"):
        clf.partial_fit(X, Y, classes=["a", "b", "c", "d"])
    assert not hasattr(clf, "classes_")
    losses = []
    for _ in range(5):
        clf.partial_fit(X, Y, classes=np.arange(4))
        losses.append(clf.loss_curve_[-1])
    assert losses[-1] < losses[0]
    assert clf.predict(X).shape == Y.shape
    es = _quiet(
        MeanFieldClassifier(n_particles=20, early_stopping=True, random_state=0),
        X,
        Y,
    )
    assert len(es.validation_scores_) == es.n_iter_
    assert 0 < es.best_validation_score_ <= 1


# ---------------------------------------------- 2, 9. stopping rule's patience


@pytest.mark.parametrize("solver", ["flow", "lbfgs"])
def test_n_iter_no_change_inf_switches_the_stopping_rule_off(teacher, solver):
    X, y = teacher
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        reg = MeanFieldRegressor(
            n_particles=10,
            solver=solver,
            max_iter=40,
            tol=1.0,  # every step fails this test
            n_iter_no_change=np.inf,
            random_state=0,
        ).fit(X, y)
    assert reg.n_iter_ == 40
    reg.set_params(n_iter_no_change=3)
    reg.fit(X, y)
    # each step fails to lower J by tol * J (the first is compared with J at
    # the initial particles)
    assert reg.n_iter_ == 3


def test_n_iter_no_change_one_does_not_stop_after_the_first_step(teacher):
    X, y = teacher
    reg = MeanFieldRegressor(
        n_particles=10, solver="flow", n_iter_no_change=1, tol=0.0, random_state=0
    )
    _quiet(reg, X, y)
    assert reg.n_iter_ > 10
    assert reg.score(X, y) > 0.9


def test_hold_after_a_first_step_that_is_too_large_does_not_stop_the_fit():
    # a first step far above the stable one is halved many times; the step
    # must then grow back instead of being held while the patience runs out
    X, y = make_regression(200, n_targets=5, random_state=0)
    reg = MeanFieldRegressor(
        solver="flow", tol=1e-2, learning_rate_init=2000.0, random_state=0
    )
    _quiet(reg, X, y)
    assert reg.n_step_reductions_ >= 10
    assert reg.score(X, y) > 0.99


# --------------------------------------------- 3. schedules, activations, batch


def test_adaptive_learning_rate_divides_by_five_instead_of_stopping(teacher):
    X, y = teacher
    kw = dict(
        n_particles=10,
        solver="flow",
        batch_size=50,
        learning_rate_init=0.2,
        tol=1.0,  # every epoch fails: the patience runs out every 2 epochs
        n_iter_no_change=2,
        max_iter=100,
        random_state=0,
    )
    # (minibatches: no J before the first epoch, which counts as improving)
    constant = _quiet(MeanFieldRegressor(learning_rate="constant", **kw), X, y)
    assert constant.n_iter_ == 3
    adaptive = _quiet(MeanFieldRegressor(learning_rate="adaptive", **kw), X, y)
    # five divisions by 5 (to below 1e-3 of the initial step), then stop
    assert adaptive.n_iter_ == 3 + 2 * 5
    assert adaptive.step_size_ == pytest.approx(0.2 / 5**5)


def test_logistic_is_sigmoid_and_identity_is_linear(teacher):
    X, y = teacher
    kw = dict(n_particles=10, max_iter=50, random_state=0)
    a = _quiet(MeanFieldRegressor(activation="logistic", **kw), X, y)
    b = _quiet(MeanFieldRegressor(activation="sigmoid", **kw), X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    rng = np.random.default_rng(0)
    w = rng.standard_normal(X.shape[1])
    y_lin = X @ w + 3.0 + 0.01 * rng.standard_normal(X.shape[0])
    lin = _quiet(MeanFieldRegressor(activation="identity", **kw), X, y_lin)
    assert lin.score(X, y_lin) > 0.999
    # the model is affine in x
    x0, x1 = X[:5], X[5:10]
    np.testing.assert_allclose(
        lin.predict(0.5 * (x0 + x1)),
        0.5 * (lin.predict(x0) + lin.predict(x1)),
        atol=1e-10,
    )
    assert lin.alpha_max_ is not None and lin.certificate_max_ < 5


def test_batch_size_auto_is_min_200_n(teacher):
    X, y = teacher
    kw = dict(n_particles=10, solver="adam", max_iter=5, random_state=0)
    auto = _quiet(MeanFieldRegressor(batch_size="auto", **kw), X, y)
    explicit = _quiet(MeanFieldRegressor(batch_size=200, **kw), X, y)
    np.testing.assert_array_equal(auto.predict(X), explicit.predict(X))
    small = _quiet(MeanFieldRegressor(batch_size="auto", **kw), X[:50], y[:50])
    full = _quiet(MeanFieldRegressor(batch_size=50, **kw), X[:50], y[:50])
    np.testing.assert_array_equal(small.predict(X), full.predict(X))


# --------------------------------------------------------- 5. verbose lines


def test_partial_fit_verbose_prints_the_true_iteration(teacher, capsys):
    X, y = teacher
    reg = MeanFieldRegressor(n_particles=10, verbose=2, random_state=0)
    for _ in range(5):
        reg.partial_fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [int(re.match(r"Iteration (\d+),", ln).group(1)) for ln in lines] == [
        2,
        4,
    ]
    assert reg.n_iter_ == 5


# ------------------------------------------------- 7. partial_fit + early stop


def test_partial_fit_with_early_stopping_raises_and_changes_nothing(teacher):
    X, y = teacher
    reg = MeanFieldRegressor(n_particles=10, random_state=0).partial_fit(X, y)
    before = reg.predict(X)
    reg.set_params(early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping"):
        reg.partial_fit(X, y)
    assert reg.n_iter_ == 1
    np.testing.assert_array_equal(reg.predict(X), before)


# ------------------------------------------------------ 8. warm start continues


def test_warm_start_continues_schedule_counters_and_curves(teacher):
    X, y = teacher
    reg = MeanFieldRegressor(
        n_particles=10,
        solver="flow",
        batch_size=100,
        learning_rate="invscaling",
        learning_rate_init=0.5,
        early_stopping=True,
        n_iter_no_change=np.inf,
        warm_start=True,
        max_iter=10,
        random_state=0,
    )
    _quiet(reg, X, y)
    assert reg.n_iter_ == 10
    step, t, scores = reg.step_size_, reg.t_, list(reg.validation_scores_)
    reg.set_params(max_iter=20)
    _quiet(reg, X, y)
    assert reg.n_iter_ == 20  # this fit's epochs, as MLP's n_iter_
    assert reg.t_ == 3 * t  # samples seen by both fits
    assert len(reg.loss_curve_) == 30
    assert reg.validation_scores_[:10] == scores
    assert len(reg.validation_scores_) == 30
    # the schedule continued: epoch 29's step, not epoch 19's
    assert reg.step_size_ == pytest.approx(0.5 / 30**0.5)
    assert reg.step_size_ < step


# ------------------------------------------------------------- 11. attributes


def test_mlp_attributes_and_column_vector_y(teacher):
    X, y = teacher
    reg = MeanFieldRegressor(n_particles=10, random_state=0)
    with pytest.warns(DataConversionWarning, match="column-vector"):
        _quiet(reg, X, y[:, None])
    assert reg.predict(X).shape == (X.shape[0],)
    assert reg.n_outputs_ == 1 and reg.out_activation_ == "identity"
    assert reg.loss_ == reg.loss_curve_[-1]
    Y2 = np.column_stack([y, -y])
    _quiet(reg, X, Y2)
    assert reg.n_outputs_ == 2 and reg.predict(X).shape == (X.shape[0], 2)
    clf = _quiet(MeanFieldClassifier(n_particles=10, random_state=0), X, y > 0)
    assert clf.n_outputs_ == 1 and clf.out_activation_ == "logistic"
    clf3 = _quiet(
        MeanFieldClassifier(n_particles=10, random_state=0), X, np.digitize(y, [-1, 1])
    )
    assert clf3.n_outputs_ == 3 and clf3.out_activation_ == "softmax"
    pois = _quiet(
        MeanFieldRegressor(n_particles=10, loss="poisson", random_state=0),
        X,
        np.abs(y),
    )
    assert pois.out_activation_ == "exp"


# --------------------------------------------------------------------- losses


def test_poisson_loss_on_counts_beats_poisson_regression():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(1500, 3))
    # a nonlinear log-mean: the GLM cannot represent it
    mu = np.exp(1.0 + np.abs(X[:, 0]) * 1.5 - X[:, 1] ** 2)
    y = rng.poisson(mu)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=0)
    reg = _quiet(
        MeanFieldRegressor(n_particles=50, loss="poisson", random_state=0),
        X_tr,
        y_tr,
    )
    glm = PoissonRegressor(alpha=0).fit(X_tr, y_tr)
    ours = mean_poisson_deviance(y_te, reg.predict(X_te))
    theirs = mean_poisson_deviance(y_te, glm.predict(X_te))
    best = mean_poisson_deviance(
        y_te, np.exp(1.0 + np.abs(X_te[:, 0]) * 1.5 - X_te[:, 1] ** 2)
    )
    assert np.all(reg.predict(X_te) > 0)
    assert ours < 0.8 * theirs
    assert ours < 1.15 * best
    # invariant to the units of the counts (a rate in other units)
    scaled = _quiet(
        MeanFieldRegressor(n_particles=50, loss="poisson", random_state=0),
        X_tr,
        1000.0 * y_tr,
    )
    np.testing.assert_allclose(
        scaled.predict(X_te), 1000.0 * reg.predict(X_te), rtol=1e-5
    )
    with pytest.raises(ValueError, match="non-negative"):
        MeanFieldRegressor(loss="poisson").fit(X_tr, y_tr - 5.0)


def test_huber_loss_is_robust_to_outliers():
    X, y = make_teacher_student(400, 3, n_teacher=2, random_state=1)
    rng = np.random.default_rng(1)
    y_dirty = y.copy()
    out = rng.choice(len(y), size=40, replace=False)  # 10% outliers
    y_dirty[out] += rng.choice([-1, 1], size=40) * 20 * y.std()
    kw = dict(n_particles=40, random_state=0)
    huber = _quiet(MeanFieldRegressor(loss="huber", **kw), X, y_dirty)
    squared = _quiet(MeanFieldRegressor(loss="squared_error", **kw), X, y_dirty)
    r2_huber = r2_score(y, huber.predict(X))
    r2_squared = r2_score(y, squared.predict(X))
    assert r2_huber > 0.95
    assert r2_squared < r2_huber - 0.1
    assert huber.certificate_max_ is not None and np.isfinite(huber.dual_gap_)


# ------------------------------------------------------------------- callback


def test_callback_receives_every_epoch_and_can_stop(teacher):
    X, y = teacher
    records = []

    def record(r):
        # a custom metric on the particles, in the units of X and y
        records.append((r.iteration, r.loss, r.step_size, np.abs(r.weights).sum()))
        assert not r.weights.flags.writeable
        return False

    reg = _quiet(
        MeanFieldRegressor(n_particles=10, solver="flow", max_iter=30, callback=record),
        X,
        y,
    )
    assert [r[0] for r in records] == list(range(1, reg.n_iter_ + 1))
    assert [r[1] for r in records] == reg.loss_curve_
    assert all(r[2] > 0 for r in records)
    last_weights = records[-1][3]
    assert last_weights == pytest.approx(np.abs(reg.weights_).sum())

    # a fit that stops on its own rule reports its last epoch too
    seen = []
    reg.set_params(callback=lambda r: seen.append(r.iteration), solver="lbfgs")
    reg.set_params(max_iter=5000, tol=1e-2)
    _quiet(reg, X, y)
    assert reg.n_iter_ < 5000 and seen == list(range(1, reg.n_iter_ + 1))

    reg.set_params(callback=lambda r: r.iteration == 7)
    _quiet(reg, X, y)
    assert reg.n_iter_ == 7


# ------------------------------------------------------------ validation set


def test_user_validation_set(teacher):
    X, y = teacher
    X_tr, X_val, y_tr, y_val = X[:200], X[200:], y[:200], y[200:]
    reg = _quiet(
        MeanFieldRegressor(n_particles=10, solver="flow", max_iter=50, random_state=0),
        X_tr,
        y_tr,
        X_val=X_val,
        y_val=y_val,
    )
    # recorded without early stopping: a validation curve
    assert len(reg.validation_scores_) == reg.n_iter_ == 50
    assert reg.validation_scores_[-1] == pytest.approx(reg.score(X_val, y_val))
    es = _quiet(
        MeanFieldRegressor(
            n_particles=10,
            solver="flow",
            early_stopping=True,
            max_iter=50,
            random_state=0,
        ),
        X_tr,
        y_tr,
        X_val=X_val,
        y_val=y_val,
    )
    # the best epoch's particles are kept, scored on the user's set
    assert es.best_validation_score_ == pytest.approx(max(es.validation_scores_))
    assert es.score(X_val, y_val) == pytest.approx(es.best_validation_score_)
    with pytest.raises(ValueError, match="together"):
        MeanFieldRegressor().fit(X_tr, y_tr, X_val=X_val)
    clf = MeanFieldClassifier(n_particles=10, random_state=0)
    with pytest.raises(ValueError, match="y_val contains labels"):
        clf.fit(X_tr, y_tr > 0, X_val=X_val, y_val=np.full(len(y_val), 2))
    assert not hasattr(clf, "classes_")


def test_validation_set_routed_through_a_pipeline(teacher):
    X, y = teacher
    X = X * 100 + 5  # the scaler matters
    X_tr, X_val, y_tr, y_val = X[:200], X[200:], y[:200], y[200:]
    with config_context(enable_metadata_routing=True):
        reg = MeanFieldRegressor(
            n_particles=10, solver="flow", max_iter=20, random_state=0
        ).set_fit_request(X_val=True, y_val=True)
        pipe = Pipeline(
            [("scale", StandardScaler()), ("reg", reg)], transform_input=["X_val"]
        )
        _quiet(pipe, X_tr, y_tr, X_val=X_val, y_val=y_val)
    fitted = pipe.named_steps["reg"]
    assert len(fitted.validation_scores_) == fitted.n_iter_
    assert fitted.validation_scores_[-1] == pytest.approx(pipe.score(X_val, y_val))
