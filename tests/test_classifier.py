"""MeanFieldClassifier, its losses and the classification teacher-student data."""

import warnings

import numpy as np
import pytest
from scipy.special import expit, softmax
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from sklearn_meanfield import MeanFieldClassifier
from sklearn_meanfield._losses import BinaryLogisticLoss, SoftmaxCrossEntropyLoss
from sklearn_meanfield.datasets import make_teacher_student

# Small fits for the behaviour tests: the outcome, not the accuracy, matters.
FAST = dict(n_particles=20, max_iter=200, random_state=0)


def _fast(**params):
    return MeanFieldClassifier(**{**FAST, **params})


def _fit_quiet(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


@pytest.fixture(scope="module")
def three_class():
    X, y = make_teacher_student(
        300, 4, n_teacher=4, task="classification", n_classes=3, random_state=1
    )
    return X, y


@pytest.fixture(scope="module")
def two_class():
    X, y = make_teacher_student(
        300, 4, n_teacher=3, task="classification", random_state=2
    )
    return X, y


# --------------------------------------------------------------------- losses


def _numerical_gradient(loss, Y, F, s, h=1e-6):
    G = np.empty_like(F)
    for idx in np.ndindex(F.shape):
        Fp, Fm = F.copy(), F.copy()
        Fp[idx] += h
        Fm[idx] -= h
        G[idx] = (
            loss.value_and_gradient(Y, Fp, s)[0] - loss.value_and_gradient(Y, Fm, s)[0]
        ) / (2 * h)
    return G


def test_binary_logistic_loss_value_and_gradient():
    rng = np.random.RandomState(0)
    F = rng.standard_normal((7, 1)) * 3
    Y = (rng.uniform(size=(7, 1)) > 0.5).astype(float)
    s = rng.uniform(size=7)
    s /= s.sum()
    value, G = BinaryLogisticLoss().value_and_gradient(Y, F.copy(), s)
    expected = s @ (np.log1p(np.exp(F[:, 0])) - Y[:, 0] * F[:, 0])
    assert value == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(G, s[:, None] * (expit(F) - Y), rtol=1e-12)
    np.testing.assert_allclose(
        G, _numerical_gradient(BinaryLogisticLoss(), Y, F, s), atol=1e-8
    )


def test_softmax_loss_value_and_gradient():
    rng = np.random.RandomState(0)
    F = rng.standard_normal((6, 4)) * 3
    Y = np.eye(4)[rng.randint(4, size=6)]
    s = np.full(6, 1 / 6)
    value, G = SoftmaxCrossEntropyLoss().value_and_gradient(Y, F.copy(), s)
    expected = -np.mean(np.log(softmax(F, axis=1))[Y.astype(bool)])
    assert value == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(G, (softmax(F, axis=1) - Y) / 6, atol=1e-15)
    np.testing.assert_allclose(
        G, _numerical_gradient(SoftmaxCrossEntropyLoss(), Y, F, s), atol=1e-8
    )


def test_binary_loss_is_softmax_with_a_zero_logit():
    # logistic(f) is the two-class softmax of (0, f)
    rng = np.random.RandomState(1)
    f = rng.standard_normal((9, 1)) * 4
    y = (rng.uniform(size=(9, 1)) > 0.5).astype(float)
    s = np.full(9, 1 / 9)
    vb, Gb = BinaryLogisticLoss().value_and_gradient(y, f.copy(), s)
    vs, Gs = SoftmaxCrossEntropyLoss().value_and_gradient(
        np.hstack([1 - y, y]), np.hstack([np.zeros_like(f), f]), s
    )
    assert vb == pytest.approx(vs, rel=1e-12)
    np.testing.assert_allclose(Gb[:, 0], Gs[:, 1], atol=1e-15)


@pytest.mark.parametrize("big", [1e4, 1e300])
def test_losses_are_finite_for_extreme_outputs(big):
    s = np.full(2, 0.5)
    F = np.array([[big], [-big]])
    Y = np.array([[0.0], [1.0]])  # both maximally wrong
    value, G = BinaryLogisticLoss().value_and_gradient(Y, F.copy(), s)
    assert value == pytest.approx(big, rel=1e-12)
    np.testing.assert_allclose(G, [[0.5], [-0.5]])
    F = np.array([[big, -big, 0.0], [0.0, big, -big]])
    Y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    value, G = SoftmaxCrossEntropyLoss().value_and_gradient(Y, F.copy(), s)
    assert value == pytest.approx(1.5 * big, rel=1e-12)
    np.testing.assert_allclose(G, [[0.5, -0.5, 0], [-0.5, 0.5, 0]], atol=1e-15)


def test_init_intercept_is_the_best_constant():
    rng = np.random.RandomState(0)
    s = rng.uniform(size=50)
    s /= s.sum()
    y = (rng.uniform(size=(50, 1)) < 0.3).astype(float)
    b = BinaryLogisticLoss().init_intercept(y, s)
    p = s @ y[:, 0]
    assert b[0] == pytest.approx(np.log(p / (1 - p)), rel=1e-12)
    # the gradient of R with respect to a constant output vanishes there
    _, G = BinaryLogisticLoss().value_and_gradient(y, np.full((50, 1), b[0]), s)
    assert abs(G.sum()) < 1e-12
    Y = np.eye(3)[rng.choice(3, size=50, p=[0.2, 0.5, 0.3])]
    b = SoftmaxCrossEntropyLoss().init_intercept(Y, s)
    _, G = SoftmaxCrossEntropyLoss().value_and_gradient(Y, np.tile(b, (50, 1)), s)
    np.testing.assert_allclose(G.sum(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(softmax(b), s @ Y, rtol=1e-12)
    # an absent class gets a finite prior
    assert np.isfinite(BinaryLogisticLoss().init_intercept(np.zeros((4, 1)), s[:4]))


# ------------------------------------------------------------------ accuracy


@pytest.mark.parametrize("loader", [load_digits, load_breast_cancer])
def test_held_out_accuracy_real_data(loader):
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    clf = make_pipeline(StandardScaler(), MeanFieldClassifier(random_state=0))
    score = clf.fit(X_train, y_train).score(X_test, y_test)
    mlp = make_pipeline(StandardScaler(), MLPClassifier(max_iter=1000, random_state=0))
    mlp_score = mlp.fit(X_train, y_train).score(X_test, y_test)
    print(
        f"{loader.__name__}: MeanFieldClassifier {score:.4f}, "
        f"MLPClassifier {mlp_score:.4f}"
    )
    assert score >= 0.95


def test_teacher_student_binary_and_multiclass():
    for n_classes, n_teacher in [(2, 3), (3, 4)]:
        X, y = make_teacher_student(
            1500,
            5,
            n_teacher=n_teacher,
            task="classification",
            n_classes=n_classes,
            random_state=0,
        )
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.3, stratify=y, random_state=0
        )
        clf = MeanFieldClassifier(n_particles=50, random_state=0)
        score = _fit_quiet(clf, X_train, y_train).score(X_test, y_test)
        linear = LogisticRegression().fit(X_train, y_train).score(X_test, y_test)
        # measured: 0.982 / 0.971 against 0.893 / 0.847 for the linear model
        assert score >= 0.95, (n_classes, score)
        assert linear < 0.92, (n_classes, linear)


# ------------------------------------------------------- outputs and shapes


def test_binary_outputs(two_class):
    X, y = two_class
    clf = _fit_quiet(_fast(), X, y)
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    d = clf.decision_function(X)
    assert d.shape == (len(X),)
    assert clf.weights_.shape == (20,)
    assert isinstance(clf.intercept_, float)
    P = clf.predict_proba(X)
    np.testing.assert_allclose(P[:, 1], expit(d), rtol=1e-12)
    np.testing.assert_allclose(
        clf.predict_log_proba(X), np.log(P), rtol=1e-8, atol=1e-12
    )
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(d > 0).astype(int)])
    # predict agrees with the most probable class
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[P.argmax(axis=1)])


def test_multiclass_outputs(three_class):
    X, y = three_class
    clf = _fit_quiet(_fast(), X, y)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    D = clf.decision_function(X)
    assert D.shape == (len(X), 3)
    assert clf.weights_.shape == (20, 3)
    assert clf.intercept_.shape == (3,)
    P = clf.predict_proba(X)
    np.testing.assert_allclose(P, softmax(D, axis=1), rtol=1e-10)
    np.testing.assert_allclose(
        clf.predict_log_proba(X), np.log(P), rtol=1e-8, atol=1e-12
    )
    np.testing.assert_array_equal(clf.predict(X), D.argmax(axis=1))


@pytest.mark.parametrize("data", ["two_class", "three_class"])
@pytest.mark.parametrize("scale", [1e6, -1e6, 1e12])
def test_predict_proba_finite_and_normalised_for_extreme_inputs(data, scale, request):
    X, y = request.getfixturevalue(data)
    clf = _fit_quiet(_fast(), X, y)
    X_big = X * scale
    assert np.abs(clf.decision_function(X_big)).max() > 1e3  # really extreme
    P = clf.predict_proba(X_big)
    assert np.isfinite(P).all()
    assert P.min() >= 0
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=0, atol=1e-12)
    logP = clf.predict_log_proba(X_big)
    assert not np.isnan(logP).any()
    assert (logP <= 0).all()
    np.testing.assert_array_equal(clf.predict(X_big), clf.classes_[P.argmax(axis=1)])


# ----------------------------------------------------------------- labels


def test_string_labels_give_the_same_fit_as_integer_codes(three_class):
    X, y = three_class
    names = np.array(["bird", "cat", "dog"])  # sorted, so codes are unchanged
    clf_int = _fit_quiet(_fast(), X, y)
    clf_str = _fit_quiet(_fast(), X, names[y].tolist())
    np.testing.assert_array_equal(clf_str.classes_, names)
    np.testing.assert_array_equal(clf_str.predict(X), names[clf_int.predict(X)])
    np.testing.assert_allclose(clf_str.predict_proba(X), clf_int.predict_proba(X))
    assert clf_str.score(X, names[y]) == clf_int.score(X, y) > 0.8


def test_binary_string_labels_and_positive_class(two_class):
    X, y = two_class
    labels = np.where(y == 1, "yes", "no").astype(object)
    clf = _fit_quiet(_fast(), X, labels)
    np.testing.assert_array_equal(clf.classes_, ["no", "yes"])
    # decision_function > 0 means classes_[1]
    pred = clf.predict(X)
    np.testing.assert_array_equal(pred == "yes", clf.decision_function(X) > 0)
    assert np.mean(pred == labels) > 0.8


# -------------------------------------------------------------- bad input


def test_one_class_raises(two_class):
    X, _ = two_class
    with pytest.raises(ValueError, match=r"at least 2 classes.*only one class"):
        _fast().fit(X, np.full(len(X), "a"))


def test_one_class_with_positive_weight_raises(two_class):
    X, y = two_class
    with pytest.raises(ValueError, match="2 classes with a positive total weight"):
        _fast().fit(X, y, sample_weight=(y == 1).astype(float))
    with pytest.raises(ValueError, match="2 classes with a positive total weight"):
        _fast(class_weight={0: 0.0, 1: 1.0}).fit(X, y)


def test_continuous_target_raises(two_class):
    X, _ = two_class
    with pytest.raises(ValueError, match="Unknown label type"):
        _fast().fit(X, np.linspace(0, 1, len(X)))


def test_nan_raises(two_class):
    X, y = two_class
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _fast().fit(X_nan, y)
    clf = _fit_quiet(_fast(), X, y)
    with pytest.raises(ValueError, match="NaN"):
        clf.predict_proba(X_nan)


def test_wrong_feature_count_at_predict_raises(two_class):
    X, y = two_class
    clf = _fit_quiet(_fast(), X, y)
    for method in ("predict", "predict_proba", "predict_log_proba"):
        with pytest.raises(ValueError, match="4 features"):
            getattr(clf, method)(X[:, :3])


def test_bad_class_weight_raises(two_class):
    X, y = two_class
    with pytest.raises(ValueError, match="class_weight"):
        _fast(class_weight="auto").fit(X, y)


def test_warm_start_with_other_classes_raises(three_class):
    X, y = three_class
    clf = _fit_quiet(_fast(warm_start=True), X, y)
    with pytest.raises(ValueError, match="same classes"):
        clf.fit(X, np.where(y == 2, 5, y))


# ------------------------------------------------------------------ weights


def test_zero_sample_weight_equals_removing_samples(three_class):
    X, y = three_class
    sw = np.ones(len(X))
    sw[::3] = 0
    keep = sw > 0
    a = _fit_quiet(_fast(solver="flow"), X, y, sample_weight=sw)
    b = _fit_quiet(_fast(solver="flow"), X[keep], y[keep])
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(a.positions_, b.positions_, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-9)


def test_integer_sample_weight_equals_repetition(two_class):
    X, y = two_class
    sw = np.arange(len(X)) % 3
    a = _fit_quiet(_fast(solver="flow"), X, y, sample_weight=sw)
    b = _fit_quiet(_fast(solver="flow"), np.repeat(X, sw, axis=0), np.repeat(y, sw))
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-9)


def test_class_weight_is_a_sample_weight(three_class):
    X, y = three_class
    rng = np.random.RandomState(0)
    sw = rng.uniform(0.5, 2, size=len(X))
    cw = {0: 1.0, 1: 3.0, 2: 0.5}
    a = _fit_quiet(_fast(class_weight=cw), X, y, sample_weight=sw)
    b = _fit_quiet(_fast(), X, y, sample_weight=sw * np.array([1.0, 3.0, 0.5])[y])
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-12)
    a = _fit_quiet(_fast(class_weight="balanced"), X, y)
    b = _fit_quiet(_fast(), X, y, sample_weight=compute_sample_weight("balanced", y))
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-12)


def test_class_weight_shifts_predictions_towards_the_weighted_class():
    # Overlapping, imbalanced classes: 10% positives.
    rng = np.random.RandomState(0)
    y = (rng.uniform(size=600) < 0.1).astype(int)
    X = rng.standard_normal((600, 2)) + 1.0 * y[:, None]
    plain = _fit_quiet(_fast(), X, y)
    balanced = _fit_quiet(_fast(class_weight="balanced"), X, y)
    frac_plain = plain.predict(X).mean()
    frac_balanced = balanced.predict(X).mean()
    assert frac_plain < 0.1
    assert frac_balanced > 0.3
    # balancing raises the recall of the rare class
    recall = [np.mean(c.predict(X)[y == 1] == 1) for c in (plain, balanced)]
    assert recall[1] > recall[0] + 0.3


# --------------------------------------------------- reproducibility, inputs


def test_random_state_reproducible(three_class):
    X, y = three_class
    a = _fit_quiet(_fast(), X, y)
    b = _fit_quiet(clone(a), X, y)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    np.testing.assert_array_equal(a.positions_, b.positions_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.loss_curve_ == b.loss_curve_
    c = _fit_quiet(_fast(random_state=1), X, y)
    assert not np.allclose(a.positions_, c.positions_)


def test_caller_arrays_not_modified(three_class):
    X, y = three_class
    X0, y0 = X.copy(), y.copy()
    sw = np.linspace(1, 2, len(X))
    sw0 = sw.copy()
    clf = _fit_quiet(_fast(class_weight="balanced"), X, y, sample_weight=sw)
    clf.predict_proba(X)
    clf.decision_function(X)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(sw, sw0)


def test_float32_and_other_activations(three_class):
    X, y = three_class
    for activation in ("relu", "tanh", "sigmoid"):
        clf = _fit_quiet(_fast(activation=activation), X.astype(np.float32), y)
        P = clf.predict_proba(X.astype(np.float32))
        assert clf.positions_.dtype == np.float32
        np.testing.assert_allclose(P.sum(axis=1), 1, atol=1e-6)
        assert clf.score(X, y) > 0.7, activation


def test_fit_intercept_false(two_class):
    X, y = two_class
    clf = _fit_quiet(_fast(fit_intercept=False), X, y)
    assert clf.intercept_ == 0.0
    assert clf.score(X, y) > 0.8


def test_warm_start_continues(three_class):
    X, y = three_class
    clf = _fit_quiet(_fast(warm_start=True, max_iter=50), X, y)
    first, n_first = clf.loss_curve_[-1], len(clf.loss_curve_)
    _fit_quiet(clf, X, y)
    # the curve continues the first fit's, from where it stopped
    assert len(clf.loss_curve_) == n_first + clf.n_iter_
    assert clf.loss_curve_[n_first] < first


def test_loss_decreases_and_is_the_objective(two_class):
    X, y = two_class
    clf = _fit_quiet(_fast(alpha=0.0), X, y)
    curve = np.array(clf.loss_curve_)
    assert np.all(np.diff(curve) <= 0)
    # with alpha=0, J is the mean log loss of predict_proba on the training set
    P = clf.predict_proba(X)
    log_loss = -np.mean(np.log(P[np.arange(len(y)), y]))
    assert curve[-1] == pytest.approx(log_loss, rel=1e-9)


# --------------------------------------------------------------- datasets


def test_make_teacher_student_classification_labels():
    X_r, y_r, _, P = make_teacher_student(
        200, 3, n_teacher=3, return_teacher=True, random_state=0
    )
    X_c, y_c = make_teacher_student(
        200, 3, n_teacher=3, task="classification", random_state=0
    )
    # binary: the sign of the regression teacher, same inputs
    np.testing.assert_array_equal(X_c, X_r)
    np.testing.assert_array_equal(y_c, (y_r > 0).astype(int))
    assert 0.2 < y_c.mean() < 0.8
    # multiclass: argmax of a multi-output teacher
    X_m, y_m, A, P_m = make_teacher_student(
        200,
        3,
        n_teacher=3,
        task="classification",
        n_classes=4,
        return_teacher=True,
        random_state=0,
    )
    np.testing.assert_array_equal(X_m, X_r)
    np.testing.assert_array_equal(P_m, P)
    assert A.shape == (3, 4)
    np.testing.assert_array_equal(
        y_m, (np.maximum(X_m @ P_m[:, :-1].T, 0) @ A).argmax(1)
    )
    assert set(np.unique(y_m)) <= {0, 1, 2, 3}
    assert len(np.unique(y_m)) >= 3
    # regression is unchanged by the new options
    _, y_r2 = make_teacher_student(200, 3, n_teacher=3, n_classes=5, random_state=0)
    np.testing.assert_array_equal(y_r2, y_r)


@pytest.mark.parametrize("fixture", ["two_class", "three_class"])
def test_sparse_input_fits_as_dense(request, fixture):
    import scipy.sparse as sp

    X, y = request.getfixturevalue(fixture)
    X = X.copy()
    X[np.random.RandomState(0).uniform(size=X.shape) < 0.4] = 0.0
    Xs = sp.csr_matrix(X)
    dense = _fit_quiet(_fast(solver="flow"), X, y)
    sparse = _fit_quiet(_fast(solver="flow"), Xs, y)
    assert sparse.n_iter_ == dense.n_iter_
    np.testing.assert_allclose(
        sparse.predict_proba(Xs), dense.predict_proba(X), atol=1e-8
    )
    np.testing.assert_array_equal(sparse.predict(Xs), dense.predict(X))
    # partial_fit takes sparse chunks too
    inc = clone(_fast(solver="flow"))
    for chunk in np.array_split(np.arange(X.shape[0]), 3):
        inc.partial_fit(Xs[chunk], y[chunk], classes=np.unique(y))
    assert inc.predict_proba(Xs).shape == (X.shape[0], len(np.unique(y)))
