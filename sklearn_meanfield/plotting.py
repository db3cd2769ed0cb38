"""Figures of fitted particle measures, as scikit-learn display objects.

Each display is built by ``from_estimator`` from a fitted estimator (or by
its constructor from plain arrays) and drawn by ``plot(ax=...)``; after
plotting it holds the matplotlib objects in ``ax_``, ``figure_`` and the
artists it drew, as :class:`sklearn.metrics.RocCurveDisplay` does.

matplotlib is an optional dependency, imported only when a figure is drawn:
``pip install "sklearn_meanfield[plot]"``.
"""

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "LossCurveDisplay",
    "ParticleTrajectoryDisplay",
    "RegularizationPathDisplay",
    "SpikesDisplay",
    "record_trajectory_by_refitting",
]

#: colours of positive and negative weights
_POSITIVE, _NEGATIVE = "tab:red", "tab:blue"


def _import_pyplot():
    """``matplotlib.pyplot``, or an ImportError that names the extra."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "Plotting with sklearn_meanfield needs matplotlib, which is not "
            'installed. Install it with: pip install "sklearn_meanfield[plot]"'
        ) from exc
    return plt


def _get_ax(ax):
    plt = _import_pyplot()
    if ax is None:
        _, ax = plt.subplots()
    return ax


def _sign_colors(weights):
    return np.where(np.asarray(weights) >= 0, _POSITIVE, _NEGATIVE)


def _marker_sizes(weights, reference, largest=80.0, smallest=1.0):
    """Marker areas proportional to ``|weights|``, ``largest`` at
    ``reference``."""
    reference = reference if reference > 0 else 1.0
    return np.clip(largest * np.abs(weights) / reference, smallest, None)


def _is_spikes_estimator(estimator):
    return hasattr(estimator, "particle_positions_")


def _network_plane(positions, weights, projection):
    """Plane coordinates ``|w| P theta`` of network particles.

    ``positions`` (..., p) with the bias coordinate last, ``weights`` (..., k);
    ``P`` the first two coordinates, or ``projection`` (p, 2) or (p - 1, 2).
    """
    theta = positions
    if projection is None:
        if positions.shape[-1] < 3:
            raise ValueError(
                "ParticleTrajectoryDisplay plots network particles in the plane of "
                "the first two input coordinates; this estimator has "
                f"{positions.shape[-1] - 1} input feature(s). Pass a projection."
            )
        theta = positions[..., :2]
    else:
        projection = np.asarray(projection, dtype=float)
        if projection.shape[0] == positions.shape[-1] - 1:
            theta = positions[..., :-1]
        if projection.shape != (theta.shape[-1], 2):
            raise ValueError(
                "projection must have shape (n_features, 2) or (n_features + 1, 2); "
                f"got {projection.shape} for {positions.shape[-1] - 1} features."
            )
        theta = theta @ projection
    magnitude = np.linalg.norm(weights, axis=-1)
    return theta * magnitude[..., None], weights[..., 0]


class ParticleTrajectoryDisplay:
    """Particle positions over training, sized by weight.

    With one coordinate (1-D spikes), each particle's position is drawn
    against the iteration; with two, the paths are drawn in the plane. The
    last snapshot is drawn as markers of area proportional to ``|weight|``,
    coloured by the sign of the weight (red positive, blue negative), and the
    truth (teacher neurons, true spikes) is overlaid.

    For a network ``f(x) = (1/m) sum_i w_i sigma(theta_i . [x, 1])`` the
    plane coordinates of a particle are ``|w_i| theta_i[:2]`` (or a
    projection of ``theta_i``), as in the figures of Chizat & Bach (2018):
    with ReLU the neuron is 2-homogeneous and only its direction and the
    product of the norms matter. Teacher neurons are then drawn as rays
    along their directions.

    Parameters
    ----------
    iterations : ndarray of shape (n_records,)
        The iteration of each snapshot.
    positions : ndarray of shape (n_records, n_particles, n_coords)
        Plotted coordinates of the particles, ``n_coords`` 1 or 2.
    weights : ndarray of shape (n_records, n_particles)
        Signed weight of each particle in each snapshot.
    true_positions : ndarray of shape (n_true, n_coords), default=None
    true_weights : ndarray of shape (n_true,), default=None
    truth_style : {"point", "ray"}, default="point"
        Draw the truth as markers, or as rays from the origin (directions of
        teacher neurons).

    Attributes
    ----------
    lines_ : list of matplotlib Line2D
        One path per particle.
    scatter_ : matplotlib PathCollection
        The particles at the last snapshot.
    truth_ : list of matplotlib artists
        The truth overlay (empty without truth).
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> from sklearn_meanfield import MeanFieldRegressor
    >>> from sklearn_meanfield.datasets import make_teacher_student
    >>> from sklearn_meanfield.plotting import ParticleTrajectoryDisplay
    >>> X, y, a, U = make_teacher_student(200, 2, n_teacher=3, return_teacher=True,
    ...                                   random_state=0)
    >>> est = MeanFieldRegressor(12, max_iter=50, record_every=5).fit(X, y)
    >>> disp = ParticleTrajectoryDisplay.from_estimator(
    ...     est, true_positions=U, true_weights=a)  # doctest: +SKIP
    """

    def __init__(
        self,
        iterations,
        positions,
        weights,
        *,
        true_positions=None,
        true_weights=None,
        truth_style="point",
    ):
        self.iterations = np.asarray(iterations)
        self.positions = np.asarray(positions, dtype=float)
        self.weights = np.asarray(weights, dtype=float)
        self.true_positions = (
            None if true_positions is None else np.asarray(true_positions, float)
        )
        self.true_weights = (
            None if true_weights is None else np.asarray(true_weights, float)
        )
        self.truth_style = truth_style

    @classmethod
    def from_trajectory(
        cls,
        trajectory,
        *,
        kind="network",
        true_positions=None,
        true_weights=None,
        projection=None,
        ax=None,
    ):
        """Plot a trajectory record.

        Parameters
        ----------
        trajectory : dict
            ``"iterations"`` (n_records,), ``"weights"`` (n_records,
            n_particles, n_outputs) or (n_records, n_particles) and
            ``"positions"`` (n_records, n_particles, p): the layout of
            ``MeanFieldRegressor.trajectory_`` and of
            :func:`record_trajectory_by_refitting`.
        kind : {"network", "spikes"}, default="network"
            ``"network"``: positions ``[theta, bias]``, drawn as ``|w|
            theta[:2]`` (or ``|w| theta @ projection``), truth as rays.
            ``"spikes"``: positions drawn as they are (the first two
            coordinates in 2-D or more), truth as points.
        true_positions : array-like, default=None
            Teacher positions (n_teacher, p) in the layout of
            ``make_teacher_student(..., return_teacher=True)``, or true spike
            positions (n_spikes, n_dims).
        true_weights : array-like, default=None
            Teacher output weights (n_teacher,) or (n_teacher, n_outputs), or
            true spike amplitudes (n_spikes,).
        projection : ndarray of shape (n_features, 2), default=None
            For networks in more than 2 dimensions: the plane to project the
            positions on (default: the first two coordinates).
        ax : matplotlib Axes, default=None

        Returns
        -------
        display : ParticleTrajectoryDisplay
        """
        if kind not in ("network", "spikes"):
            raise ValueError(f"kind must be 'network' or 'spikes'; got {kind!r}.")
        if trajectory is None or trajectory.get("positions") is None:
            raise ValueError("The trajectory record is empty.")
        P = np.asarray(trajectory["positions"], dtype=float)
        W = np.asarray(trajectory["weights"], dtype=float)
        W = W[..., None] if W.ndim == 2 else W
        tP = tW = None
        if kind == "network":
            P, W = _network_plane(P, W, projection)
            if true_positions is not None:
                tW = np.ones(len(true_positions)) if true_weights is None else None
                tW = np.asarray(true_weights, float) if tW is None else tW
                tW = tW[:, None] if tW.ndim == 1 else tW
                tP, tW = _network_plane(
                    np.asarray(true_positions, float), tW, projection
                )
        else:
            P, W = P[..., :2], W[..., 0]
            if true_positions is not None:
                tP = np.asarray(true_positions, float)
                tP = (tP[:, None] if tP.ndim == 1 else tP)[:, :2]
                tW = (
                    np.ones(tP.shape[0])
                    if true_weights is None
                    else np.asarray(true_weights, float).ravel()
                )
        display = cls(
            trajectory["iterations"],
            P,
            W,
            true_positions=tP,
            true_weights=tW,
            truth_style="ray" if kind == "network" else "point",
        )
        return display.plot(ax=ax)

    @classmethod
    def from_estimator(
        cls,
        estimator,
        *,
        true_positions=None,
        true_weights=None,
        projection=None,
        ax=None,
    ):
        """Plot the recorded particles of a fitted estimator.

        Needs the record ``trajectory_`` (fit with ``record_every=k``; for an
        estimator without that option, build a record with
        :func:`record_trajectory_by_refitting` and pass it to
        :meth:`from_trajectory`).

        Parameters
        ----------
        estimator : fitted estimator
            A ``MeanFieldRegressor`` or ``MeanFieldClassifier`` fitted with
            ``record_every``, or any estimator with a ``trajectory_``.
        true_positions, true_weights, projection, ax
            See :meth:`from_trajectory`.

        Returns
        -------
        display : ParticleTrajectoryDisplay

        Raises
        ------
        ValueError
            If the estimator has no trajectory record.
        """
        check_is_fitted(estimator)
        spikes = _is_spikes_estimator(estimator)
        trajectory = getattr(estimator, "trajectory_", None)
        if trajectory is None:
            name = type(estimator).__name__
            if spikes:
                how = (
                    f"{name} has no trajectory_: fit it with record_every=k to "
                    "record the particles every k steps, or build a record by "
                    "refitting with increasing max_iter: trajectory = "
                    "record_trajectory_by_refitting(estimator, X, y) (from "
                    "sklearn_meanfield.plotting), then "
                    "ParticleTrajectoryDisplay.from_trajectory(trajectory, "
                    'kind="spikes").'
                )
            else:
                how = (
                    f"{name} has no trajectory_: fit it with record_every=k "
                    "(e.g. record_every=1) to record the particles every k "
                    "iterations."
                )
            raise ValueError(how)
        return cls.from_trajectory(
            trajectory,
            kind="spikes" if spikes else "network",
            true_positions=true_positions,
            true_weights=true_weights,
            projection=projection,
            ax=ax,
        )

    def plot(self, ax=None):
        """Draw the paths, the last snapshot and the truth.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure if None.

        Returns
        -------
        self : ParticleTrajectoryDisplay
        """
        ax = _get_ax(ax)
        P, W = self.positions, self.weights
        last = W[-1]
        reference = np.abs(W).max(initial=0.0)
        if self.true_weights is not None and self.truth_style == "point":
            reference = max(reference, np.abs(self.true_weights).max(initial=0.0))
        colors = _sign_colors(last)
        one_d = P.shape[-1] == 1
        # positions on the torus [0, 1) jump by ~1 when they wrap: break the
        # path there instead of drawing a line across the plot
        torus = self.truth_style == "point" and 0 <= P.min(initial=0.0)
        torus = torus and P.max(initial=0.0) < 1
        self.lines_ = []
        for i in range(P.shape[1]):
            path = P[:, i].copy()
            if torus:
                jump = np.abs(np.diff(path, axis=0)).max(axis=1) > 0.5
                path[1:][jump] = np.nan
            if one_d:
                xs, ys = self.iterations, path[:, 0]
            else:
                xs, ys = path[:, 0], path[:, 1]
            (line,) = ax.plot(xs, ys, color=colors[i], lw=0.8, alpha=0.6)
            self.lines_.append(line)
        if one_d:
            end = np.column_stack([np.full(P.shape[1], self.iterations[-1]), P[-1]])
        else:
            end = P[-1]
        self.scatter_ = ax.scatter(
            end[:, 0],
            end[:, 1],
            s=_marker_sizes(last, reference),
            c=colors,
            edgecolors="k",
            linewidths=0.3,
            zorder=3,
            label="particles",
        )
        self.truth_ = self._plot_truth(ax, one_d)
        if one_d:
            ax.set_xlabel("iteration")
            ax.set_ylabel("position")
        else:
            ax.set_xlabel("coordinate 1")
            ax.set_ylabel("coordinate 2")
            if self.truth_style == "ray":
                ax.set_aspect("equal", adjustable="datalim")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    def _plot_truth(self, ax, one_d):
        if self.true_positions is None:
            return []
        tP, tW = self.true_positions, self.true_weights
        colors = _sign_colors(tW)
        artists = []
        if one_d:
            for p, c in zip(tP[:, 0], colors, strict=True):
                artists.append(ax.axhline(p, color=c, ls="--", lw=1, alpha=0.8))
            artists.append(
                ax.scatter(
                    np.full(tP.shape[0], self.iterations[-1]),
                    tP[:, 0],
                    marker="x",
                    c="k",
                    s=60,
                    zorder=4,
                    label="truth",
                )
            )
            return artists
        if self.truth_style == "ray":
            reach = 1.2 * max(
                np.abs(self.positions).max(initial=0.0),
                np.abs(tP).max(initial=0.0),
            )
            for p, c in zip(tP, colors, strict=True):
                norm = np.linalg.norm(p)
                if norm > 0:
                    end = reach * p / norm
                    artists.extend(
                        ax.plot([0, end[0]], [0, end[1]], color=c, ls="--", lw=1)
                    )
            # Only the direction of a homogeneous teacher neuron is comparable
            # with the particles: the mass of a neuron is shared by the
            # particles that converge to it.
            if artists:
                artists[0].set_label("teacher directions")
            return artists
        artists.append(
            ax.scatter(
                tP[:, 0],
                tP[:, 1],
                marker="*",
                c=colors,
                edgecolors="k",
                s=150,
                zorder=4,
                label="truth",
            )
        )
        return artists


class LossCurveDisplay:
    """Training objective and validation scores per iteration.

    Parameters
    ----------
    loss_curve : array-like of shape (n_iter,)
        The objective ``J`` after each step (``loss_curve_``).
    validation_scores : array-like of shape (n_iter,), default=None
        Validation score after each epoch (``validation_scores_`` with
        ``early_stopping=True``), drawn on a second y axis.
    label : str, default=None
        Legend label of the training curve.

    Attributes
    ----------
    line_ : matplotlib Line2D
        The training curve (log scale).
    validation_line_ : matplotlib Line2D or None
    ax_ : matplotlib Axes
    ax_validation_ : matplotlib Axes or None
        The twin axes of the validation scores.
    figure_ : matplotlib Figure

    Examples
    --------
    >>> from sklearn_meanfield import MeanFieldRegressor
    >>> from sklearn_meanfield.plotting import LossCurveDisplay
    >>> from sklearn_meanfield.datasets import make_teacher_student
    >>> X, y = make_teacher_student(200, 3, random_state=0)
    >>> est = MeanFieldRegressor(20, max_iter=100).fit(X, y)
    >>> LossCurveDisplay.from_estimator(est)  # doctest: +SKIP
    """

    def __init__(self, loss_curve, validation_scores=None, *, label=None):
        self.loss_curve = np.asarray(loss_curve, dtype=float)
        self.validation_scores = (
            None
            if validation_scores is None
            else np.asarray(validation_scores, dtype=float)
        )
        self.label = label

    @classmethod
    def from_estimator(cls, estimator, *, label=None, ax=None, **kwargs):
        """Plot ``loss_curve_`` and ``validation_scores_`` of an estimator.

        Parameters
        ----------
        estimator : fitted estimator with ``loss_curve_``
        label : str, default=None
            Legend label (e.g. the flow, to compare fits on one axes).
        ax : matplotlib Axes, default=None
        **kwargs
            Passed to ``ax.plot`` for the training curve.

        Returns
        -------
        display : LossCurveDisplay
        """
        check_is_fitted(estimator)
        if not hasattr(estimator, "loss_curve_"):
            raise ValueError(f"{type(estimator).__name__} has no loss_curve_ to plot.")
        display = cls(
            estimator.loss_curve_,
            getattr(estimator, "validation_scores_", None),
            label=label,
        )
        return display.plot(ax=ax, **kwargs)

    def plot(self, ax=None, **kwargs):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
        **kwargs
            Passed to ``ax.plot`` for the training curve.

        Returns
        -------
        self : LossCurveDisplay
        """
        ax = _get_ax(ax)
        iters = np.arange(1, self.loss_curve.shape[0] + 1)
        (self.line_,) = ax.plot(
            iters, self.loss_curve, label=self.label or "training objective", **kwargs
        )
        if np.all(self.loss_curve[np.isfinite(self.loss_curve)] > 0):
            ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("objective J")
        self.validation_line_ = self.ax_validation_ = None
        if self.validation_scores is not None and self.validation_scores.size:
            twin = ax.twinx()
            (self.validation_line_,) = twin.plot(
                np.arange(1, self.validation_scores.shape[0] + 1),
                self.validation_scores,
                color="tab:green",
                ls="--",
                label="validation score",
            )
            twin.set_ylabel("validation score")
            self.ax_validation_ = twin
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


class SpikesDisplay:
    """Observed signal, reconstruction, true and recovered spikes, and the
    dual certificate of a sparse spikes deconvolution.

    1-D: the signal and its reconstruction as curves, the spikes as stems;
    below, the certificate ``eta(t)`` with the lines ``+-1`` (at a BLASSO
    solution ``|eta| <= 1``, with ``eta = sign(a_i)`` at each spike). 2-D:
    the signal as an image with the spikes on top (markers of area
    proportional to ``|a_i|``), and the certificate as an image.

    Use :meth:`from_estimator`; the constructor takes the arrays.

    Parameters
    ----------
    X, y : ndarray of shape (n_samples, n_dims) and (n_samples,)
        Sample locations and observed signal.
    positions, weights : ndarray of shape (n_spikes, n_dims) and (n_spikes,)
        Recovered spikes.
    grid : ndarray of shape (n_grid, n_dims)
        Where ``reconstruction`` and ``certificate`` are evaluated.
    reconstruction : ndarray of shape (n_grid,)
    certificate : ndarray of shape (n_grid,) or None
    true_positions, true_weights : ndarray, default=None

    Attributes
    ----------
    ax_ : matplotlib Axes
        The signal panel.
    ax_certificate_ : matplotlib Axes or None
    figure_ : matplotlib Figure
    artists_ : dict
        The artists drawn, by name (``"signal"``, ``"reconstruction"``,
        ``"spikes"``, ``"true_spikes"``, ``"certificate"``).
    """

    def __init__(
        self,
        X,
        y,
        positions,
        weights,
        grid,
        reconstruction,
        certificate=None,
        *,
        true_positions=None,
        true_weights=None,
    ):
        self.X, self.y = X, y
        self.positions, self.weights = positions, weights
        self.grid, self.reconstruction = grid, reconstruction
        self.certificate = certificate
        self.true_positions, self.true_weights = true_positions, true_weights

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        y,
        *,
        true_positions=None,
        true_weights=None,
        certificate=True,
        n_grid=None,
        ax=None,
    ):
        """Plot a fitted :class:`~sklearn_meanfield.SparseSpikeDeconvolver`.

        Parameters
        ----------
        estimator : fitted SparseSpikeDeconvolver
            Or any estimator with ``positions_``, ``weights_`` and
            ``predict``; the certificate needs a ``certificate(X_eval, X,
            y)`` method.
        X : array-like of shape (n_samples, n_dims)
            Sample locations (normally the training data), 1 or 2 dims.
        y : array-like of shape (n_samples,)
        true_positions : array-like of shape (n_spikes, n_dims), default=None
        true_weights : array-like of shape (n_spikes,), default=None
        certificate : bool, default=True
            Draw the dual certificate (when the estimator can compute it).
        n_grid : int, default=None
            Evaluation points (per axis in 2-D); default 1000 in 1-D, 100 in
            2-D.
        ax : matplotlib Axes or sequence of two Axes, default=None
            The signal panel, or the signal and certificate panels.

        Returns
        -------
        display : SpikesDisplay
        """
        check_is_fitted(estimator)
        X = np.asarray(X, dtype=float)
        X = X[:, None] if X.ndim == 1 else X
        y = np.asarray(y, dtype=float).ravel()
        d = X.shape[1]
        if d not in (1, 2):
            raise ValueError(
                f"SpikesDisplay draws 1-D and 2-D signals; X has {d} dimensions."
            )
        periodic = bool(getattr(getattr(estimator, "_unit", None), "periodic", False))
        if periodic:
            lower, upper = np.zeros(d), np.ones(d)
        else:
            lower, upper = X.min(axis=0), X.max(axis=0)
        n = n_grid or (1000 if d == 1 else 100)
        axes = [
            np.linspace(lo, hi, n, endpoint=not periodic)
            for lo, hi in zip(lower, upper, strict=True)
        ]
        mesh = np.meshgrid(*axes, indexing="ij")
        grid = np.column_stack([g.ravel() for g in mesh])
        eta = None
        if certificate and hasattr(estimator, "certificate"):
            eta = estimator.certificate(grid, X, y)
        display = cls(
            X,
            y,
            np.asarray(estimator.positions_).reshape(-1, d),
            np.asarray(estimator.weights_).ravel(),
            grid,
            estimator.predict(grid),
            eta,
            true_positions=(
                None
                if true_positions is None
                else np.asarray(true_positions, float).reshape(-1, d)
            ),
            true_weights=(
                None if true_weights is None else np.asarray(true_weights).ravel()
            ),
        )
        return display.plot(ax=ax)

    def plot(self, ax=None):
        """Draw the panels.

        Parameters
        ----------
        ax : matplotlib Axes or sequence of two Axes, default=None
            With a certificate and a single Axes, the certificate is not
            drawn; None makes a new figure with the panels needed.

        Returns
        -------
        self : SpikesDisplay
        """
        plt = _import_pyplot()
        d = self.X.shape[1]
        if ax is None:
            if self.certificate is None:
                _, ax = plt.subplots(figsize=(7, 4) if d == 1 else (5, 5))
                axes = [ax]
            elif d == 1:
                _, axes = plt.subplots(
                    2, 1, figsize=(7, 6), sharex=True, height_ratios=[2, 1]
                )
            else:
                _, axes = plt.subplots(1, 2, figsize=(10, 4.5))
        else:
            axes = list(np.ravel(ax))
        self.artists_ = {}
        if d == 1:
            self._plot_1d(axes)
        else:
            self._plot_2d(axes)
        self.ax_ = axes[0]
        self.ax_certificate_ = axes[1] if len(axes) > 1 else None
        self.figure_ = self.ax_.figure
        return self

    def _stems(self, ax, positions, weights, fmt, label):
        stem = ax.stem(positions, weights, linefmt=fmt, markerfmt=fmt[0] + "o")
        stem.set_label(label)
        stem.baseline.set_visible(False)
        return stem

    def _plot_1d(self, axes):
        ax = axes[0]
        order = np.argsort(self.X[:, 0])
        art = self.artists_
        (art["signal"],) = ax.plot(
            self.X[order, 0], self.y[order], ".", color="0.5", ms=4, label="observed"
        )
        (art["reconstruction"],) = ax.plot(
            self.grid[:, 0],
            self.reconstruction,
            color="k",
            lw=1,
            label="reconstruction",
        )
        if self.true_positions is not None:
            art["true_spikes"] = ax.stem(
                self.true_positions[:, 0],
                self.true_weights,
                linefmt="C2-",
                markerfmt="C2x",
                basefmt=" ",
                label="true spikes",
            )
        art["spikes"] = ax.stem(
            self.positions[:, 0],
            self.weights,
            linefmt="C3--",
            markerfmt="C3o",
            basefmt=" ",
            label="recovered spikes",
        )
        ax.axhline(0, color="0.7", lw=0.5)
        ax.set_ylabel("signal")
        ax.legend(loc="best", fontsize="small")
        if self.certificate is not None and len(axes) > 1:
            cax = axes[1]
            (art["certificate"],) = cax.plot(
                self.grid[:, 0], self.certificate, color="C0", label="certificate"
            )
            for level in (-1, 1):
                cax.axhline(level, color="0.5", ls=":", lw=1)
            cax.plot(
                self.positions[:, 0],
                np.sign(self.weights),
                "C3o",
                ms=4,
            )
            cax.set_ylabel(r"certificate $\eta(t)$")
            cax.set_xlabel("t")
        else:
            ax.set_xlabel("t")

    def _plot_2d(self, axes):
        ax = axes[0]
        art = self.artists_
        art["signal"] = ax.tripcolor(
            self.X[:, 0], self.X[:, 1], self.y, shading="gouraud", cmap="gray"
        )
        ax.figure.colorbar(art["signal"], ax=ax, shrink=0.8)
        reference = np.abs(self.weights).max(initial=0.0)
        if self.true_positions is not None:
            art["true_spikes"] = ax.scatter(
                self.true_positions[:, 0],
                self.true_positions[:, 1],
                marker="x",
                c="C2",
                s=60,
                label="true spikes",
                zorder=3,
            )
            reference = max(reference, np.abs(self.true_weights).max(initial=0.0))
        art["spikes"] = ax.scatter(
            self.positions[:, 0],
            self.positions[:, 1],
            s=_marker_sizes(self.weights, reference, largest=200.0),
            facecolors="none",
            edgecolors=_sign_colors(self.weights),
            linewidths=1.5,
            label="recovered spikes",
            zorder=4,
        )
        ax.set_aspect("equal")
        ax.set_title("observed signal and spikes")
        ax.legend(loc="upper right", fontsize="small")
        if self.certificate is not None and len(axes) > 1:
            cax = axes[1]
            n = round(float(np.sqrt(self.grid.shape[0])))
            extent = [
                self.grid[:, 0].min(),
                self.grid[:, 0].max(),
                self.grid[:, 1].min(),
                self.grid[:, 1].max(),
            ]
            art["certificate"] = cax.imshow(
                self.certificate.reshape(n, n).T,
                origin="lower",
                extent=extent,
                cmap="RdBu_r",
                vmin=-1,
                vmax=1,
            )
            cax.figure.colorbar(art["certificate"], ax=cax, shrink=0.8)
            cax.contour(
                self.grid[:, 0].reshape(n, n),
                self.grid[:, 1].reshape(n, n),
                np.abs(self.certificate).reshape(n, n),
                levels=[0.99],
                colors="k",
                linewidths=0.8,
            )
            cax.scatter(
                self.positions[:, 0],
                self.positions[:, 1],
                marker="o",
                facecolors="none",
                edgecolors="k",
                s=40,
            )
            cax.set_title(r"certificate $\eta$ (contour $|\eta| = 0.99$)")
            cax.set_aspect("equal")


def _active_masses(estimator):
    """``|w_i| |theta_i|`` of a fitted network's particles, unit-free, or the
    amplitudes ``|a_i|`` of a deconvolver's spikes.

    ``positions_`` are in the units of ``X`` (and ``weights_`` in those of
    ``y``), so the masses are read from the unit-free particles that
    predict (``_fitted_particles``); the norm of ``w_i`` is over the outputs.
    """
    if hasattr(estimator, "n_spikes_"):
        return np.abs(np.asarray(estimator.weights_, dtype=float)).ravel()
    p = estimator._fitted_particles()
    weights = np.asarray(p.weights, dtype=float)
    weights = weights[:, None] if weights.ndim == 1 else weights
    positions = np.asarray(p.positions, dtype=float)
    return np.linalg.norm(weights, axis=1) * np.linalg.norm(positions, axis=1)


class RegularizationPathDisplay:
    """Cross-validated scores, or active particles and certificates, along a
    regularisation path.

    Two panels, drawn when their data is given, against ``alpha`` on a log
    axis:

    - the scores: the mean cross-validated score (``mean_test_score`` of a
      :class:`~sklearn_meanfield.MeanFieldRegressorCV` or
      :class:`~sklearn_meanfield.MeanFieldClassifierCV`) as a line with
      markers, a band of +- one standard deviation across the folds
      (``std_test_score``) and a vertical dashed line at the chosen
      ``alpha_``;
    - the path: the number of active particles of each fit (mass ``|w_i|
      |theta_i|`` above ``threshold`` times the largest mass on the path), as
      a line with markers on the left y axis, and the certificate
      ``certificate_max_`` on a twin right y axis (log scale) with a dotted
      line at 1: at or below it the fit is certified a global minimiser of
      the convex problem.

    Use :meth:`from_estimator` or :meth:`from_path`; the constructor takes
    the arrays.

    Parameters
    ----------
    alphas : array-like of shape (n_alphas,)
        The grid of ``alpha``.
    mean_scores, std_scores : array-like of shape (n_alphas,), default=None
        Mean and standard deviation of the cross-validated scores.
    alpha_ : float, default=None
        The chosen ``alpha``, drawn as a vertical line.
    n_active : array-like of shape (n_alphas,), default=None
        Number of active particles of each fit.
    certificates : array-like of shape (n_alphas,), default=None
        ``certificate_max_`` of each fit (NaN where there is none: sigmoid
        and tanh networks).
    score_name : str, default=None
        The y label of the scores panel (default ``"mean CV score"``).

    Attributes
    ----------
    line_ : matplotlib Line2D or None
        The mean scores.
    band_ : matplotlib PolyCollection or None
        The +- one standard deviation band.
    vline_ : matplotlib Line2D or None
        The vertical line at ``alpha_``.
    active_line_ : matplotlib Line2D or None
        The numbers of active particles.
    certificate_line_ : matplotlib Line2D or None
        The certificates, on ``ax_certificate_``.
    ax_ : matplotlib Axes
        The first panel drawn (the scores when there are scores).
    ax_path_ : matplotlib Axes or None
        The panel of the active particles.
    ax_certificate_ : matplotlib Axes or None
        The twin axes of the certificates.
    figure_ : matplotlib Figure

    Examples
    --------
    >>> from sklearn_meanfield import MeanFieldRegressorCV, regularization_path
    >>> from sklearn_meanfield import MeanFieldRegressor
    >>> from sklearn_meanfield.datasets import make_teacher_student
    >>> from sklearn_meanfield.plotting import RegularizationPathDisplay
    >>> X, y = make_teacher_student(150, 3, n_teacher=3, noise=0.1, random_state=0)
    >>> cv = MeanFieldRegressorCV(20, n_alphas=4, cv=3).fit(X, y)
    >>> RegularizationPathDisplay.from_estimator(cv)  # doctest: +SKIP
    >>> alphas, fits = regularization_path(MeanFieldRegressor(20), X, y)
    >>> RegularizationPathDisplay.from_path(alphas, fits)  # doctest: +SKIP
    """

    def __init__(
        self,
        alphas,
        *,
        mean_scores=None,
        std_scores=None,
        alpha_=None,
        n_active=None,
        certificates=None,
        score_name=None,
    ):
        def _array(values):
            return None if values is None else np.asarray(values, dtype=float)

        self.alphas = np.asarray(alphas, dtype=float)
        self.mean_scores = _array(mean_scores)
        self.std_scores = _array(std_scores)
        self.alpha_ = None if alpha_ is None else float(alpha_)
        self.n_active = None if n_active is None else np.asarray(n_active, int)
        self.certificates = _array(certificates)
        self.score_name = score_name

    @classmethod
    def from_estimator(cls, estimator, *, score_name=None, ax=None):
        """Plot the cross-validated scores of a fitted CV estimator.

        Draws ``cv_results_["mean_test_score"]`` against
        ``cv_results_["alphas"]`` with a band of +-
        ``cv_results_["std_test_score"]``, and a vertical line at ``alpha_``.

        Parameters
        ----------
        estimator : fitted MeanFieldRegressorCV or MeanFieldClassifierCV
            Or any estimator with ``cv_results_`` (``"alphas"``,
            ``"mean_test_score"``, ``"std_test_score"``) and ``alpha_``.
        score_name : str, default=None
            The y label (default ``"mean CV score"``).
        ax : matplotlib Axes, default=None

        Returns
        -------
        display : RegularizationPathDisplay

        Raises
        ------
        ValueError
            If the estimator has no ``cv_results_`` (not a CV estimator: use
            :meth:`from_path` with :func:`~sklearn_meanfield.regularization_path`).
        """
        check_is_fitted(estimator)
        results = getattr(estimator, "cv_results_", None)
        if results is None or "mean_test_score" not in results:
            raise ValueError(
                f"{type(estimator).__name__} has no cv_results_ with "
                "mean_test_score: pass a fitted MeanFieldRegressorCV or "
                "MeanFieldClassifierCV, or plot a path with "
                "RegularizationPathDisplay.from_path(*regularization_path(...))."
            )
        display = cls(
            results["alphas"],
            mean_scores=results["mean_test_score"],
            std_scores=results.get("std_test_score"),
            alpha_=estimator.alpha_,
            score_name=score_name,
        )
        return display.plot(ax=ax)

    @classmethod
    def from_path(cls, alphas, estimators, *, threshold=1e-3, ax=None):
        """Plot active particles and certificates along a path.

        Parameters
        ----------
        alphas : array-like of shape (n_alphas,)
        estimators : list of fitted MeanFieldRegressor, MeanFieldClassifier \
                or SparseSpikeDeconvolver
            One per ``alpha``: the output of
            :func:`~sklearn_meanfield.regularization_path`.
        threshold : float, default=1e-3
            A particle is active when its mass ``|w_i| |theta_i|`` (in the
            unit-free coordinates of the fit; for spikes, the amplitude
            ``|a_i|`` of a recovered spike) exceeds ``threshold`` times the
            largest mass over the whole path; relative to the path rather
            than to each fit so that the (nearly) zero network at
            ``alpha_max`` counts (nearly) no active particle.
        ax : matplotlib Axes, default=None
            The axes of the active particles; the certificates go on a twin.

        Returns
        -------
        display : RegularizationPathDisplay
        """
        alphas = np.asarray(alphas, dtype=float)
        if len(estimators) != alphas.shape[0]:
            raise ValueError(
                f"alphas and estimators differ in length: {alphas.shape[0]} "
                f"and {len(estimators)}."
            )
        for estimator in estimators:
            check_is_fitted(estimator)
        masses = [_active_masses(estimator) for estimator in estimators]
        largest = max((float(m.max(initial=0.0)) for m in masses), default=0.0)
        n_active = [
            int(np.sum(m > threshold * largest)) if largest else 0 for m in masses
        ]
        certificates = [
            np.nan if c is None else float(c)
            for c in (getattr(e, "certificate_max_", None) for e in estimators)
        ]
        display = cls(alphas, n_active=n_active, certificates=certificates)
        return display.plot(ax=ax)

    def plot(self, ax=None):
        """Draw the panels.

        Parameters
        ----------
        ax : matplotlib Axes or sequence of two Axes, default=None
            One Axes per panel drawn (scores, path); None makes a new figure
            with the panels needed, sharing the ``alpha`` axis.

        Returns
        -------
        self : RegularizationPathDisplay
        """
        plt = _import_pyplot()
        panels = [
            name
            for name, data in (("scores", self.mean_scores), ("path", self.n_active))
            if data is not None
        ]
        if not panels:
            raise ValueError(
                "RegularizationPathDisplay needs mean_scores or n_active to draw."
            )
        if ax is None:
            _, axes = plt.subplots(
                len(panels),
                1,
                figsize=(6, 3.5 * len(panels)),
                sharex=True,
                squeeze=False,
            )
            axes = list(axes[:, 0])
        else:
            axes = list(np.ravel(ax))
            if len(axes) != len(panels):
                raise ValueError(
                    f"ax must hold one Axes per panel drawn ({', '.join(panels)}); "
                    f"got {len(axes)}."
                )
        self.line_ = self.band_ = self.vline_ = None
        self.active_line_ = self.certificate_line_ = None
        self.ax_path_ = self.ax_certificate_ = None
        panel_axes = dict(zip(panels, axes, strict=True))
        if "scores" in panel_axes:
            self._plot_scores(panel_axes["scores"])
        if "path" in panel_axes:
            self._plot_path(panel_axes["path"])
        self.ax_ = axes[0]
        self.figure_ = self.ax_.figure
        return self

    def _plot_scores(self, ax):
        (self.line_,) = ax.plot(
            self.alphas, self.mean_scores, "o-", color="C0", label="mean CV score"
        )
        if self.std_scores is not None:
            self.band_ = ax.fill_between(
                self.alphas,
                self.mean_scores - self.std_scores,
                self.mean_scores + self.std_scores,
                color="C0",
                alpha=0.2,
                label="+- 1 std",
            )
        if self.alpha_ is not None:
            self.vline_ = ax.axvline(
                self.alpha_,
                color="k",
                ls="--",
                lw=1,
                label=f"alpha_ = {self.alpha_:.3g}",
            )
        ax.set_xscale("log")
        ax.set_xlabel("alpha")
        ax.set_ylabel(self.score_name or "mean CV score")
        ax.legend(loc="best", fontsize="small")

    def _plot_path(self, ax):
        (self.active_line_,) = ax.plot(
            self.alphas, self.n_active, "o-", color="C2", label="active particles"
        )
        ax.set_xscale("log")
        ax.set_xlabel("alpha")
        ax.set_ylabel("active particles", color="C2")
        ax.set_ylim(bottom=0)
        ax.yaxis.get_major_locator().set_params(integer=True)
        self.ax_path_ = ax
        certificates = self.certificates
        if certificates is None or not np.any(np.isfinite(certificates)):
            return
        twin = ax.twinx()
        (self.certificate_line_,) = twin.plot(
            self.alphas,
            certificates,
            "s--",
            color="C3",
            label="certificate_max_",
        )
        twin.axhline(1.0, color="C3", ls=":", lw=1)
        positive = certificates[np.isfinite(certificates)]
        if np.all(positive > 0):
            from matplotlib.ticker import LogFormatter

            twin.set_yscale("log")
            # plain numbers (2, 3, 10) rather than 2 x 10^0: the values are
            # read against 1
            twin.yaxis.set_major_formatter(LogFormatter())
            twin.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))
        twin.set_ylabel("certificate_max_ (<= 1: certified)", color="C3")
        self.ax_certificate_ = twin


def record_trajectory_by_refitting(estimator, X, y, iterations=None):
    """A trajectory record of an estimator that keeps none, by refitting.

    The flow is deterministic given ``random_state``, so the fit with
    ``max_iter=k`` passes through the particles of step ``k`` of the full
    fit: refitting a clone for each ``k`` in ``iterations`` and reading its
    raw particles (``particle_positions_``, ``particle_weights_`` of
    :class:`~sklearn_meanfield.SparseSpikeDeconvolver`) gives the record.
    The cost is the sum of the ``iterations``; use a few, spaced
    geometrically.

    Parameters
    ----------
    estimator : estimator with ``max_iter``, ``particle_positions_`` and
        ``particle_weights_`` after fit (need not be fitted).
    X, y : array-like
        The training data.
    iterations : array-like of int, default=None
        The ``max_iter`` of the refits; default: about 20 values spaced
        geometrically from 1 to the estimator's ``max_iter``.

    Returns
    -------
    trajectory : dict
        ``"iterations"`` (n_records,) the iterations actually reached,
        ``"weights"`` (n_records, n_particles, 1) and ``"positions"``
        (n_records, n_particles, n_dims), the layout of
        ``MeanFieldRegressor.trajectory_``.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    if iterations is None:
        top = estimator.get_params()["max_iter"]
        iterations = np.unique(np.geomspace(1, top, 20).astype(int))
    reached, weights, positions = [], [], []
    for k in iterations:
        est = clone(estimator).set_params(max_iter=int(k))
        with warnings.catch_warnings():
            # stopping at max_iter is the point here
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        if reached and est.n_iter_ <= reached[-1]:
            break  # converged before k: the rest of the record is this state
        reached.append(int(est.n_iter_))
        weights.append(np.asarray(est.particle_weights_).reshape(-1, 1))
        positions.append(np.asarray(est.particle_positions_))
    return {
        "iterations": np.asarray(reached, dtype=int),
        "weights": np.stack(weights),
        "positions": np.stack(positions),
    }
