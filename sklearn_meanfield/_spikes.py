"""SparseSpikeDeconvolver: off-the-grid sparse spikes recovery (BLASSO) by
conic particle gradient descent."""

import functools
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import (
    _num_samples,
    check_array,
    check_is_fitted,
    validate_data,
)

from ._base import atomic_fit, normalized_sample_weight
from ._blasso import certificate_values, solve_blasso
from ._kernels import DirichletKernel, GaussianKernel, IntegratedGaussianKernel
from ._operators import FourierOperator, make_spike_unit

__all__ = ["SparseSpikeDeconvolver"]


class SparseSpikeDeconvolver(RegressorMixin, BaseEstimator):
    """Off-the-grid sparse spikes deconvolution (BLASSO) with particles.

    Recovers a sparse measure ``mu = sum_i a_i delta_{t_i}`` from
    measurements ``y_j ~ sum_i a_i phi(t_i)(x_j) + b`` by minimising, over
    amplitudes *and* positions (no grid),

        J(mu, b) = (1/2) sum_j s_j |y_j - sum_i a_i phi(t_i)(x_j) - b|^2
                   + alpha * sum_i |a_i|,

    ``s_j`` the sample weights normalised to sum to one (``s_j = 1/n`` by
    default, which gives the ``1/(2n)`` of the BLASSO), ``b`` an unpenalised
    constant background with ``fit_intercept=True`` (else ``b = 0``).
    ``phi(t)(x)`` is what a spike at ``t`` contributes to measurement ``x``
    (``kernel``): a point-spread function ``K(x - t)`` sampled at ``x``
    (Dirichlet, Gaussian), integrated over pixels (``"integrated_gaussian"``),
    Fourier coefficients (``"fourier"``, complex ``y``), or any forward
    operator. ``mu`` is discretised into particles and moved by conic
    particle gradient descent (Wasserstein-Fisher-Rao flow, Chizat 2022):
    particle ``i`` carries a fixed sign ``e_i``, a mass ``r_i^2`` and a
    position ``t_i``, its amplitude is ``a_i = e_i r_i^2 / m`` (the
    mean-field weight ``w_i = e_i r_i^2`` divided by the number of particles
    ``m``), and with the first variation ``g_i = e_i V(t_i) + alpha`` of
    ``J``::

        r_i <- r_i exp(-2 weight_step g_i),
        t_i <- t_i - position_step * l^2 * e_i grad V(t_i),
        b   <- b - sum_j s_j (f_j + b - y_j)     (at the full step)

    ``V(t) = -sum_j s_j phi(t)(x_j) (y_j - prediction_j)`` and ``l`` the
    operator's length scale. The particles start on a uniform grid covering
    the domain with small equal masses (one positive and, unless
    ``positive=True``, one negative particle per grid point). Internally
    ``y`` and ``alpha`` are divided by the root mean square of ``y``
    (centred with ``fit_intercept``), and ``phi`` by its largest weighted
    column norm ``(sum_j s_j phi(t)(x_j)^2)^(1/2)`` times ``sqrt(21)`` (the
    amplitudes and ``alpha`` scaled to match, which leaves ``J`` and the
    certificate unchanged), so that the step sizes do not depend on the
    units of ``y`` nor on the scale of the operator.

    Optimality is read off the dual certificate

        eta(t) = (1/alpha) sum_j s_j phi(t)(x_j) (y_j - prediction_j),

    (``Re`` of it with ``conj(phi)`` for complex measurements; with the
    residual's weighted mean removed with ``fit_intercept``), which
    satisfies ``max_t |eta(t)| <= 1`` at the optimum, with ``eta(t_i) =
    sign(a_i)`` on the spikes, and the duality gap ``J(mu) - D(p)`` with the
    feasible dual point ``p_j = s_j r_j / (alpha max(1, max|eta|))``.

    With ``polish=True`` (the default) the flow finds the support and
    Newton's method finishes (``sklearn_meanfield._sliding``): the mass
    step of each flow step is chosen by a line search on ``J`` at fixed
    positions (the masses first grow from ``init_mass`` to the scale of the
    data in one step), the position step is ``position_step / weight_step``
    times ``min(mass step, weight_step)`` (halved until ``J`` does not
    increase), and particles lighter than ``1e-4`` of the heaviest leave the
    flow. After 3 steps the particles are clustered (same sign, within
    ``merge_radius``) into spikes, and amplitudes and positions of the
    spikes are optimised jointly with their signs fixed (the smooth
    "sliding" problem of Sliding Frank-Wolfe) by damped Newton: the
    Gauss-Newton term plus the residual's second-order term, from central
    differences of the operator's exact gradients. ``max |eta|`` is then
    computed on a grid of spacing ``l / 2`` (a tensor contraction for the
    built-in kernels and Fourier measurements) refined by Newton's method,
    and the spikes are a solution when the duality gap is at most ``tol *
    J``; otherwise spikes are inserted at the largest violations of
    ``|eta| <= 1`` and the spikes slid again (if that fails to certify, the
    flow resumes). ``n_iter_`` counts flow steps and Newton steps.

    With ``polish=False`` the flow alone runs with mass steps
    ``weight_step`` (halved and retried when ``J`` would increase), and
    every ``check_every`` steps ``max |eta|`` is computed on a fine grid
    (spacing half the kernel's length scale, at most 4096 points; beyond
    that, as in 3 dimensions or more, on 512 coarse-grid and random points,
    which makes the gap a heuristic) and at the particles, refined by local
    ascent; it stops when the duality gap is at most ``tol * (1/2) sum_j
    s_j y_j^2``.

    Then particles lighter than ``prune_tol`` times the heaviest are
    dropped, particles of the same sign closer than ``merge_radius`` are
    merged (amplitudes summed, positions averaged by mass) and, with
    ``debias``, amplitudes (and positions, and the background) are refitted
    by least squares on the support found, which removes the shrinkage bias
    of the penalty. With ``fit_intercept`` the background, being
    unpenalised, is eliminated: it is the weighted mean of the residual, and
    the problem solved is the BLASSO of the centred ``y`` and the centred
    operator ``phi(t)(x_j) - sum_k s_k phi(t)(x_k)``.
    Speed against Sliding Frank-Wolfe: ``benchmarks/RESULTS.md``, section 9.

    Parameters
    ----------
    kernel : {"dirichlet", "gaussian", "fourier", "integrated_gaussian"}, \
forward operator or kernel object, default="dirichlet"
        What a spike contributes to the measurements, ``phi(t)(x)``.
        ``"dirichlet"``: the Dirichlet kernel ``K(x - t)`` of cutoff
        ``cutoff`` on the torus ``[0, 1)^n_dims`` (product of 1-D kernels,
        ``K(0) = 1``); the sample locations ``X`` are read modulo 1 (``X``
        and ``X + 1`` give the same fit) and the positions are in ``[0, 1)``.
        ``"gaussian"``: ``exp(-|x - t|^2 / (2 bandwidth^2))`` on
        ``R^n_dims``. ``"fourier"``: Fourier coefficients of spikes on the
        torus ``[0, 1)^n_dims``, ``y_k = sum_i a_i exp(-2 i pi <k, t_i>)``:
        the rows of ``X`` are integer frequency vectors ``k`` and ``y`` is
        complex (see :meth:`fit`); the data term is ``(1/2) sum_k s_k |y_k -
        prediction_k|^2``, the amplitudes are real
        (:class:`~sklearn_meanfield.FourierOperator`).
        ``"integrated_gaussian"``: an image of point sources, pixel ``x``
        (its centre, a row of ``X``) of side ``pixel_size`` collecting
        ``prod_k [Phi((x_k - t_k + s/2) / sigma) - Phi((x_k - t_k - s/2) /
        sigma)]`` of a source at ``t``, ``sigma = bandwidth`` (a Gaussian
        PSF integrated over the pixel, so amplitudes are total intensities;
        :class:`~sklearn_meanfield.IntegratedGaussianKernel`); positions in
        the box the pixels cover. A forward operator
        (any measurement model; see
        :class:`~sklearn_meanfield.ForwardOperator`) has a method
        ``matrix_and_gradient(X, T)`` returning the (n_samples, m) matrix
        ``phi(t_i)(x_j)`` and its gradient in the positions (n_samples, m,
        n_dims), and states its domain (``domain(X)``: a
        :class:`~sklearn_meanfield.Box` or a
        :class:`~sklearn_meanfield.Torus`), optionally its
        ``length_scale``; its outputs are checked at every call. A kernel
        object has methods ``value(D)`` and ``gradient(D)`` of the
        differences ``D = x - t`` of shape (..., n_dims), returning ``K(D)``
        (...) and ``grad K(D)`` (..., n_dims); optionally ``periodic`` (bool,
        1-periodic on the torus) and ``length_scale`` (float); see
        :class:`DirichletKernel`.
    cutoff : int, default=10
        The Fourier cutoff ``fc`` of the Dirichlet kernel.
    bandwidth : float, default=0.05
        The ``sigma`` of the Gaussian kernel, or of the PSF of
        ``"integrated_gaussian"``, in the units of ``X``.
    pixel_size : float or None, default=None
        The side of a pixel for ``"integrated_gaussian"``, in the units of
        ``X``. None: the smallest gap between distinct pixel coordinates
        along an axis of ``X``.
    alpha : float, default=1e-3
        The weight of the total variation ``sum_i |a_i|``, in the units of
        ``y``. Spikes are detected where the correlation of the residual with
        the kernel exceeds ``alpha``; larger values give fewer spikes and more
        shrinkage (see ``debias``). With noise of standard deviation
        ``sigma_j`` on ``y_j``, ``alpha`` a few times ``sqrt(sum_j s_j^2
        sigma_j^2 phi(t)(x_j)^2)`` (the noise's correlation with a spike)
        keeps noise from making spikes.
    n_particles : int or None, default=None
        Number of initial grid positions (per sign). With None, one per
        ``length_scale`` along each axis of the domain (37 for the Dirichlet
        kernel with ``fc = 10`` in 1-D), at most 256. In ``n_dims``
        dimensions an integer gives a grid of ``floor(n_particles **
        (1/n_dims))`` points per axis, completed by uniform random positions.
    positive : bool, default=False
        Non-negative spikes only (only positive particles).
    fit_intercept : bool, default=False
        Fit an unpenalised constant background ``b`` (``intercept_``), e.g.
        the background light of an image; real measurements only.
    birth_death : "auto" or bool, default="auto"
        Every 20 steps, move particles that lost their mass (or sit on a
        heavier one) to the largest violations ``|eta| > 1.02`` of the
        certificate that no particle carrying mass sits on (birth-death,
        Rotskoff et al. 2019; the step is kept only if ``J`` decreases).
        The conic flow multiplies masses, so without it a region whose
        particles died early cannot get mass back: spikes are missed when
        the initial particles do not cover the domain. ``"auto"``: on when
        the initial grid is coarser than one particle per length scale along
        each axis (a small ``n_particles``, or the 256-particle cap, as in
        2-D and 3-D for fine resolutions), where it helps; a covering grid
        keeps the plain flow. It does nothing once the certificate is
        satisfied. A parameter of the flow alone (``polish=False``): with
        ``polish`` spikes are inserted at the largest violations of the
        certificate whenever it fails.
    max_iter : int, default=2000
        Maximum number of steps: of the flow and, with ``polish``, of
        Newton's method.
    tol : float, default=1e-6
        With ``polish``: the spikes are a solution when the duality gap is
        at most ``tol`` times ``J``. Without: stop the flow when the
        duality gap is below ``tol`` times the objective of the zero
        measure, ``(1/2) sum_j s_j y_j^2``.
    weight_step : float, default=10.0
        Time step of the masses (in units where ``y`` has unit root mean
        square): the largest one without ``polish``; with ``polish``, the
        first one the line search tries (it may go up to 4096 times
        larger), and the cap of the mass step used for the position step.
    position_step : float, default=30.0
        Largest time step of the positions, in units of ``length_scale^2``
        times those of ``weight_step``.
    init_mass : float, default=1e-2
        Initial total variation of the measure, as a fraction of the root
        mean square of ``y``, split equally among the particles.
    prune_tol : float, default=1e-2
        Spikes lighter than ``prune_tol`` times the heaviest are dropped.
    merge_radius : float or None, default=None
        Particles of the same sign closer than this (single linkage) are one
        spike. None: half the kernel's length scale.
    debias : {"joint", "amplitudes"} or None, default="joint"
        Least-squares refit on the support found: of the amplitudes and
        positions jointly (falls back to the amplitudes if a position moves
        by more than a length scale, or if there are more unknowns than
        samples), of the amplitudes only, or none.
    check_every : int, default=10
        Without ``polish``: compute the duality gap every ``check_every``
        steps.
    record_every : int or None, default=None
        Record the raw particles every ``record_every`` steps of the flow in
        ``trajectory_`` (at most 200 snapshots: the stride doubles when
        full), for :class:`~sklearn_meanfield.plotting.ParticleTrajectoryDisplay`.
    random_state : int, RandomState instance or None, default=None
        Seeds the random part of the initial positions (only used when the
        grid cannot hold ``n_particles`` points).
    verbose : bool or int, default=False
        Print the objective and the duality gap at each check.
    polish : bool, default=True
        Polish the spikes the flow found by Newton's method and certify
        them (see above); False: the flow alone.
    warm_start : bool, default=False
        Start from the raw particles of the previous fit (on the same
        domain, with the same number of particles), e.g. after changing
        ``alpha``. A particle lighter than a fresh one (mass below
        ``init_mass``, in the unit-free coordinates) is restarted at its
        initial grid position with the initial mass: the conic flow
        multiplies masses, so a particle the previous ``alpha`` killed
        could not come back, and the grid's covering of the domain is
        restored. ``n_iter_`` and ``loss_curve_`` restart.

    Attributes
    ----------
    positions_ : ndarray of shape (n_spikes_, n_dims)
        Spike positions ``t_i`` (in ``[0, 1)`` on the torus), in the
        operator's domain.
    weights_ : ndarray of shape (n_spikes_,)
        Spike amplitudes ``a_i``, in the units of ``y``.
    intercept_ : float
        The background ``b`` (0.0 without ``fit_intercept``).
    n_spikes_ : int
        Number of spikes found.
    particle_positions_ : ndarray of shape (n_particles_total, n_dims)
        The raw particles at the end, before pruning and merging; with
        ``polish``, the polished spikes occupy particles of their sign and
        the other particles have amplitude 0.
    particle_weights_ : ndarray of shape (n_particles_total,)
        Their amplitudes ``a_i = w_i / m``.
    trajectory_ : dict
        With ``record_every``: ``"iterations"`` (n_records,), ``"positions"``
        (n_records, n_particles_total, n_dims) and ``"weights"`` (n_records,
        n_particles_total, 1), the amplitudes of the raw particles.
    certificate_max_ : float
        ``max_t |eta(t)|`` at the raw particles (before debiasing); close to
        1 at a solution of the BLASSO.
    dual_gap_ : float
        The duality gap at the raw particles, in the units of ``J``.
    alpha_max_ : float
        ``max_t |sum_j s_j phi(t)(x_j) y_j|`` (``y`` centred with
        ``fit_intercept``): the zero measure is the solution for every
        ``alpha >= alpha_max_`` (then the flow is not run, ``n_iter_ = 0``
        and no spike is returned). Searched when first read unless the fit
        needed it.
    loss_curve_ : list of float
        ``J`` after each step (of the flow, then of Newton's method), in the
        units of ``y**2``.
    n_iter_ : int
        Number of steps: of the flow, plus those of Newton's method with
        ``polish``.
    n_features_in_ : int
        The number of columns of ``X`` (the dimension ``n_dims`` of the
        sample locations for a kernel).

    See Also
    --------
    sklearn.linear_model.Lasso : The same problem on a fixed grid.

    References
    ----------
    L. Chizat, "Sparse optimization on measures with over-parameterized
    gradient descent", Mathematical Programming, 2022.
    E. Candes and C. Fernandez-Granda, "Towards a mathematical theory of
    super-resolution", CPAM, 2014.

    Examples
    --------
    >>> from sklearn_meanfield import SparseSpikeDeconvolver
    >>> from sklearn_meanfield.datasets import make_spikes
    >>> X, y, t, a = make_spikes(n_spikes=3, n_samples=61, cutoff=6, random_state=0)
    >>> est = SparseSpikeDeconvolver(cutoff=6).fit(X, y)
    >>> est.n_spikes_
    3
    """

    _parameter_constraints: dict = {
        "kernel": [
            StrOptions({"dirichlet", "gaussian", "fourier", "integrated_gaussian"}),
            HasMethods(["value", "gradient"]),
            HasMethods(["matrix_and_gradient"]),
        ],
        "cutoff": [Interval(Integral, 1, None, closed="left")],
        "bandwidth": [Interval(Real, 0, None, closed="neither")],
        "pixel_size": [Interval(Real, 0, None, closed="neither"), None],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "n_particles": [Interval(Integral, 1, None, closed="left"), None],
        "positive": ["boolean"],
        "fit_intercept": ["boolean"],
        "birth_death": ["boolean", StrOptions({"auto"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "weight_step": [Interval(Real, 0, None, closed="neither")],
        "position_step": [Interval(Real, 0, None, closed="neither")],
        "init_mass": [Interval(Real, 0, None, closed="neither")],
        "prune_tol": [Interval(Real, 0, 1, closed="left")],
        "merge_radius": [Interval(Real, 0, None, closed="left"), None],
        "debias": [StrOptions({"joint", "amplitudes"}), None],
        "check_every": [Interval(Integral, 1, None, closed="left")],
        "record_every": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "polish": ["boolean"],
    }

    def __init__(
        self,
        kernel="dirichlet",
        *,
        cutoff=10,
        bandwidth=0.05,
        pixel_size=None,
        alpha=1e-3,
        n_particles=None,
        positive=False,
        fit_intercept=False,
        birth_death="auto",
        max_iter=2000,
        tol=1e-6,
        weight_step=10.0,
        position_step=30.0,
        init_mass=1e-2,
        prune_tol=1e-2,
        merge_radius=None,
        debias="joint",
        check_every=10,
        record_every=None,
        random_state=None,
        verbose=False,
        warm_start=False,
        polish=True,
    ):
        self.kernel = kernel
        self.cutoff = cutoff
        self.bandwidth = bandwidth
        self.pixel_size = pixel_size
        self.alpha = alpha
        self.n_particles = n_particles
        self.positive = positive
        self.fit_intercept = fit_intercept
        self.birth_death = birth_death
        self.max_iter = max_iter
        self.tol = tol
        self.weight_step = weight_step
        self.position_step = position_step
        self.init_mass = init_mass
        self.prune_tol = prune_tol
        self.merge_radius = merge_radius
        self.debias = debias
        self.check_every = check_every
        self.record_every = record_every
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.polish = polish

    # ------------------------------------------------------------------ parts
    def _operator(self, X):
        """The forward operator named by ``kernel`` (``X``: the pixel
        centres, for the pixel size of ``"integrated_gaussian"``)."""
        if self.kernel == "dirichlet":
            return DirichletKernel(self.cutoff)
        if self.kernel == "gaussian":
            return GaussianKernel(self.bandwidth)
        if self.kernel == "fourier":
            return FourierOperator()
        if self.kernel == "integrated_gaussian":
            pixel_size = self.pixel_size
            if pixel_size is None:
                pixel_size = _pixel_pitch(X)
            return IntegratedGaussianKernel(self.bandwidth, pixel_size)
        return self.kernel

    def _complex_valued(self):
        if isinstance(self.kernel, str):
            return self.kernel == "fourier"
        return bool(getattr(self.kernel, "complex_valued", False))

    def _validate(self, X, y, reset):
        """``X`` (float64) and ``y``: real, or complex for a complex operator
        (given complex (n,) or as real and imaginary parts (n, 2))."""
        if not self._complex_valued():
            return validate_data(
                self, X, y, reset=reset, dtype=np.float64, y_numeric=True
            )
        X = validate_data(self, X, reset=reset, dtype=np.float64)
        return X, _complex_target(y, X.shape[0])

    def _penalty_alpha(self):
        """The ``alpha`` of a fit (the cross-validated one for
        :class:`SparseSpikeDeconvolverCV`)."""
        return float(self.alpha)

    # --------------------------------------------------------------- fitting
    @_fit_context(prefer_skip_nested_validation=True)
    @atomic_fit
    def fit(self, X, y, sample_weight=None):
        """Recover the spikes from samples ``y`` at locations ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Sample locations (read modulo 1 for the Dirichlet kernel),
            integer frequency vectors for ``kernel="fourier"``, or whatever
            the forward operator reads.
        y : array-like of shape (n_samples,) or (n_samples, 2)
            The observed signal; for complex measurements (``"fourier"``, a
            complex operator) complex of shape (n_samples,) or real of shape
            (n_samples, 2) holding the real and imaginary parts.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights ``s_j`` of the data term (normalised to sum
            to one).

        Returns
        -------
        self : SparseSpikeDeconvolver
        """
        X, y = self._validate(X, y, reset=True)
        s = normalized_sample_weight(sample_weight, X, np.float64)
        if self.fit_intercept and self._complex_valued():
            raise ValueError(
                "fit_intercept=True adds a real constant background; it is not "
                "available for complex measurements."
            )
        unit = make_spike_unit(self._operator(X), X, s)
        warm = None
        if self.warm_start and hasattr(self, "particle_positions_"):
            warm = (self.particle_positions_, self.particle_weights_)
        result = solve_blasso(
            unit,
            X,
            y,
            s,
            self._penalty_alpha(),
            positive=self.positive,
            fit_intercept=self.fit_intercept,
            birth_death=self.birth_death,
            n_particles=self.n_particles,
            init_mass=self.init_mass,
            warm=warm,
            max_iter=self.max_iter,
            tol=self.tol,
            weight_step=self.weight_step,
            position_step=self.position_step,
            check_every=self.check_every,
            prune_tol=self.prune_tol,
            merge_radius=self.merge_radius,
            debias_mode=self.debias,
            record_every=self.record_every,
            # (a RandomState is made only if the initial positions need one)
            random_state=self.random_state,
            verbose=self.verbose,
            polish=self.polish,
        )
        # every fitted attribute from the result, after the solver returned
        self._unit = unit
        # (computed when first read: see the property)
        self._alpha_max = result.alpha_max
        self.particle_positions_ = result.particle_positions
        self.particle_weights_ = result.particle_amplitudes
        if result.trajectory is not None:
            self.trajectory_ = result.trajectory
        else:
            # (a previous fit's would describe other particles)
            self.__dict__.pop("trajectory_", None)
        self.loss_curve_ = result.loss_curve
        self.n_iter_ = result.n_iter
        self.dual_gap_ = result.dual_gap
        self.certificate_max_ = result.certificate_max
        self.positions_ = result.positions
        self.weights_ = result.amplitudes
        self.intercept_ = result.intercept
        self.n_spikes_ = int(result.amplitudes.shape[0])
        return self

    @property
    def alpha_max_(self):
        """``max_t |sum_j s_j phi(t)(x_j) y_j|`` (``y`` centred with
        ``fit_intercept``), in the units of ``y``: the zero measure is the
        solution for every ``alpha >= alpha_max_``.

        A fit only needs it when ``alpha`` is close to it: otherwise the
        maximum is searched (Newton's method from the largest local maxima
        on a grid) when this attribute is first read, from the fit's data
        (a copy of them, kept until then, or until the estimator is pickled
        or copied).
        """
        try:
            value = self.__dict__["_alpha_max"]
        except KeyError:
            raise AttributeError(
                f"This {type(self).__name__} has no attribute 'alpha_max_': "
                "call fit first."
            ) from None
        return value() if callable(value) else value

    # ------------------------------------------------------------ prediction
    def predict(self, X):
        """The measurements ``sum_i a_i phi(t_i)(x)`` of the spikes found
        (the blurred signal ``sum_i a_i K(x - t_i)`` for a kernel).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Complex for complex measurements (``kernel="fourier"``).
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        unit = self._unit
        Xp = unit.prepare(X)
        f = np.full(Xp.shape[0], float(self.intercept_))
        if self.n_spikes_ > 0:
            f += unit.forward(Xp, self.positions_)[0] @ self.weights_
        return unit.unstack(f)

    def certificate(self, X_eval, X, y, sample_weight=None):
        """The dual certificate ``eta(t)`` of the BLASSO solution at ``X_eval``.

        ``eta(t) = (1/alpha) sum_j s_j K(x_j - t) (y_j - prediction_j)``, with
        the prediction of the raw particles at the end of the flow (the
        BLASSO solution, before pruning and debiasing), on the data
        ``(X, y)`` (normally the training data). At a solution
        ``|eta| <= 1`` everywhere and ``eta = sign(a_i)`` at every spike.

        Parameters
        ----------
        X_eval : array-like of shape (n_eval, n_dims)
            Where to evaluate ``eta``.
        X : array-like of shape (n_samples, n_dims)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        eta : ndarray of shape (n_eval,)
        """
        check_is_fitted(self)
        X, y = self._validate(X, y, reset=False)
        unit = self._unit
        T = self._check_positions(X_eval)
        s = normalized_sample_weight(sample_weight, X, np.float64)
        Xp, y, s = unit.prepare(X), unit.stack(y), unit.stack_weights(s)
        Phi, _ = unit.forward(Xp, self.particle_positions_)
        residual = y - Phi @ self.particle_weights_
        if self.fit_intercept:
            # the background re-optimised: the residual has zero mean
            residual -= s @ residual
        sr = s * residual
        # (values only, over blocks of points: memory stays bounded)
        return certificate_values(unit, Xp, sr, unit.project(T)) / self._penalty_alpha()

    def _check_positions(self, T):
        """Positions of the fitted domain as a float64 array (n, n_dims)."""
        T = check_array(T, dtype=np.float64, copy=True)
        d = self.particle_positions_.shape[1]
        if T.shape[1] != d:
            raise ValueError(
                f"X_eval has {T.shape[1]} features, but the spike positions of "
                f"this {type(self).__name__} have {d} dimensions."
            )
        return T

    def score(self, X, y, sample_weight=None):
        """The coefficient of determination ``R^2`` of :meth:`predict`.

        For complex measurements, ``1 - sum_j s_j |y_j - f_j|^2 / sum_j s_j
        |y_j - ybar|^2`` with ``ybar = sum_j s_j y_j / sum_j s_j`` (``y``
        complex or as real and imaginary parts); otherwise
        :meth:`sklearn.base.RegressorMixin.score`.
        """
        if not self._complex_valued():
            return super().score(X, y, sample_weight=sample_weight)
        y = _complex_target(y, _num_samples(X))
        s = normalized_sample_weight(sample_weight, y[:, None], np.float64)
        residual = float(s @ np.abs(y - self.predict(X)) ** 2)
        total = float(s @ np.abs(y - s @ y) ** 2)
        if total == 0:
            return 1.0 if residual == 0 else 0.0
        return 1.0 - residual / total

    @classmethod
    def _get_param_names(cls):
        # (BaseEstimator's reads the signature of __init__ at every call:
        # every fit's parameter validation and every clone; it is the same
        # for the life of the class)
        return list(_init_parameter_names(cls))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # A sum of a few bumps of the kernel cannot fit scikit-learn's
        # generic 10-dimensional linear regression data (a trend over the
        # whole domain, read modulo 1 by the default Dirichlet kernel):
        # check_regressors_train's R^2 > 0.5 is not a meaningful test here.
        tags.regressor_tags.poor_score = True
        return tags


def _complex_target(y, n_samples):
    """Complex measurements from complex ``y`` (n,) or real and imaginary
    parts (n, 2)."""
    if y is None:
        raise ValueError("This estimator requires y to be passed, but y is None.")
    y = np.asarray(y)
    if np.iscomplexobj(y):
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        valid = y.ndim == 1
        y = y.astype(complex)
    else:
        valid = y.ndim == 2 and y.shape[1] == 2 and y.dtype.kind in "biuf"
        if valid:
            y = y[:, 0] + 1j * y[:, 1].astype(float)
    if not valid:
        raise ValueError(
            "For complex measurements y must be complex of shape (n_samples,) "
            "or real of shape (n_samples, 2) holding the real and imaginary "
            f"parts; got {y.dtype} of shape {y.shape}."
        )
    if y.shape[0] != n_samples:
        raise ValueError(
            f"X has {n_samples} samples but y has {y.shape[0]}; they must match."
        )
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinity.")
    return y


def _pixel_pitch(X):
    """The pixel size of an image from its pixel centres: the smallest gap
    between distinct coordinates along any axis."""
    gaps = []
    for column in np.asarray(X, dtype=float).T:
        u = np.unique(column)
        d = np.diff(u)
        d = d[d > 1e-9 * max(float(np.ptp(u)), 1e-300)]
        if d.size:
            gaps.append(d.min())
    if not gaps:
        raise ValueError(
            "kernel='integrated_gaussian' with pixel_size=None reads the pixel "
            "size off the pixel centres X, which need two distinct coordinates "
            "along some axis; give pixel_size."
        )
    return float(min(gaps))


@functools.cache
def _init_parameter_names(cls):
    """BaseEstimator's ``_get_param_names`` of ``cls``, read once per
    class."""
    return tuple(BaseEstimator._get_param_names.__func__(cls))
