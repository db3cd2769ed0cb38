"""Display objects: what they draw, and the error messages."""

import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

from sklearn_meanfield import (
    MeanFieldClassifierCV,
    MeanFieldRegressor,
    MeanFieldRegressorCV,
    regularization_path,
)
from sklearn_meanfield.datasets import make_teacher_student
from sklearn_meanfield.plotting import (
    LossCurveDisplay,
    ParticleTrajectoryDisplay,
    RegularizationPathDisplay,
    SpikesDisplay,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def teacher_student():
    X, y, a, U = make_teacher_student(
        200, 2, n_teacher=3, return_teacher=True, random_state=0
    )
    est = MeanFieldRegressor(8, max_iter=40, tol=0, record_every=4, random_state=0).fit(
        X, y
    )
    return est, a, U


def test_trajectory_display_network(teacher_student):
    est, a, U = teacher_student
    disp = ParticleTrajectoryDisplay.from_estimator(
        est, true_positions=U, true_weights=a
    )
    # one path per particle, the last snapshot as one scatter, one ray per
    # teacher neuron
    assert len(disp.lines_) == 8
    assert disp.scatter_.get_offsets().shape == (8, 2)
    assert len(disp.truth_) == 3
    assert disp.ax_.figure is disp.figure_
    n_records = est.trajectory_["iterations"].shape[0]
    assert disp.lines_[0].get_xydata().shape == (n_records, 2)
    # plane coordinates |w| theta[:2] of the final particles
    expected = np.abs(est.weights_)[:, None] * est.positions_[:, :2]
    np.testing.assert_allclose(disp.scatter_.get_offsets(), expected)


def test_trajectory_display_on_given_axes_and_projection(teacher_student):
    est, _, _ = teacher_student
    _, ax = plt.subplots()
    projection = np.array([[0.0, 1.0], [1.0, 0.0]])  # swap the coordinates
    disp = ParticleTrajectoryDisplay.from_estimator(est, projection=projection, ax=ax)
    assert disp.ax_ is ax
    assert disp.truth_ == []
    expected = np.abs(est.weights_)[:, None] * est.positions_[:, [1, 0]]
    np.testing.assert_allclose(disp.scatter_.get_offsets(), expected)
    with pytest.raises(ValueError, match="projection must have shape"):
        ParticleTrajectoryDisplay.from_estimator(est, projection=np.eye(4)[:, :2])


def test_trajectory_display_needs_a_record():
    X, y = make_teacher_student(50, 2, random_state=0)
    est = MeanFieldRegressor(4, max_iter=5).fit(X, y)
    with pytest.raises(ValueError, match="record_every"):
        ParticleTrajectoryDisplay.from_estimator(est)


def test_trajectory_display_spikes_layout():
    # 1-D spikes: positions against iterations, truth as lines and markers
    rng = np.random.RandomState(0)
    trajectory = {
        "iterations": np.arange(5),
        "positions": rng.uniform(size=(5, 6, 1)),
        "weights": rng.standard_normal((5, 6, 1)),
    }
    disp = ParticleTrajectoryDisplay.from_trajectory(
        trajectory,
        kind="spikes",
        true_positions=[0.2, 0.7],
        true_weights=[1.0, -1.0],
    )
    assert len(disp.lines_) == 6
    np.testing.assert_array_equal(disp.lines_[0].get_xdata(), np.arange(5))
    assert len(disp.truth_) == 3  # two horizontal lines and the markers
    assert disp.ax_.get_xlabel() == "iteration"


def test_trajectory_display_spikes_estimator_without_record():
    class Spikes(BaseEstimator):
        """Fitted, with raw particles but no trajectory_."""

        particle_positions_ = np.zeros((3, 1))

        def fit(self, X, y):
            return self

        def __sklearn_is_fitted__(self):
            return True

    with pytest.raises(ValueError, match="record_trajectory_by_refitting"):
        ParticleTrajectoryDisplay.from_estimator(Spikes())


def test_loss_curve_display(teacher_student):
    est, _, _ = teacher_student
    disp = LossCurveDisplay.from_estimator(est, label="fit")
    assert disp.ax_.get_yscale() == "log"
    np.testing.assert_allclose(disp.line_.get_ydata(), est.loss_curve_)
    assert disp.line_.get_label() == "fit"
    assert disp.validation_line_ is None and disp.ax_validation_ is None


def test_loss_curve_display_validation_scores():
    X, y = make_teacher_student(200, 3, random_state=0)
    est = MeanFieldRegressor(10, max_iter=30, early_stopping=True, random_state=0).fit(
        X, y
    )
    disp = LossCurveDisplay.from_estimator(est)
    np.testing.assert_allclose(
        disp.validation_line_.get_ydata(), est.validation_scores_
    )
    assert disp.ax_validation_ is not disp.ax_
    assert len(disp.ax_.get_lines()) == 1


def test_spikes_display_from_arrays_1d():
    X = np.linspace(0, 1, 50, endpoint=False)[:, None]
    grid = np.linspace(0, 1, 200, endpoint=False)[:, None]
    disp = SpikesDisplay(
        X,
        np.sin(2 * np.pi * X[:, 0]),
        np.array([[0.25], [0.75]]),
        np.array([1.0, -1.0]),
        grid,
        np.sin(2 * np.pi * grid[:, 0]),
        np.cos(2 * np.pi * grid[:, 0]),
        true_positions=np.array([[0.25], [0.75]]),
        true_weights=np.array([1.0, -1.0]),
    ).plot()
    assert set(disp.artists_) == {
        "signal",
        "reconstruction",
        "spikes",
        "true_spikes",
        "certificate",
    }
    assert disp.ax_certificate_ is not None
    assert disp.artists_["certificate"].get_xydata().shape == (200, 2)


def test_spikes_display_from_estimator():
    sms = pytest.importorskip("sklearn_meanfield")
    if not hasattr(sms, "SparseSpikeDeconvolver"):
        pytest.skip("SparseSpikeDeconvolver is not importable")
    from sklearn_meanfield.datasets import make_spikes

    X, y, t, a = make_spikes(
        n_spikes=3, n_samples=61, cutoff=6, min_separation=1.5, random_state=0
    )
    est = sms.SparseSpikeDeconvolver(cutoff=6).fit(X, y)
    disp = SpikesDisplay.from_estimator(
        est, X, y, true_positions=t, true_weights=a, n_grid=300
    )
    eta = disp.artists_["certificate"].get_ydata()
    assert eta.shape == (300,)
    assert np.abs(eta).max() <= 1 + 1e-3
    # recovered spikes: one stem per spike
    assert len(disp.artists_["spikes"].stemlines.get_segments()) == est.n_spikes_
    X2, y2, _, _ = make_spikes(
        n_spikes=2,
        n_samples=144,
        n_dims=2,
        cutoff=3,
        min_separation=1.0,
        positive=True,
        random_state=0,
    )
    est2 = sms.SparseSpikeDeconvolver(cutoff=3, positive=True, n_particles=25).fit(
        X2, y2
    )
    disp2 = SpikesDisplay.from_estimator(est2, X2, y2, n_grid=30)
    assert disp2.artists_["certificate"].get_array().shape == (30, 30)
    assert disp2.artists_["spikes"].get_offsets().shape == (est2.n_spikes_, 2)


@pytest.fixture(scope="module")
def noisy_teacher():
    return make_teacher_student(150, 3, n_teacher=3, noise=0.1, random_state=0)


def test_regularization_path_display_from_cv_estimator(noisy_teacher):
    X, y = noisy_teacher
    cv = MeanFieldRegressorCV(20, n_alphas=4, cv=3, random_state=0).fit(X, y)
    disp = RegularizationPathDisplay.from_estimator(cv)
    results = cv.cv_results_
    # the line is the mean CV score against the grid, on a log alpha axis
    np.testing.assert_array_equal(disp.line_.get_xdata(), results["alphas"])
    np.testing.assert_array_equal(disp.line_.get_ydata(), results["mean_test_score"])
    np.testing.assert_array_equal(disp.alphas, cv.alphas_)
    np.testing.assert_array_equal(disp.std_scores, results["std_test_score"])
    assert disp.ax_.get_xscale() == "log"
    # the band spans mean -+ std
    band = disp.band_.get_paths()[0].vertices
    low = results["mean_test_score"] - results["std_test_score"]
    high = results["mean_test_score"] + results["std_test_score"]
    assert band[:, 1].min() == pytest.approx(low.min())
    assert band[:, 1].max() == pytest.approx(high.max())
    # the vertical line is at alpha_, where the mean score is best_score_
    assert disp.alpha_ == cv.alpha_
    np.testing.assert_array_equal(disp.vline_.get_xdata(), [cv.alpha_, cv.alpha_])
    best = np.flatnonzero(results["alphas"] == cv.alpha_)[0]
    assert results["mean_test_score"][best] == cv.best_score_
    assert disp.figure_ is disp.ax_.figure
    assert disp.active_line_ is None and disp.ax_certificate_ is None


def test_regularization_path_display_from_classifier_cv():
    X, y = make_teacher_student(
        150, 3, n_teacher=3, task="classification", random_state=0
    )
    cv = MeanFieldClassifierCV(20, n_alphas=4, cv=3, random_state=0).fit(X, y)
    _, ax = plt.subplots()
    disp = RegularizationPathDisplay.from_estimator(cv, score_name="accuracy", ax=ax)
    assert disp.ax_ is ax
    assert ax.get_ylabel() == "accuracy"
    np.testing.assert_array_equal(
        disp.line_.get_ydata(), cv.cv_results_["mean_test_score"]
    )


def test_regularization_path_display_needs_a_cv_estimator(teacher_student):
    est, _, _ = teacher_student
    with pytest.raises(ValueError, match="from_path"):
        RegularizationPathDisplay.from_estimator(est)


# the fit at the smallest alpha stops at tol with certificate_max_ ~ 11
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_regularization_path_display_from_path(noisy_teacher):
    X, y = noisy_teacher
    alphas, fits = regularization_path(
        MeanFieldRegressor(20, random_state=0), X, y, n_alphas=4
    )
    disp = RegularizationPathDisplay.from_path(alphas, fits)
    # active particles: mass |w_i| |theta_i| (unit-free) above 1e-3 of the
    # largest mass on the path
    masses = []
    for est in fits:
        p = est._fitted_particles()
        masses.append(
            np.linalg.norm(p.weights, axis=1) * np.linalg.norm(p.positions, axis=1)
        )
    largest = max(m.max() for m in masses)
    expected = [int(np.sum(m > 1e-3 * largest)) for m in masses]
    np.testing.assert_array_equal(disp.n_active, expected)
    np.testing.assert_array_equal(disp.active_line_.get_xdata(), alphas)
    np.testing.assert_array_equal(disp.active_line_.get_ydata(), expected)
    # at alpha_max the network is (nearly) zero; at the smallest alpha most
    # particles carry mass
    assert disp.n_active[0] <= 2
    assert disp.n_active[-1] >= 10
    assert disp.n_active[-1] > disp.n_active[0]
    # the certificates on the twin axes
    certificates = [est.certificate_max_ for est in fits]
    np.testing.assert_allclose(disp.certificates, certificates)
    np.testing.assert_allclose(disp.certificate_line_.get_ydata(), certificates)
    assert disp.ax_certificate_ is not disp.ax_
    assert disp.ax_path_ is disp.ax_
    assert disp.ax_.get_xscale() == "log"
    assert disp.line_ is None and disp.vline_ is None
    with pytest.raises(ValueError, match="differ in length"):
        RegularizationPathDisplay.from_path(alphas[:2], fits)


def test_regularization_path_display_from_arrays_two_panels():
    alphas = np.geomspace(1.0, 1e-3, 4)
    disp = RegularizationPathDisplay(
        alphas,
        mean_scores=[0.0, 0.5, 0.8, 0.7],
        std_scores=[0.0, 0.1, 0.05, 0.1],
        alpha_=alphas[2],
        n_active=[0, 3, 8, 12],
        certificates=[1.0, np.nan, 1.2, 3.0],
    ).plot()
    assert disp.ax_path_ is not disp.ax_
    np.testing.assert_array_equal(disp.line_.get_ydata(), [0.0, 0.5, 0.8, 0.7])
    np.testing.assert_array_equal(disp.active_line_.get_ydata(), [0, 3, 8, 12])
    assert disp.ax_certificate_.get_yscale() == "log"
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="one Axes per panel"):
        disp.plot(ax=ax)
    # no certificate (sigmoid, tanh): no twin axes
    disp = RegularizationPathDisplay(alphas, n_active=[0, 1, 2, 3]).plot()
    assert disp.ax_certificate_ is None and disp.certificate_line_ is None


@pytest.mark.parametrize(
    "make",
    [
        lambda: LossCurveDisplay([1.0, 0.5]).plot(),
        lambda: RegularizationPathDisplay([1.0, 0.1], n_active=[0, 2]).plot(),
        lambda: ParticleTrajectoryDisplay(
            [0, 1], np.zeros((2, 3, 2)), np.ones((2, 3))
        ).plot(),
    ],
)
def test_missing_matplotlib_names_the_extra(make, monkeypatch):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "sklearn_meanfield\[plot\]"'):
        make()


def test_regularization_path_display_counts_spikes():
    # along a deconvolver's path the active count is the number of spikes
    from sklearn_meanfield import SparseSpikeDeconvolver, regularization_path
    from sklearn_meanfield.datasets import make_spikes

    X, y, _, _ = make_spikes(n_spikes=3, cutoff=6, random_state=0)
    est = SparseSpikeDeconvolver(cutoff=6, max_iter=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        alphas, fits = regularization_path(est, X, y, n_alphas=4, eps=1e-2)
    display = RegularizationPathDisplay.from_path(alphas, fits, threshold=1e-12)
    np.testing.assert_array_equal(display.n_active, [e.n_spikes_ for e in fits])
    assert display.n_active[0] == 0 and display.n_active[-1] >= 3
    np.testing.assert_allclose(display.certificates, [e.certificate_max_ for e in fits])
