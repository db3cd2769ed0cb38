"""The training toolkit shared by the network estimators: minibatches,
partial_fit, early stopping, flows, schedules, records, chunking."""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from sklearn_meanfield import MeanFieldClassifier, MeanFieldRegressor
from sklearn_meanfield._losses import SquaredLoss
from sklearn_meanfield.datasets import make_teacher_student

SGD = dict(batch_size=500, learning_rate="invscaling", power_t=0.25)


def test_minibatch_reaches_full_batch_r2_in_fewer_passes():
    X, y = make_teacher_student(25000, 5, n_teacher=3, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=20000, random_state=0
    )
    full = MeanFieldRegressor(20, solver="flow", random_state=0).fit(X_train, y_train)
    mini = MeanFieldRegressor(20, solver="flow", random_state=0, **SGD).fit(
        X_train, y_train
    )
    r2_full, r2_mini = full.score(X_test, y_test), mini.score(X_test, y_test)
    print(
        f"full batch R^2 {r2_full:.6f} in {full.n_iter_} passes; "
        f"minibatch R^2 {r2_mini:.6f} in {mini.n_iter_} passes"
    )
    assert r2_full > 0.999
    assert r2_mini > r2_full - 0.001
    assert mini.n_iter_ < full.n_iter_
    assert mini.t_ == mini.n_iter_ * 20000


def test_partial_fit_over_chunks_matches_fit():
    X, y = make_teacher_student(5000, 5, n_teacher=3, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=4000, random_state=0
    )
    params = dict(batch_size=200, learning_rate="invscaling", power_t=0.25)
    fit = MeanFieldRegressor(
        20, solver="flow", max_iter=30, tol=0, random_state=0, **params
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit.fit(X_train, y_train)
    stream = MeanFieldRegressor(20, solver="flow", random_state=0, **params)
    chunks = list(
        zip(np.array_split(X_train, 10), np.array_split(y_train, 10), strict=True)
    )
    for _ in range(30):
        for X_chunk, y_chunk in chunks:
            stream.partial_fit(X_chunk, y_chunk)
    assert stream.n_iter_ == 300 and stream.t_ == 30 * 4000
    assert len(stream.loss_curve_) == 300
    r2_fit, r2_stream = fit.score(X_test, y_test), stream.score(X_test, y_test)
    assert r2_fit > 0.999
    assert abs(r2_stream - r2_fit) < 0.01


def test_partial_fit_checks_features_and_classes():
    X, y = make_teacher_student(200, 4, random_state=0)
    reg = MeanFieldRegressor(10, random_state=0).partial_fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features"):
        reg.partial_fit(X[:, :3], y)
    labels = (y > np.median(y)).astype(int)
    clf = MeanFieldClassifier(10, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, labels)
    clf.partial_fit(X[:50], labels[:50], classes=[0, 1, 2])
    assert clf.classes_.tolist() == [0, 1, 2]
    assert clf.predict_proba(X).shape == (200, 3)
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X, labels + 5)


def test_early_stopping_restores_best_particles():
    # few noisy samples in d = 20 and no penalty: the network soon fits the
    # noise, so the validation score peaks early, then decays.
    rng = np.random.RandomState(2)
    X = rng.standard_normal((80, 20))
    y = X[:, 0] + rng.standard_normal(80)
    reg = MeanFieldRegressor(
        100,
        alpha=0.0,
        early_stopping=True,
        validation_fraction=0.25,
        n_iter_no_change=100,
        tol=0.0,
        max_iter=2000,
        random_state=2,
    ).fit(X, y)
    scores = np.array(reg.validation_scores_)
    best = int(np.argmax(scores))
    assert reg.best_validation_score_ == scores[best]
    assert len(scores) == best + 1 + 100  # stopped 100 epochs after the peak
    assert scores[-1] < scores[best] - 0.1
    assert reg.best_loss_ is None
    # the restored particles are those of the best epoch: recompute the split
    _, val = train_test_split(
        np.arange(80), test_size=0.25, random_state=check_random_state(2)
    )
    assert reg.score(X[val], y[val]) == pytest.approx(scores[best], abs=1e-12)


def test_early_stopping_classifier_is_stratified():
    X, y = make_teacher_student(400, 4, task="classification", random_state=0)
    clf = MeanFieldClassifier(20, early_stopping=True, validation_fraction=0.2)
    clf.set_params(random_state=0, max_iter=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert 0.8 < clf.best_validation_score_ <= 1.0
    assert clf.best_validation_score_ == max(clf.validation_scores_)


def test_langevin_escapes_a_collapsed_initialisation():
    # All particles at one point: plain gradient descent keeps them together
    # (a one-neuron network) forever; the Langevin noise spreads them.
    X, y = make_teacher_student(1000, 5, n_teacher=3, random_state=0)
    scores = {}
    for flow in ("wasserstein", "langevin"):
        reg = MeanFieldRegressor(30, max_iter=1, alpha=1e-3, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reg.fit(X, y)
        reg.positions_ = np.tile(reg.positions_[:1], (30, 1))
        reg.weights_ = np.full(30, 0.1)
        reg.set_params(warm_start=True, max_iter=2000, tol=0, flow=flow)
        reg.set_params(temperature=1e-3, annealing="linear")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reg.fit(X, y)
        scores[flow] = reg.score(X, y)
        spread = np.ptp(reg.positions_, axis=0).max()
        if flow == "wasserstein":
            assert spread < 1e-10  # still collapsed
    assert scores["wasserstein"] < 0.9
    assert scores["langevin"] > 0.999


def test_langevin_is_reproducible():
    X, y = make_teacher_student(200, 3, random_state=0)
    fits = [
        MeanFieldRegressor(10, flow="langevin", max_iter=50, random_state=5).fit(X, y)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(fits[0].positions_, fits[1].positions_)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conic_flow_concentrates_mass_faster_on_a_sparse_teacher(seed):
    # sigmoid teacher with 2 neurons, 100 particles starting from (near) zero
    # output weights: the multiplicative weight update of the conic flow
    # moves mass onto the right particles much faster than additive steps.
    X, y = make_teacher_student(
        1000, 5, n_teacher=2, activation="sigmoid", random_state=seed
    )
    losses = {}
    for flow in ("wasserstein", "conic"):
        reg = MeanFieldRegressor(
            100, solver="flow", activation="sigmoid", flow=flow, learning_rate_init=2.0
        )
        reg.set_params(max_iter=20, tol=0, alpha=1e-5, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reg.fit(X, y)
        losses[flow] = reg.loss_curve_[-1]
    # measured on the unit-free objective (standardised y): ratios 0.54,
    # 0.45, 0.64 on seeds 0, 1, 2
    assert losses["conic"] < 0.75 * losses["wasserstein"]


def test_conic_flow_keeps_signs():
    X, y = make_teacher_student(300, 3, random_state=0)
    reg = MeanFieldRegressor(20, alpha=1e-5, flow="conic", max_iter=300, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
    signs = np.where(np.arange(20) % 2 == 0, 1.0, -1.0)
    np.testing.assert_array_equal(np.sign(reg.weights_), signs)
    assert reg.score(X, y) > 0.99


def test_invscaling_schedule_caps_the_step():
    X, y = make_teacher_student(300, 3, random_state=0)
    reg = MeanFieldRegressor(10, learning_rate="invscaling", power_t=0.5)
    reg.set_params(max_iter=99, tol=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
    assert reg.step_size_ <= 0.5 / np.sqrt(99) + 1e-12


def test_trajectory_record_is_bounded():
    X, y = make_teacher_student(200, 3, random_state=0)
    reg = MeanFieldRegressor(8, record_every=5, max_iter=50, tol=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
    traj = reg.trajectory_
    assert traj["iterations"].tolist() == list(range(0, 51, 5))
    assert traj["positions"].shape == (11, 8, 4)
    assert traj["weights"].shape == (11, 8, 1)
    np.testing.assert_array_equal(traj["positions"][-1], reg.positions_)
    reg.set_params(record_every=1, max_iter=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
    n_records = len(reg.trajectory_["iterations"])
    assert 100 <= n_records <= 201
    assert np.all(np.diff(reg.trajectory_["iterations"]) > 0)


@pytest.mark.parametrize("batch_size", [None, 64])
def test_chunked_passes_agree_with_unchunked(batch_size):
    X, y = make_teacher_student(600, 4, random_state=0)
    params = dict(batch_size=batch_size, max_iter=30, tol=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = MeanFieldRegressor(16, solver="flow", **params).fit(X, y)
        # 0.001 MiB of working memory: blocks of 32 rows for 16 particles
        with sklearn.config_context(working_memory=0.001):
            chunked = MeanFieldRegressor(16, solver="flow", **params).fit(X, y)
    np.testing.assert_allclose(chunked.positions_, plain.positions_, rtol=1e-9)
    np.testing.assert_allclose(chunked.loss_curve_, plain.loss_curve_, rtol=1e-9)


def test_minibatch_float32_stays_float32():
    X, y = make_teacher_student(400, 3, random_state=0)
    reg = MeanFieldRegressor(
        10, solver="flow", batch_size=50, max_iter=20, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X.astype(np.float32), y.astype(np.float32))
    assert reg.positions_.dtype == np.float32
    assert reg.score(X, y) > 0.9


def test_keyboard_interrupt_keeps_usable_particles(monkeypatch):
    X, y = make_teacher_student(200, 3, random_state=0)
    original = SquaredLoss.value_and_gradient
    calls = {"n": 0}

    def interrupting(self, Y, F, s):
        calls["n"] += 1
        if calls["n"] == 21:
            raise KeyboardInterrupt
        return original(self, Y, F, s)

    monkeypatch.setattr(SquaredLoss, "value_and_gradient", interrupting)
    reg = MeanFieldRegressor(10, max_iter=1000, tol=0, random_state=0)
    with pytest.warns(UserWarning, match="interrupted"):
        reg.fit(X, y)
    assert 0 < reg.n_iter_ < 21
    assert np.all(np.isfinite(reg.predict(X)))


def test_verbose_reports_validation_score(capsys):
    X, y = make_teacher_student(200, 3, random_state=0)
    reg = MeanFieldRegressor(10, early_stopping=True, max_iter=3, verbose=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.set_params(random_state=0).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert all("validation score" in line and "time" in line for line in lines)


def test_memory_is_bounded_by_input_and_working_memory():
    # n x m in float64 would be 200 MiB; with 16 MiB of working memory the
    # passes run over chunks and the fit allocates the [X, 1] copy (about the
    # size of X) plus a fixed working set.
    import tracemalloc

    rng = np.random.RandomState(0)
    X = rng.standard_normal((50_000, 20))
    y = X[:, 0] - X[:, 1]
    working_memory = 16  # MiB
    tracemalloc.start()
    try:
        with (
            warnings.catch_warnings(),
            sklearn.config_context(working_memory=working_memory),
        ):
            warnings.simplefilter("ignore", ConvergenceWarning)
            MeanFieldRegressor(500, max_iter=2, random_state=0).fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full_matrix = 50_000 * 500 * 8
    assert peak < 1.2 * X.nbytes + 1.5 * working_memory * 2**20
    assert peak < full_matrix / 4


def test_momentum_reaches_the_target_in_fewer_steps_and_stays_monotone():
    X, y = make_teacher_student(2000, 10, n_teacher=5, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    plain = MeanFieldRegressor(50, solver="flow", random_state=0).fit(X_train, y_train)
    heavy = MeanFieldRegressor(50, solver="flow", momentum=0.9, random_state=0).fit(
        X_train, y_train
    )
    assert heavy.score(X_test, y_test) > 0.999
    # steps to reach the loss the plain flow ends with
    target = plain.loss_curve_[-1]
    steps_heavy = int(np.argmax(np.array(heavy.loss_curve_) <= target))
    assert heavy.loss_curve_[steps_heavy] <= target
    assert steps_heavy < 0.5 * plain.n_iter_
    # the adaptive restart keeps the full-batch objective non-increasing
    assert np.all(np.diff(heavy.loss_curve_) <= 0)


def test_momentum_with_minibatches_and_its_limits():
    X, y = make_teacher_student(2000, 5, n_teacher=3, random_state=0)
    reg = MeanFieldRegressor(20, momentum=0.9, batch_size=100, random_state=0)
    reg.set_params(learning_rate="invscaling", power_t=0.5, learning_rate_init=0.1)
    reg.fit(X, y)
    assert reg.score(X, y) > 0.99
    with pytest.raises(ValueError, match="momentum"):
        MeanFieldRegressor(flow="conic", momentum=0.5).fit(X, y)
    with pytest.raises(ValueError, match="momentum"):
        MeanFieldRegressor(momentum=1.0).fit(X, y)


def test_hot_langevin_is_held_back_not_returned_as_nan():
    # a temperature far too high for the step: the noise would blow the
    # particles up; the step is reduced instead and predictions stay finite
    X, y = make_teacher_student(100, 3, random_state=0)
    reg = MeanFieldRegressor(
        solver="flow", flow="langevin", temperature=1e3, max_iter=50
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.set_params(random_state=0).fit(X, y)
    assert reg.n_step_reductions_ > 0
    assert np.all(np.isfinite(reg.predict(X)))
    X_fit, y_fit = X, y
    start = MeanFieldRegressor(solver="flow", max_iter=1, random_state=0)
    start.set_params(learning_rate_init=1e-12, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start.fit(X_fit, y_fit)
    J0 = start.loss_curve_[0]  # the objective at the (same) initial particles
    assert max(reg.loss_curve_) <= 100 * J0 * (1 + 1e-6)


def test_minibatch_divergence_recovers_for_every_seed():
    # unscaled multi-output targets (|y| ~ 100s) with batches of 8 of 11
    # samples: early epochs blow up and are restarted; no seed may end in a
    # DivergenceError (2 of 40 seeds did before restarts fell back to the
    # initial particles)
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=11, n_features=10, n_targets=5, random_state=42)
    for seed in range(40):
        reg = MeanFieldRegressor(batch_size=8, max_iter=200, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reg.fit(X, y)
        assert np.all(np.isfinite(reg.predict(X)))


def test_minibatch_partial_fit_costs_one_pass(monkeypatch):
    # One partial_fit epoch evaluates each batch once: J_0 (a pass over the
    # whole chunk) is only computed when a batch's loss is too high for its
    # lower bound, which a healthy epoch never is ...
    from sklearn_meanfield._objective import MeanFieldObjective

    X, y = make_teacher_student(1000, 5, n_teacher=3, random_state=0)
    reg = MeanFieldRegressor(20, batch_size=100, random_state=0).partial_fit(X, y)
    sizes = []
    forward = MeanFieldObjective.forward

    def counting(self, Xp, *args):
        sizes.append(Xp.shape[0])
        return forward(self, Xp, *args)

    monkeypatch.setattr(MeanFieldObjective, "forward", counting)
    reg.partial_fit(X, y)
    assert sizes == [100] * 10
    # ... while a blowing-up epoch still computes it (then a DivergenceError
    # or a restart, never NaN particles): a huge step on unscaled targets
    sizes.clear()
    big = MeanFieldRegressor(20, batch_size=100, learning_rate_init=1e3)
    big.set_params(random_state=0).partial_fit(X, 100 * y)
    assert 1000 in sizes
    assert big.n_step_reductions_ > 0
    assert np.all(np.isfinite(big.predict(X)))
